/** Stops the tests' network after the network tests, passed or failed (run/test keeps its logs). */
import { runNetworkScript } from './networkScripts';

export default async function globalTeardown(): Promise<void> {
  runNetworkScript('down.sh');
}
