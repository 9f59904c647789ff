/**
 * A world state with Fabric's transaction semantics, for testing the domain rules fast and directly:
 * - a transaction is simulated against committed state: `get` never sees its own writes;
 * - its read set (key versions) and range reads are recorded;
 * - a block commits transactions in order and invalidates any whose reads changed since simulation
 *   (MVCC_READ_CONFLICT) or whose range now returns different keys/versions (PHANTOM_READ_CONFLICT).
 * This is what makes "no hot keys" checkable: two settlements conflict here exactly when they would on a peer.
 * It is a test double of the world state only; the Fabric glue itself is tested on the real network.
 */
import { createHash } from 'node:crypto';
import type { BusinessEvent, Caller, KV, StateStore, TxContext } from '../../src/domain/context';

interface Versioned {
  value: Uint8Array;
  version: number;
}
interface RangeRead {
  start: string;
  end: string;
  seen: Array<[string, number]>;
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
    const store: StateStore = {
      get: async (key) => {
        const v = snapshot.get(key);
        if (!reads.has(key)) reads.set(key, v?.version);
        return v?.value;
      },
      put: async (key, value) => {
        writes.set(key, value);
      },
      del: async (key) => {
        writes.set(key, null);
      },
      range: (start, end) => {
        const keys = [...snapshot.keys()].filter((k) => k >= start && k < end).sort();
        const rr: RangeRead = { start, end, seen: [] };
        ranges.push(rr);
        return (async function* (): AsyncGenerator<KV> {
          for (const key of keys) {
            const v = snapshot.get(key)!;
            rr.seen.push([key, v.version]);
            yield { key, value: v.value };
          }
        })();
      },
    };
    const ctx: TxContext = { txId, now, caller, store, events };
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
        const now = this.sortedKeys(rr.start, rr.end).map((k) => [k, this.state.get(k)!.version] as const);
        // A range read stopped early (limit) only claims the keys it saw, as Fabric re-executes up to them.
        const last = rr.seen[rr.seen.length - 1]?.[0];
        const relevant = rr.seen.length === 0 ? now : now.filter(([k]) => last !== undefined && k <= last);
        if (JSON.stringify(relevant) !== JSON.stringify(rr.seen)) return 'PHANTOM_READ_CONFLICT';
      }
      const version = this.blockNo * 100_000 + sims.indexOf(sim);
      for (const [key, value] of sim.writes) {
        if (value === null) this.state.delete(key);
        else this.state.set(key, { value, version });
      }
      return 'VALID';
    });
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

  raw(key: string): unknown {
    const v = this.state.get(key);
    return v ? (JSON.parse(new TextDecoder().decode(v.value)) as unknown) : undefined;
  }
}
