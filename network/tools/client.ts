/**
 * A Fabric Gateway connection as one organization's identity (its admin or its client user), to that
 * organization's own peer, and the chaincode error as the caller sees it through a real peer.
 * Used by up.sh (InitConsortium, readiness) and the network tests.
 */
import * as grpc from '@grpc/grpc-js';
import {
  connect,
  EndorseError,
  GatewayError,
  hash,
  signers,
  type Contract,
  type Gateway,
  type Network,
} from '@hyperledger/fabric-gateway';
import { createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetworkDescription, OrgDescription } from './network';

export interface Connection {
  org: OrgDescription;
  gateway: Gateway;
  network: Network;
  contract: Contract;
  close(): void;
}

export function orgOf(net: NetworkDescription, mspId: string): OrgDescription {
  const org = net.orgs.find((o) => o.mspId === mspId);
  if (!org) throw new Error(`no organization ${mspId} in network ${net.name}`);
  return org;
}

/** Connects as `who` of `mspId`, through the peer of `viaMspId` (by default the organization's own). */
export function connectAs(
  net: NetworkDescription,
  mspId: string,
  who: 'admin' | 'client',
  viaMspId: string = mspId,
): Connection {
  const org = orgOf(net, mspId);
  const via = orgOf(net, viaMspId);
  const id = who === 'admin' ? org.admin : org.client;
  const keyFile = readdirSync(id.keyDir).find((f) => f.endsWith('_sk') || f === 'priv_sk');
  if (!keyFile) throw new Error(`no private key in ${id.keyDir}`);
  const client = new grpc.Client(
    via.peer.endpoint,
    grpc.credentials.createSsl(readFileSync(via.peer.tlsCACert)),
    {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      // The certificate names the host; TLS servername must not be an IP address (RFC 6066).
      'grpc.ssl_target_name_override': via.peer.hostname,
    },
  );
  const gateway = connect({
    client,
    identity: { mspId, credentials: readFileSync(id.certPath) },
    signer: signers.newPrivateKeySigner(createPrivateKey(readFileSync(join(id.keyDir, keyFile)))),
    hash: hash.sha256,
    evaluateOptions: () => ({ deadline: Date.now() + 30_000 }),
    endorseOptions: () => ({ deadline: Date.now() + 60_000 }),
    submitOptions: () => ({ deadline: Date.now() + 30_000 }),
    commitStatusOptions: () => ({ deadline: Date.now() + 120_000 }),
  });
  const network = gateway.getNetwork(net.channel);
  return {
    org,
    gateway,
    network,
    contract: network.getContract(net.chaincode),
    close: () => {
      gateway.close();
      client.close();
    },
  };
}

/** The chaincode's JSON error ({code, category, message, details}) as the peer returned it. */
export interface ChaincodeError {
  code: string;
  category?: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * Reads the chaincode's error out of a gateway error. Through fabric-gateway a failed endorsement says
 * only "failed to endorse transaction"; the chaincode's text is in details[].message.
 */
export function chaincodeError(e: unknown): ChaincodeError | undefined {
  const texts: string[] = [];
  if (e instanceof GatewayError || e instanceof EndorseError)
    for (const d of e.details) texts.push(d.message);
  if (e instanceof Error) texts.push(e.message);
  for (const t of texts) {
    const start = t.indexOf('{"');
    if (start < 0) continue;
    try {
      const parsed = JSON.parse(t.slice(start)) as Partial<ChaincodeError>;
      if (typeof parsed.code === 'string') return parsed as ChaincodeError;
    } catch {
      // not this detail
    }
  }
  return undefined;
}

/**
 * Runs `fn` until the peer's discovery can plan an endorsement. Right after a chaincode definition is
 * committed (or a peer restarts) the peers need a few seconds of gossip before the gateway knows which
 * peers run the chaincode; until then it answers FAILED_PRECONDITION "no combination of peers".
 */
export async function whenEndorsable<T>(fn: () => Promise<T>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      const planning = e instanceof Error && /no combination of peers can be derived/.test(e.message);
      if (!planning || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export interface Submitted<T> {
  result: T;
  txId: string;
  blockNumber: bigint;
}

/** Submits, waits for the commit, and fails unless the transaction was committed VALID. */
export async function submit<T>(contract: Contract, fn: string, ...args: string[]): Promise<Submitted<T>> {
  const tx = await contract.submitAsync(fn, { arguments: args });
  const status = await tx.getStatus();
  if (!status.successful)
    throw new Error(`${fn} ${tx.getTransactionId()} committed with validation code ${status.code}`);
  const text = Buffer.from(tx.getResult()).toString('utf8');
  return { result: JSON.parse(text) as T, txId: tx.getTransactionId(), blockNumber: status.blockNumber };
}

export async function evaluate<T>(contract: Contract, fn: string, ...args: string[]): Promise<T> {
  const bytes = await contract.evaluate(fn, { arguments: args });
  return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
}
