/**
 * The gateway client and the simulator without a network: the meter model and the summary (pure), the
 * retry rule (which failures are sent again, under which key), the client's reading of the gateway's
 * answers and errors, and whole pile stories run through a fake gateway whose routes call the
 * chaincode's own rules on the in-memory ledger, with a fake clock, so every reading the simulator signs
 * is one the chaincode accepts and every settlement is the tariff's.
 */
import { sm2GenerateKeyPair } from '@evpay/chaincode/client';
import { DomainError } from '../../chaincode/src/domain/errors';
import { registerPile } from '../../chaincode/src/domain/piles';
import { recordReading, startSession, stopSession } from '../../chaincode/src/domain/sessions';
import { getWallet, openWallet, topUp } from '../../chaincode/src/domain/wallets';
import type { TxContext } from '../../chaincode/src/domain/context';
import { bootstrap, client, NETWORK, OPS, TARIFF } from '../../chaincode/test/support/fixtures';
import { MemoryLedger } from '../../chaincode/test/support/ledger';
import { checkedBody } from '../src/cli/gatewayCommands';
import { UsageError } from '../src/cli/shared';
import {
  GatewayClient,
  GatewayRefusal,
  GatewayUnreachable,
  type FetchLike,
} from '../src/client/gatewayClient';
import { SimDriver, SimPile } from '../src/sim/devices';
import {
  dearestFenPerKwh,
  maxEnergyWh,
  meterAfter,
  newPileMeter,
  nextReadAt,
  PILE_RATINGS_W,
  seededRng,
  sessionPowerW,
} from '../src/sim/meter';
import { percentile, percentiles, summarize } from '../src/sim/stats';
import { retryKind, runPileStory, withRetries, type Clock, type SessionOutcome } from '../src/sim/story';

/** A clock that only moves when asked: sleeping advances it at once. */
function fakeClock(startMs: number): Clock & { advance(ms: number): void } {
  let t = startMs;
  return {
    nowMs: () => t,
    sleep: async (ms) => void (t += ms),
    advance: (ms) => void (t += ms),
  };
}

const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('meter model', () => {
  test('a seed gives the same numbers again, all in [0, 1)', () => {
    const a = seededRng(42);
    const b = seededRng(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBeGreaterThan(990);
    expect(seededRng(43)()).not.toBe(xs[0]);
  });

  test('piles have common ratings; a car draws half to all of it', () => {
    const rng = seededRng(7);
    for (let i = 0; i < 200; i++) {
      const m = newPileMeter(rng);
      expect(PILE_RATINGS_W).toContain(m.ratingW);
      expect(Number.isInteger(m.meterWh) && m.meterWh >= 0).toBe(true);
      const p = sessionPowerW(rng, m.ratingW);
      expect(p).toBeGreaterThanOrEqual(m.ratingW / 2);
      expect(p).toBeLessThanOrEqual(m.ratingW);
    }
  });

  test('the meter runs at power x speedup, never backwards, and stops at what the cap pays for', () => {
    // 60 kW for 2 real seconds at 600x: 20 simulated minutes, 20 kWh.
    expect(meterAfter(1_000, 60_000, 600, 2, 1e9)).toBe(21_000);
    expect(meterAfter(1_000, 60_000, 600, 0, 1e9)).toBe(1_000);
    expect(meterAfter(1_000, 60_000, 600, -5, 1e9)).toBe(1_000);
    const maxWh = maxEnergyWh(5_000, 190); // 5,000 fen at 1.90 yuan/kWh
    expect(maxWh).toBe(26_315);
    expect(meterAfter(1_000, 120_000, 600, 60, maxWh)).toBe(1_000 + maxWh);
    let last = 0;
    for (let s = 0; s < 100; s++) {
      const m = meterAfter(0, 22_000, 600, s, maxWh);
      expect(m).toBeGreaterThanOrEqual(last);
      last = m;
    }
    expect(dearestFenPerKwh([TARIFF])).toBe(190);
    expect(dearestFenPerKwh([])).toBe(0);
    expect(maxEnergyWh(5_000, 0)).toBe(Number.MAX_SAFE_INTEGER);
  });

  test('a reading is stamped in the first second after the last one, or now if later', () => {
    expect(nextReadAt(100, 100)).toBe(101);
    expect(nextReadAt(100, 99)).toBe(101);
    expect(nextReadAt(100, 150)).toBe(150);
  });
});

describe('summary', () => {
  test('nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 95)).toBe(95);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 95)).toBe(7);
    expect(percentile([], 50)).toBe(0);
    expect(percentiles([3, 1, 2])).toEqual({ count: 3, p50: 2, p95: 3, max: 3 });
  });

  test('sessions settled, failed and skipped, failures by code, throughput', () => {
    const base = { pileId: 'A.P1', walletId: 'w', retries: 0, energyWh: 0, chargedFen: 0 };
    const outcomes: SessionOutcome[] = [
      {
        ...base,
        sessionId: 's1',
        settled: true,
        failures: [],
        energyWh: 1000,
        chargedFen: 150,
        latencyMs: { start: 300, progress: [100], stop: 200, session: 2500 },
      },
      {
        ...base,
        sessionId: 's2',
        settled: true,
        retries: 1,
        failures: [{ step: 'progress', code: 'READING_OUT_OF_ORDER', message: 'x' }],
        energyWh: 2000,
        chargedFen: 300,
        latencyMs: { start: 500, progress: [], stop: 400, session: 3500 },
      },
      {
        ...base,
        sessionId: 's3',
        settled: false,
        failures: [{ step: 'start', code: 'INSUFFICIENT_FUNDS', message: 'x' }],
        latencyMs: { progress: [] },
      },
    ];
    const s = summarize(outcomes, {
      network: NETWORK,
      runId: 'R',
      seed: 1,
      piles: 2,
      drivers: 1,
      planned: 4,
      setupMs: 1234,
      runMs: 4000,
    });
    expect(s.sessions).toEqual({ planned: 4, settled: 2, failed: 1, skipped: 1 });
    expect([s.energyWh, s.chargedFen, s.retries]).toEqual([3000, 450, 1]);
    expect(s.failures).toEqual({ READING_OUT_OF_ORDER: 1, INSUFFICIENT_FUNDS: 1 });
    expect([s.sessionsPerSec, s.setupSec, s.runSec]).toEqual([0.5, 1.2, 4]);
    expect(s.latencyMs.start).toEqual({ count: 2, p50: 300, p95: 500, max: 500 });
    expect(s.latencyMs.progress.count).toBe(1);
  });
});

describe('gateway client', () => {
  test('sends the key and an Idempotency-Key; answers JSON; a refusal carries the gateway code', async () => {
    const seen: Array<{ url: string; headers: Record<string, string>; body?: string }> = [];
    const fake: FetchLike = async (url, init) => {
      seen.push({ url, headers: init.headers as Record<string, string>, body: init.body as string });
      if (url.endsWith('/v1/top-ups')) return json(200, { txId: 't', blockNumber: 3, result: {} });
      if (url.includes('/v1/wallets/'))
        return json(404, { code: 'WALLET_NOT_FOUND', message: 'no', details: {} });
      return new Response('<html>bad gateway</html>', { status: 502 });
    };
    const c = new GatewayClient({ url: 'http://gw.example:8081/', apiKey: 'evk_x', fetch: fake });
    expect(c.url).toBe('http://gw.example:8081');
    expect(await c.post('/v1/top-ups', { a: 1 }, 'k-1')).toEqual({ txId: 't', blockNumber: 3, result: {} });
    expect(seen[0]).toMatchObject({
      url: 'http://gw.example:8081/v1/top-ups',
      headers: {
        authorization: 'Bearer evk_x',
        'idempotency-key': 'k-1',
        'content-type': 'application/json',
      },
      body: '{"a":1}',
    });
    await c.post('/v1/top-ups', {});
    expect(seen[1]?.headers['idempotency-key']).toMatch(/^evpay-[0-9a-f]{24}$/);
    const refused = await c.get('/v1/wallets/x', { from: 5, to: undefined }).catch((e: unknown) => e);
    expect(seen[2]?.url).toBe('http://gw.example:8081/v1/wallets/x?from=5');
    expect(refused).toBeInstanceOf(GatewayRefusal);
    expect(refused).toMatchObject({ status: 404, code: 'WALLET_NOT_FOUND', isFailure: false });
    const failed = await c.post('/v1/other', {}, 'k-2').catch((e: unknown) => e);
    expect(failed).toMatchObject({ status: 502, code: 'HTTP_502', isFailure: true, idempotencyKey: 'k-2' });
    expect(() => c.post('/v1/top-ups', {}, 'bad key')).toThrow('Idempotency-Key');
    expect(() => new GatewayClient({ url: 'ftp://x' })).toThrow('http');
  });

  test('no answer: unreachable, or timed out (the key is named so a retry can learn the outcome)', async () => {
    const refused: FetchLike = async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) });
    };
    const e1 = await new GatewayClient({ url: 'http://127.0.0.1:1', fetch: refused })
      .get('/v1/consortium')
      .catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(GatewayUnreachable);
    expect((e1 as Error).message).toContain('ECONNREFUSED');
    const slow: FetchLike = (_url, init) =>
      new Promise((_resolve, reject) =>
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason as Error)),
      );
    const e2 = await new GatewayClient({ url: 'http://127.0.0.1:1', fetch: slow, timeoutMs: 20 })
      .post('/v1/top-ups', {}, 'k-3')
      .catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(GatewayUnreachable);
    expect((e2 as Error).message).toContain('retry with Idempotency-Key k-3');
  });

  test('bodies are checked with the chaincode schema before anything is sent', () => {
    const walletId = 'a'.repeat(64);
    expect(checkedBody('TopUp', { walletId, amountFen: 100, reference: 'r' })).toEqual({
      walletId,
      amountFen: 100,
      reference: 'r',
    });
    expect(() => checkedBody('TopUp', { walletId, amountFen: 100_000_001, reference: 'r' })).toThrow(
      UsageError,
    );
    expect(() => checkedBody('TopUp', { walletId, amountFen: 100_000_001, reference: 'r' })).toThrow(
      /amountFen/,
    );
    expect(() => checkedBody('StopSession', { stopReading: { kind: 'START' } })).toThrow(/stopReading/);
  });
});

describe('retries', () => {
  const refusal = (status: number, code: string) => new GatewayRefusal(status, code, code);

  test('5xx, no answer and rate limits: same key; invalidated commit: new key; other refusals: final', () => {
    expect(retryKind(refusal(504, 'OUTCOME_UNKNOWN'))).toBe('same-key');
    expect(retryKind(refusal(503, 'LEDGER_UNAVAILABLE'))).toBe('same-key');
    expect(retryKind(refusal(429, 'RATE_LIMITED'))).toBe('same-key');
    expect(retryKind(new GatewayUnreachable('u', 'x'))).toBe('same-key');
    expect(retryKind(refusal(409, 'TRANSACTION_INVALIDATED'))).toBe('new-key');
    expect(retryKind(refusal(409, 'PILE_BUSY'))).toBe('final');
    expect(retryKind(refusal(401, 'BAD_SIGNATURE'))).toBe('final');
    expect(retryKind(new Error('bug'))).toBe('final');
  });

  test('withRetries keeps or renews the key as the failure says, and gives up after the limit', async () => {
    const clock = fakeClock(0);
    const keys: string[] = [];
    const failures = [refusal(504, 'OUTCOME_UNKNOWN'), refusal(409, 'TRANSACTION_INVALIDATED')];
    const r = await withRetries(3, clock, async (key) => {
      keys.push(key);
      const f = failures.shift();
      if (f) throw f;
      return 'done';
    });
    expect(r).toEqual({ ok: true, value: 'done', retries: 2 });
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[1]);
    const never = await withRetries(2, clock, async () => {
      throw refusal(503, 'LEDGER_UNAVAILABLE');
    });
    expect(never).toMatchObject({ ok: false, retries: 2, error: { code: 'LEDGER_UNAVAILABLE' } });
    const final = await withRetries(5, clock, async () => {
      throw refusal(422, 'INSUFFICIENT_FUNDS');
    });
    expect(final).toMatchObject({ ok: false, retries: 0 });
  });
});

describe('pile stories against the chaincode rules', () => {
  const A = OPS.A.mspId;

  /**
   * A gateway whose three session routes run the chaincode's own rules on the in-memory ledger, at the
   * fake clock's time; every request takes `latencyMs` of it. Domain errors answer the gateway's shape.
   */
  function memoryGateway(ledger: MemoryLedger, clock: ReturnType<typeof fakeClock>, latencyMs = 150) {
    const tx: Record<string, (ctx: TxContext, body: unknown) => Promise<unknown>> = {
      '/v1/sessions': startSession,
      '/v1/session-readings': recordReading,
      '/v1/session-stops': stopSession,
    };
    const bodies: unknown[] = [];
    const fetch: FetchLike = async (url, init) => {
      clock.advance(latencyMs);
      const run = tx[new URL(url).pathname];
      if (init.method !== 'POST' || !run) return json(404, { code: 'ROUTE_NOT_FOUND', message: url });
      const body: unknown = JSON.parse(String(init.body));
      bodies.push(body);
      try {
        const now = Math.floor(clock.nowMs() / 1000);
        const result = await ledger.submit(client(A), (ctx) => run(ctx, body), now);
        return json(200, {
          txId: 't',
          blockNumber: 1,
          result: JSON.parse(JSON.stringify(result)) as unknown,
        });
      } catch (e) {
        if (e instanceof DomainError) return json(409, { code: e.code, message: e.message, details: {} });
        throw e;
      }
    };
    return { fetch, bodies };
  }

  async function world(capFen: number, sessions: number) {
    const ledger = new MemoryLedger();
    await bootstrap(ledger);
    const clock = fakeClock((ledger.now + 60) * 1000);
    const driver = new SimDriver(NETWORK, 'unit-d1');
    const keys = sm2GenerateKeyPair();
    const meter = { ratingW: 60_000, meterWh: 123_456 };
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId: 'SIM1', publicKey: keys.publicKeyHex, meterWh: meter.meterWh }),
    );
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: driver.publicKey }));
    await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: driver.walletId, amountFen: capFen * sessions, reference: 'unit' }),
    );
    const pile = new SimPile(NETWORK, `${A}.SIM1`, meter, keys);
    const gw = memoryGateway(ledger, clock);
    const api = new GatewayClient({ url: 'http://gw.test', apiKey: 'evk_x', fetch: gw.fetch });
    return { ledger, clock, driver, pile, api, bodies: gw.bodies };
  }

  test('every session settles; energy is the signed meter difference, the charge the tariff price', async () => {
    const w = await world(10_000, 4);
    const seen: SessionOutcome[] = [];
    const outcomes = await runPileStory({
      pile: w.pile,
      driver: w.driver,
      api: w.api,
      sessions: 4,
      sessionPrefix: 'U1',
      capFen: 10_000,
      dearestFenPerKwh: dearestFenPerKwh([TARIFF]),
      progressReadings: 2,
      rng: seededRng(3),
      clock: w.clock,
      onSession: (o) => seen.push(o),
    });
    expect(seen).toEqual(outcomes);
    expect(outcomes.map((o) => [o.sessionId, o.settled, o.failures])).toEqual(
      [1, 2, 3, 4].map((n) => [`U1-${n}`, true, []]),
    );
    // 08:01 in China: the flat price, 70 + 80 fen per kWh, rounded half up once.
    for (const o of outcomes) {
      expect(o.energyWh).toBeGreaterThan(0);
      expect(o.chargedFen).toBe(Math.round((o.energyWh * 150) / 1000));
      expect(o.latencyMs.progress).toHaveLength(2);
      expect(o.latencyMs.start).toBe(150);
    }
    const energy = outcomes.reduce((s, o) => s + o.energyWh, 0);
    expect(w.pile.meter.meterWh).toBe(123_456 + energy);
    const wallet = await w.ledger.evaluate(client(A), (ctx) => getWallet(ctx, w.driver.walletId));
    const charged = outcomes.reduce((s, o) => s + o.chargedFen, 0);
    expect(wallet).toMatchObject({ balanceFen: 40_000 - charged, heldFen: 0 });
    // The readings the pile signed: its meter and its clock only move forward.
    type Reading = { meterWh: number; readAt: number; kind: string };
    const readings = w.bodies.map((b) => {
      const r = b as { startReading?: Reading; reading?: Reading; stopReading?: Reading };
      return (r.startReading ?? r.reading ?? r.stopReading) as Reading;
    });
    expect(readings.map((r) => r.kind)).toEqual(
      Array.from({ length: 4 }, () => ['START', 'PROGRESS', 'PROGRESS', 'STOP']).flat(),
    );
    for (let i = 1; i < readings.length; i++) {
      expect(readings[i]!.meterWh).toBeGreaterThanOrEqual(readings[i - 1]!.meterWh);
      expect(readings[i]!.readAt).toBeGreaterThanOrEqual(readings[i - 1]!.readAt);
      if (readings[i]!.kind !== 'START') expect(readings[i]!.readAt).toBeGreaterThan(readings[i - 1]!.readAt);
    }
  });

  test('a pile stops at the cap; a refused START is counted by its code and the pile goes on', async () => {
    // Money for one capped session only: the second START finds too little available.
    const w = await world(2_000, 1);
    const outcomes = await runPileStory({
      pile: w.pile,
      driver: w.driver,
      api: w.api,
      sessions: 2,
      sessionPrefix: 'U2',
      capFen: 2_000,
      dearestFenPerKwh: 190,
      speedup: 6_000,
      clock: w.clock,
      rng: seededRng(1),
    });
    expect(outcomes[0]).toMatchObject({ settled: true, energyWh: maxEnergyWh(2_000, 190) });
    expect(outcomes[0]!.chargedFen).toBeLessThanOrEqual(2_000);
    expect(outcomes[1]).toMatchObject({
      settled: false,
      failures: [{ step: 'start', code: 'INSUFFICIENT_FUNDS' }],
    });
    expect(outcomes[1]!.latencyMs.start).toBeUndefined();
  });
});
