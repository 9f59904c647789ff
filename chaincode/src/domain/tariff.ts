/**
 * The unified tariff (paper, section 4: "the electrovalence of different enterprises should be the same").
 * One price list for every operator: energy price and service fee per kWh, in fen, by time-of-use period
 * (peak / flat / valley) of the local day. A session is priced by the tariff version in force when it
 * started, whatever governance enacts while it runs.
 *
 * PRICING RULE (the only place it is written):
 *   1. The session's energy is spread over its duration in proportion to the seconds spent in each
 *      period kind (meter readings exist only at start and stop), in whole Wh, parts summing exactly;
 *      a leftover Wh goes to the larger fraction, and on a tie to valley, then flat, then peak.
 *   2. amount = round_half_up( sum over kinds of Wh_k * (energy_k + service_k) / 1000 ) fen: one rounding.
 *   3. The energy part is round_half_up(sum Wh_k * energy_k / 1000); the service part is the rest.
 */
import { z } from 'zod';
import { divRoundHalfUp, splitProportional } from './money';

/** In this order remainders of the energy split are handed out: a tie favours the driver (valley first). */
export const PERIOD_KINDS = ['valley', 'flat', 'peak'] as const;
export type PeriodKind = (typeof PERIOD_KINDS)[number];

/** At most 1,000 yuan per kWh each: with MAX_SESSION_WH, a session's price stays far below MAX_FEN. */
export const MAX_FEN_PER_KWH = 100_000;
const perKwhSchema = z.number().int().min(0).max(MAX_FEN_PER_KWH);
const priceSchema = z.object({ energyFenPerKwh: perKwhSchema, serviceFenPerKwh: perKwhSchema }).strict();

export const tariffDraftSchema = z
  .object({
    /** Local time offset from UTC, minutes (China Standard Time = 480). */
    utcOffsetMinutes: z.number().int().min(-720).max(840),
    /** Day schedule: each entry starts a period at a minute of the local day; the first must start at 0. */
    periods: z
      .array(
        z.object({ startMinute: z.number().int().min(0).max(1439), kind: z.enum(PERIOD_KINDS) }).strict(),
      )
      .min(1)
      .max(48),
    prices: z.object({ peak: priceSchema, flat: priceSchema, valley: priceSchema }).strict(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.periods[0]?.startMinute !== 0)
      ctx.addIssue({ code: 'custom', path: ['periods', 0], message: 'first period must start at minute 0' });
    for (let i = 1; i < t.periods.length; i++) {
      if ((t.periods[i]?.startMinute ?? 0) <= (t.periods[i - 1]?.startMinute ?? 0))
        ctx.addIssue({
          code: 'custom',
          path: ['periods', i],
          message: 'periods must be in strictly increasing startMinute order',
        });
    }
  });
export type TariffDraft = z.infer<typeof tariffDraftSchema>;

export interface Tariff extends TariffDraft {
  version: number;
  /** Unix seconds from which sessions starting at or after it use this version. */
  effectiveFrom: number;
}

const DAY = 24 * 3600;

/** The period kind at a Unix second. */
export function periodAt(tariff: TariffDraft, t: number): PeriodKind {
  const minute = Math.floor(((((t + tariff.utcOffsetMinutes * 60) % DAY) + DAY) % DAY) / 60);
  let kind = tariff.periods[0]?.kind ?? 'flat';
  for (const p of tariff.periods) if (p.startMinute <= minute) kind = p.kind;
  return kind;
}

/** Seconds spent in each period kind over [from, to). */
export function secondsByKind(tariff: TariffDraft, from: number, to: number): Record<PeriodKind, number> {
  const out: Record<PeriodKind, number> = { peak: 0, flat: 0, valley: 0 };
  const offset = tariff.utcOffsetMinutes * 60;
  const starts = tariff.periods.map((p) => p.startMinute * 60);
  // Each whole day adds one day's schedule, so the walk below covers less than a day at any length.
  const days = Math.floor(Math.max(0, to - from) / DAY);
  tariff.periods.forEach((p, i) => (out[p.kind] += days * ((starts[i + 1] ?? DAY) - (starts[i] ?? 0))));
  let t = from + days * DAY;
  while (t < to) {
    const local = (((t + offset) % DAY) + DAY) % DAY;
    // Next boundary: the first period start after `local`, else the next midnight.
    const next = starts.find((s) => s > local) ?? DAY;
    const segEnd = Math.min(to, t + (next - local));
    out[periodAt(tariff, t)] += segEnd - t;
    t = segEnd;
  }
  return out;
}

export interface Price {
  totalFen: number;
  energyFen: number;
  serviceFen: number;
  whByKind: Record<PeriodKind, number>;
}

/** Prices `energyWh` delivered over [startedAt, stoppedAt] (see PRICING RULE above). */
export function priceSession(
  tariff: TariffDraft,
  energyWh: number,
  startedAt: number,
  stoppedAt: number,
): Price {
  const secs = secondsByKind(tariff, startedAt, stoppedAt);
  const weights = PERIOD_KINDS.map((k) => secs[k]);
  // A zero-length session puts all its energy in the period it started in.
  const parts = weights.every((w) => w === 0)
    ? PERIOD_KINDS.map((k) => (k === periodAt(tariff, startedAt) ? energyWh : 0))
    : splitProportional(energyWh, weights);
  const whByKind: Record<PeriodKind, number> = { peak: 0, flat: 0, valley: 0 };
  let total = 0n;
  let energy = 0n;
  PERIOD_KINDS.forEach((k, i) => {
    const wh = parts[i] ?? 0;
    whByKind[k] = wh;
    const p = tariff.prices[k];
    total += BigInt(wh) * BigInt(p.energyFenPerKwh + p.serviceFenPerKwh);
    energy += BigInt(wh) * BigInt(p.energyFenPerKwh);
  });
  const totalFen = divRoundHalfUp(total, 1000n);
  const energyFen = Math.min(totalFen, divRoundHalfUp(energy, 1000n));
  return { totalFen, energyFen, serviceFen: totalFen - energyFen, whByKind };
}

/** The version in force at `t`: the newest whose effectiveFrom is not after `t`. */
export function inForce<T extends { effectiveFrom: number; version: number }>(
  versions: readonly T[],
  t: number,
): T | undefined {
  let best: T | undefined;
  for (const v of versions) if (v.effectiveFrom <= t && (!best || v.version > best.version)) best = v;
  return best;
}
