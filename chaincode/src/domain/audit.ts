/**
 * Audit trail (paper, section 3: SM3 hash chains). Every business transaction leaves a record with the
 * SM3 digest of its canonical JSON. Records are chained per operator:
 *
 *   chain_n = SM3(chain_{n-1} || digest_n),  chain_0 = 32 zero bytes
 *
 * Appending to one chain head in every transaction would make the head a hot key (every settlement at an
 * operator's piles would conflict), and so would a per-operator counter assigning sequence numbers at
 * append time. So a transaction only writes its record as "pending" under a key of its own (carrying its
 * transaction id), and `sealAudit` (any operator, any time, e.g. every few seconds) links the pending
 * records into the chain. An auditor verifies the chain offline with `verifyAuditChain`.
 *
 * SEAL ORDER RULE (written once): a seal takes up to MAX_SEAL_BATCH pending records in key order
 * (transaction id, then index within it) and links them in the order of
 * SM3("<chain head the batch continues>/<txId>/<index:4>"), lowest first. The order the chaincode would
 * like, commit order, is not visible to it; the transaction timestamp is the client's own choice (within
 * the peers' 300 s gate), so ordering by it let a client place its record ahead of records committed
 * before it. The head a batch continues is unknown when a transaction is proposed (any member may seal
 * at any time and move it), so no client fixes its place. Hence `seq` orders seal batches, not
 * transactions within a batch; a record's `at` is the time its client claimed.
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
  await putJson(ctx.store, Keys.auditPending(mspId, ctx.txId, nextIndex(ctx, 'audit:' + mspId)), rec);
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

/** SEAL ORDER RULE: the key a pending record is linked by, after the chain head `headChain`. */
export function sealOrderKey(headChain: string, txId: string, index: number): string {
  return sm3Hex(`${headChain}/${txId}/${String(index).padStart(4, '0')}`);
}

/** Any member links up to MAX_SEAL_BATCH pending records of `mspId` into its chain (SEAL ORDER RULE). */
export async function sealAudit(ctx: TxContext, mspId: string): Promise<{ sealed: number; head: AuditHead }> {
  await requireOperator(ctx);
  const pending = await listJson<PendingAudit>(ctx.store, Keys.auditPendingPrefix(mspId), MAX_SEAL_BATCH);
  if (pending.length === 0) fail('AUDIT_NOTHING_TO_SEAL', `no pending audit records for ${mspId}`);
  let head = await auditHead(ctx, mspId);
  const ordered = pending
    .map((e) => ({
      ...e,
      order: sealOrderKey(head.chain, e.value.txId, Number(e.key.slice(e.key.lastIndexOf('/') + 1))),
    }))
    .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  for (const { key, value } of ordered) {
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
