/**
 * Helpers for tests on the running test network (test/network/topology.json, brought up by
 * globalSetup.ts): node control through network/node.sh, heights and SmartBFT state from the nodes'
 * metrics, the channel configuration through the peer CLI, and waiting on conditions (never on sleeps).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  connectAs,
  nodeMetric,
  parsePrometheus,
  peerHeight,
  type Connection,
} from '../../../network/tools/client';
import { readNetwork, type NetworkDescription } from '../../../network/tools/network';
import { loadTopology } from '../../../network/tools/topology';
import { ROOT, TOPOLOGY } from '../networkScripts';

const exec = promisify(execFile);
export { TOPOLOGY };
const FABRIC_BIN = join(ROOT, '.fabric', 'bin');

export const net: NetworkDescription = readNetwork(loadTopology(TOPOLOGY).name);
const env = (): NodeJS.ProcessEnv => ({
  ...process.env,
  EVPAY_TOPOLOGY: TOPOLOGY,
  PATH: `${FABRIC_BIN}:${process.env.PATH ?? ''}`,
});

/** Runs a network script (up.sh, down.sh, node.sh ...) of the tests' network. */
export async function script(name: string, ...args: string[]): Promise<string> {
  return scriptWith({}, name, ...args);
}

export async function scriptWith(
  extraEnv: NodeJS.ProcessEnv,
  name: string,
  ...args: string[]
): Promise<string> {
  const { stdout } = await exec(join(ROOT, 'network', name), args, {
    env: { ...env(), ...extraEnv },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

export const stopNode = (node: string): Promise<string> => script('node.sh', 'stop', node);
export const startNode = (node: string): Promise<string> => script('node.sh', 'start', node);

/** Polls `probe` every 200 ms until it yields a value (not undefined/false); fails after `limitMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  limitMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + limitMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${limitMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One Prometheus sample of a node for the tests' channel, or undefined when the node is down. */
export const metric = (operationsUrl: string, name: string): Promise<number | undefined> =>
  nodeMetric(operationsUrl, name, net.channel);

export const heightOf = (operationsUrl: string): Promise<number | undefined> =>
  peerHeight(operationsUrl, net.channel);

/**
 * How many state requests of a type (GET_STATE, WRITE_BATCH_STATE, ...) our chaincode has sent to all
 * the peers since they started, from the peers' chaincode_shim_requests_received metric.
 */
export async function shimRequests(type: string): Promise<number> {
  let n = 0;
  for (const o of net.orgs) {
    const samples = parsePrometheus(await (await fetch(`${o.peer.operationsUrl}/metrics`)).text());
    for (const [series, v] of samples)
      if (
        series.startsWith(`chaincode_shim_requests_received{chaincode="${net.chaincode}_`) &&
        series.includes(`channel="${net.channel}"`) &&
        series.includes(`type="${type}"`)
      )
        n += v;
  }
  return n;
}

/** The SmartBFT leader (consenter id) as orderer `node` sees it. */
export async function leaderSeenBy(node: string): Promise<number | undefined> {
  const o = net.orderers.find((x) => x.node === node);
  return o ? metric(o.operationsUrl, 'consensus_smartbft_view_leader_id') : undefined;
}

/** Environment of the peer CLI as an organization's admin. */
export function adminEnv(mspId: string): NodeJS.ProcessEnv {
  const org = net.orgs.find((o) => o.mspId === mspId);
  if (!org) throw new Error(`no org ${mspId}`);
  return {
    ...env(),
    FABRIC_CFG_PATH: join(net.runDir, 'nodes', org.peer.node),
    CORE_PEER_LOCALMSPID: mspId,
    CORE_PEER_MSPCONFIGPATH: org.admin.mspDir,
    CORE_PEER_ADDRESS: org.peer.endpoint,
    CORE_PEER_TLS_ENABLED: 'true',
    CORE_PEER_TLS_ROOTCERT_FILE: org.peer.tlsCACert,
  };
}

/** `peer channel getinfo` of an organization's peer: height and current block hash. */
export async function chainInfo(mspId: string): Promise<{ height: number; currentBlockHash: string }> {
  const { stdout } = await exec(join(FABRIC_BIN, 'peer'), ['channel', 'getinfo', '-c', net.channel], {
    env: adminEnv(mspId),
  });
  const json = stdout.slice(stdout.indexOf('{'));
  return JSON.parse(json) as { height: number; currentBlockHash: string };
}

/** The chaincode definition committed on the channel: its sequence and version. */
export async function committedDefinition(): Promise<{ sequence: number; version: string }> {
  const { stdout } = await exec(
    join(FABRIC_BIN, 'peer'),
    ['lifecycle', 'chaincode', 'querycommitted', '-C', net.channel, '-n', net.chaincode, '--output', 'json'],
    { env: adminEnv(net.orgs[0]?.mspId ?? '') },
  );
  return JSON.parse(stdout) as { sequence: number; version: string };
}

/** The channel's current configuration, fetched by a peer admin from the orderers and decoded. */
export async function channelConfig(mspId: string): Promise<ChannelConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'evpay-config-'));
  try {
    const o = net.orderers[0];
    if (!o) throw new Error('no orderer');
    const block = join(dir, 'config.block');
    await exec(
      join(FABRIC_BIN, 'peer'),
      [
        'channel',
        'fetch',
        'config',
        block,
        '-c',
        net.channel,
        '-o',
        o.endpoint,
        '--tls',
        '--cafile',
        o.tlsCACert,
      ],
      { env: adminEnv(mspId) },
    );
    const out = join(dir, 'config.json');
    await exec(join(FABRIC_BIN, 'configtxlator'), [
      'proto_decode',
      '--input',
      block,
      '--type',
      'common.Block',
      '--output',
      out,
    ]);
    const decoded = JSON.parse(readFileSync(out, 'utf8')) as {
      data: { data: Array<{ payload: { data: { config: ChannelConfig } } }> };
    };
    const cfg = decoded.data.data[0]?.payload.data.config;
    if (!cfg) throw new Error('config block without a config');
    return cfg;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The parts of a decoded channel configuration the tests read. */
export interface ChannelConfig {
  channel_group: {
    values: { Capabilities: { value: { capabilities: Record<string, unknown> } } };
    groups: {
      Orderer: {
        values: {
          ConsensusType: { value: { type: string; metadata: Record<string, unknown> } };
          BatchSize: { value: { max_message_count: number; absolute_max_bytes: number } };
          Orderers: {
            value: { consenter_mapping: Array<{ id: number; host: string; port: number; msp_id: string }> };
          };
        };
      };
      Application: { groups: Record<string, { values: Record<string, unknown> }> };
    };
  };
}

/**
 * Connections as organizations' identities, each through its own peer, opened as a test file needs them
 * and closed together after it: `const as = connections(); afterAll(as.closeAll);`.
 */
export function connections(): ((mspId: string, who?: 'admin' | 'client') => Connection) & {
  closeAll(): void;
} {
  const open: Connection[] = [];
  const as = (mspId: string, who: 'admin' | 'client' = 'client'): Connection => {
    const c = connectAs(net, mspId, who);
    open.push(c);
    return c;
  };
  return Object.assign(as, { closeAll: () => open.splice(0).forEach((c) => c.close()) });
}
