/**
 * The OCPP charger simulator without a network. Its calls, built pure, pass OCPP's own JSON schemas
 * (ocpp-rpc's strict validators for 1.6 and 2.0.1) and the gateway reads back exactly the readings the
 * pile signed. Then whole sessions: a 1.6J and a 2.0.1 charger, each playing its driver, against the
 * gateway's real CSMS (ocpp/csms.ts, on a local port) whose ledger is the chaincode's own rules in memory:
 * every session the simulator runs settles at the tariff's price, and it reads each settlement back
 * through the REST session route. The summary is computed from the outcomes alone.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import standardValidators from 'ocpp-rpc/lib/standard-validators';
import { sm2GenerateKeyPair } from '@evpay/chaincode/client';
import type { TxContext } from '../../chaincode/src/domain/context';
import { DomainError } from '../../chaincode/src/domain/errors';
import { getPile, registerPile } from '../../chaincode/src/domain/piles';
import { getSession, recordReading, startSession, stopSession } from '../../chaincode/src/domain/sessions';
import { getWallet, openWallet, topUp } from '../../chaincode/src/domain/wallets';
import { bootstrap, client, NETWORK, OPS, TARIFF } from '../../chaincode/test/support/fixtures';
import { MemoryLedger } from '../../chaincode/test/support/ledger';
import { GatewayClient, type FetchLike } from '../src/client/gatewayClient';
import type { GatewayConfig } from '../src/config';
import type { OrgLedger } from '../src/fabric/orgLedger';
import { ApiError } from '../src/http/problems';
import type { Submitter } from '../src/http/submitter';
import type { PreparedCall } from '../src/http/transactions';
import { Csms } from '../src/ocpp/csms';
import { signedReadings16, signedReadings201, type SignedReading } from '../src/ocpp/signedMeter';
import {
  ocppEndpoint,
  pollDelay,
  runChargerSessions,
  SimCharger,
  type ChargerSessionOutcome,
} from '../src/sim/charger';
import { ChargerSetupError, pileFromLedger, summarizeCharging } from '../src/sim/chargerRun';
import { SimDriver, SimPile } from '../src/sim/devices';
import { dearestFenPerKwh, seededRng } from '../src/sim/meter';
import {
  bootNotification,
  closeCall,
  openCall,
  opened,
  readingCall,
  remoteStartOf,
  statusNotification,
  subprotocolOf,
  type OcppCall,
  type OcppVersion,
  type SimTransaction,
} from '../src/sim/ocppMessages';

const A = OPS.A.mspId;
const T = 1_800_000_000;
const validator = (v: OcppVersion) => {
  const found = standardValidators.find((x) => x.subprotocol === subprotocolOf(v));
  if (!found) throw new Error(`no validator for ${v}`);
  return found;
};
/** Throws ocpp-rpc's own error (FormatViolation, ...) when the call breaks OCPP's schema. */
const valid = (v: OcppVersion, c: OcppCall): OcppCall => {
  validator(v).validate(`urn:${c.method}.req`, c.params);
  return c;
};

describe('the OCPP calls a simulated charger makes', () => {
  const keys = sm2GenerateKeyPair();
  const pile = new SimPile(NETWORK, `${A}.CP1`, { ratingW: 22_000, meterWh: 1_000 }, keys);
  const read = (kind: SignedReading['kind'], wh: number, at: number): SignedReading =>
    pile.reading(kind, 'o1sess', wh, at) as SignedReading;

  test.each(['1.6', '2.0.1'] as const)(
    '%s: every call passes the OCPP schema; the gateway reads back exactly the signed readings',
    (v) => {
      valid(v, bootNotification(v));
      for (const s of ['Available', 'Preparing', 'Charging', 'Finishing'] as const)
        valid(v, statusNotification(v, s, T * 1000));
      const remote = remoteStartOf(
        v,
        v === '1.6'
          ? { idTag: 'o1sess', connectorId: 1 }
          : { idToken: { idToken: 'o1sess', type: 'Central' }, remoteStartId: 7, evseId: 1 },
      );
      expect(remote).toEqual(
        v === '1.6'
          ? { sessionId: 'o1sess', connectorId: 1 }
          : { sessionId: 'o1sess', remoteStartId: 7, connectorId: 1 },
      );
      const tx: SimTransaction = {
        version: v,
        start: remote,
        seqNo: 0,
        ...(v === '2.0.1' ? { transactionId: 'o1sess' } : {}),
      };
      const start = read('START', 1_000, T);
      const progress = read('PROGRESS', 4_000, T + 1);
      const stop = read('STOP', 9_000, T + 2);
      const open = valid(v, openCall(tx, start, keys.publicKeyHex, T * 1000));
      const answer =
        v === '1.6'
          ? { transactionId: 42, idTagInfo: { status: 'Accepted' } }
          : { idTokenInfo: { status: 'Accepted' } };
      validator(v).validate(`urn:${open.method}.conf`, answer);
      const o = opened(tx, answer);
      expect(o.accepted).toBe(true);
      if (o.transactionId !== undefined) tx.transactionId = o.transactionId;
      const startValues = readingCall(tx, start, keys.publicKeyHex, T * 1000);
      const calls = [
        open,
        ...(startValues ? [valid(v, startValues)] : []),
        valid(v, readingCall(tx, progress, keys.publicKeyHex, T * 1000 + 1000)!),
        valid(v, closeCall(tx, stop, keys.publicKeyHex, T * 1000 + 2000)),
      ];
      // What the CSMS takes out of each call, as it does (signedMeter.ts).
      const carried = calls.flatMap((c) => {
        const p = c.params as { meterValue?: unknown[]; transactionData?: unknown[] };
        if (v === '1.6')
          return signedReadings16(
            (p.meterValue ?? p.transactionData ?? []) as Parameters<typeof signedReadings16>[0],
          );
        return signedReadings201((p.meterValue ?? []) as Parameters<typeof signedReadings201>[0]);
      });
      expect(carried).toEqual([start, progress, stop]);
      if (v === '1.6') {
        expect(calls.map((c) => c.method)).toEqual([
          'StartTransaction',
          'MeterValues',
          'MeterValues',
          'StopTransaction',
        ]);
        expect(calls[0]?.params).toMatchObject({ idTag: 'o1sess', meterStart: 1_000 });
        expect(calls[3]?.params).toMatchObject({ transactionId: 42, meterStop: 9_000 });
      } else {
        const events = calls.map((c) => c.params as { eventType: string; seqNo: number });
        expect(events.map((e) => [e.eventType, e.seqNo])).toEqual([
          ['Started', 0],
          ['Updated', 1],
          ['Ended', 2],
        ]);
        expect(calls[0]?.params).toMatchObject({
          idToken: { idToken: 'o1sess' },
          transactionInfo: { transactionId: 'o1sess', remoteStartId: 7 },
        });
      }
    },
  );

  test('a STOP only closes, a 2.0.1 transaction needs its id; the endpoint and the polling pace', () => {
    const tx: SimTransaction = { version: '2.0.1', start: { sessionId: 's', connectorId: 1 }, seqNo: 0 };
    expect(() => readingCall(tx, read('STOP', 1, T), keys.publicKeyHex, 0)).toThrow(RangeError);
    expect(() => closeCall(tx, read('PROGRESS', 1, T), keys.publicKeyHex, 0)).toThrow(RangeError);
    expect(() => openCall(tx, read('START', 1, T), keys.publicKeyHex, 0)).toThrow(RangeError);
    expect(opened({ ...tx, version: '1.6' }, { transactionId: 0, idTagInfo: { status: 'Invalid' } })).toEqual(
      {
        accepted: false,
        transactionId: 0,
      },
    );
    expect(ocppEndpoint('http://127.0.0.1:8081')).toBe('ws://127.0.0.1:8081/ocpp');
    expect(ocppEndpoint('https://gw.example/')).toBe('wss://gw.example/ocpp');
    expect(() => ocppEndpoint('ftp://x')).toThrow();
    expect([0, 500, 1_500, 4_000, 60_000].map((ms) => pollDelay(ms, 100))).toEqual([
      100, 100, 150, 400, 1000,
    ]);
  });
});

test('the summary: settled sessions, money, failures by code, latency percentiles', () => {
  const base = { chargePointId: 'CP1', pileId: `${A}.CP1`, version: '1.6' as const };
  const outcomes: ChargerSessionOutcome[] = [
    {
      ...base,
      sessionId: 'a',
      settled: true,
      failures: [],
      energyWh: 1000,
      chargedFen: 150,
      latencyMs: { stopAnswer: 20, stopToSettled: 300 },
      settlementReads: 3,
    },
    {
      ...base,
      sessionId: 'b',
      settled: true,
      failures: [],
      energyWh: 2000,
      chargedFen: 300,
      latencyMs: { stopAnswer: 40, stopToSettled: 500 },
      settlementReads: 4,
    },
    {
      ...base,
      settled: false,
      failures: [{ step: 'remote-start', code: 'CHARGER_NOT_CONNECTED', message: 'x' }],
      energyWh: 0,
      chargedFen: 0,
      latencyMs: {},
      settlementReads: 0,
    },
  ];
  const s = summarizeCharging(outcomes, {
    network: NETWORK,
    chargers: [{ chargePointId: 'CP1', pileId: `${A}.CP1`, ocpp: '1.6' }],
    planned: 4,
    runMs: 4_000,
  });
  expect(s).toMatchObject({
    sessions: { planned: 4, settled: 2, failed: 1, skipped: 1 },
    energyWh: 3000,
    chargedFen: 450,
    failures: { CHARGER_NOT_CONNECTED: 1 },
    runSec: 4,
    sessionsPerSec: 0.5,
    latencyMs: { stopToSettled: { count: 2, p50: 300, p95: 500, max: 500 }, remoteStart: { count: 0 } },
  });
});

describe("chargers against the gateway's CSMS, the ledger in memory", () => {
  let dir: string;
  let ledger: MemoryLedger;
  let csms: Csms;
  /** Readings the ledger refused after the charger was answered (the CSMS's alert callback). */
  const alerts: string[] = [];
  let server: Server;
  let endpoint: string;
  const nowSec = (): number => Math.floor(Date.now() / 1000);
  const json = (status: number, body: unknown): Response =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

  /** The REST routes the simulator calls, answered by the CSMS and the chaincode's rules. */
  const fetch: FetchLike = async (url, init) => {
    const path = new URL(url).pathname;
    const parts = path.split('/');
    try {
      if (init.method === 'POST' && path === '/v1/ocpp/remote-start')
        return json(
          200,
          await csms.remoteStart(JSON.parse(String(init.body)), {
            id: 'app',
            name: 'app',
            role: 'driver-app',
          }),
        );
      if (init.method === 'GET' && parts[4] === 'sessions') {
        const s = await ledger.evaluate(client(A), (ctx) => getSession(ctx, parts[3]!, parts[5]!), nowSec());
        return json(200, JSON.parse(JSON.stringify(s)));
      }
      if (init.method === 'GET' && parts[4] === 'live') return json(200, csms.liveView(parts[3]!) ?? {});
      if (init.method === 'GET' && parts.length === 4 && parts[2] === 'piles') {
        const p = await ledger.evaluate(client(A), (ctx) => getPile(ctx, parts[3]!), nowSec());
        return json(200, JSON.parse(JSON.stringify(p)));
      }
    } catch (e) {
      if (e instanceof DomainError) return json(404, { code: e.code, message: e.message });
      if (e instanceof ApiError) return json(e.status, e.body());
      throw e;
    }
    return json(404, { code: 'ROUTE_NOT_FOUND', message: path });
  };
  const api = new GatewayClient({ url: 'http://gw.test', apiKey: 'evk_x', fetch });

  const TX: Record<string, (ctx: TxContext, body: unknown) => Promise<unknown>> = {
    StartSession: startSession,
    RecordReading: recordReading,
    StopSession: stopSession,
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'evpay-chargersim-'));
    ledger = new MemoryLedger();
    await bootstrap(ledger);
    const orgLedger = {
      evaluate: async (_identity: string, fn: string, args: string[]): Promise<Uint8Array> => {
        const v =
          fn === 'GetConsortium'
            ? { consortium: { networkId: NETWORK } }
            : await ledger.evaluate(client(A), (ctx) => getPile(ctx, args[0]!), nowSec());
        return Buffer.from(JSON.stringify(v));
      },
    } as unknown as OrgLedger;
    let txs = 0;
    const submitter = {
      submitOnce: async (call: PreparedCall) => {
        const run = TX[call.tx];
        if (!run) throw new Error(`no ${call.tx}`);
        try {
          const body = JSON.parse(call.args[0]!) as unknown;
          const result = await ledger.submit(client(A), (ctx) => run(ctx, body), nowSec());
          return {
            status: 200,
            body: { txId: `t${++txs}`, blockNumber: txs, result: JSON.parse(JSON.stringify(result)) },
          };
        } catch (e) {
          if (e instanceof DomainError) return { status: 409, body: { code: e.code, message: e.message } };
          // A read conflict between the two chargers' commits: written nothing, sent again.
          return { status: 409, body: { code: 'TRANSACTION_INVALIDATED', message: String(e) } };
        }
      },
    } as unknown as Submitter;
    csms = new Csms(
      { dataDir: dir, mspId: A } as GatewayConfig,
      orgLedger,
      submitter,
      pino({ level: 'silent' }),
      (kind, code) => alerts.push(`${kind} ${code}`),
    );
    server = createServer((_req, res) => res.writeHead(404).end());
    server.on('upgrade', (req, socket, head) => {
      if (!csms.handleUpgrade(req, socket, head as Buffer)) socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = ocppEndpoint(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

  afterAll(async () => {
    await csms.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A registered pile, its charger allowed at the CSMS, and a funded driver. */
  async function setup(localId: string, version: OcppVersion, fundFen: number) {
    const keys = sm2GenerateKeyPair();
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId, publicKey: keys.publicKeyHex, meterWh: 5_000 }),
    );
    const driver = new SimDriver(NETWORK, `unit-${localId}`);
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: driver.publicKey }));
    await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: driver.walletId, amountFen: fundFen, reference: localId }),
    );
    const pileId = `${A}.${localId}`;
    const { password } = await csms.chargers.add({ chargePointId: `cp-${localId}`, pileId });
    const pile = await pileFromLedger(api, NETWORK, pileId, keys, seededRng(1));
    const charger = new SimCharger({ endpoint, chargePointId: `cp-${localId}`, password, version, pile });
    return { keys, driver, pile, charger };
  }

  test('a 1.6J and a 2.0.1 charger each play the driver: every session settles at the tariff price', async () => {
    const cap = 3_000;
    const worlds = await Promise.all([setup('SIM16', '1.6', 2 * cap), setup('SIM201', '2.0.1', 2 * cap)]);
    expect(worlds[0].pile.meter.meterWh).toBe(5_000);
    try {
      await Promise.all(worlds.map((w) => w.charger.connect()));
      const outcomes = (
        await Promise.all(
          worlds.map((w) =>
            runChargerSessions(
              {
                charger: w.charger,
                api,
                driver: { driver: w.driver, api },
                capFen: cap,
                dearestFenPerKwh: dearestFenPerKwh([TARIFF]),
                progressReadings: 1,
                rng: seededRng(5),
              },
              2,
            ),
          ),
        )
      ).flat();
      expect(outcomes.map((o) => [o.version, o.settled, o.failures])).toEqual([
        ['1.6', true, []],
        ['1.6', true, []],
        ['2.0.1', true, []],
        ['2.0.1', true, []],
      ]);
      for (const o of outcomes) {
        expect(o.energyWh).toBeGreaterThan(0);
        // The tariff's flat price at this hour or another one: the settlement is the chaincode's, read back.
        const s = await ledger.evaluate(
          client(A),
          (ctx) => getSession(ctx, o.pileId, o.sessionId!),
          nowSec(),
        );
        expect(s.settlement).toMatchObject({ energyWh: o.energyWh, chargedFen: o.chargedFen });
        expect(o.chargedFen).toBeLessThanOrEqual(cap);
        expect(o.latencyMs.stopToSettled).toBeGreaterThanOrEqual(0);
      }
      for (const w of worlds) {
        const wallet = await ledger.evaluate(client(A), (ctx) => getWallet(ctx, w.driver.walletId), nowSec());
        const charged = outcomes
          .filter((o) => o.pileId === w.pile.pileId)
          .reduce((a, o) => a + o.chargedFen, 0);
        expect(wallet).toMatchObject({ balanceFen: 2 * cap - charged, heldFen: 0 });
      }
      // The CSMS saw the chargers live and settled their transactions.
      expect(csms.liveView(worlds[1].pile.pileId)).toMatchObject({ connected: true, protocol: 'ocpp2.0.1' });
    } finally {
      await Promise.all(worlds.map((w) => w.charger.close()));
    }
  }, 60_000);

  test("a wrong password is refused at the handshake; a key that is not the pile's is refused before", async () => {
    const w = await setup('SIMPW', '1.6', 1_000);
    const wrong = new SimCharger({ ...w.charger.config, password: 'not-the-password-1234' });
    await expect(wrong.connect()).rejects.toMatchObject({ code: 'HANDSHAKE_REFUSED' });
    await expect(
      pileFromLedger(api, NETWORK, w.pile.pileId, sm2GenerateKeyPair(), seededRng(1)),
    ).rejects.toBeInstanceOf(ChargerSetupError);
  });

  test('without a remote start the charger waits, then reports it; a start the ledger refuses is reported by its code', async () => {
    const w = await setup('SIMNF', '2.0.1', 100);
    await w.charger.connect();
    try {
      const opts = { charger: w.charger, api, capFen: 5_000, dearestFenPerKwh: 150, waitStartMs: 300 };
      const waited = await runChargerSessions(opts, 3);
      expect(waited).toHaveLength(1);
      expect(waited[0]?.failures).toEqual([
        expect.objectContaining({ step: 'remote-start', code: 'NO_REMOTE_START' }),
      ]);
      // The driver's wallet holds 100 fen, the cap is 5,000: the CSMS acknowledges, the ledger refuses.
      const poor = await runChargerSessions(
        { ...opts, driver: { driver: w.driver, api }, progressReadings: 0, settleTimeoutMs: 20_000 },
        1,
      );
      expect(poor[0]).toMatchObject({
        settled: false,
        failures: [{ step: 'settle', code: 'INSUFFICIENT_FUNDS' }],
      });
      // The charger was answered before the ledger refused: the gateway raises the alert (its metric).
      expect(alerts).toContain('START INSUFFICIENT_FUNDS');
    } finally {
      await w.charger.close();
    }
  }, 30_000);
});
