/** Typed JSON access to the world state. Values are canonical JSON so every peer writes the same bytes. */
import { canonicalJson } from './canonical';
import type { KV, StateStore, TxContext } from './context';
import { prefixRange } from './keys';

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * The value under a key, typed by the caller, not checked. Deliberately: state is written only by this
 * chaincode, through putJson, from values the domain typed and validated (arguments through the zod
 * schemas of domain/api.ts), so a read gives back what a rule wrote; a schema check on every read would
 * need a second, drifting description of every record and would run on every read of the hot path.
 * Untrusted JSON (transaction arguments) goes through validate.ts instead.
 */
export async function getJson<T>(store: StateStore, key: string): Promise<T | undefined> {
  const raw = await store.get(key);
  if (raw === undefined || raw.length === 0) return undefined;
  return JSON.parse(dec.decode(raw)) as T;
}

export async function putJson(store: StateStore, key: string, value: unknown): Promise<void> {
  await store.put(key, enc.encode(canonicalJson(value)));
}

/**
 * PREFETCH RULE: a rule may name, before it reads them, keys it reads on every path that can succeed;
 * the read cache then asks the peer for all of them in one message (GET_STATE_MULTIPLE) instead of one
 * message a key. Only such keys: a prefetched key joins the transaction's read set like any read, so a
 * key the rule would not have read could make it conflict with a write it never depended on. A failed
 * transaction's read set does not matter (it is never ordered); a call refused inside a session batch
 * (batch.ts) leaves its reads, prefetched ones too, in the batch's read set, which can at worst make that
 * batch retry on a read conflict. Checked by chaincode/test/prefetch.test.ts.
 */
export function prefetch(store: StateStore, keys: readonly string[]): void {
  store.prefetch?.(keys);
}

export async function exists(store: StateStore, key: string): Promise<boolean> {
  const raw = await store.get(key);
  return raw !== undefined && raw.length > 0;
}

/**
 * A store that asks the peer for each key, and each range read to its end, once per transaction. Safe
 * because a Fabric read never sees the transaction's own writes: the first answer is the answer for the
 * whole transaction. A range is kept only when it was read to its end (a reader that stopped early
 * leaves nothing), so a repeat answers exactly what the peer would; the peer re-runs every range query of
 * a transaction on every peer at commit (phantom check), so the calls of a session batch that each read
 * the tariff and parameter versions make it run once.
 */
export function withReadCache(store: StateStore): StateStore {
  const seen = new Map<string, Promise<Uint8Array | undefined>>();
  const ranges = new Map<string, KV[]>();
  return {
    get: (key) => {
      let v = seen.get(key);
      if (!v) seen.set(key, (v = store.get(key)));
      return v;
    },
    prefetch: (keys) => {
      const getMany = store.getMany?.bind(store);
      const missing = [...new Set(keys)].filter((k) => !seen.has(k));
      if (!getMany || missing.length < 2) return;
      const all = getMany(missing);
      missing.forEach((k, i) => {
        const v = all.then((values) => values[i]);
        // A prefetched key the rule ends up not reading (it failed first) must not leave an unhandled
        // rejection behind; a key it does read gets the error from its own await.
        v.catch(() => undefined);
        seen.set(k, v);
      });
    },
    put: (key, value) => store.put(key, value),
    del: (key) => store.del(key),
    range: (start, end) => {
      const id = JSON.stringify([start, end]);
      const kept = ranges.get(id);
      if (kept)
        return (async function* (): AsyncGenerator<KV> {
          yield* kept;
        })();
      return (async function* (): AsyncGenerator<KV> {
        const read: KV[] = [];
        for await (const kv of store.range(start, end)) {
          read.push(kv);
          yield kv;
        }
        ranges.set(id, read);
      })();
    },
  };
}

/**
 * Most keys taken from one range query. A peer ends a query after its totalQueryLimit results (100,000
 * by default) as if the range were exhausted, with no error, so one query over a longer range would
 * silently drop the rest. Reading in chunks well below that limit, each chunk its own query starting
 * just after the last key read, gets the whole range; each query stays under Fabric's phantom check up
 * to its last key, so together they cover it all.
 */
export const RANGE_CHUNK = 10_000;

/** Values under keys in [start, end), in key order, at most `limit` (typed, not checked: see getJson). */
export async function rangeJson<T>(
  store: StateStore,
  start: string,
  end: string,
  limit = Number.MAX_SAFE_INTEGER,
): Promise<Array<{ key: string; value: T }>> {
  const out: Array<{ key: string; value: T }> = [];
  let from = start;
  while (out.length < limit) {
    let taken = 0;
    for await (const kv of store.range(from, end)) {
      out.push({ key: kv.key, value: JSON.parse(dec.decode(kv.value)) as T });
      taken += 1;
      if (out.length >= limit || taken >= RANGE_CHUNK) break;
    }
    if (taken < RANGE_CHUNK) break;
    from = out[out.length - 1]!.key + '\u0000'; // the smallest key after the last one read
  }
  return out;
}

export async function listJson<T>(
  store: StateStore,
  prefix: string,
  limit = Number.MAX_SAFE_INTEGER,
): Promise<Array<{ key: string; value: T }>> {
  const [start, end] = prefixRange(prefix);
  return rangeJson<T>(store, start, end, limit);
}

export function emit(ctx: TxContext, name: string, payload: Record<string, unknown>): void {
  ctx.events.push({ name, payload });
}
