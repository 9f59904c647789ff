/**
 * One Fabric Gateway connection: an organization's identity (client or admin) talking to one peer over
 * TLS. Shared by the REST gateway, up.sh's tools and the network tests, so there is one way to connect.
 */
import * as grpc from '@grpc/grpc-js';
import {
  connect,
  type Contract,
  type Gateway,
  type Identity,
  type Network,
} from '@hyperledger/fabric-gateway';
import { createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fabricSigning } from './signer';

export interface PeerTarget {
  /** host:port of the peer. */
  endpoint: string;
  /** The host name in the peer's TLS certificate (TLS server names must not be IP addresses). */
  hostname: string;
  tlsCACert: string;
}

export interface SignerFiles {
  mspId: string;
  certPath: string;
  /** Folder holding the private key: `*_sk` or `priv_sk` (cryptogen's layout). */
  keyDir: string;
}

export interface Deadlines {
  evaluateMs: number;
  endorseMs: number;
  submitMs: number;
  commitMs: number;
}

export const DEFAULT_DEADLINES: Deadlines = {
  evaluateMs: 30_000,
  endorseMs: 60_000,
  submitMs: 30_000,
  commitMs: 120_000,
};

export interface FabricConnection {
  mspId: string;
  identity: Identity;
  gateway: Gateway;
  network: Network;
  contract: Contract;
  close(): void;
}

/** A gRPC client to the peer, to be shared by the connections of several identities. */
export function peerClient(peer: PeerTarget): grpc.Client {
  return new grpc.Client(peer.endpoint, grpc.credentials.createSsl(readFileSync(peer.tlsCACert)), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.ssl_target_name_override': peer.hostname,
  });
}

function privateKeyFile(keyDir: string): string {
  const keyFile = readdirSync(keyDir).find((f) => f.endsWith('_sk') || f === 'priv_sk');
  if (!keyFile) throw new Error(`no private key (*_sk) in ${keyDir}`);
  return join(keyDir, keyFile);
}

/** Connects `who` through `client`; closing the connection leaves the shared gRPC client open. */
export function openConnection(
  client: grpc.Client,
  who: SignerFiles,
  channel: string,
  chaincode: string,
  deadlines: Deadlines = DEFAULT_DEADLINES,
): FabricConnection {
  const identity: Identity = { mspId: who.mspId, credentials: readFileSync(who.certPath) };
  const gateway = connect({
    client,
    identity,
    ...fabricSigning(createPrivateKey(readFileSync(privateKeyFile(who.keyDir)))),
    evaluateOptions: () => ({ deadline: Date.now() + deadlines.evaluateMs }),
    endorseOptions: () => ({ deadline: Date.now() + deadlines.endorseMs }),
    submitOptions: () => ({ deadline: Date.now() + deadlines.submitMs }),
    commitStatusOptions: () => ({ deadline: Date.now() + deadlines.commitMs }),
  });
  const network = gateway.getNetwork(channel);
  return {
    mspId: who.mspId,
    identity,
    gateway,
    network,
    contract: network.getContract(chaincode),
    close: () => gateway.close(),
  };
}
