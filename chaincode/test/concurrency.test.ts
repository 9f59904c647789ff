/**
 * No hot keys: settlements at different piles and wallets, and top-ups at one operator, all simulated
 * against the same committed state and committed in one block, are all valid. (On a peer, a shared key
 * would let one transaction per key per block through; see the MVCC race in rejections.test.ts.)
 */
import { registerPile } from '../src/domain/piles';
import { startSession, stopSession } from '../src/domain/sessions';
import { openWallet, topUp } from '../src/domain/wallets';
import { sealAudit } from '../src/domain/audit';
import { MemoryLedger } from './support/ledger';
import { bootstrap, client, Driver, OPS, PileDevice } from './support/fixtures';

const N = 24;
const A = OPS.A.mspId;
const B = OPS.B.mspId;

test(`${N} sessions at distinct piles and wallets commit in one block without a conflict`, async () => {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const drivers = Array.from({ length: N }, () => new Driver());
  const piles = Array.from({ length: N }, (_, i) => new PileDevice(`${i % 2 ? A : B}.P${i}`));
  for (const p of piles)
    await ledger.submit(client(p.pileId.split('.')[0]!), (ctx) =>
      registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
    );
  for (const d of drivers)
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));

  const t = ledger.now;
  const topUps = await Promise.all(
    drivers.map((d, i) =>
      ledger.simulate(client(A), (ctx) =>
        topUp(ctx, { walletId: d.walletId, amountFen: 10_000, reference: `pay${i}` }),
      ),
    ),
  );
  expect(ledger.commitBlock(topUps)).toEqual(Array(N).fill('VALID'));

  const starts = await Promise.all(
    drivers.map((d, i) =>
      ledger.simulate(client(piles[i]!.pileId.split('.')[0]!), (ctx) =>
        startSession(ctx, {
          authorization: d.authorize(piles[i]!.pileId, 5_000, t + 600),
          startReading: piles[i]!.reading('START', `s${i}`, 0, t),
        }),
      ),
    ),
  );
  expect(ledger.commitBlock(starts)).toEqual(Array(N).fill('VALID'));

  const stops = await Promise.all(
    piles.map((p, i) =>
      ledger.simulate(
        client(p.pileId.split('.')[0]!),
        (ctx) => stopSession(ctx, { stopReading: p.reading('STOP', `s${i}`, 1_000 * (i + 1), t + 300) }),
        t + 300,
      ),
    ),
  );
  expect(stops.every((s) => s.ok)).toBe(true);
  // Hot path: a settlement reads one key range (the parameter versions, once per transaction).
  expect(stops.map((s) => s.ranges.length)).toEqual(Array(N).fill(1));
  expect(ledger.commitBlock(stops)).toEqual(Array(N).fill('VALID'));

  // The audit seal is the only transaction reading the pending records: it commits alone, as designed.
  const sealed = await ledger.submit(client(A), (ctx) => sealAudit(ctx, A), t + 301);
  expect(sealed.sealed).toBeGreaterThanOrEqual(N / 2);
});
