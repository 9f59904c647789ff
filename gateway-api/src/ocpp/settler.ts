/**
 * Takes the signed readings the CSMS acknowledged to chargers to the ledger, after the answer: a commit
 * takes longer than a charger waits for a CALLRESULT, so the charger is answered once a reading is
 * checked and stored (transactions.ts), and this sends START (StartSession with the driver's
 * authorization), PROGRESS (RecordReading) and STOP (StopSession: the settlement) in order, one
 * transaction at a time per OCPP transaction.
 *
 * Each send goes through the REST gateway's Submitter under an Idempotency-Key of its own, so a send
 * whose outcome was lost (a time-out, a restart) is resolved by its Fabric transaction id and never
 * charges twice; the chaincode's own refusals of a repeat (SESSION_EXISTS for a START, SESSION_ALREADY_
 * SETTLED for a STOP) are taken as done. Transient failures (5xx, an invalidated commit) are retried with
 * a growing delay, without end: the driver's money is held until the session settles.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Submitter, Answer } from '../http/submitter';
import type { PreparedCall } from '../http/transactions';
import { query, type OrgLedger } from '../fabric/orgLedger';
import type { LedgerOp, OcppTransaction, OcppTransactionStore } from './transactions';

/** The credential id the OCPP bridge's sends are kept under in the idempotency store. */
const OCPP_CREDENTIAL = 'ocpp-bridge';

/** A chaincode refusal that means "this was already done" for a reading of this kind. */
const ALREADY_DONE: Record<LedgerOp['reading']['kind'], string> = {
  START: 'SESSION_EXISTS',
  PROGRESS: 'READING_OUT_OF_ORDER',
  STOP: 'SESSION_ALREADY_SETTLED',
};

function callOf(t: OcppTransaction, op: LedgerOp): PreparedCall {
  const r = op.reading;
  const body =
    r.kind === 'START'
      ? t.standing
        ? { standing: t.standing, startReading: r }
        : { authorization: t.authorization, startReading: r }
      : r.kind === 'PROGRESS'
        ? { reading: r }
        : { stopReading: r };
  const tx = r.kind === 'START' ? 'StartSession' : r.kind === 'PROGRESS' ? 'RecordReading' : 'StopSession';
  return { tx, submit: true, args: [JSON.stringify(body)], identity: 'client' };
}

interface Settlement {
  chargedFen: number;
  energyWh: number;
}

const settlementOf = (v: unknown): Settlement | undefined => {
  const s = (v as { settlement?: Partial<Settlement> } | null)?.settlement;
  return typeof s?.chargedFen === 'number' && typeof s.energyWh === 'number'
    ? { chargedFen: s.chargedFen, energyWh: s.energyWh }
    : undefined;
};

export class Settler {
  private readonly running = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly wakeups = new Set<() => void>();

  constructor(
    private readonly store: OcppTransactionStore,
    private readonly submitter: Submitter,
    private readonly ledger: OrgLedger,
    private readonly logger: Logger,
    private readonly retryMs = 500,
    /** Called when the ledger refuses a reading the charger was already answered for (an alert). */
    private readonly onRefusedAfterAnswer: (kind: string, code: string) => void = () => undefined,
  ) {}

  /** Resumes every transaction with queued readings (after a restart). */
  resume(): void {
    for (const key of this.store.unfinished()) this.kick(key);
  }

  /** Starts sending a transaction's queued readings unless that is already under way. */
  kick(key: string): void {
    if (this.stopped) return;
    const current = this.running.get(key);
    if (current) {
      // Picked up by the running drain's next loop, or by a new one once it ends.
      void current.then(() => this.kick(key));
      return;
    }
    const p = this.drain(key)
      .catch((err: unknown) => this.logger.error({ err, key }, 'OCPP settler failed'))
      .finally(() => this.running.delete(key));
    this.running.set(key, p);
  }

  /** Waits for the drains under way (used on stop and by tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.wakeups) w();
    await Promise.allSettled([...this.running.values()]);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeups.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeups.add(done);
    });
  }

  private async drain(key: string): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const t = this.store.get(key);
      const index = t?.ops.findIndex((o) => o.status === 'queued') ?? -1;
      if (!t || index < 0) return;
      const op = t.ops[index] as LedgerOp;
      if (t.state === 'failed' || t.state === 'settled') {
        this.store.update(key, (x) => ((x.ops[index] as LedgerOp).status = 'skipped'));
        continue;
      }
      const answer = await this.send(key, index, t, op);
      if (answer === undefined) continue; // transient: sent again after a pause
      this.record(key, index, answer);
    }
  }

  /** One send; undefined when it should be sent again (after a pause). */
  private async send(
    key: string,
    index: number,
    t: OcppTransaction,
    op: LedgerOp,
  ): Promise<Answer | undefined> {
    const call = callOf(t, op);
    const r = op.reading;
    const idemKey = `${t.pileId}.${r.sessionId}.${r.kind}.${r.readAt}.${op.attempts}`;
    const digest = createHash('sha256')
      .update(JSON.stringify(['OCPP', call.tx, call.args]))
      .digest('hex');
    let answer: Answer;
    try {
      answer = await this.submitter.submitOnce(call, OCPP_CREDENTIAL, idemKey, digest);
    } catch (err) {
      this.logger.warn({ err, session: r.sessionId, kind: r.kind }, 'OCPP send failed; retrying');
      await this.sleep(this.retryMs * Math.min(20, op.attempts + 1));
      return undefined;
    }
    const code = (answer.body as { code?: string } | null)?.code;
    if (answer.status >= 500 || code === 'TRANSACTION_INVALIDATED') {
      // A new key only after an invalidated commit: that transaction wrote nothing.
      if (code === 'TRANSACTION_INVALIDATED')
        this.store.update(key, (x) => ((x.ops[index] as LedgerOp).attempts += 1));
      this.logger.warn({ code, session: r.sessionId, kind: r.kind }, 'OCPP send not committed; retrying');
      await this.sleep(this.retryMs * Math.min(20, op.attempts + 1));
      return undefined;
    }
    return answer;
  }

  private record(key: string, index: number, answer: Answer): void {
    const body = answer.body as { code?: string; message?: string; txId?: string; result?: unknown } | null;
    const t = this.store.get(key) as OcppTransaction;
    const op = t.ops[index] as LedgerOp;
    const kind = op.reading.kind;
    if (answer.status === 200) {
      this.store.update(key, (x) => {
        const o = x.ops[index] as LedgerOp;
        o.status = 'done';
        if (body?.txId) o.txId = body.txId;
        if (kind === 'STOP') {
          const s = settlementOf(body?.result);
          x.state = 'settled';
          x.settledAt = Date.now();
          if (s) x.settlement = { ...s, ...(body?.txId ? { txId: body.txId } : {}) };
        }
      });
      this.logger.info({ key, kind, txId: body?.txId }, 'OCPP reading committed');
      return;
    }
    const code = body?.code ?? 'REFUSED';
    if (code === ALREADY_DONE[kind]) {
      this.store.update(key, (x) => {
        const o = x.ops[index] as LedgerOp;
        o.status = 'done';
        o.code = code;
      });
      if (kind === 'STOP') void this.readSettlement(key);
      return;
    }
    // The charger was answered already and OCPP has no message to take that back: an operator must look.
    this.logger.error(
      { key, kind, code, message: body?.message, alert: 'ocpp-refused-after-answer' },
      'OCPP reading refused by the ledger after the charger was answered',
    );
    this.onRefusedAfterAnswer(kind, code);
    this.store.update(key, (x) => {
      const o = x.ops[index] as LedgerOp;
      o.status = 'refused';
      o.code = code;
      // A refused START leaves no session to record or settle; a refused STOP leaves it open.
      if (kind !== 'PROGRESS') {
        x.state = 'failed';
        x.error = { code, message: body?.message ?? code };
      }
    });
  }

  /** A STOP found already settled (sent before a restart): the settlement as the ledger has it. */
  private async readSettlement(key: string): Promise<void> {
    const t = this.store.get(key);
    if (!t) return;
    try {
      const s = settlementOf(await query<unknown>(this.ledger, 'GetSession', [t.pileId, t.sessionId]));
      this.store.update(key, (x) => {
        x.state = 'settled';
        x.settledAt ??= Date.now();
        if (s) x.settlement = s;
      });
    } catch (err) {
      this.logger.warn({ err, key }, 'could not read the settled session');
    }
  }
}
