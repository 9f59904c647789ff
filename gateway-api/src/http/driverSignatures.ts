/**
 * The gateway's own check of a driver's SM2 signature, before any peer work: the messages a driver
 * signs to move money (a refund, a bean purchase or transfer, an envelope claim, a revocation, a standing
 * authorization; not a session start's authorization, see below) are
 * read from the request with the chaincode's own texts (`@evpay/chaincode/client`) and verified with the
 * wallet's public key from the ledger. A forged or altered message is answered 401 BAD_SIGNATURE here;
 * the chaincode checks every signature again when it endorses, so this is a first line, never the only
 * one. The gateway never holds a driver's key: it only verifies.
 */
import {
  beanPurchaseText,
  beanTransferText,
  envelopeClaimText,
  refundText,
  revocationText,
  sm2Verify,
  standingRevocationText,
  standingText,
  type BeanPurchase,
  type BeanTransfer,
  type EnvelopeClaim,
  type EvPayTransactionName,
  type Refund,
  type Revocation,
  type StandingAuthorization,
  type StandingRevocation,
} from '@evpay/chaincode/client';
import { ChaincodeRejection } from '../fabric/errors';
import { networkIdOf, query, type OrgLedger } from '../fabric/orgLedger';
import { ApiError } from './problems';

interface Signed {
  walletId: string;
  text(network: string): string;
  signature: string;
}

type WithSignature<T> = T & { signature: string };

/** The driver-signed message a transaction's (already validated) argument carries, if any. */
export function driverSigned(tx: EvPayTransactionName, arg: unknown): Signed | undefined {
  switch (tx) {
    case 'StartSession':
      // Not checked here: a session start is the hot path, every endorser verifies the authorization
      // again, and a forged one costs the peers no more than this check costs every honest start (it
      // was a tenth of the gateway's CPU under the network bench): refused in a session batch, it is that
      // call's own 401 BAD_SIGNATURE and writes nothing. OCPP starts were never checked here either.
      return undefined;
    case 'RegisterStanding': {
      const s = arg as WithSignature<StandingAuthorization>;
      return { walletId: s.walletId, text: (n) => standingText(n, s), signature: s.signature };
    }
    case 'RevokeStanding': {
      // Without walletId and signature it is the issuing operator's own revocation.
      const r = arg as Partial<WithSignature<StandingRevocation>> & { standingId: string };
      const { walletId, signature } = r;
      if (walletId === undefined || signature === undefined) return undefined;
      return {
        walletId,
        text: (n) => standingRevocationText(n, { walletId, standingId: r.standingId }),
        signature,
      };
    }
    case 'RefundWallet': {
      const r = arg as WithSignature<Refund>;
      return { walletId: r.walletId, text: (n) => refundText(n, r), signature: r.signature };
    }
    case 'BuyBeans': {
      const p = arg as WithSignature<BeanPurchase>;
      return { walletId: p.walletId, text: (n) => beanPurchaseText(n, p), signature: p.signature };
    }
    case 'TransferBeans': {
      const t = arg as WithSignature<BeanTransfer>;
      return { walletId: t.fromWalletId, text: (n) => beanTransferText(n, t), signature: t.signature };
    }
    case 'ClaimEnvelope': {
      const c = arg as WithSignature<EnvelopeClaim>;
      return { walletId: c.walletId, text: (n) => envelopeClaimText(n, c), signature: c.signature };
    }
    case 'RevokeAuthorization': {
      const r = arg as WithSignature<Revocation>;
      return { walletId: r.walletId, text: (n) => revocationText(n, r), signature: r.signature };
    }
    default:
      return undefined;
  }
}

export class DriverSignatures {
  /** Wallet id -> public key: a wallet's key never changes, so it is read once. */
  private readonly keys = new Map<string, string>();
  constructor(
    private readonly ledger: OrgLedger,
    private readonly onRefused: () => void = () => undefined,
  ) {}

  /** Throws 401 BAD_SIGNATURE when the driver's signature does not verify; unknown wallets pass on. */
  async check(tx: EvPayTransactionName, arg: unknown): Promise<void> {
    const s = driverSigned(tx, arg);
    if (!s) return;
    const network = await networkIdOf(this.ledger);
    let key = this.keys.get(s.walletId);
    if (!key) {
      try {
        key = (await query<{ wallet: { publicKey: string } }>(this.ledger, 'GetWallet', [s.walletId])).wallet
          .publicKey;
      } catch (e) {
        // An unknown wallet is the chaincode's to answer (404 WALLET_NOT_FOUND), with its own code.
        if (e instanceof ChaincodeRejection) return;
        throw e;
      }
      this.keys.set(s.walletId, key);
    }
    if (!sm2Verify(key, s.text(network), s.signature)) {
      this.onRefused();
      throw new ApiError(
        'BAD_SIGNATURE',
        `the signature of ${tx} does not verify with wallet ${s.walletId}'s key`,
        {
          walletId: s.walletId,
        },
      );
    }
  }
}
