/**
 * The answer of every EvPayContract transaction as a zod schema (`evpayAnswers`), beside the argument
 * schemas of api.ts, so that a client (the REST gateway) can describe its response bodies in OpenAPI
 * (`answerJsonSchemas()`) and check what a peer answered. An answer is the canonical JSON of what the
 * domain function returns (or the contract, for the queries it composes: GetConsortium, GetProposal,
 * GetWallet, GetClearing, KeyHistory): a key whose value is undefined is absent, and every number is a
 * safe integer (fen, Wh, unix seconds, counts). So a field is optional here exactly where its type
 * marks it optional, and money is an integer of fen. No Fabric import here.
 *
 * ANSWER RULE (written once): every record type has one schema in this file (`pileRecordSchema`, ...),
 * used by every answer that holds it, and every object is strict, so a field added, dropped or renamed
 * on either side fails. A schema states the shape (fields, which are optional, integers, enumerations),
 * not the bounds of the arguments: a record holds what the argument schemas accepted on its way in
 * (state.ts, getJson). Where the domain derives a record's type from an argument schema (tariffs, the
 * parameters, a proposal's change), the record reuses that schema, bounds included, not a copy of it.
 * The compiler holds each answer schema to its EvPayResults type (AnswerDrift, at the end): neither
 * changes without the other.
 */
import { z } from 'zod';
import { jsonSchemaOf, type EvPayResults, type EvPayTransactionName } from './api';
import { POSITION_FIELDS, type PositionField } from './clearing';
import { ERROR_CATEGORIES, ERROR_CODES, type ErrorCategory, type ErrorCode } from './errors';
import { proposeSchema } from './governance';
import { paramsDraftSchema } from './params';
import { PERIOD_KINDS, tariffDraftSchema, type PeriodKind } from './tariff';

/** Every number of an answer: canonical JSON writes integers only (canonical.ts). */
const int = z.number().int();
/** One integer field per name of a fixed list (position fields, tariff period kinds). */
const integers = <K extends string>(names: readonly K[]): Record<K, typeof int> =>
  Object.fromEntries(names.map((n) => [n, int])) as Record<K, typeof int>;

/** A rule's refusal, as a batch call's answer carries it (DomainError.toJSON). */
export const chaincodeErrorSchema = z
  .object({
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    category: z.enum(Object.keys(ERROR_CATEGORIES) as [ErrorCategory, ...ErrorCategory[]]),
    message: z.string(),
    details: z.record(z.string(), z.unknown()),
  })
  .strict();

// --- consortium and governance ---

export const consortiumRecordSchema = z
  .object({
    auditorMspIds: z.array(z.string()),
    custodianMspId: z.string().optional(),
    initializedAt: int,
    initializedBy: z.string(),
    genesisSm3: z.string(),
    networkId: z.string(),
  })
  .strict();

export const operatorRecordSchema = z
  .object({
    mspId: z.string(),
    name: z.string(),
    admittedAt: int,
    marginPaidFen: int,
    marginPaidAt: int.optional(),
    marginDeclaredFen: int.optional(),
    marginDeclaredAt: int.optional(),
    rebateWhPerBean: int,
    beanSalePriceFen: int,
  })
  .strict();

export const poolSummarySchema = z
  .object({ balanceFen: int, marginsFen: int, rewardsPaidFen: int, movements: int })
  .strict();

/** A version of the parameters: the draft governance accepted, with its version and effective time. */
export const paramsRecordSchema = paramsDraftSchema.innerType().extend({ version: int, effectiveFrom: int });
/** A version of the tariff, likewise. */
export const tariffRecordSchema = tariffDraftSchema.innerType().extend({ version: int, effectiveFrom: int });

export const proposalRecordSchema = z
  .object({
    proposalId: z.string(),
    change: proposeSchema.shape.change,
    effectiveFrom: int,
    votingEndsAt: int,
    proposer: z.string(),
    proposedAt: int,
    status: z.enum(['open', 'enacted', 'withdrawn', 'expired', 'superseded', 'lapsed']),
    basedOnVersion: int.optional(),
    closedAt: int.optional(),
    enactedAt: int.optional(),
    enactedVersion: int.optional(),
  })
  .strict();

export const voteRecordSchema = z
  .object({ mspId: z.string(), approve: z.boolean(), at: int, txId: z.string() })
  .strict();

export const tallySchema = z
  .object({
    countedAt: int,
    operators: int,
    members: int,
    required: int,
    approvals: int,
    rejections: int,
    votes: z.array(voteRecordSchema),
  })
  .strict();

// --- piles, wallets, sessions ---

export const pileRecordSchema = z
  .object({
    pileId: z.string(),
    operator: z.string(),
    publicKey: z.string(),
    status: z.enum(['active', 'suspended', 'retired']),
    registeredAt: int,
    lastMeterWh: int,
    lastReadingAt: int,
    activeSession: z.string().optional(),
    rebateFloat: int,
  })
  .strict();

export const walletRecordSchema = z
  .object({
    walletId: z.string(),
    publicKey: z.string(),
    balanceFen: int,
    heldFen: int,
    openedAt: int,
    openedBy: z.string(),
  })
  .strict();

const meterPointSchema = z.object({ meterWh: int, readAt: int }).strict();
const meterReadingSchema = meterPointSchema.extend({ kind: z.enum(['START', 'PROGRESS', 'STOP']) });

export const sessionPriceSchema = z
  .object({
    totalFen: int,
    energyFen: int,
    serviceFen: int,
    whByKind: z.object(integers<PeriodKind>(PERIOD_KINDS)).strict(),
  })
  .strict();

export const settlementSchema = z
  .object({
    energyWh: int,
    price: sessionPriceSchema,
    beansUsed: int,
    beanValueFen: int,
    chargedFen: int,
    uncollectedFen: int,
    rebateBeans: int,
    settledAt: int,
    closedAsStale: z.boolean(),
    period: int,
  })
  .strict();

export const sessionRecordSchema = z
  .object({
    sessionId: z.string(),
    pileId: z.string(),
    operator: z.string(),
    walletId: z.string(),
    capFen: int,
    maxBeans: int.optional(),
    beansHeld: int.optional(),
    standingId: z.string().optional(),
    tariffVersion: int,
    beanWh: int,
    maxOpenSec: int,
    startedAt: int,
    start: meterPointSchema,
    last: meterReadingSchema.optional(),
    status: z.enum(['open', 'settled']),
    stop: meterReadingSchema.optional(),
    settlement: settlementSchema.optional(),
  })
  .strict();

/** A standing authorization of an RFID card with its counters (standing.ts). */
export const standingRecordSchema = z
  .object({
    standingId: z.string(),
    walletId: z.string(),
    operator: z.string(),
    idTagSm3: z.string(),
    capFen: int,
    totalCapFen: int,
    maxSessions: int,
    maxBeans: int,
    nonce: z.string(),
    expiresAt: int,
    registeredAt: int,
    status: z.enum(['active', 'revoked']),
    revokedAt: int.optional(),
    revokedBy: z.string().optional(),
    sessions: int,
    spentFen: int,
    open: z.object({ pileId: z.string(), sessionId: z.string() }).strict().optional(),
  })
  .strict();

// --- electric beans ---

export const beanBalanceRecordSchema = z
  .object({ walletId: z.string(), issuer: z.string(), beans: int, heldBeans: int.optional() })
  .strict();

export const issuanceStateSchema = z
  .object({
    mspId: z.string(),
    rewardsFen: int,
    backingUsedFen: int,
    beanFaceValueFen: int,
    limit: int,
    issued: int,
    remaining: int,
    treasury: int,
  })
  .strict();

/** A red envelope as read: its record with its shares and what has been claimed. */
export const envelopeSchema = z
  .object({
    envelopeId: z.string(),
    issuer: z.string(),
    totalBeans: int,
    claimants: int,
    buckets: int,
    split: z.enum(['equal', 'random']),
    createdAt: int,
    expiresAt: int,
    status: z.enum(['open', 'closed']),
    returnedBeans: int,
    amounts: z.array(int),
    claimed: int,
    claimedBeans: int,
  })
  .strict();

// --- clearing and audit ---

/** An operator's totals in a clearing period, one integer per position field (clearing.ts). */
export const positionSchema = z.object(integers<PositionField>(POSITION_FIELDS)).strict();

/** A planned transfer of a closed period; `from` or `to` may be the pool ('#pool', clearing.ts POOL). */
export const clearingTransferSchema = z
  .object({ index: int, from: z.string(), to: z.string(), amountFen: int })
  .strict();

export const clearingResultSchema = z
  .object({
    period: int,
    startsAt: int,
    endsAt: int,
    closedAt: int,
    closedBy: z.string(),
    positions: z.record(z.string(), positionSchema.extend({ dueFen: int })),
    poolDueFen: int,
    transfers: z.array(clearingTransferSchema),
  })
  .strict();

export const auditHeadSchema = z.object({ seq: int, chain: z.string() }).strict();

export const auditRecordSchema = z
  .object({
    mspId: z.string(),
    type: z.string(),
    txId: z.string(),
    at: int,
    caller: z.string(),
    data: z.record(z.string(), z.unknown()),
    digest: z.string(),
    seq: int,
    prevChain: z.string(),
    chain: z.string(),
  })
  .strict();

/** What a world-state key held, parsed: any JSON value, or null for a delete; never undefined. */
type StoredValue = NonNullable<unknown> | null;

/** A committed version of a world-state key (KeyHistory, composed by the contract). */
export const keyVersionSchema = z
  .object({
    txId: z.string(),
    timestamp: int,
    isDelete: z.boolean(),
    value: z.unknown().refine((v): v is StoredValue => v !== undefined, 'the stored value, or null'),
  })
  .strict();

// --- the incentive layer ---

export const consenterRecordSchema = z
  .object({
    consenterId: int,
    mspId: z.string(),
    ordererMspId: z.string(),
    certificate: z.string(),
    fingerprint: z.string(),
    registeredAt: int,
    txId: z.string(),
  })
  .strict();

export const witnessHeadSchema = z.object({ block: int, chain: z.string(), headerHash: z.string() }).strict();

export const witnessEntrySchema = z
  .object({
    block: int,
    headerSm3: z.string(),
    dataSm3: z.string(),
    chain: z.string(),
    prevChain: z.string(),
    headerHash: z.string(),
    leader: int,
    signers: z.array(int),
    view: int,
    businessTransactions: int,
    reward: z
      .object({
        amountFen: int,
        paid: z.record(z.string(), int),
        status: z.enum(['paid', 'skipped', 'pool-exhausted']),
      })
      .strict(),
    txId: z.string(),
  })
  .strict();

// --- the registry ---

/** Every transaction's answer, by name (the same names as evpayTransactions in api.ts). */
export const evpayAnswers = {
  // consortium and governance
  InitConsortium: consortiumRecordSchema,
  PayMargin: operatorRecordSchema,
  ConfirmMargin: operatorRecordSchema,
  SetOperatorPolicy: operatorRecordSchema,
  Propose: proposalRecordSchema,
  Vote: voteRecordSchema,
  Enact: proposalRecordSchema,
  CloseProposal: proposalRecordSchema,
  // piles, wallets, sessions
  RegisterPile: pileRecordSchema,
  SetPileStatus: pileRecordSchema,
  OpenWallet: walletRecordSchema,
  TopUp: walletRecordSchema,
  RefundWallet: walletRecordSchema,
  StartSession: sessionRecordSchema,
  StopSession: sessionRecordSchema,
  RecordReading: sessionRecordSchema,
  CloseStaleSession: sessionRecordSchema,
  RevokeAuthorization: z.object({ walletId: z.string(), nonce: z.string(), revokedAt: int }).strict(),
  SessionBatch: z
    .object({
      results: z.array(
        z.discriminatedUnion('ok', [
          z.object({ ok: z.literal(true), result: sessionRecordSchema }).strict(),
          z.object({ ok: z.literal(false), error: chaincodeErrorSchema }).strict(),
        ]),
      ),
    })
    .strict(),
  RegisterStanding: standingRecordSchema,
  RevokeStanding: standingRecordSchema,
  // electric beans
  IssueBeans: issuanceStateSchema,
  AllocateRebateFloat: pileRecordSchema,
  BuyBeans: z.object({ beans: int, costFen: int }).strict(),
  /** The sender's and the receiver's balances of the issuer's beans after the transfer. */
  TransferBeans: z.object({ from: int, to: int }).strict(),
  CreateEnvelope: envelopeSchema,
  ClaimEnvelope: z.object({ beans: int }).strict(),
  CloseEnvelope: envelopeSchema,
  // clearing and audit
  RollUpPositions: z
    .object({ period: int, mspId: z.string(), rolledUp: int, movements: int, done: z.boolean() })
    .strict(),
  ClosePeriod: clearingResultSchema,
  ConfirmTransfer: z.object({ transfer: clearingTransferSchema, complete: z.boolean() }).strict(),
  SealAudit: z.object({ sealed: int, head: auditHeadSchema }).strict(),
  // the incentive layer
  RegisterConsenter: consenterRecordSchema,
  ClaimBlockRewards: z
    .object({
      witnessed: int,
      head: witnessHeadSchema,
      rewardedFen: int,
      entries: z.array(witnessEntrySchema),
    })
    .strict(),
  // queries
  GetConsortium: z
    .object({
      consortium: consortiumRecordSchema,
      operators: z.array(operatorRecordSchema),
      pool: poolSummarySchema,
    })
    .strict(),
  ListParams: z.array(paramsRecordSchema).readonly(),
  ListTariffs: z.array(tariffRecordSchema).readonly(),
  GetProposal: z.object({ proposal: proposalRecordSchema, tally: tallySchema }).strict(),
  GetPile: pileRecordSchema,
  /** `next`, present when the page is full, is the `after` of the next page. */
  ListPiles: z.object({ piles: z.array(pileRecordSchema), next: z.string().optional() }).strict(),
  GetWallet: z.object({ wallet: walletRecordSchema, beans: z.array(beanBalanceRecordSchema) }).strict(),
  GetSession: sessionRecordSchema,
  GetStanding: standingRecordSchema,
  GetStandingByTag: standingRecordSchema,
  FindSessions: z.array(sessionRecordSchema),
  GetPositions: z
    .object({
      period: int,
      positions: z.record(z.string(), positionSchema.extend({ dueFen: int, movements: int })),
    })
    .strict(),
  GetIssuance: issuanceStateSchema,
  GetEnvelope: envelopeSchema,
  GetClearing: z
    .object({
      result: clearingResultSchema,
      transfers: z.array(
        clearingTransferSchema.extend({
          payerConfirmed: z.boolean(),
          payeeConfirmed: z.boolean(),
          complete: z.boolean(),
        }),
      ),
    })
    .strict(),
  GetAuditHead: auditHeadSchema,
  ListAuditRecords: z.array(auditRecordSchema),
  KeyHistory: z.array(keyVersionSchema),
  GetConsenters: z.array(consenterRecordSchema),
  GetWitnessHead: witnessHeadSchema,
  ListWitness: z.array(witnessEntrySchema),
} as const satisfies Record<EvPayTransactionName, z.ZodTypeAny>;

export type EvPayAnswerSchemas = typeof evpayAnswers;

/**
 * Every transaction's answer as a JSON Schema (draft-07, no $ref; the same conversion as the
 * arguments' in api.ts), for OpenAPI response bodies: `{ [transaction]: schema }`.
 */
export function answerJsonSchemas(): Record<EvPayTransactionName, Record<string, unknown>> {
  const out = {} as Record<EvPayTransactionName, Record<string, unknown>>;
  for (const name of Object.keys(evpayAnswers) as EvPayTransactionName[])
    out[name] = jsonSchemaOf(evpayAnswers[name]);
  return out;
}

// --- the compile-time guarantee: each answer schema infers exactly its EvPayResults type ---

/** A type with its intersections flattened, recursively, so that equal shapes are identical types. */
type Flat<T> = T extends readonly (infer E)[]
  ? T extends unknown[]
    ? Flat<E>[]
    : readonly Flat<E>[]
  : T extends object
    ? { [K in keyof T]: Flat<T[K]> }
    : T;
/**
 * Whether A and B are the same type once flattened. Stricter than assignability both ways, which lets
 * an optional field that only one side has through.
 */
type Same<A, B> =
  (<T>() => T extends Flat<A> ? 1 : 2) extends <T>() => T extends Flat<B> ? 1 : 2 ? true : false;

/**
 * The type each answer schema must infer: EvPayResults', except KeyHistory's `value`, which is
 * `unknown` there. An answer always has the key (null for a delete), and a zod 3 schema that accepts
 * `unknown` would accept it absent and infer the key as optional; so keyVersionSchema refines it to
 * StoredValue, anything but undefined, and this one key is compared as that narrower type.
 */
type Expected<N extends EvPayTransactionName> = N extends 'KeyHistory'
  ? EvPayResults[N][number] extends { value: unknown }
    ? Array<Omit<EvPayResults[N][number], 'value'> & { value: StoredValue }>
    : never
  : EvPayResults[N];

type Drifted = {
  [N in EvPayTransactionName]: Same<z.infer<EvPayAnswerSchemas[N]>, Expected<N>> extends true ? never : N;
}[EvPayTransactionName];
type NoneOf<T extends never> = T;
/**
 * The transactions whose answer schema and EvPayResults type differ: none, or this line does not
 * compile and tsc names them (`Type '"GetWallet"' is not assignable to type 'never'`).
 */
export type AnswerDrift = NoneOf<Drifted>;
