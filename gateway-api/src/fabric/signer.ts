/**
 * The signer of every Fabric message this project sends (proposals, transactions, commit-status and
 * event requests): Node's own ECDSA (OpenSSL) instead of fabric-gateway's pure-JavaScript one. Measured
 * under the network bench, the library's signer was a tenth of the REST gateways' CPU; OpenSSL signs a
 * P-256 message in a few hundredths of a millisecond.
 *
 * Fabric accepts only low-S ECDSA signatures (an (r, s) and its twin (r, n - s) would otherwise both be
 * valid), which OpenSSL does not produce on its own, so s is folded into the lower half here. The
 * message is hashed by OpenSSL (SHA-256, what fabric-gateway's hash.sha256 does), so the connection is
 * opened with hash.none: the signer receives the message itself.
 */
import { encodeDerIntegerPair } from '@evpay/chaincode/client';
import { hash, signers, type Hash, type Signer } from '@hyperledger/fabric-gateway';
import { sign, type KeyObject } from 'node:crypto';

/** Group orders of the curves Fabric's MSP signs with (cryptogen and Fabric CA use P-256). */
const CURVE_ORDERS: Readonly<Record<string, bigint>> = {
  prime256v1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  secp384r1:
    0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};

export interface FabricSigning {
  signer: Signer;
  /** What fabric-gateway does to a message before handing it to `signer`. */
  hash: Hash;
}

/** ECDSA over SHA-256 with OpenSSL, low-S, DER: what a Fabric peer and orderer verify. */
export function lowSEcdsaSign(key: KeyObject, order: bigint, message: Uint8Array): Uint8Array {
  // IEEE P1363 gives r || s at fixed width, so s needs no DER parsing before it is folded.
  const raw = sign('sha256', message, { key, dsaEncoding: 'ieee-p1363' });
  const half = raw.length / 2;
  const r = BigInt('0x' + raw.subarray(0, half).toString('hex'));
  let s = BigInt('0x' + raw.subarray(half).toString('hex'));
  if (s > order >> 1n) s = order - s;
  return Buffer.from(encodeDerIntegerPair(r, s), 'hex');
}

/** Native signing for an EC key on a curve above; the library's signer for any other key. */
export function fabricSigning(key: KeyObject): FabricSigning {
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const order = curve === undefined ? undefined : CURVE_ORDERS[curve];
  if (order === undefined) return { signer: signers.newPrivateKeySigner(key), hash: hash.sha256 };
  return { signer: (message) => Promise.resolve(lowSEcdsaSign(key, order, message)), hash: hash.none };
}
