/**
 * Red envelopes: an operator locks N of its beans for K claimants, split equally or at random, until an
 * expiry. Each wallet claims at most once, with its signature; unclaimed beans return to the issuer's
 * treasury after expiry. The random split is fixed when the envelope is created, from SM3 of the
 * transaction id, so every endorsing peer computes the same amounts.
 *
 * CLAIM RULE (no hot key): the K shares are laid out in order over up to ENVELOPE_BUCKETS buckets, each
 * under its own key. A claim visits the buckets in the order bucketOrder (buckets.ts) draws from
 * "<envelopeId>/<walletId>" and takes the next share of the first bucket that has one left. Claims that
 * land in different buckets commit in the same block; only claims in one bucket serialize (MVCC). The
 * envelope key itself is written only at creation and at close, so a close and a claim never both commit.
 */
import { z } from 'zod';
import { sm3Hex } from '../crypto';
import { bucketOrder } from './buckets';
import { appendAudit } from './audit';
import { creditBeans } from './beans';
import { creditTreasury, debitTreasury } from './treasury';
import { networkId, requireOperator, requireOperatorAdmin } from './access';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { envelopeClaimText, requireSignature } from './messages';
import { splitEqual, splitProportional } from './money';
import { paramsAt } from './params';
import { exists, getJson, listJson, putJson, emit } from './state';
import { getWallet, walletIdSchema } from './wallets';
import { idSchema, parse, positiveCountSchema, signatureSchema, timestampSchema } from './validate';

/** Buckets an envelope's shares are spread over (fewer when it has fewer claimants). */
export const ENVELOPE_BUCKETS = 64;

/** What the envelope key holds: what is fixed at creation, and the close. */
export interface EnvelopeRecord {
  envelopeId: string;
  issuer: string;
  totalBeans: number;
  claimants: number;
  buckets: number;
  split: 'equal' | 'random';
  createdAt: number;
  expiresAt: number;
  status: 'open' | 'closed';
  returnedBeans: number;
}

/** A run of consecutive shares under its own key; `taken` of them are claimed, in order. */
export interface EnvelopeBucket {
  envelopeId: string;
  bucket: number;
  /** Index of this bucket's first share among the envelope's shares. */
  first: number;
  amounts: number[];
  taken: number;
  takenBeans: number;
}

/** An envelope as read: the record with its shares and what has been claimed, summed over the buckets. */
export interface Envelope extends EnvelopeRecord {
  amounts: number[];
  claimed: number;
  claimedBeans: number;
}

/** How many shares each bucket holds: consecutive runs whose sizes differ by at most one. */
export function bucketSizes(claimants: number): number[] {
  return splitEqual(claimants, Math.min(claimants, ENVELOPE_BUCKETS));
}

/** The envelope as read: its record and its buckets, in share order. */
function assemble(rec: EnvelopeRecord, buckets: readonly EnvelopeBucket[]): Envelope {
  return {
    ...rec,
    amounts: buckets.flatMap((b) => b.amounts),
    claimed: buckets.reduce((n, b) => n + b.taken, 0),
    claimedBeans: buckets.reduce((n, b) => n + b.takenBeans, 0),
  };
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

export const createSchema = z
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
  const amounts =
    req.split === 'equal'
      ? splitEqual(req.totalBeans, req.claimants)
      : randomSplit(req.totalBeans, req.claimants, `${ctx.txId}/${req.envelopeId}`);
  const sizes = bucketSizes(req.claimants);
  const rec: EnvelopeRecord = {
    envelopeId: req.envelopeId,
    issuer: op.mspId,
    totalBeans: req.totalBeans,
    claimants: req.claimants,
    buckets: sizes.length,
    split: req.split,
    createdAt: ctx.now,
    expiresAt: req.expiresAt,
    status: 'open',
    returnedBeans: 0,
  };
  let first = 0;
  const buckets = sizes.map((size, bucket): EnvelopeBucket => {
    const b = { envelopeId: rec.envelopeId, bucket, first, amounts: amounts.slice(first, first + size) };
    first += size;
    return { ...b, taken: 0, takenBeans: 0 };
  });
  await debitTreasury(ctx, op.mspId, req.totalBeans);
  await putJson(ctx.store, Keys.envelope(rec.envelopeId), rec);
  for (const b of buckets) await putJson(ctx.store, Keys.envelopeBucket(rec.envelopeId, b.bucket), b);
  const env = assemble(rec, buckets);
  await appendAudit(ctx, op.mspId, 'EnvelopeCreated', {
    envelopeId: env.envelopeId,
    totalBeans: env.totalBeans,
    claimants: req.claimants,
    split: req.split,
  });
  emit(ctx, 'EnvelopeCreated', { envelopeId: env.envelopeId, issuer: op.mspId });
  return env;
}

async function getRecord(ctx: TxContext, envelopeId: string): Promise<EnvelopeRecord> {
  const e = await getJson<EnvelopeRecord>(ctx.store, Keys.envelope(envelopeId));
  if (!e) return fail('ENVELOPE_NOT_FOUND', `envelope ${envelopeId} does not exist`);
  return e;
}

async function withBuckets(ctx: TxContext, rec: EnvelopeRecord): Promise<Envelope> {
  const buckets = await listJson<EnvelopeBucket>(ctx.store, Keys.envelopeBucketsPrefix(rec.envelopeId));
  return assemble(
    rec,
    buckets.map((e) => e.value),
  );
}

export async function getEnvelope(ctx: TxContext, envelopeId: string): Promise<Envelope> {
  return withBuckets(ctx, await getRecord(ctx, envelopeId));
}

export const claimSchema = z
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
  const env = await getRecord(ctx, req.envelopeId);
  const w = await getWallet(ctx, req.walletId);
  requireSignature(w.publicKey, envelopeClaimText(await networkId(ctx), req), req.signature, 'claim');
  if (req.expiresAt < ctx.now) fail('AUTHORIZATION_EXPIRED', 'the claim authorization has expired');
  if (env.status !== 'open' || ctx.now >= env.expiresAt)
    fail('ENVELOPE_EXPIRED', `envelope ${env.envelopeId} has expired`);
  const claimKey = Keys.envelopeClaim(env.envelopeId, w.walletId);
  if (await exists(ctx.store, claimKey))
    fail('ENVELOPE_ALREADY_CLAIMED', 'this wallet already claimed this envelope');
  const b = await bucketWithShare(ctx, env, w.walletId);
  const beans = b.amounts[b.taken]!;
  const index = b.first + b.taken;
  const taken: EnvelopeBucket = { ...b, taken: b.taken + 1, takenBeans: b.takenBeans + beans };
  await putJson(ctx.store, Keys.envelopeBucket(env.envelopeId, b.bucket), taken);
  await putJson(ctx.store, claimKey, { beans, index, bucket: b.bucket, at: ctx.now, txId: ctx.txId });
  await creditBeans(ctx, w.walletId, env.issuer, beans);
  await appendAudit(ctx, env.issuer, 'EnvelopeClaimed', {
    envelopeId: env.envelopeId,
    walletId: w.walletId,
    beans,
  });
  emit(ctx, 'EnvelopeClaimed', { envelopeId: env.envelopeId, walletId: w.walletId, beans });
  emit(ctx, 'BeansCredited', { walletId: w.walletId, issuer: env.issuer, beans, reason: 'envelope' });
  return { beans };
}

/** The claim rule: the first bucket, in the wallet's own order, with a share left. */
async function bucketWithShare(
  ctx: TxContext,
  env: EnvelopeRecord,
  walletId: string,
): Promise<EnvelopeBucket> {
  for (const i of bucketOrder(`${env.envelopeId}/${walletId}`, env.buckets)) {
    const b = await getJson<EnvelopeBucket>(ctx.store, Keys.envelopeBucket(env.envelopeId, i));
    if (b && b.taken < b.amounts.length) return b;
  }
  return fail('ENVELOPE_EMPTY', `envelope ${env.envelopeId} is fully claimed`);
}

/** After expiry, any operator returns the unclaimed beans to the issuer's treasury (once). */
export async function closeEnvelope(ctx: TxContext, envelopeId: unknown): Promise<Envelope> {
  await requireOperator(ctx);
  const id = parse(idSchema, envelopeId, 'envelopeId');
  const rec = await getRecord(ctx, id);
  if (rec.status === 'closed') fail('ENVELOPE_CLOSED', `envelope ${id} is already closed`);
  if (ctx.now < rec.expiresAt) fail('ENVELOPE_NOT_EXPIRED', `envelope ${id} expires at ${rec.expiresAt}`);
  // Reading every bucket makes a claim committed in the same block invalidate this close, or vice versa.
  const env = await withBuckets(ctx, rec);
  const returned = env.totalBeans - env.claimedBeans;
  await creditTreasury(ctx, env.issuer, returned);
  const closed: EnvelopeRecord = { ...rec, status: 'closed', returnedBeans: returned };
  await putJson(ctx.store, Keys.envelope(id), closed);
  await appendAudit(ctx, env.issuer, 'EnvelopeClosed', { envelopeId: id, returnedBeans: returned });
  emit(ctx, 'EnvelopeClosed', { envelopeId: id, returnedBeans: returned });
  return { ...env, ...closed };
}
