/**
 * Failures of a call to the ledger, as the gateway's callers need to tell them apart: the chaincode
 * refused (its JSON error), the transaction was invalidated at commit, or the peer or orderers could not
 * be reached in time (the outcome may be unknown: then the transaction id is given).
 */
import * as grpc from '@grpc/grpc-js';
import { EndorseError, GatewayError } from '@hyperledger/fabric-gateway';
import { peer } from '@hyperledger/fabric-protos';

/** The chaincode's JSON error ({code, category, message, details}) as the peer returned it. */
export interface ChaincodeError {
  code: string;
  category?: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * Reads the chaincode's error out of a gateway error. Through fabric-gateway a failed endorsement says
 * only "failed to endorse transaction"; the chaincode's text is in details[].message.
 */
export function chaincodeError(e: unknown): ChaincodeError | undefined {
  if (e instanceof ChaincodeRejection) return e.error;
  const texts: string[] = [];
  if (e instanceof GatewayError || e instanceof EndorseError)
    for (const d of e.details) texts.push(d.message);
  if (e instanceof Error) texts.push(e.message);
  for (const t of texts) {
    const start = t.indexOf('{"');
    if (start < 0) continue;
    try {
      const parsed = JSON.parse(t.slice(start)) as Partial<ChaincodeError>;
      if (typeof parsed.code === 'string' && typeof parsed.message === 'string')
        return parsed as ChaincodeError;
    } catch {
      // not this detail
    }
  }
  return undefined;
}

/** The chaincode refused the transaction at endorsement (or a query): nothing was written. */
export class ChaincodeRejection extends Error {
  constructor(readonly error: ChaincodeError) {
    super(error.message);
    this.name = 'ChaincodeRejection';
  }
}

/** The transaction was ordered but committed invalid (e.g. an MVCC read conflict): nothing was written. */
export class TransactionInvalidated extends Error {
  constructor(
    readonly txId: string,
    readonly validationCode: string,
    readonly attempts: number,
  ) {
    super(`transaction ${txId} was invalidated at commit (${validationCode}) after ${attempts} attempt(s)`);
    this.name = 'TransactionInvalidated';
  }
}

/** The peer or the orderers did not answer in time. With a txId, the outcome is not known yet. */
export class LedgerUnavailable extends Error {
  constructor(
    message: string,
    readonly txId?: string,
    readonly timedOut = false,
  ) {
    super(message);
    this.name = 'LedgerUnavailable';
  }
}

/**
 * The endorsing peers answered differently ("ProposalResponsePayloads do not match"): one of them has not
 * committed a block the others have (a session batch in which one call's outcome depends on it). Nothing
 * was written; endorsed again a little later it agrees (ledger.ts, MAYBE_STALE).
 */
export class EndorsersDisagree extends LedgerUnavailable {
  constructor(txId?: string) {
    super('the endorsing peers answered differently (one is a block behind); retry', txId);
    this.name = 'EndorsersDisagree';
  }
}

const disagree = (e: unknown): boolean =>
  (e instanceof EndorseError || e instanceof GatewayError) &&
  e.details.some((d) => /ProposalResponsePayloads do not match/.test(d.message));

export const isGrpcCode = (e: unknown, code: grpc.status): boolean =>
  e instanceof GatewayError && e.code === code;

const CODE_NAMES = new Map(Object.entries(peer.TxValidationCode).map(([k, v]) => [v, k]));
/** TxValidationCode's name (e.g. MVCC_READ_CONFLICT) for a numeric code. */
export const validationCodeName = (code: number): string => CODE_NAMES.get(code) ?? `CODE_${code}`;

export const isReadConflict = (code: number): boolean =>
  code === peer.TxValidationCode.MVCC_READ_CONFLICT || code === peer.TxValidationCode.PHANTOM_READ_CONFLICT;

/** Turns a fabric-gateway error into one of ours (rethrows what it does not know). */
export function classify(e: unknown, txId?: string): Error {
  const cc = chaincodeError(e);
  if (cc) return new ChaincodeRejection(cc);
  // No transaction id: the proposal was never sent to the orderers, so its outcome is known (nothing).
  if (disagree(e)) return new EndorsersDisagree();
  if (isGrpcCode(e, grpc.status.DEADLINE_EXCEEDED))
    return new LedgerUnavailable('the ledger did not answer in time', txId, true);
  if (isGrpcCode(e, grpc.status.UNAVAILABLE))
    return new LedgerUnavailable(`the ledger is unavailable: ${(e as Error).message}`, txId);
  return e instanceof Error ? e : new Error(String(e));
}
