/**
 * The Fabric message signer (fabric/signer.ts): OpenSSL's ECDSA, folded to low-S, in strict DER, which
 * is what peers and orderers verify. The network tests sign every transaction with it.
 */
import { hash } from '@hyperledger/fabric-gateway';
import { createHash, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { fabricSigning } from '../src/fabric/signer';

const ORDERS = {
  'P-256': 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  'P-384':
    0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
} as const;

/** r and s of a DER SEQUENCE { INTEGER r, INTEGER s } with short-form lengths, as Node encodes them. */
function derScalars(der: Uint8Array): { r: bigint; s: bigint; minimal: boolean } {
  const b = Buffer.from(der);
  expect(b[0]).toBe(0x30);
  expect(b[1]).toBe(b.length - 2);
  const read = (at: number): [bigint, number, boolean] => {
    expect(b[at]).toBe(0x02);
    const len = b[at + 1]!;
    const bytes = b.subarray(at + 2, at + 2 + len);
    const minimal =
      !(bytes[0] === 0 && bytes.length > 1 && (bytes[1]! & 0x80) === 0) && (bytes[0]! & 0x80) === 0;
    return [BigInt('0x' + bytes.toString('hex')), at + 2 + len, minimal];
  };
  const [r, next, rMin] = read(2);
  const [s, end, sMin] = read(next);
  expect(end).toBe(b.length);
  return { r, s, minimal: rMin && sMin };
}

describe.each(Object.entries(ORDERS))('fabricSigning with a %s key', (namedCurve, order) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
  const { signer, hash: digest } = fabricSigning(privateKey);

  test('hands the signer the message itself (OpenSSL hashes it)', () => {
    expect(digest).toBe(hash.none);
  });

  test('64 signatures all verify with OpenSSL over SHA-256, all low-S, all minimal DER', async () => {
    // A raw ECDSA s is above n/2 half of the time: 64 low-S signatures by chance would be 2^-64.
    for (let i = 0; i < 64; i++) {
      const message = randomBytes(1 + (i % 200));
      const der = await signer(message);
      expect(verify('sha256', message, publicKey, der)).toBe(true);
      const { r, s, minimal } = derScalars(der);
      expect(minimal).toBe(true);
      expect(r > 0n && r < order).toBe(true);
      expect(s > 0n && s <= order >> 1n).toBe(true);
      // Another message does not verify (the signature is bound to what was signed).
      expect(verify('sha256', Buffer.concat([message, Buffer.from([0])]), publicKey, der)).toBe(false);
    }
  });

  test('signs the message, not a digest of it (what hash.sha256 would have handed over)', async () => {
    const message = randomBytes(100);
    const der = await signer(createHash('sha256').update(message).digest());
    expect(verify('sha256', message, publicKey, der)).toBe(false);
  });
});

test("a key on another curve keeps fabric-gateway's own signer and hash", () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  expect(fabricSigning(privateKey).hash).toBe(hash.sha256);
});
