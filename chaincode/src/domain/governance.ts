/**
 * Governance: the tariff, the consortium parameters and membership change only through a proposal that a
 * qualified majority of member operators approves, each vote signed by that operator's admin identity.
 * An enacted change takes effect from a stated time (never before enactment, never before the version it
 * replaces) and every earlier version stays readable.
 *
 * QUORUM RULE (written once): approvals >= ceil(operators x approvalNumerator / approvalDenominator),
 * counted at t = min(now, votingEndsAt): operators = the operators admitted by t that had paid their
 * margin by t or were still within marginDueSec of their admission at t (else the first founder to pay
 * would be a quorum of one, and operators that never pay would freeze governance); only votes of
 * operators whose margin was paid by t count, with the parameters in force at t. Once voting has ended
 * the count is fixed: a proposal that failed when voting ended stays failed when a founder's grace runs
 * out later.
 *
 * DEADLINE RULE (written once): voting lasts at most MAX_VOTING_SEC from the proposal; an approved
 * proposal must be enacted by votingEndsAt + ENACTMENT_WINDOW_SEC, after which it has lapsed (Enact
 * fails with PROPOSAL_LAPSED and any member may close it as "lapsed"). So no old approval, for instance
 * an ADMIT_OPERATOR, can be enacted at a time its voters did not foresee.
 */
import { z } from 'zod';
import { appendAudit } from './audit';
import { allOperators, getConsortium, requireOperator, requireOperatorAdmin, type Operator } from './access';
import { newOperator, operatorNameSchema } from './consortium';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { paramVersions, paramsAt, paramsDraftSchema, tariffVersions, type Params } from './params';
import { exists, getJson, listJson, putJson, emit } from './state';
import { tariffDraftSchema, type Tariff } from './tariff';
import { idSchema, mspIdSchema, parse, timestampSchema } from './validate';

const changeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('TARIFF'), tariff: tariffDraftSchema }).strict(),
  z.object({ kind: z.literal('PARAMS'), params: paramsDraftSchema }).strict(),
  z.object({ kind: z.literal('ADMIT_OPERATOR'), mspId: mspIdSchema, name: operatorNameSchema }).strict(),
]);
export type Change = z.infer<typeof changeSchema>;

/** DEADLINE RULE: the longest a vote may last, from the proposal. */
export const MAX_VOTING_SEC = 90 * 24 * 3600;
/** DEADLINE RULE: how long after voting ends an approved proposal may still be enacted. */
export const ENACTMENT_WINDOW_SEC = 7 * 24 * 3600;

/** DEADLINE RULE: the last second at which a proposal may be enacted. */
export function enactDeadline(p: { votingEndsAt: number }): number {
  return p.votingEndsAt + ENACTMENT_WINDOW_SEC;
}

export const proposeSchema = z
  .object({
    proposalId: idSchema,
    change: changeSchema,
    effectiveFrom: timestampSchema,
    votingEndsAt: timestampSchema,
  })
  .strict();

export interface Proposal {
  proposalId: string;
  change: Change;
  effectiveFrom: number;
  votingEndsAt: number;
  proposer: string;
  proposedAt: number;
  status: 'open' | 'enacted' | 'withdrawn' | 'expired' | 'superseded' | 'lapsed';
  /** For TARIFF and PARAMS: the latest version when proposed; a newer one makes this proposal stale. */
  basedOnVersion?: number;
  closedAt?: number;
  enactedAt?: number;
  enactedVersion?: number;
}
export interface Vote {
  mspId: string;
  approve: boolean;
  at: number;
  txId: string;
}

export function requiredApprovals(operators: number, num: number, den: number): number {
  return Math.ceil((operators * num) / den);
}

/** The latest enacted version of the kind a change replaces (TARIFF, PARAMS), else undefined. */
async function latestVersion(ctx: TxContext, change: Change): Promise<number | undefined> {
  if (change.kind === 'TARIFF') {
    const all = await tariffVersions(ctx.store);
    return all[all.length - 1]?.version ?? 0;
  }
  if (change.kind === 'PARAMS') {
    const all = await paramVersions(ctx.store);
    return all[all.length - 1]?.version ?? 0;
  }
  return undefined;
}

/** A proposal approved against version n must not overwrite a version n+1 enacted meanwhile. */
async function isSuperseded(ctx: TxContext, p: Proposal): Promise<boolean> {
  const latest = await latestVersion(ctx, p.change);
  return latest !== undefined && p.basedOnVersion !== undefined && latest > p.basedOnVersion;
}

/**
 * Checks a change against the current state, at proposal and again at enactment:
 * - an admitted operator must be new, not an auditor organization, and have an unused English name;
 * - the clearing calendar (period length and alignment) is fixed at initialization: changing it would
 *   renumber periods that already hold positions.
 */
async function checkChange(ctx: TxContext, change: Change): Promise<void> {
  if (change.kind === 'ADMIT_OPERATOR') {
    if (await exists(ctx.store, Keys.operator(change.mspId)))
      fail('OPERATOR_EXISTS', `${change.mspId} is already a member`);
    if ((await getConsortium(ctx)).auditorMspIds.includes(change.mspId))
      fail('INVALID_ARGUMENT', `${change.mspId} is an auditor organization`);
    const names = (await listJson<Operator>(ctx.store, Keys.operatorsPrefix())).map((e) => e.value.name);
    if (names.includes(change.name)) fail('OPERATOR_EXISTS', `an operator is already named ${change.name}`);
  } else if (change.kind === 'PARAMS') {
    const current = await paramsAt(ctx.store, ctx.now);
    if (
      change.params.clearingPeriodSec !== current.clearingPeriodSec ||
      change.params.clearingUtcOffsetMinutes !== current.clearingUtcOffsetMinutes
    )
      fail('INVALID_ARGUMENT', 'the clearing period length and alignment cannot change', {
        path: 'change.params.clearingPeriodSec',
      });
  }
}

export async function propose(ctx: TxContext, input: unknown): Promise<Proposal> {
  const op = await requireOperatorAdmin(ctx);
  const req = parse(proposeSchema, input, 'proposal');
  if (req.votingEndsAt <= ctx.now)
    fail('INVALID_ARGUMENT', 'votingEndsAt must be in the future', { path: 'proposal.votingEndsAt' });
  if (req.votingEndsAt > ctx.now + MAX_VOTING_SEC)
    fail('INVALID_ARGUMENT', `voting may last at most ${MAX_VOTING_SEC} s`, {
      path: 'proposal.votingEndsAt',
    });
  await checkChange(ctx, req.change);
  if (await exists(ctx.store, Keys.proposal(req.proposalId)))
    fail('PROPOSAL_EXISTS', `proposal ${req.proposalId} exists`);
  const basedOnVersion = await latestVersion(ctx, req.change);
  const p: Proposal = {
    ...req,
    proposer: op.mspId,
    proposedAt: ctx.now,
    status: 'open',
    ...(basedOnVersion === undefined ? {} : { basedOnVersion }),
  };
  await putJson(ctx.store, Keys.proposal(p.proposalId), p);
  await appendAudit(ctx, op.mspId, 'ProposalSubmitted', { proposalId: p.proposalId, kind: p.change.kind });
  emit(ctx, 'ProposalSubmitted', { proposalId: p.proposalId, kind: p.change.kind });
  return p;
}

export async function getProposal(ctx: TxContext, proposalId: string): Promise<Proposal> {
  const p = await getJson<Proposal>(ctx.store, Keys.proposal(proposalId));
  if (!p) return fail('PROPOSAL_NOT_FOUND', `proposal ${proposalId} does not exist`);
  return p;
}

export const voteSchema = z.object({ proposalId: idSchema, approve: z.boolean() }).strict();

/** One vote per operator; votes are separate keys so operators can vote in the same block. */
export async function vote(ctx: TxContext, input: unknown): Promise<Vote> {
  const op = await requireOperatorAdmin(ctx);
  const req = parse(voteSchema, input, 'vote');
  const p = await getProposal(ctx, req.proposalId);
  if (p.status !== 'open' || ctx.now > p.votingEndsAt)
    fail('PROPOSAL_CLOSED', `proposal ${p.proposalId} is closed for voting`);
  const key = Keys.vote(p.proposalId, op.mspId);
  if (await exists(ctx.store, key)) fail('ALREADY_VOTED', `${op.name} already voted on ${p.proposalId}`);
  const v: Vote = { mspId: op.mspId, approve: req.approve, at: ctx.now, txId: ctx.txId };
  await putJson(ctx.store, key, v);
  await appendAudit(ctx, op.mspId, 'ProposalVoted', { proposalId: p.proposalId, approve: req.approve });
  emit(ctx, 'ProposalVoted', { proposalId: p.proposalId, mspId: op.mspId, approve: req.approve });
  return v;
}

export interface Tally {
  /** The time the count is taken at: min(now, votingEndsAt) (QUORUM RULE). */
  countedAt: number;
  /** Admitted operators that have paid or may still pay (QUORUM RULE): the quorum is a share of these. */
  operators: number;
  /** Operators with their margin paid: only their votes count. */
  members: number;
  required: number;
  approvals: number;
  rejections: number;
  votes: Vote[];
}

/** The QUORUM RULE (top of this file) applied to a proposal's votes. */
export async function tally(ctx: TxContext, proposalId: string): Promise<Tally> {
  const p = await getProposal(ctx, proposalId);
  const at = Math.min(ctx.now, p.votingEndsAt);
  const params = await paramsAt(ctx.store, at);
  const paidBy = (o: Operator): boolean => o.marginPaidFen > 0 && (o.marginPaidAt ?? 0) <= at;
  const operators = (await allOperators(ctx)).filter(
    (o) => o.admittedAt <= at && (paidBy(o) || at < o.admittedAt + params.marginDueSec),
  );
  const members = new Set(operators.filter(paidBy).map((o) => o.mspId));
  const votes = (await listJson<Vote>(ctx.store, Keys.votesPrefix(proposalId)))
    .map((e) => e.value)
    .filter((v) => members.has(v.mspId));
  return {
    countedAt: at,
    operators: operators.length,
    members: members.size,
    required: requiredApprovals(operators.length, params.approvalNumerator, params.approvalDenominator),
    approvals: votes.filter((v) => v.approve).length,
    rejections: votes.filter((v) => !v.approve).length,
    votes,
  };
}

/**
 * VERSIONING RULE (tariffs and parameters alike): versions are dense from 1, and a new version takes
 * effect at the latest of the proposed time, the enactment and the previous version's effective time, so
 * "the newest version whose effectiveFrom has passed" is always the one in force.
 */
export function nextVersion(
  versions: ReadonlyArray<{ version: number; effectiveFrom: number }>,
  proposedFrom: number,
  now: number,
): { version: number; effectiveFrom: number } {
  const last = versions[versions.length - 1];
  return {
    version: (last?.version ?? 0) + 1,
    effectiveFrom: Math.max(proposedFrom, now, last?.effectiveFrom ?? 0),
  };
}

/** Any member enacts an approved proposal; the new version is written with its effective time. */
export async function enact(ctx: TxContext, proposalIdInput: unknown): Promise<Proposal> {
  const op = await requireOperator(ctx);
  const proposalId = parse(idSchema, proposalIdInput, 'proposalId');
  const p = await getProposal(ctx, proposalId);
  if (p.status !== 'open') fail('PROPOSAL_CLOSED', `proposal ${proposalId} is ${p.status}`);
  if (ctx.now > enactDeadline(p))
    fail('PROPOSAL_LAPSED', `proposal ${proposalId} had to be enacted by ${enactDeadline(p)}`, {
      enactBy: enactDeadline(p),
    });
  const t = await tally(ctx, proposalId);
  if (t.approvals < t.required)
    fail('QUORUM_NOT_REACHED', `${t.approvals} of ${t.required} required approvals`, {
      approvals: t.approvals,
      required: t.required,
    });
  let version = 0;
  const change = p.change;
  await checkChange(ctx, change);
  if (await isSuperseded(ctx, p))
    fail(
      'PROPOSAL_SUPERSEDED',
      `a newer ${change.kind} version was enacted after proposal ${proposalId}; propose again`,
    );
  if (change.kind === 'TARIFF') {
    const next = nextVersion(await tariffVersions(ctx.store), p.effectiveFrom, ctx.now);
    version = next.version;
    await putJson(ctx.store, Keys.tariff(version), { ...change.tariff, ...next } satisfies Tariff);
  } else if (change.kind === 'PARAMS') {
    const next = nextVersion(await paramVersions(ctx.store), p.effectiveFrom, ctx.now);
    version = next.version;
    await putJson(ctx.store, Keys.params(version), { ...change.params, ...next } satisfies Params);
  } else {
    await putJson(ctx.store, Keys.operator(change.mspId), newOperator(ctx, change.mspId, change.name));
  }
  const enacted: Proposal = {
    ...p,
    status: 'enacted',
    enactedAt: ctx.now,
    ...(version ? { enactedVersion: version } : {}),
  };
  await putJson(ctx.store, Keys.proposal(proposalId), enacted);
  await appendAudit(ctx, op.mspId, 'ProposalEnacted', { proposalId, kind: change.kind, version });
  emit(ctx, 'ProposalEnacted', { proposalId, kind: change.kind, version });
  return enacted;
}

/**
 * Ends a proposal that will not be enacted: its proposer may withdraw it while it is open; once voting
 * has ended without the required approvals, any member may mark it expired. An approved proposal is
 * enacted, not closed, until its enactment deadline has passed: then any member may mark it lapsed.
 */
export async function closeProposal(ctx: TxContext, proposalIdInput: unknown): Promise<Proposal> {
  const op = await requireOperator(ctx);
  const proposalId = parse(idSchema, proposalIdInput, 'proposalId');
  const p = await getProposal(ctx, proposalId);
  if (p.status !== 'open') fail('PROPOSAL_CLOSED', `proposal ${proposalId} is ${p.status}`);
  const t = await tally(ctx, proposalId);
  let status: Proposal['status'];
  if (await isSuperseded(ctx, p)) {
    status = 'superseded'; // can never be enacted, approved or not
  } else if (t.approvals >= t.required) {
    if (ctx.now <= enactDeadline(p))
      return fail('PROPOSAL_NOT_CLOSABLE', `proposal ${proposalId} was approved: enact it`, {
        enactBy: enactDeadline(p),
      });
    status = 'lapsed';
  } else if (ctx.now > p.votingEndsAt) {
    status = 'expired';
  } else {
    if (op.mspId !== p.proposer || ctx.caller.role !== 'admin')
      fail('PROPOSAL_NOT_CLOSABLE', "only the proposer's admin may withdraw a proposal before voting ends");
    status = 'withdrawn';
  }
  const closed: Proposal = { ...p, status, closedAt: ctx.now };
  await putJson(ctx.store, Keys.proposal(proposalId), closed);
  await appendAudit(ctx, op.mspId, 'ProposalClosed', { proposalId, status });
  emit(ctx, 'ProposalClosed', { proposalId, status });
  return closed;
}
