/**
 * The one place where world-state key layouts are defined. Keys are plain strings of '/'-separated
 * components; every component is a validated identifier (no '/'), so a prefix range never leaks into a
 * neighbouring entity. Fixed-width numbers keep key order equal to numeric order.
 *
 * Hot-key rule: anything that many unrelated transactions would update (pool, positions, issued
 * counters, audit) is written as one new key per transaction and aggregated by range on read.
 */
const SEP = '/';

export function pad(n: number, width = 16): string {
  return String(n).padStart(width, '0');
}

function k(...parts: string[]): string {
  return parts.join(SEP);
}

/** [start, end) covering every key that begins with `prefix`. */
export function prefixRange(prefix: string): [string, string] {
  const last = prefix.charCodeAt(prefix.length - 1);
  return [prefix, prefix.slice(0, -1) + String.fromCharCode(last + 1)];
}

export const Keys = {
  consortium: () => k('consortium'),
  operator: (mspId: string) => k('operator', mspId),
  operatorsPrefix: () => 'operator' + SEP,
  /** Versioned parameter sets and tariffs: version numbers are dense from 1. */
  params: (version: number) => k('params', pad(version, 8)),
  paramsPrefix: () => 'params' + SEP,
  tariff: (version: number) => k('tariff', pad(version, 8)),
  tariffPrefix: () => 'tariff' + SEP,
  proposal: (id: string) => k('proposal', id),
  vote: (proposalId: string, mspId: string) => k('vote', proposalId, mspId),
  votesPrefix: (proposalId: string) => k('vote', proposalId) + SEP,
  /** Pool movements: margins in, rewards out. One key per transaction. */
  poolDelta: (txId: string, index: number) => k('pool', txId, pad(index, 4)),
  poolPrefix: () => 'pool' + SEP,
  pile: (pileId: string) => k('pile', pileId),
  pilesPrefix: () => 'pile' + SEP,
  wallet: (walletId: string) => k('wallet', walletId),
  /** A driver's standing authorization of a card (standing.ts), and its counters. */
  standing: (standingId: string) => k('standing', standingId),
  /** The standing authorization last registered for a card (by its idTag digest) at an operator. */
  standingByTag: (operator: string, idTagSm3: string) => k('standing-tag', operator, idTagSm3),
  nonce: (walletId: string, nonce: string) => k('nonce', walletId, nonce),
  /** An operator's own reference for a state change (payment id, request id): a replay finds it taken. */
  opReference: (kind: string, mspId: string, reference: string) => k('ref', kind, mspId, reference),
  /** Lookup indexes: one key per session, ordered by start time. */
  sessionsByPile: (pileId: string, startedAt: number, sessionId: string) =>
    k('idx-pile', pileId, pad(startedAt, 12), sessionId),
  sessionsByPilePrefix: (pileId: string) => k('idx-pile', pileId) + SEP,
  sessionsByWallet: (walletId: string, startedAt: number, pileId: string, sessionId: string) =>
    k('idx-wallet', walletId, pad(startedAt, 12), pileId, sessionId),
  sessionsByWalletPrefix: (walletId: string) => k('idx-wallet', walletId) + SEP,
  /** Settled sessions of an operator's piles by clearing period, written at settlement. */
  sessionsByPeriod: (period: number, mspId: string, pileId: string, sessionId: string) =>
    k('idx-period', pad(period, 8), mspId, pileId, sessionId),
  sessionsByPeriodPrefix: (period: number, mspId: string) => k('idx-period', pad(period, 8), mspId) + SEP,
  /** A session id is the pile's own: it is unique per pile, so no pile can take another's next id. */
  session: (pileId: string, sessionId: string) => k('session', pileId, sessionId),
  /** Beans of `issuer` held by `walletId`. */
  beanBalance: (walletId: string, issuer: string) => k('beans', walletId, issuer),
  beanBalancesPrefix: (walletId: string) => k('beans', walletId) + SEP,
  /** Operator's issued-but-undistributed beans, in buckets (treasury.ts). */
  beanTreasury: (mspId: string, bucket: number) => k('treasury', mspId, pad(bucket, 2)),
  /** Cumulative issuance, one key per issuing transaction. */
  beanIssued: (mspId: string, txId: string) => k('issued', mspId, txId),
  beanIssuedPrefix: (mspId: string) => k('issued', mspId) + SEP,
  /** An operator's SmartBFT consenter, by consenter id (rewards.ts). */
  consenter: (id: number) => k('consenter', pad(id, 4)),
  consentersPrefix: () => 'consenter' + SEP,
  /** The SM3 block witness: one entry per block, in block order, and the chain's head. */
  witness: (block: number) => k('witness', pad(block, 12)),
  witnessPrefix: () => 'witness' + SEP,
  witnessHead: () => k('witness-head'),
  /** Rewards earned by an operator, one key per reward (written by the incentive layer). */
  reward: (mspId: string, ref: string) => k('reward', mspId, ref),
  rewardPrefix: (mspId: string) => k('reward', mspId) + SEP,
  envelope: (envelopeId: string) => k('envelope', envelopeId),
  /** An envelope's shares in buckets, each its own key, so claims landing in different buckets never collide. */
  envelopeBucket: (envelopeId: string, bucket: number) => k('envbucket', envelopeId, pad(bucket, 4)),
  envelopeBucketsPrefix: (envelopeId: string) => k('envbucket', envelopeId) + SEP,
  envelopeClaim: (envelopeId: string, walletId: string) => k('claim', envelopeId, walletId),
  /** Clearing positions: one key per transaction and operator within a period. */
  position: (period: number, mspId: string, txId: string, index: number) =>
    k('position', pad(period, 8), mspId, txId, pad(index, 4)),
  positionsPrefix: (period: number) => k('position', pad(period, 8)) + SEP,
  operatorPositionsPrefix: (period: number, mspId: string) => k('position', pad(period, 8), mspId) + SEP,
  /** An operator's positions of a period summed so far by RollUpPositions, with the last key it read. */
  rollup: (period: number, mspId: string) => k('rollup', pad(period, 8), mspId),
  clearing: (period: number) => k('clearing', pad(period, 8)),
  confirmation: (period: number, transfer: number, side: 'payer' | 'payee') =>
    k('confirm', pad(period, 8), pad(transfer, 4), side),
  /**
   * Audit records awaiting their place in the operator's chain. The key carries the transaction id, not
   * the client's timestamp; the order they are linked in is audit.ts's SEAL ORDER RULE.
   */
  auditPending: (mspId: string, txId: string, index: number) => k('auditpending', mspId, txId, pad(index, 4)),
  auditPendingPrefix: (mspId: string) => k('auditpending', mspId) + SEP,
  auditRecord: (mspId: string, seq: number) => k('audit', mspId, pad(seq)),
  auditRecordsPrefix: (mspId: string) => k('audit', mspId) + SEP,
  auditHead: (mspId: string) => k('audithead', mspId),
} as const;
