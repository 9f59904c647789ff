/**
 * Fabric glue: adapts fabric-contract-api's Context to the domain's TxContext. Nothing here decides a
 * business rule; it maps identity, clock, state and errors, and publishes the transaction's business
 * events as one chaincode event (Fabric keeps only the last event a transaction sets).
 */
import { Certificate } from '@fidm/x509';
import type { Context } from 'fabric-contract-api';
import { canonicalJson } from '../domain/canonical';
import type { Caller, TxContext } from '../domain/context';
import { DomainError, fail } from '../domain/errors';
import { MAX_TX_TIME_SKEW_SEC } from '../domain/params';
import { withReadCache } from '../domain/state';
import { touch } from '../crypto/lru';
import { PeerState } from './peerState';

/** Name of the single chaincode event carrying a transaction's business events. */
export const EVENT_NAME = 'evpay';

const NODE_OU_ROLES = new Set(['admin', 'client', 'peer', 'orderer']);

/**
 * One plain PEM certificate and nothing else: BEGIN line first, base64 lines, END line, then only line
 * breaks.
 */
const SINGLE_PEM_CERTIFICATE =
  /^-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/]+={0,2}\r?\n)+-----END CERTIFICATE-----(?:\r?\n)*$/;

/**
 * The caller's certificate exactly as the peer's MSP read it, or BAD_IDENTITY. The peer decodes the
 * identity with Go's pem.Decode, which takes the first well-formed PEM block and skips malformed text
 * before it; fabric-shim's identity parser (@fidm/x509, behind getID) trims lines and drops comments, so
 * from crafted bytes it could read another, never validated certificate (say one with OU=admin in
 * front of the real client one). On a single plain certificate every parser reads the same one.
 */
export function singleCertificatePem(idBytes: Uint8Array | string): string {
  const text = Buffer.from(idBytes).toString('latin1');
  if (!SINGLE_PEM_CERTIFICATE.test(text))
    fail('BAD_IDENTITY', 'the caller identity must be exactly one PEM certificate and nothing else');
  return text;
}

/**
 * The Fabric NodeOU role of the submitting certificate: the one subject OU attribute that names a role,
 * or '' when there is none or more than one. Read from the parsed certificate (the parser fabric-shim
 * itself uses), never from the identity string, where another subject field's value could spell
 * "/OU=admin" (a client whose locality is "x/OU=admin" must stay a client).
 */
export function roleFromCertificate(pem: Uint8Array | string): string {
  const key = typeof pem === 'string' ? pem : Buffer.from(pem).toString('latin1');
  // A bounded LRU: the same few client certificates submit nearly every transaction, and parsing one
  // (fabric-shim has parsed it once already for ClientIdentity) showed in a profile under load.
  const role = roles.get(key) ?? parseRole(key);
  touch(roles, key, role, ROLE_CACHE_CAPACITY);
  return role;
}
export const ROLE_CACHE_CAPACITY = 256;
const roles = new Map<string, string>();

function parseRole(pem: string): string {
  const cert = Certificate.fromPEM(Buffer.from(pem, 'latin1'));
  const found = cert.subject.attributes
    .filter((a) => a.shortName === 'OU' && NODE_OU_ROLES.has(String(a.value)))
    .map((a) => String(a.value));
  return found.length === 1 ? (found[0] ?? '') : '';
}

/** fabric-shim gives the proposal time as a Long but history timestamps as plain numbers. */
export function toSeconds(v: number | { toNumber(): number }): number {
  return typeof v === 'number' ? v : v.toNumber();
}

/** The transaction's view of the world, and the peer state whose writes `run` sends once it succeeds. */
export function toTxContext(ctx: Context): { tx: TxContext; state: PeerState } {
  const { stub, clientIdentity } = ctx;
  // Checked first: getID() and the role are then read from the certificate the peer validated.
  const pem = singleCertificatePem(clientIdentity.getIDBytes());
  const caller: Caller = {
    mspId: clientIdentity.getMSPID(),
    role: roleFromCertificate(pem),
    id: clientIdentity.getID(),
  };
  const state = new PeerState(stub as unknown as ConstructorParameters<typeof PeerState>[0]);
  const tx: TxContext = {
    txId: stub.getTxID(),
    now: toSeconds(stub.getTxTimestamp().seconds),
    caller,
    store: withReadCache(state),
    events: [],
    channelId: stub.getChannelID(),
    transient: stub.getTransient(),
  };
  return { tx, state };
}

/**
 * The genesis digest this operator agreed to, from its chaincode process's environment (set by the
 * operator when it deploys the chaincode on its peers; see initConsortium). Peer-local configuration,
 * like the clock below: it decides only whether this peer endorses, never what is written.
 */
export function pinnedGenesis(): string | undefined {
  // eslint-disable-next-line no-restricted-properties -- a gate on endorsement (see above)
  return process.env.EVPAY_GENESIS_SM3?.trim() || undefined;
}

/** How far a proposal's timestamp may be from the endorsing peer's clock (one value, in params.ts). */
export { MAX_TX_TIME_SKEW_SEC };

/**
 * The transaction timestamp is chosen by the client, and every rule reads it as "now" (periods, expiry,
 * voting windows). Fabric does not bound it, so the endorsing peer does: a proposal stamped more than
 * MAX_TX_TIME_SKEW_SEC away from the peer's clock is refused. This is a gate, not an input: it never
 * changes what a transaction writes, so endorsements stay identical; peers whose clocks disagree near the
 * bound merely fail to endorse together and the client retries. With an endorsement policy that needs
 * several operators (majority), no single operator's peer can wave a forged time through.
 */
export function checkTxTime(txSeconds: number, peerSeconds: number): void {
  if (Math.abs(txSeconds - peerSeconds) > MAX_TX_TIME_SKEW_SEC)
    fail(
      'TX_TIME_SKEW',
      `transaction time ${txSeconds} is more than ${MAX_TX_TIME_SKEW_SEC} s from the peer's clock`,
      {
        txSeconds,
        peerSeconds,
      },
    );
}

/**
 * Runs a domain function as a transaction: the result is returned as canonical JSON; a DomainError
 * becomes an error whose message is its JSON ({code, category, message, details}) so the gateway can
 * map it without parsing prose; anything else is an internal error in the same shape.
 */
export async function run<T>(ctx: Context, fn: (tx: TxContext) => Promise<T>): Promise<string> {
  try {
    const { tx, state } = toTxContext(ctx);
    // eslint-disable-next-line no-restricted-properties -- the peer's clock gates the client's time (see checkTxTime)
    checkTxTime(tx.now, Math.floor(Date.now() / 1000));
    const result = await fn(tx);
    await state.flush();
    if (tx.events.length > 0)
      ctx.stub.setEvent(
        EVENT_NAME,
        new TextEncoder().encode(canonicalJson({ txId: tx.txId, events: tx.events })),
      );
    return canonicalJson(result ?? null);
  } catch (e) {
    if (e instanceof DomainError) throw new Error(JSON.stringify(e.toJSON()));
    throw new Error(
      JSON.stringify({
        code: 'INTERNAL',
        category: 'INTERNAL',
        message: e instanceof Error ? e.message : String(e),
        details: {},
      }),
    );
  }
}
