/**
 * Submitting and evaluating the evpay contract's transactions so that a caller always learns the true
 * outcome. A transaction is endorsed, its signed bytes and id handed to `onEndorsed` (the idempotency
 * store keeps them) before anything is sent, then ordered and waited for by id. When the orderers do not
 * take it cleanly (UNAVAILABLE, "request already processed", a time-out) its outcome is unknown: it is
 * resolved by its transaction id, sending the *same* signed transaction again meanwhile (one id commits
 * at most once), never by endorsing a new one. Only a transaction the peers invalidated for a read
 * conflict is endorsed anew, a bounded number of times.
 */
import * as grpc from '@grpc/grpc-js';
import type { Commit, Status } from '@hyperledger/fabric-gateway';
import { gateway as gatewayProto, msp } from '@hyperledger/fabric-protos';
import type { FabricConnection } from './connection';
import {
  ChaincodeRejection,
  classify,
  EndorsersDisagree,
  isGrpcCode,
  isReadConflict,
  LedgerUnavailable,
  TransactionInvalidated,
  validationCodeName,
} from './errors';

export interface Endorsed {
  txId: string;
  /** The endorsed transaction (Transaction.getBytes()), ready to send to the orderers again. */
  bytes: Uint8Array;
  /** The chaincode's answer in the endorsement (canonical JSON). */
  result: Uint8Array;
}

export interface Committed {
  txId: string;
  blockNumber: bigint;
  result: Uint8Array;
  /** Endorsements made (more than 1 after read conflicts). */
  attempts: number;
}

export interface SubmitHooks {
  /** Called with every endorsed transaction before it is sent (persist it to resume after a crash). */
  onEndorsed?(e: Endorsed): Promise<void> | void;
  /** Called when a refusal that may come from a lagging peer is endorsed again. */
  onStaleRetry?(code: string): void;
  /** Called when an endorsed transaction was invalidated for a read conflict and is retried. */
  onConflict?(txId: string, code: string): void;
}

/** A signed request for a transaction's commit status, sent to our own peer. */
export function commitOf(conn: FabricConnection, txId: string): Commit {
  const identity = new msp.SerializedIdentity();
  identity.setMspid(conn.mspId);
  identity.setIdBytes(conn.identity.credentials);
  const req = new gatewayProto.CommitStatusRequest();
  req.setTransactionId(txId);
  req.setChannelId(conn.network.getName());
  req.setIdentity(identity.serializeBinary());
  const signed = new gatewayProto.SignedCommitStatusRequest();
  signed.setRequest(req.serializeBinary()); // signed by the gateway on first use
  return conn.gateway.newCommit(signed.serializeBinary());
}

/**
 * Waits for the commit status of a transaction already endorsed (its signed bytes at hand), sending it
 * to the orderers again every few seconds while its outcome is unknown. Fails with LedgerUnavailable
 * (carrying the txId) when `limitMs` passes without an answer.
 */
export async function resolveByTxId(
  conn: FabricConnection,
  e: Endorsed,
  limitMs: number,
  sendFirst: boolean,
): Promise<Status> {
  const deadline = Date.now() + limitMs;
  const resend = (): Promise<unknown> =>
    conn.gateway
      .newTransaction(e.bytes) // signed again by our signer if need be; the id stays the same
      .submit()
      .catch(() => undefined);
  if (sendFirst) await resend();
  const commit = commitOf(conn, e.txId);
  for (;;) {
    try {
      return await commit.getStatus({ deadline: Math.min(deadline, Date.now() + 3_000) });
    } catch (err) {
      const retriable =
        isGrpcCode(err, grpc.status.DEADLINE_EXCEEDED) || isGrpcCode(err, grpc.status.UNAVAILABLE);
      if (!retriable) throw classify(err, e.txId);
      if (Date.now() >= deadline)
        throw new LedgerUnavailable(`the outcome of transaction ${e.txId} is not known yet`, e.txId, true);
      await resend();
    }
  }
}

/** Evaluates a query on our peer; answers the canonical JSON bytes. */
export async function evaluateRaw(conn: FabricConnection, name: string, args: string[]): Promise<Uint8Array> {
  try {
    return await conn.contract.evaluate(name, { arguments: args });
  } catch (e) {
    throw classify(e);
  }
}

/**
 * Refusals that a peer one block behind gives for a request that depends on the block before (the pile's
 * last session settled, the wallet just opened or topped up). This gateway answers once its own peer has
 * committed a transaction, and the next request may be endorsed by another organization's peer that has
 * not yet: such a refusal is endorsed again for a short while before it is believed.
 */
const MAYBE_STALE = new Set([
  'SESSION_NOT_FOUND',
  'PILE_NOT_FOUND',
  'PILE_BUSY',
  'WALLET_NOT_FOUND',
  'INSUFFICIENT_FUNDS',
  'INSUFFICIENT_BEANS',
  'ENVELOPE_NOT_FOUND',
  'PROPOSAL_NOT_FOUND',
  'MARGIN_NOT_DECLARED',
  'MARGIN_NOT_PAID',
]);
export const isStaleRefusal = (e: unknown): boolean =>
  (e instanceof ChaincodeRejection && MAYBE_STALE.has(e.error.code)) || e instanceof EndorsersDisagree;

/** Endorses one proposal (chaincode refusals surface as ChaincodeRejection). */
async function endorse(
  conn: FabricConnection,
  name: string,
  args: string[],
  transient?: Record<string, Uint8Array>,
) {
  try {
    return await conn.contract
      .newProposal(name, { arguments: args, ...(transient ? { transientData: transient } : {}) })
      .endorse();
  } catch (e) {
    throw classify(e);
  }
}

/** Endorses, endorsing again while a refusal may come from a peer a block behind (MAYBE_STALE). */
async function endorseFresh(
  conn: FabricConnection,
  name: string,
  args: string[],
  opts: { transient?: Record<string, Uint8Array>; staleRetryMs?: number },
  hooks: SubmitHooks,
) {
  const deadline = Date.now() + (opts.staleRetryMs ?? 0);
  for (let wait = 50; ; wait = Math.min(wait * 2, 400)) {
    try {
      return await endorse(conn, name, args, opts.transient);
    } catch (e) {
      if (!isStaleRefusal(e) || Date.now() + wait > deadline) throw e;
      hooks.onStaleRetry?.(e instanceof ChaincodeRejection ? e.error.code : 'PAYLOADS_DIFFER');
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Endorses, orders and waits for the commit; see the module comment for what happens on failures. */
export async function submitRaw(
  conn: FabricConnection,
  name: string,
  args: string[],
  opts: {
    mvccRetries: number;
    commitMs: number;
    transient?: Record<string, Uint8Array>;
    staleRetryMs?: number;
  },
  hooks: SubmitHooks = {},
): Promise<Committed> {
  for (let attempt = 1; ; attempt++) {
    const tx = await endorseFresh(conn, name, args, opts, hooks);
    const endorsed: Endorsed = { txId: tx.getTransactionId(), bytes: tx.getBytes(), result: tx.getResult() };
    await hooks.onEndorsed?.(endorsed);
    let status: Status;
    try {
      status = await (await tx.submit()).getStatus();
    } catch (e) {
      const c = classify(e, endorsed.txId);
      // The orderers may hold it: wait for its status by id instead of endorsing another.
      const unknown = c instanceof LedgerUnavailable || /already processed|already exists/i.test(c.message);
      if (!unknown) throw c;
      status = await resolveByTxId(conn, endorsed, opts.commitMs, false);
    }
    if (status.successful)
      return {
        txId: endorsed.txId,
        blockNumber: status.blockNumber,
        result: endorsed.result,
        attempts: attempt,
      };
    const code = validationCodeName(status.code);
    if (!isReadConflict(status.code) || attempt > opts.mvccRetries)
      throw new TransactionInvalidated(endorsed.txId, code, attempt);
    hooks.onConflict?.(endorsed.txId, code);
  }
}
