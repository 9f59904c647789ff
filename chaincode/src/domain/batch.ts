/**
 * Session batches: several session calls (StartSession, StopSession, RecordReading) in one transaction.
 * A session is two transactions, and on a small network most of a transaction's cost is Fabric's own
 * and paid per transaction whatever it does (proposal and endorsement signatures, ordering, block
 * validation and commit on every peer). A gateway under load puts the session calls that arrive while
 * its previous transaction is in flight into one batch and pays that cost once for all of them.
 *
 * BATCH RULE (written once): the calls run in order, each exactly as it would run alone (its own
 * argument checks, access rules and signatures), except that it sees the world state as committed plus
 * the writes of the calls before it in the batch that succeeded; like a transaction of its own, it never
 * sees its own writes. A call a rule refuses writes nothing, and its error is its answer; the others
 * stand. An error that is not a rule's (a bug, a peer failure) fails the whole batch. The batch's
 * transaction commits or is invalidated as a whole, so a read conflict retries every call in it.
 */
import { z } from 'zod';
import type { KV, StateStore, TxContext } from './context';
import { DomainError } from './errors';
import { recordReading, recordSchema, startSchema, startSession, stopSchema, stopSession } from './sessions';
import type { Session } from './sessions';
import { continueIndex } from './txindex';
import { parse } from './validate';

/** At most this many calls in one batch: bounds the transaction's size and time. */
export const MAX_BATCH_CALLS = 50;

const RUNNERS = {
  StartSession: startSession,
  StopSession: stopSession,
  RecordReading: recordReading,
} as const satisfies Record<string, (ctx: TxContext, input: unknown) => Promise<Session>>;
export type BatchableTransaction = keyof typeof RUNNERS;
export const BATCHABLE: readonly BatchableTransaction[] = Object.keys(RUNNERS) as BatchableTransaction[];

export const batchSchema = z
  .object({
    calls: z
      .array(
        z.discriminatedUnion('tx', [
          z.object({ tx: z.literal('StartSession'), args: startSchema }).strict(),
          z.object({ tx: z.literal('StopSession'), args: stopSchema }).strict(),
          z.object({ tx: z.literal('RecordReading'), args: recordSchema }).strict(),
        ]),
      )
      .min(1)
      .max(MAX_BATCH_CALLS),
  })
  .strict();

export type BatchCallResult =
  { ok: true; result: Session } | { ok: false; error: ReturnType<DomainError['toJSON']> };
export interface BatchResult {
  results: BatchCallResult[];
}

type Writes = Map<string, Uint8Array | null>;

/** Keys compare as the peer's LevelDB orders them: by their UTF-8 bytes. */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * What one call of the batch sees (BATCH RULE): `done` (the writes of the calls before it that
 * succeeded) over the transaction's own store; its writes go to `own`, which its reads never see.
 */
export function batchCallStore(base: StateStore, done: Writes, own: Writes): StateStore {
  return {
    get: async (key) => (done.has(key) ? (done.get(key) ?? undefined) : base.get(key)),
    prefetch: (keys) => base.prefetch?.(keys.filter((k) => !done.has(k))),
    put: async (key, value) => void own.set(key, value),
    del: async (key) => void own.set(key, null),
    range: (start, end) =>
      (async function* (): AsyncGenerator<KV> {
        const inRange = (k: string): boolean =>
          byteCompare(k, start) >= 0 && (end === '' || byteCompare(k, end) < 0);
        const extra = [...done.keys()].filter(inRange).sort(byteCompare);
        let i = 0;
        const pending = function* (below?: string): Generator<KV> {
          for (; i < extra.length && (below === undefined || byteCompare(extra[i]!, below) < 0); i++) {
            const value = done.get(extra[i]!);
            if (value) yield { key: extra[i]!, value };
          }
        };
        for await (const kv of base.range(start, end)) {
          yield* pending(kv.key);
          if (i < extra.length && extra[i] === kv.key) {
            const value = done.get(kv.key);
            i++;
            if (value) yield { key: kv.key, value };
            continue;
          }
          yield kv;
        }
        yield* pending();
      })(),
  };
}

/** Runs a batch of session calls (BATCH RULE); the answer has one result per call, in order. */
export async function runSessionBatch(ctx: TxContext, input: unknown): Promise<BatchResult> {
  const { calls } = parse(batchSchema, input, 'batch');
  const done: Writes = new Map();
  const results: BatchCallResult[] = [];
  for (const call of calls) {
    const own: Writes = new Map();
    const part: TxContext = { ...ctx, store: batchCallStore(ctx.store, done, own), events: [] };
    continueIndex(part, ctx);
    try {
      const result = await RUNNERS[call.tx](part, call.args);
      for (const [key, value] of own) done.set(key, value);
      ctx.events.push(...part.events);
      results.push({ ok: true, result });
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      results.push({ ok: false, error: e.toJSON() });
    }
  }
  for (const key of [...done.keys()].sort(byteCompare)) {
    const value = done.get(key);
    if (value) await ctx.store.put(key, value);
    else await ctx.store.del(key);
  }
  return { results };
}
