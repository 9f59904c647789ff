/**
 * run/<name>/network.json: what a client needs to reach the running network (endpoints, TLS roots,
 * identities). Written by render.ts; read by the tests, the scripts and the gateways.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface Identity {
  mspDir: string;
  certPath: string;
  keyDir: string;
}

export interface OrgDescription {
  mspId: string;
  name: string;
  role: 'operator' | 'auditor';
  peer: {
    node: string;
    endpoint: string;
    hostname: string;
    tlsCACert: string;
    operationsUrl: string;
    mspDir: string;
  };
  admin: Identity;
  client: Identity;
  gatewayPort: number;
  /** The organization's REST gateway (network/node.sh runs it like a node). */
  gateway: { node: string; url: string };
}

export interface OrdererDescription {
  node: string;
  mspId: string;
  /** The operator's English name. */
  operator: string;
  consenterId: number;
  endpoint: string;
  adminEndpoint: string;
  hostname: string;
  tlsCACert: string;
  operationsUrl: string;
  adminClient: { cert: string; key: string };
  /** The consenter's signing certificate, as the channel configuration's consenter mapping names it. */
  signCert: string;
}

export interface NetworkDescription {
  name: string;
  runDir: string;
  cryptoDir: string;
  channel: string;
  chaincode: string;
  networkId: string;
  endorsementPolicy: string;
  orgs: OrgDescription[];
  orderers: OrdererDescription[];
}

/** The description of network `name` (run/<name>/network.json), as up.sh rendered it. */
export function readNetwork(name: string, root = resolve(__dirname, '..', '..')): NetworkDescription {
  return JSON.parse(readFileSync(join(root, 'run', name, 'network.json'), 'utf8')) as NetworkDescription;
}
