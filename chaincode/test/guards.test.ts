/**
 * Every guard that protects money, beans or access has a test that reaches it: each case below passes
 * all earlier checks and is refused by the guard it names (found untested in review).
 */
import { confirmMargin, genesisDigest, initConsortium, payMargin } from '../src/domain/consortium';
import { buyBeans, creditReward, issuanceState, issueBeans, transferBeans } from '../src/domain/beans';
import { confirmTransfer, closePeriod, periodOf } from '../src/domain/clearing';
import { setOperatorPolicy } from '../src/domain/consortium';
import { claimEnvelope, closeEnvelope, createEnvelope } from '../src/domain/envelopes';
import { enact, propose, tally, vote } from '../src/domain/governance';
import { registerPile } from '../src/domain/piles';
import { startSession } from '../src/domain/sessions';
import { openWallet, topUp } from '../src/domain/wallets';
import { MAX_TX_TIME_SKEW_SEC, tariffVersions } from '../src/domain/params';
import { MemoryLedger } from './support/ledger';
import {
  admin,
  AUDITOR_MSP,
  bootstrap,
  client,
  custodian,
  payMarginConfirmed,
  Driver,
  OPS,
  PARAMS,
  PileDevice,
  TARIFF,
  genesis,
  initPinned,
} from './support/fixtures';

const A = OPS.A.mspId;
const B = OPS.B.mspId;
const C = OPS.C.mspId;

async function world() {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const t = ledger.now;
  const driver = new Driver();
  const friend = new Driver();
  const pile = new PileDevice(`${A}.G1`);
  await ledger.submit(client(A), (ctx) =>
    registerPile(ctx, { localId: pile.localId, publicKey: pile.keys.publicKeyHex }),
  );
  for (const d of [driver, friend])
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
  await ledger.submit(client(A), (ctx) =>
    topUp(ctx, { walletId: driver.walletId, amountFen: 10_000, reference: 'g' }),
  );
  await ledger.submit(client(A), (ctx) => creditReward(ctx, A, 'r', 100_000));
  await ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 1_000, reference: 'i' }));
  await ledger.submit(admin(A), (ctx) =>
    setOperatorPolicy(ctx, { rebateWhPerBean: 0, beanSalePriceFen: 10 }),
  );
  return { ledger, t, driver, friend, pile };
}

describe('consortium and membership', () => {
  test('initialization happens once, by an admin of a founding operator', async () => {
    const ledger = new MemoryLedger();
    const init = genesis([OPS.A, OPS.B]);
    await expect(ledger.submit(client(A), (ctx) => initPinned(ctx, init))).rejects.toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    await expect(ledger.submit(admin('OutsiderMSP'), (ctx) => initPinned(ctx, init))).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(
      ledger.submit(admin(A), (ctx) => initPinned(ctx, { ...init, auditorMspIds: [B] })),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      ledger.submit(admin(A), (ctx) =>
        initPinned(ctx, { ...init, operators: [OPS.A, { ...OPS.B, name: OPS.A.name }] }),
      ),
    ).rejects.toMatchObject({ code: 'OPERATOR_EXISTS' });
    await ledger.submit(admin(A), (ctx) => initPinned(ctx, init));
    await expect(ledger.submit(admin(B), (ctx) => initPinned(ctx, init))).rejects.toMatchObject({
      code: 'CONSORTIUM_ALREADY_INITIALIZED',
    });
  });

  test('a peer initializes only the genesis document its operator pinned', async () => {
    const ledger = new MemoryLedger();
    const agreed = genesis([OPS.A, OPS.B, OPS.C]);
    const pin = genesisDigest(agreed);
    // A member's admin tries a consortium of its own: peers pinned to the agreed genesis refuse it.
    const squat = genesis([OPS.A]);
    await expect(ledger.submit(admin(A), (ctx) => initConsortium(ctx, squat, pin))).rejects.toMatchObject({
      code: 'GENESIS_MISMATCH',
      details: { digest: genesisDigest(squat), pinned: pin },
    });
    const cheaper = { ...agreed, params: { ...PARAMS, marginFen: 1 } };
    await expect(ledger.submit(admin(A), (ctx) => initConsortium(ctx, cheaper, pin))).rejects.toMatchObject({
      code: 'GENESIS_MISMATCH',
    });
    // A peer with no pin, or a malformed one, endorses no initialization at all.
    for (const unpinned of [undefined, '', pin.toUpperCase(), pin.slice(1)])
      await expect(
        ledger.submit(admin(A), (ctx) => initConsortium(ctx, agreed, unpinned)),
      ).rejects.toMatchObject({ code: 'GENESIS_NOT_PINNED' });
    // The digest is of the canonical document: key order in the file does not change it; the order
    // of the operators is part of the document and does.
    const reordered = {
      networkId: agreed.networkId,
      tariff: TARIFF,
      params: PARAMS,
      auditorMspIds: [AUDITOR_MSP],
      operators: agreed.operators,
    };
    expect(genesisDigest(reordered)).toBe(pin);
    expect(genesisDigest(genesis([OPS.B, OPS.A, OPS.C]))).not.toBe(pin);
    const c = await ledger.submit(admin(B), (ctx) => initConsortium(ctx, agreed, pin));
    expect(c).toMatchObject({ initializedBy: B, genesisSm3: pin });
  });

  test('a margin is declared once by an admin and confirmed once by the custodian', async () => {
    const ledger = new MemoryLedger();
    // No auditor organization: the genesis document must then name the pool's custodian.
    await expect(
      ledger.submit(admin(A), (ctx) => initPinned(ctx, { ...genesis([OPS.A]), auditorMspIds: [] })),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { path: 'init.custodianMspId' } });
    await expect(
      ledger.submit(admin(A), (ctx) =>
        initPinned(ctx, { ...genesis([OPS.A]), auditorMspIds: [], custodianMspId: A }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { path: 'init.custodianMspId' } });
    const bank = 'EscrowBankMSP';
    const c = await ledger.submit(admin(A), (ctx) =>
      initPinned(ctx, { ...genesis([OPS.A]), auditorMspIds: [], custodianMspId: bank }),
    );
    expect(c.custodianMspId).toBe(bank);
    await expect(ledger.submit(client(A), (ctx) => payMargin(ctx))).rejects.toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    await expect(ledger.submit(admin(bank), (ctx) => confirmMargin(ctx, A))).rejects.toMatchObject({
      code: 'MARGIN_NOT_DECLARED',
    });
    const declared = await ledger.submit(admin(A), (ctx) => payMargin(ctx));
    expect(declared).toMatchObject({ marginPaidFen: 0, marginDeclaredFen: PARAMS.marginFen });
    await expect(ledger.submit(admin(A), (ctx) => payMargin(ctx))).rejects.toMatchObject({
      code: 'MARGIN_ALREADY_DECLARED',
    });
    // Only an admin of the custodian confirms; not the operator itself, not a client of the bank.
    await expect(ledger.submit(admin(A), (ctx) => confirmMargin(ctx, A))).rejects.toMatchObject({
      code: 'NOT_CUSTODIAN',
    });
    await expect(ledger.submit(client(bank), (ctx) => confirmMargin(ctx, A))).rejects.toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    await expect(ledger.submit(admin(bank), (ctx) => confirmMargin(ctx, 'NobodyMSP'))).rejects.toMatchObject({
      code: 'OPERATOR_NOT_FOUND',
    });
    expect(await ledger.submit(admin(bank), (ctx) => confirmMargin(ctx, A))).toMatchObject({
      marginPaidFen: PARAMS.marginFen,
    });
    await expect(ledger.submit(admin(bank), (ctx) => confirmMargin(ctx, A))).rejects.toMatchObject({
      code: 'MARGIN_ALREADY_PAID',
    });
    await expect(ledger.submit(admin(A), (ctx) => payMargin(ctx))).rejects.toMatchObject({
      code: 'MARGIN_ALREADY_PAID',
    });
  });

  test('the clearing grace covers the clock skew a proposal may have', async () => {
    const ledger = new MemoryLedger();
    const doc = (grace: number) => ({ ...genesis([OPS.A]), params: { ...PARAMS, clearingGraceSec: grace } });
    // With a shorter grace, a close stamped 300 s ahead of the peers' clocks would pass their gate and
    // shut the period before it really ended, refusing honest movements stamped with the real time.
    await expect(
      ledger.submit(admin(A), (ctx) => initConsortium(ctx, doc(MAX_TX_TIME_SKEW_SEC - 1), '0'.repeat(64))),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { path: 'params.clearingGraceSec' } });
    await ledger.submit(admin(A), (ctx) => initPinned(ctx, doc(MAX_TX_TIME_SKEW_SEC)));
  });

  test('the approval threshold must be a majority', async () => {
    const ledger = new MemoryLedger();
    const init = {
      ...genesis([OPS.A]),
      auditorMspIds: [],
      params: { ...PARAMS, approvalNumerator: 1, approvalDenominator: 2 },
    };
    // Straight to initConsortium: the fixture's genesisDigest would refuse the document before it.
    const anyPin = '0'.repeat(64);
    await expect(ledger.submit(admin(A), (ctx) => initConsortium(ctx, init, anyPin))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { path: 'params.approvalNumerator' },
    });
  });
});

describe('governance guards', () => {
  test('operators that never pay their margin lapse from the quorum and cannot freeze governance', async () => {
    const ledger = new MemoryLedger();
    await ledger.submit(admin(A), (ctx) => initPinned(ctx, genesis())); // A, B, C, D at 2/3
    for (const o of [A, B]) await payMarginConfirmed(ledger, o); // C and D never pay
    const t = ledger.now;
    await ledger.submit(admin(A), (ctx) =>
      propose(ctx, {
        proposalId: 'p',
        change: { kind: 'TARIFF', tariff: TARIFF },
        effectiveFrom: t,
        votingEndsAt: t + 30 * 86_400,
      }),
    );
    for (const o of [A, B])
      await ledger.submit(admin(o), (ctx) => vote(ctx, { proposalId: 'p', approve: true }));
    // Within marginDueSec C and D may still pay: 4 operators, 3 approvals needed.
    const due = t + PARAMS.marginDueSec;
    await expect(ledger.submit(client(A), (ctx) => enact(ctx, 'p'), due - 1)).rejects.toMatchObject({
      code: 'QUORUM_NOT_REACHED',
      details: { approvals: 2, required: 3 },
    });
    // From then on their admission has lapsed from the quorum: 2 operators, 2 approvals needed.
    expect(await ledger.evaluate(client(A), (ctx) => tally(ctx, 'p'), due)).toMatchObject({
      operators: 2,
      members: 2,
      required: 2,
    });
    await ledger.submit(client(A), (ctx) => enact(ctx, 'p'), due);
    // A late payer is a member again, and counts again.
    await payMarginConfirmed(ledger, C, due + 1);
    expect(await ledger.evaluate(client(A), (ctx) => tally(ctx, 'p'), due + 1)).toMatchObject({
      operators: 3,
      required: 2,
    });
  });

  test('the first founder to pay its margin cannot govern alone: unpaid founders count while they may pay', async () => {
    const ledger = new MemoryLedger();
    await ledger.submit(admin(A), (ctx) => initPinned(ctx, genesis())); // four founders, 2/3 approvals
    await payMarginConfirmed(ledger, A); // B, C and D have not paid yet
    const t = ledger.now;
    const dearer = {
      ...TARIFF,
      prices: { ...TARIFF.prices, valley: { energyFenPerKwh: 99_999, serviceFenPerKwh: 80 } },
    };
    await ledger.submit(admin(A), (ctx) =>
      propose(ctx, {
        proposalId: 'mine',
        change: { kind: 'TARIFF', tariff: dearer },
        effectiveFrom: t,
        votingEndsAt: t + 600,
      }),
    );
    await ledger.submit(admin(A), (ctx) => vote(ctx, { proposalId: 'mine', approve: true }));
    await expect(ledger.submit(client(A), (ctx) => enact(ctx, 'mine'))).rejects.toMatchObject({
      code: 'QUORUM_NOT_REACHED',
      details: { approvals: 1, required: 3 },
    });
    // A founder that has not paid cannot vote; once two more have paid and approved, it passes.
    await expect(
      ledger.submit(admin(B), (ctx) => vote(ctx, { proposalId: 'mine', approve: true })),
    ).rejects.toMatchObject({ code: 'MARGIN_NOT_PAID' });
    for (const o of [B, C]) {
      await payMarginConfirmed(ledger, o);
      await ledger.submit(admin(o), (ctx) => vote(ctx, { proposalId: 'mine', approve: true }));
    }
    await ledger.submit(client(A), (ctx) => enact(ctx, 'mine'));
    expect((await ledger.evaluate(admin(A), (ctx) => tariffVersions(ctx.store))).length).toBe(2);
  });

  test('proposal ids are unique; votes need an admin, once, before voting ends; members are not re-admitted', async () => {
    const { ledger, t } = await world();
    const p = {
      proposalId: 'p',
      change: { kind: 'TARIFF', tariff: TARIFF },
      effectiveFrom: t,
      votingEndsAt: t + 600,
    };
    await ledger.submit(admin(A), (ctx) => propose(ctx, p));
    await expect(ledger.submit(admin(B), (ctx) => propose(ctx, p))).rejects.toMatchObject({
      code: 'PROPOSAL_EXISTS',
    });
    await expect(
      ledger.submit(client(B), (ctx) => vote(ctx, { proposalId: 'p', approve: true })),
    ).rejects.toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    await expect(
      ledger.submit(admin(B), (ctx) => vote(ctx, { proposalId: 'p', approve: true }), t + 601),
    ).rejects.toMatchObject({
      code: 'PROPOSAL_CLOSED',
    });
    await expect(
      ledger.submit(admin(B), (ctx) => vote(ctx, { proposalId: 'nope', approve: true })),
    ).rejects.toMatchObject({
      code: 'PROPOSAL_NOT_FOUND',
    });
    const readmit = {
      proposalId: 'r',
      change: { kind: 'ADMIT_OPERATOR', mspId: B, name: 'Beta Again' },
      effectiveFrom: t,
      votingEndsAt: t + 600,
    };
    await expect(ledger.submit(admin(A), (ctx) => propose(ctx, readmit))).rejects.toMatchObject({
      code: 'OPERATOR_EXISTS',
    });
    await expect(ledger.submit(client(A), (ctx) => enact(ctx, 'p'))).rejects.toMatchObject({
      code: 'QUORUM_NOT_REACHED',
    });
  });
});

describe('wallets, piles and sessions', () => {
  test('a wallet or a pile is never opened twice (that would reset its balance or meter)', async () => {
    const { ledger, driver, pile } = await world();
    await expect(
      ledger.submit(client(B), (ctx) => openWallet(ctx, { publicKey: driver.keys.publicKeyHex })),
    ).rejects.toMatchObject({
      code: 'WALLET_EXISTS',
    });
    await expect(
      ledger.submit(client(A), (ctx) =>
        registerPile(ctx, { localId: pile.localId, publicKey: pile.keys.publicKeyHex }),
      ),
    ).rejects.toMatchObject({
      code: 'PILE_EXISTS',
    });
  });

  test('a reading stamped in the future is refused', async () => {
    const { ledger, driver, pile, t } = await world();
    const start = {
      authorization: driver.authorize(pile.pileId, 1_000, t + 3_600),
      startReading: pile.reading('START', 's', 0, t + 301),
    };
    await expect(ledger.submit(client(A), (ctx) => startSession(ctx, start))).rejects.toMatchObject({
      code: 'READING_OUT_OF_ORDER',
    });
  });
  test('the clock-skew bound is written once: readings use the transaction-time gate of params.ts', async () => {
    const sessions: Record<string, unknown> = await import('../src/domain/sessions');
    const gate: Record<string, unknown> = await import('../src/contracts/fabricContext');
    // One constant, MAX_TX_TIME_SKEW_SEC, for the peer's gate and for readings stamped ahead.
    expect(Object.keys(sessions).filter((k) => /SKEW/.test(k))).toEqual([]);
    expect(gate.MAX_TX_TIME_SKEW_SEC).toBe(MAX_TX_TIME_SKEW_SEC);
    const { ledger, driver, pile, t } = await world();
    const start = (ahead: number, sid: string) => ({
      authorization: driver.authorize(pile.pileId, 1_000, t + 3_600),
      startReading: pile.reading('START', sid, 0, t + ahead),
    });
    await expect(
      ledger.submit(client(A), (ctx) => startSession(ctx, start(MAX_TX_TIME_SKEW_SEC + 1, 'a'))),
    ).rejects.toMatchObject({ code: 'READING_OUT_OF_ORDER' });
    await ledger.submit(client(A), (ctx) => startSession(ctx, start(MAX_TX_TIME_SKEW_SEC, 'b')));
  });
});

describe('bean guards', () => {
  test('a new bean face value prices only beans not yet issued', async () => {
    const { ledger, t } = await world();
    // world(): A earned 100,000 fen and issued 1,000 beans at 100 fen, using all of it.
    const before = await ledger.evaluate(client(A), (ctx) => issuanceState(ctx, A));
    expect(before).toMatchObject({
      rewardsFen: 100_000,
      backingUsedFen: 100_000,
      issued: 1_000,
      remaining: 0,
    });
    const p = {
      proposalId: 'face',
      change: { kind: 'PARAMS', params: { ...PARAMS, beanFaceValueFen: 50 } },
      effectiveFrom: t,
      votingEndsAt: t + 600,
    };
    await ledger.submit(admin(A), (ctx) => propose(ctx, p));
    for (const op of [A, B, C])
      await ledger.submit(admin(op), (ctx) => vote(ctx, { proposalId: 'face', approve: true }));
    await ledger.submit(client(A), (ctx) => enact(ctx, 'face'));
    // Halving the face value does not double what the old rewards back: they are used up.
    expect(await ledger.evaluate(client(A), (ctx) => issuanceState(ctx, A))).toMatchObject({
      beanFaceValueFen: 50,
      limit: 1_000,
      remaining: 0,
    });
    await expect(
      ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 1, reference: 'after-change' })),
    ).rejects.toMatchObject({ code: 'ISSUANCE_LIMIT_EXCEEDED' });
    // A new reward backs beans at the new face value.
    await ledger.submit(client(A), (ctx) => creditReward(ctx, A, 'r2', 1_000));
    await ledger.submit(admin(A), (ctx) => issueBeans(ctx, { beans: 20, reference: 'new' }));
    expect(await ledger.evaluate(client(A), (ctx) => issuanceState(ctx, A))).toMatchObject({
      rewardsFen: 101_000,
      backingUsedFen: 101_000,
      issued: 1_020,
      remaining: 0,
    });
  });

  test("a purchase needs the buyer's own signature, a fresh nonce and an unexpired authorization", async () => {
    const { ledger, driver, friend, t } = await world();
    const forged = { ...friend.buy(A, 5, 50, t + 60), walletId: driver.walletId };
    await expect(ledger.submit(client(A), (ctx) => buyBeans(ctx, forged))).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    await expect(
      ledger.submit(client(A), (ctx) => buyBeans(ctx, driver.buy(A, 5, 50, t - 1))),
    ).rejects.toMatchObject({
      code: 'AUTHORIZATION_EXPIRED',
    });
    await expect(
      ledger.submit(client(A), (ctx) => buyBeans(ctx, friend.buy(A, 5, 50, t + 60))),
    ).rejects.toMatchObject({
      code: 'INSUFFICIENT_FUNDS',
    });
  });

  test('transfers: not to oneself, not twice, not after expiry', async () => {
    const { ledger, driver, friend, t } = await world();
    await ledger.submit(client(A), (ctx) => buyBeans(ctx, driver.buy(A, 5, 50, t + 60)));
    await expect(
      ledger.submit(client(A), (ctx) => transferBeans(ctx, driver.transfer(driver.walletId, A, 1, t + 60))),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const gift = driver.transfer(friend.walletId, A, 1, t + 60);
    await ledger.submit(client(A), (ctx) => transferBeans(ctx, gift));
    await expect(ledger.submit(client(A), (ctx) => transferBeans(ctx, gift))).rejects.toMatchObject({
      code: 'NONCE_REUSED',
    });
    await expect(
      ledger.submit(client(A), (ctx) => transferBeans(ctx, driver.transfer(friend.walletId, A, 1, t - 1))),
    ).rejects.toMatchObject({
      code: 'AUTHORIZATION_EXPIRED',
    });
  });

  test('envelopes: ids are unique, claims are signed by the wallet, none after expiry or close', async () => {
    const { ledger, driver, friend, t } = await world();
    const env = { envelopeId: 'e', totalBeans: 10, claimants: 2, split: 'equal', expiresAt: t + 600 };
    await ledger.submit(admin(A), (ctx) => createEnvelope(ctx, env));
    await expect(ledger.submit(admin(A), (ctx) => createEnvelope(ctx, env))).rejects.toMatchObject({
      code: 'ENVELOPE_EXISTS',
    });
    await expect(
      ledger.submit(admin(A), (ctx) => createEnvelope(ctx, { ...env, envelopeId: 'big', totalBeans: 2_000 })),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_BEANS' });
    const stolen = { ...friend.claim('e', t + 600), walletId: driver.walletId };
    await expect(ledger.submit(client(A), (ctx) => claimEnvelope(ctx, stolen))).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    await expect(
      ledger.submit(client(A), (ctx) => claimEnvelope(ctx, driver.claim('e', t + 900)), t + 600),
    ).rejects.toMatchObject({
      code: 'ENVELOPE_EXPIRED',
    });
    await ledger.submit(client(B), (ctx) => closeEnvelope(ctx, 'e'), t + 600);
    await expect(
      ledger.submit(client(A), (ctx) => claimEnvelope(ctx, driver.claim('e', t + 900)), t + 300),
    ).rejects.toMatchObject({
      code: 'ENVELOPE_EXPIRED',
    });
  });
});

describe('clearing guards', () => {
  test('transfers are confirmed by an admin of the named side only', async () => {
    const { ledger, t } = await world();
    const period = periodOf(t, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const after = t + 2 * 86_400;
    const r = await ledger.submit(client(B), (ctx) => closePeriod(ctx, period), after);
    // A's reward (100,000) outweighs the cash it took (10,000): the pool owes A the difference.
    const tr = r.transfers.find((x) => x.to === A);
    expect(tr).toMatchObject({ from: '#pool', amountFen: 90_000 });
    const confirm = (who: ReturnType<typeof admin>, index: number, side: 'payer' | 'payee', p = period) =>
      ledger.submit(who, (ctx) => confirmTransfer(ctx, { period: p, index, side }), after);
    await expect(confirm(client(A), tr!.index, 'payee')).rejects.toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    await expect(confirm(admin(B), tr!.index, 'payee')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(confirm(admin(A), tr!.index, 'payer')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(confirm(admin(A), 99, 'payee')).rejects.toMatchObject({ code: 'TRANSFER_NOT_FOUND' });
    await expect(confirm(admin(A), 0, 'payee', period + 1)).rejects.toMatchObject({
      code: 'PERIOD_NOT_CLOSED',
    });
    // The pool's side is the custodian's alone: neither the operator it pays nor any other operator.
    for (const who of [A, B, C])
      await expect(confirm(admin(who), tr!.index, 'payer')).rejects.toMatchObject({
        code: 'FORBIDDEN',
        message: expect.stringContaining("only the pool's custodian"),
      });
    await expect(confirm(custodian, tr!.index, 'payee')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect((await confirm(admin(A), tr!.index, 'payee')).complete).toBe(false);
    expect((await confirm(custodian, tr!.index, 'payer')).complete).toBe(true);
    await expect(confirm(custodian, tr!.index, 'payer')).rejects.toMatchObject({ code: 'ALREADY_CONFIRMED' });
  });
});
