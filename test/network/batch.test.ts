/**
 * Session calls batched by a gateway under load (gateway-api/src/fabric/batcher.ts, chaincode
 * domain/batch.ts) on the running test network: a burst of starts and stops at one gateway goes out in
 * fewer transactions than calls, every call gets its own answer, amounts are right, a duplicated stop
 * charges once, and an Idempotency-Key retry of a batched call gets the first answer again.
 */
import type { Session } from '../../chaincode/src/domain/sessions';
import type { Wallet } from '../../chaincode/src/domain/wallets';
import { Driver, PileDevice } from '../../chaincode/test/support/fixtures';
import { committedOnEveryPeer } from '../../network/tools/client';
import { net, waitFor } from './support/fabric';
import { client, credential, gatewaysReady, type Client, type Reply } from './support/gateway';
import { marginsPaid } from './support/margins';

jest.setTimeout(180_000);

const A = net.orgs.filter((o) => o.role === 'operator')[0]!.mspId;
const RUN = Date.now().toString(36).toUpperCase();
const N = 8;
const nowSec = (): number => Math.floor(Date.now() / 1000);

type Committed<T> = { txId: string; blockNumber: number; result: T };

async function ok<T>(r: Promise<Reply>): Promise<Committed<T>> {
  const reply = await r;
  if (reply.status !== 200) throw new Error(`expected 200, got ${reply.status}: ${reply.text}`);
  return reply.body as Committed<T>;
}

/** Gateway A's count of SessionBatch transactions sent, and of the calls in them. */
async function batches(): Promise<{ count: number; calls: number }> {
  const text = (await client(A).get('/metrics')).text;
  const value = (name: string): number =>
    Number(
      text
        .split('\n')
        .find((l) => l.startsWith(`${name} `))
        ?.split(' ')[1] ?? '0',
    );
  return {
    count: value('evpay_gateway_session_batch_calls_count'),
    calls: value('evpay_gateway_session_batch_calls_sum'),
  };
}

let admin: Client, piles: Client;
const drivers = Array.from({ length: N }, () => Object.assign(new Driver(), { network: 'evpay-test' }));
const devices = Array.from({ length: N }, (_, i) =>
  Object.assign(new PileDevice(`${A}.BA${RUN}${i}`), { network: 'evpay-test' }),
);

beforeAll(async () => {
  await marginsPaid();
  await gatewaysReady();
  admin = client(A, await credential(A, 'operator-admin', 'batch admin'));
  piles = client(A, await credential(A, 'pile-backend', 'batch piles'));
  const driverApp = client(A, await credential(A, 'driver-app', 'batch app'));
  let last = 0;
  for (const [i, d] of drivers.entries()) {
    const p = devices[i]!;
    await ok(admin.post('/v1/piles', { localId: p.localId, publicKey: p.keys.publicKeyHex }));
    await ok(driverApp.post('/v1/wallets', { publicKey: d.keys.publicKeyHex }));
    last = (
      await ok(
        admin.post('/v1/top-ups', { walletId: d.walletId, amountFen: 10_000, reference: `ba-${RUN}-${i}` }),
      )
    ).blockNumber;
  }
  await committedOnEveryPeer(net, BigInt(last));
});

test(`a burst of ${N} starts, then ${N} stops and a duplicated stop: fewer transactions than calls, each call its own answer`, async () => {
  const before = await batches();
  const t = nowSec();
  const bodies = devices.map((p, i) => ({
    authorization: drivers[i]!.authorize(p.pileId, 5_000, t + 600, `ba-${RUN}-${i}`),
    startReading: p.reading('START', 's1', 0, t),
  }));
  const starts = await Promise.all(
    bodies.map((body, i) => piles.post('/v1/sessions', body, { 'Idempotency-Key': `ba-start-${RUN}-${i}` })),
  );
  expect(starts.map((r) => r.status)).toEqual(Array(N).fill(200));
  const started = starts.map((r) => r.body as Committed<Session>);
  expect(started.map((s) => s.result.status)).toEqual(Array(N).fill('open'));
  await committedOnEveryPeer(net, BigInt(Math.max(...started.map((s) => s.blockNumber))));
  await waitFor('the next second', async () => nowSec() > t);

  // Each pile stops at 10 kWh (1500 fen at the test tariff); pile 0's stop is sent twice at once.
  const stopOf = (i: number) => ({ stopReading: devices[i]!.reading('STOP', 's1', 10_000, nowSec()) });
  const stop0 = stopOf(0);
  const stops = await Promise.all([
    piles.post('/v1/session-stops', stop0),
    ...devices.map((_, i) => piles.post('/v1/session-stops', i === 0 ? stop0 : stopOf(i))),
  ]);
  const statuses = stops.map((r) => r.status);
  // Pile 0: one stop settles, the other is refused as already settled (409), whichever came first.
  expect(statuses.slice(2)).toEqual(Array(N - 1).fill(200));
  expect([statuses[0], statuses[1]].sort()).toEqual([200, 409]);
  const refused = stops.find((r) => r.status === 409)!;
  expect(refused.body).toMatchObject({ code: 'SESSION_ALREADY_SETTLED' });
  const settled = stops.filter((r) => r.status === 200).map((r) => r.body as Committed<Session>);
  expect(settled.map((s) => s.result.settlement?.chargedFen)).toEqual(Array(N).fill(1_500));

  // Fewer transactions than calls: some calls shared one.
  const txs = new Set([...started, ...settled].map((c) => c.txId));
  expect(txs.size).toBeLessThan(2 * N);
  const after = await batches();
  expect(after.count).toBeGreaterThan(before.count);
  expect(after.calls - before.calls).toBeGreaterThanOrEqual(2 * (after.count - before.count));

  // The ledger agrees: every wallet paid 1500 fen once, nothing is held.
  await committedOnEveryPeer(net, BigInt(Math.max(...settled.map((s) => s.blockNumber))));
  for (const d of drivers) {
    const w = await admin.get<{ wallet: Wallet }>(`/v1/wallets/${d.walletId}`);
    expect(w.body.wallet).toMatchObject({ balanceFen: 8_500, heldFen: 0 });
  }

  // A retry of a batched start with its Idempotency-Key gets the first answer, not a second session.
  const i = started.findIndex((s) => started.filter((o) => o.txId === s.txId).length > 1);
  const index = i >= 0 ? i : 0;
  const retry = await piles.post('/v1/sessions', bodies[index], {
    'Idempotency-Key': `ba-start-${RUN}-${index}`,
  });
  expect(retry.status).toBe(200);
  expect(retry.body).toEqual(started[index]);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
});
