/**
 * Brings up the tests' network from nothing before the network tests run: a network an earlier run
 * left is stopped and purged first, so every run starts from genesis.
 */
import { runNetworkScript } from './networkScripts';

export default async function globalSetup(): Promise<void> {
  runNetworkScript('down.sh', '--purge');
  runNetworkScript('up.sh');
}
