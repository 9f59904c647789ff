/**
 * Reading a block's evidence as the orderers wrote it, so the chaincode can check for itself who made a
 * block (it cannot read blocks: calls to system chaincode are refused). Pure functions, no Fabric import:
 * the few protobuf messages are declared here by their field numbers (Fabric v3's common.proto,
 * peer/*.proto and SmartBFT's messages.proto), decoded with protobufjs.
 *
 * BLOCK SIGNATURE RULE (Fabric v3 BFT, protoutil.BlockSignatureVerifier): each consenter signs, with
 * ECDSA over SHA-256, the bytes `metadata.value || identifierHeader || DER(header)`, where metadata is
 * the block's SIGNATURES metadata, identifierHeader names the consenter by its numeric id, and
 * DER(header) is the ASN.1 SEQUENCE { INTEGER number, OCTET STRING previousHash, OCTET STRING dataHash }.
 *
 * LEADER RULE (SmartBFT getLeaderID): with the consenter ids sorted, n of them, a block decided in view v
 * was proposed by nodes[v mod n] when leader rotation is off (Fabric v3 refuses rotation); with rotation
 * on, by the first of nodes[(v + decisionsInView / decisionsPerLeader + i) mod n], i = 0.., that is not
 * blacklisted. The view comes from the ViewMetadata the quorum signed (metadata.value's consenter
 * metadata), so the leader follows from signed evidence.
 *
 * QUORUM RULE (SmartBFT computeQuorum): n consenters tolerate f = floor((n - 1) / 3) faults and a block
 * needs q = ceil((n + f + 1) / 2) signatures.
 */
import protobuf from 'protobufjs';
import { sha256 } from '../crypto/ecdsa';

const root = protobuf.Root.fromJSON({
  nested: {
    Metadata: {
      fields: {
        value: { type: 'bytes', id: 1 },
        signatures: { rule: 'repeated', type: 'MetadataSignature', id: 2 },
      },
    },
    MetadataSignature: {
      fields: {
        signatureHeader: { type: 'bytes', id: 1 },
        signature: { type: 'bytes', id: 2 },
        identifierHeader: { type: 'bytes', id: 3 },
      },
    },
    IdentifierHeader: { fields: { identifier: { type: 'uint32', id: 1 }, nonce: { type: 'bytes', id: 2 } } },
    OrdererBlockMetadata: {
      fields: { lastConfig: { type: 'LastConfig', id: 1 }, consenterMetadata: { type: 'bytes', id: 2 } },
    },
    LastConfig: { fields: { index: { type: 'uint64', id: 1 } } },
    ViewMetadata: {
      fields: {
        viewId: { type: 'uint64', id: 1 },
        latestSequence: { type: 'uint64', id: 2 },
        decisionsInView: { type: 'uint64', id: 3 },
        blackList: { rule: 'repeated', type: 'uint64', id: 4 },
        prevCommitSignatureDigest: { type: 'bytes', id: 5 },
      },
    },
    BlockData: { fields: { data: { rule: 'repeated', type: 'bytes', id: 1 } } },
    Envelope: { fields: { payload: { type: 'bytes', id: 1 }, signature: { type: 'bytes', id: 2 } } },
    Payload: { fields: { header: { type: 'Header', id: 1 }, data: { type: 'bytes', id: 2 } } },
    Header: {
      fields: { channelHeader: { type: 'bytes', id: 1 }, signatureHeader: { type: 'bytes', id: 2 } },
    },
    ChannelHeader: {
      fields: {
        type: { type: 'int32', id: 1 },
        channelId: { type: 'string', id: 4 },
        txId: { type: 'string', id: 5 },
      },
    },
    Transaction: { fields: { actions: { rule: 'repeated', type: 'TransactionAction', id: 1 } } },
    TransactionAction: { fields: { header: { type: 'bytes', id: 1 }, payload: { type: 'bytes', id: 2 } } },
    ChaincodeActionPayload: { fields: { chaincodeProposalPayload: { type: 'bytes', id: 1 } } },
    ChaincodeProposalPayload: { fields: { input: { type: 'bytes', id: 1 } } },
    ChaincodeInvocationSpec: { fields: { chaincodeSpec: { type: 'ChaincodeSpec', id: 1 } } },
    ChaincodeSpec: {
      fields: { chaincodeId: { type: 'ChaincodeID', id: 2 }, input: { type: 'ChaincodeInput', id: 3 } },
    },
    ChaincodeID: { fields: { name: { type: 'string', id: 2 } } },
    ChaincodeInput: { fields: { args: { rule: 'repeated', type: 'bytes', id: 1 } } },
  },
});

const T = (name: string): protobuf.Type => root.lookupType(name);
type Long = { toString(): string };
const num = (v: number | Long | undefined): number => (v === undefined ? 0 : Number(v.toString()));
const decode = <M>(name: string, bytes: Uint8Array): M =>
  T(name).toObject(T(name).decode(bytes), { defaults: true }) as M;

export class EvidenceError extends Error {}

function read<M>(name: string, bytes: Uint8Array, what: string): M {
  try {
    return decode<M>(name, bytes);
  } catch (e) {
    throw new EvidenceError(`${what} is not a valid ${name}: ${(e as Error).message}`);
  }
}

// --- the header, as consenters sign it ---

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}
const tlv = (tag: number, content: Uint8Array): Uint8Array =>
  Uint8Array.from([tag, ...derLength(content.length), ...content]);

function derUnsigned(n: bigint): Uint8Array {
  const bytes: number[] = [];
  for (let v = n; v > 0n; v >>= 8n) bytes.unshift(Number(v & 0xffn));
  if (bytes.length === 0 || (bytes[0] as number) >= 0x80) bytes.unshift(0);
  return Uint8Array.from(bytes);
}

export interface BlockHeader {
  number: bigint;
  previousHash: Uint8Array;
  dataHash: Uint8Array;
}

/** The ASN.1 DER bytes of a block header (Fabric's protoutil.BlockHeaderBytes). */
export function headerBytes(h: BlockHeader): Uint8Array {
  const body = [tlv(0x02, derUnsigned(h.number)), tlv(0x04, h.previousHash), tlv(0x04, h.dataHash)];
  return tlv(0x30, Uint8Array.from(body.flatMap((b) => [...b])));
}

/** The hash a block's successor names as its previous hash. */
export const headerHash = (h: BlockHeader): Uint8Array => sha256(headerBytes(h));

// --- the signatures metadata ---

export interface ConsenterSignature {
  consenterId: number;
  /** The bytes the consenter signed (metadata.value || identifierHeader || DER(header)). */
  signed: Uint8Array;
  signature: Uint8Array;
}

export interface ViewMetadata {
  viewId: number;
  latestSequence: number;
  decisionsInView: number;
  blackList: number[];
}

export interface SignedEvidence {
  signatures: ConsenterSignature[];
  view: ViewMetadata;
  lastConfig: number;
}

/** Decodes a block's SIGNATURES metadata (the serialized common.Metadata) against its header. */
export function readSignatures(header: BlockHeader, signaturesMetadata: Uint8Array): SignedEvidence {
  const md = read<{
    value: Uint8Array;
    signatures: Array<{ signatureHeader: Uint8Array; signature: Uint8Array; identifierHeader: Uint8Array }>;
  }>('Metadata', signaturesMetadata, 'the signatures metadata');
  const obm = read<{ lastConfig?: { index: number | Long }; consenterMetadata: Uint8Array }>(
    'OrdererBlockMetadata',
    md.value,
    'the metadata value',
  );
  const vm = read<{
    viewId: number | Long;
    latestSequence: number | Long;
    decisionsInView: number | Long;
    blackList: Array<number | Long>;
  }>('ViewMetadata', obm.consenterMetadata, 'the consenter metadata');
  const hb = headerBytes(header);
  const signatures = md.signatures.map((s) => {
    if (s.identifierHeader.length === 0)
      throw new EvidenceError('a signature without an identifier header (not a BFT block signature)');
    const id = read<{ identifier: number }>('IdentifierHeader', s.identifierHeader, 'an identifier header');
    return {
      consenterId: id.identifier,
      signed: Uint8Array.from([...md.value, ...s.identifierHeader, ...hb]),
      signature: s.signature,
    };
  });
  return {
    signatures,
    view: {
      viewId: num(vm.viewId),
      latestSequence: num(vm.latestSequence),
      decisionsInView: num(vm.decisionsInView),
      blackList: vm.blackList.map(num),
    },
    lastConfig: num(obm.lastConfig?.index),
  };
}

// --- the rules ---

/** QUORUM RULE: signatures a block needs among n consenters. */
export function bftQuorum(n: number): number {
  const f = Math.floor((n - 1) / 3);
  return Math.ceil((n + f + 1) / 2);
}

/** LEADER RULE: the consenter that proposed a block decided in `view`. */
export function leaderOf(
  view: ViewMetadata,
  consenterIds: readonly number[],
  rotation: { enabled: boolean; decisionsPerLeader: number } = { enabled: false, decisionsPerLeader: 0 },
): number {
  const nodes = [...consenterIds].sort((a, b) => a - b);
  const n = nodes.length;
  if (n === 0) throw new EvidenceError('no consenters');
  if (!rotation.enabled || rotation.decisionsPerLeader <= 0) return nodes[view.viewId % n] as number;
  const black = new Set(view.blackList);
  const start = view.viewId + Math.floor(view.decisionsInView / rotation.decisionsPerLeader);
  for (let i = 0; i < n; i++) {
    const node = nodes[(start + i) % n] as number;
    if (!black.has(node)) return node;
  }
  throw new EvidenceError(`all ${n} consenters are blacklisted`);
}

// --- the block's data ---

export interface BlockContents {
  /** SHA-256 of the concatenated envelopes: must equal the header's data hash. */
  dataHash: Uint8Array;
  /** Every envelope's channel. */
  channels: string[];
  /** Transactions that are not configuration and not excluded by `isOverhead` (e.g. reward claims). */
  businessTransactions: number;
  transactions: number;
}

const HEADER_TYPE_ENDORSER_TRANSACTION = 3;

/**
 * Reads a block's data (the serialized common.BlockData): its hash, channels, and how many of its
 * transactions are business (an endorser transaction whose chaincode call `isOverhead` does not match).
 */
export function readBlockData(
  blockData: Uint8Array,
  isOverhead: (chaincode: string, fn: string) => boolean,
): BlockContents {
  const bd = read<{ data: Uint8Array[] }>('BlockData', blockData, 'the block data');
  const channels: string[] = [];
  let business = 0;
  for (const [i, raw] of bd.data.entries()) {
    const env = read<{ payload: Uint8Array }>('Envelope', raw, `envelope ${i}`);
    const payload = read<{ header?: { channelHeader: Uint8Array }; data: Uint8Array }>(
      'Payload',
      env.payload,
      `payload ${i}`,
    );
    const ch = read<{ type: number; channelId: string }>(
      'ChannelHeader',
      payload.header?.channelHeader ?? new Uint8Array(),
      `channel header ${i}`,
    );
    channels.push(ch.channelId);
    if (ch.type !== HEADER_TYPE_ENDORSER_TRANSACTION) continue;
    const tx = read<{ actions: Array<{ payload: Uint8Array }> }>(
      'Transaction',
      payload.data,
      `transaction ${i}`,
    );
    const action = tx.actions[0];
    if (!action) continue;
    const cap = read<{ chaincodeProposalPayload: Uint8Array }>(
      'ChaincodeActionPayload',
      action.payload,
      `action ${i}`,
    );
    const cpp = read<{ input: Uint8Array }>(
      'ChaincodeProposalPayload',
      cap.chaincodeProposalPayload,
      `proposal ${i}`,
    );
    const spec = read<{ chaincodeSpec?: { chaincodeId?: { name: string }; input?: { args: Uint8Array[] } } }>(
      'ChaincodeInvocationSpec',
      cpp.input,
      `invocation ${i}`,
    );
    const name = spec.chaincodeSpec?.chaincodeId?.name ?? '';
    const fn = new TextDecoder().decode(spec.chaincodeSpec?.input?.args[0] ?? new Uint8Array());
    if (!isOverhead(name, fn)) business++;
  }
  return {
    dataHash: sha256(...bd.data),
    channels,
    businessTransactions: business,
    transactions: bd.data.length,
  };
}
