/**
 * SM2 private key files for piles and drivers. Encrypted by default: the passphrase is stretched with
 * PBKDF2-HMAC-SM3 into an SM4 key and an HMAC-SM3 key; the private key is SM4-CBC encrypted and the whole
 * record authenticated (encrypt-then-MAC), so a wrong passphrase or a tampered file is reported, never
 * silently decrypted into a wrong key. `--plaintext` files exist for devices without a secret store.
 */
import { createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
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

export const KEY_FILE_FORMAT = 'evpay-sm2-key/1';
export const KDF_ITERATIONS = 200_000;
/** Bounds on the work factor a key file may ask for: a file is input, and 2e9 rounds would run for hours. */
export const MIN_KDF_ITERATIONS = 100_000;
export const MAX_KDF_ITERATIONS = 5_000_000;

const hex = (bytes: number): z.ZodString =>
  z
    .string()
    .length(bytes * 2)
    .regex(/^[0-9a-f]*$/, 'lowercase hex');

const encryptionSchema = z
  .object({
    kdf: z.literal('pbkdf2-hmac-sm3'),
    iterations: z.number().int().min(MIN_KDF_ITERATIONS).max(MAX_KDF_ITERATIONS),
    saltHex: hex(16),
    cipher: z.literal('sm4-cbc'),
    ivHex: hex(16),
    // A 32-byte private key, PKCS#7-padded: 48 bytes.
    ciphertextHex: hex(48),
    mac: z.literal('hmac-sm3'),
    macHex: hex(32),
  })
  .strict();

const keyFileSchema = z
  .object({
    format: z.literal(KEY_FILE_FORMAT),
    publicKeyHex: publicKeySchema,
    walletId: walletIdSchema,
    privateKeyHex: hex(32).optional(),
    encryption: encryptionSchema.optional(),
  })
  .strict()
  .refine((f) => f.walletId === walletIdOf(f.publicKeyHex), {
    message: 'is not the SM3 of publicKeyHex',
    path: ['walletId'],
  })
  .refine((f) => (f.privateKeyHex === undefined) !== (f.encryption === undefined), {
    message: 'holds neither or both of privateKeyHex and encryption',
  });

function checkKeyFile(file: unknown): KeyFile {
  const format = (file as { format?: unknown } | null)?.format;
  if (typeof file === 'object' && file !== null && !Array.isArray(file) && format !== KEY_FILE_FORMAT)
    throw new KeyFileError(`not an ${KEY_FILE_FORMAT} key file`);
  const r = keyFileSchema.safeParse(file);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new KeyFileError(`key file: ${where}${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

export interface Encryption {
  kdf: 'pbkdf2-hmac-sm3';
  iterations: number;
  saltHex: string;
  cipher: 'sm4-cbc';
  ivHex: string;
  ciphertextHex: string;
  mac: 'hmac-sm3';
  macHex: string;
}
export interface KeyFile {
  format: typeof KEY_FILE_FORMAT;
  publicKeyHex: string;
  /** The wallet id this key controls when used by a driver (SM3 of the public key). */
  walletId: string;
  privateKeyHex?: string;
  encryption?: Encryption;
}

export class KeyFileError extends Error {}

function deriveKeys(passphrase: string, salt: Buffer, iterations: number): { enc: string; mac: Buffer } {
  const k = pbkdf2Sync(passphrase, salt, iterations, 48, 'sm3');
  return { enc: k.subarray(0, 16).toString('hex'), mac: k.subarray(16) };
}

function macOf(macKey: Buffer, e: Omit<Encryption, 'macHex'>, publicKeyHex: string): Buffer {
  const h = createHmac('sm3', macKey);
  for (const part of [
    KEY_FILE_FORMAT,
    publicKeyHex,
    e.saltHex,
    String(e.iterations),
    e.ivHex,
    e.ciphertextHex,
  ])
    h.update(part + '\n');
  return h.digest();
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
    kdf: 'pbkdf2-hmac-sm3',
    iterations: KDF_ITERATIONS,
    saltHex: salt.toString('hex'),
    cipher: 'sm4-cbc',
    ivHex,
    ciphertextHex: sm4EncryptCbc(enc, ivHex, Buffer.from(kp.privateKeyHex, 'hex')),
    mac: 'hmac-sm3',
  } as const;
  return {
    ...base,
    encryption: { ...partial, macHex: macOf(mac, partial, kp.publicKeyHex).toString('hex') },
  };
}

/** Opens a parsed key file; anything malformed is a KeyFileError naming the field, before any KDF work. */
export function openKey(file: unknown, passphrase: string | undefined): Sm2KeyPair {
  const f = checkKeyFile(file);
  let privateKeyHex: string;
  if (f.encryption) {
    if (passphrase === undefined)
      throw new KeyFileError('this key file is encrypted: a passphrase is needed');
    const { macHex, ...e } = f.encryption;
    const { enc, mac } = deriveKeys(passphrase, Buffer.from(e.saltHex, 'hex'), e.iterations);
    const expected = macOf(mac, e, f.publicKeyHex);
    const given = Buffer.from(macHex, 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new KeyFileError('wrong passphrase, or the key file was altered');
    privateKeyHex = Buffer.from(sm4DecryptCbc(enc, e.ivHex, e.ciphertextHex)).toString('hex');
  } else {
    privateKeyHex = f.privateKeyHex!;
  }
  if (sm2PublicKeyFromPrivate(privateKeyHex) !== f.publicKeyHex)
    throw new KeyFileError('the private key does not match the public key in the file');
  return { privateKeyHex, publicKeyHex: f.publicKeyHex };
}
