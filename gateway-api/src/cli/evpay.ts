/**
 * evpay: SM2 keys and signed messages for piles and drivers, in exactly the formats the chaincode
 * verifies (texts from @evpay/chaincode/client, one source of truth). Prints JSON ready to send.
 *
 *   evpay keygen --out pile.key                      # encrypted with $EVPAY_PASSPHRASE
 *   evpay sign authorization --key driver.key --pile AlphaMSP.P1 --cap 5000 --max-beans 20 --expires +600
 *   evpay sign revocation --key driver.key --nonce <nonce of an unused authorization>
 *   evpay sign standing --key driver.key --operator AlphaMSP --card 04A1B2C3 --cap 5000 --total-cap 50000 \
 *     --max-sessions 20 --max-beans 0 --expires +2592000   # an RFID card's standing authorization
 *   evpay sign reading --key pile.key --kind START --session s1 --pile AlphaMSP.P1 --meter 1200
 *   evpay verify --kind reading --public-key 04... --message signed.json
 *   evpay genesis-digest --file genesis.json         # the EVPAY_GENESIS_SM3 each operator pins
 *   evpay key upgrade --key old.key                  # a format v1 key file rewritten as v2
 *   evpay gw top-up --wallet <id> --amount 10000 --reference r1   # calls a gateway (gatewayCommands.ts)
 *   evpay simulate --piles 3 --sessions 5 ...        # whole charging stories against the gateways
 *   evpay charger --ocpp 2.0.1 --pile AlphaMSP.CP1 ... # a simulated OCPP charger (chargerSimCommand.ts)
 *   evpay witness verify --dir <export>              # the SM3 block witness, checked offline
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { z } from 'zod';
import {
  authorizationText,
  beanPurchaseText,
  beanTransferText,
  envelopeClaimText,
  refundText,
  revocationText,
  genesisDigest,
  idSchema,
  idTagDigest,
  MAX_STANDING_TTL_SEC,
  mspIdSchema,
  nonceSchema,
  pileIdSchema,
  readingText,
  standingRevocationText,
  standingText,
  sm2GenerateKeyPair,
  sm2Sign,
  sm2Verify,
  walletIdOf,
  walletIdSchema,
  type ReadingKind,
} from '@evpay/chaincode/client';
import { positiveNumber, schemaArg, timeArg, wholeNumber } from './args';

// Ids are checked with the chaincode's own schemas: what it would refuse is never signed.
const idArg = schemaArg(idSchema);
const mspIdArg = schemaArg(mspIdSchema);
const pileIdArg = schemaArg(pileIdSchema);
const walletIdArg = schemaArg(walletIdSchema);
const nonceArg = schemaArg(nonceSchema);
/** An OCPP idTag (1.6 CiString20, 2.0.1 idToken up to 36): printable ASCII, no spaces. */
const cardArg = schemaArg(z.string().regex(/^[!-~]{1,36}$/, '1 to 36 printable ASCII characters, no spaces'));
const standingIdArg = schemaArg(walletIdSchema);
import { GatewayRefusal, GatewayUnreachable } from '../client/gatewayClient';
import { addChargerSimCommand } from './chargerSimCommand';
import { addGatewayCommands, EXIT } from './gatewayCommands';
import { KeyFileError, sealKey, upgradeKey } from './keyfile';
import { loadKey, passphrase, print, readKeyFile, UsageError, withKey, type KeyOptions } from './shared';
import { addWitnessCommands } from './witnessCommands';

const now = (): number => Math.floor(Date.now() / 1000);
const at = timeArg(now);

const nonce = (): string => randomBytes(16).toString('hex');

type Expiring = KeyOptions & { expires: number; nonce?: string };

/** The options of a driver-signed message that expires and carries a single-use nonce. */
function expiring(c: Command): Command {
  return c
    .requiredOption('--expires <time>', '"now", "+SECONDS" or Unix seconds', at)
    .option('--nonce <nonce>', 'single-use nonce (default: random)', nonceArg);
}

/** Every kind of signed message `evpay verify` checks, with the text its signature covers. */
const MESSAGE_TEXTS = {
  authorization: authorizationText,
  revocation: revocationText,
  reading: readingText,
  purchase: beanPurchaseText,
  transfer: beanTransferText,
  claim: envelopeClaimText,
  refund: refundText,
  standing: standingText,
  'standing-revocation': standingRevocationText,
} as const;

/** The consortium's network id, which every signed message names (InitConsortium's networkId). */
function withNetwork(cmd: Command): Command {
  return cmd.addOption(
    new Option('--network <id>', "the consortium's network id (its genesis document's networkId)")
      .env('EVPAY_NETWORK')
      .argParser(idArg)
      .makeOptionMandatory(),
  );
}

/** One `sign <what>` subcommand: its options, then key file -> message -> SM2 signature -> JSON. */
function signCommand<O extends KeyOptions, M extends object>(
  parent: Command,
  name: string,
  description: string,
  configure: (c: Command) => Command,
  build: (o: O, walletId: string) => M,
  text: (network: string, m: M) => string,
): void {
  configure(withNetwork(withKey(parent.command(name).description(description)))).action(
    (o: O & { network: string }) => {
      const kp = loadKey(o);
      const msg = build(o, walletIdOf(kp.publicKeyHex));
      print({ ...msg, signature: sm2Sign(kp.privateKeyHex, text(o.network, msg)) });
    },
  );
}

export function program(): Command {
  const p = new Command('evpay').description(
    'SM2 keys and signed messages for the EV charging payment network',
  );
  p.configureOutput({ writeErr: (s) => process.stderr.write(s) }).exitOverride();

  p.command('keygen')
    .description('make an SM2 key pair and write it to a key file (encrypted unless --plaintext)')
    .requiredOption('--out <file>', 'where to write the key file (refuses to overwrite)')
    .option('--plaintext', 'store the private key unencrypted (devices without a secret store)')
    .option('--passphrase-file <file>', 'file holding the passphrase (default: $EVPAY_PASSPHRASE)')
    .action((o: { out: string; plaintext?: boolean; passphraseFile?: string }) => {
      if (existsSync(o.out)) throw new UsageError(`${o.out} exists; refusing to overwrite a key`);
      const secret = o.plaintext ? undefined : passphrase(o);
      if (!o.plaintext && secret === undefined)
        throw new UsageError('set EVPAY_PASSPHRASE or --passphrase-file, or choose --plaintext');
      const kp = sm2GenerateKeyPair();
      writeFileSync(o.out, JSON.stringify(sealKey(kp, secret), null, 2) + '\n', { mode: 0o600, flag: 'wx' });
      print({
        publicKey: kp.publicKeyHex,
        walletId: walletIdOf(kp.publicKeyHex),
        keyFile: o.out,
        encrypted: !o.plaintext,
      });
    });

  withKey(p.command('pubkey').description('print the public key and wallet id of a key file')).action(
    (o: KeyOptions) => {
      const kp = loadKey(o);
      print({ publicKey: kp.publicKeyHex, walletId: walletIdOf(kp.publicKeyHex) });
    },
  );

  const key = p.command('key').description('manage key files');
  withKey(
    key
      .command('upgrade')
      .description('rewrite a format v1 key file as format v2 in place (same key, same passphrase)'),
  ).action((o: KeyOptions) => {
    const upgraded = upgradeKey(readKeyFile(o.key), passphrase(o));
    // A new file beside the old one, then an atomic rename: the key is never half written.
    const tmp = `${o.key}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(tmp, JSON.stringify(upgraded, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(tmp, o.key);
    print({
      keyFile: o.key,
      format: upgraded.format,
      publicKey: upgraded.publicKeyHex,
      walletId: upgraded.walletId,
      encrypted: upgraded.encryption !== undefined,
    });
  });

  const sign = p.command('sign').description('sign a message with a key file and print it as JSON');
  signCommand(
    sign,
    'authorization',
    "a driver's authorization to start a session",
    (c) =>
      expiring(
        c
          .requiredOption('--pile <pileId>', 'pile id, "<MSP id>.<local id>"', pileIdArg)
          .requiredOption('--cap <fen>', 'most the session may cost, in fen', positiveNumber)
          .requiredOption(
            '--max-beans <count>',
            "most of the pile operator's beans the session may use (0: none)",
            wholeNumber,
          ),
      ),
    (o: Expiring & { pile: string; cap: number; maxBeans: number }, walletId) => ({
      walletId,
      pileId: o.pile,
      capFen: o.cap,
      maxBeans: o.maxBeans,
      nonce: o.nonce ?? nonce(),
      expiresAt: o.expires,
    }),
    authorizationText,
  );
  signCommand(
    sign,
    'revocation',
    "a driver's revocation of an authorization it signed and has not used (RevokeAuthorization)",
    (c) => c.requiredOption('--nonce <nonce>', 'the nonce of the authorization to revoke', nonceArg),
    (o: KeyOptions & { nonce: string }, walletId) => ({ walletId, nonce: o.nonce }),
    revocationText,
  );
  signCommand(
    sign,
    'standing',
    "a driver's standing authorization of an RFID card at its issuer's piles (RegisterStanding); the card " +
      'id is signed as its digest, SM3 of the network id and the card id, never in the clear',
    (c) =>
      expiring(
        c
          .requiredOption('--operator <mspId>', "the card's issuer, whose piles may use it", mspIdArg)
          .requiredOption('--card <idTag>', 'the card id the charger reads (OCPP idTag)', cardArg)
          .requiredOption('--cap <fen>', 'most one session may cost, in fen', positiveNumber)
          .requiredOption(
            '--total-cap <fen>',
            'most all its sessions together may cost, in fen',
            positiveNumber,
          )
          .requiredOption('--max-sessions <count>', 'most sessions it may start', positiveNumber)
          .requiredOption(
            '--max-beans <count>',
            "most of the operator's beans one session may use (0: none)",
            wholeNumber,
          ),
      ),
    (
      o: Expiring & {
        network: string;
        operator: string;
        card: string;
        cap: number;
        totalCap: number;
        maxSessions: number;
        maxBeans: number;
      },
      walletId,
    ) => {
      if (o.cap > o.totalCap) throw new UsageError('--cap may not exceed --total-cap');
      if (o.expires > now() + MAX_STANDING_TTL_SEC)
        throw new UsageError(`--expires: at most ${MAX_STANDING_TTL_SEC} s from now (366 days)`);
      return {
        walletId,
        operator: o.operator,
        idTagSm3: idTagDigest(o.network, o.card),
        capFen: o.cap,
        totalCapFen: o.totalCap,
        maxSessions: o.maxSessions,
        maxBeans: o.maxBeans,
        nonce: o.nonce ?? nonce(),
        expiresAt: o.expires,
      };
    },
    standingText,
  );
  signCommand(
    sign,
    'standing-revocation',
    "a driver's revocation of a standing authorization (RevokeStanding)",
    (c) => c.requiredOption('--standing-id <id>', 'the standing authorization id (SM3 hex)', standingIdArg),
    (o: KeyOptions & { standingId: string }, walletId) => ({ walletId, standingId: o.standingId }),
    standingRevocationText,
  );
  signCommand(
    sign,
    'reading',
    "a pile's signed meter reading",
    (c) =>
      c
        .addOption(
          new Option('--kind <kind>', 'reading kind')
            .choices(['START', 'PROGRESS', 'STOP'])
            .makeOptionMandatory(),
        )
        .requiredOption('--session <sessionId>', 'session id chosen by the pile', idArg)
        .requiredOption('--pile <pileId>', 'pile id, "<MSP id>.<local id>"', pileIdArg)
        .requiredOption('--meter <wh>', 'meter value in Wh', wholeNumber)
        .option('--at <time>', 'reading time (default: now)', at),
    (o: KeyOptions & { kind: ReadingKind; session: string; pile: string; meter: number; at?: number }) => ({
      kind: o.kind,
      sessionId: o.session,
      pileId: o.pile,
      meterWh: o.meter,
      readAt: o.at ?? now(),
    }),
    readingText,
  );
  signCommand(
    sign,
    'purchase',
    "a driver's purchase of an operator's beans",
    (c) =>
      expiring(
        c
          .requiredOption('--issuer <mspId>', 'operator selling the beans', mspIdArg)
          .requiredOption('--beans <count>', 'number of beans', positiveNumber)
          .requiredOption('--max-cost <fen>', 'most the driver agrees to pay, in fen', positiveNumber),
      ),
    (o: Expiring & { issuer: string; beans: number; maxCost: number }, walletId) => ({
      walletId,
      issuer: o.issuer,
      beans: o.beans,
      maxCostFen: o.maxCost,
      nonce: o.nonce ?? nonce(),
      expiresAt: o.expires,
    }),
    beanPurchaseText,
  );
  signCommand(
    sign,
    'transfer',
    "a driver's gift of beans to another wallet",
    (c) =>
      expiring(
        c
          .requiredOption('--to <walletId>', 'receiving wallet id (64 lowercase hex)', walletIdArg)
          .requiredOption('--issuer <mspId>', 'operator whose beans move', mspIdArg)
          .requiredOption('--beans <count>', 'number of beans', positiveNumber),
      ),
    (o: Expiring & { to: string; issuer: string; beans: number }, walletId) => ({
      fromWalletId: walletId,
      toWalletId: o.to,
      issuer: o.issuer,
      beans: o.beans,
      nonce: o.nonce ?? nonce(),
      expiresAt: o.expires,
    }),
    beanTransferText,
  );
  signCommand(
    sign,
    'claim',
    "a driver's claim of a red envelope",
    (c) =>
      c
        .requiredOption('--envelope <envelopeId>', 'envelope id', idArg)
        .requiredOption('--expires <time>', '"now", "+SECONDS" or Unix seconds', at),
    (o: KeyOptions & { envelope: string; expires: number }, walletId) => ({
      envelopeId: o.envelope,
      walletId,
      expiresAt: o.expires,
    }),
    envelopeClaimText,
  );
  signCommand(
    sign,
    'refund',
    "a driver's request to be paid out wallet money in cash by one operator",
    (c) =>
      expiring(
        c
          .requiredOption('--operator <mspId>', 'operator that pays the cash out', mspIdArg)
          .requiredOption('--amount <fen>', 'amount to pay out, in fen', positiveNumber),
      ),
    (o: Expiring & { operator: string; amount: number }, walletId) => ({
      walletId,
      operator: o.operator,
      amountFen: o.amount,
      nonce: o.nonce ?? nonce(),
      expiresAt: o.expires,
    }),
    refundText,
  );

  withNetwork(p.command('verify'))
    .description('check the signature of a signed message (exit 0 valid, 1 invalid)')
    .addOption(new Option('--kind <kind>').choices(Object.keys(MESSAGE_TEXTS)).makeOptionMandatory())
    .requiredOption('--public-key <hex>', 'signer public key (04 + x + y)')
    .requiredOption('--message <file>', 'JSON printed by `evpay sign` ("-" for stdin)')
    .action(
      (o: { kind: keyof typeof MESSAGE_TEXTS; network: string; publicKey: string; message: string }) => {
        const raw = readFileSync(o.message === '-' ? 0 : o.message, 'utf8');
        let m: Record<string, unknown>;
        try {
          m = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          throw new UsageError(`${o.message} is not JSON`);
        }
        const text = (MESSAGE_TEXTS[o.kind] as (network: string, msg: never) => string)(
          o.network,
          m as never,
        );
        const valid = typeof m.signature === 'string' && sm2Verify(o.publicKey, text, m.signature);
        print({ valid });
        if (!valid) process.exitCode = 1;
      },
    );
  p.command('genesis-digest')
    .description("the SM3 digest of a genesis document (InitConsortium's input), to pin as EVPAY_GENESIS_SM3")
    .requiredOption('--file <file>', 'the genesis document, JSON ("-" for stdin)')
    .action((o: { file: string }) => {
      let doc: unknown;
      try {
        doc = JSON.parse(readFileSync(o.file === '-' ? 0 : o.file, 'utf8'));
      } catch (e) {
        throw new UsageError(`cannot read ${o.file}: ${e instanceof Error ? e.message : String(e)}`);
      }
      try {
        print({ genesisSm3: genesisDigest(doc) });
      } catch (e) {
        // The chaincode's own validation: a document it would refuse has no digest worth pinning.
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
    });
  addGatewayCommands(p);
  addChargerSimCommand(p);
  addWitnessCommands(p);
  // `evpay --help` is the whole reference: every command with every one of its options.
  p.addHelpText('after', () => `\nEvery command and its options:\n\n${everyCommand(p).join('\n')}`);
  return p;
}

/** The help of every command below `cmd`, depth first, each starting with its "Usage: evpay ..." line. */
function everyCommand(cmd: Command): string[] {
  return cmd.commands.flatMap((sub) => [sub.helpInformation(), ...everyCommand(sub)]);
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    // commander has already printed its own usage errors; --help and --version end here too.
    const { code, exitCode } = e as { code?: string; exitCode?: number };
    if (exitCode !== undefined && code?.startsWith('commander.')) {
      // Help and version exit 0; every usage error exits 2, like our own.
      process.exitCode = exitCode === 0 ? 0 : 2;
      return;
    }
    // The gateway's own answer, as JSON, so a script can read the code (gatewayCommands.ts, EXIT).
    if (e instanceof GatewayRefusal || e instanceof GatewayUnreachable) {
      process.stderr.write(JSON.stringify(e.toJSON(), null, 2) + '\n');
      process.exitCode =
        e instanceof GatewayUnreachable ? EXIT.unreachable : e.isFailure ? EXIT.gatewayFailed : EXIT.refused;
      return;
    }
    process.stderr.write(`evpay: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof UsageError || e instanceof KeyFileError ? EXIT.usage : EXIT.failed;
  }
}

if (require.main === module) void main(process.argv);
