/**
 * What a transaction sees of the world. The Fabric glue (contracts/) adapts the chaincode stub to these
 * interfaces; the domain rules use nothing else, so they run the same on a peer and in unit tests.
 */

/** The submitting identity, as proven by its X.509 certificate and MSP. */
export interface Caller {
  /** MSP id of the organization that signed the proposal. */
  readonly mspId: string;
  /** Fabric NodeOU role of the certificate: 'admin', 'client', 'peer', 'orderer' (or '' when absent). */
  readonly role: string;
  /** Stable identity string (subject + issuer), for records. */
  readonly id: string;
}

export interface KV {
  readonly key: string;
  readonly value: Uint8Array;
}

/**
 * Fabric world state semantics: `get` sees committed state only, never this transaction's own writes;
 * range results come in key order.
 */
export interface StateStore {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  del(key: string): Promise<void>;
  /** All keys in [startKey, endKey) in key order. */
  range(startKey: string, endKey: string): AsyncIterable<KV>;
  /** What `get` answers for each key, in one round trip where the store can. */
  getMany?(keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
  /**
   * A hint: the rule is about to read these keys (see state.ts, PREFETCH RULE). A store with a read
   * cache may fetch them together; the answers are those `get` would give. Reads nothing elsewhere.
   */
  prefetch?(keys: readonly string[]): void;
}

export interface BusinessEvent {
  readonly name: string;
  readonly payload: Record<string, unknown>;
}

export interface TxContext {
  readonly txId: string;
  /** Transaction timestamp in whole seconds since the epoch: the only clock a rule may read. */
  readonly now: number;
  readonly caller: Caller;
  readonly store: StateStore;
  /** Business events of this transaction; the glue publishes them as one chaincode event. */
  readonly events: BusinessEvent[];
  /** The channel the transaction runs on (absent in rules that never need it). */
  readonly channelId?: string;
  /** Transient data of the proposal: given to the endorsers, never written to the ledger. */
  readonly transient?: ReadonlyMap<string, Uint8Array>;
}
