/**
 * No hot keys: settlements at different piles and wallets, and top-ups at one operator, all simulated
 * against the same committed state and committed in one block, are all valid. (On a peer, a shared key
 * would let one transaction per key per block through; see the MVCC race in rejections.test.ts.)
 * Claims of one red envelope, and sales of one operator's beans, spread over buckets: many commit per block.
 */
import { beanBalance, buyBeans, issuanceState } from '../src/domain/beans';
import { setOperatorPolicy } from '../src/domain/consortium';
import { claimEnvelope, closeEnvelope, createEnvelope, getEnvelope } from '../src/domain/envelopes';
import { registerPile } from '../src/domain/piles';
import { startSession, stopSession } from '../src/domain/sessions';
import { openWallet, topUp } from '../src/domain/wallets';
import { sealAudit } from '../src/domain/audit';
import { MemoryLedger } from './support/ledger';
import {
  admin,
  auditor,
  bootstrap,
  client,
  Driver,
  issueBackedBeans,
  OPS,
  PileDevice,
} from './support/fixtures';

const N = 24;
const A = OPS.A.mspId;
const B = OPS.B.mspId;
const C = OPS.C.mspId;

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

test('claims of one red envelope commit many per block: one per bucket, not one per envelope', async () => {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const K = 60;
  await issueBackedBeans(ledger, B, 2 * K);
  const t = ledger.now;
  const env = await ledger.submit(admin(B), (ctx) =>
    createEnvelope(ctx, {
      envelopeId: 'gala',
      totalBeans: 2 * K,
      claimants: K,
      split: 'equal',
      expiresAt: t + 3600,
    }),
  );
  expect(env.buckets).toBe(K); // fewer claimants than ENVELOPE_BUCKETS: one share per bucket
  const drivers = Array.from({ length: K }, () => new Driver());
  for (const d of drivers)
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));

  // Everyone claims at once; whoever is invalidated retries against the next block's state.
  const perBlock = await ledger.contend(
    drivers.map(
      (d) => () => ledger.simulate(client(A), (ctx) => claimEnvelope(ctx, d.claim('gala', t + 3600))),
    ),
  );
  // A single counter would let exactly one claim through per block (K blocks). Uniform start buckets
  // give about 38 of 60 in the first block; 20 is more than six standard deviations below that.
  expect(perBlock[0]).toBeGreaterThanOrEqual(20);
  expect(perBlock.length).toBeLessThanOrEqual(K / 6); // measured: 5 blocks (37, 12, 7, 3, 1)
  expect(perBlock.reduce((a, b) => a + b, 0)).toBe(K);
  for (const d of drivers)
    expect(await ledger.evaluate(client(A), (ctx) => beanBalance(ctx, d.walletId, B))).toBe(2);
  const after = await ledger.evaluate(auditor, (ctx) => getEnvelope(ctx, 'gala'));
  expect([after.claimed, after.claimedBeans]).toEqual([K, 2 * K]);
  await expect(
    ledger.submit(client(A), (ctx) => claimEnvelope(ctx, new Driver().claim('gala', t + 3600))),
  ).rejects.toMatchObject({ code: 'WALLET_NOT_FOUND' });
  const late = new Driver();
  await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: late.keys.publicKeyHex }));
  await expect(
    ledger.submit(client(A), (ctx) => claimEnvelope(ctx, late.claim('gala', t + 3600))),
  ).rejects.toMatchObject({ code: 'ENVELOPE_EMPTY' });
});

test('a claim and the close of its envelope in one block never both commit', async () => {
  const d = new Driver();
  // An envelope of 10 beans for 5; the claim is stamped just before expiry, the close just after (both
  // within the peers' clock window), endorsed against the same state.
  const race = async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    await issueBackedBeans(ledger, B, 10);
    const t = ledger.now;
    await ledger.submit(admin(B), (ctx) =>
      createEnvelope(ctx, {
        envelopeId: 'e',
        totalBeans: 10,
        claimants: 5,
        split: 'equal',
        expiresAt: t + 600,
      }),
    );
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    const claim = await ledger.simulate(
      client(A),
      (ctx) => claimEnvelope(ctx, d.claim('e', t + 600)),
      t + 599,
    );
    const close = await ledger.simulate(client(C), (ctx) => closeEnvelope(ctx, 'e'), t + 600);
    expect([claim.ok, close.ok]).toEqual([true, true]);
    return { ledger, claim, close, t };
  };
  const first = await race();
  expect(first.ledger.commitBlock([first.claim, first.close])).toEqual(['VALID', 'PHANTOM_READ_CONFLICT']);
  const closed = await first.ledger.submit(client(C), (ctx) => closeEnvelope(ctx, 'e'), first.t + 600);
  expect(closed.returnedBeans).toBe(8); // 10 beans, one share of 2 claimed
  // The other order: the close commits first and the claim is invalidated.
  const second = await race();
  expect(second.ledger.commitBlock([second.close, second.claim])).toEqual(['VALID', 'MVCC_READ_CONFLICT']);
  expect((await second.ledger.evaluate(auditor, (ctx) => getEnvelope(ctx, 'e'))).returnedBeans).toBe(10);
});

test('bean sales of one operator commit many per block: one per treasury bucket, not one per treasury', async () => {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const N = 30;
  await issueBackedBeans(ledger, B, 4 * N);
  await ledger.submit(admin(B), (ctx) =>
    setOperatorPolicy(ctx, { rebateWhPerBean: 0, beanSalePriceFen: 90 }),
  );
  const drivers = Array.from({ length: N }, () => new Driver());
  for (const [i, d] of drivers.entries()) {
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: d.walletId, amountFen: 1_000, reference: `t${i}` }),
    );
  }
  const t = ledger.now;
  const orders = drivers.map((d) => d.buy(B, 2, 180, t + 600));
  const perBlock = await ledger.contend(
    orders.map((o) => () => ledger.simulate(client(B), (ctx) => buyBeans(ctx, o))),
  );
  // One treasury key would let one sale through per block. 30 purchases over 16 buckets: about 14 start
  // in distinct buckets and commit in the first block.
  expect(perBlock[0]).toBeGreaterThanOrEqual(8);
  expect(perBlock.length).toBeLessThanOrEqual(N / 3);
  for (const d of drivers)
    expect(await ledger.evaluate(client(A), (ctx) => beanBalance(ctx, d.walletId, B))).toBe(2);
  const state = await ledger.evaluate(client(B), (ctx) => issuanceState(ctx, B));
  expect(state.treasury).toBe(4 * N - 2 * N);
});
