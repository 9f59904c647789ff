/**
 * A whole simulation against running gateways, in the roles the network has: the pile operator's admin
 * registers piles (keys made in memory), the drivers' app opens wallets at the drivers' gateway, an
 * operator admin tops them up (the operator that took the cash, possibly another one than the pile's),
 * then every pile runs its charging stories at once (story.ts) and the run is summarized (stats.ts).
 * The CLI (`evpay simulate`) is a thin shell over `runSimulation`; a benchmark may call it, or
 * `runPileStory` directly with piles and drivers of its own.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { sm2GenerateKeyPair } from '@evpay/chaincode/client';
import { committedAnswer, GatewayRefusal, queryAnswer, type GatewayClient } from '../client/gatewayClient';
import { SimDriver, SimPile } from './devices';
import { dearestFenPerKwh, newPileMeter, seededRng } from './meter';
import { realClock, runPileStory, withRetries, type Clock, type SessionOutcome } from './story';
import { summarize, type SimulationSummary } from './stats';

/** The most a single top-up may credit (the chaincode's MAX_TOPUP_FEN). */
export const MAX_TOP_UP_FEN = 100_000_000;

export interface SimulationOptions {
  /** A pile-backend credential at the pile operator's gateway: runs the sessions. */
  pileApi: GatewayClient;
  /** An operator-admin credential at the same gateway: registers the piles. */
  adminApi: GatewayClient;
  /** A driver-app credential at the drivers' gateway: opens the wallets. */
  driverApi: GatewayClient;
  /** An operator-admin credential of the operator that takes the drivers' cash: tops the wallets up. */
  topUpApi: GatewayClient;
  piles: number;
  /** Sessions per pile. */
  sessions: number;
  /** Drivers (wallets); pile i charges driver i mod drivers. Default: one per pile. */
  drivers?: number;
  /** The consortium's network id; default: the one the pile operator's gateway reports. */
  network?: string;
  /** The driver's cap per session in fen (default 10,000). */
  capFen?: number;
  progressReadings?: number;
  stepMs?: number;
  speedup?: number;
  retries?: number;
  seed?: number;
  /** Tags the ids of this run (default: random). */
  runId?: string;
  clock?: Clock;
  onSession?(outcome: SessionOutcome): void;
}

/** Sends a setup request with the story's retry rule; a final failure is thrown as it came. */
async function setupCall<T>(clock: Clock, call: (key: string) => Promise<T>): Promise<T> {
  const r = await withRetries(3, clock, call);
  if (!r.ok) throw r.error;
  return r.value;
}

/** Waits until the pile operator's peer shows each wallet with at least its top-up. */
async function walletsVisible(
  api: GatewayClient,
  wallets: ReadonlyArray<{ walletId: string; balanceFen: number }>,
  clock: Clock,
  limitMs = 30_000,
): Promise<void> {
  const until = clock.nowMs() + limitMs;
  for (const w of wallets) {
    for (;;) {
      try {
        const seen = queryAnswer('GetWallet', await api.get(`/v1/wallets/${w.walletId}`));
        if (seen.wallet.balanceFen >= w.balanceFen) break;
      } catch (e) {
        if (!(e instanceof GatewayRefusal && e.code === 'WALLET_NOT_FOUND')) throw e;
      }
      if (clock.nowMs() > until)
        throw new Error(`wallet ${w.walletId} is not visible at ${api.url} after ${limitMs / 1000} s`);
      await clock.sleep(200);
    }
  }
}

export async function runSimulation(o: SimulationOptions): Promise<SimulationSummary> {
  const clock = o.clock ?? realClock;
  const capFen = o.capFen ?? 10_000;
  const driverCount = o.drivers ?? o.piles;
  if (o.piles < 1 || o.sessions < 1 || driverCount < 1)
    throw new RangeError('piles, sessions and drivers must be at least 1');
  const runId = o.runId ?? `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`.toUpperCase();
  const seed = o.seed ?? randomInt(2 ** 31);
  const rng = seededRng(seed);
  // Every driver is charged by the piles that map to it, each session up to the cap.
  const sessionsOf = (d: number): number =>
    o.sessions * Array.from({ length: o.piles }, (_, i) => i % driverCount).filter((x) => x === d).length;
  const topUp = (d: number): number => Math.max(1, sessionsOf(d) * capFen);
  if (topUp(0) > MAX_TOP_UP_FEN)
    throw new RangeError(`a driver would need ${topUp(0)} fen, above one top-up's ${MAX_TOP_UP_FEN}`);

  const setupStarted = clock.nowMs();
  const network =
    o.network ?? queryAnswer('GetConsortium', await o.pileApi.get('/v1/consortium')).consortium.networkId;
  const dearest = dearestFenPerKwh(queryAnswer('ListTariffs', await o.pileApi.get('/v1/tariffs')));

  const piles = await Promise.all(
    Array.from({ length: o.piles }, async (_, i) => {
      const keys = sm2GenerateKeyPair();
      const meter = newPileMeter(rng);
      const registered = await setupCall(clock, async (key) =>
        committedAnswer(
          'RegisterPile',
          await o.adminApi.post(
            '/v1/piles',
            { localId: `SIM${runId}P${i + 1}`, publicKey: keys.publicKeyHex, meterWh: meter.meterWh },
            key,
          ),
        ),
      );
      return new SimPile(network, registered.result.pileId, meter, keys);
    }),
  );
  const drivers = await Promise.all(
    Array.from({ length: driverCount }, async (_, d) => {
      const driver = new SimDriver(network, `${runId}-d${d + 1}`);
      await setupCall(clock, async (key) =>
        committedAnswer(
          'OpenWallet',
          await o.driverApi.post('/v1/wallets', { publicKey: driver.publicKey }, key),
        ),
      );
      const topped = await setupCall(clock, async (key) =>
        committedAnswer(
          'TopUp',
          await o.topUpApi.post(
            '/v1/top-ups',
            { walletId: driver.walletId, amountFen: topUp(d), reference: `${runId}-topup-${d + 1}` },
            key,
          ),
        ),
      );
      return { driver, balanceFen: topped.result.balanceFen };
    }),
  );
  await walletsVisible(
    o.pileApi,
    drivers.map((d) => ({ walletId: d.driver.walletId, balanceFen: d.balanceFen })),
    clock,
  );

  const runStarted = clock.nowMs();
  const outcomes = (
    await Promise.all(
      piles.map((pile, i) =>
        runPileStory({
          pile,
          driver: (drivers[i % driverCount] as (typeof drivers)[number]).driver,
          api: o.pileApi,
          sessions: o.sessions,
          sessionPrefix: runId,
          capFen,
          dearestFenPerKwh: dearest,
          progressReadings: o.progressReadings,
          stepMs: o.stepMs,
          speedup: o.speedup,
          retries: o.retries,
          rng: seededRng(seed + i + 1),
          clock,
          onSession: o.onSession,
        }),
      ),
    )
  ).flat();
  const ended = clock.nowMs();
  return summarize(outcomes, {
    network,
    runId,
    seed,
    piles: o.piles,
    drivers: driverCount,
    planned: o.piles * o.sessions,
    setupMs: runStarted - setupStarted,
    runMs: ended - runStarted,
  });
}
