/**
 * The consortium on real Fabric v3.1.5 processes (4 operators, each with a peer and a SmartBFT orderer,
 * plus the auditor's peer), brought up by globalSetup.js from test/network/topology.json. Every call
 * goes through @hyperledger/fabric-gateway with the calling organization's own identity and peer.
 *
 * One file, in order: the steps share one ledger, and the fault steps stop and start nodes that every
 * other step uses. The clearing period of the story (60 s, with 300 s of grace) ends while the fault
 * steps run, so closing it at the end waits little. Waits are on conditions (heights, commit status by
 * transaction id, the clock reaching a period's close), never fixed sleeps.
 */
import { GatewayError } from '@hyperledger/fabric-gateway';
import { verifyAuditChain, type AuditRecord } from '../../chaincode/src/domain/audit';
import { periodBounds, periodOf, POOL, type ClearingResult } from '../../chaincode/src/domain/clearing';
import { Keys } from '../../chaincode/src/domain/keys';
import type { Session } from '../../chaincode/src/domain/sessions';
import type { Wallet } from '../../chaincode/src/domain/wallets';
import { Driver, PileDevice } from '../../chaincode/test/support/fixtures';
import {
  chaincodeError,
  committedOnEveryPeer,
  connectAs,
  evaluate,
  submit,
  whenEndorsable,
  type ChaincodeError,
  type Connection,
  type Submitted,
} from '../../network/tools/client';
import { loadTopology } from '../../network/tools/topology';
import {
  chainInfo,
  channelConfig,
  committedDefinition,
  heightOf,
  leaderSeenBy,
  net,
  script,
  shimRequests,
  scriptWith,
  startNode,
  stopNode,
  TOPOLOGY,
  waitFor,
} from './support/fabric';

jest.setTimeout(180_000);

const topology = loadTopology(TOPOLOGY);
const params = topology.consortium.params as {
  clearingPeriodSec: number;
  clearingGraceSec: number;
  clearingUtcOffsetMinutes: number;
};
const operators = net.orgs.filter((o) => o.role === 'operator');
const [A, B, C] = operators.map((o) => o.mspId) as [string, string, string];
const AUDITOR = net.orgs.find((o) => o.role === 'auditor')?.mspId ?? 'AuditorMSP';
const json = (v: unknown): string => JSON.stringify(v);
const nowSec = (): number => Math.floor(Date.now() / 1000);

const conns: Connection[] = [];
function as(mspId: string, who: 'admin' | 'client' = 'client'): Connection {
  const c = connectAs(net, mspId, who);
  conns.push(c);
  return c;
}
let a: Connection, aAdmin: Connection, b: Connection, c: Connection, cAdmin: Connection;
let auditor: Connection;

beforeAll(() => {
  a = as(A);
  aAdmin = as(A, 'admin');
  b = as(B);
  c = as(C);
  cAdmin = as(C, 'admin');
  auditor = as(AUDITOR);
});
afterAll(() => {
  for (const x of conns) x.close();
});

/** Submits and waits for the commit; a refusal fails with the chaincode's code and message. */
async function tx<T>(conn: Connection, fn: string, ...args: string[]) {
  let r: Submitted<T>;
  try {
    r = await whenEndorsable(() => submit<T>(conn, fn, ...args));
  } catch (e) {
    const err = chaincodeError(e);
    throw err ? new Error(`${fn} refused: ${err.code}: ${err.message}`) : e;
  }
  // The next step may be endorsed by other organizations' peers: they must have this block too.
  await committedEverywhere(r.blockNumber);
  return r;
}
/** Unique per run, so the tests also pass on a network an earlier run left (ids and references are one-time). */
const RUN = Date.now().toString(36).toUpperCase();
const query = <T>(conn: Connection, fn: string, ...args: string[]) => evaluate<T>(conn, fn, ...args);

/** The chaincode's error code as a caller sees it through the real peer; the call must fail. */
async function refused(conn: Connection, fn: string, ...args: string[]): Promise<ChaincodeError> {
  try {
    await whenEndorsable(() => submit(conn, fn, ...args));
  } catch (e) {
    const err = chaincodeError(e);
    if (!err) throw e;
    return err;
  }
  throw new Error(`${fn} was expected to be refused but committed`);
}

type WalletView = { wallet: Wallet; beans: Array<{ issuer: string; beans: number }> };
const walletOf = async (conn: Connection, walletId: string): Promise<Wallet> =>
  (await query<WalletView>(conn, 'GetWallet', walletId)).wallet;

/** Every peer (the auditor's included) has committed block `block`. */
const committedEverywhere = (block: bigint): Promise<void> => committedOnEveryPeer(net, block);

describe('the channel', () => {
  test("one BFT consenter per operator, in the order of the operators' English names, with the configured batch settings", async () => {
    const cfg = await channelConfig(A);
    expect(Object.keys(cfg.channel_group.values.Capabilities.value.capabilities)).toEqual(['V3_0']);
    const orderer = cfg.channel_group.groups.Orderer.values;
    expect(orderer.ConsensusType.value.type).toBe('BFT');
    const bft = topology.ordering.smartBFT;
    expect(orderer.ConsensusType.value.metadata).toMatchObject({
      request_batch_max_interval: bft.requestBatchMaxInterval,
      request_forward_timeout: bft.requestForwardTimeout,
      request_complain_timeout: bft.requestComplainTimeout,
      view_change_timeout: bft.viewChangeTimeout,
      leader_heartbeat_timeout: bft.leaderHeartbeatTimeout,
      // Fabric v3 refuses per-block rotation: leadership moves only at view changes.
      decisions_per_leader: '0',
    });
    expect(orderer.BatchSize.value.max_message_count).toBe(topology.ordering.batchSize.maxMessageCount);
    const mapping = [...orderer.Orderers.value.consenter_mapping].sort((x, y) => x.id - y.id);
    expect(mapping.map((m) => m.id)).toEqual([1, 2, 3, 4]);
    const nameOf = new Map(topology.operators.map((o) => [o.ordererMspId, o.name]));
    const names = mapping.map((m) => nameOf.get(m.msp_id));
    expect(names).toEqual(topology.operators.map((o) => o.name).sort());
    expect(mapping.map((m) => `${m.host}:${m.port}`)).toEqual(
      [...net.orderers].sort((x, y) => x.consenterId - y.consenterId).map((o) => o.endpoint),
    );
    // The auditor organization holds a peer on the channel but is not in the endorsement policy.
    expect(Object.keys(cfg.channel_group.groups.Application.groups).sort()).toEqual(
      net.orgs.map((o) => o.mspId).sort(),
    );
    expect(net.endorsementPolicy).toBe(`OutOf(3,${operators.map((o) => `'${o.mspId}.peer'`).join(',')})`);
  });

  test('the consortium was initialized from the genesis document every operator pinned', async () => {
    const view = await query<{
      consortium: { networkId: string; initializedBy: string };
      operators: Array<{ mspId: string }>;
    }>(auditor, 'GetConsortium');
    expect(view.consortium).toMatchObject({ networkId: 'evpay-test', initializedBy: A });
    expect(view.operators.map((o) => o.mspId).sort()).toEqual(operators.map((o) => o.mspId).sort());
    expect(await refused(aAdmin, 'InitConsortium', json({}))).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

test("every operator declares its margin paid and the pool's custodian (the auditor organization) confirms it", async () => {
  const marginFen = (topology.consortium.params as { marginFen: number }).marginFen;
  const custodian = as(AUDITOR, 'admin');
  for (const op of operators) {
    const admin = as(op.mspId, 'admin');
    try {
      expect((await tx<{ marginDeclaredFen: number }>(admin, 'PayMargin')).result.marginDeclaredFen).toBe(
        marginFen,
      );
    } catch (e) {
      // A network an earlier run left has them declared or paid already.
      expect(String(e)).toMatch(/MARGIN_ALREADY_(DECLARED|PAID)/);
    }
    try {
      const confirmed = await tx<{ marginPaidFen: number }>(custodian, 'ConfirmMargin', op.mspId);
      expect(confirmed.result.marginPaidFen).toBe(marginFen);
    } catch (e) {
      expect(String(e)).toContain('MARGIN_ALREADY_PAID');
    }
  }
  const view = await query<{ pool: { balanceFen: number; marginsFen: number; rewardsPaidFen: number } }>(
    auditor,
    'GetConsortium',
  );
  // Block rewards are paid out of it as the keepers witness blocks (rewards.test.ts).
  expect(view.pool.marginsFen).toBe(operators.length * marginFen);
  expect(view.pool.balanceFen).toBe(view.pool.marginsFen - view.pool.rewardsPaidFen);
});

describe('the story: top up at A, charge at B and at A, settle between operators', () => {
  const driver = new Driver();
  driver.network = 'evpay-test';
  const pileA = new PileDevice(`${A}.A${RUN}`);
  const pileB = new PileDevice(`${B}.B${RUN}`);
  for (const p of [pileA, pileB]) p.network = 'evpay-test';
  let period = 0;
  /** Signed readings kept to be replayed later. */
  const sent: Record<string, ReturnType<PileDevice['reading']>> = {};

  test('piles registered by their operators; a wallet opened and topped up at A commits on every peer', async () => {
    // The story's money moves inside one clearing period (60 s): start with most of a period ahead.
    await waitFor('a clearing period with 40 s left', async () => {
      const p = periodOf(nowSec(), params.clearingPeriodSec, params.clearingUtcOffsetMinutes);
      const [, end] = periodBounds(p, params.clearingPeriodSec, params.clearingUtcOffsetMinutes);
      return end - nowSec() >= 40 ? true : undefined;
    });
    await tx(a, 'RegisterPile', json({ localId: pileA.localId, publicKey: pileA.keys.publicKeyHex }));
    await tx(b, 'RegisterPile', json({ localId: pileB.localId, publicKey: pileB.keys.publicKeyHex }));
    await tx(a, 'OpenWallet', json({ publicKey: driver.keys.publicKeyHex }));
    const top = await tx<Wallet>(
      a,
      'TopUp',
      json({ walletId: driver.walletId, amountFen: 10_000, reference: `story-pay-${RUN}` }),
    );
    expect(top.result).toMatchObject({ balanceFen: 10_000 });
    period = periodOf(nowSec(), params.clearingPeriodSec, params.clearingUtcOffsetMinutes);
    await committedEverywhere(top.blockNumber);
    // The auditor reads it from its own peer.
    expect(await walletOf(auditor, driver.walletId)).toMatchObject({ balanceFen: 10_000, heldFen: 0 });
  });

  test("charging 20 kWh at B's pile with B's pile-signed readings: 3000 fen (150 fen/kWh)", async () => {
    const batchesBefore = await shimRequests('WRITE_BATCH_STATE');
    const t = nowSec();
    const started = await tx<Session>(
      b,
      'StartSession',
      json({
        authorization: driver.authorize(pileB.pileId, 5_000, t + 600, 'story-b1'),
        startReading: pileB.reading('START', 'b1', 0, t),
      }),
    );
    expect(started.result).toMatchObject({ sessionId: 'b1', status: 'open' });
    expect(await walletOf(a, driver.walletId)).toMatchObject({ heldFen: 5_000 });
    await waitFor('the next second', async () => nowSec() > t);
    sent.b1Stop = pileB.reading('STOP', 'b1', 20_000, nowSec());
    const stopped = await tx<Session>(b, 'StopSession', json({ stopReading: sent.b1Stop }));
    expect(stopped.result.settlement).toMatchObject({
      energyWh: 20_000,
      chargedFen: 3_000,
      uncollectedFen: 0,
      period,
    });
    expect(await walletOf(auditor, driver.walletId)).toMatchObject({ balanceFen: 7_000, heldFen: 0 });
    // The v3.1 peers offered batched state access and the chaincode took it (contracts/peerState.ts):
    // each endorsement of the start and of the stop sent its writes as one WRITE_BATCH_STATE, and no
    // transaction of this network has ever sent a single PUT_STATE or DEL_STATE.
    expect((await shimRequests('WRITE_BATCH_STATE')) - batchesBefore).toBeGreaterThanOrEqual(4);
    expect(await shimRequests('GET_STATE_MULTIPLE')).toBeGreaterThan(0);
    expect([await shimRequests('PUT_STATE'), await shimRequests('DEL_STATE')]).toEqual([0, 0]);
  });

  test("charging 5 kWh at A's own pile: 750 fen", async () => {
    const t = nowSec();
    sent.a1Start = pileA.reading('START', 'a1', 1_000, t);
    await tx(
      a,
      'StartSession',
      json({
        authorization: driver.authorize(pileA.pileId, 2_000, t + 600, 'story-a1'),
        startReading: sent.a1Start,
      }),
    );
    await waitFor('the next second', async () => nowSec() > t);
    const s = await tx<Session>(
      a,
      'StopSession',
      json({ stopReading: pileA.reading('STOP', 'a1', 6_000, nowSec()) }),
    );
    expect(s.result.settlement).toMatchObject({ energyWh: 5_000, chargedFen: 750, period });
  });

  describe('rejections, with their codes as the caller sees them through the real peer; nothing changes', () => {
    let before: Wallet;
    beforeAll(async () => {
      before = await walletOf(auditor, driver.walletId);
    });
    afterAll(async () => {
      expect(await walletOf(auditor, driver.walletId)).toEqual(before);
    });

    test('a forged reading and a replayed reading', async () => {
      const t = nowSec();
      const start = pileB.reading('START', 'b2', 20_000, t);
      const auth = driver.authorize(pileB.pileId, 1_000, t + 600, 'story-rej-1');
      // Altered after signing: the meter value is not what the pile signed.
      expect(
        await refused(
          b,
          'StartSession',
          json({ authorization: auth, startReading: { ...start, meterWh: 25_000 } }),
        ),
      ).toMatchObject({
        code: 'BAD_SIGNATURE',
      });
      // Signed by another key than the registered pile's.
      const forger = new PileDevice(pileB.pileId);
      forger.network = 'evpay-test';
      expect(
        await refused(
          b,
          'StartSession',
          json({ authorization: auth, startReading: forger.reading('START', 'b2', 20_000, t) }),
        ),
      ).toMatchObject({
        code: 'BAD_SIGNATURE',
      });
      // The STOP reading of session b1, replayed as sent: the session settled once and only once.
      expect((await query<Session>(auditor, 'GetSession', pileB.pileId, 'b1')).status).toBe('settled');
      expect(await refused(b, 'StopSession', json({ stopReading: sent.b1Stop }))).toMatchObject({
        code: 'SESSION_ALREADY_SETTLED',
      });
      // The START reading of session a1, replayed as sent with a fresh authorization: the pile's meter
      // has moved on since.
      expect(
        await refused(
          a,
          'StartSession',
          json({
            authorization: driver.authorize(pileA.pileId, 1_000, t + 600, 'story-rej-2'),
            startReading: sent.a1Start,
          }),
        ),
      ).toMatchObject({ code: 'METER_WENT_BACKWARDS' });
    });

    test('an authorization the driver revoked before using it', async () => {
      const t = nowSec();
      const auth = driver.authorize(pileB.pileId, 1_000, t + 600, 'story-rej-5');
      await tx(b, 'RevokeAuthorization', json(driver.revoke('story-rej-5')));
      expect(
        await refused(
          b,
          'StartSession',
          json({ authorization: auth, startReading: pileB.reading('START', 'b5', 20_000, t) }),
        ),
      ).toMatchObject({ code: 'NONCE_REUSED' });
    });

    test("another operator's pile", async () => {
      const t = nowSec();
      expect(
        await refused(
          a,
          'StartSession',
          json({
            authorization: driver.authorize(pileB.pileId, 1_000, t + 600, 'story-rej-3'),
            startReading: pileB.reading('START', 'b3', 20_000, t),
          }),
        ),
      ).toMatchObject({ code: 'NOT_PILE_OPERATOR' });
    });

    test('a spend the driver did not sign', async () => {
      const t = nowSec();
      const auth = driver.authorize(pileB.pileId, 9_000, t + 600, 'story-rej-4');
      const thief = new Driver();
      thief.network = 'evpay-test';
      const forged = {
        ...auth,
        signature: thief.authorize(pileB.pileId, 9_000, t + 600, 'story-rej-4').signature,
      };
      expect(
        await refused(
          b,
          'StartSession',
          json({ authorization: forged, startReading: pileB.reading('START', 'b4', 20_000, t) }),
        ),
      ).toMatchObject({
        code: 'BAD_SIGNATURE',
      });
      const unsigned: Record<string, unknown> = { ...auth };
      delete unsigned.signature;
      expect(
        await refused(
          b,
          'StartSession',
          json({ authorization: unsigned, startReading: pileB.reading('START', 'b4', 20_000, t) }),
        ),
      ).toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(
        await refused(b, 'RefundWallet', json({ ...driver.refund(B, 100, t + 600), amountFen: 7_000 })),
      ).toMatchObject({
        code: 'BAD_SIGNATURE',
      });
    });

    test('an auditor write, through its own peer', async () => {
      const p = new PileDevice(`${AUDITOR}.X1`);
      expect(
        await refused(auditor, 'RegisterPile', json({ localId: 'X1', publicKey: p.keys.publicKeyHex })),
      ).toMatchObject({
        code: 'AUDITOR_READ_ONLY',
      });
      expect(
        await refused(
          auditor,
          'TopUp',
          json({ walletId: driver.walletId, amountFen: 1, reference: 'aud-1' }),
        ),
      ).toMatchObject({
        code: 'AUDITOR_READ_ONLY',
      });
    });
  });

  test("the auditor reads a wallet's key history and verifies the operators' SM3 record chains from its own peer", async () => {
    const history = await query<Array<{ txId: string; isDelete: boolean; value: Wallet }>>(
      auditor,
      'KeyHistory',
      Keys.wallet(driver.walletId),
    );
    // Newest first: opened, topped up, held and settled twice.
    expect(history.map((h) => h.value.balanceFen)).toEqual([6_250, 7_000, 7_000, 10_000, 10_000, 0]);
    expect(history.map((h) => h.value.heldFen)).toEqual([0, 2_000, 0, 5_000, 0, 0]);
    expect(new Set(history.map((h) => h.txId)).size).toBe(history.length);
    for (const op of [A, B]) {
      const sealed = await tx<{ sealed: number; head: { seq: number; chain: string } }>(c, 'SealAudit', op);
      await committedEverywhere(sealed.blockNumber);
      const records = await query<AuditRecord[]>(auditor, 'ListAuditRecords', op, '1');
      expect(records).toHaveLength(sealed.result.head.seq);
      expect(records[records.length - 1]?.chain).toBe(sealed.result.head.chain);
      expect(verifyAuditChain(records)).toEqual({ ok: true, verified: sealed.result.head.seq });
    }
  });

  describe('ordering faults (f = 1 of 4 orderers)', () => {
    // Two wallets: one takes the top-up sent while there is no quorum, the other the traffic around it
    // (two top-ups of one wallet in one block would conflict, and one would be invalidated).
    const extra = new Driver();
    const probe = new Driver();
    let refs = 0;
    const topUp = (amountFen = 100, wallet = probe) =>
      json({ walletId: wallet.walletId, amountFen, reference: `fault-${RUN}-${++refs}` });

    /** Nodes a step stopped: started again after the step, also when it fails. */
    const restartAfter: string[] = [];

    beforeAll(async () => {
      // The story's clearing period is over before more money moves (its totals are checked below).
      const [, end] = periodBounds(period, params.clearingPeriodSec, params.clearingUtcOffsetMinutes);
      await waitFor(`the end of clearing period ${period}`, async () => nowSec() >= end, 90_000);
      for (const d of [extra, probe]) await tx(c, 'OpenWallet', json({ publicKey: d.keys.publicKeyHex }));
    }, 120_000);
    afterEach(async () => {
      await Promise.all(restartAfter.splice(0).map((n) => startNode(n)));
    });

    test('the leader is killed: the next consenter in name order leads and commits go on', async () => {
      const leader = await waitFor('a leader', () => leaderSeenBy(net.orderers[0]?.node ?? ''));
      const victim = net.orderers.find((o) => o.consenterId === leader);
      if (!victim) throw new Error(`no orderer with consenter id ${leader}`);
      await stopNode(victim.node);
      restartAfter.push(victim.node);
      const t0 = Date.now();
      const r = await tx(c, 'TopUp', topUp());
      const replacedMs = Date.now() - t0;
      process.stdout.write(`leader ${victim.node} killed: next commit after ${replacedMs} ms\n`);
      const next = (leader % net.orderers.length) + 1;
      for (const o of net.orderers.filter((x) => x.node !== victim.node))
        expect(
          await waitFor(`${o.node} to see the new leader`, async () => {
            const l = await leaderSeenBy(o.node);
            return l !== undefined && l !== leader ? l : undefined;
          }),
        ).toBe(next);
      await committedEverywhere(r.blockNumber);
    });

    test('two orderers down: nothing commits and nothing forks; restarted, every node reaches the same height', async () => {
      const [x, y] = net.orderers.slice(0, 2);
      if (!x || !y) throw new Error('need 4 orderers');
      const peerHeights = async () => Promise.all(net.orgs.map((o) => heightOf(o.peer.operationsUrl)));
      await Promise.all(restartAfter.splice(0).map((n) => startNode(n)));
      await stopNode(x.node);
      await stopNode(y.node);
      restartAfter.push(x.node, y.node);
      const heightsBefore = await peerHeights();
      const balanceBefore = (await walletOf(c, extra.walletId)).balanceFen;
      // Endorsed, then refused by the gateway: fewer than a quorum (3 of 4) of orderers took it. The two
      // orderers still up may hold it in their request pools, so its outcome is unknown, not failed.
      const heldTopUp = topUp(500, extra);
      const endorsed = await c.contract.newProposal('TopUp', { arguments: [heldTopUp] }).endorse();
      const refusedSubmit = await endorsed.submit().then(
        () => 'accepted',
        (e: unknown) => (e instanceof GatewayError ? e.code : String(e)),
      );
      expect(refusedSubmit).toBe(14); // UNAVAILABLE
      expect(await peerHeights()).toEqual(heightsBefore);
      expect((await walletOf(auditor, extra.walletId)).balanceFen).toBe(balanceBefore);

      await Promise.all(restartAfter.splice(0).map((n) => startNode(n)));
      // New traffic after the restart, then every node at one height with one block hash.
      const after = await tx(c, 'TopUp', topUp());
      await committedEverywhere(after.blockNumber);
      const target = Number(after.blockNumber) + 1;
      for (const o of net.orderers)
        await waitFor(
          `${o.node} to reach height ${target}`,
          async () => ((await heightOf(o.operationsUrl)) ?? 0) >= target,
        );
      const infos = await waitFor('every peer at one height', async () => {
        const all = await Promise.all(net.orgs.map((o) => chainInfo(o.mspId)));
        return all.every((i) => i.height === all[0]?.height) ? all : undefined;
      });
      expect(new Set(infos.map((i) => i.currentBlockHash)).size).toBe(1);
      // Resolving the unknown outcome by its reference, as a client must: the same top-up again either
      // commits or is refused as a replay (the held one was ordered). Either way it counts once.
      await waitFor('the held top-up to be settled once', async () => {
        try {
          await submit(c, 'TopUp', heldTopUp);
          return true;
        } catch (e) {
          return chaincodeError(e)?.code === 'REFERENCE_REPLAYED' ? true : undefined;
        }
      });
      expect((await walletOf(auditor, extra.walletId)).balanceFen).toBe(balanceBefore + 500);
    });
  });

  test('down without purge, then up: ledger and world state survive', async () => {
    const wallet = await walletOf(auditor, driver.walletId);
    const height = await heightOf(net.orgs[0]?.peer.operationsUrl ?? '');
    await script('down.sh');
    for (const o of net.orgs) expect(await heightOf(o.peer.operationsUrl)).toBeUndefined();
    await script('up.sh');
    expect(await walletOf(auditor, driver.walletId)).toEqual(wallet);
    expect(await heightOf(net.orgs[0]?.peer.operationsUrl ?? '')).toBeGreaterThan(height ?? 0);
  });

  test('clearing: the period closes after its end and grace; A owes B and the pool; each side confirms', async () => {
    const [, end] = periodBounds(period, params.clearingPeriodSec, params.clearingUtcOffsetMinutes);
    const closeAt = end + params.clearingGraceSec;
    await waitFor(
      `the clock to pass ${closeAt} (period end + grace)`,
      async () => nowSec() > closeAt,
      (closeAt - nowSec() + 30) * 1000,
    );
    // A busy period is closed in bounded steps (chaincode README §4 Clearing): any member rolls up an
    // operator's positions, the close adds the subtotals and what came after them. One step here.
    const rolled = await tx<{ done: boolean; movements: number }>(
      b,
      'RollUpPositions',
      json({ period, mspId: A }),
    );
    expect(rolled.result).toMatchObject({ done: true });
    const closed = await tx<ClearingResult>(c, 'ClosePeriod', String(period));
    const r = closed.result;
    // The story's money, plus the block rewards the keepers witnessed in this period (paid to each
    // operator's consenter from the pool: the pool owes them, the operators are owed).
    const reward = (msp: string): number => r.positions[msp]?.rewardsFen ?? 0;
    expect(r.positions[A]).toMatchObject({
      topUpCashFen: 10_000,
      energyRevenueFen: 750,
      dueFen: -9_250 + reward(A),
    });
    expect(r.positions[B]).toMatchObject({ energyRevenueFen: 3_000, dueFen: 3_000 + reward(B) });
    const rewards = Object.keys(r.positions).reduce((sum, msp) => sum + reward(msp), 0);
    expect(r.poolDueFen).toBe(6_250 - rewards);
    // The transfers settle every due exactly (who pays whom depends on the rewards of the period).
    const netOf = new Map<string, number>();
    for (const t of r.transfers) {
      netOf.set(t.from, (netOf.get(t.from) ?? 0) - t.amountFen);
      netOf.set(t.to, (netOf.get(t.to) ?? 0) + t.amountFen);
    }
    for (const [msp, pos] of Object.entries(r.positions)) expect(netOf.get(msp) ?? 0).toBe(pos.dueFen);
    expect(netOf.get(POOL) ?? 0).toBe(r.poolDueFen);
    expect(r.transfers.some((t) => t.from === POOL || t.to === POOL)).toBe(true);
    expect(r.transfers.length).toBeGreaterThan(0);
    expect(await refused(a, 'ClosePeriod', String(period))).toMatchObject({ code: 'PERIOD_CLOSED' });
    const confirm = (index: number, side: 'payer' | 'payee') => json({ period, index, side });
    // Each side confirms with its admin; the pool's side is the custodian's (the auditor organization).
    const sideOf = (msp: string): Connection => (msp === POOL ? as(AUDITOR, 'admin') : as(msp, 'admin'));
    for (const t of r.transfers) {
      // The pool's side is the custodian's alone (the auditor organization), never another operator's.
      const poolSide = t.from === POOL ? 'payer' : t.to === POOL ? 'payee' : undefined;
      if (poolSide)
        expect(await refused(cAdmin, 'ConfirmTransfer', confirm(t.index, poolSide))).toMatchObject({
          code: 'FORBIDDEN',
        });
      await tx(sideOf(t.from), 'ConfirmTransfer', confirm(t.index, 'payer'));
      const done = await tx<{ complete: boolean }>(
        sideOf(t.to),
        'ConfirmTransfer',
        confirm(t.index, 'payee'),
      );
      expect(done.result.complete).toBe(true);
    }
    const status = await query<{ transfers: Array<{ complete: boolean }> }>(
      auditor,
      'GetClearing',
      String(period),
    );
    expect(status.transfers.every((t) => t.complete)).toBe(true);
  }, 600_000);

  test('the driver is paid out the rest by B, the operator its signed refund names', async () => {
    const rest = (await walletOf(auditor, driver.walletId)).balanceFen;
    expect(rest).toBe(6_250);
    const refund = json(driver.refund(B, rest, nowSec() + 120));
    expect(await refused(a, 'RefundWallet', refund)).toMatchObject({ code: 'FORBIDDEN' });
    expect((await tx<Wallet>(b, 'RefundWallet', refund)).result).toMatchObject({ balanceFen: 0 });
    expect(await refused(b, 'RefundWallet', refund)).toMatchObject({ code: 'NONCE_REUSED' });
  });
});

test('an upgrade commits the next sequence on the running network; state and service carry on', async () => {
  const before = await committedDefinition();
  const version = `upgrade-${RUN.toLowerCase()}`;
  await scriptWith({ EVPAY_CHAINCODE_VERSION: version }, 'chaincode.sh');
  expect(await committedDefinition()).toMatchObject({ sequence: before.sequence + 1, version });
  // Every peer runs the new package: state written before is read, and a write commits everywhere.
  const view = await query<{ operators: unknown[] }>(auditor, 'GetConsortium');
  expect(view.operators).toHaveLength(operators.length);
  const d = new Driver();
  const opened = await tx<Wallet>(b, 'OpenWallet', json({ publicKey: d.keys.publicKeyHex }));
  await committedEverywhere(opened.blockNumber);
  expect(await walletOf(auditor, d.walletId)).toMatchObject({ balanceFen: 0 });
});
