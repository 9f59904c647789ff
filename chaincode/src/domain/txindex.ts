import type { TxContext } from './context';

const counters = new WeakMap<TxContext, Map<string, number>>();

/** 0, 1, 2, ... per (transaction, stream): makes per-transaction keys unique when a tx writes several. */
export function nextIndex(ctx: TxContext, stream: string): number {
  let m = counters.get(ctx);
  if (!m) counters.set(ctx, (m = new Map()));
  const n = m.get(stream) ?? 0;
  m.set(stream, n + 1);
  return n;
}

/** `part` runs inside the transaction of `whole` (a call of a batch): it continues its counters. */
export function continueIndex(part: TxContext, whole: TxContext): void {
  let m = counters.get(whole);
  if (!m) counters.set(whole, (m = new Map()));
  counters.set(part, m);
}
