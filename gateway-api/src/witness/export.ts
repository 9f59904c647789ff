/**
 * `evpay-gateway witness export`: what an auditor checks offline with `evpay witness verify`
 * (verify.ts). The blocks come from the organization's own peer (block events through the gateway
 * configuration's client identity), never from the party being audited, and the witness entries from
 * the chaincode (ListWitness, read on that same peer). Per block n the directory gets `<n>.header.der`,
 * the header's ASN.1 DER bytes exactly as the chaincode hashes them (headerBytes), and `<n>.data.bin`,
 * the serialized common.BlockData exactly as the reward keepers send it (evidenceOf); then
 * `witness.json`, the entries of blocks from..to as ListWitness answers them.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headerBytes, type WitnessEntry, type WitnessHead } from '@evpay/chaincode/client';
import { query, type OrgLedger } from '../fabric/orgLedger';
import { evidenceOf } from '../rewards/evidence';
import { dataFile, headerFile, WITNESS_FILE } from './verify';

/** What the export reads from the ledger (an OrgLedger; tests pass one over fixture blocks). */
export type WitnessSource = Pick<OrgLedger, 'evaluate' | 'blocks'>;

export interface ExportOptions {
  /** First block (default 1). */
  from?: number;
  /** Last block (default: the witness head). */
  to?: number;
  out: string;
}

export interface ExportSummary {
  out: string;
  from: number;
  to: number;
  blocks: number;
  /** The chain value after block `to` (from its witness entry). */
  chain: string;
  /** The witness head when the export began. */
  head: WitnessHead;
}

/** A request the ledger cannot answer as asked (a block not witnessed yet, a used directory). */
export class ExportRefused extends Error {}

/** ListWitness answers up to this many entries a call. */
const PAGE = 500;

export async function exportWitness(ledger: WitnessSource, o: ExportOptions): Promise<ExportSummary> {
  const head = await query<WitnessHead>(ledger, 'GetWitnessHead');
  const from = o.from ?? 1;
  const to = o.to ?? head.block;
  if (head.block < 1) throw new ExportRefused('no block is witnessed yet');
  if (to > head.block)
    throw new ExportRefused(`block ${to} is not witnessed yet (the witness head is block ${head.block})`);
  if (from < 1 || from > to) throw new ExportRefused(`no blocks from ${from} to ${to}`);
  if (existsSync(o.out) && readdirSync(o.out).length > 0)
    throw new ExportRefused(`${o.out} is not empty: export into a new directory`);
  mkdirSync(o.out, { recursive: true });

  const entries: WitnessEntry[] = [];
  for (let next = from; next <= to;) {
    const page = await query<WitnessEntry[]>(ledger, 'ListWitness', [String(next)]);
    entries.push(...page.filter((e) => e.block <= to));
    const last = page[page.length - 1];
    if (!last || page.length < PAGE || last.block >= to) break;
    next = last.block + 1;
  }

  let written = 0;
  const blocks = await ledger.blocks(BigInt(from));
  try {
    for await (const block of blocks) {
      const { evidence, data } = evidenceOf(block);
      const n = evidence.number;
      if (n !== from + written) throw new Error(`the peer sent block ${n}, expected ${from + written}`);
      const header = headerBytes({
        number: BigInt(n),
        previousHash: Buffer.from(evidence.previousHash, 'base64'),
        dataHash: Buffer.from(evidence.dataHash, 'base64'),
      });
      writeFileSync(join(o.out, headerFile(n)), header);
      writeFileSync(join(o.out, dataFile(n)), data);
      written++;
      if (n >= to) break;
    }
  } finally {
    blocks.close();
  }
  if (written !== to - from + 1) throw new Error(`the peer's block stream ended after ${written} blocks`);
  writeFileSync(join(o.out, WITNESS_FILE), JSON.stringify(entries, null, 2) + '\n');
  return {
    out: o.out,
    from,
    to,
    blocks: written,
    chain: entries.find((e) => e.block === to)?.chain ?? '',
    head,
  };
}
