/**
 * Real SmartBFT blocks for the incentive layer's tests: 22 blocks of a 4-orderer Fabric 3.1.5 network
 * (network/tools/capture-blocks.ts) spanning views 0, 1 and 2, the orderers' certificates, and a ledger
 * on which those orderers are registered as their operators' consenters.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerConsenter, blockDataKey } from '../../src/domain/rewards';
import { admin, bootstrap, OPS } from './fixtures';
import { MemoryLedger } from './ledger';

export interface BlockEvidenceFixture {
  number: number;
  previousHash: string;
  dataHash: string;
  signatures: string;
}

export interface BlockFixture {
  channel: string;
  /** Unix seconds of the capture: the orderers' certificates are valid from then on. */
  capturedAt: number;
  consenters: Array<{ consenterId: number; ordererMspId: string; operator: string; certificate: string }>;
  blocks: Array<{ evidence: BlockEvidenceFixture; data: string }>;
}

export const blockFixture = JSON.parse(
  readFileSync(join(__dirname, '..', 'fixtures', 'smartbft-blocks.json'), 'utf8'),
) as BlockFixture;

const mspOfOperator = new Map<string, string>(Object.values(OPS).map((o) => [o.name, o.mspId]));
/** The test consortium's operator whose orderer is consenter `id` (by the operator's English name). */
export const mspOfConsenter = (id: number): string =>
  mspOfOperator.get(blockFixture.consenters.find((c) => c.consenterId === id)?.operator ?? '') ?? '?';

/** The captured block `n`. */
export function fixtureBlock(n: number): BlockFixture['blocks'][number] {
  const b = blockFixture.blocks.find((x) => x.evidence.number === n);
  if (!b) throw new Error(`no block ${n} in the fixture`);
  return b;
}

/** Each block's data as a claim's transient map (`block-<number>`). */
export function transientOf(blocks: ReadonlyArray<BlockFixture['blocks'][number]>): Map<string, Uint8Array> {
  return new Map(
    blocks.map((b) => [blockDataKey(b.evidence.number), new Uint8Array(Buffer.from(b.data, 'base64'))]),
  );
}

/** Registers the captured orderers as consenters, each by its operator's admin. */
export async function registerFixtureConsenters(ledger: MemoryLedger): Promise<void> {
  for (const c of blockFixture.consenters)
    await ledger.submit(admin(mspOfConsenter(c.consenterId)), (ctx) =>
      registerConsenter(ctx, {
        consenterId: c.consenterId,
        ordererMspId: c.ordererMspId,
        certificate: c.certificate,
      }),
    );
}

/** A consortium with every margin paid and the captured orderers registered, at the capture's time. */
export async function ledgerWithConsenters(): Promise<MemoryLedger> {
  const ledger = new MemoryLedger();
  ledger.now = blockFixture.capturedAt;
  await bootstrap(ledger);
  await registerFixtureConsenters(ledger);
  return ledger;
}
