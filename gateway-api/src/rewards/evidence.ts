/**
 * A block's reward evidence as the keeper sends it: the header fields and the SIGNATURES metadata
 * exactly as the orderers wrote them (the claim's argument), and the block's data (its transient data:
 * the endorsers check it, the ledger does not store it twice).
 */
import type { common } from '@hyperledger/fabric-protos';

export interface BlockEvidence {
  number: number;
  previousHash: string;
  dataHash: string;
  signatures: string;
}

export interface EvidenceWithData {
  evidence: BlockEvidence;
  /** The serialized common.BlockData. */
  data: Uint8Array;
}

const SIGNATURES = 0; // common.BlockMetadataIndex.SIGNATURES

const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');

export function evidenceOf(block: common.Block): EvidenceWithData {
  const header = block.getHeader();
  const metadata = block.getMetadata()?.getMetadataList_asU8()[SIGNATURES];
  const data = block.getData();
  if (!header || !metadata || !data) throw new Error('a block without header, signatures or data');
  return {
    evidence: {
      number: header.getNumber(),
      previousHash: b64(header.getPreviousHash_asU8()),
      dataHash: b64(header.getDataHash_asU8()),
      signatures: b64(metadata),
    },
    data: data.serializeBinary(),
  };
}
