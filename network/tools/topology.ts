/**
 * The consortium's topology file (network/topology.json): schema, loading (with `extends` for test
 * networks) and the derived facts every script and test reads: node names, ports, consenter order and
 * the files cryptogen writes. One place decides each path and each port.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';

const port = z.number().int().min(1024).max(65535);
const duration = z.string().regex(/^\d+(ms|s|m)(\d+s)?$/, 'a Go duration such as 100ms, 2s or 3m0s');
const name = z.string().regex(/^[A-Za-z][A-Za-z0-9 &.-]{0,63}$/);
const mspId = z.string().regex(/^[A-Za-z][A-Za-z0-9.-]{0,63}$/);
const domain = z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/);

const peerPorts = z.object({ port, chaincodePort: port, operationsPort: port }).strict();
const gatewayPorts = z.object({ port }).strict();

export const topologySchema = z
  .object({
    $comment: z.string().optional(),
    /** Names the run folder (run/<name>) and the peers' network id. */
    name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    host: z.string().min(1),
    /** Added to every port below: a second network (the tests') beside the first. */
    portOffset: z.number().int().min(0).max(20000),
    channel: z.string().regex(/^[a-z][a-z0-9.-]{0,48}$/),
    chaincode: z
      .object({ name: z.string().regex(/^[a-z][a-z0-9_-]{0,48}$/), endorsement: z.literal('majority') })
      .strict(),
    ordering: z
      .object({
        batchSize: z
          .object({
            maxMessageCount: z.number().int().min(1).max(100_000),
            absoluteMaxBytes: z.string(),
            preferredMaxBytes: z.string(),
          })
          .strict(),
        smartBFT: z
          .object({
            /** The paper's t: a block is cut at least this often while requests wait. Never above 1 s. */
            requestBatchMaxInterval: duration.refine((d) => toMs(d) > 0 && toMs(d) <= 1000, 'at most 1s'),
            requestForwardTimeout: duration,
            requestComplainTimeout: duration,
            requestAutoRemoveTimeout: duration,
            viewChangeResendInterval: duration,
            viewChangeTimeout: duration,
            leaderHeartbeatTimeout: duration,
            leaderHeartbeatCount: z.number().int().min(1).max(100),
            collectTimeout: duration,
          })
          .strict(),
      })
      .strict(),
    operators: z
      .array(
        z
          .object({
            name,
            mspId,
            ordererMspId: mspId,
            domain,
            peer: peerPorts,
            orderer: z.object({ port, adminPort: port, operationsPort: port }).strict(),
            gateway: gatewayPorts,
          })
          .strict(),
      )
      .min(1)
      .max(32),
    auditor: z.object({ name, mspId, domain, peer: peerPorts, gateway: gatewayPorts }).strict(),
    /** The genesis document's networkId, params and tariff (operators and auditor come from above). */
    consortium: z
      .object({ networkId: z.string(), params: z.record(z.unknown()), tariff: z.unknown() })
      .strict(),
  })
  .strict();

export type Topology = z.infer<typeof topologySchema>;

/** Go duration text to milliseconds (the forms the schema accepts). */
export function toMs(d: string): number {
  const m = /^(\d+)(ms|s|m)(?:(\d+)s)?$/.exec(d);
  if (!m) return NaN;
  const n = Number(m[1]);
  const extra = m[3] ? Number(m[3]) * 1000 : 0;
  return (m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000) + extra;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; anything else (arrays included) is replaced. */
function merge(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k] as Json, v) : v;
  return out;
}

function readWithExtends(file: string, seen: Set<string>): Json {
  const path = resolve(file);
  if (seen.has(path)) throw new Error(`topology ${path} extends itself`);
  seen.add(path);
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Json;
  if (!isObject(raw) || typeof raw.extends !== 'string') return raw;
  const { extends: parent, ...rest } = raw;
  return merge(readWithExtends(resolve(dirname(path), parent as string), seen), rest);
}

/** Reads, merges `extends`, validates; a bad file names every field it got wrong. */
export function loadTopology(file: string): Topology {
  const parsed = topologySchema.safeParse(readWithExtends(file, new Set()));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid topology ${file}:\n${lines.join('\n')}`);
  }
  const t = parsed.data;
  const ports = new Map<number, string>();
  const claim = (p: number, what: string): void => {
    const prev = ports.get(p);
    if (prev) throw new Error(`invalid topology ${file}: port ${p} is used by both ${prev} and ${what}`);
    ports.set(p, what);
  };
  const orgs = [...t.operators, t.auditor];
  for (const o of orgs) {
    for (const [k, p] of Object.entries(o.peer)) claim(p, `${o.name} peer ${k}`);
    claim(o.gateway.port, `${o.name} gateway`);
  }
  for (const o of t.operators)
    for (const [k, p] of Object.entries(o.orderer)) claim(p, `${o.name} orderer ${k}`);
  const unique = (what: string, values: string[]): void => {
    if (new Set(values).size !== values.length)
      throw new Error(`invalid topology ${file}: duplicate ${what}`);
  };
  unique(
    'name',
    orgs.map((o) => o.name),
  );
  unique('MSP id', [...orgs.map((o) => o.mspId), ...t.operators.map((o) => o.ordererMspId)]);
  unique(
    'domain',
    orgs.map((o) => o.domain),
  );
  return t;
}

/** What every node has: its short name (run/<network>/nodes/<node>), organization and addresses. */
interface NodeBase {
  node: string;
  org: string;
  orgName: string;
  mspId: string;
  domain: string;
  host: string;
  /** cryptogen's host name, in the TLS certificate besides localhost and 127.0.0.1. */
  hostname: string;
  port: number;
  operationsPort: number;
}

export interface PeerNode extends NodeBase {
  kind: 'peer';
  chaincodePort: number;
  /** The auditor's peer holds the ledger and answers queries but endorses no write. */
  endorser: boolean;
}

export interface OrdererNode extends NodeBase {
  kind: 'orderer';
  adminPort: number;
  /** SmartBFT consenter id: position of the operator's English name in alphabetical order, from 1. */
  consenterId: number;
}

/** Short org key from the domain's first label ("alpha" for alpha.evpay.local). */
const orgKey = (d: string): string => d.split('.')[0] ?? d;

/** Operators in the order leadership passes at view changes: their English names, alphabetically. */
export function consenterOrder(t: Topology): Topology['operators'] {
  return [...t.operators].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function peers(t: Topology): PeerNode[] {
  const o = t.portOffset;
  const orgs = [...t.operators.map((op) => ({ ...op, endorser: true })), { ...t.auditor, endorser: false }];
  return orgs.map((org) => ({
    kind: 'peer',
    node: `${orgKey(org.domain)}-peer0`,
    org: orgKey(org.domain),
    orgName: org.name,
    mspId: org.mspId,
    domain: org.domain,
    host: t.host,
    hostname: `peer0.${org.domain}`,
    port: org.peer.port + o,
    chaincodePort: org.peer.chaincodePort + o,
    operationsPort: org.peer.operationsPort + o,
    endorser: org.endorser,
  }));
}

export function orderers(t: Topology): OrdererNode[] {
  const o = t.portOffset;
  return consenterOrder(t).map((op, i) => ({
    kind: 'orderer',
    node: `${orgKey(op.domain)}-orderer0`,
    org: orgKey(op.domain),
    orgName: op.name,
    mspId: op.ordererMspId,
    domain: op.domain,
    host: t.host,
    hostname: `orderer0.${op.domain}`,
    port: op.orderer.port + o,
    adminPort: op.orderer.adminPort + o,
    operationsPort: op.orderer.operationsPort + o,
    consenterId: i + 1,
  }));
}

/** Where cryptogen puts an organization's material, relative to the crypto folder. */
export const cryptoPaths = {
  peerOrg: (d: string): string => `peerOrganizations/${d}`,
  ordererOrg: (d: string): string => `ordererOrganizations/${d}`,
  peer: (d: string): string => `peerOrganizations/${d}/peers/peer0.${d}`,
  orderer: (d: string): string => `ordererOrganizations/${d}/orderers/orderer0.${d}`,
  peerUser: (d: string, user: 'Admin' | 'User1'): string => `peerOrganizations/${d}/users/${user}@${d}`,
  ordererAdmin: (d: string): string => `ordererOrganizations/${d}/users/Admin@${d}`,
};

/** The genesis document of the consortium (the InitConsortium argument every operator pins). */
export function genesisDocument(t: Topology): Record<string, unknown> {
  return {
    networkId: t.consortium.networkId,
    operators: t.operators.map((op) => ({ mspId: op.mspId, name: op.name })),
    auditorMspIds: [t.auditor.mspId],
    // The pool's custodian (chaincode/README.md, CUSTODIAN RULE): the auditor organization confirms
    // margins and the pool's side of clearing transfers.
    custodianMspId: t.auditor.mspId,
    params: t.consortium.params,
    tariff: t.consortium.tariff,
  };
}

/** `tsx network/tools/topology.ts name <file>`: the network's name, for the scripts' run folder. */
if (require.main === module) {
  const [cmd, file] = process.argv.slice(2);
  try {
    if (cmd !== 'name' || !file) throw new Error('usage: topology.ts name <topology.json>');
    process.stdout.write(`${loadTopology(file).name}\n`);
  } catch (e) {
    process.stderr.write(`topology: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  }
}
