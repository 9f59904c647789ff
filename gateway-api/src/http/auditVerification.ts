/**
 * An auditor's check of an operator's audit chain through this gateway's peer: every sealed record read
 * page by page (ListAuditRecords), each SM3 digest and link recomputed here (verifyAuditChain, the
 * chaincode's own rule), and the last link compared with the chain head the ledger reports.
 */
import { verifyAuditChain, type AuditHead, type AuditRecord } from '@evpay/chaincode/client';
// Ledger failures reach the app's error handler, which answers them like any call's.
import { query, type OrgLedger } from '../fabric/orgLedger';

const PAGE = 500;

export interface AuditVerification {
  mspId: string;
  ok: boolean;
  verified: number;
  head: AuditHead;
  firstBad?: { seq: number; reason: string };
}

export async function auditVerification(ledger: OrgLedger, mspId: string): Promise<AuditVerification> {
  const head = await query<AuditHead>(ledger, 'GetAuditHead', [mspId]);
  let at: AuditHead = { seq: 0, chain: '0'.repeat(64) };
  let verified = 0;
  for (;;) {
    const records = await query<AuditRecord[]>(ledger, 'ListAuditRecords', [mspId, String(at.seq + 1)]);
    const verdict = verifyAuditChain(records, at);
    verified += verdict.verified;
    if (!verdict.ok)
      return {
        mspId,
        ok: false,
        verified,
        head,
        ...(verdict.firstBad ? { firstBad: verdict.firstBad } : {}),
      };
    const last = records[records.length - 1];
    if (last) at = { seq: last.seq, chain: last.chain };
    if (records.length < PAGE || at.seq >= head.seq) break;
  }
  const ok = at.seq === head.seq && at.chain === head.chain;
  return { mspId, ok, verified, head, ...(ok ? {} : { firstBad: { seq: at.seq + 1, reason: 'head' } }) };
}
