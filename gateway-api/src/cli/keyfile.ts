/**
 * SM2 private key files for piles and drivers. Encrypted by default; `--plaintext` files exist for devices
 * without a secret store. Every file is checked against a schema before any work is done on it, and the
 * work factor it asks for is bounded (a file is input: 2e9 rounds would run for hours).
 *
 * Format v2 (`evpay-sm2-key/2`), the one written:
 *   master = PBKDF2-HMAC-SM3(passphrase, salt, iterations, 32 bytes)   one SM3 block, 1,000,000 rounds
 *   encKey = HKDF-SM3(master, salt, "evpay-sm2-key/2 sm4-cbc", 16)
 *   macKey = HKDF-SM3(master, salt, "evpay-sm2-key/2 hmac-sm3", 32)
 *   ciphertext = SM4-CBC(encKey, iv, private key);  mac = HMAC-SM3(macKey, JSON of every other field)
 * The password-hardening step yields exactly one PBKDF2 block, so the user's work and an attacker's work
 * per guess are the same: in v1 the user paid for two blocks (48 bytes) while the first alone held the SM4
 * key, and a guess could be checked against the known PKCS#7 padding of the last ciphertext block without
 * the second. Both keys now come from the one block through HKDF with distinct labels. PBKDF2-HMAC-SM3 is
 * kept (not scrypt) so that every primitive in the file is a Chinese national standard (SM3, SM4), like the
 * rest of the project; the work factor is raised from 200,000 to 1,000,000 rounds instead (about 0.5 s).
 * Encrypt-then-MAC: a wrong passphrase or a tampered file is reported, never decrypted into a wrong key.
 *
 * Format v1 (`evpay-sm2-key/1`, 48 bytes of PBKDF2 split into the two keys) is recognized and refused with
 * the upgrade command; `evpay key upgrade` opens it once with the v1 rules and rewrites it as v2.
 */
import { createHmac, hkdfSync, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import {
  publicKeySchema,
  sm2PublicKeyFromPrivate,
  sm4DecryptCbc,
  sm4EncryptCbc,
  walletIdOf,
  walletIdSchema,
  type Sm2KeyPair,
} from '@evpay/chaincode/client';

export const KEY_FILE_FORMAT = 'evpay-sm2-key/2';
export const KEY_FILE_FORMAT_V1 = 'evpay-sm2-key/1';
export const KDF = 'pbkdf2-hmac-sm3/hkdf-sm3';
export const KDF_ITERATIONS = 1_000_000;
/** Bounds on the work factor a key file may ask for (v1 files were written with 200,000). */
export const MIN_KDF_ITERATIONS = 100_000;
export const MAX_KDF_ITERATIONS = 5_000_000;
export const UPGRADE_MESSAGE = 'key file format v1: re-encrypt with `evpay key upgrade --key <file>`';

const hex = (bytes: number): z.ZodString =>
  z
    .string()
    .length(bytes * 2)
    .regex(/^[0-9a-f]*$/, 'lowercase hex');

const encryptionFields = {
  iterations: z.number().int().min(MIN_KDF_ITERATIONS).max(MAX_KDF_ITERATIONS),
  saltHex: hex(16),
  cipher: z.literal('sm4-cbc'),
  ivHex: hex(16),
  // A 32-byte private key, PKCS#7-padded: 48 bytes.
  ciphertextHex: hex(48),
  mac: z.literal('hmac-sm3'),
  macHex: hex(32),
};

function fileSchema<F extends string, E extends z.ZodTypeAny>(format: F, encryption: E) {
  return z
    .object({
      format: z.literal(format),
      publicKeyHex: publicKeySchema,
      walletId: walletIdSchema,
      privateKeyHex: hex(32).optional(),
      encryption: encryption.optional(),
    })
    .strict()
    .refine((f) => f.walletId === walletIdOf(f.publicKeyHex), {
      message: 'is not the SM3 of publicKeyHex',
      path: ['walletId'],
    })
    .refine((f) => (f.privateKeyHex === undefined) !== (f.encryption === undefined), {
      message: 'holds neither or both of privateKeyHex and encryption',
    });
}

const keyFileSchema = fileSchema(
  KEY_FILE_FORMAT,
  z.object({ kdf: z.literal(KDF), ...encryptionFields }).strict(),
);
const keyFileV1Schema = fileSchema(
  KEY_FILE_FORMAT_V1,
  z.object({ kdf: z.literal('pbkdf2-hmac-sm3'), ...encryptionFields }).strict(),
);

export type KeyFile = z.output<typeof keyFileSchema>;
export type Encryption = NonNullable<KeyFile['encryption']>;
type KeyFileV1 = z.output<typeof keyFileV1Schema>;

export class KeyFileError extends Error {}

function check<S extends z.ZodTypeAny>(schema: S, file: unknown): z.output<S> {
  const r = schema.safeParse(file);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new KeyFileError(`key file: ${where}${issue?.message ?? 'invalid'}`);
  }
  return r.data as z.output<S>;
}

function formatOf(file: unknown): unknown {
  return typeof file === 'object' && file !== null && !Array.isArray(file)
    ? (file as { format?: unknown }).format
    : undefined;
}

function deriveKeys(passphrase: string, salt: Buffer, iterations: number): { enc: string; mac: Buffer } {
  const master = pbkdf2Sync(passphrase, salt, iterations, 32, 'sm3');
  const expand = (label: string, length: number): Buffer =>
    Buffer.from(hkdfSync('sm3', master, salt, `${KEY_FILE_FORMAT} ${label}`, length));
  return { enc: expand('sm4-cbc', 16).toString('hex'), mac: expand('hmac-sm3', 32) };
}

function macOf(macKey: Buffer, f: Omit<KeyFile, 'encryption'>, e: Omit<Encryption, 'macHex'>): Buffer {
  const header = [
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
  ];
  return createHmac('sm3', macKey).update(JSON.stringify(header)).digest();
}

function sameMac(expected: Buffer, givenHex: string): boolean {
  const given = Buffer.from(givenHex, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function matching(privateKeyHex: string, publicKeyHex: string): Sm2KeyPair {
  if (sm2PublicKeyFromPrivate(privateKeyHex) !== publicKeyHex)
    throw new KeyFileError('the private key does not match the public key in the file');
  return { privateKeyHex, publicKeyHex };
}

export function sealKey(kp: Sm2KeyPair, passphrase: string | undefined): KeyFile {
  const base = {
    format: KEY_FILE_FORMAT,
    publicKeyHex: kp.publicKeyHex,
    walletId: walletIdOf(kp.publicKeyHex),
  } as const;
  if (passphrase === undefined) return { ...base, privateKeyHex: kp.privateKeyHex };
  if (passphrase.length < 8) throw new KeyFileError('the passphrase must have at least 8 characters');
  const salt = randomBytes(16);
  const { enc, mac } = deriveKeys(passphrase, salt, KDF_ITERATIONS);
  const ivHex = randomBytes(16).toString('hex');
  const partial = {
    kdf: KDF,
    iterations: KDF_ITERATIONS,
    saltHex: salt.toString('hex'),
    cipher: 'sm4-cbc',
    ivHex,
    ciphertextHex: sm4EncryptCbc(enc, ivHex, Buffer.from(kp.privateKeyHex, 'hex')),
    mac: 'hmac-sm3',
  } as const;
  return { ...base, encryption: { ...partial, macHex: macOf(mac, base, partial).toString('hex') } };
}

/** Opens a parsed key file; anything malformed is a KeyFileError naming the field, before any KDF work. */
export function openKey(file: unknown, passphrase: string | undefined): Sm2KeyPair {
  const format = formatOf(file);
  if (format === KEY_FILE_FORMAT_V1) throw new KeyFileError(UPGRADE_MESSAGE);
  if (format !== KEY_FILE_FORMAT && format !== undefined)
    throw new KeyFileError(`not an ${KEY_FILE_FORMAT} key file`);
  const f = check(keyFileSchema, file);
  if (!f.encryption) return matching(f.privateKeyHex!, f.publicKeyHex);
  if (passphrase === undefined) throw new KeyFileError('this key file is encrypted: a passphrase is needed');
  const { macHex, ...e } = f.encryption;
  const { enc, mac } = deriveKeys(passphrase, Buffer.from(e.saltHex, 'hex'), e.iterations);
  if (!sameMac(macOf(mac, f, e), macHex))
    throw new KeyFileError('wrong passphrase, or the key file was altered (its HMAC-SM3 tag does not match)');
  return matching(Buffer.from(sm4DecryptCbc(enc, e.ivHex, e.ciphertextHex)).toString('hex'), f.publicKeyHex);
}

/** The v1 rules, kept only to read a v1 file once for `evpay key upgrade`. */
function openKeyV1(f: KeyFileV1, passphrase: string | undefined): Sm2KeyPair {
  if (!f.encryption) return matching(f.privateKeyHex!, f.publicKeyHex);
  if (passphrase === undefined) throw new KeyFileError('this key file is encrypted: a passphrase is needed');
  const { macHex, ...e } = f.encryption;
  const k = pbkdf2Sync(passphrase, Buffer.from(e.saltHex, 'hex'), e.iterations, 48, 'sm3');
  const h = createHmac('sm3', k.subarray(16));
  for (const part of [f.format, f.publicKeyHex, e.saltHex, String(e.iterations), e.ivHex, e.ciphertextHex])
    h.update(part + '\n');
  if (!sameMac(h.digest(), macHex))
    throw new KeyFileError('wrong passphrase, or the key file was altered (its HMAC-SM3 tag does not match)');
  const privateKey = sm4DecryptCbc(k.subarray(0, 16).toString('hex'), e.ivHex, e.ciphertextHex);
  return matching(Buffer.from(privateKey).toString('hex'), f.publicKeyHex);
}

/**
 * A v1 key file rewritten as v2: the same key, encrypted again under the same passphrase (plaintext stays
 * plaintext). A file that is already v2 is refused, so running it twice does no silent work.
 */
export function upgradeKey(file: unknown, passphrase: string | undefined): KeyFile {
  const format = formatOf(file);
  if (format === KEY_FILE_FORMAT) throw new KeyFileError('the key file is already format v2');
  if (format !== KEY_FILE_FORMAT_V1) throw new KeyFileError(`not an ${KEY_FILE_FORMAT_V1} key file`);
  const f = check(keyFileV1Schema, file);
  const kp = openKeyV1(f, passphrase);
  return sealKey(kp, f.encryption ? passphrase : undefined);
}
