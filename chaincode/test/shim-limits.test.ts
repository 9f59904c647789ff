/**
 * Ranges longer than a peer's totalQueryLimit, on the built chaincode in the real fabric-shim runtime.
 * A peer ends one range query after totalQueryLimit results (100,000 by default) and reports the range
 * finished, with no error (core/chaincode/query_response_generator.go); the simulated peer does the same
 * (support/shimPeer.ts). Found in review: ClosePeriod and IssueBeans each summed their records with one
 * query, so past the limit a period's clearing silently lost operators' movements and issuance forgot
 * used backing. The chaincode now reads every range in chunks (state.ts, RANGE_CHUNK).
 * Run `npm run build` first (jest's globalSetup does).
 */
import { creditReward, type IssuedDelta } from '../src/domain/beans';
import {
  CLOSE_STEP_POSITIONS,
  periodBounds,
  periodOf,
  type ClearingResult,
  type PositionDelta,
} from '../src/domain/clearing';
import { genesisDigest } from '../src/domain/consortium';
import type { KV, StateStore } from '../src/domain/context';
import { Keys } from '../src/domain/keys';
import { withReadCache } from '../src/domain/state';
import { AUDITOR_MSP, Driver, genesis, OPS, PARAMS } from './support/fixtures';
import { identity, ShimPeer, TOTAL_QUERY_LIMIT, type Identity } from './support/shimPeer';

jest.setTimeout(300_000);

const A = OPS.A.mspId; // AlphaMSP sorts before BetaMSP
const B = OPS.B.mspId;
const MEMBERS = [OPS.A, OPS.B, OPS.C];
const GENESIS = genesis(MEMBERS);
const T0 = 1_767_225_600;
const admin = (m: string): Identity => identity(m, 'admin');
const client = (m: string): Identity => identity(m, 'client');

let peer: ShimPeer;
beforeAll(async () => {
  peer = await ShimPeer.start({ startAt: T0, env: { EVPAY_GENESIS_SM3: genesisDigest(GENESIS) } });
});
afterAll(async () => {
  await peer?.stop();
});

async function ok(id: Identity, fn: string, ...args: string[]): Promise<unknown> {
  const r = await peer.invoke(id, fn, args);
  if (r.status !== 200) throw new Error(`${fn}: ${r.message}`);
  return JSON.parse(r.payload) as unknown;
}

test('a period with more than totalQueryLimit positions closes in bounded steps and counts every one of them', async () => {
  await ok(admin(A), 'InitConsortium', JSON.stringify(GENESIS));
  for (const op of MEMBERS) {
    await ok(admin(op.mspId), 'PayMargin');
    await ok(admin(AUDITOR_MSP), 'ConfirmMargin', op.mspId); // the pool's custodian (genesis default)
  }
  const driver = new Driver();
  await ok(client(B), 'OpenWallet', JSON.stringify({ publicKey: driver.keys.publicKeyHex }));
  // B takes 10,000 yuan of a driver's cash: B owes it to the clearing.
  await ok(
    client(B),
    'TopUp',
    JSON.stringify({ walletId: driver.walletId, amountFen: 1_000_000, reference: 'big-cash' }),
  );

  // A busy day at A: TOTAL_QUERY_LIMIT ordinary 1-fen top-ups. Each TopUp writes exactly one position key
  // of this shape (clearing.ts addPosition); they are committed directly here only because pushing 100,000
  // proposals through the shim one by one would take too long. Nothing else is written out of band.
  const period = periodOf(T0, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
  const enc = new TextEncoder();
  const writes = new Map<string, Uint8Array>();
  for (let i = 0; i < TOTAL_QUERY_LIMIT; i++) {
    const txId = i.toString(16).padStart(64, '0');
    const delta: PositionDelta = { mspId: A, txId, at: T0, topUpCashFen: 1 };
    writes.set(Keys.position(period, A, txId, 0), enc.encode(JSON.stringify(delta)));
  }
  peer.state.commit('seed-busy-day', { seconds: T0, nanos: 0 }, writes);

  const [, endsAt] = periodBounds(period, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
  const at = endsAt + PARAMS.clearingGraceSec;
  await peer.setTime(at);
  // More movements than one closing step reads (clearing.ts, BOUNDED CLOSE RULE): the close names the
  // operator to roll up, any member rolls A's positions up in steps, then the close adds the subtotals.
  const early = await peer.invoke(client(A), 'ClosePeriod', [String(period)], { txTimeSeconds: at });
  expect(early.status).toBe(500);
  expect(early.message).toContain('PERIOD_NOT_ROLLED_UP');
  let steps = 0;
  for (let done = false; !done; steps++) {
    const r = await peer.invoke(client(B), 'RollUpPositions', [JSON.stringify({ period, mspId: A })], {
      txTimeSeconds: at,
    });
    expect(r.status).toBe(200);
    ({ done } = JSON.parse(r.payload) as { done: boolean });
  }
  expect(steps).toBe(Math.ceil(TOTAL_QUERY_LIMIT / CLOSE_STEP_POSITIONS) + 1); // the last step finds none left
  const closed = await peer.invoke(client(A), 'ClosePeriod', [String(period)], { txTimeSeconds: at });
  expect(closed.status).toBe(200);
  const r = JSON.parse(closed.payload) as ClearingResult;
  expect(closed.committed).toBe(true);
  expect(r.positions[A]?.topUpCashFen).toBe(TOTAL_QUERY_LIMIT);
  // B's top-up sorts after the peer's limit: it counts all the same.
  expect(r.positions[B]).toMatchObject({ topUpCashFen: 1_000_000, dueFen: -1_000_000 });
  expect(r.poolDueFen).toBe(TOTAL_QUERY_LIMIT + 1_000_000);
});

/** The same for issuance: every `issued/<mspId>/<txId>` record counts, so no bean goes out unbacked. */
test('IssueBeans past totalQueryLimit issuance records: no bean without backing', async () => {
  const doc = { ...GENESIS, params: { ...PARAMS, beanFaceValueFen: 1 } };
  const p2 = await ShimPeer.start({ startAt: T0, env: { EVPAY_GENESIS_SM3: genesisDigest(doc) } });
  try {
    const run = async (id: Identity, fn: string, ...args: string[]) => {
      const r = await p2.invoke(id, fn, args);
      return { ok: r.status === 200, body: r.status === 200 ? JSON.parse(r.payload) : r.message };
    };
    expect((await run(admin(A), 'InitConsortium', JSON.stringify(doc))).ok).toBe(true);
    for (const op of MEMBERS) {
      expect((await run(admin(op.mspId), 'PayMargin')).ok).toBe(true);
      expect((await run(admin(AUDITOR_MSP), 'ConfirmMargin', op.mspId)).ok).toBe(true);
    }
    // B earns rewards backing exactly LIMIT + 1 beans (credited as shim.test.ts does: out of band).
    const backed = TOTAL_QUERY_LIMIT + 1;
    const writes = new Map<string, Uint8Array | null>();
    const state = p2.state;
    const store: StateStore = {
      get: async (k) => state.get(k),
      put: async (k, v) => void writes.set(k, v),
      del: async (k) => void writes.set(k, null),
      range: (s, e) =>
        (async function* (): AsyncGenerator<KV> {
          for (const k of state.rangeKeys(s, e)) yield { key: k, value: state.get(k) ?? new Uint8Array() };
        })(),
    };
    await creditReward(
      {
        txId: 'reward-1',
        now: T0,
        caller: { mspId: B, role: 'client', id: 'incentive' },
        store: withReadCache(store),
        events: [],
      },
      B,
      'block-1',
      backed,
    );
    state.commit('reward-1', { seconds: T0, nanos: 0 }, writes);
    // B issued all of them, one bean per IssueBeans (what each such transaction writes; committed directly
    // only to save time): every fen of backing is used.
    const enc = new TextEncoder();
    const issued = new Map<string, Uint8Array>();
    for (let i = 0; i < backed; i++) {
      const txId = i.toString(16).padStart(64, '0');
      const d: IssuedDelta = { beans: 1, backingFen: 1, txId, at: T0 };
      issued.set(Keys.beanIssued(B, txId), enc.encode(JSON.stringify(d)));
    }
    issued.set(Keys.beanTreasury(B, 0), enc.encode(JSON.stringify({ mspId: B, bucket: 0, beans: backed })));
    state.commit('seed-issuance', { seconds: T0, nanos: 0 }, issued);

    const state0 = await run(client(B), 'GetIssuance', B);
    expect(state0.body).toMatchObject({ issued: backed, remaining: 0, limit: backed });
    const extra = await run(admin(B), 'IssueBeans', JSON.stringify({ beans: 1, reference: 'x1' }));
    expect(extra.ok).toBe(false);
    expect(String(extra.body)).toContain('ISSUANCE_LIMIT_EXCEEDED');
  } finally {
    await p2.stop();
  }
});
