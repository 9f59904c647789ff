/**
 * A charger simulation from what an operator has at hand (what `evpay charger` runs): a pile registered on
 * the ledger with the charger's SM2 key, a charger entry at the gateway (`evpay-gateway chargers add`),
 * and, when the simulator plays the driver too, a driver-app credential and either a driver's key whose
 * wallet has money or an operator-admin credential to open and top up a new one. The pile's meter and
 * last reading time are read from the ledger, so the readings signed continue where the pile stands.
 *
 * The summary is computed from the session outcomes alone (`summarizeCharging`, pure), as the REST
 * simulator's is (stats.ts, whose percentiles it uses).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { sm2GenerateKeyPair, type Sm2KeyPair } from '@evpay/chaincode/client';
import { committedAnswer, queryAnswer, type GatewayClient } from '../client/gatewayClient';
import {
  ocppEndpoint,
  runChargerSessions,
  SimCharger,
  type ChargerTls,
  type ChargerSessionOutcome,
  type DriverRole,
} from './charger';
import { SimDriver, SimPile } from './devices';
import { dearestFenPerKwh, newPileMeter, seededRng } from './meter';
import type { OcppVersion } from './ocppMessages';
import { percentiles, type Percentiles } from './stats';
import { realClock, type Clock } from './story';

export interface ChargingSummary {
  network: string;
  chargers: Array<{ chargePointId: string; pileId: string; ocpp: OcppVersion }>;
  sessions: {
    planned: number;
    /** Settled on the ledger (read back through the REST session route). */
    settled: number;
    /** Run and not settled. */
    failed: number;
    /** Never run: the charger stopped after a failure that would repeat. */
    skipped: number;
  };
  energyWh: number;
  chargedFen: number;
  /** Failures by the OCPP error code, the gateway's or the chaincode's code. */
  failures: Record<string, number>;
  runSec: number;
  /** Sessions settled per second of the run (connecting and setup excluded). */
  sessionsPerSec: number;
  latencyMs: { remoteStart: Percentiles; stopAnswer: Percentiles; stopToSettled: Percentiles };
}

export function summarizeCharging(
  outcomes: readonly ChargerSessionOutcome[],
  run: {
    network: string;
    chargers: ChargingSummary['chargers'];
    planned: number;
    runMs: number;
  },
): ChargingSummary {
  const settled = outcomes.filter((o) => o.settled);
  const failures: Record<string, number> = {};
  for (const o of outcomes) for (const f of o.failures) failures[f.code] = (failures[f.code] ?? 0) + 1;
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  const each = (pick: (o: ChargerSessionOutcome) => number | undefined): number[] =>
    outcomes.map(pick).filter((x): x is number => x !== undefined);
  return {
    network: run.network,
    chargers: run.chargers,
    sessions: {
      planned: run.planned,
      settled: settled.length,
      failed: outcomes.length - settled.length,
      skipped: run.planned - outcomes.length,
    },
    energyWh: sum(settled.map((o) => o.energyWh)),
    chargedFen: sum(settled.map((o) => o.chargedFen)),
    failures,
    runSec: Math.round(run.runMs / 100) / 10,
    sessionsPerSec: run.runMs > 0 ? Math.round((settled.length / (run.runMs / 1000)) * 100) / 100 : 0,
    latencyMs: {
      remoteStart: percentiles(each((o) => o.latencyMs.remoteStart)),
      stopAnswer: percentiles(each((o) => o.latencyMs.stopAnswer)),
      stopToSettled: percentiles(each((o) => o.latencyMs.stopToSettled)),
    },
  };
}

/** A mistake in what the simulation was given (a key that is not the pile's, a pile not active, ...). */
export class ChargerSetupError extends Error {}

/**
 * The simulated pile as the ledger has it: its key must be the one registered, the pile active, and its
 * meter and clock continue from its last signed reading.
 */
export async function pileFromLedger(
  api: GatewayClient,
  network: string,
  pileId: string,
  keys: Sm2KeyPair,
  rng: () => number,
): Promise<SimPile> {
  const p = queryAnswer('GetPile', await api.get(`/v1/piles/${pileId}`));
  if (p.publicKey !== keys.publicKeyHex)
    throw new ChargerSetupError(`the pile key is not the one registered for ${pileId}`);
  if (p.status !== 'active') throw new ChargerSetupError(`pile ${pileId} is ${p.status}`);
  const pile = new SimPile(
    network,
    pileId,
    { ratingW: newPileMeter(rng).ratingW, meterWh: p.lastMeterWh },
    keys,
  );
  pile.lastReadAt = p.lastReadingAt;
  return pile;
}

export interface ChargerSpec {
  chargePointId: string;
  /** Its password (profiles 1-2); a profile-3 charger gives `tls.cert` and `tls.key` instead. */
  password?: string;
  tls?: ChargerTls;
  ocpp: OcppVersion;
  pileId: string;
  pileKeys: Sm2KeyPair;
}

export interface ChargerSimulationOptions {
  /** The pile operator's gateway (http base URL): its OCPP endpoint and REST API. */
  gatewayUrl: string;
  chargers: ChargerSpec[];
  /** Reads the piles and sessions (any role). */
  api: GatewayClient;
  /** Plays the driver: a driver-app credential at the gateway; otherwise remote starts are awaited. */
  driverApi?: GatewayClient;
  /** The driver's key (its wallet has money); default: a new driver, opened and topped up. */
  driverKeys?: Sm2KeyPair;
  /** An operator-admin credential that tops up a new driver's wallet (sessions x cap). */
  topUpApi?: GatewayClient;
  sessions: number;
  capFen: number;
  network?: string;
  progressReadings?: number;
  stepMs?: number;
  speedup?: number;
  waitStartMs?: number;
  settleTimeoutMs?: number;
  seed?: number;
  clock?: Clock;
  onSession?(outcome: ChargerSessionOutcome): void;
}

/**
 * Connects every charger, runs `sessions` sessions on each at once, and summarizes. When the simulator
 * plays the driver with a new key, the wallet is opened and topped up first (each charger its own
 * driver, so sessions at several chargers never wait on one wallet).
 */
export async function runChargerSimulation(o: ChargerSimulationOptions): Promise<ChargingSummary> {
  const clock = o.clock ?? realClock;
  if (o.chargers.length === 0 || o.sessions < 1) throw new RangeError('at least one charger and one session');
  const network =
    o.network ?? queryAnswer('GetConsortium', await o.api.get('/v1/consortium')).consortium.networkId;
  const dearest = dearestFenPerKwh(queryAnswer('ListTariffs', await o.api.get('/v1/tariffs')));
  const seed = o.seed ?? randomInt(2 ** 31);
  const rng = seededRng(seed);
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

  const drivers: Array<DriverRole | undefined> = await Promise.all(
    o.chargers.map(async (_, i) => {
      if (!o.driverApi) return undefined;
      if (o.driverKeys)
        return { driver: new SimDriver(network, `${runId}-c${i + 1}`, o.driverKeys), api: o.driverApi };
      if (!o.topUpApi)
        throw new ChargerSetupError('a new driver needs an operator-admin credential to top up its wallet');
      const driver = new SimDriver(network, `${runId}-c${i + 1}`, sm2GenerateKeyPair());
      committedAnswer('OpenWallet', await o.driverApi.post('/v1/wallets', { publicKey: driver.publicKey }));
      committedAnswer(
        'TopUp',
        await o.topUpApi.post('/v1/top-ups', {
          walletId: driver.walletId,
          amountFen: o.sessions * o.capFen,
          reference: `charger-${runId}-${i + 1}`,
        }),
      );
      return { driver, api: o.driverApi };
    }),
  );
  const endpoint = ocppEndpoint(o.gatewayUrl);
  const chargers = await Promise.all(
    o.chargers.map(async (c) => {
      const pile = await pileFromLedger(o.api, network, c.pileId, c.pileKeys, rng);
      return new SimCharger({
        endpoint,
        chargePointId: c.chargePointId,
        ...(c.password === undefined ? {} : { password: c.password }),
        ...(c.tls ? { tls: c.tls } : {}),
        version: c.ocpp,
        pile,
        clock,
      });
    }),
  );
  try {
    await Promise.all(chargers.map((c) => c.connect()));
    const started = clock.nowMs();
    const outcomes = (
      await Promise.all(
        chargers.map((charger, i) =>
          runChargerSessions(
            {
              charger,
              api: o.api,
              driver: drivers[i],
              capFen: o.capFen,
              dearestFenPerKwh: dearest,
              progressReadings: o.progressReadings,
              stepMs: o.stepMs,
              speedup: o.speedup,
              waitStartMs: o.waitStartMs,
              settleTimeoutMs: o.settleTimeoutMs,
              rng: seededRng(seed + i + 1),
              clock,
              onSession: o.onSession,
            },
            o.sessions,
          ),
        ),
      )
    ).flat();
    return summarizeCharging(outcomes, {
      network,
      chargers: o.chargers.map((c) => ({ chargePointId: c.chargePointId, pileId: c.pileId, ocpp: c.ocpp })),
      planned: o.chargers.length * o.sessions,
      runMs: clock.nowMs() - started,
    });
  } finally {
    await Promise.all(chargers.map((c) => c.close()));
  }
}
