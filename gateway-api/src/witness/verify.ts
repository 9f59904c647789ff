/**
 * The auditor's offline check of the SM3 block witness (`evpay witness verify --dir <dir>`): pure SM3
 * over files, no Fabric. An export (`evpay-gateway witness export`, export.ts) holds, per block n,
 * `<n>.header.der` (the header's ASN.1 DER bytes, what the consenters signed) and `<n>.data.bin` (the
 * serialized common.BlockData), read from the organization's own peer, and `witness.json`: the witness
 * entries the chaincode recorded (ListWitness). Block by block, from the first entry on, this recomputes
 *
 *   headerSm3 = SM3(<n>.header.der)    dataSm3 = SM3(<n>.data.bin)
 *   chain     = SM3(`${prevChain}:${n}:${headerSm3}:${dataSm3}`)   (WITNESS RULE, chaincode rewards.ts)
 *
 * with prevChain the chain just computed for block n-1 (64 zeros before block 1), and stops at the FIRST
 * block where something differs, naming what:
 *
 *  - `sequence`: the entries are not the consecutive blocks from the first one (an entry missing,
 *    repeated or out of order), a block's file is missing, or a block file has no entry;
 *  - `header` / `data`: the SM3 of the block's file is not the entry's headerSm3 / dataSm3;
 *  - `chain`: the entry's prevChain is not the previous block's chain (64 zeros for block 1), or its
 *    chain is not the WITNESS RULE over the recomputed values.
 *
 * An export that starts after block 1 takes its first entry's prevChain as given (the verdict names it
 * as `startChain`): compare it with an earlier export's final chain to join the two.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { GENESIS_WITNESS, sm3Hex, witnessStep } from '@evpay/chaincode/client';

export const WITNESS_FILE = 'witness.json';
export const headerFile = (n: number): string => `${n}.header.der`;
export const dataFile = (n: number): string => `${n}.data.bin`;
const BLOCK_FILE = /^(0|[1-9]\d{0,14})\.(header\.der|data\.bin)$/;

const sm3 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex');
/** What the check reads of an entry (ListWitness answers more: leader, signers, reward ...). */
export const witnessRecordSchema = z
  .object({
    block: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    headerSm3: sm3,
    dataSm3: sm3,
    prevChain: sm3,
    chain: sm3,
  })
  .passthrough();
export type WitnessRecord = z.infer<typeof witnessRecordSchema>;

export type MismatchKind = 'header' | 'data' | 'chain' | 'sequence';

/** The block files of an export, by block number (undefined when absent). */
export interface WitnessFiles {
  header(n: number): Uint8Array | undefined;
  data(n: number): Uint8Array | undefined;
  /** Every block number that has a file (header or data). */
  blocks(): number[];
}

export type WitnessVerdict =
  | {
      ok: true;
      /** Blocks checked. */
      blocks: number;
      from: number;
      to: number;
      /** The chain value before the first block (64 zeros when the export starts at block 1). */
      startChain: string;
      /** The chain value after the last block: the witness head's chain when the export ends there. */
      chain: string;
    }
  | {
      ok: false;
      /** The first block where something differs. */
      block: number;
      mismatch: MismatchKind;
      message: string;
      /** For header, data and chain: what the witness entry says, and what the files give. */
      expected?: string;
      actual?: string;
      /** Blocks checked good before it. */
      verified: number;
    };

type Mismatch = Extract<WitnessVerdict, { ok: false }>;

/** Checks the entries against the files (see the module comment); answers the first mismatch. */
export function verifyWitness(entries: readonly WitnessRecord[], files: WitnessFiles): WitnessVerdict {
  const first = entries[0];
  const strays = (upTo: number): number | undefined =>
    files
      .blocks()
      .filter((n) => !first || n < first.block || n > upTo)
      .sort((a, b) => a - b)[0];
  const earlier = (m: Mismatch, upTo: number): Mismatch => {
    const stray = strays(upTo);
    return stray !== undefined && stray < m.block ? strayMismatch(stray, 0) : m;
  };
  if (!first) {
    const stray = strays(0);
    return {
      ok: false,
      block: stray ?? 1,
      mismatch: 'sequence',
      message: `${WITNESS_FILE} holds no witness entry`,
      verified: 0,
    };
  }
  const startChain = first.block === 1 ? GENESIS_WITNESS : first.prevChain;
  let prev = startChain;
  for (const [i, e] of entries.entries()) {
    const n = first.block + i;
    const fail = (mismatch: MismatchKind, message: string, expected?: string, actual?: string): Mismatch => ({
      ok: false,
      block: n,
      mismatch,
      message: `block ${n}: ${message}`,
      ...(expected === undefined ? {} : { expected, actual }),
      verified: i,
    });
    // Anything found at a block below n (a stray file) comes first.
    if (e.block !== n)
      return earlier(
        fail(
          'sequence',
          `expected the witness entry of block ${n} (entry ${i + 1} of ${WITNESS_FILE}), found block ${e.block}`,
        ),
        n - 1,
      );
    const header = files.header(n);
    const data = files.data(n);
    if (!header || !data)
      return earlier(fail('sequence', `${header ? dataFile(n) : headerFile(n)} is missing`), n - 1);
    const headerSm3 = sm3Hex(header);
    if (headerSm3 !== e.headerSm3)
      return earlier(
        fail('header', `SM3 of ${headerFile(n)} is not the entry's headerSm3`, e.headerSm3, headerSm3),
        n - 1,
      );
    const dataSm3 = sm3Hex(data);
    if (dataSm3 !== e.dataSm3)
      return earlier(
        fail('data', `SM3 of ${dataFile(n)} is not the entry's dataSm3`, e.dataSm3, dataSm3),
        n - 1,
      );
    if (e.prevChain !== prev)
      return earlier(
        fail(
          'chain',
          n === 1
            ? "the entry's prevChain is not the chain's start (64 zeros)"
            : `the entry's prevChain is not block ${n - 1}'s chain`,
          prev,
          e.prevChain,
        ),
        n - 1,
      );
    const chain = witnessStep(prev, n, headerSm3, dataSm3);
    if (chain !== e.chain)
      return earlier(
        fail('chain', `the entry's chain is not SM3("prevChain:${n}:headerSm3:dataSm3")`, e.chain, chain),
        n - 1,
      );
    prev = chain;
  }
  const last = first.block + entries.length - 1;
  const stray = strays(last);
  if (stray !== undefined) return strayMismatch(stray, stray < first.block ? 0 : entries.length);
  return { ok: true, blocks: entries.length, from: first.block, to: last, startChain, chain: prev };
}

function strayMismatch(n: number, verified: number): Mismatch {
  return {
    ok: false,
    block: n,
    mismatch: 'sequence',
    message: `block ${n}: its files have no witness entry in ${WITNESS_FILE}`,
    verified,
  };
}

/** A directory's export could not be read as one (no witness.json, not JSON, a malformed entry). */
export class WitnessExportError extends Error {}

/** Reads an export directory: its entries (checked for shape) and its block files. */
export function readWitnessDir(dir: string): { entries: WitnessRecord[]; files: WitnessFiles } {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new WitnessExportError(`${dir} is not a directory`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(dir, WITNESS_FILE), 'utf8'));
  } catch (e) {
    throw new WitnessExportError(`cannot read ${join(dir, WITNESS_FILE)}: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new WitnessExportError(`${WITNESS_FILE} is not an array of witness entries`);
  const entries = raw.map((e, i) => {
    const r = witnessRecordSchema.safeParse(e);
    if (r.success) return r.data;
    const issue = r.error.issues[0];
    throw new WitnessExportError(
      `${WITNESS_FILE}: entry ${i + 1}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`.trim(),
    );
  });
  const names = readdirSync(dir);
  const blockNumbers = [
    ...new Set(names.flatMap((f) => (BLOCK_FILE.exec(f) ? [Number(BLOCK_FILE.exec(f)?.[1])] : []))),
  ];
  const present = new Set(names);
  const read = (name: string): Uint8Array | undefined =>
    present.has(name) ? new Uint8Array(readFileSync(join(dir, name))) : undefined;
  return {
    entries,
    files: {
      header: (n) => read(headerFile(n)),
      data: (n) => read(dataFile(n)),
      blocks: () => blockNumbers,
    },
  };
}

/** `evpay witness verify --dir <dir>`: the verdict for an export directory. */
export function verifyWitnessDir(dir: string): WitnessVerdict {
  const { entries, files } = readWitnessDir(dir);
  return verifyWitness(entries, files);
}
