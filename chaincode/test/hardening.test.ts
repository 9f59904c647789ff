/**
 * Issue 10: holes found when the rules were tried as an adversarial operator. Each test below failed
 * before its fix.
 */
import { sm3Hex } from '../src/crypto';
import { sealAudit, type AuditRecord } from '../src/domain/audit';
import {
  closePeriod,
  confirmTransfer,
  CLOSE_STEP_POSITIONS,
  periodBounds,
  periodOf,
  POOL,
  rollUpPositions,
  type PositionDelta,
} from '../src/domain/clearing';
import type { TxContext } from '../src/domain/context';
import { confirmMargin, payMargin } from '../src/domain/consortium';
import {
  closeProposal,
  enact,
  ENACTMENT_WINDOW_SEC,
  MAX_VOTING_SEC,
  propose,
  tally,
  vote,
} from '../src/domain/governance';
import { Keys } from '../src/domain/keys';
import { registerPile, setPileStatus } from '../src/domain/piles';
import { poolSummary } from '../src/domain/pool';
import { openWallet, topUp } from '../src/domain/wallets';
import { MemoryLedger } from './support/ledger';
import {
  admin,
  auditor,
  AUDITOR_MSP,
  bootstrap,
  client,
  Driver,
  genesis,
  initPinned,
  custodian,
  OPS,
  PARAMS,
  payMarginConfirmed,
  PileDevice,
  TARIFF,
} from './support/fixtures';

const A = OPS.A.mspId;
const B = OPS.B.mspId;
const C = OPS.C.mspId;
const D = OPS.D.mspId;

describe('item 2: the pool has a custodian', () => {
  test("an operator's own word does not make its margin paid: it counts for nothing until the custodian confirms", async () => {
    const ledger = new MemoryLedger();
    await ledger.submit(admin(A), (ctx) => initPinned(ctx, genesis()));
    await ledger.submit(admin(A), (ctx) => payMargin(ctx));
    await expect(
      ledger.submit(client(A), (ctx) =>
        registerPile(ctx, { localId: 'P', publicKey: new Driver().keys.publicKeyHex }),
      ),
    ).rejects.toMatchObject({ code: 'MARGIN_NOT_PAID' });
    expect((await ledger.evaluate(auditor, (ctx) => poolSummary(ctx))).balanceFen).toBe(0);
    // Once the custodian confirms it, A is a member and its margin is in the pool.
    await ledger.submit(custodian, (ctx) => confirmMargin(ctx, A));
    expect((await ledger.evaluate(auditor, (ctx) => poolSummary(ctx))).balanceFen).toBe(PARAMS.marginFen);
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId: 'P', publicKey: new Driver().keys.publicKeyHex }),
    );
  });

  test("two debtors cannot vouch for each other's payment to the pool", async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const t = ledger.now;
    const d = new Driver();
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    for (const [op, ref] of [
      [A, 'a'],
      [B, 'b'],
    ] as const)
      await ledger.submit(client(op), (ctx) =>
        topUp(ctx, { walletId: d.walletId, amountFen: 1_000, reference: ref }),
      );
    const period = periodOf(t, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const after = t + 2 * 86_400;
    const r = await ledger.submit(client(A), (ctx) => closePeriod(ctx, period), after);
    expect(r.transfers).toEqual([
      { index: 0, from: A, to: '#pool', amountFen: 1_000 },
      { index: 1, from: B, to: '#pool', amountFen: 1_000 },
    ]);
    // B witnesses A's payment to the pool, A witnesses B's: both debts "settled" with no custodian.
    await expect(
      ledger.submit(admin(B), (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payee' }), after),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // Only the custodian's admin confirms the pool's side.
    await expect(
      ledger.submit(
        client(AUDITOR_MSP),
        (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payee' }),
        after,
      ),
    ).rejects.toMatchObject({ code: 'NOT_OPERATOR_ADMIN' });
    await expect(
      ledger.submit(custodian, (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payer' }), after),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await ledger.submit(admin(A), (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payer' }), after);
    const done = await ledger.submit(
      custodian,
      (ctx) => confirmTransfer(ctx, { period, index: 0, side: 'payee' }),
      after,
    );
    expect(done.complete).toBe(true);
  });
});

describe('items 3 and 10: a vote ends, and so does an approval', () => {
  const tariff = {
    ...TARIFF,
    prices: { ...TARIFF.prices, valley: { energyFenPerKwh: 31, serviceFenPerKwh: 80 } },
  };

  test('an approved proposal lapses if not enacted in time', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const t = ledger.now;
    await ledger.submit(admin(A), (ctx) =>
      propose(ctx, {
        proposalId: 'old',
        change: { kind: 'ADMIT_OPERATOR', mspId: 'EchoMSP', name: 'Echo Volt' },
        effectiveFrom: t,
        votingEndsAt: t + 600,
      }),
    );
    for (const o of [A, B, C])
      await ledger.submit(admin(o), (ctx) => vote(ctx, { proposalId: 'old', approve: true }));
    // A year later the old approval is no licence to admit anyone.
    await expect(
      ledger.submit(client(A), (ctx) => enact(ctx, 'old'), t + 365 * 86_400),
    ).rejects.toMatchObject({
      code: 'PROPOSAL_LAPSED',
    });
    // Until the deadline it is not closable; after it, any member closes it as lapsed.
    const deadline = t + 600 + ENACTMENT_WINDOW_SEC;
    await expect(
      ledger.submit(client(B), (ctx) => closeProposal(ctx, 'old'), deadline),
    ).rejects.toMatchObject({
      code: 'PROPOSAL_NOT_CLOSABLE',
    });
    await expect(ledger.submit(client(A), (ctx) => enact(ctx, 'old'), deadline + 1)).rejects.toMatchObject({
      code: 'PROPOSAL_LAPSED',
    });
    expect((await ledger.submit(client(B), (ctx) => closeProposal(ctx, 'old'), deadline + 1)).status).toBe(
      'lapsed',
    );
    // A vote cannot be set so far ahead that the deadline means nothing.
    await expect(
      ledger.submit(admin(A), (ctx) =>
        propose(ctx, {
          proposalId: 'far',
          change: { kind: 'TARIFF', tariff },
          effectiveFrom: t,
          votingEndsAt: t + MAX_VOTING_SEC + 1,
        }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { path: 'proposal.votingEndsAt' } });
  });

  test('an approved proposal is enacted after voting ends, within its window', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const t = ledger.now;
    await ledger.submit(admin(A), (ctx) =>
      propose(ctx, {
        proposalId: 'ok',
        change: { kind: 'TARIFF', tariff },
        effectiveFrom: t,
        votingEndsAt: t + 600,
      }),
    );
    for (const o of [A, B, C])
      await ledger.submit(admin(o), (ctx) => vote(ctx, { proposalId: 'ok', approve: true }));
    const at = t + 600 + ENACTMENT_WINDOW_SEC;
    expect((await ledger.submit(client(D), (ctx) => enact(ctx, 'ok'), at)).status).toBe('enacted');
  });

  test('a vote that failed when voting ended stays failed when an unpaid founder lapses later', async () => {
    const ledger = new MemoryLedger();
    await ledger.submit(admin(A), (ctx) => initPinned(ctx, genesis())); // A, B, C, D at 2/3
    const t0 = ledger.now;
    for (const o of [A, B, C]) await payMarginConfirmed(ledger, o); // D never pays
    const due = t0 + PARAMS.marginDueSec;
    const votingEndsAt = due - 3600; // voting ends while D still counts: 4 operators, 3 approvals needed
    await ledger.submit(admin(A), (ctx) =>
      propose(ctx, { proposalId: 'p', change: { kind: 'TARIFF', tariff }, effectiveFrom: t0, votingEndsAt }),
    );
    for (const o of [A, B])
      await ledger.submit(admin(o), (ctx) => vote(ctx, { proposalId: 'p', approve: true }));
    await expect(ledger.submit(client(A), (ctx) => enact(ctx, 'p'), votingEndsAt)).rejects.toMatchObject({
      code: 'QUORUM_NOT_REACHED',
      details: { approvals: 2, required: 3 },
    });
    expect(await ledger.evaluate(auditor, (ctx) => tally(ctx, 'p'), due + 1)).toMatchObject({
      countedAt: votingEndsAt,
      operators: 4,
      required: 3,
    });
    // An hour after voting, D's grace is over and only 3 operators count now: 2 approvals would do.
    await expect(ledger.submit(client(A), (ctx) => enact(ctx, 'p'), due + 1)).rejects.toMatchObject({
      code: 'QUORUM_NOT_REACHED',
      details: { approvals: 2, required: 3 },
    });
  });
});

describe('item 4b: audit records are sealed in an order no client chooses', () => {
  test('a record stamped earlier does not jump ahead of the records sealed with it', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    await ledger.submit(admin(A), (ctx) => sealAudit(ctx, A));
    const head = ledger.raw(Keys.auditHead(A)) as { chain: string };
    const t = ledger.now;
    // Each later transaction stamps itself earlier (within the 300 s a peer allows).
    for (let i = 0; i < 6; i++)
      await ledger.submit(
        client(A),
        (ctx) => openWallet(ctx, { publicKey: new Driver().keys.publicKeyHex }),
        t - 40 * i,
      );
    const { head: after } = await ledger.submit(admin(A), (ctx) => sealAudit(ctx, A), t + 10);
    const sealed = ledger
      .entries<AuditRecord>(Keys.auditRecordsPrefix(A))
      .map((e) => e.value)
      .slice(-6);
    expect(after.seq).toBe(sealed[5]!.seq);
    const byTime = [...sealed].sort((x, y) => x.at - y.at).map((r) => r.txId);
    const bySeq = sealed.map((r) => r.txId);
    expect(bySeq).not.toEqual(byTime);
    // The documented order: SM3 of the chain head the batch continues, the tx id and the record index.
    const key = (r: AuditRecord) => sm3Hex(`${head.chain}/${r.txId}/0000`);
    expect(bySeq).toEqual([...sealed].sort((x, y) => (key(x) < key(y) ? -1 : 1)).map((r) => r.txId));
  });
});

describe('item 9: a period closes in bounded steps, however many movements it has', () => {
  test('no closing step reads more than a bounded number of positions, and the result is exact', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const t = ledger.now;
    const period = periodOf(t, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    // 1-fen top-up and refund pairs at A (what a member can do at no net cost) and a few real ones at B.
    const seeded: Array<[string, PositionDelta]> = [];
    const N = 25_001;
    for (let i = 0; i < N; i++) {
      const txId = `s${String(i).padStart(63, '0')}`;
      const f = i % 2 === 0 ? { topUpCashFen: 1 } : { refundCashFen: 1 };
      seeded.push([Keys.position(period, A, txId, 0), { mspId: A, txId, at: t, ...f }]);
    }
    for (let i = 0; i < 3; i++) {
      const txId = `b${String(i).padStart(63, '0')}`;
      seeded.push([Keys.position(period, B, txId, 0), { mspId: B, txId, at: t, energyRevenueFen: 100 }]);
    }
    ledger.seed(seeded);
    const [, endsAt] = periodBounds(period, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const at = endsAt + PARAMS.clearingGraceSec;
    const STEP = CLOSE_STEP_POSITIONS + 100; // one step of positions, plus the few records every step reads
    const step = async <T>(fn: (ctx: TxContext) => Promise<T>): Promise<T> => {
      const sim = await ledger.simulate(client(C), fn, at);
      const read = sim.ranges.reduce((s, r) => s + r.consumed, 0) + sim.reads.size;
      expect(read).toBeLessThanOrEqual(STEP);
      if (!sim.ok) throw sim.error;
      expect(ledger.commitBlock([sim])).toEqual(['VALID']);
      return sim.result as T;
    };
    // Too many movements for one step: the close names the operator to roll up first.
    await expect(step((ctx) => closePeriod(ctx, period))).rejects.toMatchObject({
      code: 'PERIOD_NOT_ROLLED_UP',
      details: { mspId: A },
    });
    let steps = 0;
    for (let done = false; !done; steps++)
      ({ done } = await step((ctx) => rollUpPositions(ctx, { period, mspId: A })));
    expect(steps).toBe(Math.ceil(N / CLOSE_STEP_POSITIONS));
    // No new movement lands behind the subtotal once A's positions are being rolled up.
    const d = new Driver();
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    await expect(
      ledger.submit(
        client(A),
        (ctx) => topUp(ctx, { walletId: d.walletId, amountFen: 5, reference: 'late' }),
        t,
      ),
    ).rejects.toMatchObject({ code: 'PERIOD_CLOSED' });
    const r = await step((ctx) => closePeriod(ctx, period));
    // 12,501 top-ups and 12,500 refunds of 1 fen at A; B's revenue of 300 (B's 3 records, not rolled up).
    expect(r.positions[A]).toMatchObject({ topUpCashFen: 12_501, refundCashFen: 12_500, dueFen: -1 });
    expect(r.positions[B]).toMatchObject({ energyRevenueFen: 300, dueFen: 300 });
    expect(r.positions[C]).toMatchObject({ dueFen: 0 });
    expect(r.poolDueFen).toBe(-299);
    expect(Object.values(r.positions).reduce((s, p) => s + p.dueFen, 0) + r.poolDueFen).toBe(0);
    expect(r.transfers).toEqual([
      { index: 0, from: A, to: B, amountFen: 1 },
      { index: 1, from: POOL, to: B, amountFen: 299 },
    ]);
  });

  test('a small period still closes in one ClosePeriod, with or without a roll-up step first', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const t = ledger.now;
    const d = new Driver();
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    for (const ref of ['x', 'y'])
      await ledger.submit(client(A), (ctx) =>
        topUp(ctx, { walletId: d.walletId, amountFen: 100, reference: ref }),
      );
    const period = periodOf(t, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const after = t + 2 * 86_400;
    await expect(
      ledger.submit(client(B), (ctx) => rollUpPositions(ctx, { period, mspId: A }), t + 60),
    ).rejects.toMatchObject({ code: 'PERIOD_NOT_ENDED' });
    expect(
      await ledger.submit(client(B), (ctx) => rollUpPositions(ctx, { period, mspId: A }), after),
    ).toEqual({
      period,
      mspId: A,
      rolledUp: 2,
      movements: 2,
      done: true,
    });
    // Again: nothing more to roll up, nothing written.
    expect(
      (await ledger.submit(client(B), (ctx) => rollUpPositions(ctx, { period, mspId: A }), after)).rolledUp,
    ).toBe(0);
    const r = await ledger.submit(client(B), (ctx) => closePeriod(ctx, period), after);
    expect(r.positions[A]).toMatchObject({ topUpCashFen: 200, dueFen: -200 });
    expect(r.poolDueFen).toBe(200);
    await expect(
      ledger.submit(client(B), (ctx) => rollUpPositions(ctx, { period, mspId: A }), after),
    ).rejects.toMatchObject({ code: 'PERIOD_CLOSED' });
  });
});

describe('item 11a: retiring a pile is for its operator admin', () => {
  test('a client identity may suspend and resume a pile, not retire it', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const p = new PileDevice(`${A}.R1`);
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
    );
    await ledger.submit(client(A), (ctx) => setPileStatus(ctx, { pileId: p.pileId, status: 'suspended' }));
    await ledger.submit(client(A), (ctx) => setPileStatus(ctx, { pileId: p.pileId, status: 'active' }));
    await expect(
      ledger.submit(client(A), (ctx) => setPileStatus(ctx, { pileId: p.pileId, status: 'retired' })),
    ).rejects.toMatchObject({ code: 'NOT_OPERATOR_ADMIN' });
    expect(
      (await ledger.submit(admin(A), (ctx) => setPileStatus(ctx, { pileId: p.pileId, status: 'retired' })))
        .status,
    ).toBe('retired');
  });
});
