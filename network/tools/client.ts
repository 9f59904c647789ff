/**
 * A Fabric Gateway connection as one organization's identity (its admin or its client user), to that
 * organization's own peer, and the chaincode error as the caller sees it through a real peer.
 * Used by up.sh (InitConsortium, readiness) and the network tests.
 */
import { peerClient, openConnection, type FabricConnection } from '../../gateway-api/src/fabric/connection';
import { evaluateRaw, submitRaw } from '../../gateway-api/src/fabric/ledger';
import type { NetworkDescription, OrgDescription } from './network';

export { chaincodeError, type ChaincodeError } from '../../gateway-api/src/fabric/errors';

export interface Connection extends FabricConnection {
  org: OrgDescription;
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
  const client = peerClient(via.peer);
  const conn = openConnection(
    client,
    { mspId, certPath: id.certPath, keyDir: id.keyDir },
    net.channel,
    net.chaincode,
  );
  return {
    ...conn,
    org,
    close: () => {
      conn.close();
      client.close();
    },
  };
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
 * Endorses once, orders, waits for the commit, and fails unless the transaction was committed VALID (an
 * unknown outcome is resolved by transaction id, the same way the gateway does: fabric/ledger.ts).
 * No read-conflict retry: the tests and tools want to see conflicts.
 */
export async function submit<T>(conn: Connection, fn: string, ...args: string[]): Promise<Submitted<T>> {
  const c = await submitRaw(conn, fn, args, { mvccRetries: 0, commitMs: 120_000 });
  return {
    result: JSON.parse(Buffer.from(c.result).toString('utf8')) as T,
    txId: c.txId,
    blockNumber: c.blockNumber,
  };
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

/** The samples of a Prometheus text exposition: `name{labels}` (as written) to value. */
export function parsePrometheus(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    if (i > 0) m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** The sum of a metric's samples whose labels include every `label="value"` given. */
export function metricSum(
  samples: ReadonlyMap<string, number>,
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  for (const [series, v] of samples) {
    const brace = series.indexOf('{');
    if ((brace < 0 ? series : series.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, val]) => series.includes(`${k}="${val}"`))) sum += v;
  }
  return sum;
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
  const bytes = await evaluateRaw(conn, fn, args);
  return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
}
