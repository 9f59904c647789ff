/**
 * Fabric glue: the world-state conversation with the peer in fewer round trips. fabric-shim 2.5.8, the
 * newest Node shim, sends every get, put and delete as its own message and waits for the answer; a
 * session's start and stop took 35 of them on every endorsing peer, and in the network bench's profiles
 * those messages were most of the chaincode's and much of the peer's CPU after SM2 (issue 11). A Fabric
 * v3.1 peer also takes a transaction's writes as one WRITE_BATCH_STATE message and several reads as one
 * GET_STATE_MULTIPLE, and says so in its READY message (core.yaml chaincode.runtimeParams); the Go shim
 * v2 uses both. This module gives the Node chaincode the same, through the shim's own per-transaction
 * message queue, and keeps the shim's single calls when the peer did not offer them. What a transaction
 * reads and writes does not change, only how many messages carry it.
 */
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';
import type { KV, StateStore } from '../domain/context';

/**
 * The v3.1 messages fabric-shim's protos (@hyperledger/fabric-protos 0.2) lack, declared by their field
 * numbers in Fabric's peer/chaincode.proto and peer/chaincode_shim.proto (v3.1.5) and encoded with
 * protobufjs. Not with @hyperledger/fabric-protos 0.3: google-protobuf's generated classes live on one
 * global namespace, so a second version in the process replaces the shim's own classes under it.
 */
const root = protobuf.Root.fromJSON({
  nested: {
    ChaincodeAdditionalParams: {
      fields: {
        useWriteBatch: { type: 'bool', id: 1 },
        maxSizeWriteBatch: { type: 'uint32', id: 2 },
        useGetMultipleKeys: { type: 'bool', id: 3 },
        maxSizeGetMultipleKeys: { type: 'uint32', id: 4 },
      },
    },
    GetStateMultiple: {
      fields: { keys: { rule: 'repeated', type: 'string', id: 1 }, collection: { type: 'string', id: 2 } },
    },
    GetStateMultipleResult: { fields: { values: { rule: 'repeated', type: 'bytes', id: 1 } } },
    WriteBatchState: { fields: { rec: { rule: 'repeated', type: 'WriteRecord', id: 1 } } },
    WriteRecord: {
      fields: {
        key: { type: 'string', id: 1 },
        value: { type: 'bytes', id: 2 },
        collection: { type: 'string', id: 3 },
        type: { type: 'int32', id: 5 }, // WriteRecord.Type: PUT_STATE 9, DEL_STATE 10
      },
    },
  },
});
/** The types, looked up once: every batched read and write encodes or decodes one. */
const T = {
  params: root.lookupType('ChaincodeAdditionalParams'),
  getMultiple: root.lookupType('GetStateMultiple'),
  getMultipleResult: root.lookupType('GetStateMultipleResult'),
  writeBatch: root.lookupType('WriteBatchState'),
};
/** ChaincodeMessage.Type values (peer/chaincode_shim.proto). */
export const MESSAGE = { READY: 4, WRITE_BATCH_STATE: 24, GET_STATE_MULTIPLE: 25 } as const;
/** WriteRecord.Type values. */
export const RECORD = { PUT_STATE: 9, DEL_STATE: 10 } as const;

/** What the peer offered in READY (Fabric's ChaincodeAdditionalParams). */
export interface PeerOffer {
  readonly writeBatch: number; // most records a WRITE_BATCH_STATE may carry; 0: not offered
  readonly getMultiple: number; // most keys a GET_STATE_MULTIPLE may name; 0: not offered
}
const NOT_OFFERED: PeerOffer = { writeBatch: 0, getMultiple: 0 };
/** The Go shim's floor for a peer that offers batching with a smaller (or no) size; the peer sets no cap. */
const MIN_BATCH = 100;

/** The shim's ChaincodeMessage (its own @hyperledger/fabric-protos, which its gRPC stream insists on). */
interface ShimMessage {
  getType(): number;
  getPayload_asU8(): Uint8Array;
  setType(t: number): void;
  setPayload(p: Uint8Array): void;
  setTxid(t: string): void;
  setChannelId(c: string): void;
}
interface ShimIterator {
  next(): Promise<{ done?: boolean; value?: { key: string; value: Uint8Array } }>;
  close(): Promise<unknown>;
}
/** The parts of fabric-shim's ChaincodeMessageHandler used here (the stub holds it as `handler`). */
interface ShimHandler {
  _stream: { on(event: 'data', listener: (m: ShimMessage) => void): unknown };
  _askPeerAndListen(msg: ShimMessage, method: string): Promise<Buffer>;
  handleGetStateByRange(
    collection: string,
    start: string,
    end: string,
    channel: string,
    txId: string,
  ): Promise<{ iterator: ShimIterator }>;
}
interface ShimStub {
  handler: ShimHandler;
  getChannelID(): string;
  getTxID(): string;
  getState(key: string): Promise<Uint8Array>;
  putState(key: string, value: Uint8Array): Promise<void>;
  deleteState(key: string): Promise<void>;
}

const shimRequire = createRequire(require.resolve('fabric-shim'));
const shimProtos = shimRequire('@hyperledger/fabric-protos') as {
  peer: { ChaincodeMessage: new () => ShimMessage };
};
const offers = new WeakMap<object, PeerOffer>();
let listening = false;

/**
 * Reads the peer's offer from READY on every chat stream the shim opens. Called once at load, before
 * the shim connects (fabric-chaincode-node loads the contracts first).
 */
export function listenForPeerOffer(): void {
  if (listening) return;
  const { ChaincodeMessageHandler } = shimRequire('./lib/handler.js') as {
    ChaincodeMessageHandler: { prototype: { chat(this: ShimHandler, starter: unknown): unknown } };
  };
  const chat = ChaincodeMessageHandler.prototype.chat;
  ChaincodeMessageHandler.prototype.chat = function (this: ShimHandler, starter: unknown): unknown {
    this._stream.on('data', (m: ShimMessage) => {
      if (m.getType() === MESSAGE.READY) offers.set(this, offerOf(m.getPayload_asU8()));
    });
    return chat.call(this, starter);
  };
  listening = true;
}

/** The offer in a READY payload; an older peer sends none. */
export function offerOf(payload: Uint8Array): PeerOffer {
  if (payload.length === 0) return NOT_OFFERED;
  const p = T.params.toObject(T.params.decode(payload), { defaults: true }) as {
    useWriteBatch: boolean;
    maxSizeWriteBatch: number;
    useGetMultipleKeys: boolean;
    maxSizeGetMultipleKeys: number;
  };
  return {
    writeBatch: p.useWriteBatch ? Math.max(p.maxSizeWriteBatch, MIN_BATCH) : 0,
    getMultiple: p.useGetMultipleKeys ? Math.max(p.maxSizeGetMultipleKeys, MIN_BATCH) : 0,
  };
}

/**
 * One transaction's world state, as the peer serves it (the StateStore the glue puts behind the read
 * cache). Writes are kept in the order of each key's last write, its last value winning (as the peer's
 * own write set would), and sent by `flush` once the rules have succeeded; a transaction that fails
 * sends none, which changes nothing since the peer drops a failed simulation anyway.
 */
export class PeerState implements StateStore {
  private readonly handler: ShimHandler;
  private readonly offer: PeerOffer;
  private readonly channel: string;
  private readonly txId: string;
  private readonly writes = new Map<string, Uint8Array | null>();

  constructor(private readonly stub: ShimStub) {
    this.handler = stub.handler;
    this.offer = offers.get(stub.handler) ?? NOT_OFFERED;
    this.channel = stub.getChannelID();
    this.txId = stub.getTxID();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const v = await this.stub.getState(key);
    return v.length === 0 ? undefined : v;
  }

  /** Values in the order of the keys, undefined where there is none (as `get` answers each). */
  async getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    const max = this.offer.getMultiple;
    if (max === 0) return Promise.all(keys.map((k) => this.get(k)));
    const out: Array<Uint8Array | undefined> = [];
    for (let i = 0; i < keys.length; i += max) {
      const req = encode(T.getMultiple, { keys: keys.slice(i, i + max), collection: '' });
      const raw = await this.ask(MESSAGE.GET_STATE_MULTIPLE, 'GetStateMultiple', req);
      const { values } = T.getMultipleResult.decode(raw) as unknown as { values: Uint8Array[] };
      for (const v of values) out.push(v.length === 0 ? undefined : v);
    }
    if (out.length !== keys.length)
      throw new Error(`GET_STATE_MULTIPLE answered ${out.length} values for ${keys.length} keys`);
    return out;
  }

  put(key: string, value: Uint8Array): Promise<void> {
    if (this.offer.writeBatch === 0) return this.stub.putState(key, value);
    this.writes.delete(key); // a rewritten key moves to the end, like a second PUT_STATE
    this.writes.set(key, value);
    return Promise.resolve();
  }

  del(key: string): Promise<void> {
    if (this.offer.writeBatch === 0) return this.stub.deleteState(key);
    this.writes.delete(key);
    this.writes.set(key, null);
    return Promise.resolve();
  }

  /**
   * Keys in [start, end) in key order. The shim would send QUERY_STATE_CLOSE after the last result, but
   * a v3.1 peer has already closed a query it answered with has_more = false, so that message is skipped;
   * a reader that stops early still closes.
   */
  async *range(start: string, end: string): AsyncGenerator<KV> {
    // The shim's substitute for an empty start key (an empty one means "from the first simple key").
    const { iterator } = await this.handler.handleGetStateByRange(
      '',
      start || '\u0001',
      end,
      this.channel,
      this.txId,
    );
    let done = false;
    try {
      for (;;) {
        const r = await iterator.next();
        if (r.done || !r.value) {
          done = true;
          return;
        }
        yield { key: r.value.key, value: r.value.value };
      }
    } finally {
      if (!done) await iterator.close();
    }
  }

  /** Sends the kept writes, in chunks the peer accepts. */
  async flush(): Promise<void> {
    if (this.writes.size === 0) return;
    const records = [...this.writes].map(([key, value]) =>
      value === null
        ? { key, collection: '', type: RECORD.DEL_STATE }
        : { key, value, collection: '', type: RECORD.PUT_STATE },
    );
    this.writes.clear();
    const max = this.offer.writeBatch;
    for (let i = 0; i < records.length; i += max) {
      const batch = encode(T.writeBatch, { rec: records.slice(i, i + max) });
      await this.ask(MESSAGE.WRITE_BATCH_STATE, 'WriteBatchState', batch);
    }
  }

  private ask(type: number, method: string, payload: Uint8Array): Promise<Buffer> {
    const m = new shimProtos.peer.ChaincodeMessage();
    m.setType(type);
    m.setPayload(payload);
    m.setTxid(this.txId);
    m.setChannelId(this.channel);
    // The shim's queue sends one message of a transaction at a time and answers with the raw payload
    // (or throws the peer's ERROR text) for a method name it does not decode itself.
    return this.handler._askPeerAndListen(m, method);
  }
}

function encode(t: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return t.encode(t.fromObject(value)).finish();
}
