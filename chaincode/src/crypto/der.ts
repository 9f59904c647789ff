/**
 * Strict DER codec for `SEQUENCE { INTEGER r, INTEGER s }`, the signature encoding of GM/T 0009 and OpenSSL.
 *
 * Signatures are stored on the ledger as evidence, so exactly one byte string may be accepted per (r, s):
 * we reject BER leniencies (long-form or indefinite lengths, non-minimal integers), negative integers and
 * trailing bytes. sm-crypto-v2's decoder accepts all of those, which is why it is not used.
 * Range checks against the curve order live in sm.ts.
 */
import { bytesToHex, hexToBytes, isHex } from './bytes';

const TAG_SEQUENCE = 0x30;
const TAG_INTEGER = 0x02;
// Content of a SEQUENCE of two 33-byte INTEGERs is 70 bytes: short-form lengths (< 128) always suffice,
// so a long-form length can never be minimal here and is rejected outright.
const MAX_SHORT_LENGTH = 0x7f;
const MAX_INTEGER_BYTES = 33;

export interface DerIntegerPair {
  r: bigint;
  s: bigint;
}

function encodeInteger(value: bigint): string {
  if (value < 0n) throw new RangeError('DER: negative integers are not supported');
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = '0' + hex;
  // A set top bit would read as negative, so a 0x00 sign byte is required (and only then).
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = '00' + hex;
  return encodeTlv(TAG_INTEGER, hex);
}

function encodeTlv(tag: number, contentHex: string): string {
  const length = contentHex.length / 2;
  if (length > MAX_SHORT_LENGTH) throw new RangeError('DER: content too long for this codec');
  return tag.toString(16).padStart(2, '0') + length.toString(16).padStart(2, '0') + contentHex;
}

/** Minimal DER encoding of (r, s) as lowercase hex. */
export function encodeDerIntegerPair(r: bigint, s: bigint): string {
  return encodeTlv(TAG_SEQUENCE, encodeInteger(r) + encodeInteger(s));
}

/**
 * Parses lowercase-hex DER `SEQUENCE { INTEGER, INTEGER }` of non-negative integers.
 * Returns null (never throws) unless the input is the unique minimal encoding.
 */
export function decodeDerIntegerPair(hex: unknown): DerIntegerPair | null {
  // Uppercase hex is a second spelling of the same bytes; only the canonical lowercase form is accepted.
  if (!isHex(hex, true)) return null;
  const der = hexToBytes(hex, 'signature', true);
  if (der.length < 2 || der[0] !== TAG_SEQUENCE) return null;
  const seqLength = der[1] ?? 0xff;
  if (seqLength > MAX_SHORT_LENGTH || 2 + seqLength !== der.length) return null;

  let pos = 2;
  const readInteger = (): bigint | null => {
    if (der[pos] !== TAG_INTEGER) return null;
    const length = der[pos + 1];
    if (length === undefined || length === 0 || length > MAX_INTEGER_BYTES) return null;
    const start = pos + 2;
    const end = start + length;
    if (end > der.length) return null;
    const first = der[start] ?? 0;
    if (first & 0x80) return null; // negative
    // Leading 0x00 is only allowed as the sign byte in front of a byte with its top bit set.
    if (first === 0x00 && length > 1 && ((der[start + 1] ?? 0) & 0x80) === 0) return null;
    pos = end;
    return BigInt('0x' + bytesToHex(der.subarray(start, end)));
  };

  const r = readInteger();
  if (r === null) return null;
  const s = readInteger();
  if (s === null) return null;
  return pos === der.length ? { r, s } : null;
}
