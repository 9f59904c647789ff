/**
 * An operator's issued but undistributed beans (see beans.ts for how they are issued and spent), held in
 * TREASURY_BUCKETS buckets under keys of their own, so that bean sales to different drivers seldom touch
 * the same key (Fabric lets one writer of a key through per block).
 *
 * TREASURY RULE: beans coming in (issuance, an envelope's unclaimed beans, a retired pile's float) are
 * spread over all buckets (splitEqual); beans going out are taken from the buckets in order from a start
 * bucket, each as far as it goes, until the amount is covered. A sale starts where SM3 of the purchase
 * points, so concurrent sales spread out; operator actions start at bucket 0.
 */
import { sm3Hex } from '../crypto';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { splitEqual } from './money';
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

/** Beans in the operator's treasury: the sum of its buckets. */
export async function treasury(ctx: TxContext, mspId: string): Promise<number> {
  let sum = 0;
  for (let b = 0; b < TREASURY_BUCKETS; b++) sum += await bucketBeans(ctx, mspId, b);
  return sum;
}

/** The bucket a sale starts taking from: the first 8 hex digits of SM3(seed) mod TREASURY_BUCKETS. */
export function startBucket(seed: string): number {
  return parseInt(sm3Hex(seed).slice(0, 8), 16) % TREASURY_BUCKETS;
}

/** Puts beans into the treasury, spread over every bucket. */
export async function creditTreasury(ctx: TxContext, mspId: string, beans: number): Promise<void> {
  for (const [b, part] of splitEqual(beans, TREASURY_BUCKETS).entries())
    if (part > 0) await setBucket(ctx, mspId, b, (await bucketBeans(ctx, mspId, b)) + part);
}

/** Takes beans out, bucket by bucket from `start`; INSUFFICIENT_BEANS, writing nothing, if they fall short. */
export async function debitTreasury(ctx: TxContext, mspId: string, beans: number, start = 0): Promise<void> {
  const takes: Array<[bucket: number, rest: number]> = [];
  let left = beans;
  for (let i = 0; i < TREASURY_BUCKETS && left > 0; i++) {
    const b = (start + i) % TREASURY_BUCKETS;
    const have = await bucketBeans(ctx, mspId, b);
    const take = Math.min(have, left);
    if (take > 0) takes.push([b, have - take]);
    left -= take;
  }
  if (left > 0) {
    const held = beans - left;
    fail('INSUFFICIENT_BEANS', `the treasury of ${mspId} holds ${held} beans`, { treasury: held });
  }
  for (const [b, rest] of takes) await setBucket(ctx, mspId, b, rest);
}
