/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, integers only. Used for stored values
 * (identical bytes on every endorsing peer) and for audit digests (an auditor recomputes them offline).
 * A non-integer number is refused: amounts are fen and Wh, never floats.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isSafeInteger(value)) throw new Error(`canonicalJson: non-integer number ${value}`);
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v)).join(',') + ']';
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((key) => obj[key] !== undefined)
        .sort();
      return '{' + keys.map((key) => JSON.stringify(key) + ':' + canonicalJson(obj[key])).join(',') + '}';
    }
    default:
      throw new Error(`canonicalJson: unsupported ${typeof value}`);
  }
}
