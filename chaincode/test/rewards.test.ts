/**
 * The incentive layer's rules against real SmartBFT blocks: 22 blocks captured from a running 4-orderer
 * Fabric 3.1.5 network (network/tools/capture-blocks.ts) in which the leader orderer was stopped, then
 * the next one, so the blocks span views 0, 1 and 2 (leaders 1, 2 and 3, as the orderers' own
 * consensus_smartbft_view_leader_id metric reported at capture time). Claims are checked, witnessed and
 * paid by the domain functions the chaincode runs; forged evidence is refused with its code.
 */
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { issuanceState, issueBeans } from '../src/domain/beans';
import { bftQuorum, leaderOf, readSignatures, type ViewMetadata } from '../src/domain/blockEvidence';
import type { TxContext } from '../src/domain/context';
import { poolSummary } from '../src/domain/pool';
import {
  claimBlockRewards,
  splitBlockReward,
  witnessEntries,
  witnessStep,
  GENESIS_WITNESS,
  type WitnessEntry,
} from '../src/domain/rewards';
import { sm3Hex } from '../src/crypto';
import { MemoryLedger } from './support/ledger';
import {
  blockFixture,
  fixtureBlock,
  ledgerWithConsenters,
  mspOfConsenter,
  registerFixtureConsenters,
  transientOf,
  type BlockFixture,
} from './support/blocks';
import { admin, client, genesis, initPinned, OPS, PARAMS } from './support/fixtures';

type Fixture = BlockFixture;
const fx = blockFixture;
const mspOf = mspOfConsenter;
const block = fixtureBlock;
const headerOf = (e: Fixture['blocks'][number]['evidence']) => ({
  number: BigInt(e.number),
  previousHash: Buffer.from(e.previousHash, 'base64'),
  dataHash: Buffer.from(e.dataHash, 'base64'),
});

/** What the orderers reported as leader while these blocks were cut (metric at capture time). */
const LEADER_BY_VIEW: Record<number, number> = { 0: 1, 1: 2, 2: 3 };

const setUp = ledgerWithConsenters;

type Ev = Fixture['blocks'][number]['evidence'];
function withBlocks(
  ctx: TxContext,
  blocks: Array<{ evidence: Ev; data: string }>,
  channel = fx.channel,
): TxContext {
  return { ...ctx, channelId: channel, transient: transientOf(blocks) };
}
const claim = (
  ledger: MemoryLedger,
  numbers: number[],
  tweak: (e: Ev) => Ev = (e) => e,
  channel = fx.channel,
) => {
  const blocks = numbers.map((n) => ({ ...block(n), evidence: tweak(block(n).evidence) }));
  return ledger.submit(client(OPS.B.mspId), (ctx) =>
    claimBlockRewards(withBlocks(ctx, blocks, channel), { blocks: blocks.map((b) => b.evidence) }),
  );
};
const refusal = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'committed';
};

describe('block evidence from real SmartBFT orderers', () => {
  test('every block carries a BFT quorum of consenter signatures, and the view leaders are those the orderers reported', () => {
    expect(bftQuorum(4)).toBe(3);
    expect([1, 4, 7].map(bftQuorum)).toEqual([1, 3, 5]);
    const seen = new Set<number>();
    for (const b of fx.blocks) {
      const s = readSignatures(headerOf(b.evidence), Buffer.from(b.evidence.signatures, 'base64'));
      expect(s.signatures.length).toBeGreaterThanOrEqual(3);
      expect(leaderOf(s.view, [1, 2, 3, 4])).toBe(LEADER_BY_VIEW[s.view.viewId]);
      seen.add(s.view.viewId);
    }
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });

  test('with leader rotation on (not allowed by Fabric v3, kept to SmartBFT), leadership moves with decisions and skips the blacklisted', () => {
    const v = (viewId: number, decisionsInView: number, blackList: number[] = []): ViewMetadata => ({
      viewId,
      latestSequence: 0,
      decisionsInView,
      blackList,
    });
    const rot = { enabled: true, decisionsPerLeader: 3 };
    expect(leaderOf(v(0, 0), [4, 2, 3, 1], rot)).toBe(1);
    expect(leaderOf(v(0, 3), [1, 2, 3, 4], rot)).toBe(2);
    expect(leaderOf(v(1, 7), [1, 2, 3, 4], rot)).toBe(4);
    expect(leaderOf(v(1, 7, [4, 1]), [1, 2, 3, 4], rot)).toBe(2);
    expect(leaderOf(v(5, 0), [1, 2, 3, 4])).toBe(2);
  });
});

describe('the reward split', () => {
  test('whole fen, the proposer share to the leader, the rest equally to the signers, nothing lost', () => {
    expect(Object.fromEntries(splitBlockReward(100, 5_000, 1, [1, 3, 4]))).toEqual({ 1: 67, 3: 17, 4: 16 });
    expect(Object.fromEntries(splitBlockReward(100, 5_000, 2, [4, 3, 1]))).toEqual({
      1: 17,
      2: 50,
      3: 17,
      4: 16,
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 7 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }),
        (amount, bps, leader, signers) => {
          const parts = splitBlockReward(amount, bps, leader, signers);
          const total = [...parts.values()].reduce((a, b) => a + b, 0);
          const signerParts = [...new Set(signers)].filter((s) => s !== leader).map((s) => parts.get(s) ?? 0);
          return (
            total === amount &&
            [...parts.values()].every((p) => Number.isInteger(p) && p >= 0) &&
            Math.max(...signerParts, 0) - Math.min(...signerParts, Math.max(...signerParts, 0)) <= 1
          );
        },
      ),
    );
  });
});

describe('claims on the ledger', () => {
  test('all 22 blocks witnessed once, in order; business blocks paid to the leader and the signers; the pool pays exactly that', async () => {
    const ledger = await setUp();
    const before = await ledger.evaluate(client(OPS.A.mspId), (ctx) => poolSummary(ctx));
    await claim(ledger, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await claim(ledger, [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]);
    const entries = await ledger.evaluate(client(OPS.A.mspId), (ctx) => witnessEntries(ctx, 1));
    expect(entries.map((e) => e.block)).toEqual(fx.blocks.map((b) => b.evidence.number));
    // Independent expectation: 100 fen per business block, 50 to the view's leader, 50 split over signers.
    const expected: Record<string, number> = {};
    let rewarded = 0;
    for (const e of entries) {
      expect(e.leader).toBe(LEADER_BY_VIEW[e.view]);
      if (e.businessTransactions === 0) {
        expect(e.reward).toEqual({ amountFen: 0, paid: {}, status: 'skipped' });
        continue;
      }
      rewarded++;
      expect(e.reward.status).toBe('paid');
      const add = (id: number, fen: number) => (expected[mspOf(id)] = (expected[mspOf(id)] ?? 0) + fen);
      add(e.leader, PARAMS.blockRewardFen / 2);
      const shares = [17, 17, 16];
      [...e.signers].sort((a, b) => a - b).forEach((id, i) => add(id, shares[i] as number));
    }
    expect(rewarded).toBe(6);
    const paid = Object.fromEntries(
      await Promise.all(
        Object.values(OPS).map(async (o) => [
          o.mspId,
          (await ledger.evaluate(client(o.mspId), (ctx) => issuanceState(ctx, o.mspId))).rewardsFen,
        ]),
      ),
    );
    for (const o of Object.values(OPS)) expect(paid[o.mspId]).toBe(expected[o.mspId] ?? 0);
    const after = await ledger.evaluate(client(OPS.A.mspId), (ctx) => poolSummary(ctx));
    expect(before.balanceFen - after.balanceFen).toBe(6 * PARAMS.blockRewardFen);
    expect(after.rewardsPaidFen).toBe(6 * PARAMS.blockRewardFen);
  });

  test('the witness chain is SM3 over (previous chain, block, SM3 of the header DER, SM3 of the data), as openssl computes it', async () => {
    const ledger = await setUp();
    await claim(ledger, [1, 2, 3]);
    const entries = await ledger.evaluate(client(OPS.A.mspId), (ctx) => witnessEntries(ctx, 1));
    let chain = GENESIS_WITNESS;
    for (const e of entries as WitnessEntry[]) {
      const dataSm3 = execFileSync('openssl', ['dgst', '-sm3', '-r'], {
        input: Buffer.from(block(e.block).data, 'base64'),
      })
        .toString()
        .split(' ')[0];
      expect(e.dataSm3).toBe(dataSm3);
      const step = execFileSync('openssl', ['dgst', '-sm3', '-r'], {
        input: `${chain}:${e.block}:${e.headerSm3}:${e.dataSm3}`,
      })
        .toString()
        .split(' ')[0];
      expect(e.chain).toBe(step);
      expect(witnessStep(chain, e.block, e.headerSm3, e.dataSm3)).toBe(step);
      expect(e.prevChain).toBe(chain);
      chain = e.chain;
    }
    expect(sm3Hex('abc')).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  });

  test('bean issuance is capped by the rewards earned, at the bean face value', async () => {
    const ledger = await setUp();
    await claim(ledger, fx.blocks.map((b) => b.evidence.number).slice(0, 20));
    const s = await ledger.evaluate(client(OPS.A.mspId), (ctx) => issuanceState(ctx, OPS.A.mspId));
    expect(s.rewardsFen).toBeGreaterThan(0);
    expect(s.remaining).toBe(Math.floor(s.rewardsFen / PARAMS.beanFaceValueFen));
    const over = ledger.submit(admin(OPS.A.mspId), (ctx) =>
      issueBeans(ctx, { beans: s.remaining + 1, reference: 'over' }),
    );
    expect(await refusal(over)).toBe('ISSUANCE_LIMIT_EXCEEDED');
    if (s.remaining > 0)
      await ledger.submit(admin(OPS.A.mspId), (ctx) =>
        issueBeans(ctx, { beans: s.remaining, reference: 'all' }),
      );
  });

  describe('forged or misdirected claims are refused, and nothing is written', () => {
    const meta = protobuf.Root.fromJSON({
      nested: {
        Metadata: {
          fields: { value: { type: 'bytes', id: 1 }, signatures: { rule: 'repeated', type: 'Sig', id: 2 } },
        },
        Sig: {
          fields: {
            signatureHeader: { type: 'bytes', id: 1 },
            signature: { type: 'bytes', id: 2 },
            identifierHeader: { type: 'bytes', id: 3 },
          },
        },
        IdentifierHeader: {
          fields: { identifier: { type: 'uint32', id: 1 }, nonce: { type: 'bytes', id: 2 } },
        },
      },
    });
    const M = meta.lookupType('Metadata');
    const I = meta.lookupType('IdentifierHeader');
    type Md = {
      value: Uint8Array;
      signatures: Array<{ signature: Uint8Array; identifierHeader: Uint8Array }>;
    };
    const rewrite = (e: Ev, change: (m: Md) => void): Ev => {
      const m = M.toObject(M.decode(Buffer.from(e.signatures, 'base64')), { defaults: true }) as Md;
      change(m);
      return { ...e, signatures: Buffer.from(M.encode(M.fromObject(m)).finish()).toString('base64') };
    };

    let ledger: MemoryLedger;
    beforeAll(async () => {
      ledger = await setUp();
      await claim(ledger, [1, 2, 3]);
    });
    afterEach(async () => {
      // Still at block 3, whatever was tried.
      const entries = await ledger.evaluate(client(OPS.A.mspId), (ctx) => witnessEntries(ctx, 1));
      expect(entries.map((e) => e.block)).toEqual([1, 2, 3]);
    });

    test('an altered header (data hash, previous hash)', async () => {
      const other = block(5).evidence.dataHash;
      expect(await refusal(claim(ledger, [4], (e) => ({ ...e, dataHash: other })))).toBe(
        'BLOCK_EVIDENCE_MALFORMED',
      );
      expect(
        await refusal(claim(ledger, [4], (e) => ({ ...e, previousHash: block(2).evidence.previousHash }))),
      ).toBe('BLOCK_SIGNATURE_INVALID');
    });

    test('signatures from too few consenters', async () => {
      const two = (e: Ev) => rewrite(e, (m) => (m.signatures = m.signatures.slice(0, 2)));
      expect(await refusal(claim(ledger, [4], two))).toBe('BLOCK_QUORUM_NOT_MET');
      const dup = (e: Ev) =>
        rewrite(e, (m) => (m.signatures = [m.signatures[0]!, m.signatures[0]!, m.signatures[1]!]));
      expect(await refusal(claim(ledger, [4], dup))).toBe('BLOCK_QUORUM_NOT_MET');
    });

    test('a signature by a non-consenter, and a signature moved to another consenter', async () => {
      const stranger = (e: Ev) =>
        rewrite(e, (m) => {
          const id = I.toObject(I.decode(m.signatures[0]!.identifierHeader), { defaults: true }) as {
            nonce: Uint8Array;
          };
          m.signatures[0]!.identifierHeader = I.encode(
            I.fromObject({ identifier: 9, nonce: id.nonce }),
          ).finish();
        });
      expect(await refusal(claim(ledger, [4], stranger))).toBe('BLOCK_SIGNER_UNKNOWN');
      const moved = (e: Ev) =>
        rewrite(e, (m) => {
          const [a, b] = m.signatures as [Md['signatures'][number], Md['signatures'][number]];
          [a.signature, b.signature] = [b.signature, a.signature];
        });
      expect(await refusal(claim(ledger, [4], moved))).toBe('BLOCK_SIGNATURE_INVALID');
    });

    test('a replayed block, a gap, missing data, another channel', async () => {
      expect(await refusal(claim(ledger, [3]))).toBe('BLOCK_ALREADY_WITNESSED');
      expect(await refusal(claim(ledger, [5]))).toBe('BLOCK_OUT_OF_ORDER');
      const noData = ledger.submit(client(OPS.B.mspId), (ctx) =>
        claimBlockRewards(
          { ...ctx, channelId: fx.channel, transient: new Map() },
          { blocks: [block(4).evidence] },
        ),
      );
      expect(await refusal(noData)).toBe('BLOCK_DATA_MISSING');
      expect(await refusal(claim(ledger, [4], (e) => e, 'another-channel'))).toBe('BLOCK_WRONG_CHANNEL');
    });
  });

  test('two keepers claiming the same blocks: one commits, the other conflicts and then learns it was witnessed; paid once', async () => {
    const ledger = await setUp();
    const job = (msp: string) => () =>
      ledger.simulate(client(msp), (ctx) =>
        claimBlockRewards(withBlocks(ctx, [block(1), block(2), block(3), block(4)]), {
          blocks: [1, 2, 3, 4].map((n) => block(n).evidence),
        }),
      );
    const [a, b] = await Promise.all([job(OPS.A.mspId)(), job(OPS.C.mspId)()]);
    expect(ledger.commitBlock([a, b])).toEqual(['VALID', 'MVCC_READ_CONFLICT']);
    expect(await refusal(claim(ledger, [4]))).toBe('BLOCK_ALREADY_WITNESSED');
    const pool = await ledger.evaluate(client(OPS.A.mspId), (ctx) => poolSummary(ctx));
    expect(pool.rewardsPaidFen).toBe(PARAMS.blockRewardFen);
  });

  test('when the pool cannot pay, the block is witnessed, marked pool-exhausted, and the pool never goes below zero', async () => {
    const ledger = new MemoryLedger();
    ledger.now = fx.capturedAt;
    // No margin paid yet: the pool is empty (consenters register and claims are made all the same).
    await ledger.submit(admin(OPS.A.mspId), (ctx) => initPinned(ctx, genesis(Object.values(OPS))));
    await registerFixtureConsenters(ledger);
    const sim = await ledger.simulate(client(OPS.B.mspId), (ctx) =>
      claimBlockRewards(withBlocks(ctx, [block(1), block(2), block(3), block(4)]), {
        blocks: [1, 2, 3, 4].map((n) => block(n).evidence),
      }),
    );
    expect(sim.ok).toBe(true);
    expect(ledger.commitBlock([sim])).toEqual(['VALID']);
    expect(sim.result?.rewardedFen).toBe(0);
    expect(sim.result?.entries.map((e) => e.reward.status)).toEqual([
      'skipped',
      'skipped',
      'skipped',
      'pool-exhausted',
    ]);
    expect(sim.events.map((e) => e.name)).toContain('RewardPoolExhausted');
    const pool = await ledger.evaluate(client(OPS.A.mspId), (ctx) => poolSummary(ctx));
    expect(pool).toMatchObject({ balanceFen: 0, rewardsPaidFen: 0 });
  });
});
