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
  | 'AUTH'
  | 'REVOKE'
  | 'READING'
  | 'BEANS-BUY'
  | 'BEANS-TRANSFER'
  | 'ENVELOPE-CLAIM'
  | 'REFUND'
  | 'STANDING'
  | 'STANDING-REVOKE'
  | 'IDTAG';

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

/**
 * A driver's standing authorization of an RFID card (standing.ts): any pile of `operator` (the card's
 * issuer) may start sessions with the card whose digest is `idTagSm3` (idTagDigest, never the raw card
 * id) on this wallet, each holding at most `capFen` of wallet money and `maxBeans` of the operator's
 * beans, at most `maxSessions` sessions and `totalCapFen` charged in all, until `expiresAt`.
 */
export interface StandingAuthorization {
  walletId: string;
  operator: string;
  idTagSm3: string;
  capFen: number;
  totalCapFen: number;
  maxSessions: number;
  maxBeans: number;
  nonce: string;
  expiresAt: number;
}
export const standingText = (network: string, s: StandingAuthorization): string =>
  text('STANDING', network, [
    s.walletId,
    s.operator,
    s.idTagSm3,
    s.capFen,
    s.totalCapFen,
    s.maxSessions,
    s.maxBeans,
    s.nonce,
    s.expiresAt,
  ]);

/** A driver's revocation of a standing authorization, by its id (standingIdOf). */
export interface StandingRevocation {
  walletId: string;
  standingId: string;
}
export const standingRevocationText = (network: string, r: StandingRevocation): string =>
  text('STANDING-REVOKE', network, [r.walletId, r.standingId]);

/**
 * IDTAG DIGEST RULE (written once): a card's id is never written to the ledger, only
 *   idTagSm3 = SM3("EVPAY/IDTAG/1" LF networkId LF idTag), lowercase hex
 * so no member reads card numbers off the ledger, and a digest of one network means nothing in another.
 * A card id is short (an RFID UID is 4 to 10 bytes): the digest hides it from a casual reader, not from
 * a search of every possible UID.
 */
export const idTagDigest = (network: string, idTag: string): string =>
  sm3Hex(text('IDTAG', network, [idTag]));

/**
 * STANDING ID RULE (written once): a standing authorization is named SM3(walletId "/" nonce), lowercase
 * hex: derived from what the driver signed, and unique because the nonce is spent at registration.
 */
export const standingIdOf = (walletId: string, nonce: string): string => sm3Hex(`${walletId}/${nonce}`);

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
