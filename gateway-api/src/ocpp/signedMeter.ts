/**
 * The one encoding of a charger's signed meter value in OCPP, `EVPAY-SM2-SM3-v1`, both ways: how a
 * charger puts its SM2-signed reading into an OCPP message, and how the gateway takes it out and checks
 * it before anything reaches the ledger. Written once here so the CSMS, the tests and any charger
 * simulator agree byte for byte.
 *
 *   signedMeterData = base64( JSON {kind, sessionId, pileId, meterWh, readAt, signature} )
 *
 * The JSON object is exactly the chaincode's reading (StartSession's startReading, RecordReading's
 * reading, StopSession's stopReading) and `signature` is the pile's SM2 signature (SM3 digest, default
 * user id, DER, hex) over the chaincode's readingText: the gateway forwards the reading unchanged and the
 * chaincode verifies the signature as it does for REST. `sessionId` is the id the gateway gave the
 * charger when it started the charge (1.6 idTag, 2.0.1 idToken), so the charger can sign before it learns
 * any transaction id; for a charge the charger started itself for an RFID card (a standing authorization,
 * no remote start) it is localSessionId's.
 *
 * Where it travels:
 * - OCPP 1.6: a SampledValue `{value: signedMeterData, format: "SignedData", measurand:
 *   "Energy.Active.Import.Register", unit: "Wh", context}` in MeterValues (START with context
 *   Transaction.Begin, PROGRESS) or in StopTransaction's transactionData (STOP, Transaction.End), next to
 *   the plain register value (format Raw) when the charger sends one.
 * - OCPP 2.0.1: a SampledValue `{value: meterWh, measurand: "Energy.Active.Import.Register",
 *   unitOfMeasure: {unit: "Wh"}, context, signedMeterValue: {signedMeterData, signingMethod: "SM2-SM3",
 *   encodingMethod: "EVPAY-SM2-SM3-v1", publicKey: <the pile's SM2 public key, hex>}}` in
 *   TransactionEvent's meterValue.
 *
 * A sampled value that carries a signed reading must agree with it (the register value in Wh, the
 * context's kind); unsigned energy values are refused: the chaincode has no operator-attested mode.
 */
import { z } from 'zod';
import {
  evpayTransactions,
  readingText,
  sm2Verify,
  type MeterReading,
  type ReadingKind,
} from '@evpay/chaincode/client';

export const ENCODING_METHOD = 'EVPAY-SM2-SM3-v1';
export const SIGNING_METHOD = 'SM2-SM3';
export const ENERGY_REGISTER = 'Energy.Active.Import.Register';

export type SignedReading = MeterReading & { signature: string };

/** The chaincode's own reading schemas, per kind (one rule: what the chaincode would refuse, we refuse). */
const READING_SCHEMAS: Record<ReadingKind, z.ZodTypeAny> = {
  START: (evpayTransactions.StartSession.args[0].schema as z.AnyZodObject).shape.startReading as z.ZodTypeAny,
  PROGRESS: (evpayTransactions.RecordReading.args[0].schema as z.AnyZodObject).shape.reading as z.ZodTypeAny,
  STOP: (evpayTransactions.StopSession.args[0].schema as z.AnyZodObject).shape.stopReading as z.ZodTypeAny,
};

/**
 * LOCAL SESSION ID RULE (written once): a charger that starts a charge itself for an RFID card signs its
 * readings with sessionId = "L" + the OCPP transactionId (1.6: the integer the CSMS answered
 * StartTransaction with; 2.0.1: the charger's own transactionId), which both sides know before the START
 * reading is signed. The card's id never names a session: a card is used again and again.
 */
export const localSessionId = (transactionId: string | number): string => `L${String(transactionId)}`;

/** Why a signed meter value was refused; `ocppCode` is the CALLERROR code the charger gets. */
export class SignedMeterError extends Error {
  constructor(
    readonly ocppCode: 'FormatViolation' | 'PropertyConstraintViolation' | 'SecurityError',
    message: string,
  ) {
    super(message);
    this.name = 'SignedMeterError';
  }
}

/** The signedMeterData of a signed reading (fields in the chaincode's order). */
export function encodeSignedReading(r: SignedReading): string {
  const { kind, sessionId, pileId, meterWh, readAt, signature } = r;
  return Buffer.from(
    JSON.stringify({ kind, sessionId, pileId, meterWh, readAt, signature }),
    'utf8',
  ).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The signed reading in a signedMeterData, checked with the chaincode's schema of its kind. */
export function decodeSignedReading(data: string): SignedReading {
  if (data.length === 0 || data.length > 2500 || !BASE64.test(data))
    throw new SignedMeterError('FormatViolation', 'signed meter data is not base64');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
  } catch {
    throw new SignedMeterError('FormatViolation', `signed meter data is not ${ENCODING_METHOD} JSON`);
  }
  const kind = (json as { kind?: unknown } | null)?.kind;
  const schema = typeof kind === 'string' ? READING_SCHEMAS[kind as ReadingKind] : undefined;
  if (!schema) throw new SignedMeterError('FormatViolation', 'signed meter data has no reading kind');
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new SignedMeterError('FormatViolation', `signed reading: ${i?.path.join('.')}: ${i?.message}`);
  }
  return r.data as SignedReading;
}

/** Whether the pile's SM2 key signed this reading for this network (the chaincode checks it again). */
export function verifySignedReading(network: string, publicKeyHex: string, r: SignedReading): boolean {
  const { kind, sessionId, pileId, meterWh, readAt } = r;
  return sm2Verify(
    publicKeyHex,
    readingText(network, { kind, sessionId, pileId, meterWh, readAt }),
    r.signature,
  );
}

// --- the OCPP shapes (after ocpp-rpc's strict schema validation) ---

export interface SampledValue16 {
  value: string;
  context?: string;
  format?: 'Raw' | 'SignedData';
  measurand?: string;
  unit?: string;
}
export interface MeterValue16 {
  timestamp: string;
  sampledValue: SampledValue16[];
}
export interface SignedMeterValue201 {
  signedMeterData: string;
  signingMethod: string;
  encodingMethod: string;
  publicKey: string;
}
export interface SampledValue201 {
  value: number;
  context?: string;
  measurand?: string;
  unitOfMeasure?: { unit?: string; multiplier?: number };
  signedMeterValue?: SignedMeterValue201;
}
export interface MeterValue201 {
  timestamp: string;
  sampledValue: SampledValue201[];
}

const CONTEXT_OF: Record<ReadingKind, string> = {
  START: 'Transaction.Begin',
  PROGRESS: 'Sample.Periodic',
  STOP: 'Transaction.End',
};

/** The 1.6 sampled values of one reading: the plain register value and the signed data. */
export function meterValue16(r: SignedReading): MeterValue16 {
  const context = CONTEXT_OF[r.kind];
  const common = { context, measurand: ENERGY_REGISTER, unit: 'Wh' };
  return {
    timestamp: new Date(r.readAt * 1000).toISOString(),
    sampledValue: [
      { ...common, value: String(r.meterWh), format: 'Raw' },
      { ...common, value: encodeSignedReading(r), format: 'SignedData' },
    ],
  };
}

/** The 2.0.1 meter value of one reading, its signed meter value beside the register value. */
export function meterValue201(r: SignedReading, publicKeyHex: string): MeterValue201 {
  return {
    timestamp: new Date(r.readAt * 1000).toISOString(),
    sampledValue: [
      {
        value: r.meterWh,
        context: CONTEXT_OF[r.kind],
        measurand: ENERGY_REGISTER,
        unitOfMeasure: { unit: 'Wh' },
        signedMeterValue: {
          signedMeterData: encodeSignedReading(r),
          signingMethod: SIGNING_METHOD,
          encodingMethod: ENCODING_METHOD,
          publicKey: publicKeyHex,
        },
      },
    ],
  };
}

const isEnergy = (measurand: string | undefined): boolean =>
  measurand === undefined || measurand === ENERGY_REGISTER;

/** The register value in Wh of a plain energy sample, or undefined when it is in other units. */
function registerWh(value: string | number, unit: string | undefined, multiplier = 0): number | undefined {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n)) return undefined;
  const scale = unit === undefined || unit === 'Wh' ? 1 : unit === 'kWh' ? 1000 : undefined;
  return scale === undefined ? undefined : Math.round(n * scale * 10 ** multiplier);
}

/** One signed reading's checks against the sample that carries it (kind by context, register value). */
function agree(r: SignedReading, context: string | undefined, plainWh: number | undefined): SignedReading {
  if (context === 'Transaction.Begin' && r.kind !== 'START')
    throw new SignedMeterError(
      'PropertyConstraintViolation',
      `a ${r.kind} reading in a Transaction.Begin sample`,
    );
  if (context === 'Transaction.End' && r.kind !== 'STOP')
    throw new SignedMeterError(
      'PropertyConstraintViolation',
      `a ${r.kind} reading in a Transaction.End sample`,
    );
  if (plainWh !== undefined && plainWh !== r.meterWh)
    throw new SignedMeterError(
      'PropertyConstraintViolation',
      `the signed reading says ${r.meterWh} Wh, the sample ${plainWh} Wh`,
    );
  return r;
}

/**
 * The signed readings in 1.6 meter values. Energy samples must be signed: a meter value with a plain
 * energy register and no SignedData is refused; other measurands (power, SoC ...) are ignored.
 */
export function signedReadings16(values: readonly MeterValue16[]): SignedReading[] {
  const out: SignedReading[] = [];
  for (const mv of values) {
    const energy = mv.sampledValue.filter((s) => isEnergy(s.measurand));
    const signed = energy.filter((s) => s.format === 'SignedData');
    const plain = energy.find((s) => s.format !== 'SignedData');
    if (plain && signed.length === 0)
      throw new SignedMeterError(
        'PropertyConstraintViolation',
        'unsigned energy values are refused: send the reading as SignedData (EVPAY-SM2-SM3-v1)',
      );
    for (const s of signed) {
      const r = decodeSignedReading(s.value);
      const plainWh = plain ? registerWh(plain.value, plain.unit) : undefined;
      out.push(agree(r, s.context ?? plain?.context, plainWh));
    }
  }
  return out;
}

/** The signed readings in 2.0.1 meter values (every energy sample must carry a signedMeterValue). */
export function signedReadings201(values: readonly MeterValue201[]): SignedReading[] {
  const out: SignedReading[] = [];
  for (const mv of values)
    for (const s of mv.sampledValue) {
      if (!isEnergy(s.measurand)) continue;
      const smv = s.signedMeterValue;
      if (!smv)
        throw new SignedMeterError(
          'PropertyConstraintViolation',
          'unsigned energy values are refused: add a signedMeterValue (EVPAY-SM2-SM3-v1)',
        );
      if (smv.encodingMethod !== ENCODING_METHOD)
        throw new SignedMeterError(
          'PropertyConstraintViolation',
          `encodingMethod must be ${ENCODING_METHOD}`,
        );
      const r = decodeSignedReading(smv.signedMeterData);
      out.push(agree(r, s.context, registerWh(s.value, s.unitOfMeasure?.unit, s.unitOfMeasure?.multiplier)));
    }
  return out;
}
