/**
 * The exact texts that drivers and piles sign with SM2 (default user ID). One line per field, fixed order,
 * after a tag line with the kind and version, so a signature for one purpose can never be replayed for
 * another, and a line with the consortium's network id, so a signature for one deployment can never be
 * replayed in another (a driver may use one key everywhere). Fields are validated identifiers or
 * integers, so they cannot contain a newline.
 */
import { sm2Verify, sm3Hex } from '../crypto';
import { fail } from './errors';

export type SignedKind =
  'AUTH' | 'REVOKE' | 'READING' | 'BEANS-BUY' | 'BEANS-TRANSFER' | 'ENVELOPE-CLAIM' | 'REFUND';

function text(
  kind: SignedKind,
  network: string,
  fields: ReadonlyArray<string | number>,
  version = 1,
): string {
  const lines = [network, ...fields.map(String)];
  for (const f of lines) if (f.includes('\n')) throw new Error('signed field contains a newline');
  return [`EVPAY/${kind}/${version}`, ...lines].join('\n');
}

/**
 * A driver's authorization of one session at one pile: at most `capFen` of wallet money and at most
 * `maxBeans` of the pile operator's beans. Version 2 added maxBeans (version 1 bounded cash only).
 */
export interface Authorization {
  walletId: string;
  pileId: string;
  capFen: number;
  maxBeans: number;
  nonce: string;
  expiresAt: number;
}
export const authorizationText = (network: string, a: Authorization): string =>
  text('AUTH', network, [a.walletId, a.pileId, a.capFen, a.maxBeans, a.nonce, a.expiresAt], 2);

/** A driver's revocation of whatever it signed with `nonce` and has not been used yet (an authorization). */
export interface Revocation {
  walletId: string;
  nonce: string;
}
export const revocationText = (network: string, r: Revocation): string =>
  text('REVOKE', network, [r.walletId, r.nonce]);

export type ReadingKind = 'START' | 'PROGRESS' | 'STOP';
export interface MeterReading {
  kind: ReadingKind;
  sessionId: string;
  pileId: string;
  meterWh: number;
  readAt: number;
}
export const readingText = (network: string, r: MeterReading): string =>
  text('READING', network, [r.kind, r.sessionId, r.pileId, r.meterWh, r.readAt]);

export interface BeanPurchase {
  walletId: string;
  issuer: string;
  beans: number;
  maxCostFen: number;
  nonce: string;
  expiresAt: number;
}
export const beanPurchaseText = (network: string, p: BeanPurchase): string =>
  text('BEANS-BUY', network, [p.walletId, p.issuer, p.beans, p.maxCostFen, p.nonce, p.expiresAt]);

export interface BeanTransfer {
  fromWalletId: string;
  toWalletId: string;
  issuer: string;
  beans: number;
  nonce: string;
  expiresAt: number;
}
export const beanTransferText = (network: string, t: BeanTransfer): string =>
  text('BEANS-TRANSFER', network, [t.fromWalletId, t.toWalletId, t.issuer, t.beans, t.nonce, t.expiresAt]);

export interface EnvelopeClaim {
  envelopeId: string;
  walletId: string;
  expiresAt: number;
}
export const envelopeClaimText = (network: string, c: EnvelopeClaim): string =>
  text('ENVELOPE-CLAIM', network, [c.envelopeId, c.walletId, c.expiresAt]);

/** A driver's request to be paid out wallet money in cash by `operator` (the operator that pays it). */
export interface Refund {
  walletId: string;
  operator: string;
  amountFen: number;
  nonce: string;
  expiresAt: number;
}
export const refundText = (network: string, r: Refund): string =>
  text('REFUND', network, [r.walletId, r.operator, r.amountFen, r.nonce, r.expiresAt]);

/** A wallet's id: SM3 of its uncompressed public key bytes, lowercase hex. */
export function walletIdOf(publicKeyHex: string): string {
  return sm3Hex(Buffer.from(publicKeyHex, 'hex'));
}

export function requireSignature(
  publicKeyHex: string,
  message: string,
  signatureHex: string,
  what: string,
): void {
  if (!sm2Verify(publicKeyHex, message, signatureHex))
    fail('BAD_SIGNATURE', `${what}: SM2 signature does not verify`);
}
