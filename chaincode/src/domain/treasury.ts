/** An operator's issued but undistributed beans (see beans.ts for how they are issued and spent). */
import type { TxContext } from './context';
import { Keys } from './keys';
import { getJson, putJson } from './state';

export interface Treasury {
  mspId: string;
  beans: number;
}

export async function treasury(ctx: TxContext, mspId: string): Promise<number> {
  return (await getJson<Treasury>(ctx.store, Keys.beanTreasury(mspId)))?.beans ?? 0;
}

export async function setTreasury(ctx: TxContext, mspId: string, beans: number): Promise<void> {
  await putJson(ctx.store, Keys.beanTreasury(mspId), { mspId, beans } satisfies Treasury);
}
