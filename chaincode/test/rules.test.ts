/** Fast, direct tests of the written-once rules: rounding, splits, tariff periods and pricing, beans, quorum. */
import fc from 'fast-check';
import { divRoundHalfUp, mulDivRoundHalfUp, splitEqual, splitProportional } from '../src/domain/money';
import { periodAt, priceSession, secondsByKind, inForce } from '../src/domain/tariff';
import { issuableBeans, rebateFor, redeemBeans } from '../src/domain/beans';
import { bucketOrder } from '../src/domain/buckets';
import { bucketSizes, ENVELOPE_BUCKETS, randomSplit } from '../src/domain/envelopes';
import { planTransfers, POOL } from '../src/domain/clearing';
import { nextVersion, requiredApprovals } from '../src/domain/governance';
import { canonicalJson } from '../src/domain/canonical';
import type { StateStore } from '../src/domain/context';
import { prefetch, withReadCache } from '../src/domain/state';
import { checkTxTime } from '../src/contracts/fabricContext';
import { operatorOfPile, pileIdOf } from '../src/domain/piles';
import { TARIFF } from './support/fixtures';

const LOCAL_MIDNIGHT = 1_767_196_800; // 2026-01-01T00:00+08:00

describe('rounding (money.ts)', () => {
  test('half up, once', () => {
    expect(mulDivRoundHalfUp(1, 1, 2)).toBe(1); // 0.5 -> 1
    expect(mulDivRoundHalfUp(1, 1, 3)).toBe(0); // 0.33 -> 0
    expect(mulDivRoundHalfUp(2, 1, 3)).toBe(1); // 0.67 -> 1
    expect(divRoundHalfUp(1499n, 1000n)).toBe(1);
    expect(divRoundHalfUp(1500n, 1000n)).toBe(2);
    expect(mulDivRoundHalfUp(9_007_199_254_740, 1000, 1000)).toBe(9_007_199_254_740); // no float drift near 2^53
  });
  test('a proportional split of at most the weights never gives a part more than its weight', () => {
    // What treasury.ts relies on when operator spending takes from every bucket in proportion.
    fc.assert(
      fc.property(fc.array(fc.nat(1_000), { minLength: 1, maxLength: 16 }), fc.nat(), (w, seed) => {
        const sum = w.reduce((a, b) => a + b, 0);
        const total = sum === 0 ? 0 : seed % (sum + 1);
        const parts = splitProportional(total, w);
        expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
        parts.forEach((p, i) => expect(p).toBeLessThanOrEqual(w[i]!));
      }),
      { numRuns: 500, seed: 20261128 },
    );
  });
  test('splits always sum exactly and are deterministic', () => {
    for (const [total, w] of [
      [10, [1, 1, 1]],
      [7, [0, 5, 2]],
      [1, [1, 1]],
      [1_000_003, [3, 7, 11, 13]],
    ] as const) {
      const parts = splitProportional(total, [...w]);
      expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
      expect(splitProportional(total, [...w])).toEqual(parts);
    }
    expect(splitProportional(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(splitEqual(10, 3)).toEqual([4, 3, 3]);
    expect(splitProportional(5, [0, 0])).toEqual([3, 2]);
  });
});

describe('tariff (tariff.ts)', () => {
  test('periods by local time of day, across midnight', () => {
    expect(periodAt(TARIFF, LOCAL_MIDNIGHT)).toBe('valley');
    expect(periodAt(TARIFF, LOCAL_MIDNIGHT + 8 * 3600)).toBe('flat');
    expect(periodAt(TARIFF, LOCAL_MIDNIGHT + 10 * 3600 - 1)).toBe('flat');
    expect(periodAt(TARIFF, LOCAL_MIDNIGHT + 10 * 3600)).toBe('peak');
    expect(periodAt(TARIFF, LOCAL_MIDNIGHT + 23 * 3600 + 59 * 60)).toBe('valley');
    // 22:00 to 01:00: one hour flat, two hours valley.
    expect(secondsByKind(TARIFF, LOCAL_MIDNIGHT + 22 * 3600, LOCAL_MIDNIGHT + 25 * 3600)).toEqual({
      peak: 0,
      flat: 3600,
      valley: 7200,
    });
  });
  test('energy is spread by time across periods, priced, and rounded once', () => {
    // 09:30-10:30: half flat (150), half peak (190); 3001 Wh -> 1501 flat + 1500 peak (equal remainders: the tie goes to flat, cheaper than peak)
    const p = priceSession(TARIFF, 3001, LOCAL_MIDNIGHT + 9.5 * 3600, LOCAL_MIDNIGHT + 10.5 * 3600);
    expect(p.whByKind).toEqual({ peak: 1500, flat: 1501, valley: 0 });
    // (1500*190 + 1501*150) / 1000 = 510.15 -> 510
    expect(p.totalFen).toBe(510);
    // energy part (1500*110 + 1501*70)/1000 = 270.07 -> 270; the service part is the rest
    expect([p.energyFen, p.serviceFen]).toEqual([270, 240]);
    expect(priceSession(TARIFF, 0, LOCAL_MIDNIGHT, LOCAL_MIDNIGHT + 60).totalFen).toBe(0);
    expect(
      priceSession(TARIFF, 1000, LOCAL_MIDNIGHT + 12 * 3600, LOCAL_MIDNIGHT + 12 * 3600).whByKind.peak,
    ).toBe(1000);
  });
  test('the version in force is the newest effective one', () => {
    const v = [
      { version: 1, effectiveFrom: 100 },
      { version: 2, effectiveFrom: 200 },
    ];
    expect(inForce(v, 99)).toBeUndefined();
    expect(inForce(v, 150)?.version).toBe(1);
    expect(inForce(v, 200)?.version).toBe(2);
  });
});

describe('beans (beans.ts, envelopes.ts)', () => {
  test('issuance limit, redemption in whole beans, rebate bounded by the float', () => {
    expect(issuableBeans(5_099, 0, 100)).toBe(50);
    expect(issuableBeans(5_099, 3_000, 100)).toBe(20);
    expect(issuableBeans(5_099, 3_000, 50)).toBe(41); // a new face value prices only what is left
    expect(issuableBeans(5_000, 5_000, 100)).toBe(0);
    expect(redeemBeans(3_500, 525, 10, 1000)).toEqual({ beansUsed: 3, coveredWh: 3000, beanValueFen: 450 });
    expect(redeemBeans(800, 120, 10, 1000)).toEqual({ beansUsed: 0, coveredWh: 0, beanValueFen: 0 });
    expect(redeemBeans(5_000, 750, 2, 1000).beansUsed).toBe(2);
    // A free session keeps the driver's beans.
    expect(redeemBeans(5_000, 0, 10, 1000)).toEqual({ beansUsed: 0, coveredWh: 0, beanValueFen: 0 });
    expect(rebateFor(20_000, 5_000, 10)).toBe(4);
    expect(rebateFor(20_000, 5_000, 3)).toBe(3);
    expect(rebateFor(20_000, 0, 10)).toBe(0);
  });
  test('random envelope split: exact, at least one each, same seed same split', () => {
    const a = randomSplit(100, 7, 'tx1/env');
    expect(a.reduce((x, y) => x + y, 0)).toBe(100);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(1);
    expect(randomSplit(100, 7, 'tx1/env')).toEqual(a);
    expect(randomSplit(100, 7, 'tx2/env')).not.toEqual(a);
    expect(randomSplit(3, 3, 'x')).toEqual([1, 1, 1]);
  });
  test('envelope buckets: every share in exactly one bucket, sizes within one; a wallet starts where SM3 says', () => {
    for (const k of [1, 2, 63, 64, 65, 100, 10_000]) {
      const sizes = bucketSizes(k);
      expect(sizes).toHaveLength(Math.min(k, ENVELOPE_BUCKETS));
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(k);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
    for (const n of [1, 2, 7, 60, 64]) {
      const order = bucketOrder('e1/w1', n);
      expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i)); // each once
      expect(bucketOrder('e1/w1', n)).toEqual(order);
    }
    // `echo -n e1/w1 | openssl dgst -sm3` starts 65a5cd51 07285811: start 0x65a5cd51 mod 64 = 17,
    // stride 1 + 0x07285811 mod 63 = 9 (coprime with 64).
    expect(bucketOrder('e1/w1', 64).slice(0, 3)).toEqual([17, 26, 35]);
    const starts = new Set(Array.from({ length: 200 }, (_, i) => bucketOrder(`e1/w${i}`, 64)[0]));
    expect(starts.size).toBeGreaterThan(48); // spread over the buckets, not piled on a few
  });
});

describe('clearing and governance rules', () => {
  test('transfers net every party exactly, the pool absorbing the rest', () => {
    const dues = [
      { mspId: 'A', dueFen: -9_050 },
      { mspId: 'B', dueFen: 3_075 },
      { mspId: 'C', dueFen: 0 },
      { mspId: 'D', dueFen: 8_000 },
    ];
    const t = planTransfers(dues);
    const net = new Map<string, number>();
    for (const x of t) {
      net.set(x.from, (net.get(x.from) ?? 0) - x.amountFen);
      net.set(x.to, (net.get(x.to) ?? 0) + x.amountFen);
    }
    for (const d of dues) expect(net.get(d.mspId) ?? 0).toBe(d.dueFen);
    expect(net.get(POOL)).toBe(-dues.reduce((s, d) => s + d.dueFen, 0));
    expect(t.every((x) => x.amountFen > 0)).toBe(true);
  });
  test('debtors left over after every creditor is paid settle with the pool, the untouched ones in full', () => {
    // Debts 100 + 50 + 20 against credits 30: A pays C, then A's rest, B and D pay the pool.
    const dues = [
      { mspId: 'A', dueFen: -100 },
      { mspId: 'B', dueFen: -50 },
      { mspId: 'C', dueFen: 30 },
      { mspId: 'D', dueFen: -20 },
    ];
    expect(planTransfers(dues)).toEqual([
      { index: 0, from: 'A', to: 'C', amountFen: 30 },
      { index: 1, from: 'A', to: POOL, amountFen: 70 },
      { index: 2, from: 'B', to: POOL, amountFen: 50 },
      { index: 3, from: 'D', to: POOL, amountFen: 20 },
    ]);
    // A debtor that exactly meets the last creditor leaves nothing for the pool.
    expect(
      planTransfers([
        { mspId: 'A', dueFen: -30 },
        { mspId: 'B', dueFen: -5 },
        { mspId: 'C', dueFen: 30 },
      ]),
    ).toEqual([
      { index: 0, from: 'A', to: 'C', amountFen: 30 },
      { index: 1, from: 'B', to: POOL, amountFen: 5 },
    ]);
  });
  test('qualified majority', () => {
    expect(requiredApprovals(4, 2, 3)).toBe(3);
    expect(requiredApprovals(3, 2, 3)).toBe(2);
    expect(requiredApprovals(5, 1, 2)).toBe(3);
  });
  test('canonical JSON sorts keys and refuses floats', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined })).toBe('{"a":[true,null,"x"],"b":1}');
    expect(() => canonicalJson({ a: 0.5 })).toThrow('non-integer');
  });
});

describe('time-of-use over long spans', () => {
  // Reference: walk minute by minute (sessions here start and stop on whole minutes).
  function naive(from: number, to: number): Record<string, number> {
    const out: Record<string, number> = { peak: 0, flat: 0, valley: 0 };
    for (let t = from; t < to; t += 60) out[periodAt(TARIFF, t)]! += 60;
    return out;
  }
  test('whole days are counted arithmetically and agree with a minute-by-minute walk', () => {
    const cases = [
      [0, 60],
      [7 * 60, 26 * 60],
      [23 * 60, 24 * 60 * 40 + 17],
      [8 * 60 + 1, 8 * 60 + 1 + 24 * 60 * 3],
    ];
    for (const [a, b] of cases) {
      const from = LOCAL_MIDNIGHT + a! * 60;
      const to = LOCAL_MIDNIGHT + b! * 60;
      const got = secondsByKind(TARIFF, from, to);
      expect(got).toEqual(naive(from, to));
      expect(got.peak + got.flat + got.valley).toBe(to - from);
    }
  });
});

describe('versioning (governance.ts)', () => {
  test('dense versions; a new version never takes effect before enactment or its predecessor', () => {
    expect(nextVersion([], 50, 100)).toEqual({ version: 1, effectiveFrom: 100 });
    expect(nextVersion([{ version: 1, effectiveFrom: 100 }], 500, 200)).toEqual({
      version: 2,
      effectiveFrom: 500,
    });
    expect(nextVersion([{ version: 1, effectiveFrom: 900 }], 500, 200)).toEqual({
      version: 2,
      effectiveFrom: 900,
    });
  });
});

describe('pile ids (piles.ts)', () => {
  test('the operator is read back from the pile id', () => {
    expect(operatorOfPile(pileIdOf('AlphaMSP', 'P-001'))).toBe('AlphaMSP');
    expect(pileIdOf('AlphaMSP', 'P-001')).toBe('AlphaMSP.P-001');
  });
});

describe('transaction time gate (contracts/fabricContext.ts)', () => {
  test('a proposal stamped more than 300 s from the peer clock is refused, either way', () => {
    expect(() => checkTxTime(1_000_000, 1_000_300)).not.toThrow();
    expect(() => checkTxTime(1_000_300, 1_000_000)).not.toThrow();
    expect(() => checkTxTime(1_000_000, 1_000_301)).toThrow(
      expect.objectContaining({ code: 'TX_TIME_SKEW' }),
    );
    expect(() => checkTxTime(4_102_444_800, 1_767_225_600)).toThrow(
      expect.objectContaining({ code: 'TX_TIME_SKEW' }),
    );
  });
});

describe('per-transaction read cache (state.ts)', () => {
  test('each key is fetched once; a read after a write still answers the committed value, as Fabric does', async () => {
    const committed = new Map([['k', new TextEncoder().encode('old')]]);
    let fetches = 0;
    const inner: StateStore = {
      get: async (key) => (fetches++, committed.get(key)),
      put: async () => undefined,
      del: async () => undefined,
      range: () => (async function* () {})(),
    };
    const store = withReadCache(inner);
    await store.get('k');
    await store.put('k', new TextEncoder().encode('new'));
    expect(new TextDecoder().decode(await store.get('k'))).toBe('old');
    expect(await store.get('missing')).toBeUndefined();
    await store.get('missing');
    expect(fetches).toBe(2);
  });

  test('a range read to its end is asked once; one left early is asked again', async () => {
    const keys = ['a/1', 'a/2', 'a/3'];
    let queries = 0;
    const inner: StateStore = {
      get: async () => undefined,
      put: async () => undefined,
      del: async () => undefined,
      range: (start, end) =>
        (async function* () {
          queries++;
          for (const key of keys)
            if (key >= start && key < end) yield { key, value: new TextEncoder().encode(key) };
        })(),
    };
    const store = withReadCache(inner);
    const all = async (start: string, end: string, stopAfter = Infinity) => {
      const out: string[] = [];
      for await (const kv of store.range(start, end)) {
        out.push(kv.key);
        if (out.length >= stopAfter) break;
      }
      return out;
    };
    expect(await all('a/', 'a0', 1)).toEqual(['a/1']);
    expect(await all('a/', 'a0')).toEqual(keys);
    expect(queries).toBe(2);
    expect(await all('a/', 'a0')).toEqual(keys);
    expect(await all('a/', 'a0', 2)).toEqual(['a/1', 'a/2']);
    expect(queries).toBe(2);
    expect(await all('a/2', 'a0')).toEqual(['a/2', 'a/3']);
    expect(queries).toBe(3);
  });

  const enc = (t: string) => new TextEncoder().encode(t);
  const countingStore = (committed: Map<string, Uint8Array>, fail = false) => {
    const calls = { get: [] as string[], getMany: [] as string[][] };
    const inner: StateStore = {
      get: async (key) => (calls.get.push(key), committed.get(key)),
      getMany: async (keys) => {
        calls.getMany.push([...keys]);
        if (fail) throw new Error('peer refused');
        return keys.map((k) => committed.get(k));
      },
      put: async () => undefined,
      del: async () => undefined,
      range: () => (async function* () {})(),
    };
    return { calls, store: withReadCache(inner) };
  };

  test('prefetched keys come in one getMany and are then answered from the cache, as get would', async () => {
    const { calls, store } = countingStore(
      new Map([
        ['a', enc('A')],
        ['c', enc('C')],
      ]),
    );
    await store.get('a');
    prefetch(store, ['a', 'b', 'c', 'b']);
    expect(calls.getMany).toEqual([['b', 'c']]); // 'a' was read already, 'b' is named once
    expect(await store.get('b')).toBeUndefined();
    expect(new TextDecoder().decode(await store.get('c'))).toBe('C');
    expect(calls.get).toEqual(['a']);
    prefetch(store, ['c', 'd']); // one key left to fetch: a plain get is as cheap
    expect(calls.getMany).toHaveLength(1);
  });

  test('a failed prefetch fails the reads of its keys and leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { store } = countingStore(new Map(), true);
      prefetch(store, ['x', 'y', 'z']);
      await expect(store.get('y')).rejects.toThrow('peer refused');
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
