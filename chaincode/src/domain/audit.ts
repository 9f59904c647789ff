/**
 * Audit trail (paper, section 3: SM3 hash chains). Every business transaction leaves a record with the
 * SM3 digest of its canonical JSON. Records are chained per operator:
 *
 *   chain_n = SM3(chain_{n-1} || digest_n),  chain_0 = 32 zero bytes
 *
 * Appending to one chain head in every transaction would make the head a hot key (every settlement at an
 * operator's piles would conflict), so a transaction only writes its record as "pending" under a key of
 * its own, and `sealAudit` (any operator, any time, e.g. every few seconds) links the pending records
 * into the chain in (timestamp, txId) order. An auditor verifies the chain offline with `verifyAuditChain`.
 */
import { sm3Hex } from '../crypto';
import { canonicalJson } from './canonical';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys, prefixRange } from './keys';
import { requireOperator } from './access';
import { getJson, listJson, putJson, rangeJson, emit } from './state';
import { nextIndex } from './txindex';

export interface AuditBody {
  mspId: string;
  type: string;
  txId: string;
  at: number;
  caller: string;
  data: Record<string, unknown>;
}
export interface PendingAudit extends AuditBody {
  digest: string;
}
export interface AuditRecord extends PendingAudit {
  seq: number;
  prevChain: string;
  chain: string;
}
export interface AuditHead {
  seq: number;
  chain: string;
}

export const GENESIS_CHAIN = '0'.repeat(64);
/** Upper bound on records linked by one seal, keeping the transaction's size and time bounded. */
export const MAX_SEAL_BATCH = 500;

export function auditDigest(body: AuditBody): string {
  return sm3Hex(canonicalJson(body));
}

export function chainStep(prevChain: string, digest: string): string {
  return sm3Hex(Buffer.from(prevChain + digest, 'hex'));
}

export async function appendAudit(
  ctx: TxContext,
  mspId: string,
  type: string,
  data: Record<string, unknown>,
): Promise<PendingAudit> {
  const body: AuditBody = { mspId, type, txId: ctx.txId, at: ctx.now, caller: ctx.caller.id, data };
  const rec: PendingAudit = { ...body, digest: auditDigest(body) };
  await putJson(
    ctx.store,
    Keys.auditPending(mspId, ctx.now, ctx.txId, nextIndex(ctx, 'audit:' + mspId)),
    rec,
  );
  return rec;
}

export async function auditHead(ctx: TxContext, mspId: string): Promise<AuditHead> {
  return (await getJson<AuditHead>(ctx.store, Keys.auditHead(mspId))) ?? { seq: 0, chain: GENESIS_CHAIN };
}

/** Sealed records of an operator from sequence `from` on, at most `limit`. */
export async function auditRecordsFrom(
  ctx: TxContext,
  mspId: string,
  from: number,
  limit: number,
): Promise<AuditRecord[]> {
  const [, end] = prefixRange(Keys.auditRecordsPrefix(mspId));
  return (await rangeJson<AuditRecord>(ctx.store, Keys.auditRecord(mspId, from), end, limit)).map(
    (e) => e.value,
  );
}

/** Any member links up to MAX_SEAL_BATCH pending records of `mspId` into its chain. */
export async function sealAudit(ctx: TxContext, mspId: string): Promise<{ sealed: number; head: AuditHead }> {
  await requireOperator(ctx);
  const pending = await listJson<PendingAudit>(ctx.store, Keys.auditPendingPrefix(mspId), MAX_SEAL_BATCH);
  if (pending.length === 0) fail('AUDIT_NOTHING_TO_SEAL', `no pending audit records for ${mspId}`);
  let head = await auditHead(ctx, mspId);
  for (const { key, value } of pending) {
    const seq = head.seq + 1;
    const chain = chainStep(head.chain, value.digest);
    const rec: AuditRecord = { ...value, seq, prevChain: head.chain, chain };
    await putJson(ctx.store, Keys.auditRecord(mspId, seq), rec);
    await ctx.store.del(key);
    head = { seq, chain };
  }
  await putJson(ctx.store, Keys.auditHead(mspId), head);
  emit(ctx, 'AuditSealed', { mspId, sealed: pending.length, seq: head.seq, chain: head.chain });
  return { sealed: pending.length, head };
}

export interface ChainVerdict {
  ok: boolean;
  verified: number;
  /** Sequence number of the first record that fails, with the reason. */
  firstBad?: { seq: number; reason: 'digest' | 'link' | 'sequence' };
}

/** Offline verification of a chain segment starting at sequence 1 (or continuing from `from`). */
export function verifyAuditChain(
  records: readonly AuditRecord[],
  from: AuditHead = { seq: 0, chain: GENESIS_CHAIN },
): ChainVerdict {
  let head = from;
  for (const r of records) {
    const { digest, seq, prevChain, chain, ...rest } = r;
    if (seq !== head.seq + 1)
      return { ok: false, verified: head.seq - from.seq, firstBad: { seq, reason: 'sequence' } };
    const body: AuditBody = {
      mspId: rest.mspId,
      type: rest.type,
      txId: rest.txId,
      at: rest.at,
      caller: rest.caller,
      data: rest.data,
    };
    if (auditDigest(body) !== digest)
      return { ok: false, verified: head.seq - from.seq, firstBad: { seq, reason: 'digest' } };
    if (prevChain !== head.chain || chainStep(head.chain, digest) !== chain)
      return { ok: false, verified: head.seq - from.seq, firstBad: { seq, reason: 'link' } };
    head = { seq, chain };
  }
  return { ok: true, verified: records.length };
}
