/**
 * Every operator's margin declared and confirmed by the custodian, so the pool holds money (rewards are
 * paid from it). Idempotent: on a network an earlier test left, they are declared or paid already. Each
 * step waits until every peer has its block, since the next may be endorsed by any of them.
 */
import {
  chaincodeError,
  committedOnEveryPeer,
  connectAs,
  submit,
  whenEndorsable,
} from '../../../network/tools/client';
import { net } from './fabric';

async function step(mspId: string, fn: string, args: string[], already: RegExp): Promise<void> {
  const conn = connectAs(net, mspId, 'admin');
  try {
    const r = await whenEndorsable(() => submit(conn, fn, ...args));
    await committedOnEveryPeer(net, r.blockNumber);
  } catch (e) {
    if (!already.test(chaincodeError(e)?.code ?? '')) throw e;
  } finally {
    conn.close();
  }
}

export async function marginsPaid(): Promise<void> {
  const custodian = net.orgs.find((o) => o.role === 'auditor')?.mspId ?? 'AuditorMSP';
  for (const op of net.orgs.filter((o) => o.role === 'operator')) {
    await step(op.mspId, 'PayMargin', [], /^MARGIN_ALREADY_(DECLARED|PAID)$/);
    await step(custodian, 'ConfirmMargin', [op.mspId], /^MARGIN_ALREADY_PAID$/);
  }
}
