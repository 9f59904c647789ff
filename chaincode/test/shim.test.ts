/**
 * The BUILT chaincode (chaincode/dist) inside the real fabric-shim / fabric-contract-api runtime, driven by
 * a SIMULATED PEER that speaks Fabric's chaincode shim gRPC protocol (support/shimPeer.ts). This is not a
 * Fabric network: no endorsement policy, no ordering, no MVCC validation, no MSP chain validation. It
 * checks what the domain tests cannot: dispatch by function name, argument and return serialization, the
 * stub API (committed-state reads, buffered writes, 100-result range batches with QUERY_STATE_NEXT, key
 * history), the client identity fabric-shim parses from a real X.509 certificate, the `evpay` chaincode
 * event, the JSON error in a non-200 response, and the peer-clock gate on the proposal timestamp.
 *
 * Time. run() refuses a proposal stamped more than 300 s from the chaincode process's Date.now()
 * (checkTxTime), and product code must not change for tests. So the peer keeps a virtual clock: it starts
 * the chaincode with a test-only preload (support/clockOffset.js, NODE_OPTIONS=--require) that shifts
 * Date.now() by an offset, and stamps every proposal with the same virtual time. Moving the clock (a
 * one-hour session, an envelope's expiry, the end of a clearing period plus its grace) restarts the
 * chaincode process with a new offset; the world state lives in the peer, so a restart is cheap (~0.4 s),
 * as a real peer restarting a chaincode container. The clock starts at 2026-01-01 08:00 China time so
 * tariff periods, and so the amounts, are the same on every run.
 */
import { sm2GenerateKeyPair } from '../src/crypto';
import { transactionJsonSchemas, type EvPayTransactionName } from '../src/domain/api';
import { verifyAuditChain, type AuditRecord } from '../src/domain/audit';
import { creditReward } from '../src/domain/beans';
import { periodBounds, periodOf, POOL, type ClearingResult } from '../src/domain/clearing';
import { genesisDigest } from '../src/domain/consortium';
import type { Caller, KV, StateStore, TxContext } from '../src/domain/context';
import type { Envelope } from '../src/domain/envelopes';
import type { Pile } from '../src/domain/piles';
import type { Session } from '../src/domain/sessions';
import { withReadCache } from '../src/domain/state';
import type { Wallet } from '../src/domain/wallets';
import { AUDITOR_MSP, Driver, genesis, NETWORK, OPS, PARAMS, PileDevice, TARIFF } from './support/fixtures';
import { identity, ShimPeer, type Identity, type TxResult } from './support/shimPeer';

jest.setTimeout(60_000);

const A = OPS.A.mspId;
const B = OPS.B.mspId;
const C = OPS.C.mspId;
const MEMBERS = [OPS.A, OPS.B, OPS.C];
const GENESIS = genesis(MEMBERS);
/** 2026-01-01T00:00:00Z = 08:00 in China: the start of a flat tariff period. */
const T0 = 1_767_225_600;
const HOUR = 3600;

const admin = (mspId: string): Identity => identity(mspId, 'admin');
const client = (mspId: string): Identity => identity(mspId, 'client');
const auditor = (): Identity => identity(AUDITOR_MSP, 'client');
/** The auditor organization is the pool's custodian (the genesis default): its admin confirms pool money. */
const custodian = (): Identity => identity(AUDITOR_MSP, 'admin');

interface ChaincodeError {
  code: string;
  category: string;
  message: string;
  details: Record<string, unknown>;
}
type WalletView = { wallet: Wallet; beans: Array<{ issuer: string; beans: number }> };
interface EventEnvelope {
  txId: string;
  events: Array<{ name: string; payload: Record<string, unknown> }>;
}

let peer: ShimPeer;

beforeAll(async () => {
  // Each operator pins the genesis document it agreed to on its own peers (see initConsortium).
  peer = await ShimPeer.start({ startAt: T0, env: { EVPAY_GENESIS_SM3: genesisDigest(GENESIS) } });
});
afterAll(async () => {
  await peer?.stop();
});

function explain(r: TxResult): string {
  return `status ${r.status}: ${r.message}\n--- chaincode log (tail) ---\n${peer.chaincodeLog().slice(-2000)}`;
}

/** Submits a transaction that must succeed; its canonical-JSON answer, parsed. */
async function submit<T>(id: Identity, fn: string, ...args: string[]): Promise<T> {
  const r = await peer.invoke(id, fn, args);
  if (r.status !== 200) throw new Error(`${fn} failed, ${explain(r)}`);
  expect(r.committed).toBe(true);
  return JSON.parse(r.payload) as T;
}

/** Evaluates a query that must succeed. */
async function query<T>(id: Identity, fn: string, ...args: string[]): Promise<T> {
  const r = await peer.evaluate(id, fn, args);
  if (r.status !== 200) throw new Error(`${fn} failed, ${explain(r)}`);
  return JSON.parse(r.payload) as T;
}

/** The chaincode's JSON error, parsed from the first '{' (README §2). */
function errorOf(r: TxResult): ChaincodeError {
  const at = r.message.indexOf('{');
  if (at < 0) throw new Error(`not a JSON error: ${r.message}`);
  return JSON.parse(r.message.slice(at)) as ChaincodeError;
}

/** Submits a transaction that must fail: a non-200 status, the JSON error, no event, nothing committed. */
async function refused(id: Identity, fn: string, ...args: string[]): Promise<ChaincodeError> {
  const before = peer.state.fingerprint();
  const r = await peer.invoke(id, fn, args);
  expect(r.status).toBe(500);
  expect(r.payload).toBe('');
  expect(r.event).toBeUndefined();
  expect(r.committed).toBe(false);
  expect(peer.state.fingerprint()).toBe(before);
  const e = errorOf(r);
  expect(Object.keys(e).sort()).toEqual(['category', 'code', 'details', 'message']);
  return e;
}

function businessEvents(r: TxResult): EventEnvelope {
  expect(r.event?.name).toBe('evpay');
  const env = JSON.parse(r.event?.payload ?? '{}') as EventEnvelope;
  expect(env.txId).toBe(r.txId);
  return env;
}

/** How many messages of a type the chaincode sent while `fn` ran. */
async function counting<R>(types: string[], fn: () => Promise<R>): Promise<[R, Record<string, number>]> {
  const before = types.map((t) => peer.received.get(t) ?? 0);
  const result = await fn();
  return [
    result,
    Object.fromEntries(types.map((t, i) => [t, (peer.received.get(t) ?? 0) - (before[i] ?? 0)])),
  ];
}

/**
 * Rewards have no transaction yet (README §7: only the incentive layer will call creditReward), so the
 * story credits one the way the domain tests do: the domain function, run in this process against the
 * peer's committed state, its writes committed as one transaction. This is the only state the tests
 * write without the chaincode.
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

describe('bootstrap through the shim', () => {
  test('a peer without a genesis pin endorses no InitConsortium', async () => {
    const unpinned = await ShimPeer.start({ startAt: T0 });
    try {
      const r = await unpinned.invoke(admin(A), 'InitConsortium', [JSON.stringify(GENESIS)]);
      expect(r.status).toBe(500);
      expect(errorOf(r)).toMatchObject({ code: 'GENESIS_NOT_PINNED', category: 'PRECONDITION' });
      expect(unpinned.state.height).toBe(0);
    } finally {
      await unpinned.stop();
    }
  });

  test('a peer that offers no batching in READY (Fabric 2.x) gets one message a write, and the same state', async () => {
    const pin = { EVPAY_GENESIS_SM3: genesisDigest(GENESIS) };
    const written: Array<[number, string[]]> = [];
    for (const offer of [false, undefined] as const) {
      const p = await ShimPeer.start({ startAt: T0, env: pin, ...(offer === false ? { offer } : {}) });
      try {
        const r = await p.invoke(admin(A), 'InitConsortium', [JSON.stringify(GENESIS)]);
        expect(r.status).toBe(200);
        // Pending audit records are named by the transaction id, which differs between the two runs.
        const keys = p.state.keys().filter((k) => !k.startsWith('auditpending/'));
        written.push([p.received.get('PUT_STATE') ?? 0, keys]);
        expect(p.received.get('WRITE_BATCH_STATE') ?? 0).toBe(offer === false ? 0 : 1);
        expect(p.received.get('GET_STATE_MULTIPLE') ?? 0).toBe(0);
      } finally {
        await p.stop();
      }
    }
    const [[plainPuts, plainKeys], [batchedPuts, batchedKeys]] = written as [
      [number, string[]],
      [number, string[]],
    ];
    expect(plainPuts).toBeGreaterThan(5);
    expect(batchedPuts).toBe(0);
    expect(batchedKeys).toEqual(plainKeys);
  });

  test('InitConsortium by an admin of a founding operator, then each operator pays its margin', async () => {
    // Another document than the pinned one is refused; so is a client identity.
    expect(
      await refused(
        admin(A),
        'InitConsortium',
        JSON.stringify({ ...GENESIS, auditorMspIds: [], custodianMspId: AUDITOR_MSP }),
      ),
    ).toMatchObject({ code: 'GENESIS_MISMATCH', category: 'FORBIDDEN' });
    expect(await refused(client(A), 'InitConsortium', JSON.stringify(GENESIS))).toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    const init = await peer.invoke(admin(A), 'evpay:InitConsortium', [JSON.stringify(GENESIS)]);
    expect(init.status).toBe(200);
    const consortium = JSON.parse(init.payload) as Record<string, unknown>;
    expect(consortium).toMatchObject({
      auditorMspIds: [AUDITOR_MSP],
      genesisSm3: genesisDigest(GENESIS),
      networkId: NETWORK,
      initializedAt: expect.any(Number),
    });
    expect(consortium.initializedBy).toBe(A);
    // The caller in the audit record is fabric-shim's identity string, parsed from the certificate
    // (subject::issuer; these certificates are self-signed).
    const dn = '/C=CN/O=AlphaMSP/OU=admin/CN=admin@AlphaMSP';
    const [pending] = peer.state.keys(`auditpending/${A}/`);
    expect(peer.state.json<AuditRecord>(pending ?? '')).toMatchObject({
      type: 'ConsortiumInitialized',
      txId: init.txId,
      caller: `x509::${dn}::${dn}`,
    });
    expect(businessEvents(init).events.map((e) => e.name)).toEqual(['ConsortiumInitialized']);
    expect(await refused(admin(B), 'InitConsortium', JSON.stringify(GENESIS))).toMatchObject({
      code: 'CONSORTIUM_ALREADY_INITIALIZED',
    });

    for (const op of MEMBERS) {
      // The operator's admin declares its margin paid; the custodian's admin confirms it reached the pool.
      const declared = await peer.invoke(admin(op.mspId), 'PayMargin', []);
      expect(declared.status).toBe(200);
      expect(JSON.parse(declared.payload)).toMatchObject({
        mspId: op.mspId,
        marginPaidFen: 0,
        marginDeclaredFen: PARAMS.marginFen,
      });
      expect(businessEvents(declared).events).toEqual([
        { name: 'MarginDeclared', payload: { mspId: op.mspId, amountFen: PARAMS.marginFen } },
      ]);
      expect(await refused(admin(op.mspId), 'ConfirmMargin', op.mspId)).toMatchObject({
        code: 'NOT_CUSTODIAN',
      });
      const r = await peer.invoke(custodian(), 'ConfirmMargin', [op.mspId]);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.payload)).toMatchObject({ mspId: op.mspId, marginPaidFen: PARAMS.marginFen });
      expect(businessEvents(r).events).toEqual([
        { name: 'MarginPaid', payload: { mspId: op.mspId, amountFen: PARAMS.marginFen } },
      ]);
    }
    expect(await refused(admin(A), 'PayMargin')).toMatchObject({ code: 'MARGIN_ALREADY_PAID' });
    expect(await refused(custodian(), 'ConfirmMargin', A)).toMatchObject({ code: 'MARGIN_ALREADY_PAID' });
  });

  test('GetConsortium, ListParams and ListTariffs are queries: answered, nothing committed', async () => {
    const before = peer.state.fingerprint();
    const c = await query<{ operators: Array<{ mspId: string }>; pool: Record<string, number> }>(
      client(B),
      'GetConsortium',
    );
    expect(c.operators.map((o) => o.mspId).sort()).toEqual([A, B, C]);
    expect(c.pool).toMatchObject({ balanceFen: 3 * PARAMS.marginFen, movements: 3 });
    const params = await query<Array<Record<string, unknown>>>(auditor(), 'ListParams');
    expect(params).toHaveLength(1);
    expect(params[0]).toMatchObject({ ...PARAMS, version: 1 });
    const tariffs = await query<Array<Record<string, unknown>>>(client(C), 'evpay:ListTariffs');
    expect(tariffs).toHaveLength(1);
    expect(tariffs[0]).toMatchObject({ version: 1, prices: TARIFF.prices });
    expect(peer.state.fingerprint()).toBe(before);
  });
});

describe('identity from the certificate, through fabric-shim', () => {
  test('a client that puts a self-made admin certificate in front of its own is refused (BAD_IDENTITY)', async () => {
    const real = client(B);
    const forged = identity(B, 'admin', `/C=CN/O=${B}/OU=admin/CN=Admin@${B}-forged`);
    // The proposal is signed with the client's own key; a peer's MSP (Go's pem.Decode) skips the
    // forged block and validates the client certificate. The chaincode must not read the forged one.
    const disguised: Identity = { ...real, certPem: ' ' + forged.certPem + real.certPem };
    for (const [fn, arg] of [
      ['SetOperatorPolicy', JSON.stringify({ rebateWhPerBean: 1, beanSalePriceFen: 1 })],
      ['OpenWallet', JSON.stringify({ publicKey: new Driver().keys.publicKeyHex })],
    ] as const)
      expect(await refused(disguised, fn, arg)).toMatchObject({
        code: 'BAD_IDENTITY',
        category: 'UNAUTHENTICATED',
      });
  });
  test('a client certificate cannot do an admin-only transaction', async () => {
    expect(
      await refused(
        client(B),
        'SetOperatorPolicy',
        JSON.stringify({ rebateWhPerBean: 1, beanSalePriceFen: 1 }),
      ),
    ).toEqual({
      code: 'NOT_OPERATOR_ADMIN',
      category: 'FORBIDDEN',
      message: 'this action needs an operator admin identity',
      details: {},
    });
  });

  test('a subject field spelling "/OU=admin" does not make an admin; a certificate without a role is none', async () => {
    const spoof = identity(B, 'client', '/C=CN/L=Haidian\\/OU=admin/OU=client/CN=evil@BetaMSP');
    expect(await refused(spoof, 'IssueBeans', JSON.stringify({ beans: 1, reference: 'x' }))).toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    const noRole = identity(B, '');
    expect(await refused(noRole, 'IssueBeans', JSON.stringify({ beans: 1, reference: 'x' }))).toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    // ...but it is a member's identity: it may do what any member may.
    const pile = sm2GenerateKeyPair();
    await submit(noRole, 'RegisterPile', JSON.stringify({ localId: 'NR1', publicKey: pile.publicKeyHex }));
  });

  test('an MSP that is not a member is refused, reading or writing', async () => {
    const stranger = identity('StrangerMSP', 'admin');
    expect(await refused(stranger, 'GetConsortium')).toMatchObject({
      code: 'FORBIDDEN',
      category: 'FORBIDDEN',
    });
    expect(await refused(stranger, 'PayMargin')).toMatchObject({ code: 'NOT_AN_OPERATOR' });
    const r = await peer.evaluate(stranger, 'ListParams');
    expect(errorOf(r).code).toBe('FORBIDDEN');
  });

  test('the auditor MSP reads everything and writes nothing', async () => {
    expect((await query<unknown[]>(auditor(), 'ListTariffs')).length).toBe(1);
    expect(await refused(auditor(), 'SealAudit', A)).toMatchObject({ code: 'AUDITOR_READ_ONLY' });
    expect(
      await refused(
        identity(AUDITOR_MSP, 'admin'),
        'OpenWallet',
        JSON.stringify({ publicKey: sm2GenerateKeyPair().publicKeyHex }),
      ),
    ).toMatchObject({ code: 'AUDITOR_READ_ONLY', category: 'FORBIDDEN' });
  });
});

describe('errors and the runtime around the contract', () => {
  test('bad arguments come back as the JSON error with the failing field; nothing is committed', async () => {
    expect(await refused(client(A), 'OpenWallet', '{not json')).toMatchObject({
      code: 'INVALID_ARGUMENT',
      category: 'INVALID_ARGUMENT',
    });
    const e = await refused(
      client(A),
      'TopUp',
      JSON.stringify({ walletId: 'ab', amountFen: 1, reference: 'r' }),
    );
    expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', details: { path: 'walletId' } });
    const unknownField = await refused(
      client(A),
      'OpenWallet',
      JSON.stringify({ publicKey: '04', extra: 1 }),
    );
    expect(unknownField.code).toBe('INVALID_ARGUMENT');
    expect(await refused(client(A), 'GetPile', 'no-dot')).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  test('fabric-contract-api refuses an unknown function and a wrong argument count before any rule runs', async () => {
    const before = peer.state.fingerprint();
    const unknown = await peer.invoke(client(A), 'NoSuchTransaction', []);
    expect(unknown.status).toBe(500);
    expect(unknown.message).toMatch(/function that does not exist: NoSuchTransaction/);
    const arity = await peer.invoke(client(A), 'GetPile', []);
    expect(arity.status).toBe(500);
    expect(arity.message).toMatch(/Expected 1 parameters, but 0 have been supplied/);
    const contract = await peer.invoke(client(A), 'nosuch:GetConsortium', []);
    expect(contract.status).toBe(500);
    expect(contract.message).toMatch(/Contract name is not known: nosuch/);
    expect(peer.state.fingerprint()).toBe(before);
  });

  // Found here: fabric-contract-api 2.5.8 asks for class-transformer ^0.4.0, and 0.4.1 no longer exports
  // classToPlain, so GetMetadata (what tooling calls) failed. package.json pins 0.4.0 with "overrides".
  test('the system contract answers GetMetadata with every evpay transaction', async () => {
    const r = await peer.evaluate(client(A), 'org.hyperledger.fabric:GetMetadata');
    expect(r.message).toBe('');
    expect(r.status).toBe(200);
    const meta = JSON.parse(r.payload) as {
      contracts: Record<
        string,
        {
          transactions: Array<{
            name: string;
            parameters?: Array<{ name: string; description: string; schema: Record<string, unknown> }>;
            returns?: Record<string, unknown>;
          }>;
        }
      >;
    };
    const txs = meta.contracts.evpay?.transactions ?? [];
    expect(txs.map((t) => t.name)).toContain('StartSession');
    // Every argument: a string on the wire, described by the registry's JSON Schema (domain/api.ts).
    const schemas = transactionJsonSchemas();
    expect(txs.map((t) => t.name).sort()).toEqual(Object.keys(schemas).sort());
    for (const t of txs)
      for (const p of t.parameters ?? [])
        expect([t.name, p.name, p.schema]).toEqual([
          t.name,
          p.name,
          {
            type: 'string',
            contentMediaType: expect.any(String) as unknown,
            contentSchema: schemas[t.name as EvPayTransactionName][p.name],
          },
        ]);
    const start = txs.find((t) => t.name === 'StartSession');
    expect(start?.parameters?.[0]).toMatchObject({
      name: 'start',
      description: expect.stringContaining('evpayTransactions.StartSession') as unknown,
      schema: {
        contentMediaType: 'application/json',
        contentSchema: {
          type: 'object',
          additionalProperties: false,
          // authorization or standing: one of the two, checked by the rule (sessions.ts)
          required: ['startReading'],
        },
      },
    });
    expect(start?.returns).toMatchObject({ type: 'string', contentMediaType: 'application/json' });
    expect(
      txs.find((t) => t.name === 'GetSession')?.parameters?.map((p) => p.schema.contentMediaType),
    ).toEqual(['text/plain', 'text/plain']);
  });

  test('the described schemas are not enforced by fabric-shim: a bad argument is our INVALID_ARGUMENT', async () => {
    expect(errorOf(await peer.evaluate(client(A), 'GetPile', ['no-dot'])).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(await peer.evaluate(client(A), 'ListPiles', ['{"mspId":'])).code).toBe('INVALID_ARGUMENT');
  });

  test('evaluate simulates a write without committing it', async () => {
    const before = peer.state.fingerprint();
    const keys = sm2GenerateKeyPair();
    const r = await peer.evaluate(client(A), 'OpenWallet', [
      JSON.stringify({ publicKey: keys.publicKeyHex }),
    ]);
    expect(r.status).toBe(200);
    const wallet = JSON.parse(r.payload) as { walletId: string };
    expect(r.event?.name).toBe('evpay'); // the chaincode set it; nothing committed, so nobody sees it
    expect(r.committed).toBe(false);
    expect(peer.state.fingerprint()).toBe(before);
    expect(errorOf(await peer.evaluate(client(A), 'GetWallet', [wallet.walletId])).code).toBe(
      'WALLET_NOT_FOUND',
    );
  });

  test("the peer-clock gate: a proposal stamped more than 300 s from the chaincode's clock is refused", async () => {
    const now = peer.now();
    for (const skew of [-3600, -301, 400]) {
      const r = await peer.evaluate(client(A), 'ListParams', [], { txTimeSeconds: now + skew });
      expect(errorOf(r)).toMatchObject({ code: 'TX_TIME_SKEW', category: 'PRECONDITION' });
    }
    for (const skew of [-250, 250])
      expect((await peer.evaluate(client(A), 'ListParams', [], { txTimeSeconds: now + skew })).status).toBe(
        200,
      );
  });
});

describe('range queries across 100-result batches, and key history', () => {
  const PILES = 150;
  const localId = (i: number): string => `P${String(i).padStart(3, '0')}`;

  test(`ListPiles over ${PILES} piles: the peer answers in batches of 100 and the shim asks for the rest`, async () => {
    for (let i = 0; i < PILES; i++)
      await submit(
        client(C),
        'RegisterPile',
        JSON.stringify({ localId: localId(i), publicKey: sm2GenerateKeyPair().publicKeyHex }),
      );
    const [all, msgs] = await counting(['GET_STATE_BY_RANGE', 'QUERY_STATE_NEXT', 'QUERY_STATE_CLOSE'], () =>
      query<{ piles: Pile[]; next?: string }>(auditor(), 'ListPiles', JSON.stringify({ mspId: C })),
    );
    expect(all.piles.map((p) => p.pileId)).toEqual(
      Array.from({ length: PILES }, (_, i) => `${C}.${localId(i)}`),
    );
    expect(all.next).toBeUndefined();
    // One range request, one QUERY_STATE_NEXT for the second batch of 50, and no QUERY_STATE_CLOSE: the
    // peer closed the exhausted query itself (contracts/peerState.ts).
    expect(msgs).toEqual({ GET_STATE_BY_RANGE: 1, QUERY_STATE_NEXT: 1, QUERY_STATE_CLOSE: 0 });
    const rest = await query<{ piles: Pile[] }>(
      client(A),
      'ListPiles',
      JSON.stringify({ mspId: C, after: localId(119) }),
    );
    expect(rest.piles.map((p) => p.pileId)).toEqual(
      Array.from({ length: PILES - 120 }, (_, i) => `${C}.${localId(120 + i)}`),
    );
  });

  test('SealAudit reads more than 100 pending records through the iterator and deletes them', async () => {
    const pendingBefore = peer.state.keys(`auditpending/${C}/`);
    expect(pendingBefore.length).toBeGreaterThan(PILES);
    const pendingKey = pendingBefore[0] ?? '';
    const pendingValue = peer.state.json<Record<string, unknown>>(pendingKey);
    expect(pendingValue).toMatchObject({ mspId: C });
    const [sealed, msgs] = await counting(
      ['QUERY_STATE_NEXT', 'WRITE_BATCH_STATE', 'batched DEL_STATE'],
      () => submit<{ sealed: number; head: { seq: number; chain: string } }>(client(A), 'SealAudit', C),
    );
    expect(sealed.sealed).toBe(pendingBefore.length);
    expect(msgs.QUERY_STATE_NEXT).toBeGreaterThanOrEqual(1);
    // Every delete, and the chain's writes, in one WRITE_BATCH_STATE (the peer offered batches in READY).
    expect(msgs.WRITE_BATCH_STATE).toBe(1);
    expect(msgs['batched DEL_STATE']).toBe(pendingBefore.length);
    expect(peer.state.keys(`auditpending/${C}/`)).toEqual([]);
    const records = await query<AuditRecord[]>(auditor(), 'ListAuditRecords', C, '1');
    expect(records).toHaveLength(sealed.head.seq);
    expect(verifyAuditChain(records)).toEqual({ ok: true, verified: sealed.head.seq });
    expect(await query<{ seq: number; chain: string }>(auditor(), 'GetAuditHead', C)).toEqual(sealed.head);

    // The history of a sealed (deleted) pending record: the delete first, then the write.
    const h = await query<Array<{ txId: string; isDelete: boolean; timestamp: number; value: unknown }>>(
      auditor(),
      'KeyHistory',
      pendingKey,
    );
    expect(h.map((e) => e.isDelete)).toEqual([true, false]);
    expect(h[0]?.value).toBeNull();
    expect(h[1]?.value).toEqual(pendingValue);
  });

  test('KeyHistory: every committed version, newest first, with tx id and proposal time, across batches', async () => {
    const pileId = `${C}.${localId(0)}`;
    const txIds: string[] = [];
    const times: number[] = [];
    // 101 status changes + the registration = 102 versions: two history batches.
    for (let i = 0; i < 101; i++) {
      const r = await peer.invoke(client(C), 'SetPileStatus', [
        JSON.stringify({ pileId, status: i % 2 === 0 ? 'suspended' : 'active' }),
      ]);
      expect(r.status).toBe(200);
      txIds.push(r.txId);
      times.push(peer.now());
    }
    const [history, msgs] = await counting(['GET_HISTORY_FOR_KEY', 'QUERY_STATE_NEXT'], () =>
      query<Array<{ txId: string; isDelete: boolean; timestamp: number; value: Pile }>>(
        auditor(),
        'KeyHistory',
        `pile/${pileId}`,
      ),
    );
    expect(msgs).toEqual({ GET_HISTORY_FOR_KEY: 1, QUERY_STATE_NEXT: 1 });
    expect(history).toHaveLength(102);
    expect(history.slice(0, 101).map((e) => e.txId)).toEqual([...txIds].reverse());
    // Changes 1, 3, ..., 101 suspended the pile.
    expect(history[0]).toMatchObject({ isDelete: false, value: { pileId, status: 'suspended' } });
    expect(history[1]?.value.status).toBe('active');
    expect(history[101]?.value.registeredAt).toBe(history[101]?.timestamp);
    // Timestamps are the proposals' (whole seconds), not the commit's.
    expect(Math.abs((history[0]?.timestamp ?? 0) - (times[100] ?? 0))).toBeLessThanOrEqual(1);
  });
  test('a full page of 500 piles: the chaincode stops early, fabric-shim closes the open peer iterator', async () => {
    const TOTAL = 520;
    for (let i = PILES; i < TOTAL; i++)
      await submit(
        client(C),
        'RegisterPile',
        JSON.stringify({ localId: localId(i), publicKey: sm2GenerateKeyPair().publicKeyHex }),
      );
    const [page, msgs] = await counting(['GET_STATE_BY_RANGE', 'QUERY_STATE_NEXT', 'QUERY_STATE_CLOSE'], () =>
      query<{ piles: Pile[]; next?: string }>(auditor(), 'ListPiles', JSON.stringify({ mspId: C })),
    );
    expect(page.piles).toHaveLength(500);
    expect(page.next).toBe(localId(499));
    // Five batches of 100 read, the sixth never asked for: the loop broke and the iterator was closed.
    expect(msgs).toEqual({ GET_STATE_BY_RANGE: 1, QUERY_STATE_NEXT: 4, QUERY_STATE_CLOSE: 1 });
    const rest = await query<{ piles: Pile[]; next?: string }>(
      auditor(),
      'ListPiles',
      JSON.stringify({ mspId: C, after: page.next }),
    );
    expect(rest.piles.map((p) => p.pileId)).toEqual(
      Array.from({ length: TOTAL - 500 }, (_, i) => `${C}.${localId(500 + i)}`),
    );
    expect(rest.next).toBeUndefined();
  });
});

describe('the issue, end to end through the shim: top up at A, charge at B, beans, envelope, clearing', () => {
  const driver = new Driver();
  const pileA = new PileDevice(`${A}.A001`);
  const pileB = new PileDevice(`${B}.B001`);
  const period = periodOf(T0, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
  const [, endsAt] = periodBounds(period, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
  const json = (v: unknown): string => JSON.stringify(v);
  const beansOf = async (walletId: string, issuer: string): Promise<number> =>
    (await query<WalletView>(auditor(), 'GetWallet', walletId)).beans.find((b) => b.issuer === issuer)
      ?.beans ?? 0;

  test('piles at A and B, a wallet opened at A, 100 yuan topped up at A', async () => {
    for (const [op, pile] of [
      [A, pileA],
      [B, pileB],
    ] as const)
      await submit(
        client(op),
        'RegisterPile',
        json({ localId: pile.localId, publicKey: pile.keys.publicKeyHex }),
      );
    const opened = await peer.invoke(client(A), 'OpenWallet', [
      json({ publicKey: driver.keys.publicKeyHex }),
    ]);
    expect(JSON.parse(opened.payload)).toMatchObject({ walletId: driver.walletId, balanceFen: 0 });
    expect(businessEvents(opened).events).toEqual([
      { name: 'WalletOpened', payload: { walletId: driver.walletId } },
    ]);
    const topUp = json({ walletId: driver.walletId, amountFen: 10_000, reference: 'pay-1' });
    expect(await submit<Wallet>(client(A), 'TopUp', topUp)).toMatchObject({ balanceFen: 10_000 });
    expect(await refused(client(A), 'TopUp', topUp)).toMatchObject({ code: 'REFERENCE_REPLAYED' });
  });

  test('B earns a reward, issues beans it backs, sets a rebate policy and funds its pile', async () => {
    await outOfBand({ mspId: B, role: 'client', id: 'incentive-layer' }, (tx) =>
      creditReward(tx, B, 'block-1', 5_000),
    );
    expect(await query<{ limit: number }>(client(B), 'GetIssuance', B)).toMatchObject({
      limit: 50,
      issued: 0,
    });
    await submit(admin(B), 'IssueBeans', json({ beans: 50, reference: 'issue-1' }));
    expect(await refused(admin(B), 'IssueBeans', json({ beans: 1, reference: 'issue-2' }))).toMatchObject({
      code: 'ISSUANCE_LIMIT_EXCEEDED',
    });
    await submit(admin(B), 'SetOperatorPolicy', json({ rebateWhPerBean: 5_000, beanSalePriceFen: 90 }));
    const pile = await submit<Pile>(
      admin(B),
      'AllocateRebateFloat',
      json({ pileId: pileB.pileId, beans: 10, reference: 'float-1' }),
    );
    expect(pile.rebateFloat).toBe(10);
  });

  test("charging 20 kWh at B's pile: 3000 fen from the wallet and 4 of B's beans as rebate", async () => {
    const stateMessages = [
      'GET_STATE',
      'GET_STATE_MULTIPLE',
      'GET_STATE_BY_RANGE',
      'QUERY_STATE_CLOSE',
      'PUT_STATE',
      'DEL_STATE',
      'WRITE_BATCH_STATE',
    ];
    const [started, startMsgs] = await counting(stateMessages, () =>
      peer.invoke(client(B), 'StartSession', [
        json({
          authorization: driver.authorize(pileB.pileId, 5_000, T0 + HOUR, 'story-s1'),
          startReading: pileB.reading('START', 's1', 0, T0),
        }),
      ]),
    );
    expect(started.status).toBe(200);
    // contracts/peerState.ts: the start's seven keys in one read, the tariff and parameter versions by
    // range, every write in one message (fabric-shim alone sent 18 messages).
    expect(startMsgs).toEqual({
      GET_STATE: 0,
      GET_STATE_MULTIPLE: 1,
      GET_STATE_BY_RANGE: 2,
      QUERY_STATE_CLOSE: 0,
      PUT_STATE: 0,
      DEL_STATE: 0,
      WRITE_BATCH_STATE: 1,
    });
    expect(JSON.parse(started.payload)).toMatchObject({
      sessionId: 's1',
      pileId: pileB.pileId,
      status: 'open',
    });
    expect(businessEvents(started).events).toEqual([
      {
        name: 'SessionStarted',
        payload: { sessionId: 's1', pileId: pileB.pileId, walletId: driver.walletId },
      },
    ]);
    expect((await query<WalletView>(client(A), 'GetWallet', driver.walletId)).wallet.heldFen).toBe(5_000);

    await peer.setTime(T0 + HOUR); // an hour of charging
    const [stopped, stopMsgs] = await counting(stateMessages, () =>
      peer.invoke(client(B), 'StopSession', [
        json({ stopReading: pileB.reading('STOP', 's1', 20_000, T0 + HOUR) }),
      ]),
    );
    expect(stopped.status).toBe(200);
    // Session, membership and pile; then tariff, wallet, beans; then the clearing period's two keys.
    expect(stopMsgs).toEqual({
      GET_STATE: 0,
      GET_STATE_MULTIPLE: 3,
      GET_STATE_BY_RANGE: 1,
      QUERY_STATE_CLOSE: 0,
      PUT_STATE: 0,
      DEL_STATE: 0,
      WRITE_BATCH_STATE: 1,
    });
    const s = JSON.parse(stopped.payload) as Session;
    expect(s.settlement).toMatchObject({
      energyWh: 20_000,
      beansUsed: 0,
      chargedFen: 3_000,
      rebateBeans: 4,
      uncollectedFen: 0,
      period,
    });
    expect(s.settlement?.price).toEqual({
      totalFen: 3_000,
      energyFen: 1_400,
      serviceFen: 1_600,
      whByKind: { peak: 0, flat: 20_000, valley: 0 },
    });
    // One chaincode event carries both business events of the settlement.
    expect(businessEvents(stopped).events).toEqual([
      {
        name: 'SessionSettled',
        payload: {
          sessionId: 's1',
          pileId: pileB.pileId,
          walletId: driver.walletId,
          energyWh: 20_000,
          chargedFen: 3_000,
          beansUsed: 0,
        },
      },
      {
        name: 'BeansCredited',
        payload: { walletId: driver.walletId, issuer: B, beans: 4, reason: 'rebate' },
      },
    ]);
    const w = await query<WalletView>(client(A), 'GetWallet', driver.walletId);
    expect(w.wallet).toMatchObject({ balanceFen: 7_000, heldFen: 0 });
    expect(w.beans).toEqual([{ walletId: driver.walletId, issuer: B, beans: 4 }]);
    expect(await query<Session>(auditor(), 'GetSession', pileB.pileId, 's1')).toMatchObject({
      status: 'settled',
    });
  });

  test("the beans are redeemed at B's pile: 3 whole beans cover 3 of 3.5 kWh", async () => {
    const t1 = T0 + HOUR + 60;
    await submit(
      client(B),
      'StartSession',
      json({
        authorization: driver.authorize(pileB.pileId, 1_000, t1 + 600, 'story-s2', 10),
        startReading: pileB.reading('START', 's2', 20_000, t1),
      }),
    );
    await peer.setTime(t1 + 600);
    const s = await submit<Session>(
      client(B),
      'StopSession',
      json({ stopReading: pileB.reading('STOP', 's2', 23_500, t1 + 600) }),
    );
    // 3.5 kWh x 150 = 525 fen; 3 beans cover 3000 of 3500 Wh -> 450 fen; the wallet pays 75.
    expect(s.settlement).toMatchObject({
      energyWh: 3_500,
      beansUsed: 3,
      beanValueFen: 450,
      chargedFen: 75,
      rebateBeans: 0,
    });
    expect(await beansOf(driver.walletId, B)).toBe(1);
  });

  test("B's beans are not redeemable at A's pile: A's session is paid in money only", async () => {
    const t2 = T0 + 2 * HOUR; // 10:00 local: peak (190 fen/kWh)
    await peer.setTime(t2);
    await submit(
      client(A),
      'StartSession',
      json({
        authorization: driver.authorize(pileA.pileId, 2_000, t2 + HOUR, 'story-a1', 10),
        startReading: pileA.reading('START', 'a1', 1_000, t2),
      }),
    );
    await peer.setTime(t2 + 1800);
    const s = await submit<Session>(
      client(A),
      'StopSession',
      json({ stopReading: pileA.reading('STOP', 'a1', 6_000, t2 + 1800) }),
    );
    expect(s.settlement).toMatchObject({ energyWh: 5_000, beansUsed: 0, beanValueFen: 0, chargedFen: 950 });
    expect(await beansOf(driver.walletId, B)).toBe(1);
    expect((await query<WalletView>(client(A), 'GetWallet', driver.walletId)).wallet.balanceFen).toBe(
      10_000 - 3_000 - 75 - 950,
    );
  });

  test('a red envelope of 9 beans from B is claimed by three wallets, once each', async () => {
    const friends = [new Driver(), new Driver(), new Driver()];
    for (const f of friends) await submit(client(B), 'OpenWallet', json({ publicKey: f.keys.publicKeyHex }));
    const exp = peer.now() + HOUR;
    const env = await submit<Envelope>(
      admin(B),
      'CreateEnvelope',
      json({ envelopeId: 'newyear', totalBeans: 9, claimants: 3, split: 'random', expiresAt: exp }),
    );
    expect(env.amounts.reduce((a, b) => a + b, 0)).toBe(9);
    const got: number[] = [];
    for (const f of friends) {
      const r = await peer.invoke(client(A), 'ClaimEnvelope', [json(f.claim('newyear', exp))]);
      const { beans } = JSON.parse(r.payload) as { beans: number };
      expect(businessEvents(r).events).toEqual([
        { name: 'EnvelopeClaimed', payload: { envelopeId: 'newyear', walletId: f.walletId, beans } },
        { name: 'BeansCredited', payload: { walletId: f.walletId, issuer: B, beans, reason: 'envelope' } },
      ]);
      got.push(beans);
    }
    const byValue = (a: number, b: number) => a - b;
    expect([...got].sort(byValue)).toEqual([...env.amounts].sort(byValue));
    expect(await refused(client(A), 'ClaimEnvelope', json(friends[0]?.claim('newyear', exp)))).toMatchObject({
      code: 'ENVELOPE_ALREADY_CLAIMED',
    });
    expect(await refused(client(A), 'ClaimEnvelope', json(driver.claim('newyear', exp)))).toMatchObject({
      code: 'ENVELOPE_EMPTY',
    });
    for (const [i, f] of friends.entries()) expect(await beansOf(f.walletId, B)).toBe(got[i]);
    expect(await refused(client(B), 'CloseEnvelope', 'newyear')).toMatchObject({
      code: 'ENVELOPE_NOT_EXPIRED',
    });
    await peer.setTime(exp);
    expect(await submit<Envelope>(client(C), 'CloseEnvelope', 'newyear')).toMatchObject({
      status: 'closed',
      returnedBeans: 0,
    });
  });

  test('lookups: sessions by wallet carry their pile; by operator and clearing period', async () => {
    const byWallet = await query<Session[]>(
      auditor(),
      'FindSessions',
      json({ by: 'wallet', walletId: driver.walletId }),
    );
    expect(byWallet.map((s) => [s.pileId, s.sessionId])).toEqual([
      [pileB.pileId, 's1'],
      [pileB.pileId, 's2'],
      [pileA.pileId, 'a1'],
    ]);
    const atB = await query<Session[]>(auditor(), 'FindSessions', json({ by: 'operator', mspId: B, period }));
    expect(atB.map((s) => s.sessionId)).toEqual(['s1', 's2']);
  });

  test('clearing: the period closes after its end and grace; A owes B; both sides confirm', async () => {
    const grace = endsAt + PARAMS.clearingGraceSec;
    await peer.setTime(grace - 30);
    // One second before the grace time is over is still too early (the proposal time is the client's).
    expect(
      errorOf(await peer.invoke(client(A), 'ClosePeriod', [String(period)], { txTimeSeconds: grace - 1 })),
    ).toMatchObject({ code: 'PERIOD_NOT_ENDED' });
    const closed = await peer.invoke(client(C), 'ClosePeriod', [String(period)], { txTimeSeconds: grace });
    expect(closed.status).toBe(200);
    const r = JSON.parse(closed.payload) as ClearingResult;
    expect(r.positions[A]).toMatchObject({ topUpCashFen: 10_000, energyRevenueFen: 950, dueFen: -9_050 });
    expect(r.positions[B]).toMatchObject({
      energyRevenueFen: 3_075,
      beansRedeemed: 3,
      beansRedeemedValueFen: 450,
      rewardsFen: 5_000,
      dueFen: 8_075,
    });
    expect(r.poolDueFen).toBe(9_050 - 8_075);
    expect(r.transfers).toEqual([
      { index: 0, from: A, to: B, amountFen: 8_075 },
      { index: 1, from: A, to: POOL, amountFen: 975 },
    ]);
    expect(businessEvents(closed).events).toEqual([
      { name: 'ClearingPeriodClosed', payload: { period, transfers: 2 } },
    ]);
    const again = await peer.invoke(client(A), 'ClosePeriod', [String(period)], { txTimeSeconds: grace + 1 });
    expect(errorOf(again)).toMatchObject({ code: 'PERIOD_CLOSED' });

    const confirm = (index: number, side: 'payer' | 'payee'): string[] => [json({ period, index, side })];
    expect(await refused(admin(B), 'ConfirmTransfer', ...confirm(0, 'payer'))).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(await refused(client(A), 'ConfirmTransfer', ...confirm(0, 'payer'))).toMatchObject({
      code: 'NOT_OPERATOR_ADMIN',
    });
    expect(await submit(admin(A), 'ConfirmTransfer', ...confirm(0, 'payer'))).toMatchObject({
      complete: false,
    });
    const second = await peer.invoke(admin(B), 'ConfirmTransfer', confirm(0, 'payee'));
    expect(JSON.parse(second.payload)).toMatchObject({ complete: true });
    expect(businessEvents(second).events).toEqual([
      { name: 'ClearingTransferConfirmed', payload: { period, index: 0, side: 'payee', complete: true } },
    ]);
    expect(await refused(admin(B), 'ConfirmTransfer', ...confirm(0, 'payee'))).toMatchObject({
      code: 'ALREADY_CONFIRMED',
    });
    // A -> pool: A confirms it paid; the pool's side needs the custodian's word, no operator's (not C's).
    await submit(admin(A), 'ConfirmTransfer', ...confirm(1, 'payer'));
    for (const who of [A, C])
      expect(await refused(admin(who), 'ConfirmTransfer', ...confirm(1, 'payee'))).toMatchObject({
        code: 'FORBIDDEN',
      });
    await submit(custodian(), 'ConfirmTransfer', ...confirm(1, 'payee'));
    const status = await query<{ result: ClearingResult; transfers: Array<{ complete: boolean }> }>(
      auditor(),
      'GetClearing',
      String(period),
    );
    expect(status.result.transfers).toEqual(r.transfers);
    expect(status.transfers.map((t) => t.complete)).toEqual([true, true]);
  });

  test('the driver is paid out the rest of the wallet by B, the operator its signed refund names', async () => {
    const before = (await query<WalletView>(auditor(), 'GetWallet', driver.walletId)).wallet;
    expect(before.heldFen).toBe(0);
    const refund = json(driver.refund(B, before.balanceFen, peer.now() + 60));
    expect(await refused(client(A), 'RefundWallet', refund)).toMatchObject({ code: 'FORBIDDEN' });
    const r = await peer.invoke(client(B), 'RefundWallet', [refund]);
    expect(JSON.parse(r.payload)).toMatchObject({ walletId: driver.walletId, balanceFen: 0 });
    expect(businessEvents(r).events).toEqual([
      {
        name: 'WalletRefunded',
        payload: { walletId: driver.walletId, amountFen: before.balanceFen, operator: B },
      },
    ]);
    expect(await refused(client(B), 'RefundWallet', refund)).toMatchObject({ code: 'NONCE_REUSED' });
    const next = periodOf(peer.now(), PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
    const { positions } = await query<{
      positions: Record<string, { refundCashFen: number; dueFen: number }>;
    }>(auditor(), 'GetPositions', json({ period: next }));
    expect(positions[B]).toMatchObject({ refundCashFen: before.balanceFen, dueFen: before.balanceFen });
  });

  test("audit: A's and B's records chain under SM3 when sealed through the shim", async () => {
    for (const op of [A, B]) {
      const { head } = await submit<{ sealed: number; head: { seq: number } }>(client(C), 'SealAudit', op);
      const records = await query<AuditRecord[]>(auditor(), 'ListAuditRecords', op, '1');
      expect(records).toHaveLength(head.seq);
      expect(verifyAuditChain(records)).toEqual({ ok: true, verified: head.seq });
    }
  });
});

describe('session rejections through the shim (nothing is committed)', () => {
  const driver = new Driver();
  const pile = new PileDevice(`${B}.R001`);
  const other = new PileDevice(`${B}.R002`);
  const json = (v: unknown): string => JSON.stringify(v);
  let t: number;

  beforeAll(async () => {
    for (const p of [pile, other])
      await submit(client(B), 'RegisterPile', json({ localId: p.localId, publicKey: p.keys.publicKeyHex }));
    await submit(client(B), 'OpenWallet', json({ publicKey: driver.keys.publicKeyHex }));
    await submit(
      client(B),
      'TopUp',
      json({ walletId: driver.walletId, amountFen: 5_000, reference: 'rej-1' }),
    );
    t = peer.now();
    await submit(
      client(B),
      'StartSession',
      json({
        authorization: driver.authorize(pile.pileId, 1_000, t + 600, 'rej-n1'),
        startReading: pile.reading('START', 'r1', 1_000, t),
      }),
    );
  });

  test('an altered reading, a reading signed by another pile, a meter going backwards', async () => {
    const good = pile.reading('STOP', 'r1', 2_000, t + 60);
    expect(
      await refused(client(B), 'StopSession', json({ stopReading: { ...good, meterWh: 20_000 } })),
    ).toMatchObject({
      code: 'BAD_SIGNATURE',
      category: 'UNAUTHENTICATED',
    });
    expect(
      await refused(
        client(B),
        'StopSession',
        json({ stopReading: pile.reading('STOP', 'r1', 2_000, t + 60, other.keys) }),
      ),
    ).toMatchObject({ code: 'BAD_SIGNATURE' });
    expect(
      await refused(client(B), 'StopSession', json({ stopReading: pile.reading('STOP', 'r1', 999, t + 60) })),
    ).toMatchObject({ code: 'METER_WENT_BACKWARDS' });
    // Another operator cannot settle it, even with the pile's genuine reading.
    expect(await refused(client(A), 'StopSession', json({ stopReading: good }))).toMatchObject({
      code: 'NOT_PILE_OPERATOR',
    });
    // Too early to close as stale; the new pileId field names the pile.
    expect(
      await refused(client(B), 'CloseStaleSession', json({ pileId: pile.pileId, sessionId: 'r1' })),
    ).toMatchObject({ code: 'SESSION_NOT_STALE' });
    const s = await submit<Session>(client(B), 'StopSession', json({ stopReading: good }));
    expect(s.settlement).toMatchObject({ energyWh: 1_000 });
    // The same stop reading again: the session settles exactly once.
    expect(await refused(client(B), 'StopSession', json({ stopReading: good }))).toMatchObject({
      code: 'SESSION_ALREADY_SETTLED',
    });
  });

  test('a replayed start reading, an expired authorization, a reused nonce', async () => {
    const now = peer.now();
    const at = t + 120; // after the stop reading of r1 (t + 60), within 300 s of now
    // The old start reading with a fresh authorization: the pile's meter has moved on.
    expect(
      await refused(
        client(B),
        'StartSession',
        json({
          authorization: driver.authorize(pile.pileId, 1_000, now + 600, 'rej-n2'),
          startReading: pile.reading('START', 'r1', 1_000, t),
        }),
      ),
    ).toMatchObject({ code: 'METER_WENT_BACKWARDS' });
    expect(
      await refused(
        client(B),
        'StartSession',
        json({
          authorization: driver.authorize(pile.pileId, 1_000, now - 60, 'rej-n3'),
          startReading: pile.reading('START', 'r2', 2_000, at),
        }),
      ),
    ).toMatchObject({ code: 'AUTHORIZATION_EXPIRED', category: 'PRECONDITION' });
    expect(
      await refused(
        client(B),
        'StartSession',
        json({
          authorization: driver.authorize(pile.pileId, 1_000, now + 600, 'rej-n1'),
          startReading: pile.reading('START', 'r2', 2_000, at),
        }),
      ),
    ).toMatchObject({ code: 'NONCE_REUSED', category: 'CONFLICT' });
    // The same, correctly: it opens.
    await submit(
      client(B),
      'StartSession',
      json({
        authorization: driver.authorize(pile.pileId, 1_000, now + 600, 'rej-n4'),
        startReading: pile.reading('START', 'r2', 2_000, at),
      }),
    );
  });

  test('a driver revokes an unused authorization; a stale session closes on its last recorded reading', async () => {
    const now = peer.now();
    const unused = driver.authorize(pile.pileId, 1_000, now + 600, 'rej-n5');
    await submit(client(A), 'RevokeAuthorization', json(driver.revoke('rej-n5')));
    expect(await refused(client(A), 'RevokeAuthorization', json(driver.revoke('rej-n5')))).toMatchObject({
      code: 'NONCE_REUSED',
    });
    expect(unused.nonce).toBe('rej-n5');
    // The operator records the pile's PROGRESS reading of the open session r2 as it comes.
    const progress = pile.reading('PROGRESS', 'r2', 2_500, t + 180); // r2 started at t + 120
    const recorded = await submit<Session>(client(B), 'RecordReading', json({ reading: progress }));
    expect(recorded.last).toMatchObject({ meterWh: 2_500, readAt: t + 180 });
    expect(await refused(client(B), 'RecordReading', json({ reading: progress }))).toMatchObject({
      code: 'READING_OUT_OF_ORDER',
    });
    await peer.setTime(peer.now() + PARAMS.sessionMaxOpenSec + 60);
    const s = await submit<Session>(
      client(B),
      'CloseStaleSession',
      json({ pileId: pile.pileId, sessionId: 'r2' }),
    );
    expect(s).toMatchObject({
      status: 'settled',
      settlement: { closedAsStale: true, energyWh: 500 },
    });
    expect((await query<WalletView>(auditor(), 'GetWallet', driver.walletId)).wallet).toMatchObject({
      heldFen: 0,
    });
  });
});
