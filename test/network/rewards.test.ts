/**
 * The incentive layer on the running network: the reward keepers in the operators' gateways witness
 * every block from its own evidence (consenter signatures over the header, checked against the
 * consenters registered by up.sh), pay each block with a business transaction once, from the pool, to
 * the view's leader and the signers, and keep doing so through a view change, where leadership passes
 * to the next operator in name order and the stopped orderer earns nothing. Forged claims sent through
 * a real peer are refused with their codes. Waits are on conditions (witness head, metrics).
 */
import { readFileSync } from 'node:fs';
import {
  evaluate,
  submit,
  chaincodeError,
  whenEndorsable,
  type Connection,
} from '../../network/tools/client';
import { evidenceOf, type EvidenceWithData } from '../../gateway-api/src/rewards/evidence';
import type { WitnessEntry, WitnessHead } from '../../chaincode/src/domain/rewards';
import { sm2GenerateKeyPair } from '../../chaincode/src/crypto';
import { connections, leaderSeenBy, net, startNode, stopNode, waitFor } from './support/fabric';
import { marginsPaid } from './support/margins';

jest.setTimeout(240_000);

const operators = net.orgs.filter((o) => o.role === 'operator');
const AUDITOR = net.orgs.find((o) => o.role === 'auditor')?.mspId ?? 'AuditorMSP';
const as = connections();
afterAll(as.closeAll);

let auditor: Connection;
let alpha: Connection;
beforeAll(() => {
  auditor = as(AUDITOR);
  alpha = as((operators[0] as { mspId: string }).mspId);
});

const head = (): Promise<WitnessHead> => evaluate<WitnessHead>(auditor, 'GetWitnessHead');
async function witness(from = 1): Promise<WitnessEntry[]> {
  const out: WitnessEntry[] = [];
  for (;;) {
    const page = await evaluate<WitnessEntry[]>(auditor, 'ListWitness', String(from + out.length));
    out.push(...page);
    if (page.length < 500) return out;
  }
}
/** A business transaction (a new wallet): answers its block. */
async function business(conn: Connection = alpha): Promise<bigint> {
  const r = await whenEndorsable(() =>
    submit(conn, 'OpenWallet', JSON.stringify({ publicKey: sm2GenerateKeyPair().publicKeyHex })),
  );
  return r.blockNumber;
}
const witnessed = (block: bigint, limitMs = 90_000): Promise<WitnessHead> =>
  waitFor(
    `block ${block} witnessed`,
    async () => {
      const h = await head();
      return BigInt(h.block) >= block ? h : undefined;
    },
    limitMs,
  );

const mspOfConsenter = new Map(
  net.orderers.map((o) => [o.consenterId, operators.find((op) => op.name === o.operator)?.mspId ?? '?']),
);

test("up.sh registered every operator's consenter with the certificate the channel configuration names", async () => {
  const registered = await evaluate<Array<{ consenterId: number; mspId: string; certificate: string }>>(
    auditor,
    'GetConsenters',
  );
  expect(registered.map((c) => c.consenterId)).toEqual(net.orderers.map((o) => o.consenterId).sort());
  for (const o of net.orderers) {
    const c = registered.find((x) => x.consenterId === o.consenterId);
    expect(c?.mspId).toBe(mspOfConsenter.get(o.consenterId));
    expect(c?.certificate).toBe(readFileSync(o.signCert, 'utf8'));
  }
});

test('every block is witnessed once, in order; each block with a business transaction is paid once, to its leader and signers; the pool pays exactly that', async () => {
  await marginsPaid();
  const last = [await business(), await business(), await business()].reduce((a, b) => (a > b ? a : b));
  const h = await witnessed(last);
  const entries = await witness();
  expect(entries.map((e) => e.block)).toEqual(Array.from({ length: h.block }, (_, i) => i + 1));
  // Each entry agrees with the block as this test reads it from the peer.
  const blocks = new Map<number, EvidenceWithData>();
  const stream = await auditor.network.getBlockEvents({ startBlock: 1n });
  for await (const b of stream) {
    const ev = evidenceOf(b);
    blocks.set(ev.evidence.number, ev);
    if (ev.evidence.number >= h.block) break;
  }
  stream.close();
  let paid = 0;
  const perOperator: Record<string, number> = {};
  for (const e of entries) {
    const b = blocks.get(e.block) as EvidenceWithData;
    expect(e.headerHash).toBeDefined();
    expect(e.signers.length).toBeGreaterThanOrEqual(3);
    expect(e.signers).toContain(e.signers[0]);
    if (e.reward.status === 'paid') {
      expect(e.businessTransactions).toBeGreaterThan(0);
      const sum = Object.values(e.reward.paid).reduce((x, y) => x + y, 0);
      expect(sum).toBe(e.reward.amountFen);
      expect(Object.keys(e.reward.paid)).toContain(mspOfConsenter.get(e.leader));
      for (const [msp, fen] of Object.entries(e.reward.paid))
        perOperator[msp] = (perOperator[msp] ?? 0) + fen;
      paid += sum;
    } else if (e.reward.status === 'skipped') expect(e.businessTransactions).toBe(0);
    expect(b.evidence.number).toBe(e.block);
  }
  expect(paid).toBeGreaterThan(0);
  const view = await evaluate<{ pool: { rewardsPaidFen: number } }>(auditor, 'GetConsortium');
  expect(view.pool.rewardsPaidFen).toBe(paid);
  for (const op of operators) {
    const issuance = await evaluate<{ rewardsFen: number }>(auditor, 'GetIssuance', op.mspId);
    expect(issuance.rewardsFen).toBe(perOperator[op.mspId] ?? 0);
  }
});

test('with the leader stopped, leadership passes to the next operator in name order; rewards follow the real leader and the stopped orderer earns nothing', async () => {
  const nodes = [...net.orderers].sort((a, b) => a.consenterId - b.consenterId);
  const observer = nodes[nodes.length - 1] as (typeof nodes)[number];
  const leader = await waitFor('a leader', () => leaderSeenBy(observer.node));
  const stopped = nodes.find((o) => o.consenterId === leader) as (typeof nodes)[number];
  // Watch leadership from an orderer that stays up (earlier tests may have made the observer the leader).
  const watcher = nodes.find((o) => o.consenterId !== leader) as (typeof nodes)[number];
  const next = (nodes.find((o) => o.consenterId > leader) ?? (nodes[0] as (typeof nodes)[number]))
    .consenterId;
  await stopNode(stopped.node);
  try {
    const last = await business(as(mspOfConsenter.get(next) as string));
    await business(as(mspOfConsenter.get(next) as string));
    const h = await witnessed(last + 1n);
    const after = (await witness(Number(last))).filter(
      (e) => e.block <= h.block && e.businessTransactions > 0,
    );
    expect(after.length).toBeGreaterThan(0);
    for (const e of after) {
      expect(e.leader).toBe(next);
      expect(e.signers).not.toContain(leader);
      expect(e.reward.paid[mspOfConsenter.get(leader) as string]).toBeUndefined();
      expect(e.reward.paid[mspOfConsenter.get(next) as string]).toBeGreaterThan(e.reward.amountFen / 2 - 1);
    }
    await waitFor(`${watcher.node} to see consenter ${next} lead`, async () =>
      (await leaderSeenBy(watcher.node)) === next ? true : undefined,
    );
  } finally {
    await startNode(stopped.node);
  }
});

describe('forged claims through a real peer are refused', () => {
  /** The first block not witnessed yet (the block of the keepers' last claim waits for business). */
  async function unwitnessed(): Promise<EvidenceWithData> {
    const h = await head();
    const stream = await auditor.network.getBlockEvents({ startBlock: BigInt(h.block + 1) });
    try {
      for await (const b of stream) return evidenceOf(b);
    } finally {
      stream.close();
    }
    throw new Error('no block');
  }
  async function refusedClaim(ev: EvidenceWithData['evidence'], data: Uint8Array): Promise<string> {
    try {
      await alpha.contract
        .newProposal('ClaimBlockRewards', {
          arguments: [JSON.stringify({ blocks: [ev] })],
          transientData: { [`block-${ev.number}`]: data },
        })
        .endorse();
    } catch (e) {
      return chaincodeError(e)?.code ?? String(e);
    }
    return 'endorsed';
  }

  test("a replayed block, an altered data hash, another block's data, an altered previous hash", async () => {
    const first = (await witness(1))[0] as WitnessEntry;
    expect(first.block).toBe(1);
    const b = await unwitnessed();
    const stream = await auditor.network.getBlockEvents({ startBlock: 1n });
    let one: EvidenceWithData | undefined;
    for await (const x of stream) {
      one = evidenceOf(x);
      break;
    }
    stream.close();
    expect(await refusedClaim((one as EvidenceWithData).evidence, (one as EvidenceWithData).data)).toBe(
      'BLOCK_ALREADY_WITNESSED',
    );
    const other = Buffer.from(b.evidence.dataHash, 'base64');
    other[0] = (other[0] as number) ^ 0xff;
    expect(await refusedClaim({ ...b.evidence, dataHash: other.toString('base64') }, b.data)).toBe(
      'BLOCK_EVIDENCE_MALFORMED',
    );
    expect(await refusedClaim(b.evidence, (one as EvidenceWithData).data)).toBe('BLOCK_EVIDENCE_MALFORMED');
    const prev = Buffer.from(b.evidence.previousHash, 'base64');
    prev[0] = (prev[0] as number) ^ 0xff;
    expect(await refusedClaim({ ...b.evidence, previousHash: prev.toString('base64') }, b.data)).toBe(
      'BLOCK_SIGNATURE_INVALID',
    );
  });
});
