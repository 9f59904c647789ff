/**
 * The test double itself: it must raise the conflicts a Fabric peer raises, or the domain tests built on
 * it could pass where the network would not (cases found in review).
 */
import { creditReward, issuanceState, issueBeans } from '../src/domain/beans';
import { closePeriod, periodOf, rollUpPositions, type PositionDelta } from '../src/domain/clearing';
import { Keys } from '../src/domain/keys';
import { listJson, RANGE_CHUNK } from '../src/domain/state';
import { openWallet, topUp } from '../src/domain/wallets';
import { MemoryLedger, RANGE_BATCH } from './support/ledger';
import { admin, bootstrap, client, Driver, OPS, PARAMS } from './support/fixtures';

const A = OPS.A.mspId;
const B = OPS.B.mspId;

test('two rewards against the same pool in one block: the second is a phantom, in either order', async () => {
  for (const order of [0, 1]) {
    const ledger = new MemoryLedger();
    await bootstrap(ledger); // pool: 4 margins of 1,000,000
    const sims = [
      await ledger.simulate(client(A), (ctx) => creditReward(ctx, A, 'b1', 3_000_000)),
      await ledger.simulate(client(B), (ctx) => creditReward(ctx, B, 'b2', 3_000_000)),
    ];
    if (order) sims.reverse();
    expect(ledger.commitBlock(sims)).toEqual(['VALID', 'PHANTOM_READ_CONFLICT']);
  }
});

test('closing a period and a top-up into it in one block cannot both commit', async () => {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const d = new Driver();
  await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
  const period = periodOf(ledger.now, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
  const late = ledger.now + 2 * 86_400;
  const close = await ledger.simulate(client(B), (ctx) => closePeriod(ctx, period), late);
  const topup = await ledger.simulate(client(A), (ctx) =>
    topUp(ctx, { walletId: d.walletId, amountFen: 5_000, reference: 'x' }),
  );
  expect(ledger.commitBlock([topup, close])).toEqual(['VALID', 'PHANTOM_READ_CONFLICT']);
});

test('a range read stopped early still covers the batch the peer fetched', async () => {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const put = (key: string) =>
    ledger.submit(client(A), async (ctx) => ctx.store.put(key, new TextEncoder().encode('{}')));
  for (const k of ['t/a', 't/c']) await put(k);
  // Reads one key of two: the peer fetched both (one batch) and reached the end of the range.
  const reader = await ledger.simulate(client(A), (ctx) => listJson(ctx.store, 't/', 1));
  const writer = await ledger.simulate(client(A), async (ctx) =>
    ctx.store.put('t/z', new TextEncoder().encode('{}')),
  );
  expect(ledger.commitBlock([writer, reader])).toEqual(['VALID', 'PHANTOM_READ_CONFLICT']);

  // Past one batch, keys beyond what the peer fetched are not part of the read.
  for (let i = 0; i < RANGE_BATCH + 10; i++) await put(`u/${String(i).padStart(4, '0')}`);
  const partial = await ledger.simulate(client(A), (ctx) => listJson(ctx.store, 'u/', 5));
  const beyond = await ledger.simulate(client(A), async (ctx) =>
    ctx.store.put('u/9999', new TextEncoder().encode('{}')),
  );
  expect(ledger.commitBlock([beyond, partial])).toEqual(['VALID', 'VALID']);
});

describe("ranges longer than the peer's totalQueryLimit", () => {
  // The double ends a query after `totalQueryLimit` results as a peer does; lowered here to stay fast.
  const LIMIT = 12_000;
  const N = 25_000; // more than two limits and two RANGE_CHUNKs
  const txIdOf = (i: number) => i.toString(16).padStart(64, '0');

  test('the double truncates one query as a peer does, so a single query would lose keys', async () => {
    const ledger = new MemoryLedger();
    ledger.totalQueryLimit = LIMIT;
    ledger.seed(Array.from({ length: N }, (_, i): [string, unknown] => [`z/${txIdOf(i)}`, {}]));
    const one = await ledger.evaluate(client(A), async (ctx) => {
      const keys: string[] = [];
      for await (const kv of ctx.store.range('z/', 'z0')) keys.push(kv.key);
      return keys.length;
    });
    expect(one).toBe(LIMIT);
    expect(LIMIT).toBeGreaterThan(RANGE_CHUNK);
    expect(await ledger.evaluate(client(A), async (ctx) => (await listJson(ctx.store, 'z/')).length)).toBe(N);
  });

  test('a period of more movements than the limit closes with every one of them, under the phantom check', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    ledger.totalQueryLimit = LIMIT;
    const period = periodOf(ledger.now, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    // A busy day at A: N one-fen top-ups, as TopUp writes them (seeded, to stay fast).
    ledger.seed(
      Array.from({ length: N }, (_, i): [string, PositionDelta] => [
        Keys.position(period, A, txIdOf(i), 0),
        { mspId: A, txId: txIdOf(i), at: ledger.now, topUpCashFen: 1 },
      ]),
    );
    // B, whose MSP id sorts after A's, took 10,000 yuan of a driver's cash.
    const d = new Driver();
    await ledger.submit(client(B), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    await ledger.submit(client(B), (ctx) =>
      topUp(ctx, { walletId: d.walletId, amountFen: 1_000_000, reference: 'big' }),
    );
    const late = ledger.now + 2 * 86_400;
    // More movements than one closing step reads: A's are rolled up in steps first (BOUNDED CLOSE RULE).
    const early = await ledger.simulate(client(B), (ctx) => closePeriod(ctx, period), late);
    expect(early.error).toMatchObject({ code: 'PERIOD_NOT_ROLLED_UP', details: { mspId: A } });
    let steps = 0;
    for (let done = false; !done; steps++)
      ({ done } = await ledger.submit(client(B), (ctx) => rollUpPositions(ctx, { period, mspId: A }), late));
    expect(steps).toBe(3);
    // A movement landing in a range the close reads while it is endorsed invalidates the close (B's
    // here: A's range is frozen behind its subtotal, and a movement of A in the period is refused).
    const close = await ledger.simulate(client(B), (ctx) => closePeriod(ctx, period), late);
    const more = await ledger.simulate(client(B), (ctx) =>
      topUp(ctx, { walletId: d.walletId, amountFen: 1, reference: 'one-more' }),
    );
    expect(ledger.commitBlock([more, close])).toEqual(['VALID', 'PHANTOM_READ_CONFLICT']);
    await expect(
      ledger.submit(client(A), (ctx) =>
        topUp(ctx, { walletId: d.walletId, amountFen: 1, reference: 'a-late' }),
      ),
    ).rejects.toMatchObject({ code: 'PERIOD_CLOSED' });

    const r = await ledger.submit(client(B), (ctx) => closePeriod(ctx, period), late);
    expect(r.positions[A]).toMatchObject({ topUpCashFen: N, dueFen: -N });
    expect(r.positions[B]).toMatchObject({ topUpCashFen: 1_000_001, dueFen: -1_000_001 });
    expect(r.poolDueFen).toBe(N + 1_000_001);
  });

  test('issuance records past the limit still count: no bean without backing', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    ledger.totalQueryLimit = LIMIT;
    // B earned rewards backing exactly N beans and issued all of them, one per IssueBeans (seeded).
    const face = PARAMS.beanFaceValueFen;
    ledger.seed([[Keys.reward(B, 'r1'), { amountFen: N * face, ref: 'r1', at: ledger.now }]]);
    ledger.seed(
      Array.from({ length: N }, (_, i): [string, unknown] => [
        Keys.beanIssued(B, txIdOf(i)),
        { beans: 1, backingFen: face, txId: txIdOf(i), at: ledger.now },
      ]),
    );
    const state = await ledger.evaluate(client(B), (ctx) => issuanceState(ctx, B));
    expect(state).toMatchObject({ issued: N, remaining: 0, limit: N, backingUsedFen: N * face });
    await expect(
      ledger.submit(admin(B), (ctx) => issueBeans(ctx, { beans: 1, reference: 'x1' })),
    ).rejects.toMatchObject({ code: 'ISSUANCE_LIMIT_EXCEEDED' });
  });
});
