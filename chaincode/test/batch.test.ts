/**
 * Session batches (domain/batch.ts, BATCH RULE): several session calls in one transaction, each answered
 * on its own, each seeing the writes of the calls before it that succeeded and never its own.
 */
import { MAX_BATCH_CALLS, batchCallStore, runSessionBatch } from '../src/domain/batch';
import type { KV, StateStore } from '../src/domain/context';
import { Keys } from '../src/domain/keys';
import { registerPile } from '../src/domain/piles';
import { startSession, stopSession, type Session } from '../src/domain/sessions';
import { openWallet, topUp, type Wallet } from '../src/domain/wallets';
import { MemoryLedger } from './support/ledger';
import { bootstrap, client, Driver, OPS, PileDevice } from './support/fixtures';

const A = OPS.A.mspId;

async function world(piles: number) {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const ps = Array.from({ length: piles }, (_, i) => new PileDevice(`${A}.BT${i}`));
  const ds = Array.from({ length: piles }, () => new Driver());
  for (const p of ps)
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
    );
  for (const [i, d] of ds.entries()) {
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: d.walletId, amountFen: 10_000, reference: `bt${i}` }),
    );
  }
  return { ledger, piles: ps, drivers: ds };
}

const start = (p: PileDevice, d: Driver, id: string, meterWh: number, at: number, capFen = 5_000) => ({
  authorization: d.authorize(p.pileId, capFen, at + 600),
  startReading: p.reading('START', id, meterWh, at),
});
const stop = (p: PileDevice, id: string, meterWh: number, at: number) => ({
  stopReading: p.reading('STOP', id, meterWh, at),
});

/** The business records a run leaves, without the per-transaction keys (audit, positions, nonces). */
function records(ledger: MemoryLedger) {
  return {
    wallets: ledger.entries<Wallet>('wallet/').map((e) => e.value),
    sessions: ledger.entries<Session>('session/').map((e) => ({ ...e.value, startedAt: 0 })),
    piles: ledger.entries<Record<string, unknown>>('pile/').map((e) => e.value),
  };
}

describe('a batch of session calls', () => {
  test('starts then stops at three piles give the same records as six transactions of their own', async () => {
    const batched = await world(3);
    const alone = await world(3);
    const at = batched.ledger.now + 60;
    for (const w of [batched, alone]) {
      // The same drivers' keys would differ between worlds, so each world signs its own calls.
      const starts = w.piles.map((p, i) => start(p, w.drivers[i]!, `s${i}`, 0, at));
      const stops = w.piles.map((p, i) => stop(p, `s${i}`, 10_000 * (i + 1), at + 300));
      if (w === batched) {
        const r1 = await w.ledger.submit(
          client(A),
          (ctx) => runSessionBatch(ctx, { calls: starts.map((args) => ({ tx: 'StartSession', args })) }),
          at,
        );
        expect(r1.results.every((r) => r.ok)).toBe(true);
        const r2 = await w.ledger.submit(
          client(A),
          (ctx) => runSessionBatch(ctx, { calls: stops.map((args) => ({ tx: 'StopSession', args })) }),
          at + 300,
        );
        expect(r2.results.map((r) => (r.ok ? r.result.settlement?.chargedFen : r.error.code))).toEqual([
          1_500, 3_000, 4_500,
        ]);
      } else {
        for (const s of starts) await w.ledger.submit(client(A), (ctx) => startSession(ctx, s), at);
        for (const s of stops) await w.ledger.submit(client(A), (ctx) => stopSession(ctx, s), at + 300);
      }
    }
    const strip = (r: ReturnType<typeof records>) => ({
      // Wallet ids are the drivers' (random) keys' digests: compare the balances, not their order.
      balances: r.wallets.map((x) => `${x.balanceFen}/${x.heldFen}`).sort(),
      charged: r.sessions.map((s) => [s.status, s.settlement?.chargedFen, s.settlement?.energyWh]),
      piles: r.piles.map((p) => [p.activeSession, p.lastMeterWh]),
    });
    expect(strip(records(batched.ledger))).toEqual(strip(records(alone.ledger)));
    // One pending audit record per call, each under its own key in the batch's transaction.
    expect(batched.ledger.entries('auditpending/').length).toBe(alone.ledger.entries('auditpending/').length);
  });

  test('a call sees the calls before it (a start and its stop in one batch) but a refused one writes nothing', async () => {
    const { ledger, piles, drivers } = await world(2);
    const [p0, p1] = piles as [PileDevice, PileDevice];
    const [d0, d1] = drivers as [Driver, Driver];
    const at = ledger.now + 60;
    const sim = await ledger.simulate(
      client(A),
      (ctx) =>
        runSessionBatch(ctx, {
          calls: [
            { tx: 'StartSession', args: start(p0, d0, 'a', 0, at) },
            { tx: 'StopSession', args: stop(p0, 'a', 20_000, at) },
            // More than the wallet holds: refused, and its hold is never written.
            { tx: 'StartSession', args: start(p1, d1, 'b', 0, at, 20_000) },
            { tx: 'StopSession', args: stop(p0, 'a', 20_000, at) },
            { tx: 'StartSession', args: start(p1, d1, 'c', 0, at) },
          ],
        }),
      at,
    );
    expect(sim.ok).toBe(true);
    const results = sim.result!.results;
    expect(results.map((r) => (r.ok ? r.result.status : r.error.code))).toEqual([
      'open',
      'settled',
      'INSUFFICIENT_FUNDS',
      'SESSION_ALREADY_SETTLED',
      'open',
    ]);
    // Events of the calls that stood only, in call order.
    expect(sim.events.map((e) => e.name)).toEqual(['SessionStarted', 'SessionSettled', 'SessionStarted']);
    expect(ledger.commitBlock([sim])).toEqual(['VALID']);
    expect(ledger.raw(Keys.session(p1.pileId, 'b'))).toBeUndefined();
    expect(ledger.raw(Keys.wallet(d1.walletId))).toMatchObject({ balanceFen: 10_000, heldFen: 5_000 });
    // The settled session's stop (20 kWh at 150 fen) charged once.
    expect(ledger.raw(Keys.wallet(d0.walletId))).toMatchObject({ balanceFen: 7_000, heldFen: 0 });
  });

  test('two starts on one wallet: the second sees the first hold', async () => {
    const { ledger, piles, drivers } = await world(2);
    const d = drivers[0]!;
    const at = ledger.now + 60;
    const r = await ledger.submit(
      client(A),
      (ctx) =>
        runSessionBatch(ctx, {
          calls: [
            { tx: 'StartSession', args: start(piles[0]!, d, 'x', 0, at, 6_000) },
            { tx: 'StartSession', args: start(piles[1]!, d, 'y', 0, at, 6_000) },
          ],
        }),
      at,
    );
    expect(r.results.map((x) => (x.ok ? 'ok' : x.error.code))).toEqual(['ok', 'INSUFFICIENT_FUNDS']);
  });

  test('the batch itself is checked: empty, too long, an unknown call', async () => {
    const { ledger } = await world(1);
    const refusal = async (input: unknown) => {
      const sim = await ledger.simulate(client(A), (ctx) => runSessionBatch(ctx, input));
      expect(sim.ok).toBe(false);
      expect(sim.writes.size).toBe(0);
      return (sim.error as { code: string }).code;
    };
    expect(await refusal({ calls: [] })).toBe('INVALID_ARGUMENT');
    expect(await refusal({ calls: [{ tx: 'TopUp', args: {} }] })).toBe('INVALID_ARGUMENT');
    const many = Array.from({ length: MAX_BATCH_CALLS + 1 }, () => ({
      tx: 'StopSession',
      args: stop(new PileDevice(`${A}.X`), 's', 1, ledger.now),
    }));
    expect(await refusal({ calls: many })).toBe('INVALID_ARGUMENT');
  });
});

describe("a batch call's view of the world state", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  const base = (entries: Record<string, string>): StateStore => ({
    get: async (k) => (k in entries ? enc(entries[k]!) : undefined),
    put: async () => undefined,
    del: async () => undefined,
    range: (start, end) =>
      (async function* (): AsyncGenerator<KV> {
        for (const k of Object.keys(entries).sort())
          if (k >= start && k < end) yield { key: k, value: enc(entries[k]!) };
      })(),
  });
  const collect = async (it: AsyncIterable<KV>) => {
    const out: string[] = [];
    for await (const kv of it) out.push(`${kv.key}=${dec(kv.value)}`);
    return out;
  };

  test('earlier calls’ writes and deletes merge into reads and ranges in key order; its own writes do not', async () => {
    const done = new Map<string, Uint8Array | null>([
      ['k/b', enc('B2')],
      ['k/c', null],
      ['k/d', enc('D')],
      ['k/z', enc('Z')],
      ['other', enc('O')],
    ]);
    const own = new Map<string, Uint8Array | null>();
    const store = batchCallStore(base({ 'k/a': 'A', 'k/b': 'B', 'k/c': 'C', 'k/e': 'E' }), done, own);
    expect(await collect(store.range('k/', 'k0'))).toEqual(['k/a=A', 'k/b=B2', 'k/d=D', 'k/e=E', 'k/z=Z']);
    expect(await collect(store.range('k/b', 'k/e'))).toEqual(['k/b=B2', 'k/d=D']);
    expect(await store.get('k/c')).toBeUndefined();
    expect(dec((await store.get('k/b'))!)).toBe('B2');
    await store.put('k/a', enc('mine'));
    await store.del('k/e');
    expect(dec((await store.get('k/a'))!)).toBe('A');
    expect(await collect(store.range('k/', 'k0'))).toEqual(['k/a=A', 'k/b=B2', 'k/d=D', 'k/e=E', 'k/z=Z']);
    expect([...own.keys()]).toEqual(['k/a', 'k/e']);
  });
});
