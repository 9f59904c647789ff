/**
 * A world state with Fabric's transaction semantics, for testing the domain rules fast and directly:
 * - a transaction is simulated against committed state: `get` never sees its own writes;
 * - its read set (key versions) and range reads are recorded;
 * - a block commits transactions in order and invalidates any whose reads changed since simulation
 *   (MVCC_READ_CONFLICT) or whose range now returns different keys/versions (PHANTOM_READ_CONFLICT).
 * Range reads follow the peer, not the chaincode: the peer reads a range in batches of RANGE_BATCH keys
 * (fabric-shim pages results, and the peer's iterator records every key it fetched), so a chaincode that
 * stops early has still "read" the rest of its batch; a range read to its end is re-checked whole at
 * commit, so a key inserted anywhere in it is a phantom. This is what makes "no hot keys" checkable:
 * conflicts here are meant to arise where a peer would raise them (batch sizes are the peer's defaults).
 * It is a test double of the world state only. The Fabric glue is tested elsewhere: the contract's
 * transaction metadata in `chaincode/test/contract.test.ts`, the built chaincode in the real fabric-shim
 * runtime against a simulated peer in `chaincode/test/shim.test.ts`, and a part of the transactions on
 * real Fabric peers and orderers (endorsement policy, ordering, commit) in `test/network/network.test.ts`,
 * which the jest project `network` runs, not `unit`.
 */
import { createHash } from 'node:crypto';
import type { BusinessEvent, Caller, KV, StateStore, TxContext } from '../../src/domain/context';
import { withReadCache } from '../../src/domain/state';

interface Versioned {
  value: Uint8Array;
  version: number;
}
/** Keys the peer fetches per range-query round trip (the peer's query result page size). */
export const RANGE_BATCH = 100;
/** Results after which a peer ends one range query as if exhausted (core.yaml totalQueryLimit). */
export const TOTAL_QUERY_LIMIT = 100_000;

interface RangeRead {
  start: string;
  end: string;
  /** What the chaincode consumed, and what the peer had fetched for it (whole batches). */
  consumed: number;
  all: Array<[string, number]>;
  /** The peer stopped at its totalQueryLimit: for validation the range ends at the last key returned. */
  truncated: boolean;
}
export interface Simulation<T> {
  txId: string;
  ok: boolean;
  result?: T;
  error?: unknown;
  reads: Map<string, number | undefined>;
  ranges: RangeRead[];
  writes: Map<string, Uint8Array | null>;
  events: BusinessEvent[];
}
export type Validation = 'VALID' | 'MVCC_READ_CONFLICT' | 'PHANTOM_READ_CONFLICT' | 'ENDORSEMENT_FAILED';

export class MemoryLedger {
  private state = new Map<string, Versioned>();
  private seq = 0;
  private blockNo = 0;
  now = 1_767_225_600; // 2026-01-01T00:00:00Z
  /** Whether the store offers getMany (a v3.1 peer's GET_STATE_MULTIPLE); counted in getManyCalls. */
  batchedReads = true;
  getManyCalls = 0;
  /** The peer's totalQueryLimit; tests lower it to exercise long ranges quickly. */
  totalQueryLimit = TOTAL_QUERY_LIMIT;

  private sortedKeys(start: string, end: string): string[] {
    return [...this.state.keys()].filter((k) => k >= start && k < end).sort();
  }

  nextTxId(): string {
    this.seq += 1;
    return createHash('sha256').update(`tx-${this.seq}`).digest('hex');
  }

  async simulate<T>(
    caller: Caller,
    fn: (ctx: TxContext) => Promise<T>,
    now = this.now,
    txId = this.nextTxId(),
  ): Promise<Simulation<T>> {
    const reads = new Map<string, number | undefined>();
    const ranges: RangeRead[] = [];
    const writes = new Map<string, Uint8Array | null>();
    const events: BusinessEvent[] = [];
    const snapshot = new Map(this.state);
    const get = (key: string): Uint8Array | undefined => {
      const v = snapshot.get(key);
      if (!reads.has(key)) reads.set(key, v?.version);
      return v?.value;
    };
    const store: StateStore = {
      get: async (key) => get(key),
      // As a v3.1 peer's GET_STATE_MULTIPLE: every key named joins the read set.
      ...(this.batchedReads
        ? { getMany: async (keys: readonly string[]) => (this.getManyCalls++, keys.map(get)) }
        : {}),
      put: async (key, value) => {
        writes.set(key, value);
      },
      del: async (key) => {
        writes.set(key, null);
      },
      range: (start, end) => {
        const inRange = [...snapshot.keys()].filter((k) => k >= start && k < end).sort();
        const keys = inRange.slice(0, this.totalQueryLimit);
        const rr: RangeRead = {
          start,
          end,
          consumed: 0,
          all: keys.map((k) => [k, snapshot.get(k)!.version]),
          truncated: keys.length < inRange.length,
        };
        ranges.push(rr);
        return (async function* (): AsyncGenerator<KV> {
          for (const key of keys) {
            rr.consumed += 1;
            yield { key, value: snapshot.get(key)!.value };
          }
        })();
      },
    };
    // The same read cache the Fabric glue puts in front of the peer, so tests run what peers run.
    const ctx: TxContext = { txId, now, caller, store: withReadCache(store), events };
    try {
      const result = await fn(ctx);
      return { txId, ok: true, result, reads, ranges, writes, events };
    } catch (error) {
      return { txId, ok: false, error, reads, ranges, writes, events };
    }
  }

  /** Validates and applies transactions in order, as a peer commits one block. */
  commitBlock(sims: ReadonlyArray<Simulation<unknown>>): Validation[] {
    this.blockNo += 1;
    return sims.map((sim) => {
      if (!sim.ok) return 'ENDORSEMENT_FAILED';
      for (const [key, version] of sim.reads)
        if (this.state.get(key)?.version !== version) return 'MVCC_READ_CONFLICT';
      for (const rr of sim.ranges) {
        // The peer fetched whole batches: the first one at once, more as the chaincode consumed them.
        const fetched = Math.min(
          rr.all.length,
          Math.max(1, Math.ceil(rr.consumed / RANGE_BATCH)) * RANGE_BATCH,
        );
        const seen = rr.all.slice(0, fetched);
        const exhausted = fetched === rr.all.length && !rr.truncated;
        const now = this.sortedKeys(rr.start, rr.end).map((k) => [k, this.state.get(k)!.version] as const);
        // Exhausted: the whole requested range is re-checked. Otherwise: everything up to the last key fetched.
        const last = seen[seen.length - 1]?.[0];
        const relevant = exhausted ? now : now.filter(([k]) => last !== undefined && k <= last);
        if (JSON.stringify(relevant) !== JSON.stringify(seen)) return 'PHANTOM_READ_CONFLICT';
      }
      const version = this.blockNo * 100_000 + sims.indexOf(sim);
      for (const [key, value] of sim.writes) {
        if (value === null) this.state.delete(key);
        else this.state.set(key, { value, version });
      }
      return 'VALID';
    });
  }

  /**
   * Everyone submits at once and whoever is invalidated resubmits against the next block, until all have
   * committed; answers how many committed per block. A transaction that fails to endorse, or that is
   * invalidated for anything but an MVCC read conflict, throws.
   */
  async contend(jobs: ReadonlyArray<() => Promise<Simulation<unknown>>>): Promise<number[]> {
    let waiting = jobs.map((_, i) => i);
    const perBlock: number[] = [];
    while (waiting.length > 0) {
      if (perBlock.length === jobs.length) throw new Error('no progress: a job never commits');
      const sims = await Promise.all(waiting.map((i) => jobs[i]!()));
      const failed = sims.find((s) => !s.ok);
      if (failed) throw failed.error;
      const verdicts = this.commitBlock(sims);
      const odd = verdicts.find((v) => v !== 'VALID' && v !== 'MVCC_READ_CONFLICT');
      if (odd) throw new Error(`transaction invalidated: ${odd}`);
      perBlock.push(verdicts.filter((v) => v === 'VALID').length);
      waiting = waiting.filter((_, k) => verdicts[k] !== 'VALID');
    }
    return perBlock;
  }

  /** Simulate and commit one transaction alone in a block; throws the domain error if it failed. */
  async submit<T>(caller: Caller, fn: (ctx: TxContext) => Promise<T>, now = this.now): Promise<T> {
    const sim = await this.simulate(caller, fn, now);
    if (!sim.ok) throw sim.error;
    const [v] = this.commitBlock([sim]);
    if (v !== 'VALID') throw new Error(`transaction invalidated: ${v}`);
    return sim.result as T;
  }

  /** A read-only evaluation (no commit). */
  async evaluate<T>(caller: Caller, fn: (ctx: TxContext) => Promise<T>, now = this.now): Promise<T> {
    const sim = await this.simulate(caller, fn, now);
    if (!sim.ok) throw sim.error;
    return sim.result as T;
  }

  /** Committed values under a key prefix, in key order (for checking invariants over the whole state). */
  entries<T>(prefix: string): Array<{ key: string; value: T }> {
    return [...this.state.keys()]
      .filter((k) => k.startsWith(prefix))
      .sort()
      .map((key) => ({ key, value: this.raw(key) as T }));
  }

  /** Writes keys as committed transactions would have (to build large states quickly). */
  seed(entries: Iterable<[string, unknown]>): void {
    this.blockNo += 1;
    const enc = new TextEncoder();
    for (const [key, value] of entries)
      this.state.set(key, { value: enc.encode(JSON.stringify(value)), version: this.blockNo * 100_000 });
  }

  raw(key: string): unknown {
    const v = this.state.get(key);
    return v ? (JSON.parse(new TextDecoder().decode(v.value)) as unknown) : undefined;
  }
}
