/**
 * Conservation, checked on random histories: whatever drivers and operators do, and whichever of their
 * transactions are refused, no fen and no bean is created or lost.
 *
 *   money:  sum(top-ups) = sum(wallet balances) + sum(charged at piles) + sum(bean sales) + sum(refunds)
 *   beans:  per issuer, issued = treasury + pile floats + wallet beans + locked in envelopes + redeemed
 *   every settlement: charged <= cap, charged + bean value + uncollected = price; no hold is left behind
 */
import fc from 'fast-check';
import {
  allocateRebateFloat,
  buyBeans,
  creditReward,
  issueBeans,
  transferBeans,
  type BeanBalance,
  type IssuedDelta,
} from '../src/domain/beans';
import { closePeriod, POOL, type PositionDelta } from '../src/domain/clearing';
import { setOperatorPolicy } from '../src/domain/consortium';
import { DomainError } from '../src/domain/errors';
import {
  claimEnvelope,
  closeEnvelope,
  createEnvelope,
  type EnvelopeBucket,
  type EnvelopeRecord,
} from '../src/domain/envelopes';
import { registerPile, setPileStatus, type Pile } from '../src/domain/piles';
import { startSession, stopSession, type Session } from '../src/domain/sessions';
import type { TreasuryBucket } from '../src/domain/treasury';
import { openWallet, refundWallet, topUp, type Wallet } from '../src/domain/wallets';
import type { Caller, TxContext } from '../src/domain/context';
import { MemoryLedger, type Simulation } from './support/ledger';
import { admin, bootstrap, client, Driver, OPS, PileDevice } from './support/fixtures';

const OPERATORS = [OPS.A.mspId, OPS.B.mspId];
const DRIVERS = Array.from({ length: 4 }, () => new Driver());
const PILES = OPERATORS.flatMap((op) => [new PileDevice(`${op}.X1`), new PileDevice(`${op}.X2`)]);
const opOf = (p: PileDevice): string => p.pileId.split('.')[0]!;
/** The i-th pile of an operator. */
const pileOf = (op: string, i: number): PileDevice => PILES.filter((p) => opOf(p) === op)[i]!;

const op = fc.oneof(
  fc.record({
    t: fc.constant('topup' as const),
    d: fc.nat(3),
    o: fc.nat(1),
    amount: fc.integer({ min: 1, max: 8_000 }),
  }),
  fc.record({
    t: fc.constant('charge' as const),
    d: fc.nat(3),
    p: fc.nat(3),
    cap: fc.integer({ min: 1, max: 6_000 }),
    wh: fc.integer({ min: 0, max: 60_000 }),
    secs: fc.integer({ min: 0, max: 4 * 3600 }),
  }),
  fc.record({
    t: fc.constant('buy' as const),
    d: fc.nat(3),
    o: fc.nat(1),
    beans: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({
    t: fc.constant('give' as const),
    d: fc.nat(3),
    to: fc.nat(3),
    o: fc.nat(1),
    beans: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({
    t: fc.constant('refund' as const),
    d: fc.nat(3),
    o: fc.nat(1),
    amount: fc.integer({ min: 1, max: 8_000 }),
  }),
  fc.record({
    t: fc.constant('envelope' as const),
    o: fc.nat(1),
    total: fc.integer({ min: 4, max: 12 }),
    claimers: fc.subarray([0, 1, 2, 3]),
  }),
);

type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

let run = 0;

let charges = 0;

async function play(history: Array<Op>): Promise<MemoryLedger> {
  charges = 0;
  run += 1;
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  for (const o of OPERATORS) {
    await ledger.submit(client(o), (ctx) => creditReward(ctx, o, 'r1', 10_000));
    await ledger.submit(admin(o), (ctx) => issueBeans(ctx, { beans: 100, reference: 'i1' }));
    await ledger.submit(admin(o), (ctx) =>
      setOperatorPolicy(ctx, { rebateWhPerBean: 7_000, beanSalePriceFen: 80 }),
    );
  }
  for (const p of PILES) {
    await ledger.submit(client(opOf(p)), (ctx) =>
      registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
    );
    await ledger.submit(admin(opOf(p)), (ctx) =>
      allocateRebateFloat(ctx, { pileId: p.pileId, beans: 10, reference: `f-${p.localId}` }),
    );
  }
  for (const d of DRIVERS)
    await ledger.submit(client(OPERATORS[0]!), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));

  const meters = new Map<string, number>();
  let t = ledger.now;
  let n = 0;
  // A refused transaction is part of the game; anything but a DomainError is a bug.
  const attempt = async (fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
    }
  };
  for (const h of history) {
    t += 60;
    n += 1;
    const now = t;
    if (h.t === 'topup') {
      const o = OPERATORS[h.o]!;
      await attempt(() =>
        ledger.submit(
          client(o),
          (ctx) => topUp(ctx, { walletId: DRIVERS[h.d]!.walletId, amountFen: h.amount, reference: `p${n}` }),
          now,
        ),
      );
    } else if (h.t === 'charge') {
      const p = PILES[h.p]!;
      const d = DRIVERS[h.d]!;
      const m0 = meters.get(p.pileId) ?? 0;
      const sid = `r${run}s${n}`;
      // Funds first, so every charge must settle (the test counts them): refusals are tested elsewhere.
      await ledger.submit(
        client(opOf(p)),
        (ctx) => topUp(ctx, { walletId: d.walletId, amountFen: h.cap, reference: `c${n}` }),
        now,
      );
      charges += 1;
      let started = false;
      await attempt(async () => {
        await ledger.submit(
          client(opOf(p)),
          (ctx) =>
            startSession(ctx, {
              authorization: d.authorize(p.pileId, h.cap, now + 60),
              startReading: p.reading('START', sid, m0, now),
            }),
          now,
        );
        started = true;
      });
      if (started) {
        const stopAt = now + h.secs;
        await ledger.submit(
          client(opOf(p)),
          (ctx) => stopSession(ctx, { stopReading: p.reading('STOP', sid, m0 + h.wh, stopAt) }),
          stopAt,
        );
        meters.set(p.pileId, m0 + h.wh);
        t = Math.max(t, stopAt);
      }
    } else if (h.t === 'buy') {
      const o = OPERATORS[h.o]!;
      await attempt(() =>
        ledger.submit(
          client(o),
          (ctx) => buyBeans(ctx, DRIVERS[h.d]!.buy(o, h.beans, h.beans * 80, now + 60)),
          now,
        ),
      );
    } else if (h.t === 'refund') {
      const o = OPERATORS[h.o]!;
      await attempt(() =>
        ledger.submit(
          client(o),
          (ctx) => refundWallet(ctx, DRIVERS[h.d]!.refund(o, h.amount, now + 60)),
          now,
        ),
      );
    } else if (h.t === 'give') {
      const o = OPERATORS[h.o]!;
      await attempt(() =>
        ledger.submit(
          client(o),
          (ctx) => transferBeans(ctx, DRIVERS[h.d]!.transfer(DRIVERS[h.to]!.walletId, o, h.beans, now + 60)),
          now,
        ),
      );
    } else {
      const o = OPERATORS[h.o]!;
      const id = `e${n}`;
      const expiresAt = now + 600;
      await attempt(async () => {
        await ledger.submit(
          admin(o),
          (ctx) =>
            createEnvelope(ctx, {
              envelopeId: id,
              totalBeans: h.total,
              claimants: 3,
              split: 'random',
              expiresAt,
            }),
          now,
        );
        for (const c of h.claimers)
          await attempt(() =>
            ledger.submit(client(o), (ctx) => claimEnvelope(ctx, DRIVERS[c]!.claim(id, expiresAt)), now),
          );
        if (n % 2 === 0) await ledger.submit(client(o), (ctx) => closeEnvelope(ctx, id), expiresAt);
      });
    }
  }
  return ledger;
}

function sum<T>(xs: T[], f: (x: T) => number): number {
  return xs.reduce((s, x) => s + f(x), 0);
}

/**
 * The conservation laws, on the committed state:
 *   money: top-ups = wallet balances + charged at piles + bean sales + refunds, no balance below zero;
 *   beans, per issuer: issued = treasury + pile floats + wallet beans + locked in envelopes + redeemed,
 *   no treasury bucket below zero, and each envelope's buckets agree with its claim records;
 *   issuance: no operator's issued beans use more backing than its rewards; the pool never below zero.
 */
function expectConserved(ledger: MemoryLedger): void {
  const wallets = ledger.entries<Wallet>('wallet/').map((e) => e.value);
  const positions = ledger.entries<PositionDelta>('position/').map((e) => e.value);
  for (const w of wallets) expect(w.balanceFen).toBeGreaterThanOrEqual(0);
  const total = (f: (p: PositionDelta) => number | undefined) => sum(positions, (p) => f(p) ?? 0);
  expect(
    sum(wallets, (w) => w.balanceFen) +
      total((p) => p.energyRevenueFen) +
      total((p) => p.beanSalesFen) +
      total((p) => p.refundCashFen),
  ).toBe(total((p) => p.topUpCashFen));

  for (const o of OPERATORS) {
    const issued = sum(ledger.entries<IssuedDelta>(`issued/${o}/`), (e) => e.value.beans);
    const buckets = ledger.entries<TreasuryBucket>(`treasury/${o}/`);
    for (const b of buckets) expect(b.value.beans).toBeGreaterThanOrEqual(0);
    const floats = sum(
      ledger.entries<Pile>('pile/').filter((e) => e.value.operator === o),
      (e) => e.value.rebateFloat,
    );
    const held = sum(
      ledger.entries<BeanBalance>('beans/').filter((e) => e.value.issuer === o),
      (e) => e.value.beans,
    );
    let locked = 0;
    for (const { value: env } of ledger.entries<EnvelopeRecord>('envelope/')) {
      if (env.issuer !== o) continue;
      const shares = ledger.entries<EnvelopeBucket>(`envbucket/${env.envelopeId}/`).map((e) => e.value);
      const claims = ledger.entries<{ beans: number }>(`claim/${env.envelopeId}/`).map((e) => e.value);
      const taken = sum(shares, (b) => b.takenBeans);
      expect([claims.length, sum(claims, (c) => c.beans)]).toEqual([sum(shares, (b) => b.taken), taken]);
      if (env.status === 'closed') expect(env.returnedBeans).toBe(env.totalBeans - taken);
      locked += env.totalBeans - env.returnedBeans - taken;
    }
    const redeemed = sum(
      positions.filter((p) => p.mspId === o),
      (p) => p.beansRedeemed ?? 0,
    );
    expect(sum(buckets, (e) => e.value.beans) + floats + held + locked + redeemed).toBe(issued);
    // No bean without reward backing, and the pool never below zero.
    expect(sum(ledger.entries<IssuedDelta>(`issued/${o}/`), (e) => e.value.backingFen)).toBeLessThanOrEqual(
      sum(ledger.entries<{ amountFen: number }>(`reward/${o}/`), (e) => e.value.amountFen),
    );
  }
  expect(
    sum(ledger.entries<{ amountFen: number }>('pool/'), (e) => e.value.amountFen),
  ).toBeGreaterThanOrEqual(0);
}

test('money and beans are conserved over random histories', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (history) => {
      const ledger = await play(history);
      const wallets = ledger.entries<Wallet>('wallet/').map((e) => e.value);
      const positions = ledger.entries<PositionDelta>('position/').map((e) => e.value);
      const sessions = ledger.entries<Session>('session/').map((e) => e.value);

      for (const w of wallets) expect(w.heldFen).toBe(0);
      expectConserved(ledger);
      const revenue = sum(positions, (p) => p.energyRevenueFen ?? 0);

      expect(sessions).toHaveLength(charges);
      for (const s of sessions) {
        const st = s.settlement!;
        // Recomputed here, not read back: the wallet pays what the beans leave, up to the cap.
        expect(st.chargedFen).toBe(Math.min(st.price.totalFen - st.beanValueFen, s.capFen));
        expect(st.beanValueFen).toBeLessThanOrEqual(st.price.totalFen);
        expect(st.uncollectedFen).toBeGreaterThanOrEqual(0);
        expect(st.chargedFen + st.beanValueFen + st.uncollectedFen).toBe(st.price.totalFen);
      }
      expect(revenue).toBe(sum(sessions, (s) => s.settlement!.chargedFen));

      // Clearing every period the history touched: dues and the pool sum to zero, and the planned
      // transfers move exactly each party's due.
      let poolDues = 0;
      const periods = [
        ...new Set(ledger.entries<PositionDelta>('position/').map((e) => Number(e.key.split('/')[1]))),
      ];
      const after = Math.max(...positions.map((p) => p.at)) + 3 * 86_400;
      for (const period of periods) {
        const r = await ledger.submit(client(OPERATORS[0]!), (ctx) => closePeriod(ctx, period), after);
        const dues = Object.values(r.positions).map((p) => p.dueFen);
        expect(dues.reduce((a, b) => a + b, 0) + r.poolDueFen).toBe(0);
        const net = new Map<string, number>();
        for (const t of r.transfers) {
          expect(t.amountFen).toBeGreaterThan(0);
          net.set(t.from, (net.get(t.from) ?? 0) - t.amountFen);
          net.set(t.to, (net.get(t.to) ?? 0) + t.amountFen);
        }
        for (const [id, pos] of Object.entries(r.positions)) expect(net.get(id) ?? 0).toBe(pos.dueFen);
        expect(net.get(POOL) ?? 0).toBe(r.poolDueFen);
        poolDues += r.poolDueFen;
      }
      // Independently of the clearing formula: across all periods the pool's side is the drivers' unspent
      // money less the rewards the pool paid out.
      const rewardsPaid = -sum(
        ledger.entries<{ amountFen: number; kind: string }>('pool/').filter((e) => e.value.kind === 'reward'),
        (e) => e.value.amountFen,
      );
      expect(poolDues).toBe(sum(wallets, (w) => w.balanceFen) - rewardsPaid);
    }),
    { numRuns: 12, seed: 20261125 },
  );
}, 120_000);

/**
 * The same laws when transactions race: every block's transactions are endorsed against the same state
 * and committed together, so MVCC and phantom checks decide which of them count (adapted from a review).
 */
const idx = fc.nat(99);
const raced = fc.oneof(
  fc.record({ t: fc.constant('buy' as const), o: fc.nat(1), d: idx, beans: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ t: fc.constant('issue' as const), o: fc.nat(1), beans: fc.integer({ min: 1, max: 30 }) }),
  fc.record({
    t: fc.constant('envelope' as const),
    o: fc.nat(1),
    claimants: fc.integer({ min: 1, max: 70 }),
    extra: fc.nat(50),
    random: fc.boolean(),
    ttl: fc.integer({ min: 60, max: 180 }),
  }),
  fc.record({ t: fc.constant('claim' as const), o: fc.nat(1), d: idx, e: idx }),
  fc.record({ t: fc.constant('close' as const), o: fc.nat(1), e: idx }),
  fc.record({
    t: fc.constant('float' as const),
    o: fc.nat(1),
    p: fc.nat(1),
    beans: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({
    t: fc.constant('refund' as const),
    o: fc.nat(1),
    d: idx,
    amount: fc.integer({ min: 1, max: 3_000 }),
  }),
  fc.record({
    t: fc.constant('give' as const),
    o: fc.nat(1),
    d: idx,
    to: idx,
    beans: fc.integer({ min: 1, max: 5 }),
  }),
  fc.record({
    t: fc.constant('topup' as const),
    o: fc.nat(1),
    d: idx,
    amount: fc.integer({ min: 1, max: 5_000 }),
  }),
  fc.record({ t: fc.constant('retire' as const), o: fc.nat(1), p: fc.nat(1) }),
);

test('money and beans are conserved when transactions race in the same blocks', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(raced, { minLength: 2, maxLength: 9 }), { minLength: 20, maxLength: 40 }),
      async (blocks) => {
        const ledger = new MemoryLedger();
        await bootstrap(ledger);
        const drivers = DRIVERS;
        for (const o of OPERATORS) {
          await ledger.submit(client(o), (ctx) => creditReward(ctx, o, 'r1', 100_000));
          await ledger.submit(admin(o), (ctx) => issueBeans(ctx, { beans: 300, reference: 'i1' }));
          await ledger.submit(admin(o), (ctx) =>
            setOperatorPolicy(ctx, { rebateWhPerBean: 7_000, beanSalePriceFen: 50 }),
          );
        }
        for (const p of PILES)
          await ledger.submit(client(opOf(p)), (ctx) =>
            registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
          );
        for (const [i, d] of drivers.entries()) {
          await ledger.submit(client(OPERATORS[0]!), (ctx) =>
            openWallet(ctx, { publicKey: d.keys.publicKeyHex }),
          );
          await ledger.submit(client(OPERATORS[0]!), (ctx) =>
            topUp(ctx, { walletId: d.walletId, amountFen: 50_000, reference: `start${i}` }),
          );
        }
        const envelopes: Array<{ id: string; exp: number }> = [];
        const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;
        // Claims and closes aim at the last few envelopes, so they race each other around expiry.
        const recent = <T>(xs: readonly T[], i: number): T =>
          xs[xs.length - 1 - (i % Math.min(3, xs.length))]!;
        let t = ledger.now;
        let n = 0;
        for (const block of blocks) {
          t += 30;
          const now = t;
          const sims: Array<Promise<Simulation<unknown>>> = [];
          for (const h of block) {
            n += 1;
            const o = OPERATORS[h.o]!;
            const sim = <T>(who: Caller, fn: (ctx: TxContext) => Promise<T>, at = now) =>
              sims.push(ledger.simulate(who, fn, at));
            if (h.t === 'buy')
              sim(client(o), (ctx) => buyBeans(ctx, pick(drivers, h.d).buy(o, h.beans, 100_000, now + 600)));
            else if (h.t === 'issue') {
              const ref = `rw${n}`;
              sim(client(o), (ctx) => creditReward(ctx, o, ref, 500));
              sim(admin(o), (ctx) => issueBeans(ctx, { beans: h.beans, reference: `i${n}` }));
            } else if (h.t === 'envelope') {
              const id = `e${n}`;
              const exp = now + h.ttl;
              envelopes.push({ id, exp });
              sim(admin(o), (ctx) =>
                createEnvelope(ctx, {
                  envelopeId: id,
                  totalBeans: h.claimants + h.extra,
                  claimants: h.claimants,
                  split: h.random ? 'random' : 'equal',
                  expiresAt: exp,
                }),
              );
            } else if (h.t === 'claim' && envelopes.length > 0) {
              const e = recent(envelopes, h.e);
              sim(
                client(o),
                (ctx) => claimEnvelope(ctx, pick(drivers, h.d).claim(e.id, now + 600)),
                Math.min(now, e.exp - 1),
              );
            } else if (h.t === 'close' && envelopes.length > 0) {
              const e = recent(envelopes, h.e);
              sim(client(o), (ctx) => closeEnvelope(ctx, e.id), Math.max(now, e.exp));
            } else if (h.t === 'float') {
              const p = pileOf(o, h.p);
              sim(admin(o), (ctx) =>
                allocateRebateFloat(ctx, { pileId: p.pileId, beans: h.beans, reference: `f${n}` }),
              );
            } else if (h.t === 'refund')
              sim(client(o), (ctx) => refundWallet(ctx, pick(drivers, h.d).refund(o, h.amount, now + 60)));
            else if (h.t === 'give') {
              const [from, to] = [pick(drivers, h.d), pick(drivers, h.to)];
              if (from !== to)
                sim(client(o), (ctx) => transferBeans(ctx, from.transfer(to.walletId, o, h.beans, now + 60)));
            } else if (h.t === 'topup')
              sim(client(o), (ctx) =>
                topUp(ctx, {
                  walletId: pick(drivers, h.d).walletId,
                  amountFen: h.amount,
                  reference: `tp${n}`,
                }),
              );
            else if (h.t === 'retire') {
              const p = pileOf(o, h.p);
              sim(admin(o), (ctx) => setPileStatus(ctx, { pileId: p.pileId, status: 'retired' }));
            }
          }
          const all = await Promise.all(sims);
          // A refusal is part of the game; anything but a DomainError is a bug.
          for (const x of all) if (!x.ok) expect(x.error).toBeInstanceOf(DomainError);
          ledger.commitBlock(all);
          expectConserved(ledger);
        }
      },
    ),
    { numRuns: 4, seed: 20261128 },
  );
}, 120_000);
