/**
 * `evpay charger`: a simulated charger on OCPP 1.6J or 2.0.1 against an operator's gateway (issue 13
 * item 6), a thin shell over gateway-api/src/sim/chargerRun.ts. It connects as the charger the operator
 * added (`evpay-gateway chargers add`), signs its readings with the pile's key file, and either waits for
 * the remote starts a driver's app triggers or, with --driver-api-key, plays the driver itself. It prints
 * a summary: sessions settled on the ledger, fen charged, stop-to-settled latencies.
 *
 * Exit codes as `evpay gw`'s (gatewayCommands.ts, EXIT): 0 every session settled, 1 some did not (the
 * summary is printed either way), 2 usage error, 3 refused (a setup request, or the OCPP handshake), 4 and
 * 5 the gateway failed or did not answer a setup request.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { idSchema, pileIdSchema } from '@evpay/chaincode/client';
import { fetchTrusting, GatewayClient, gatewayUrl } from '../client/gatewayClient';
import { chargePointIdSchema, chargerPasswordSchema } from '../ocpp/chargers';
import { OcppCallError, type ChargerSessionOutcome } from '../sim/charger';
import { ChargerSetupError, runChargerSimulation } from '../sim/chargerRun';
import { OCPP_VERSIONS, type OcppVersion } from '../sim/ocppMessages';
import { positiveNumber, schemaArg, wholeNumber } from './args';
import { EXIT } from './gatewayCommands';
import { loadKey, print, UsageError } from './shared';

interface ChargerOptions {
  gateway: string;
  id?: string;
  password?: string;
  cert?: string;
  key?: string;
  ca?: string;
  ocpp: OcppVersion;
  pile: string;
  pileKey: string;
  passphraseFile?: string;
  sessions: number;
  apiKey?: string;
  driverApiKey?: string;
  driverKey?: string;
  topUpApiKey?: string;
  cap: number;
  progress: number;
  stepMs: number;
  speedup: number;
  network?: string;
  seed?: number;
  wait: number;
  timeout: number;
  verbose?: boolean;
}

const urlArg = (value: string): string => {
  try {
    return gatewayUrl(value);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
  }
};
const apiKeyArg = (value: string): string => {
  if (!/^\S{1,512}$/.test(value)) throw new InvalidArgumentError('an API key (evk_...)');
  return value;
};
const keyOption = (flags: string, env: string, what: string): Option =>
  new Option(flags, what).env(env).argParser(apiKeyArg);

export function addChargerSimCommand(p: Command): void {
  p.command('charger')
    .description(
      "a simulated charger on OCPP 1.6J or 2.0.1 at an operator's gateway: boots, takes remote starts " +
        "(or asks for them as the driver), signs START/PROGRESS/STOP with the pile's key, and reads each " +
        'settlement back from the ledger; prints a summary',
    )
    .addOption(
      new Option(
        '--gateway <url>',
        "the pile operator's gateway; chargers connect to ws://HOST:PORT/ocpp/<id>",
      )
        .env('EVPAY_GATEWAY_URL')
        .argParser(urlArg)
        .makeOptionMandatory(),
    )
    .requiredOption(
      '--pile <pileId>',
      'the pile the charger is, "<MSP id>.<local id>"',
      schemaArg(pileIdSchema),
    )
    .requiredOption('--pile-key <file>', "the pile's key file (`evpay keygen`): signs the readings")
    .option('--passphrase-file <file>', 'passphrase of the key files (default: $EVPAY_PASSPHRASE)')
    .option(
      '--id <chargePointId>',
      'its OCPP identity at the gateway (default: the pile id)',
      schemaArg(chargePointIdSchema),
    )
    .addOption(
      new Option(
        '--password <password>',
        'its password at the gateway (`evpay-gateway chargers add`); not with --cert',
      )
        .env('EVPAY_CHARGER_PASSWORD')
        .argParser(schemaArg(chargerPasswordSchema)),
    )
    .option(
      '--cert <file>',
      'security profile 3: its client certificate (PEM, CN = its charger id) instead of a password',
    )
    .option('--key <file>', "the client certificate's private key (PEM)")
    .option('--ca <file>', "the CA (PEM) of the gateway's https/wss certificate, if not a system one")
    .addOption(new Option('--ocpp <version>', 'OCPP version').choices([...OCPP_VERSIONS]).default('1.6'))
    .option('--sessions <n>', 'sessions to run', positiveNumber, 1)
    .addOption(
      keyOption(
        '--driver-api-key <key>',
        'EVPAY_DRIVER_API_KEY',
        'driver-app key at --gateway: the simulator plays the driver and asks for each remote start',
      ),
    )
    .option('--driver-key <file>', "the driver's key file, its wallet funded (default: a new driver)")
    .addOption(
      keyOption(
        '--top-up-api-key <key>',
        'EVPAY_TOP_UP_API_KEY',
        "operator-admin key at --gateway: opens and tops up a new driver's wallet (sessions x --cap)",
      ),
    )
    .addOption(
      keyOption(
        '--api-key <key>',
        'EVPAY_API_KEY',
        'any key at --gateway: reads the pile and sessions (default: --driver-api-key)',
      ),
    )
    .option('--cap <fen>', "each authorization's cap, in fen", positiveNumber, 5_000)
    .option('--progress <n>', 'PROGRESS readings per session', wholeNumber, 1)
    .option('--step-ms <ms>', 'real time between two readings (at least 1000)', positiveNumber, 1000)
    .option('--speedup <x>', 'how much faster than real time the meter runs', positiveNumber, 600)
    .option('--network <id>', "the consortium's network id (default: the gateway's)", schemaArg(idSchema))
    .option('--seed <n>', "seed of the meter (the pile's rating, each session's power)", wholeNumber)
    .option(
      '--wait <seconds>',
      'how long to wait for each remote start (without --driver-api-key)',
      positiveNumber,
      300,
    )
    .option(
      '--timeout <seconds>',
      'how long to wait for each settlement, and for one HTTP answer',
      positiveNumber,
      120,
    )
    .option('--verbose', 'print each session as it ends, as one JSON line on stderr')
    .addHelpText(
      'after',
      '\nExits 0 when every session settled, 1 otherwise (the summary is printed either way); a refused ' +
        'handshake or setup request exits 3 (4, 5: the gateway failed or did not answer).',
    )
    .action(async (o: ChargerOptions) => {
      if (o.stepMs < 1000) throw new UsageError('--step-ms: at least 1000 (readings are whole seconds)');
      const readKey = o.apiKey ?? o.driverApiKey;
      if (!readKey) throw new UsageError('give --api-key (or --driver-api-key) to read the settlements');
      if (o.driverKey && !o.driverApiKey) throw new UsageError('--driver-key needs --driver-api-key');
      if ((o.cert === undefined) !== (o.key === undefined))
        throw new UsageError('--cert and --key go together');
      // A profile-3 charger presents its certificate only; a password from the environment is not sent.
      const password = o.cert === undefined ? o.password : undefined;
      if (o.cert === undefined && password === undefined)
        throw new UsageError('give --password (or $EVPAY_CHARGER_PASSWORD), or --cert and --key');
      const pem = (file: string | undefined, what: string): string | undefined => {
        if (file === undefined) return undefined;
        try {
          return readFileSync(file, 'utf8');
        } catch (e) {
          throw new UsageError(`cannot read ${what} ${file}: ${e instanceof Error ? e.message : String(e)}`);
        }
      };
      const tls = { cert: pem(o.cert, '--cert'), key: pem(o.key, '--key'), ca: pem(o.ca, '--ca') };
      const trusting = tls.ca === undefined ? undefined : fetchTrusting(tls.ca);
      const client = (apiKey: string): GatewayClient =>
        new GatewayClient({
          url: o.gateway,
          apiKey,
          timeoutMs: o.timeout * 1000,
          ...(trusting ? { fetch: trusting } : {}),
        });
      const keyOf = (file: string) => loadKey({ key: file, passphraseFile: o.passphraseFile });
      try {
        const summary = await runChargerSimulation({
          gatewayUrl: o.gateway,
          chargers: [
            {
              chargePointId: o.id ?? o.pile,
              ...(password === undefined ? {} : { password }),
              ...(tls.cert || tls.ca
                ? {
                    tls: Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)),
                  }
                : {}),
              ocpp: o.ocpp,
              pileId: o.pile,
              pileKeys: keyOf(o.pileKey),
            },
          ],
          api: client(readKey),
          ...(o.driverApiKey ? { driverApi: client(o.driverApiKey) } : {}),
          ...(o.driverKey ? { driverKeys: keyOf(o.driverKey) } : {}),
          ...(o.topUpApiKey ? { topUpApi: client(o.topUpApiKey) } : {}),
          sessions: o.sessions,
          capFen: o.cap,
          network: o.network,
          progressReadings: o.progress,
          stepMs: o.stepMs,
          speedup: o.speedup,
          waitStartMs: o.wait * 1000,
          settleTimeoutMs: o.timeout * 1000,
          seed: o.seed,
          onSession: o.verbose
            ? (s: ChargerSessionOutcome) => void process.stderr.write(JSON.stringify(s) + '\n')
            : undefined,
        });
        print(summary);
        if (summary.sessions.settled !== summary.sessions.planned) process.exitCode = EXIT.failed;
      } catch (e) {
        if (e instanceof ChargerSetupError || e instanceof RangeError) throw new UsageError(e.message);
        if (e instanceof OcppCallError) {
          process.stderr.write(JSON.stringify({ code: e.code, message: e.message }, null, 2) + '\n');
          process.exitCode = EXIT.refused;
          return;
        }
        throw e;
      }
    });
}
