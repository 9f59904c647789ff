/**
 * Replay detection, written once. A retried submission (after a timeout, a gateway restart) must never
 * apply twice: driver-signed messages carry a nonce, operator-initiated changes carry the operator's own
 * reference. Both are remembered forever under keys of their own.
 */
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { exists, putJson } from './state';

export interface Spent {
  txId: string;
  at: number;
}

/** A driver-signed nonce is accepted once per wallet, ever. */
export async function consumeNonce(ctx: TxContext, walletId: string, nonce: string): Promise<void> {
  const key = Keys.nonce(walletId, nonce);
  if (await exists(ctx.store, key))
    fail('NONCE_REUSED', `nonce ${nonce} was already used by this wallet`, { nonce });
  await putJson(ctx.store, key, { txId: ctx.txId, at: ctx.now } satisfies Spent);
}

/** An operator's reference for one kind of change is accepted once. */
export async function consumeReference(
  ctx: TxContext,
  kind: string,
  mspId: string,
  reference: string,
): Promise<void> {
  const key = Keys.opReference(kind, mspId, reference);
  if (await exists(ctx.store, key))
    fail('REFERENCE_REPLAYED', `${kind} ${reference} of ${mspId} was already recorded`, { kind, reference });
  await putJson(ctx.store, key, { txId: ctx.txId, at: ctx.now } satisfies Spent);
}
