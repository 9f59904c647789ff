/**
 * The incentive layer (paper, section 3 and step 4 of section 4): the consenter (billing node) that
 * proposes a block, and those that certify it, are rewarded from the margin pool, and the rewards back
 * each operator's bean issuance. No one may claim a reward its orderer did not earn, so a claim carries
 * the block's own evidence and this module checks it (blockEvidence.ts has the decoding and the
 * signature, quorum and leader rules):
 *
 *  - consenters are registered on chain by their operators' admins (RegisterConsenter), with the
 *    certificate the channel configuration names for them;
 *  - a claim covers consecutive blocks after the witness head; each block's header links to the last
 *    witnessed one, its data (passed as transient data, so it is not written to the ledger twice) hashes
 *    to the header's data hash and belongs to this channel, and a BFT quorum of registered consenters
 *    signed it, every signature valid;
 *  - every block then gets an SM3 witness entry (WITNESS RULE below), whoever claimed it, exactly once;
 *  - a block with a business transaction (or any block, if `rewardEmptyBlocks`) pays `blockRewardFen`
 *    from the pool by the REWARD SPLIT RULE, or, when the pool cannot cover it, records that it was not
 *    paid (the pool never goes below zero).
 *
 * Several keepers claiming the same block conflict on the witness head: one commits, the others learn
 * BLOCK_ALREADY_WITNESSED (or are invalidated and then learn it); the reward is never lost or doubled.
 */
import { z } from 'zod';
import { certificateFacts, verifyEcdsaSha256 } from '../crypto/ecdsa';
import { sm3Hex } from '../crypto';
import { getOperator, requireAdminRole, requireMember } from './access';
import { creditRewards } from './beans';
import {
  bftQuorum,
  EvidenceError,
  headerBytes,
  headerHash,
  leaderOf,
  readBlockData,
  readSignatures,
  type BlockHeader,
} from './blockEvidence';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys, prefixRange } from './keys';
import { splitEqual, splitProportional } from './money';
import { paramsAt, type Params } from './params';
import { emit, getJson, listJson, putJson, rangeJson } from './state';
import { mspIdSchema, parse } from './validate';

// --- consenters ---

export const consenterSchema = z
  .object({
    consenterId: z.number().int().min(1).max(10_000),
    ordererMspId: mspIdSchema,
    certificate: z.string().min(100).max(8_192).startsWith('-----BEGIN CERTIFICATE-----'),
  })
  .strict();

export interface Consenter {
  consenterId: number;
  /** The operator the consenter belongs to (who registered it). */
  mspId: string;
  ordererMspId: string;
  certificate: string;
  /** SHA-256 of the certificate (DER), hex: compare with the channel configuration's consenter. */
  fingerprint: string;
  registeredAt: number;
  txId: string;
}

export async function consenters(ctx: TxContext): Promise<Consenter[]> {
  return (await listJson<Consenter>(ctx.store, Keys.consentersPrefix())).map((e) => e.value);
}

/**
 * An operator's admin registers its own orderer's consenter: the id and the certificate the channel
 * configuration gives it. One consenter per operator; registering again replaces the certificate (a
 * renewal), never another operator's consenter id.
 */
export async function registerConsenter(ctx: TxContext, input: unknown): Promise<Consenter> {
  const op = await requireMember(ctx);
  requireAdminRole(ctx);
  const req = parse(consenterSchema, input, 'consenter');
  const facts = certificateFacts(req.certificate);
  if (!facts) fail('INVALID_ARGUMENT', 'certificate is not a PEM X.509 certificate');
  if (!facts.p256) fail('INVALID_ARGUMENT', 'a consenter certificate has an ECDSA P-256 key (Fabric MSP)');
  if (ctx.now < facts.notBefore || ctx.now > facts.notAfter)
    fail('INVALID_ARGUMENT', 'the certificate is not valid now', {
      notBefore: facts.notBefore,
      notAfter: facts.notAfter,
    });
  const existing = await getJson<Consenter>(ctx.store, Keys.consenter(req.consenterId));
  if (existing && existing.mspId !== op.mspId)
    fail('CONSENTER_TAKEN', `consenter ${req.consenterId} belongs to ${existing.mspId}`, {
      consenterId: req.consenterId,
    });
  const mine = (await consenters(ctx)).find((c) => c.mspId === op.mspId && c.consenterId !== req.consenterId);
  if (mine)
    fail('CONSENTER_TAKEN', `${op.name} already has consenter ${mine.consenterId}`, {
      consenterId: mine.consenterId,
    });
  const c: Consenter = {
    consenterId: req.consenterId,
    mspId: op.mspId,
    ordererMspId: req.ordererMspId,
    certificate: req.certificate,
    fingerprint: facts.fingerprint,
    registeredAt: ctx.now,
    txId: ctx.txId,
  };
  await putJson(ctx.store, Keys.consenter(c.consenterId), c);
  emit(ctx, 'ConsenterRegistered', {
    consenterId: c.consenterId,
    mspId: c.mspId,
    fingerprint: c.fingerprint,
  });
  return c;
}

// --- claims ---

const b64 = z
  .string()
  .max(1_000_000)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const blockEvidenceSchema = z
  .object({
    number: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    previousHash: b64,
    dataHash: b64,
    /** The block's SIGNATURES metadata (serialized common.Metadata). */
    signatures: b64,
  })
  .strict();
/** The most blocks one claim covers: bounds the claim's size and the transaction's time. */
export const MAX_CLAIM_BLOCKS = 40;
export const claimBlocksSchema = z
  .object({ blocks: z.array(blockEvidenceSchema).min(1).max(MAX_CLAIM_BLOCKS) })
  .strict();
/** Transient key of a block's data (serialized common.BlockData). */
export const blockDataKey = (n: number): string => `block-${n}`;

/** Transactions that keep the books about the books, not business: never a reason to reward a block. */
const OVERHEAD_FUNCTIONS = new Set(['ClaimBlockRewards', 'RegisterConsenter']);
export const isRewardOverhead = (chaincode: string, fn: string): boolean =>
  chaincode === '_lifecycle' || OVERHEAD_FUNCTIONS.has(fn.slice(fn.indexOf(':') + 1));

export interface WitnessEntry {
  block: number;
  /** SM3 of the header's DER bytes (what the consenters signed over), hex. */
  headerSm3: string;
  /** SM3 of the block's data (serialized common.BlockData), hex. */
  dataSm3: string;
  /** WITNESS RULE: SM3 of the text `${prevChain}:${block}:${headerSm3}:${dataSm3}`, hex. */
  chain: string;
  prevChain: string;
  /** SHA-256 of the header DER, hex: the next block's previous hash. */
  headerHash: string;
  leader: number;
  signers: number[];
  view: number;
  businessTransactions: number;
  reward: BlockReward;
  txId: string;
}

export interface BlockReward {
  /** What the block was worth (0 when not rewarded). */
  amountFen: number;
  /** Fen paid to each operator (leader share plus signer shares). */
  paid: Record<string, number>;
  status: 'paid' | 'skipped' | 'pool-exhausted';
}

export interface WitnessHead {
  block: number;
  chain: string;
  headerHash: string;
}

export const GENESIS_WITNESS = '0'.repeat(64);

/** WITNESS RULE, written once (an auditor recomputes it with `openssl dgst -sm3`). */
export function witnessStep(prevChain: string, block: number, headerSm3: string, dataSm3: string): string {
  return sm3Hex(`${prevChain}:${block}:${headerSm3}:${dataSm3}`);
}

/**
 * REWARD SPLIT RULE: `proposerShareBps` of the amount to the leader, the rest in equal whole-fen parts to
 * the signers in consenter-id order (the first ones get the odd fen); nothing is lost, nothing made up.
 * Returns fen per consenter id.
 */
export function splitBlockReward(
  amountFen: number,
  proposerShareBps: number,
  leader: number,
  signers: readonly number[],
): Map<number, number> {
  const [leaderPart, signersPart] = splitProportional(amountFen, [
    proposerShareBps,
    10_000 - proposerShareBps,
  ]) as [number, number];
  const ids = [...new Set(signers)].sort((a, b) => a - b);
  const out = new Map<number, number>([[leader, leaderPart]]);
  if (ids.length === 0) out.set(leader, amountFen);
  else
    splitEqual(signersPart, ids.length).forEach((p, i) =>
      out.set(ids[i] as number, (out.get(ids[i] as number) ?? 0) + p),
    );
  return out;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

export async function witnessHead(ctx: TxContext): Promise<WitnessHead | undefined> {
  return getJson<WitnessHead>(ctx.store, Keys.witnessHead());
}

function rewardRule(p: Params): { amountFen: number; proposerShareBps: number; rewardEmptyBlocks: boolean } {
  // Parameter sets written before these fields existed read as the defaults.
  return {
    amountFen: p.blockRewardFen,
    proposerShareBps: p.proposerShareBps ?? 5_000,
    rewardEmptyBlocks: p.rewardEmptyBlocks ?? false,
  };
}

/** Verifies and witnesses consecutive blocks, and pays their rewards (see the module comment). */
export async function claimBlockRewards(
  ctx: TxContext,
  input: unknown,
): Promise<{ witnessed: number; head: WitnessHead; rewardedFen: number; entries: WitnessEntry[] }> {
  await requireMember(ctx);
  const req = parse(claimBlocksSchema, input, 'claim');
  const registered = await consenters(ctx);
  if (registered.length === 0) fail('NO_CONSENTERS', 'no consenter is registered yet (RegisterConsenter)');
  const byId = new Map(registered.map((c) => [c.consenterId, c]));
  const ids = registered.map((c) => c.consenterId);
  const quorum = bftQuorum(ids.length);
  const rule = rewardRule(await paramsAt(ctx.store, ctx.now));

  let head = await witnessHead(ctx);
  const first = req.blocks[0] as { number: number };
  if (head && first.number <= head.block)
    fail('BLOCK_ALREADY_WITNESSED', `block ${first.number} is already witnessed (head ${head.block})`, {
      block: first.number,
      head: head.block,
    });
  if (head && first.number !== head.block + 1)
    fail('BLOCK_OUT_OF_ORDER', `the next block to witness is ${head.block + 1}, not ${first.number}`, {
      expected: head.block + 1,
    });

  const entries: WitnessEntry[] = [];
  for (const ev of req.blocks) {
    if (head && ev.number !== head.block + 1)
      fail('BLOCK_OUT_OF_ORDER', `blocks of a claim are consecutive: ${ev.number} after ${head.block}`);
    const header: BlockHeader = {
      number: BigInt(ev.number),
      previousHash: unb64(ev.previousHash),
      dataHash: unb64(ev.dataHash),
    };
    if (head && hex(header.previousHash) !== head.headerHash)
      fail(
        'BLOCK_SIGNATURE_INVALID',
        `block ${ev.number} does not follow the witnessed block ${head.block}`,
        {
          block: ev.number,
        },
      );
    const data = ctx.transient?.get(blockDataKey(ev.number));
    if (!data)
      fail(
        'BLOCK_DATA_MISSING',
        `the data of block ${ev.number} is missing (transient "${blockDataKey(ev.number)}")`,
      );
    let contents, signed;
    try {
      contents = readBlockData(data, isRewardOverhead);
      signed = readSignatures(header, unb64(ev.signatures));
    } catch (e) {
      if (e instanceof EvidenceError) fail('BLOCK_EVIDENCE_MALFORMED', `block ${ev.number}: ${e.message}`);
      throw e;
    }
    if (hex(contents.dataHash) !== hex(header.dataHash))
      fail(
        'BLOCK_EVIDENCE_MALFORMED',
        `block ${ev.number}: the data does not hash to the header's data hash`,
      );
    const foreign = contents.channels.find((c) => c !== ctx.channelId);
    if (foreign !== undefined)
      fail('BLOCK_WRONG_CHANNEL', `block ${ev.number} holds a transaction of channel "${foreign}"`, {
        channel: foreign,
      });
    const signers = new Set<number>();
    for (const s of signed.signatures) {
      const c = byId.get(s.consenterId);
      if (!c)
        fail(
          'BLOCK_SIGNER_UNKNOWN',
          `block ${ev.number} is signed by ${s.consenterId}, not a registered consenter`,
          {
            consenterId: s.consenterId,
          },
        );
      if (!verifyEcdsaSha256(c.certificate, s.signed, s.signature))
        fail(
          'BLOCK_SIGNATURE_INVALID',
          `block ${ev.number}: consenter ${s.consenterId}'s signature does not verify`,
          {
            consenterId: s.consenterId,
          },
        );
      signers.add(s.consenterId);
    }
    if (signers.size < quorum)
      fail(
        'BLOCK_QUORUM_NOT_MET',
        `block ${ev.number} has ${signers.size} consenter signatures, ${quorum} needed`,
        {
          signatures: signers.size,
          quorum,
        },
      );
    const leader = leaderOf(signed.view, ids);

    const rewarded = contents.businessTransactions > 0 || rule.rewardEmptyBlocks;
    const reward: BlockReward = { amountFen: 0, paid: {}, status: 'skipped' };
    if (rewarded && rule.amountFen > 0) {
      reward.amountFen = rule.amountFen;
      reward.status = 'paid';
      for (const [id, fen] of splitBlockReward(rule.amountFen, rule.proposerShareBps, leader, [...signers])) {
        const mspId = (byId.get(id) as Consenter).mspId;
        reward.paid[mspId] = (reward.paid[mspId] ?? 0) + fen;
      }
    }
    const headerSm3 = sm3Hex(headerBytes(header));
    const dataSm3 = sm3Hex(data);
    const prevChain = head?.chain ?? GENESIS_WITNESS;
    const entry: WitnessEntry = {
      block: ev.number,
      headerSm3,
      dataSm3,
      prevChain,
      chain: witnessStep(prevChain, ev.number, headerSm3, dataSm3),
      headerHash: hex(headerHash(header)),
      leader,
      signers: [...signers].sort((a, b) => a - b),
      view: signed.view.viewId,
      businessTransactions: contents.businessTransactions,
      reward,
      txId: ctx.txId,
    };
    entries.push(entry);
    head = { block: entry.block, chain: entry.chain, headerHash: entry.headerHash };
  }

  // Pay in block order while the pool covers it; a block it cannot cover is recorded as not paid.
  const payout = await creditRewards(
    ctx,
    entries.map((e) =>
      Object.entries(e.reward.paid).map(([mspId, amountFen]) => ({
        mspId,
        ref: `block-${e.block}`,
        amountFen,
      })),
    ),
  );
  for (const [i, e] of entries.entries()) {
    if (e.reward.status === 'paid' && !payout.paid[i]) {
      e.reward.status = 'pool-exhausted';
      e.reward.paid = {};
    }
    await putJson(ctx.store, Keys.witness(e.block), e);
    emit(ctx, 'BlockWitnessed', {
      block: e.block,
      leader: e.leader,
      signers: e.signers,
      reward: e.reward,
    });
  }
  if (payout.paid.includes(false) && entries.some((e) => e.reward.status === 'pool-exhausted'))
    emit(ctx, 'RewardPoolExhausted', { balanceFen: payout.balanceFen });
  await putJson(ctx.store, Keys.witnessHead(), head as WitnessHead);
  return { witnessed: entries.length, head: head as WitnessHead, rewardedFen: payout.paidFen, entries };
}

// --- reads ---

/** Witness entries (and their rewards) from a block on, up to 500. */
export async function witnessEntries(ctx: TxContext, fromBlock: number): Promise<WitnessEntry[]> {
  const [, end] = prefixRange(Keys.witnessPrefix());
  return (await rangeJson<WitnessEntry>(ctx.store, Keys.witness(fromBlock), end, 500)).map((e) => e.value);
}

/** The operator's consenter and its reward record in one view (for GetRewards). */
export async function operatorConsenter(ctx: TxContext, mspId: string): Promise<Consenter | undefined> {
  await getOperator(ctx, mspId);
  return (await consenters(ctx)).find((c) => c.mspId === mspId);
}
