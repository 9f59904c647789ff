/**
 * `evpay witness verify --dir <dir>`: the auditor's offline check of an export made by
 * `evpay-gateway witness export` (gateway-api/src/witness/verify.ts has the rule). Pure SM3 over the
 * files: no gateway, no Fabric, no network. Prints the verdict as JSON; exit 0 when every block checks,
 * 1 at the first mismatch (also named on stderr), 2 when the directory is not an export.
 */
import type { Command } from 'commander';
import { verifyWitnessDir, WitnessExportError } from '../witness/verify';
import { print, UsageError } from './shared';

export function addWitnessCommands(p: Command): void {
  const witness = p.command('witness').description('the SM3 block witness, checked offline');
  witness
    .command('verify')
    .description(
      'recompute the SM3 of every block file and the witness chain of an export (evpay-gateway witness ' +
        'export); exit 0 with the count and final chain, or 1 naming the first block that differs',
    )
    .requiredOption('--dir <dir>', 'the export: <n>.header.der, <n>.data.bin and witness.json')
    .action((o: { dir: string }) => {
      let verdict;
      try {
        verdict = verifyWitnessDir(o.dir);
      } catch (e) {
        if (e instanceof WitnessExportError) throw new UsageError(e.message);
        throw e;
      }
      print(verdict);
      if (!verdict.ok) {
        process.stderr.write(`evpay: witness mismatch (${verdict.mismatch}) at ${verdict.message}\n`);
        process.exitCode = 1;
      }
    });
}
