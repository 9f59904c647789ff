/**
 * The registry of EvPayContract's transactions: for each, whether it is submitted or evaluated, its
 * arguments in wire order with the zod schema the chaincode validates each one with (the very schema
 * objects the domain rules parse with, never copies), and the TypeScript type of its answer. A client
 * (the REST gateway) imports it from `@evpay/chaincode/client` to refuse what the chaincode would refuse
 * and to generate its OpenAPI; `transactionJsonSchemas()` gives each argument as a JSON Schema. The
 * contract's metadata (GetMetadata) is built from it too, and a test keeps its keys equal to the
 * contract's @Transaction methods. No Fabric import here.
 *
 * Arguments stay strings on the wire: `json` arguments are one JSON text (≤ 64 KiB, see parseJsonArg)
 * whose parsed value the schema checks; `text` ones are the plain string the schema checks; `integer`
 * ones are decimal digits, read as a number (toInteger) before the schema checks it.
 */
import { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import type { Consortium, Operator } from './access';
import type { auditHead, auditRecordsFrom, sealAudit } from './audit';
import {
  issueSchema,
  purchaseSchema,
  transferSchema,
  type allocateRebateFloat,
  type buyBeans,
  type issuanceState,
  type issueBeans,
  type transferBeans,
  type walletBeans,
} from './beans';
import {
  confirmSchema,
  periodSchema,
  rollUpSchema,
  type closePeriod,
  type confirmTransfer,
  type getClearing,
  type rollUpPositions,
  type transferStatus,
} from './clearing';
import {
  initSchema,
  operatorPolicySchema,
  type confirmMargin,
  type initConsortium,
  type payMargin,
  type setOperatorPolicy,
} from './consortium';
import {
  claimSchema,
  createSchema,
  type claimEnvelope,
  type closeEnvelope,
  type createEnvelope,
  type getEnvelope,
} from './envelopes';
import {
  proposeSchema,
  voteSchema,
  type closeProposal,
  type enact,
  type getProposal,
  type propose,
  type tally,
  type vote,
} from './governance';
import { batchSchema, type runSessionBatch } from './batch';
import { bySchema, type findSessions, type periodPositions } from './lookups';
import {
  claimBlocksSchema,
  consenterSchema,
  type claimBlockRewards,
  type consenters,
  type registerConsenter,
  type witnessEntries,
  type WitnessHead,
} from './rewards';
import type { paramVersions, tariffVersions } from './params';
import {
  floatSchema,
  listSchema,
  pileIdSchema,
  registerSchema,
  statusSchema,
  type getPile,
  type listPiles,
  type registerPile,
  type setPileStatus,
} from './piles';
import type { PoolSummary } from './pool';
import {
  recordSchema,
  revokeSchema,
  staleSchema,
  startSchema,
  stopSchema,
  type closeStaleSession,
  type getSession,
  type recordReading,
  type revokeAuthorization,
  type startSession,
  type stopSession,
} from './sessions';
import {
  registerStandingSchema,
  revokeStandingSchema,
  standingByTagSchema,
  standingIdSchema,
  type getStanding,
  type registerStanding,
  type revokeStanding,
  type standingByTag,
} from './standing';
import { idSchema, mspIdSchema } from './validate';
import {
  openSchema,
  refundSchema,
  topUpSchema,
  walletIdSchema,
  type getWallet,
  type openWallet,
  type refundWallet,
  type topUp,
} from './wallets';

// --- schemas of the arguments the contract itself reads (queries), kept here so there is one copy ---

/** ListAuditRecords' fromSeq: a sealed record's sequence number. */
export const seqSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** KeyHistory's key: any world-state key of this chaincode. */
export const historyKeySchema = z
  .string()
  .min(1)
  .max(300)
  .regex(/^[A-Za-z0-9._/-]+$/, 'a world-state key');
/** GetPositions' query. */
export const positionsQuerySchema = z
  .object({ period: z.number().int().min(0).max(100_000_000), mspId: mspIdSchema.optional() })
  .strict();

/**
 * An `integer` argument as the contract reads it: 1 to 15 decimal digits become a number, anything else
 * stays a string (and the schema refuses it).
 */
export function toInteger(raw: string): unknown {
  return /^\d{1,15}$/.test(raw) ? Number(raw) : raw;
}

// --- the registry ---

/** How an argument is carried in its wire string (see the module comment). */
export type ArgEncoding = 'json' | 'text' | 'integer';

export interface ArgSpec {
  /** The parameter's name in EvPayContract (and in GetMetadata). */
  readonly name: string;
  readonly encoding: ArgEncoding;
  readonly schema: z.ZodTypeAny;
}

export interface TransactionSpec {
  /** true: submitted (endorsed and ordered); false: evaluated (a query). */
  readonly submit: boolean;
  readonly args: readonly ArgSpec[];
  readonly description: string;
}

const json = <S extends z.ZodTypeAny>(name: string, schema: S) =>
  ({ name, encoding: 'json', schema }) as const;
const text = <S extends z.ZodTypeAny>(name: string, schema: S) =>
  ({ name, encoding: 'text', schema }) as const;
const integer = <S extends z.ZodTypeAny>(name: string, schema: S) =>
  ({ name, encoding: 'integer', schema }) as const;
const submit = <A extends readonly ArgSpec[]>(description: string, ...args: A) =>
  ({ submit: true, args, description }) as const;
const query = <A extends readonly ArgSpec[]>(description: string, ...args: A) =>
  ({ submit: false, args, description }) as const;

/** Every transaction of the `evpay` contract, by name. chaincode/README.md §1 says who may call each. */
export const evpayTransactions = {
  // consortium and governance
  InitConsortium: submit('Founds the consortium from the pinned genesis document.', json('init', initSchema)),
  PayMargin: submit("Declares the caller operator's margin paid to the custodian."),
  ConfirmMargin: submit("The custodian confirms an operator's declared margin.", text('mspId', mspIdSchema)),
  SetOperatorPolicy: submit(
    "Sets the caller operator's bean rebate and sale price.",
    json('policy', operatorPolicySchema),
  ),
  Propose: submit('Proposes a tariff, parameters or a new operator.', json('proposal', proposeSchema)),
  Vote: submit("Votes on an open proposal for the caller's operator.", json('ballot', voteSchema)),
  Enact: submit('Enacts an approved proposal.', text('proposalId', idSchema)),
  CloseProposal: submit('Withdraws, expires or lapses a proposal.', text('proposalId', idSchema)),
  // piles, wallets, sessions
  RegisterPile: submit("Registers a pile of the caller's operator.", json('pile', registerSchema)),
  SetPileStatus: submit('Suspends, resumes or retires a pile.', json('status', statusSchema)),
  OpenWallet: submit("Opens a driver's wallet for an SM2 public key.", json('wallet', openSchema)),
  TopUp: submit('Credits cash taken by the caller operator to a wallet.', json('topup', topUpSchema)),
  RefundWallet: submit('Pays a wallet balance out, signed by the driver.', json('refund', refundSchema)),
  StartSession: submit('Starts a charging session on a driver authorization.', json('start', startSchema)),
  StopSession: submit('Stops and settles a session.', json('stop', stopSchema)),
  RecordReading: submit('Records a progress reading of an open session.', json('record', recordSchema)),
  CloseStaleSession: submit('Settles a session whose pile went silent.', json('close', staleSchema)),
  RevokeAuthorization: submit('Revokes an unused driver authorization.', json('revocation', revokeSchema)),
  SessionBatch: submit(
    'Runs several session calls in one transaction, each answered on its own (domain/batch.ts).',
    json('batch', batchSchema),
  ),
  RegisterStanding: submit(
    "Registers a driver's signed standing authorization of an RFID card (by the card's issuer).",
    json('standing', registerStandingSchema),
  ),
  RevokeStanding: submit(
    'Revokes a standing authorization (signed by the driver, or by the issuer).',
    json('revocation', revokeStandingSchema),
  ),
  // electric beans
  IssueBeans: submit('Issues beans backed by the operator rewards.', json('issue', issueSchema)),
  AllocateRebateFloat: submit("Moves beans to a pile's rebate float.", json('float', floatSchema)),
  BuyBeans: submit(
    "Buys an operator's beans from a wallet, signed by the driver.",
    json('purchase', purchaseSchema),
  ),
  TransferBeans: submit(
    'Transfers beans between wallets, signed by the sender.',
    json('transfer', transferSchema),
  ),
  CreateEnvelope: submit('Creates a red envelope of beans.', json('envelope', createSchema)),
  ClaimEnvelope: submit('Claims a share of a red envelope.', json('claim', claimSchema)),
  CloseEnvelope: submit('Closes a red envelope and returns what is left.', text('envelopeId', idSchema)),
  // clearing and audit
  RollUpPositions: submit(
    'One bounded step of closing a busy period for an operator.',
    json('rollup', rollUpSchema),
  ),
  ClosePeriod: submit('Closes a clearing period and plans the transfers.', integer('period', periodSchema)),
  ConfirmTransfer: submit('Confirms one planned clearing transfer.', json('confirmation', confirmSchema)),
  SealAudit: submit(
    "Seals an operator's pending audit records into its hash chain.",
    text('mspId', mspIdSchema),
  ),
  // the incentive layer
  RegisterConsenter: submit(
    "Registers the caller operator's SmartBFT consenter and its certificate.",
    json('consenter', consenterSchema),
  ),
  ClaimBlockRewards: submit(
    'Witnesses consecutive blocks from their evidence and pays their rewards (block data as transient).',
    json('claim', claimBlocksSchema),
  ),
  // queries (members and auditors)
  GetConsortium: query('The consortium, its operators and the pool.'),
  ListParams: query('Every version of the consortium parameters.'),
  ListTariffs: query('Every version of the tariff.'),
  GetProposal: query('A proposal and its tally.', text('proposalId', idSchema)),
  GetPile: query('A pile.', text('pileId', pileIdSchema)),
  ListPiles: query("An operator's piles, 500 per page.", json('query', listSchema)),
  GetWallet: query('A wallet and its bean balances.', text('walletId', walletIdSchema)),
  GetSession: query('A session.', text('pileId', pileIdSchema), text('sessionId', idSchema)),
  GetStanding: query('A standing authorization and its counters.', text('standingId', standingIdSchema)),
  GetStandingByTag: query(
    'The standing authorization last registered for a card (idTag digest) at an operator.',
    json('query', standingByTagSchema),
  ),
  FindSessions: query("Sessions of a pile, a wallet, or an operator's period.", json('query', bySchema)),
  GetPositions: query('Running positions of a clearing period.', json('query', positionsQuerySchema)),
  GetIssuance: query("An operator's bean issuance.", text('mspId', mspIdSchema)),
  GetEnvelope: query('A red envelope.', text('envelopeId', idSchema)),
  GetClearing: query("A closed period's clearing and its transfers.", integer('period', periodSchema)),
  GetAuditHead: query("The head of an operator's audit chain.", text('mspId', mspIdSchema)),
  ListAuditRecords: query(
    "Up to 500 of an operator's sealed audit records from a sequence number.",
    text('mspId', mspIdSchema),
    integer('fromSeq', seqSchema),
  ),
  KeyHistory: query('Every committed version of a world-state key.', text('key', historyKeySchema)),
  GetConsenters: query('The registered consenters and their certificates.'),
  GetWitnessHead: query('The head of the SM3 block witness chain (block 0 before the first claim).'),
  ListWitness: query(
    'Up to 500 witness entries (leader, signers, reward) from a block number.',
    integer('fromBlock', seqSchema),
  ),
} as const satisfies Record<string, TransactionSpec>;

export type EvPayTransactionName = keyof typeof evpayTransactions;

type ArgsOf<N extends EvPayTransactionName> = (typeof evpayTransactions)[N]['args'];
type InputsOf<A extends readonly ArgSpec[]> = {
  -readonly [I in keyof A]: A[I] extends { schema: infer S extends z.ZodTypeAny } ? z.input<S> : never;
};
/** The values of a transaction's arguments before they are written to wire strings, in wire order. */
export type TransactionInput<N extends EvPayTransactionName> = InputsOf<ArgsOf<N>>;

type Answer<F extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<F>>;

/**
 * The answer of each transaction, as its canonical JSON parses (the gateway's response bodies); answers.ts
 * has the zod schema of each, held to this type by the compiler.
 */
export interface EvPayResults {
  InitConsortium: Answer<typeof initConsortium>;
  PayMargin: Answer<typeof payMargin>;
  ConfirmMargin: Answer<typeof confirmMargin>;
  SetOperatorPolicy: Answer<typeof setOperatorPolicy>;
  Propose: Answer<typeof propose>;
  Vote: Answer<typeof vote>;
  Enact: Answer<typeof enact>;
  CloseProposal: Answer<typeof closeProposal>;
  RegisterPile: Answer<typeof registerPile>;
  SetPileStatus: Answer<typeof setPileStatus>;
  OpenWallet: Answer<typeof openWallet>;
  TopUp: Answer<typeof topUp>;
  RefundWallet: Answer<typeof refundWallet>;
  StartSession: Answer<typeof startSession>;
  StopSession: Answer<typeof stopSession>;
  RecordReading: Answer<typeof recordReading>;
  CloseStaleSession: Answer<typeof closeStaleSession>;
  RevokeAuthorization: Answer<typeof revokeAuthorization>;
  SessionBatch: Answer<typeof runSessionBatch>;
  RegisterStanding: Answer<typeof registerStanding>;
  RevokeStanding: Answer<typeof revokeStanding>;
  IssueBeans: Answer<typeof issueBeans>;
  AllocateRebateFloat: Answer<typeof allocateRebateFloat>;
  BuyBeans: Answer<typeof buyBeans>;
  TransferBeans: Answer<typeof transferBeans>;
  CreateEnvelope: Answer<typeof createEnvelope>;
  ClaimEnvelope: Answer<typeof claimEnvelope>;
  CloseEnvelope: Answer<typeof closeEnvelope>;
  RollUpPositions: Answer<typeof rollUpPositions>;
  ClosePeriod: Answer<typeof closePeriod>;
  ConfirmTransfer: Answer<typeof confirmTransfer>;
  SealAudit: Answer<typeof sealAudit>;
  RegisterConsenter: Answer<typeof registerConsenter>;
  ClaimBlockRewards: Answer<typeof claimBlockRewards>;
  GetConsortium: { consortium: Consortium; operators: Operator[]; pool: PoolSummary };
  ListParams: Answer<typeof paramVersions>;
  ListTariffs: Answer<typeof tariffVersions>;
  GetProposal: { proposal: Answer<typeof getProposal>; tally: Answer<typeof tally> };
  GetPile: Answer<typeof getPile>;
  ListPiles: Answer<typeof listPiles>;
  GetWallet: { wallet: Answer<typeof getWallet>; beans: Answer<typeof walletBeans> };
  GetSession: Answer<typeof getSession>;
  GetStanding: Answer<typeof getStanding>;
  GetStandingByTag: Answer<typeof standingByTag>;
  FindSessions: Answer<typeof findSessions>;
  GetPositions: Answer<typeof periodPositions>;
  GetIssuance: Answer<typeof issuanceState>;
  GetEnvelope: Answer<typeof getEnvelope>;
  GetClearing: { result: Answer<typeof getClearing>; transfers: Answer<typeof transferStatus> };
  GetAuditHead: Answer<typeof auditHead>;
  ListAuditRecords: Answer<typeof auditRecordsFrom>;
  KeyHistory: Array<{ txId: string; timestamp: number; isDelete: boolean; value: unknown }>;
  GetConsenters: Answer<typeof consenters>;
  GetWitnessHead: WitnessHead;
  ListWitness: Answer<typeof witnessEntries>;
}

// --- helpers for clients ---

export type ArgCheck = { ok: true; value: unknown } | { ok: false; issues: z.ZodIssue[] };

/** Reads one wire string as the chaincode does and checks it with the chaincode's schema. */
export function checkWireArg(arg: ArgSpec, raw: string): ArgCheck {
  let value: unknown = raw;
  if (arg.encoding === 'integer') value = toInteger(raw);
  else if (arg.encoding === 'json') {
    try {
      value = JSON.parse(raw) as unknown;
    } catch {
      return { ok: false, issues: [{ code: 'custom', path: [], message: 'not valid JSON' }] };
    }
  }
  const r = arg.schema.safeParse(value);
  return r.success ? { ok: true, value: r.data as unknown } : { ok: false, issues: r.error.issues };
}

/** The wire strings of a transaction's arguments, given their values (JSON texts for `json` ones). */
export function toWireArgs<N extends EvPayTransactionName>(
  name: N,
  values: NoInfer<TransactionInput<N>>,
): string[] {
  const args: readonly ArgSpec[] = evpayTransactions[name].args;
  return args.map((a, i) => {
    const v: unknown = (values as readonly unknown[])[i];
    return a.encoding === 'json' ? JSON.stringify(v) : String(v);
  });
}

// zodToJsonSchema's generic signature is too deep for tsc on ZodTypeAny (TS2589); this is its plain shape.
const toJsonSchema = zodToJsonSchema as unknown as (
  schema: z.ZodTypeAny,
  options: { $refStrategy: 'none' },
) => object;

/** A zod schema as a JSON Schema (draft-07, every sub-schema inlined: no $ref, no $schema key). */
export function jsonSchemaOf(zodSchema: z.ZodTypeAny): Record<string, unknown> {
  const schema: Record<string, unknown> = { ...toJsonSchema(zodSchema, { $refStrategy: 'none' }) };
  delete schema.$schema;
  return schema;
}

/** A JSON Schema (draft-07, no $ref) of what an argument's schema accepts once its wire string is read. */
export function argJsonSchema(arg: ArgSpec): Record<string, unknown> {
  return jsonSchemaOf(arg.schema);
}

/**
 * Every transaction's arguments as JSON Schemas, for OpenAPI generation and for the contract metadata:
 * `{ [transaction]: { [argument name]: schema } }`.
 */
export function transactionJsonSchemas(): Record<
  EvPayTransactionName,
  Record<string, Record<string, unknown>>
> {
  const out = {} as Record<EvPayTransactionName, Record<string, Record<string, unknown>>>;
  for (const [name, spec] of Object.entries(evpayTransactions) as Array<
    [EvPayTransactionName, TransactionSpec]
  >) {
    out[name] = Object.fromEntries(spec.args.map((a) => [a.name, argJsonSchema(a)]));
  }
  return out;
}
