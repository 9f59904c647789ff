/**
 * The Idempotency-Key store: for each (credential, key) the request's digest and, as it progresses,
 * the endorsed transaction (id and bytes, kept before anything is sent) and finally the response the
 * caller got. It lives in LevelDB in the gateway's data dir, so a retry after a time-out or a gateway
 * restart returns the first outcome; a transaction that was endorsed but whose outcome was never learned
 * is resolved by its id (see fabric/ledger.ts), never endorsed again.
 */
import { ClassicLevel } from 'classic-level';
import { join } from 'node:path';

export interface StoredResponse {
  status: number;
  body: unknown;
}

export interface IdempotencyRecord {
  /** SHA-256 of method, path and body: a key reused for another request is refused. */
  requestHash: string;
  createdAt: number;
  /** The Fabric identity the transaction was endorsed with. */
  identity: 'client' | 'admin';
  txId?: string;
  /** base64 of the endorsed transaction. */
  txBytes?: string;
  /** base64 of the chaincode's answer in the endorsement. */
  txResult?: string;
  response?: StoredResponse;
}

export class IdempotencyStore {
  private readonly db: ClassicLevel<string, IdempotencyRecord>;

  constructor(
    dataDir: string,
    private readonly ttlMs: number,
  ) {
    this.db = new ClassicLevel<string, IdempotencyRecord>(join(dataDir, 'idempotency'), {
      valueEncoding: 'json',
    });
  }

  async open(): Promise<void> {
    await this.db.open();
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private static key(credentialId: string, key: string): string {
    return `${credentialId}\u0000${key}`;
  }

  async get(credentialId: string, key: string): Promise<IdempotencyRecord | undefined> {
    const r = await this.db.get(IdempotencyStore.key(credentialId, key));
    if (r === undefined) return undefined;
    return Date.now() - r.createdAt > this.ttlMs ? undefined : r;
  }

  async put(credentialId: string, key: string, record: IdempotencyRecord): Promise<void> {
    await this.db.put(IdempotencyStore.key(credentialId, key), record, { sync: true });
  }

  async delete(credentialId: string, key: string): Promise<void> {
    await this.db.del(IdempotencyStore.key(credentialId, key), { sync: true });
  }

  /** Deletes records older than the retention; answers how many. */
  async purgeExpired(): Promise<number> {
    const cutoff = Date.now() - this.ttlMs;
    const stale: string[] = [];
    for await (const [k, v] of this.db.iterator()) if (v.createdAt < cutoff) stale.push(k);
    if (stale.length > 0) await this.db.batch(stale.map((key) => ({ type: 'del' as const, key })));
    return stale.length;
  }
}
