/**
 * What the CSMS must not forget across a gateway restart: the remote starts waiting for their charger
 * (the driver's signed authorization, by the session id given to the charger), and each OCPP
 * transaction's mapping to (pileId, sessionId) with its signed readings queued for the ledger in the
 * order the charger sent them, and the answer its stop got (a repeated stop gets the same one). It is one
 * JSON document in the data dir (ocpp.json), rewritten atomically after each change and before the
 * charger is answered: once acknowledged, a reading is settled even if the gateway restarts.
 *
 * A transaction is named `<chargePointId>/<transactionId>`: OCPP 1.6 ids are integers this gateway
 * hands out, 2.0.1 ids are strings the charger chooses; both are unique only per charger.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeJsonFileAtomic } from '../store/jsonFile';
import type { SignedReading } from './signedMeter';

export const PROTOCOLS = ['ocpp1.6', 'ocpp2.0.1'] as const;
export type OcppProtocol = (typeof PROTOCOLS)[number];

const readingSchema = z
  .object({
    kind: z.enum(['START', 'PROGRESS', 'STOP']),
    sessionId: z.string(),
    pileId: z.string(),
    meterWh: z.number().int(),
    readAt: z.number().int(),
    signature: z.string(),
  })
  .strict();

/** The driver's signed authorization as StartSession takes it (checked with its schema at remote start). */
const authorizationSchema = z
  .object({
    walletId: z.string(),
    pileId: z.string(),
    capFen: z.number().int(),
    maxBeans: z.number().int(),
    nonce: z.string(),
    expiresAt: z.number().int(),
    signature: z.string(),
  })
  .strict();
export type SignedAuthorization = z.infer<typeof authorizationSchema>;

/** A card's standing authorization as StartSession names it (chaincode standing.ts). */
const standingRefSchema = z.object({ standingId: z.string(), idTagSm3: z.string() }).strict();
export type StandingRef = z.infer<typeof standingRefSchema>;

const pendingSchema = z
  .object({
    sessionId: z.string(),
    chargePointId: z.string(),
    pileId: z.string(),
    remoteStartId: z.number().int(),
    authorization: authorizationSchema,
    createdAt: z.number().int(),
  })
  .strict();
export type PendingStart = z.infer<typeof pendingSchema>;

/** A signed reading on its way to the ledger. */
const opSchema = z
  .object({
    reading: readingSchema,
    status: z.enum(['queued', 'done', 'refused', 'skipped']),
    /** The chaincode's code when refused or taken as already done (SESSION_EXISTS, SESSION_ALREADY_SETTLED). */
    code: z.string().optional(),
    txId: z.string().optional(),
    /** Sends so far (a new Idempotency-Key only after an invalidated commit). */
    attempts: z.number().int().default(0),
  })
  .strict();
export type LedgerOp = z.infer<typeof opSchema>;

export const TX_STATES = ['open', 'stopping', 'settled', 'failed'] as const;
const transactionSchema = z
  .object({
    chargePointId: z.string(),
    transactionId: z.string(),
    protocol: z.enum(PROTOCOLS),
    pileId: z.string(),
    sessionId: z.string(),
    /** What StartSession is sent with: the driver's remote-start authorization, or a card's standing one. */
    authorization: authorizationSchema.optional(),
    standing: standingRefSchema.optional(),
    /** 1.6: StartTransaction's meterStart (the signed START must say the same). */
    meterStart: z.number().int().optional(),
    /** 2.0.1: the highest seqNo taken for this transaction. */
    seqNo: z.number().int().optional(),
    state: z.enum(TX_STATES),
    ops: z.array(opSchema),
    /** The answer the first stop got, returned to every repeat. */
    stopAnswer: z.record(z.unknown()).optional(),
    stopReceivedAt: z.number().int().optional(),
    settledAt: z.number().int().optional(),
    settlement: z
      .object({ chargedFen: z.number().int(), energyWh: z.number().int(), txId: z.string().optional() })
      .strict()
      .optional(),
    error: z.object({ code: z.string(), message: z.string() }).strict().optional(),
    createdAt: z.number().int(),
  })
  .strict();
export type OcppTransaction = z.infer<typeof transactionSchema>;

const stateSchema = z
  .object({
    version: z.literal(1),
    /** The next 1.6 transaction id and 2.0.1 remoteStartId this gateway hands out. */
    nextId: z.number().int().min(1),
    pending: z.record(pendingSchema),
    transactions: z.record(transactionSchema),
  })
  .strict();
type OcppState = z.infer<typeof stateSchema>;

export const transactionKey = (chargePointId: string, transactionId: string | number): string =>
  `${chargePointId}/${String(transactionId)}`;

/**
 * Whether two signed readings are the same reading (a charger sent it again, perhaps signed anew: SM2
 * signatures are randomized): same kind, meter and time. The chaincode would refuse the second anyway.
 */
export const sameReading = (a: SignedReading, b: SignedReading): boolean =>
  a.kind === b.kind && a.meterWh === b.meterWh && a.readAt === b.readAt;

export class OcppTransactionStore {
  private readonly file: string;
  private state: OcppState;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'ocpp.json');
    this.state = readJsonFile(this.file, stateSchema, {
      version: 1,
      nextId: 1,
      pending: {},
      transactions: {},
    });
  }

  private save(): void {
    writeJsonFileAtomic(this.file, this.state);
  }

  /** Hands out the next integer id (1.6 transactionId, 2.0.1 remoteStartId), kept across restarts. */
  nextId(): number {
    const id = this.state.nextId;
    this.state.nextId = id + 1;
    this.save();
    return id;
  }

  addPending(p: PendingStart): void {
    this.state.pending[p.sessionId] = p;
    this.save();
  }

  dropPending(sessionId: string): void {
    delete this.state.pending[sessionId];
    this.save();
  }

  /** The remote start a charger names by its idTag / idToken (or 2.0.1 remoteStartId). */
  pendingFor(
    chargePointId: string,
    sessionId: string | undefined,
    remoteStartId?: number,
  ): PendingStart | undefined {
    const byId = sessionId === undefined ? undefined : this.state.pending[sessionId];
    if (byId?.chargePointId === chargePointId) return byId;
    if (remoteStartId === undefined) return undefined;
    return Object.values(this.state.pending).find(
      (p) => p.chargePointId === chargePointId && p.remoteStartId === remoteStartId,
    );
  }

  get(key: string): OcppTransaction | undefined {
    return this.state.transactions[key];
  }

  /** The transaction started for a session id, if the charger started one (a repeated start finds it). */
  bySession(chargePointId: string, sessionId: string): OcppTransaction | undefined {
    return Object.values(this.state.transactions).find(
      (t) => t.chargePointId === chargePointId && t.sessionId === sessionId,
    );
  }

  /** Opens the transaction of a pending start (which it consumes). */
  open(p: PendingStart, protocol: OcppProtocol, transactionId: string, meterStart?: number): OcppTransaction {
    const t: OcppTransaction = {
      chargePointId: p.chargePointId,
      transactionId,
      protocol,
      pileId: p.pileId,
      sessionId: p.sessionId,
      authorization: p.authorization,
      ...(meterStart === undefined ? {} : { meterStart }),
      state: 'open',
      ops: [],
      createdAt: Date.now(),
    };
    this.state.transactions[transactionKey(p.chargePointId, transactionId)] = t;
    delete this.state.pending[p.sessionId];
    this.save();
    return t;
  }

  /**
   * Opens a transaction the charger started on its own for an RFID card with a standing authorization
   * (no remote start: the session id is localSessionId's).
   */
  openLocal(t: {
    chargePointId: string;
    transactionId: string;
    protocol: OcppProtocol;
    pileId: string;
    sessionId: string;
    standing: StandingRef;
    meterStart?: number;
  }): OcppTransaction {
    const { meterStart, ...rest } = t;
    const opened: OcppTransaction = {
      ...rest,
      ...(meterStart === undefined ? {} : { meterStart }),
      state: 'open',
      ops: [],
      createdAt: Date.now(),
    };
    this.state.transactions[transactionKey(t.chargePointId, t.transactionId)] = opened;
    this.save();
    return opened;
  }

  /**
   * A 1.6 StartTransaction for a card sent again (its answer was lost): the charger's open transaction on
   * that card whose START has not come yet and that began at the same meter value.
   */
  unstartedLocal(chargePointId: string, idTagSm3: string, meterStart: number): OcppTransaction | undefined {
    return Object.values(this.state.transactions).find(
      (t) =>
        t.chargePointId === chargePointId &&
        t.standing?.idTagSm3 === idTagSm3 &&
        t.state === 'open' &&
        t.ops.length === 0 &&
        t.meterStart === meterStart,
    );
  }

  /**
   * Queues signed readings of a transaction in order (one already queued is not queued twice), with the
   * change `also` makes to the transaction (its stop answer, its seqNo), in one write.
   */
  enqueue(
    key: string,
    readings: readonly SignedReading[],
    also?: (t: OcppTransaction) => void,
  ): OcppTransaction {
    const t = this.state.transactions[key];
    if (!t) throw new Error(`no OCPP transaction ${key}`);
    for (const r of readings)
      if (!t.ops.some((o) => sameReading(o.reading, r)))
        t.ops.push({ reading: r, status: 'queued', attempts: 0 });
    also?.(t);
    this.save();
    return t;
  }

  update(key: string, change: (t: OcppTransaction) => void): OcppTransaction {
    const t = this.state.transactions[key];
    if (!t) throw new Error(`no OCPP transaction ${key}`);
    change(t);
    this.save();
    return t;
  }

  /** Transactions with readings still to send (resumed at start). */
  unfinished(): string[] {
    return Object.entries(this.state.transactions)
      .filter(([, t]) => t.ops.some((o) => o.status === 'queued'))
      .map(([k]) => k);
  }

  /** A charger's transactions, newest first. */
  ofCharger(chargePointId: string, limit = 20): OcppTransaction[] {
    return Object.values(this.state.transactions)
      .filter((t) => t.chargePointId === chargePointId)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit);
  }
}
