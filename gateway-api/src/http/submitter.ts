/**
 * Running a prepared call on the ledger and turning every outcome into one HTTP answer; with an
 * Idempotency-Key, the first outcome is kept and a retry (after a time-out, or after a gateway restart)
 * gets it again. A retry that finds a transaction endorsed but never resolved asks the ledger for it by
 * id (fabric/ledger.ts) instead of endorsing a new one: the same request never charges twice.
 */
import {
  ChaincodeRejection,
  LedgerUnavailable,
  TransactionInvalidated,
  isReadConflict,
  validationCodeName,
} from '../fabric/errors';
import { BATCHABLE, type BatchableTransaction } from '@evpay/chaincode/client';
import { SessionBatcher, type BatchOptions } from '../fabric/batcher';
import type { Committed, Endorsed, SubmitHooks } from '../fabric/ledger';
import { answerOf, type OrgLedger } from '../fabric/orgLedger';
import type { GatewayMetrics } from '../metrics';
import type { IdempotencyRecord, IdempotencyStore, StoredResponse } from '../store/idempotency';
import { ApiError, chaincodeStatus } from './problems';
import type { PreparedCall } from './transactions';

export interface Answer extends StoredResponse {
  /** True when the answer was the stored first outcome of an Idempotency-Key. */
  replayed?: boolean;
}

/** The HTTP answer of a ledger failure (ApiError for the gateway's own, the chaincode's code otherwise). */
export function failureAnswer(e: unknown): StoredResponse {
  if (e instanceof ApiError) return { status: e.status, body: e.body() };
  if (e instanceof ChaincodeRejection) {
    const { code, category, message, details } = e.error;
    return { status: chaincodeStatus(code, category), body: { code, message, details: details ?? {} } };
  }
  if (e instanceof TransactionInvalidated)
    return {
      status: 409,
      body: {
        code: 'TRANSACTION_INVALIDATED',
        message: e.message,
        details: { txId: e.txId, validationCode: e.validationCode, attempts: e.attempts },
      },
    };
  if (e instanceof LedgerUnavailable)
    return e.txId
      ? {
          status: 504,
          body: {
            code: 'OUTCOME_UNKNOWN',
            message: `${e.message}; retry with the same Idempotency-Key to learn the outcome`,
            details: { txId: e.txId },
          },
        }
      : { status: 503, body: { code: 'LEDGER_UNAVAILABLE', message: e.message, details: {} } };
  throw e;
}

const committedAnswer = (c: { txId: string; blockNumber: bigint; result: Uint8Array }): StoredResponse => ({
  status: 200,
  body: { txId: c.txId, blockNumber: Number(c.blockNumber), result: answerOf<unknown>(c.result) },
});

/** Whether an answer is the final outcome (kept for the key) or may change on retry (5xx). */
const isFinal = (a: StoredResponse): boolean => a.status < 500;

export class Submitter {
  /** Requests running in this process, by credential and key: a concurrent retry waits for the first. */
  private readonly inflight = new Map<string, Promise<Answer>>();

  /** Session calls under load go together (fabric/batcher.ts); absent when batching is off. */
  private readonly batcher?: SessionBatcher;

  constructor(
    private readonly ledger: OrgLedger,
    private readonly store: IdempotencyStore,
    private readonly metrics: GatewayMetrics,
    batch?: BatchOptions,
  ) {
    if (batch && batch.maxInFlight > 0)
      this.batcher = new SessionBatcher(ledger, batch, {
        onBatch: (n) => metrics.batchCalls.observe(n),
        onStaleRetry: () => metrics.retries.inc({ kind: 'stale-endorser' }),
      });
  }

  private submitCall(call: PreparedCall, hooks: SubmitHooks): Promise<Committed> {
    const tx = call.tx as BatchableTransaction;
    return this.batcher && BATCHABLE.includes(tx)
      ? this.batcher.submit(call.identity, tx, call.args, hooks)
      : this.ledger.submit(call.identity, call.tx, call.args, hooks);
  }

  async evaluate(call: PreparedCall): Promise<Answer> {
    const end = this.metrics.evaluateLatency.startTimer({ tx: call.tx });
    try {
      return {
        status: 200,
        body: answerOf<unknown>(await this.ledger.evaluate(call.identity, call.tx, call.args)),
      };
    } catch (e) {
      return failureAnswer(e);
    } finally {
      end();
    }
  }

  private async run(call: PreparedCall, onEndorsed?: (e: Endorsed) => Promise<void>): Promise<Answer> {
    const end = this.metrics.submitLatency.startTimer({ tx: call.tx });
    try {
      const c: Committed = await this.submitCall(call, {
        onEndorsed,
        onStaleRetry: () => this.metrics.retries.inc({ kind: 'stale-endorser' }),
        onConflict: () => {
          this.metrics.mvccConflicts.inc({ tx: call.tx });
          this.metrics.retries.inc({ kind: 'mvcc' });
        },
      });
      end({ outcome: 'committed' });
      return committedAnswer(c);
    } catch (e) {
      const a = failureAnswer(e);
      end({ outcome: String(a.status) });
      return a;
    }
  }

  /** Submits without an Idempotency-Key. */
  submit(call: PreparedCall): Promise<Answer> {
    return this.run(call);
  }

  /** Submits under an Idempotency-Key of a credential (see the module comment). */
  async submitOnce(call: PreparedCall, credentialId: string, key: string, digest: string): Promise<Answer> {
    const slot = `${credentialId}\u0000${key}`;
    const running = this.inflight.get(slot);
    if (running) {
      const a = await running;
      return { ...a, replayed: true };
    }
    const p = this.once(call, credentialId, key, digest).finally(() => this.inflight.delete(slot));
    this.inflight.set(slot, p);
    return p;
  }

  private async once(call: PreparedCall, credentialId: string, key: string, digest: string): Promise<Answer> {
    const found = await this.store.get(credentialId, key);
    if (found && found.requestHash !== digest)
      throw new ApiError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for a different request', {
        idempotencyKey: key,
      });
    if (found?.response) {
      this.metrics.retries.inc({ kind: 'replay' });
      return { ...found.response, replayed: true };
    }
    const record: IdempotencyRecord = found ?? {
      requestHash: digest,
      createdAt: Date.now(),
      identity: call.identity,
    };
    const save = (r: IdempotencyRecord): Promise<void> => this.store.put(credentialId, key, r);
    if (found?.txId && found.txBytes && found.txResult) {
      // Endorsed before, outcome never learned: ask for it by id.
      this.metrics.retries.inc({ kind: 'resolve' });
      const endorsed: Endorsed = {
        txId: found.txId,
        bytes: Buffer.from(found.txBytes, 'base64'),
        result: Buffer.from(found.txResult, 'base64'),
      };
      let answer: Answer | undefined;
      try {
        const status = await this.ledger.resolve(found.identity, endorsed);
        if (status.successful) answer = committedAnswer({ ...endorsed, blockNumber: status.blockNumber });
        else if (!isReadConflict(status.code))
          answer = failureAnswer(new TransactionInvalidated(found.txId, validationCodeName(status.code), 1));
        // A read conflict: that transaction wrote nothing, so the request is run again below.
      } catch (e) {
        return failureAnswer(e);
      }
      if (answer) {
        await save({ ...record, response: answer });
        return { ...answer, replayed: true };
      }
    } else if (!found) {
      await save(record);
    }
    const answer = await this.run(call, (e) =>
      save({
        ...record,
        identity: call.identity,
        txId: e.txId,
        txBytes: Buffer.from(e.bytes).toString('base64'),
        txResult: Buffer.from(e.result).toString('base64'),
      }),
    );
    if (isFinal(answer)) await save({ ...record, response: answer });
    else if (!answer.body || (answer.body as { code?: string }).code !== 'OUTCOME_UNKNOWN')
      await this.store.delete(credentialId, key); // nothing was sent: a retry starts afresh
    return answer;
  }
}
