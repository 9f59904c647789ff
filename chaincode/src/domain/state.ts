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
