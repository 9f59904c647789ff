/**
 * The answer schemas (domain/answers.ts, exported by @evpay/chaincode/client) against real answers. A
 * story calls every transaction of the BUILT chaincode in the real fabric-shim runtime, on the simulated
 * peer of shim.test.ts (support/shimPeer.ts), and parses each canonical-JSON answer with its strict
 * schema: an answer that drifts from its schema (a field added, dropped, renamed or retyped) fails here,
 * as a schema that drifts from its TypeScript type fails to compile (answers.ts, AnswerDrift).
 * Run `npm run build` first (`npm test` does).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import {
  answerJsonSchemas,
  evpayAnswers,
  evpayTransactions,
  type EvPayResults,
  type EvPayTransactionName,
} from '../src/client';
import { creditReward } from '../src/domain/beans';
import { periodBounds, periodOf, POOL } from '../src/domain/clearing';
import { genesisDigest } from '../src/domain/consortium';
import type { Caller, KV, StateStore, TxContext } from '../src/domain/context';
import { Keys } from '../src/domain/keys';
import { withReadCache } from '../src/domain/state';
import { AUDITOR_MSP, Driver, genesis, OPS, PARAMS, PileDevice, TARIFF } from './support/fixtures';
import { identity, ShimPeer, type Identity } from './support/shimPeer';

jest.setTimeout(60_000);

const A = OPS.A.mspId;
const B = OPS.B.mspId;
const C = OPS.C.mspId;
const D = OPS.D.mspId;
const MEMBERS = [OPS.A, OPS.B, OPS.C];
const GENESIS = genesis(MEMBERS);
/** 2026-01-01T00:00:00Z = 08:00 in China: the start of a flat tariff period. */
const T0 = 1_767_225_600;
/** Real blocks of a SmartBFT network (network/tools/capture-blocks.ts), for the incentive layer's step. */
const BLOCKS = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'smartbft-blocks.json'), 'utf8')) as {
  channel: string;
  capturedAt: number;
  consenters: Array<{ consenterId: number; ordererMspId: string; operator: string; certificate: string }>;
  blocks: Array<{ evidence: Record<string, unknown> & { number: number }; data: string }>;
};
const HOUR = 3600;
const PERIOD = periodOf(T0, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
const [, PERIOD_ENDS] = periodBounds(PERIOD, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);

const admin = (mspId: string): Identity => identity(mspId, 'admin');
const client = (mspId: string): Identity => identity(mspId, 'client');
const auditor = (): Identity => identity(AUDITOR_MSP, 'client');
/** The auditor organization is the pool's custodian (the genesis default). */
const custodian = (): Identity => identity(AUDITOR_MSP, 'admin');

const names = (o: object): string[] => Object.keys(o).sort();

describe('every transaction has an answer schema', () => {
  test('evpayAnswers names exactly the transactions of evpayTransactions', () => {
    expect(names(evpayAnswers)).toEqual(names(evpayTransactions));
  });

  test('answerJsonSchemas(): an object or array schema for each, no $ref, no $schema, no open object', () => {
    const schemas = answerJsonSchemas();
    expect(names(schemas)).toEqual(names(evpayTransactions));
    // Every object in a schema says what else it may hold: nothing (strict) or a record's values.
    const openObjects = (s: unknown, path: string): string[] => {
      if (Array.isArray(s)) return s.flatMap((x, i) => openObjects(x, `${path}/${i}`));
      if (typeof s !== 'object' || s === null) return [];
      const node = s as Record<string, unknown>;
      const here = node.type === 'object' && !('additionalProperties' in node) ? [path] : [];
      return [...here, ...Object.entries(node).flatMap(([k, v]) => openObjects(v, `${path}/${k}`))];
    };
    for (const [tx, s] of Object.entries(schemas)) {
      expect([tx, s.type]).toEqual([tx, expect.stringMatching(/^(object|array)$/)]);
      expect(s.$schema).toBeUndefined();
      expect(JSON.stringify(s)).not.toContain('$ref');
      expect(openObjects(s, tx)).toEqual([]);
    }
    // Optional fields are not required; money is an integer.
    expect(schemas.GetPile).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: { rebateFloat: { type: 'integer' }, activeSession: { type: 'string' } },
    });
    expect(schemas.GetPile.required).not.toContain('activeSession');
    expect(schemas.TopUp).toMatchObject({ properties: { balanceFen: { type: 'integer' } } });
    expect(schemas.ListPiles.required).toEqual(['piles']);
    expect(schemas.KeyHistory).toMatchObject({
      type: 'array',
      items: { required: ['txId', 'timestamp', 'isDelete', 'value'], additionalProperties: false },
    });
  });
});

describe('the answers of a story through every transaction parse with their schemas', () => {
  let peer: ShimPeer;
  /** Every answer received, in order, as parsed from the peer's payload (before the schema). */
  const answers: Array<{ tx: EvPayTransactionName; raw: unknown }> = [];
  const rawOf = (tx: EvPayTransactionName): unknown => answers.find((a) => a.tx === tx)?.raw;

  /**
   * Calls a transaction (submitted or evaluated, as the registry says) that must succeed, and parses its
   * canonical-JSON answer with the transaction's schema. Objects are sent as JSON, numbers as digits.
   */
  async function call<N extends EvPayTransactionName>(
    who: Identity,
    tx: N,
    ...args: Array<string | number | object>
  ): Promise<EvPayResults[N]> {
    const wire = args.map((a) => (typeof a === 'object' ? JSON.stringify(a) : String(a)));
    const { submit } = evpayTransactions[tx];
    const r = submit ? await peer.invoke(who, tx, wire) : await peer.evaluate(who, tx, wire);
    if (r.status !== 200) throw new Error(`${tx} failed: ${r.message}\n${peer.chaincodeLog().slice(-2000)}`);
    if (submit) expect(r.committed).toBe(true);
    const raw: unknown = JSON.parse(r.payload);
    answers.push({ tx, raw });
    const schema: z.ZodTypeAny = evpayAnswers[tx];
    const parsed: unknown = schema.parse(raw);
    return parsed as EvPayResults[N];
  }

  /**
   * Rewards have no transaction yet (only the incentive layer will call creditReward), so one is
   * credited as shim.test.ts does: the domain function run here against the peer's committed state,
   * its writes committed as one transaction. The only state this story writes without the chaincode.
   */
  async function outOfBand(caller: Caller, fn: (tx: TxContext) => Promise<void>): Promise<void> {
    const writes = new Map<string, Uint8Array | null>();
    const state = peer.state;
    const store: StateStore = {
      get: async (key) => state.get(key),
      put: async (key, value) => void writes.set(key, value),
      del: async (key) => void writes.set(key, null),
      range: (start, end) =>
        (async function* (): AsyncGenerator<KV> {
          for (const key of state.rangeKeys(start, end))
            yield { key, value: state.get(key) ?? new Uint8Array() };
        })(),
    };
    const txId = `out-of-band-${state.height + 1}`;
    await fn({ txId, now: peer.now(), caller, store: withReadCache(store), events: [] });
    state.commit(txId, { seconds: peer.now(), nanos: 0 }, writes);
  }

  const driver = new Driver();
  const friend = new Driver();
  const pileA = new PileDevice(`${A}.A001`);
  const pileB = new PileDevice(`${B}.B001`);
  const idle = new PileDevice(`${B}.B002`);

  beforeAll(async () => {
    // The channel of the captured blocks the incentive-layer step claims (fixtures/smartbft-blocks.json).
    peer = await ShimPeer.start({
      startAt: T0,
      channelId: BLOCKS.channel,
      env: { EVPAY_GENESIS_SM3: genesisDigest(GENESIS) },
    });
  });
  afterAll(async () => {
    await peer?.stop();
  });

  test('consortium: InitConsortium, PayMargin, ConfirmMargin, SetOperatorPolicy', async () => {
    const consortium = await call(admin(A), 'InitConsortium', GENESIS);
    expect(consortium).toMatchObject({ initializedBy: A, custodianMspId: AUDITOR_MSP });
    for (const op of MEMBERS) {
      const declared = await call(admin(op.mspId), 'PayMargin');
      expect(declared).toMatchObject({ marginPaidFen: 0, marginDeclaredFen: PARAMS.marginFen });
      expect(declared.marginPaidAt).toBeUndefined();
      const paid = await call(custodian(), 'ConfirmMargin', op.mspId);
      expect(paid).toMatchObject({ marginPaidFen: PARAMS.marginFen, marginPaidAt: expect.any(Number) });
    }
    const policy = await call(admin(B), 'SetOperatorPolicy', {
      rebateWhPerBean: 5_000,
      beanSalePriceFen: 90,
    });
    expect(policy).toMatchObject({ mspId: B, rebateWhPerBean: 5_000, beanSalePriceFen: 90 });
  });

  test('governance: Propose, Vote, GetProposal, Enact (a version and an admission), CloseProposal', async () => {
    const votingEndsAt = T0 + 24 * HOUR;
    const approve = async (proposalId: string): Promise<void> => {
      for (const op of [A, B])
        expect(await call(admin(op), 'Vote', { proposalId, approve: true })).toMatchObject({
          mspId: op,
          approve: true,
        });
    };
    const params = await call(admin(A), 'Propose', {
      proposalId: 'params-2',
      change: { kind: 'PARAMS', params: PARAMS },
      effectiveFrom: T0,
      votingEndsAt,
    });
    expect(params).toMatchObject({ status: 'open', basedOnVersion: 1 });
    await approve('params-2');
    const { proposal, tally } = await call(auditor(), 'GetProposal', 'params-2');
    expect(proposal.status).toBe('open');
    expect(tally).toMatchObject({ members: 3, required: 2, approvals: 2 });
    expect(await call(client(C), 'Enact', 'params-2')).toMatchObject({
      status: 'enacted',
      enactedVersion: 2,
    });

    const admit = await call(admin(A), 'Propose', {
      proposalId: 'admit-delta',
      change: { kind: 'ADMIT_OPERATOR', mspId: D, name: OPS.D.name },
      effectiveFrom: T0,
      votingEndsAt,
    });
    expect(admit.basedOnVersion).toBeUndefined();
    await approve('admit-delta');
    const admitted = await call(client(B), 'Enact', 'admit-delta');
    expect(admitted.status).toBe('enacted');
    expect(admitted.enactedVersion).toBeUndefined();

    await call(admin(A), 'Propose', {
      proposalId: 'tariff-2',
      change: { kind: 'TARIFF', tariff: TARIFF },
      effectiveFrom: T0 + HOUR,
      votingEndsAt,
    });
    expect(await call(admin(A), 'CloseProposal', 'tariff-2')).toMatchObject({
      status: 'withdrawn',
      closedAt: expect.any(Number),
    });

    // Delta is admitted and has not paid: its operator record has no margin fields at all.
    const { operators, pool } = await call(auditor(), 'GetConsortium');
    expect(operators.find((o) => o.mspId === D)).toEqual({
      mspId: D,
      name: OPS.D.name,
      admittedAt: expect.any(Number),
      marginPaidFen: 0,
      rebateWhPerBean: 0,
      beanSalePriceFen: 0,
    });
    expect(pool).toMatchObject({ balanceFen: 3 * PARAMS.marginFen });
    expect((await call(client(A), 'ListParams')).map((p) => p.version)).toEqual([1, 2]);
    expect((await call(client(D), 'ListTariffs')).map((t) => t.version)).toEqual([1]);
  });

  test('piles and wallets: RegisterPile, SetPileStatus, GetPile, ListPiles, OpenWallet, TopUp, GetWallet', async () => {
    for (const [op, pile] of [
      [A, pileA],
      [B, pileB],
      [B, idle],
    ] as const)
      await call(client(op), 'RegisterPile', { localId: pile.localId, publicKey: pile.keys.publicKeyHex });
    expect(
      await call(client(A), 'SetPileStatus', { pileId: pileA.pileId, status: 'suspended' }),
    ).toMatchObject({ status: 'suspended' });
    await call(client(A), 'SetPileStatus', { pileId: pileA.pileId, status: 'active' });
    expect(await call(auditor(), 'GetPile', pileA.pileId)).toMatchObject({
      status: 'active',
      rebateFloat: 0,
    });
    const { piles, next } = await call(client(C), 'ListPiles', { mspId: B });
    expect(piles.map((p) => p.pileId)).toEqual([pileB.pileId, idle.pileId]);
    expect(next).toBeUndefined();

    for (const d of [driver, friend])
      expect(await call(client(A), 'OpenWallet', { publicKey: d.keys.publicKeyHex })).toMatchObject({
        walletId: d.walletId,
        balanceFen: 0,
      });
    expect(
      await call(client(A), 'TopUp', { walletId: driver.walletId, amountFen: 10_000, reference: 'pay-1' }),
    ).toMatchObject({ balanceFen: 10_000 });
    expect(await call(auditor(), 'GetWallet', driver.walletId)).toMatchObject({ beans: [] });
  });

  test('beans: GetIssuance, IssueBeans, AllocateRebateFloat, BuyBeans, TransferBeans', async () => {
    await outOfBand({ mspId: B, role: 'client', id: 'incentive-layer' }, (tx) =>
      creditReward(tx, B, 'block-1', 5_000),
    );
    expect(await call(client(B), 'GetIssuance', B)).toMatchObject({ limit: 50, issued: 0, treasury: 0 });
    expect(await call(admin(B), 'IssueBeans', { beans: 50, reference: 'issue-1' })).toMatchObject({
      issued: 50,
      remaining: 0,
      treasury: 50,
    });
    expect(
      await call(admin(B), 'AllocateRebateFloat', { pileId: pileB.pileId, beans: 10, reference: 'float-1' }),
    ).toMatchObject({ rebateFloat: 10 });
    expect(await call(client(A), 'BuyBeans', driver.buy(B, 5, 450, T0 + 600))).toEqual({
      beans: 5,
      costFen: 450,
    });
    expect(await call(client(C), 'TransferBeans', driver.transfer(friend.walletId, B, 2, T0 + 600))).toEqual({
      from: 3,
      to: 2,
    });
  });

  test('sessions: StartSession, RecordReading, GetSession, StopSession, SessionBatch, RevokeAuthorization', async () => {
    const started = await call(client(B), 'StartSession', {
      authorization: driver.authorize(pileB.pileId, 5_000, T0 + HOUR, 'ans-s1', 3),
      startReading: pileB.reading('START', 's1', 0, T0),
    });
    expect(started).toMatchObject({ status: 'open', beansHeld: 3 });
    expect(started.settlement).toBeUndefined();
    // The bean balance now has a part held for the session (the optional heldBeans).
    expect((await call(auditor(), 'GetWallet', driver.walletId)).beans).toEqual([
      { walletId: driver.walletId, issuer: B, beans: 3, heldBeans: 3 },
    ]);
    await peer.setTime(T0 + HOUR / 2);
    const recorded = await call(client(B), 'RecordReading', {
      reading: pileB.reading('PROGRESS', 's1', 10_000, T0 + HOUR / 2),
    });
    expect(recorded.last).toEqual({ meterWh: 10_000, readAt: T0 + HOUR / 2, kind: 'PROGRESS' });
    expect(await call(auditor(), 'GetSession', pileB.pileId, 's1')).toEqual(recorded);
    expect((await call(auditor(), 'GetPile', pileB.pileId)).activeSession).toBe('s1');

    await peer.setTime(T0 + HOUR);
    const stopped = await call(client(B), 'StopSession', {
      stopReading: pileB.reading('STOP', 's1', 20_000, T0 + HOUR),
    });
    // 20 kWh at 150 fen: 3000 fen; 3 beans cover 3 kWh (450 fen); 17 kWh paid in money earn 3 beans.
    expect(stopped.settlement).toMatchObject({
      energyWh: 20_000,
      price: { totalFen: 3_000, whByKind: { peak: 0, flat: 20_000, valley: 0 } },
      beansUsed: 3,
      beanValueFen: 450,
      chargedFen: 2_550,
      rebateBeans: 3,
      closedAsStale: false,
      period: PERIOD,
    });
    // Three session calls in one transaction: a start and its stop (no energy, so no money moves) and
    // the stop again, refused; the others stand.
    const batch = await call(client(B), 'SessionBatch', {
      calls: [
        {
          tx: 'StartSession',
          args: {
            authorization: driver.authorize(pileB.pileId, 1_000, T0 + 2 * HOUR, 'ans-b1'),
            startReading: pileB.reading('START', 'b1', 20_000, T0 + HOUR),
          },
        },
        { tx: 'StopSession', args: { stopReading: pileB.reading('STOP', 'b1', 20_000, T0 + HOUR) } },
        { tx: 'StopSession', args: { stopReading: pileB.reading('STOP', 'b1', 20_000, T0 + HOUR) } },
      ],
    });
    expect(batch.results.map((r) => (r.ok ? r.result.status : r.error.code))).toEqual([
      'open',
      'settled',
      'SESSION_ALREADY_SETTLED',
    ]);
    // A session left open, closed as stale later.
    await call(client(B), 'StartSession', {
      authorization: driver.authorize(idle.pileId, 1_000, T0 + HOUR + 600, 'ans-stale'),
      startReading: idle.reading('START', 'st1', 0, T0 + HOUR),
    });
    expect(await call(client(A), 'RevokeAuthorization', driver.revoke('ans-unused'))).toEqual({
      walletId: driver.walletId,
      nonce: 'ans-unused',
      revokedAt: expect.any(Number),
    });
  });

  test('a red envelope: CreateEnvelope, ClaimEnvelope, GetEnvelope, CloseEnvelope', async () => {
    const exp = T0 + 2 * HOUR;
    const created = await call(admin(B), 'CreateEnvelope', {
      envelopeId: 'newyear',
      totalBeans: 6,
      claimants: 3,
      split: 'random',
      expiresAt: exp,
    });
    expect(created).toMatchObject({ status: 'open', claimed: 0, returnedBeans: 0 });
    const { beans } = await call(client(A), 'ClaimEnvelope', friend.claim('newyear', exp));
    expect(await call(auditor(), 'GetEnvelope', 'newyear')).toMatchObject({
      claimed: 1,
      claimedBeans: beans,
    });
    await peer.setTime(exp);
    expect(await call(client(C), 'CloseEnvelope', 'newyear')).toMatchObject({
      status: 'closed',
      returnedBeans: 6 - beans,
    });
  });

  test('CloseStaleSession and FindSessions (by pile, wallet and operator period)', async () => {
    await peer.setTime(T0 + HOUR + PARAMS.sessionMaxOpenSec + 60);
    const stale = await call(client(B), 'CloseStaleSession', { pileId: idle.pileId, sessionId: 'st1' });
    expect(stale).toMatchObject({ status: 'settled', settlement: { closedAsStale: true, energyWh: 0 } });
    expect(stale.stop).toEqual({ meterWh: 0, readAt: T0 + HOUR, kind: 'STOP' });
    const byWallet = await call(auditor(), 'FindSessions', { by: 'wallet', walletId: driver.walletId });
    expect(byWallet.map((s) => s.sessionId)).toEqual(['s1', 'b1', 'st1']);
    const byPile = await call(client(A), 'FindSessions', {
      by: 'pile',
      pileId: pileB.pileId,
      window: { from: T0, to: T0 + HOUR - 1 },
    });
    // b1, started at T0 + HOUR, is outside the window.
    expect(byPile.map((s) => s.sessionId)).toEqual(['s1']);
    const settledAtB = await call(auditor(), 'FindSessions', { by: 'operator', mspId: B, period: PERIOD });
    expect(settledAtB.map((s) => s.sessionId)).toEqual(['b1', 's1', 'st1']);
  });

  test('clearing: GetPositions, RollUpPositions, ClosePeriod, ConfirmTransfer, GetClearing', async () => {
    const { positions } = await call(auditor(), 'GetPositions', { period: PERIOD });
    expect(names(positions)).toEqual([A, B]);
    expect(positions[B]).toMatchObject({ beanSalesFen: 450, energyRevenueFen: 2_550, rewardsFen: 5_000 });
    await peer.setTime(PERIOD_ENDS + PARAMS.clearingGraceSec);
    expect(await call(client(C), 'RollUpPositions', { period: PERIOD, mspId: B })).toEqual({
      period: PERIOD,
      mspId: B,
      rolledUp: positions[B]?.movements,
      movements: positions[B]?.movements,
      done: true,
    });
    const closed = await call(client(C), 'ClosePeriod', PERIOD);
    // C paid its margin and moved nothing: it has a position of zeros; Delta, unpaid, has none.
    expect(names(closed.positions)).toEqual([A, B, C]);
    expect(closed.positions[A]?.dueFen).toBe(-10_000);
    expect(closed.transfers).toEqual([
      { index: 0, from: A, to: B, amountFen: 8_000 },
      { index: 1, from: A, to: POOL, amountFen: 2_000 },
    ]);
    expect(await call(admin(A), 'ConfirmTransfer', { period: PERIOD, index: 0, side: 'payer' })).toEqual({
      transfer: { index: 0, from: A, to: B, amountFen: 8_000 },
      complete: false,
    });
    const { result, transfers } = await call(auditor(), 'GetClearing', PERIOD);
    expect(result).toEqual(closed);
    expect(transfers.map((t) => [t.payerConfirmed, t.payeeConfirmed, t.complete])).toEqual([
      [true, false, false],
      [false, false, false],
    ]);
  });

  test('RefundWallet, then the audit trail and key history: SealAudit, GetAuditHead, ListAuditRecords, KeyHistory', async () => {
    const { wallet } = await call(auditor(), 'GetWallet', driver.walletId);
    expect(wallet).toMatchObject({ balanceFen: 10_000 - 450 - 2_550, heldFen: 0 });
    expect(
      await call(client(B), 'RefundWallet', driver.refund(B, wallet.balanceFen, peer.now() + 60)),
    ).toMatchObject({ balanceFen: 0 });

    const [pending] = peer.state.keys(Keys.auditPendingPrefix(A));
    if (pending === undefined) throw new Error('A has no pending audit record');
    const { sealed, head } = await call(client(C), 'SealAudit', A);
    expect(sealed).toBeGreaterThan(3);
    expect(await call(auditor(), 'GetAuditHead', A)).toEqual(head);
    const records = await call(auditor(), 'ListAuditRecords', A, 1);
    expect(records).toHaveLength(head.seq);
    // The sealed pending record: deleted (value null), then written.
    const history = await call(auditor(), 'KeyHistory', pending);
    expect(history.map((v) => [v.isDelete, v.value === null])).toEqual([
      [true, true],
      [false, false],
    ]);
    const pileHistory = await call(auditor(), 'KeyHistory', Keys.pile(pileB.pileId));
    expect(pileHistory[pileHistory.length - 1]?.value).toMatchObject({ pileId: pileB.pileId });
  });

  test('the incentive layer: RegisterConsenter, GetConsenters, ClaimBlockRewards (blocks as transient data), GetWitnessHead, ListWitness', async () => {
    expect(await call(auditor(), 'GetWitnessHead')).toEqual({
      block: 0,
      chain: '0'.repeat(64),
      headerHash: '',
    });
    // The captured orderers' certificates are valid from their capture on.
    await peer.setTime(BLOCKS.capturedAt + 60);
    const byName = new Map<string, string>(Object.values(OPS).map((m) => [m.name, m.mspId]));
    for (const c of BLOCKS.consenters)
      await call(admin(byName.get(c.operator) ?? ''), 'RegisterConsenter', {
        consenterId: c.consenterId,
        ordererMspId: c.ordererMspId,
        certificate: c.certificate,
      });
    expect((await call(auditor(), 'GetConsenters')).map((c) => c.consenterId)).toEqual([1, 2, 3, 4]);
    const blocks = BLOCKS.blocks.slice(0, 4);
    const wire = [JSON.stringify({ blocks: blocks.map((b) => b.evidence) })];
    const transient = Object.fromEntries(
      blocks.map((b) => [`block-${b.evidence.number}`, new Uint8Array(Buffer.from(b.data, 'base64'))]),
    );
    const r = await peer.invoke(client(B), 'ClaimBlockRewards', wire, { transient });
    if (r.status !== 200) throw new Error(`ClaimBlockRewards failed: ${r.message}`);
    const raw: unknown = JSON.parse(r.payload);
    answers.push({ tx: 'ClaimBlockRewards', raw });
    expect(evpayAnswers.ClaimBlockRewards.parse(raw)).toMatchObject({ witnessed: 4 });
    expect((await call(auditor(), 'GetWitnessHead')).block).toBe(4);
    expect((await call(auditor(), 'ListWitness', 1)).map((e) => e.block)).toEqual([1, 2, 3, 4]);
  });

  test('standing authorizations: RegisterStanding, GetStanding, GetStandingByTag, StartSession on a card, RevokeStanding', async () => {
    // After the clearing and the audit checks, with the friend's wallet, so nothing before changes.
    await call(client(A), 'TopUp', { walletId: friend.walletId, amountFen: 3_000, reference: 'pay-card' });
    const card = friend.standing(B, 'ANS-CARD', 2_000, 5_000, 3, peer.now() + 30 * 24 * HOUR, 'ans-standing');
    const registered = await call(client(B), 'RegisterStanding', card);
    expect(registered).toMatchObject({ status: 'active', sessions: 0, spentFen: 0 });
    expect(await call(auditor(), 'GetStanding', registered.standingId)).toEqual(registered);
    expect(await call(auditor(), 'GetStandingByTag', { operator: B, idTagSm3: card.idTagSm3 })).toEqual(
      registered,
    );
    const started = await call(client(B), 'StartSession', {
      standing: { standingId: registered.standingId, idTagSm3: card.idTagSm3 },
      startReading: pileB.reading('START', 'card1', 20_000, peer.now()),
    });
    expect(started).toMatchObject({ standingId: registered.standingId, capFen: 2_000 });
    // The open session is on the standing authorization's own key (the optional `open`).
    expect((await call(auditor(), 'GetStanding', registered.standingId)).open).toEqual({
      pileId: pileB.pileId,
      sessionId: 'card1',
    });
    const revoked = await call(client(B), 'RevokeStanding', { standingId: registered.standingId });
    expect(revoked).toMatchObject({ status: 'revoked', revokedBy: B, revokedAt: expect.any(Number) });
  });

  test('the story answered every transaction of the registry', () => {
    expect([...new Set(answers.map((a) => a.tx))].sort()).toEqual(names(evpayTransactions));
  });

  describe('the schemas are strict: a drifted answer fails', () => {
    const fails = (tx: EvPayTransactionName, value: unknown): boolean =>
      !evpayAnswers[tx].safeParse(value).success;
    const record = (tx: EvPayTransactionName): Record<string, unknown> => {
      const raw = rawOf(tx);
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${tx}: no object`);
      return raw as Record<string, unknown>;
    };

    test('each real answer parses to itself: nothing stripped, defaulted or converted', () => {
      for (const { tx, raw } of answers) expect([tx, evpayAnswers[tx].parse(raw)]).toEqual([tx, raw]);
    });

    test('a field added, dropped, renamed or retyped; a fractional or string amount', () => {
      const wallet = record('TopUp');
      const { balanceFen, ...rest } = wallet;
      expect(fails('TopUp', wallet)).toBe(false);
      expect(fails('TopUp', { ...wallet, note: 'x' })).toBe(true);
      expect(fails('TopUp', rest)).toBe(true);
      expect(fails('TopUp', { ...rest, balance: balanceFen })).toBe(true);
      expect(fails('TopUp', { ...wallet, balanceFen: 10.5 })).toBe(true);
      expect(fails('TopUp', { ...wallet, balanceFen: '7000' })).toBe(true);
      // Optional fields: absent passes, undefined passes (canonical JSON drops it), null does not.
      const pile = record('RegisterPile');
      expect(pile.activeSession).toBeUndefined();
      expect(fails('RegisterPile', { ...pile, activeSession: 's9' })).toBe(false);
      expect(fails('RegisterPile', { ...pile, activeSession: null })).toBe(true);
    });

    test('nested records are strict too', () => {
      const session = record('StopSession') as { settlement: { price: Record<string, unknown> } };
      const price = session.settlement.price;
      expect(
        fails('StopSession', {
          ...session,
          settlement: {
            ...session.settlement,
            price: { ...price, whByKind: { peak: 0, flat: 1, valley: 0, x: 1 } },
          },
        }),
      ).toBe(true);
      const view = answers
        .map((a) => a.raw)
        .find(
          (raw): raw is { beans: Array<Record<string, unknown>> } =>
            typeof raw === 'object' &&
            raw !== null &&
            'beans' in raw &&
            Array.isArray(raw.beans) &&
            raw.beans.length > 0,
        );
      if (!view) throw new Error('no GetWallet answer with a bean balance');
      expect(fails('GetWallet', view)).toBe(false);
      expect(fails('GetWallet', { ...view, beans: view.beans.map((b) => ({ ...b, extra: 1 })) })).toBe(true);
      const consortium = record('GetConsortium') as { operators: Array<Record<string, unknown>> };
      expect(
        fails('GetConsortium', {
          ...consortium,
          operators: consortium.operators.map(({ marginPaidFen, ...o }) => ({
            ...o,
            marginFen: marginPaidFen,
          })),
        }),
      ).toBe(true);
    });

    test("KeyHistory: a version without its value fails; a delete's null passes", () => {
      const history = rawOf('KeyHistory') as Array<Record<string, unknown>>;
      const [deleted] = history;
      expect(deleted?.value).toBeNull();
      expect(fails('KeyHistory', history)).toBe(false);
      const withoutValue = history.map((v) =>
        Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'value')),
      );
      expect(fails('KeyHistory', withoutValue)).toBe(true);
    });
  });
});
