/** Typed JSON access to the world state. Values are canonical JSON so every peer writes the same bytes. */
import { canonicalJson } from './canonical';
import type { StateStore, TxContext } from './context';
import { prefixRange } from './keys';

const enc = new TextEncoder();
const dec = new TextDecoder();

export async function getJson<T>(store: StateStore, key: string): Promise<T | undefined> {
  const raw = await store.get(key);
  if (raw === undefined || raw.length === 0) return undefined;
  return JSON.parse(dec.decode(raw)) as T;
}

export async function putJson(store: StateStore, key: string, value: unknown): Promise<void> {
  await store.put(key, enc.encode(canonicalJson(value)));
}

export async function exists(store: StateStore, key: string): Promise<boolean> {
  const raw = await store.get(key);
  return raw !== undefined && raw.length > 0;
}

/**
 * A store that asks the peer for each key once per transaction. Safe because a Fabric read never sees
 * the transaction's own writes: the first answer is the answer for the whole transaction.
 */
export function withReadCache(store: StateStore): StateStore {
  const seen = new Map<string, Promise<Uint8Array | undefined>>();
  return {
    get: (key) => {
      let v = seen.get(key);
      if (!v) seen.set(key, (v = store.get(key)));
      return v;
    },
    put: (key, value) => store.put(key, value),
    del: (key) => store.del(key),
    range: (start, end) => store.range(start, end),
  };
}

/** Values under keys in [start, end), in key order, at most `limit`. */
export async function rangeJson<T>(
  store: StateStore,
  start: string,
  end: string,
  limit = Number.MAX_SAFE_INTEGER,
): Promise<Array<{ key: string; value: T }>> {
  const out: Array<{ key: string; value: T }> = [];
  if (limit <= 0) return out;
  for await (const kv of store.range(start, end)) {
    out.push({ key: kv.key, value: JSON.parse(dec.decode(kv.value)) as T });
    if (out.length >= limit) break;
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
