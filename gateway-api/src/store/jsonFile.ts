/**
 * A small JSON document in the gateway's data dir, replaced atomically: written to a temporary file,
 * flushed to disk, then renamed over the old one, so a crash or a kill mid-write leaves the previous
 * version whole and never half a file. For state that must survive a gateway restart but is too small
 * to need a database (the chargers, the OCPP transactions).
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import type { z } from 'zod';

/** The file's content checked with `schema`, or `empty` when there is no file yet. */
export function readJsonFile<S extends z.ZodTypeAny>(
  file: string,
  schema: S,
  empty: z.output<S>,
): z.output<S> {
  if (!existsSync(file)) return empty;
  return schema.parse(JSON.parse(readFileSync(file, 'utf8'))) as z.output<S>;
}

export function writeJsonFileAtomic(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(value, null, 1) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
