/**
 * The built `evpay` CLI against the running gateways, as an operator's staff, a pile backend and a
 * driver would use it from a shell: the story across two operators in a few commands (a wallet opened
 * and topped up at Alpha, charged at Beta's pile, its balance and history read back), what a refused
 * request, a usage error, an unreachable gateway and a retried Idempotency-Key look like (exit code and
 * stderr), a short `evpay simulate` run that must settle every session, and the README's "Using the
 * gateways" block run as printed against this network.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { committedOnEveryPeer } from '../../network/tools/client';
import { ROOT } from './networkScripts';
import { net, waitFor } from './support/fabric';
import { credential, gatewaysReady, orgByMsp } from './support/gateway';
import { marginsPaid } from './support/margins';

jest.setTimeout(180_000);

const BIN = join(ROOT, 'gateway-api', 'bin', 'evpay.js');
const operators = net.orgs.filter((o) => o.role === 'operator');
const [A, B] = operators.map((o) => o.mspId) as [string, string];
const RUN = Date.now().toString(36).toUpperCase();
const nowSec = (): number => Math.floor(Date.now() / 1000);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as JSON (undefined when it is not). */
  out: unknown;
  /** stderr as JSON (the gateway's error, for exit codes 3 to 5). */
  err: unknown;
}

let dir = '';
/** Runs the built CLI in the test's folder, with only the EVPAY_* variables given. */
function evpay(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('EVPAY_')) delete base[k];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: dir,
        env: { ...base, EVPAY_NETWORK: 'evpay-test', EVPAY_PASSPHRASE: 'a long passphrase', ...env },
        timeout: 170_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const json = (s: string): unknown => {
          try {
            return JSON.parse(s);
          } catch {
            return undefined;
          }
        };
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr, out: json(stdout), err: json(stderr) });
      },
    );
  });
}

/** A command that must succeed: its stdout as JSON. */
async function ok<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
  const r = await evpay(args, env);
  if (r.code !== 0) throw new Error(`evpay ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.out as T;
}

/** Signs to a file, as the driver's device or the pile does, and answers the file name. */
async function signTo(file: string, args: string[]): Promise<string> {
  const r = await evpay(['sign', ...args]);
  if (r.code !== 0) throw new Error(`evpay sign ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  writeFileSync(join(dir, file), r.stdout);
  return file;
}

const urlOf = (mspId: string): string => orgByMsp(mspId).gateway.url;
/** The variables a shell of that role would export for `evpay gw`. */
const at = (mspId: string, apiKey: string): Record<string, string> => ({
  EVPAY_GATEWAY_URL: urlOf(mspId),
  EVPAY_API_KEY: apiKey,
});

type Committed<T> = { txId: string; blockNumber: number; result: T };
type SessionView = {
  sessionId: string;
  pileId: string;
  status: string;
  settlement?: { energyWh: number; chargedFen: number };
};

let adminA = '';
let adminB = '';
let driverAppA = '';
let pilesB = '';
const pileId = `${B}.CLI${RUN}`;

beforeAll(async () => {
  // Paying operators only (a fresh network has no margin in; tests run in any order).
  await marginsPaid();
  dir = mkdtempSync(join(tmpdir(), 'evpay-cli-net-'));
  await gatewaysReady();
  adminA = await credential(A, 'operator-admin', 'cli ops A');
  adminB = await credential(B, 'operator-admin', 'cli ops B');
  driverAppA = await credential(A, 'driver-app', 'cli app A');
  pilesB = await credential(B, 'pile-backend', 'cli piles B', [pileId]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('evpay gw: the story across two operators', () => {
  let walletId = '';
  let stopFile = '';

  test('a wallet opened and topped up at Alpha; a pile registered at Beta', async () => {
    const driver = await ok<{ walletId: string }>(['keygen', '--out', 'driver.key']);
    walletId = driver.walletId;
    await ok(['keygen', '--out', 'pile.key', '--plaintext']);
    // The driver's app opens the wallet with the public key only (the key file opened on the device).
    const opened = await ok<Committed<{ walletId: string }>>(
      ['gw', 'open-wallet', '--key', 'driver.key'],
      at(A, driverAppA),
    );
    expect(opened.result.walletId).toBe(walletId);
    const pile = await ok<Committed<{ pileId: string; status: string }>>(
      ['gw', 'register-pile', '--local-id', `CLI${RUN}`, '--key', 'pile.key'],
      at(B, adminB),
    );
    expect(pile.result).toMatchObject({ pileId, status: 'active' });
    const top = await ok<Committed<{ balanceFen: number }>>(
      ['gw', 'top-up', '--wallet', walletId, '--amount', '10000', '--reference', `cli-${RUN}`],
      at(A, adminA),
    );
    expect(top.result.balanceFen).toBe(10_000);
    await committedOnEveryPeer(net, BigInt(top.blockNumber));
  });

  test("Beta's pile backend starts, records and stops the session on signed messages: 3000 fen settled", async () => {
    const t = nowSec();
    const auth = await signTo('auth.json', [
      'authorization',
      '--key',
      'driver.key',
      '--pile',
      pileId,
      '--cap',
      '5000',
      '--max-beans',
      '0',
      '--expires',
      '+600',
    ]);
    const start = await signTo('start.json', [
      'reading',
      '--key',
      'pile.key',
      '--kind',
      'START',
      '--session',
      's1',
      '--pile',
      pileId,
      '--meter',
      '0',
      '--at',
      String(t),
    ]);
    const pileEnv = at(B, pilesB);
    const started = await ok<Committed<SessionView>>(
      ['gw', 'start', '--authorization', auth, '--reading', start],
      pileEnv,
    );
    expect(started.result).toMatchObject({ sessionId: 's1', status: 'open' });
    await waitFor('the next second', async () => nowSec() > t);
    const progress = await signTo('progress.json', [
      'reading',
      '--key',
      'pile.key',
      '--kind',
      'PROGRESS',
      '--session',
      's1',
      '--pile',
      pileId,
      '--meter',
      '12000',
    ]);
    await ok(['gw', 'progress', '--reading', progress], pileEnv);
    stopFile = await signTo('stop.json', [
      'reading',
      '--key',
      'pile.key',
      '--kind',
      'STOP',
      '--session',
      's1',
      '--pile',
      pileId,
      '--meter',
      '20000',
    ]);
    const stopped = await ok<Committed<SessionView>>(['gw', 'stop', '--reading', stopFile], pileEnv);
    // The tests' tariff: 70 + 80 fen per kWh at any hour.
    expect(stopped.result).toMatchObject({
      status: 'settled',
      settlement: { energyWh: 20_000, chargedFen: 3_000 },
    });
    await committedOnEveryPeer(net, BigInt(stopped.blockNumber));
  });

  test("the driver's app at Alpha reads the charge in the balance and the session in the history", async () => {
    const view = await ok<{ wallet: { balanceFen: number; heldFen: number }; beans: unknown[] }>(
      ['gw', 'balance', '--wallet', walletId],
      at(A, driverAppA),
    );
    expect(view.wallet).toMatchObject({ balanceFen: 7_000, heldFen: 0 });
    expect(view.beans).toEqual([]);
    const byWallet = await ok<SessionView[]>(['gw', 'history', '--wallet', walletId], at(A, driverAppA));
    expect(byWallet).toEqual([
      expect.objectContaining({ sessionId: 's1', pileId, status: 'settled', settlement: expect.anything() }),
    ]);
    const byPile = await ok<SessionView[]>(
      ['gw', 'history', '--pile', pileId, '--from', String(nowSec() - 3600)],
      at(B, pilesB),
    );
    expect(byPile.map((s) => [s.sessionId, s.settlement?.chargedFen])).toEqual([['s1', 3_000]]);
  });

  test('a refused request exits 3 with the code on stderr; nothing changes', async () => {
    const again = await evpay(['gw', 'stop', '--reading', stopFile], at(B, pilesB));
    expect(again.code).toBe(3);
    expect(again.stdout).toBe('');
    expect(again.err).toMatchObject({
      status: 409,
      code: 'SESSION_ALREADY_SETTLED',
      message: expect.stringContaining('s1'),
      idempotencyKey: expect.stringMatching(/^evpay-/),
    });
    // A driver app may not top up: the gateway's own refusal, same exit code.
    const forbidden = await evpay(
      ['gw', 'top-up', '--wallet', walletId, '--amount', '1', '--reference', `x-${RUN}`],
      at(A, driverAppA),
    );
    expect([forbidden.code, forbidden.err]).toEqual([3, expect.objectContaining({ code: 'ROLE_FORBIDDEN' })]);
    const view = await ok<{ wallet: { balanceFen: number } }>(
      ['gw', 'balance', '--wallet', walletId],
      at(A, adminA),
    );
    expect(view.wallet.balanceFen).toBe(7_000);
  });

  test('usage errors exit 2 before anything is sent; no gateway exits 5; a retried key answers the first outcome', async () => {
    const tooMuch = await evpay(
      ['gw', 'top-up', '--wallet', walletId, '--amount', '100000001', '--reference', `u-${RUN}`],
      at(A, adminA),
    );
    expect([tooMuch.code, tooMuch.stderr]).toEqual([2, expect.stringContaining('amountFen')]);
    const fraction = await evpay(
      ['gw', 'top-up', '--wallet', walletId, '--amount', '12.5', '--reference', `u-${RUN}`],
      at(A, adminA),
    );
    expect(fraction.code).toBe(2);
    const nowhere = await evpay(['gw', 'balance', '--wallet', walletId], {
      EVPAY_GATEWAY_URL: 'http://127.0.0.1:1',
      EVPAY_API_KEY: adminA,
    });
    expect([nowhere.code, nowhere.err]).toEqual([
      5,
      expect.objectContaining({ code: 'GATEWAY_UNREACHABLE' }),
    ]);
    const args = ['gw', 'top-up', '--wallet', walletId, '--amount', '100', '--reference', `idem-${RUN}`];
    const key = ['--idempotency-key', `cli-${RUN}-1`];
    const first = await ok<Committed<{ balanceFen: number }>>([...args, ...key], at(A, adminA));
    const retried = await ok<Committed<{ balanceFen: number }>>([...args, ...key], at(A, adminA));
    expect(retried.txId).toBe(first.txId);
    expect(first.result.balanceFen).toBe(7_100);
    // Without the key the same reference is a new request, and the chaincode refuses the replay.
    const replay = await evpay(args, at(A, adminA));
    expect([replay.code, replay.err]).toEqual([3, expect.objectContaining({ code: 'REFERENCE_REPLAYED' })]);
  });
});

describe('evpay simulate', () => {
  test("2 piles x 2 sessions at Beta's piles, drivers of Alpha: every session settles", async () => {
    const pileKey = await credential(B, 'pile-backend', 'sim piles B');
    const r = await evpay(
      [
        'simulate',
        '--gateway',
        urlOf(B),
        '--driver-gateway',
        urlOf(A),
        '--piles',
        '2',
        '--sessions',
        '2',
        '--seed',
        '11',
      ],
      {
        EVPAY_PILE_API_KEY: pileKey,
        EVPAY_ADMIN_API_KEY: adminB,
        EVPAY_DRIVER_API_KEY: driverAppA,
        EVPAY_TOP_UP_API_KEY: adminA,
      },
    );
    expect([r.code, r.stderr]).toEqual([0, '']);
    const summary = r.out as {
      network: string;
      sessions: Record<string, number>;
      failures: Record<string, number>;
      chargedFen: number;
      energyWh: number;
      sessionsPerSec: number;
      latencyMs: Record<string, { count: number; p50: number; p95: number }>;
    };
    expect(summary).toMatchObject({
      network: 'evpay-test',
      sessions: { planned: 4, settled: 4, failed: 0, skipped: 0 },
      failures: {},
    });
    // One price at every hour in the tests' network: 150 fen per kWh, rounded once per session.
    expect(Math.abs(summary.chargedFen - (summary.energyWh * 150) / 1000)).toBeLessThanOrEqual(2);
    expect(summary.latencyMs.stop).toMatchObject({ count: 4 });
    expect(summary.sessionsPerSec).toBeGreaterThan(0);
  });
});

describe('README: Using the gateways', () => {
  /** The first fenced block of `lang` after the README heading `heading` (as test/docs.test.ts reads it). */
  function fencedBlock(heading: string, lang: string): string {
    const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = md.indexOf(`\n${heading}`);
    const open = md.indexOf('```' + lang + '\n', start);
    const close = md.indexOf('\n```', open + 1);
    if (start < 0 || open < 0 || close < 0) throw new Error(`no ${lang} block under ${heading}`);
    return md.slice(open + lang.length + 4, close);
  }

  test("the block runs as printed on the tests' network: ports 1000 higher, run/test, evpay-test", async () => {
    const block = fencedBlock('## Using the gateways', 'bash');
    // Only what differs between the networks, and the ids one network may see once.
    const script = block
      .replace(/127\.0\.0\.1:(\d{4})\b/g, (_, port: string) => `127.0.0.1:${Number(port) + 1000}`)
      .replace(/run\/local\//g, `${ROOT}/run/test/`)
      .replace(/gateway-api\/bin\//g, `${ROOT}/gateway-api/bin/`)
      .replace(/evpay-local/g, 'evpay-test')
      .replace(/\bP1\b/g, `P1R${RUN}`)
      .replace(/\bcash-1\b/g, `cash-1-${RUN}`)
      .replace(/npx evpay /g, 'evpay ');
    expect(script).not.toMatch(/:808\d|run\/local|npx/);
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('EVPAY_')) delete env[k];
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        'bash',
        ['-c', ['set -euo pipefail', `evpay() { "${process.execPath}" "${BIN}" "$@"; }`, script].join('\n')],
        { cwd: mkdtempSync(join(dir, 'readme-')), env },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect([r.code, r.stderr.replace(/\{[\s\S]*\}\n?/, '')]).toEqual([0, '']);
    expect(r.stdout).toContain('"chargedFen": 3000');
    expect(r.stdout).toContain('"balanceFen": 7000');
    expect(r.stdout).toContain('exit 3');
    expect(JSON.parse(r.stderr)).toMatchObject({ status: 409, code: 'SESSION_ALREADY_SETTLED' });
    // The simulator's summary is the last JSON document printed.
    const summary = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('\n{\n') + 1)) as {
      sessions: Record<string, number>;
    };
    expect(summary.sessions).toEqual({ planned: 15, settled: 15, failed: 0, skipped: 0 });
  });
});
