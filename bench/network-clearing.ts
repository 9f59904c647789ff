/**
 * Closing a busy clearing period on real Fabric peers (issue 10, item 9). Fills one clearing period with
 * --movements top-ups (one position record each) from --workers wallets in parallel, waits for the
 * period's end and grace, then closes it in bounded steps (RollUpPositions, then ClosePeriod), timing
 * each step end to end (endorsement on a majority of peers, ordering, commit) and checking the total.
 * Results: bench/results/network-clearing.json and .md.
 *
 *   EVPAY_TOPOLOGY=bench/network/topology.json network/up.sh
 *   npx tsx bench/network-clearing.ts [--movements 10500] [--workers 32]
 *   EVPAY_TOPOLOGY=bench/network/topology.json network/down.sh --purge
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { periodBounds, periodOf, type ClearingResult } from '../chaincode/src/domain/clearing';
import { Driver } from '../chaincode/test/support/fixtures';
import {
  chaincodeError,
  committedOnEveryPeer,
  connectAs,
  submit,
  whenEndorsable,
  type Connection,
} from '../network/tools/client';
import { readNetwork } from '../network/tools/network';
import { loadTopology } from '../network/tools/topology';

const { values } = parseArgs({
  options: { movements: { type: 'string', default: '10500' }, workers: { type: 'string', default: '32' } },
});
const MOVEMENTS = Number(values.movements);
const WORKERS = Number(values.workers);
const net = readNetwork('bench');
const params = loadTopology(join(__dirname, 'network', 'topology.json')).consortium.params as {
  clearingPeriodSec: number;
  clearingGraceSec: number;
  clearingUtcOffsetMinutes: number;
};
const nowSec = (): number => Math.floor(Date.now() / 1000);
const json = (v: unknown): string => JSON.stringify(v);
const periodAt = (t: number): number =>
  periodOf(t, params.clearingPeriodSec, params.clearingUtcOffsetMinutes);
const endOf = (p: number): number =>
  periodBounds(p, params.clearingPeriodSec, params.clearingUtcOffsetMinutes)[1];
const sleepUntil = async (t: number): Promise<void> => {
  while (nowSec() < t) await new Promise((r) => setTimeout(r, 250));
};
const log = (s: string): void => void process.stdout.write(`${s}\n`);

/**
 * Submits and waits until every peer has the block (the next step may be endorsed elsewhere); a refusal
 * that only says the step was done before (a re-run) is returned as its code.
 */
async function step<T>(conn: Connection, fn: string, ...args: string[]): Promise<T | string> {
  try {
    const r = await whenEndorsable(() => submit<T>(conn, fn, ...args));
    await committedOnEveryPeer(net, r.blockNumber);
    return r.result;
  } catch (e) {
    const code = chaincodeError(e)?.code;
    if (code && /ALREADY/.test(code)) return code;
    throw e;
  }
}

async function main(): Promise<void> {
  const operators = net.orgs.filter((o) => o.role === 'operator');
  const auditorMsp = net.orgs.find((o) => o.role === 'auditor')?.mspId ?? 'AuditorMSP';
  const [A, B] = operators.map((o) => o.mspId) as [string, string];
  const custodian = connectAs(net, auditorMsp, 'admin');
  const a = connectAs(net, A, 'client');
  const b = connectAs(net, B, 'client');
  for (const op of operators) {
    const admin = connectAs(net, op.mspId, 'admin');
    await step(admin, 'PayMargin');
    await step(custodian, 'ConfirmMargin', op.mspId);
    admin.close();
  }
  const run = Date.now().toString(36);
  const wallets = Array.from({ length: WORKERS }, () => new Driver());
  for (const w of wallets) await step(a, 'OpenWallet', json({ publicKey: w.keys.publicKeyHex }));

  // One period for every movement: start with most of a period ahead.
  const needSec = Math.min(params.clearingPeriodSec - 20, 200);
  while (endOf(periodAt(nowSec())) - nowSec() < needSec) await new Promise((r) => setTimeout(r, 500));
  const period = periodAt(nowSec());
  const stopAt = endOf(period) - 5;
  log(`filling period ${period} with up to ${MOVEMENTS} top-ups from ${WORKERS} wallets (until ${stopAt})`);
  let next = 0;
  let committed = 0;
  let failed = 0;
  /** Why submits failed, by chaincode code or the gateway's message. */
  const failures: Record<string, number> = {};
  const fillStart = Date.now();
  await Promise.all(
    wallets.map(async (w, i) => {
      for (let n = 0; next < MOVEMENTS && nowSec() < stopAt; n++) {
        next++;
        try {
          await submit(
            a,
            'TopUp',
            json({ walletId: w.walletId, amountFen: 1, reference: `bench-${run}-${i}-${n}` }),
          );
          committed++;
        } catch (e) {
          failed++;
          const why = chaincodeError(e)?.code ?? (e instanceof Error ? e.message.slice(0, 80) : String(e));
          failures[why] = (failures[why] ?? 0) + 1;
        }
      }
    }),
  );
  const fillSec = (Date.now() - fillStart) / 1000;
  log(
    `${committed} top-ups committed (${failed} failed: ${JSON.stringify(failures)}) in ${fillSec.toFixed(1)} s`,
  );
  if (periodAt(nowSec()) !== period) throw new Error('the fill ran past the period: lower --movements');

  const closeAt = endOf(period) + params.clearingGraceSec + 1;
  log(`waiting for the period's end and grace (${closeAt - nowSec()} s)`);
  await sleepUntil(closeAt);
  const steps: Array<{ step: string; ms: number; movements?: number }> = [];
  for (;;) {
    const t0 = Date.now();
    const r = await submit<{ rolledUp: number; movements: number; done: boolean }>(
      b,
      'RollUpPositions',
      json({ period, mspId: A }),
    );
    steps.push({ step: `RollUpPositions ${A}`, ms: Date.now() - t0, movements: r.result.rolledUp });
    log(`RollUpPositions ${A}: ${r.result.rolledUp} records in ${Date.now() - t0} ms`);
    if (r.result.done) break;
  }
  const t0 = Date.now();
  const closed = await submit<ClearingResult>(b, 'ClosePeriod', String(period));
  steps.push({ step: 'ClosePeriod', ms: Date.now() - t0 });
  log(`ClosePeriod in ${Date.now() - t0} ms`);
  const topUpCashFen = closed.result.positions[A]?.topUpCashFen;
  if (topUpCashFen !== committed)
    throw new Error(`closed with ${topUpCashFen} fen of top-ups, ${committed} committed`);

  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const result = {
    when: new Date().toISOString(),
    machine,
    command: `npx tsx bench/network-clearing.ts --movements ${MOVEMENTS} --workers ${WORKERS}`,
    period,
    movements: committed,
    failedSubmits: failed,
    failures,
    fillSeconds: fillSec,
    topUpsPerSecond: committed / fillSec,
    steps,
    closedTopUpCashFen: topUpCashFen,
  };
  const dir = join(__dirname, 'results');
  writeFileSync(join(dir, 'network-clearing.json'), `${JSON.stringify(result, null, 2)}\n`);
  const rows = steps.map((s) => `| ${s.step} | ${s.movements ?? '-'} | ${s.ms} |`).join('\n');
  writeFileSync(
    join(dir, 'network-clearing.md'),
    `# Closing a busy clearing period on real peers\n\n${result.when}, ${machine}\n\n` +
      `\`${result.command}\` on \`bench/network/topology.json\` (4 operators, SmartBFT, auditor peer).\n\n` +
      `${committed} top-ups committed in ${fillSec.toFixed(1)} s (${result.topUpsPerSecond.toFixed(1)}/s, ` +
      `${failed} failed), all in clearing period ${period}; closed with ${topUpCashFen} fen of top-ups.\n\n` +
      `| step | records | end to end (ms) |\n| --- | --- | --- |\n${rows}\n`,
  );
  for (const c of [custodian, a, b]) c.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`network-clearing: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
