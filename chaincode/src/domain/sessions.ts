/**
 * Charging sessions: a driver's signed authorization and the pile's signed start reading open a session
 * and hold its cap on the wallet; the pile's signed stop reading settles it, exactly once:
 *
 *   price      = energy x unified tariff in force when the session started (tariff.ts), over the
 *                PRICED SPAN below
 *   beans      = the pile operator's beans held for the session at its start, applied first
 *                (beans.ts: redeemBeans); the rest of the hold is released (BEAN HOLD RULE)
 *   wallet pays  min(price - bean value, hold); the hold is released; any excess over the cap is the
 *                pile operator's loss (its pile should have stopped at the cap), recorded as uncollected
 *   rebate     = the operator's rebate rule on the energy paid in money (beans.ts: REBATE RULE), from
 *                the pile's rebate float
 *
 * A session is named by its pile and the pile's own session id (unique per pile, so no operator can
 * take the id another operator's pile will use next). It touches only its pile, its wallet and its own
 * keys, so sessions at different piles and wallets never conflict at commit.
 */
import { z } from 'zod';
import { appendAudit } from './audit';
import { availableBeans, beanAccount, paidEnergyWh, putBeanAccount, rebateFor, redeemBeans } from './beans';
import { addPosition } from './clearing';
import { getOperator, networkId, requireOperator } from './access';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import {
  authorizationText,
  readingText,
  requireSignature,
  revocationText,
  type MeterReading,
} from './messages';
import { indexSession, indexSettlement } from './lookups';
import { MAX_TX_TIME_SKEW_SEC, paramsAt, tariffVersions } from './params';
import { getOwnPile, getPile, pileIdSchema, type Pile } from './piles';
import { exists, getJson, putJson, emit, prefetch } from './state';
import { inForce, priceSession, type Price, type Tariff } from './tariff';
import { consumeNonce } from './replay';
import { settleOnStanding, standingGrant, standingRefSchema, startOnStanding } from './standing';
import { available, getWallet, putWallet, walletIdSchema, nonceSchema } from './wallets';
import { idSchema, parse, positiveFenSchema, signatureSchema, timestampSchema, whSchema } from './validate';

/**
 * READING TIME RULE (written once): a transaction at time `now` accepts a pile's signed reading only if
 *   now - MAX_READING_AGE_SEC <= readAt <= now + MAX_TX_TIME_SKEW_SEC
 * (READING_TOO_OLD / READING_OUT_OF_ORDER otherwise). A pile may buffer a reading while offline for up
 * to MAX_READING_AGE_SEC; after that it signs a fresh one (its meter has not moved since). The skew
 * bound is the transaction-time gate's (params.ts), written once.
 *
 * PRICED SPAN (written once): a session is priced over [startedAt, max(startedAt, min(stop readAt,
 * settling tx time))], where startedAt is the StartSession transaction's time. The pile cannot move the
 * start (it is the transaction's, within the peers' clock gate) nor stamp the end after the
 * transaction that settles it; holding a stop back to stretch the span keeps the pile busy (PILE_BUSY)
 * and the driver's cap bounds what it can cost.
 */
export const MAX_READING_AGE_SEC = 3600;
/** An authorization may expire at most this long after the StartSession that uses it (AUTHORIZATION_TOO_LONG). */
export const MAX_AUTHORIZATION_TTL_SEC = 24 * 3600;
/** 1 GWh: no charging session delivers this much; a larger difference is a faulty meter or a forgery. */
export const MAX_SESSION_WH = 1_000_000_000;

const readingSchema = (kind: z.ZodType<MeterReading['kind']>) =>
  z
    .object({
      kind,
      sessionId: idSchema,
      pileId: pileIdSchema,
      meterWh: whSchema,
      readAt: timestampSchema,
      signature: signatureSchema,
    })
    .strict();

/**
 * A start names exactly one of: the driver's signed `authorization` of this one session, or a `standing`
 * authorization of an RFID card (standing.ts, STANDING RULE) with the card's digest.
 */
export const startSchema = z
  .object({
    authorization: z
      .object({
        walletId: walletIdSchema,
        pileId: pileIdSchema,
        capFen: positiveFenSchema,
        maxBeans: z.number().int().min(0).max(1_000_000_000_000),
        nonce: nonceSchema,
        expiresAt: timestampSchema,
        signature: signatureSchema,
      })
      .strict()
      .optional(),
    standing: standingRefSchema.optional(),
    startReading: readingSchema(z.literal('START')),
  })
  .strict();
export const stopSchema = z.object({ stopReading: readingSchema(z.literal('STOP')) }).strict();
export const recordSchema = z.object({ reading: readingSchema(z.literal('PROGRESS')) }).strict();
export const revokeSchema = z
  .object({ walletId: walletIdSchema, nonce: nonceSchema, signature: signatureSchema })
  .strict();
export const staleSchema = z
  .object({
    pileId: pileIdSchema,
    sessionId: idSchema,
    lastReading: readingSchema(z.enum(['PROGRESS', 'STOP'])).optional(),
  })
  .strict();

export interface Session {
  sessionId: string;
  pileId: string;
  operator: string;
  walletId: string;
  capFen: number;
  /** The driver's bean limit (signed) and the beans held for the session at its start (BEAN HOLD RULE). */
  maxBeans?: number;
  /** The standing authorization it was started on (standing.ts), absent for a per-session authorization. */
  standingId?: string;
  beansHeld?: number;
  tariffVersion: number;
  beanWh: number;
  /** sessionMaxOpenSec in force at the start: a later change of the parameter never applies to it. */
  maxOpenSec: number;
  startedAt: number;
  start: { meterWh: number; readAt: number };
  /** The last PROGRESS reading recorded for the open session (RecordReading); a stale close never goes below it. */
  last?: { meterWh: number; readAt: number; kind: MeterReading['kind'] };
  status: 'open' | 'settled';
  stop?: { meterWh: number; readAt: number; kind: MeterReading['kind'] };
  settlement?: Settlement;
}
export interface Settlement {
  energyWh: number;
  price: Price;
  beansUsed: number;
  beanValueFen: number;
  chargedFen: number;
  uncollectedFen: number;
  rebateBeans: number;
  settledAt: number;
  closedAsStale: boolean;
  period: number;
}

export async function getSession(ctx: TxContext, pileId: string, sessionId: string): Promise<Session> {
  const s = await getJson<Session>(ctx.store, Keys.session(pileId, sessionId));
  if (!s)
    return fail('SESSION_NOT_FOUND', `session ${sessionId} of pile ${pileId} does not exist`, {
      pileId,
      sessionId,
    });
  return s;
}

async function tariffAt(ctx: TxContext, t: number): Promise<Tariff> {
  const tariff = inForce(await tariffVersions(ctx.store), t);
  if (!tariff) return fail('NO_TARIFF_IN_FORCE', 'no tariff is in force');
  return tariff;
}

async function checkReading(
  ctx: TxContext,
  pile: Pile,
  r: MeterReading & { signature: string },
): Promise<void> {
  if (r.pileId !== pile.pileId)
    fail('READING_MISMATCH', `reading is for pile ${r.pileId}, not ${pile.pileId}`);
  requireSignature(pile.publicKey, readingText(await networkId(ctx), r), r.signature, `${r.kind} reading`);
  // READING TIME RULE
  if (r.readAt > ctx.now + MAX_TX_TIME_SKEW_SEC)
    fail('READING_OUT_OF_ORDER', 'reading is stamped in the future', { readAt: r.readAt });
  const oldestAllowed = ctx.now - MAX_READING_AGE_SEC;
  if (r.readAt < oldestAllowed)
    fail('READING_TOO_OLD', `reading is more than ${MAX_READING_AGE_SEC} s older than the transaction`, {
      readAt: r.readAt,
      oldestAllowed,
    });
}

export async function startSession(ctx: TxContext, input: unknown): Promise<Session> {
  const req = parse(startSchema, input, 'start');
  const { authorization: auth, startReading: reading } = req;
  if ((auth === undefined) === (req.standing === undefined))
    fail('INVALID_ARGUMENT', 'start: exactly one of authorization and standing', { path: 'authorization' });
  if (auth && auth.pileId !== reading.pileId)
    fail('READING_MISMATCH', 'authorization and start reading name different piles');
  // PREFETCH RULE (state.ts): every start that succeeds reads these, the pile's operator being the caller.
  prefetch(ctx.store, [
    Keys.consortium(),
    Keys.operator(ctx.caller.mspId),
    Keys.pile(reading.pileId),
    Keys.session(reading.pileId, reading.sessionId),
    ...(auth
      ? [
          Keys.wallet(auth.walletId),
          Keys.nonce(auth.walletId, auth.nonce),
          Keys.beanBalance(auth.walletId, ctx.caller.mspId),
        ]
      : []),
  ]);
  const pile = await getOwnPile(ctx, reading.pileId);
  if (pile.status !== 'active') fail('PILE_NOT_ACTIVE', `pile ${pile.pileId} is ${pile.status}`);
  if (pile.activeSession)
    fail('PILE_BUSY', `pile ${pile.pileId} has an open session`, { sessionId: pile.activeSession });
  const standing = req.standing ? await standingGrant(ctx, req.standing, pile.operator) : undefined;
  // What the session may hold: the driver's signature on this session, or the card's standing bounds.
  const grant = auth ?? (standing as NonNullable<typeof standing>);
  const wallet = await getWallet(ctx, grant.walletId);
  if (auth) {
    requireSignature(
      wallet.publicKey,
      authorizationText(await networkId(ctx), auth),
      auth.signature,
      'authorization',
    );
    if (auth.expiresAt < ctx.now)
      fail('AUTHORIZATION_EXPIRED', 'the driver authorization has expired', { expiresAt: auth.expiresAt });
  }
  if (auth && auth.expiresAt > ctx.now + MAX_AUTHORIZATION_TTL_SEC)
    fail(
      'AUTHORIZATION_TOO_LONG',
      `an authorization may be valid for at most ${MAX_AUTHORIZATION_TTL_SEC} s`,
      {
        expiresAt: auth.expiresAt,
        latest: ctx.now + MAX_AUTHORIZATION_TTL_SEC,
      },
    );
  await checkReading(ctx, pile, reading);
  if (reading.meterWh < pile.lastMeterWh)
    fail(
      'METER_WENT_BACKWARDS',
      `meter ${reading.meterWh} Wh is below the pile's last reading ${pile.lastMeterWh} Wh`,
    );
  if (reading.readAt < pile.lastReadingAt)
    fail('READING_OUT_OF_ORDER', "start reading is older than the pile's last reading");
  if (await exists(ctx.store, Keys.session(pile.pileId, reading.sessionId)))
    fail('SESSION_EXISTS', `session ${reading.sessionId} of pile ${pile.pileId} already exists`);
  if (available(wallet) < grant.capFen)
    fail('INSUFFICIENT_FUNDS', `wallet has ${available(wallet)} fen available, cap is ${grant.capFen}`, {
      available: available(wallet),
    });
  if (auth) await consumeNonce(ctx, wallet.walletId, auth.nonce);
  const tariff = await tariffAt(ctx, ctx.now);
  const params = await paramsAt(ctx.store, ctx.now);
  // BEAN HOLD RULE: the pile operator's beans the session may use, up to the driver's signed limit, are
  // held on the wallet's own bean balance (no shared key) until settlement, like the cash cap.
  const beans = await beanAccount(ctx, wallet.walletId, pile.operator);
  const beansHeld = Math.min(grant.maxBeans, availableBeans(beans));
  if (beansHeld > 0) await putBeanAccount(ctx, { ...beans, heldBeans: (beans.heldBeans ?? 0) + beansHeld });
  const session: Session = {
    sessionId: reading.sessionId,
    pileId: pile.pileId,
    operator: pile.operator,
    walletId: wallet.walletId,
    capFen: grant.capFen,
    maxBeans: grant.maxBeans,
    beansHeld,
    ...(standing ? { standingId: standing.standing.standingId } : {}),
    tariffVersion: tariff.version,
    beanWh: params.beanWh,
    maxOpenSec: params.sessionMaxOpenSec,
    startedAt: ctx.now,
    start: { meterWh: reading.meterWh, readAt: reading.readAt },
    status: 'open',
  };
  await putJson(ctx.store, Keys.session(session.pileId, session.sessionId), session);
  await indexSession(ctx, session);
  await putWallet(ctx, { ...wallet, heldFen: wallet.heldFen + grant.capFen });
  if (standing) await startOnStanding(ctx, standing.standing, session);
  await putJson(ctx.store, Keys.pile(pile.pileId), {
    ...pile,
    activeSession: session.sessionId,
    lastMeterWh: reading.meterWh,
    lastReadingAt: reading.readAt,
  } satisfies Pile);
  await appendAudit(ctx, pile.operator, 'SessionStarted', {
    sessionId: session.sessionId,
    pileId: pile.pileId,
    walletId: wallet.walletId,
    capFen: grant.capFen,
    beansHeld,
    ...(standing ? { standingId: standing.standing.standingId } : {}),
  });
  emit(ctx, 'SessionStarted', {
    sessionId: session.sessionId,
    pileId: pile.pileId,
    walletId: wallet.walletId,
  });
  return session;
}

export async function stopSession(ctx: TxContext, input: unknown): Promise<Session> {
  const { stopReading } = parse(stopSchema, input, 'stop');
  return settle(ctx, stopReading.pileId, stopReading.sessionId, stopReading, false);
}

/**
 * The pile's operator records a PROGRESS reading of an open session as it comes (READING TIME RULE),
 * each newer than the last, so that a stale close settles on the last reading the chain saw and never
 * on an older one. A replayed reading is refused (READING_OUT_OF_ORDER).
 */
export async function recordReading(ctx: TxContext, input: unknown): Promise<Session> {
  const { reading } = parse(recordSchema, input, 'record');
  const session = await getSession(ctx, reading.pileId, reading.sessionId);
  const pile = await getOwnPile(ctx, session.pileId);
  if (session.status !== 'open')
    fail('SESSION_ALREADY_SETTLED', `session ${session.sessionId} is already settled`, {
      sessionId: session.sessionId,
    });
  await checkReading(ctx, pile, reading);
  const prev = session.last ?? session.start;
  if (reading.meterWh < prev.meterWh)
    fail('METER_WENT_BACKWARDS', `meter ${reading.meterWh} Wh is below the last reading ${prev.meterWh} Wh`);
  if (reading.readAt <= prev.readAt)
    fail('READING_OUT_OF_ORDER', "reading is not newer than the session's last reading", {
      readAt: reading.readAt,
      last: prev.readAt,
    });
  if (reading.meterWh - session.start.meterWh > MAX_SESSION_WH)
    fail('ENERGY_IMPLAUSIBLE', `${reading.meterWh - session.start.meterWh} Wh in one session is implausible`);
  const updated: Session = {
    ...session,
    last: { meterWh: reading.meterWh, readAt: reading.readAt, kind: reading.kind },
  };
  await putJson(ctx.store, Keys.session(session.pileId, session.sessionId), updated);
  await appendAudit(ctx, pile.operator, 'ReadingRecorded', {
    sessionId: session.sessionId,
    pileId: pile.pileId,
    meterWh: reading.meterWh,
    readAt: reading.readAt,
  });
  emit(ctx, 'ReadingRecorded', {
    sessionId: session.sessionId,
    pileId: pile.pileId,
    meterWh: reading.meterWh,
    readAt: reading.readAt,
  });
  return updated;
}

/**
 * A driver revokes an authorization it signed and has not used, before it expires: the signed REVOKE
 * message spends the nonce, so whatever was signed with it (an authorization, or any other driver
 * message) is refused from then on with NONCE_REUSED. Any member may submit it, as for a purchase; a
 * replayed revocation, or one of a nonce already used, is refused with NONCE_REUSED.
 */
export async function revokeAuthorization(
  ctx: TxContext,
  input: unknown,
): Promise<{ walletId: string; nonce: string; revokedAt: number }> {
  const op = await requireOperator(ctx);
  const req = parse(revokeSchema, input, 'revocation');
  const wallet = await getWallet(ctx, req.walletId);
  requireSignature(wallet.publicKey, revocationText(await networkId(ctx), req), req.signature, 'revocation');
  await consumeNonce(ctx, wallet.walletId, req.nonce);
  await appendAudit(ctx, op.mspId, 'AuthorizationRevoked', { walletId: wallet.walletId, nonce: req.nonce });
  emit(ctx, 'AuthorizationRevoked', { walletId: wallet.walletId, nonce: req.nonce });
  return { walletId: wallet.walletId, nonce: req.nonce, revokedAt: ctx.now };
}

/**
 * STALE RULE: from sessionMaxOpenSec after its start the pile's operator may close a session left open,
 * with the pile's last signed reading if any; from ABANDONED_AFTER x sessionMaxOpenSec any member may,
 * so no operator can keep a driver's money on hold for ever (a crashed or hostile operator included).
 * The limit is the one in force when the session started, so a later vote cannot shorten it.
 */
export const ABANDONED_AFTER = 2;

/** Closes a session left open past the limit (STALE RULE), with the pile's last signed reading if any. */
export async function closeStaleSession(ctx: TxContext, input: unknown): Promise<Session> {
  const req = parse(staleSchema, input, 'close');
  return settle(ctx, req.pileId, req.sessionId, req.lastReading, true);
}

/** The pile, if the caller may close this stale session now (STALE RULE); the limit is checked later. */
async function staleCloser(ctx: TxContext, session: Session): Promise<Pile> {
  const op = await requireOperator(ctx);
  const pile = await getPile(ctx, session.pileId);
  if (pile.operator === op.mspId) return pile;
  const from = session.startedAt + ABANDONED_AFTER * session.maxOpenSec;
  if (ctx.now < from)
    fail('NOT_PILE_OPERATOR', `until ${from} only ${pile.operator} may close session ${session.sessionId}`, {
      pileId: pile.pileId,
      othersFrom: from,
    });
  return pile;
}

async function settle(
  ctx: TxContext,
  pileId: string,
  sessionId: string,
  reading: (MeterReading & { signature: string }) | undefined,
  stale: boolean,
): Promise<Session> {
  // PREFETCH RULE (state.ts): both closers read the session, the caller's membership and the pile.
  prefetch(ctx.store, [
    Keys.session(pileId, sessionId),
    Keys.consortium(),
    Keys.operator(ctx.caller.mspId),
    Keys.pile(pileId),
  ]);
  const session = await getSession(ctx, pileId, sessionId);
  const pile = stale ? await staleCloser(ctx, session) : await getOwnPile(ctx, session.pileId);
  if (session.status !== 'open')
    fail('SESSION_ALREADY_SETTLED', `session ${sessionId} is already settled`, { sessionId });
  // ... and every settlement reads its tariff, the wallet, its beans there and the pile's operator.
  prefetch(ctx.store, [
    Keys.tariff(session.tariffVersion),
    Keys.wallet(session.walletId),
    Keys.beanBalance(session.walletId, pile.operator),
    Keys.operator(pile.operator),
  ]);
  if (stale && ctx.now < session.startedAt + session.maxOpenSec)
    fail(
      'SESSION_NOT_STALE',
      `session ${sessionId} may be closed from ${session.startedAt + session.maxOpenSec}`,
    );
  // Without a reading, a stale close settles on the last reading the session recorded (else its start).
  const prev = session.last ?? { ...session.start, kind: 'STOP' as MeterReading['kind'] };
  let stop = prev;
  if (reading) {
    if (reading.sessionId !== sessionId)
      fail('READING_MISMATCH', `reading is for session ${reading.sessionId}`);
    await checkReading(ctx, pile, reading);
    if (reading.meterWh < prev.meterWh)
      fail(
        'METER_WENT_BACKWARDS',
        `stop meter ${reading.meterWh} Wh is below the session's last reading ${prev.meterWh} Wh`,
      );
    if (reading.readAt < prev.readAt)
      fail('READING_OUT_OF_ORDER', "stop reading is older than the session's last reading");
    stop = { meterWh: reading.meterWh, readAt: reading.readAt, kind: reading.kind };
  }
  const energyWh = stop.meterWh - session.start.meterWh;
  if (energyWh > MAX_SESSION_WH)
    fail('ENERGY_IMPLAUSIBLE', `${energyWh} Wh in one session is implausible`, {
      energyWh,
      max: MAX_SESSION_WH,
    });
  // A direct read of the version fixed at start: no range read, so an enactment never conflicts with it.
  const tariff = await getJson<Tariff>(ctx.store, Keys.tariff(session.tariffVersion));
  if (!tariff) return fail('NO_TARIFF_IN_FORCE', `tariff version ${session.tariffVersion} is missing`);
  // PRICED SPAN: from the StartSession transaction to the stop reading, never after this transaction.
  const pricedTo = Math.max(session.startedAt, Math.min(stop.readAt, ctx.now));
  const price = priceSession(tariff, energyWh, session.startedAt, pricedTo);

  const wallet = await getWallet(ctx, session.walletId);
  const beans = await beanAccount(ctx, wallet.walletId, pile.operator);
  // Only the beans held at the start (a session opened before holds existed holds none).
  const beansHeld = session.beansHeld ?? 0;
  const redemption = redeemBeans(energyWh, price.totalFen, beansHeld, session.beanWh);
  const cashDue = price.totalFen - redemption.beanValueFen;
  const chargedFen = Math.min(cashDue, session.capFen);
  const operator = await getOperator(ctx, pile.operator);
  const paidWh = paidEnergyWh(energyWh - redemption.coveredWh, chargedFen, cashDue);
  const rebateBeans = rebateFor(paidWh, operator.rebateWhPerBean, pile.rebateFloat);

  await putWallet(ctx, {
    ...wallet,
    balanceFen: wallet.balanceFen - chargedFen,
    heldFen: wallet.heldFen - session.capFen,
  });
  if (beansHeld > 0 || rebateBeans > 0)
    await putBeanAccount(ctx, {
      ...beans,
      beans: beans.beans - redemption.beansUsed + rebateBeans,
      heldBeans: (beans.heldBeans ?? 0) - beansHeld,
    });
  await putJson(ctx.store, Keys.pile(pile.pileId), {
    ...pile,
    activeSession: undefined,
    lastMeterWh: Math.max(pile.lastMeterWh, stop.meterWh),
    lastReadingAt: Math.max(pile.lastReadingAt, stop.readAt),
    rebateFloat: pile.rebateFloat - rebateBeans,
  } satisfies Pile);
  const period = await addPosition(ctx, pile.operator, {
    energyRevenueFen: chargedFen,
    beansRedeemed: redemption.beansUsed,
    beansRedeemedValueFen: redemption.beanValueFen,
  });
  const settlement: Settlement = {
    energyWh,
    price,
    beansUsed: redemption.beansUsed,
    beanValueFen: redemption.beanValueFen,
    chargedFen,
    uncollectedFen: cashDue - chargedFen,
    rebateBeans,
    settledAt: ctx.now,
    closedAsStale: stale,
    period,
  };
  const settled: Session = { ...session, status: 'settled', stop, settlement };
  await putJson(ctx.store, Keys.session(pileId, sessionId), settled);
  if (session.standingId) await settleOnStanding(ctx, session.standingId, chargedFen);
  await indexSettlement(ctx, settled, period);
  await appendAudit(ctx, pile.operator, 'SessionSettled', {
    sessionId,
    pileId: pile.pileId,
    walletId: wallet.walletId,
    energyWh,
    totalFen: price.totalFen,
    chargedFen,
    beansUsed: redemption.beansUsed,
    rebateBeans,
  });
  emit(ctx, 'SessionSettled', {
    sessionId,
    pileId: pile.pileId,
    walletId: wallet.walletId,
    energyWh,
    chargedFen,
    beansUsed: redemption.beansUsed,
  });
  if (rebateBeans > 0)
    emit(ctx, 'BeansCredited', {
      walletId: wallet.walletId,
      issuer: pile.operator,
      beans: rebateBeans,
      reason: 'rebate',
    });
  return settled;
}
