/**
 * `evpay-gateway chargers add|list|remove`: the chargers allowed on this gateway's OCPP endpoint
 * (ocpp/chargers.ts). A charger id maps to one pile of the operator; its password (OCPP security
 * profiles 1-2, HTTP Basic) is printed once and kept only as a scrypt hash; a profile-3 charger has none
 * and proves itself with a client certificate (CN = its id) from the CA in `listen.tls.clientCaPath`.
 * Kept apart from gatewayCli.ts so the OCPP bridge's commands live beside nothing else.
 *
 *   evpay-gateway chargers add --config <file> --pile AlphaMSP.P1 [--id CP1] [--password <16-40 chars>]
 *                              [--profile 1|2|3]
 *   evpay-gateway chargers list --config <file>
 *   evpay-gateway chargers remove --config <file> --id CP1
 */
import { Option, type Command } from 'commander';
import type { z } from 'zod';
import { pileIdSchema } from '@evpay/chaincode/client';
import { ConfigError, loadConfig } from '../config';
import {
  ChargerStore,
  chargePointIdSchema,
  chargerPasswordSchema,
  SECURITY_PROFILES,
  type SecurityProfile,
} from '../ocpp/chargers';

const print = (v: unknown): void => void process.stdout.write(JSON.stringify(v, null, 2) + '\n');

function operatorStore(configPath: string): { store: ChargerStore; mspId: string; clientCa: boolean } {
  const config = loadConfig(configPath);
  if (config.role !== 'operator') throw new ConfigError("the auditor's gateway has no chargers");
  return {
    store: new ChargerStore(config.dataDir),
    mspId: config.mspId,
    clientCa: config.listen.tls?.clientCaPath !== undefined,
  };
}

function checked<T>(schema: z.ZodType<T>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (!r.success) throw new ConfigError(`${what}: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}

export function addChargerCommands(program: Command, configOption: Option): void {
  const chargers = program.command('chargers').description('the OCPP chargers allowed on this gateway');
  chargers
    .command('add')
    .description(
      'allow a charger (or give it a new password); prints its password once (none for --profile 3)',
    )
    .addOption(configOption)
    .requiredOption('--pile <pileId>', "the operator's pile the charger is")
    .option('--id <chargePointId>', 'its OCPP identity (the last part of its URL; default: the pile id)')
    .option('--password <password>', 'its password, 16 to 40 characters (default: a new random one)')
    .addOption(
      new Option(
        '--profile <n>',
        'OCPP security profile: 1 password, 2 password over TLS only, 3 client certificate (CN = --id) ' +
          'from the CA in listen.tls.clientCaPath (default: a password on whatever the listener offers)',
      ).choices(SECURITY_PROFILES.map(String)),
    )
    .action(async (o: { config: string; pile: string; id?: string; password?: string; profile?: string }) => {
      const { store, mspId, clientCa } = operatorStore(o.config);
      const profile = o.profile === undefined ? undefined : (Number(o.profile) as SecurityProfile);
      if (profile === 3 && o.password !== undefined)
        throw new ConfigError('--password: a profile-3 charger has no password (its certificate is checked)');
      const pileId = checked(pileIdSchema, o.pile, '--pile');
      if (!pileId.startsWith(`${mspId}.`))
        throw new ConfigError(`--pile: ${pileId} is not a pile of ${mspId}`);
      const chargePointId = checked(chargePointIdSchema, o.id ?? pileId, '--id');
      const password =
        o.password === undefined ? undefined : checked(chargerPasswordSchema, o.password, '--password');
      const { charger, password: shown } = await store.add({
        chargePointId,
        pileId,
        ...(password === undefined ? {} : { password }),
        ...(profile === undefined ? {} : { securityProfile: profile }),
      });
      print({
        ...charger,
        ...(shown === undefined ? {} : { password: shown }),
        // Adding it is allowed before the CA is configured, but it cannot connect until then.
        ...(profile === 3 && !clientCa
          ? { warning: 'listen.tls.clientCaPath is not set: this charger cannot connect until it is' }
          : {}),
      });
    });
  chargers
    .command('list')
    .addOption(configOption)
    .action((o: { config: string }) => print(operatorStore(o.config).store.list()));
  chargers
    .command('remove')
    .addOption(configOption)
    .requiredOption('--id <chargePointId>', 'the charger')
    .action((o: { config: string; id: string }) => {
      if (!operatorStore(o.config).store.remove(o.id)) throw new ConfigError(`no charger ${o.id}`);
      print({ chargePointId: o.id, removed: true });
    });
}
