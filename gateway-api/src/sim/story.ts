/**
 * One pile's charging stories, as its backend runs them against its operator's gateway: for each
 * session the driver signs an authorization (on the driver's side: the pile backend only forwards it),
 * the pile signs START with its meter, PROGRESS readings as the car charges, and STOP; the gateway
 * starts the session, records the readings and settles it. `runPileStory` is the unit a benchmark
 * reuses: it takes the clients, the devices and a clock, and answers one outcome per session, with
 * the latency of every request, so nothing in it depends on the CLI.
 *
 * Retries follow the gateway's contract (gatewayClient.ts): a 5xx, a missing answer or a rate limit is
 * sent again with the SAME Idempotency-Key (a request that committed is answered with its first
 * outcome, never run twice); a transaction invalidated at commit (MVCC, after the gateway's own retries)
 * wrote nothing and is sent again under a new key; any other refusal is final.
 */
import { ZodError } from 'zod';
import type { EvPayResults } from '@evpay/chaincode/client';
import {
  committedAnswer,
  GatewayRefusal,
  GatewayUnreachable,
  newIdempotencyKey,
  type GatewayClient,
} from '../client/gatewayClient';
import type { SimDriver, SimPile } from './devices';
import { maxEnergyWh, meterAfter, nextReadAt, sessionPowerW, type Rng } from './meter';

/** Time, injectable so the stories run against an in-memory ledger without waiting. */
export interface Clock {
  nowMs(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  nowMs: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export type StoryStep = 'start' | 'progress' | 'stop';

export interface StepFailure<S extends string = StoryStep> {
  step: S;
  /** The gateway's or the chaincode's code; GATEWAY_UNREACHABLE, BAD_ANSWER or ERROR otherwise. */
  code: string;
  message: string;
}

export interface SessionOutcome {
  pileId: string;
  sessionId: string;
  walletId: string;
  /** True when the STOP settled the session. */
  settled: boolean;
  /** Every step that failed for good (a failed PROGRESS is followed by a STOP all the same). */
  failures: StepFailure[];
  energyWh: number;
  chargedFen: number;
  /** Requests sent again (same key after a 5xx or no answer; new key after an invalidated commit). */
  retries: number;
  /** Milliseconds per request, retries included, and for the whole session (START sent to STOP settled). */
  latencyMs: { start?: number; progress: number[]; stop?: number; session?: number };
}

export interface PileStoryOptions {
  pile: SimPile;
  /** The driver who charges at this pile (drivers shared by piles contend for their wallet). */
  driver: SimDriver;
  /** A pile-backend credential at the pile operator's gateway. */
  api: GatewayClient;
  sessions: number;
  /** Session ids are `<prefix>-<n>`: unique per pile across runs (SESSION_EXISTS otherwise). */
  sessionPrefix: string;
  /** The driver's cap per session, in fen. */
  capFen: number;
  /** The dearest price of the tariff (fen per kWh): the pile stops before the cap is spent. */
  dearestFenPerKwh: number;
  /** PROGRESS readings per session (default 1). */
  progressReadings?: number;
  /** Real milliseconds between two readings of a session (default 1000; readings are whole seconds). */
  stepMs?: number;
  /** How much faster than real time the meter runs (default 600). */
  speedup?: number;
  /** Seconds an authorization stays valid (default 600). */
  authorizationTtlSec?: number;
  /** Times a request is sent again (default 3). */
  retries?: number;
  rng?: Rng;
  clock?: Clock;
  onSession?(outcome: SessionOutcome): void;
}

/** A request's final failure as a step failure (of a pile story's steps, or a charger's). */
export function failureOf<S extends string>(step: S, e: unknown): StepFailure<S> {
  if (e instanceof GatewayRefusal) return { step, code: e.code, message: e.message };
  if (e instanceof GatewayUnreachable) return { step, code: 'GATEWAY_UNREACHABLE', message: e.message };
  if (e instanceof ZodError) return { step, code: 'BAD_ANSWER', message: e.message };
  return { step, code: 'ERROR', message: e instanceof Error ? e.message : String(e) };
}

/** How a failed request is sent again: with the same key, a new key, or not at all. */
export function retryKind(e: unknown): 'same-key' | 'new-key' | 'final' {
  if (e instanceof GatewayUnreachable) return 'same-key';
  if (e instanceof GatewayRefusal) {
    if (e.code === 'TRANSACTION_INVALIDATED') return 'new-key';
    if (e.isFailure || e.code === 'RATE_LIMITED') return 'same-key';
  }
  return 'final';
}

export type Attempted<T> =
  { ok: true; value: T; retries: number } | { ok: false; error: unknown; retries: number };

/**
 * Sends `call` until it answers, following retryKind, at most `retries` more times, waiting a little
 * longer each time. Answers the value or the last error, and how many times the request was sent again.
 */
export async function withRetries<T>(
  retries: number,
  clock: Clock,
  call: (idempotencyKey: string) => Promise<T>,
): Promise<Attempted<T>> {
  let key = newIdempotencyKey();
  for (let attempt = 0; ; attempt++) {
    try {
      return { ok: true, value: await call(key), retries: attempt };
    } catch (error) {
      const kind = retryKind(error);
      if (kind === 'final' || attempt >= retries) return { ok: false, error, retries: attempt };
      if (kind === 'new-key') key = newIdempotencyKey();
      await clock.sleep(500 * (attempt + 1));
    }
  }
}

/** Runs the pile's sessions one after the other; stops early if a session is left open (PILE_BUSY). */
export async function runPileStory(o: PileStoryOptions): Promise<SessionOutcome[]> {
  const out: SessionOutcome[] = [];
  for (let n = 1; n <= o.sessions; n++) {
    const outcome = await runSession(o, `${o.sessionPrefix}-${n}`);
    out.push(outcome);
    o.onSession?.(outcome);
    // A STOP that failed leaves the pile busy: its next sessions could only be refused.
    if (outcome.failures.some(isStop)) break;
  }
  return out;
}

const isStop = (f: StepFailure): boolean => f.step === 'stop';

/** One session: authorization and START, PROGRESS readings, STOP and settlement. */
export async function runSession(o: PileStoryOptions, sessionId: string): Promise<SessionOutcome> {
  const clock = o.clock ?? realClock;
  const rng = o.rng ?? Math.random;
  const retries = o.retries ?? 3;
  const stepMs = o.stepMs ?? 1000;
  const speedup = o.speedup ?? 600;
  const { pile, driver, api } = o;
  const nowSec = (): number => Math.floor(clock.nowMs() / 1000);
  /** The first second after `prev` (nextReadAt), once it has come. */
  const stampAfter = async (prev: number): Promise<number> => {
    const at = nextReadAt(prev, nowSec());
    const wait = at * 1000 - clock.nowMs();
    if (wait > 0) await clock.sleep(wait);
    return at;
  };
  const outcome: SessionOutcome = {
    pileId: pile.pileId,
    sessionId,
    walletId: driver.walletId,
    settled: false,
    failures: [],
    energyWh: 0,
    chargedFen: 0,
    retries: 0,
    latencyMs: { progress: [] },
  };
  /** One request of the story, timed and retried; undefined when it failed for good. */
  const send = async <T>(step: StoryStep, call: (key: string) => Promise<T>): Promise<T | undefined> => {
    const t = clock.nowMs();
    const r = await withRetries(retries, clock, call);
    outcome.retries += r.retries;
    if (!r.ok) {
      outcome.failures.push(failureOf(step, r.error));
      return undefined;
    }
    const ms = clock.nowMs() - t;
    if (step === 'progress') outcome.latencyMs.progress.push(ms);
    else outcome.latencyMs[step] = ms;
    return r.value;
  };

  const maxWh = maxEnergyWh(o.capFen, o.dearestFenPerKwh);
  const powerW = sessionPowerW(rng, pile.meter.ratingW);
  const startWh = pile.meter.meterWh;
  // START may be stamped in the same second as the last STOP, never before it.
  const startAt = Math.max(nowSec(), pile.lastReadAt);
  if (startAt * 1000 > clock.nowMs()) await clock.sleep(startAt * 1000 - clock.nowMs());
  pile.lastReadAt = startAt;
  const authorization = driver.authorize(pile.pileId, o.capFen, startAt + (o.authorizationTtlSec ?? 600));
  const sentAt = clock.nowMs();
  const started = await send('start', async (key) =>
    committedAnswer(
      'StartSession',
      await api.post(
        '/v1/sessions',
        { authorization, startReading: pile.reading('START', sessionId, startWh, startAt) },
        key,
      ),
    ),
  );
  if (!started) return outcome;

  let lastAt = startAt;
  /** The next reading's time and meter, `stepMs` after the last one. */
  const readingAt = async (): Promise<{ at: number; meterWh: number }> => {
    await clock.sleep(stepMs);
    const at = await stampAfter(lastAt);
    lastAt = at;
    return { at, meterWh: meterAfter(startWh, powerW, speedup, at - startAt, maxWh) };
  };
  for (let k = 0; k < (o.progressReadings ?? 1); k++) {
    const r = await readingAt();
    // A refused PROGRESS changes nothing on the ledger: the session goes on to its STOP all the same.
    await send('progress', async (key) =>
      committedAnswer(
        'RecordReading',
        await api.post(
          '/v1/session-readings',
          { reading: pile.reading('PROGRESS', sessionId, r.meterWh, r.at) },
          key,
        ),
      ),
    );
  }
  const stop = await readingAt();
  const stopped = await send('stop', async (key) =>
    committedAnswer(
      'StopSession',
      await api.post(
        '/v1/session-stops',
        { stopReading: pile.reading('STOP', sessionId, stop.meterWh, stop.at) },
        key,
      ),
    ),
  );
  pile.lastReadAt = stop.at;
  if (!stopped) return outcome;
  const settlement: NonNullable<EvPayResults['StopSession']['settlement']> | undefined =
    stopped.result.settlement;
  pile.meter.meterWh = stop.meterWh;
  outcome.settled = stopped.result.status === 'settled';
  outcome.energyWh = settlement?.energyWh ?? 0;
  outcome.chargedFen = settlement?.chargedFen ?? 0;
  outcome.latencyMs.session = clock.nowMs() - sentAt;
  return outcome;
}
