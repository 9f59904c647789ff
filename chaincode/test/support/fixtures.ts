/** Actors and signed messages for domain tests: operators, an auditor, drivers and piles with real SM2 keys. */
import { sm2GenerateKeyPair, sm2Sign, sm2Signer, type Sm2KeyPair } from '../../src/crypto';
import type { Caller, TxContext } from '../../src/domain/context';
import { creditReward, issueBeans } from '../../src/domain/beans';
import { confirmMargin, genesisDigest, initConsortium, payMargin } from '../../src/domain/consortium';
import {
  authorizationText,
  beanPurchaseText,
  beanTransferText,
  envelopeClaimText,
  idTagDigest,
  readingText,
  refundText,
  revocationText,
  standingIdOf,
  standingRevocationText,
  standingText,
  walletIdOf,
  type ReadingKind,
} from '../../src/domain/messages';
import type { ParamsDraft } from '../../src/domain/params';
import type { TariffDraft } from '../../src/domain/tariff';
import type { MemoryLedger } from './ledger';

export const OPS = {
  A: { mspId: 'AlphaMSP', name: 'Alpha Charge' },
  B: { mspId: 'BetaMSP', name: 'Beta Power' },
  C: { mspId: 'CetusMSP', name: 'Cetus Energy' },
  D: { mspId: 'DeltaMSP', name: 'Delta Grid' },
} as const;
export const AUDITOR_MSP = 'AuditorMSP';
/** The network id of the test consortium, named in every signed message. */
export const NETWORK = 'evpay-test';

export const admin = (mspId: string): Caller => ({
  mspId,
  role: 'admin',
  id: `x509::/OU=admin/CN=Admin@${mspId}`,
});
export const client = (mspId: string): Caller => ({
  mspId,
  role: 'client',
  id: `x509::/OU=client/CN=gateway@${mspId}`,
});
export const auditor: Caller = client(AUDITOR_MSP);
/** The auditor organization is also the pool's custodian (the genesis default); its admin confirms pool money. */
export const custodian: Caller = admin(AUDITOR_MSP);

export const PARAMS: ParamsDraft = {
  marginFen: 1_000_000,
  marginDueSec: 7 * 24 * 3600,
  blockRewardFen: 100,
  proposerShareBps: 5_000,
  rewardEmptyBlocks: false,
  beanWh: 1000,
  beanFaceValueFen: 100,
  envelopeMaxBeans: 10_000,
  envelopeMaxClaimants: 100,
  envelopeMaxTtlSec: 7 * 24 * 3600,
  sessionMaxOpenSec: 12 * 3600,
  clearingPeriodSec: 24 * 3600,
  clearingUtcOffsetMinutes: 480,
  clearingGraceSec: 600,
  approvalNumerator: 2,
  approvalDenominator: 3,
};

/** China Standard Time; a typical peak/flat/valley day. */
export const TARIFF: TariffDraft = {
  utcOffsetMinutes: 480,
  periods: [
    { startMinute: 0, kind: 'valley' },
    { startMinute: 8 * 60, kind: 'flat' },
    { startMinute: 10 * 60, kind: 'peak' },
    { startMinute: 15 * 60, kind: 'flat' },
    { startMinute: 18 * 60, kind: 'peak' },
    { startMinute: 21 * 60, kind: 'flat' },
    { startMinute: 23 * 60, kind: 'valley' },
  ],
  prices: {
    peak: { energyFenPerKwh: 110, serviceFenPerKwh: 80 },
    flat: { energyFenPerKwh: 70, serviceFenPerKwh: 80 },
    valley: { energyFenPerKwh: 30, serviceFenPerKwh: 80 },
  },
};

/** The genesis document the founding operators agree on. */
export const genesis = (
  ops: ReadonlyArray<{ mspId: string; name: string }> = Object.values(OPS),
  networkId = NETWORK,
) => ({
  networkId,
  operators: ops,
  auditorMspIds: [AUDITOR_MSP],
  params: PARAMS,
  tariff: TARIFF,
});

/** InitConsortium on a peer whose operator pinned exactly this document. */
export const initPinned = (ctx: TxContext, doc: unknown) => initConsortium(ctx, doc, genesisDigest(doc));

export async function bootstrap(
  ledger: MemoryLedger,
  ops: ReadonlyArray<{ mspId: string; name: string }> = Object.values(OPS),
): Promise<void> {
  await ledger.submit(admin(OPS.A.mspId), (ctx) => initPinned(ctx, genesis(ops)));
  for (const op of ops) await payMarginConfirmed(ledger, op.mspId);
}

/** The operator's admin declares its margin paid and the custodian confirms it (consortium.ts, CUSTODIAN RULE). */
export async function payMarginConfirmed(
  ledger: MemoryLedger,
  mspId: string,
  now = ledger.now,
): Promise<void> {
  await ledger.submit(admin(mspId), (ctx) => payMargin(ctx), now);
  await ledger.submit(custodian, (ctx) => confirmMargin(ctx, mspId), now);
}

/** The operator earns rewards backing exactly `beans` beans (credited as the incentive layer would) and issues them. */
export async function issueBackedBeans(ledger: MemoryLedger, mspId: string, beans: number): Promise<void> {
  const ref = `backing-${beans}-${ledger.nextTxId().slice(0, 8)}`;
  await ledger.submit(client(mspId), (ctx) => creditReward(ctx, mspId, ref, beans * PARAMS.beanFaceValueFen));
  await ledger.submit(admin(mspId), (ctx) => issueBeans(ctx, { beans, reference: ref }));
}

let nonceSeq = 0;
export class Driver {
  readonly keys: Sm2KeyPair = sm2GenerateKeyPair();
  /** The network the driver signs for (the consortium's networkId). */
  network = NETWORK;
  readonly walletId = walletIdOf(this.keys.publicKeyHex);
  private readonly sign = sm2Signer(this.keys.privateKeyHex);

  /** At most `capFen` of wallet money and `maxBeans` of the pile operator's beans (none unless given). */
  authorize(pileId: string, capFen: number, expiresAt: number, nonce = `n${++nonceSeq}`, maxBeans = 0) {
    const a = { walletId: this.walletId, pileId, capFen, maxBeans, nonce, expiresAt };
    return { ...a, signature: this.sign(authorizationText(this.network, a)) };
  }
  /** Revokes whatever this driver signed with `nonce` and has not been used (RevokeAuthorization). */
  revoke(nonce: string) {
    const r = { walletId: this.walletId, nonce };
    return { ...r, signature: this.sign(revocationText(this.network, r)) };
  }
  /**
   * A standing authorization of the card `idTag` at `operator`'s piles (standing.ts): `capFen` per session,
   * `totalCapFen` and `maxSessions` in all. Carries `standingId` for convenience (not an argument).
   */
  standing(
    operator: string,
    idTag: string,
    capFen: number,
    totalCapFen: number,
    maxSessions: number,
    expiresAt: number,
    nonce = `n${++nonceSeq}`,
    maxBeans = 0,
  ) {
    const s = {
      walletId: this.walletId,
      operator,
      idTagSm3: idTagDigest(this.network, idTag),
      capFen,
      totalCapFen,
      maxSessions,
      maxBeans,
      nonce,
      expiresAt,
    };
    return { ...s, signature: this.sign(standingText(this.network, s)) };
  }
  /** The driver's revocation of a standing authorization (RevokeStanding). */
  revokeStanding(standingId: string) {
    const r = { walletId: this.walletId, standingId };
    return { ...r, signature: this.sign(standingRevocationText(this.network, r)) };
  }
  /** The id a standing authorization signed with `nonce` gets (STANDING ID RULE). */
  standingId(nonce: string): string {
    return standingIdOf(this.walletId, nonce);
  }
  buy(issuer: string, beans: number, maxCostFen: number, expiresAt: number, nonce = `n${++nonceSeq}`) {
    const p = { walletId: this.walletId, issuer, beans, maxCostFen, nonce, expiresAt };
    return { ...p, signature: this.sign(beanPurchaseText(this.network, p)) };
  }
  transfer(to: string, issuer: string, beans: number, expiresAt: number, nonce = `n${++nonceSeq}`) {
    const t = { fromWalletId: this.walletId, toWalletId: to, issuer, beans, nonce, expiresAt };
    return { ...t, signature: this.sign(beanTransferText(this.network, t)) };
  }
  refund(operator: string, amountFen: number, expiresAt: number, nonce = `n${++nonceSeq}`) {
    const r = { walletId: this.walletId, operator, amountFen, nonce, expiresAt };
    return { ...r, signature: this.sign(refundText(this.network, r)) };
  }
  claim(envelopeId: string, expiresAt: number) {
    const c = { envelopeId, walletId: this.walletId, expiresAt };
    return { ...c, signature: this.sign(envelopeClaimText(this.network, c)) };
  }
}

export class PileDevice {
  readonly keys: Sm2KeyPair = sm2GenerateKeyPair();
  private readonly sign = sm2Signer(this.keys.privateKeyHex);
  network = NETWORK;
  constructor(readonly pileId: string) {}
  get localId(): string {
    return this.pileId.slice(this.pileId.indexOf('.') + 1);
  }
  reading(
    kind: ReadingKind,
    sessionId: string,
    meterWh: number,
    readAt: number,
    signWith: Sm2KeyPair = this.keys,
  ) {
    const r = { kind, sessionId, pileId: this.pileId, meterWh, readAt };
    const text = readingText(this.network, r);
    return {
      ...r,
      signature: signWith === this.keys ? this.sign(text) : sm2Sign(signWith.privateKeyHex, text),
    };
  }
}
