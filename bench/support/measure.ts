/**
 * What the network benchmark measures besides its own timers: CPU seconds and peak RSS of the network's
 * processes read from /proc (each node's process group, so a peer's chaincode processes count too),
 * counters from the gateways' Prometheus text, latency percentiles, the machine, and the targets'
 * verdicts. Pure functions where possible, so the unit tests check them without a network.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

// --- latencies -------------------------------------------------------------------------------------------

export interface Percentiles {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of a sample, rounded to 0.1 (milliseconds in and out; zeros when empty). */
export function percentiles(sample: readonly number[]): Percentiles {
  const s = [...sample].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 10) / 10;
  const at = (p: number): number =>
    s.length === 0 ? 0 : r(s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0);
  return { n: s.length, p50: at(50), p95: at(95), p99: at(99), max: s.length === 0 ? 0 : r(s.at(-1) ?? 0) };
}

// --- /proc -----------------------------------------------------------------------------------------------

export interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  /** utime + stime, in clock ticks. */
  ticks: number;
}

/** Parses /proc/<pid>/stat (the command name may hold spaces and parentheses: split after the last ')'). */
export function parseStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  const pid = Number(text.slice(0, text.indexOf('(')).trim());
  // Fields from 3 (state) on; field n is rest[n - 3].
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const field = (n: number): number => Number(rest[n - 3]);
  return { pid, ppid: field(4), pgrp: field(5), ticks: field(14) + field(15) };
}

/** VmHWM (peak resident set) of /proc/<pid>/status, in KiB (0 when absent, e.g. a zombie). */
export function parseVmHWM(text: string): number {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) : 0;
}

let clockTicks: number | undefined;
/** Clock ticks per second (getconf CLK_TCK; 100 on every Linux this runs on). */
export function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

const readOr = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process ended meanwhile
  }
};

/** Every process's stat line (those that end while we read are skipped). */
export function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const text = readOr(`/proc/${d}/stat`);
    if (text) out.push(parseStat(text));
  }
  return out;
}

export type ProcessKind = 'peer' | 'orderer' | 'chaincode' | 'gateway' | 'bench';
export const PROCESS_KINDS: readonly ProcessKind[] = ['peer', 'orderer', 'chaincode', 'gateway', 'bench'];

export interface Tracked {
  pid: number;
  kind: ProcessKind;
  /** The node it belongs to (the bench itself: "bench"). */
  node: string;
}

/**
 * The network's processes: each node's PID (run/<name>/nodes/<node>/pid, its kind from nodes.tsv) and
 * the other members of its process group (node.sh starts each node with setsid; a peer's chaincode
 * processes, started by the external builder, stay in the peer's group), plus this process.
 */
export function networkProcesses(runDir: string, procs: readonly ProcStat[] = allProcesses()): Tracked[] {
  const tracked: Tracked[] = [{ pid: process.pid, kind: 'bench', node: 'bench' }];
  const tsv = readFileSync(join(runDir, 'nodes.tsv'), 'utf8');
  for (const line of tsv.split('\n').filter((l) => l.trim() !== '')) {
    const [kind, node] = line.split('\t') as [string, string];
    const pidFile = join(runDir, 'nodes', node, 'pid');
    if (!existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!procs.some((p) => p.pid === pid)) continue;
    tracked.push({ pid, kind: kind as ProcessKind, node });
    for (const p of procs)
      if (p.pgrp === pid && p.pid !== pid)
        tracked.push({ pid: p.pid, kind: kind === 'peer' ? 'chaincode' : (kind as ProcessKind), node });
  }
  return tracked;
}

/** CPU ticks of each tracked process now (absent when it has ended). */
export function cpuTicks(tracked: readonly Tracked[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const t of tracked) {
    const text = readOr(`/proc/${t.pid}/stat`);
    if (text) m.set(t.pid, parseStat(text).ticks);
  }
  return m;
}

export interface KindUsage {
  processes: number;
  cpuSeconds: number;
  /** The largest VmHWM among the kind's processes, MiB. */
  peakRssMiBMax: number;
  /** The sum of their VmHWM, MiB (an upper bound of what they held at once). */
  peakRssMiBSum: number;
}

/** CPU seconds per kind between two readings, and each kind's peak RSS now (VmHWM: over the process's life). */
export function usageByKind(
  tracked: readonly Tracked[],
  before: ReadonlyMap<number, number>,
  after: ReadonlyMap<number, number>,
  vmHWMKiB: (pid: number) => number = (pid) => parseVmHWM(readOr(`/proc/${pid}/status`) ?? ''),
  ticksPerSecond: number = clkTck(),
): Record<ProcessKind, KindUsage> {
  const out = Object.fromEntries(
    PROCESS_KINDS.map((k) => [k, { processes: 0, cpuSeconds: 0, peakRssMiBMax: 0, peakRssMiBSum: 0 }]),
  ) as Record<ProcessKind, KindUsage>;
  for (const t of tracked) {
    const u = out[t.kind];
    const a = after.get(t.pid);
    if (a === undefined) continue;
    u.processes++;
    // A process that appeared during the phase counts from zero.
    u.cpuSeconds += (a - (before.get(t.pid) ?? 0)) / ticksPerSecond;
    const rss = vmHWMKiB(t.pid) / 1024;
    u.peakRssMiBMax = Math.max(u.peakRssMiBMax, rss);
    u.peakRssMiBSum += rss;
  }
  for (const u of Object.values(out)) {
    u.cpuSeconds = Math.round(u.cpuSeconds * 100) / 100;
    u.peakRssMiBMax = Math.round(u.peakRssMiBMax);
    u.peakRssMiBSum = Math.round(u.peakRssMiBSum);
  }
  return out;
}

// --- machine ---------------------------------------------------------------------------------------------

export interface Machine {
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
  /** The load average when the run started (others' processes make the figures noisy). */
  loadAverage: string;
}

export function machine(): Machine {
  const cpuinfo = readOr('/proc/cpuinfo') ?? '';
  const meminfo = readOr('/proc/meminfo') ?? '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || cpus().length;
  const memKiB = Number(/^MemTotal:\s+(\d+)\s+kB/m.exec(meminfo)?.[1] ?? 0);
  const load = (readOr('/proc/loadavg') ?? '').split(' ').slice(0, 3).join(' ');
  return {
    cpu: model,
    cores,
    memGiB: Math.round((memKiB / 2 ** 20) * 10) / 10,
    node: process.version,
    loadAverage: load,
  };
}

// --- targets ---------------------------------------------------------------------------------------------

export interface Verdict {
  target: string;
  measured: string;
  pass: boolean;
  note?: string;
}

export const verdictText = (v: Verdict): string =>
  `${v.pass ? 'PASS' : 'MISS'}  ${v.target}: ${v.measured}${v.note ? ` (${v.note})` : ''}`;
