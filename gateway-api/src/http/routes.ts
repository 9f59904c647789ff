/**
 * The REST resources: each route names the contract transaction it runs, who may call it, and how its
 * path, query and body become the transaction's arguments. Bodies ARE the chaincode's argument objects,
 * validated by the chaincode's own exported schemas (one source of truth); path and query parameters
 * fill the text and integer arguments. The OpenAPI document is generated from this table.
 *
 * ROLES RULE (written once): reads are open to every role of this gateway's organization; a pile
 * backend runs sessions (and suspends or resumes piles) for its piles; a driver app opens wallets and
 * moves a driver's money or beans only with the driver's SM2 signature inside the body; an operator admin
 * does everything its operator may, with the organization's admin identity; an auditor only reads.
 */
import { z } from 'zod';
import { toInteger, type EvPayTransactionName } from '@evpay/chaincode/client';
import type { Role } from '../auth/credentials';

export interface RouteInput {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
}

export interface Route {
  method: 'get' | 'post';
  /** Express-style path (`:name` parameters). */
  path: string;
  tx: EvPayTransactionName;
  roles: readonly Role[];
  summary: string;
  /** Query parameters (values arrive as strings; coerce them here). */
  query?: z.ZodObject<z.ZodRawShape>;
  /** Whether the request has a JSON body (the transaction's json argument). */
  body?: boolean;
  /** The transaction's argument values in wire order. Default: path parameters by name, then the body. */
  args?(input: RouteInput): unknown[];
  /** The piles a request acts on, for pile-scoped credentials. */
  piles?(input: RouteInput): string[];
  /**
   * For a transaction that either a driver signs or, unsigned, the operator does as itself: the roles
   * that may send it without the driver's `signature` (the chaincode sees only the organization, so the
   * gateway tells an operator admin from a driver app). Absent: any role of `roles`.
   */
  unsignedRoles?: readonly Role[];
}

const ALL: readonly Role[] = ['pile-backend', 'driver-app', 'operator-admin', 'auditor'];
const ADMIN: readonly Role[] = ['operator-admin'];
const PILE: readonly Role[] = ['pile-backend', 'operator-admin'];
const DRIVER: readonly Role[] = ['driver-app', 'operator-admin'];
const AUDIT: readonly Role[] = ['auditor', 'operator-admin'];

const field = (v: unknown, ...path: string[]): string | undefined => {
  let cur: unknown = v;
  for (const p of path)
    cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[p] : undefined;
  return typeof cur === 'string' ? cur : undefined;
};
const pilesAt =
  (...path: string[]) =>
  (i: RouteInput): string[] => {
    const p = field(i.body, ...path);
    return p === undefined ? [] : [p];
  };

/**
 * Integers in paths and query strings are decimal digits only, read as the chaincode reads its integer
 * arguments (toInteger): `1e3`, `0x10`, ` 5` or `-1` stay strings and fail the schema, never become a number.
 */
const integerText = (raw: string | undefined): unknown => toInteger(raw ?? '');
const timestamp = z.preprocess((v) => (typeof v === 'string' ? integerText(v) : v), z.number().int());
const windowQuery = z.object({ from: timestamp.optional(), to: timestamp.optional() }).strict();
const windowOf = (q: Record<string, unknown>): Record<string, unknown> | undefined =>
  q.from === undefined && q.to === undefined ? undefined : { from: q.from, to: q.to };

/**
 * Transactions with no REST route, and why. A claim carries whole blocks as transient data; the reward
 * keeper inside each operator's gateway makes it (rewards/keeper.ts). A session batch is the gateway's
 * own way of sending the session routes' calls (fabric/batcher.ts).
 */
export const NOT_ROUTED: Readonly<Partial<Record<EvPayTransactionName, string>>> = {
  ClaimBlockRewards:
    "made by the reward keeper in each operator's gateway, with the blocks as transient data",
  SessionBatch:
    'made by the gateway itself: session calls that arrive while it has transactions in flight go together (fabric/batcher.ts)',
};

export const routes: readonly Route[] = [
  // --- consortium, tariff and governance ---
  {
    method: 'get',
    path: '/v1/consortium',
    tx: 'GetConsortium',
    roles: ALL,
    summary: 'The consortium, its operators and the pool',
  },
  {
    method: 'get',
    path: '/v1/params',
    tx: 'ListParams',
    roles: ALL,
    summary: 'Every version of the consortium parameters',
  },
  {
    method: 'get',
    path: '/v1/tariffs',
    tx: 'ListTariffs',
    roles: ALL,
    summary: 'Every version of the unified tariff',
  },
  {
    method: 'post',
    path: '/v1/consortium',
    tx: 'InitConsortium',
    roles: ADMIN,
    body: true,
    summary: 'Found the consortium from the pinned genesis document',
  },
  {
    method: 'post',
    path: '/v1/margin',
    tx: 'PayMargin',
    roles: ADMIN,
    summary: "Declare this operator's margin paid",
  },
  {
    method: 'post',
    path: '/v1/operators/:mspId/margin-confirmation',
    tx: 'ConfirmMargin',
    roles: ADMIN,
    summary: "The custodian confirms an operator's margin",
  },
  {
    method: 'post',
    path: '/v1/policy',
    tx: 'SetOperatorPolicy',
    roles: ADMIN,
    body: true,
    summary: "Set this operator's bean rebate and sale price",
  },
  {
    method: 'post',
    path: '/v1/proposals',
    tx: 'Propose',
    roles: ADMIN,
    body: true,
    summary: 'Propose a tariff, parameters or a new operator',
  },
  {
    method: 'get',
    path: '/v1/proposals/:proposalId',
    tx: 'GetProposal',
    roles: ALL,
    summary: 'A proposal and its tally',
  },
  {
    method: 'post',
    path: '/v1/votes',
    tx: 'Vote',
    roles: ADMIN,
    body: true,
    summary: 'Vote on an open proposal',
  },
  {
    method: 'post',
    path: '/v1/proposals/:proposalId/enactment',
    tx: 'Enact',
    roles: ADMIN,
    summary: 'Enact an approved proposal',
  },
  {
    method: 'post',
    path: '/v1/proposals/:proposalId/closure',
    tx: 'CloseProposal',
    roles: ADMIN,
    summary: 'Withdraw, expire or lapse a proposal',
  },
  // --- piles ---
  {
    method: 'post',
    path: '/v1/piles',
    tx: 'RegisterPile',
    roles: ADMIN,
    body: true,
    summary: 'Register a pile of this operator',
  },
  {
    method: 'post',
    path: '/v1/pile-status',
    tx: 'SetPileStatus',
    roles: PILE,
    body: true,
    piles: pilesAt('pileId'),
    summary: 'Suspend, resume or retire (admin) a pile',
  },
  {
    method: 'get',
    path: '/v1/piles/:pileId',
    tx: 'GetPile',
    roles: ALL,
    piles: (i) => [i.params.pileId ?? ''],
    summary: 'A pile',
  },
  {
    method: 'get',
    path: '/v1/operators/:mspId/piles',
    tx: 'ListPiles',
    roles: ALL,
    summary: "An operator's piles, 500 per page",
    query: z.object({ after: z.string().optional() }).strict(),
    args: (i) => [
      { mspId: i.params.mspId, ...(i.query.after === undefined ? {} : { after: i.query.after }) },
    ],
  },
  // --- wallets ---
  {
    method: 'post',
    path: '/v1/wallets',
    tx: 'OpenWallet',
    roles: DRIVER,
    body: true,
    summary: "Open a driver's wallet for an SM2 public key",
  },
  {
    method: 'get',
    path: '/v1/wallets/:walletId',
    tx: 'GetWallet',
    roles: ALL,
    summary: 'A wallet and its bean balances',
  },
  {
    method: 'post',
    path: '/v1/top-ups',
    tx: 'TopUp',
    roles: ADMIN,
    body: true,
    summary: 'Credit money this operator received to a wallet',
  },
  {
    method: 'post',
    path: '/v1/refunds',
    tx: 'RefundWallet',
    roles: DRIVER,
    body: true,
    summary: 'Pay a wallet balance out (signed by the driver)',
  },
  // --- charging sessions ---
  {
    method: 'post',
    path: '/v1/sessions',
    tx: 'StartSession',
    roles: PILE,
    body: true,
    // The reading's pile too: a start on a card's standing authorization names no pile elsewhere.
    piles: (i) => [...pilesAt('authorization', 'pileId')(i), ...pilesAt('startReading', 'pileId')(i)],
    summary: "Start a session on a driver's signed authorization or a card's standing authorization",
  },
  {
    method: 'post',
    path: '/v1/session-readings',
    tx: 'RecordReading',
    roles: PILE,
    body: true,
    piles: pilesAt('reading', 'pileId'),
    summary: 'Record a signed progress reading',
  },
  {
    method: 'post',
    path: '/v1/session-stops',
    tx: 'StopSession',
    roles: PILE,
    body: true,
    piles: pilesAt('stopReading', 'pileId'),
    summary: 'Stop and settle a session on its signed stop reading',
  },
  {
    method: 'post',
    path: '/v1/stale-session-closures',
    tx: 'CloseStaleSession',
    roles: PILE,
    body: true,
    piles: pilesAt('pileId'),
    summary: 'Settle a session whose pile went silent',
  },
  {
    method: 'post',
    path: '/v1/authorization-revocations',
    tx: 'RevokeAuthorization',
    roles: DRIVER,
    body: true,
    summary: 'Revoke an unused authorization (signed by the driver)',
  },
  {
    method: 'post',
    path: '/v1/standing-authorizations',
    tx: 'RegisterStanding',
    roles: DRIVER,
    body: true,
    summary: "Register a driver's signed standing authorization of an RFID card issued by this operator",
  },
  {
    method: 'post',
    path: '/v1/standing-revocations',
    tx: 'RevokeStanding',
    roles: DRIVER,
    unsignedRoles: ADMIN,
    body: true,
    summary: 'Revoke a standing authorization (signed by the driver, or by this operator as its issuer)',
  },
  {
    method: 'get',
    path: '/v1/standing-authorizations/:standingId',
    tx: 'GetStanding',
    roles: ALL,
    summary: 'A standing authorization and its counters',
  },
  {
    method: 'get',
    path: '/v1/operators/:mspId/cards/:cardDigest/standing-authorization',
    tx: 'GetStandingByTag',
    roles: ALL,
    summary: 'The standing authorization last registered for a card (its idTag digest) at an operator',
    args: (i) => [{ operator: i.params.mspId, idTagSm3: i.params.cardDigest }],
  },
  {
    method: 'get',
    path: '/v1/piles/:pileId/sessions/:sessionId',
    tx: 'GetSession',
    roles: ALL,
    piles: (i) => [i.params.pileId ?? ''],
    summary: 'A session',
  },
  {
    method: 'get',
    path: '/v1/piles/:pileId/sessions',
    tx: 'FindSessions',
    roles: ALL,
    query: windowQuery,
    summary: "A pile's sessions started in a time window (up to 500)",
    piles: (i) => [i.params.pileId ?? ''],
    args: (i) => [
      { by: 'pile', pileId: i.params.pileId, ...(windowOf(i.query) ? { window: windowOf(i.query) } : {}) },
    ],
  },
  {
    method: 'get',
    path: '/v1/wallets/:walletId/sessions',
    tx: 'FindSessions',
    roles: ALL,
    query: windowQuery,
    summary: "A wallet's sessions started in a time window (up to 500)",
    args: (i) => [
      {
        by: 'wallet',
        walletId: i.params.walletId,
        ...(windowOf(i.query) ? { window: windowOf(i.query) } : {}),
      },
    ],
  },
  {
    method: 'get',
    path: '/v1/operators/:mspId/periods/:period/sessions',
    tx: 'FindSessions',
    roles: ALL,
    summary: "An operator's sessions settled in a clearing period, paged after (afterPile, afterSession)",
    query: z.object({ afterPile: z.string().optional(), afterSession: z.string().optional() }).strict(),
    args: (i) => [
      {
        by: 'operator',
        mspId: i.params.mspId,
        period: integerText(i.params.period),
        ...(i.query.afterPile !== undefined || i.query.afterSession !== undefined
          ? { after: { pileId: i.query.afterPile, sessionId: i.query.afterSession } }
          : {}),
      },
    ],
  },
  // --- electric beans ---
  {
    method: 'post',
    path: '/v1/bean-issues',
    tx: 'IssueBeans',
    roles: ADMIN,
    body: true,
    summary: 'Issue beans backed by earned rewards',
  },
  {
    method: 'post',
    path: '/v1/rebate-floats',
    tx: 'AllocateRebateFloat',
    roles: ADMIN,
    body: true,
    summary: "Move beans to a pile's rebate float",
  },
  {
    method: 'post',
    path: '/v1/bean-purchases',
    tx: 'BuyBeans',
    roles: DRIVER,
    body: true,
    summary: "Buy an operator's beans (signed by the driver)",
  },
  {
    method: 'post',
    path: '/v1/bean-transfers',
    tx: 'TransferBeans',
    roles: DRIVER,
    body: true,
    summary: 'Transfer beans between wallets (signed by the sender)',
  },
  {
    method: 'get',
    path: '/v1/operators/:mspId/issuance',
    tx: 'GetIssuance',
    roles: ALL,
    summary: "An operator's bean issuance",
  },
  {
    method: 'post',
    path: '/v1/envelopes',
    tx: 'CreateEnvelope',
    roles: ADMIN,
    body: true,
    summary: 'Create a red envelope of beans',
  },
  {
    method: 'get',
    path: '/v1/envelopes/:envelopeId',
    tx: 'GetEnvelope',
    roles: ALL,
    summary: 'A red envelope',
  },
  {
    method: 'post',
    path: '/v1/envelope-claims',
    tx: 'ClaimEnvelope',
    roles: DRIVER,
    body: true,
    summary: 'Claim a share of a red envelope (signed by the driver)',
  },
  {
    method: 'post',
    path: '/v1/envelopes/:envelopeId/closure',
    tx: 'CloseEnvelope',
    roles: ADMIN,
    summary: 'Close a red envelope and take back what is left',
  },
  // --- clearing ---
  {
    method: 'post',
    path: '/v1/clearing/roll-ups',
    tx: 'RollUpPositions',
    roles: ADMIN,
    body: true,
    summary: 'One bounded step of closing a busy period',
  },
  {
    method: 'post',
    path: '/v1/clearing/periods/:period/closure',
    tx: 'ClosePeriod',
    roles: ADMIN,
    summary: 'Close a clearing period and plan its transfers',
  },
  {
    method: 'get',
    path: '/v1/clearing/periods/:period',
    tx: 'GetClearing',
    roles: ALL,
    summary: "A closed period's clearing and its transfers",
  },
  {
    method: 'get',
    path: '/v1/clearing/periods/:period/positions',
    tx: 'GetPositions',
    roles: ALL,
    summary: 'Running positions of a clearing period',
    query: z.object({ mspId: z.string().optional() }).strict(),
    args: (i) => [
      {
        period: integerText(i.params.period),
        ...(i.query.mspId === undefined ? {} : { mspId: i.query.mspId }),
      },
    ],
  },
  {
    method: 'post',
    path: '/v1/clearing/confirmations',
    tx: 'ConfirmTransfer',
    roles: ADMIN,
    body: true,
    summary: 'Confirm one planned clearing transfer',
  },
  // --- the incentive layer ---
  {
    method: 'post',
    path: '/v1/consenters',
    tx: 'RegisterConsenter',
    roles: ADMIN,
    body: true,
    summary: "Register this operator's SmartBFT consenter and its certificate",
  },
  {
    method: 'get',
    path: '/v1/consenters',
    tx: 'GetConsenters',
    roles: ALL,
    summary: 'The registered consenters',
  },
  {
    method: 'get',
    path: '/v1/witness/head',
    tx: 'GetWitnessHead',
    roles: ALL,
    summary: 'The head of the SM3 block witness chain',
  },
  {
    method: 'get',
    path: '/v1/witness',
    tx: 'ListWitness',
    roles: ALL,
    summary: 'Witnessed blocks from a block number: leader, signers, reward, SM3 chain',
    query: z.object({ fromBlock: z.string().default('1') }).strict(),
    args: (i) => [i.query.fromBlock],
  },
  // --- audit ---
  {
    method: 'post',
    path: '/v1/audit/:mspId/seal',
    tx: 'SealAudit',
    roles: ADMIN,
    summary: "Seal an operator's pending audit records into its chain",
  },
  {
    method: 'get',
    path: '/v1/audit/:mspId/head',
    tx: 'GetAuditHead',
    roles: AUDIT,
    summary: "The head of an operator's audit chain",
  },
  {
    method: 'get',
    path: '/v1/audit/:mspId/records',
    tx: 'ListAuditRecords',
    roles: AUDIT,
    summary: 'Up to 500 sealed audit records from a sequence number',
    query: z.object({ fromSeq: z.string().default('1') }).strict(),
    args: (i) => [i.params.mspId, i.query.fromSeq],
  },
  {
    method: 'get',
    path: '/v1/audit/key-history',
    tx: 'KeyHistory',
    roles: AUDIT,
    summary: 'Every committed version of a world-state key',
    query: z.object({ key: z.string() }).strict(),
    args: (i) => [i.query.key],
  },
];
