/**
 * Lookups for operators and auditors: sessions by pile or by wallet within a time window (index keys
 * written once per session at start), settled sessions by operator and clearing period (written at
 * settlement), and positions by period and operator, open or closed. Every index key belongs to one
 * session, so indexing adds no shared key. Results are bounded and in key order.
 */
import { z } from 'zod';
import { dueOf, exactNumber, periodSchema, sumPositions, type Position } from './clearing';
import type { TxContext } from './context';
import { Keys, pad, prefixRange } from './keys';
import { pileIdSchema } from './piles';
import type { Session } from './sessions';
import { getJson, putJson, rangeJson } from './state';
import { idSchema, mspIdSchema, parse, timestampSchema } from './validate';
import { walletIdSchema } from './wallets';

export const MAX_LOOKUP = 500;

export interface SessionIndexEntry {
  pileId: string;
  sessionId: string;
}

/** Called by settlement: makes the session findable by its operator and clearing period. */
export async function indexSettlement(ctx: TxContext, s: Session, period: number): Promise<void> {
  const entry: SessionIndexEntry = { pileId: s.pileId, sessionId: s.sessionId };
  await putJson(ctx.store, Keys.sessionsByPeriod(period, s.operator, s.pileId, s.sessionId), entry);
}

/** Called by startSession: makes the session findable by pile and by wallet. */
export async function indexSession(ctx: TxContext, s: Session): Promise<void> {
  const entry: SessionIndexEntry = { pileId: s.pileId, sessionId: s.sessionId };
  await putJson(ctx.store, Keys.sessionsByPile(s.pileId, s.startedAt, s.sessionId), entry);
  await putJson(ctx.store, Keys.sessionsByWallet(s.walletId, s.startedAt, s.pileId, s.sessionId), entry);
}

const windowSchema = z
  .object({ from: timestampSchema.optional(), to: timestampSchema.optional() })
  .strict()
  .refine((w) => w.from === undefined || w.to === undefined || w.from <= w.to, {
    message: 'from must not be after to',
  });

export const bySchema = z.discriminatedUnion('by', [
  z
    .object({
      by: z.literal('operator'),
      mspId: mspIdSchema,
      period: periodSchema,
      /** The last session of the previous page: the next page starts after it. */
      after: z.object({ pileId: pileIdSchema, sessionId: idSchema }).strict().optional(),
    })
    .strict(),
  z.object({ by: z.literal('pile'), pileId: pileIdSchema, window: windowSchema.optional() }).strict(),
  z.object({ by: z.literal('wallet'), walletId: walletIdSchema, window: windowSchema.optional() }).strict(),
]);

/**
 * Sessions of one pile or one wallet that started in [from, to] (oldest first), or the settled sessions
 * at an operator's piles in one clearing period (by pile and session id, in pages after `after`); at
 * most MAX_LOOKUP.
 */
export async function findSessions(ctx: TxContext, input: unknown): Promise<Session[]> {
  const q = parse(bySchema, input, 'lookup');
  let start: string;
  let end: string;
  if (q.by === 'operator') {
    [start, end] = prefixRange(Keys.sessionsByPeriodPrefix(q.period, q.mspId));
    // A next page starts at the smallest key after the previous page's last one.
    if (q.after)
      start = Keys.sessionsByPeriod(q.period, q.mspId, q.after.pileId, q.after.sessionId) + '\u0000';
  } else {
    const prefix =
      q.by === 'pile' ? Keys.sessionsByPilePrefix(q.pileId) : Keys.sessionsByWalletPrefix(q.walletId);
    // The start-time component is fixed-width, so the window is a key range.
    start = prefix + pad(q.window?.from ?? 0, 12);
    end = prefix + pad((q.window?.to ?? 999_999_999_998) + 1, 12);
  }
  const out: Session[] = [];
  for (const { value } of await rangeJson<SessionIndexEntry>(ctx.store, start, end, MAX_LOOKUP)) {
    const s = await getJson<Session>(ctx.store, Keys.session(value.pileId, value.sessionId));
    if (s) out.push(s);
  }
  return out;
}

export interface PeriodPositions {
  period: number;
  positions: Record<string, Position & { dueFen: number; movements: number }>;
}

/** Running totals of a period (open or closed), per operator, from the per-transaction position keys. */
export async function periodPositions(
  ctx: TxContext,
  period: number,
  mspId?: string,
): Promise<PeriodPositions> {
  const prefix = mspId ? Keys.operatorPositionsPrefix(period, mspId) : Keys.positionsPrefix(period);
  const positions: PeriodPositions['positions'] = Object.create(null) as PeriodPositions['positions'];
  for (const [id, t] of await sumPositions(ctx, prefix)) {
    positions[id] = { ...t, dueFen: exactNumber(dueOf(t), 'due') };
  }
  return { period, positions };
}
