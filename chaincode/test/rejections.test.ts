/** Every rejection of the session and wallet rules, each with its stable error code; nothing is written. */
import {
  ABANDONED_AFTER,
  closeStaleSession,
  MAX_AUTHORIZATION_TTL_SEC,
  MAX_READING_AGE_SEC,
  recordReading,
  revokeAuthorization,
  startSession,
  stopSession,
} from '../src/domain/sessions';
import { MAX_TX_TIME_SKEW_SEC } from '../src/domain/params';
import { registerPile, setPileStatus } from '../src/domain/piles';
import { getWallet, openWallet, refundWallet, topUp } from '../src/domain/wallets';
import { buyBeans, issueBeans, transferBeans } from '../src/domain/beans';
import { payMargin } from '../src/domain/consortium';
import { propose, vote, enact } from '../src/domain/governance';
import { Keys } from '../src/domain/keys';
import { findSessions, MAX_LOOKUP } from '../src/domain/lookups';
import { MemoryLedger } from './support/ledger';
import {
  admin,
  auditor,
  AUDITOR_MSP,
  bootstrap,
  client,
  Driver,
  genesis,
  initPinned,
  OPS,
  PARAMS,
  payMarginConfirmed,
  PileDevice,
  TARIFF,
} from './support/fixtures';

const A = OPS.A.mspId;
const B = OPS.B.mspId;

async function world() {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const driver = new Driver();
  const p1 = new PileDevice(`${A}.P1`);
  const p2 = new PileDevice(`${A}.P2`);
  for (const p of [p1, p2])
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
    );
  await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: driver.keys.publicKeyHex }));
  await ledger.submit(client(A), (ctx) =>
    topUp(ctx, { walletId: driver.walletId, amountFen: 5_000, reference: 'r1' }),
  );
  return { ledger, driver, p1, p2, t: ledger.now };
}

describe('session rejections', () => {
  test('replayed start and replayed stop are refused; the session settles exactly once', async () => {
    const { ledger, driver, p1, t } = await world();
    const start = {
      authorization: driver.authorize(p1.pileId, 1_000, t + 600),
      startReading: p1.reading('START', 's1', 0, t),
    };
    await ledger.submit(client(A), (ctx) => startSession(ctx, start));
    await expect(ledger.submit(client(A), (ctx) => startSession(ctx, start))).rejects.toMatchObject({
      code: 'PILE_BUSY',
    });
    const stop = { stopReading: p1.reading('STOP', 's1', 2_000, t + 300) };
    await ledger.submit(client(A), (ctx) => stopSession(ctx, stop));
    await expect(ledger.submit(client(A), (ctx) => stopSession(ctx, stop))).rejects.toMatchObject({
      code: 'SESSION_ALREADY_SETTLED',
    });
    // The same start once the pile is free again: its old meter value is refused first.
    await expect(ledger.submit(client(A), (ctx) => startSession(ctx, start))).rejects.toMatchObject({
      code: 'METER_WENT_BACKWARDS',
    });
    // With a current meter and a fresh authorization, the spent session id is still refused...
    const reuseId = {
      authorization: driver.authorize(p1.pileId, 1_000, t + 900),
      startReading: p1.reading('START', 's1', 2_000, t + 400),
    };
    await expect(
      ledger.submit(client(A), (ctx) => startSession(ctx, reuseId), t + 400),
    ).rejects.toMatchObject({
      code: 'SESSION_EXISTS',
    });
    // ...and with a new session id, the spent nonce is.
    const reuseNonce = {
      authorization: start.authorization,
      startReading: p1.reading('START', 's9', 2_000, t + 400),
    };
    await expect(
      ledger.submit(client(A), (ctx) => startSession(ctx, reuseNonce), t + 400),
    ).rejects.toMatchObject({
      code: 'NONCE_REUSED',
    });
    const w = await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId));
    expect(w).toMatchObject({ balanceFen: 5_000 - 300, heldFen: 0 });
  });

  test("session ids are each pile's own: another operator's pile cannot take this pile's next id", async () => {
    const { ledger, driver, p1, t } = await world();
    const other = new PileDevice(`${B}.P1`);
    await ledger.submit(client(B), (ctx) =>
      registerPile(ctx, { localId: other.localId, publicKey: other.keys.publicKeyHex }),
    );
    const second = new Driver();
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: second.keys.publicKeyHex }));
    await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: second.walletId, amountFen: 5_000, reference: 'r2' }),
    );
    // B's pile uses "s1" first; A's pile then opens its own "s1", and each settles on its own readings.
    await ledger.submit(client(B), (ctx) =>
      startSession(ctx, {
        authorization: second.authorize(other.pileId, 1_000, t + 600),
        startReading: other.reading('START', 's1', 0, t),
      }),
    );
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 1_000, t + 600),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    const atA = await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 2_000, t + 300) }),
    );
    const atB = await ledger.submit(client(B), (ctx) =>
      stopSession(ctx, { stopReading: other.reading('STOP', 's1', 1_000, t + 300) }),
    );
    expect([atA.pileId, atA.walletId, atA.settlement?.energyWh]).toEqual([p1.pileId, driver.walletId, 2_000]);
    expect([atB.pileId, atB.walletId, atB.settlement?.energyWh]).toEqual([
      other.pileId,
      second.walletId,
      1_000,
    ]);
    // Neither operator can stop a session of the other's pile, even holding that pile's signed reading.
    await expect(
      ledger.submit(client(A), (ctx) =>
        stopSession(ctx, { stopReading: other.reading('STOP', 's1', 3_000, t + 400) }),
      ),
    ).rejects.toMatchObject({ code: 'NOT_PILE_OPERATOR' });
    await expect(
      ledger.submit(client(B), (ctx) =>
        stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 3_000, t + 400) }),
      ),
    ).rejects.toMatchObject({ code: 'NOT_PILE_OPERATOR' });
  });

  test('a nonce is never accepted twice, even for a new session', async () => {
    const { ledger, driver, p1, p2, t } = await world();
    const auth = driver.authorize(p1.pileId, 1_000, t + 600, 'fixed-nonce');
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, { authorization: auth, startReading: p1.reading('START', 's1', 0, t) }),
    );
    await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 0, t + 1) }),
    );
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, { authorization: auth, startReading: p1.reading('START', 's2', 0, t + 2) }),
      ),
    ).rejects.toMatchObject({ code: 'NONCE_REUSED' });
    // A signature for pile 1 cannot start pile 2.
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          authorization: { ...auth, pileId: p2.pileId },
          startReading: p2.reading('START', 's3', 0, t),
        }),
      ),
    ).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
  });

  test('altered, foreign-signed, backwards and late readings are refused', async () => {
    const { ledger, driver, p1, p2, t } = await world();
    const auth = () => driver.authorize(p1.pileId, 1_000, t + 600);
    const altered = { ...p1.reading('START', 's1', 0, t), meterWh: 5 };
    await expect(
      ledger.submit(client(A), (ctx) => startSession(ctx, { authorization: auth(), startReading: altered })),
    ).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    const foreign = p1.reading('START', 's1', 0, t, p2.keys);
    await expect(
      ledger.submit(client(A), (ctx) => startSession(ctx, { authorization: auth(), startReading: foreign })),
    ).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, { authorization: auth(), startReading: p1.reading('START', 's1', 1_000, t) }),
    );
    await expect(
      ledger.submit(client(A), (ctx) =>
        stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 999, t + 60) }),
      ),
    ).rejects.toMatchObject({
      code: 'METER_WENT_BACKWARDS',
    });
    await expect(
      ledger.submit(client(A), (ctx) =>
        stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 1_500, t - 60) }),
      ),
    ).rejects.toMatchObject({
      code: 'READING_OUT_OF_ORDER',
    });
    await expect(
      ledger.submit(client(A), (ctx) =>
        stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 1_500, t + 60, p2.keys) }),
      ),
    ).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    // Another pile's reading names that pile's own session "s1", which does not exist.
    await expect(
      ledger.submit(client(A), (ctx) =>
        stopSession(ctx, { stopReading: p2.reading('STOP', 's1', 1_500, t + 60) }),
      ),
    ).rejects.toMatchObject({
      code: 'SESSION_NOT_FOUND',
    });
  });

  test('an expired authorization, another operator, a suspended pile and an overspend are refused', async () => {
    const { ledger, driver, p1, t } = await world();
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(p1.pileId, 1_000, t - 1),
          startReading: p1.reading('START', 's1', 0, t),
        }),
      ),
    ).rejects.toMatchObject({ code: 'AUTHORIZATION_EXPIRED' });
    await expect(
      ledger.submit(client(B), (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(p1.pileId, 1_000, t + 60),
          startReading: p1.reading('START', 's1', 0, t),
        }),
      ),
    ).rejects.toMatchObject({ code: 'NOT_PILE_OPERATOR' });
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(p1.pileId, 5_001, t + 60),
          startReading: p1.reading('START', 's1', 0, t),
        }),
      ),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    await expect(
      ledger.submit(client(B), (ctx) => setPileStatus(ctx, { pileId: p1.pileId, status: 'suspended' })),
    ).rejects.toMatchObject({
      code: 'NOT_PILE_OPERATOR',
    });
    await ledger.submit(client(A), (ctx) => setPileStatus(ctx, { pileId: p1.pileId, status: 'suspended' }));
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(p1.pileId, 1_000, t + 60),
          startReading: p1.reading('START', 's1', 0, t),
        }),
      ),
    ).rejects.toMatchObject({ code: 'PILE_NOT_ACTIVE' });
  });

  test('two sessions racing for the same money: one commits, the other is invalidated (MVCC)', async () => {
    const { ledger, driver, p1, p2, t } = await world();
    const sims = await Promise.all(
      [p1, p2].map((p, i) =>
        ledger.simulate(client(A), (ctx) =>
          startSession(ctx, {
            authorization: driver.authorize(p.pileId, 4_000, t + 600),
            startReading: p.reading('START', `race${i}`, 0, t),
          }),
        ),
      ),
    );
    expect(sims.every((s) => s.ok)).toBe(true); // each alone would fit in the wallet
    expect(ledger.commitBlock(sims)).toEqual(['VALID', 'MVCC_READ_CONFLICT']);
    expect((await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId))).heldFen).toBe(4_000);
  });

  test('an implausible energy jump is refused; the operator can still close with a plausible reading', async () => {
    const { ledger, driver, p1, t } = await world();
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 2_000, t + 600),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    await expect(
      ledger.submit(client(A), (ctx) =>
        stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 2_000_000_000, t + 60) }),
      ),
    ).rejects.toMatchObject({
      code: 'ENERGY_IMPLAUSIBLE',
    });
    const s = await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 1_000, t + 60) }),
    );
    expect(s.settlement?.chargedFen).toBe(150);
  });

  test('a stale session is closed by its operator only after the limit, with the last signed reading', async () => {
    const { ledger, driver, p1, t } = await world();
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 2_000, t + 600),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    const last = p1.reading('PROGRESS', 's1', 4_000, t + 1800);
    await expect(
      ledger.submit(
        client(A),
        (ctx) => closeStaleSession(ctx, { pileId: p1.pileId, sessionId: 's1', lastReading: last }),
        t + 3600,
      ),
    ).rejects.toMatchObject({
      code: 'SESSION_NOT_STALE',
    });
    const later = t + PARAMS.sessionMaxOpenSec;
    await expect(
      ledger.submit(
        client(B),
        (ctx) => closeStaleSession(ctx, { pileId: p1.pileId, sessionId: 's1', lastReading: last }),
        later,
      ),
    ).rejects.toMatchObject({
      code: 'NOT_PILE_OPERATOR',
    });
    // The reading is hours old by now (READING TIME RULE): the operator records it when it comes...
    await expect(
      ledger.submit(
        client(A),
        (ctx) => closeStaleSession(ctx, { pileId: p1.pileId, sessionId: 's1', lastReading: last }),
        later,
      ),
    ).rejects.toMatchObject({ code: 'READING_TOO_OLD' });
    await ledger.submit(client(A), (ctx) => recordReading(ctx, { reading: last }), t + 1800);
    // ...and the stale close settles on the last recorded reading.
    const s = await ledger.submit(
      client(A),
      (ctx) => closeStaleSession(ctx, { pileId: p1.pileId, sessionId: 's1' }),
      later,
    );
    expect(s.settlement).toMatchObject({ energyWh: 4_000, chargedFen: 600, closedAsStale: true });
  });

  test('a session its operator abandons is closed by any member after twice the limit: no hold is kept for ever', async () => {
    const { ledger, driver, p1, t } = await world(); // 5,000 fen topped up at A; p1 is A's pile
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 5_000, t + 600),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    // A never closes it. Between the limit and twice the limit the session is still A's to close...
    const close = { pileId: p1.pileId, sessionId: 's1' };
    const others = t + ABANDONED_AFTER * PARAMS.sessionMaxOpenSec;
    await expect(
      ledger.submit(client(B), (ctx) => closeStaleSession(ctx, close), others - 1),
    ).rejects.toMatchObject({ code: 'NOT_PILE_OPERATOR', details: { othersFrom: others } });
    // ...then any member may, with the pile's own signed reading if it has one (here none: 0 Wh).
    const s = await ledger.submit(client(B), (ctx) => closeStaleSession(ctx, close), others);
    expect(s.settlement).toMatchObject({ energyWh: 0, chargedFen: 0, closedAsStale: true });
    const w = await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId));
    expect([w.balanceFen, w.heldFen]).toEqual([5_000, 0]);
    await ledger.submit(client(B), (ctx) => refundWallet(ctx, driver.refund(B, 5_000, others + 60)), others);
  });

  test('a session keeps the time limit in force at its start: a later vote cannot open it to others sooner', async () => {
    const { ledger, driver, p1, t } = await world();
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 2_000, t + 600),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    // Found in review: B, C and D (A against) lower sessionMaxOpenSec to 10 minutes, in force at once...
    const p = {
      proposalId: 'short',
      change: { kind: 'PARAMS', params: { ...PARAMS, sessionMaxOpenSec: 600 } },
      effectiveFrom: t + 10,
      votingEndsAt: t + 60,
    };
    await ledger.submit(admin(B), (ctx) => propose(ctx, p), t + 10);
    for (const op of [B, OPS.C.mspId, OPS.D.mspId])
      await ledger.submit(admin(op), (ctx) => vote(ctx, { proposalId: 'short', approve: true }), t + 20);
    await ledger.submit(client(B), (ctx) => enact(ctx, 'short'), t + 30);
    // ...but A's session started under 12 h: B may not close it 25 minutes in, nor may A call it stale.
    const close = { pileId: p1.pileId, sessionId: 's1' };
    await expect(
      ledger.submit(client(B), (ctx) => closeStaleSession(ctx, close), t + 1_500),
    ).rejects.toMatchObject({
      code: 'NOT_PILE_OPERATOR',
      details: { othersFrom: t + ABANDONED_AFTER * PARAMS.sessionMaxOpenSec },
    });
    await expect(
      ledger.submit(client(A), (ctx) => closeStaleSession(ctx, close), t + 1_500),
    ).rejects.toMatchObject({
      code: 'SESSION_NOT_STALE',
    });
    expect((await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId))).heldFen).toBe(2_000);
  });

  test('bad input gets INVALID_ARGUMENT naming the field, and unknown fields are refused', async () => {
    const { ledger, driver, p1, t } = await world();
    const good = {
      authorization: driver.authorize(p1.pileId, 1_000, t + 600),
      startReading: p1.reading('START', 's1', 0, t),
    };
    await expect(
      ledger.submit(client(A), (ctx) => startSession(ctx, { ...good, extra: 1 })),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, { ...good, authorization: { ...good.authorization, capFen: 10.5 } }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { path: 'authorization.capFen' } });
    await expect(
      ledger.submit(client(A), (ctx) =>
        topUp(ctx, { walletId: driver.walletId, amountFen: -1, reference: 'neg' }),
      ),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const { MAX_TOPUP_FEN, MAX_WALLET_FEN } = await import('../src/domain/money');
    await expect(
      ledger.submit(client(A), (ctx) =>
        topUp(ctx, { walletId: driver.walletId, amountFen: MAX_TOPUP_FEN + 1, reference: 'huge' }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { path: 'amountFen' } });
    // Fill the wallet to its cap with maximal top-ups; one more fen is refused.
    const room = MAX_WALLET_FEN - 5_000;
    for (let i = 0; i * MAX_TOPUP_FEN < room; i++) {
      const amountFen = Math.min(MAX_TOPUP_FEN, room - i * MAX_TOPUP_FEN);
      await ledger.submit(client(A), (ctx) =>
        topUp(ctx, { walletId: driver.walletId, amountFen, reference: `big${i}` }),
      );
    }
    await expect(
      ledger.submit(client(A), (ctx) =>
        topUp(ctx, { walletId: driver.walletId, amountFen: 1, reference: 'over' }),
      ),
    ).rejects.toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE' });
    await expect(
      ledger.submit(client(A), (ctx) =>
        registerPile(ctx, { localId: 'bad/id', publicKey: p1.keys.publicKeyHex }),
      ),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      ledger.submit(client(A), (ctx) =>
        registerPile(ctx, { localId: 'P9', publicKey: '04' + 'ab'.repeat(64) }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('bean sale and transfer by signature', () => {
  test('a driver buys beans at the posted price within its signed maximum and gives some away', async () => {
    const { ledger, driver, t } = await world();
    const { creditReward, issueBeans } = await import('../src/domain/beans');
    const { setOperatorPolicy } = await import('../src/domain/consortium');
    await ledger.submit(client(A), (ctx) => creditReward(ctx, A, 'b1', 10_000));
    await ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 100, reference: 'issue-1' }));
    const purchase = driver.buy(A, 10, 900, t + 60);
    await expect(ledger.submit(client(A), (ctx) => buyBeans(ctx, purchase))).rejects.toMatchObject({
      code: 'BEANS_NOT_ON_SALE',
    });
    await ledger.submit(admin(A), (ctx) =>
      setOperatorPolicy(ctx, { rebateWhPerBean: 0, beanSalePriceFen: 95 }),
    );
    await expect(ledger.submit(client(A), (ctx) => buyBeans(ctx, purchase))).rejects.toMatchObject({
      code: 'AMOUNT_OUT_OF_RANGE',
    });
    const ok = driver.buy(A, 10, 950, t + 60);
    expect(await ledger.submit(client(A), (ctx) => buyBeans(ctx, ok))).toEqual({ beans: 10, costFen: 950 });
    await expect(ledger.submit(client(A), (ctx) => buyBeans(ctx, ok))).rejects.toMatchObject({
      code: 'NONCE_REUSED',
    });
    const friend = new Driver();
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: friend.keys.publicKeyHex }));
    expect(
      await ledger.submit(client(B), (ctx) =>
        transferBeans(ctx, driver.transfer(friend.walletId, A, 4, t + 60)),
      ),
    ).toEqual({ from: 6, to: 4 });
    await expect(
      ledger.submit(client(B), (ctx) => transferBeans(ctx, driver.transfer(friend.walletId, A, 7, t + 60))),
    ).rejects.toMatchObject({
      code: 'INSUFFICIENT_BEANS',
    });
    // The friend cannot move the driver's beans with its own key.
    const forged = {
      ...friend.transfer(driver.walletId, A, 1, t + 60),
      fromWalletId: driver.walletId,
      toWalletId: friend.walletId,
    };
    await expect(ledger.submit(client(B), (ctx) => transferBeans(ctx, forged))).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
  });
});

describe('piles', () => {
  test("an operator's piles are listed in pages, and only its own", async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const { listPiles, PILE_PAGE } = await import('../src/domain/piles');
    const n = PILE_PAGE + 3;
    const key = new Driver().keys.publicKeyHex;
    for (let i = 0; i < n; i++)
      await ledger.submit(client(A), (ctx) =>
        registerPile(ctx, { localId: `P${String(i).padStart(4, '0')}`, publicKey: key }),
      );
    await ledger.submit(client(B), (ctx) => registerPile(ctx, { localId: 'P0000', publicKey: key }));
    const first = await ledger.evaluate(auditor, (ctx) => listPiles(ctx, { mspId: A }));
    expect(first.piles).toHaveLength(PILE_PAGE);
    expect(first.next).toBe(`P${String(PILE_PAGE - 1).padStart(4, '0')}`);
    const second = await ledger.evaluate(auditor, (ctx) => listPiles(ctx, { mspId: A, after: first.next }));
    expect(second.piles.map((p) => p.pileId)).toEqual(
      [PILE_PAGE, PILE_PAGE + 1, PILE_PAGE + 2].map((i) => `${A}.P${String(i).padStart(4, '0')}`),
    );
    expect(second.next).toBeUndefined();
    expect(
      (await ledger.evaluate(auditor, (ctx) => listPiles(ctx, { mspId: B }))).piles.map((p) => p.operator),
    ).toEqual([B]);
  });

  test('retiring a pile returns its rebate float to the treasury; a retired pile stays retired', async () => {
    const { ledger, p1 } = await world();
    const { allocateRebateFloat, creditReward, issueBeans, issuanceState } =
      await import('../src/domain/beans');
    await ledger.submit(client(A), (ctx) => creditReward(ctx, A, 'b1', 1_000));
    await ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 10, reference: 'i1' }));
    await ledger.submit(admin(A), (ctx) =>
      allocateRebateFloat(ctx, { pileId: p1.pileId, beans: 6, reference: 'f1' }),
    );
    await expect(
      ledger.submit(client(A), (ctx) =>
        allocateRebateFloat(ctx, { pileId: p1.pileId, beans: 1, reference: 'fc' }),
      ),
    ).rejects.toMatchObject({ code: 'NOT_OPERATOR_ADMIN' });
    await expect(
      ledger.submit(admin(A), (ctx) =>
        allocateRebateFloat(ctx, { pileId: p1.pileId, beans: 6, reference: 'f1' }),
      ),
    ).rejects.toMatchObject({
      code: 'REFERENCE_REPLAYED',
    });
    expect((await ledger.evaluate(client(A), (ctx) => issuanceState(ctx, A))).treasury).toBe(4);
    const retired = await ledger.submit(admin(A), (ctx) =>
      setPileStatus(ctx, { pileId: p1.pileId, status: 'retired' }),
    );
    await expect(
      ledger.submit(admin(A), (ctx) =>
        allocateRebateFloat(ctx, { pileId: p1.pileId, beans: 1, reference: 'f2' }),
      ),
    ).rejects.toMatchObject({
      code: 'PILE_RETIRED',
    });
    expect(retired.rebateFloat).toBe(0);
    expect((await ledger.evaluate(client(A), (ctx) => issuanceState(ctx, A))).treasury).toBe(10);
    await expect(
      ledger.submit(client(A), (ctx) => setPileStatus(ctx, { pileId: p1.pileId, status: 'active' })),
    ).rejects.toMatchObject({
      code: 'PILE_RETIRED',
    });
  });
});

describe('membership', () => {
  test('admitting an operator by governance: new MSP, not an auditor, unused name; then it pays its margin', async () => {
    const { ledger, t } = await world();
    const admit = (id: string, mspId: string, name: string) => ({
      proposalId: id,
      change: { kind: 'ADMIT_OPERATOR', mspId, name },
      effectiveFrom: t,
      votingEndsAt: t + 3600,
    });
    await expect(
      ledger.submit(admin(A), (ctx) => propose(ctx, admit('p1', 'AuditorMSP', 'Sneaky'))),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      ledger.submit(admin(A), (ctx) => propose(ctx, admit('p1', 'EchoMSP', OPS.B.name))),
    ).rejects.toMatchObject({
      code: 'OPERATOR_EXISTS',
    });
    await expect(ledger.submit(admin('EchoMSP'), (ctx) => payMargin(ctx))).rejects.toMatchObject({
      code: 'NOT_AN_OPERATOR',
    });
    await ledger.submit(admin(A), (ctx) => propose(ctx, admit('p1', 'EchoMSP', 'Echo Volt')));
    for (const o of [A, B, OPS.C.mspId])
      await ledger.submit(admin(o), (ctx) => vote(ctx, { proposalId: 'p1', approve: true }));
    await ledger.submit(client(B), (ctx) => enact(ctx, 'p1'));
    await expect(
      ledger.submit(client('EchoMSP'), (ctx) =>
        registerPile(ctx, { localId: 'E1', publicKey: new Driver().keys.publicKeyHex }),
      ),
    ).rejects.toMatchObject({
      code: 'MARGIN_NOT_PAID',
    });
    await payMarginConfirmed(ledger, 'EchoMSP');
    await ledger.submit(client('EchoMSP'), (ctx) =>
      registerPile(ctx, { localId: 'E1', publicKey: new Driver().keys.publicKeyHex }),
    );
  });

  test('the clearing calendar cannot be changed by governance', async () => {
    const { ledger, t } = await world();
    const change = { kind: 'PARAMS', params: { ...PARAMS, clearingPeriodSec: 3600 } };
    await expect(
      ledger.submit(admin(A), (ctx) =>
        propose(ctx, { proposalId: 'cal', change, effectiveFrom: t, votingEndsAt: t + 60 }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const fine = { kind: 'PARAMS', params: { ...PARAMS, beanWh: 2000 } };
    await ledger.submit(admin(A), (ctx) =>
      propose(ctx, { proposalId: 'bean', change: fine, effectiveFrom: t, votingEndsAt: t + 60 }),
    );
  });
});

describe('proposal lifecycle', () => {
  test('the proposer withdraws; after voting ends an unapproved proposal expires; an approved one must be enacted', async () => {
    const { ledger, t } = await world();
    const { closeProposal } = await import('../src/domain/governance');
    const mk = (id: string) => ({
      proposalId: id,
      change: { kind: 'ADMIT_OPERATOR', mspId: `${id}MSP`, name: `Op ${id}` },
      effectiveFrom: t,
      votingEndsAt: t + 600,
    });
    for (const id of ['w', 'x', 'y']) await ledger.submit(admin(A), (ctx) => propose(ctx, mk(id)));
    await expect(ledger.submit(admin(B), (ctx) => closeProposal(ctx, 'w'))).rejects.toMatchObject({
      code: 'PROPOSAL_NOT_CLOSABLE',
    });
    expect((await ledger.submit(admin(A), (ctx) => closeProposal(ctx, 'w'))).status).toBe('withdrawn');
    await expect(
      ledger.submit(admin(A), (ctx) => vote(ctx, { proposalId: 'w', approve: true })),
    ).rejects.toMatchObject({ code: 'PROPOSAL_CLOSED' });
    for (const o of [A, B, OPS.C.mspId])
      await ledger.submit(admin(o), (ctx) => vote(ctx, { proposalId: 'y', approve: true }));
    const later = t + 601;
    expect((await ledger.submit(client(B), (ctx) => closeProposal(ctx, 'x'), later)).status).toBe('expired');
    await expect(ledger.submit(client(B), (ctx) => enact(ctx, 'x'), later)).rejects.toMatchObject({
      code: 'PROPOSAL_CLOSED',
    });
    await expect(ledger.submit(admin(A), (ctx) => closeProposal(ctx, 'y'))).rejects.toMatchObject({
      code: 'PROPOSAL_NOT_CLOSABLE',
    }); // approved: the proposer can no longer veto it
    await expect(ledger.submit(client(B), (ctx) => closeProposal(ctx, 'y'), later)).rejects.toMatchObject({
      code: 'PROPOSAL_NOT_CLOSABLE',
    });
    expect((await ledger.submit(client(B), (ctx) => enact(ctx, 'y'), later)).status).toBe('enacted');
  });

  test('tariff prices are bounded so no session price can overflow', async () => {
    const { ledger, t } = await world();
    const absurd = {
      ...TARIFF,
      prices: { ...TARIFF.prices, peak: { energyFenPerKwh: 10_000_000, serviceFenPerKwh: 0 } },
    };
    await expect(
      ledger.submit(admin(A), (ctx) =>
        propose(ctx, {
          proposalId: 'p',
          change: { kind: 'TARIFF', tariff: absurd },
          effectiveFrom: t,
          votingEndsAt: t + 60,
        }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('governance', () => {
  test('a tariff change needs a qualified majority of admins and applies only to sessions started after it', async () => {
    const { ledger, driver, p1, t } = await world();
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 3_000, t + 600),
        startReading: p1.reading('START', 'old', 0, t),
      }),
    );
    const dearer = {
      ...TARIFF,
      prices: { ...TARIFF.prices, flat: { energyFenPerKwh: 170, serviceFenPerKwh: 80 } },
    };
    const proposal = {
      proposalId: 'tariff-2',
      change: { kind: 'TARIFF', tariff: dearer },
      effectiveFrom: t + 10,
      votingEndsAt: t + 3600,
    };
    await expect(ledger.submit(client(A), (ctx) => propose(ctx, proposal))).rejects.toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    await ledger.submit(admin(A), (ctx) => propose(ctx, proposal));
    await ledger.submit(admin(A), (ctx) => vote(ctx, { proposalId: 'tariff-2', approve: true }));
    await expect(
      ledger.submit(admin(A), (ctx) => vote(ctx, { proposalId: 'tariff-2', approve: true })),
    ).rejects.toMatchObject({ code: 'ALREADY_VOTED' });
    await ledger.submit(admin(B), (ctx) => vote(ctx, { proposalId: 'tariff-2', approve: true }));
    await expect(ledger.submit(client(A), (ctx) => enact(ctx, 'tariff-2'))).rejects.toMatchObject({
      code: 'QUORUM_NOT_REACHED',
    });
    await ledger.submit(admin(OPS.C.mspId), (ctx) => vote(ctx, { proposalId: 'tariff-2', approve: true }));
    const enacted = await ledger.submit(client(A), (ctx) => enact(ctx, 'tariff-2'));
    expect(enacted).toMatchObject({ status: 'enacted', enactedVersion: 2 });
    const old = await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: p1.reading('STOP', 'old', 10_000, t + 60) }),
      t + 60,
    );
    expect(old.settlement?.chargedFen).toBe(1_500); // version 1 price, fixed at start
    await ledger.submit(
      client(A),
      (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(p1.pileId, 3_000, t + 600),
          startReading: p1.reading('START', 'new', 10_000, t + 70),
        }),
      t + 70,
    );
    const fresh = await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: p1.reading('STOP', 'new', 20_000, t + 120) }),
      t + 120,
    );
    expect(fresh.settlement?.chargedFen).toBe(2_500);
    expect(fresh.tariffVersion).toBe(2);
  });
});

describe('found in review', () => {
  test('two rewards in one transaction are refused (checks read committed state only)', async () => {
    const { ledger } = await world();
    const { creditReward } = await import('../src/domain/beans');
    const { poolSummary } = await import('../src/domain/pool');
    const twice = ledger.submit(client(A), async (ctx) => {
      await creditReward(ctx, A, 'block-7', 3_000_000);
      await creditReward(ctx, A, 'block-8', 3_000_000);
    });
    await expect(twice).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await ledger.evaluate(client(A), (ctx) => poolSummary(ctx))).rewardsPaidFen).toBe(0);
  });

  test('an MSP id named like an Object property is an ordinary operator in positions and clearing', async () => {
    const ledger = new MemoryLedger();
    await bootstrap(ledger, [OPS.A, { mspId: 'constructor', name: 'Constructor Co' }]);
    const d = new Driver();
    await ledger.submit(client('constructor'), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    await ledger.submit(client('constructor'), (ctx) =>
      topUp(ctx, { walletId: d.walletId, amountFen: 700, reference: 'r' }),
    );
    const { periodPositions } = await import('../src/domain/lookups');
    const { closePeriod, periodOf } = await import('../src/domain/clearing');
    const period = periodOf(ledger.now, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const open = await ledger.evaluate(client(A), (ctx) => periodPositions(ctx, period));
    expect(open.positions['constructor']).toMatchObject({ topUpCashFen: 700, dueFen: -700, movements: 1 });
    const closed = await ledger.submit(client(A), (ctx) => closePeriod(ctx, period), ledger.now + 2 * 86_400);
    expect(closed.positions['constructor']).toMatchObject({ topUpCashFen: 700, dueFen: -700 });
    expect(closed.poolDueFen).toBe(700);
  });
});

describe('found in the second review', () => {
  test('an approved proposal made stale by a newer enacted version cannot be enacted, and can be closed', async () => {
    const { ledger, t } = await world();
    const { closeProposal } = await import('../src/domain/governance');
    const tariff = (flat: number) => ({
      ...TARIFF,
      prices: { ...TARIFF.prices, flat: { energyFenPerKwh: flat, serviceFenPerKwh: 80 } },
    });
    for (const [id, flat] of [
      ['jan', 60],
      ['feb', 65],
    ] as const) {
      await ledger.submit(admin(A), (ctx) =>
        propose(ctx, {
          proposalId: id,
          change: { kind: 'TARIFF', tariff: tariff(flat) },
          effectiveFrom: t,
          votingEndsAt: t + 600,
        }),
      );
      for (const o of [A, B, OPS.C.mspId])
        await ledger.submit(admin(o), (ctx) => vote(ctx, { proposalId: id, approve: true }));
    }
    expect((await ledger.submit(client(B), (ctx) => enact(ctx, 'feb'))).enactedVersion).toBe(2);
    await expect(
      ledger.submit(client(B), (ctx) => enact(ctx, 'jan'), t + 601), // voting over, within the enactment window
    ).rejects.toMatchObject({
      code: 'PROPOSAL_SUPERSEDED',
    });
    expect((await ledger.submit(client(B), (ctx) => closeProposal(ctx, 'jan'))).status).toBe('superseded');
  });

  test('energy paid with beans earns no rebate, so beans never mint beans', async () => {
    const { ledger, driver, p1, t } = await world();
    const { creditReward, allocateRebateFloat, buyBeans, beanBalance } = await import('../src/domain/beans');
    const { setOperatorPolicy } = await import('../src/domain/consortium');
    await ledger.submit(client(A), (ctx) => creditReward(ctx, A, 'r', 10_000));
    await ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 100, reference: 'i' }));
    await ledger.submit(admin(A), (ctx) =>
      setOperatorPolicy(ctx, { rebateWhPerBean: 500, beanSalePriceFen: 10 }),
    );
    await ledger.submit(admin(A), (ctx) =>
      allocateRebateFloat(ctx, { pileId: p1.pileId, beans: 50, reference: 'f' }),
    );
    const purchase = driver.buy(A, 4, 40, t + 60);
    await ledger.submit(client(A), (ctx) => buyBeans(ctx, purchase));
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 1_000, t + 600, undefined, 4),
        startReading: p1.reading('START', 's', 0, t),
      }),
    );
    const s = await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p1.reading('STOP', 's', 4_000, t + 60) }),
    );
    expect(s.settlement).toMatchObject({ beansUsed: 4, chargedFen: 0, rebateBeans: 0 });
    expect(await ledger.evaluate(client(A), (ctx) => beanBalance(ctx, driver.walletId, A))).toBe(0);
  });
});

describe('wallet refunds', () => {
  test('a driver is paid out by the operator it names; the wallet, holds and clearing follow', async () => {
    const { ledger, driver, p1, t } = await world(); // 5,000 fen topped up at A
    const { closePeriod, periodOf } = await import('../src/domain/clearing');
    const refund = driver.refund(B, 1_200, t + 60);
    // Only the named operator may book the payout, and only with the driver's own signature.
    await expect(ledger.submit(client(A), (ctx) => refundWallet(ctx, refund))).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    const thief = new Driver();
    const forged = { ...thief.refund(B, 1_200, t + 60), walletId: driver.walletId };
    await expect(ledger.submit(client(B), (ctx) => refundWallet(ctx, forged))).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    const altered = { ...refund, amountFen: 1_201 };
    await expect(ledger.submit(client(B), (ctx) => refundWallet(ctx, altered))).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    await expect(
      ledger.submit(client(B), (ctx) => refundWallet(ctx, driver.refund(B, 10, t - 1))),
    ).rejects.toMatchObject({ code: 'AUTHORIZATION_EXPIRED' });
    await expect(
      ledger.submit(auditor, (ctx) => refundWallet(ctx, driver.refund(AUDITOR_MSP, 10, t + 60))),
    ).rejects.toMatchObject({ code: 'AUDITOR_READ_ONLY' });
    await expect(
      ledger.submit(client(B), (ctx) => refundWallet(ctx, { ...refund, extra: 1 })),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

    expect((await ledger.submit(client(B), (ctx) => refundWallet(ctx, refund))).balanceFen).toBe(3_800);
    await expect(ledger.submit(client(B), (ctx) => refundWallet(ctx, refund))).rejects.toMatchObject({
      code: 'NONCE_REUSED',
    });
    // Money held for a running session cannot be paid out.
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 3_000, t + 600),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    await expect(
      ledger.submit(client(B), (ctx) => refundWallet(ctx, driver.refund(B, 801, t + 60))),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS', details: { amountFen: 801 } });
    await ledger.submit(client(B), (ctx) => refundWallet(ctx, driver.refund(B, 800, t + 60)));
    const w = await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId));
    expect([w.balanceFen, w.heldFen]).toEqual([3_000, 3_000]);

    // A took 5,000 in cash, B paid 2,000 out: B is owed its payout, the pool keeps the rest for the wallet.
    await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 0, t + 60) }),
    );
    const period = periodOf(t, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const r = await ledger.submit(client(A), (ctx) => closePeriod(ctx, period), t + 2 * 86_400);
    expect(r.positions[B]).toMatchObject({ refundCashFen: 2_000, dueFen: 2_000 });
    expect(r.positions[A]).toMatchObject({ topUpCashFen: 5_000, dueFen: -5_000 });
    expect(r.poolDueFen).toBe(3_000);
  });
});

describe('signatures are bound to one network', () => {
  test('an authorization signed for one deployment is refused in another, whatever else matches', async () => {
    // Two deployments with the same operators and pile names, and a driver using one key in both.
    const driver = new Driver();
    const pile = new PileDevice(`${A}.P1`);
    const [prod, staging] = [new MemoryLedger(), new MemoryLedger()];
    for (const [ledger, networkId] of [
      [prod, 'evpay-prod'],
      [staging, 'evpay-staging'],
    ] as const) {
      await ledger.submit(admin(A), (ctx) => initPinned(ctx, genesis(undefined, networkId)));
      for (const op of Object.values(OPS)) await payMarginConfirmed(ledger, op.mspId);
      await ledger.submit(client(A), (ctx) =>
        registerPile(ctx, { localId: pile.localId, publicKey: pile.keys.publicKeyHex }),
      );
      await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: driver.keys.publicKeyHex }));
      await ledger.submit(client(A), (ctx) =>
        topUp(ctx, { walletId: driver.walletId, amountFen: 10_000, reference: 'r' }),
      );
    }
    const t = prod.now;
    driver.network = pile.network = 'evpay-prod';
    const start = {
      authorization: driver.authorize(pile.pileId, 3_000, t + 600),
      startReading: pile.reading('START', 's1', 0, t),
    };
    await prod.submit(client(A), (ctx) => startSession(ctx, start));
    // Replayed in staging, the same bytes fail: the driver's authorization first, then the pile's reading.
    await expect(staging.submit(client(A), (ctx) => startSession(ctx, start))).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
      message: expect.stringContaining('authorization'),
    });
    driver.network = 'evpay-staging';
    const withStagingAuth = { ...start, authorization: driver.authorize(pile.pileId, 3_000, t + 600) };
    await expect(
      staging.submit(client(A), (ctx) => startSession(ctx, withStagingAuth)),
    ).rejects.toMatchObject({ code: 'BAD_SIGNATURE', message: expect.stringContaining('START reading') });
    driver.network = 'evpay-prod';
    const refund = driver.refund(B, 10_000, t + 600);
    await expect(staging.submit(client(B), (ctx) => refundWallet(ctx, refund))).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    expect((await staging.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId))).balanceFen).toBe(
      10_000,
    );
  });
});

describe('lookups', () => {
  test("an operator's settled sessions of one period are read whole, 500 at a time, page after page", async () => {
    const { ledger } = await world();
    const period = 20_454;
    // 1,234 settled sessions at A's piles in one period, as settlement indexes them (seeded, to stay fast).
    const ids = Array.from({ length: 1_234 }, (_, i) => ({ pileId: `${A}.P${i % 7}`, sessionId: `s${i}` }));
    ledger.seed(
      ids.flatMap(({ pileId, sessionId }): Array<[string, unknown]> => [
        [Keys.sessionsByPeriod(period, A, pileId, sessionId), { pileId, sessionId }],
        [Keys.session(pileId, sessionId), { pileId, sessionId, operator: A, status: 'settled' }],
      ]),
    );
    const seen: string[] = [];
    let after: { pileId: string; sessionId: string } | undefined;
    for (;;) {
      const page = await ledger.evaluate(auditor, (ctx) =>
        findSessions(ctx, { by: 'operator', mspId: A, period, ...(after ? { after } : {}) }),
      );
      seen.push(...page.map((s) => `${s.pileId}/${s.sessionId}`));
      if (page.length < MAX_LOOKUP) break;
      const last = page[page.length - 1]!;
      after = { pileId: last.pileId, sessionId: last.sessionId };
    }
    const expected = ids.map((s) => `${s.pileId}/${s.sessionId}`).sort();
    expect(seen).toEqual(expected); // every one, once, in key order, over three pages
    await expect(
      ledger.evaluate(auditor, (ctx) =>
        findSessions(ctx, { by: 'operator', mspId: A, period, after: { pileId: 'x/y', sessionId: 's' } }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('issue 10: holes an adversarial operator found in sessions', () => {
  /** The driver owns `beans` of A's beans, bought at 1 fen each. */
  async function withBeans(beans: number) {
    const w = await world(); // 5,000 fen topped up at A; p1, p2 are A's piles
    const { creditReward, buyBeans } = await import('../src/domain/beans');
    const { setOperatorPolicy } = await import('../src/domain/consortium');
    await w.ledger.submit(client(A), (ctx) => creditReward(ctx, A, 'r', 100_000));
    await w.ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 1_000, reference: 'i' }));
    await w.ledger.submit(admin(A), (ctx) =>
      setOperatorPolicy(ctx, { rebateWhPerBean: 0, beanSalePriceFen: 1 }),
    );
    await w.ledger.submit(client(A), (ctx) => buyBeans(ctx, w.driver.buy(A, beans, beans, w.t + 60)));
    return w;
  }

  test('a pile cannot choose its price window: readings are bounded by the tx time, the span starts at the tx', async () => {
    const { ledger, driver, p1, t } = await world(); // t is 08:00 local
    const at23 = t + 15 * 3600; // 23:00 local: an hour of valley (110 fen/kWh) until midnight
    const start = (readAt: number, sid: string, at = at23, meterWh = 0) =>
      ledger.submit(
        client(A),
        (ctx) =>
          startSession(ctx, {
            authorization: driver.authorize(p1.pileId, 3_000, at + 600),
            startReading: p1.reading('START', sid, meterWh, readAt),
          }),
        at,
      );
    // The probe: START stamped 13 hours before the transaction that carries it.
    await expect(start(at23 - 13 * 3600, 'early')).rejects.toMatchObject({
      code: 'READING_TOO_OLD',
      details: { readAt: at23 - 13 * 3600, oldestAllowed: at23 - MAX_READING_AGE_SEC },
    });
    await expect(start(at23 + MAX_TX_TIME_SKEW_SEC + 1, 'ahead')).rejects.toMatchObject({
      code: 'READING_OUT_OF_ORDER',
    });
    // Within the buffering window (50 min earlier, in the flat period) it is accepted, but the span
    // priced starts at the StartSession transaction: 10 kWh of valley, 1,100 fen, as when honest.
    await start(at23 - 50 * 60, 's1');
    const s = await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 10_000, at23 + 3600) }),
      at23 + 3600,
    );
    expect(s.settlement?.price).toMatchObject({
      totalFen: 1_100,
      whByKind: { peak: 0, flat: 0, valley: 10_000 },
    });
    // A stop reading is bounded the same way.
    await start(at23 + 3600, 's2', at23 + 3600, 10_000);
    await expect(
      ledger.submit(
        client(A),
        (ctx) => stopSession(ctx, { stopReading: p1.reading('STOP', 's2', 20_000, at23 + 3600) }),
        at23 + 3600 + MAX_READING_AGE_SEC + 1,
      ),
    ).rejects.toMatchObject({ code: 'READING_TOO_OLD' });
  });

  test('a stale close cannot use an old reading: the session keeps the last reading it saw', async () => {
    const { ledger, driver, p1, t } = await world();
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 2_000, t + 600),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    const early = p1.reading('PROGRESS', 's1', 2_000, t + 900);
    const later = p1.reading('PROGRESS', 's1', 4_000, t + 1800);
    const stale = t + ABANDONED_AFTER * PARAMS.sessionMaxOpenSec;
    // Before: any signed reading of the session was accepted, however old and whoever closed.
    await expect(
      ledger.submit(
        client(B),
        (ctx) => closeStaleSession(ctx, { pileId: p1.pileId, sessionId: 's1', lastReading: early }),
        stale,
      ),
    ).rejects.toMatchObject({ code: 'READING_TOO_OLD' });
    // The operator records readings as they come; each must be newer than the last one recorded.
    await ledger.submit(client(A), (ctx) => recordReading(ctx, { reading: later }), t + 1800);
    await expect(
      ledger.submit(client(A), (ctx) => recordReading(ctx, { reading: later }), t + 1800),
    ).rejects.toMatchObject({ code: 'READING_OUT_OF_ORDER' });
    await expect(
      ledger.submit(client(A), (ctx) => recordReading(ctx, { reading: early }), t + 1800),
    ).rejects.toMatchObject({ code: 'METER_WENT_BACKWARDS' });
    await expect(
      ledger.submit(client(B), (ctx) => recordReading(ctx, { reading: later }), t + 1800),
    ).rejects.toMatchObject({ code: 'NOT_PILE_OPERATOR' });
    // A fresh reading below the recorded meter is refused too.
    const fresh = p1.reading('PROGRESS', 's1', 3_000, stale);
    await expect(
      ledger.submit(
        client(B),
        (ctx) => closeStaleSession(ctx, { pileId: p1.pileId, sessionId: 's1', lastReading: fresh }),
        stale,
      ),
    ).rejects.toMatchObject({ code: 'METER_WENT_BACKWARDS' });
    // Without a reading, the stale close settles on the last recorded one.
    const s = await ledger.submit(
      client(B),
      (ctx) => closeStaleSession(ctx, { pileId: p1.pileId, sessionId: 's1' }),
      stale,
    );
    expect(s.settlement).toMatchObject({ energyWh: 4_000, chargedFen: 600, closedAsStale: true });
    expect(s.stop).toMatchObject({ meterWh: 4_000, readAt: t + 1800, kind: 'PROGRESS' });
  });

  test("the driver's cap: energy beyond it is the pile operator's loss, recorded as uncollected", async () => {
    const { ledger, driver, p1, t } = await world();
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 100, t + 600),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    // 2 kWh flat is 300 fen; the driver agreed to at most 100.
    const s = await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 2_000, t + 60) }),
    );
    expect(s.settlement).toMatchObject({ chargedFen: 100, uncollectedFen: 200 });
    expect(s.settlement!.uncollectedFen).toBeGreaterThan(0);
    const w = await ledger.evaluate(client(A), (ctx) => getWallet(ctx, driver.walletId));
    expect([w.balanceFen, w.heldFen]).toEqual([4_900, 0]);
  });

  test("the driver's signed authorization bounds the beans a session may take, not only the cash", async () => {
    const { ledger, driver, p1, t } = await withBeans(500);
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 1, t + 600, 'one-fen', 10),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
    // The probe: a pile reporting 500 kWh against a 1-fen cap burned all 500 beans.
    const s = await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 500_000, t + 60) }),
    );
    expect(s.settlement).toMatchObject({ beansUsed: 10, chargedFen: 1 });
    const { beanBalance } = await import('../src/domain/beans');
    expect(await ledger.evaluate(client(A), (ctx) => beanBalance(ctx, driver.walletId, A))).toBe(490);
  });

  test('beans a session may use are held while it is open, and the rest released at settlement', async () => {
    const { ledger, driver, p1, p2, t } = await withBeans(100);
    const friend = new Driver();
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: friend.keys.publicKeyHex }));
    const open = (p: PileDevice, sid: string, maxBeans: number) =>
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(p.pileId, 1_000, t + 600, undefined, maxBeans),
          startReading: p.reading('START', sid, 0, t),
        }),
      );
    expect((await open(p1, 's1', 100)).beansHeld).toBe(100);
    // A second session cannot count on the same beans.
    expect((await open(p2, 's2', 100)).beansHeld).toBe(0);
    // Nor can the driver move them away mid-session.
    await expect(
      ledger.submit(client(A), (ctx) => transferBeans(ctx, driver.transfer(friend.walletId, A, 1, t + 60))),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_BEANS' });
    const s2 = await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p2.reading('STOP', 's2', 5_000, t + 60) }),
    );
    expect(s2.settlement).toMatchObject({ beansUsed: 0, chargedFen: 750 });
    const s1 = await ledger.submit(client(A), (ctx) =>
      stopSession(ctx, { stopReading: p1.reading('STOP', 's1', 30_000, t + 60) }),
    );
    expect(s1.settlement).toMatchObject({ beansUsed: 30, chargedFen: 0, uncollectedFen: 0 });
    // The 70 beans held but not used are free again.
    const moved = await ledger.submit(client(A), (ctx) =>
      transferBeans(ctx, driver.transfer(friend.walletId, A, 70, t + 60)),
    );
    expect(moved).toEqual({ from: 0, to: 70 });
  });

  test('a rebate is paid on energy paid for, not on energy left uncollected', async () => {
    const { ledger, driver, p1, t } = await world();
    const { creditReward, allocateRebateFloat } = await import('../src/domain/beans');
    const { setOperatorPolicy } = await import('../src/domain/consortium');
    await ledger.submit(client(A), (ctx) => creditReward(ctx, A, 'r', 100_000));
    await ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 1_000, reference: 'i' }));
    await ledger.submit(admin(A), (ctx) =>
      setOperatorPolicy(ctx, { rebateWhPerBean: 1_000, beanSalePriceFen: 0 }),
    );
    await ledger.submit(admin(A), (ctx) =>
      allocateRebateFloat(ctx, { pileId: p1.pileId, beans: 1_000, reference: 'f' }),
    );
    const charge = async (sid: string, capFen: number, from: number) => {
      await ledger.submit(
        client(A),
        (ctx) =>
          startSession(ctx, {
            authorization: driver.authorize(p1.pileId, capFen, from + 600),
            startReading: p1.reading('START', sid, 200_000 * (sid === 's1' ? 0 : 1), from),
          }),
        from,
      );
      return ledger.submit(
        client(A),
        (ctx) =>
          stopSession(ctx, {
            stopReading: p1.reading('STOP', sid, 200_000 * (sid === 's1' ? 1 : 2), from + 60),
          }),
        from + 60,
      );
    };
    // The probe: 200 kWh (30,000 fen) on a 1-fen cap earned 200 beans.
    const s1 = await charge('s1', 1, t);
    expect(s1.settlement).toMatchObject({ chargedFen: 1, uncollectedFen: 29_999, rebateBeans: 0 });
    // A tenth paid: a tenth of the energy earns a rebate (20 kWh -> 20 beans).
    const s2 = await charge('s2', 3_000, t + 120);
    expect(s2.settlement).toMatchObject({ chargedFen: 3_000, uncollectedFen: 27_000, rebateBeans: 20 });
  });

  test('a driver revokes an unused authorization, and an authorization cannot outlive the maximum', async () => {
    const { ledger, driver, p1, t } = await world();
    const auth = driver.authorize(p1.pileId, 1_000, t + 600, 'to-revoke');
    const thief = new Driver();
    await expect(
      ledger.submit(client(B), (ctx) =>
        revokeAuthorization(ctx, { ...thief.revoke('to-revoke'), walletId: driver.walletId }),
      ),
    ).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
    const revocation = driver.revoke('to-revoke');
    await ledger.submit(client(B), (ctx) => revokeAuthorization(ctx, revocation));
    await expect(
      ledger.submit(client(B), (ctx) => revokeAuthorization(ctx, revocation)),
    ).rejects.toMatchObject({
      code: 'NONCE_REUSED',
    });
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, { authorization: auth, startReading: p1.reading('START', 's1', 0, t) }),
      ),
    ).rejects.toMatchObject({ code: 'NONCE_REUSED' });
    // An authorization valid for years is refused; the maximum is accepted.
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(p1.pileId, 1_000, t + 3 * 365 * 86_400),
          startReading: p1.reading('START', 's1', 0, t),
        }),
      ),
    ).rejects.toMatchObject({
      code: 'AUTHORIZATION_TOO_LONG',
      details: { latest: t + MAX_AUTHORIZATION_TTL_SEC },
    });
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, {
        authorization: driver.authorize(p1.pileId, 1_000, t + MAX_AUTHORIZATION_TTL_SEC),
        startReading: p1.reading('START', 's1', 0, t),
      }),
    );
  });
});
