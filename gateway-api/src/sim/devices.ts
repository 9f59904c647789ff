/**
 * The simulated driver and pile: each holds its own SM2 key, made in memory, and signs its own messages
 * in exactly the texts the chaincode verifies (@evpay/chaincode/client), as the driver's app and the
 * pile's firmware would. Only signed messages leave them: the pile backend forwards the driver's
 * authorization, never a key.
 */
import {
  authorizationText,
  readingText,
  sm2GenerateKeyPair,
  sm2Signer,
  walletIdOf,
  type Authorization,
  type MeterReading,
  type ReadingKind,
  type Sm2KeyPair,
} from '@evpay/chaincode/client';
import type { PileMeter } from './meter';

export type Signed<T> = T & { signature: string };

export class SimDriver {
  readonly walletId: string;
  private nonces = 0;
  private readonly sign: (text: string) => string;

  constructor(
    /** The consortium's network id, named in every signature. */
    readonly network: string,
    /** A tag that makes this driver's nonces unique across runs (nonces are single use per wallet). */
    readonly tag: string,
    private readonly keys: Sm2KeyPair = sm2GenerateKeyPair(),
  ) {
    this.walletId = walletIdOf(keys.publicKeyHex);
    this.sign = sm2Signer(keys.privateKeyHex);
  }

  get publicKey(): string {
    return this.keys.publicKeyHex;
  }

  /** An authorization of one session at `pileId`: at most `capFen` of wallet money, no beans unless given. */
  authorize(pileId: string, capFen: number, expiresAt: number, maxBeans = 0): Signed<Authorization> {
    const a: Authorization = {
      walletId: this.walletId,
      pileId,
      capFen,
      maxBeans,
      nonce: `${this.tag}-${++this.nonces}`,
      expiresAt,
    };
    return { ...a, signature: this.sign(authorizationText(this.network, a)) };
  }
}

export class SimPile {
  /** The time of the pile's last signed reading: the next session's start may not be older. */
  lastReadAt = 0;
  private readonly sign: (text: string) => string;

  constructor(
    readonly network: string,
    /** "<operator MSP id>.<local id>", as RegisterPile answered it. */
    readonly pileId: string,
    readonly meter: PileMeter,
    private readonly keys: Sm2KeyPair,
  ) {
    this.sign = sm2Signer(keys.privateKeyHex);
  }

  /** The pile's SM2 public key (OCPP 2.0.1 names it beside each signed meter value). */
  get publicKey(): string {
    return this.keys.publicKeyHex;
  }

  reading(kind: ReadingKind, sessionId: string, meterWh: number, readAt: number): Signed<MeterReading> {
    const r: MeterReading = { kind, sessionId, pileId: this.pileId, meterWh, readAt };
    return { ...r, signature: this.sign(readingText(this.network, r)) };
  }
}
