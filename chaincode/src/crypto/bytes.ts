/**
 * Byte/hex/text helpers for the SM crypto wrapper.
 *
 * sm-crypto-v2's own converters are lenient (odd-length or non-hex input silently becomes zero bytes), which is
 * unacceptable for data that ends up as evidence on the ledger, so all parsing goes through these strict helpers.
 */

/** Message input: raw bytes, or a string that is encoded as UTF-8. */
export type Bytes = Uint8Array | string;

/** Error raised for invalid input to the SM crypto wrapper (bad hex, bad length, bad padding, ...). */
export class SmCryptoError extends Error {
  override name = 'SmCryptoError';
}

const HEX_ANY_CASE = /^(?:[0-9a-fA-F]{2})*$/;
const HEX_LOWER = /^(?:[0-9a-f]{2})*$/;
// With the `u` flag, paired surrogates are one code point, so this only matches unpaired (ill-formed) ones.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** True for an even-length hex string; `lowercaseOnly` enforces the canonical form we store on the ledger. */
export function isHex(value: unknown, lowercaseOnly = false): value is string {
  return typeof value === 'string' && (lowercaseOnly ? HEX_LOWER : HEX_ANY_CASE).test(value);
}

/** Strict hex decoding; throws SmCryptoError naming `what` on anything that is not even-length hex. */
export function hexToBytes(hex: string, what: string, lowercaseOnly = false): Uint8Array {
  if (!isHex(hex, lowercaseOnly)) {
    throw new SmCryptoError(`${what}: expected ${lowercaseOnly ? 'lowercase ' : ''}hex with an even length`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Decodes hex that must be exactly `byteLength` bytes long. */
export function fixedHexToBytes(hex: string, byteLength: number, what: string): Uint8Array {
  if (typeof hex !== 'string' || hex.length !== byteLength * 2) {
    throw new SmCryptoError(`${what}: expected ${byteLength * 2} hex characters (${byteLength} bytes)`);
  }
  return hexToBytes(hex, what);
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * Converts message input to a fresh Uint8Array (a copy, so Buffer slices/offsets never reach the library).
 * Strings must be well-formed UTF-16: a lone surrogate would be silently replaced by U+FFFD, making two different
 * strings hash and sign identically.
 */
export function toBytes(data: Bytes, what = 'data'): Uint8Array {
  if (typeof data === 'string') {
    if (LONE_SURROGATE.test(data)) {
      throw new SmCryptoError(
        `${what}: string contains an unpaired UTF-16 surrogate and has no UTF-8 encoding`,
      );
    }
    return new Uint8Array(Buffer.from(data, 'utf8'));
  }
  if (data instanceof Uint8Array) {
    return new Uint8Array(data);
  }
  throw new SmCryptoError(`${what}: expected a Uint8Array or a string`);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Big-endian unsigned integer from bytes. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt('0x' + bytesToHex(bytes));
}

/** Non-negative bigint as fixed-width big-endian lowercase hex (throws if it does not fit). */
export function bigIntToHex(value: bigint, byteLength: number): string {
  const hex = value.toString(16);
  if (value < 0n || hex.length > byteLength * 2) {
    throw new SmCryptoError(`integer does not fit in ${byteLength} bytes`);
  }
  return hex.padStart(byteLength * 2, '0');
}
