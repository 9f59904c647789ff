/**
 * Consortium parameters: one versioned set, the same for every operator (the paper's "standardized
 * contract template"). Changed only through governance; old versions stay readable.
 */
import { z } from 'zod';
import type { StateStore } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { listJson } from './state';
import { inForce, type Tariff } from './tariff';
import { fenSchema, positiveCountSchema, positiveFenSchema } from './validate';

/**
 * How far a proposal's timestamp may be from the endorsing peer's clock (the gate is in
 * contracts/fabricContext.ts). Rules that compare times across transactions must allow for it.
 */
export const MAX_TX_TIME_SKEW_SEC = 300;

export const paramsDraftSchema = z
  .object({
    /** Deposit each operator pays into the pool when it joins. */
    marginFen: positiveFenSchema,
    /**
     * How long an admitted operator has to pay its margin. Until it pays it counts toward the governance
     * quorum (so the first to pay cannot govern alone) for this long; after that an unpaid admission
     * lapses from the quorum (so operators that never pay cannot freeze governance). Paying later is
     * still allowed.
     */
    marginDueSec: z
      .number()
      .int()
      .min(3600)
      .max(90 * 24 * 3600),
    /** Reward paid from the pool per rewarded block (rewards.ts). */
    blockRewardFen: fenSchema,
    /**
     * The share of a block's reward, in basis points, that goes to the consenter that proposed it (the
     * view's leader); the rest is split equally among the consenters whose signatures certify it.
     */
    proposerShareBps: z.number().int().min(0).max(10_000).default(5_000),
    /** Whether blocks with no business transaction (only reward claims, configuration) are rewarded. */
    rewardEmptyBlocks: z.boolean().default(false),
    /** Energy one electric bean is worth, at the unified price, at the issuer's piles. */
    beanWh: z.number().int().min(1).max(1_000_000),
    /** Reward fen that back one bean when it is issued (the issuance rule is in beans.ts). */
    beanFaceValueFen: positiveFenSchema,
    envelopeMaxBeans: positiveCountSchema,
    envelopeMaxClaimants: z.number().int().min(1).max(10_000),
    envelopeMaxTtlSec: z
      .number()
      .int()
      .min(60)
      .max(90 * 24 * 3600),
    /** After this, the pile's operator may close a session with its last signed reading. */
    sessionMaxOpenSec: z
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600),
    /** Clearing period length and alignment (local midnight for a day). */
    clearingPeriodSec: z
      .number()
      .int()
      .min(60)
      .max(31 * 24 * 3600),
    clearingUtcOffsetMinutes: z.number().int().min(-720).max(840),
    /**
     * A period may be closed only this long after it ended, so late transactions still land in it; at
     * least the clock skew a proposal may have, or a close stamped ahead of the peers' clocks would
     * shut a period that has not really ended.
     */
    clearingGraceSec: z
      .number()
      .int()
      .min(MAX_TX_TIME_SKEW_SEC)
      .max(24 * 3600),
    /** Qualified majority of operators for governance: approvals >= ceil(members * num / den). */
    approvalNumerator: z.number().int().min(1).max(100),
    approvalDenominator: z.number().int().min(1).max(100),
  })
  .strict()
  .refine(
    (p) => p.approvalNumerator <= p.approvalDenominator && p.approvalNumerator * 2 > p.approvalDenominator,
    {
      message: 'approval threshold must be a majority and at most 100 %',
      path: ['approvalNumerator'],
    },
  );
export type ParamsDraft = z.infer<typeof paramsDraftSchema>;
export interface Params extends ParamsDraft {
  version: number;
  effectiveFrom: number;
}

/**
 * Versions of a kind (parameters, tariffs), read once per transaction: a settlement needs the parameters
 * in several rules, and each range read is a round trip to the peer. Reads never see the transaction's
 * own writes, so the first answer stays right for the whole transaction (each has its own store).
 */
const versionLists = new WeakMap<StateStore, Map<string, Promise<ReadonlyArray<unknown>>>>();

function versions<T>(store: StateStore, prefix: string): Promise<ReadonlyArray<T>> {
  let byPrefix = versionLists.get(store);
  if (!byPrefix) versionLists.set(store, (byPrefix = new Map()));
  let list = byPrefix.get(prefix);
  if (!list) byPrefix.set(prefix, (list = listJson<T>(store, prefix).then((all) => all.map((e) => e.value))));
  return list as Promise<ReadonlyArray<T>>;
}

export function paramVersions(store: StateStore): Promise<ReadonlyArray<Params>> {
  return versions<Params>(store, Keys.paramsPrefix());
}

export function tariffVersions(store: StateStore): Promise<ReadonlyArray<Tariff>> {
  return versions<Tariff>(store, Keys.tariffPrefix());
}

export async function paramsAt(store: StateStore, t: number): Promise<Params> {
  const p = inForce(await paramVersions(store), t);
  if (!p) return fail('CONSORTIUM_NOT_INITIALIZED', 'no consortium parameters in force');
  return p;
}
