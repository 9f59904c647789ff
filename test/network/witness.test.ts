/**
 * The auditor's SM3 witness check on the running network, with the built CLIs as an auditor runs them:
 * after a few business transactions are witnessed, `evpay-gateway witness export` (the auditor's gateway
 * configuration: its own peer, its own identity) writes blocks 1..head and their witness entries,
 * `evpay witness verify` finds them good up to the witness head's chain, the README's openssl recipe
 * recomputes one of those blocks, and one flipped byte in a data file is named by its block. `evpay gw
 * rewards` prints exactly what the auditor's gateway reports (GET /v1/consortium, issuance, positions),
 * `evpay gw witness` the ledger's witness entries, and the README's auditor block runs as printed.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  chaincodeError,
  committedOnEveryPeer,
  connectAs,
  evaluate,
  submit,
  whenEndorsable,
  type Connection,
} from '../../network/tools/client';
import type { WitnessEntry, WitnessHead } from '../../chaincode/src/domain/rewards';
import { periodOf } from '../../chaincode/src/domain/clearing';
import { sm2GenerateKeyPair } from '../../chaincode/src/crypto';
import { ROOT } from './networkScripts';
import { net, waitFor } from './support/fabric';
import { credential, gatewaysReady } from './support/gateway';

jest.setTimeout(240_000);

const GATEWAY_BIN = join(ROOT, 'gateway-api', 'bin', 'evpay-gateway.js');
const EVPAY_BIN = join(ROOT, 'gateway-api', 'bin', 'evpay.js');
const operators = net.orgs.filter((o) => o.role === 'operator');
const auditorOrg = net.orgs.find((o) => o.role === 'auditor');
if (!auditorOrg) throw new Error('the network has no auditor organization');
const AUDITOR = auditorOrg.mspId;
const AUDITOR_CONFIG = join(net.runDir, 'nodes', auditorOrg.gateway.node, 'gateway.json');
const AUDITOR_URL = auditorOrg.gateway.url;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  out: unknown;
}
/** Runs a built bin with node, without the caller's EVPAY_* variables. */
function run(bin: string, args: string[], cwd: string = ROOT): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('EVPAY_')) delete env[k];
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd, env, timeout: 170_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        let out: unknown;
        try {
          out = JSON.parse(stdout);
        } catch {
          out = undefined;
        }
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
          stdout,
          stderr,
          out,
        });
      },
    ),
  );
}

const conns: Connection[] = [];
const as = (mspId: string, who: 'admin' | 'client' = 'client'): Connection => {
  const c = connectAs(net, mspId, who);
  conns.push(c);
  return c;
};

let dir = '';
let auditorKey = '';
let auditor: Connection;
/** The business blocks of this run and the times around them (Unix seconds). */
let firstBlock = 0;
let lastBlock = 0;
let startedAt = 0;
let witnessedAt = 0;
let head: WitnessHead;

const gatewayGet = async <T>(path: string): Promise<T> => {
  const res = await fetch(AUDITOR_URL + path, { headers: { authorization: `Bearer ${auditorKey}` } });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'evpay-witness-net-'));
  await gatewaysReady();
  auditorKey = await credential(AUDITOR, 'auditor', 'witness test');
  auditor = as(AUDITOR);
  // Margins paid (idempotent: a network an earlier test left has them), so the pool pays the rewards.
  const custodian = as(AUDITOR, 'admin');
  for (const op of operators) {
    await whenEndorsable(() => submit(as(op.mspId, 'admin'), 'PayMargin')).catch((e) => {
      if (!/MARGIN_ALREADY_(DECLARED|PAID)/.test(chaincodeError(e)?.code ?? '')) throw e;
    });
    const r = await whenEndorsable(() => submit(custodian, 'ConfirmMargin', op.mspId)).catch((e) => {
      if (chaincodeError(e)?.code !== 'MARGIN_ALREADY_PAID') throw e;
      return undefined;
    });
    if (r) await committedOnEveryPeer(net, r.blockNumber);
  }
  // A few business transactions (new wallets), then wait for the keepers to witness past them.
  startedAt = Math.floor(Date.now() / 1000) - 1;
  const alpha = as((operators[0] as { mspId: string }).mspId);
  const blocks: bigint[] = [];
  for (let i = 0; i < 3; i++) {
    const publicKey = sm2GenerateKeyPair().publicKeyHex;
    const r = await whenEndorsable(() => submit(alpha, 'OpenWallet', JSON.stringify({ publicKey })));
    blocks.push(r.blockNumber);
  }
  firstBlock = Number(blocks[0]);
  lastBlock = Number(blocks[blocks.length - 1]);
  head = await waitFor(
    `the witness head past block ${lastBlock}`,
    async () => {
      const h = await evaluate<WitnessHead>(auditor, 'GetWitnessHead');
      return h.block >= lastBlock ? h : undefined;
    },
    120_000,
  );
  witnessedAt = Math.floor(Date.now() / 1000) + 1;
});
afterAll(() => {
  conns.forEach((c) => c.close());
  rmSync(dir, { recursive: true, force: true });
});

describe('the SM3 witness, exported from the auditor peer and checked offline', () => {
  let out = '';

  test('export 1..head with the auditor gateway configuration; verify: every block good, up to the head chain', async () => {
    out = join(dir, 'export');
    const exp = await run(GATEWAY_BIN, [
      'witness',
      'export',
      '--config',
      AUDITOR_CONFIG,
      '--to',
      String(head.block),
      '--out',
      out,
    ]);
    expect([exp.code, exp.stderr]).toEqual([0, '']);
    expect(exp.out).toMatchObject({ from: 1, to: head.block, blocks: head.block, chain: head.chain });
    // The entries written are the ledger's.
    const written = JSON.parse(readFileSync(join(out, 'witness.json'), 'utf8')) as WitnessEntry[];
    expect(written.map((e) => e.block)).toEqual(Array.from({ length: head.block }, (_, i) => i + 1));
    const onLedger = await evaluate<WitnessEntry[]>(auditor, 'ListWitness', String(firstBlock));
    expect(written.slice(firstBlock - 1, lastBlock)).toEqual(onLedger.slice(0, lastBlock - firstBlock + 1));

    const v = await run(EVPAY_BIN, ['witness', 'verify', '--dir', out]);
    expect([v.code, v.stderr]).toEqual([0, '']);
    expect(v.out).toEqual({
      ok: true,
      blocks: head.block,
      from: 1,
      to: head.block,
      startChain: '0'.repeat(64),
      chain: head.chain,
    });
  });

  test("the README's openssl recipe recomputes one of this run's blocks", () => {
    const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const recipe = [...md.matchAll(/```bash\n([\s\S]*?)\n```/g)]
      .map((m) => m[1] as string)
      .find((b) => b.includes('openssl dgst -sm3'));
    expect(recipe).toMatch(/\bn=\d+;/);
    const script = (recipe as string).replace(/\bn=\d+;/, `n=${lastBlock};`);
    const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: out, encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(6);
    expect(lines.slice(0, 3)).toEqual(lines.slice(3));
  });

  test('one flipped byte in a data file: exit 1, that block and "data" named', async () => {
    const file = join(out, `${lastBlock}.data.bin`);
    const bytes = readFileSync(file);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] as number) ^ 0x80;
    writeFileSync(file, bytes);
    const v = await run(EVPAY_BIN, ['witness', 'verify', '--dir', out]);
    expect(v.code).toBe(1);
    expect(v.out).toMatchObject({ ok: false, block: lastBlock, mismatch: 'data', verified: lastBlock - 1 });
    expect(v.stderr).toContain(`witness mismatch (data) at block ${lastBlock}: `);
  });
});

interface Issuance {
  rewardsFen: number;
  issued: number;
  limit: number;
  remaining: number;
  treasury: number;
}
interface Consortium {
  operators: Array<{ mspId: string; name: string }>;
  pool: { balanceFen: number; marginsFen: number; rewardsPaidFen: number; movements: number };
}
interface RewardsOut {
  operators: Array<Issuance & { mspId: string; name: string; periodRewardsFen: number }>;
  pool: Consortium['pool'];
  totals: Record<string, number>;
  period: number;
}

describe('evpay gw rewards and gw witness print what the gateway reports', () => {
  /** What the auditor's gateway reports over REST for a period, read the way a person would. */
  async function reported(period: number) {
    const view = await gatewayGet<Consortium>('/v1/consortium');
    const issuance: Record<string, Issuance> = {};
    for (const op of view.operators)
      issuance[op.mspId] = await gatewayGet<Issuance>(`/v1/operators/${op.mspId}/issuance`);
    const positions = await gatewayGet<{ positions: Record<string, { rewardsFen: number }> }>(
      `/v1/clearing/periods/${period}/positions`,
    );
    return { view, issuance, positions: positions.positions };
  }

  test('per operator: rewardsFen, issued, remaining = limit - issued, treasury, the period rewards; the pool and totals', async () => {
    const params =
      await gatewayGet<Array<{ clearingPeriodSec: number; clearingUtcOffsetMinutes: number }>>('/v1/params');
    const p = params[params.length - 1] as (typeof params)[number];
    const periodAt = (t: number) => periodOf(t, p.clearingPeriodSec, p.clearingUtcOffsetMinutes);
    let periodRewards = 0;
    for (let period = periodAt(startedAt); period <= periodAt(witnessedAt); period++) {
      // Keepers may still be claiming: compare a CLI run with REST reads taken before and after it.
      const cli = await waitFor(`a quiet read of period ${period}`, async () => {
        const before = await reported(period);
        const r = await run(EVPAY_BIN, [
          'gw',
          'rewards',
          '--gateway',
          AUDITOR_URL,
          '--api-key',
          auditorKey,
          '--period',
          String(period),
        ]);
        expect([r.code, r.stderr]).toEqual([0, '']);
        const after = await reported(period);
        return JSON.stringify(before) === JSON.stringify(after)
          ? { out: r.out as RewardsOut, rest: after }
          : undefined;
      });
      const { out, rest } = cli;
      expect(out.operators.map((o) => o.mspId)).toEqual(rest.view.operators.map((o) => o.mspId));
      for (const o of out.operators) {
        const i = rest.issuance[o.mspId] as Issuance;
        expect([o.mspId, o.rewardsFen, o.issued, o.limit, o.treasury]).toEqual([
          o.mspId,
          i.rewardsFen,
          i.issued,
          i.limit,
          i.treasury,
        ]);
        expect([o.mspId, o.remaining]).toEqual([o.mspId, i.limit - i.issued]);
        expect([o.mspId, o.periodRewardsFen]).toEqual([o.mspId, rest.positions[o.mspId]?.rewardsFen ?? 0]);
      }
      expect(out.pool).toEqual(rest.view.pool);
      const sum = (f: (i: Issuance) => number) => Object.values(rest.issuance).reduce((a, i) => a + f(i), 0);
      expect(out.totals).toEqual({
        rewardsFen: sum((i) => i.rewardsFen),
        issued: sum((i) => i.issued),
        remaining: sum((i) => i.limit - i.issued),
        treasury: sum((i) => i.treasury),
        periodRewardsFen: Object.values(rest.positions).reduce((a, x) => a + x.rewardsFen, 0),
      });
      // Every reward paid is an operator's: the pool paid out what the operators earned.
      expect(out.totals.rewardsFen).toBe(out.pool.rewardsPaidFen);
      periodRewards += out.totals.periodRewardsFen ?? 0;
    }
    // This run's business blocks were paid in the periods between the first transaction and the witness.
    const mine = (await evaluate<WitnessEntry[]>(auditor, 'ListWitness', String(firstBlock))).filter(
      (e) => e.block <= lastBlock && e.reward.status === 'paid',
    );
    expect(mine.length).toBeGreaterThan(0);
    expect(periodRewards).toBeGreaterThanOrEqual(mine.reduce((a, e) => a + e.reward.amountFen, 0));
  });

  test('gw witness: the witnessed blocks of this run, with leader and signers by operator, reward and chain', async () => {
    const r = await run(EVPAY_BIN, [
      'gw',
      'witness',
      '--gateway',
      AUDITOR_URL,
      '--api-key',
      auditorKey,
      '--from',
      String(firstBlock),
      '--to',
      String(lastBlock),
    ]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const out = r.out as {
      head: WitnessHead;
      blocks: Array<{
        block: number;
        leader: { consenterId: number; mspId: string };
        signers: Array<{ consenterId: number; mspId: string }>;
        reward: WitnessEntry['reward'];
        chain: string;
      }>;
    };
    const entries = await evaluate<WitnessEntry[]>(auditor, 'ListWitness', String(firstBlock));
    const consenters = await evaluate<Array<{ consenterId: number; mspId: string }>>(
      auditor,
      'GetConsenters',
    );
    const mspOf = (id: number) => consenters.find((c) => c.consenterId === id)?.mspId;
    expect(out.blocks.map((b) => b.block)).toEqual(
      Array.from({ length: lastBlock - firstBlock + 1 }, (_, i) => firstBlock + i),
    );
    for (const b of out.blocks) {
      const e = entries.find((x) => x.block === b.block) as WitnessEntry;
      expect(b.leader).toEqual({ consenterId: e.leader, mspId: mspOf(e.leader) });
      expect(b.signers).toEqual(e.signers.map((id) => ({ consenterId: id, mspId: mspOf(id) })));
      expect([b.reward, b.chain]).toEqual([e.reward, e.chain]);
    }
    expect(out.head.block).toBeGreaterThanOrEqual(lastBlock);
  });

  test("the README's auditor block runs as printed against this network", async () => {
    const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = [...md.matchAll(/```bash\n([\s\S]*?)\n```/g)]
      .map((m) => m[1] as string)
      .find((b) => b.includes('witness export'));
    expect(block).toBeDefined();
    const script = (block as string)
      .replace(
        /run\/local\/nodes\/auditor-gateway\//g,
        `${join(net.runDir, 'nodes', auditorOrg.gateway.node)}/`,
      )
      .replace(/http:\/\/127\.0\.0\.1:8089/g, AUDITOR_URL)
      .replace(/\bgateway-api\/bin\//g, `${ROOT}/gateway-api/bin/`)
      .replace(/npx evpay /g, 'evpay ');
    expect(script).not.toMatch(/run\/local|:8089|npx/);
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('EVPAY_')) delete env[k];
    const r = spawnSync(
      'bash',
      [
        '-c',
        ['set -euo pipefail', `evpay() { "${process.execPath}" "${EVPAY_BIN}" "$@"; }`, script].join('\n'),
      ],
      { cwd: mkdtempSync(join(dir, 'readme-')), env, encoding: 'utf8', timeout: 170_000 },
    );
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('"ok": true');
    expect(r.stdout).toContain('"rewardsPaidFen"');
  });
});
