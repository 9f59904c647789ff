/**
 * PREFETCH RULE (domain/state.ts): a rule prefetches only keys it reads on every path that can succeed,
 * so fetching them in one GET_STATE_MULTIPLE changes nothing a transaction reads, writes or answers.
 * Each case runs the same transaction (same id and time) on the same committed state twice, once on a
 * store without getMany (one message a key, as fabric-shim alone does) and once with it, and compares.
 */
import { runSessionBatch } from '../src/domain/batch';
import type { Caller, TxContext } from '../src/domain/context';
import { registerPile } from '../src/domain/piles';
import { ABANDONED_AFTER, closeStaleSession, startSession, stopSession } from '../src/domain/sessions';
import { registerStanding } from '../src/domain/standing';
import { openWallet, topUp } from '../src/domain/wallets';
import { MemoryLedger } from './support/ledger';
import { bootstrap, client, Driver, OPS, PARAMS, PileDevice } from './support/fixtures';

const A = OPS.A.mspId;
const B = OPS.B.mspId;
const DAY = 86_400;

async function world() {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const piles = [0, 1, 2].map((i) => new PileDevice(`${A}.PF${i}`));
  for (const p of piles)
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
    );
  const drivers = [new Driver(), new Driver()];
  for (const [i, d] of drivers.entries()) {
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: d.walletId, amountFen: 10_000, reference: `pf-${i}` }),
    );
  }
  return { ledger, piles, drivers, t: ledger.now };
}

/** Simulates without and with getMany, expects the same outcome and read set, then commits it. */
async function same<T>(
  ledger: MemoryLedger,
  caller: Caller,
  fn: (ctx: TxContext) => Promise<T>,
  now: number,
): Promise<T> {
  const txId = ledger.nextTxId();
  ledger.batchedReads = false;
  const plain = await ledger.simulate(caller, fn, now, txId);
  ledger.batchedReads = true;
  const calls = ledger.getManyCalls;
  const batched = await ledger.simulate(caller, fn, now, txId);
  if (!plain.ok) throw plain.error;
  expect(ledger.getManyCalls).toBeGreaterThan(calls); // the prefetch did happen
  expect(batched.ok).toBe(true);
  expect([...batched.reads].sort()).toEqual([...plain.reads].sort());
  expect(batched.ranges).toEqual(plain.ranges);
  expect(batched.writes).toEqual(plain.writes);
  expect(batched.result).toEqual(plain.result);
  expect(batched.events).toEqual(plain.events);
  expect(ledger.commitBlock([batched])).toEqual(['VALID']);
  return batched.result as T;
}

describe('prefetching does not change what a session transaction reads (PREFETCH RULE)', () => {
  test('start with a driver signature, stop, and both in one session batch', async () => {
    const { ledger, piles, drivers, t } = await world();
    const [p0, p1] = piles as [PileDevice, PileDevice];
    const [d0, d1] = drivers as [Driver, Driver];
    // Inputs are made once: a driver's next authorization takes a new nonce.
    const start = {
      authorization: d0.authorize(p0.pileId, 3_000, t + 600),
      startReading: p0.reading('START', 's1', 0, t),
    };
    await same(ledger, client(A), (ctx) => startSession(ctx, start), t);
    const stop = { stopReading: p0.reading('STOP', 's1', 9_000, t + 60) };
    await same(ledger, client(A), (ctx) => stopSession(ctx, stop), t + 60);
    const batch = {
      calls: [
        {
          tx: 'StartSession',
          args: {
            authorization: d1.authorize(p1.pileId, 3_000, t + 700),
            startReading: p1.reading('START', 's2', 0, t + 100),
          },
        },
        { tx: 'StopSession', args: { stopReading: p1.reading('STOP', 's2', 4_000, t + 100) } },
      ],
    };
    const r = await same(ledger, client(A), (ctx) => runSessionBatch(ctx, batch), t + 100);
    expect(r.results.map((c) => c.ok)).toEqual([true, true]);
  });

  test('start on a standing card authorization', async () => {
    const { ledger, piles, drivers, t } = await world();
    const d = drivers[0]!;
    const card = d.standing(A, 'PF-CARD', 2_000, 5_000, 3, t + 30 * DAY, 'pf-card');
    const standing = await ledger.submit(client(A), (ctx) => registerStanding(ctx, card));
    const start = {
      standing: { standingId: standing.standingId, idTagSm3: card.idTagSm3 },
      startReading: piles[2]!.reading('START', 'c1', 0, t),
    };
    await same(ledger, client(A), (ctx) => startSession(ctx, start), t);
  });

  test('stale closes, by the pile operator and by another member once the session is abandoned', async () => {
    const { ledger, piles, drivers, t } = await world();
    for (const [i, p] of piles.slice(0, 2).entries())
      await ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          authorization: drivers[i]!.authorize(p.pileId, 3_000, t + 600),
          startReading: p.reading('START', 'old', 0, t),
        }),
      );
    const stale = t + PARAMS.sessionMaxOpenSec;
    const close = (p: PileDevice) => (ctx: TxContext) =>
      closeStaleSession(ctx, { pileId: p.pileId, sessionId: 'old' });
    await same(ledger, client(A), close(piles[0]!), stale);
    await same(ledger, client(B), close(piles[1]!), t + ABANDONED_AFTER * PARAMS.sessionMaxOpenSec);
  });
});
