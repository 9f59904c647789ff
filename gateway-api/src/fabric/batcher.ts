/**
 * Session calls (StartSession, StopSession, RecordReading) sent together. Most of a transaction's cost
 * on the network is Fabric's own, paid once per transaction (signatures, ordering, validation and commit
 * on every peer), so the calls that arrive while this gateway already has `maxInFlight` transactions of
 * the same identity in flight wait for one to finish and then go as one SessionBatch transaction
 * (chaincode domain/batch.ts, BATCH RULE). A call that finds a free slot goes at once, as the plain
 * transaction: an idle gateway adds no latency and no batch.
 *
 * Each call learns its own outcome: its result (committed with the batch), or its own refusal. A
 * refusal a peer a block behind may give (MAYBE_STALE) is queued again until `staleRetryMs` has passed,
 * as for a transaction of its own. Only a call that stood in the endorsement reaches `onEndorsed` (the
 * idempotency store): a refused one writes nothing. If the batch as a whole is refused by the chaincode,
 * or its endorsers still disagree when staleRetryMs has passed, each call is sent alone, so one call
 * never fails the others.
 */
import { MAX_BATCH_CALLS, type BatchableTransaction } from '@evpay/chaincode/client';
import { ChaincodeRejection, EndorsersDisagree, type ChaincodeError } from './errors';
import { isStaleRefusal, type Committed, type SubmitHooks } from './ledger';
import { answerOf, type IdentityKind, type OrgLedger } from './orgLedger';

export interface BatchOptions {
  /** Transactions of one identity in flight before calls are held for a batch. */
  maxInFlight: number;
  /** Calls in one batch (at most the chaincode's MAX_BATCH_CALLS). */
  maxCalls: number;
  /** How long a call refused as a lagging peer would refuse it is queued again (as ledger.ts does). */
  staleRetryMs: number;
}

export interface BatchHooks {
  /** A batch of `calls` calls was sent. */
  onBatch?(calls: number): void;
  onStaleRetry?(code: string): void;
}

interface Pending {
  tx: BatchableTransaction;
  /** The call's one JSON argument, as the plain transaction takes it. */
  arg: string;
  hooks: SubmitHooks;
  deadline: number;
  resolve(c: Committed): void;
  reject(e: unknown): void;
}

type CallResult = { ok: true; result: unknown } | { ok: false; error: ChaincodeError };

const encoder = new TextEncoder();
/** A call's own answer as the chaincode would have answered it alone (JSON of its result). */
const answerBytes = (result: unknown): Uint8Array => encoder.encode(JSON.stringify(result));

export class SessionBatcher {
  private readonly queues: Record<IdentityKind, Pending[]> = { client: [], admin: [] };
  private readonly inFlight: Record<IdentityKind, number> = { client: 0, admin: 0 };

  constructor(
    private readonly ledger: Pick<OrgLedger, 'submit'>,
    private readonly opts: BatchOptions,
    private readonly hooks: BatchHooks = {},
  ) {}

  /** Runs one session call, alone or in a batch; resolves as submitRaw would for the call alone. */
  submit(as: IdentityKind, tx: BatchableTransaction, args: string[], hooks: SubmitHooks): Promise<Committed> {
    const [arg] = args;
    if (args.length !== 1 || arg === undefined)
      return Promise.reject(new Error(`${tx} takes one argument, not ${args.length}`));
    return new Promise<Committed>((resolve, reject) => {
      this.queues[as].push({
        tx,
        arg,
        hooks,
        deadline: Date.now() + this.opts.staleRetryMs,
        resolve,
        reject,
      });
      this.pump(as);
    });
  }

  private pump(as: IdentityKind): void {
    const queue = this.queues[as];
    while (queue.length > 0 && this.inFlight[as] < this.opts.maxInFlight) {
      const calls = queue.splice(0, Math.min(this.opts.maxCalls, MAX_BATCH_CALLS));
      this.inFlight[as] += 1;
      void this.send(as, calls).finally(() => {
        this.inFlight[as] -= 1;
        this.pump(as);
      });
    }
  }

  private async send(as: IdentityKind, calls: Pending[]): Promise<void> {
    const [only] = calls;
    if (calls.length === 1 && only) return this.alone(as, only);
    this.hooks.onBatch?.(calls.length);
    const arg = JSON.stringify({
      calls: calls.map((c) => ({ tx: c.tx, args: JSON.parse(c.arg) as unknown })),
    });
    let committed: Committed;
    try {
      committed = await this.ledger.submit(as, 'SessionBatch', [arg], {
        onEndorsed: async (e) => {
          const results = this.resultsOf(e.result, calls.length);
          for (const [i, c] of calls.entries()) {
            const r = results[i];
            if (r?.ok && c.hooks.onEndorsed)
              await c.hooks.onEndorsed({ txId: e.txId, bytes: e.bytes, result: answerBytes(r.result) });
          }
        },
        onStaleRetry: (code) => this.hooks.onStaleRetry?.(code),
        onConflict: (txId, code) => calls.forEach((c) => c.hooks.onConflict?.(txId, code)),
      });
    } catch (e) {
      // Refused as a whole (never expected: each call was checked with its own schema), or the endorsers
      // still disagree after staleRetryMs (one call depends on a block a peer lacks): each goes alone,
      // so the others are not held back by it and each gets its own answer.
      if (e instanceof ChaincodeRejection || e instanceof EndorsersDisagree)
        await Promise.all(calls.map((c) => this.alone(as, c)));
      else calls.forEach((c) => c.reject(e));
      return;
    }
    const results = this.resultsOf(committed.result, calls.length);
    for (const [i, c] of calls.entries()) {
      const r = results[i]!;
      if (r.ok) {
        c.resolve({ ...committed, result: answerBytes(r.result) });
        continue;
      }
      const refusal = new ChaincodeRejection(r.error);
      if (isStaleRefusal(refusal) && Date.now() < c.deadline) {
        this.hooks.onStaleRetry?.(r.error.code);
        // Back in the queue after a short wait, as ledger.ts waits before endorsing again.
        setTimeout(() => {
          this.queues[as].push(c);
          this.pump(as);
        }, 100);
      } else c.reject(refusal);
    }
  }

  /** One call as its plain transaction (ledger.ts retries its stale refusals itself). */
  private async alone(as: IdentityKind, c: Pending): Promise<void> {
    try {
      c.resolve(await this.ledger.submit(as, c.tx, [c.arg], c.hooks));
    } catch (e) {
      c.reject(e);
    }
  }

  private resultsOf(bytes: Uint8Array, n: number): CallResult[] {
    const answer = answerOf<{ results?: CallResult[] }>(bytes);
    if (!Array.isArray(answer?.results) || answer.results.length !== n)
      throw new Error(`a SessionBatch of ${n} calls answered ${JSON.stringify(answer).slice(0, 200)}`);
    return answer.results;
  }
}
