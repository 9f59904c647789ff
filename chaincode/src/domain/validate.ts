/**
 * Input validation for every transaction: zod schemas, converted to DomainError('INVALID_ARGUMENT')
 * with the offending path, so a client learns exactly which field was wrong.
 */
import { z } from 'zod';
import { fail } from './errors';
import { MAX_FEN, MAX_WH } from './money';

/** Identifiers that become key components: no '/', bounded length, printable ASCII. */
export const idSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-", starting with a letter or digit');
/** MSP ids: no '.', because a pile id is "<mspId>.<local id>". */
export const mspIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'letters, digits, "_" or "-"');
export const hexSchema = (len?: number): z.ZodString =>
  (len ? z.string().length(len) : z.string().min(2).max(512)).regex(/^[0-9a-f]*$/, 'lowercase hex');
export const publicKeySchema = z
  .string()
  .regex(/^04[0-9a-f]{128}$/, 'uncompressed SM2 public key, lowercase hex');
export const signatureSchema = z
  .string()
  .min(16)
  .max(160)
  .regex(/^[0-9a-f]+$/, 'DER signature, lowercase hex');
export const fenSchema = z.number().int().min(0).max(MAX_FEN);
export const positiveFenSchema = z.number().int().min(1).max(MAX_FEN);
export const whSchema = z.number().int().min(0).max(MAX_WH);
/** Unix seconds between 2020 and 2100. */
export const timestampSchema = z.number().int().min(1_577_836_800).max(4_102_444_800);
export const positiveCountSchema = z.number().int().min(1).max(1_000_000_000_000);

export function parse<S extends z.ZodTypeAny>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue && issue.path.length > 0 ? issue.path.join('.') : what;
    fail('INVALID_ARGUMENT', `${what}: ${path}: ${issue?.message ?? 'invalid'}`, {
      path,
      issues: r.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return r.data as z.output<S>;
}

/** Transaction arguments arrive as strings; JSON ones are parsed here with a size bound. */
export function parseJsonArg(raw: string, what: string, maxBytes = 64 * 1024): unknown {
  if (Buffer.byteLength(raw, 'utf8') > maxBytes)
    fail('INVALID_ARGUMENT', `${what}: larger than ${maxBytes} bytes`);
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return fail('INVALID_ARGUMENT', `${what}: not valid JSON`);
  }
}
