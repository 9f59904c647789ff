// Public API of the SM crypto wrapper; import from here, not from sm-crypto-v2 directly.
export {
  SM2_DEFAULT_USER_ID,
  type Bytes,
  type Sm2KeyPair,
  SmCryptoError,
  isValidSm2PublicKey,
  sm2GenerateKeyPair,
  sm2PublicKeyFromPrivate,
  sm2Sign,
  sm2Signer,
  sm2SignatureIsCanonical,
  sm2SignatureRawToDer,
  sm2Verify,
  sm2KeyTableCount,
  SM2_KEY_TABLE_CAPACITY,
  sm3Hex,
  sm4DecryptCbc,
  sm4EncryptCbc,
} from './sm';
// Strict DER of (r, s), shared with the gateway's Fabric signer (one encoder).
export { encodeDerIntegerPair } from './der';
