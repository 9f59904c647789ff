/**
 * Red envelopes: an operator locks N of its beans for K claimants, split equally or at random, until an
 * expiry. Each wallet claims at most once, with its signature; unclaimed beans return to the issuer's
 * treasury after expiry. The random split is fixed when the envelope is created, from SM3 of the
 * transaction id, so every endorsing peer computes the same amounts. Claims of one envelope all update
 * that envelope, so they commit one per block at most: fine for a promotion, documented for operators.
 */
import { z } from 'zod';
import { sm3Hex } from '../crypto';
import { appendAudit } from './audit';
import { beanBalance, setBeanBalance } from './beans';
import { setTreasury, treasury } from './treasury';
import { requireOperator, requireOperatorAdmin } from './access';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { envelopeClaimText, requireSignature } from './messages';
import { splitEqual, splitProportional } from './money';
import { paramsAt } from './params';
import { exists, getJson, putJson, emit } from './state';
import { getWallet, walletIdSchema } from './wallets';
import { idSchema, parse, positiveCountSchema, signatureSchema, timestampSchema } from './validate';

export interface Envelope {
  envelopeId: string;
  issuer: string;
  totalBeans: number;
  amounts: number[];
  claimed: number;
  claimedBeans: number;
  split: 'equal' | 'random';
  createdAt: number;
  expiresAt: number;
  status: 'open' | 'closed';
  returnedBeans: number;
}

/**
 * Every claimant gets at least one bean; the rest is split by weights drawn from SM3(seed || i),
 * exactly (parts sum to the total).
 */
export function randomSplit(total: number, claimants: number, seed: string): number[] {
  const weights = Array.from(
    { length: claimants },
    (_, i) => parseInt(sm3Hex(`${seed}/${i}`).slice(0, 8), 16) + 1,
  );
  return splitProportional(total - claimants, weights).map((x) => x + 1);
}

const createSchema = z
  .object({
    envelopeId: idSchema,
    totalBeans: positiveCountSchema,
    claimants: z.number().int().min(1).max(10_000),
    split: z.enum(['equal', 'random']),
    expiresAt: timestampSchema,
  })
  .strict()
  .refine((e) => e.totalBeans >= e.claimants, {
    message: 'at least one bean per claimant',
    path: ['totalBeans'],
  });

export async function createEnvelope(ctx: TxContext, input: unknown): Promise<Envelope> {
  // Spends the operator's treasury, like issuing beans: an admin decision.
  const op = await requireOperatorAdmin(ctx);
  const req = parse(createSchema, input, 'envelope');
  const p = await paramsAt(ctx.store, ctx.now);
  if (req.totalBeans > p.envelopeMaxBeans)
    fail('AMOUNT_OUT_OF_RANGE', `at most ${p.envelopeMaxBeans} beans per envelope`);
  if (req.claimants > p.envelopeMaxClaimants)
    fail('AMOUNT_OUT_OF_RANGE', `at most ${p.envelopeMaxClaimants} claimants`);
  if (req.expiresAt <= ctx.now || req.expiresAt > ctx.now + p.envelopeMaxTtlSec)
    fail('INVALID_ARGUMENT', `expiresAt must be within ${p.envelopeMaxTtlSec} s from now`);
  if (await exists(ctx.store, Keys.envelope(req.envelopeId)))
    fail('ENVELOPE_EXISTS', `envelope ${req.envelopeId} exists`);
  const t = await treasury(ctx, op.mspId);
  if (t < req.totalBeans) fail('INSUFFICIENT_BEANS', `treasury holds ${t} beans`, { treasury: t });
  const amounts =
    req.split === 'equal'
      ? splitEqual(req.totalBeans, req.claimants)
      : randomSplit(req.totalBeans, req.claimants, `${ctx.txId}/${req.envelopeId}`);
  const env: Envelope = {
    envelopeId: req.envelopeId,
    issuer: op.mspId,
    totalBeans: req.totalBeans,
    amounts,
    claimed: 0,
    claimedBeans: 0,
    split: req.split,
    createdAt: ctx.now,
    expiresAt: req.expiresAt,
    status: 'open',
    returnedBeans: 0,
  };
  await setTreasury(ctx, op.mspId, t - req.totalBeans);
  await putJson(ctx.store, Keys.envelope(env.envelopeId), env);
  await appendAudit(ctx, op.mspId, 'EnvelopeCreated', {
    envelopeId: env.envelopeId,
    totalBeans: env.totalBeans,
    claimants: req.claimants,
    split: req.split,
  });
  emit(ctx, 'EnvelopeCreated', { envelopeId: env.envelopeId, issuer: op.mspId });
  return env;
}

export async function getEnvelope(ctx: TxContext, envelopeId: string): Promise<Envelope> {
  const e = await getJson<Envelope>(ctx.store, Keys.envelope(envelopeId));
  if (!e) return fail('ENVELOPE_NOT_FOUND', `envelope ${envelopeId} does not exist`);
  return e;
}

const claimSchema = z
  .object({
    envelopeId: idSchema,
    walletId: walletIdSchema,
    expiresAt: timestampSchema,
    signature: signatureSchema,
  })
  .strict();

export async function claimEnvelope(ctx: TxContext, input: unknown): Promise<{ beans: number }> {
  await requireOperator(ctx);
  const req = parse(claimSchema, input, 'claim');
  const env = await getEnvelope(ctx, req.envelopeId);
  const w = await getWallet(ctx, req.walletId);
  requireSignature(w.publicKey, envelopeClaimText(req), req.signature, 'claim');
  if (req.expiresAt < ctx.now) fail('AUTHORIZATION_EXPIRED', 'the claim authorization has expired');
  if (env.status !== 'open' || ctx.now >= env.expiresAt)
    fail('ENVELOPE_EXPIRED', `envelope ${env.envelopeId} has expired`);
  const claimKey = Keys.envelopeClaim(env.envelopeId, w.walletId);
  if (await exists(ctx.store, claimKey))
    fail('ENVELOPE_ALREADY_CLAIMED', 'this wallet already claimed this envelope');
  const beans = env.amounts[env.claimed];
  if (beans === undefined) return fail('ENVELOPE_EMPTY', `envelope ${env.envelopeId} is fully claimed`);
  await putJson(ctx.store, claimKey, { beans, index: env.claimed, at: ctx.now, txId: ctx.txId });
  await putJson(ctx.store, Keys.envelope(env.envelopeId), {
    ...env,
    claimed: env.claimed + 1,
    claimedBeans: env.claimedBeans + beans,
  } satisfies Envelope);
  await setBeanBalance(ctx, w.walletId, env.issuer, (await beanBalance(ctx, w.walletId, env.issuer)) + beans);
  await appendAudit(ctx, env.issuer, 'EnvelopeClaimed', {
    envelopeId: env.envelopeId,
    walletId: w.walletId,
    beans,
  });
  emit(ctx, 'EnvelopeClaimed', { envelopeId: env.envelopeId, walletId: w.walletId, beans });
  emit(ctx, 'BeansCredited', { walletId: w.walletId, issuer: env.issuer, beans, reason: 'envelope' });
  return { beans };
}

/** After expiry, any operator returns the unclaimed beans to the issuer's treasury (once). */
export async function closeEnvelope(ctx: TxContext, envelopeId: unknown): Promise<Envelope> {
  await requireOperator(ctx);
  const id = parse(idSchema, envelopeId, 'envelopeId');
  const env = await getEnvelope(ctx, id);
  if (env.status === 'closed') fail('ENVELOPE_CLOSED', `envelope ${id} is already closed`);
  if (ctx.now < env.expiresAt) fail('ENVELOPE_NOT_EXPIRED', `envelope ${id} expires at ${env.expiresAt}`);
  const returned = env.totalBeans - env.claimedBeans;
  await setTreasury(ctx, env.issuer, (await treasury(ctx, env.issuer)) + returned);
  const closed: Envelope = { ...env, status: 'closed', returnedBeans: returned };
  await putJson(ctx.store, Keys.envelope(id), closed);
  await appendAudit(ctx, env.issuer, 'EnvelopeClosed', { envelopeId: id, returnedBeans: returned });
  emit(ctx, 'EnvelopeClosed', { envelopeId: id, returnedBeans: returned });
  return closed;
}
