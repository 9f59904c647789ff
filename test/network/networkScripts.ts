/**
 * Runs a network script on the tests' network (test/network/topology.json), its output shown as it
 * goes: jest's global setup and teardown call it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

export function runNetworkScript(script: string, ...args: string[]): void {
  const env = { ...process.env, EVPAY_TOPOLOGY: join(__dirname, 'topology.json') };
  const r = spawnSync(join(ROOT, 'network', script), args, { env, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`network/${script} ${args.join(' ')} exited with ${r.status}`);
}
