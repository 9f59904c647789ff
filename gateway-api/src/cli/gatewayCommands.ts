/**
 * `evpay gw ...` and `evpay simulate`: the CLI as a client of an operator's REST gateway. Each command
 * builds the body of one route (bodies are the chaincode's argument objects), checks it with the
 * chaincode's own schema before sending (a mistake exits 2 naming the field, and nothing is sent), sends
 * it with its API key and, for a POST, an Idempotency-Key, and prints the gateway's JSON answer.
 *
 * Signing stays where the key is: `start`, `stop`, `revoke` and `refund` send messages already signed
 * by `evpay sign ...` (the driver's on the driver's device, the pile's on the pile), read from files. No
 * command here signs or sends a private key: `--key` opens a key file (checking it) only to take its
 * public key.
 *
 * Exit codes (EXIT): 0 answered; 2 usage error (nothing sent); 3 refused by the gateway (4xx: sending it
 * again changes nothing); 4 failed at the gateway or the ledger (5xx: retry with the same
 * --idempotency-key, which stderr names, to learn the outcome); 5 no answer (unreachable, or timed out:
 * retry likewise). On 3, 4 and 5 stderr holds the gateway's `{ code, message, details }` as JSON.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  evpayTransactions,
  idSchema,
  pileIdSchema,
  publicKeySchema,
  walletIdSchema,
  type ArgSpec,
  type EvPayTransactionName,
} from '@evpay/chaincode/client';
import { GatewayClient, gatewayUrl, IDEMPOTENCY_KEY, newIdempotencyKey } from '../client/gatewayClient';
import { rewardsReport, witnessReport } from '../client/rewards';
import { runSimulation } from '../sim/simulate';
import type { SessionOutcome } from '../sim/story';
import { positiveNumber, schemaArg, timeArg, wholeNumber } from './args';
import { loadKey, print, readJsonFile, UsageError } from './shared';

/** The exit codes of the gateway commands (the module comment says what each means). */
export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3, gatewayFailed: 4, unreachable: 5 } as const;

const EXIT_HELP = `
Exit codes: 0 answered; 2 usage error (nothing sent); 3 refused by the gateway (4xx); 4 failed at the
gateway or ledger (5xx: retry with the same --idempotency-key); 5 no answer (unreachable or timed out).
On 3-5, stderr holds the gateway's {code, message, details} as JSON.`;

const urlArg = (value: string): string => {
  try {
    return gatewayUrl(value);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
  }
};
const idempotencyKeyArg = (value: string): string => {
  if (!IDEMPOTENCY_KEY.test(value)) throw new InvalidArgumentError('1 to 128 of A-Z a-z 0-9 _ . : -');
  return value;
};
const apiKeyArg = (value: string): string => {
  if (!/^\S{1,512}$/.test(value)) throw new InvalidArgumentError('an API key (evk_...)');
  return value;
};
const idArg = schemaArg(idSchema);
const pileIdArg = schemaArg(pileIdSchema);
const walletIdArg = schemaArg(walletIdSchema);
const publicKeyArg = schemaArg(publicKeySchema);
const relative = timeArg(() => Math.floor(Date.now() / 1000));
/** A window bound: Unix seconds (any), "now" or "+SECONDS". */
const at = (value: string): number => (/^\d{1,12}$/.test(value) ? Number(value) : relative(value));

interface GatewayOptions {
  gateway: string;
  apiKey: string;
  timeout: number;
}
interface PostOptions extends GatewayOptions {
  idempotencyKey?: string;
}

function withGateway(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--gateway <url>', "the operator's gateway, e.g. http://127.0.0.1:8081")
        .env('EVPAY_GATEWAY_URL')
        .argParser(urlArg)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--api-key <key>', 'API key from `evpay-gateway credentials create` (prefer the env)')
        .env('EVPAY_API_KEY')
        .argParser(apiKeyArg)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--timeout <seconds>', 'how long to wait for an answer (a POST waits for the commit)')
        .default(120)
        .argParser(positiveNumber),
    );
}

function withIdempotencyKey(cmd: Command): Command {
  return cmd.option(
    '--idempotency-key <key>',
    'send under this key: a retry with it is answered with the first outcome (default: a new key)',
    idempotencyKeyArg,
  );
}

const clientOf = (o: GatewayOptions, apiKey = o.apiKey): GatewayClient =>
  new GatewayClient({ url: o.gateway, apiKey, timeoutMs: o.timeout * 1000 });

/**
 * The body checked with the schema the chaincode validates the transaction's JSON argument with (the
 * gateway checks it with the same one): what either would refuse is never sent.
 */
export function checkedBody(tx: EvPayTransactionName, body: unknown): unknown {
  const arg = evpayTransactions[tx].args.find((a: ArgSpec) => a.encoding === 'json');
  if (!arg) throw new Error(`${tx} takes no JSON body`);
  const r = arg.schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new UsageError(`${tx}: ${where}${issue?.message ?? 'invalid'}`);
  }
  return body;
}

/** One `evpay gw <name>` command that POSTs a checked body to `path`. */
function postCommand<O extends object>(
  gw: Command,
  name: string,
  description: string,
  path: string,
  tx: EvPayTransactionName,
  configure: (c: Command) => Command,
  body: (o: O) => unknown,
): void {
  configure(withIdempotencyKey(withGateway(gw.command(name).description(description)))).action(
    async (o: O & PostOptions) => {
      const checked = checkedBody(tx, body(o));
      print(await clientOf(o).post(path, checked, o.idempotencyKey ?? newIdempotencyKey()));
    },
  );
}

/** A public key from --public-key, or taken from a key file (opened, so a tampered file is refused). */
function publicKeyOption(c: Command): Command {
  return c
    .addOption(new Option('--public-key <hex>', 'SM2 public key (04 + x + y)').argParser(publicKeyArg))
    .addOption(new Option('--key <file>', 'take the public key from this key file').conflicts('publicKey'))
    .option('--passphrase-file <file>', 'passphrase of --key (default: $EVPAY_PASSPHRASE)');
}
interface PublicKeyOptions {
  publicKey?: string;
  key?: string;
  passphraseFile?: string;
}
function publicKeyOf(o: PublicKeyOptions): string {
  if (o.publicKey) return o.publicKey;
  if (o.key) return loadKey({ key: o.key, passphraseFile: o.passphraseFile }).publicKeyHex;
  throw new UsageError('give --public-key or --key');
}

export function addGatewayCommands(p: Command): void {
  const gw = p
    .command('gw')
    .description("call an operator's REST gateway (EVPAY_GATEWAY_URL, EVPAY_API_KEY)")
    .addHelpText('after', EXIT_HELP);

  postCommand(
    gw,
    'open-wallet',
    "open a driver's wallet for an SM2 public key (driver-app)",
    '/v1/wallets',
    'OpenWallet',
    publicKeyOption,
    (o: PublicKeyOptions) => ({ publicKey: publicKeyOf(o) }),
  );
  postCommand(
    gw,
    'register-pile',
    "register a pile of the gateway's operator with the pile's public key (operator-admin)",
    '/v1/piles',
    'RegisterPile',
    (c) =>
      publicKeyOption(
        c
          .requiredOption('--local-id <id>', 'the pile\'s id within its operator ("P1" makes "<MSP id>.P1")')
          .option('--meter <wh>', "the meter's value now, in Wh (default 0)", wholeNumber),
      ),
    (o: PublicKeyOptions & { localId: string; meter?: number }) => ({
      localId: o.localId,
      publicKey: publicKeyOf(o),
      ...(o.meter === undefined ? {} : { meterWh: o.meter }),
    }),
  );
  postCommand(
    gw,
    'top-up',
    'credit cash the operator received to a wallet (operator-admin)',
    '/v1/top-ups',
    'TopUp',
    (c) =>
      c
        .requiredOption('--wallet <walletId>', 'wallet id (64 lowercase hex)', walletIdArg)
        .requiredOption('--amount <fen>', 'amount received, in fen', positiveNumber)
        .requiredOption('--reference <ref>', "the operator's payment reference (used once)", idArg),
    (o: { wallet: string; amount: number; reference: string }) => ({
      walletId: o.wallet,
      amountFen: o.amount,
      reference: o.reference,
    }),
  );
  postCommand(
    gw,
    'start',
    "start a session: the driver's signed authorization and the pile's signed START (pile-backend)",
    '/v1/sessions',
    'StartSession',
    (c) =>
      c
        .requiredOption('--authorization <file>', 'printed by `evpay sign authorization` ("-": stdin)')
        .requiredOption('--reading <file>', 'printed by `evpay sign reading --kind START` ("-": stdin)'),
    (o: { authorization: string; reading: string }) => {
      if (o.authorization === '-' && o.reading === '-') throw new UsageError('only one file can be stdin');
      return { authorization: readJsonFile(o.authorization), startReading: readJsonFile(o.reading) };
    },
  );
  postCommand(
    gw,
    'progress',
    'record a signed PROGRESS reading of an open session (pile-backend)',
    '/v1/session-readings',
    'RecordReading',
    (c) => c.requiredOption('--reading <file>', 'printed by `evpay sign reading --kind PROGRESS`'),
    (o: { reading: string }) => ({ reading: readJsonFile(o.reading) }),
  );
  postCommand(
    gw,
    'stop',
    'stop and settle a session on its signed STOP reading (pile-backend)',
    '/v1/session-stops',
    'StopSession',
    (c) => c.requiredOption('--reading <file>', 'printed by `evpay sign reading --kind STOP` ("-": stdin)'),
    (o: { reading: string }) => ({ stopReading: readJsonFile(o.reading) }),
  );
  postCommand(
    gw,
    'revoke',
    "revoke an unused authorization with the driver's signed revocation (driver-app)",
    '/v1/authorization-revocations',
    'RevokeAuthorization',
    (c) => c.requiredOption('--revocation <file>', 'printed by `evpay sign revocation` ("-": stdin)'),
    (o: { revocation: string }) => readJsonFile(o.revocation),
  );
  postCommand(
    gw,
    'register-standing',
    "register a card's standing authorization signed by the driver, at the card's issuer (driver-app)",
    '/v1/standing-authorizations',
    'RegisterStanding',
    (c) => c.requiredOption('--standing <file>', 'printed by `evpay sign standing` ("-": stdin)'),
    (o: { standing: string }) => readJsonFile(o.standing),
  );
  postCommand(
    gw,
    'revoke-standing',
    "revoke a standing authorization: the driver's signed revocation (driver-app), or --id alone (operator-admin of the issuer)",
    '/v1/standing-revocations',
    'RevokeStanding',
    (c) =>
      c
        .option('--revocation <file>', 'printed by `evpay sign standing-revocation` ("-": stdin)')
        .option('--id <standingId>', 'the standing authorization id, revoked by its issuer'),
    (o: { revocation?: string; id?: string }) => {
      if ((o.revocation === undefined) === (o.id === undefined))
        throw new UsageError('give exactly one of --revocation and --id');
      return o.revocation === undefined ? { standingId: o.id } : readJsonFile(o.revocation);
    },
  );
  postCommand(
    gw,
    'refund',
    "pay wallet money out in cash on the driver's signed request (driver-app)",
    '/v1/refunds',
    'RefundWallet',
    (c) => c.requiredOption('--refund <file>', 'printed by `evpay sign refund` ("-": stdin)'),
    (o: { refund: string }) => readJsonFile(o.refund),
  );

  withGateway(gw.command('balance').description("a wallet's money (balance, held) and bean balances"))
    .requiredOption('--wallet <walletId>', 'wallet id (64 lowercase hex)', walletIdArg)
    .action(async (o: GatewayOptions & { wallet: string }) => {
      print(await clientOf(o).get(`/v1/wallets/${o.wallet}`));
    });
  withGateway(gw.command('history').description("a wallet's sessions, or a pile's (up to 500)"))
    .addOption(new Option('--wallet <walletId>', "the wallet's sessions").argParser(walletIdArg))
    .addOption(new Option('--pile <pileId>', "the pile's sessions").argParser(pileIdArg).conflicts('wallet'))
    .option('--from <time>', 'sessions started from this time (Unix seconds, "now")', at)
    .option('--to <time>', 'sessions started up to this time (Unix seconds, "now", "+SECONDS")', at)
    .action(async (o: GatewayOptions & { wallet?: string; pile?: string; from?: number; to?: number }) => {
      const path = o.wallet
        ? `/v1/wallets/${o.wallet}/sessions`
        : o.pile
          ? `/v1/piles/${o.pile}/sessions`
          : undefined;
      if (!path) throw new UsageError('give --wallet or --pile');
      print(await clientOf(o).get(path, { from: o.from, to: o.to }));
    });
  withGateway(gw.command('session').description('one session of a pile'))
    .requiredOption('--pile <pileId>', 'pile id, "<MSP id>.<local id>"', pileIdArg)
    .requiredOption('--session <sessionId>', 'session id', idArg)
    .action(async (o: GatewayOptions & { pile: string; session: string }) => {
      print(await clientOf(o).get(`/v1/piles/${o.pile}/sessions/${o.session}`));
    });

  withGateway(
    gw
      .command('rewards')
      .description(
        'block rewards per operator (rewardsFen, beans issued, remaining = limit - issued, treasury), the ' +
          'pool and totals; with --period, the rewards credited in that clearing period',
      ),
  )
    .option('--period <n>', "a clearing period: each operator's rewardsFen in its positions", wholeNumber)
    .action(async (o: GatewayOptions & { period?: number }) => {
      print(await rewardsReport(clientOf(o), o.period));
    });
  withGateway(
    gw
      .command('witness')
      .description(
        'witnessed blocks: leader, signers, business transactions, reward status and fen paid per ' +
          'operator, SM3 chain (up to 500 from --from; `next` names the following --from)',
      ),
  )
    .option('--from <block>', 'first block', positiveNumber, 1)
    .option('--to <block>', 'last block (reads on past 500 blocks up to it)', positiveNumber)
    .action(async (o: GatewayOptions & { from: number; to?: number }) => {
      print(await witnessReport(clientOf(o), o.from, o.to));
    });

  addSimulateCommand(p);
}

interface SimulateOptions {
  gateway: string;
  pileApiKey: string;
  adminApiKey: string;
  driverGateway?: string;
  driverApiKey: string;
  topUpApiKey?: string;
  piles: number;
  sessions: number;
  drivers?: number;
  progress: number;
  stepMs: number;
  speedup: number;
  cap: number;
  network?: string;
  seed?: number;
  runId?: string;
  retries: number;
  timeout: number;
  verbose?: boolean;
}

function addSimulateCommand(p: Command): void {
  const key = (flags: string, env: string, what: string, mandatory = true): Option => {
    const opt = new Option(flags, what).env(env).argParser(apiKeyArg);
    return mandatory ? opt.makeOptionMandatory() : opt;
  };
  p.command('simulate')
    .description(
      'run whole charging stories against the gateways: register piles, open and top up wallets, then ' +
        'START, PROGRESS and STOP sessions on every pile at once; prints a summary',
    )
    .addOption(
      new Option('--gateway <url>', "the piles' operator's gateway")
        .env('EVPAY_GATEWAY_URL')
        .argParser(urlArg)
        .makeOptionMandatory(),
    )
    .addOption(
      key('--pile-api-key <key>', 'EVPAY_PILE_API_KEY', 'pile-backend key at --gateway: runs sessions'),
    )
    .addOption(
      key('--admin-api-key <key>', 'EVPAY_ADMIN_API_KEY', 'operator-admin key at --gateway: registers piles'),
    )
    .addOption(
      new Option('--driver-gateway <url>', "the drivers' gateway (default: --gateway)")
        .env('EVPAY_DRIVER_GATEWAY_URL')
        .argParser(urlArg),
    )
    .addOption(
      key('--driver-api-key <key>', 'EVPAY_DRIVER_API_KEY', "driver-app key at the drivers' gateway"),
    )
    .addOption(
      key(
        '--top-up-api-key <key>',
        'EVPAY_TOP_UP_API_KEY',
        "operator-admin key at the drivers' gateway: tops up (default: --admin-api-key at --gateway)",
        false,
      ),
    )
    .option('--piles <n>', 'piles to register and run', positiveNumber, 3)
    .option('--sessions <n>', 'sessions per pile', positiveNumber, 5)
    .option('--drivers <n>', 'drivers; pile i charges driver i mod n (default: one per pile)', positiveNumber)
    .option('--progress <n>', 'PROGRESS readings per session', wholeNumber, 1)
    .option(
      '--step-ms <ms>',
      'real time between two readings of a session (at least 1000)',
      positiveNumber,
      1000,
    )
    .option('--speedup <x>', 'how much faster than real time the meters run', positiveNumber, 600)
    .option('--cap <fen>', "each authorization's cap, in fen", positiveNumber, 10_000)
    .option('--network <id>', "the consortium's network id (default: the gateway's)", idArg)
    .option('--seed <n>', 'seed of the meters (pile ratings, session powers)', wholeNumber)
    .option('--run-id <id>', 'tags the ids of the run (default: random)', (v: string) => {
      if (!/^[A-Za-z0-9]{1,16}$/.test(v)) throw new InvalidArgumentError('1 to 16 letters or digits');
      return v;
    })
    .option(
      '--retries <n>',
      'times a request is sent again after a 5xx, no answer or a conflict',
      wholeNumber,
      3,
    )
    .addOption(
      new Option('--timeout <seconds>', 'how long to wait for one answer')
        .default(120)
        .argParser(positiveNumber),
    )
    .option('--verbose', 'print each session as it ends, as one JSON line on stderr')
    .addHelpText(
      'after',
      `\nExits 0 when every session settled, 1 otherwise (the summary is printed either way); a setup\n` +
        `request the gateway refuses exits as \`evpay gw\` does (3, 4 or 5).`,
    )
    .action(async (o: SimulateOptions) => {
      if (o.stepMs < 1000) throw new UsageError('--step-ms: at least 1000 (readings are whole seconds)');
      const at = (url: string, apiKey: string): GatewayClient =>
        new GatewayClient({ url, apiKey, timeoutMs: o.timeout * 1000 });
      const driverGateway = o.driverGateway ?? o.gateway;
      let summary;
      try {
        summary = await runSimulation({
          pileApi: at(o.gateway, o.pileApiKey),
          adminApi: at(o.gateway, o.adminApiKey),
          driverApi: at(driverGateway, o.driverApiKey),
          topUpApi: o.topUpApiKey ? at(driverGateway, o.topUpApiKey) : at(o.gateway, o.adminApiKey),
          piles: o.piles,
          sessions: o.sessions,
          drivers: o.drivers,
          network: o.network,
          capFen: o.cap,
          progressReadings: o.progress,
          stepMs: o.stepMs,
          speedup: o.speedup,
          retries: o.retries,
          seed: o.seed,
          runId: o.runId,
          onSession: o.verbose
            ? (s: SessionOutcome) => void process.stderr.write(JSON.stringify(s) + '\n')
            : undefined,
        });
      } catch (e) {
        if (e instanceof RangeError) throw new UsageError(e.message);
        throw e;
      }
      print(summary);
      if (summary.sessions.settled !== summary.sessions.planned) process.exitCode = EXIT.failed;
    });
}
