/**
 * The gateway's pure parts, fast: configuration validation, API-key credentials (scrypt, reload,
 * revocation), and how a route and a request become a validated contract call (the chaincode's own
 * schemas, pile scope, the acting identity). The HTTP layer itself is tested on the running network
 * (test/network/gateway*.test.ts).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialStore, type Principal } from '../src/auth/credentials';
import { ConfigError, loadConfig } from '../src/config';
import { networkIdOf } from '../src/fabric/orgLedger';
import { openApiDocument, openApiPath, pathParameters } from '../src/http/openapi';
import { ApiError, chaincodeStatus } from '../src/http/problems';
import { NOT_ROUTED, routes, type Route } from '../src/http/routes';
import { prepareCall, parseQuery } from '../src/http/transactions';

const dir = (): string => mkdtempSync(join(tmpdir(), 'evpay-gw-'));

describe('configuration', () => {
  const valid = {
    mspId: 'AlphaMSP',
    role: 'operator',
    listen: { port: 8081 },
    peer: { endpoint: '127.0.0.1:7051', hostname: 'peer0.alpha', tlsCACert: 'tls/ca.crt' },
    channel: 'evpay',
    chaincode: 'evpay',
    identities: { client: { certPath: 'user/cert.pem', keyDir: 'user/keystore' } },
    dataDir: 'data',
  };

  test('defaults are filled, relative paths resolved against the file, the environment overrides', () => {
    const d = dir();
    const file = join(d, 'gateway.json');
    writeFileSync(file, JSON.stringify(valid));
    const c = loadConfig(file, { EVPAY_GATEWAY_PORT: '9090' });
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(c.dataDir).toBe(join(d, 'data'));
    expect(c.peer.tlsCACert).toBe(join(d, 'tls/ca.crt'));
    expect(c.limits).toMatchObject({ requestsPerMinute: 600, bodyBytes: 65_536, mvccRetries: 3 });
  });

  test('every problem is named, with its path; unknown keys are refused', () => {
    const file = join(dir(), 'gateway.json');
    writeFileSync(file, JSON.stringify({ ...valid, role: 'bank', listen: { port: 0 }, extra: 1 }));
    let message = '';
    try {
      loadConfig(file, {});
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/role:/);
    expect(message).toMatch(/listen\.port:/);
    expect(message).toMatch(/extra/);
    expect(() => loadConfig(join(dir(), 'missing.json'), {})).toThrow(/cannot read gateway configuration/);
  });
});

describe('credentials', () => {
  test('a key authenticates once created, never with another secret, and no more once revoked', async () => {
    const d = dir();
    const store = new CredentialStore(d);
    const { credential, apiKey } = await store.create({
      name: 'site 1',
      role: 'pile-backend',
      piles: ['AlphaMSP.P1'],
    });
    expect(apiKey).toMatch(/^evk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    // Only a slow hash is stored, never the secret.
    const file = readFileSync(join(d, 'credentials.json'), 'utf8');
    expect(file).not.toContain(apiKey.split('_').slice(2).join('_'));
    expect(file).toContain('scrypt$32768$8$1$');
    expect(await store.authenticate(apiKey)).toEqual({
      id: credential.id,
      name: 'site 1',
      role: 'pile-backend',
      piles: ['AlphaMSP.P1'],
    });
    const wrong = apiKey.slice(0, -1) + (apiKey.endsWith('A') ? 'B' : 'A');
    expect(await store.authenticate(wrong)).toBeUndefined();
    expect(await store.authenticate('evk_nonsense')).toBeUndefined();
    // Revoked by another process (the CLI): the running store sees the file change.
    expect(new CredentialStore(d).revoke(credential.id)).toBe(true);
    expect(await store.authenticate(apiKey)).toBeUndefined();
    expect(new CredentialStore(d).revoke('0000000000000000')).toBe(false);
  });
});

describe('from a request to a contract call', () => {
  const route = (tx: string, method = 'post'): Route => {
    const r = routes.find((x) => x.tx === tx && x.method === method);
    if (!r) throw new Error(`no route for ${tx}`);
    return r;
  };
  const admin: Principal = { id: 'a', name: 'ops', role: 'operator-admin' };
  const piles: Principal = { id: 'p', name: 'site', role: 'pile-backend', piles: ['AlphaMSP.P1'] };
  const code = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      if (e instanceof ApiError) return e.code;
      throw e;
    }
    return 'no error';
  };
  const walletId = 'a'.repeat(64);

  test("bodies are checked with the chaincode's own schemas: unknown fields, wrong types, negative money", () => {
    const topUp = route('TopUp');
    const input = (body: unknown) => ({ params: {}, query: {}, body });
    const good = prepareCall(topUp, input({ walletId, amountFen: 100, reference: 'r1' }), admin, 'AlphaMSP');
    expect(good).toMatchObject({ tx: 'TopUp', submit: true, identity: 'admin' });
    expect(JSON.parse(good.args[0] as string)).toEqual({ walletId, amountFen: 100, reference: 'r1' });
    expect(
      code(() =>
        prepareCall(topUp, input({ walletId, amountFen: 100, reference: 'r1', x: 1 }), admin, 'AlphaMSP'),
      ),
    ).toBe('UNKNOWN_FIELD');
    expect(
      code(() => prepareCall(topUp, input({ walletId, amountFen: -5, reference: 'r1' }), admin, 'AlphaMSP')),
    ).toBe('VALIDATION_FAILED');
    expect(
      code(() => prepareCall(topUp, input({ walletId, amountFen: 1.5, reference: 'r1' }), admin, 'AlphaMSP')),
    ).toBe('VALIDATION_FAILED');
    expect(
      code(() =>
        prepareCall(topUp, input({ walletId, amountFen: '100', reference: 'r1' }), admin, 'AlphaMSP'),
      ),
    ).toBe('VALIDATION_FAILED');
    expect(code(() => prepareCall(topUp, input(undefined), admin, 'AlphaMSP'))).toBe('VALIDATION_FAILED');
  });

  test('path and query parameters fill text and integer arguments', () => {
    const clearing = route('GetClearing', 'get');
    expect(
      prepareCall(clearing, { params: { period: '42' }, query: {}, body: undefined }, admin, 'AlphaMSP').args,
    ).toEqual(['42']);
    expect(
      code(() =>
        prepareCall(clearing, { params: { period: '-1' }, query: {}, body: undefined }, admin, 'AlphaMSP'),
      ),
    ).toBe('VALIDATION_FAILED');
    const records = route('ListAuditRecords', 'get');
    expect(parseQuery(records, {})).toEqual({ fromSeq: '1' });
    expect(code(() => parseQuery(records, { fromSeq: '1', other: 'x' }))).toBe('UNKNOWN_FIELD');
    expect(code(() => parseQuery(route('GetConsortium', 'get'), { a: 'b' }))).toBe('UNKNOWN_FIELD');
  });

  test("a pile backend acts only for its operator's piles, and only those its credential lists", () => {
    const stop = route('StopSession');
    const reading = (pileId: string) => ({
      params: {},
      query: {},
      body: {
        stopReading: {
          kind: 'STOP',
          sessionId: 's1',
          pileId,
          meterWh: 10,
          readAt: 1_700_000_000,
          signature: 'ab'.repeat(36),
        },
      },
    });
    expect(code(() => prepareCall(stop, reading('BetaMSP.P1'), piles, 'AlphaMSP'))).toBe('PILE_NOT_IN_SCOPE');
    expect(code(() => prepareCall(stop, reading('AlphaMSP.P2'), piles, 'AlphaMSP'))).toBe(
      'PILE_NOT_IN_SCOPE',
    );
    const call = prepareCall(stop, reading('AlphaMSP.P1'), piles, 'AlphaMSP');
    expect(call.identity).toBe('client');
  });

  test("a standing authorization is revoked unsigned only by an operator admin, signed by the driver's app", () => {
    const revoke = route('RevokeStanding');
    const app: Principal = { id: 'd', name: 'app', role: 'driver-app' };
    const input = (body: unknown) => ({ params: {}, query: {}, body });
    const standingId = 'b'.repeat(64);
    expect(code(() => prepareCall(revoke, input({ standingId }), app, 'AlphaMSP'))).toBe('ROLE_FORBIDDEN');
    expect(prepareCall(revoke, input({ standingId }), admin, 'AlphaMSP')).toMatchObject({
      identity: 'admin',
    });
    const signed = { standingId, walletId, signature: 'ab'.repeat(36) };
    expect(prepareCall(revoke, input(signed), app, 'AlphaMSP')).toMatchObject({ identity: 'client' });
  });

  test('chaincode error categories map to statuses once', () => {
    expect(chaincodeStatus('INSUFFICIENT_FUNDS')).toBe(422);
    expect(chaincodeStatus('BAD_SIGNATURE')).toBe(401);
    expect(chaincodeStatus('PILE_NOT_FOUND')).toBe(404);
    expect(chaincodeStatus('NONCE_REUSED')).toBe(409);
    expect(chaincodeStatus('AMOUNT_OUT_OF_RANGE')).toBe(400);
    expect(chaincodeStatus('NOT_PILE_OPERATOR')).toBe(403);
    expect(chaincodeStatus('INTERNAL', 'INTERNAL')).toBe(500);
  });

  test('every transaction of the contract has a route, and every route a known transaction', () => {
    const { evpayTransactions } =
      jest.requireActual<typeof import('@evpay/chaincode/client')>('@evpay/chaincode/client');
    const routed = new Set<string>(routes.map((r) => r.tx));
    for (const tx of Object.keys(NOT_ROUTED)) expect(routed.has(tx)).toBe(false);
    expect(new Set([...routed, ...Object.keys(NOT_ROUTED)])).toEqual(new Set(Object.keys(evpayTransactions)));
  });
});

describe('the OpenAPI document', () => {
  test('path parameters keep their whole names, digits and underscores included', () => {
    expect(openApiPath('/v1/piles/:pileId/sessions/:sessionId')).toBe(
      '/v1/piles/{pileId}/sessions/{sessionId}',
    );
    expect(openApiPath('/v1/x/:pile2Id/:period_no')).toBe('/v1/x/{pile2Id}/{period_no}');
    expect(pathParameters('/v1/x/:pile2Id/y/:period_no')).toEqual(['pile2Id', 'period_no']);
  });

  test('the committed gateway-api/openapi.json is what the routes and schemas generate (evpay-gateway openapi --out ...)', () => {
    const committed = readFileSync(join(__dirname, '..', 'openapi.json'), 'utf8');
    expect(JSON.parse(committed)).toEqual(openApiDocument());
  });

  test('every route is documented with its body, parameters and answer', () => {
    const doc = openApiDocument() as {
      paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>;
    };
    const ops = Object.values(doc.paths).flatMap((p) => Object.values(p));
    expect(new Set(ops.map((o) => o.operationId)).size).toBe(ops.length);
    for (const r of routes) {
      const op = doc.paths[r.path.replace(/:([A-Za-z]+)/g, '{$1}')]?.[r.method];
      expect(op?.responses['200']).toBeDefined();
    }
    const topUp = doc.paths['/v1/top-ups']?.post as unknown as {
      requestBody: { content: Record<string, { schema: { required: string[] } }> };
    };
    expect(topUp.requestBody.content['application/json']?.schema.required).toEqual([
      'walletId',
      'amountFen',
      'reference',
    ]);
  });
});

test('the network id is read once per ledger connection, and read again after a failed read', async () => {
  const calls: string[] = [];
  let fail = true;
  const ledger = {
    evaluate: (_as: string, tx: string): Promise<Uint8Array> => {
      calls.push(tx);
      if (fail) return Promise.reject(new Error('peer unreachable'));
      return Promise.resolve(
        new TextEncoder().encode(JSON.stringify({ consortium: { networkId: 'evpay-t' } })),
      );
    },
  };
  await expect(networkIdOf(ledger)).rejects.toThrow('peer unreachable');
  fail = false;
  expect(await Promise.all([networkIdOf(ledger), networkIdOf(ledger)])).toEqual(['evpay-t', 'evpay-t']);
  expect(await networkIdOf(ledger)).toBe('evpay-t');
  expect(calls).toEqual(['GetConsortium', 'GetConsortium']);
});
