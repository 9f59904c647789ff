/**
 * The benchmark keeps working: a one-second run (results to a temporary folder, never over the
 * committed figures) settles sessions with no invalidated transaction and writes both result files.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

test('npm run bench runs end to end', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'evpay-bench-'));
  try {
    const root = path.resolve(__dirname, '..');
    const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
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
