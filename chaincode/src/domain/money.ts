/**
 * Money is whole fen and energy whole watt-hours, held as JavaScript safe integers and computed
 * through BigInt where a product could pass 2^53. Every rounding in the system goes through
 * `divRoundHalfUp` (amounts are never negative where we round), so the rule lives here only:
 *
 *   ROUNDING RULE: a fractional fen is rounded half up (0.5 fen -> 1 fen), once, at the end of a
 *   computation; splits of an amount never round: they distribute the remainder so parts sum exactly.
 */
import { fail } from './errors';

/** Upper bound for any single amount: 10^13 fen (100 billion yuan); keeps every product inside BigInt-free checks. */
export const MAX_FEN = 10_000_000_000_000;
/**
 * Upper bound for one top-up: 1,000,000 yuan. Period totals are sums of per-transaction amounts; with
 * top-ups bounded like this (and every other movement bounded by what top-ups brought in), a period's
 * totals stay exact JavaScript integers unless one operator records more than 9 x 10^7 maximal top-ups in
 * it (over 1,000 per second for a whole day). Clearing still sums in BigInt and refuses rather than
 * round if that were ever passed.
 */
export const MAX_TOPUP_FEN = 100_000_000;
/** Upper bound for a wallet's balance: 100 million yuan. */
export const MAX_WALLET_FEN = 10_000_000_000;

/** Upper bound for a meter value: 10^12 Wh (1 TWh), far beyond any pile's lifetime. */
export const MAX_WH = 1_000_000_000_000;

/** round_half_up(a * b / d) for non-negative integers, exact. */
export function mulDivRoundHalfUp(a: number, b: number, d: number): number {
  return toSafe((BigInt(a) * BigInt(b) * 2n + BigInt(d)) / (2n * BigInt(d)));
}

/** round_half_up(n / d) where n is a BigInt numerator (e.g. milli-fen sums). */
export function divRoundHalfUp(n: bigint, d: bigint): number {
  return toSafe((n * 2n + d) / (2n * d));
}

function toSafe(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < 0n) fail('AMOUNT_OUT_OF_RANGE', 'amount overflow');
  return Number(v);
}

/**
 * Splits `total` in proportion to `weights` so the parts sum exactly to `total`
 * (largest remainder; ties go to the earlier index, so the result is deterministic).
 */
export function splitProportional(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0) return [];
  if (sum === 0) return splitEqual(total, weights.length);
  const T = BigInt(total);
  const S = BigInt(sum);
  const parts = weights.map((w) => (T * BigInt(w)) / S);
  const rems = weights.map((w, i) => ({ i, r: (T * BigInt(w)) % S }));
  let left = T - parts.reduce((a, b) => a + b, 0n);
  rems.sort((x, y) => (x.r === y.r ? x.i - y.i : x.r > y.r ? -1 : 1));
  for (const { i } of rems) {
    if (left === 0n) break;
    parts[i] = (parts[i] ?? 0n) + 1n;
    left -= 1n;
  }
  return parts.map(Number);
}

/** Splits `total` into `n` parts differing by at most one; the first `total % n` parts get the extra unit. */
export function splitEqual(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  const extra = total % n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}
