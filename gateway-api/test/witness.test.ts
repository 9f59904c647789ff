/**
 * The auditor's SM3 witness check without a network, on the 22 real SmartBFT blocks of
 * chaincode/test/fixtures/smartbft-blocks.json: the chaincode's own rules witness them on the in-memory
 * ledger (ClaimBlockRewards), `exportWitness` writes them out from Fabric Block messages as the peer
 * streams them, and the check (module and built `evpay witness verify`) finds the export good and names
 * the first block of every kind of tampering. The README's one-block recipe runs as printed with
 * OpenSSL. `evpay gw rewards` / `gw witness` are read through a fake gateway over the same ledger.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { common } from '@hyperledger/fabric-protos';
import type { CloseableAsyncIterable } from '@hyperledger/fabric-gateway';
import { GENESIS_WITNESS, sm3Hex, witnessStep, type WitnessEntry } from '@evpay/chaincode/client';
import { getConsortium, type Operator } from '../../chaincode/src/domain/access';
import { issueBeans } from '../../chaincode/src/domain/beans';
import { issuanceState } from '../../chaincode/src/domain/beans';
import { periodOf } from '../../chaincode/src/domain/clearing';
import { Keys } from '../../chaincode/src/domain/keys';
import { periodPositions } from '../../chaincode/src/domain/lookups';
import { poolSummary } from '../../chaincode/src/domain/pool';
import {
  claimBlockRewards,
  consenters,
  witnessEntries,
  witnessHead,
} from '../../chaincode/src/domain/rewards';
import { listJson } from '../../chaincode/src/domain/state';
import type { TxContext } from '../../chaincode/src/domain/context';
import { MemoryLedger } from '../../chaincode/test/support/ledger';
import {
  blockFixture,
  ledgerWithConsenters,
  mspOfConsenter,
  transientOf,
  type BlockFixture,
} from '../../chaincode/test/support/blocks';
import { admin, client, OPS, PARAMS } from '../../chaincode/test/support/fixtures';
import { GatewayClient, type FetchLike } from '../src/client/gatewayClient';
import { rewardsReport, witnessReport } from '../src/client/rewards';
import { ExportRefused, exportWitness, type WitnessSource } from '../src/witness/export';
import {
  dataFile,
  headerFile,
  readWitnessDir,
  verifyWitness,
  verifyWitnessDir,
  WITNESS_FILE,
  type WitnessFiles,
  type WitnessRecord,
} from '../src/witness/verify';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'gateway-api', 'dist', 'cli', 'evpay.js');

type Fixture = BlockFixture;
const fx = blockFixture;
const LAST = fx.blocks.length; // blocks 1..22

/** The fixture's blocks witnessed by the chaincode's rules: answers the ledger. */
async function witnessedLedger(): Promise<MemoryLedger> {
  const ledger = await ledgerWithConsenters();
  await ledger.submit(client(OPS.B.mspId), (ctx) =>
    claimBlockRewards(
      { ...ctx, channelId: fx.channel, transient: transientOf(fx.blocks) },
      { blocks: fx.blocks.map((b) => b.evidence) },
    ),
  );
  return ledger;
}

/** A fixture block as the peer's block stream delivers it (a common.Block message). */
function fabricBlock(b: Fixture['blocks'][number]): common.Block {
  const header = new common.BlockHeader();
  header.setNumber(b.evidence.number);
  header.setPreviousHash(Buffer.from(b.evidence.previousHash, 'base64'));
  header.setDataHash(Buffer.from(b.evidence.dataHash, 'base64'));
  const metadata = new common.BlockMetadata();
  metadata.setMetadataList([
    Buffer.from(b.evidence.signatures, 'base64'),
    new Uint8Array(),
    new Uint8Array(),
  ]);
  const block = new common.Block();
  block.setHeader(header);
  block.setData(common.BlockData.deserializeBinary(Buffer.from(b.data, 'base64')));
  block.setMetadata(metadata);
  return block;
}

/** The ledger as the export reads it: the chaincode's queries, and the fixture's blocks as a stream. */
function source(ledger: MemoryLedger): WitnessSource & { closed: number } {
  const s = {
    closed: 0,
    evaluate: async (_as: string, tx: string, args: string[]): Promise<Uint8Array> => {
      const read = <T>(fn: (ctx: TxContext) => Promise<T>) => ledger.evaluate(client(OPS.A.mspId), fn);
      const answer =
        tx === 'GetWitnessHead'
          ? await read(witnessHead)
          : tx === 'ListWitness'
            ? await read((ctx) => witnessEntries(ctx, Number(args[0])))
            : undefined;
      if (answer === undefined) throw new Error(`unexpected ${tx}`);
      return new TextEncoder().encode(JSON.stringify(answer));
    },
    blocks: async (start: bigint): Promise<CloseableAsyncIterable<common.Block>> => {
      const blocks = fx.blocks.filter((b) => BigInt(b.evidence.number) >= start);
      return {
        async *[Symbol.asyncIterator]() {
          for (const b of blocks) yield fabricBlock(b);
        },
        close: () => void s.closed++,
        [Symbol.dispose]: () => void s.closed++,
      };
    },
  };
  return s;
}

let ledger: MemoryLedger;
let entries: WitnessEntry[];
let work: string;
let exported: string;
beforeAll(async () => {
  ledger = await witnessedLedger();
  entries = await ledger.evaluate(client(OPS.A.mspId), (ctx) => witnessEntries(ctx, 1));
  work = mkdtempSync(path.join(tmpdir(), 'evpay-witness-'));
  exported = path.join(work, 'export');
  await exportWitness(source(ledger), { out: exported });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

let copies = 0;
/** A copy of the export, changed by `change` (given the copy's directory). */
function tampered(change: (dir: string) => void): string {
  const dir = path.join(work, `copy-${++copies}`);
  cpSync(exported, dir, { recursive: true });
  change(dir);
  return dir;
}
const flipByte = (file: string, at = 10): void => {
  const b = readFileSync(file);
  b[at] = (b[at] as number) ^ 0x01;
  writeFileSync(file, b);
};
const editEntries = (dir: string, edit: (e: WitnessEntry[]) => WitnessEntry[]): void => {
  const file = path.join(dir, WITNESS_FILE);
  writeFileSync(file, JSON.stringify(edit(JSON.parse(readFileSync(file, 'utf8')) as WitnessEntry[])));
};
const mismatchOf = (dir: string) => {
  const v = verifyWitnessDir(dir);
  return v.ok ? { ok: true } : { block: v.block, mismatch: v.mismatch };
};

describe('witness export', () => {
  test("writes each block's header DER and data as the chaincode hashed them, and the ledger's entries", () => {
    expect(entries.map((e) => e.block)).toEqual(fx.blocks.map((b) => b.evidence.number));
    for (const b of fx.blocks) {
      const n = b.evidence.number;
      // The data bytes are the block's own (a Block message round-trips them exactly) ...
      expect(readFileSync(path.join(exported, dataFile(n))).equals(Buffer.from(b.data, 'base64'))).toBe(true);
      // ... and the header file is the DER SEQUENCE { number, previousHash, dataHash }.
      const der = readFileSync(path.join(exported, headerFile(n)));
      expect(der[0]).toBe(0x30);
      expect(der.includes(Buffer.from(b.evidence.dataHash, 'base64'))).toBe(true);
      expect(sm3Hex(der)).toBe(entries[n - 1]?.headerSm3);
    }
    expect(JSON.parse(readFileSync(path.join(exported, WITNESS_FILE), 'utf8'))).toEqual(entries);
  });

  test('a range: only its blocks and entries; the stream is closed', async () => {
    const src = source(ledger);
    const out = path.join(work, 'range');
    const s = await exportWitness(src, { from: 10, to: 15, out });
    expect([s.from, s.to, s.blocks, s.chain]).toEqual([10, 15, 6, entries[14]?.chain]);
    expect(src.closed).toBe(1);
    const { entries: got, files } = readWitnessDir(out);
    expect(got.map((e) => e.block)).toEqual([10, 11, 12, 13, 14, 15]);
    expect(files.blocks().sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 15]);
  });

  test('refused: a block not witnessed yet, an empty range, a directory already used', async () => {
    const refused = (o: Parameters<typeof exportWitness>[1]) =>
      exportWitness(source(ledger), o).then(
        () => 'exported',
        (e: Error) => (e instanceof ExportRefused ? e.message : `other: ${e.message}`),
      );
    expect(await refused({ to: LAST + 1, out: path.join(work, 'x1') })).toMatch(
      `block ${LAST + 1} is not witnessed yet (the witness head is block ${LAST})`,
    );
    expect(await refused({ from: 9, to: 8, out: path.join(work, 'x2') })).toMatch('no blocks from 9 to 8');
    expect(await refused({ out: exported })).toMatch('is not empty');
    expect(existsSync(path.join(work, 'x1'))).toBe(false);
  });
});

describe('witness verify', () => {
  test('the export checks: every block, from the 64 zeros to the witness head', async () => {
    const head = await ledger.evaluate(client(OPS.A.mspId), witnessHead);
    expect(verifyWitnessDir(exported)).toEqual({
      ok: true,
      blocks: LAST,
      from: 1,
      to: LAST,
      startChain: GENESIS_WITNESS,
      chain: head?.chain,
    });
  });

  test('an export from a later block starts from its first entry prevChain', async () => {
    const v = verifyWitnessDir(path.join(work, 'range'));
    expect(v).toEqual({
      ok: true,
      blocks: 6,
      from: 10,
      to: 15,
      startChain: entries[8]?.chain,
      chain: entries[14]?.chain,
    });
  });

  test('a tampered data file: the block and "data" named, the two SM3 values given', () => {
    const dir = tampered((d) => flipByte(path.join(d, dataFile(7)), 100));
    const v = verifyWitnessDir(dir);
    expect(v).toMatchObject({ ok: false, block: 7, mismatch: 'data', verified: 6 });
    expect(v.ok ? '' : v.expected).toBe(entries[6]?.dataSm3);
    expect(v.ok ? '' : v.actual).toBe(sm3Hex(readFileSync(path.join(dir, dataFile(7)))));
  });

  test('a tampered header file', () => {
    expect(mismatchOf(tampered((d) => flipByte(path.join(d, headerFile(9)), 40)))).toEqual({
      block: 9,
      mismatch: 'header',
    });
  });

  test('a missing block: its files gone, or its entry gone', () => {
    expect(mismatchOf(tampered((d) => unlinkSync(path.join(d, dataFile(12)))))).toEqual({
      block: 12,
      mismatch: 'sequence',
    });
    expect(mismatchOf(tampered((d) => unlinkSync(path.join(d, headerFile(12)))))).toEqual({
      block: 12,
      mismatch: 'sequence',
    });
    expect(mismatchOf(tampered((d) => editEntries(d, (es) => es.filter((e) => e.block !== 12))))).toEqual({
      block: 12,
      mismatch: 'sequence',
    });
    // The last entry gone: its files remain, with no entry.
    expect(mismatchOf(tampered((d) => editEntries(d, (es) => es.slice(0, -1))))).toEqual({
      block: LAST,
      mismatch: 'sequence',
    });
    // The first entries gone: their files remain before the first entry.
    expect(mismatchOf(tampered((d) => editEntries(d, (es) => es.slice(3))))).toEqual({
      block: 1,
      mismatch: 'sequence',
    });
  });

  test('a reordered or repeated entry', () => {
    const swap = (es: WitnessEntry[]) => {
      const out = [...es];
      [out[13], out[14]] = [out[14] as WitnessEntry, out[13] as WitnessEntry];
      return out;
    };
    expect(mismatchOf(tampered((d) => editEntries(d, swap)))).toEqual({ block: 14, mismatch: 'sequence' });
    const repeat = (es: WitnessEntry[]) => [...es.slice(0, 5), es[4] as WitnessEntry, ...es.slice(5)];
    expect(mismatchOf(tampered((d) => editEntries(d, repeat)))).toEqual({ block: 6, mismatch: 'sequence' });
  });

  test("an entry's chain, or its link to the previous one, altered", () => {
    const other = sm3Hex('other');
    const at = (n: number, change: Partial<WitnessEntry>) => (es: WitnessEntry[]) =>
      es.map((e) => (e.block === n ? { ...e, ...change } : e));
    expect(mismatchOf(tampered((d) => editEntries(d, at(16, { chain: other }))))).toEqual({
      block: 16,
      mismatch: 'chain',
    });
    expect(mismatchOf(tampered((d) => editEntries(d, at(17, { prevChain: other }))))).toEqual({
      block: 17,
      mismatch: 'chain',
    });
    expect(mismatchOf(tampered((d) => editEntries(d, at(1, { prevChain: other }))))).toEqual({
      block: 1,
      mismatch: 'chain',
    });
    // A whole block replaced consistently in its entry (headerSm3, dataSm3 and chain recomputed) still
    // breaks the link: the next entry's prevChain is the old chain.
    const forged = (es: WitnessEntry[]) => {
      const e = es[4] as WitnessEntry;
      const dataSm3 = sm3Hex('forged data');
      return at(5, { dataSm3, chain: witnessStep(e.prevChain, 5, e.headerSm3, dataSm3) })(es);
    };
    expect(
      mismatchOf(
        tampered((d) => {
          writeFileSync(path.join(d, dataFile(5)), 'forged data');
          editEntries(d, forged);
        }),
      ),
    ).toEqual({ block: 6, mismatch: 'chain' });
  });

  test('the FIRST mismatch is named when there are several', () => {
    const dir = tampered((d) => {
      flipByte(path.join(d, dataFile(18)));
      flipByte(path.join(d, headerFile(10)));
      writeFileSync(path.join(d, headerFile(LAST + 3)), 'stray');
    });
    expect(mismatchOf(dir)).toEqual({ block: 10, mismatch: 'header' });
    // A stray file after the last entry, alone.
    expect(mismatchOf(tampered((d) => writeFileSync(path.join(d, dataFile(LAST + 1)), 'x')))).toEqual({
      block: LAST + 1,
      mismatch: 'sequence',
    });
  });

  test('the pure check works on files in memory, and an empty witness is no proof', () => {
    const bytes = (b: Fixture['blocks'][number]) => ({
      header: readFileSync(path.join(exported, headerFile(b.evidence.number))),
      data: new Uint8Array(Buffer.from(b.data, 'base64')),
    });
    const byBlock = new Map(fx.blocks.slice(0, 3).map((b) => [b.evidence.number, bytes(b)]));
    const files: WitnessFiles = {
      header: (n) => byBlock.get(n)?.header,
      data: (n) => byBlock.get(n)?.data,
      blocks: () => [...byBlock.keys()],
    };
    const three: WitnessRecord[] = entries
      .slice(0, 3)
      .map(({ block, headerSm3, dataSm3, prevChain, chain }) => ({
        block,
        headerSm3,
        dataSm3,
        prevChain,
        chain,
      }));
    expect(verifyWitness(three, files)).toMatchObject({ ok: true, blocks: 3, chain: entries[2]?.chain });
    expect(verifyWitness([], files)).toMatchObject({ ok: false, block: 1, mismatch: 'sequence' });
  });

  test('not an export: a clear error', () => {
    expect(() => verifyWitnessDir(path.join(work, 'nowhere'))).toThrow('is not a directory');
    const bad = tampered((d) => writeFileSync(path.join(d, WITNESS_FILE), '[{"block": 1}]'));
    expect(() => verifyWitnessDir(bad)).toThrow(`${WITNESS_FILE}: entry 1: headerSm3 Required`);
  });
});

describe('evpay witness verify (the built CLI)', () => {
  beforeAll(() => expect(existsSync(BIN)).toBe(true)); // built by `npm test` (npm run build)
  const evpay = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

  test('exit 0 with the count and the final chain; 1 naming the first block that differs; 2 for no export', () => {
    const good = evpay('witness', 'verify', '--dir', exported);
    expect([good.status, good.stderr]).toEqual([0, '']);
    expect(JSON.parse(good.stdout)).toMatchObject({
      ok: true,
      blocks: LAST,
      chain: entries[LAST - 1]?.chain,
    });

    const dir = tampered((d) => flipByte(path.join(d, dataFile(20))));
    const bad = evpay('witness', 'verify', '--dir', dir);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, block: 20, mismatch: 'data' });
    expect(bad.stderr).toMatch(/witness mismatch \(data\) at block 20: /);

    const none = evpay('witness', 'verify', '--dir', path.join(work, 'nowhere'));
    expect([none.status, none.stderr]).toEqual([
      2,
      `evpay: ${path.join(work, 'nowhere')} is not a directory\n`,
    ]);
  });
});

describe('README: one block checked by hand with openssl', () => {
  /** The README's bash block that runs `openssl dgst -sm3` (under "Checking the witness"). */
  function recipe(): string {
    const md = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const blocks = [...md.matchAll(/```bash\n([\s\S]*?)\n```/g)].map((m) => m[1] as string);
    const found = blocks.filter((b) => b.includes('openssl dgst -sm3'));
    if (found.length !== 1) throw new Error(`${found.length} bash blocks of README.md run openssl dgst -sm3`);
    return found[0] as string;
  }

  test("the recipe, run as printed in an export's directory, computes the block's headerSm3, dataSm3 and chain", () => {
    const script = recipe();
    const n = Number(/\bn=(\d+)/.exec(script)?.[1]);
    expect(n).toBeGreaterThan(1);
    expect(script).toContain(`printf '%s:%s:%s:%s' "$prev" "$n" "$h" "$d" | openssl dgst -sm3`);
    const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: exported, encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const e = entries[n - 1] as WitnessEntry;
    // openssl's three values, then the entry's own: the same three lines.
    expect(r.stdout.trim().split('\n')).toEqual([
      e.headerSm3,
      e.dataSm3,
      e.chain,
      e.headerSm3,
      e.dataSm3,
      e.chain,
    ]);
  });
});

describe('evpay gw rewards / gw witness, through a gateway over the same ledger', () => {
  const json = (body: unknown): Response =>
    new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  /** The GET routes the reports read, answered by the chaincode's queries (as the contract composes them). */
  const read = <T>(fn: (ctx: TxContext) => Promise<T>) => ledger.evaluate(client(OPS.A.mspId), fn);
  const routes: Array<[RegExp, (m: string[], q: URLSearchParams) => Promise<unknown>]> = [
    [
      /^\/v1\/consortium$/,
      () =>
        read(async (ctx) => ({
          consortium: await getConsortium(ctx),
          operators: (await listJson<Operator>(ctx.store, Keys.operatorsPrefix())).map((e) => e.value),
          pool: await poolSummary(ctx),
        })),
    ],
    [/^\/v1\/operators\/([^/]+)\/issuance$/, (m) => read((ctx) => issuanceState(ctx, m[1] ?? ''))],
    [/^\/v1\/clearing\/periods\/(\d+)\/positions$/, (m) => read((ctx) => periodPositions(ctx, Number(m[1])))],
    [/^\/v1\/witness\/head$/, () => read(witnessHead)],
    [/^\/v1\/witness$/, (_, q) => read((ctx) => witnessEntries(ctx, Number(q.get('fromBlock'))))],
    [/^\/v1\/consenters$/, () => read(consenters)],
  ];
  const fetch: FetchLike = async (url) => {
    const u = new URL(url);
    for (const [path, answer] of routes) {
      const m = path.exec(u.pathname);
      if (m) return json(JSON.parse(JSON.stringify(await answer([...m], u.searchParams))));
    }
    return new Response('{}', { status: 404 });
  };
  const api = new GatewayClient({ url: 'http://gw.test', apiKey: 'evk_x', fetch });

  test("rewards per operator are what the witness entries paid; remaining = limit - issued; the pool's totals", async () => {
    const paid: Record<string, number> = {};
    for (const e of entries)
      for (const [msp, fen] of Object.entries(e.reward.paid)) paid[msp] = (paid[msp] ?? 0) + fen;
    // The operator that earned most issues a bean: issued and treasury move, remaining follows.
    const [richest] = Object.entries(paid).sort((a, b) => b[1] - a[1])[0] as [string, number];
    await ledger.submit(admin(richest), (ctx) => issueBeans(ctx, { beans: 1, reference: 'w1' }));
    const period = periodOf(ledger.now, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const r = await rewardsReport(api, period);
    expect(r.operators.map((o) => o.mspId)).toEqual(Object.values(OPS).map((o) => o.mspId));
    for (const o of r.operators) {
      expect(o.rewardsFen).toBe(paid[o.mspId] ?? 0);
      expect(o.periodRewardsFen).toBe(paid[o.mspId] ?? 0); // all claimed in this period
      expect(o.remaining).toBe(o.limit - o.issued);
      expect(o.limit).toBe(Math.floor(o.rewardsFen / PARAMS.beanFaceValueFen));
    }
    const issuer = r.operators.find((o) => o.mspId === richest);
    expect([issuer?.issued, issuer?.treasury, issuer?.remaining]).toEqual([1, 1, (issuer?.limit ?? 0) - 1]);
    expect(r.totals.rewardsFen).toBe(6 * PARAMS.blockRewardFen);
    expect(r.pool.rewardsPaidFen).toBe(r.totals.rewardsFen);
    expect(r.totals.periodRewardsFen).toBe(r.totals.rewardsFen);
    expect([r.totals.issued, r.totals.treasury, r.period]).toEqual([1, 1, period]);
    const other = await rewardsReport(api, period + 1);
    expect(other.operators.map((o) => o.periodRewardsFen)).toEqual([0, 0, 0, 0]);
    expect((await rewardsReport(api)).operators[0]).not.toHaveProperty('periodRewardsFen');
  });

  test('witnessed blocks with their leader and signers by operator, reward and chain', async () => {
    const w = await witnessReport(api, 3, 8);
    expect(w.blocks.map((b) => b.block)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(w.head.block).toBe(LAST);
    for (const b of w.blocks) {
      const e = entries[b.block - 1] as WitnessEntry;
      expect(b.leader).toEqual({ consenterId: e.leader, mspId: mspOfConsenter(e.leader) });
      expect(b.signers.map((s) => s.consenterId)).toEqual(e.signers);
      expect(b.signers.map((s) => s.mspId)).toEqual(e.signers.map(mspOfConsenter));
      expect([b.reward, b.chain]).toEqual([e.reward, e.chain]);
    }
    const all = await witnessReport(api);
    expect(all.blocks).toHaveLength(LAST);
    expect(all.next).toBeUndefined();
    const sum = Object.values(all.paid).reduce((a, b) => a + b, 0);
    expect(sum).toBe(6 * PARAMS.blockRewardFen);
  });
});
