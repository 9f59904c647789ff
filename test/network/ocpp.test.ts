/**
 * The OCPP bridge on the running network: ocpp-rpc clients act as a 1.6J and a 2.0.1 charger of
 * operator A's piles, against A's gateway (ws://.../ocpp/{id}), signing their readings with the piles'
 * SM2 keys in the EVPAY-SM2-SM3-v1 encoding. Handshakes are refused without the password, for an unknown
 * charger and for a pile that is not registered; a driver's signed authorization starts a session
 * remotely; START, PROGRESS and STOP readings settle it on the ledger at the tariff's price; a repeated
 * stop charges nothing more; bad messages get CALLERRORs and write nothing; a 2.0.1 charger's offline
 * queue, sent after a gateway restart, settles in order. A charger of another operator (registered at
 * Beta's gateway for Beta's pile, or listed at Alpha's for Beta's pile) is refused at Alpha's handshake.
 * The charger simulator (gateway-api/src/sim) runs two chargers, a 1.6J and a 2.0.1, of two sessions each,
 * playing their drivers, and every session settles; the README's "Chargers (OCPP)" block runs as printed.
 * Every check reads the ledger back over REST.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RPCClient } from 'ocpp-rpc';
import type { RPC_ClientOptions } from 'ocpp-rpc/lib/client';
import type { Session } from '../../chaincode/src/domain/sessions';
import type { Wallet } from '../../chaincode/src/domain/wallets';
import { Driver, PileDevice } from '../../chaincode/test/support/fixtures';
import { committedOnEveryPeer } from '../../network/tools/client';
import { ChargerStore } from '../../gateway-api/src/ocpp/chargers';
import { meterValue16, meterValue201, type SignedReading } from '../../gateway-api/src/ocpp/signedMeter';
import { GatewayClient } from '../../gateway-api/src/client/gatewayClient';
import { runChargerSimulation } from '../../gateway-api/src/sim/chargerRun';
import { sm2GenerateKeyPair } from '../../chaincode/src/crypto';
import { ROOT } from './networkScripts';
import { marginsPaid } from './support/margins';
import { net, startNode, stopNode, waitFor } from './support/fabric';
import {
  client,
  credential,
  gatewayDataDir,
  gatewaysReady,
  orgByMsp,
  type Client,
  type Reply,
} from './support/gateway';

jest.setTimeout(300_000);

const [A, B] = net.orgs.filter((o) => o.role === 'operator').map((o) => o.mspId) as [string, string];
const RUN = Date.now().toString(36).toUpperCase();
const nowSec = (): number => Math.floor(Date.now() / 1000);
const wsUrl = (mspId = A): string => `${orgByMsp(mspId).gateway.url.replace(/^http/, 'ws')}/ocpp`;
const PASSWORD = 'a-charger-password-0123';

type Committed<T> = { txId: string; blockNumber: number; result: T };
type WalletView = { wallet: Wallet };

async function ok<T>(r: Promise<Reply>): Promise<Committed<T>> {
  const reply = await r;
  if (reply.status !== 200) throw new Error(`expected 200, got ${reply.status}: ${reply.text}`);
  const body = reply.body as Committed<T>;
  await committedOnEveryPeer(net, BigInt(body.blockNumber));
  return body;
}

/** An ocpp-rpc charger; not strict itself, so it can send what a broken charger would. */
function charger(
  identity: string,
  protocol: 'ocpp1.6' | 'ocpp2.0.1',
  password?: string,
  mspId = A,
): RPCClient {
  return new RPCClient({
    endpoint: wsUrl(mspId),
    identity,
    protocols: [protocol],
    reconnect: false,
    strictMode: false,
    ...(password === undefined ? {} : { password }),
  } as Partial<RPC_ClientOptions> as RPC_ClientOptions);
}

/** The OCPP error code a call was refused with. */
async function callError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { rpcErrorCode?: string }).rpcErrorCode ?? String(e);
  }
  throw new Error('the call was answered, not refused');
}

let admin: Client, piles: Client, app: Client;
const driver = new Driver();
const pile16 = new PileDevice(`${A}.O16${RUN}`);
const pile201 = new PileDevice(`${A}.O21${RUN}`);
const cp16 = `cp16-${RUN}`;
const cp201 = `cp201-${RUN}`;
const chargers = (): ChargerStore => new ChargerStore(gatewayDataDir(orgByMsp(A)));
const connected: RPCClient[] = [];

const balance = async (): Promise<number> =>
  (await app.get<WalletView>(`/v1/wallets/${driver.walletId}`)).body.wallet.balanceFen;
const sessionOf = async (p: PileDevice, sessionId: string): Promise<Reply<Session>> =>
  piles.get<Session>(`/v1/piles/${p.pileId}/sessions/${sessionId}`);
const settled = (p: PileDevice, sessionId: string, limitMs = 60_000): Promise<Session> =>
  waitFor(
    `session ${sessionId} settled`,
    async () => {
      const s = await sessionOf(p, sessionId);
      return s.status === 200 && s.body.status === 'settled' ? s.body : undefined;
    },
    limitMs,
  );

beforeAll(async () => {
  await gatewaysReady();
  await marginsPaid();
  admin = client(A, await credential(A, 'operator-admin', 'ocpp ops'));
  piles = client(A, await credential(A, 'pile-backend', 'ocpp piles'));
  app = client(A, await credential(A, 'driver-app', 'ocpp app'));
  const network = (await app.get<{ consortium: { networkId: string } }>('/v1/consortium')).body.consortium
    .networkId;
  driver.network = network;
  for (const p of [pile16, pile201]) {
    p.network = network;
    await ok(admin.post('/v1/piles', { localId: p.localId, publicKey: p.keys.publicKeyHex }));
  }
  await ok(app.post('/v1/wallets', { publicKey: driver.keys.publicKeyHex }));
  await ok(
    admin.post('/v1/top-ups', { walletId: driver.walletId, amountFen: 20_000, reference: `ocpp-${RUN}` }),
  );
  await chargers().add({ chargePointId: cp16, pileId: pile16.pileId, password: PASSWORD });
  await chargers().add({ chargePointId: cp201, pileId: pile201.pileId, password: PASSWORD });
});

afterAll(async () => {
  await Promise.all(connected.map((c) => c.close({ force: true }).catch(() => undefined)));
});

describe('handshake', () => {
  test('refused without a password, with a wrong one, for an unknown charger and for an unregistered pile', async () => {
    await expect(charger(cp16, 'ocpp1.6').connect()).rejects.toThrow();
    await expect(charger(cp16, 'ocpp1.6', 'not-the-password-at-all').connect()).rejects.toThrow();
    await expect(charger(`nobody-${RUN}`, 'ocpp1.6', PASSWORD).connect()).rejects.toThrow();
    await chargers().add({ chargePointId: `ghost-${RUN}`, pileId: `${A}.GHOST${RUN}`, password: PASSWORD });
    await expect(charger(`ghost-${RUN}`, 'ocpp1.6', PASSWORD).connect()).rejects.toThrow();
  });

  test("a charger of another operator: Beta's charger is refused at Alpha's gateway, and so is an entry at Alpha for Beta's pile", async () => {
    const betaPile = new PileDevice(`${B}.OB${RUN}`);
    const betaAdmin = client(B, await credential(B, 'operator-admin', 'ocpp ops B'));
    await ok(
      betaAdmin.post('/v1/piles', { localId: betaPile.localId, publicKey: betaPile.keys.publicKeyHex }),
    );
    const cpB = `cpB-${RUN}`;
    await new ChargerStore(gatewayDataDir(orgByMsp(B))).add({
      chargePointId: cpB,
      pileId: betaPile.pileId,
      password: PASSWORD,
    });
    // At its own operator's gateway the charger is welcome ...
    const home = charger(cpB, 'ocpp2.0.1', PASSWORD, B);
    await home.connect();
    await home.close({ force: true });
    // ... at Alpha's it is unknown (Alpha never listed it) ...
    await expect(charger(cpB, 'ocpp2.0.1', PASSWORD, A).connect()).rejects.toMatchObject({ code: 401 });
    // ... and an entry at Alpha naming Beta's pile is refused: the pile is not Alpha's (GetPile's operator).
    await chargers().add({ chargePointId: `cpAB-${RUN}`, pileId: betaPile.pileId, password: PASSWORD });
    await expect(charger(`cpAB-${RUN}`, 'ocpp1.6', PASSWORD, A).connect()).rejects.toMatchObject({
      code: 403,
    });
    expect(
      (await betaAdmin.get<{ activeSession?: string }>(`/v1/piles/${betaPile.pileId}`)).body.activeSession,
    ).toBeUndefined();
  });
});

describe('an OCPP 1.6J charger', () => {
  const cp = charger(cp16, 'ocpp1.6', PASSWORD);
  let idTag = '';
  let transactionId = 0;
  let stopAnswer: unknown;
  const readAt: number[] = [];

  test('boots, reports its status, and is live over REST', async () => {
    cp.handle('RemoteStartTransaction', async ({ params }) => {
      idTag = String((params as { idTag: string }).idTag);
      return { status: 'Accepted' };
    });
    await cp.connect();
    connected.push(cp);
    expect(cp.protocol).toBe('ocpp1.6');
    const boot = (await cp.call('BootNotification', {
      chargePointVendor: 'EvPay',
      chargePointModel: 'Sim16',
    })) as {
      status: string;
    };
    expect(boot.status).toBe('Accepted');
    expect(
      await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' }),
    ).toEqual({});
    expect(await cp.call('Heartbeat', {})).toHaveProperty('currentTime');
    const live = await piles.get<{ connected: boolean; connectors: Record<string, { status: string }> }>(
      `/v1/piles/${pile16.pileId}/live`,
    );
    expect(live.body).toMatchObject({ connected: true, protocol: 'ocpp1.6', boot: { model: 'Sim16' } });
    expect(live.body.connectors['1']?.status).toBe('Available');
  });

  test('schema violations and unknown actions answer CALLERRORs', async () => {
    expect(
      await callError(
        cp.call('StatusNotification', { connectorId: 'one', errorCode: 'NoError', status: 'Available' }),
      ),
    ).toMatch(/TypeConstraintViolation|FormatViolation/);
    expect(await callError(cp.call('StatusNotification', { connectorId: 1 }))).toMatch(
      /OccurrenceConstraintViolation|OccurenceConstraintViolation|FormatViolation/,
    );
    expect(await callError(cp.call('DataTransfer', { vendorId: 'x' }))).toBe('NotImplemented');
  });

  test("the driver's signed authorization starts the charger remotely; START and PROGRESS reach the ledger", async () => {
    const t = nowSec();
    const started = await piles.post<{ sessionId: string; status: string }>('/v1/ocpp/remote-start', {
      chargePointId: cp16,
      authorization: driver.authorize(pile16.pileId, 5_000, t + 600, `ocpp16-${RUN}`),
    });
    expect(started.status).toBe(200);
    expect(started.body.sessionId).toBe(idTag);
    const tx = (await cp.call('StartTransaction', {
      connectorId: 1,
      idTag,
      meterStart: 0,
      timestamp: new Date().toISOString(),
    })) as { transactionId: number; idTagInfo: { status: string } };
    expect(tx.idTagInfo.status).toBe('Accepted');
    transactionId = tx.transactionId;
    readAt.push(t);
    const start = pile16.reading('START', idTag, 0, t) as SignedReading;
    expect(
      await cp.call('MeterValues', { connectorId: 1, transactionId, meterValue: [meterValue16(start)] }),
    ).toEqual({});
    await waitFor(
      'the session open on the ledger',
      async () => (await sessionOf(pile16, idTag)).status === 200,
    );
    await waitFor('the next second', async () => nowSec() > t);
    const progress = pile16.reading('PROGRESS', idTag, 5_000, nowSec()) as SignedReading;
    expect(
      await cp.call('MeterValues', { connectorId: 1, transactionId, meterValue: [meterValue16(progress)] }),
    ).toEqual({});
    await waitFor(
      'the PROGRESS reading recorded',
      async () => (await sessionOf(pile16, idTag)).body.last?.meterWh === 5_000,
    );
  });

  test('a bad signature, another pile, an unknown transaction and unsigned values are refused, nothing written', async () => {
    const at = nowSec() + 1;
    await waitFor('the next second', async () => nowSec() >= at);
    const forged = pile16.reading('PROGRESS', idTag, 6_000, at, pile201.keys) as SignedReading;
    expect(
      await callError(
        cp.call('MeterValues', { connectorId: 1, transactionId, meterValue: [meterValue16(forged)] }),
      ),
    ).toBe('SecurityError');
    const other = pile201.reading('PROGRESS', idTag, 6_000, at) as SignedReading;
    expect(
      await callError(
        cp.call('MeterValues', { connectorId: 1, transactionId, meterValue: [meterValue16(other)] }),
      ),
    ).toBe('SecurityError');
    const fine = pile16.reading('PROGRESS', idTag, 6_000, at) as SignedReading;
    expect(
      await callError(
        cp.call('MeterValues', { connectorId: 1, transactionId: 999_999, meterValue: [meterValue16(fine)] }),
      ),
    ).toBe('PropertyConstraintViolation');
    const unsigned = { timestamp: new Date().toISOString(), sampledValue: [{ value: '6000', unit: 'Wh' }] };
    expect(
      await callError(cp.call('MeterValues', { connectorId: 1, transactionId, meterValue: [unsigned] })),
    ).toBe('PropertyConstraintViolation');
    // The signed value must agree with the plain register value beside it.
    const lying = meterValue16(fine);
    (lying.sampledValue[0] as { value: string }).value = '9999';
    expect(
      await callError(cp.call('MeterValues', { connectorId: 1, transactionId, meterValue: [lying] })),
    ).toBe('PropertyConstraintViolation');
    expect((await sessionOf(pile16, idTag)).body.last?.meterWh).toBe(5_000);
  });

  test('StopTransaction is answered at once and the session settles at the tariff price; a repeat charges nothing', async () => {
    const before = await balance();
    const at = nowSec() + 1;
    await waitFor('the next second', async () => nowSec() >= at);
    const stop = pile16.reading('STOP', idTag, 20_000, at) as SignedReading;
    const msg = {
      transactionId,
      meterStop: 20_000,
      timestamp: new Date().toISOString(),
      transactionData: [meterValue16(stop)],
    };
    const sent = Date.now();
    stopAnswer = await cp.call('StopTransaction', msg);
    const answeredMs = Date.now() - sent;
    expect(stopAnswer).toEqual({ idTagInfo: { status: 'Accepted' } });
    const s = await settled(pile16, idTag);
    const settledMs = Date.now() - sent;
    expect(s.settlement).toMatchObject({ energyWh: 20_000, chargedFen: 3_000 });
    process.stdout.write(
      `OCPP 1.6 StopTransaction answered in ${answeredMs} ms, settled on the ledger ${settledMs} ms after it\n`,
    );
    expect(await cp.call('StopTransaction', msg)).toEqual(stopAnswer);
    const live = await piles.get<{
      transactions: Array<{ sessionId: string; state: string; stopToSettledMs?: number }>;
    }>(`/v1/piles/${pile16.pileId}/live`);
    const mine = live.body.transactions.find((x) => x.sessionId === idTag);
    expect(mine).toMatchObject({ state: 'settled' });
    process.stdout.write(`gateway's own stop-to-settled: ${mine?.stopToSettledMs} ms\n`);
    expect(await balance()).toBe(before - 3_000);
  });
});

describe('an OCPP 2.0.1 charger', () => {
  let cp = charger(cp201, 'ocpp2.0.1', PASSWORD);
  let token = '';
  let remoteStartId = 0;
  const txId = `T-${RUN}`;
  let seqNo = 0;
  const event = (eventType: string, extra: Record<string, unknown>): Record<string, unknown> => ({
    eventType,
    timestamp: new Date().toISOString(),
    triggerReason:
      eventType === 'Started'
        ? 'RemoteStart'
        : eventType === 'Ended'
          ? 'StopAuthorized'
          : 'MeterValuePeriodic',
    seqNo: seqNo++,
    transactionInfo: { transactionId: txId, ...(eventType === 'Started' ? { remoteStartId } : {}) },
    evse: { id: 1, connectorId: 1 },
    ...extra,
  });
  const onRequestStart = async ({
    params,
  }: {
    params?: Record<string, unknown>;
  }): Promise<Record<string, unknown>> => {
    const p = params as { idToken: { idToken: string }; remoteStartId: number };
    token = p.idToken.idToken;
    remoteStartId = p.remoteStartId;
    return { status: 'Accepted' };
  };

  test('boots and starts remotely; TransactionEvent(Started) and (Updated) reach the ledger', async () => {
    cp.handle('RequestStartTransaction', onRequestStart);
    await cp.connect();
    connected.push(cp);
    expect(cp.protocol).toBe('ocpp2.0.1');
    const boot = (await cp.call('BootNotification', {
      chargingStation: { model: 'Sim201', vendorName: 'EvPay' },
      reason: 'PowerUp',
    })) as { status: string };
    expect(boot.status).toBe('Accepted');
    await cp.call('StatusNotification', {
      timestamp: new Date().toISOString(),
      connectorStatus: 'Available',
      evseId: 1,
      connectorId: 1,
    });
    const t = nowSec();
    const started = await app.post<{ sessionId: string }>('/v1/ocpp/remote-start', {
      chargePointId: cp201,
      authorization: driver.authorize(pile201.pileId, 5_000, t + 600, `ocpp201-${RUN}`),
    });
    expect(started.status).toBe(200);
    expect(started.body.sessionId).toBe(token);
    const start = pile201.reading('START', token, 1_000, t) as SignedReading;
    const answer = (await cp.call(
      'TransactionEvent',
      event('Started', {
        idToken: { idToken: token, type: 'Central' },
        meterValue: [meterValue201(start, pile201.keys.publicKeyHex)],
      }),
    )) as { idTokenInfo: { status: string } };
    expect(answer.idTokenInfo.status).toBe('Accepted');
    await waitFor(
      'the session open on the ledger',
      async () => (await sessionOf(pile201, token)).status === 200,
    );
  });

  test('a gateway restart mid-session: the offline queue, sent after it, settles once and in order', async () => {
    const node = orgByMsp(A).gateway.node;
    await stopNode(node);
    await waitFor('the charger sees the gateway gone', async () => cp.state === RPCClient.CLOSED);
    // Queued while offline: two PROGRESS readings and the STOP, stamped as they happened.
    const t0 = nowSec() + 1;
    await waitFor('the next second', async () => nowSec() >= t0 + 2);
    const queued = [
      event('Updated', {
        offline: true,
        meterValue: [
          meterValue201(
            pile201.reading('PROGRESS', token, 4_000, t0) as SignedReading,
            pile201.keys.publicKeyHex,
          ),
        ],
      }),
      event('Updated', {
        offline: true,
        meterValue: [
          meterValue201(
            pile201.reading('PROGRESS', token, 8_000, t0 + 1) as SignedReading,
            pile201.keys.publicKeyHex,
          ),
        ],
      }),
      event('Ended', {
        offline: true,
        triggerReason: 'EVDeparted',
        transactionInfo: { transactionId: txId, stoppedReason: 'EVDisconnected' },
        meterValue: [
          meterValue201(
            pile201.reading('STOP', token, 21_000, t0 + 2) as SignedReading,
            pile201.keys.publicKeyHex,
          ),
        ],
      }),
    ];
    await startNode(node);
    await gatewaysReady();
    cp = charger(cp201, 'ocpp2.0.1', PASSWORD);
    cp.handle('RequestStartTransaction', onRequestStart);
    await cp.connect();
    connected.push(cp);
    const before = await balance();
    const sent = Date.now();
    const answers: unknown[] = [];
    for (const m of queued) answers.push(await cp.call('TransactionEvent', m));
    expect(answers).toEqual([{}, {}, {}]);
    const s = await settled(pile201, token);
    process.stdout.write(
      `OCPP 2.0.1 offline queue after a restart: settled ${Date.now() - sent} ms after it was sent\n`,
    );
    // 20 kWh from 1,000 to 21,000 Wh at the tests' single price: 3,000 fen.
    expect(s.settlement).toMatchObject({ energyWh: 20_000, chargedFen: 3_000 });
    expect(s.last?.meterWh).toBe(8_000);
    // The Ended sent again (its answer lost): the same answer, nothing more charged.
    expect(await cp.call('TransactionEvent', queued[2])).toEqual({});
    expect(await balance()).toBe(before - 3_000);
    const after = await sessionOf(pile201, token);
    expect(after.body.settlement?.chargedFen).toBe(3_000);
  });
});

describe('the charger simulator (gateway-api/src/sim)', () => {
  test('two chargers, a 1.6J and a 2.0.1, two sessions each, playing their drivers: every session settles', async () => {
    const specs = (['1.6', '2.0.1'] as const).map((ocpp, i) => ({
      chargePointId: `sim${i}-${RUN}`,
      password: PASSWORD,
      ocpp,
      pileId: `${A}.SIMC${i}${RUN}`,
      pileKeys: sm2GenerateKeyPair(),
    }));
    for (const c of specs) {
      await ok(
        admin.post('/v1/piles', { localId: c.pileId.split('.')[1], publicKey: c.pileKeys.publicKeyHex }),
      );
      await chargers().add({ chargePointId: c.chargePointId, pileId: c.pileId, password: PASSWORD });
    }
    const at = (apiKey: string): GatewayClient =>
      new GatewayClient({ url: orgByMsp(A).gateway.url, apiKey, timeoutMs: 120_000 });
    const appKey = await credential(A, 'driver-app', 'sim app');
    const summary = await runChargerSimulation({
      gatewayUrl: orgByMsp(A).gateway.url,
      chargers: specs,
      api: at(appKey),
      driverApi: at(appKey),
      topUpApi: at(await credential(A, 'operator-admin', 'sim desk')),
      sessions: 2,
      capFen: 5_000,
      seed: 13,
    });
    process.stdout.write(`charger simulator: ${JSON.stringify(summary)}\n`);
    expect(summary).toMatchObject({
      sessions: { planned: 4, settled: 4, failed: 0, skipped: 0 },
      failures: {},
    });
    // One price at every hour in the tests' network: 150 fen per kWh, rounded once per session.
    expect(Math.abs(summary.chargedFen - (summary.energyWh * 150) / 1000)).toBeLessThanOrEqual(2);
    expect(summary.latencyMs.stopToSettled.count).toBe(4);
    // The ledger agrees, session by session (read through the REST route, by pile).
    for (const c of specs) {
      const sessions = await piles.get<Array<{ status: string; settlement?: { chargedFen: number } }>>(
        `/v1/piles/${c.pileId}/sessions`,
      );
      expect(sessions.body.map((x) => x.status)).toEqual(['settled', 'settled']);
    }
  });
});

describe('README: Chargers (OCPP)', () => {
  /** The first fenced bash block after the README's heading, from the paragraph that names the simulator. */
  function chargerBlock(): string {
    const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = md.indexOf('**A charger charging a car, end to end.**', md.indexOf('\n## Chargers (OCPP)'));
    const open = md.indexOf('```bash\n', start);
    const close = md.indexOf('\n```', open + 1);
    if (start < 0 || open < 0 || close < 0) throw new Error('no bash block in "Chargers (OCPP)"');
    return md.slice(open + 8, close);
  }

  test("the block runs as printed on the tests' network: its ports, run folder and network id", async () => {
    const alpha = orgByMsp(A);
    const offset = Number(new URL(alpha.gateway.url).port) - 8081;
    // Only what differs between the networks, and the charger and pile ids one network may see once.
    const script = chargerBlock()
      .replace(/127\.0\.0\.1:(\d{4})\b/g, (_, port: string) => `127.0.0.1:${Number(port) + offset}`)
      .replace(/run\/local\//g, `${net.runDir}/`)
      .replace(/gateway-api\/bin\//g, `${ROOT}/gateway-api/bin/`)
      .replace(/evpay-local/g, net.networkId)
      .replace(/\bCP1\b/g, `CP1R${RUN}`)
      .replace(/npx evpay /g, 'evpay ');
    expect(script).not.toMatch(/:808\d|run\/local|npx/);
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('EVPAY_')) delete env[k];
    const bin = join(ROOT, 'gateway-api', 'bin', 'evpay.js');
    const dir = mkdtempSync(join(tmpdir(), 'evpay-ocpp-readme-'));
    try {
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(
          'bash',
          [
            '-c',
            ['set -euo pipefail', `evpay() { "${process.execPath}" "${bin}" "$@"; }`, script].join('\n'),
          ],
          { cwd: dir, env },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      expect([r.code, r.stderr]).toEqual([0, '']);
      // The two simulator summaries are the last two JSON documents printed.
      const docs = r.stdout.split(/\n(?=\{\n)/).slice(-2);
      const summaries = docs.map(
        (d) =>
          JSON.parse(d) as {
            chargers: Array<{ ocpp: string }>;
            sessions: Record<string, number>;
            chargedFen: number;
            energyWh: number;
          },
      );
      expect(summaries.map((x) => [x.chargers[0]?.ocpp, x.sessions])).toEqual([
        ['2.0.1', { planned: 2, settled: 2, failed: 0, skipped: 0 }],
        ['1.6', { planned: 1, settled: 1, failed: 0, skipped: 0 }],
      ]);
      for (const x of summaries) expect(x.chargedFen).toBeGreaterThan(0);
      const sessions = await piles.get<Array<{ status: string }>>(`/v1/piles/${A}.CP1R${RUN}/sessions`);
      expect(sessions.body.map((x) => x.status)).toEqual(['settled', 'settled', 'settled']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
