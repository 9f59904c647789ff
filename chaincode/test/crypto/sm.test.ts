import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { sm2 as smCryptoV2Sm2 } from 'sm-crypto-v2';

import {
  SM2_DEFAULT_USER_ID,
  SmCryptoError,
  isValidSm2PublicKey,
  sm2GenerateKeyPair,
  sm2PublicKeyFromPrivate,
  sm2Sign,
  sm2Signer,
  sm2SignatureIsCanonical,
  sm2SignatureRawToDer,
  sm2Verify,
  sm2KeyTableCount,
  SM2_KEY_TABLE_CAPACITY,
  sm3Hex,
  sm4DecryptCbc,
  sm4EncryptCbc,
} from '../../src/crypto';

// SM2 recommended-curve constants (GB/T 32918.5-2017), used to build malformed inputs.
const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;
const A = P - 3n;
const B = 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n;
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;

const GX = 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n;
const GY = 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n;

const hex32 = (v: bigint): string => v.toString(16).padStart(64, '0');
const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Z = SM3(ENTL || ID || a || b || Gx || Gy || xA || yA), written out independently of the wrapper. */
function zHex(publicKeyHex: string, userId: string): string {
  const id = Buffer.from(userId, 'utf8');
  const entl = Buffer.alloc(2);
  entl.writeUInt16BE(id.length * 8);
  const params = Buffer.from([A, B, GX, GY].map(hex32).join('') + publicKeyHex.slice(2), 'hex');
  return sm3Hex(Buffer.concat([entl, id, params]));
}
/** e = SM3(Z || M) as an integer. */
const eOf = (publicKeyHex: string, userId: string, message: string): bigint =>
  BigInt('0x' + sm3Hex(Buffer.concat([Buffer.from(zHex(publicKeyHex, userId), 'hex'), utf8(message)])));

/** (r, s) with r = e mod n and s = -r*d/(1+d) mod n, so that [s]G + [r+s]P is the point at infinity. */
function infinitySignature(
  privateKeyHex: string,
  publicKeyHex: string,
  message: string,
): { r: bigint; s: bigint } {
  const d = BigInt('0x' + privateKeyHex);
  const r = eOf(publicKeyHex, SM2_DEFAULT_USER_ID, message) % N;
  const s = (((N - ((r * d) % N)) % N) * modPow(1n + d, N - 2n, N)) % N;
  if (r === 0n || s === 0n || (r + s) % N === 0n) throw new Error('degenerate test input');
  return { r, s };
}

/** Splits a (canonical) DER signature into its integers, for building malformed variants. */
function derToRs(der: string): { r: bigint; s: bigint } {
  const b = Buffer.from(der, 'hex');
  const rLen = b[3] ?? 0;
  const r = BigInt('0x' + b.subarray(4, 4 + rLen).toString('hex'));
  const s = BigInt('0x' + b.subarray(6 + rLen).toString('hex'));
  return { r, s };
}

/** DER TLV with a short-form length; content given as raw hex, so it can be deliberately non-canonical. */
const tlv = (tag: string, contentHex: string): string =>
  tag + (contentHex.length / 2).toString(16).padStart(2, '0') + contentHex;
/** Minimal two's-complement-positive INTEGER content for v. */
function intContent(v: bigint): string {
  let h = v.toString(16);
  if (h.length % 2) h = '0' + h;
  return parseInt(h.slice(0, 2), 16) >= 0x80 ? '00' + h : h;
}
const sigDer = (r: bigint, s: bigint): string =>
  tlv('30', tlv('02', intContent(r)) + tlv('02', intContent(s)));

describe('published test vectors', () => {
  it('SM3: GB/T 32905-2016 Appendix A examples 1 and 2', () => {
    expect(sm3Hex('abc')).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
    expect(sm3Hex('abcd'.repeat(16))).toBe(
      'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732',
    );
    // Same input as bytes, including a Buffer view with a non-zero byteOffset.
    expect(sm3Hex(utf8('abc'))).toBe(sm3Hex('abc'));
    expect(sm3Hex(Buffer.from('xxabcxx').subarray(2, 5))).toBe(sm3Hex('abc'));
  });

  // GB/T 32907-2016 Appendix A, example 1. With an all-zero IV the first CBC block is the bare block cipher
  // output; the second block is the encrypted PKCS#7 padding.
  const SM4_KEY = '0123456789abcdeffedcba9876543210';
  const ZERO_IV = '00'.repeat(16);

  it('SM4: GB/T 32907-2016 example 1 (single block)', () => {
    const ct = sm4EncryptCbc(SM4_KEY, ZERO_IV, Buffer.from(SM4_KEY, 'hex'));
    expect(ct).toHaveLength(64);
    expect(ct.slice(0, 32)).toBe('681edf34d206965e86b3e94f536e4246');
    expect(toHex(sm4DecryptCbc(SM4_KEY, ZERO_IV, ct))).toBe(SM4_KEY);
  });

  it('SM4: GB/T 32907-2016 example 2 (1,000,000 iterated encryptions)', () => {
    // CBC over 10^6 zero blocks with IV = P computes C_i = E(C_{i-1}), so the last block is E^1000000(P).
    // ~0.5 s in pure JS; the trailing padding block is ignored.
    const ct = sm4EncryptCbc(SM4_KEY, SM4_KEY, new Uint8Array(16 * 1_000_000));
    expect(ct.slice(-64, -32)).toBe('595298c7c6fd271f0402f804c33d3f66');
  });

  // GM/T 0003.5-2012 Annex A = GB/T 32918.5-2017 Annex A: signature example on the recommended curve with the
  // default ID 1234567812345678. Cross-referenced from OpenSSL test/sm2_internal_test.c (sm2_sig_test), which
  // reproduces this (r, s) with the nonce k = 59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21.
  const VECTOR = {
    privateKey: '3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8',
    publicKey:
      '04' +
      '09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020' +
      'ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13',
    message: 'message digest',
    r: 'f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3',
    s: 'b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa',
  };

  it('SM2: GM/T 0003.5-2012 Annex A signature verifies', () => {
    expect(sm2PublicKeyFromPrivate(VECTOR.privateKey)).toBe(VECTOR.publicKey);
    // Intermediate values printed in the same example (checks the test's own Z construction and SM3).
    expect(zHex(VECTOR.publicKey, SM2_DEFAULT_USER_ID)).toBe(
      'b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3',
    );
    expect(hex32(eOf(VECTOR.publicKey, SM2_DEFAULT_USER_ID, VECTOR.message))).toBe(
      'f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640',
    );
    expect(isValidSm2PublicKey(VECTOR.publicKey)).toBe(true);
    const der = sm2SignatureRawToDer(VECTOR.r + VECTOR.s);
    // Both r and s have the top bit set, so each INTEGER needs a 0x00 sign byte: 0x46 = 2 * (2 + 33).
    expect(der).toBe('3046022100' + VECTOR.r + '022100' + VECTOR.s);
    expect(sm2Verify(VECTOR.publicKey, VECTOR.message, der)).toBe(true);
    expect(sm2Verify(VECTOR.publicKey, utf8(VECTOR.message), der, SM2_DEFAULT_USER_ID)).toBe(true);
    expect(sm2Verify(VECTOR.publicKey, 'message digesT', der)).toBe(false);
    // Z binds the signer ID: the same signature is not valid for any other ID.
    expect(sm2Verify(VECTOR.publicKey, VECTOR.message, der, 'ALICE123@YAHOO.COM')).toBe(false);
    expect(sm2Verify(VECTOR.publicKey, VECTOR.message, der, '')).toBe(false);
  });

  it('SM2: user ID handling in Z round-trips and separates IDs', () => {
    const { privateKeyHex, publicKeyHex } = sm2GenerateKeyPair();
    const msg = 'session 42 settled: 1234 fen';
    const withAlice = sm2Sign(privateKeyHex, msg, 'ALICE123@YAHOO.COM');
    expect(sm2Verify(publicKeyHex, msg, withAlice, 'ALICE123@YAHOO.COM')).toBe(true);
    expect(sm2Verify(publicKeyHex, msg, withAlice)).toBe(false);
    expect(sm2Verify(publicKeyHex, msg, withAlice, 'ALICE123@YAHOO.CON')).toBe(false);

    const withDefault = sm2Sign(privateKeyHex, msg);
    expect(sm2Verify(publicKeyHex, msg, withDefault)).toBe(true);
    expect(sm2Verify(publicKeyHex, msg, withDefault, 'ALICE123@YAHOO.COM')).toBe(false);

    const emptyId = sm2Sign(privateKeyHex, msg, '');
    expect(sm2Verify(publicKeyHex, msg, emptyId, '')).toBe(true);
    expect(sm2Verify(publicKeyHex, msg, emptyId)).toBe(false);

    const unicodeId = sm2Sign(privateKeyHex, msg, '运营商-01');
    expect(sm2Verify(publicKeyHex, msg, unicodeId, '运营商-01')).toBe(true);
  });
});

describe('key generation and formats', () => {
  it('produces lowercase, canonical, consistent keys and signatures', () => {
    for (let i = 0; i < 5; i++) {
      const kp = sm2GenerateKeyPair();
      expect(kp.privateKeyHex).toMatch(/^[0-9a-f]{64}$/);
      expect(kp.publicKeyHex).toMatch(/^04[0-9a-f]{128}$/);
      expect(isValidSm2PublicKey(kp.publicKeyHex)).toBe(true);
      expect(sm2PublicKeyFromPrivate(kp.privateKeyHex)).toBe(kp.publicKeyHex);
      expect(sm2PublicKeyFromPrivate(kp.privateKeyHex.toUpperCase())).toBe(kp.publicKeyHex);
      const sig = sm2Sign(kp.privateKeyHex, randomBytes(i * 37));
      expect(sig).toMatch(/^30[0-9a-f]+$/);
      expect(sm2SignatureIsCanonical(sig)).toBe(true);
    }
  });

  it('accepts the extreme private keys 1 and n-2', () => {
    expect(sm2PublicKeyFromPrivate(hex32(1n))).toBe(
      '0432c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7' +
        'bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0',
    );
    const top = hex32(N - 2n);
    const sig = sm2Sign(top, 'x');
    expect(sm2Verify(sm2PublicKeyFromPrivate(top), 'x', sig)).toBe(true);
  });

  it('sm2Signer signs as sm2Sign does, for its key and user ID only, and checks the key at once', () => {
    const kp = sm2GenerateKeyPair();
    const sign = sm2Signer(kp.privateKeyHex);
    const asAlice = sm2Signer(kp.privateKeyHex, 'ALICE123@YAHOO.COM');
    for (const m of ['', 'reading 1', randomBytes(300)]) {
      const sig = sign(m);
      expect(sm2SignatureIsCanonical(sig)).toBe(true);
      expect(sm2Verify(kp.publicKeyHex, m, sig)).toBe(true);
      expect(sm2Verify(kp.publicKeyHex, m, sig, 'ALICE123@YAHOO.COM')).toBe(false);
      expect(sm2Verify(kp.publicKeyHex, m, asAlice(m), 'ALICE123@YAHOO.COM')).toBe(true);
      expect(sm2Verify(kp.publicKeyHex, m, asAlice(m))).toBe(false);
    }
    expect(sm2Verify(sm2GenerateKeyPair().publicKeyHex, 'reading 1', sign('reading 1'))).toBe(false);
    expect(() => sm2Signer('00'.repeat(32))).toThrow(SmCryptoError);
    expect(() => sm2Signer(hex32(N - 1n))).toThrow(SmCryptoError);
  });
});

describe('cross-check against the OpenSSL 3 CLI', () => {
  const OPENSSL = '/usr/bin/openssl';
  // SubjectPublicKeyInfo prefix: SEQUENCE { SEQUENCE { OID id-ecPublicKey 1.2.840.10045.2.1,
  // OID SM2 1.2.156.10197.1.301 }, BIT STRING (0 unused bits) }, followed by the 65-byte '04' point.
  // Byte-identical to what `openssl pkey -pubout -outform DER` writes for an SM2 key.
  const SM2_SPKI_PREFIX = '3059301306072a8648ce3d020106082a811ccf5501822d034200';
  let dir = '';

  beforeAll(() => {
    if (!existsSync(OPENSSL)) throw new Error(`${OPENSSL} is required for the cross-check tests`);
    dir = mkdtempSync(join(tmpdir(), 'sm-crypto-test-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function openssl(
    args: string[],
    input?: Uint8Array,
  ): { status: number | null; stdout: Buffer; stderr: string } {
    const res = spawnSync(OPENSSL, args, { input });
    return { status: res.status, stdout: res.stdout, stderr: res.stderr.toString() };
  }
  function opensslOk(args: string[], input?: Uint8Array): Buffer {
    const res = openssl(args, input);
    if (res.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${res.stderr}`);
    return res.stdout;
  }
  const file = (name: string, content?: Uint8Array): string => {
    const path = join(dir, name);
    if (content) writeFileSync(path, content);
    return path;
  };

  it('SM3 equals `openssl dgst -sm3` on random-length inputs', () => {
    for (const len of [0, 1, 55, 56, 63, 64, 65, 119, 1000, 4096 + (randomBytes(1)[0] ?? 0)]) {
      const data = randomBytes(len);
      const expected = opensslOk(['dgst', '-sm3', '-binary'], data).toString('hex');
      expect(sm3Hex(data)).toBe(expected);
    }
  });

  /**
   * `openssl pkeyutl -verify -rawin -digest sm3` hashes the raw message with Z itself. `distid` must be passed
   * explicitly: OpenSSL 3.0's EVP default ID is empty, not 1234567812345678 (verified by hand: without it,
   * signatures made with the default ID fail).
   */
  function opensslVerify(publicKeyHex: string, message: Uint8Array, sigHex: string, distid: string): boolean {
    const res = openssl([
      'pkeyutl',
      '-verify',
      '-rawin',
      '-digest',
      'sm3',
      '-pubin',
      '-keyform',
      'DER',
      '-inkey',
      file('pub.der', Buffer.from(SM2_SPKI_PREFIX + publicKeyHex, 'hex')),
      '-pkeyopt',
      `distid:${distid}`,
      '-in',
      file('msg.bin', message),
      '-sigfile',
      file('sig.der', Buffer.from(sigHex, 'hex')),
    ]);
    const out = res.stdout.toString();
    if (res.status === 0 && out.includes('Signature Verified Successfully')) return true;
    if (res.status === 1 && out.includes('Signature Verification Failure')) return false;
    throw new Error(`unexpected openssl outcome (${res.status}): ${out} ${res.stderr}`);
  }

  it('our key + our signature verify with `openssl pkeyutl -verify`', () => {
    const { privateKeyHex, publicKeyHex } = sm2GenerateKeyPair();
    const message = randomBytes(300);
    const sig = sm2Sign(privateKeyHex, message);
    expect(opensslVerify(publicKeyHex, message, sig, SM2_DEFAULT_USER_ID)).toBe(true);

    // Negative controls, so that a "true" above means something.
    const flipped = Buffer.from(message);
    flipped[7] = (flipped[7] ?? 0) ^ 0x01;
    expect(opensslVerify(publicKeyHex, flipped, sig, SM2_DEFAULT_USER_ID)).toBe(false);
    expect(opensslVerify(publicKeyHex, message, sig, 'ALICE123@YAHOO.COM')).toBe(false);

    // Non-default ID: Z is computed the same way on both sides.
    const text = '充电桩 #7: 12.5 kWh';
    const sigAlice = sm2Sign(privateKeyHex, text, 'ALICE123@YAHOO.COM');
    expect(opensslVerify(publicKeyHex, utf8(text), sigAlice, 'ALICE123@YAHOO.COM')).toBe(true);
    expect(opensslVerify(publicKeyHex, utf8(text), sigAlice, SM2_DEFAULT_USER_ID)).toBe(false);
  });

  it('OpenSSL, like sm2Verify, rejects a signature whose verification point is at infinity', () => {
    const { privateKeyHex, publicKeyHex } = sm2GenerateKeyPair();
    const { r, s } = infinitySignature(privateKeyHex, publicKeyHex, 'evidence');
    expect(opensslVerify(publicKeyHex, utf8('evidence'), sigDer(r, s), SM2_DEFAULT_USER_ID)).toBe(false);
    expect(sm2Verify(publicKeyHex, 'evidence', sigDer(r, s))).toBe(false);
  });

  it('OpenSSL-generated key and signatures verify with sm2Verify', () => {
    const keyPem = file('openssl-key.pem');
    opensslOk(['genpkey', '-algorithm', 'SM2', '-out', keyPem]);
    const spki = opensslOk(['pkey', '-in', keyPem, '-pubout', '-outform', 'DER']).toString('hex');
    expect(spki.startsWith(SM2_SPKI_PREFIX)).toBe(true);
    const publicKeyHex = spki.slice(SM2_SPKI_PREFIX.length);
    expect(isValidSm2PublicKey(publicKeyHex)).toBe(true);

    // Independent check of our point multiplication: derive the public key from OpenSSL's private scalar.
    const text = opensslOk(['pkey', '-in', keyPem, '-text', '-noout']).toString();
    const privMatch = /priv:\s*([0-9a-f:\s]+?)\s*pub:/.exec(text);
    expect(privMatch).not.toBeNull();
    const privateKeyHex = hex32(BigInt('0x' + (privMatch?.[1] ?? '').replace(/[:\s]/g, '')));
    expect(sm2PublicKeyFromPrivate(privateKeyHex)).toBe(publicKeyHex);

    // Several signatures, so that both 32- and 33-byte (0x00-prefixed) INTEGER encodings are exercised.
    for (let i = 0; i < 6; i++) {
      const message = randomBytes(1 + i * 50);
      const sig = opensslOk([
        'pkeyutl',
        '-sign',
        '-rawin',
        '-digest',
        'sm3',
        '-inkey',
        keyPem,
        '-pkeyopt',
        `distid:${SM2_DEFAULT_USER_ID}`,
        '-in',
        file('osl-msg.bin', message),
      ]).toString('hex');
      expect(sm2SignatureIsCanonical(sig)).toBe(true);
      expect(sm2Verify(publicKeyHex, message, sig)).toBe(true);
      const flipped = Buffer.from(message);
      flipped[0] = (flipped[0] ?? 0) ^ 0x80;
      expect(sm2Verify(publicKeyHex, flipped, sig)).toBe(false);
      expect(sm2Verify(publicKeyHex, message, sig, 'ALICE123@YAHOO.COM')).toBe(false);
    }
  });

  it('SM4-CBC equals `openssl enc -sm4-cbc` and decrypts back', () => {
    for (const len of [0, 1, 15, 16, 17, 31, 32, 33, 1000]) {
      const key = randomBytes(16).toString('hex');
      const iv = randomBytes(16).toString('hex');
      const plaintext = randomBytes(len);
      const expected = opensslOk(['enc', '-sm4-cbc', '-K', key, '-iv', iv], plaintext).toString('hex');
      const ct = sm4EncryptCbc(key, iv, plaintext);
      expect(ct).toBe(expected);
      expect(toHex(sm4DecryptCbc(key, iv, ct))).toBe(plaintext.toString('hex'));
      // And the reverse direction: OpenSSL decrypts ours.
      const back = opensslOk(['enc', '-d', '-sm4-cbc', '-K', key, '-iv', iv], Buffer.from(ct, 'hex'));
      expect(back.toString('hex')).toBe(plaintext.toString('hex'));
    }
  });
});

describe('negative cases', () => {
  const kp = sm2GenerateKeyPair();
  const msg = 'evidence';
  const good = sm2Sign(kp.privateKeyHex, msg);
  const { r, s } = derToRs(good);

  it('sanity: the base signature verifies and re-encodes identically', () => {
    expect(sm2Verify(kp.publicKeyHex, msg, good)).toBe(true);
    expect(sigDer(r, s)).toBe(good);
  });

  /** A fresh valid signature over msg whose r has its top bit set (highR) or clear (!highR). */
  function signWithR(highR: boolean): string {
    for (;;) {
      const sig = sm2Sign(kp.privateKeyHex, msg);
      if (derToRs(sig).r >= 1n << 255n === highR) return sig;
    }
  }

  it('rejects malformed or non-canonical DER', () => {
    const rC = intContent(r);
    const sC = intContent(s);
    const body = tlv('02', rC) + tlv('02', sC);
    const bad: Record<string, string> = {
      empty: '',
      oddLength: good.slice(0, -1),
      nonHex: good.slice(0, -2) + 'zz',
      uppercase: good.toUpperCase(),
      trailingByte: good + '00',
      truncated: good.slice(0, -2),
      wrongOuterTag: '31' + good.slice(2),
      wrongIntegerTag: tlv('30', tlv('03', rC) + tlv('02', sC)),
      longFormLength: '3081' + (body.length / 2).toString(16).padStart(2, '0') + body,
      indefiniteLength: '3080' + body + '0000',
      lengthTooLong: '30' + (body.length / 2 + 1).toString(16).padStart(2, '0') + body,
      lengthTooShort: '30' + (body.length / 2 - 1).toString(16).padStart(2, '0') + body,
      integerLongFormLength: tlv(
        '30',
        '0281' + (rC.length / 2).toString(16).padStart(2, '0') + rC + tlv('02', sC),
      ),
      emptyInteger: tlv('30', tlv('02', '') + tlv('02', sC)),
      onlyOneInteger: tlv('30', tlv('02', rC)),
      threeIntegers: tlv('30', body + tlv('02', '01')),
      rawRs: hex32(r) + hex32(s),
    };
    for (const [name, sig] of Object.entries(bad)) {
      expect([name, sm2SignatureIsCanonical(sig)]).toEqual([name, false]);
      expect([name, sm2Verify(kp.publicKeyHex, msg, sig)]).toEqual([name, false]);
    }
  });

  it('rejects non-minimal integers (redundant leading 0x00)', () => {
    // r with its top bit clear: a 0x00 in front is redundant, and the value (hence the maths) is unchanged.
    const lowR = signWithR(false);
    const { r: r1, s: s1 } = derToRs(lowR);
    expect(sm2Verify(kp.publicKeyHex, msg, lowR)).toBe(true);
    const padded = tlv('30', tlv('02', '00' + intContent(r1)) + tlv('02', intContent(s1)));
    expect(sm2SignatureIsCanonical(padded)).toBe(false);
    expect(sm2Verify(kp.publicKeyHex, msg, padded)).toBe(false);
    // r with its top bit set already carries one 0x00; a second one is redundant too.
    const highR = signWithR(true);
    const { r: r2, s: s2 } = derToRs(highR);
    const doublePadded = tlv('30', tlv('02', '00' + intContent(r2)) + tlv('02', intContent(s2)));
    expect(sm2Verify(kp.publicKeyHex, msg, doublePadded)).toBe(false);
    // Small values: 02 02 00 7f is a non-minimal 0x7f, 02 01 7f the minimal one.
    expect(sm2SignatureIsCanonical(tlv('30', tlv('02', '007f') + tlv('02', '7f')))).toBe(false);
    expect(sm2SignatureIsCanonical(tlv('30', tlv('02', '7f') + tlv('02', '7f')))).toBe(true);
    expect(sm2SignatureIsCanonical(tlv('30', tlv('02', '0080') + tlv('02', '7f')))).toBe(true);
  });

  it('rejects negative integers (top bit set without a 0x00 sign byte)', () => {
    const sig = signWithR(true);
    const { r: r2, s: s2 } = derToRs(sig);
    const negative = tlv('30', tlv('02', hex32(r2)) + tlv('02', intContent(s2)));
    expect(sm2Verify(kp.publicKeyHex, msg, sig)).toBe(true);
    expect(sm2SignatureIsCanonical(negative)).toBe(false);
    expect(sm2Verify(kp.publicKeyHex, msg, negative)).toBe(false);
    expect(sm2SignatureIsCanonical(tlv('30', tlv('02', '80') + tlv('02', '7f')))).toBe(false);
  });

  it('rejects r or s outside [1, n-1] and other malleability attempts', () => {
    const cases: Record<string, string> = {
      rZero: sigDer(0n, s),
      sZero: sigDer(r, 0n),
      rEqualsN: sigDer(N, s),
      sEqualsN: sigDer(r, N),
      rPlusN: sigDer(r + N, s),
      sPlusN: sigDer(r, s + N),
      // SM2 has no ECDSA-style "high-s" twin: (r, n - s) is simply invalid.
      negatedS: sigDer(r, N - s),
      // t = r + s = 0 mod n must be rejected (GB/T 32918.2 7.1 B5).
      tZero: sigDer(r, N - r),
    };
    for (const [name, sig] of Object.entries(cases)) {
      expect([name, sm2Verify(kp.publicKeyHex, msg, sig)]).toEqual([name, false]);
    }
    for (const name of ['rZero', 'sZero', 'rEqualsN', 'sEqualsN', 'rPlusN', 'sPlusN'] as const) {
      expect([name, sm2SignatureIsCanonical(cases[name] ?? '')]).toEqual([name, false]);
    }
    expect(() => sm2SignatureRawToDer(hex32(0n) + hex32(s))).toThrow(SmCryptoError);
    expect(() => sm2SignatureRawToDer(hex32(r) + hex32(N))).toThrow(SmCryptoError);
    expect(() => sm2SignatureRawToDer(hex32(r))).toThrow(SmCryptoError);
  });

  it('rejects a signature whose verification point is the point at infinity', () => {
    // Only the key owner can build one: with r = e mod n and s = -r*d/(1+d), [s]G + [r+s]P = O. The standard
    // (and OpenSSL) reject it; sm-crypto-v2's doVerifySignature treats O as x = 0 and accepts, hence our own
    // verification equation.
    const { r: rInf, s: sInf } = infinitySignature(kp.privateKeyHex, kp.publicKeyHex, msg);
    expect(
      smCryptoV2Sm2.doVerifySignature(msg, hex32(rInf) + hex32(sInf), kp.publicKeyHex, { hash: true }),
    ).toBe(true);
    expect(sm2SignatureIsCanonical(sigDer(rInf, sInf))).toBe(true);
    expect(sm2Verify(kp.publicKeyHex, msg, sigDer(rInf, sInf))).toBe(false);
  });

  it('rejects invalid public keys without throwing', () => {
    const pub = kp.publicKeyHex;
    const x = BigInt('0x' + pub.slice(2, 66));
    const y = BigInt('0x' + pub.slice(66));

    // A point with a small x, so that x + p still fits in 32 bytes (alternative, non-reduced encoding).
    // (No such test for y: a y below 2^256 - p ~ 2^224 is infeasible to find.)
    let sx = 0n;
    let sy = 0n;
    for (let cx = 1n; ; cx++) {
      const rhs = (cx * cx * cx + A * cx + B) % P;
      const cy = modPow(rhs, (P + 1n) / 4n, P); // p = 3 mod 4
      if ((cy * cy) % P === rhs) {
        sx = cx;
        sy = cy;
        break;
      }
    }
    expect(isValidSm2PublicKey('04' + hex32(sx) + hex32(sy))).toBe(true);

    const bad: Record<string, unknown> = {
      empty: '',
      noPrefix: pub.slice(2),
      wrongPrefix: '05' + pub.slice(2),
      compressed: (y % 2n === 0n ? '02' : '03') + pub.slice(2, 66),
      tooShort: pub.slice(0, -2),
      tooLong: pub + '00',
      uppercase: '04' + pub.slice(2).toUpperCase(),
      nonHex: pub.slice(0, -1) + 'g',
      notOnCurve: '04' + hex32(x) + hex32((y + 1n) % P),
      infinity: '04' + '00'.repeat(64),
      xNotReduced: '04' + hex32(sx + P) + hex32(sy),
      notAString: 12345,
    };
    for (const [name, key] of Object.entries(bad)) {
      expect([name, isValidSm2PublicKey(key as string)]).toEqual([name, false]);
      expect([name, sm2Verify(key as string, msg, good)]).toEqual([name, false]);
    }
  });

  it('rejects invalid private keys with a clear error', () => {
    for (const priv of [
      '',
      '00',
      hex32(0n),
      hex32(N - 1n),
      hex32(N),
      'f'.repeat(64),
      kp.privateKeyHex + '00',
    ]) {
      expect(() => sm2PublicKeyFromPrivate(priv)).toThrow(SmCryptoError);
      expect(() => sm2Sign(priv, msg)).toThrow(SmCryptoError);
    }
    expect(() => sm2Sign('zz' + kp.privateKeyHex.slice(2), msg)).toThrow(/64 hex/);
  });

  it('never throws from sm2Verify on odd messages or IDs', () => {
    expect(sm2Verify(kp.publicKeyHex, '\ud800', good)).toBe(false);
    expect(sm2Verify(kp.publicKeyHex, msg, good, 'x'.repeat(8192))).toBe(false);
    expect(sm2Verify(kp.publicKeyHex, msg, good, 'x'.repeat(8191))).toBe(false);
    expect(sm2Verify(kp.publicKeyHex, 42 as unknown as string, good)).toBe(false);
    expect(sm2Verify(kp.publicKeyHex, msg, null as unknown as string)).toBe(false);
    expect(() => sm2Sign(kp.privateKeyHex, msg, 'x'.repeat(8192))).toThrow(/ENTL/);
    expect(() => sm3Hex('a\udc00b')).toThrow(/surrogate/);
  });

  describe('SM4-CBC', () => {
    const key = '0123456789abcdeffedcba9876543210';
    const iv = '00112233445566778899aabbccddeeff';
    // A single CBC block decrypts to D(block) xor IV, so choosing the IV sets the "plaintext" exactly.
    // From the GB/T 32907 example: E_key(0123456789abcdeffedcba9876543210) = 681edf34d206965e86b3e94f536e4246.
    const block = '681edf34d206965e86b3e94f536e4246';
    const decryptedBlock = Buffer.from('0123456789abcdeffedcba9876543210', 'hex');
    const ivFor = (plainHex: string): string =>
      toHex(decryptedBlock.map((b, i) => b ^ parseInt(plainHex.slice(2 * i, 2 * i + 2), 16)));

    it('validates key, IV and ciphertext lengths', () => {
      const ct = sm4EncryptCbc(key, iv, 'hello');
      expect(new TextDecoder().decode(sm4DecryptCbc(key.toUpperCase(), iv, ct))).toBe('hello');
      for (const k of ['', key.slice(2), key + '00', 'zz' + key.slice(2)]) {
        expect(() => sm4EncryptCbc(k, iv, 'x')).toThrow(/SM4 key/);
        expect(() => sm4DecryptCbc(k, iv, ct)).toThrow(/SM4 key/);
      }
      for (const v of ['', iv.slice(2), iv + '00']) {
        expect(() => sm4EncryptCbc(key, v, 'x')).toThrow(/SM4 IV/);
        expect(() => sm4DecryptCbc(key, v, ct)).toThrow(/SM4 IV/);
      }
      for (const c of ['', ct.slice(0, -2), ct + '00', ct.slice(0, -1), ct.slice(0, -2) + 'zz']) {
        expect(() => sm4DecryptCbc(key, iv, c)).toThrow(/SM4 ciphertext/);
      }
    });

    it('enforces PKCS#7 padding exactly', () => {
      // Valid paddings decrypt to the expected prefix.
      expect(toHex(sm4DecryptCbc(key, ivFor('10'.repeat(16)), block))).toBe('');
      expect(toHex(sm4DecryptCbc(key, ivFor('aa'.repeat(14) + '0202'), block))).toBe('aa'.repeat(14));
      expect(toHex(sm4DecryptCbc(key, ivFor('aa'.repeat(15) + '01'), block))).toBe('aa'.repeat(15));
      // Invalid ones throw (sm-crypto-v2 on its own accepts the 0x00 case).
      for (const plain of [
        '0123456789abcdeffedcba9876543210', // last byte 0x10 but the block is not all 0x10
        'aa'.repeat(15) + '00', // zero pad length
        '11'.repeat(16), // pad length > block size
        'aa'.repeat(13) + '010303', // inconsistent pad bytes
      ]) {
        expect(() => sm4DecryptCbc(key, ivFor(plain), block)).toThrow(/padding/);
      }
    });
  });
});

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let result = 1n;
  let b = base % m;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return result;
}

describe('verification key tables (speed only, never the result)', () => {
  test('first, second and later uses of a key give the same verdicts, forgeries included', () => {
    const kp = sm2GenerateKeyPair();
    const other = sm2GenerateKeyPair();
    const good = sm2Sign(kp.privateKeyHex, 'reading');
    const foreign = sm2Sign(other.privateKeyHex, 'reading');
    const before = sm2KeyTableCount();
    for (let use = 1; use <= 4; use++) {
      expect([use, sm2Verify(kp.publicKeyHex, 'reading', good)]).toEqual([use, true]);
      expect([use, sm2Verify(kp.publicKeyHex, 'reading!', good)]).toEqual([use, false]);
      expect([use, sm2Verify(kp.publicKeyHex, 'reading', foreign)]).toEqual([use, false]);
    }
    expect(sm2KeyTableCount()).toBe(Math.min(before + 1, SM2_KEY_TABLE_CAPACITY));
  });

  test('the table cache stays bounded', () => {
    const keys = Array.from({ length: 40 }, () => sm2GenerateKeyPair());
    for (const k of keys) {
      const sig = sm2Sign(k.privateKeyHex, 'x');
      expect(sm2Verify(k.publicKeyHex, 'x', sig) && sm2Verify(k.publicKeyHex, 'x', sig)).toBe(true);
    }
    expect(sm2KeyTableCount()).toBeLessThanOrEqual(SM2_KEY_TABLE_CAPACITY);
  });
});
