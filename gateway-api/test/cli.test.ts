/**
 * The evpay CLI: key files (SM4 + HMAC-SM3 under a PBKDF2-SM3 key) and the built binary end to end. Its
 * signed messages are fed to the chaincode's own rules, which must accept them: one format, two sides.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHmac, hkdfSync, pbkdf2Sync } from 'node:crypto';
import { sm2GenerateKeyPair, sm4DecryptCbc, walletIdOf } from '@evpay/chaincode/client';
import { KeyFileError, openKey, sealKey, upgradeKey, type KeyFile } from '../src/cli/keyfile';
import { registerPile } from '../../chaincode/src/domain/piles';
import { revokeAuthorization, startSession, stopSession } from '../../chaincode/src/domain/sessions';
import { getWallet, openWallet, refundWallet, topUp } from '../../chaincode/src/domain/wallets';
import { MemoryLedger } from '../../chaincode/test/support/ledger';
import { admin, bootstrap, client, genesis, NETWORK, OPS } from '../../chaincode/test/support/fixtures';
import {
  beanBalance,
  buyBeans,
  creditReward,
  issueBeans,
  transferBeans,
} from '../../chaincode/src/domain/beans';
import { initConsortium, setOperatorPolicy } from '../../chaincode/src/domain/consortium';
import { claimEnvelope, createEnvelope } from '../../chaincode/src/domain/envelopes';

const BIN = path.resolve(__dirname, '..', 'dist', 'cli', 'evpay.js');
const PASS = 'correct horse battery';

describe('key files', () => {
  const kp = sm2GenerateKeyPair();

  test('encrypted: opens with the passphrase only; tampering is detected', () => {
    const f = sealKey(kp, PASS);
    expect(f.privateKeyHex).toBeUndefined();
    expect(JSON.stringify(f)).not.toContain(kp.privateKeyHex);
    expect(openKey(JSON.parse(JSON.stringify(f)), PASS)).toEqual(kp);
    expect(() => openKey(f, 'wrong horse battery')).toThrow(KeyFileError);
    expect(() => openKey(f, undefined)).toThrow('passphrase is needed');
    const flip = (hex: string): string => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
    const enc = f.encryption!;
    const other = sm2GenerateKeyPair().publicKeyHex;
    for (const bad of [
      { ...f, encryption: { ...enc, ciphertextHex: flip(enc.ciphertextHex) } },
      { ...f, encryption: { ...enc, ivHex: flip(enc.ivHex) } },
      { ...f, encryption: { ...enc, iterations: enc.iterations - 1 } },
      { ...f, publicKeyHex: other, walletId: walletIdOf(other) },
    ] satisfies KeyFile[])
      expect(() => openKey(bad, PASS)).toThrow('wrong passphrase, or the key file was altered');
  });

  test('plaintext: must match its public key; short passphrases are refused', () => {
    const f = sealKey(kp, undefined);
    expect(openKey(f, undefined)).toEqual(kp);
    expect(() => openKey({ ...f, privateKeyHex: sm2GenerateKeyPair().privateKeyHex }, undefined)).toThrow(
      'does not match',
    );
    expect(() => sealKey(kp, 'short')).toThrow('at least 8');
    expect(() => openKey({ format: 'other' }, undefined)).toThrow('not an evpay-sm2-key/2 key file');
  });
});

const FIXTURES = path.join(__dirname, 'fixtures');
const fixture = (name: string): unknown => JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8'));

describe('key file format v2', () => {
  const kp = sm2GenerateKeyPair();

  test('one 32-byte PBKDF2-HMAC-SM3 block, expanded by HKDF-SM3 into the SM4 and MAC keys; v2 and versioned', () => {
    const f = sealKey(kp, PASS);
    expect(f.format).toBe('evpay-sm2-key/2');
    const e = f.encryption!;
    expect(e.kdf).toBe('pbkdf2-hmac-sm3/hkdf-sm3');
    expect(e.iterations).toBeGreaterThanOrEqual(1_000_000);
    // The documented construction, recomputed here: the key file must follow it exactly.
    const master = pbkdf2Sync(PASS, Buffer.from(e.saltHex, 'hex'), e.iterations, 32, 'sm3');
    const salt = Buffer.from(e.saltHex, 'hex');
    const encKey = Buffer.from(hkdfSync('sm3', master, salt, 'evpay-sm2-key/2 sm4-cbc', 16));
    const macKey = Buffer.from(hkdfSync('sm3', master, salt, 'evpay-sm2-key/2 hmac-sm3', 32));
    expect(Buffer.from(sm4DecryptCbc(encKey.toString('hex'), e.ivHex, e.ciphertextHex)).toString('hex')).toBe(
      kp.privateKeyHex,
    );
    const header = JSON.stringify([
      f.format,
      f.publicKeyHex,
      f.walletId,
      e.kdf,
      e.iterations,
      e.saltHex,
      e.cipher,
      e.ivHex,
      e.ciphertextHex,
      e.mac,
    ]);
    expect(createHmac('sm3', macKey).update(header).digest('hex')).toBe(e.macHex);
    expect(openKey(f, PASS)).toEqual(kp);
  });

  test('a wrong passphrase and a tampered file get clear errors', () => {
    const f = sealKey(kp, PASS);
    expect(() => openKey(f, 'wrong horse battery')).toThrow('wrong passphrase, or the key file was altered');
    const e = f.encryption!;
    const flip = (hex: string): string =>
      hex.endsWith('0') ? hex.slice(0, -1) + '1' : hex.slice(0, -1) + '0';
    for (const bad of [
      { ...f, encryption: { ...e, macHex: flip(e.macHex) } },
      { ...f, encryption: { ...e, saltHex: flip(e.saltHex) } },
      { ...f, encryption: { ...e, ciphertextHex: flip(e.ciphertextHex) } },
    ])
      expect(() => openKey(bad, PASS)).toThrow('wrong passphrase, or the key file was altered');
  });

  test('a v1 file is recognized and refused with the upgrade command; upgrading keeps the key', () => {
    for (const name of ['v1-encrypted.key', 'v1-plaintext.key'])
      expect(() => openKey(fixture(name), PASS)).toThrow(
        'key file format v1: re-encrypt with `evpay key upgrade --key <file>`',
      );
    const v1 = fixture('v1-encrypted.key') as { publicKeyHex: string };
    expect(() => upgradeKey(fixture('v1-encrypted.key'), 'wrong horse battery')).toThrow('wrong passphrase');
    const v2 = upgradeKey(fixture('v1-encrypted.key'), PASS);
    expect(v2.format).toBe('evpay-sm2-key/2');
    expect(openKey(v2, PASS).publicKeyHex).toBe(v1.publicKeyHex);
    const plain = upgradeKey(fixture('v1-plaintext.key'), undefined);
    expect(plain.format).toBe('evpay-sm2-key/2');
    expect(openKey(plain, undefined).publicKeyHex).toBe(
      (fixture('v1-plaintext.key') as KeyFile).publicKeyHex,
    );
  });
});

describe('evpay binary', () => {
  let dir = '';
  beforeAll(() => {
    expect(existsSync(BIN)).toBe(true); // built by `npm test` (npm run build)
    dir = mkdtempSync(path.join(tmpdir(), 'evpay-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function evpay(
    args: string[],
    env: Record<string, string> = {},
    timeout = 60_000,
  ): { code: number; out: Record<string, unknown>; err: string } {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, EVPAY_NETWORK: NETWORK, ...env },
      timeout,
    });
    let out: Record<string, unknown> = {};
    try {
      out = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      /* not JSON: usage errors print nothing on stdout */
    }
    return { code: r.status ?? -1, out, err: r.stderr };
  }

  test('genesis-digest prints the pin under which the chaincode initializes that document, and no other', async () => {
    writeFileSync(path.join(dir, 'genesis.json'), JSON.stringify(genesis(), null, 2));
    const r = evpay(['genesis-digest', '--file', 'genesis.json']);
    expect(r.code).toBe(0);
    const pin = String(r.out.genesisSm3);
    expect(pin).toMatch(/^[0-9a-f]{64}$/);
    const ledger = new MemoryLedger();
    await expect(
      ledger.submit(admin(OPS.A.mspId), (ctx) => initConsortium(ctx, genesis([OPS.A, OPS.B]), pin)),
    ).rejects.toMatchObject({ code: 'GENESIS_MISMATCH' });
    const c = await ledger.submit(admin(OPS.A.mspId), (ctx) => initConsortium(ctx, genesis(), pin));
    expect(c.genesisSm3).toBe(pin);
    // A document the chaincode would refuse has no digest: usage error, exit 2, the path named.
    writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ ...genesis(), auditorMspIds: 'x' }));
    const bad = evpay(['genesis-digest', '--file', 'bad.json']);
    expect([bad.code, bad.out]).toEqual([2, {}]);
    expect(bad.err).toContain('auditorMspIds');
  });

  test('keys and signatures made by the CLI start and settle a real session on the chaincode rules', async () => {
    const env = { EVPAY_PASSPHRASE: PASS };
    const pileKey = evpay(['keygen', '--out', 'pile.key'], env);
    const driverKey = evpay(['keygen', '--out', 'driver.key', '--plaintext']);
    expect([pileKey.code, driverKey.code]).toEqual([0, 0]);
    expect(statSync(path.join(dir, 'pile.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'pile.key'), 'utf8')).toContain('"cipher": "sm4-cbc"');
    expect(evpay(['keygen', '--out', 'pile.key'], env).code).toBe(2); // never overwrites a key

    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const A = OPS.A.mspId;
    const B = OPS.B.mspId;
    const t = ledger.now;
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId: 'CLI1', publicKey: pileKey.out.publicKey }),
    );
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: driverKey.out.publicKey }));
    await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: String(driverKey.out.walletId), amountFen: 5_000, reference: 'cli' }),
    );

    const pile = `${A}.CLI1`;
    const auth = evpay([
      'sign',
      'authorization',
      '--key',
      'driver.key',
      '--pile',
      pile,
      '--cap',
      '3000',
      '--max-beans',
      '0',
      '--expires',
      String(t + 600),
    ]);
    const start = evpay(
      [
        'sign',
        'reading',
        '--key',
        'pile.key',
        '--kind',
        'START',
        '--session',
        'cli-s1',
        '--pile',
        pile,
        '--meter',
        '0',
        '--at',
        String(t),
      ],
      env,
    );
    const stop = evpay(
      [
        'sign',
        'reading',
        '--key',
        'pile.key',
        '--kind',
        'STOP',
        '--session',
        'cli-s1',
        '--pile',
        pile,
        '--meter',
        '10000',
        '--at',
        String(t + 3600),
      ],
      env,
    );
    expect([auth.code, start.code, stop.code]).toEqual([0, 0, 0]);
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, { authorization: auth.out, startReading: start.out }),
    );
    const s = await ledger.submit(client(A), (ctx) => stopSession(ctx, { stopReading: stop.out }), t + 3600);
    expect(s.settlement).toMatchObject({ energyWh: 10_000, chargedFen: 1_500 });

    // The bean messages: purchase, transfer to a second driver, envelope claim, all accepted by the rules.
    await ledger.submit(client(A), (ctx) => creditReward(ctx, A, 'r', 10_000));
    await ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 50, reference: 'i' }));
    await ledger.submit(admin(A), (ctx) =>
      setOperatorPolicy(ctx, { rebateWhPerBean: 0, beanSalePriceFen: 20 }),
    );
    const friendKey = evpay(['keygen', '--out', 'friend.key', '--plaintext']);
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: friendKey.out.publicKey }));
    const buy = evpay([
      'sign',
      'purchase',
      '--key',
      'driver.key',
      '--issuer',
      A,
      '--beans',
      '5',
      '--max-cost',
      '100',
      '--expires',
      String(t + 600),
    ]);
    expect(await ledger.submit(client(A), (ctx) => buyBeans(ctx, buy.out))).toEqual({
      beans: 5,
      costFen: 100,
    });
    const give = evpay([
      'sign',
      'transfer',
      '--key',
      'driver.key',
      '--to',
      String(friendKey.out.walletId),
      '--issuer',
      A,
      '--beans',
      '2',
      '--expires',
      String(t + 600),
    ]);
    expect(await ledger.submit(client(A), (ctx) => transferBeans(ctx, give.out))).toEqual({ from: 3, to: 2 });
    await ledger.submit(admin(A), (ctx) =>
      createEnvelope(ctx, {
        envelopeId: 'cli-env',
        totalBeans: 4,
        claimants: 2,
        split: 'equal',
        expiresAt: t + 600,
      }),
    );
    const claim = evpay([
      'sign',
      'claim',
      '--key',
      'friend.key',
      '--envelope',
      'cli-env',
      '--expires',
      String(t + 600),
    ]);
    expect(await ledger.submit(client(A), (ctx) => claimEnvelope(ctx, claim.out))).toEqual({ beans: 2 });
    expect(
      await ledger.evaluate(client(A), (ctx) => beanBalance(ctx, String(friendKey.out.walletId), A)),
    ).toBe(4);

    // The driver is paid out part of the rest by B, which the signed refund names.
    const refund = evpay([
      'sign',
      'refund',
      '--key',
      'driver.key',
      '--operator',
      B,
      '--amount',
      '1000',
      '--expires',
      String(t + 600),
    ]);
    const before = (await ledger.evaluate(client(A), (ctx) => getWallet(ctx, String(refund.out.walletId))))
      .balanceFen;
    expect((await ledger.submit(client(B), (ctx) => refundWallet(ctx, refund.out))).balanceFen).toBe(
      before - 1000,
    );

    // An authorization the driver no longer wants is revoked with a signed revocation of its nonce.
    const unused = evpay([
      'sign',
      'authorization',
      '--key',
      'driver.key',
      '--pile',
      pile,
      '--cap',
      '1000',
      '--max-beans',
      '3',
      '--nonce',
      'cli-unused',
      '--expires',
      String(t + 7200),
    ]);
    const revocation = evpay(['sign', 'revocation', '--key', 'driver.key', '--nonce', 'cli-unused']);
    expect([unused.code, revocation.code, unused.out.maxBeans]).toEqual([0, 0, 3]);
    await ledger.submit(client(B), (ctx) => revokeAuthorization(ctx, revocation.out));
    const later = evpay(
      [
        'sign',
        'reading',
        '--key',
        'pile.key',
        '--kind',
        'START',
        '--session',
        'cli-s2',
        '--pile',
        pile,
        '--meter',
        '10000',
        '--at',
        String(t + 3700),
      ],
      env,
    );
    await expect(
      ledger.submit(
        client(A),
        (ctx) => startSession(ctx, { authorization: unused.out, startReading: later.out }),
        t + 3700,
      ),
    ).rejects.toMatchObject({ code: 'NONCE_REUSED' });

    const verifyReading = (file: string, message: unknown) => {
      writeFileSync(path.join(dir, file), JSON.stringify(message));
      const r = evpay([
        'verify',
        '--kind',
        'reading',
        '--public-key',
        String(pileKey.out.publicKey),
        '--message',
        file,
      ]);
      return [r.code, r.out.valid];
    };
    expect(verifyReading('stop.json', stop.out)).toEqual([0, true]);
    expect(verifyReading('forged.json', { ...stop.out, meterWh: 1 })).toEqual([1, false]);
  }, 60_000);

  test('mistakes get exit code 2 and a message naming the problem', () => {
    const cases: Array<[string[], Record<string, string>, string]> = [
      [['keygen', '--out', 'k1.key'], { EVPAY_PASSPHRASE: '' }, 'at least 8'],
      [
        [
          'sign',
          'authorization',
          '--key',
          'driver.key',
          '--pile',
          'AlphaMSP.P1',
          '--cap',
          '12x',
          '--expires',
          '+60',
        ],
        {},
        'expected a whole number',
      ],
      [
        [
          'sign',
          'authorization',
          '--key',
          'driver.key',
          '--pile',
          'AlphaMSP.P1',
          '--cap',
          '0',
          '--expires',
          '+60',
        ],
        {},
        'above 0',
      ],
      [
        [
          'sign',
          'reading',
          '--key',
          'driver.key',
          '--kind',
          'BOGUS',
          '--session',
          's',
          '--pile',
          'p',
          '--meter',
          '1',
        ],
        {},
        'START, PROGRESS, STOP',
      ],
      [
        ['sign', 'claim', '--key', 'driver.key', '--envelope', 'e', '--expires', 'tomorrow'],
        {},
        '"now", "+SECONDS" or Unix seconds',
      ],
      [
        ['sign', 'claim', '--key', 'driver.key', '--envelope', 'e', '--expires', '+60', '--network', 'a/b'],
        {},
        'network',
      ],
      [['pubkey', '--key', 'pile.key'], { EVPAY_PASSPHRASE: 'not the passphrase' }, 'wrong passphrase'],
      [['pubkey', '--key', 'missing.key'], {}, 'cannot read key file missing.key'],
    ];
    const unset = { ...process.env };
    delete unset.EVPAY_PASSPHRASE;
    for (const [args, env, message] of cases) {
      const r = evpay(args, env);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
      expect(r.err).toContain(message);
    }
    // Without a network id (no --network, no EVPAY_NETWORK) nothing is signed.
    const noNetwork: NodeJS.ProcessEnv = { ...process.env };
    delete noNetwork.EVPAY_NETWORK;
    const bare = spawnSync(
      process.execPath,
      [BIN, 'sign', 'claim', '--key', 'driver.key', '--envelope', 'e', '--expires', '+60'],
      { cwd: dir, encoding: 'utf8', env: noNetwork },
    );
    expect([bare.status, bare.stdout]).toEqual([2, '']);
    expect(bare.stderr).toContain("--network <id>' not specified");
    const r = spawnSync(process.execPath, [BIN, 'keygen', '--out', 'k4.key'], {
      cwd: dir,
      encoding: 'utf8',
      env: unset,
    });
    expect([r.status, r.stderr]).toEqual([
      2,
      expect.stringContaining('set EVPAY_PASSPHRASE or --passphrase-file'),
    ]);
    expect(existsSync(path.join(dir, 'k4.key'))).toBe(false);
  });

  test('a key file or an id the chaincode would refuse is refused up front: exit 2, the field named', () => {
    const env = { EVPAY_PASSPHRASE: PASS };
    expect(evpay(['keygen', '--out', 'ids.key', '--plaintext']).code).toBe(0);
    expect(evpay(['keygen', '--out', 'enc.key'], env).code).toBe(0);
    const enc = JSON.parse(readFileSync(path.join(dir, 'enc.key'), 'utf8')) as KeyFile;
    const noSalt: Partial<typeof enc.encryption> = { ...enc.encryption };
    delete noSalt.saltHex;
    const broken: Array<[string, unknown, string]> = [
      ['no-salt.key', { ...enc, encryption: noSalt }, 'saltHex'],
      // 2e9 PBKDF2 rounds would run for hours: the work factor is bounded before any is done.
      ['slow.key', { ...enc, encryption: { ...enc.encryption, iterations: 2e9 } }, 'iterations'],
      ['array.key', [], 'key file'],
      ['bad-public.key', { ...enc, publicKeyHex: 'zz' }, 'publicKeyHex'],
    ];
    for (const [file, content, message] of broken) {
      writeFileSync(path.join(dir, file), JSON.stringify(content));
      const started = Date.now();
      const r = evpay(['pubkey', '--key', file], env, 20_000);
      expect([file, r.code]).toEqual([file, 2]);
      expect(r.err).toContain(message);
      expect(r.err).not.toContain('TypeError');
      expect(Date.now() - started).toBeLessThan(15_000);
    }
    const expires = ['--expires', '+60'];
    const refused: Array<[string[], string]> = [
      [['sign', 'authorization', '--pile', 'no/such pile', '--cap', '1', ...expires], '--pile'],
      [['sign', 'authorization', '--pile', 'AlphaMSP', '--cap', '1', ...expires], '--pile'],
      [['sign', 'reading', '--kind', 'START', '--session', 's', '--pile', 'a b.c', '--meter', '1'], '--pile'],
      [['sign', 'transfer', '--to', 'friend', '--issuer', 'AlphaMSP', '--beans', '1', ...expires], '--to'],
      [
        ['sign', 'transfer', '--to', 'A'.repeat(64), '--issuer', 'AlphaMSP', '--beans', '1', ...expires],
        '--to',
      ],
      [
        ['sign', 'purchase', '--issuer', 'Alpha.MSP', '--beans', '1', '--max-cost', '1', ...expires],
        '--issuer',
      ],
      [['sign', 'refund', '--operator', 'Alpha/MSP', '--amount', '1', ...expires], '--operator'],
      [['sign', 'claim', '--envelope', 'e/1', ...expires], '--envelope'],
      [
        [
          'sign',
          'authorization',
          '--pile',
          'AlphaMSP.P1',
          '--cap',
          '1',
          '--nonce',
          'x'.repeat(65),
          ...expires,
        ],
        '--nonce',
      ],
    ];
    for (const [args, message] of refused) {
      const r = evpay([...args, '--key', 'ids.key']);
      expect([args.join(' '), r.code, r.out]).toEqual([args.join(' '), 2, {}]);
      expect(r.err).toContain(message);
    }
  });

  test('evpay key upgrade re-encrypts a v1 file in place (same key, format v2, mode 0600)', () => {
    const env = { EVPAY_PASSPHRASE: PASS };
    copyFileSync(path.join(FIXTURES, 'v1-encrypted.key'), path.join(dir, 'old.key'));
    const refused = evpay(['pubkey', '--key', 'old.key'], env);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('key file format v1: re-encrypt with `evpay key upgrade --key <file>`');
    const wrong = evpay(['key', 'upgrade', '--key', 'old.key'], { EVPAY_PASSPHRASE: 'not the passphrase' });
    expect([wrong.code, wrong.err]).toEqual([2, expect.stringContaining('wrong passphrase')]);
    const up = evpay(['key', 'upgrade', '--key', 'old.key'], env);
    expect(up.code).toBe(0);
    expect(up.out).toMatchObject({ keyFile: 'old.key', format: 'evpay-sm2-key/2' });
    expect(statSync(path.join(dir, 'old.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'old.key'), 'utf8')).toContain('"format": "evpay-sm2-key/2"');
    const now = evpay(['pubkey', '--key', 'old.key'], env);
    expect([now.code, now.out.publicKey]).toEqual([0, (fixture('v1-encrypted.key') as KeyFile).publicKeyHex]);
    const again = evpay(['key', 'upgrade', '--key', 'old.key'], env);
    expect([again.code, again.err]).toEqual([2, expect.stringContaining('already format v2')]);
  });
});
