/**
 * The benchmarks keep working. The chaincode bench: a one-second run (results to a temporary folder,
 * never over the committed figures) settles sessions with no invalidated transaction and writes both
 * result files. The network bench (it needs its own Fabric network, so it is not run here): its
 * arguments are checked before any network is touched, and what it reads from /proc and the gateways'
 * metrics is parsed right.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  cpuTicks,
  networkProcesses,
  parseStat,
  parseVmHWM,
  percentiles,
  usageByKind,
  type ProcStat,
} from '../bench/support/measure';
import { metricSum, parsePrometheus } from '../network/tools/client';

const root = path.resolve(__dirname, '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

test('npm run bench runs end to end', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'evpay-bench-'));
  try {
    const r = spawnSync(
      tsx,
      [
        'bench/chaincode-bench.ts',
        '--seconds',
        '1',
        '--piles',
        '4',
        '--contenders',
        '8',
        '--close-movements',
        '1000',
        '--out',
        out,
      ],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const result = JSON.parse(readFileSync(path.join(out, 'chaincode.json'), 'utf8')) as {
      sessions: { settled: number; invalidated: number };
      crypto: Record<string, number>;
      contention: { envelopeClaimsPerBlock: number[]; beanSalesPerBlock: number[] };
      closePeriod: { movements: number; endorseMs: number };
    };
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sum(result.contention.envelopeClaimsPerBlock)).toBe(8);
    expect(sum(result.contention.beanSalesPerBlock)).toBe(8);
    expect(result.closePeriod.movements).toBe(1000);
    expect(result.sessions.settled).toBeGreaterThan(0);
    expect(result.sessions.invalidated).toBe(0);
    expect(Object.values(result.crypto).every((v) => v > 0)).toBe(true);
    expect(readFileSync(path.join(out, 'chaincode.md'), 'utf8')).toContain('sessions settled');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 60_000);

describe('the network bench (bench/network-sessions.ts)', () => {
  test('refuses bad arguments before bringing any network up', () => {
    const r = spawnSync(tsx, ['bench/network-sessions.ts', '--piles', '0'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--piles');
    expect(r.stdout).not.toContain('up.sh');
    // --chargers sizes the OCPP phase: without --ocpp it is a mistake, not ignored.
    const c = spawnSync(tsx, ['bench/network-sessions.ts', '--chargers', '5'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(c.status).toBe(2);
    expect(c.stderr).toContain('--chargers');
    expect(c.stdout).not.toContain('up.sh');
  }, 60_000);

  test('nearest-rank percentiles', () => {
    const ms = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 .. 1, unsorted
    expect(percentiles(ms)).toEqual({ n: 100, p50: 50, p95: 95, p99: 99, max: 100 });
    expect(percentiles([7.25])).toEqual({ n: 1, p50: 7.3, p95: 7.3, p99: 7.3, max: 7.3 });
    expect(percentiles([])).toEqual({ n: 0, p50: 0, p95: 0, p99: 0, max: 0 });
  });

  test('/proc: a stat line whose command holds spaces and parentheses, VmHWM, and this process', () => {
    const line = '4242 (node (x) y) S 1 4200 4200 0 -1 4194560 10 0 0 0 250 75 0 0 20 0 11 0 99 0 0';
    expect(parseStat(line)).toEqual({ pid: 4242, ppid: 1, pgrp: 4200, ticks: 325 });
    expect(parseVmHWM('Name:\tpeer\nVmPeak:\t  900 kB\nVmHWM:\t  204800 kB\n')).toBe(204800);
    expect(parseVmHWM('Name:\tzombie\n')).toBe(0);
    const me = parseStat(readFileSync(`/proc/${process.pid}/stat`, 'utf8'));
    expect(me.pid).toBe(process.pid);
    expect(me.ticks).toBeGreaterThan(0);
  });

  test("a node's process group: a peer's other processes are its chaincode; CPU and peak RSS by kind", () => {
    const run = mkdtempSync(path.join(tmpdir(), 'evpay-run-'));
    try {
      writeFileSync(
        path.join(run, 'nodes.tsv'),
        [
          'peer\talpha-peer0\tAlphaMSP',
          'orderer\talpha-orderer0\tX',
          'gateway\talpha-gateway\tAlphaMSP',
          'peer\tdown-peer0\tY',
        ]
          .map((l) => `${l}\t127.0.0.1\t1\t2`)
          .join('\n') + '\n',
      );
      for (const [node, pid] of [
        ['alpha-peer0', 100],
        ['alpha-orderer0', 200],
        ['alpha-gateway', 300],
        ['down-peer0', 400],
      ] as const) {
        mkdirSync(path.join(run, 'nodes', node), { recursive: true });
        writeFileSync(path.join(run, 'nodes', node, 'pid'), `${pid}\n`);
      }
      const p = (pid: number, pgrp: number): ProcStat => ({ pid, ppid: 1, pgrp, ticks: 0 });
      // PID 400 is not running: its stale pid file is skipped.
      const procs = [p(100, 100), p(101, 100), p(102, 100), p(200, 200), p(300, 300), p(999, 999)];
      const tracked = networkProcesses(run, procs);
      expect(tracked.map((t) => [t.pid, t.kind])).toEqual([
        [process.pid, 'bench'],
        [100, 'peer'],
        [101, 'chaincode'],
        [102, 'chaincode'],
        [200, 'orderer'],
        [300, 'gateway'],
      ]);
      const before = new Map([
        [100, 100],
        [101, 50],
        [200, 10],
        [300, 0],
        [process.pid, 0],
      ]);
      // 102 started during the phase (counts from zero); 101 ended (not counted).
      const after = new Map([
        [100, 350],
        [102, 40],
        [200, 60],
        [300, 100],
        [process.pid, 5],
      ]);
      const rss = new Map([
        [100, 200 * 1024],
        [102, 100 * 1024],
        [200, 50 * 1024],
        [300, 80 * 1024],
      ]);
      const u = usageByKind(tracked, before, after, (pid) => rss.get(pid) ?? 0, 100);
      expect(u.peer).toEqual({ processes: 1, cpuSeconds: 2.5, peakRssMiBMax: 200, peakRssMiBSum: 200 });
      expect(u.chaincode).toEqual({ processes: 1, cpuSeconds: 0.4, peakRssMiBMax: 100, peakRssMiBSum: 100 });
      expect(u.orderer.cpuSeconds).toBe(0.5);
      expect(u.gateway.cpuSeconds).toBe(1);
      expect(u.bench.cpuSeconds).toBe(0.05);
      // Real /proc: this process is found, a PID that does not exist is not.
      expect([
        ...cpuTicks([
          { pid: process.pid, kind: 'bench', node: 'bench' },
          { pid: 2 ** 30, kind: 'peer', node: 'x' },
        ]).keys(),
      ]).toEqual([process.pid]);
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });

  test("the gateways' counters and histograms from their Prometheus text", () => {
    const text = [
      '# HELP evpay_gateway_retries_total Retries by kind',
      '# TYPE evpay_gateway_retries_total counter',
      'evpay_gateway_retries_total{kind="mvcc"} 3',
      'evpay_gateway_retries_total{kind="replay"} 2',
      'evpay_gateway_mvcc_conflicts_total{tx="StartSession"} 1',
      'evpay_gateway_mvcc_conflicts_total{tx="StopSession"} 2',
      'evpay_gateway_http_request_duration_seconds_sum{method="POST",route="/v1/sessions"} 1.5',
      'evpay_gateway_http_request_duration_seconds_sum{method="POST",route="/v1/session-stops"} 0.5',
      'evpay_gateway_http_request_duration_seconds_sum{method="GET",route="/v1/piles/:pileId/sessions"} 9',
      '',
    ].join('\n');
    const m = parsePrometheus(text);
    expect(metricSum(m, 'evpay_gateway_mvcc_conflicts_total')).toBe(3);
    expect(metricSum(m, 'evpay_gateway_retries_total', { kind: 'mvcc' })).toBe(3);
    expect(metricSum(m, 'evpay_gateway_retries_total', { kind: 'resolve' })).toBe(0);
    const route = { method: 'POST', route: '/v1/sessions' };
    expect(metricSum(m, 'evpay_gateway_http_request_duration_seconds_sum', route)).toBe(1.5);
    expect(metricSum(m, 'evpay_gateway_http_request_duration_seconds', route)).toBe(0);
  });
});
