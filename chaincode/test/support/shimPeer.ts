/**
 * A SIMULATED PEER that speaks Fabric's real chaincode shim protocol. It is NOT a Fabric network: there is
 * no endorsement policy, no ordering service, no blocks, no MVCC or phantom-read validation, no MSP chain
 * validation, no TLS, no gateway. What it does check is that the BUILT chaincode (chaincode/dist, started
 * by the real `fabric-chaincode-node server` exactly as an external builder / chaincode-as-a-service peer
 * would) works inside the real fabric-shim / fabric-contract-api runtime: transaction dispatch, argument
 * and return serialization, the stub API (state reads and writes, paged range iterators, key history),
 * client identity parsing from a real X.509 certificate, the chaincode event, and error responses.
 *
 * The protocol as fabric-shim 2.5 implements it (lib/server.js, handler.js, stub.js, iterators.js) and
 * as the Fabric 2.x peer answers it (core/chaincode/handler.go, query_response.go):
 *   - the peer dials the chaincode server's `protos.Chaincode/Connect` bidi stream; the chaincode sends
 *     REGISTER (ChaincodeID with its package id); the peer answers REGISTERED, then READY;
 *   - the peer sends TRANSACTION: payload = the ChaincodeInput taken from the proposal's
 *     ChaincodeInvocationSpec, `proposal` = the client's SignedProposal, txid and channel id;
 *   - while it runs, the chaincode asks GET_STATE, PUT_STATE, DEL_STATE, GET_STATE_BY_RANGE,
 *     QUERY_STATE_NEXT, QUERY_STATE_CLOSE, GET_HISTORY_FOR_KEY ...; the peer answers RESPONSE or ERROR;
 *   - it ends with COMPLETED (a peer.Response and the ChaincodeEvent) or ERROR.
 * Reads see committed state only (never the transaction's own writes), as on a peer. Range and history
 * results come in batches of 100 with has_more (the peer's maxResultLimit), the rest fetched with
 * QUERY_STATE_NEXT; a paginated range (QueryMetadata with a page size) returns one page and a bookmark
 * (this chaincode never pages, and the peer's refusal of paginated reads in an update transaction is not
 * modelled). History is newest first, as Fabric 2.x returns it. Private data, rich (CouchDB) queries, state
 * metadata and chaincode-to-chaincode calls are answered with ERROR, as unsupported. Keys are ordered by
 * their UTF-8 bytes, as in LevelDB. Transactions run one at a time; `invoke` commits the write set of a
 * successful one (status below 400, the peer's ERRORTHRESHOLD: fabric-contract-api only answers 200 or
 * 500) and records every written key's history; `evaluate` never commits.
 *
 * Proposals are built as a client SDK builds them: SerializedIdentity{mspid, PEM cert} as creator, a
 * random nonce, tx id = hex SHA-256(nonce || creator), ChannelHeader{ENDORSER_TRANSACTION, channel, tx id,
 * timestamp, epoch 0, ChaincodeHeaderExtension}, ChaincodeProposalPayload{ChaincodeInvocationSpec}, and an
 * ECDSA P-256/SHA-256 signature (low-S, DER) over the proposal bytes by the certificate's key. The peer
 * side unpacks what it received and checks the signature against the creator's certificate and the tx id
 * against the nonce and creator (fabric-shim itself verifies neither).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  createHash,
  randomBytes,
  randomUUID,
  sign as ecSign,
  verify as ecVerify,
  X509Certificate,
} from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { common, ledger, msp, peer } from '@hyperledger/fabric-protos';
import { peer as peerV3 } from 'fabric-protos-v3';
import { Timestamp } from 'google-protobuf/google/protobuf/timestamp_pb';

const chaincodeRoot = path.resolve(__dirname, '..', '..');
const bin = path.resolve(chaincodeRoot, '..', 'node_modules', '.bin', 'fabric-chaincode-node');
const clockPreload = path.resolve(__dirname, 'clockOffset.js');

/** Results per QueryResponse batch, as the peer's QueryResponseGenerator.MaxResultLimit. */
export const QUERY_BATCH = 100;
/** core.ledger.state.totalQueryLimit, the peer's default. */
export const TOTAL_QUERY_LIMIT = 100_000;
/** shim.ERRORTHRESHOLD: a response status from here on fails the endorsement. */
const ERROR_THRESHOLD = 400;

// Fabric v3.1's batch messages come from the upstream generated protos (0.3, a dev dependency): an
// encoding independent of the chaincode's own declarations (contracts/peerState.ts). This file's
// fabric-protos (0.2, as fabric-shim's) predates them, and google-protobuf keeps the classes of both
// versions under one global name, so ChaincodeMessage (and its Type enum) may be either's: the two new
// message types are numbered here (peer/chaincode_shim.proto), and only messages 0.2 lacks come from 0.3.
const T = { ...peer.ChaincodeMessage.Type, WRITE_BATCH_STATE: 24, GET_STATE_MULTIPLE: 25 } as const;
type MsgType = (typeof T)[keyof typeof T];
const TYPE_NAMES = new Map<number, string>(Object.entries(T).map(([name, n]) => [n, name]));
export const typeName = (t: number): string => TYPE_NAMES.get(t) ?? `TYPE_${t}`;

const utf8 = new TextEncoder();
const text = new TextDecoder();
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

// ---------------------------------------------------------------------------------------------------
// Identities: real X.509 certificates (OpenSSL CLI), one per (MSP, subject), cached for the test run.

export interface Identity {
  readonly mspId: string;
  /** The NodeOU written in the certificate's subject ('' for none). */
  readonly role: string;
  readonly subject: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const identities = new Map<string, Identity>();

/** A self-signed prime256v1 certificate whose subject carries `OU=<role>` (none when role is ''). */
export function identity(mspId: string, role: string, subject?: string): Identity {
  const subj = subject ?? `/C=CN/O=${mspId}${role ? `/OU=${role}` : ''}/CN=${role || 'user'}@${mspId}`;
  const cacheKey = `${mspId}|${subj}`;
  const cached = identities.get(cacheKey);
  if (cached) return cached;
  const dir = mkdtempSync(path.join(tmpdir(), 'evpay-shim-id-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    const openssl = (args: string[]): void => {
      const r = spawnSync('openssl', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
    };
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
    openssl(['req', '-new', '-x509', '-key', keyFile, '-out', certFile, '-days', '2', '-subj', subj]);
    const id: Identity = {
      mspId,
      role,
      subject: subj,
      certPem: readFileSync(certFile, 'utf8'),
      keyPem: readFileSync(keyFile, 'utf8'),
    };
    identities.set(cacheKey, id);
    return id;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// ECDSA signatures as Fabric makes them: DER, with s in the lower half of the order (low-S).

const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

function derInteger(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let b = Buffer.from(hex, 'hex');
  if ((b[0] ?? 0) & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return Buffer.concat([Buffer.from([0x02, b.length]), b]);
}

export function signLowS(keyPem: string, data: Uint8Array): Buffer {
  const raw = ecSign('sha256', data, { key: keyPem, dsaEncoding: 'ieee-p1363' });
  const r = BigInt('0x' + raw.subarray(0, 32).toString('hex'));
  let s = BigInt('0x' + raw.subarray(32).toString('hex'));
  if (s > P256_N / 2n) s = P256_N - s;
  const body = Buffer.concat([derInteger(r), derInteger(s)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

// ---------------------------------------------------------------------------------------------------
// Proposals.

export interface BuiltProposal {
  txId: string;
  signed: peer.SignedProposal;
}

/** A SignedProposal for `args` (args[0] the function, e.g. "evpay:StartSession" or "StartSession"). */
export function buildProposal(
  id: Identity,
  channelId: string,
  chaincodeName: string,
  args: readonly string[],
  timeMs: number,
  transient: Record<string, Uint8Array> = {},
): BuiltProposal {
  const sid = new msp.SerializedIdentity();
  sid.setMspid(id.mspId);
  sid.setIdBytes(utf8.encode(id.certPem));
  const creator = sid.serializeBinary();
  const nonce = randomBytes(24);
  const txId = sha256Hex(Buffer.concat([nonce, creator]));

  const ccId = new peer.ChaincodeID();
  ccId.setName(chaincodeName);
  const ext = new peer.ChaincodeHeaderExtension();
  ext.setChaincodeId(ccId);
  const ts = new Timestamp();
  ts.setSeconds(Math.floor(timeMs / 1000));
  ts.setNanos((((timeMs % 1000) + 1000) % 1000) * 1_000_000);
  const ch = new common.ChannelHeader();
  ch.setType(common.HeaderType.ENDORSER_TRANSACTION);
  ch.setVersion(0);
  ch.setChannelId(channelId);
  ch.setTxId(txId);
  ch.setTimestamp(ts);
  ch.setEpoch(0);
  ch.setExtension$(ext.serializeBinary());
  const sh = new common.SignatureHeader();
  sh.setCreator(creator);
  sh.setNonce(nonce);
  const header = new common.Header();
  header.setChannelHeader(ch.serializeBinary());
  header.setSignatureHeader(sh.serializeBinary());

  const input = new peer.ChaincodeInput();
  input.setArgsList(args.map((a) => utf8.encode(a)));
  const spec = new peer.ChaincodeSpec();
  spec.setType(peer.ChaincodeSpec.Type.NODE);
  spec.setChaincodeId(ccId);
  spec.setInput(input);
  const cis = new peer.ChaincodeInvocationSpec();
  cis.setChaincodeSpec(spec);
  const ccpp = new peer.ChaincodeProposalPayload();
  ccpp.setInput(cis.serializeBinary());
  for (const [k, v] of Object.entries(transient)) ccpp.getTransientmapMap().set(k, v);

  const proposal = new peer.Proposal();
  proposal.setHeader(header.serializeBinary());
  proposal.setPayload(ccpp.serializeBinary());
  const proposalBytes = proposal.serializeBinary();
  const signed = new peer.SignedProposal();
  signed.setProposalBytes(proposalBytes);
  signed.setSignature(signLowS(id.keyPem, proposalBytes));
  return { txId, signed };
}

export interface UnpackedProposal {
  txId: string;
  channelId: string;
  timestamp: { seconds: number; nanos: number };
  mspId: string;
  input: peer.ChaincodeInput;
}

/**
 * What the endorser checks before it runs chaincode (core/endorser, msgvalidation.go): an endorser
 * transaction, a creator whose certificate verifies the signature, a tx id that is SHA-256(nonce || creator).
 * (A real MSP also validates the certificate chain against the organization's CAs; there are none here.)
 */
export function unpackProposal(signed: peer.SignedProposal): UnpackedProposal {
  const proposal = peer.Proposal.deserializeBinary(signed.getProposalBytes_asU8());
  const header = common.Header.deserializeBinary(proposal.getHeader_asU8());
  const ch = common.ChannelHeader.deserializeBinary(header.getChannelHeader_asU8());
  const sh = common.SignatureHeader.deserializeBinary(header.getSignatureHeader_asU8());
  if (ch.getType() !== common.HeaderType.ENDORSER_TRANSACTION) throw new Error('not an endorser transaction');
  const creator = sh.getCreator_asU8();
  const sid = msp.SerializedIdentity.deserializeBinary(creator);
  const cert = new X509Certificate(Buffer.from(sid.getIdBytes_asU8()));
  if (!ecVerify('sha256', signed.getProposalBytes_asU8(), cert.publicKey, signed.getSignature_asU8()))
    throw new Error('proposal signature does not verify under the creator certificate');
  const expected = sha256Hex(Buffer.concat([sh.getNonce_asU8(), creator]));
  if (ch.getTxId() !== expected) throw new Error(`tx id ${ch.getTxId()} is not SHA-256(nonce || creator)`);
  const ts = ch.getTimestamp();
  if (!ts) throw new Error('proposal has no timestamp');
  const ccpp = peer.ChaincodeProposalPayload.deserializeBinary(proposal.getPayload_asU8());
  const cis = peer.ChaincodeInvocationSpec.deserializeBinary(ccpp.getInput_asU8());
  const input = cis.getChaincodeSpec()?.getInput();
  if (!input) throw new Error('proposal has no chaincode input');
  return {
    txId: ch.getTxId(),
    channelId: ch.getChannelId(),
    timestamp: { seconds: ts.getSeconds(), nanos: ts.getNanos() },
    mspId: sid.getMspid(),
    input,
  };
}

// ---------------------------------------------------------------------------------------------------
// World state: committed key/value versions and each key's history.

export interface HistoryEntry {
  txId: string;
  value: Uint8Array;
  seconds: number;
  nanos: number;
  isDelete: boolean;
}

export class WorldState {
  private readonly data = new Map<string, { value: Uint8Array; version: number }>();
  private readonly hist = new Map<string, HistoryEntry[]>();
  /** Number of committed transactions: the version of a write. */
  height = 0;

  get(key: string): Uint8Array | undefined {
    return this.data.get(key)?.value;
  }
  version(key: string): number | undefined {
    return this.data.get(key)?.version;
  }
  json<T>(key: string): T | undefined {
    const v = this.get(key);
    return v ? (JSON.parse(text.decode(v)) as T) : undefined;
  }
  /** Keys in [start, end) in LevelDB (UTF-8 byte) order; end '' means unbounded. */
  rangeKeys(start: string, end: string): string[] {
    return [...this.data.keys()]
      .filter((k) => byteOrder(k, start) >= 0 && (end === '' || byteOrder(k, end) < 0))
      .sort(byteOrder);
  }
  keys(prefix = ''): string[] {
    return [...this.data.keys()].filter((k) => k.startsWith(prefix)).sort(byteOrder);
  }
  /** Newest first, as Fabric 2.x returns history. */
  history(key: string): HistoryEntry[] {
    return [...(this.hist.get(key) ?? [])].reverse();
  }
  /** Every key with its version: equal fingerprints mean nothing was committed in between. */
  fingerprint(): string {
    return JSON.stringify([this.height, ...this.keys().map((k) => [k, this.data.get(k)?.version])]);
  }
  commit(
    txId: string,
    ts: { seconds: number; nanos: number },
    writes: ReadonlyMap<string, Uint8Array | null>,
  ): void {
    this.height += 1;
    for (const [key, value] of [...writes].sort(([a], [b]) => byteOrder(a, b))) {
      const entries = this.hist.get(key) ?? [];
      entries.push({ txId, value: value ?? new Uint8Array(), ...ts, isDelete: value === null });
      this.hist.set(key, entries);
      if (value === null) this.data.delete(key);
      else this.data.set(key, { value, version: this.height });
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The chaincode server process.

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

class ChaincodeProcess {
  private exited: Promise<void>;
  log = '';
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
  }

  static async start(ccid: string, env: NodeJS.ProcessEnv): Promise<ChaincodeProcess> {
    if (!existsSync(path.join(chaincodeRoot, 'dist', 'index.js')))
      throw new Error('chaincode/dist/index.js is missing: run `npm run build` first');
    const port = await freePort();
    const child = spawn(bin, ['server', '--chaincode-address', `127.0.0.1:${port}`, '--chaincode-id', ccid], {
      cwd: chaincodeRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new ChaincodeProcess(child, port);
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) break;
      if (await listening(port)) return proc;
      await new Promise((r) => setTimeout(r, 50));
    }
    await proc.stop();
    throw new Error(`the chaincode server did not start listening on ${port}:\n${proc.log}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      this.child.kill('SIGTERM');
      const killed = await withTimeout(this.exited, 5000, () => 'SIGTERM ignored').then(
        () => true,
        () => false,
      );
      if (!killed) this.child.kill('SIGKILL');
    }
    await this.exited;
  }
}

// ---------------------------------------------------------------------------------------------------
// The peer.

export interface ShimPeerOptions {
  channelId?: string;
  chaincodeName?: string;
  /** Extra environment for the chaincode process (peer-local configuration). */
  env?: Record<string, string>;
  /** Unix seconds the virtual clock shows at start; default: the real time. */
  startAt?: number;
  /**
   * What READY offers (ChaincodeAdditionalParams): batched writes and multi-key reads, with their most
   * records a message; default a Fabric v3.1.5 peer's (sampleconfig core.yaml: both on, 1000 each).
   * `false`: an empty READY, as a Fabric 2.x peer sends.
   */
  offer?: { writeBatch: number; getMultiple: number } | false;
}

export interface TxOptions {
  /** Proposal timestamp in unix seconds; default the virtual clock's now. */
  txTimeSeconds?: number;
  /** The proposal's transient map (given to the chaincode, never written to the ledger). */
  transient?: Record<string, Uint8Array>;
}

export interface ChaincodeEventOut {
  name: string;
  payload: string;
}

export interface TxResult {
  txId: string;
  status: number;
  message: string;
  payload: string;
  /**
   * The chaincode event as the chaincode sent it in COMPLETED (Fabric keeps one per transaction; a peer
   * would drop it with a failed endorsement, so only a committed transaction's event reaches listeners).
   */
  event?: ChaincodeEventOut;
  committed: boolean;
}

interface QueryIterator {
  results: peer.QueryResultBytes[];
  pos: number;
}

interface Simulation {
  txId: string;
  channelId: string;
  timestamp: { seconds: number; nanos: number };
  writes: Map<string, Uint8Array | null>;
  iterators: Map<string, QueryIterator>;
  done: (msg: peer.ChaincodeMessage) => void;
}

class ShimError extends Error {}

async function withTimeout<R>(p: Promise<R>, ms: number, why: () => string): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why())), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class ShimPeer {
  readonly state = new WorldState();
  /** How many messages of each type the chaincode sent (e.g. QUERY_STATE_NEXT), over the whole run. */
  readonly received = new Map<string, number>();
  private proc?: ChaincodeProcess;
  private client?: peer.ChaincodeClient;
  private stream?: grpc.ClientDuplexStream<peer.ChaincodeMessage, peer.ChaincodeMessage>;
  private readonly sims = new Map<string, Simulation>();
  private tail: Promise<unknown> = Promise.resolve();
  private offsetMs = 0;
  private registered?: { resolve: (ccName: string) => void; reject: (e: Error) => void };
  private readonly ccid: string;
  private streamError?: Error;

  private constructor(
    readonly channelId: string,
    readonly chaincodeName: string,
    private readonly env: Record<string, string>,
    private readonly offer: ShimPeerOptions['offer'],
  ) {
    this.ccid = `${chaincodeName}_1.0:${randomBytes(32).toString('hex')}`;
  }

  static async start(opts: ShimPeerOptions = {}): Promise<ShimPeer> {
    const p = new ShimPeer(
      opts.channelId ?? 'evpay-channel',
      opts.chaincodeName ?? 'evpay',
      opts.env ?? {},
      opts.offer ?? { writeBatch: 1000, getMultiple: 1000 },
    );
    if (opts.startAt !== undefined) p.offsetMs = opts.startAt * 1000 - Date.now();
    await p.launch();
    return p;
  }

  /** The virtual clock, in milliseconds and whole unix seconds. */
  nowMs(): number {
    return Date.now() + this.offsetMs;
  }
  now(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  /**
   * Moves the virtual clock to `unixSeconds` by restarting the chaincode process with its Date.now()
   * shifted by the same offset (see clockOffset.js). The world state lives here, so nothing is lost.
   */
  async setTime(unixSeconds: number): Promise<void> {
    await this.serial(async () => {
      this.offsetMs = unixSeconds * 1000 - Date.now();
      await this.shutdown();
      await this.launch();
    });
  }

  chaincodeLog(): string {
    return this.proc?.log ?? '';
  }

  invoke(id: Identity, fn: string, args: readonly string[] = [], opts: TxOptions = {}): Promise<TxResult> {
    return this.serial(() => this.execute(id, fn, args, opts, true));
  }

  evaluate(id: Identity, fn: string, args: readonly string[] = [], opts: TxOptions = {}): Promise<TxResult> {
    return this.serial(() => this.execute(id, fn, args, opts, false));
  }

  async stop(): Promise<void> {
    await this.serial(() => this.shutdown());
  }

  // --- internals ---

  private serial<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async launch(): Promise<void> {
    const nodeOptions = [process.env.NODE_OPTIONS, `--require ${clockPreload}`].filter(Boolean).join(' ');
    this.proc = await ChaincodeProcess.start(this.ccid, {
      ...process.env,
      ...this.env,
      NODE_OPTIONS: nodeOptions,
      EVPAY_TEST_CLOCK_OFFSET_MS: String(Math.round(this.offsetMs)),
    });
    this.streamError = undefined;
    this.client = new peer.ChaincodeClient(`127.0.0.1:${this.proc.port}`, grpc.credentials.createInsecure());
    const registered = new Promise<string>((resolve, reject) => (this.registered = { resolve, reject }));
    registered.catch(() => undefined); // handled below; a late failure must not go unhandled
    const stream = this.client.connect();
    this.stream = stream;
    stream.on('data', (msg: peer.ChaincodeMessage) => this.onMessage(msg));
    stream.on('error', (e: Error) => this.onStreamEnd(stream, e));
    stream.on('end', () => this.onStreamEnd(stream, new Error('the chaincode closed the stream')));
    const name = await withTimeout(
      registered,
      15_000,
      () => `no REGISTER from the chaincode:\n${this.chaincodeLog()}`,
    );
    if (name !== this.ccid) throw new Error(`chaincode registered as ${name}, expected ${this.ccid}`);
  }

  private onStreamEnd(
    stream: grpc.ClientDuplexStream<peer.ChaincodeMessage, peer.ChaincodeMessage>,
    e: Error,
  ): void {
    // A deliberate shutdown (or an earlier process's stream) is no failure; anything else fails what runs.
    if (this.stream !== stream) return;
    this.streamError = e;
    this.registered?.reject(e);
    for (const sim of this.sims.values()) {
      const err = new peer.ChaincodeMessage();
      err.setType(T.ERROR);
      err.setPayload(utf8.encode(`stream failed: ${e.message}`));
      sim.done(err);
    }
  }

  private async shutdown(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    if (stream) {
      stream.end();
      stream.cancel();
    }
    this.client?.close();
    this.client = undefined;
    await this.proc?.stop();
    this.proc = undefined;
  }

  private send(type: MsgType, payload: Uint8Array, txId: string, channelId: string): void {
    const m = new peer.ChaincodeMessage();
    m.setType(type as peer.ChaincodeMessage.TypeMap[keyof peer.ChaincodeMessage.TypeMap]);
    m.setPayload(payload);
    m.setTxid(txId);
    m.setChannelId(channelId);
    this.stream?.write(m);
  }

  private count(name: string): void {
    this.received.set(name, (this.received.get(name) ?? 0) + 1);
  }

  private onMessage(msg: peer.ChaincodeMessage): void {
    const type = msg.getType();
    const name = typeName(type);
    this.count(name);
    if (type === T.REGISTER) {
      const ccName = peer.ChaincodeID.deserializeBinary(msg.getPayload_asU8()).getName();
      this.send(T.REGISTERED, new Uint8Array(), '', '');
      const ready = new peerV3.ChaincodeAdditionalParams();
      if (this.offer) {
        ready.setUseWriteBatch(true);
        ready.setMaxSizeWriteBatch(this.offer.writeBatch);
        ready.setUseGetMultipleKeys(true);
        ready.setMaxSizeGetMultipleKeys(this.offer.getMultiple);
      }
      this.send(T.READY, this.offer ? ready.serializeBinary() : new Uint8Array(), '', '');
      this.registered?.resolve(ccName);
      this.registered = undefined;
      return;
    }
    const sim = this.sims.get(msg.getChannelId() + msg.getTxid());
    if (!sim) {
      this.send(
        T.ERROR,
        utf8.encode(`${name}: transaction context not found for ${msg.getTxid()}`),
        msg.getTxid(),
        msg.getChannelId(),
      );
      return;
    }
    if (type === T.COMPLETED || type === T.ERROR) {
      sim.done(msg);
      return;
    }
    try {
      this.send(T.RESPONSE, this.answer(type, msg.getPayload_asU8(), sim), sim.txId, sim.channelId);
    } catch (e) {
      const reason = e instanceof ShimError ? e.message : `${name} failed: ${String(e)}`;
      this.send(T.ERROR, utf8.encode(reason), sim.txId, sim.channelId);
    }
  }

  /** The peer's answer to one request of a running transaction (core/chaincode/handler.go). */
  private answer(type: number, payload: Uint8Array, sim: Simulation): Uint8Array {
    const noCollection = (c: string): void => {
      if (c !== '') throw new ShimError('private data collections are not supported by this simulated peer');
    };
    switch (type) {
      case T.GET_STATE: {
        const req = peer.GetState.deserializeBinary(payload);
        noCollection(req.getCollection());
        return this.state.get(req.getKey()) ?? new Uint8Array();
      }
      case T.PUT_STATE: {
        const req = peer.PutState.deserializeBinary(payload);
        noCollection(req.getCollection());
        if (req.getKey() === '') throw new ShimError('PUT_STATE failed: an empty key is not allowed');
        sim.writes.set(req.getKey(), Uint8Array.from(req.getValue_asU8()));
        return new Uint8Array();
      }
      case T.DEL_STATE: {
        const req = peer.DelState.deserializeBinary(payload);
        noCollection(req.getCollection());
        if (req.getKey() === '') throw new ShimError('DEL_STATE failed: an empty key is not allowed');
        sim.writes.set(req.getKey(), null);
        return new Uint8Array();
      }
      case T.GET_STATE_MULTIPLE: {
        const req = peerV3.GetStateMultiple.deserializeBinary(payload);
        noCollection(req.getCollection());
        const res = new peerV3.GetStateMultipleResult();
        res.setValuesList(req.getKeysList().map((k) => this.state.get(k) ?? new Uint8Array()));
        return res.serializeBinary();
      }
      case T.WRITE_BATCH_STATE: {
        // Each record as its own PUT_STATE or DEL_STATE would be (HandleWriteBatch); counted by kind.
        for (const r of peerV3.WriteBatchState.deserializeBinary(payload).getRecList()) {
          const put = r.getType() === peerV3.WriteRecord.Type.PUT_STATE;
          if (!put && r.getType() !== peerV3.WriteRecord.Type.DEL_STATE)
            throw new ShimError('WRITE_BATCH_STATE failed: unknown operation type');
          const kind = put ? 'PUT_STATE' : 'DEL_STATE';
          noCollection(r.getCollection());
          this.count(`batched ${kind}`);
          if (r.getKey() === '') throw new ShimError(`${kind} failed: an empty key is not allowed`);
          sim.writes.set(r.getKey(), put ? Uint8Array.from(r.getValue_asU8()) : null);
        }
        return new Uint8Array();
      }
      case T.GET_STATE_BY_RANGE: {
        const req = peer.GetStateByRange.deserializeBinary(payload);
        noCollection(req.getCollection());
        const meta = req.getMetadata_asU8();
        const qm = meta.length > 0 ? peer.QueryMetadata.deserializeBinary(meta) : undefined;
        const pageSize = qm?.getPagesize() ?? 0;
        const start = pageSize > 0 && qm?.getBookmark() ? qm.getBookmark() : req.getStartkey();
        const keys = this.state.rangeKeys(start, req.getEndkey());
        const kv = (key: string): peer.QueryResultBytes => {
          const r = new ledger.queryresult.KV();
          r.setNamespace(this.chaincodeName);
          r.setKey(key);
          r.setValue(this.state.get(key) ?? new Uint8Array());
          const qr = new peer.QueryResultBytes();
          qr.setResultbytes(r.serializeBinary());
          return qr;
        };
        const id = randomUUID();
        if (pageSize > 0) {
          // Explicit pagination: one page, no batching, and a bookmark to the next key.
          const page = keys.slice(0, pageSize);
          const rm = new peer.QueryResponseMetadata();
          rm.setFetchedRecordsCount(page.length);
          rm.setBookmark(keys[pageSize] ?? '');
          const res = new peer.QueryResponse();
          res.setResultsList(page.map(kv));
          res.setHasMore(false);
          res.setId(id);
          res.setMetadata(rm.serializeBinary());
          return res.serializeBinary();
        }
        return this.openIterator(sim, id, keys.slice(0, TOTAL_QUERY_LIMIT).map(kv));
      }
      case T.GET_HISTORY_FOR_KEY: {
        const req = peer.GetHistoryForKey.deserializeBinary(payload);
        const mods = this.state.history(req.getKey()).map((h) => {
          const m = new ledger.queryresult.KeyModification();
          m.setTxId(h.txId);
          m.setValue(h.value);
          const ts = new Timestamp();
          ts.setSeconds(h.seconds);
          ts.setNanos(h.nanos);
          m.setTimestamp(ts);
          m.setIsDelete(h.isDelete);
          const qr = new peer.QueryResultBytes();
          qr.setResultbytes(m.serializeBinary());
          return qr;
        });
        return this.openIterator(sim, randomUUID(), mods);
      }
      case T.QUERY_STATE_NEXT: {
        const id = peer.QueryStateNext.deserializeBinary(payload).getId();
        if (!sim.iterators.has(id)) throw new ShimError('QUERY_STATE_NEXT failed: query iterator not found');
        return this.nextBatch(sim, id);
      }
      case T.QUERY_STATE_CLOSE: {
        const id = peer.QueryStateClose.deserializeBinary(payload).getId();
        sim.iterators.delete(id);
        const res = new peer.QueryResponse();
        res.setHasMore(false);
        res.setId(id);
        return res.serializeBinary();
      }
      default:
        throw new ShimError(`${typeName(type)} is not supported by this simulated peer`);
    }
  }

  private openIterator(sim: Simulation, id: string, results: peer.QueryResultBytes[]): Uint8Array {
    sim.iterators.set(id, { results, pos: 0 });
    return this.nextBatch(sim, id);
  }

  /** The next batch of QUERY_BATCH; an exhausted iterator is dropped at once, as the peer does. */
  private nextBatch(sim: Simulation, id: string): Uint8Array {
    const it = sim.iterators.get(id);
    if (!it) throw new ShimError('query iterator not found');
    const batch = it.results.slice(it.pos, it.pos + QUERY_BATCH);
    it.pos += batch.length;
    const hasMore = it.pos < it.results.length;
    if (!hasMore) sim.iterators.delete(id);
    const res = new peer.QueryResponse();
    res.setResultsList(batch);
    res.setHasMore(hasMore);
    res.setId(id);
    return res.serializeBinary();
  }

  private async execute(
    id: Identity,
    fn: string,
    args: readonly string[],
    opts: TxOptions,
    commit: boolean,
  ): Promise<TxResult> {
    if (!this.stream || this.streamError)
      throw new Error(`not connected to the chaincode: ${this.streamError?.message ?? 'stopped'}`);
    const timeMs = opts.txTimeSeconds !== undefined ? opts.txTimeSeconds * 1000 : this.nowMs();
    const { signed } = buildProposal(
      id,
      this.channelId,
      this.chaincodeName,
      [fn, ...args],
      timeMs,
      opts.transient,
    );
    // From here on the peer's side: it only has what the client sent.
    const p = unpackProposal(signed);
    const key = p.channelId + p.txId;
    let done!: (m: peer.ChaincodeMessage) => void;
    const completed = new Promise<peer.ChaincodeMessage>((resolve) => (done = resolve));
    const sim: Simulation = {
      txId: p.txId,
      channelId: p.channelId,
      timestamp: p.timestamp,
      writes: new Map(),
      iterators: new Map(),
      done,
    };
    this.sims.set(key, sim);
    const tx = new peer.ChaincodeMessage();
    tx.setType(T.TRANSACTION);
    tx.setPayload(p.input.serializeBinary());
    tx.setTxid(p.txId);
    tx.setChannelId(p.channelId);
    tx.setProposal(signed);
    this.stream.write(tx);
    let reply: peer.ChaincodeMessage;
    try {
      reply = await withTimeout(completed, 30_000, () => `${fn}: no COMPLETED within 30 s`);
    } finally {
      // The transaction context ends here: open iterators go with it, as on the peer.
      this.sims.delete(key);
    }
    if (reply.getType() !== T.COMPLETED) {
      // ERROR from the chaincode (or the stream): the payload is the reason.
      return {
        txId: p.txId,
        status: 500,
        message: text.decode(reply.getPayload_asU8()),
        payload: '',
        committed: false,
      };
    }
    const res = peer.Response.deserializeBinary(reply.getPayload_asU8());
    const ev = reply.getChaincodeEvent();
    const event =
      ev && ev.getEventName() !== ''
        ? { name: ev.getEventName(), payload: text.decode(ev.getPayload_asU8()) }
        : undefined;
    const ok = res.getStatus() < ERROR_THRESHOLD;
    if (commit && ok) this.state.commit(p.txId, sim.timestamp, sim.writes);
    return {
      txId: p.txId,
      status: res.getStatus(),
      message: res.getMessage(),
      payload: text.decode(res.getPayload_asU8()),
      event,
      committed: commit && ok,
    };
  }
}
