/**
 * Charging sessions on real Fabric peers through the REST gateways (issue 11), against a baseline of
 * trivial writes sent straight through @hyperledger/fabric-gateway, in the same run.
 *
 *   npm run bench:network -- [--piles 50] [--seconds 60] [--probe 30] [--idempotency on|off]
 *                            [--ocpp] [--chargers 50] [--out bench/results] [--keep-network]
 *                            [--topology bench/network/topology.json] [--ramp 2] [--warmup 10]
 *
 * 1. Brings up the benchmark's network (EVPAY_TOPOLOGY=bench/network/topology.json network/up.sh: four
 *    operators, SmartBFT, the auditor's peer, one REST gateway per organization on ports 10081..).
 * 2. Setup, not measured: margins paid and confirmed; API keys made with the gateways' own credential
 *    store (one operator-admin key per operator, one pile-backend key per pile, scoped to it); --piles
 *    piles registered round-robin over the operators, each with its own driver wallet, opened and
 *    topped up; every key used once (the gateway pays its slow hash on a key's first use).
 * 3. Probe, one at a time (--probe sessions, then as many trivial writes, each after every peer has the
 *    previous block): the latency of a lone session and of a lone write, with no queueing.
 * Each phase below (4, 5, 5b) first runs a warm-up (--warmup, 10 s, see WARM-UP) with its workers'
 * first calls spread over --ramp (2 s, see RAMP); only what settles after the warm-up is measured.
 * 4. Sessions for --seconds: every pile runs complete sessions back to back through its operator's
 *    gateway, the driver's signed authorization and the pile's signed START reading (POST /v1/sessions),
 *    then the signed STOP reading (POST /v1/session-stops) answered once the settlement is committed.
 * 5. Baseline for --seconds, with as many concurrent workers spread over the operators the same way.
 * 5b. With --ocpp, OCPP for --seconds: --chargers simulated chargers (default: as many as --piles; 1.6J
 *    and 2.0.1 alternately, each its own pile, driver wallet and pile-backend key, set up in step 2) connect
 *    to their operator's gateway and charge back to back (gateway-api/src/sim/charger.ts, the simulator
 *    `evpay charger` runs): the remote start with the driver's signed authorization, StartTransaction /
 *    TransactionEvent(Started) with the signed START, the signed STOP; each session's settlement is read
 *    back through the REST session route, and the next one starts once it is settled. Reported beside the
 *    REST figures: settled sessions per second, stop-to-settled p50/p95/p99, and the gateways' own view.
 * 6. Results in bench/results/network-sessions.{json,md}, the targets printed PASS or MISS (never a
 *    failure: the figures are the product), and the network stopped (network/down.sh), also on an error
 *    or a signal; --keep-network leaves it running for the next run.
 *
 * package.json runs it with `node --import tsx`, not the tsx command: tsx relays a signal to the script
 * and SIGKILLs it unless it acknowledges within about 60 ms, which a loaded machine does not promise, and
 * the handler that stops the network would not run (a watchdog process stops it then, a second later).
 *
 * Everything runs on one machine: the bench's own signing (3 SM2 signatures per session, like a pile and
 * a driver app would make on their own devices) competes with the peers for the same cores, and its CPU
 * is reported with the rest.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sm2GenerateKeyPair } from '../chaincode/src/crypto';
import { Driver, PileDevice } from '../chaincode/test/support/fixtures';
import { CredentialStore, type Role } from '../gateway-api/src/auth/credentials';
import { TransactionInvalidated } from '../gateway-api/src/fabric/errors';
import {
  chaincodeError,
  committedOnEveryPeer,
  connectAs,
  metricSum,
  parsePrometheus,
  peerHeight,
  submit,
  whenEndorsable,
  type Connection,
} from '../network/tools/client';
import { readNetwork, type NetworkDescription, type OrgDescription } from '../network/tools/network';
import { loadTopology } from '../network/tools/topology';
import { GatewayClient, queryAnswer } from '../gateway-api/src/client/gatewayClient';
import { ChargerStore } from '../gateway-api/src/ocpp/chargers';
import {
  ocppEndpoint,
  runChargerSessions,
  SimCharger,
  type ChargerSessionOutcome,
} from '../gateway-api/src/sim/charger';
import { SimDriver, SimPile } from '../gateway-api/src/sim/devices';
import { dearestFenPerKwh, seededRng } from '../gateway-api/src/sim/meter';
import type { OcppVersion } from '../gateway-api/src/sim/ocppMessages';
import {
  cpuTicks,
  machine,
  networkProcesses,
  percentiles,
  PROCESS_KINDS,
  usageByKind,
  verdictText,
  type KindUsage,
  type Percentiles,
  type ProcessKind,
  type Tracked,
  type Verdict,
} from './support/measure';

const ROOT = resolve(__dirname, '..');

const { values } = parseArgs({
  options: {
    piles: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '60' },
    probe: { type: 'string', default: '30' },
    idempotency: { type: 'string', default: 'on' },
    out: { type: 'string', default: join(__dirname, 'results') },
    'keep-network': { type: 'boolean', default: false },
    ocpp: { type: 'boolean', default: false },
    chargers: { type: 'string' },
    ramp: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '10' },
    topology: { type: 'string', default: join(__dirname, 'network', 'topology.json') },
  },
});
const PILES = Number(values.piles);
const SECONDS = Number(values.seconds);
const PROBE = Number(values.probe);
const IDEMPOTENCY = values.idempotency === 'on';
const OUT = resolve(values.out);
/** The bench's own network by default; --topology names another (a developer's, on other ports). */
const TOPOLOGY = resolve(values.topology);
const TOPOLOGY_SHOWN = relative(ROOT, TOPOLOGY).startsWith('..') ? TOPOLOGY : relative(ROOT, TOPOLOGY);
const KEEP = values['keep-network'];
const OCPP = values.ocpp;
const CHARGERS = Number(values.chargers ?? values.piles);
/**
 * RAMP: in each phase, worker i of n makes its first call i/n of --ramp seconds after the phase begins,
 * so the first calls arrive spread over the ramp as they would from independent piles, not all in one
 * millisecond (a thundering herd that the first rounds of every phase then queue behind). The same ramp
 * for the sessions, the baseline and OCPP; it is part of the warm-up (see WARM-UP).
 */
const RAMP_MS = Number(values.ramp) * 1000;
/**
 * WARM-UP: each phase runs --warmup seconds before its measured window of --seconds (the ramp is part
 * of it). What happens in it is counted apart: the rates and the CPU per session count what settled or
 * committed after it, the latency percentiles what was sent after it, and its own p99 is reported beside
 * them. The first seconds after a burst of new piles show cold caches (each key's SM2 table is built on
 * its second use, in every endorsing chaincode process) and workers still in lockstep, which a network
 * that runs all day does not have.
 */
const WARMUP_MS = Number(values.warmup) * 1000;
if (!(Number.isInteger(PILES) && PILES > 0 && SECONDS > 0 && Number.isInteger(PROBE) && PROBE >= 0)) {
  process.stderr.write('network-sessions: --piles and --seconds must be positive, --probe 0 or more\n');
  process.exit(2);
}
if (!(RAMP_MS >= 0 && WARMUP_MS >= 0 && RAMP_MS < SECONDS * 1000 + WARMUP_MS)) {
  process.stderr.write(
    'network-sessions: --ramp and --warmup are 0 or more seconds, --ramp shorter than the phase\n',
  );
  process.exit(2);
}
if (!(Number.isInteger(CHARGERS) && CHARGERS > 0) || (values.chargers !== undefined && !OCPP)) {
  process.stderr.write('network-sessions: --chargers is a positive number, with --ocpp\n');
  process.exit(2);
}
if (!['on', 'off'].includes(values.idempotency)) {
  process.stderr.write('network-sessions: --idempotency is on or off\n');
  process.exit(2);
}

/** What one session charges at most (held at start) and delivers; the top-up covers many sessions. */
const CAP_FEN = 2_000;
const SESSION_WH = 500;
const TOP_UP_FEN = 5_000_000;
const RUN = Date.now().toString(36).toUpperCase();
const nowSec = (): number => Math.floor(Date.now() / 1000);
const log = (s: string): void => void process.stdout.write(`[bench] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Worker `index` of `count` waits this long before its first call (see RAMP). */
const rampDelay = (index: number, count: number): Promise<void> => sleep((index * RAMP_MS) / count);

// --- the network: up at the start, down at the end whatever happens ----------------------------------------

const scriptEnv = { ...process.env, EVPAY_TOPOLOGY: TOPOLOGY };
const DOWN_SH = join(ROOT, 'network', 'down.sh');
/** Written once the network was stopped, so that the watchdog does not stop it again. */
const DOWN_MARKER = join(tmpdir(), `evpay-bench-sessions-${process.pid}.down`);
let stopped = false;
/** up.sh while it runs, in a process group of its own (see networkUp). */
let upRunning: ChildProcess | undefined;
function networkDown(): void {
  const up = upRunning;
  if (up?.pid !== undefined && up.exitCode === null && up.signalCode === null) {
    // Stopped while up.sh runs: end it and what it runs now (its process group), then wait for the group
    // to be gone (10 s at most), so that down.sh does not race it.
    try {
      process.kill(-up.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    spawnSync('bash', [
      '-c',
      'for _ in $(seq 100); do kill -0 -- "-$1" 2>/dev/null || exit 0; sleep 0.1; done',
      'wait',
      String(up.pid),
    ]);
  }
  if (KEEP || stopped) return;
  stopped = true;
  log('stopping the bench network (network/down.sh)');
  spawnSync(DOWN_SH, [], { env: scriptEnv, stdio: 'inherit' });
  writeFileSync(DOWN_MARKER, '');
}
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const)
  process.on(signal, () => {
    process.stderr.write(`network-sessions: ${signal}, stopping\n`);
    networkDown();
    process.exit(code);
  });

/**
 * For a death no handler sees (SIGKILL, out of memory): a detached shell waits for this process to end
 * and runs network/down.sh unless it was run already.
 */
function watchdog(): void {
  if (KEEP) return;
  const script =
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done; if [ -e "$2" ]; then rm -f "$2"; else "$3"; fi';
  spawn('bash', ['-c', script, 'watchdog', String(process.pid), DOWN_MARKER, DOWN_SH], {
    detached: true,
    stdio: 'ignore',
    env: scriptEnv,
  }).unref();
}

/**
 * up.sh is idempotent, so a failed attempt is made once more: on a loaded machine a restarted orderer
 * may not list its channel yet when channel.sh asks, which then tries to join it again and fails. It runs
 * asynchronously, in a process group of its own, so that a signal reaches this process's handler at once
 * and the handler can stop up.sh before down.sh (a spawnSync would hold the signal until up.sh ended).
 */
async function networkUp(): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    log(`bringing up the bench network (EVPAY_TOPOLOGY=${TOPOLOGY} network/up.sh)`);
    const child = spawn(join(ROOT, 'network', 'up.sh'), [], {
      env: scriptEnv,
      stdio: 'inherit',
      detached: true,
    });
    upRunning = child;
    const ended = await new Promise<string | number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    });
    upRunning = undefined;
    if (ended === 0) return;
    if (attempt >= 2) throw new Error(`network/up.sh exited with ${ended}`);
    log('network/up.sh failed; running it once more in 5 s');
    await sleep(5000);
  }
}

// --- HTTP ----------------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: { code?: string; message?: string; blockNumber?: number; result?: unknown } & Record<string, unknown>;
}

async function http(
  url: string,
  method: 'GET' | 'POST',
  path: string,
  apiKey: string,
  body?: unknown,
  idempotencyKey?: string,
): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `Bearer ${apiKey}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  try {
    const res = await fetch(url + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: Reply['body'];
    try {
      parsed = JSON.parse(text) as Reply['body'];
    } catch {
      parsed = { code: `HTTP_${res.status}`, message: text.slice(0, 200) };
    }
    return { status: res.status, body: parsed };
  } catch (e) {
    return { status: 0, body: { code: 'NETWORK_ERROR', message: (e as Error).message } };
  }
}

/** A POST that must commit (setup steps): answers its block number. */
async function committed(url: string, path: string, apiKey: string, body: unknown): Promise<number> {
  const r = await http(url, 'POST', path, apiKey, body);
  if (r.status !== 200) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return Number(r.body.blockNumber);
}

const credentialStore = (net: NetworkDescription, org: OrgDescription): CredentialStore =>
  new CredentialStore(join(net.runDir, 'nodes', org.gateway.node, 'data'));

async function apiKey(
  net: NetworkDescription,
  org: OrgDescription,
  role: Role,
  name: string,
  piles?: string[],
): Promise<string> {
  const made = await credentialStore(net, org).create({ name, role, ...(piles ? { piles } : {}) });
  return made.apiKey;
}

const TIMED = {
  start: { route: '/v1/sessions', tx: 'StartSession' },
  stop: { route: '/v1/session-stops', tx: 'StopSession' },
} as const;

/**
 * The gateways' retry and conflict counters, and the time their session requests took (HTTP, and within
 * it the ledger: endorse, order, commit), as sums and counts from their histograms, over the organizations.
 */
async function gatewayCounters(net: NetworkDescription): Promise<Record<string, number>> {
  const sum: Record<string, number> = {};
  const add = (k: string, v: number): void => void (sum[k] = (sum[k] ?? 0) + v);
  for (const o of net.orgs) {
    const m = parsePrometheus(await (await fetch(`${o.gateway.url}/metrics`)).text());
    // The sessions' own, and every transaction's (the gateways also submit their own, e.g. reward claims).
    for (const { tx } of Object.values(TIMED))
      add('mvccConflicts', metricSum(m, 'evpay_gateway_mvcc_conflicts_total', { tx }));
    add('mvccConflictsAllTx', metricSum(m, 'evpay_gateway_mvcc_conflicts_total'));
    for (const kind of ['mvcc', 'resolve', 'replay'])
      add(kind, metricSum(m, 'evpay_gateway_retries_total', { kind }));
    for (const part of ['sum', 'count'])
      add(`batch.${part}`, metricSum(m, `evpay_gateway_session_batch_calls_${part}`));
    for (const [name, { route, tx }] of Object.entries(TIMED))
      for (const part of ['sum', 'count']) {
        add(
          `${name}.http.${part}`,
          metricSum(m, `evpay_gateway_http_request_duration_seconds_${part}`, { method: 'POST', route }),
        );
        add(`${name}.ledger.${part}`, metricSum(m, `evpay_gateway_submit_duration_seconds_${part}`, { tx }));
      }
  }
  return sum;
}

const difference = (after: Record<string, number>, before: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));

/** The session calls' transactions between two readings of gatewayCounters (batcher.ts). */
function sessionTransactions(d: Record<string, number>): {
  batches: number;
  batchedCalls: number;
  alone: number;
} {
  const calls = (d['start.ledger.count'] ?? 0) + (d['stop.ledger.count'] ?? 0);
  const batchedCalls = d['batch.sum'] ?? 0;
  return { batches: d['batch.count'] ?? 0, batchedCalls, alone: calls - batchedCalls };
}

/** Mean ms of a timed part between two readings of gatewayCounters. */
const meanMs = (d: Record<string, number>, key: string): number =>
  (d[`${key}.count`] ?? 0) === 0 ? 0 : Math.round((1000 * (d[`${key}.sum`] ?? 0)) / (d[`${key}.count`] ?? 1));

// --- actors ----------------------------------------------------------------------------------------------

interface PileActor {
  index: number;
  org: OrgDescription;
  pile: PileDevice;
  driver: Driver;
  key: string;
  meterWh: number;
  sessions: number;
}

/** Failures and retries of a phase, by the gateway's error code (or HTTP status). */
class Tally {
  readonly failures: Record<string, number> = {};
  readonly clientRetries: Record<string, number> = {};
  invalidated = 0;
  fail(code: string): void {
    this.failures[code] = (this.failures[code] ?? 0) + 1;
  }
  retry(code: string): void {
    this.clientRetries[code] = (this.clientRetries[code] ?? 0) + 1;
  }
}

/**
 * A pile backend's POST: an unknown outcome (504, or 503 before anything was sent) is asked again with
 * the same Idempotency-Key (the gateway resolves it by transaction id, never charging twice); a
 * transaction invalidated at commit (409, after the gateway's own read-conflict retries) wrote nothing
 * and is sent again under a new key. Every other answer is final.
 */
async function pilePost(
  p: PileActor,
  path: string,
  body: unknown,
  tag: string,
  tally: Tally,
): Promise<Reply> {
  let key = IDEMPOTENCY ? `${RUN}-${p.index}-${tag}` : undefined;
  for (let attempt = 1; ; attempt++) {
    const r = await http(p.org.gateway.url, 'POST', path, p.key, body, key);
    if (r.status === 200 || attempt >= 5) return r;
    const code = r.body.code ?? `HTTP_${r.status}`;
    if (code === 'TRANSACTION_INVALIDATED') {
      tally.invalidated++;
      if (key) key = `${key}-r${attempt}`;
    } else if (!(r.status === 504 || r.status === 503 || r.status === 0)) return r;
    tally.retry(code);
    await sleep(200);
  }
}

interface SessionTimes {
  /** performance.now() when the start request was sent. */
  startedAt: number;
  startMs: number;
  stopMs: number;
  /** performance.now() when the settlement's answer arrived. */
  settledAt: number;
}

/**
 * LAGGING ENDORSER: a gateway answers once a transaction is committed on its own peer, but the next
 * transaction of the same pile may be endorsed by another operator's peer that has not committed that
 * block yet. It then refuses on the state before: a new START gets PILE_BUSY naming the session just
 * settled, a STOP gets SESSION_NOT_FOUND for the session just started. Nothing was written (a refusal at
 * endorsement), so the pile backend sends the same signed request again (under a new Idempotency-Key:
 * the refusal is the final answer of the first one) after STALE_WAIT_MS; each such retry is counted, and
 * its time is part of the measured latency.
 */
const STALE_WAIT_MS = 50;
const STALE_TRIES = 40;

async function untilFresh(
  p: PileActor,
  path: string,
  body: unknown,
  tag: string,
  tally: Tally,
  stale: (r: Reply) => boolean,
): Promise<Reply> {
  for (let attempt = 1; ; attempt++) {
    const r = await pilePost(p, path, body, attempt === 1 ? tag : `${tag}-s${attempt}`, tally);
    if (r.status === 200 || attempt >= STALE_TRIES || !stale(r)) return r;
    tally.retry(`${r.body.code} (lagging endorser)`);
    await sleep(STALE_WAIT_MS);
  }
}

/** One complete session on a pile: authorization + START, then STOP, answered settled. */
async function oneSession(p: PileActor, tally: Tally): Promise<SessionTimes | undefined> {
  const previous = p.sessions > 0 ? `s${p.sessions}` : undefined;
  const sid = `s${++p.sessions}`;
  const t = nowSec();
  const start = {
    authorization: p.driver.authorize(p.pile.pileId, CAP_FEN, t + 600, `${RUN}-${p.index}-${p.sessions}`),
    startReading: p.pile.reading('START', sid, p.meterWh, t),
  };
  const t0 = performance.now();
  const started = await untilFresh(
    p,
    '/v1/sessions',
    start,
    `${sid}-start`,
    tally,
    (r) =>
      r.body.code === 'PILE_BUSY' &&
      previous !== undefined &&
      (r.body.details as { sessionId?: string } | undefined)?.sessionId === previous,
  );
  const startMs = performance.now() - t0;
  if (started.status !== 200) {
    tally.fail(`start ${started.body.code ?? started.status}`);
    return undefined;
  }
  p.meterWh += SESSION_WH;
  const stop = { stopReading: p.pile.reading('STOP', sid, p.meterWh, nowSec()) };
  const t1 = performance.now();
  const stopped = await untilFresh(
    p,
    '/v1/session-stops',
    stop,
    `${sid}-stop`,
    tally,
    (r) => r.body.code === 'SESSION_NOT_FOUND',
  );
  const settledAt = performance.now();
  const status = (stopped.body.result as { status?: string } | undefined)?.status;
  if (stopped.status !== 200 || status !== 'settled') {
    tally.fail(`stop ${stopped.body.code ?? stopped.status}`);
    return undefined;
  }
  return { startedAt: t0, startMs, stopMs: settledAt - t1, settledAt };
}

/** The cheapest real single-key write (see BASELINE below): a wallet for a fresh SM2 key. */
async function trivialWrite(conn: Connection): Promise<void> {
  await submit(conn, 'OpenWallet', JSON.stringify({ publicKey: sm2GenerateKeyPair().publicKeyHex }));
}

/*
 * BASELINE: the chaincode has no no-op transaction, and none is added for the bench. OpenWallet with a
 * fresh SM2 key is the cheapest real write: one new wallet key (plus the pending audit record every
 * business transaction leaves under a key of its own, so nothing is shared between writers), two point
 * reads (the caller's operator record, the absent wallet), no signature to verify. RecordReading, the
 * other candidate, needs an open session and verifies the pile's SM2 signature, so it is not cheaper;
 * TopUp reads and writes the wallet plus a replay reference and a clearing position. The client signs
 * nothing but Fabric's own ECDSA proposal and envelope; a fresh SM2 key pair costs the bench about what
 * one SM2 signature does.
 */
const BASELINE = {
  transaction: 'OpenWallet',
  path: '@hyperledger/fabric-gateway (network/tools/client.ts submit), client identity, own peer',
  why:
    'no no-op exists in the chaincode; OpenWallet with a fresh SM2 key writes one new wallet key (and its ' +
    'own pending audit record), reads two keys and verifies no signature: the cheapest real write',
};

// --- phases ----------------------------------------------------------------------------------------------

/**
 * The peers' own view of a phase, from their Prometheus metrics: how long the proposals of our chaincode
 * took, endorsements and evaluations (reads) alike, as the peer's endorser_proposal_duration counts them
 * (mean over the operators' peers; refused proposals counted apart), and how long a block
 * took to commit (MVCC validation, block store, state database: mean over every peer).
 */
interface PeerTimes {
  endorsements: number;
  endorseMeanMs: number;
  refusedEndorsements: number;
  commitMsPerBlock: number;
}

async function peerCounters(net: NetworkDescription): Promise<Record<string, number>> {
  const sum: Record<string, number> = {};
  const add = (k: string, v: number): void => void (sum[k] = (sum[k] ?? 0) + v);
  const channel = { channel: net.channel };
  for (const o of net.orgs) {
    let m: Map<string, number>;
    try {
      m = parsePrometheus(await (await fetch(`${o.peer.operationsUrl}/metrics`)).text());
    } catch {
      continue;
    }
    const cc = { chaincode: net.chaincode, ...channel };
    add('endorse.sum', metricSum(m, 'endorser_proposal_duration_sum', { ...cc, success: 'true' }));
    add('endorse.count', metricSum(m, 'endorser_proposal_duration_count', { ...cc, success: 'true' }));
    add('refused', metricSum(m, 'endorser_proposal_duration_count', { ...cc, success: 'false' }));
    for (const part of [
      'ledger_block_processing_time',
      'ledger_blockstorage_and_pvtdata_commit_time',
      'ledger_statedb_commit_time',
    ])
      add('commit.sum', metricSum(m, `${part}_sum`, channel));
    add('commit.count', metricSum(m, 'ledger_block_processing_time_count', channel));
  }
  return sum;
}

const peerTimes = (d: Record<string, number>): PeerTimes => ({
  endorsements: d['endorse.count'] ?? 0,
  endorseMeanMs: meanMs(d, 'endorse'),
  refusedEndorsements: d.refused ?? 0,
  commitMsPerBlock: meanMs(d, 'commit'),
});

interface Phase<T> {
  seconds: number;
  usage: Record<ProcessKind, KindUsage>;
  blocks: number;
  peers: PeerTimes;
  result: T;
}

/**
 * The first operator's peer's height, read again until it answers: a peer busy under load can miss the
 * metrics read's 2 s time-out, and a missed read once counted a phase's blocks from 0 (the whole ledger).
 */
async function heightNow(net: NetworkDescription): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const h = await peerHeight(net.orgs[0]!.peer.operationsUrl, net.channel);
    if (h !== undefined) return h;
    if (attempt === 10) throw new Error(`${net.orgs[0]!.peer.operationsUrl} did not report its height`);
    await sleep(500);
  }
}

/** Runs `body` with CPU ticks, the ledger height and the peers' timings read before and after. */
async function measured<T>(
  net: NetworkDescription,
  tracked: () => Tracked[],
  body: (windowStart: number) => Promise<T>,
): Promise<Phase<T>> {
  const procs = tracked();
  // The body starts at once; the counters are read when its warm-up ends (see WARM-UP).
  const windowStart = performance.now() + WARMUP_MS;
  const running = body(windowStart);
  running.catch(() => undefined); // awaited below; this only keeps a failure in the warm-up handled
  await sleep(windowStart - performance.now());
  const h0 = await heightNow(net);
  const p0 = await peerCounters(net);
  const before = cpuTicks(procs);
  const t0 = performance.now();
  const result = await running;
  const seconds = (performance.now() - t0) / 1000;
  const after = cpuTicks(procs);
  const peers = peerTimes(difference(await peerCounters(net), p0));
  const h1 = await heightNow(net);
  return { seconds, usage: usageByKind(procs, before, after), blocks: h1 - h0, peers, result };
}

/** The commit measured, and whether the code the network runs differs from it (a shared work tree). */
function sourceTree(): { commit: string; uncommittedChanges: string[] } {
  const git = (...args: string[]): string | undefined => {
    const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  const changed = git('status', '--porcelain', '--', 'chaincode', 'gateway-api', 'network');
  return {
    commit: git('rev-parse', '--short', 'HEAD') ?? 'unknown',
    uncommittedChanges: (changed ?? '')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.slice(3)),
  };
}

// --- OCPP (--ocpp): simulated chargers through the gateways' CSMS ------------------------------------

interface ChargerActor {
  index: number;
  org: OrgDescription;
  localId: string;
  charger: SimCharger;
  driver: SimDriver;
  /** A pile-backend key scoped to the charger's pile: asks for the remote starts, reads the sessions. */
  key: string;
}

/**
 * Setup, not measured: per charger a pile (its own SM2 key) registered round-robin over the operators, a
 * driver wallet opened and topped up, a pile-backend key scoped to the pile, and the charger listed at the
 * operator's gateway (what `evpay-gateway chargers add` writes, read by the running gateway). Chargers
 * speak 1.6J and 2.0.1 alternately.
 */
async function prepareChargers(
  net: NetworkDescription,
  operators: OrgDescription[],
  adminOf: (org: OrgDescription) => string,
): Promise<ChargerActor[]> {
  log(`setup: ${CHARGERS} OCPP chargers, their piles and driver wallets`);
  const actors = await Promise.all(
    Array.from({ length: CHARGERS }, async (_, index) => {
      const org = operators[index % operators.length]!;
      const keys = sm2GenerateKeyPair();
      const localId = `C${RUN}-${index}`;
      const pileId = `${org.mspId}.${localId}`;
      const driver = new SimDriver(net.networkId, `${RUN}-c${index}`);
      const key = await apiKey(net, org, 'pile-backend', `bench ${RUN} charger ${index}`, [pileId]);
      const password = `bench-${RUN}-${index}-password`.padEnd(16, '0').slice(0, 40);
      const chargePointId = `bench-${RUN}-${index}`;
      await new ChargerStore(join(net.runDir, 'nodes', org.gateway.node, 'data')).add({
        chargePointId,
        pileId,
        password,
      });
      const version: OcppVersion = index % 2 === 0 ? '1.6' : '2.0.1';
      const pile = new SimPile(net.networkId, pileId, { ratingW: 60_000, meterWh: 0 }, keys);
      const charger = new SimCharger({
        endpoint: ocppEndpoint(org.gateway.url),
        chargePointId,
        password,
        version,
        pile,
      });
      return { index, org, charger, driver, key, localId };
    }),
  );
  let last = 0;
  const seen = (b: number): void => void (last = Math.max(last, b));
  (
    await Promise.all(
      actors.flatMap((a) => [
        committed(a.org.gateway.url, '/v1/piles', adminOf(a.org), {
          localId: a.localId,
          publicKey: a.charger.pile.publicKey,
        }),
        committed(a.org.gateway.url, '/v1/wallets', adminOf(a.org), { publicKey: a.driver.publicKey }),
      ]),
    )
  ).forEach(seen);
  await committedOnEveryPeer(net, BigInt(last));
  (
    await Promise.all(
      actors.map((a) =>
        committed(a.org.gateway.url, '/v1/top-ups', adminOf(a.org), {
          walletId: a.driver.walletId,
          amountFen: TOP_UP_FEN,
          reference: `bench-${RUN}-c${a.index}`,
        }),
      ),
    )
  ).forEach(seen);
  await committedOnEveryPeer(net, BigInt(last));
  // Each key's first use pays the gateway's scrypt.
  await Promise.all(
    actors.map(async (a) => {
      const r = await http(a.org.gateway.url, 'GET', `/v1/piles/${a.charger.pile.pileId}`, a.key);
      if (r.status !== 200) throw new Error(`GET pile ${a.charger.pile.pileId}: ${r.status}`);
    }),
  );
  return actors;
}

interface OcppResult {
  chargers: number;
  versions: Record<OcppVersion, number>;
  settled: number;
  settledPerSecond: number;
  completedAfterTheWindow: number;
  remoteStartMs: Percentiles;
  stopAnswerMs: Percentiles;
  stopToSettledMs: Percentiles;
  /** The same for the sessions whose STOP was sent during the warm-up (not in the figures above). */
  warmUpStopToSettledMs: Percentiles;
  /** StopTransaction / TransactionEvent(Ended) received to the settlement committed on the gateway's peer. */
  gatewayStopToSettledMs: Percentiles;
  settlementReadsPerSession: number;
  failures: Record<string, number>;
  gateways: { meanMs: Record<'start' | 'stop', { ledger: number }> };
  blocks: number;
  peers: PeerTimes;
  phaseSeconds: number;
  usage: Record<ProcessKind, KindUsage>;
}

/**
 * The OCPP phase: every charger connects and boots (before the window), then for --seconds charges back to
 * back, playing its driver: remote start, START, STOP (no PROGRESS, as the REST sessions), and the next
 * remote start once the ledger shows the settlement. A session counts when its settlement was seen within
 * the window. Readings are whole seconds and a STOP is stamped after its START, so each session charges
 * for about a second, which the REST sessions do not.
 */
async function ocppPhase(
  net: NetworkDescription,
  tracked: () => Tracked[],
  actors: ChargerActor[],
): Promise<OcppResult> {
  const first = actors[0]!;
  const tariffs = await new GatewayClient({ url: first.org.gateway.url, apiKey: first.key }).get(
    '/v1/tariffs',
  );
  const dearest = dearestFenPerKwh(queryAnswer('ListTariffs', tariffs));
  log(`OCPP: connecting ${actors.length} chargers`);
  await Promise.all(actors.map((a) => a.charger.connect()));
  const counters0 = await gatewayCounters(net);
  const outcomes: ChargerSessionOutcome[] = [];
  let deadline = 0;
  log(
    `OCPP: ${actors.length} chargers for ${SECONDS} s through ${new Set(actors.map((a) => a.org.mspId)).size} gateways`,
  );
  let windowStartMs = 0;
  const phase = await measured(net, tracked, async (windowStart) => {
    // The simulator stamps outcomes with Date.now(): the same window start, on that clock.
    windowStartMs = Date.now() + (windowStart - performance.now());
    deadline = windowStartMs + SECONDS * 1000;
    await Promise.all(
      actors.map(async (a, i) => {
        await rampDelay(i, actors.length);
        const api = new GatewayClient({ url: a.org.gateway.url, apiKey: a.key });
        const mine = await runChargerSessions(
          {
            charger: a.charger,
            api,
            driver: { driver: a.driver, api },
            capFen: CAP_FEN,
            dearestFenPerKwh: dearest,
            progressReadings: 0,
            stepMs: 0,
            pollMs: 200,
            rng: seededRng(a.index + 1),
          },
          Number.POSITIVE_INFINITY,
          deadline,
        );
        outcomes.push(...mine);
      }),
    );
  });
  const gw = difference(await gatewayCounters(net), counters0);
  // The gateways' own stop-to-settled, from each pile's live view (its last 20 transactions).
  const gatewayMs: number[] = [];
  for (const a of actors) {
    const r = await http(a.org.gateway.url, 'GET', `/v1/piles/${a.charger.pile.pileId}/live`, a.key);
    const txs = (r.body as { transactions?: Array<{ stopToSettledMs?: number }> }).transactions ?? [];
    for (const t of txs) if (t.stopToSettledMs !== undefined) gatewayMs.push(t.stopToSettledMs);
  }
  await Promise.all(actors.map((a) => a.charger.close()));
  // See WARM-UP: the rate and the CPU count what settled after it; the latencies, the sessions whose
  // STOP was sent after it (the simulator keeps no start time), and those that never settled.
  const stopSentAt = (o: ChargerSessionOutcome): number =>
    o.settledAtMs === undefined ? Infinity : o.settledAtMs - (o.latencyMs.stopToSettled ?? 0);
  const measuredOutcomes = outcomes.filter((o) => stopSentAt(o) >= windowStartMs);
  const settled = outcomes.filter((o) => o.settled && (o.settledAtMs ?? Infinity) >= windowStartMs);
  const inWindow = settled.filter((o) => (o.settledAtMs ?? Infinity) <= deadline).length;
  const failures: Record<string, number> = {};
  for (const o of outcomes)
    for (const f of o.failures) failures[`${f.step} ${f.code}`] = (failures[`${f.step} ${f.code}`] ?? 0) + 1;
  const each = (pick: (o: ChargerSessionOutcome) => number | undefined): number[] =>
    measuredOutcomes.map(pick).filter((x): x is number => x !== undefined);
  const warmUp = outcomes.filter((o) => stopSentAt(o) < windowStartMs);
  log(`OCPP: ${inWindow} sessions settled in ${SECONDS} s (${(inWindow / SECONDS).toFixed(1)}/s)`);
  return {
    chargers: actors.length,
    versions: {
      '1.6': actors.filter((a) => a.charger.version === '1.6').length,
      '2.0.1': actors.filter((a) => a.charger.version === '2.0.1').length,
    },
    settled: inWindow,
    settledPerSecond: Math.round((inWindow / SECONDS) * 100) / 100,
    completedAfterTheWindow: settled.length - inWindow,
    remoteStartMs: percentiles(each((o) => o.latencyMs.remoteStart)),
    stopAnswerMs: percentiles(each((o) => o.latencyMs.stopAnswer)),
    stopToSettledMs: percentiles(each((o) => o.latencyMs.stopToSettled)),
    warmUpStopToSettledMs: percentiles(
      warmUp.map((o) => o.latencyMs.stopToSettled).filter((x): x is number => x !== undefined),
    ),
    gatewayStopToSettledMs: percentiles(gatewayMs),
    settlementReadsPerSession:
      settled.length === 0
        ? 0
        : Math.round((settled.reduce((n, o) => n + o.settlementReads, 0) / settled.length) * 10) / 10,
    failures,
    gateways: {
      meanMs: { start: { ledger: meanMs(gw, 'start.ledger') }, stop: { ledger: meanMs(gw, 'stop.ledger') } },
    },
    blocks: phase.blocks,
    peers: phase.peers,
    phaseSeconds: Math.round(phase.seconds * 10) / 10,
    usage: phase.usage,
  };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const host = machine();
  const tree = sourceTree();
  watchdog();
  await networkUp();
  const net = readNetwork(loadTopology(TOPOLOGY).name, ROOT);
  const operators = net.orgs.filter((o) => o.role === 'operator');
  const auditor = net.orgs.find((o) => o.role === 'auditor');
  if (!auditor || operators.length === 0) throw new Error('the bench topology has no auditor or no operator');
  const tracked = (): Tracked[] => networkProcesses(net.runDir);

  // --- setup: margins, keys, piles, wallets, top-ups (not measured) ---
  log(`setup: ${PILES} piles and wallets over ${operators.length} operators`);
  const custodian = connectAs(net, auditor.mspId, 'admin');
  const clients = new Map(operators.map((o) => [o.mspId, connectAs(net, o.mspId, 'client')]));
  const step = async (conn: Connection, fn: string, ...args: string[]): Promise<bigint | undefined> => {
    try {
      const { blockNumber } = await whenEndorsable(() => submit(conn, fn, ...args));
      // The next step may be endorsed by any peer: each must have this block (a fresh network's
      // ConfirmMargin right after PayMargin was refused MARGIN_NOT_DECLARED by a peer a block behind).
      await committedOnEveryPeer(net, blockNumber);
      return blockNumber;
    } catch (e) {
      if (/ALREADY/.test(chaincodeError(e)?.code ?? '')) return undefined; // a network kept from a run before
      throw e;
    }
  };
  let lastBlock = 0n;
  const seen = (b: bigint | number | undefined): void => {
    if (b !== undefined && BigInt(b) > lastBlock) lastBlock = BigInt(b);
  };
  for (const o of operators) {
    const admin = connectAs(net, o.mspId, 'admin');
    seen(await step(admin, 'PayMargin'));
    seen(await step(custodian, 'ConfirmMargin', o.mspId));
    admin.close();
  }
  custodian.close();
  await committedOnEveryPeer(net, lastBlock);

  const adminKeys = new Map<string, string>();
  for (const o of operators)
    adminKeys.set(o.mspId, await apiKey(net, o, 'operator-admin', `bench ${RUN} admin`));
  const actors: PileActor[] = await Promise.all(
    Array.from({ length: PILES }, async (_, index) => {
      const org = operators[index % operators.length]!;
      const pile = new PileDevice(`${org.mspId}.B${RUN}-${index}`);
      const driver = new Driver();
      pile.network = driver.network = net.networkId;
      const key = await apiKey(net, org, 'pile-backend', `bench ${RUN} pile ${index}`, [pile.pileId]);
      return { index, org, pile, driver, key, meterWh: 0, sessions: 0 };
    }),
  );
  const adminOf = (p: PileActor): string => adminKeys.get(p.org.mspId)!;
  const blocks = await Promise.all(
    actors.flatMap((p) => [
      committed(p.org.gateway.url, '/v1/piles', adminOf(p), {
        localId: p.pile.localId,
        publicKey: p.pile.keys.publicKeyHex,
      }),
      committed(p.org.gateway.url, '/v1/wallets', adminOf(p), { publicKey: p.driver.keys.publicKeyHex }),
    ]),
  );
  blocks.forEach(seen);
  await committedOnEveryPeer(net, lastBlock);
  (
    await Promise.all(
      actors.map((p) =>
        committed(p.org.gateway.url, '/v1/top-ups', adminOf(p), {
          walletId: p.driver.walletId,
          amountFen: TOP_UP_FEN,
          reference: `bench-${RUN}-${p.index}`,
        }),
      ),
    )
  ).forEach(seen);
  await committedOnEveryPeer(net, lastBlock);
  // Each key's first use pays the gateway's scrypt; and every pile is readable through its gateway.
  await Promise.all(
    actors.map(async (p) => {
      const r = await http(p.org.gateway.url, 'GET', `/v1/piles/${p.pile.pileId}`, p.key);
      if (r.status !== 200)
        throw new Error(`GET pile ${p.pile.pileId}: ${r.status} ${JSON.stringify(r.body)}`);
    }),
  );

  const chargerActors = OCPP ? await prepareChargers(net, operators, (org) => adminKeys.get(org.mspId)!) : [];

  // --- probe: one session at a time, then one write at a time ---
  const probe = { startMs: [] as number[], stopMs: [] as number[], writeMs: [] as number[] };
  let probeGw: Record<string, number> = {};
  if (PROBE > 0) {
    const before = await gatewayCounters(net);
    log(`probe: ${PROBE} sessions one at a time, then ${PROBE} trivial writes one at a time`);
    const p = actors[0]!;
    const tally = new Tally();
    for (let i = 0; i < PROBE; i++) {
      const s = await oneSession(p, tally);
      if (s) {
        probe.startMs.push(s.startMs);
        probe.stopMs.push(s.stopMs);
      }
      await committedOnEveryPeer(
        net,
        BigInt((await peerHeight(p.org.peer.operationsUrl, net.channel)) ?? 1) - 1n,
      );
    }
    if (Object.keys(tally.failures).length > 0) log(`probe failures: ${JSON.stringify(tally.failures)}`);
    probeGw = difference(await gatewayCounters(net), before);
    const conn = clients.get(p.org.mspId)!;
    for (let i = 0; i < PROBE; i++) {
      const t0 = performance.now();
      await trivialWrite(conn);
      probe.writeMs.push(performance.now() - t0);
      await committedOnEveryPeer(
        net,
        BigInt((await peerHeight(p.org.peer.operationsUrl, net.channel)) ?? 1) - 1n,
      );
    }
  }

  // --- sessions ---
  log(`sessions: ${PILES} piles for ${SECONDS} s through ${operators.length} gateways`);
  const counters0 = await gatewayCounters(net);
  const sTally = new Tally();
  const all: SessionTimes[] = [];
  let sessionsWindow = 0;
  let sessionsDeadline = 0;
  const sessions = await measured(net, tracked, async (windowStart) => {
    sessionsWindow = windowStart;
    sessionsDeadline = windowStart + SECONDS * 1000;
    await Promise.all(
      actors.map(async (p, i) => {
        await rampDelay(i, actors.length);
        while (performance.now() < sessionsDeadline) {
          const s = await oneSession(p, sTally);
          if (s) all.push(s);
        }
      }),
    );
  });
  const gw = difference(await gatewayCounters(net), counters0);
  // See WARM-UP: the rate and the CPU count what settled after it, the latencies what started after it.
  const settledAfter = all.filter((s) => s.settledAt >= sessionsWindow);
  const done = all.filter((s) => s.startedAt >= sessionsWindow);
  const warmUpSessions = all.filter((s) => s.startedAt < sessionsWindow);
  const settledInWindow = settledAfter.filter((s) => s.settledAt <= sessionsDeadline).length;
  const settledPerSecond = settledInWindow / SECONDS;
  log(`${settledInWindow} sessions settled in ${SECONDS} s (${settledPerSecond.toFixed(1)}/s)`);

  // --- baseline: trivial writes, same concurrency, same duration ---
  log(`baseline: ${PILES} workers writing ${BASELINE.transaction} for ${SECONDS} s, straight to the peers`);
  const bTally = new Tally();
  const allWrites: Array<{ ms: number; at: number }> = [];
  let baselineWindow = 0;
  let baselineDeadline = 0;
  const baseline = await measured(net, tracked, async (windowStart) => {
    baselineWindow = windowStart;
    baselineDeadline = windowStart + SECONDS * 1000;
    await Promise.all(
      actors.map(async (p, i) => {
        const conn = clients.get(p.org.mspId)!;
        await rampDelay(i, actors.length);
        while (performance.now() < baselineDeadline) {
          const t0 = performance.now();
          try {
            await trivialWrite(conn);
            allWrites.push({ ms: performance.now() - t0, at: performance.now() });
          } catch (e) {
            if (e instanceof TransactionInvalidated) bTally.invalidated++;
            bTally.fail(chaincodeError(e)?.code ?? (e instanceof Error ? e.message.slice(0, 80) : String(e)));
          }
        }
      }),
    );
  });
  for (const c of clients.values()) c.close();
  const committedAfter = allWrites.filter((w) => w.at >= baselineWindow);
  const writes = allWrites.filter((w) => w.at - w.ms >= baselineWindow);
  const warmUpWrites = allWrites.filter((w) => w.at - w.ms < baselineWindow);
  const writesInWindow = committedAfter.filter((w) => w.at <= baselineDeadline).length;
  const writesPerSecond = writesInWindow / SECONDS;
  log(`${writesInWindow} writes committed in ${SECONDS} s (${writesPerSecond.toFixed(1)}/s)`);

  const ocpp = OCPP ? await ocppPhase(net, tracked, chargerActors) : undefined;

  // --- results ---
  const startMs = percentiles(done.map((s) => s.startMs));
  const stopMs = percentiles(done.map((s) => s.stopMs));
  const writeMs = percentiles(writes.map((w) => w.ms));
  const probeStop = percentiles(probe.stopMs);
  const probeWrite = percentiles(probe.writeMs);
  const invalidatedSessions = sTally.invalidated + (gw.mvccConflicts ?? 0);
  const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
  const targets: Verdict[] = [
    {
      target: 'settled sessions/s >= 70% of the trivial-write rate',
      measured: `${round(settledPerSecond)}/s vs ${round(writesPerSecond)}/s (${round((100 * settledPerSecond) / Math.max(writesPerSecond, 1e-9), 0)}%)`,
      pass: settledPerSecond >= 0.7 * writesPerSecond,
    },
    PROBE > 0
      ? {
          target: 'a single session: stop-to-settled p50 <= 1.5x a single trivial write p50',
          measured: `${round(probeStop.p50, 0)} ms vs ${round(probeWrite.p50, 0)} ms (${round(probeStop.p50 / Math.max(probeWrite.p50, 1e-9), 2)}x), one at a time`,
          pass: probeStop.p50 <= 1.5 * probeWrite.p50,
          note: `under load: ${round(stopMs.p50, 0)} ms vs ${round(writeMs.p50, 0)} ms (${round(stopMs.p50 / Math.max(writeMs.p50, 1e-9), 2)}x)`,
        }
      : {
          target: 'stop-to-settled p50 <= 1.5x trivial write p50 (under load: --probe 0)',
          measured: `${round(stopMs.p50, 0)} ms vs ${round(writeMs.p50, 0)} ms (${round(stopMs.p50 / Math.max(writeMs.p50, 1e-9), 2)}x)`,
          pass: stopMs.p50 <= 1.5 * writeMs.p50,
        },
    {
      target: 'p99 < 2.5 s at 50 piles (start and stop-to-settled)',
      measured: `start ${round(startMs.p99, 0)} ms, stop ${round(stopMs.p99, 0)} ms at ${PILES} piles`,
      pass: Math.max(startMs.p99, stopMs.p99) < 2500,
      ...(PILES === 50 ? {} : { note: 'the target is set at 50 piles' }),
    },
    {
      target: 'zero invalidated transactions with distinct piles and wallets',
      measured: `${invalidatedSessions} (${sTally.invalidated} answered 409 TRANSACTION_INVALIDATED, ${gw.mvccConflicts ?? 0} read conflicts retried by the gateways)`,
      pass: invalidatedSessions === 0,
    },
  ];
  const args = process.argv.slice(2).join(' ');
  const command =
    process.env.npm_lifecycle_event === 'bench:network'
      ? `npm run bench:network${args ? ` -- ${args}` : ''}`
      : `${process.execArgv.includes('tsx') ? 'node --import tsx' : 'npx tsx'} bench/network-sessions.ts${args ? ` ${args}` : ''}`;
  const result = {
    date: startedAt.toISOString(),
    command,
    machine: host,
    tree,
    note:
      'Every process (4 peers and the auditor peer, their chaincode processes, 4 orderers, 5 gateways, this ' +
      'bench) shares the machine; other processes running at the same time make the figures noisy.',
    network: {
      topology: TOPOLOGY_SHOWN,
      operators: operators.length,
      endorsement: net.endorsementPolicy,
      ordering: 'SmartBFT, one orderer per operator',
    },
    config: {
      piles: PILES,
      seconds: SECONDS,
      probe: PROBE,
      idempotencyKeys: IDEMPOTENCY,
      ocppChargers: OCPP ? CHARGERS : 0,
      rampSeconds: RAMP_MS / 1000,
      warmupSeconds: WARMUP_MS / 1000,
    },
    sessions: {
      settled: settledInWindow,
      settledPerSecond: round(settledPerSecond, 2),
      completedAfterTheWindow: settledAfter.length - settledInWindow,
      startMs,
      stopToSettledMs: stopMs,
      warmUp: {
        settled: warmUpSessions.length,
        startMs: percentiles(warmUpSessions.map((x) => x.startMs)),
        stopToSettledMs: percentiles(warmUpSessions.map((x) => x.stopMs)),
      },
      failures: sTally.failures,
      clientRetries: sTally.clientRetries,
      transactionInvalidated409: sTally.invalidated,
      gateways: {
        mvccConflicts: gw.mvccConflicts ?? 0,
        mvccConflictsAllTransactions: gw.mvccConflictsAllTx ?? 0,
        retries: { mvcc: gw.mvcc ?? 0, resolve: gw.resolve ?? 0, replay: gw.replay ?? 0 },
        /** Mean ms per request as the gateways timed it: the whole HTTP request, and the ledger part. */
        meanMs: {
          start: { http: meanMs(gw, 'start.http'), ledger: meanMs(gw, 'start.ledger') },
          stop: { http: meanMs(gw, 'stop.http'), ledger: meanMs(gw, 'stop.ledger') },
        },
        /** Over the phase with its warm-up: SessionBatch transactions, the calls in them, calls sent alone. */
        transactions: sessionTransactions(gw),
      },
      blocks: sessions.blocks,
      peers: sessions.peers,
      phaseSeconds: round(sessions.seconds, 1),
      usage: sessions.usage,
    },
    baseline: {
      ...BASELINE,
      committed: writesInWindow,
      completedAfterTheWindow: committedAfter.length - writesInWindow,
      writesPerSecond: round(writesPerSecond, 2),
      latencyMs: writeMs,
      warmUp: { committed: warmUpWrites.length, latencyMs: percentiles(warmUpWrites.map((w) => w.ms)) },
      invalidated: bTally.invalidated,
      failures: bTally.failures,
      blocks: baseline.blocks,
      peers: baseline.peers,
      phaseSeconds: round(baseline.seconds, 1),
      usage: baseline.usage,
    },
    probe: {
      oneAtATime: PROBE,
      sessionStartMs: percentiles(probe.startMs),
      sessionStopToSettledMs: probeStop,
      trivialWriteMs: probeWrite,
      /** The gateways' own mean ms per request during the probe: HTTP, and within it the ledger. */
      gatewayMeanMs: {
        start: { http: meanMs(probeGw, 'start.http'), ledger: meanMs(probeGw, 'start.ledger') },
        stop: { http: meanMs(probeGw, 'stop.http'), ledger: meanMs(probeGw, 'stop.ledger') },
      },
    },
    ocpp: ocpp ?? null,
    targets,
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'network-sessions.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(OUT, 'network-sessions.md'), markdown(result));
  log(`results: ${join(OUT, 'network-sessions.json')} and .md`);
  for (const v of targets) process.stdout.write(`${verdictText(v)}\n`);
}

// --- the markdown report ---------------------------------------------------------------------------------

interface ReportInput {
  date: string;
  command: string;
  tree: { commit: string; uncommittedChanges: string[] };
  machine: ReturnType<typeof machine>;
  note: string;
  config: {
    piles: number;
    seconds: number;
    probe: number;
    idempotencyKeys: boolean;
    ocppChargers: number;
    rampSeconds: number;
    warmupSeconds: number;
  };
  network: { topology: string; endorsement: string; operators: number };
  ocpp: OcppResult | null;
  sessions: {
    settled: number;
    settledPerSecond: number;
    completedAfterTheWindow: number;
    startMs: Percentiles;
    stopToSettledMs: Percentiles;
    warmUp: { settled: number; startMs: Percentiles; stopToSettledMs: Percentiles };
    failures: Record<string, number>;
    clientRetries: Record<string, number>;
    transactionInvalidated409: number;
    gateways: {
      mvccConflicts: number;
      retries: Record<string, number>;
      meanMs: Record<'start' | 'stop', { http: number; ledger: number }>;
      transactions: { batches: number; batchedCalls: number; alone: number };
    };
    blocks: number;
    peers: PeerTimes;
    usage: Record<ProcessKind, KindUsage>;
  };
  baseline: {
    transaction: string;
    why: string;
    committed: number;
    completedAfterTheWindow: number;
    writesPerSecond: number;
    latencyMs: Percentiles;
    warmUp: { committed: number; latencyMs: Percentiles };
    invalidated: number;
    failures: Record<string, number>;
    blocks: number;
    peers: PeerTimes;
    usage: Record<ProcessKind, KindUsage>;
  };
  probe: {
    sessionStartMs: Percentiles;
    sessionStopToSettledMs: Percentiles;
    trivialWriteMs: Percentiles;
    gatewayMeanMs: Record<'start' | 'stop', { http: number; ledger: number }>;
  };
  targets: Verdict[];
}

function markdown(r: ReportInput): string {
  const ms = (p: Percentiles): string =>
    p.n === 0 ? 'n/a' : `${Math.round(p.p50)} / ${Math.round(p.p95)} / ${Math.round(p.p99)}`;
  const counts = (o: Record<string, number>): string =>
    Object.keys(o).length === 0
      ? 'none'
      : Object.entries(o)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ');
  const m = r.machine;
  const g = r.sessions.gateways;
  const pg = r.probe.gatewayMeanMs;
  const ps = r.sessions.peers;
  const pb = r.baseline.peers;
  const per = (cpuSeconds: number, n: number): string =>
    n === 0 ? 'n/a' : ((1000 * cpuSeconds) / n).toFixed(1);
  // The phases' CPU covers the sessions and writes finishing after the window too.
  const sessionsDone = r.sessions.settled + r.sessions.completedAfterTheWindow;
  const writesDone = r.baseline.committed + r.baseline.completedAfterTheWindow;
  const o = r.ocpp;
  const ocppDone = o ? o.settled + o.completedAfterTheWindow : 0;
  const usageRows = PROCESS_KINDS.map((k) => {
    const s = r.sessions.usage[k];
    const b = r.baseline.usage[k];
    const oc = o ? ` ${o.usage[k].cpuSeconds} | ${per(o.usage[k].cpuSeconds, ocppDone)} |` : '';
    const rss = Math.max(s.peakRssMiBSum, b.peakRssMiBSum, o ? o.usage[k].peakRssMiBSum : 0);
    return `| ${k} | ${s.processes} | ${s.cpuSeconds} | ${b.cpuSeconds} | ${per(s.cpuSeconds, sessionsDone)} | ${per(b.cpuSeconds, writesDone)} |${oc} ${Math.max(s.peakRssMiBMax, o ? o.usage[k].peakRssMiBMax : 0)} | ${rss} |`;
  });
  const ocppRows = o
    ? [
        `| OCPP: ${o.chargers} chargers (${o.versions['1.6']} on 1.6J, ${o.versions['2.0.1']} on 2.0.1), remote start + START + STOP, settled as the REST session route shows | ${o.settled} in ${r.config.seconds} s: **${o.settledPerSecond}/s** (REST: ${r.sessions.settledPerSecond}/s) |`,
        `| OCPP stop sent to settled on the ledger, ms p50 / p95 / p99 (REST: stop-to-settled above) | ${ms(o.stopToSettledMs)} (REST: ${ms(r.sessions.stopToSettledMs)}) |`,
        `| not in the figure above: OCPP stop sent to settled during the warm-up, ms p50 / p95 / p99 | ${ms(o.warmUpStopToSettledMs)} |`,
        `| OCPP: the gateways' own stop received to settlement committed, ms p50 / p95 / p99 | ${ms(o.gatewayStopToSettledMs)} |`,
        `| OCPP: remote start answered; stop answered, ms p50 / p95 / p99 | ${ms(o.remoteStartMs)}; ${ms(o.stopAnswerMs)} |`,
        `| OCPP: gateways' mean ms endorse+order+commit, start; stop | ${o.gateways.meanMs.start.ledger}; ${o.gateways.meanMs.stop.ledger} |`,
        `| OCPP: failures / session-route reads per settled session | ${counts(o.failures)} / ${o.settlementReadsPerSession} |`,
        `| OCPP: blocks; peers' proposal mean ms (proposals, refused) | ${o.blocks}; ${o.peers.endorseMeanMs} (${o.peers.endorsements}, ${o.peers.refusedEndorsements}) |`,
      ]
    : [];
  const total = (u: Record<ProcessKind, KindUsage>): number =>
    Math.round(PROCESS_KINDS.reduce((a, k) => a + u[k].cpuSeconds, 0) * 10) / 10;
  return [
    '# Charging sessions through the REST gateways, on real peers',
    '',
    `| | |`,
    `| --- | --- |`,
    `| date | ${r.date} |`,
    `| machine | ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB RAM; load average at the start ${m.loadAverage} |`,
    `| Node | ${m.node} |`,
    `| command | \`${r.command}\` |`,
    `| code | commit ${r.tree.commit}${r.tree.uncommittedChanges.length > 0 ? ` with uncommitted changes in ${r.tree.uncommittedChanges.length} files of chaincode/, gateway-api/ or network/` : ''} |`,
    `| network | \`${r.network.topology}\`: ${r.network.operators} operators, SmartBFT, auditor peer; endorsement ${r.network.endorsement} |`,
    `| load | ${r.config.piles} piles (each its own driver wallet, its own pile-backend key) for ${r.config.seconds} s; Idempotency-Key ${r.config.idempotencyKeys ? 'on' : 'off'}${o ? `; then ${o.chargers} OCPP chargers for ${r.config.seconds} s` : ''}; in each phase a warm-up of ${r.config.warmupSeconds} s before the measured window (the workers' first calls spread over its first ${r.config.rampSeconds} s) |`,
    '',
    `${r.note}`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| sessions settled (authorization + START, STOP, settled) | ${r.sessions.settled} in ${r.config.seconds} s: **${r.sessions.settledPerSecond}/s** |`,
    `| start latency ms p50 / p95 / p99 | ${ms(r.sessions.startMs)} |`,
    `| stop-to-settled latency ms p50 / p95 / p99 | ${ms(r.sessions.stopToSettledMs)} |`,
    `| baseline: ${r.baseline.transaction} straight through fabric-gateway | ${r.baseline.committed} in ${r.config.seconds} s: **${r.baseline.writesPerSecond}/s** |`,
    `| baseline latency ms p50 / p95 / p99 | ${ms(r.baseline.latencyMs)} |`,
    `| not in the figures above: the warm-up's sessions, start p50 / p95 / p99; stop-to-settled; trivial writes | ${r.sessions.warmUp.settled}: ${ms(r.sessions.warmUp.startMs)}; ${ms(r.sessions.warmUp.stopToSettledMs)}; ${r.baseline.warmUp.committed}: ${ms(r.baseline.warmUp.latencyMs)} |`,
    `| one at a time (${r.config.probe}): session start / stop-to-settled / trivial write ms p50 | ${r.config.probe === 0 ? 'not run' : `${Math.round(r.probe.sessionStartMs.p50)} / ${Math.round(r.probe.sessionStopToSettledMs.p50)} / ${Math.round(r.probe.trivialWriteMs.p50)}`} |`,
    `| gateways' own mean ms under load, start: HTTP request / of it endorse+order+commit | ${g.meanMs.start.http} / ${g.meanMs.start.ledger} |`,
    `| gateways' own mean ms under load, stop: HTTP request / of it endorse+order+commit | ${g.meanMs.stop.http} / ${g.meanMs.stop.ledger} |`,
    `| the same one at a time, start; stop | ${pg.start.http} / ${pg.start.ledger}; ${pg.stop.http} / ${pg.stop.ledger} |`,
    `| invalidated: 409 TRANSACTION_INVALIDATED / read conflicts retried by the gateways | ${r.sessions.transactionInvalidated409} / ${g.mvccConflicts} |`,
    `| session transactions over the phase with its warm-up: SessionBatch (calls in them, mean) / calls sent alone | ${g.transactions.batches} (${g.transactions.batchedCalls}, ${g.transactions.batches === 0 ? 0 : Math.round((10 * g.transactions.batchedCalls) / g.transactions.batches) / 10}) / ${g.transactions.alone} |`,
    `| gateway retries (mvcc, resolve, replay) | ${g.retries.mvcc}, ${g.retries.resolve}, ${g.retries.replay} |`,
    `| session failures / client retries | ${counts(r.sessions.failures)} / ${counts(r.sessions.clientRetries)} |`,
    `| baseline invalidated / failures | ${r.baseline.invalidated} / ${counts(r.baseline.failures)} |`,
    `| blocks (sessions, baseline) | ${r.sessions.blocks}, ${r.baseline.blocks} |`,
    `| peers: proposal mean ms (proposals, refused), sessions | ${ps.endorseMeanMs} (${ps.endorsements}, ${ps.refusedEndorsements}) |`,
    `| peers: proposal mean ms (proposals, refused), baseline | ${pb.endorseMeanMs} (${pb.endorsements}, ${pb.refusedEndorsements}) |`,
    `| peers: block commit mean ms (validation, block store, state db), sessions; baseline | ${ps.commitMsPerBlock}; ${pb.commitMsPerBlock} |`,
    ...ocppRows,
    '',
    ...(o
      ? [
          'OCPP sessions are read back through the REST session route every 200 ms at first, then every tenth of the time waited (a resolution within 10 %), and the next remote start waits for the settlement; readings are whole seconds and the STOP is stamped after the START, so an OCPP session charges for about a second, a REST one not at all.',
          '',
        ]
      : []),
    `Baseline transaction: ${r.baseline.transaction}, because ${r.baseline.why}.`,
    '',
    `CPU seconds per process kind in each phase (total: sessions ${total(r.sessions.usage)}, baseline ${total(r.baseline.usage)}${o ? `, OCPP ${total(o.usage)}` : ''}, of ${r.config.seconds * m.cores} core-seconds each), and peak RSS (VmHWM over each process's life):`,
    '',
    `| kind | processes | CPU s, sessions | CPU s, baseline | CPU ms per settled session | CPU ms per trivial write |${o ? ' CPU s, OCPP | CPU ms per OCPP session |' : ''} peak RSS MiB, largest | peak RSS MiB, sum |`,
    `| --- | --- | --- | --- | --- | --- |${o ? ' --- | --- |' : ''} --- | --- |`,
    ...usageRows,
    '',
    'Targets (reported, never failing the run):',
    '',
    '| target | measured | |',
    '| --- | --- | --- |',
    ...r.targets.map(
      (v) => `| ${v.target} | ${v.measured}${v.note ? `; ${v.note}` : ''} | ${v.pass ? 'PASS' : 'MISS'} |`,
    ),
    '',
  ].join('\n');
}

main()
  .then(
    () => 0,
    (e: unknown) => {
      process.stderr.write(`network-sessions: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      return 1;
    },
  )
  .then((code) => {
    networkDown();
    process.exit(code);
  });
