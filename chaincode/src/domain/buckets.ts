/**
 * Counters split over several keys ("buckets") so that unrelated transactions seldom write the same key:
 * Fabric lets one writer of a key through per block. Red-envelope shares and an operator's bean treasury
 * use it. This file holds the one rule for the order in which a transaction visits the buckets.
 */
import { sm3Hex } from '../crypto';

/**
 * VISIT ORDER: start where the first 8 hex digits of SM3(seed) point, and step by a stride from the next
 * 8, made coprime with the bucket count so every bucket is visited once. Transactions that collide on
 * a bucket then go separate ways (with a step of one for all, every loser would queue for the same next
 * bucket).
 */
export function bucketOrder(seed: string, buckets: number): number[] {
  const h = sm3Hex(seed);
  const start = parseInt(h.slice(0, 8), 16) % buckets;
  let step = 1 + (parseInt(h.slice(8, 16), 16) % Math.max(1, buckets - 1));
  while (gcd(step, buckets) !== 1) step += 1;
  return Array.from({ length: buckets }, (_, i) => (start + i * step) % buckets);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
