/** Strict parsers for CLI option values: a typo is an error with the option's name, never a silent NaN. */
import { InvalidArgumentError } from 'commander';
import type { ZodType } from 'zod';

export function wholeNumber(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

export function positiveNumber(value: string): number {
  const n = wholeNumber(value);
  if (n === 0) throw new InvalidArgumentError('expected a number above 0');
  return n;
}

/** "now", "+SECONDS" (from now) or Unix seconds. */
export function timeArg(now: () => number): (value: string) => number {
  return (value: string) => {
    if (value === 'now') return now();
    if (/^\+\d{1,9}$/.test(value)) return now() + Number(value.slice(1));
    if (/^\d{9,12}$/.test(value)) return Number(value);
    throw new InvalidArgumentError('expected "now", "+SECONDS" or Unix seconds');
  };
}

/**
 * An option value checked by one of the chaincode's own schemas (pileIdSchema, walletIdSchema,
 * mspIdSchema, ...), so the CLI never signs a message the chaincode would refuse for its ids.
 */
export function schemaArg(schema: ZodType<string>): (value: string) => string {
  return (value: string) => {
    const r = schema.safeParse(value);
    if (!r.success) throw new InvalidArgumentError(r.error.issues[0]?.message ?? 'invalid');
    return r.data;
  };
}
