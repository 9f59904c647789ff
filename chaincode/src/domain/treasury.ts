/**
 * An operator's issued but undistributed beans (see beans.ts for how they are issued and spent), held in
 * TREASURY_BUCKETS buckets under keys of their own, so that bean sales to different drivers seldom touch
 * the same key (Fabric lets one writer of a key through per block).
 *
 * TREASURY RULE: beans coming in (issuance, an envelope's unclaimed beans, a retired pile's float) are
 * spread over all buckets (splitEqual). A sale takes from the buckets in the visit order of
 * "<walletId>/<nonce>" (buckets.ts), each as far as it goes, so concurrent sales spread out. Operator
 * spending (a rebate float, an envelope) takes from every bucket in proportion to what it holds
 * (splitProportional), which keeps the buckets even for the sales.
 */
import { bucketOrder } from './buckets';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { splitEqual, splitProportional } from './money';
import { getJson, putJson } from './state';

export const TREASURY_BUCKETS = 16;

export interface TreasuryBucket {
  mspId: string;
  bucket: number;
  beans: number;
}

async function bucketBeans(ctx: TxContext, mspId: string, bucket: number): Promise<number> {
  return (await getJson<TreasuryBucket>(ctx.store, Keys.beanTreasury(mspId, bucket)))?.beans ?? 0;
}

async function setBucket(ctx: TxContext, mspId: string, bucket: number, beans: number): Promise<void> {
  await putJson(ctx.store, Keys.beanTreasury(mspId, bucket), {
    mspId,
    bucket,
    beans,
  } satisfies TreasuryBucket);
}

/** Beans in each of the operator's treasury buckets, in bucket order. */
async function holdings(ctx: TxContext, mspId: string): Promise<number[]> {
  const held: number[] = [];
  for (let b = 0; b < TREASURY_BUCKETS; b++) held.push(await bucketBeans(ctx, mspId, b));
  return held;
}

/** Beans in the operator's treasury: the sum of its buckets. */
export async function treasury(ctx: TxContext, mspId: string): Promise<number> {
  return (await holdings(ctx, mspId)).reduce((a, x) => a + x, 0);
}

/** Puts beans into the treasury, spread over every bucket. */
export async function creditTreasury(ctx: TxContext, mspId: string, beans: number): Promise<void> {
  for (const [b, part] of splitEqual(beans, TREASURY_BUCKETS).entries())
    if (part > 0) await setBucket(ctx, mspId, b, (await bucketBeans(ctx, mspId, b)) + part);
}

function short(mspId: string, held: number): never {
  return fail('INSUFFICIENT_BEANS', `the treasury of ${mspId} holds ${held} beans`, { treasury: held });
}

/** A sale: beans taken bucket by bucket in the visit order of `seed`; nothing written if they fall short. */
export async function takeForSale(ctx: TxContext, mspId: string, beans: number, seed: string): Promise<void> {
  const takes: Array<[bucket: number, rest: number]> = [];
  let left = beans;
  for (const b of bucketOrder(seed, TREASURY_BUCKETS)) {
    if (left === 0) break;
    const have = await bucketBeans(ctx, mspId, b);
    const take = Math.min(have, left);
    if (take > 0) takes.push([b, have - take]);
    left -= take;
  }
  if (left > 0) short(mspId, beans - left);
  for (const [b, rest] of takes) await setBucket(ctx, mspId, b, rest);
}

/** Operator spending: beans taken from every bucket in proportion to what it holds. */
export async function debitTreasury(ctx: TxContext, mspId: string, beans: number): Promise<void> {
  const held = await holdings(ctx, mspId);
  const total = held.reduce((a, x) => a + x, 0);
  if (total < beans) short(mspId, total);
  // Largest remainders go to buckets with a fractional share, so no part exceeds what its bucket holds.
  for (const [b, part] of splitProportional(beans, held).entries())
    if (part > 0) await setBucket(ctx, mspId, b, held[b]! - part);
}
