/**
 * The Fabric side of the crypto: SHA-256 and ECDSA P-256 signatures of Fabric's own identities (the
 * orderers' block signatures). Fabric's MSP stays on ECDSA (see README, Cryptography); this wrapper
 * exists only so the chaincode can check a block's consenter signatures itself.
 */
import { X509Certificate, createHash, verify, type KeyObject } from 'node:crypto';
import { touch } from './lru';

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export interface CertificateFacts {
  /** Whether the key is ECDSA on P-256, the curve Fabric's MSP uses. */
  p256: boolean;
  subject: string;
  issuer: string;
  notBefore: number;
  notAfter: number;
  /** SHA-256 of the DER certificate, hex. */
  fingerprint: string;
}

/** Parses a PEM certificate (undefined when it is not one). */
export function certificateFacts(pem: string): CertificateFacts | undefined {
  try {
    const cert = new X509Certificate(pem);
    const key = cert.publicKey;
    return {
      p256: key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1',
      subject: cert.subject,
      issuer: cert.issuer,
      notBefore: Math.floor(Date.parse(cert.validFrom) / 1000),
      notAfter: Math.floor(Date.parse(cert.validTo) / 1000),
      fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    };
  } catch {
    return undefined;
  }
}

/**
 * Public keys of the certificates seen, by PEM: the same few consenter certificates sign every block, and
 * parsing one (X509Certificate) cost more than the signature check itself in a profile of block claims
 * under load. A bounded LRU; it changes speed only, never a result (a PEM always gives the same key).
 */
export const CERTIFICATE_KEY_CAPACITY = 64;
const keys = new Map<string, KeyObject | null>();

function publicKeyOf(certPem: string): KeyObject | null {
  let key = keys.get(certPem);
  if (key === undefined) {
    try {
      key = new X509Certificate(certPem).publicKey;
    } catch {
      key = null;
    }
  }
  touch(keys, certPem, key, CERTIFICATE_KEY_CAPACITY);
  return key;
}

/** ECDSA over SHA-256 of `data` (DER signature), checked with the certificate's public key. */
export function verifyEcdsaSha256(certPem: string, data: Uint8Array, signature: Uint8Array): boolean {
  const key = publicKeyOf(certPem);
  if (!key) return false;
  try {
    return verify('sha256', data, key, signature);
  } catch {
    return false;
  }
}
