/**
 * The REST gateways on the running test network (one per organization, started by up.sh): the story
 * across two operators over HTTP, the authorization rules, idempotent retries (also across a gateway
 * restart) and the event stream's reconnect. Every call is plain HTTP, as pile backends, driver apps,
 * operator admins and auditors make it.
 */
import type { Session } from '../../chaincode/src/domain/sessions';
import type { Wallet } from '../../chaincode/src/domain/wallets';
import { Driver, PileDevice } from '../../chaincode/test/support/fixtures';
import { committedOnEveryPeer } from '../../network/tools/client';
import { net, startNode, stopNode, waitFor } from './support/fabric';
import {
  client,
  credential,
  gatewaysReady,
  revokeCredential,
  type Client,
  type Reply,
} from './support/gateway';
import { marginsPaid } from './support/margins';

jest.setTimeout(180_000);

const operators = net.orgs.filter((o) => o.role === 'operator');
const [A, B] = operators.map((o) => o.mspId) as [string, string];
const AUDITOR = net.orgs.find((o) => o.role === 'auditor')?.mspId ?? 'AuditorMSP';
const RUN = Date.now().toString(36).toUpperCase();
const nowSec = (): number => Math.floor(Date.now() / 1000);

type Committed<T> = { txId: string; blockNumber: number; result: T };
type WalletView = { wallet: Wallet; beans: Array<{ issuer: string; beans: number }> };

/** A committed POST: 200, and every peer has its block before the next step reads elsewhere. */
async function ok<T>(r: Promise<Reply>): Promise<Committed<T>> {
  const reply = await r;
  if (reply.status !== 200) throw new Error(`expected 200, got ${reply.status}: ${reply.text}`);
  const body = reply.body as Committed<T>;
  await committedOnEveryPeer(net, BigInt(body.blockNumber));
  return body;
}

let adminA: Client, adminB: Client, pilesA: Client, pilesB: Client, driverApp: Client, auditor: Client;
const driver = new Driver();
driver.network = 'evpay-test';
const pileA = new PileDevice(`${A}.GA${RUN}`);
const pileB = new PileDevice(`${B}.GB${RUN}`);
for (const p of [pileA, pileB]) p.network = 'evpay-test';

beforeAll(async () => {
  // Paying operators only (a fresh network has no margin in; tests run in any order).
  await marginsPaid();
  await gatewaysReady();
  adminA = client(A, await credential(A, 'operator-admin', 'ops A'));
  adminB = client(B, await credential(B, 'operator-admin', 'ops B'));
  pilesA = client(A, await credential(A, 'pile-backend', 'piles A'));
  pilesB = client(B, await credential(B, 'pile-backend', 'piles B', [pileB.pileId]));
  driverApp = client(A, await credential(A, 'driver-app', 'app A'));
  auditor = client(AUDITOR, await credential(AUDITOR, 'auditor', 'audit'));
});

describe('operations endpoints', () => {
  test('health, readiness, metrics and the OpenAPI document, without a credential', async () => {
    for (const o of net.orgs) {
      const c = client(o.mspId);
      expect((await c.get('/healthz')).body).toMatchObject({ status: 'ok', mspId: o.mspId });
      expect((await c.get('/readyz')).status).toBe(200);
      expect((await c.get('/metrics')).text).toContain('evpay_gateway_http_requests_total');
      const doc = (await c.get<{ openapi: string; paths: Record<string, unknown> }>('/openapi.json')).body;
      expect(doc.openapi).toBe('3.1.0');
      expect(doc.paths['/v1/sessions']).toBeDefined();
    }
  });
});

describe('the story across two operators, over HTTP', () => {
  let period = 0;
  test('admins register piles; a driver app opens a wallet at A; A tops it up', async () => {
    await ok(adminA.post('/v1/piles', { localId: pileA.localId, publicKey: pileA.keys.publicKeyHex }));
    await ok(adminB.post('/v1/piles', { localId: pileB.localId, publicKey: pileB.keys.publicKeyHex }));
    const opened = await ok<Wallet>(driverApp.post('/v1/wallets', { publicKey: driver.keys.publicKeyHex }));
    expect(opened.result.walletId).toBe(driver.walletId);
    const top = await ok<Wallet>(
      adminA.post('/v1/top-ups', { walletId: driver.walletId, amountFen: 10_000, reference: `gw-${RUN}` }),
    );
    expect(top.result.balanceFen).toBe(10_000);
    // The auditor reads it through its own gateway and peer.
    const seen = await auditor.get<WalletView>(`/v1/wallets/${driver.walletId}`);
    expect(seen.body.wallet).toMatchObject({ balanceFen: 10_000, heldFen: 0 });
  });

  test("B's pile backend charges the driver 20 kWh at B's pile: 3000 fen, settled between operators", async () => {
    const t = nowSec();
    const started = await ok<Session>(
      pilesB.post('/v1/sessions', {
        authorization: driver.authorize(pileB.pileId, 5_000, t + 600, `gw-${RUN}-1`),
        startReading: pileB.reading('START', 's1', 0, t),
      }),
    );
    expect(started.result).toMatchObject({ sessionId: 's1', status: 'open' });
    await waitFor('the next second', async () => nowSec() > t);
    const stopped = await ok<Session>(
      pilesB.post('/v1/session-stops', { stopReading: pileB.reading('STOP', 's1', 20_000, nowSec()) }),
    );
    expect(stopped.result.settlement).toMatchObject({ energyWh: 20_000, chargedFen: 3_000 });
    period = stopped.result.settlement?.period ?? 0;
    const seen = await auditor.get<Session>(`/v1/piles/${pileB.pileId}/sessions/s1`);
    expect(seen.body).toMatchObject({ status: 'settled' });
    const wallet = await auditor.get<WalletView>(`/v1/wallets/${driver.walletId}`);
    expect(wallet.body.wallet).toMatchObject({ balanceFen: 7_000, heldFen: 0 });
    const byWallet = await auditor.get<unknown[]>(`/v1/wallets/${driver.walletId}/sessions`);
    expect(JSON.stringify(byWallet.body)).toContain('s1');
    const positions = await auditor.get(`/v1/clearing/periods/${period}/positions`);
    expect(positions.status).toBe(200);
  });
});

/** How many requests gateway A refused for a driver signature that did not verify (its metric). */
async function signaturesRefused(): Promise<number> {
  const text = (await client(A).get('/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith('evpay_gateway_driver_signatures_refused_total '));
  return Number(line?.split(' ')[1] ?? 'NaN');
}

describe('who may do what', () => {
  test('no key, a wrong key and a revoked key: 401', async () => {
    expect((await client(A).get('/v1/consortium')).body).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await client(A, 'evk_0000000000000000_' + 'x'.repeat(43)).get('/v1/consortium')).status).toBe(
      401,
    );
    const key = await credential(A, 'driver-app', 'to revoke');
    expect((await client(A, key).get('/v1/consortium')).status).toBe(200);
    revokeCredential(A, key);
    expect((await client(A, key).get('/v1/consortium')).status).toBe(401);
  });

  test("a wrong role, another operator's pile, a pile outside the credential's list, an auditor's write: 403", async () => {
    const reg = await driverApp.post('/v1/piles', { localId: `X${RUN}`, publicKey: pileA.keys.publicKeyHex });
    expect(reg).toMatchObject({ status: 403, body: { code: 'ROLE_FORBIDDEN' } });
    const t = nowSec();
    const onB = await pilesA.post('/v1/sessions', {
      authorization: driver.authorize(pileB.pileId, 1_000, t + 600, `gw-${RUN}-x1`),
      startReading: pileB.reading('START', 'x1', 20_000, t),
    });
    expect(onB).toMatchObject({ status: 403, body: { code: 'PILE_NOT_IN_SCOPE' } });
    const other = new PileDevice(`${B}.GO${RUN}`);
    const outside = await pilesB.post('/v1/session-stops', { stopReading: other.reading('STOP', 'x', 1, t) });
    expect(outside).toMatchObject({ status: 403, body: { code: 'PILE_NOT_IN_SCOPE' } });
    const write = await auditor.post('/v1/top-ups', {
      walletId: driver.walletId,
      amountFen: 1,
      reference: 'x',
    });
    expect(write).toMatchObject({ status: 403, body: { code: 'READ_ONLY_GATEWAY' } });
  });

  test("a driver's money never moves without the driver's signature: a forged refund is 401 BAD_SIGNATURE", async () => {
    const before = (await auditor.get<WalletView>(`/v1/wallets/${driver.walletId}`)).body.wallet;
    const thief = new Driver();
    thief.network = 'evpay-test';
    const real = driver.refund(A, 1_000, nowSec() + 600, `gw-${RUN}-r1`);
    const forged = { ...real, signature: thief.refund(A, 1_000, nowSec() + 600, `gw-${RUN}-r1`).signature };
    const refusedBefore = await signaturesRefused();
    expect(await driverApp.post('/v1/refunds', forged)).toMatchObject({
      status: 401,
      body: { code: 'BAD_SIGNATURE' },
    });
    // Refused by the gateway itself, before any endorsement (the chaincode would refuse it too).
    expect(await signaturesRefused()).toBe(refusedBefore + 1);
    expect((await auditor.get<WalletView>(`/v1/wallets/${driver.walletId}`)).body.wallet).toEqual(before);
  });
});

describe('idempotent retries', () => {
  test('the same Idempotency-Key answers the first outcome and credits once; reused for another body: 422', async () => {
    const body = { walletId: driver.walletId, amountFen: 100, reference: `gw-${RUN}-idem` };
    const headers = { 'idempotency-key': `k-${RUN}-1` };
    const first = await ok<Wallet>(adminA.post('/v1/top-ups', body, headers));
    const again = await adminA.post<Committed<Wallet>>('/v1/top-ups', body, headers);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.txId).toBe(first.txId);
    const other = await adminA.post('/v1/top-ups', { ...body, amountFen: 101 }, headers);
    expect(other).toMatchObject({ status: 422, body: { code: 'IDEMPOTENCY_KEY_REUSED' } });
    const w = (await adminA.get<WalletView>(`/v1/wallets/${driver.walletId}`)).body.wallet;
    expect(w.balanceFen).toBe(first.result.balanceFen);
  });

  test('a retry after the gateway restarted returns the first outcome and charges nothing more', async () => {
    const body = { walletId: driver.walletId, amountFen: 200, reference: `gw-${RUN}-restart` };
    const headers = { 'idempotency-key': `k-${RUN}-2` };
    const first = await ok<Wallet>(adminA.post('/v1/top-ups', body, headers));
    const gw = net.orgs.find((o) => o.mspId === A)?.gateway.node as string;
    await stopNode(gw);
    await startNode(gw);
    await gatewaysReady();
    const again = await adminA.post<Committed<Wallet>>('/v1/top-ups', body, headers);
    expect(again.status).toBe(200);
    expect(again.body.txId).toBe(first.txId);
    const w = (await adminA.get<WalletView>(`/v1/wallets/${driver.walletId}`)).body.wallet;
    expect(w.balanceFen).toBe(first.result.balanceFen);
  });
});

describe('live updates', () => {
  type Ev = {
    id: string;
    event: string;
    data: { name: string; txId: string; payload: Record<string, unknown> };
  };
  /** Reads an event stream until `enough` says so; answers the events (id, event, data). */
  async function readEvents(url: string, headers: Record<string, string>, enough: (evs: Ev[]) => boolean) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 60_000);
    const res = await fetch(url, { headers, signal: ctrl.signal });
    expect(res.status).toBe(200);
    const events: Ev[] = [];
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      while (!enough(events)) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i: number;
        // Frames after the one that is enough are not kept: one chunk can also carry events of blocks
        // committed since (other test files run beside this one), which a second read would see too.
        while (!enough(events) && (i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f = Object.fromEntries(
            frame
              .split('\n')
              .filter((l) => !l.startsWith(':') && l.includes(': '))
              .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
          ) as Record<string, string>;
          if (f.id && f.data)
            events.push({ id: f.id, event: f.event ?? '', data: JSON.parse(f.data) as Ev['data'] });
        }
      }
    } finally {
      clearTimeout(timer);
      ctrl.abort();
    }
    return events;
  }

  test('a client that reconnects with Last-Event-ID misses nothing and gets nothing twice', async () => {
    const headers = { authorization: `Bearer ${await credential(A, 'driver-app', 'events')}` };
    const base = `${client(A).url}/v1/events`;
    const ids = ['e1', 'e2', 'e3'].map((x) => `${x}${RUN}`);
    let firstBlock = 0;
    let last = 0;
    for (const [n, id] of ids.entries()) {
      // A pile's readings only move forward in time: each session starts after the last stop.
      await waitFor('the next second', async () => nowSec() > last);
      const t = nowSec();
      const start = await ok<Session>(
        pilesA.post('/v1/sessions', {
          authorization: driver.authorize(pileA.pileId, 500, t + 600, `gw-${RUN}-ev${n}`),
          startReading: pileA.reading('START', id, (n + 1) * 1_000, t),
        }),
      );
      if (n === 0) firstBlock = start.blockNumber;
      await waitFor('the next second', async () => nowSec() > t);
      last = nowSec();
      await ok(
        pilesA.post('/v1/session-stops', {
          stopReading: pileA.reading('STOP', id, (n + 1) * 1_000 + 500, last),
        }),
      );
    }
    const lastSettled = (evs: Ev[]) =>
      evs.some((e) => e.event === 'SessionSettled' && e.data.payload.sessionId === ids[2]);
    const all = await readEvents(`${base}?fromBlock=${firstBlock}`, headers, lastSettled);
    const ours = all.filter((e) => ids.includes(String(e.data.payload.sessionId)));
    expect(ours.map((e) => `${e.event} ${String(e.data.payload.sessionId)}`)).toEqual(
      ids.flatMap((id) => [`SessionStarted ${id}`, `SessionSettled ${id}`]),
    );
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    // Reconnect after the second event: the rest arrive, in order, none twice.
    const second = all[1] as Ev;
    const rest = await readEvents(base, { ...headers, 'last-event-id': second.id }, lastSettled);
    expect(rest.map((e) => e.id)).toEqual(all.slice(2).map((e) => e.id));
  });
});
