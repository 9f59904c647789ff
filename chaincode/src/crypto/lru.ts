/**
 * The bounded least-recently-used maps behind the chaincode's speed-only caches (SM2 key tables,
 * certificate public keys, callers' roles): a Map keeps insertion order, so the first key is the least
 * recently used once every use moves its key to the end.
 */

/** Puts `key` last (most recently used) with `value`, dropping the least recently used beyond `capacity`. */
export function touch<V>(m: Map<string, V>, key: string, value: V, capacity: number): void {
  m.delete(key);
  m.set(key, value);
  if (m.size > capacity) m.delete(m.keys().next().value as string);
}
