/**
 * The CSMS in each operator's gateway: chargers connect over OCPP-J (1.6 or 2.0.1, by WebSocket
 * sub-protocol) at `ws(s)://HOST:PORT/ocpp/{chargePointId}` on the gateway's own listener, on ocpp-rpc
 * with strict schema validation (a message that breaks the OCPP schema gets ocpp-rpc's CALLERROR:
 * FormatViolation, TypeConstraintViolation, OccurrenceConstraintViolation ...; an action we do not
 * handle gets NotImplemented). Security profiles 1 and 2: HTTP Basic with the charger's password
 * (chargers.ts), over TLS when the gateway's listener has it; profile 3: a client certificate verified
 * against `listen.tls.clientCaPath` whose CN is the charger id (chargers.ts). The charger id must map
 * to an active pile of this gateway's operator on the ledger (GetPile at the handshake), else the
 * handshake is refused.
 *
 * Sessions: a driver's signed authorization comes over REST (remoteStart); the charger is asked to start
 * with an id naming it (1.6 idTag / 2.0.1 idToken, also the session id the charger signs its readings
 * with). Its StartTransaction / TransactionEvent(Started), MeterValues / TransactionEvent(Updated) and
 * StopTransaction / TransactionEvent(Ended) carry signed readings (signedMeter.ts) that are checked here
 * (schema, this pile, this session, SM2 signature: a bad one is a CALLERROR and nothing is written),
 * stored, answered, and then sent to the ledger in order by the Settler. Messages of one charger are
 * taken one at a time in arrival order, so readings a charger queued offline keep their order.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { RPCServer, createRPCError } from 'ocpp-rpc';
import type RpcServerClient from 'ocpp-rpc/lib/server-client';
import type { Logger } from 'pino';
import { z } from 'zod';
import { evpayTransactions, idSchema, idTagDigest } from '@evpay/chaincode/client';
import type { Principal } from '../auth/credentials';
import type { GatewayConfig } from '../config';
import { networkIdOf, query, type OrgLedger } from '../fabric/orgLedger';
import { ApiError } from '../http/problems';
import type { Submitter } from '../http/submitter';
import { ChargerStore, type Refusal, type TlsFacts } from './chargers';
import { Settler } from './settler';
import {
  SignedMeterError,
  signedReadings16,
  localSessionId,
  signedReadings201,
  verifySignedReading,
  type MeterValue16,
  type MeterValue201,
  type SignedReading,
} from './signedMeter';
import {
  OcppTransactionStore,
  PROTOCOLS,
  sameReading,
  transactionKey,
  type OcppProtocol,
  type OcppTransaction,
  type SignedAuthorization,
  type StandingRef,
} from './transactions';

/** Seconds between heartbeats asked of chargers at boot. */
export const HEARTBEAT_SEC = 60;
/** How long the charger has to answer a remote start. */
const CALL_TIMEOUT_MS = 30_000;

// Optional in StartSession (a card's standing authorization may stand instead); required for a remote start.
const authorizationSchema = (
  (evpayTransactions.StartSession.args[0].schema as z.AnyZodObject).shape.authorization as z.ZodOptional<
    z.ZodType<SignedAuthorization>
  >
).unwrap();

export const remoteStartSchema = z
  .object({
    chargePointId: z.string().min(1).max(48),
    /** The driver's SM2-signed authorization, exactly as StartSession takes it. */
    authorization: authorizationSchema,
    /** 1.6 connectorId / 2.0.1 evseId (default 1). */
    connectorId: z.number().int().min(1).max(100).default(1),
  })
  .strict();
export type RemoteStartRequest = z.input<typeof remoteStartSchema>;

export interface RemoteStartAnswer {
  chargePointId: string;
  pileId: string;
  sessionId: string;
  remoteStartId: number;
  protocol: OcppProtocol;
  status: 'Accepted';
}

interface ConnectorStatus {
  status: string;
  errorCode?: string;
  at: string;
}

/** A pile's live status as its charger last told it (in memory: a restart forgets it until the next boot). */
export interface LiveStatus {
  pileId: string;
  chargePointId: string;
  protocol: OcppProtocol;
  connected: boolean;
  connectedAt: string;
  lastSeenAt: string;
  boot?: { vendor: string; model: string; firmwareVersion?: string };
  connectors: Record<string, ConnectorStatus>;
}

/** What changed a pile's live status (the event stream's `change`; ocpp/liveEvents.ts streams them). */
export const LIVE_CHANGES = ['connected', 'disconnected', 'boot', 'status', 'heartbeat'] as const;
export type LiveChangeKind = (typeof LIVE_CHANGES)[number];
export interface LiveChange {
  change: LiveChangeKind;
  /** The whole status after the change (a copy): status is state, a client needs no history. */
  status: LiveStatus;
}

export interface LiveView extends LiveStatus {
  transactions: Array<
    Pick<OcppTransaction, 'transactionId' | 'sessionId' | 'state' | 'settlement' | 'error'> & {
      stopToSettledMs?: number;
    }
  >;
}

interface Connection {
  client: RpcServerClient;
  pileId: string;
  publicKey: string;
  protocol: OcppProtocol;
}

type Params = Record<string, unknown>;
type Handler = (c: Connection, params: Params) => Promise<Params>;

const nowIso = (): string => new Date().toISOString();
const rpcError = (code: string, message: string): Error => createRPCError(code, message) as Error;

/** A 2.0.1 TransactionEvent(Started) opens a transaction only with the charger's signed START reading. */
function requireStart201(readings: readonly SignedReading[]): void {
  if (!readings.some((r) => r.kind === 'START'))
    throw rpcError(
      'OccurrenceConstraintViolation',
      'TransactionEvent(Started) must carry the signed START reading',
    );
}

/**
 * What the TLS layer established for a handshake's socket. The listener asks for a client certificate
 * without refusing connections that have none (REST clients and password chargers share it), so whether
 * the certificate verified against the chargers' CA is `authorized`, decided per charger in chargers.ts.
 */
function tlsFacts(socket: unknown): TlsFacts {
  if (!(socket instanceof TLSSocket)) return { encrypted: false, authorized: false };
  const cn = socket.getPeerCertificate()?.subject?.CN as unknown;
  return {
    encrypted: true,
    authorized: socket.authorized,
    ...(typeof cn === 'string' ? { subjectCN: cn } : {}),
  };
}

/** A card's standing authorization as the ledger answers GetStandingByTag (chaincode standing.ts). */
interface StandingView {
  standingId: string;
  walletId: string;
  idTagSm3: string;
  capFen: number;
  totalCapFen: number;
  maxSessions: number;
  status: 'active' | 'revoked';
  expiresAt: number;
  sessions: number;
  spentFen: number;
  open?: { pileId: string; sessionId: string };
}

/**
 * CARD STATUS RULE (written once): what the CSMS answers a charger for an RFID card that is not a pending
 * remote start, from the card's standing authorization at this operator, in the order the chaincode
 * checks it at StartSession (standing.ts, STANDING RULE): none (or an idTag that cannot be a card id)
 * Invalid; revoked Blocked; past expiresAt Expired; a session open on it ConcurrentTx; no sessions or
 * money left on it, or less in the wallet than the session would hold, Blocked (1.6) / NoCredit
 * (2.0.1); else Accepted. The ledger checks it all again when the START arrives.
 */
type CardStatus = 'Accepted' | 'Invalid' | 'Blocked' | 'Expired' | 'ConcurrentTx' | 'NoCredit';

/** A session id that fits a 1.6 idTag (20 characters) and the chaincode's id rule. */
const newSessionId = (): string =>
  `o${Date.now().toString(36)}${randomBytes(4).toString('hex')}`.slice(0, 20);

export class Csms {
  readonly chargers: ChargerStore;
  readonly store: OcppTransactionStore;
  readonly settler: Settler;
  private readonly rpc: RPCServer;
  private readonly connections = new Map<string, Connection>();
  private readonly live = new Map<string, LiveStatus>();
  private readonly lanes = new Map<string, Promise<unknown>>();
  private readonly liveListeners = new Set<(c: LiveChange) => void>();

  constructor(
    private readonly config: GatewayConfig,
    private readonly ledger: OrgLedger,
    submitter: Submitter,
    private readonly logger: Logger,
    onRefusedAfterAnswer?: (kind: string, code: string) => void,
  ) {
    this.chargers = new ChargerStore(config.dataDir);
    this.store = new OcppTransactionStore(config.dataDir);
    this.settler = new Settler(this.store, submitter, ledger, logger, undefined, onRefusedAfterAnswer);
    this.rpc = new RPCServer({
      protocols: [...PROTOCOLS],
      strictMode: true,
      callTimeoutMs: CALL_TIMEOUT_MS,
      pingIntervalMs: 30_000,
    });
    this.rpc.auth((accept, reject, handshake) => {
      const tls = tlsFacts(handshake.request.socket);
      this.admit(handshake.endpoint, handshake.identity, handshake.password, tls).then(
        (session) => ('status' in session ? reject(session.status, session.reason) : accept(session)),
        (err: unknown) => {
          this.logger.error({ err, chargePointId: handshake.identity }, 'OCPP handshake failed');
          reject(503, 'Service Unavailable');
        },
      );
    });
    this.rpc.on('client', (client: RpcServerClient) => this.attach(client));
    this.settler.resume();
  }

  /** The charger's pile if it may connect; otherwise why not. */
  private async admit(
    endpoint: string,
    chargePointId: string,
    password: Buffer | undefined,
    tls: TlsFacts,
  ): Promise<{ pileId: string; publicKey: string } | Refusal> {
    if (endpoint !== '/ocpp') return { status: 403, reason: 'not an OCPP endpoint' };
    const auth = await this.chargers.authenticate(chargePointId, password, tls);
    if ('status' in auth) {
      this.logger.warn(
        { chargePointId, withPassword: password !== undefined, ...tls, why: auth.reason },
        'OCPP handshake refused',
      );
      return { status: auth.status, reason: auth.status === 401 ? 'Unauthorized' : 'Forbidden' };
    }
    const charger = auth.charger;
    const pile = await this.pile(charger.pileId);
    if (!pile || pile.operator !== this.config.mspId || pile.status !== 'active') {
      this.logger.warn(
        { chargePointId, pileId: charger.pileId, pile },
        'OCPP charger has no active pile here',
      );
      return { status: 403, reason: 'no active pile of this operator' };
    }
    return { pileId: pile.pileId, publicKey: pile.publicKey };
  }

  private async pile(
    pileId: string,
  ): Promise<{ pileId: string; operator: string; status: string; publicKey: string } | undefined> {
    try {
      return await query<{ pileId: string; operator: string; status: string; publicKey: string }>(
        this.ledger,
        'GetPile',
        [pileId],
      );
    } catch (e) {
      if ((e as { error?: { code?: string } }).error?.code === 'PILE_NOT_FOUND') return undefined;
      throw e;
    }
  }

  private networkId(): Promise<string> {
    return networkIdOf(this.ledger);
  }

  /** Takes an HTTP upgrade on /ocpp/...; false when the path is not ours. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!path.startsWith('/ocpp/')) return false;
    void this.rpc.handleUpgrade(req, socket as never, head);
    return true;
  }

  private attach(client: RpcServerClient): void {
    const session = client.session as { pileId: string; publicKey: string };
    const protocol = client.protocol as OcppProtocol;
    const chargePointId = client.identity as string;
    const conn: Connection = { client, pileId: session.pileId, publicKey: session.publicKey, protocol };
    this.connections
      .get(chargePointId)
      ?.client.close({ code: 1000, reason: 'replaced by a new connection' })
      .catch(() => undefined);
    this.connections.set(chargePointId, conn);
    const previous = this.live.get(session.pileId);
    this.live.set(session.pileId, {
      pileId: session.pileId,
      chargePointId,
      protocol,
      connected: true,
      connectedAt: nowIso(),
      lastSeenAt: nowIso(),
      connectors: previous?.connectors ?? {},
      ...(previous?.boot ? { boot: previous.boot } : {}),
    });
    this.changed(session.pileId, 'connected');
    this.logger.info({ chargePointId, pileId: session.pileId, protocol }, 'OCPP charger connected');
    client.on('close', () => {
      if (this.connections.get(chargePointId) === conn) {
        this.connections.delete(chargePointId);
        const l = this.live.get(session.pileId);
        if (l) {
          l.connected = false;
          this.changed(session.pileId, 'disconnected');
        }
      }
      this.logger.info({ chargePointId }, 'OCPP charger disconnected');
    });
    client.on('strictValidationFailure', (e: { method?: string; outbound?: boolean; error?: Error }) =>
      this.logger.warn(
        { chargePointId, method: e.method, outbound: e.outbound, err: e.error },
        'OCPP schema violation',
      ),
    );
    const handlers = protocol === 'ocpp1.6' ? this.handlers16() : this.handlers201();
    for (const [method, fn] of Object.entries(handlers))
      client.handle(method, async ({ params }) => {
        const l = this.live.get(conn.pileId);
        if (l) l.lastSeenAt = nowIso();
        // One message of a charger at a time, in arrival order (an offline queue keeps its order).
        const prev = this.lanes.get(chargePointId) ?? Promise.resolve();
        const run = prev.then(() => fn(conn, (params ?? {}) as Params));
        const lane = run.catch(() => undefined);
        this.lanes.set(chargePointId, lane);
        try {
          return await run;
        } catch (e) {
          if (e instanceof SignedMeterError) throw rpcError(e.ocppCode, e.message);
          if (e instanceof Error && 'rpcErrorCode' in e) throw e;
          this.logger.error({ err: e, chargePointId, method }, 'OCPP handler failed');
          throw rpcError('InternalError', 'the CSMS could not take this message; send it again');
        } finally {
          if (this.lanes.get(chargePointId) === lane) this.lanes.delete(chargePointId);
        }
      });
  }

  private boot(c: Connection, boot: LiveStatus['boot']): Params {
    const l = this.live.get(c.pileId);
    if (l && boot) l.boot = boot;
    this.changed(c.pileId, 'boot');
    return { status: 'Accepted', currentTime: nowIso(), interval: HEARTBEAT_SEC };
  }

  private status(c: Connection, connector: string, s: ConnectorStatus): Params {
    const l = this.live.get(c.pileId);
    if (l) l.connectors[connector] = s;
    this.changed(c.pileId, 'status');
    return {};
  }

  private heartbeat(c: Connection): Params {
    this.changed(c.pileId, 'heartbeat');
    return { currentTime: nowIso() };
  }

  /** Tells the live-status listeners (event streams) the pile's status after a change. */
  private changed(pileId: string, change: LiveChangeKind): void {
    const l = this.live.get(pileId);
    if (!l || this.liveListeners.size === 0) return;
    const status = structuredClone(l);
    for (const fn of this.liveListeners)
      try {
        fn({ change, status });
      } catch (err) {
        this.logger.warn({ err, pileId }, 'a live-status listener failed');
      }
  }

  /** The signed readings of a transaction's message, checked before anything is stored or answered. */
  private async check(c: Connection, t: OcppTransaction, readings: readonly SignedReading[]): Promise<void> {
    const network = await this.networkId();
    let hasStart = t.ops.some((o) => o.reading.kind === 'START');
    let hasStop = t.ops.some((o) => o.reading.kind === 'STOP');
    for (const r of readings) {
      if (r.pileId !== c.pileId)
        throw rpcError(
          'SecurityError',
          `the reading is for pile ${r.pileId}; this charger is pile ${c.pileId}`,
        );
      if (r.sessionId !== t.sessionId)
        throw rpcError(
          'PropertyConstraintViolation',
          `the reading is for session ${r.sessionId}; transaction ${t.transactionId} is session ${t.sessionId}`,
        );
      if (!verifySignedReading(network, c.publicKey, r))
        throw rpcError(
          'SecurityError',
          `the ${r.kind} reading's SM2 signature does not verify with pile ${c.pileId}'s key`,
        );
      const again = t.ops.some((o) => sameReading(o.reading, r));
      if (again) continue;
      if (r.kind === 'START') {
        if (hasStart)
          throw rpcError('PropertyConstraintViolation', 'the transaction already has its START reading');
        if (t.meterStart !== undefined && r.meterWh !== t.meterStart)
          throw rpcError(
            'PropertyConstraintViolation',
            `the signed START says ${r.meterWh} Wh, meterStart ${t.meterStart}`,
          );
        hasStart = true;
      } else {
        if (!hasStart)
          throw rpcError('PropertyConstraintViolation', 'the signed START reading must come first');
        if (hasStop) throw rpcError('PropertyConstraintViolation', 'the transaction is already stopped');
        if (r.kind === 'STOP') hasStop = true;
      }
    }
  }

  private accept(
    t: OcppTransaction,
    readings: readonly SignedReading[],
    also?: (t: OcppTransaction) => void,
  ): void {
    const key = transactionKey(t.chargePointId, t.transactionId);
    this.store.enqueue(key, readings, also);
    this.settler.kick(key);
  }

  // --- OCPP 1.6 ---

  private handlers16(): Record<string, Handler> {
    return {
      BootNotification: async (c, p) =>
        this.boot(c, {
          vendor: String(p.chargePointVendor),
          model: String(p.chargePointModel),
          ...(typeof p.firmwareVersion === 'string' ? { firmwareVersion: p.firmwareVersion } : {}),
        }),
      Heartbeat: async (c) => this.heartbeat(c),
      StatusNotification: async (c, p) =>
        this.status(c, String(p.connectorId), {
          status: String(p.status),
          errorCode: String(p.errorCode),
          at: typeof p.timestamp === 'string' ? p.timestamp : nowIso(),
        }),
      Authorize: async (c, p) => {
        const idTag = String(p.idTag);
        const known =
          this.store.pendingFor(c.client.identity as string, idTag) ??
          this.store.bySession(c.client.identity as string, idTag);
        if (known) return { idTagInfo: { status: 'Accepted' } };
        const card = await this.card(idTag, 'ocpp1.6');
        return { idTagInfo: card.info };
      },
      StartTransaction: async (c, p) => {
        const cp = c.client.identity as string;
        const idTag = String(p.idTag);
        const existing = this.store.bySession(cp, idTag);
        if (existing)
          return { transactionId: Number(existing.transactionId), idTagInfo: { status: 'Accepted' } };
        const pending = this.store.pendingFor(cp, idTag);
        if (!pending) return this.startForCard16(c, idTag, Number(p.meterStart));
        const id = this.store.nextId();
        this.store.open(pending, 'ocpp1.6', String(id), Number(p.meterStart));
        return { transactionId: id, idTagInfo: { status: 'Accepted' } };
      },
      MeterValues: async (c, p) => {
        const readings = signedReadings16((p.meterValue ?? []) as MeterValue16[]);
        if (readings.length === 0) return {};
        if (p.transactionId === undefined)
          throw rpcError('OccurrenceConstraintViolation', 'signed readings need the transactionId');
        const t = this.transaction(c, p.transactionId as number);
        if (readings.some((r) => r.kind === 'STOP'))
          throw rpcError(
            'PropertyConstraintViolation',
            'the STOP reading goes in StopTransaction.transactionData',
          );
        await this.check(c, t, readings);
        this.accept(t, readings);
        return {};
      },
      StopTransaction: async (c, p) => {
        const t = this.transaction(c, p.transactionId as number);
        if (t.stopAnswer) return t.stopAnswer;
        const readings = signedReadings16((p.transactionData ?? []) as MeterValue16[]);
        const stop = readings.filter((r) => r.kind === 'STOP');
        if (stop.length !== 1)
          throw rpcError(
            'OccurrenceConstraintViolation',
            'transactionData must hold exactly one signed STOP reading',
          );
        if (stop[0]?.meterWh !== p.meterStop)
          throw rpcError(
            'PropertyConstraintViolation',
            `the signed STOP says ${stop[0]?.meterWh} Wh, meterStop ${String(p.meterStop)}`,
          );
        await this.check(c, t, readings);
        const answer = { idTagInfo: { status: 'Accepted' } };
        this.accept(t, readings, (x) => {
          // A transaction whose START the ledger refused stays failed with that refusal.
          if (x.state !== 'failed') x.state = 'stopping';
          x.stopAnswer = answer;
          x.stopReceivedAt = Date.now();
        });
        return answer;
      },
    };
  }

  private transaction(c: Connection, transactionId: string | number): OcppTransaction {
    const t = this.store.get(transactionKey(c.client.identity as string, transactionId));
    if (!t) throw rpcError('PropertyConstraintViolation', `unknown transactionId ${String(transactionId)}`);
    return t;
  }

  // --- OCPP 2.0.1 ---

  private handlers201(): Record<string, Handler> {
    return {
      BootNotification: async (c, p) => {
        const cs = (p.chargingStation ?? {}) as {
          vendorName?: string;
          model?: string;
          firmwareVersion?: string;
        };
        return this.boot(c, {
          vendor: String(cs.vendorName),
          model: String(cs.model),
          ...(cs.firmwareVersion ? { firmwareVersion: cs.firmwareVersion } : {}),
        });
      },
      Heartbeat: async (c) => this.heartbeat(c),
      StatusNotification: async (c, p) =>
        this.status(c, `${String(p.evseId)}/${String(p.connectorId)}`, {
          status: String(p.connectorStatus),
          at: String(p.timestamp),
        }),
      Authorize: async (c, p) => {
        const token = String((p.idToken as { idToken?: string } | undefined)?.idToken);
        const cp = c.client.identity as string;
        const known = this.store.pendingFor(cp, token) ?? this.store.bySession(cp, token);
        if (known) return { idTokenInfo: { status: 'Accepted' } };
        const card = await this.card(token, 'ocpp2.0.1');
        return { idTokenInfo: card.info };
      },
      MeterValues: async (_c, p) => {
        // Outside a transaction there is no session to record a reading on: energy samples must be signed
        // (signedReadings201 refuses unsigned ones) and are otherwise only acknowledged.
        signedReadings201((p.meterValue ?? []) as MeterValue201[]);
        return {};
      },
      TransactionEvent: async (c, p) => this.transactionEvent(c, p),
    };
  }

  private async transactionEvent(c: Connection, p: Params): Promise<Params> {
    const cp = c.client.identity as string;
    const info = p.transactionInfo as { transactionId: string; remoteStartId?: number };
    const seqNo = p.seqNo as number;
    const key = transactionKey(cp, info.transactionId);
    const readings = signedReadings201((p.meterValue ?? []) as MeterValue201[]);
    let t = this.store.get(key);
    if (p.eventType === 'Started' && !t) {
      const token = (p.idToken as { idToken?: string } | undefined)?.idToken;
      const pending = this.store.pendingFor(cp, token, info.remoteStartId);
      if (!pending) return this.startForCard201(c, token, info.transactionId, readings, seqNo);
      requireStart201(readings);
      // Checked against the pending start before the transaction is opened: a bad START opens nothing.
      const draft: OcppTransaction = {
        chargePointId: cp,
        transactionId: info.transactionId,
        protocol: 'ocpp2.0.1',
        pileId: pending.pileId,
        sessionId: pending.sessionId,
        authorization: pending.authorization,
        state: 'open',
        ops: [],
        createdAt: Date.now(),
      };
      await this.check(c, draft, readings);
      t = this.store.open(pending, 'ocpp2.0.1', info.transactionId);
      this.accept(t, readings, (x) => (x.seqNo = seqNo));
      return { idTokenInfo: { status: 'Accepted' } };
    }
    if (!t) throw rpcError('PropertyConstraintViolation', `unknown transactionId ${info.transactionId}`);
    if (p.eventType === 'Ended' && t.stopAnswer) return t.stopAnswer;
    // A message sent again (no answer reached the charger): taken once.
    if (t.seqNo !== undefined && seqNo <= t.seqNo)
      return p.eventType === 'Started' ? { idTokenInfo: { status: 'Accepted' } } : {};
    if (p.eventType === 'Ended') {
      if (readings.filter((r) => r.kind === 'STOP').length !== 1)
        throw rpcError(
          'OccurrenceConstraintViolation',
          'TransactionEvent(Ended) must carry exactly one signed STOP reading',
        );
      await this.check(c, t, readings);
      const answer = {};
      this.accept(t, readings, (x) => {
        x.seqNo = seqNo;
        if (x.state !== 'failed') x.state = 'stopping';
        x.stopAnswer = answer;
        x.stopReceivedAt = Date.now();
      });
      return answer;
    }
    if (readings.some((r) => r.kind === 'STOP'))
      throw rpcError('PropertyConstraintViolation', 'the STOP reading goes in TransactionEvent(Ended)');
    await this.check(c, t, readings);
    this.accept(t, readings, (x) => (x.seqNo = seqNo));
    return {};
  }

  // --- RFID cards with a standing authorization (no remote start) ---

  /** The card's status (CARD STATUS RULE), with the standing authorization when Accepted. */
  private async card(
    idTag: string | undefined,
    protocol: OcppProtocol,
  ): Promise<{ info: { status: CardStatus } & Params; standing?: StandingRef }> {
    if (idTag === undefined || !/^[!-~]{1,36}$/.test(idTag)) return { info: { status: 'Invalid' } };
    const idTagSm3 = idTagDigest(await this.networkId(), idTag);
    let s: StandingView;
    try {
      s = await query<StandingView>(this.ledger, 'GetStandingByTag', [
        JSON.stringify({ operator: this.config.mspId, idTagSm3 }),
      ]);
    } catch (e) {
      if ((e as { error?: { code?: string } }).error?.code === 'STANDING_NOT_FOUND')
        return { info: { status: 'Invalid' } };
      throw e;
    }
    const expiryDate = new Date(s.expiresAt * 1000).toISOString();
    const status = async (): Promise<CardStatus> => {
      if (s.status === 'revoked') return 'Blocked';
      if (Date.now() / 1000 > s.expiresAt) return 'Expired';
      if (s.open) return 'ConcurrentTx';
      const hold = Math.min(s.capFen, s.totalCapFen - s.spentFen);
      const noCredit = protocol === 'ocpp1.6' ? 'Blocked' : 'NoCredit';
      if (s.sessions >= s.maxSessions || hold < 1) return noCredit;
      const { wallet } = await query<{ wallet: { balanceFen: number; heldFen: number } }>(
        this.ledger,
        'GetWallet',
        [s.walletId],
      );
      return wallet.balanceFen - wallet.heldFen < hold ? noCredit : 'Accepted';
    };
    const st = await status();
    // 1.6 IdTagInfo.expiryDate; 2.0.1 IdTokenInfo.cacheExpiryDateTime: how long a charger may cache it.
    const until = protocol === 'ocpp1.6' ? { expiryDate } : { cacheExpiryDateTime: expiryDate };
    return {
      info: { status: st, ...(st === 'Blocked' ? {} : until) },
      ...(st === 'Accepted' ? { standing: { standingId: s.standingId, idTagSm3 } } : {}),
    };
  }

  /** 1.6 StartTransaction for a card the charger authorized itself (LOCAL SESSION ID RULE). */
  private async startForCard16(c: Connection, idTag: string, meterStart: number): Promise<Params> {
    const cp = c.client.identity as string;
    const card = await this.card(idTag, 'ocpp1.6');
    if (!card.standing) return { transactionId: 0, idTagInfo: card.info };
    // The same StartTransaction again (its answer was lost): the same transaction.
    const again = this.store.unstartedLocal(cp, card.standing.idTagSm3, meterStart);
    if (again) return { transactionId: Number(again.transactionId), idTagInfo: card.info };
    const id = this.store.nextId();
    this.store.openLocal({
      chargePointId: cp,
      transactionId: String(id),
      protocol: 'ocpp1.6',
      pileId: c.pileId,
      sessionId: localSessionId(id),
      standing: card.standing,
      meterStart,
    });
    this.logger.info({ chargePointId: cp, transactionId: id }, 'OCPP 1.6 charge started on a card');
    return { transactionId: id, idTagInfo: card.info };
  }

  /** 2.0.1 TransactionEvent(Started) for a card the charger authorized itself (LOCAL SESSION ID RULE). */
  private async startForCard201(
    c: Connection,
    token: string | undefined,
    transactionId: string,
    readings: readonly SignedReading[],
    seqNo: number,
  ): Promise<Params> {
    const cp = c.client.identity as string;
    const sessionId = localSessionId(transactionId);
    if (!idSchema.safeParse(sessionId).success)
      throw rpcError('PropertyConstraintViolation', `transactionId ${transactionId} cannot name a session`);
    const card = await this.card(token, 'ocpp2.0.1');
    if (!card.standing) return { idTokenInfo: card.info };
    requireStart201(readings);
    const opening = {
      chargePointId: cp,
      transactionId,
      protocol: 'ocpp2.0.1' as const,
      pileId: c.pileId,
      sessionId,
      standing: card.standing,
    };
    // Checked before the transaction is opened: a bad START opens nothing.
    await this.check(c, { ...opening, state: 'open', ops: [], createdAt: Date.now() }, readings);
    const t = this.store.openLocal(opening);
    this.accept(t, readings, (x) => (x.seqNo = seqNo));
    return { idTokenInfo: card.info };
  }

  // --- REST ---

  /** Asks a connected charger to start a session on a driver's signed authorization. */
  async remoteStart(input: unknown, principal: Principal): Promise<RemoteStartAnswer> {
    const parsed = remoteStartSchema.safeParse(input);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new ApiError(
        i?.code === 'unrecognized_keys' ? 'UNKNOWN_FIELD' : 'VALIDATION_FAILED',
        `${i?.path.join('.') || 'body'}: ${i?.message ?? 'invalid'}`,
        {
          issues: parsed.error.issues.map((x) => ({
            path: x.path.join('.'),
            message: x.message,
            code: x.code,
          })),
        },
      );
    }
    const { chargePointId, authorization, connectorId } = parsed.data;
    const charger = this.chargers.get(chargePointId);
    if (!charger) throw new ApiError('CHARGER_NOT_FOUND', `no charger ${chargePointId} at this gateway`);
    if (principal.role === 'pile-backend' && principal.piles && !principal.piles.includes(charger.pileId))
      throw new ApiError('PILE_NOT_IN_SCOPE', `this credential does not act for pile ${charger.pileId}`, {
        pileId: charger.pileId,
      });
    if (authorization.pileId !== charger.pileId)
      throw new ApiError(
        'VALIDATION_FAILED',
        `the authorization is for pile ${authorization.pileId}; charger ${chargePointId} is pile ${charger.pileId}`,
      );
    const conn = this.connections.get(chargePointId);
    if (!conn) throw new ApiError('CHARGER_NOT_CONNECTED', `charger ${chargePointId} is not connected`);
    const sessionId = newSessionId();
    const remoteStartId = this.store.nextId();
    this.store.addPending({
      sessionId,
      chargePointId,
      pileId: charger.pileId,
      remoteStartId,
      authorization,
      createdAt: Date.now(),
    });
    let status: unknown;
    try {
      const reply = (await (conn.protocol === 'ocpp1.6'
        ? conn.client.call('RemoteStartTransaction', { idTag: sessionId, connectorId })
        : conn.client.call('RequestStartTransaction', {
            idToken: { idToken: sessionId, type: 'Central' },
            remoteStartId,
            evseId: connectorId,
          }))) as { status?: unknown };
      status = reply.status;
    } catch (e) {
      this.store.dropPending(sessionId);
      throw new ApiError(
        'CHARGER_NOT_CONNECTED',
        `charger ${chargePointId} did not answer: ${(e as Error).message}`,
      );
    }
    if (status !== 'Accepted') {
      this.store.dropPending(sessionId);
      throw new ApiError('CHARGER_REJECTED', `charger ${chargePointId} answered ${String(status)}`, {
        status,
      });
    }
    return {
      chargePointId,
      pileId: charger.pileId,
      sessionId,
      remoteStartId,
      protocol: conn.protocol,
      status: 'Accepted',
    };
  }

  /** The pile's live status and its charger's recent transactions, or undefined if it never connected. */
  liveView(pileId: string): LiveView | undefined {
    const l = this.live.get(pileId);
    if (!l) return undefined;
    return {
      ...l,
      transactions: this.store.ofCharger(l.chargePointId).map((t) => ({
        transactionId: t.transactionId,
        sessionId: t.sessionId,
        state: t.state,
        ...(t.settlement ? { settlement: t.settlement } : {}),
        ...(t.error ? { error: t.error } : {}),
        ...(t.stopReceivedAt && t.settledAt ? { stopToSettledMs: t.settledAt - t.stopReceivedAt } : {}),
      })),
    };
  }

  /** Every pile's live status now (copies), for an event stream's first message per pile. */
  liveStatuses(): LiveStatus[] {
    return [...this.live.values()].map((l) => structuredClone(l));
  }

  /** Calls `fn` with each live-status change from now on; answers the function that stops it. */
  onLiveChange(fn: (c: LiveChange) => void): () => void {
    this.liveListeners.add(fn);
    return () => void this.liveListeners.delete(fn);
  }

  async close(): Promise<void> {
    await this.rpc.close({ code: 1001, reason: 'gateway stopping', force: true });
    await this.settler.stop();
  }
}
