/**
 * Chaincode-side cost: how much CPU an endorsing peer spends in our rules and SM crypto per transaction.
 * It runs the domain rules on the in-memory world state (no Fabric), so it is a floor for the peer's
 * endorsement cost, not a network throughput: that is bench/network-sessions.ts (npm run bench:network).
 *
 *   npm run bench -- [--seconds 10] [--piles 50] [--contenders 60] [--close-movements 50000]
 *                    [--out bench/results]
 *
 * Client work (driver and pile signatures) is done before each timed batch and not counted.
 * Also: how many claims of one red envelope and sales of one operator's beans commit per block when
 * they all arrive at once (the bucketed keys), and what ClosePeriod costs over a busy period.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sm2GenerateKeyPair, sm2Sign, sm2Verify, sm3Hex } from '../chaincode/src/crypto';
import { MAX_TOPUP_FEN } from '../chaincode/src/domain/money';
import { buyBeans } from '../chaincode/src/domain/beans';
import {
  CLOSE_STEP_POSITIONS,
  closePeriod,
  periodOf,
  rollUpPositions,
  type PositionDelta,
} from '../chaincode/src/domain/clearing';
import type { TxContext } from '../chaincode/src/domain/context';
import { setOperatorPolicy } from '../chaincode/src/domain/consortium';
import { claimEnvelope, createEnvelope } from '../chaincode/src/domain/envelopes';
import { Keys } from '../chaincode/src/domain/keys';
import { registerPile } from '../chaincode/src/domain/piles';
import { startSession, stopSession } from '../chaincode/src/domain/sessions';
import { openWallet, topUp } from '../chaincode/src/domain/wallets';
import { MemoryLedger, type Simulation } from '../chaincode/test/support/ledger';
import {
  admin,
  bootstrap,
  client,
  Driver,
  issueBackedBeans,
  OPS,
  PARAMS,
  PileDevice,
} from '../chaincode/test/support/fixtures';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    piles: { type: 'string', default: '50' },
    contenders: { type: 'string', default: '60' },
    'close-movements': { type: 'string', default: '50000' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const SECONDS = Number(values.seconds);
const PILES = Number(values.piles);
const CONTENDERS = Number(values.contenders);
const CLOSE_MOVEMENTS = Number(values['close-movements']);
if (!(SECONDS > 0 && [PILES, CONTENDERS, CLOSE_MOVEMENTS].every((n) => n > 0 && Number.isInteger(n))))
  throw new Error('--seconds, --piles, --contenders and --close-movements must be positive');
if (CONTENDERS > PARAMS.envelopeMaxClaimants)
  throw new Error(`--contenders is at most ${PARAMS.envelopeMaxClaimants} (envelopeMaxClaimants)`);

let peakRss = 0;
const sampleRss = (): void => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const timer = setInterval(sampleRss, 50);

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}
function rate(fn: () => void, budgetMs: number): number {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < budgetMs) {
    fn();
    n += 1;
  }
  return (n * 1000) / (performance.now() - start);
}

async function timed<T>(
  ledger: MemoryLedger,
  fn: () => Promise<Simulation<T>>,
  into: number[],
): Promise<Simulation<T>> {
  const t0 = performance.now();
  const sim = await fn();
  into.push(performance.now() - t0);
  return sim;
}

/** CONTENDERS wallets claim one envelope, then buy one operator's beans, all at once. */
async function contention(contenders: number) {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const B = OPS.B.mspId;
  const beans = 3 * contenders;
  await issueBackedBeans(ledger, B, beans);
  await ledger.submit(admin(B), (ctx) =>
    setOperatorPolicy(ctx, { rebateWhPerBean: 0, beanSalePriceFen: 90 }),
  );
  const drivers = Array.from({ length: contenders }, () => new Driver());
  for (const [i, d] of drivers.entries()) {
    await ledger.submit(client(B), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    await ledger.submit(client(B), (ctx) =>
      topUp(ctx, { walletId: d.walletId, amountFen: 1_000, reference: `c${i}` }),
    );
  }
  const t = ledger.now;
  await ledger.submit(admin(B), (ctx) =>
    createEnvelope(ctx, {
      envelopeId: 'e',
      totalBeans: contenders,
      claimants: contenders,
      split: 'random',
      expiresAt: t + 3600,
    }),
  );
  const claims = drivers.map((d) => d.claim('e', t + 3600));
  const envelope = await ledger.contend(
    claims.map((c) => () => ledger.simulate(client(B), (ctx) => claimEnvelope(ctx, c))),
  );
  const orders = drivers.map((d) => d.buy(B, 2, 180, t + 3600));
  const sales = await ledger.contend(
    orders.map((o) => () => ledger.simulate(client(B), (ctx) => buyBeans(ctx, o))),
  );
  return { contenders, envelopeClaimsPerBlock: envelope, beanSalesPerBlock: sales };
}

/**
 * Endorsement time of closing a period of MOVEMENTS position records (seeded as TopUp writes them): the
 * roll-up steps a busy period needs (clearing.ts, BOUNDED CLOSE RULE), each committed, then ClosePeriod.
 */
async function closeCost(movements: number) {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const A = OPS.A.mspId;
  const period = periodOf(ledger.now, PARAMS.clearingPeriodSec, PARAMS.clearingUtcOffsetMinutes);
  ledger.seed(
    Array.from({ length: movements }, (_, i): [string, PositionDelta] => {
      const txId = i.toString(16).padStart(64, '0');
      return [Keys.position(period, A, txId, 0), { mspId: A, txId, at: ledger.now, topUpCashFen: 1 }];
    }),
  );
  const at = ledger.now + 2 * 86_400;
  let endorseMs = 0;
  let maxStepMs = 0;
  let rangeQueries = 0;
  let steps = 0;
  const step = async <T>(fn: (ctx: TxContext) => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const sim = await ledger.simulate(client(A), fn, at);
    const ms = performance.now() - t0;
    if (!sim.ok) throw sim.error;
    if (ledger.commitBlock([sim])[0] !== 'VALID') throw new Error('closing step invalidated');
    endorseMs += ms;
    maxStepMs = Math.max(maxStepMs, ms);
    rangeQueries += sim.ranges.length;
    steps += 1;
    return sim.result as T;
  };
  if (movements > CLOSE_STEP_POSITIONS)
    for (let done = false; !done;)
      ({ done } = await step((ctx) => rollUpPositions(ctx, { period, mspId: A })));
  await step((ctx) => closePeriod(ctx, period));
  return {
    movements,
    endorseMs: Math.round(endorseMs),
    maxStepMs: Math.round(maxStepMs),
    steps,
    rangeQueries,
  };
}

async function main(): Promise<void> {
  // 1. SM crypto through the project's wrapper.
  const kp = sm2GenerateKeyPair();
  const msg = 'EVPAY/READING/1\nSTOP\ns1\nAlphaMSP.P1\n123456\n1767225600';
  const sig = sm2Sign(kp.privateKeyHex, msg);
  const kib = 'x'.repeat(1024);
  // Fresh keys, each verified once: the first-use path (no precomputed table).
  const fresh = Array.from({ length: 150 }, () => {
    const k = sm2GenerateKeyPair();
    return { pub: k.publicKeyHex, sig: sm2Sign(k.privateKeyHex, msg) };
  });
  const f0 = performance.now();
  for (const f of fresh) if (!sm2Verify(f.pub, msg, f.sig)) throw new Error('verify failed');
  const firstUsePerSec = (fresh.length * 1000) / (performance.now() - f0);
  const crypto = {
    sm2SignPerSec: rate(() => sm2Sign(kp.privateKeyHex, msg), 1500),
    sm2VerifyRecurringKeyPerSec: rate(() => sm2Verify(kp.publicKeyHex, msg, sig), 1500),
    sm2VerifyFirstUsePerSec: firstUsePerSec,
    sm3KiBPerSec: rate(() => sm3Hex(kib), 1000),
  };

  // 2. Sessions at distinct piles and wallets, a block of starts then a block of stops per round.
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const A = OPS.A.mspId;
  const piles = Array.from({ length: PILES }, (_, i) => new PileDevice(`${A}.B${i}`));
  const drivers = Array.from({ length: PILES }, () => new Driver());
  for (const p of piles)
    await ledger.submit(client(A), (ctx) =>
      registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
    );
  for (const [i, d] of drivers.entries()) {
    await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
    await ledger.submit(client(A), (ctx) =>
      topUp(ctx, { walletId: d.walletId, amountFen: MAX_TOPUP_FEN, reference: `b${i}` }),
    );
  }
  const startMs: number[] = [];
  const stopMs: number[] = [];
  let invalid = 0;
  let settled = 0;
  let round = 0;
  let t = ledger.now;
  const meter = new Array<number>(PILES).fill(0);
  const began = performance.now();
  let endorseMs = 0;
  while (performance.now() - began < SECONDS * 1000) {
    round += 1;
    t += 600;
    const now = t;
    const starts = piles.map((p, i) => ({
      authorization: drivers[i]!.authorize(p.pileId, 5_000, now + 600),
      startReading: p.reading('START', `r${round}p${i}`, meter[i]!, now),
    }));
    const stops = piles.map((p, i) => ({
      stopReading: p.reading('STOP', `r${round}p${i}`, meter[i]! + 20_000, now + 300),
    }));
    const e0 = performance.now();
    const startSims = [];
    for (const s of starts)
      startSims.push(
        await timed(ledger, () => ledger.simulate(client(A), (ctx) => startSession(ctx, s), now), startMs),
      );
    invalid += ledger.commitBlock(startSims).filter((v) => v !== 'VALID').length;
    const stopSims = [];
    for (const s of stops)
      stopSims.push(
        await timed(
          ledger,
          () => ledger.simulate(client(A), (ctx) => stopSession(ctx, s), now + 300),
          stopMs,
        ),
      );
    const v = ledger.commitBlock(stopSims);
    endorseMs += performance.now() - e0;
    invalid += v.filter((x) => x !== 'VALID').length;
    settled += v.filter((x) => x === 'VALID').length;
    for (let i = 0; i < PILES; i++) meter[i]! += 20_000;
    sampleRss();
  }
  const hot = await contention(CONTENDERS);
  const close = await closeCost(CLOSE_MOVEMENTS);
  sampleRss();
  clearInterval(timer);
  const cpu = os.cpus();
  const result = {
    date: new Date().toISOString(),
    command: `npm run bench -- --seconds ${SECONDS} --piles ${PILES} --contenders ${CONTENDERS} --close-movements ${CLOSE_MOVEMENTS}`,
    machine: {
      cpu: cpu[0]?.model ?? 'unknown',
      cores: cpu.length,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
    },
    crypto: Object.fromEntries(Object.entries(crypto).map(([k, v]) => [k, Math.round(v)])),
    sessions: {
      piles: PILES,
      rounds: round,
      settled,
      invalidated: invalid,
      settledPerSecondOneCore: Math.round((settled * 1000) / endorseMs),
      startEndorseMs: stats(startMs),
      stopEndorseMs: stats(stopMs),
    },
    contention: hot,
    closePeriod: close,
    peakRssMiB: Math.round(peakRss / 2 ** 20),
  };
  mkdirSync(values.out!, { recursive: true });
  const base = path.join(values.out!, 'chaincode');
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
  const f = (x: number): string => x.toFixed(2);
  const md = [
    `# Chaincode-side cost per transaction`,
    ``,
    `Machine: ${result.machine.cpu}, ${result.machine.cores} cores, ${result.machine.memGiB} GiB, Node ${result.machine.node}. Date: ${result.date}.`,
    `Command: \`${result.command}\`. Domain rules on the in-memory world state with Fabric's MVCC validation; no Fabric processes.`,
    ``,
    `| measure | value |`,
    `| --- | --- |`,
    `| SM2 sign / s | ${result.crypto.sm2SignPerSec} |`,
    `| SM2 verify / s, recurring key (cached table) | ${result.crypto.sm2VerifyRecurringKeyPerSec} |`,
    `| SM2 verify / s, key seen for the first time | ${result.crypto.sm2VerifyFirstUsePerSec} |`,
    `| SM3 of 1 KiB / s | ${result.crypto.sm3KiBPerSec} |`,
    `| sessions settled (start + stop) | ${settled} in ${round} rounds of ${PILES} piles |`,
    `| invalidated transactions (distinct piles and wallets) | ${invalid} |`,
    `| sessions settled / s, one core, endorsement only | ${result.sessions.settledPerSecondOneCore} |`,
    `| start endorsement ms p50 / p95 / p99 | ${f(result.sessions.startEndorseMs.p50)} / ${f(result.sessions.startEndorseMs.p95)} / ${f(result.sessions.startEndorseMs.p99)} |`,
    `| stop+settle endorsement ms p50 / p95 / p99 | ${f(result.sessions.stopEndorseMs.p50)} / ${f(result.sessions.stopEndorseMs.p95)} / ${f(result.sessions.stopEndorseMs.p99)} |`,
    `| ${hot.contenders} claims of one red envelope at once: commits per block | ${hot.envelopeClaimsPerBlock.join(', ')} |`,
    `| ${hot.contenders} purchases of one operator's beans at once: commits per block | ${hot.beanSalesPerBlock.join(', ')} |`,
    `| Closing a period of ${close.movements} movements: endorsement ms in all (steps, longest step ms, range queries) | ${close.endorseMs} (${close.steps}, ${close.maxStepMs}, ${close.rangeQueries}) |`,
    `| peak RSS of the bench process | ${result.peakRssMiB} MiB |`,
    ``,
  ].join('\n');
  writeFileSync(`${base}.md`, md);
  process.stdout.write(md + `\nwritten: ${base}.json, ${base}.md\n`);
}

main().catch((e: unknown) => {
  clearInterval(timer);
  console.error(e);
  process.exit(1);
});
