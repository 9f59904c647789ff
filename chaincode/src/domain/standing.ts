/**
 * Standing authorizations: a charger that only knows a local list of RFID cards cannot ask the driver to
 * sign each session, so the driver signs once (messages.ts: standingText) that the card with a given
 * digest (IDTAG DIGEST RULE) may start sessions at the piles of the card's issuing operator, on this
 * wallet, within bounds:
 *
 *   STANDING RULE (written once): a session started on standing authorization S at pile P holds
 *     hold = min(S.capFen, S.totalCapFen - S.spentFen)
 *   of wallet money (and up to S.maxBeans of P's operator's beans) and is accepted only if S exists, the
 *   idTag digest given is S's, S is not revoked, now <= S.expiresAt, P's operator is S.operator, S has
 *   no open session, S.sessions < S.maxSessions and hold >= 1. The start counts the session and marks it
 *   open on S; the settlement adds what was charged to S.spentFen and clears it. So at most totalCapFen
 *   is ever charged on S, and at most maxSessions sessions run, one at a time.
 *
 * One open session per card: every start and settlement on S writes S's own key, so two at once would
 * collide at commit anyway; refusing the second (STANDING_BUSY) says so instead of an MVCC failure.
 *
 * The issuing operator registers it (the driver's signature is checked here) and may revoke it; the
 * driver may revoke it with a signed STANDING-REVOKE, submitted by any member. A registration spends the
 * driver's nonce (replay.ts), so it is taken once.
 */
import { z } from 'zod';
import { appendAudit } from './audit';
import { networkId, requireOperator } from './access';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import {
  requireSignature,
  standingIdOf,
  standingRevocationText,
  standingText,
  type StandingAuthorization,
} from './messages';
import { consumeNonce } from './replay';
import { emit, getJson, putJson } from './state';
import {
  hexSchema,
  mspIdSchema,
  parse,
  positiveCountSchema,
  positiveFenSchema,
  signatureSchema,
  timestampSchema,
} from './validate';
import { getWallet, nonceSchema, walletIdSchema } from './wallets';

/** A standing authorization may run for at most this long from its registration (STANDING_TOO_LONG). */
export const MAX_STANDING_TTL_SEC = 366 * 24 * 3600;

export const idTagSm3Schema = hexSchema(64);
export const standingIdSchema = hexSchema(64);

export const registerStandingSchema = z
  .object({
    walletId: walletIdSchema,
    operator: mspIdSchema,
    idTagSm3: idTagSm3Schema,
    capFen: positiveFenSchema,
    totalCapFen: positiveFenSchema,
    maxSessions: positiveCountSchema,
    maxBeans: z.number().int().min(0).max(1_000_000_000_000),
    nonce: nonceSchema,
    expiresAt: timestampSchema,
    signature: signatureSchema,
  })
  .strict();

/** The driver's signed revocation (walletId and signature), or the issuing operator's (neither). */
export const revokeStandingSchema = z
  .object({
    standingId: standingIdSchema,
    walletId: walletIdSchema.optional(),
    signature: signatureSchema.optional(),
  })
  .strict();

/** What StartSession names instead of a per-session authorization. */
export const standingRefSchema = z
  .object({ standingId: standingIdSchema, idTagSm3: idTagSm3Schema })
  .strict();
export type StandingRef = z.infer<typeof standingRefSchema>;

export const standingByTagSchema = z.object({ operator: mspIdSchema, idTagSm3: idTagSm3Schema }).strict();

export interface Standing extends StandingAuthorization {
  standingId: string;
  registeredAt: number;
  status: 'active' | 'revoked';
  revokedAt?: number;
  /** 'driver' or the MSP id of the operator that revoked it. */
  revokedBy?: string;
  /** Sessions started on it, and wallet money charged by their settlements (STANDING RULE). */
  sessions: number;
  spentFen: number;
  /** The session started on it and not settled yet. */
  open?: { pileId: string; sessionId: string };
}

export async function getStanding(ctx: TxContext, standingId: string): Promise<Standing> {
  const s = await getJson<Standing>(ctx.store, Keys.standing(standingId));
  if (!s)
    return fail('STANDING_NOT_FOUND', `standing authorization ${standingId} does not exist`, { standingId });
  return s;
}

/** The standing authorization last registered for a card at an operator (its CSMS asks at Authorize). */
export async function standingByTag(ctx: TxContext, input: unknown): Promise<Standing> {
  const q = parse(standingByTagSchema, input, 'standing lookup');
  const ref = await getJson<{ standingId: string }>(ctx.store, Keys.standingByTag(q.operator, q.idTagSm3));
  if (!ref)
    return fail('STANDING_NOT_FOUND', `no standing authorization for this card at ${q.operator}`, {
      operator: q.operator,
      idTagSm3: q.idTagSm3,
    });
  return getStanding(ctx, ref.standingId);
}

const live = (s: Standing, now: number): boolean => s.status === 'active' && now <= s.expiresAt;

/** The issuing operator registers a card's standing authorization signed by the driver. */
export async function registerStanding(ctx: TxContext, input: unknown): Promise<Standing> {
  const op = await requireOperator(ctx);
  const req = parse(registerStandingSchema, input, 'standing');
  if (req.operator !== op.mspId)
    fail('STANDING_WRONG_OPERATOR', `only ${req.operator}, the card's issuer, may register it`, {
      operator: req.operator,
    });
  const wallet = await getWallet(ctx, req.walletId);
  const { signature, ...signed } = req;
  requireSignature(
    wallet.publicKey,
    standingText(await networkId(ctx), signed),
    signature,
    'standing authorization',
  );
  if (req.expiresAt < ctx.now)
    fail('STANDING_EXPIRED', 'the standing authorization has expired', { expiresAt: req.expiresAt });
  if (req.expiresAt > ctx.now + MAX_STANDING_TTL_SEC)
    fail('STANDING_TOO_LONG', `a standing authorization may run for at most ${MAX_STANDING_TTL_SEC} s`, {
      expiresAt: req.expiresAt,
      latest: ctx.now + MAX_STANDING_TTL_SEC,
    });
  if (req.capFen > req.totalCapFen)
    fail('INVALID_ARGUMENT', 'standing: capFen: a session cap above the total cap', { path: 'capFen' });
  const tagKey = Keys.standingByTag(req.operator, req.idTagSm3);
  const previous = await getJson<{ standingId: string }>(ctx.store, tagKey);
  if (previous) {
    const p = await getStanding(ctx, previous.standingId);
    // A card carries one live standing authorization at a time: the CSMS must know which one to use.
    if (live(p, ctx.now))
      fail('STANDING_EXISTS', 'this card already has a live standing authorization; revoke it first', {
        standingId: p.standingId,
      });
  }
  await consumeNonce(ctx, wallet.walletId, req.nonce);
  const standing: Standing = {
    ...signed,
    standingId: standingIdOf(wallet.walletId, req.nonce),
    registeredAt: ctx.now,
    status: 'active',
    sessions: 0,
    spentFen: 0,
  };
  await putJson(ctx.store, Keys.standing(standing.standingId), standing);
  await putJson(ctx.store, tagKey, { standingId: standing.standingId });
  await appendAudit(ctx, op.mspId, 'StandingRegistered', {
    standingId: standing.standingId,
    walletId: wallet.walletId,
    capFen: req.capFen,
    totalCapFen: req.totalCapFen,
    maxSessions: req.maxSessions,
    expiresAt: req.expiresAt,
  });
  emit(ctx, 'StandingRegistered', {
    standingId: standing.standingId,
    walletId: wallet.walletId,
    operator: op.mspId,
  });
  return standing;
}

/** Revoked by the driver's signature (any member submits it) or by the issuing operator itself. */
export async function revokeStanding(ctx: TxContext, input: unknown): Promise<Standing> {
  const op = await requireOperator(ctx);
  const req = parse(revokeStandingSchema, input, 'standing revocation');
  const s = await getStanding(ctx, req.standingId);
  let by: string;
  if (req.signature !== undefined || req.walletId !== undefined) {
    if (req.signature === undefined || req.walletId === undefined)
      return fail(
        'INVALID_ARGUMENT',
        "standing revocation: a driver's revocation needs walletId and signature",
      );
    if (req.walletId !== s.walletId)
      fail('STANDING_NOT_FOUND', `standing authorization ${s.standingId} is not wallet ${req.walletId}'s`);
    const wallet = await getWallet(ctx, s.walletId);
    requireSignature(
      wallet.publicKey,
      standingRevocationText(await networkId(ctx), { walletId: s.walletId, standingId: s.standingId }),
      req.signature,
      'standing revocation',
    );
    by = 'driver';
  } else {
    if (op.mspId !== s.operator)
      fail('STANDING_WRONG_OPERATOR', `only ${s.operator} or the driver may revoke it`, {
        operator: s.operator,
      });
    by = op.mspId;
  }
  if (s.status === 'revoked')
    fail('STANDING_REVOKED', `standing authorization ${s.standingId} is already revoked`, {
      revokedAt: s.revokedAt,
    });
  // An open session still settles (settleOnStanding); no new one starts.
  const revoked: Standing = { ...s, status: 'revoked', revokedAt: ctx.now, revokedBy: by };
  await putJson(ctx.store, Keys.standing(s.standingId), revoked);
  await appendAudit(ctx, s.operator, 'StandingRevoked', { standingId: s.standingId, by });
  emit(ctx, 'StandingRevoked', { standingId: s.standingId, walletId: s.walletId, by });
  return revoked;
}

/** What a session started on a standing authorization may hold (STANDING RULE), or why it may not start. */
export async function standingGrant(
  ctx: TxContext,
  ref: StandingRef,
  pileOperator: string,
): Promise<{ standing: Standing; walletId: string; capFen: number; maxBeans: number }> {
  const s = await getStanding(ctx, ref.standingId);
  if (s.idTagSm3 !== ref.idTagSm3)
    fail('STANDING_TAG_MISMATCH', `standing authorization ${s.standingId} is for another card`);
  if (s.status === 'revoked')
    fail('STANDING_REVOKED', `standing authorization ${s.standingId} was revoked`, {
      revokedAt: s.revokedAt,
    });
  if (ctx.now > s.expiresAt)
    fail('STANDING_EXPIRED', `standing authorization ${s.standingId} has expired`, {
      expiresAt: s.expiresAt,
    });
  if (pileOperator !== s.operator)
    fail('STANDING_WRONG_OPERATOR', `the card is valid at ${s.operator}'s piles only`, {
      operator: s.operator,
    });
  if (s.open) fail('STANDING_BUSY', 'a session on this card is still open', { ...s.open });
  const left = s.totalCapFen - s.spentFen;
  if (s.sessions >= s.maxSessions || left < 1)
    fail('STANDING_EXHAUSTED', 'the standing authorization has no sessions or money left', {
      sessions: s.sessions,
      maxSessions: s.maxSessions,
      spentFen: s.spentFen,
      totalCapFen: s.totalCapFen,
    });
  return { standing: s, walletId: s.walletId, capFen: Math.min(s.capFen, left), maxBeans: s.maxBeans };
}

/** Counts a started session on its standing authorization (STANDING RULE). */
export async function startOnStanding(
  ctx: TxContext,
  s: Standing,
  session: { pileId: string; sessionId: string },
): Promise<void> {
  await putJson(ctx.store, Keys.standing(s.standingId), {
    ...s,
    sessions: s.sessions + 1,
    open: { pileId: session.pileId, sessionId: session.sessionId },
  } satisfies Standing);
}

/** Adds a settled session's charge to its standing authorization and frees it (STANDING RULE). */
export async function settleOnStanding(
  ctx: TxContext,
  standingId: string,
  chargedFen: number,
): Promise<void> {
  const s = await getStanding(ctx, standingId);
  const next: Standing = { ...s, spentFen: s.spentFen + chargedFen };
  delete next.open;
  await putJson(ctx.store, Keys.standing(standingId), next);
}
