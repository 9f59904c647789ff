/**
 * The full story of the chaincode issue, through the domain rules on a Fabric-faithful world state:
 * two operators, a driver tops up at A, charges at B, B's beans as rebate, redeems them at B, cannot
 * redeem them at A, a red envelope claimed by three wallets, clearing closed with A owing B, audit chains.
 */
import { auditDigest, auditHead, sealAudit, verifyAuditChain, type AuditRecord } from '../src/domain/audit';
import {
  allocateRebateFloat,
  beanBalance,
  creditReward,
  issuanceState,
  issueBeans,
} from '../src/domain/beans';
import {
  closePeriod,
  confirmTransfer,
  periodBounds,
  periodOf,
  transferStatus,
  POOL,
} from '../src/domain/clearing';
import { setOperatorPolicy } from '../src/domain/consortium';
import { claimEnvelope, closeEnvelope, createEnvelope } from '../src/domain/envelopes';
import { Keys } from '../src/domain/keys';
import { registerPile } from '../src/domain/piles';
import { poolSummary } from '../src/domain/pool';
import { getSession, startSession, stopSession } from '../src/domain/sessions';
import { findSessions, periodPositions } from '../src/domain/lookups';
import { listJson } from '../src/domain/state';
import { getWallet, openWallet, topUp } from '../src/domain/wallets';
import { MemoryLedger } from './support/ledger';
import {
  admin,
  auditor,
  bootstrap,
  client,
  custodian,
  Driver,
  OPS,
  PARAMS,
  PileDevice,
} from './support/fixtures';
import type { Caller } from '../src/domain/context';

const A = OPS.A.mspId;
const B = OPS.B.mspId;

describe('full story: top up at A, charge at B, beans, envelope, clearing, audit', () => {
  const ledger = new MemoryLedger();
  const driver = new Driver();
  const pileA = new PileDevice(`${A}.A001`);
  const pileB = new PileDevice(`${B}.B001`);
  const t0 = ledger.now; // 2026-01-01 08:00 local: start of a flat period (150 fen/kWh all-in)
  const hour = 3600;

  beforeAll(async () => {
    await bootstrap(ledger);
    for (const [op, pile] of [
      [A, pileA],
      [B, pileB],
    ] as const)
      await ledger.submit(client(op), (ctx) =>
        registerPile(ctx, { localId: pile.localId, publicKey: pile.keys.publicKeyHex }),
      );
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: driver.keys.publicKeyHex }));
  });

  test('margins filled the pool', async () => {
    const pool = await ledger.evaluate(auditor, (ctx) => poolSummary(ctx));
    expect(pool).toEqual({
      balanceFen: 4 * PARAMS.marginFen,
      marginsFen: 4 * PARAMS.marginFen,
      rewardsPaidFen: 0,
      movements: 4,
    });
  });

  test('the driver tops up 100 yuan at A; the same payment reference twice is refused', async () => {
    const w = await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: driver.walletId, amountFen: 10_000, reference: 'pay-1' }),
    );
    expect(w.balanceFen).toBe(10_000);
    await expect(
      ledger.submit(client(A), (ctx) =>
        topUp(ctx, { walletId: driver.walletId, amountFen: 10_000, reference: 'pay-1' }),
      ),
    ).rejects.toMatchObject({ code: 'REFERENCE_REPLAYED' });
  });

  test('B issues beans backed by its rewards, and no more', async () => {
    await ledger.submit(client(B), (ctx) => creditReward(ctx, B, 'block-1', 5_000));
    await expect(
      ledger.submit(client(B), (ctx) => creditReward(ctx, B, 'block-1', 5_000)),
    ).rejects.toMatchObject({
      code: 'REFERENCE_REPLAYED',
    });
    await expect(
      ledger.submit(client(B), (ctx) => creditReward(ctx, B, 'block-2', 4 * PARAMS.marginFen)),
    ).rejects.toMatchObject({
      code: 'POOL_EXHAUSTED',
    });
    expect(await ledger.evaluate(auditor, (ctx) => poolSummary(ctx))).toMatchObject({
      balanceFen: 4 * PARAMS.marginFen - 5_000,
      rewardsPaidFen: 5_000,
    });
    expect((await ledger.evaluate(client(B), (ctx) => issuanceState(ctx, B))).limit).toBe(50);
    await ledger.submit(admin(B), (ctx) => issueBeans(ctx, { beans: 30, reference: 'issue-1' }));
    // A retry of the same request (say after a timeout) is detected, not issued twice.
    await expect(
      ledger.submit(admin(B), (ctx) => issueBeans(ctx, { beans: 30, reference: 'issue-1' })),
    ).rejects.toMatchObject({
      code: 'REFERENCE_REPLAYED',
    });
    await ledger.submit(admin(B), (ctx) => issueBeans(ctx, { beans: 20, reference: 'issue-1b' }));
    expect(await ledger.evaluate(client(B), (ctx) => issuanceState(ctx, B))).toMatchObject({
      issued: 50,
      remaining: 0,
      treasury: 50,
    });
    await expect(
      ledger.submit(admin(B), (ctx) => issueBeans(ctx, { beans: 1, reference: 'issue-2' })),
    ).rejects.toMatchObject({
      code: 'ISSUANCE_LIMIT_EXCEEDED',
    });
    await expect(
      ledger.submit(client(B), (ctx) => issueBeans(ctx, { beans: 1, reference: 'issue-3' })),
    ).rejects.toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    await ledger.submit(admin(B), (ctx) =>
      setOperatorPolicy(ctx, { rebateWhPerBean: 5_000, beanSalePriceFen: 90 }),
    );
    await ledger.submit(admin(B), (ctx) =>
      allocateRebateFloat(ctx, { pileId: pileB.pileId, beans: 10, reference: 'float-1' }),
    );
  });

  test("charging 20 kWh at B costs 3000 fen from the wallet and earns 4 of B's beans", async () => {
    await ledger.submit(client(B), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(pileB.pileId, 5_000, t0 + hour),
        startReading: pileB.reading('START', 's1', 0, t0),
      }),
    );
    expect((await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId))).heldFen).toBe(5_000);
    const s = await ledger.submit(
      client(B),
      (ctx) => stopSession(ctx, { stopReading: pileB.reading('STOP', 's1', 20_000, t0 + hour) }),
      t0 + hour,
    );
    expect(s.settlement).toMatchObject({
      energyWh: 20_000,
      beansUsed: 0,
      chargedFen: 3_000,
      rebateBeans: 4,
      uncollectedFen: 0,
    });
    expect(s.settlement?.price).toEqual({
      totalFen: 3_000,
      energyFen: 1_400,
      serviceFen: 1_600,
      whByKind: { peak: 0, flat: 20_000, valley: 0 },
    });
    const w = await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId));
    expect(w).toMatchObject({ balanceFen: 7_000, heldFen: 0 });
    expect(await ledger.evaluate(client(B), (ctx) => beanBalance(ctx, driver.walletId, B))).toBe(4);
  });

  test('the beans are redeemed at B: 3 whole beans cover 3 of 3.5 kWh', async () => {
    const t1 = t0 + hour + 60;
    await ledger.submit(
      client(B),
      (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(pileB.pileId, 1_000, t1 + 600, undefined, 10),
          startReading: pileB.reading('START', 's2', 20_000, t1),
        }),
      t1,
    );
    const s = await ledger.submit(
      client(B),
      (ctx) => stopSession(ctx, { stopReading: pileB.reading('STOP', 's2', 23_500, t1 + 600) }),
      t1 + 600,
    );
    // 3.5 kWh x 150 = 525 fen; 3 beans cover 3000 of 3500 Wh -> 450 fen; the wallet pays 75.
    expect(s.settlement).toMatchObject({
      energyWh: 3_500,
      beansUsed: 3,
      beanValueFen: 450,
      chargedFen: 75,
      rebateBeans: 0,
    });
    expect(await ledger.evaluate(client(B), (ctx) => beanBalance(ctx, driver.walletId, B))).toBe(1);
  });

  test("B's beans are not redeemable at A: a session at A is paid in full from the wallet", async () => {
    const t2 = t0 + 2 * hour; // 10:00 local: peak (190 fen/kWh)
    await ledger.submit(
      client(A),
      (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(pileA.pileId, 2_000, t2 + hour, undefined, 10),
          startReading: pileA.reading('START', 'a1', 1_000, t2),
        }),
      t2,
    );
    const s = await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: pileA.reading('STOP', 'a1', 6_000, t2 + 1800) }),
      t2 + 1800,
    );
    expect(s.settlement).toMatchObject({ energyWh: 5_000, beansUsed: 0, chargedFen: 950 });
    expect(await ledger.evaluate(client(B), (ctx) => beanBalance(ctx, driver.walletId, B))).toBe(1);
    expect((await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId))).balanceFen).toBe(
      10_000 - 3_000 - 75 - 950,
    );
  });

  test('a red envelope of 9 beans is claimed by three wallets, once each, and the rest returns', async () => {
    const friends = [new Driver(), new Driver(), new Driver()];
    for (const f of friends)
      await ledger.submit(client(B), (ctx) => openWallet(ctx, { publicKey: f.keys.publicKeyHex }));
    const exp = t0 + 5 * hour;
    const env = await ledger.submit(admin(B), (ctx) =>
      createEnvelope(ctx, {
        envelopeId: 'newyear',
        totalBeans: 9,
        claimants: 3,
        split: 'random',
        expiresAt: exp,
      }),
    );
    expect(env.amounts.reduce((a, b) => a + b, 0)).toBe(9);
    expect(env.amounts.every((x) => x >= 1)).toBe(true);
    const got: number[] = [];
    for (const f of friends)
      got.push((await ledger.submit(client(A), (ctx) => claimEnvelope(ctx, f.claim('newyear', exp)))).beans);
    // Each wallet got the share its claim record names, and the three shares are all of the envelope's.
    const claims = friends.map(
      (f) => ledger.raw(Keys.envelopeClaim('newyear', f.walletId)) as { index: number },
    );
    expect(got).toEqual(claims.map((c) => env.amounts[c.index]));
    expect(claims.map((c) => c.index).sort()).toEqual([0, 1, 2]);
    await expect(
      ledger.submit(client(A), (ctx) => claimEnvelope(ctx, friends[0]!.claim('newyear', exp))),
    ).rejects.toMatchObject({
      code: 'ENVELOPE_ALREADY_CLAIMED',
    });
    await expect(
      ledger.submit(client(A), (ctx) => claimEnvelope(ctx, driver.claim('newyear', exp))),
    ).rejects.toMatchObject({
      code: 'ENVELOPE_EMPTY',
    });
    for (const [i, f] of friends.entries())
      expect(await ledger.evaluate(client(B), (ctx) => beanBalance(ctx, f.walletId, B))).toBe(got[i]);
    await expect(ledger.submit(client(B), (ctx) => closeEnvelope(ctx, 'newyear'))).rejects.toMatchObject({
      code: 'ENVELOPE_NOT_EXPIRED',
    });
    const closed = await ledger.submit(client(B), (ctx) => closeEnvelope(ctx, 'newyear'), exp);
    expect(closed.returnedBeans).toBe(0);
    await expect(ledger.submit(client(B), (ctx) => closeEnvelope(ctx, 'newyear'), exp)).rejects.toMatchObject(
      {
        code: 'ENVELOPE_CLOSED',
      },
    );
  });

  test('lookups: sessions by wallet and by pile within a time window, running positions of the open period', async () => {
    const byWallet = await ledger.evaluate(auditor, (ctx) =>
      findSessions(ctx, { by: 'wallet', walletId: driver.walletId }),
    );
    expect(byWallet.map((s) => s.sessionId)).toEqual(['s1', 's2', 'a1']);
    const byPile = await ledger.evaluate(auditor, (ctx) =>
      findSessions(ctx, { by: 'pile', pileId: pileB.pileId, window: { from: t0 + 1, to: t0 + 2 * hour } }),
    );
    expect(byPile.map((s) => s.sessionId)).toEqual(['s2']);
    await expect(
      ledger.evaluate(auditor, (ctx) => findSessions(ctx, { by: 'operator' })),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const period = periodOf(t0, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const atB = await ledger.evaluate(auditor, (ctx) =>
      findSessions(ctx, { by: 'operator', mspId: B, period }),
    );
    expect(atB.map((s) => s.sessionId)).toEqual(['s1', 's2']);
    const atA = await ledger.evaluate(auditor, (ctx) =>
      findSessions(ctx, { by: 'operator', mspId: A, period }),
    );
    expect(atA.map((s) => s.sessionId)).toEqual(['a1']);
    const open = await ledger.evaluate(auditor, (ctx) => periodPositions(ctx, period, B));
    expect(Object.keys(open.positions)).toEqual([B]);
    expect(open.positions[B]).toMatchObject({
      energyRevenueFen: 3_075,
      rewardsFen: 5_000,
      dueFen: 8_075,
      movements: 3,
    });
  });

  test('clearing: A took the cash, B earned revenue and a reward, so A owes B; the pool nets the float against the reward', async () => {
    const period = periodOf(t0, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    // One second before the grace time is over is still too early.
    const [, endsAt] = periodBounds(period, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    await expect(
      ledger.submit(client(A), (ctx) => closePeriod(ctx, period), endsAt + PARAMS.clearingGraceSec - 1),
    ).rejects.toMatchObject({
      code: 'PERIOD_NOT_ENDED',
    });
    const after = t0 + 16 * hour + PARAMS.clearingGraceSec; // local midnight is 16 h after 08:00
    const r = await ledger.submit(client(B), (ctx) => closePeriod(ctx, period), after);
    expect(r.positions[A]).toMatchObject({ topUpCashFen: 10_000, energyRevenueFen: 950, dueFen: -9_050 });
    expect(r.positions[B]).toMatchObject({
      energyRevenueFen: 3_075,
      beansRedeemed: 3,
      beansRedeemedValueFen: 450,
      rewardsFen: 5_000,
      dueFen: 3_075 + 5_000, // revenue at its piles + the reward the pool owes it
    });
    // The pool's side: the driver's unspent 5975 fen, less the 5000 fen reward it paid B.
    expect(r.poolDueFen).toBe(9_050 - 3_075 - 5_000);
    const sum = Object.values(r.positions).reduce((s, p) => s + p.dueFen, 0) + r.poolDueFen;
    expect(sum).toBe(0);
    expect(r.transfers).toEqual([
      { index: 0, from: A, to: B, amountFen: 8_075 },
      { index: 1, from: A, to: POOL, amountFen: 975 },
    ]);
    await expect(ledger.submit(client(A), (ctx) => closePeriod(ctx, period), after)).rejects.toMatchObject({
      code: 'PERIOD_CLOSED',
    });
    // Both sides confirm A -> B; each side only for itself.
    await expect(
      ledger.submit(admin(B), (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payer' }), after),
    ).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    const first = await ledger.submit(
      admin(A),
      (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payer' }),
      after,
    );
    expect(first.complete).toBe(false);
    const second = await ledger.submit(
      admin(B),
      (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payee' }),
      after,
    );
    expect(second.complete).toBe(true);
    await expect(
      ledger.submit(admin(B), (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payee' }), after),
    ).rejects.toMatchObject({
      code: 'ALREADY_CONFIRMED',
    });
    const status = await ledger.evaluate(auditor, (ctx) => transferStatus(ctx, period), after);
    expect(status.map((s) => s.complete)).toEqual([true, false]);
    // A -> pool: A confirms it paid; the pool's side needs the custodian's word (no operator's).
    const toPool = (who: Caller, side: 'payer' | 'payee') =>
      ledger.submit(who, (ctx) => confirmTransfer(ctx, { period, index: 1, side }), after);
    expect((await toPool(admin(A), 'payer')).complete).toBe(false);
    await expect(toPool(admin(A), 'payee')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(toPool(admin(B), 'payee')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect((await toPool(custodian, 'payee')).complete).toBe(true);
    const done = await ledger.evaluate(auditor, (ctx) => transferStatus(ctx, period), after);
    expect(done.map((s) => [s.payerConfirmed, s.payeeConfirmed, s.complete])).toEqual([
      [true, true, true],
      [true, true, true],
    ]);
    // Nothing more can land in a closed period.
    await expect(
      ledger.submit(
        client(A),
        (ctx) => topUp(ctx, { walletId: driver.walletId, amountFen: 1, reference: 'late' }),
        t0 + 3 * hour,
      ),
    ).rejects.toMatchObject({ code: 'PERIOD_CLOSED' });
  });

  test("audit: every operator's records chain under SM3 and an auditor detects tampering offline", async () => {
    for (const op of [A, B]) {
      const { sealed, head } = await ledger.submit(client(A), (ctx) => sealAudit(ctx, op));
      expect(sealed).toBeGreaterThan(3);
      const records = await ledger.evaluate(auditor, async (ctx) =>
        (await listJson<AuditRecord>(ctx.store, Keys.auditRecordsPrefix(op))).map((e) => e.value),
      );
      expect(records).toHaveLength(head.seq);
      expect(verifyAuditChain(records)).toEqual({ ok: true, verified: head.seq });
      expect((await ledger.evaluate(auditor, (ctx) => auditHead(ctx, op))).chain).toBe(head.chain);
      const forged = records.map((r, i) => (i === 1 ? { ...r, data: { ...r.data, amountFen: 1 } } : r));
      expect(verifyAuditChain(forged)).toMatchObject({ ok: false, firstBad: { seq: 2, reason: 'digest' } });
      // A forger who also recomputes the digest still breaks the chain link.
      const rebuilt = records.map((r, i) => {
        if (i !== 1) return r;
        const data = { ...r.data, amountFen: 1 };
        const digest = auditDigest({
          mspId: r.mspId,
          type: r.type,
          txId: r.txId,
          at: r.at,
          caller: r.caller,
          data,
        });
        return { ...r, data, digest };
      });
      expect(verifyAuditChain(rebuilt)).toMatchObject({ ok: false, firstBad: { seq: 2, reason: 'link' } });
      // A record removed from the middle is a gap in the sequence, found where it is.
      const dropped = records.filter((_, i) => i !== 2);
      expect(verifyAuditChain(dropped)).toMatchObject({
        ok: false,
        verified: 2,
        firstBad: { seq: 4, reason: 'sequence' },
      });
    }
    await expect(ledger.submit(client(A), (ctx) => sealAudit(ctx, A))).rejects.toMatchObject({
      code: 'AUDIT_NOTHING_TO_SEAL',
    });
    const s = await ledger.evaluate(auditor, (ctx) => getSession(ctx, pileB.pileId, 's1'));
    expect(s.status).toBe('settled');
  });

  test('auditors read everything and write nothing; strangers read nothing', async () => {
    const { requireReader } = await import('../src/domain/access');
    expect(await ledger.evaluate(auditor, (ctx) => requireReader(ctx))).toBe('auditor');
    expect(await ledger.evaluate(client(A), (ctx) => requireReader(ctx))).toBe('operator');
    await expect(ledger.evaluate(client('StrangerMSP'), (ctx) => requireReader(ctx))).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(ledger.submit(auditor, (ctx) => sealAudit(ctx, A))).rejects.toMatchObject({
      code: 'AUDITOR_READ_ONLY',
    });
    await expect(
      ledger.submit(auditor, (ctx) =>
        topUp(ctx, { walletId: driver.walletId, amountFen: 1, reference: 'x' }),
      ),
    ).rejects.toMatchObject({ code: 'AUDITOR_READ_ONLY' });
  });
});
