/**
 * What a simulated charger says over OCPP, without I/O (the one state kept is a 2.0.1 transaction's seqNo,
 * in the SimTransaction passed in): the calls of OCPP 1.6J and 2.0.1 for booting, reporting a
 * connector's status and carrying a charging transaction, and how it reads the CSMS's remote start. Kept
 * free of sockets so a unit test can check every call against OCPP's own JSON schemas (ocpp-rpc's strict
 * validators) and against the gateway's reading of signed meter values (ocpp/signedMeter.ts, which also
 * builds the sampled values here: the EVPAY-SM2-SM3-v1 encoding is written in one place).
 *
 * One transaction per protocol:
 * - 1.6: StartTransaction (idTag = the session id the CSMS gave, meterStart) answers a transactionId;
 *   MeterValues then carries the signed START (Transaction.Begin) and each PROGRESS; StopTransaction
 *   carries the signed STOP in transactionData, meterStop equal to its meter.
 * - 2.0.1: TransactionEvent Started (idToken, remoteStartId, the signed START), Updated (PROGRESS), Ended
 *   (STOP); the charger chooses the transactionId and numbers the events from seqNo 0.
 */
import type { OcppProtocol } from '../ocpp/transactions';
import { meterValue16, meterValue201, type SignedReading } from '../ocpp/signedMeter';

/** The OCPP versions the simulator speaks, as the CLI names them (`--ocpp 1.6|2.0.1`). */
export const OCPP_VERSIONS = ['1.6', '2.0.1'] as const;
export type OcppVersion = (typeof OCPP_VERSIONS)[number];

/** The WebSocket sub-protocol of a version. */
export const subprotocolOf = (v: OcppVersion): OcppProtocol => (v === '1.6' ? 'ocpp1.6' : 'ocpp2.0.1');

/** One OCPP call: the action and its payload. */
export interface OcppCall {
  method: string;
  params: Record<string, unknown>;
}

export interface ChargerModel {
  vendor: string;
  model: string;
  firmwareVersion?: string;
}

export const SIM_MODEL: ChargerModel = { vendor: 'EvPay', model: 'EvPaySim', firmwareVersion: '1.0' };

/** A connector's state as the simulator reports it (2.0.1 folds the busy ones into Occupied). */
export type ConnectorState = 'Available' | 'Preparing' | 'Charging' | 'Finishing';

const iso = (ms: number): string => new Date(ms).toISOString();

export function bootNotification(v: OcppVersion, m: ChargerModel = SIM_MODEL): OcppCall {
  const firmware = m.firmwareVersion === undefined ? {} : { firmwareVersion: m.firmwareVersion };
  return v === '1.6'
    ? {
        method: 'BootNotification',
        params: { chargePointVendor: m.vendor, chargePointModel: m.model, ...firmware },
      }
    : {
        method: 'BootNotification',
        params: { chargingStation: { vendorName: m.vendor, model: m.model, ...firmware }, reason: 'PowerUp' },
      };
}

export function statusNotification(
  v: OcppVersion,
  state: ConnectorState,
  atMs: number,
  connectorId = 1,
): OcppCall {
  return v === '1.6'
    ? {
        method: 'StatusNotification',
        params: { connectorId, errorCode: 'NoError', status: state, timestamp: iso(atMs) },
      }
    : {
        method: 'StatusNotification',
        params: {
          timestamp: iso(atMs),
          connectorStatus: state === 'Available' ? 'Available' : 'Occupied',
          evseId: connectorId,
          connectorId: 1,
        },
      };
}

/** A start the CSMS asked for: the id the charger must name (the session id it signs with). */
export interface RemoteStart {
  sessionId: string;
  /** 2.0.1: named again in TransactionEvent(Started). */
  remoteStartId?: number;
  connectorId: number;
}

/** The CSMS's remote start call of a version. */
export const remoteStartMethod = (v: OcppVersion): string =>
  v === '1.6' ? 'RemoteStartTransaction' : 'RequestStartTransaction';

/** Reads a RemoteStartTransaction (1.6) or RequestStartTransaction (2.0.1), already schema-checked. */
export function remoteStartOf(v: OcppVersion, params: Record<string, unknown>): RemoteStart {
  if (v === '1.6') {
    const p = params as { idTag: string; connectorId?: number };
    return { sessionId: p.idTag, connectorId: p.connectorId ?? 1 };
  }
  const p = params as { idToken: { idToken: string }; remoteStartId: number; evseId?: number };
  return { sessionId: p.idToken.idToken, remoteStartId: p.remoteStartId, connectorId: p.evseId ?? 1 };
}

/** One transaction as the charger tracks it. */
export interface SimTransaction {
  version: OcppVersion;
  start: RemoteStart;
  /** 1.6: given by StartTransaction's answer; 2.0.1: chosen by the charger. */
  transactionId?: string | number;
  /** 2.0.1: the next event's seqNo. */
  seqNo: number;
}

/** 2.0.1: a transaction id the charger chooses (at most 36 characters). */
export const transactionIdFor = (chargePointId: string, n: number): string =>
  `${chargePointId.slice(0, 24)}-${n}`.slice(0, 36);

/**
 * The call that opens the transaction. 1.6: StartTransaction (its START reading follows in MeterValues once
 * the transactionId is known, `readingCall`); 2.0.1: TransactionEvent(Started) carrying the START.
 */
export function openCall(
  tx: SimTransaction,
  start: SignedReading,
  publicKeyHex: string,
  atMs: number,
): OcppCall {
  if (tx.version === '1.6')
    return {
      method: 'StartTransaction',
      params: {
        connectorId: tx.start.connectorId,
        idTag: tx.start.sessionId,
        meterStart: start.meterWh,
        timestamp: iso(atMs),
      },
    };
  return transactionEvent(tx, 'Started', start, publicKeyHex, atMs);
}

/** Whether the CSMS accepted the opening call, and the 1.6 transactionId it gave. */
export function opened(tx: SimTransaction, answer: unknown): { accepted: boolean; transactionId?: number } {
  if (tx.version === '1.6') {
    const a = answer as { transactionId?: number; idTagInfo?: { status?: string } };
    return { accepted: a.idTagInfo?.status === 'Accepted', transactionId: a.transactionId };
  }
  const a = answer as { idTokenInfo?: { status?: string } };
  return { accepted: a.idTokenInfo?.status === 'Accepted' };
}

/**
 * The call carrying a START (1.6 only: 2.0.1 carried it in Started) or a PROGRESS reading of the open
 * transaction; undefined when there is none to send.
 */
export function readingCall(
  tx: SimTransaction,
  r: SignedReading,
  publicKeyHex: string,
  atMs: number,
): OcppCall | undefined {
  if (r.kind === 'STOP') throw new RangeError('the STOP reading goes in closeCall');
  if (tx.version === '1.6')
    return {
      method: 'MeterValues',
      params: {
        connectorId: tx.start.connectorId,
        transactionId: tx.transactionId,
        meterValue: [meterValue16(r)],
      },
    };
  return r.kind === 'START' ? undefined : transactionEvent(tx, 'Updated', r, publicKeyHex, atMs);
}

/** The call that ends the transaction with its signed STOP. */
export function closeCall(
  tx: SimTransaction,
  stop: SignedReading,
  publicKeyHex: string,
  atMs: number,
): OcppCall {
  if (stop.kind !== 'STOP') throw new RangeError('closeCall takes the STOP reading');
  if (tx.version === '1.6')
    return {
      method: 'StopTransaction',
      params: {
        transactionId: tx.transactionId,
        idTag: tx.start.sessionId,
        meterStop: stop.meterWh,
        timestamp: iso(atMs),
        reason: 'EVDisconnected',
        transactionData: [meterValue16(stop)],
      },
    };
  return transactionEvent(tx, 'Ended', stop, publicKeyHex, atMs);
}

const TRIGGER = { Started: 'RemoteStart', Updated: 'MeterValuePeriodic', Ended: 'EVDeparted' } as const;

function transactionEvent(
  tx: SimTransaction,
  eventType: 'Started' | 'Updated' | 'Ended',
  r: SignedReading,
  publicKeyHex: string,
  atMs: number,
): OcppCall {
  if (tx.transactionId === undefined) throw new RangeError('a 2.0.1 transaction needs its id first');
  const info: Record<string, unknown> = { transactionId: String(tx.transactionId) };
  if (eventType === 'Started' && tx.start.remoteStartId !== undefined)
    info.remoteStartId = tx.start.remoteStartId;
  info.chargingState = eventType === 'Ended' ? 'EVConnected' : 'Charging';
  if (eventType === 'Ended') info.stoppedReason = 'EVDisconnected';
  return {
    method: 'TransactionEvent',
    params: {
      eventType,
      timestamp: iso(atMs),
      triggerReason: TRIGGER[eventType],
      seqNo: tx.seqNo++,
      transactionInfo: info,
      evse: { id: tx.start.connectorId, connectorId: 1 },
      ...(eventType === 'Started' ? { idToken: { idToken: tx.start.sessionId, type: 'Central' } } : {}),
      meterValue: [meterValue201(r, publicKeyHex)],
    },
  };
}
