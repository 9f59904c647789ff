/**
 * The ledger as one gateway sees it: its organization's client and admin identities on its own peer
 * (one gRPC channel shared by both), and the calls the REST layer makes. An interface, so the HTTP layer
 * names what it needs from Fabric in one place.
 */
import type * as grpc from '@grpc/grpc-js';
import type { ChaincodeEvent, CloseableAsyncIterable, Status } from '@hyperledger/fabric-gateway';
import type { common } from '@hyperledger/fabric-protos';
import type { GatewayConfig } from '../config';
import { openConnection, peerClient, type FabricConnection } from './connection';
import {
  evaluateRaw,
  resolveByTxId,
  submitRaw,
  type Committed,
  type Endorsed,
  type SubmitHooks,
} from './ledger';

export type IdentityKind = 'client' | 'admin';

export interface OrgLedger {
  readonly mspId: string;
  evaluate(as: IdentityKind, tx: string, args: string[]): Promise<Uint8Array>;
  submit(
    as: IdentityKind,
    tx: string,
    args: string[],
    hooks?: SubmitHooks,
    transient?: Record<string, Uint8Array>,
  ): Promise<Committed>;
  /** Resolves an endorsed transaction by its id (sending it again while its outcome is unknown). */
  resolve(as: IdentityKind, endorsed: Endorsed): Promise<Status>;
  /** Blocks of the channel from a block on (the reward keeper reads their evidence). */
  blocks(startBlock: bigint): Promise<CloseableAsyncIterable<common.Block>>;
  /** The contract's chaincode events from a block on (the next block when absent). */
  events(startBlock?: bigint): Promise<CloseableAsyncIterable<ChaincodeEvent>>;
  hasAdmin(): boolean;
  close(): void;
}

/** A chaincode answer as its canonical JSON parses (an empty answer is null). */
export function answerOf<T>(bytes: Uint8Array): T {
  const text = Buffer.from(bytes).toString('utf8');
  return (text === '' ? null : JSON.parse(text)) as T;
}

/** Evaluates a query with the client identity and parses its answer. */
export async function query<T>(
  ledger: Pick<OrgLedger, 'evaluate'>,
  tx: string,
  args: string[] = [],
): Promise<T> {
  return answerOf<T>(await ledger.evaluate('client', tx, args));
}

const networkIds = new WeakMap<object, Promise<string>>();

/**
 * The consortium's network id, which every driver- and pile-signed text names: read once per ledger
 * connection and shared by all that need it (it never changes); a failed read is tried again next time.
 */
export function networkIdOf(ledger: Pick<OrgLedger, 'evaluate'>): Promise<string> {
  let id = networkIds.get(ledger);
  if (!id) {
    id = query<{ consortium: { networkId: string } }>(ledger, 'GetConsortium').then(
      (c) => c.consortium.networkId,
    );
    id.catch(() => networkIds.delete(ledger));
    networkIds.set(ledger, id);
  }
  return id;
}

export function connectOrgLedger(config: GatewayConfig): OrgLedger {
  const client: grpc.Client = peerClient(config.peer);
  const open = (files: { certPath: string; keyDir: string }): FabricConnection =>
    openConnection(
      client,
      { mspId: config.mspId, ...files },
      config.channel,
      config.chaincode,
      config.timeouts,
    );
  const conns: Record<IdentityKind, FabricConnection | undefined> = {
    client: open(config.identities.client),
    admin: config.identities.admin && open(config.identities.admin),
  };
  const conn = (as: IdentityKind): FabricConnection => {
    const c = conns[as];
    if (!c) throw new Error(`this gateway has no ${as} identity configured`);
    return c;
  };
  const opts = {
    mvccRetries: config.limits.mvccRetries,
    commitMs: config.timeouts.commitMs,
    staleRetryMs: config.limits.staleRetryMs,
  };
  return {
    mspId: config.mspId,
    evaluate: (as, tx, args) => evaluateRaw(conn(as), tx, args),
    submit: (as, tx, args, hooks, transient) =>
      submitRaw(conn(as), tx, args, { ...opts, ...(transient ? { transient } : {}) }, hooks),
    resolve: (as, endorsed) => resolveByTxId(conn(as), endorsed, config.timeouts.commitMs, true),
    events: (startBlock) =>
      conn('client').network.getChaincodeEvents(
        config.chaincode,
        startBlock === undefined ? {} : { startBlock },
      ),
    blocks: (startBlock) => conn('client').network.getBlockEvents({ startBlock }),
    hasAdmin: () => conns.admin !== undefined,
    close: () => {
      conns.client?.close();
      conns.admin?.close();
      client.close();
    },
  };
}
