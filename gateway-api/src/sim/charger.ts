/**
 * A simulated charger on OCPP (issue 13 item 6): it connects to its operator's gateway as a real charger
 * would (`ws://HOST:PORT/ocpp/{chargePointId}`, HTTP Basic password, sub-protocol ocpp1.6 or ocpp2.0.1,
 * ocpp-rpc with strict schema validation, so it never sends what a real CSMS would refuse as malformed),
 * boots, reports its connector, and waits for the gateway's RemoteStartTransaction / RequestStartTransaction.
 * Each start runs one transaction whose START, PROGRESS and STOP readings the pile's SM2 key signs in the
 * EVPAY-SM2-SM3-v1 encoding (ocppMessages.ts, ocpp/signedMeter.ts). Then it reads the session back from the
 * ledger through the REST session route until it is settled: the gateway answers a stop at once and
 * settles afterwards, so the time from the stop to the settlement the ledger shows is what a driver waits.
 *
 * The charger can also play the driver (DriverRole): sign the authorization and ask the gateway for the
 * remote start itself (POST /v1/ocpp/remote-start), so one process charges a car end to end.
 *
 * `runChargerSessions` is the unit the CLI (`evpay charger`) and the network bench reuse: it takes a
 * connected charger, the clients and a clock, and answers one outcome per session; nothing in it depends
 * on either caller.
 */
import { RPCClient } from 'ocpp-rpc';
import type { RPC_ClientOptions } from 'ocpp-rpc/lib/client';
import type { EvPayResults } from '@evpay/chaincode/client';
import { GatewayRefusal, queryAnswer, type GatewayClient } from '../client/gatewayClient';
import type { SignedReading } from '../ocpp/signedMeter';
import type { SimDriver, SimPile } from './devices';
import { maxEnergyWh, meterAfter, nextReadAt, sessionPowerW, type Rng } from './meter';
import { failureOf, realClock, retryKind, type Clock, type StepFailure } from './story';
import {
  bootNotification,
  closeCall,
  openCall,
  opened,
  readingCall,
  remoteStartMethod,
  remoteStartOf,
  statusNotification,
  subprotocolOf,
  SIM_MODEL,
  type ChargerModel,
  type ConnectorState,
  type OcppCall,
  type OcppVersion,
  type RemoteStart,
  type SimTransaction,
} from './ocppMessages';

/** The OCPP endpoint of a gateway: its base URL with ws(s) for http(s), and /ocpp. */
export function ocppEndpoint(gatewayUrl: string): string {
  const u = new URL(gatewayUrl);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('expected an http(s) gateway URL');
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${u.toString().replace(/\/+$/, '')}/ocpp`;
}

export interface ChargerConfig {
  /** The gateway's OCPP endpoint, ws(s)://HOST:PORT/ocpp (ocppEndpoint); the charger id is appended. */
  endpoint: string;
  chargePointId: string;
  /** Its password on that gateway (`evpay-gateway chargers add`); none for a profile-3 charger. */
  password?: string;
  /** TLS for wss://: a client certificate and key (security profile 3) and the CA the gateway's is from. */
  tls?: ChargerTls;
  version: OcppVersion;
  /** The pile it is: its id, meter and SM2 key. */
  pile: SimPile;
  model?: ChargerModel;
  clock?: Clock;
}

/** PEM contents (not paths) for the charger's TLS connection. */
export interface ChargerTls {
  cert?: string;
  key?: string;
  ca?: string;
}

/** An OCPP error the CSMS answered (CALLERROR), or ocpp-rpc's own (timeout, closed socket). */
export class OcppCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'OcppCallError';
  }
}

export class SimCharger {
  private readonly rpc: RPCClient;
  private readonly clock: Clock;
  /** Remote starts accepted and not yet run (at most one: the connector takes one car). */
  private readonly pending: RemoteStart[] = [];
  private readonly waiters = new Set<() => void>();
  private busy = false;

  constructor(readonly config: ChargerConfig) {
    this.clock = config.clock ?? realClock;
    this.rpc = new RPCClient({
      endpoint: config.endpoint,
      identity: config.chargePointId,
      ...(config.password === undefined ? {} : { password: config.password }),
      ...(config.tls ? { wsOpts: { ...config.tls } } : {}),
      protocols: [subprotocolOf(config.version)],
      strictMode: true,
      reconnect: false,
      callTimeoutMs: 60_000,
    } as Partial<RPC_ClientOptions> as RPC_ClientOptions);
    this.rpc.handle(remoteStartMethod(config.version), async ({ params }) =>
      this.onRemoteStart(params ?? {}),
    );
  }

  get chargePointId(): string {
    return this.config.chargePointId;
  }
  get pile(): SimPile {
    return this.config.pile;
  }
  get version(): OcppVersion {
    return this.config.version;
  }

  /** Connects (the handshake is refused without the right password or pile), boots, reports Available. */
  async connect(): Promise<void> {
    try {
      await this.rpc.connect();
    } catch (e) {
      // ocpp-rpc names the HTTP status of a refused upgrade in `code` (401 no or wrong password, 403 no pile).
      const status = (e as { code?: unknown }).code;
      const http = typeof status === 'number' ? `HTTP ${status} ` : '';
      throw new OcppCallError('HANDSHAKE_REFUSED', `${this.chargePointId}: ${http}${errorText(e)}`);
    }
    const boot = (await this.call(bootNotification(this.version, this.config.model ?? SIM_MODEL))) as {
      status?: string;
    };
    if (boot.status !== 'Accepted')
      throw new OcppCallError('BOOT_REJECTED', `${this.chargePointId}: boot ${String(boot.status)}`);
    await this.status('Available');
  }

  async close(): Promise<void> {
    await this.rpc.close({ code: 1000, reason: 'simulation over' }).catch(() => undefined);
  }

  /** One call to the CSMS; a CALLERROR or a broken socket is an OcppCallError with OCPP's code. */
  async call(c: OcppCall): Promise<unknown> {
    try {
      return await this.rpc.call(c.method, c.params);
    } catch (e) {
      const code = (e as { rpcErrorCode?: unknown }).rpcErrorCode;
      throw new OcppCallError(
        typeof code === 'string' ? code : 'OCPP_CALL_FAILED',
        `${c.method}: ${errorText(e)}`,
      );
    }
  }

  status(state: ConnectorState): Promise<unknown> {
    return this.call(statusNotification(this.version, state, this.clock.nowMs()));
  }

  private onRemoteStart(params: Record<string, unknown>): { status: 'Accepted' | 'Rejected' } {
    if (this.busy || this.pending.length > 0) return { status: 'Rejected' };
    this.pending.push(remoteStartOf(this.version, params));
    for (const w of this.waiters) w();
    return { status: 'Accepted' };
  }

  /**
   * The remote start the CSMS sent, the one naming `sessionId` when given (the charger accepted it before
   * the gateway answered the driver), waiting up to `timeoutMs` for it.
   */
  async remoteStart(timeoutMs: number, sessionId?: string): Promise<RemoteStart> {
    const until = this.clock.nowMs() + timeoutMs;
    for (;;) {
      const i = this.pending.findIndex((p) => sessionId === undefined || p.sessionId === sessionId);
      if (i >= 0) return this.pending.splice(i, 1)[0] as RemoteStart;
      const left = until - this.clock.nowMs();
      if (left <= 0)
        throw new OcppCallError(
          'NO_REMOTE_START',
          `${this.chargePointId}: no remote start within ${timeoutMs} ms`,
        );
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1000));
        this.waiters.add(done);
      });
    }
  }

  /** Marks the connector taken (remote starts are rejected) or free again. */
  occupy(busy: boolean): void {
    this.busy = busy;
    if (!busy) this.pending.length = 0;
  }
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The charger plays the driver: signs the authorization and asks the gateway for the remote start. */
export interface DriverRole {
  driver: SimDriver;
  /** A driver-app (or pile-backend) credential at the charger's gateway: POST /v1/ocpp/remote-start. */
  api: GatewayClient;
  /** Seconds an authorization stays valid (default 600). */
  authorizationTtlSec?: number;
}

export type ChargerStep = 'remote-start' | 'start' | 'progress' | 'stop' | 'settle';

export interface ChargerSessionOutcome {
  chargePointId: string;
  pileId: string;
  version: OcppVersion;
  /** The id the gateway gave the charger (undefined when no remote start came). */
  sessionId?: string;
  /** True once the ledger shows the session settled. */
  settled: boolean;
  failures: Array<StepFailure<ChargerStep>>;
  energyWh: number;
  chargedFen: number;
  /**
   * Milliseconds: the remote start asked until the gateway answered (driver role), the StopTransaction /
   * TransactionEvent(Ended) until the CSMS answered it, and the stop sent until the ledger (read through
   * the REST session route) showed the session settled.
   */
  latencyMs: { remoteStart?: number; stopAnswer?: number; stopToSettled?: number };
  /** The clock's ms when the settlement was seen (a benchmark counts sessions settled in its window). */
  settledAtMs?: number;
  /** GET requests made to learn the settlement (the load the reading back puts on the gateway). */
  settlementReads: number;
}

export interface ChargerSessionOptions {
  charger: SimCharger;
  /** A credential at the charger's gateway that reads the pile's sessions (any role). */
  api: GatewayClient;
  /** When given, the charger asks for each remote start itself; otherwise it waits for one. */
  driver?: DriverRole;
  /** The driver's cap per session, in fen (the authorization's, when the charger plays the driver). */
  capFen: number;
  /** The dearest price of the tariff (fen per kWh): the charger stops before the cap is spent. */
  dearestFenPerKwh: number;
  /** PROGRESS readings per session (default 1). */
  progressReadings?: number;
  /** Real milliseconds between two readings (default 1000; readings are whole seconds). */
  stepMs?: number;
  /** How much faster than real time the meter runs (default 600). */
  speedup?: number;
  /** How long to wait for a remote start another party triggers (default 300 s). */
  waitStartMs?: number;
  /** How long to wait for the ledger to show the settlement (default 120 s). */
  settleTimeoutMs?: number;
  /** The first pause between two reads of the session (default 100 ms; then a tenth of the time waited). */
  pollMs?: number;
  rng?: Rng;
  clock?: Clock;
  onSession?(outcome: ChargerSessionOutcome): void;
}

type SessionView = EvPayResults['GetSession'];

/**
 * The pause before the next read of a session being settled: `pollMs` at first, then a tenth of the time
 * already waited (at most a second), so a read's resolution stays within 10 % of what it measures
 * without a busy charger polling its gateway many times a second.
 */
export function pollDelay(waitedMs: number, pollMs: number): number {
  return Math.min(1000, Math.max(pollMs, Math.round(waitedMs / 10)));
}

/** Runs up to `sessions` sessions one after the other, and none starting after `deadlineMs` (clock ms). */
export async function runChargerSessions(
  o: ChargerSessionOptions,
  sessions: number,
  deadlineMs = Number.POSITIVE_INFINITY,
): Promise<ChargerSessionOutcome[]> {
  const clock = o.clock ?? realClock;
  const out: ChargerSessionOutcome[] = [];
  for (let n = 1; n <= sessions && clock.nowMs() < deadlineMs; n++) {
    const outcome = await runChargerSession(o);
    out.push(outcome);
    o.onSession?.(outcome);
    // A stop the ledger never settled leaves the pile busy (or the socket gone): its next sessions would
    // only be refused.
    if (!outcome.settled && outcome.failures.some((f) => f.step !== 'remote-start' && f.step !== 'start'))
      break;
    if (outcome.failures.some((f) => f.code === 'NO_REMOTE_START')) break;
  }
  return out;
}

/** One session: remote start, the transaction with its signed readings, and the settlement read back. */
export async function runChargerSession(o: ChargerSessionOptions): Promise<ChargerSessionOutcome> {
  const clock = o.clock ?? realClock;
  const { charger } = o;
  const pile = charger.pile;
  const nowSec = (): number => Math.floor(clock.nowMs() / 1000);
  const outcome: ChargerSessionOutcome = {
    chargePointId: charger.chargePointId,
    pileId: pile.pileId,
    version: charger.version,
    settled: false,
    failures: [],
    energyWh: 0,
    chargedFen: 0,
    latencyMs: {},
    settlementReads: 0,
  };
  const fail = (step: ChargerStep, e: unknown): ChargerSessionOutcome => {
    outcome.failures.push(
      e instanceof OcppCallError ? { step, code: e.code, message: e.message } : failureOf(step, e),
    );
    return outcome;
  };

  // --- the remote start ---
  let remote: RemoteStart;
  try {
    if (o.driver) {
      const d = o.driver;
      const authorization = d.driver.authorize(
        pile.pileId,
        o.capFen,
        nowSec() + (d.authorizationTtlSec ?? 600),
      );
      const asked = clock.nowMs();
      const answer = (await d.api.post('/v1/ocpp/remote-start', {
        chargePointId: charger.chargePointId,
        authorization,
      })) as { sessionId?: unknown };
      outcome.latencyMs.remoteStart = clock.nowMs() - asked;
      if (typeof answer.sessionId !== 'string') throw new OcppCallError('BAD_ANSWER', 'no sessionId');
      remote = await charger.remoteStart(10_000, answer.sessionId);
    } else remote = await charger.remoteStart(o.waitStartMs ?? 300_000);
  } catch (e) {
    // A start the charger accepted but the gateway then gave up on is not run: the connector is free again.
    charger.occupy(false);
    return fail('remote-start', e);
  }
  outcome.sessionId = remote.sessionId;

  // --- the transaction ---
  charger.occupy(true);
  const stepMs = o.stepMs ?? 1000;
  const rng = o.rng ?? Math.random;
  const maxWh = maxEnergyWh(o.capFen, o.dearestFenPerKwh);
  const powerW = sessionPowerW(rng, pile.meter.ratingW);
  const startWh = pile.meter.meterWh;
  const publicKey = pile.publicKey;
  const tx: SimTransaction = {
    version: charger.version,
    start: remote,
    seqNo: 0,
    // 2.0.1: the charger's own id; the session id is unique at this gateway, so it is used again.
    ...(charger.version === '2.0.1' ? { transactionId: remote.sessionId } : {}),
  };
  const sign = (kind: SignedReading['kind'], meterWh: number, at: number): SignedReading =>
    pile.reading(kind, remote.sessionId, meterWh, at) as SignedReading;
  /** The first second after `prev` (nextReadAt), once it has come. */
  const stampAfter = async (prev: number): Promise<number> => {
    const at = nextReadAt(prev, nowSec());
    const wait = at * 1000 - clock.nowMs();
    if (wait > 0) await clock.sleep(wait);
    return at;
  };
  let stopSentAt = 0;
  try {
    // START may be stamped in the same second as the pile's last reading, never before it.
    const startAt = Math.max(nowSec(), pile.lastReadAt);
    if (startAt * 1000 > clock.nowMs()) await clock.sleep(startAt * 1000 - clock.nowMs());
    pile.lastReadAt = startAt;
    const start = sign('START', startWh, startAt);
    try {
      const answer = await charger.call(openCall(tx, start, publicKey, clock.nowMs()));
      const o1 = opened(tx, answer);
      if (!o1.accepted)
        throw new OcppCallError('START_REJECTED', `the CSMS did not accept ${remote.sessionId}`);
      if (o1.transactionId !== undefined) tx.transactionId = o1.transactionId;
      const startValues = readingCall(tx, start, publicKey, clock.nowMs());
      if (startValues) await charger.call(startValues);
      await charger.status('Charging');
    } catch (e) {
      return fail('start', e);
    }
    let lastAt = startAt;
    const next = async (): Promise<{ at: number; meterWh: number }> => {
      await clock.sleep(stepMs);
      const at = await stampAfter(lastAt);
      lastAt = at;
      return { at, meterWh: meterAfter(startWh, powerW, o.speedup ?? 600, at - startAt, maxWh) };
    };
    for (let k = 0; k < (o.progressReadings ?? 1); k++) {
      const r = await next();
      try {
        await charger.call(readingCall(tx, sign('PROGRESS', r.meterWh, r.at), publicKey, clock.nowMs())!);
      } catch (e) {
        // A refused PROGRESS records nothing: the transaction goes on to its STOP all the same.
        fail('progress', e);
      }
    }
    const stop = await next();
    stopSentAt = clock.nowMs();
    try {
      await charger.call(closeCall(tx, sign('STOP', stop.meterWh, stop.at), publicKey, clock.nowMs()));
      outcome.latencyMs.stopAnswer = clock.nowMs() - stopSentAt;
    } catch (e) {
      return fail('stop', e);
    } finally {
      // The meter has run, whatever the ledger makes of it.
      pile.lastReadAt = stop.at;
      pile.meter.meterWh = stop.meterWh;
    }
    await charger.status('Available').catch(() => undefined);
  } finally {
    charger.occupy(false);
  }

  // --- the settlement, as the ledger shows it ---
  try {
    const s = await settledSession(o, remote.sessionId, stopSentAt, () => outcome.settlementReads++);
    outcome.settled = true;
    outcome.settledAtMs = clock.nowMs();
    outcome.latencyMs.stopToSettled = outcome.settledAtMs - stopSentAt;
    outcome.energyWh = s.settlement?.energyWh ?? 0;
    outcome.chargedFen = s.settlement?.chargedFen ?? 0;
  } catch (e) {
    return fail('settle', e);
  }
  return outcome;
}

/**
 * Reads the session through the REST session route until it is settled. The session may not be on the
 * gateway's peer yet (its START is still being committed); a transaction the gateway gave up on (the
 * ledger refused its START or STOP) is learned from the pile's live view, read now and then, so a refused
 * session is reported with the chaincode's code instead of waiting for the time-out.
 */
async function settledSession(
  o: ChargerSessionOptions,
  sessionId: string,
  sinceMs: number,
  counted: () => void,
): Promise<SessionView> {
  const clock = o.clock ?? realClock;
  const pileId = o.charger.pile.pileId;
  const limit = sinceMs + (o.settleTimeoutMs ?? 120_000);
  let nextLiveCheck = sinceMs + 2000;
  for (;;) {
    await clock.sleep(pollDelay(clock.nowMs() - sinceMs, o.pollMs ?? 100));
    try {
      counted();
      const s = queryAnswer('GetSession', await o.api.get(`/v1/piles/${pileId}/sessions/${sessionId}`));
      if (s.status === 'settled') return s;
    } catch (e) {
      // Not on the gateway's peer yet, or a read to make again (no answer, 5xx, rate limit).
      if (!(e instanceof GatewayRefusal && e.code === 'SESSION_NOT_FOUND') && retryKind(e) === 'final')
        throw e;
    }
    if (clock.nowMs() >= nextLiveCheck) {
      nextLiveCheck = clock.nowMs() + 2000;
      counted();
      const live = (await o.api.get(`/v1/piles/${pileId}/live`).catch(() => undefined)) as
        | {
            transactions?: Array<{
              sessionId?: string;
              state?: string;
              error?: { code: string; message: string };
            }>;
          }
        | undefined;
      const t = live?.transactions?.find((x) => x.sessionId === sessionId);
      if (t?.state === 'failed')
        throw new OcppCallError(
          t.error?.code ?? 'SETTLEMENT_FAILED',
          t.error?.message ?? 'the gateway gave up',
        );
    }
    if (clock.nowMs() > limit)
      throw new OcppCallError(
        'SETTLE_TIMEOUT',
        `session ${sessionId} not settled after ${limit - sinceMs} ms`,
      );
  }
}
