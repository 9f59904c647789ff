/**
 * Pile registry. A pile id is "<operator MSP id>.<local id>", so anyone can tell whose pile it is
 * (paper, section 4: piles of different enterprises "can be distinguished by various identifiers").
 * Each pile signs its meter readings with its own SM2 key. Only the owning operator registers, changes
 * or settles for its piles.
 */
import { z } from 'zod';
import { isValidSm2PublicKey } from '../crypto';
import { appendAudit } from './audit';
import { requireAdminRole, requireOperator } from './access';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys, prefixRange } from './keys';
import { getJson, putJson, rangeJson, emit } from './state';
import { creditTreasury } from './treasury';
import { idSchema, mspIdSchema, parse, positiveCountSchema, publicKeySchema, whSchema } from './validate';

export type PileStatus = 'active' | 'suspended' | 'retired';
export interface Pile {
  pileId: string;
  operator: string;
  publicKey: string;
  status: PileStatus;
  registeredAt: number;
  /** Last signed meter value and its time: a later reading may never go below or before them. */
  lastMeterWh: number;
  lastReadingAt: number;
  activeSession?: string;
  /** Beans of the operator set aside for charging rebates at this pile (see beans.ts). */
  rebateFloat: number;
}

const localIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'pile local id: letters, digits, "_" or "-"');
export const pileIdSchema = z
  .string()
  .max(105)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.[A-Za-z0-9_-]{1,40}$/,
    'pile id must be "<operator MSP id>.<local id>"',
  );

/** The pile-id rule, both ways: "<operator MSP id>.<local id>" (MSP ids contain no '.'). */
export function pileIdOf(mspId: string, localId: string): string {
  return `${mspId}.${localId}`;
}
export function operatorOfPile(pileId: string): string {
  return pileId.slice(0, pileId.indexOf('.'));
}

export const PILE_PAGE = 500;
export const listSchema = z.object({ mspId: mspIdSchema, after: localIdSchema.optional() }).strict();

/** An operator's piles in id order, PILE_PAGE at a time; pass the last local id as `after` for the next page. */
export async function listPiles(ctx: TxContext, input: unknown): Promise<{ piles: Pile[]; next?: string }> {
  const q = parse(listSchema, input, 'list');
  const prefix = Keys.pilesPrefix() + pileIdOf(q.mspId, '');
  const [, end] = prefixRange(prefix);
  // Start just after `after`: its own key followed by the lowest character.
  const start = q.after === undefined ? prefix : Keys.pile(pileIdOf(q.mspId, q.after)) + '\u0000';
  const piles = (await rangeJson<Pile>(ctx.store, start, end, PILE_PAGE)).map((e) => e.value);
  const last = piles[piles.length - 1];
  return piles.length === PILE_PAGE && last
    ? { piles, next: last.pileId.slice(q.mspId.length + 1) }
    : { piles };
}

export async function getPile(ctx: TxContext, pileId: string): Promise<Pile> {
  const pile = await getJson<Pile>(ctx.store, Keys.pile(pileId));
  if (!pile) return fail('PILE_NOT_FOUND', `pile ${pileId} is not registered`, { pileId });
  return pile;
}

/** The pile, which must belong to the calling operator. */
export async function getOwnPile(ctx: TxContext, pileId: string): Promise<Pile> {
  const op = await requireOperator(ctx);
  const pile = await getPile(ctx, pileId);
  if (pile.operator !== op.mspId)
    fail('NOT_PILE_OPERATOR', `pile ${pileId} belongs to ${pile.operator}, not ${op.mspId}`, { pileId });
  return pile;
}

export const registerSchema = z
  .object({ localId: localIdSchema, publicKey: publicKeySchema, meterWh: whSchema.default(0) })
  .strict();

export async function registerPile(ctx: TxContext, input: unknown): Promise<Pile> {
  const op = await requireOperator(ctx);
  const req = parse(registerSchema, input, 'pile');
  if (!isValidSm2PublicKey(req.publicKey))
    fail('INVALID_ARGUMENT', 'publicKey is not a point on the SM2 curve');
  const pileId = pileIdOf(op.mspId, req.localId);
  if (await getJson<Pile>(ctx.store, Keys.pile(pileId)))
    fail('PILE_EXISTS', `pile ${pileId} is already registered`);
  const pile: Pile = {
    pileId,
    operator: op.mspId,
    publicKey: req.publicKey,
    status: 'active',
    registeredAt: ctx.now,
    lastMeterWh: req.meterWh,
    lastReadingAt: 0,
    rebateFloat: 0,
  };
  await putJson(ctx.store, Keys.pile(pileId), pile);
  await appendAudit(ctx, op.mspId, 'PileRegistered', { pileId, publicKey: req.publicKey });
  emit(ctx, 'PileRegistered', { pileId });
  return pile;
}

export const statusSchema = z
  .object({ pileId: pileIdSchema, status: z.enum(['active', 'suspended', 'retired']) })
  .strict();

/**
 * Suspend, reactivate or retire (final) a pile. A busy pile can be suspended but not retired.
 *
 * RETIREMENT RULE (written once): suspending and resuming are day-to-day operations any identity of the
 * pile's operator may do (its gateway's client identity included); retiring is permanent (the pile can
 * never charge again and its rebate float goes back to the treasury), so only an admin identity of the
 * pile's operator may retire it.
 */
export async function setPileStatus(ctx: TxContext, input: unknown): Promise<Pile> {
  const req = parse(statusSchema, input, 'pile status');
  const pile = await getOwnPile(ctx, req.pileId);
  if (req.status === 'retired') requireAdminRole(ctx);
  if (pile.status === 'retired') fail('PILE_RETIRED', `pile ${pile.pileId} is retired`);
  if (req.status === 'retired' && pile.activeSession)
    fail('PILE_BUSY', `pile ${pile.pileId} has an open session`, { sessionId: pile.activeSession });
  const updated: Pile = { ...pile, status: req.status };
  const returnedBeans = req.status === 'retired' ? pile.rebateFloat : 0;
  if (returnedBeans > 0) {
    // Beans set aside at a retired pile go back to the operator's treasury.
    await creditTreasury(ctx, pile.operator, pile.rebateFloat);
    updated.rebateFloat = 0;
  }
  await putJson(ctx.store, Keys.pile(pile.pileId), updated);
  await appendAudit(ctx, pile.operator, 'PileStatusChanged', {
    pileId: pile.pileId,
    status: req.status,
    returnedBeans,
  });
  emit(ctx, 'PileStatusChanged', { pileId: pile.pileId, status: req.status, returnedBeans });
  return updated;
}

export const floatSchema = z
  .object({ pileId: pileIdSchema, beans: positiveCountSchema, reference: idSchema })
  .strict();
