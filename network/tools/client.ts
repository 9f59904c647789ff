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
  type Commit,
  type Identity,
  type Network,
  type Status,
} from '@hyperledger/fabric-gateway';
import { gateway as gatewayProto, msp } from '@hyperledger/fabric-protos';
import { createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetworkDescription, OrgDescription } from './network';

export interface Connection {
  org: OrgDescription;
  identity: Identity;
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
  const identity: Identity = { mspId, credentials: readFileSync(id.certPath) };
  const gateway = connect({
    client,
    identity,
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
    identity,
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

/**
 * The commit status of a transaction by its id, as a request the gateway signs with our identity: how a
 * client resolves a submit whose outcome it does not know, instead of submitting anew.
 */
export function commitOf(conn: Connection, channel: string, txId: string): Commit {
  const identity = new msp.SerializedIdentity();
  identity.setMspid(conn.org.mspId);
  identity.setIdBytes(conn.identity.credentials);
  const req = new gatewayProto.CommitStatusRequest();
  req.setTransactionId(txId);
  req.setChannelId(channel);
  req.setIdentity(identity.serializeBinary());
  const signed = new gatewayProto.SignedCommitStatusRequest();
  signed.setRequest(req.serializeBinary()); // signed by the gateway on first use
  return conn.gateway.newCommit(signed.serializeBinary());
}

const isCode = (e: unknown, code: grpc.status): boolean => e instanceof GatewayError && e.code === code;

/**
 * Endorses once, sends to the orderers, waits for the commit, and fails unless the transaction was
 * committed VALID. When fewer than a BFT quorum of orderers take it (UNAVAILABLE, e.g. orderers that just
 * restarted, or "request already processed") its outcome is unknown: it may still be ordered from the
 * pools of those that did. So the client waits for its commit status by transaction id, sending the same
 * signed transaction again meanwhile; one transaction id commits at most once, however often it is sent.
 */
export async function submit<T>(conn: Connection, fn: string, ...args: string[]): Promise<Submitted<T>> {
  const endorsed = await conn.contract.newProposal(fn, { arguments: args }).endorse();
  const txId = endorsed.getTransactionId();
  let status: Status | undefined;
  try {
    status = await (await endorsed.submit()).getStatus();
  } catch (e) {
    if (!isCode(e, grpc.status.UNAVAILABLE)) throw e;
    const commit = commitOf(conn, conn.network.getName(), txId);
    const deadline = Date.now() + 120_000;
    while (!status) {
      try {
        status = await commit.getStatus({ deadline: Date.now() + 3_000 });
      } catch (err) {
        if (!isCode(err, grpc.status.DEADLINE_EXCEEDED) || Date.now() > deadline) throw err;
        await endorsed.submit().catch(() => undefined);
      }
    }
  }
  if (!status.successful) throw new Error(`${fn} ${txId} committed with validation code ${status.code}`);
  const text = Buffer.from(endorsed.getResult()).toString('utf8');
  return { result: JSON.parse(text) as T, txId, blockNumber: status.blockNumber };
}

/** One Prometheus sample of a node for the channel (undefined when the node is unreachable). */
export async function nodeMetric(
  operationsUrl: string,
  name: string,
  channel: string,
): Promise<number | undefined> {
  try {
    const res = await fetch(`${operationsUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name}{channel="${channel}"}`));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  } catch {
    return undefined;
  }
}

/** A peer's (or orderer's) block height on the channel. */
export const peerHeight = (operationsUrl: string, channel: string): Promise<number | undefined> =>
  nodeMetric(operationsUrl, 'ledger_blockchain_height', channel);

/**
 * Waits until every peer (the auditor's included) has committed block `block`. A commit status comes from
 * one peer; the others may be a block behind, and a transaction that reads the new state must not be
 * endorsed by a peer that has not committed it yet.
 */
export async function committedOnEveryPeer(
  net: NetworkDescription,
  block: bigint,
  limitMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (const o of net.orgs) {
    for (;;) {
      const h = await peerHeight(o.peer.operationsUrl, net.channel);
      if (h !== undefined && BigInt(h) > block) break;
      if (Date.now() > deadline)
        throw new Error(`${o.peer.node} did not commit block ${block} within ${limitMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function evaluate<T>(conn: Connection, fn: string, ...args: string[]): Promise<T> {
  const bytes = await conn.contract.evaluate(fn, { arguments: args });
  return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
}
