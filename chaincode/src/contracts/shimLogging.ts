/**
 * fabric-shim and fabric-contract-api log through winston, which runs every message through its format
 * pipeline (timestamp, colours, printf of util.format'ed text) and only then lets the transport drop what
 * is below the logger's level. The shim logs a debug line for nearly every message it exchanges with the
 * peer, so in a profile of this chaincode under load (bench, issue 11) about 13 % of its CPU went into
 * formatting debug lines nobody reads. This drops a message before the pipeline when the logger's own
 * level would drop it after: what is logged does not change, only what it costs. Logging only: no rule
 * and no endorsement result depends on it.
 */
import { createRequire } from 'node:module';

interface WinstonLogger {
  level: string;
  levels: Record<string, number>;
  write(info: unknown, ...rest: unknown[]): boolean;
}
interface Winston {
  Logger: { prototype: WinstonLogger };
}

const LEVEL = Symbol.for('level');
const patched = new WeakSet<object>();

/** The winston each library resolves (usually one, deduplicated), patched once. */
export function dropBelowLevelEarly(
  libraries: readonly string[] = ['fabric-shim', 'fabric-contract-api'],
): number {
  let count = 0;
  for (const lib of libraries) {
    let winston: Winston;
    try {
      winston = createRequire(require.resolve(lib))('winston') as Winston;
    } catch {
      continue; // not installed beside this library: nothing to patch
    }
    const proto = winston.Logger.prototype;
    if (patched.has(proto)) continue;
    const write = proto.write;
    proto.write = function (this: WinstonLogger, info: unknown, ...rest: unknown[]): boolean {
      const i = info as { level?: string; [LEVEL]?: string } | undefined;
      const level = i?.[LEVEL] ?? i?.level;
      const rank = level === undefined ? undefined : this.levels[level];
      const limit = this.levels[this.level];
      if (rank !== undefined && limit !== undefined && rank > limit) return true;
      return write.call(this, info, ...rest);
    };
    patched.add(proto);
    count += 1;
  }
  return count;
}
