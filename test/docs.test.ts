/**
 * The documentation checked against the code, so it cannot drift: the signed-text example of
 * chaincode/README.md §3 verifies with the chaincode's own message functions; the README's `evpay` block
 * runs as printed; `evpay --help` lists every command and option; the sample genesis document is one the
 * chaincode accepts; no Markdown line is unreadably long; the ledger double's header cites tests that exist.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { sm2Sign, sm2Verify } from '../chaincode/src/crypto';
import { initSchema } from '../chaincode/src/domain/consortium';
import { authorizationText, requireSignature, walletIdOf } from '../chaincode/src/domain/messages';
import { program } from '../gateway-api/src/cli/evpay';
import { genesisDocument, loadTopology } from '../network/tools/topology';

const ROOT = join(__dirname, '..');
const BIN = join(ROOT, 'gateway-api', 'dist', 'cli', 'evpay.js');
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** The fenced block of `lang` in the section of a Markdown file whose heading starts with `heading`. */
function fencedBlock(file: string, heading: string, lang: string): string {
  const md = read(file);
  const start = md.indexOf(`\n${heading}`);
  expect(start).toBeGreaterThan(-1);
  const open = md.indexOf('```' + lang + '\n', start);
  const close = md.indexOf('\n```', open + 1);
  expect(open).toBeGreaterThan(-1);
  return md.slice(open + lang.length + 4, close);
}

// GB/T 32918.5-2017 Annex A sample key (the one chaincode/test/crypto/sm.test.ts checks the signature vector with).
const GBT_PRIVATE = '3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8';
const GBT_PUBLIC =
  '04' +
  '09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020' +
  'ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13';

test('chaincode/README.md §3: the example text, signed as printed, verifies with the chaincode message functions', () => {
  const printed = fencedBlock('chaincode/README.md', '## 3. Signed messages', 'text');
  const [tag, network, walletId, pileId, capFen, maxBeans, nonce, expiresAt, ...rest] = printed.split('\n');
  expect([tag, rest]).toEqual(['EVPAY/AUTH/2', []]);
  expect(walletId).toBe(walletIdOf(GBT_PUBLIC));
  const auth = {
    walletId: walletId!,
    pileId: pileId!,
    capFen: Number(capFen),
    maxBeans: Number(maxBeans),
    nonce: nonce!,
    expiresAt: Number(expiresAt),
  };
  // The chaincode builds exactly the printed text (tag, network line, fields) ...
  expect(authorizationText(network!, auth)).toBe(printed);
  // ... so a signature over the text as printed is the one StartSession checks.
  const signature = sm2Sign(GBT_PRIVATE, printed);
  expect(sm2Verify(GBT_PUBLIC, authorizationText(network!, auth), signature)).toBe(true);
  expect(() =>
    requireSignature(GBT_PUBLIC, authorizationText(network!, auth), signature, 'auth'),
  ).not.toThrow();
  // The prose around it names the same key, wallet, pile and cap.
  const md = read('chaincode/README.md');
  expect(md).toContain(`\`${GBT_PRIVATE.slice(0, 8)}…${GBT_PRIVATE.slice(-8)}\``);
  expect(md).toContain(`\`${walletId!.slice(0, 8)}…${walletId!.slice(-8)}\``);
  expect(md).toContain(
    `${auth.capFen}-fen authorization for at most ${auth.maxBeans} beans at pile \`${pileId}\``,
  );
});

describe('evpay', () => {
  beforeAll(() => expect(existsSync(BIN)).toBe(true)); // built by `npm test` (npm run build)

  test('`evpay --help` lists every command with every one of its options', () => {
    const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const sections = r.stdout.split(/^Usage: /m);
    const check = (cmd: Command, path: string[]): number => {
      const name = ['evpay', ...path].join(' ');
      const section = sections.find((s) => s.startsWith(`${name} `));
      expect([name, section !== undefined]).toEqual([name, true]);
      for (const option of cmd.options)
        expect([name, section]).toEqual([name, expect.stringContaining(option.flags)]);
      return cmd.commands.reduce((n, sub) => n + check(sub, [...path, sub.name()]), 1);
    };
    // Every command of the program (sign's subcommands and key's included), not only the top level.
    expect(check(program(), [])).toBeGreaterThanOrEqual(13);
  });

  test("the README's evpay block runs as printed: keys, signatures, verify of the signed file, genesis digest", () => {
    const block = fencedBlock('README.md', '## Signing from the command line', 'bash');
    // Every file a command reads is written by an earlier line, or is committed in the repository.
    const dir = mkdtempSync(join(tmpdir(), 'evpay-readme-'));
    try {
      for (const [, file] of block.matchAll(/--file (\S+)/g)) {
        expect([file, existsSync(join(ROOT, file!))]).toEqual([file, true]);
        mkdirSync(join(dir, dirname(file!)), { recursive: true });
        copyFileSync(join(ROOT, file!), join(dir, file!));
      }
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const k of Object.keys(env)) if (k.startsWith('EVPAY_')) delete env[k];
      const script = [
        'set -euo pipefail',
        `evpay() { "${process.execPath}" "${BIN}" "$@"; }`,
        block.replace(/npx evpay/g, 'evpay'),
      ].join('\n');
      const r = spawnSync('bash', ['-c', script], { cwd: dir, encoding: 'utf8', env, timeout: 60_000 });
      expect([r.status, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toContain('"valid": true');
      expect(r.stdout).toMatch(/"genesisSm3": "[0-9a-f]{64}"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

test('docs/genesis.example.json is the document network/topology.json renders, and the chaincode accepts it', () => {
  const example = JSON.parse(read('docs/genesis.example.json')) as unknown;
  expect(initSchema.safeParse(example).success).toBe(true);
  expect(example).toEqual(genesisDocument(loadTopology(join(ROOT, 'network', 'topology.json'))));
  const r = spawnSync(process.execPath, [BIN, 'genesis-digest', '--file', 'docs/genesis.example.json'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  expect([r.status, r.stderr]).toEqual([0, '']);
});

test('no line of the READMEs is longer than 300 characters (a table too wide to read is a list)', () => {
  for (const file of ['README.md', 'chaincode/README.md']) {
    const long = read(file)
      .split('\n')
      .flatMap((line, i) => (line.length > 300 ? [`${file}:${i + 1} (${line.length})`] : []));
    expect(long).toEqual([]);
  }
});

test("the ledger double's header says where the Fabric glue is tested, and those tests exist", () => {
  const source = read('chaincode/test/support/ledger.ts');
  const header = source.slice(0, source.indexOf('*/'));
  const cited = [...header.matchAll(/`((?:chaincode\/)?test\/[\w/.-]+\.ts)`/g)].map((m) => m[1]!);
  expect(cited).toEqual(expect.arrayContaining(['test/network/network.test.ts']));
  for (const file of cited) expect([file, existsSync(join(ROOT, file))]).toEqual([file, true]);
});
