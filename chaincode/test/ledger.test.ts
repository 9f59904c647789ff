/**
 * The test double itself: it must raise the conflicts a Fabric peer raises, or the domain tests built on
 * it could pass where the network would not (cases found in review).
 */
import { creditReward } from '../src/domain/beans';
import { closePeriod, periodOf } from '../src/domain/clearing';
import { listJson } from '../src/domain/state';
import { openWallet, topUp } from '../src/domain/wallets';
import { MemoryLedger, RANGE_BATCH } from './support/ledger';
import { bootstrap, client, Driver, OPS, PARAMS } from './support/fixtures';

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
