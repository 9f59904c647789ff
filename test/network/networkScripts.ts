/**
 * Runs a network script on the tests' network (test/network/topology.json), its output shown as it
 * goes: jest's global setup and teardown call it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
/**
 * The tests' network: the default topology on other ports (see the file). EVPAY_TEST_TOPOLOGY runs the
 * network tests against another one (a developer's second network, on other ports again).
 */
export const TOPOLOGY = process.env.EVPAY_TEST_TOPOLOGY ?? join(__dirname, 'topology.json');

export function runNetworkScript(script: string, ...args: string[]): void {
  const env = { ...process.env, EVPAY_TOPOLOGY: TOPOLOGY };
  const r = spawnSync(join(ROOT, 'network', script), args, { env, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`network/${script} ${args.join(' ')} exited with ${r.status}`);
}
