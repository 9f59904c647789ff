/**
 * What clients (the evpay CLI, pile backends, driver apps, the gateway) share with the chaincode: the
 * exact signed-message texts and the SM crypto wrapper. Importing this pulls in no Fabric code.
 */
export {
  authorizationText,
  beanPurchaseText,
  beanTransferText,
  envelopeClaimText,
  idTagDigest,
  readingText,
  refundText,
  revocationText,
  standingIdOf,
  standingRevocationText,
  standingText,
  walletIdOf,
  type Authorization,
  type BeanPurchase,
  type BeanTransfer,
  type EnvelopeClaim,
  type MeterReading,
  type ReadingKind,
  type Refund,
  type Revocation,
  type StandingAuthorization,
  type StandingRevocation,
} from './domain/messages';
/** The longest a standing authorization of an RFID card may run (standing.ts). */
export { MAX_STANDING_TTL_SEC } from './domain/standing';
export {
  encodeDerIntegerPair,
  isValidSm2PublicKey,
  sm2GenerateKeyPair,
  sm2PublicKeyFromPrivate,
  sm2Sign,
  sm2Signer,
  sm2Verify,
  sm3Hex,
  sm4DecryptCbc,
  sm4EncryptCbc,
  type Sm2KeyPair,
} from './crypto';
/** The chaincode's own id schemas, so a client refuses what the chaincode would refuse, before signing. */
export { idSchema, mspIdSchema, publicKeySchema } from './domain/validate';
export { pileIdSchema } from './domain/piles';
export { nonceSchema, walletIdSchema } from './domain/wallets';
/** The digest each founding operator pins on its peers before InitConsortium (EVPAY_GENESIS_SM3). */
export { genesisDigest } from './domain/consortium';
/**
 * Every transaction's argument schemas (the chaincode's own zod schemas) and answer types, for a
 * gateway that validates requests exactly as the chaincode does and generates its OpenAPI from them.
 */
export {
  argJsonSchema,
  checkWireArg,
  evpayTransactions,
  toWireArgs,
  transactionJsonSchemas,
  type ArgCheck,
  type ArgEncoding,
  type ArgSpec,
  type EvPayResults,
  type EvPayTransactionName,
  type TransactionInput,
  type TransactionSpec,
} from './domain/api';
/**
 * Every transaction's answer as a zod schema (strict objects, integer fen), the same shapes as
 * EvPayResults, and as JSON Schemas for OpenAPI response bodies.
 */
export { answerJsonSchemas, evpayAnswers, type EvPayAnswerSchemas } from './domain/answers';
/** Every chaincode error code and its category (how the gateway maps them to HTTP statuses). */
export { ERROR_CODES, type ErrorCategory, type ErrorCode } from './domain/errors';
/** The audit chain's offline check (SM3 digests and links), for auditors and the gateway. */
export { verifyAuditChain, type AuditHead, type AuditRecord, type ChainVerdict } from './domain/audit';
/** Session calls a gateway may send together in one SessionBatch transaction (BATCH RULE). */
export { BATCHABLE, MAX_BATCH_CALLS, type BatchableTransaction } from './domain/batch';
/** How an `integer` argument's wire string is read (decimal digits become a number). */
export { toInteger } from './domain/api';
/** Block evidence as the chaincode reads it, for the gateway's reward keeper and the auditors' tools. */
export { readBlockData, headerBytes, type BlockContents, type BlockHeader } from './domain/blockEvidence';
export {
  blockDataKey,
  GENESIS_WITNESS,
  isRewardOverhead,
  MAX_CLAIM_BLOCKS,
  witnessStep,
  type WitnessEntry,
  type WitnessHead,
} from './domain/rewards';
