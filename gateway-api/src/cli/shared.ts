/**
 * What the `evpay` commands share, in one module so the signing commands (evpay.ts) and the gateway
 * commands (gatewayCommands.ts) read key files, print answers and report usage errors the same way.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Sm2KeyPair } from '@evpay/chaincode/client';
import { openKey } from './keyfile';

/** A mistake in the command line or in a file it names: exit 2, nothing sent, nothing signed. */
export class UsageError extends Error {}

export const print = (value: unknown): void =>
  void process.stdout.write(JSON.stringify(value, null, 2) + '\n');

export interface KeyOptions {
  key: string;
  passphraseFile?: string;
}

export function passphrase(opts: { passphraseFile?: string }): string | undefined {
  if (opts.passphraseFile) return readFileSync(opts.passphraseFile, 'utf8').replace(/\r?\n$/, '');
  return process.env.EVPAY_PASSPHRASE;
}

export function readKeyFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read key file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function loadKey(opts: KeyOptions): Sm2KeyPair {
  return openKey(readKeyFile(opts.key), passphrase(opts));
}

export function withKey(cmd: Command): Command {
  return cmd
    .requiredOption('--key <file>', 'key file made by `evpay keygen`')
    .option('--passphrase-file <file>', 'file holding the passphrase (default: $EVPAY_PASSPHRASE)');
}

/** A JSON file ("-" for stdin), e.g. a message printed by `evpay sign`. */
export function readJsonFile(file: string): unknown {
  let raw: string;
  try {
    raw = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new UsageError(`${file} is not JSON`);
  }
}
