/**
 * Driver wallets, keyed by the driver's SM2 public key (id = SM3 of the key). Money enters by a top-up
 * recorded by the operator that received the cash; it leaves only with the driver's signature (a session
 * authorization, a bean purchase, or a refund paid out in cash by the operator it names). Holds reserve
 * a session's cap, so concurrent sessions cannot spend the same money: they all update this one wallet
 * key, and Fabric's MVCC lets one win.
 */
import { z } from 'zod';
import { isValidSm2PublicKey } from '../crypto';
import { appendAudit } from './audit';
import { addPosition } from './clearing';
import { networkId, requireOperator } from './access';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { refundText, requireSignature, walletIdOf } from './messages';
import { MAX_TOPUP_FEN, MAX_WALLET_FEN } from './money';
import { consumeNonce, consumeReference } from './replay';
import { exists, getJson, putJson, emit } from './state';
import {
  hexSchema,
  idSchema,
  mspIdSchema,
  parse,
  positiveFenSchema,
  publicKeySchema,
  signatureSchema,
  timestampSchema,
} from './validate';

export interface Wallet {
  walletId: string;
  publicKey: string;
  balanceFen: number;
  heldFen: number;
  openedAt: number;
  openedBy: string;
}

export const walletIdSchema = hexSchema(64);
export const nonceSchema = idSchema;

export const available = (w: Wallet): number => w.balanceFen - w.heldFen;

export async function getWallet(ctx: TxContext, walletId: string): Promise<Wallet> {
  const w = await getJson<Wallet>(ctx.store, Keys.wallet(walletId));
  if (!w) return fail('WALLET_NOT_FOUND', `wallet ${walletId} does not exist`, { walletId });
  return w;
}

export async function putWallet(ctx: TxContext, w: Wallet): Promise<void> {
  await putJson(ctx.store, Keys.wallet(w.walletId), w);
}

export const openSchema = z.object({ publicKey: publicKeySchema }).strict();

/** Any operator may open a wallet for a driver's key: it cannot be spent without that key. */
export async function openWallet(ctx: TxContext, input: unknown): Promise<Wallet> {
  const op = await requireOperator(ctx);
  const req = parse(openSchema, input, 'wallet');
  if (!isValidSm2PublicKey(req.publicKey))
    fail('INVALID_ARGUMENT', 'publicKey is not a point on the SM2 curve');
  const walletId = walletIdOf(req.publicKey);
  if (await exists(ctx.store, Keys.wallet(walletId)))
    fail('WALLET_EXISTS', `wallet ${walletId} already exists`, { walletId });
  const w: Wallet = {
    walletId,
    publicKey: req.publicKey,
    balanceFen: 0,
    heldFen: 0,
    openedAt: ctx.now,
    openedBy: op.mspId,
  };
  await putWallet(ctx, w);
  await appendAudit(ctx, op.mspId, 'WalletOpened', { walletId, publicKey: req.publicKey });
  emit(ctx, 'WalletOpened', { walletId });
  return w;
}

export const topUpSchema = z
  .object({ walletId: walletIdSchema, amountFen: positiveFenSchema.max(MAX_TOPUP_FEN), reference: idSchema })
  .strict();

/**
 * The calling operator received `amountFen` in cash for this wallet. `reference` is the operator's own
 * payment reference: the same reference twice is a replay and is refused.
 */
export async function topUp(ctx: TxContext, input: unknown): Promise<Wallet> {
  const op = await requireOperator(ctx);
  const req = parse(topUpSchema, input, 'top-up');
  await consumeReference(ctx, 'topup', op.mspId, req.reference);
  const w = await getWallet(ctx, req.walletId);
  if (w.balanceFen + req.amountFen > MAX_WALLET_FEN)
    fail('AMOUNT_OUT_OF_RANGE', `a wallet holds at most ${MAX_WALLET_FEN} fen`, { balanceFen: w.balanceFen });
  const updated: Wallet = { ...w, balanceFen: w.balanceFen + req.amountFen };
  await putWallet(ctx, updated);
  const period = await addPosition(ctx, op.mspId, { topUpCashFen: req.amountFen });
  await appendAudit(ctx, op.mspId, 'TopUp', {
    walletId: w.walletId,
    amountFen: req.amountFen,
    reference: req.reference,
    period,
  });
  emit(ctx, 'WalletToppedUp', { walletId: w.walletId, amountFen: req.amountFen, operator: op.mspId });
  return updated;
}

export const refundSchema = z
  .object({
    walletId: walletIdSchema,
    operator: mspIdSchema,
    amountFen: positiveFenSchema.max(MAX_WALLET_FEN),
    nonce: nonceSchema,
    expiresAt: timestampSchema,
    signature: signatureSchema,
  })
  .strict();

/**
 * The calling operator paid `amountFen` of the wallet's available money out to the driver, who signed
 * the request naming that operator (so no other operator can book the payout). The operator's clearing
 * due grows by what it paid, as the pool's side shrinks: refunds are the way money leaves the network.
 */
export async function refundWallet(ctx: TxContext, input: unknown): Promise<Wallet> {
  const op = await requireOperator(ctx);
  const req = parse(refundSchema, input, 'refund');
  const w = await getWallet(ctx, req.walletId);
  requireSignature(w.publicKey, refundText(await networkId(ctx), req), req.signature, 'refund');
  if (req.operator !== op.mspId)
    fail('FORBIDDEN', `the driver asked ${req.operator} to pay this refund, not ${op.mspId}`, {
      operator: req.operator,
    });
  // Replay first: a retried refund learns it was already paid, not that the money is gone.
  await consumeNonce(ctx, w.walletId, req.nonce);
  if (req.expiresAt < ctx.now) fail('AUTHORIZATION_EXPIRED', 'the refund request has expired');
  if (available(w) < req.amountFen)
    fail('INSUFFICIENT_FUNDS', `wallet has ${available(w)} fen available`, { amountFen: req.amountFen });
  const updated: Wallet = { ...w, balanceFen: w.balanceFen - req.amountFen };
  await putWallet(ctx, updated);
  const period = await addPosition(ctx, op.mspId, { refundCashFen: req.amountFen });
  await appendAudit(ctx, op.mspId, 'Refund', {
    walletId: w.walletId,
    amountFen: req.amountFen,
    nonce: req.nonce,
    period,
  });
  emit(ctx, 'WalletRefunded', { walletId: w.walletId, amountFen: req.amountFen, operator: op.mspId });
  return updated;
}
