/**
 * What a simulation run reports, computed from its session outcomes alone (pure): sessions settled and
 * failed, money and energy, failures by code, throughput, and latency percentiles by request. One
 * summary shape for the CLI and for a benchmark that stores its results.
 */
import type { SessionOutcome } from './story';

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  max: number;
}

/** What a run was, besides its outcomes. */
export interface RunFacts {
  network: string;
  /** Tags the run's pile, session, nonce and reference ids. */
  runId: string;
  /** The meters' seed: the same seed gives the same pile ratings and session powers. */
  seed: number;
  piles: number;
  drivers: number;
  planned: number;
  setupMs: number;
  runMs: number;
}

export interface SimulationSummary {
  network: string;
  runId: string;
  seed: number;
  piles: number;
  drivers: number;
  sessions: {
    planned: number;
    settled: number;
    /** Sessions run that did not settle. */
    failed: number;
    /** Sessions never run: their pile was left with an open session. */
    skipped: number;
  };
  energyWh: number;
  chargedFen: number;
  /** Requests that failed for good, by the gateway's or the chaincode's code. */
  failures: Record<string, number>;
  retries: number;
  setupSec: number;
  runSec: number;
  /** Sessions settled per second of the run (setup excluded). */
  sessionsPerSec: number;
  /** Milliseconds: each request with its retries, and a session from START sent to STOP settled. */
  latencyMs: { start: Percentiles; progress: Percentiles; stop: Percentiles; session: Percentiles };
}

/** Nearest-rank percentile of a list of numbers (0 for an empty list). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? 0;
}

export function percentiles(values: readonly number[]): Percentiles {
  return {
    count: values.length,
    p50: Math.round(percentile(values, 50)),
    p95: Math.round(percentile(values, 95)),
    max: Math.round(values.reduce((m, v) => Math.max(m, v), 0)),
  };
}

export function summarize(outcomes: readonly SessionOutcome[], run: RunFacts): SimulationSummary {
  const settled = outcomes.filter((o) => o.settled);
  const failures: Record<string, number> = {};
  for (const o of outcomes) for (const f of o.failures) failures[f.code] = (failures[f.code] ?? 0) + 1;
  const defined = (xs: ReadonlyArray<number | undefined>): number[] =>
    xs.filter((x): x is number => x !== undefined);
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  return {
    network: run.network,
    runId: run.runId,
    seed: run.seed,
    piles: run.piles,
    drivers: run.drivers,
    sessions: {
      planned: run.planned,
      settled: settled.length,
      failed: outcomes.length - settled.length,
      skipped: run.planned - outcomes.length,
    },
    energyWh: sum(settled.map((o) => o.energyWh)),
    chargedFen: sum(settled.map((o) => o.chargedFen)),
    failures,
    retries: sum(outcomes.map((o) => o.retries)),
    setupSec: round(run.setupMs / 1000, 1),
    runSec: round(run.runMs / 1000, 1),
    sessionsPerSec: run.runMs > 0 ? round(settled.length / (run.runMs / 1000), 2) : 0,
    latencyMs: {
      start: percentiles(defined(outcomes.map((o) => o.latencyMs.start))),
      progress: percentiles(outcomes.flatMap((o) => o.latencyMs.progress)),
      stop: percentiles(defined(outcomes.map((o) => o.latencyMs.stop))),
      session: percentiles(defined(outcomes.map((o) => o.latencyMs.session))),
    },
  };
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
