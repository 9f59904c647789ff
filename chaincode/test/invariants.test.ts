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
import { registerPile, type Pile } from '../src/domain/piles';
import { startSession, stopSession, type Session } from '../src/domain/sessions';
import type { TreasuryBucket } from '../src/domain/treasury';
import { openWallet, refundWallet, topUp, type Wallet } from '../src/domain/wallets';
import { MemoryLedger } from './support/ledger';
import { admin, bootstrap, client, Driver, OPS, PileDevice } from './support/fixtures';

const OPERATORS = [OPS.A.mspId, OPS.B.mspId];
const DRIVERS = Array.from({ length: 4 }, () => new Driver());
const PILES = OPERATORS.flatMap((op) => [new PileDevice(`${op}.X1`), new PileDevice(`${op}.X2`)]);
const opOf = (p: PileDevice): string => p.pileId.split('.')[0]!;

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

test('money and beans are conserved over random histories', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (history) => {
      const ledger = await play(history);
      const wallets = ledger.entries<Wallet>('wallet/').map((e) => e.value);
      const positions = ledger.entries<PositionDelta>('position/').map((e) => e.value);
      const sessions = ledger.entries<Session>('session/').map((e) => e.value);

      for (const w of wallets) {
        expect(w.heldFen).toBe(0);
        expect(w.balanceFen).toBeGreaterThanOrEqual(0);
      }
      const topUps = sum(positions, (p) => p.topUpCashFen ?? 0);
      const revenue = sum(positions, (p) => p.energyRevenueFen ?? 0);
      const sales = sum(positions, (p) => p.beanSalesFen ?? 0);
      const refunds = sum(positions, (p) => p.refundCashFen ?? 0);
      expect(sum(wallets, (w) => w.balanceFen) + revenue + sales + refunds).toBe(topUps);

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

      for (const o of OPERATORS) {
        const issued = sum(ledger.entries<IssuedDelta>(`issued/${o}/`), (e) => e.value.beans);
        const treasury = sum(ledger.entries<TreasuryBucket>(`treasury/${o}/`), (e) => e.value.beans);
        const floats = sum(
          ledger.entries<Pile>('pile/').filter((e) => e.value.operator === o),
          (e) => e.value.rebateFloat,
        );
        const held = sum(
          ledger.entries<BeanBalance>('beans/').filter((e) => e.value.issuer === o),
          (e) => e.value.beans,
        );
        const locked = sum(
          ledger.entries<EnvelopeRecord>('envelope/').filter((e) => e.value.issuer === o),
          (e) =>
            e.value.totalBeans -
            e.value.returnedBeans -
            sum(
              ledger.entries<EnvelopeBucket>(`envbucket/${e.value.envelopeId}/`),
              (b) => b.value.takenBeans,
            ),
        );
        const redeemed = sum(
          positions.filter((p) => p.mspId === o),
          (p) => p.beansRedeemed ?? 0,
        );
        expect(treasury + floats + held + locked + redeemed).toBe(issued);
      }

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
