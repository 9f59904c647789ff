/**
 * evpay-gateway: runs an operator's REST gateway and manages its credentials.
 *
 *   evpay-gateway serve --config run/local/nodes/alpha-gateway/gateway.json
 *   evpay-gateway credentials create --config <file> --role pile-backend --name "site 12" [--pile AlphaMSP.P1 ...]
 *   evpay-gateway credentials list --config <file>
 *   evpay-gateway credentials revoke --config <file> --id <credential id>
 *   evpay-gateway openapi [--out gateway-api/openapi.json]
 *   evpay-gateway chargers add|list|remove --config <file> ...   # OCPP chargers (cli/chargerCommands.ts)
 *   evpay-gateway witness export --config <file> [--from N] [--to M] --out <dir>   # for `evpay witness verify`
 */
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { CredentialStore, ROLES, type Role } from '../auth/credentials';
import { ConfigError, loadConfig } from '../config';
import { connectOrgLedger } from '../fabric/orgLedger';
import { openApiDocument } from '../http/openapi';
import { serve } from '../server';
import { ExportRefused, exportWitness } from '../witness/export';
import { positiveNumber } from './args';
import { addChargerCommands } from './chargerCommands';

const print = (v: unknown): void => void process.stdout.write(JSON.stringify(v, null, 2) + '\n');

export function openApiText(): string {
  return JSON.stringify(openApiDocument(), null, 2) + '\n';
}

export function main(argv: string[]): void {
  const program = new Command('evpay-gateway').description(
    "An operator's REST gateway to the EV charging payment network",
  );
  program.exitOverride();
  const configOption = new Option('--config <file>', 'the gateway configuration')
    .env('EVPAY_GATEWAY_CONFIG')
    .makeOptionMandatory();
  program
    .command('serve')
    .description('run the gateway until SIGTERM')
    .addOption(configOption)
    .action(async (o: { config: string }) => serve(o.config));
  const creds = program.command('credentials').description("create, list and revoke this gateway's API keys");
  creds
    .command('create')
    .addOption(configOption)
    .addOption(new Option('--role <role>', 'what the credential may do').choices(ROLES).makeOptionMandatory())
    .requiredOption('--name <name>', 'who holds it (shown in logs)')
    .option('--pile <pileId...>', 'a pile backend acts only for these piles (default: all of the operator)')
    .action(async (o: { config: string; role: Role; name: string; pile?: string[] }) => {
      const config = loadConfig(o.config);
      if (config.role === 'auditor' && o.role !== 'auditor')
        throw new ConfigError("the auditor's gateway only issues auditor credentials");
      if (config.role === 'operator' && o.role === 'auditor')
        throw new ConfigError("auditor credentials are issued by the auditor organization's gateway");
      const { credential, apiKey } = await new CredentialStore(config.dataDir).create({
        name: o.name,
        role: o.role,
        ...(o.pile ? { piles: o.pile } : {}),
      });
      print({
        id: credential.id,
        name: credential.name,
        role: credential.role,
        piles: credential.piles,
        apiKey,
      });
    });
  creds
    .command('list')
    .addOption(configOption)
    .action((o: { config: string }) => {
      const config = loadConfig(o.config);
      print(new CredentialStore(config.dataDir).list().map(({ hash: _hash, ...c }) => (void _hash, c)));
    });
  creds
    .command('revoke')
    .addOption(configOption)
    .requiredOption('--id <id>', 'the credential id')
    .action((o: { config: string; id: string }) => {
      const config = loadConfig(o.config);
      if (!new CredentialStore(config.dataDir).revoke(o.id)) throw new ConfigError(`no credential ${o.id}`);
      print({ id: o.id, revoked: true });
    });
  addChargerCommands(program, configOption);
  program
    .command('openapi')
    .description('print (or write) the OpenAPI 3.1 document')
    .option('--out <file>')
    .action((o: { out?: string }) => {
      if (o.out) writeFileSync(o.out, openApiText());
      else process.stdout.write(openApiText());
    });
  program
    .command('witness')
    .description('the SM3 block witness, for auditors')
    .command('export')
    .description(
      "write blocks from the organization's own peer (<n>.header.der, <n>.data.bin) and their witness " +
        'entries (witness.json) to a new directory, for `evpay witness verify --dir <dir>`',
    )
    .addOption(configOption)
    .option('--from <block>', 'first block', positiveNumber, 1)
    .option('--to <block>', 'last block (default: the witness head)', positiveNumber)
    .requiredOption('--out <dir>', 'a new (or empty) directory')
    .action(async (o: { config: string; from: number; to?: number; out: string }) => {
      const ledger = connectOrgLedger(loadConfig(o.config));
      try {
        print(await exportWitness(ledger, { from: o.from, out: o.out, ...(o.to ? { to: o.to } : {}) }));
      } finally {
        ledger.close();
      }
    });
  program.parseAsync(argv).catch((e: unknown) => {
    const code = (e as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return;
    if (!(typeof code === 'string' && code.startsWith('commander.')))
      process.stderr.write(`evpay-gateway: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof ConfigError || e instanceof ExportRefused ? 2 : 1;
  });
}
