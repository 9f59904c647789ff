/**
 * Electric beans (paper, section 4). Each operator issues its own beans, up to what its earned block
 * rewards back, and distributes them by charging rebates, sale and red envelopes. One bean is worth
 * `beanWh` of energy at the unified price, redeemable only at the issuer's piles (applied first when a
 * session at one of its piles settles).
 *
 * ISSUANCE RULE (written once): each issuance uses backing = beans x beanFaceValueFen in force when it is
 * issued; remaining(op) = floor((sum of op's rewards in fen - backing used) / current beanFaceValueFen),
 * limit(op) = issued + remaining. So a change of the face value applies to beans not yet issued only.
 *
 * Where beans sit: a wallet's beans of issuer X under one key per (wallet, X), with the part held for
 * open sessions at X's piles (sessions.ts, BEAN HOLD RULE) on the same key; the issuer's
 * undistributed beans in its treasury; beans set aside for rebates at a pile in that pile's float, so
 * rebates at different piles never touch a shared key.
 */
import { z } from 'zod';
import { appendAudit } from './audit';
import { addPosition } from './clearing';
import { getOperator, networkId, requireAdminRole, requireOperator, requireOperatorAdmin } from './access';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { beanPurchaseText, beanTransferText, requireSignature } from './messages';
import { MAX_FEN, mulDivRoundHalfUp } from './money';
import { paramsAt } from './params';
import { getOwnPile, floatSchema, type Pile } from './piles';
import { exists, getJson, listJson, putJson, emit } from './state';
import { poolCredit, poolSummary } from './pool';
import { nextIndex } from './txindex';
import { consumeNonce, consumeReference } from './replay';
import { available, getWallet, putWallet, walletIdSchema, nonceSchema } from './wallets';
import {
  mspIdSchema,
  parse,
  positiveCountSchema,
  positiveFenSchema,
  idSchema,
  signatureSchema,
  timestampSchema,
} from './validate';
import { creditTreasury, debitTreasury, takeForSale, treasury } from './treasury';

export interface BeanBalance {
  walletId: string;
  issuer: string;
  beans: number;
  /** Beans held for open sessions at the issuer's piles (BEAN HOLD RULE, sessions.ts); absent = 0. */
  heldBeans?: number;
}
export interface IssuedDelta {
  beans: number;
  /** Reward fen this issuance used up: beans x the face value in force when it was issued. */
  backingFen: number;
  txId: string;
  at: number;
}
export interface RewardCredit {
  amountFen: number;
  ref: string;
  at: number;
}

export async function beanAccount(ctx: TxContext, walletId: string, issuer: string): Promise<BeanBalance> {
  return (
    (await getJson<BeanBalance>(ctx.store, Keys.beanBalance(walletId, issuer))) ?? {
      walletId,
      issuer,
      beans: 0,
    }
  );
}
export async function beanBalance(ctx: TxContext, walletId: string, issuer: string): Promise<number> {
  return (await beanAccount(ctx, walletId, issuer)).beans;
}
/** Beans the wallet may spend or move: those not held for an open session. */
export const availableBeans = (b: BeanBalance): number => b.beans - (b.heldBeans ?? 0);
export async function putBeanAccount(ctx: TxContext, b: BeanBalance): Promise<void> {
  const { walletId, issuer, beans } = b;
  const held = b.heldBeans ?? 0;
  const record: BeanBalance =
    held > 0 ? { walletId, issuer, beans, heldBeans: held } : { walletId, issuer, beans };
  await putJson(ctx.store, Keys.beanBalance(walletId, issuer), record);
}
/** Adds beans to a wallet's balance of one issuer; what is held stays held. */
export async function creditBeans(
  ctx: TxContext,
  walletId: string,
  issuer: string,
  beans: number,
): Promise<number> {
  const b = await beanAccount(ctx, walletId, issuer);
  await putBeanAccount(ctx, { ...b, beans: b.beans + beans });
  return b.beans + beans;
}
export async function walletBeans(ctx: TxContext, walletId: string): Promise<BeanBalance[]> {
  return (await listJson<BeanBalance>(ctx.store, Keys.beanBalancesPrefix(walletId))).map((e) => e.value);
}

/** Beans the unused part of the rewards still backs at the current face value (the issuance rule). */
export function issuableBeans(rewardsFen: number, backingUsedFen: number, beanFaceValueFen: number): number {
  return Math.max(0, Math.floor((rewardsFen - backingUsedFen) / beanFaceValueFen));
}

export interface IssuanceState {
  mspId: string;
  rewardsFen: number;
  backingUsedFen: number;
  beanFaceValueFen: number;
  limit: number;
  issued: number;
  remaining: number;
  treasury: number;
}

/** Reads every reward and issuance record of the operator: per-transaction keys, summed here. */
export async function issuanceState(ctx: TxContext, mspId: string): Promise<IssuanceState> {
  const params = await paramsAt(ctx.store, ctx.now);
  const rewardsFen = (await listJson<RewardCredit>(ctx.store, Keys.rewardPrefix(mspId))).reduce(
    (s, e) => s + e.value.amountFen,
    0,
  );
  let issued = 0;
  let backingUsedFen = 0;
  for (const { value } of await listJson<IssuedDelta>(ctx.store, Keys.beanIssuedPrefix(mspId))) {
    issued += value.beans;
    backingUsedFen += value.backingFen;
  }
  const remaining = issuableBeans(rewardsFen, backingUsedFen, params.beanFaceValueFen);
  return {
    mspId,
    rewardsFen,
    backingUsedFen,
    beanFaceValueFen: params.beanFaceValueFen,
    limit: issued + remaining,
    issued,
    remaining,
    treasury: await treasury(ctx, mspId),
  };
}

export interface RewardCreditRequest {
  mspId: string;
  /** Unique per operator and reward (e.g. `block-<number>`): a second credit is a replay. */
  ref: string;
  amountFen: number;
}

/**
 * Credits earned rewards to operators, paid out of the pool (paper, section 3), in groups (one group per
 * block): groups are paid in order while the pool covers a whole group; a group it cannot cover is not
 * paid at all, and neither is any later one, so the pool never goes below zero. Called by the incentive
 * layer once a block's evidence is verified (rewards.ts). It reads the whole pool, so a reward and a
 * margin payment in the same block conflict (one retries): rewards are rare next to sessions.
 */
export async function creditRewards(
  ctx: TxContext,
  groups: ReadonlyArray<ReadonlyArray<RewardCreditRequest>>,
): Promise<{ paid: boolean[]; paidFen: number; balanceFen: number }> {
  // Checks below read committed state only, which a second call in the same transaction would not see.
  if (nextIndex(ctx, 'reward') > 0) fail('INVALID_ARGUMENT', 'rewards are credited once per transaction');
  const seen = new Set<string>();
  for (const c of groups.flat()) {
    const k = Keys.reward(c.mspId, c.ref);
    if (seen.has(k) || (await exists(ctx.store, k)))
      fail('REFERENCE_REPLAYED', `reward ${c.ref} of ${c.mspId} was already credited`, {
        kind: 'reward',
        reference: c.ref,
      });
    seen.add(k);
  }
  let balanceFen = (await poolSummary(ctx)).balanceFen;
  let paidFen = 0;
  const paid: boolean[] = [];
  for (const group of groups) {
    const total = group.reduce((s, c) => s + c.amountFen, 0);
    if (total > balanceFen || paid.includes(false)) {
      paid.push(false);
      continue;
    }
    for (const c of group) {
      if (c.amountFen === 0) continue;
      const rec: RewardCredit = { amountFen: c.amountFen, ref: c.ref, at: ctx.now };
      await putJson(ctx.store, Keys.reward(c.mspId, c.ref), rec);
      await poolCredit(ctx, -c.amountFen, 'reward', c.mspId);
      await addPosition(ctx, c.mspId, { rewardsFen: c.amountFen });
    }
    balanceFen -= total;
    paidFen += total;
    paid.push(true);
  }
  return { paid, paidFen, balanceFen };
}

/** One reward to one operator (tests and tools): refused with POOL_EXHAUSTED when the pool cannot pay it. */
export async function creditReward(
  ctx: TxContext,
  mspId: string,
  ref: string,
  amountFen: number,
): Promise<void> {
  const r = await creditRewards(ctx, [[{ mspId, ref, amountFen }]]);
  if (!r.paid[0])
    fail('POOL_EXHAUSTED', `the pool holds ${r.balanceFen} fen, the reward is ${amountFen}`, {
      balanceFen: r.balanceFen,
    });
}

export const issueSchema = z.object({ beans: positiveCountSchema, reference: idSchema }).strict();

export async function issueBeans(ctx: TxContext, input: unknown): Promise<IssuanceState> {
  const op = await requireOperatorAdmin(ctx);
  const req = parse(issueSchema, input, 'issue');
  // Replay first: a retried request learns it already succeeded, not that the limit is now reached.
  await consumeReference(ctx, 'issue', op.mspId, req.reference);
  const state = await issuanceState(ctx, op.mspId);
  if (req.beans > state.remaining)
    fail(
      'ISSUANCE_LIMIT_EXCEEDED',
      `${op.name} may issue ${state.remaining} more beans (limit ${state.limit})`,
      {
        requested: req.beans,
        remaining: state.remaining,
        limit: state.limit,
      },
    );
  const backingFen = req.beans * state.beanFaceValueFen; // <= rewardsFen, so exact
  const delta: IssuedDelta = { beans: req.beans, backingFen, txId: ctx.txId, at: ctx.now };
  await putJson(ctx.store, Keys.beanIssued(op.mspId, ctx.txId), delta);
  await creditTreasury(ctx, op.mspId, req.beans);
  await appendAudit(ctx, op.mspId, 'BeansIssued', { beans: req.beans });
  emit(ctx, 'BeansIssued', { issuer: op.mspId, beans: req.beans });
  return {
    ...state,
    issued: state.issued + req.beans,
    backingUsedFen: state.backingUsedFen + backingFen,
    remaining: state.remaining - req.beans,
    treasury: state.treasury + req.beans,
  };
}

/** Moves beans from the operator's treasury into a pile's rebate float. */
export async function allocateRebateFloat(ctx: TxContext, input: unknown): Promise<Pile> {
  const req = parse(floatSchema, input, 'rebate float');
  const pile = await getOwnPile(ctx, req.pileId);
  requireAdminRole(ctx); // spends the operator's treasury, like issuing beans
  if (pile.status === 'retired') fail('PILE_RETIRED', `pile ${pile.pileId} is retired`);
  await consumeReference(ctx, 'float', pile.operator, req.reference);
  await debitTreasury(ctx, pile.operator, req.beans);
  const updated: Pile = { ...pile, rebateFloat: pile.rebateFloat + req.beans };
  await putJson(ctx.store, Keys.pile(pile.pileId), updated);
  await appendAudit(ctx, pile.operator, 'RebateFloatAllocated', { pileId: pile.pileId, beans: req.beans });
  emit(ctx, 'RebateFloatAllocated', { pileId: pile.pileId, beans: req.beans, float: updated.rebateFloat });
  return updated;
}

/**
 * REBATE RULE: a rebate is earned on energy paid for in money, never on energy paid with beans (so beans
 * never mint beans) nor on energy left uncollected over the driver's cap (so a pile cannot report energy
 * it will not be paid for to hand out beans): paidWh = floor(cashWh x chargedFen / cashDueFen), where
 * cashWh is the energy not covered by beans and cashDueFen its price (0 when nothing was due). Then one
 * bean per `rebateWhPerBean` Wh of paidWh, bounded by the pile's float.
 */
export function paidEnergyWh(cashWh: number, chargedFen: number, cashDueFen: number): number {
  if (cashDueFen <= 0 || chargedFen <= 0) return 0;
  return Number((BigInt(cashWh) * BigInt(Math.min(chargedFen, cashDueFen))) / BigInt(cashDueFen));
}
export function rebateFor(paidWh: number, rebateWhPerBean: number, pileFloat: number): number {
  if (rebateWhPerBean <= 0) return 0;
  return Math.min(pileFloat, Math.floor(paidWh / rebateWhPerBean));
}

export interface BeanRedemption {
  beansUsed: number;
  coveredWh: number;
  beanValueFen: number;
}
/**
 * How many of the issuer's beans a session uses: whole beans only, never more energy than was charged;
 * their value is the share of the session's price for the energy they cover (rounded half up).
 */
export function redeemBeans(
  energyWh: number,
  totalFen: number,
  beansHeld: number,
  beanWh: number,
): BeanRedemption {
  const beansUsed = Math.min(beansHeld, Math.floor(energyWh / beanWh));
  const coveredWh = beansUsed * beanWh;
  const beanValueFen = energyWh === 0 ? 0 : mulDivRoundHalfUp(totalFen, coveredWh, energyWh);
  // Beans are never spent for nothing (a free or near-free session keeps them).
  if (beanValueFen === 0) return { beansUsed: 0, coveredWh: 0, beanValueFen: 0 };
  return { beansUsed, coveredWh, beanValueFen };
}

export const purchaseSchema = z
  .object({
    walletId: walletIdSchema,
    issuer: mspIdSchema,
    beans: positiveCountSchema,
    maxCostFen: positiveFenSchema,
    nonce: nonceSchema,
    expiresAt: timestampSchema,
    signature: signatureSchema,
  })
  .strict();

/** A driver buys an operator's beans with wallet money at the operator's current price. */
export async function buyBeans(ctx: TxContext, input: unknown): Promise<{ beans: number; costFen: number }> {
  await requireOperator(ctx);
  const req = parse(purchaseSchema, input, 'purchase');
  const w = await getWallet(ctx, req.walletId);
  requireSignature(w.publicKey, beanPurchaseText(await networkId(ctx), req), req.signature, 'purchase');
  // Replay first: a retried purchase learns it went through, not that the beans or money ran out.
  await consumeNonce(ctx, w.walletId, req.nonce);
  if (req.expiresAt < ctx.now) fail('AUTHORIZATION_EXPIRED', 'the purchase authorization has expired');
  const issuer = await getOperator(ctx, req.issuer);
  if (issuer.beanSalePriceFen === 0) fail('BEANS_NOT_ON_SALE', `${issuer.name} does not sell beans`);
  if (BigInt(issuer.beanSalePriceFen) * BigInt(req.beans) > BigInt(MAX_FEN))
    fail('AMOUNT_OUT_OF_RANGE', 'purchase too large', { beans: req.beans });
  const costFen = issuer.beanSalePriceFen * req.beans;
  if (costFen > req.maxCostFen)
    fail('AMOUNT_OUT_OF_RANGE', `cost ${costFen} fen exceeds the signed maximum ${req.maxCostFen}`, {
      costFen,
    });
  if (available(w) < costFen)
    fail('INSUFFICIENT_FUNDS', `wallet has ${available(w)} fen available`, { costFen });
  // Concurrent sales start in different treasury buckets, so most commit in the same block.
  await takeForSale(ctx, issuer.mspId, req.beans, `${w.walletId}/${req.nonce}`);
  await putWallet(ctx, { ...w, balanceFen: w.balanceFen - costFen });
  await creditBeans(ctx, w.walletId, issuer.mspId, req.beans);
  const period = await addPosition(ctx, issuer.mspId, { beanSalesFen: costFen });
  await appendAudit(ctx, issuer.mspId, 'BeansSold', {
    walletId: w.walletId,
    beans: req.beans,
    costFen,
    period,
  });
  emit(ctx, 'BeansCredited', {
    walletId: w.walletId,
    issuer: issuer.mspId,
    beans: req.beans,
    reason: 'sale',
  });
  return { beans: req.beans, costFen };
}

export const transferSchema = z
  .object({
    fromWalletId: walletIdSchema,
    toWalletId: walletIdSchema,
    issuer: mspIdSchema,
    beans: positiveCountSchema,
    nonce: nonceSchema,
    expiresAt: timestampSchema,
    signature: signatureSchema,
  })
  .strict()
  .refine((t) => t.fromWalletId !== t.toWalletId, {
    message: 'cannot transfer to the same wallet',
    path: ['toWalletId'],
  });

/** A driver gives some of its beans of one issuer to another wallet, by signature. */
export async function transferBeans(ctx: TxContext, input: unknown): Promise<{ from: number; to: number }> {
  await requireOperator(ctx);
  const req = parse(transferSchema, input, 'transfer');
  const from = await getWallet(ctx, req.fromWalletId);
  await getWallet(ctx, req.toWalletId);
  requireSignature(from.publicKey, beanTransferText(await networkId(ctx), req), req.signature, 'transfer');
  await consumeNonce(ctx, from.walletId, req.nonce); // replay first, as for a purchase
  if (req.expiresAt < ctx.now) fail('AUTHORIZATION_EXPIRED', 'the transfer authorization has expired');
  const sender = await beanAccount(ctx, req.fromWalletId, req.issuer);
  // Beans held for an open session stay where they are (BEAN HOLD RULE, sessions.ts).
  const have = availableBeans(sender);
  if (have < req.beans)
    fail('INSUFFICIENT_BEANS', `wallet holds ${have} beans of ${req.issuer} not held for a session`, {
      have,
    });
  await putBeanAccount(ctx, { ...sender, beans: sender.beans - req.beans });
  const to = await creditBeans(ctx, req.toWalletId, req.issuer, req.beans);
  await appendAudit(ctx, req.issuer, 'BeansTransferred', {
    from: req.fromWalletId,
    to: req.toWalletId,
    beans: req.beans,
  });
  emit(ctx, 'BeansCredited', {
    walletId: req.toWalletId,
    issuer: req.issuer,
    beans: req.beans,
    reason: 'transfer',
  });
  return { from: sender.beans - req.beans, to };
}
