/**
 * The consortium pool: operators' margins in, block rewards out (paper, section 3). Written as one delta
 * key per movement, so margin payments never collide with each other; the balance is the sum. Paying a
 * reward reads the balance (the pool never goes below zero), so it serializes with other pool movements.
 */
import type { TxContext } from './context';
import { Keys } from './keys';
import { listJson, putJson } from './state';
import { nextIndex } from './txindex';

export interface PoolDelta {
  /** Positive: into the pool; negative: out of it. */
  amountFen: number;
  kind: 'margin' | 'reward';
  mspId: string;
  txId: string;
  at: number;
}

export async function poolCredit(
  ctx: TxContext,
  amountFen: number,
  kind: PoolDelta['kind'],
  mspId: string,
): Promise<void> {
  const delta: PoolDelta = { amountFen, kind, mspId, txId: ctx.txId, at: ctx.now };
  await putJson(ctx.store, Keys.poolDelta(ctx.txId, nextIndex(ctx, 'pool')), delta);
}

export interface PoolSummary {
  balanceFen: number;
  marginsFen: number;
  rewardsPaidFen: number;
  movements: number;
}

export async function poolSummary(ctx: TxContext): Promise<PoolSummary> {
  const deltas = (await listJson<PoolDelta>(ctx.store, Keys.poolPrefix())).map((e) => e.value);
  let margins = 0;
  let rewards = 0;
  for (const d of deltas) {
    if (d.kind === 'margin') margins += d.amountFen;
    else rewards -= d.amountFen;
  }
  return {
    balanceFen: margins - rewards,
    marginsFen: margins,
    rewardsPaidFen: rewards,
    movements: deltas.length,
  };
}
