/**
 * Inter-operator clearing, with no clearing house in the middle.
 *
 * Every money movement updates the operators' positions in the clearing period of its transaction time:
 * one new key per transaction (no hot key). Closing a period (any member, once the period plus a grace
 * time is over) aggregates them:
 *
 *   due(op) = energy revenue at op's piles (wallet money) + bean sales by op + block rewards paid to op
 *             out of the pool + cash op paid out in wallet refunds - cash op took in top-ups
 *
 * A positive due is owed to the operator, a negative one is owed by it. The pool's side is what is left:
 * drivers' wallet money topped up but not yet spent (or spent from earlier float), less the rewards it
 * paid: pool = -sum(due), so the period sums to zero against the pool. Transfers pair debtors with
 * creditors in English-name order (any pairing settles; this one is deterministic and has at most
 * (#operators) transfers plus one per operator with the pool).
 *
 * BOUNDED CLOSE RULE (written once): no closing step reads more than CLOSE_STEP_POSITIONS position
 * records, so no volume of movements (honest, or 1-fen top-up/refund pairs made to block the close) can
 * push a step past a peer's execute time-out. Any member may roll up an operator's positions of an ended
 * period in steps (RollUpPositions: the next CLOSE_STEP_POSITIONS records after the last one rolled up
 * are added to the operator's running subtotal `rollup/<period>/<mspId>`); ClosePeriod then adds each
 * operator's subtotal and the records after it, and refuses (PERIOD_NOT_ROLLED_UP, naming the operator)
 * when those remaining records exceed CLOSE_STEP_POSITIONS in all. Once an operator's positions of a
 * period are being rolled up, no new movement may be recorded for it in that period (PERIOD_CLOSED), so
 * none can land behind the subtotal's cursor; on a network none could anyway, since the grace time is at
 * least the peers' clock gate. Every record is counted exactly once, so the conservation law holds. Every transfer is confirmed by both
 * sides; the pool's side only by the pool's custodian (CUSTODIAN RULE, consortium.ts), so no operator
 * settles with the pool on its own word or on a fellow debtor's.
 */
import { z } from 'zod';
import {
  allOperators,
  custodianOf,
  getConsortium,
  requireAdminRole,
  requireOperator,
  requireOperatorAdmin,
} from './access';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys, prefixRange } from './keys';
import { paramsAt } from './params';
import { exists, getJson, listJson, putJson, rangeJson, emit, prefetch } from './state';
import { nextIndex } from './txindex';
import { appendAudit } from './audit';
import { mspIdSchema, parse } from './validate';

/** The pool's side of a transfer; '#' cannot occur in an MSP id, so no operator is mistaken for it. */
export const POOL = '#pool';

export const POSITION_FIELDS = [
  'energyRevenueFen',
  'beanSalesFen',
  'topUpCashFen',
  'beansRedeemed',
  'beansRedeemedValueFen',
  'rewardsFen',
  'refundCashFen',
] as const;
export type PositionField = (typeof POSITION_FIELDS)[number];
export type Position = Record<PositionField, number>;

export const emptyPosition = (): Position => ({
  energyRevenueFen: 0,
  beanSalesFen: 0,
  topUpCashFen: 0,
  beansRedeemed: 0,
  beansRedeemedValueFen: 0,
  rewardsFen: 0,
  refundCashFen: 0,
});

export interface PositionDelta extends Partial<Position> {
  mspId: string;
  txId: string;
  at: number;
}

export function periodOf(t: number, periodSec: number, utcOffsetMinutes: number): number {
  return Math.floor((t + utcOffsetMinutes * 60) / periodSec);
}
export function periodBounds(period: number, periodSec: number, utcOffsetMinutes: number): [number, number] {
  const start = period * periodSec - utcOffsetMinutes * 60;
  return [start, start + periodSec];
}

/** Records a movement in the current period; refuses to write into a period already closed. */
export async function addPosition(ctx: TxContext, mspId: string, delta: Partial<Position>): Promise<number> {
  const p = await paramsAt(ctx.store, ctx.now);
  const period = periodOf(ctx.now, p.clearingPeriodSec, p.clearingUtcOffsetMinutes);
  prefetch(ctx.store, [Keys.clearing(period), Keys.rollup(period, mspId)]); // both read when it succeeds
  if (await exists(ctx.store, Keys.clearing(period)))
    fail('PERIOD_CLOSED', `clearing period ${period} is already closed; resubmit with a current timestamp`, {
      period,
    });
  if (await exists(ctx.store, Keys.rollup(period, mspId)))
    fail('PERIOD_CLOSED', `clearing period ${period} is being closed; resubmit with a current timestamp`, {
      period,
    });
  const rec: PositionDelta = { ...delta, mspId, txId: ctx.txId, at: ctx.now };
  await putJson(ctx.store, Keys.position(period, mspId, ctx.txId, nextIndex(ctx, 'position')), rec);
  return period;
}

export interface Transfer {
  index: number;
  from: string;
  to: string;
  amountFen: number;
}
export interface ClearingResult {
  period: number;
  startsAt: number;
  endsAt: number;
  closedAt: number;
  closedBy: string;
  positions: Record<string, Position & { dueFen: number }>;
  poolDueFen: number;
  transfers: Transfer[];
}

export function dueOf(p: Position): bigint {
  return (
    BigInt(p.energyRevenueFen) +
    BigInt(p.beanSalesFen) +
    BigInt(p.rewardsFen) +
    BigInt(p.refundCashFen) -
    BigInt(p.topUpCashFen)
  );
}

/** A BigInt sum as a number, refused (never rounded) outside the exact integer range. */
export function exactNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
    fail('AMOUNT_OUT_OF_RANGE', `${what} exceeds the exact integer range`, { value: v.toString() });
  return Number(v);
}

/**
 * Per-operator totals of the position deltas under `prefix`, summed in BigInt and checked exact, in a
 * Map (never a plain object, whose inherited names an MSP id could collide with).
 */
export async function sumPositions(
  ctx: TxContext,
  prefix: string,
): Promise<Map<string, Position & { movements: number }>> {
  const big = new Map<string, Record<PositionField, bigint> & { movements: number }>();
  for (const { value } of await listJson<PositionDelta>(ctx.store, prefix)) {
    let t = big.get(value.mspId);
    if (!t)
      big.set(
        value.mspId,
        (t = {
          ...(Object.fromEntries(POSITION_FIELDS.map((f) => [f, 0n])) as Record<PositionField, bigint>),
          movements: 0,
        }),
      );
    for (const f of POSITION_FIELDS) t[f] += BigInt(value[f] ?? 0);
    t.movements += 1;
  }
  const out = new Map<string, Position & { movements: number }>();
  for (const [id, t] of big) {
    const p = emptyPosition();
    for (const f of POSITION_FIELDS) p[f] = exactNumber(t[f], f);
    out.set(id, { ...p, movements: t.movements });
  }
  return out;
}

/**
 * Pairs debtors with creditors (both in the given order), then settles what is left with the pool.
 * Pure, so it is tested directly: transfers always net every party's due exactly.
 */
export function planTransfers(dues: ReadonlyArray<{ mspId: string; dueFen: number }>): Transfer[] {
  const debtors = dues.filter((d) => d.dueFen < 0).map((d) => ({ id: d.mspId, left: -d.dueFen }));
  const creditors = dues.filter((d) => d.dueFen > 0).map((d) => ({ id: d.mspId, left: d.dueFen }));
  const out: Transfer[] = [];
  let i = 0;
  let j = 0;
  while (i < debtors.length && j < creditors.length) {
    const d = debtors[i]!;
    const c = creditors[j]!;
    const amt = Math.min(d.left, c.left);
    out.push({ index: out.length, from: d.id, to: c.id, amountFen: amt });
    d.left -= amt;
    c.left -= amt;
    if (d.left === 0) i++;
    if (c.left === 0) j++;
  }
  for (; i < debtors.length; i++) {
    const d = debtors[i]!;
    if (d.left > 0) out.push({ index: out.length, from: d.id, to: POOL, amountFen: d.left });
  }
  for (; j < creditors.length; j++) {
    const c = creditors[j]!;
    if (c.left > 0) out.push({ index: out.length, from: POOL, to: c.id, amountFen: c.left });
  }
  return out;
}

export const periodSchema = z.number().int().min(0).max(100_000_000);

/** BOUNDED CLOSE RULE: the most position records one closing step reads. */
export const CLOSE_STEP_POSITIONS = 10_000;

/** An operator's running subtotal of a period's positions (BOUNDED CLOSE RULE). */
export interface Rollup {
  period: number;
  mspId: string;
  position: Position;
  movements: number;
  /** The last position key added; the next step continues after it. */
  lastKey: string;
}

type BigPosition = Record<PositionField, bigint>;
const toBig = (p: Position): BigPosition =>
  Object.fromEntries(POSITION_FIELDS.map((f) => [f, BigInt(p[f])])) as BigPosition;
function addDeltas(acc: BigPosition, deltas: ReadonlyArray<{ value: PositionDelta }>): void {
  for (const { value } of deltas) for (const f of POSITION_FIELDS) acc[f] += BigInt(value[f] ?? 0);
}
function exactPosition(big: BigPosition): Position {
  const p = emptyPosition();
  for (const f of POSITION_FIELDS) p[f] = exactNumber(big[f], f);
  return p;
}

/** A period being closed (a step of it): it must have ended, grace included, and not be closed. */
async function closingPeriod(ctx: TxContext, period: number): Promise<{ startsAt: number; endsAt: number }> {
  const p = await paramsAt(ctx.store, ctx.now);
  const [startsAt, endsAt] = periodBounds(period, p.clearingPeriodSec, p.clearingUtcOffsetMinutes);
  if (ctx.now < endsAt + p.clearingGraceSec)
    fail('PERIOD_NOT_ENDED', `period ${period} can be closed from ${endsAt + p.clearingGraceSec}`, {
      period,
    });
  if (await exists(ctx.store, Keys.clearing(period)))
    fail('PERIOD_CLOSED', `period ${period} is already closed`);
  return { startsAt, endsAt };
}

/** Position records of an operator in a period after its subtotal's cursor, at most `limit`. */
async function positionsAfter(
  ctx: TxContext,
  period: number,
  mspId: string,
  rollup: Rollup | undefined,
  limit: number,
): Promise<Array<{ key: string; value: PositionDelta }>> {
  const [start, end] = prefixRange(Keys.operatorPositionsPrefix(period, mspId));
  return rangeJson<PositionDelta>(ctx.store, rollup ? rollup.lastKey + '\u0000' : start, end, limit);
}

export const rollUpSchema = z.object({ period: periodSchema, mspId: mspIdSchema }).strict();

/**
 * One step of closing a period (BOUNDED CLOSE RULE): adds the next CLOSE_STEP_POSITIONS position records
 * of an operator to its subtotal. Any member, for any operator, once the period and its grace are over.
 * Resubmitting continues after the last step; two steps for one operator at once conflict on its subtotal.
 */
export async function rollUpPositions(
  ctx: TxContext,
  input: unknown,
): Promise<{ period: number; mspId: string; rolledUp: number; movements: number; done: boolean }> {
  const caller = (await requireOperator(ctx)).mspId;
  const req = parse(rollUpSchema, input, 'rollup');
  await closingPeriod(ctx, req.period);
  const key = Keys.rollup(req.period, req.mspId);
  const prev = await getJson<Rollup>(ctx.store, key);
  const chunk = await positionsAfter(ctx, req.period, req.mspId, prev, CLOSE_STEP_POSITIONS);
  const done = chunk.length < CLOSE_STEP_POSITIONS;
  const movements = (prev?.movements ?? 0) + chunk.length;
  const out = { period: req.period, mspId: req.mspId, rolledUp: chunk.length, movements, done };
  if (chunk.length === 0) return out; // nothing (more) to roll up: nothing written
  const sum = toBig(prev?.position ?? emptyPosition());
  addDeltas(sum, chunk);
  const rollup: Rollup = {
    period: req.period,
    mspId: req.mspId,
    position: exactPosition(sum),
    movements,
    lastKey: chunk[chunk.length - 1]!.key,
  };
  await putJson(ctx.store, key, rollup);
  await appendAudit(ctx, caller, 'PositionsRolledUp', {
    period: req.period,
    mspId: req.mspId,
    rolledUp: chunk.length,
    movements,
  });
  emit(ctx, 'PositionsRolledUp', { period: req.period, mspId: req.mspId, movements, done });
  return out;
}

/**
 * The final step of closing a period (BOUNDED CLOSE RULE): each operator's subtotal plus its records
 * after it, at most CLOSE_STEP_POSITIONS such records in all; the dues, the pool's side and the transfers.
 */
export async function closePeriod(ctx: TxContext, periodInput: unknown): Promise<ClearingResult> {
  const caller = await requireOperator(ctx);
  const period = parse(periodSchema, periodInput, 'period');
  const { startsAt, endsAt } = await closingPeriod(ctx, period);
  // A null-prototype record: an MSP id such as "constructor" must not meet an inherited property.
  const positions: Record<string, Position & { dueFen: number }> = Object.create(null) as Record<
    string,
    Position & { dueFen: number }
  >;
  const ordered: string[] = [];
  let budget = CLOSE_STEP_POSITIONS;
  let sum = 0n;
  // Positions are only ever recorded for admitted operators; allOperators is in English-name order.
  for (const op of await allOperators(ctx)) {
    const rollup = await getJson<Rollup>(ctx.store, Keys.rollup(period, op.mspId));
    const tail = await positionsAfter(ctx, period, op.mspId, rollup, budget + 1);
    if (tail.length > budget)
      fail(
        'PERIOD_NOT_ROLLED_UP',
        `period ${period} has too many movements to close in one step: roll up ${op.mspId}'s positions first (RollUpPositions)`,
        { period, mspId: op.mspId, step: CLOSE_STEP_POSITIONS },
      );
    budget -= tail.length;
    const movements = (rollup?.movements ?? 0) + tail.length;
    if (movements === 0 && op.marginPaidFen === 0) continue;
    const big = toBig(rollup?.position ?? emptyPosition());
    addDeltas(big, tail);
    const pos = exactPosition(big);
    const due = dueOf(pos);
    positions[op.mspId] = { ...pos, dueFen: exactNumber(due, 'due') };
    ordered.push(op.mspId);
    sum += due;
  }
  const result: ClearingResult = {
    period,
    startsAt,
    endsAt,
    closedAt: ctx.now,
    closedBy: caller.mspId,
    positions,
    poolDueFen: exactNumber(-sum, 'pool due'),
    transfers: planTransfers(ordered.map((id) => ({ mspId: id, dueFen: positions[id]!.dueFen }))),
  };
  await putJson(ctx.store, Keys.clearing(period), result);
  await appendAudit(ctx, caller.mspId, 'ClearingPeriodClosed', {
    period,
    poolDueFen: result.poolDueFen,
    transfers: result.transfers.length,
  });
  emit(ctx, 'ClearingPeriodClosed', { period, transfers: result.transfers.length });
  return result;
}

export async function getClearing(ctx: TxContext, period: number): Promise<ClearingResult> {
  const r = await getJson<ClearingResult>(ctx.store, Keys.clearing(period));
  if (!r) return fail('PERIOD_NOT_CLOSED', `period ${period} is not closed`);
  return r;
}

export const confirmSchema = z
  .object({
    period: periodSchema,
    index: z.number().int().min(0).max(10_000),
    side: z.enum(['payer', 'payee']),
  })
  .strict();

export interface Confirmation {
  mspId: string;
  at: number;
  txId: string;
}

/**
 * The payer confirms it sent, the payee that it received; each operator only for itself, and the pool's
 * side only the pool's custodian (an admin identity of it).
 */
export async function confirmTransfer(
  ctx: TxContext,
  input: unknown,
): Promise<{ transfer: Transfer; complete: boolean }> {
  const custodian = custodianOf(await getConsortium(ctx));
  let who: string;
  if (ctx.caller.mspId === custodian) {
    requireAdminRole(ctx);
    who = custodian;
  } else who = (await requireOperatorAdmin(ctx)).mspId;
  const req = parse(confirmSchema, input, 'confirmation');
  const result = await getClearing(ctx, req.period);
  const t = result.transfers[req.index];
  if (!t) return fail('TRANSFER_NOT_FOUND', `period ${req.period} has no transfer ${req.index}`);
  const party = req.side === 'payer' ? t.from : t.to;
  const otherSide = req.side === 'payer' ? 'payee' : 'payer';
  if (party === POOL && who !== custodian)
    fail('FORBIDDEN', `only the pool's custodian confirms the pool's side of transfer ${req.index}`);
  if (party !== POOL && party !== who)
    fail('FORBIDDEN', `${who} is not the ${req.side} of transfer ${req.index}`);
  const key = Keys.confirmation(req.period, req.index, req.side);
  if (await exists(ctx.store, key))
    fail('ALREADY_CONFIRMED', `the ${req.side} already confirmed transfer ${req.index}`);
  const conf: Confirmation = { mspId: who, at: ctx.now, txId: ctx.txId };
  await putJson(ctx.store, key, conf);
  const complete = await exists(ctx.store, Keys.confirmation(req.period, req.index, otherSide));
  // The custodian has no chain of its own: its confirmation goes to the chain of the operator it settles with.
  await appendAudit(
    ctx,
    party === POOL ? (req.side === 'payer' ? t.to : t.from) : who,
    'ClearingTransferConfirmed',
    {
      period: req.period,
      index: req.index,
      side: req.side,
      complete,
    },
  );
  emit(ctx, 'ClearingTransferConfirmed', { period: req.period, index: req.index, side: req.side, complete });
  return { transfer: t, complete };
}

export async function transferStatus(
  ctx: TxContext,
  period: number,
): Promise<Array<Transfer & { payerConfirmed: boolean; payeeConfirmed: boolean; complete: boolean }>> {
  const result = await getClearing(ctx, period);
  return Promise.all(
    result.transfers.map(async (t) => {
      const payerConfirmed = await exists(ctx.store, Keys.confirmation(period, t.index, 'payer'));
      const payeeConfirmed = await exists(ctx.store, Keys.confirmation(period, t.index, 'payee'));
      return { ...t, payerConfirmed, payeeConfirmed, complete: payerConfirmed && payeeConfirmed };
    }),
  );
}
