/**
 * The incentive layer as a gateway's reads show it (`evpay gw rewards`, `evpay gw witness`): composed
 * from the REST routes only (GET /v1/consortium, /v1/operators/:mspId/issuance,
 * /v1/clearing/periods/:period/positions, /v1/witness, /v1/witness/head, /v1/consenters), each answer
 * checked with the chaincode's own answer schema, so the numbers are the ledger's, never recomputed
 * from anything else.
 */
import type { EvPayResults } from '@evpay/chaincode/client';
import { queryAnswer, type GatewayClient } from './gatewayClient';

export interface OperatorRewards {
  mspId: string;
  name: string;
  /** Rewards earned so far (fen): what backs the operator's bean issuance. */
  rewardsFen: number;
  /** Beans issued, the issuance limit the rewards allow, and what is left of it (limit - issued). */
  issued: number;
  limit: number;
  remaining: number;
  /** Beans in the operator's treasury (issued and not yet sold or spent). */
  treasury: number;
  /** With a period: the rewards credited to the operator in that clearing period (fen). */
  periodRewardsFen?: number;
}

export interface RewardsReport {
  operators: OperatorRewards[];
  /** The margin pool rewards are paid from (GET /v1/consortium). */
  pool: EvPayResults['GetConsortium']['pool'];
  totals: {
    rewardsFen: number;
    issued: number;
    remaining: number;
    treasury: number;
    periodRewardsFen?: number;
  };
  period?: number;
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

export async function rewardsReport(api: GatewayClient, period?: number): Promise<RewardsReport> {
  const view = queryAnswer('GetConsortium', await api.get('/v1/consortium'));
  const positions =
    period === undefined
      ? undefined
      : queryAnswer('GetPositions', await api.get(`/v1/clearing/periods/${period}/positions`)).positions;
  const operators: OperatorRewards[] = [];
  for (const op of view.operators) {
    const i = queryAnswer(
      'GetIssuance',
      await api.get(`/v1/operators/${encodeURIComponent(op.mspId)}/issuance`),
    );
    operators.push({
      mspId: op.mspId,
      name: op.name,
      rewardsFen: i.rewardsFen,
      issued: i.issued,
      limit: i.limit,
      remaining: i.limit - i.issued,
      treasury: i.treasury,
      ...(positions ? { periodRewardsFen: positions[op.mspId]?.rewardsFen ?? 0 } : {}),
    });
  }
  const total = (f: (o: OperatorRewards) => number): number => sum(operators.map(f));
  return {
    operators,
    pool: view.pool,
    totals: {
      rewardsFen: total((o) => o.rewardsFen),
      issued: total((o) => o.issued),
      remaining: total((o) => o.remaining),
      treasury: total((o) => o.treasury),
      ...(positions ? { periodRewardsFen: total((o) => o.periodRewardsFen ?? 0) } : {}),
    },
    ...(period === undefined ? {} : { period }),
  };
}

export interface WitnessedBlock {
  block: number;
  view: number;
  /** The view's leader (consenter id) and the operator it belongs to. */
  leader: { consenterId: number; mspId: string };
  signers: Array<{ consenterId: number; mspId: string }>;
  businessTransactions: number;
  reward: { status: 'paid' | 'skipped' | 'pool-exhausted'; amountFen: number; paid: Record<string, number> };
  chain: string;
}

export interface WitnessReport {
  head: EvPayResults['GetWitnessHead'];
  blocks: WitnessedBlock[];
  /** Fen paid per operator over the blocks listed. */
  paid: Record<string, number>;
  /** The next --from when more blocks follow (the gateway answers up to 500 a call). */
  next?: number;
}

/** ListWitness answers up to this many entries a call. */
const PAGE = 500;

/** Witnessed blocks from `from` on (up to `to`, else one page of up to 500). */
export async function witnessReport(api: GatewayClient, from = 1, to?: number): Promise<WitnessReport> {
  const head = queryAnswer('GetWitnessHead', await api.get('/v1/witness/head'));
  const mspOf = new Map(
    queryAnswer('GetConsenters', await api.get('/v1/consenters')).map((c) => [c.consenterId, c.mspId]),
  );
  const who = (consenterId: number) => ({ consenterId, mspId: mspOf.get(consenterId) ?? '?' });
  const blocks: WitnessedBlock[] = [];
  let next: number | undefined;
  for (let cursor = from; ;) {
    const page = queryAnswer('ListWitness', await api.get('/v1/witness', { fromBlock: cursor }));
    for (const e of page) {
      if (to !== undefined && e.block > to) break;
      blocks.push({
        block: e.block,
        view: e.view,
        leader: who(e.leader),
        signers: e.signers.map(who),
        businessTransactions: e.businessTransactions,
        reward: { status: e.reward.status, amountFen: e.reward.amountFen, paid: e.reward.paid },
        chain: e.chain,
      });
    }
    const last = page[page.length - 1];
    // A full page may have more after it: read on up to --to, or name the next --from.
    if (!last || page.length < PAGE || (to !== undefined && last.block >= to)) break;
    if (to === undefined) {
      next = last.block + 1;
      break;
    }
    cursor = last.block + 1;
  }
  const paid: Record<string, number> = {};
  for (const b of blocks)
    for (const [mspId, fen] of Object.entries(b.reward.paid)) paid[mspId] = (paid[mspId] ?? 0) + fen;
  return { head, blocks, paid, ...(next === undefined ? {} : { next }) };
}
