/**
 * A JSON body that names a member twice in one object is refused (400 DUPLICATE_JSON_KEY). JSON.parse
 * keeps the last one silently, another reader in front of the gateway (a proxy, a log, an auditor's
 * tool) may keep the first, so the one body would say two things; RFC 7493 (I-JSON) forbids it. Names are
 * compared as JSON.parse sees them, after their escapes (`"a"` and `"\u0061"` are one name).
 */
import { visit } from 'jsonc-parser';

export interface DuplicateKey {
  key: string;
  /** Where the object holding it sits in the body (member names and array indexes). */
  path: Array<string | number>;
}

/** The first member name that appears twice in one object of `text`, if any. */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const open: Array<Set<string>> = [];
  let found: DuplicateKey | undefined;
  visit(text, {
    onObjectBegin: () => void open.push(new Set()),
    onObjectEnd: () => void open.pop(),
    onObjectProperty: (key, _offset, _length, _line, _column, pathSupplier) => {
      const names = open.at(-1);
      if (!names || found) return;
      if (names.has(key)) found = { key, path: pathSupplier() };
      names.add(key);
    },
  });
  return found;
}
