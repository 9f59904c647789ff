/**
 * The simulated pile's meter, pure: which power a pile delivers, what its meter reads after some time,
 * and when a reading may be stamped. Kept free of I/O so the numbers the simulator signs can be checked
 * without a network, and so a benchmark can replay a run from its seed.
 *
 * Time is compressed: a simulated session lasts a few real seconds (each signed reading is stamped with
 * the real clock, which the chaincode checks against the transaction time), while the meter runs as if
 * `speedup` times as much time had passed (600: one real second is ten minutes of charging). Without
 * this a plausible session (20 kWh at 60 kW: 20 minutes) could not run in a test.
 */

/** A random number in [0, 1). */
export type Rng = () => number;

/** mulberry32: a small seeded generator, so a run's meters can be replayed from its seed. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Common pile ratings in W: AC wallbox, AC three-phase, DC fast, DC ultra-fast. */
export const PILE_RATINGS_W = [7_000, 22_000, 60_000, 120_000] as const;

export interface PileMeter {
  /** The pile's rated power. */
  ratingW: number;
  /** The meter's current value (an odometer: it never goes back). */
  meterWh: number;
}

/** A pile of a random rating whose meter has already counted some energy. */
export function newPileMeter(rng: Rng): PileMeter {
  const ratingW = PILE_RATINGS_W[Math.floor(rng() * PILE_RATINGS_W.length)] ?? PILE_RATINGS_W[0];
  return { ratingW, meterWh: Math.floor(rng() * 5_000_000) };
}

/** The power a car draws at a pile: 50 % to 100 % of the rating (the car's own limit), whole watts. */
export function sessionPowerW(rng: Rng, ratingW: number): number {
  return Math.round(ratingW * (0.5 + rng() / 2));
}

/** The most energy `capFen` pays for at the dearest price: a pile stops there (the driver's cap). */
export function maxEnergyWh(capFen: number, dearestFenPerKwh: number): number {
  if (dearestFenPerKwh <= 0) return Number.MAX_SAFE_INTEGER;
  return Math.floor((capFen * 1000) / dearestFenPerKwh);
}

/** The dearest total price (energy + service, fen per kWh) of any period of any of the tariffs. */
export function dearestFenPerKwh(
  tariffs: ReadonlyArray<{ prices: Record<string, { energyFenPerKwh: number; serviceFenPerKwh: number }> }>,
): number {
  let max = 0;
  for (const t of tariffs)
    for (const p of Object.values(t.prices)) max = Math.max(max, p.energyFenPerKwh + p.serviceFenPerKwh);
  return max;
}

/**
 * The meter `elapsedSec` real seconds after a session started at `startWh`, drawing `powerW` with time
 * compressed by `speedup`, and stopping once the session has delivered `maxWh`.
 */
export function meterAfter(
  startWh: number,
  powerW: number,
  speedup: number,
  elapsedSec: number,
  maxWh: number,
): number {
  const delivered = Math.floor((powerW * speedup * Math.max(0, elapsedSec)) / 3600);
  return startWh + Math.min(delivered, maxWh);
}

/**
 * When the next reading of a session may be stamped: readings are whole Unix seconds and a PROGRESS
 * reading must be newer than the last (READING_OUT_OF_ORDER otherwise), so the first second after
 * `previousAt`, or now if that is later. The caller waits until that second has come: a reading is never
 * stamped in the future.
 */
export function nextReadAt(previousAt: number, nowSec: number): number {
  return Math.max(previousAt + 1, nowSec);
}
