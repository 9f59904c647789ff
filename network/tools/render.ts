/**
 * Renders everything the network's processes read from the topology file, into run/<name>/:
 *   config/crypto-config.yaml   cryptogen's input (the default topology's is also committed in crypto-config/)
 *   config/configtx.yaml        the channel: BFT consenters in name order, batch settings, anchor peers
 *   config/genesis.json, .sm3   the InitConsortium document and the SM3 digest each operator pins
 *   nodes/<node>/core.yaml | orderer.yaml, nodes/<node>/env   one folder a node (its ledger goes in data/)
 *   network.json                endpoints, certificates and identities, for the scripts, tests and gateways
 *   nodes.tsv                   one line a node, for the bash scripts
 * Usage: tsx network/tools/render.ts <topology.json> [--crypto-config-out FILE]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { genesisDigest } from '../../chaincode/src/domain/consortium';
import {
  cryptoPaths,
  genesisDocument,
  loadTopology,
  orderers,
  peers,
  type OrdererNode,
  type PeerNode,
  type Topology,
} from './topology';
import type { GatewayConfigFile } from '../../gateway-api/src/config';
import type { NetworkDescription, OrgDescription } from './network';

const ROOT = resolve(__dirname, '..', '..');
const SAMPLECONFIG = join(ROOT, '.fabric', 'config');
const BUILDER = join(ROOT, 'network', 'builder');

type Yaml = Record<string, unknown>;
const readYaml = (file: string): Yaml => parseYaml(readFileSync(file, 'utf8')) as Yaml;
const yaml = (v: unknown): string => stringify(v, { lineWidth: 0, aliasDuplicateObjects: false });

/** Sets a value at a dotted path inside a parsed YAML document, creating objects on the way. */
function set(doc: Yaml, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur: Yaml = doc;
  for (const k of keys.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Yaml;
  }
  cur[keys[keys.length - 1] as string] = value;
}

const SANS = ['localhost', '127.0.0.1'];

/** The channel's, the orderers' and the application's own policies: any member reads and writes, a majority of admins changes. */
const MEMBER_POLICIES = {
  Readers: { Type: 'ImplicitMeta', Rule: 'ANY Readers' },
  Writers: { Type: 'ImplicitMeta', Rule: 'ANY Writers' },
  Admins: { Type: 'ImplicitMeta', Rule: 'MAJORITY Admins' },
};

export function cryptoConfig(t: Topology): string {
  const doc = {
    OrdererOrgs: orderers(t).map((o) => ({
      Name: o.mspId.replace(/MSP$/, ''),
      Domain: o.domain,
      EnableNodeOUs: true,
      Specs: [{ Hostname: 'orderer0', SANS }],
    })),
    PeerOrgs: peers(t).map((p) => ({
      Name: p.mspId.replace(/MSP$/, ''),
      Domain: p.domain,
      EnableNodeOUs: true,
      Template: { Count: 1, SANS },
      Users: { Count: 1 },
    })),
  };
  return `# Generated from network/topology.json by network/tools/render.ts: edit the topology, not this file.\n${yaml(doc)}`;
}

function configtx(t: Topology, crypto: string): string {
  const ords = orderers(t);
  const policies = (msp: string, endorse: string) => ({
    Readers: { Type: 'Signature', Rule: `OR('${msp}.member')` },
    Writers: { Type: 'Signature', Rule: `OR('${msp}.member')` },
    Admins: { Type: 'Signature', Rule: `OR('${msp}.admin')` },
    Endorsement: { Type: 'Signature', Rule: endorse },
  });
  const ordererOrgs = ords.map((o) => ({
    Name: o.mspId,
    ID: o.mspId,
    MSPDir: join(crypto, cryptoPaths.ordererOrg(o.domain), 'msp'),
    Policies: policies(o.mspId, `OR('${o.mspId}.member')`),
    OrdererEndpoints: [`${o.host}:${o.port}`],
  }));
  const peerOrgs = peers(t).map((p) => ({
    Name: p.mspId,
    ID: p.mspId,
    MSPDir: join(crypto, cryptoPaths.peerOrg(p.domain), 'msp'),
    Policies: policies(p.mspId, `OR('${p.mspId}.peer')`),
    AnchorPeers: [{ Host: p.host, Port: p.port }],
  }));
  const bft = t.ordering.smartBFT;
  const doc = {
    Profiles: {
      EvPayChannel: {
        Policies: MEMBER_POLICIES,
        Capabilities: { V3_0: true },
        Orderer: {
          OrdererType: 'BFT',
          BatchTimeout: '2s',
          BatchSize: {
            MaxMessageCount: t.ordering.batchSize.maxMessageCount,
            AbsoluteMaxBytes: t.ordering.batchSize.absoluteMaxBytes,
            PreferredMaxBytes: t.ordering.batchSize.preferredMaxBytes,
          },
          ConsenterMapping: ords.map((o) => {
            const dir = join(crypto, cryptoPaths.orderer(o.domain));
            return {
              ID: o.consenterId,
              Host: o.host,
              Port: o.port,
              MSPID: o.mspId,
              Identity: join(dir, 'msp', 'signcerts', `${o.hostname}-cert.pem`), // = network.json signCert
              ClientTLSCert: join(dir, 'tls', 'server.crt'),
              ServerTLSCert: join(dir, 'tls', 'server.crt'),
            };
          }),
          SmartBFT: {
            RequestBatchMaxInterval: bft.requestBatchMaxInterval,
            RequestForwardTimeout: bft.requestForwardTimeout,
            RequestComplainTimeout: bft.requestComplainTimeout,
            RequestAutoRemoveTimeout: bft.requestAutoRemoveTimeout,
            ViewChangeResendInterval: bft.viewChangeResendInterval,
            ViewChangeTimeout: bft.viewChangeTimeout,
            LeaderHeartbeatTimeout: bft.leaderHeartbeatTimeout,
            LeaderHeartbeatCount: bft.leaderHeartbeatCount,
            CollectTimeout: bft.collectTimeout,
            IncomingMessageBufferSize: 200,
            RequestPoolSize: 100000,
          },
          Organizations: ordererOrgs,
          Policies: {
            ...MEMBER_POLICIES,
            // configtxgen replaces this with SmartBFT's quorum-of-consenters signature policy.
            BlockValidation: { Type: 'ImplicitMeta', Rule: 'ANY Writers' },
          },
          Capabilities: { V2_0: true },
        },
        Application: {
          Organizations: peerOrgs,
          Policies: {
            ...MEMBER_POLICIES,
            LifecycleEndorsement: { Type: 'ImplicitMeta', Rule: 'MAJORITY Endorsement' },
            Endorsement: { Type: 'ImplicitMeta', Rule: 'MAJORITY Endorsement' },
          },
          Capabilities: { V2_5: true },
        },
      },
    },
  };
  return yaml(doc);
}

/** The chaincode's endorsement policy: a majority of the operators' peers (never the auditor's). */
export function endorsementPolicy(t: Topology): string {
  const ops = peers(t).filter((p) => p.endorser);
  const need = Math.floor(ops.length / 2) + 1;
  return `OutOf(${need},${ops.map((p) => `'${p.mspId}.peer'`).join(',')})`;
}

function peerConfig(t: Topology, p: PeerNode, crypto: string, data: string): Yaml {
  const doc = readYaml(join(SAMPLECONFIG, 'core.yaml'));
  const dir = join(crypto, cryptoPaths.peer(p.domain));
  const addr = `${p.host}:${p.port}`;
  set(doc, 'peer.id', p.hostname);
  set(doc, 'peer.networkId', t.name);
  set(doc, 'peer.listenAddress', addr);
  set(doc, 'peer.address', addr);
  set(doc, 'peer.chaincodeListenAddress', `${p.host}:${p.chaincodePort}`);
  set(doc, 'peer.chaincodeAddress', `${p.host}:${p.chaincodePort}`);
  set(doc, 'peer.gossip.bootstrap', addr);
  set(doc, 'peer.gossip.endpoint', addr);
  set(doc, 'peer.gossip.externalEndpoint', addr);
  set(doc, 'peer.tls.enabled', true);
  set(doc, 'peer.tls.cert.file', join(dir, 'tls', 'server.crt'));
  set(doc, 'peer.tls.key.file', join(dir, 'tls', 'server.key'));
  set(doc, 'peer.tls.rootcert.file', join(dir, 'tls', 'ca.crt'));
  set(doc, 'peer.tls.clientRootCAs.files', [join(dir, 'tls', 'ca.crt')]);
  set(doc, 'peer.fileSystemPath', join(data, 'ledger'));
  set(doc, 'peer.mspConfigPath', join(dir, 'msp'));
  set(doc, 'peer.localMspId', p.mspId);
  set(doc, 'ledger.snapshots.rootDir', join(data, 'snapshots'));
  // Auditors read the history of any key (KeyHistory).
  set(doc, 'ledger.history.enableHistoryDatabase', true);
  set(doc, 'ledger.state.stateDatabase', 'goleveldb');
  set(doc, 'operations.listenAddress', `${p.host}:${p.operationsPort}`);
  set(doc, 'metrics.provider', 'prometheus');
  // The peer offers the chaincode batched state access in READY (Fabric v3.1): a transaction's writes
  // in one message and several reads in one; chaincode/src/contracts/peerState.ts uses both. Set here
  // and not only left to sampleconfig's defaults, since the chaincode's message count depends on them.
  set(doc, 'chaincode.runtimeParams.useWriteBatch', true);
  set(doc, 'chaincode.runtimeParams.maxSizeWriteBatch', 1000);
  set(doc, 'chaincode.runtimeParams.useGetMultipleKeys', true);
  set(doc, 'chaincode.runtimeParams.maxSizeGetMultipleKeys', 1000);
  // No Docker: chaincode runs as a local process through our external builder.
  set(doc, 'vm.endpoint', '');
  set(doc, 'chaincode.externalBuilders', [
    {
      name: 'evpay-node',
      path: BUILDER,
      propagateEnvironment: ['PATH', 'EVPAY_GENESIS_SM3', 'EVPAY_CHAINCODE_LOG_DIR'],
    },
  ]);
  return doc;
}

function ordererConfig(o: OrdererNode, crypto: string, data: string): Yaml {
  const doc = readYaml(join(SAMPLECONFIG, 'orderer.yaml'));
  const dir = join(crypto, cryptoPaths.orderer(o.domain));
  const tls = (f: string): string => join(dir, 'tls', f);
  set(doc, 'General.ListenAddress', o.host);
  set(doc, 'General.ListenPort', o.port);
  set(doc, 'General.TLS.Enabled', true);
  set(doc, 'General.TLS.PrivateKey', tls('server.key'));
  set(doc, 'General.TLS.Certificate', tls('server.crt'));
  set(doc, 'General.TLS.RootCAs', [tls('ca.crt')]);
  set(doc, 'General.Cluster.ClientCertificate', tls('server.crt'));
  set(doc, 'General.Cluster.ClientPrivateKey', tls('server.key'));
  set(doc, 'General.BootstrapMethod', 'none');
  set(doc, 'General.LocalMSPDir', join(dir, 'msp'));
  set(doc, 'General.LocalMSPID', o.mspId);
  set(doc, 'FileLedger.Location', join(data, 'ledger'));
  set(doc, 'Consensus.WALDir', join(data, 'wal'));
  set(doc, 'Consensus.SnapDir', join(data, 'snapshot'));
  set(doc, 'Operations.ListenAddress', `${o.host}:${o.operationsPort}`);
  set(doc, 'Metrics.Provider', 'prometheus');
  set(doc, 'Admin.ListenAddress', `${o.host}:${o.adminPort}`);
  set(doc, 'Admin.TLS.Enabled', true);
  set(doc, 'Admin.TLS.Certificate', tls('server.crt'));
  set(doc, 'Admin.TLS.PrivateKey', tls('server.key'));
  set(doc, 'Admin.TLS.ClientAuthRequired', true);
  set(doc, 'Admin.TLS.ClientRootCAs', [tls('ca.crt')]);
  set(doc, 'ChannelParticipation.Enabled', true);
  return doc;
}

export function describe(t: Topology, runDir: string): NetworkDescription {
  const crypto = join(runDir, 'crypto');
  const user = (p: PeerNode, u: 'Admin' | 'User1') => {
    const dir = join(crypto, cryptoPaths.peerUser(p.domain, u));
    return {
      mspDir: join(dir, 'msp'),
      certPath: join(dir, 'msp', 'signcerts', `${u}@${p.domain}-cert.pem`),
      keyDir: join(dir, 'msp', 'keystore'),
    };
  };
  const gw = new Map([...t.operators, t.auditor].map((o) => [o.mspId, o.gateway.port + t.portOffset]));
  return {
    name: t.name,
    runDir,
    cryptoDir: crypto,
    channel: t.channel,
    chaincode: t.chaincode.name,
    networkId: t.consortium.networkId,
    endorsementPolicy: endorsementPolicy(t),
    orgs: peers(t).map((p) => ({
      mspId: p.mspId,
      name: p.orgName,
      role: p.endorser ? 'operator' : 'auditor',
      peer: {
        node: p.node,
        endpoint: `${p.host}:${p.port}`,
        hostname: p.hostname,
        tlsCACert: join(crypto, cryptoPaths.peer(p.domain), 'tls', 'ca.crt'),
        operationsUrl: `http://${p.host}:${p.operationsPort}`,
        mspDir: join(crypto, cryptoPaths.peer(p.domain), 'msp'),
      },
      admin: user(p, 'Admin'),
      client: user(p, 'User1'),
      gatewayPort: gw.get(p.mspId) ?? 0,
      gateway: {
        node: `${p.node.replace(/-peer\d+$/, '')}-gateway`,
        url: `http://${p.host}:${gw.get(p.mspId) ?? 0}`,
      },
    })),
    orderers: orderers(t).map((o) => {
      const admin = join(crypto, cryptoPaths.ordererAdmin(o.domain), 'tls');
      return {
        node: o.node,
        mspId: o.mspId,
        operator: o.orgName,
        consenterId: o.consenterId,
        endpoint: `${o.host}:${o.port}`,
        adminEndpoint: `${o.host}:${o.adminPort}`,
        hostname: o.hostname,
        tlsCACert: join(crypto, cryptoPaths.orderer(o.domain), 'tls', 'ca.crt'),
        operationsUrl: `http://${o.host}:${o.operationsPort}`,
        adminClient: { cert: join(admin, 'client.crt'), key: join(admin, 'client.key') },
        // The identity the channel configuration names for this consenter (configtx ConsenterMapping).
        signCert: join(crypto, cryptoPaths.orderer(o.domain), 'msp', 'signcerts', `${o.hostname}-cert.pem`),
      };
    }),
  };
}

/**
 * An organization's gateway configuration (gateway-api/src/config.ts validates it at start): its own
 * peer, its client identity, and for an operator its admin identity too (operator-admin calls).
 */
export function gatewayConfig(t: Topology, net: NetworkDescription, org: OrgDescription): GatewayConfigFile {
  return {
    mspId: org.mspId,
    role: org.role,
    listen: { host: t.host, port: org.gatewayPort },
    peer: { endpoint: org.peer.endpoint, hostname: org.peer.hostname, tlsCACert: org.peer.tlsCACert },
    channel: net.channel,
    chaincode: net.chaincode,
    identities: {
      client: { certPath: org.client.certPath, keyDir: org.client.keyDir },
      ...(org.role === 'operator'
        ? { admin: { certPath: org.admin.certPath, keyDir: org.admin.keyDir } }
        : {}),
    },
    dataDir: 'data',
  };
}

function main(): void {
  const [file, ...rest] = process.argv.slice(2);
  if (!file) throw new Error('usage: render.ts <topology.json> [--crypto-config-out FILE]');
  const t = loadTopology(file);
  const runDir = join(ROOT, 'run', t.name);
  const crypto = join(runDir, 'crypto');
  const cfg = join(runDir, 'config');
  mkdirSync(cfg, { recursive: true });
  writeFileSync(join(cfg, 'crypto-config.yaml'), cryptoConfig(t));
  const out = rest[0] === '--crypto-config-out' ? rest[1] : undefined;
  if (out) writeFileSync(out, cryptoConfig(t));
  writeFileSync(join(cfg, 'configtx.yaml'), configtx(t, crypto));
  const genesis = genesisDocument(t);
  writeFileSync(join(cfg, 'genesis.json'), `${JSON.stringify(genesis, null, 2)}\n`);
  // The chaincode's own digest function: it also validates the document as InitConsortium will.
  const digest = genesisDigest(genesis);
  writeFileSync(join(cfg, 'genesis.sm3'), `${digest}\n`);
  const tsv: string[] = [];
  for (const p of peers(t)) {
    const dir = join(runDir, 'nodes', p.node);
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'core.yaml'), yaml(peerConfig(t, p, crypto, join(dir, 'data'))));
    // Each operator pins the genesis document it agreed to on its own peers (see initConsortium).
    writeFileSync(
      join(dir, 'env'),
      `FABRIC_CFG_PATH=${dir}\nEVPAY_GENESIS_SM3=${digest}\nEVPAY_CHAINCODE_LOG_DIR=${dir}\n`,
    );
    tsv.push([p.kind, p.node, p.mspId, p.host, p.port, p.operationsPort, p.chaincodePort].join('\t'));
  }
  for (const o of orderers(t)) {
    const dir = join(runDir, 'nodes', o.node);
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'orderer.yaml'), yaml(ordererConfig(o, crypto, join(dir, 'data'))));
    writeFileSync(join(dir, 'env'), `FABRIC_CFG_PATH=${dir}\n`);
    tsv.push(
      [o.kind, o.node, o.mspId, o.host, o.port, o.operationsPort, o.adminPort, o.consenterId].join('\t'),
    );
  }
  const net = describe(t, runDir);
  for (const org of net.orgs) {
    const dir = join(runDir, 'nodes', org.gateway.node);
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'gateway.json'), `${JSON.stringify(gatewayConfig(t, net, org), null, 2)}\n`);
    writeFileSync(join(dir, 'env'), `EVPAY_GATEWAY_CONFIG=${join(dir, 'gateway.json')}\n`);
    const port = org.gatewayPort;
    tsv.push(['gateway', org.gateway.node, org.mspId, t.host, port, port].join('\t'));
  }
  writeFileSync(join(runDir, 'nodes.tsv'), `${tsv.join('\n')}\n`);
  writeFileSync(join(runDir, 'network.json'), `${JSON.stringify(net, null, 2)}\n`);
  process.stdout.write(`${runDir}\n`);
}

if (require.main === module) {
  try {
    main();
  } catch (e) {
    process.stderr.write(`render: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  }
}
