/**
 * The OCPP bridge without a network: the EVPAY-SM2-SM3-v1 encoding both ways (what a charger puts in a
 * 1.6 SampledValue or a 2.0.1 signedMeterValue, what the gateway takes out and refuses), and the
 * transaction mapping kept in the data dir (it survives a restart; a reading sent twice is queued once).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PileDevice } from '../../chaincode/test/support/fixtures';
import { ChargerStore } from '../src/ocpp/chargers';
import {
  decodeSignedReading,
  ENCODING_METHOD,
  encodeSignedReading,
  meterValue16,
  meterValue201,
  SignedMeterError,
  signedReadings16,
  signedReadings201,
  verifySignedReading,
  type SignedReading,
} from '../src/ocpp/signedMeter';
import { OcppTransactionStore, transactionKey } from '../src/ocpp/transactions';

const T = 1_800_000_000;
const pile = new PileDevice('AlphaMSP.P1');
const other = new PileDevice('AlphaMSP.P2');
const reading = (kind: 'START' | 'PROGRESS' | 'STOP', wh: number, at = T): SignedReading =>
  pile.reading(kind, 's1', wh, at) as SignedReading;
const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof SignedMeterError) return e.ocppCode;
    throw e;
  }
  throw new Error('not refused');
};

describe('EVPAY-SM2-SM3-v1', () => {
  test('round trip: base64 of the chaincode reading, the signature verifies for this network only', () => {
    const r = reading('PROGRESS', 1234);
    const data = encodeSignedReading(r);
    expect(JSON.parse(Buffer.from(data, 'base64').toString('utf8'))).toEqual({
      kind: 'PROGRESS',
      sessionId: 's1',
      pileId: 'AlphaMSP.P1',
      meterWh: 1234,
      readAt: T,
      signature: r.signature,
    });
    const back = decodeSignedReading(data);
    expect(back).toEqual(r);
    expect(verifySignedReading(pile.network, pile.keys.publicKeyHex, back)).toBe(true);
    expect(verifySignedReading('another-network', pile.keys.publicKeyHex, back)).toBe(false);
    expect(verifySignedReading(pile.network, other.keys.publicKeyHex, back)).toBe(false);
    expect(verifySignedReading(pile.network, pile.keys.publicKeyHex, { ...back, meterWh: 1235 })).toBe(false);
  });

  test("refuses what the chaincode's reading schema refuses", () => {
    const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64');
    const r = reading('STOP', 10);
    expect(code(() => decodeSignedReading('not base64!'))).toBe('FormatViolation');
    expect(code(() => decodeSignedReading(Buffer.from('{').toString('base64')))).toBe('FormatViolation');
    expect(code(() => decodeSignedReading(enc({ ...r, kind: 'OTHER' })))).toBe('FormatViolation');
    expect(code(() => decodeSignedReading(enc({ ...r, meterWh: 1.5 })))).toBe('FormatViolation');
    expect(code(() => decodeSignedReading(enc({ ...r, extra: 1 })))).toBe('FormatViolation');
    expect(code(() => decodeSignedReading(enc({ ...r, pileId: 'no-dot' })))).toBe('FormatViolation');
  });

  test('1.6: SignedData beside the Raw register value; they must agree; unsigned energy is refused', () => {
    const r = reading('START', 500);
    const mv = meterValue16(r);
    expect(mv.sampledValue.map((s) => s.format)).toEqual(['Raw', 'SignedData']);
    expect(signedReadings16([mv])).toEqual([r]);
    const lying = meterValue16(r);
    (lying.sampledValue[0] as { value: string }).value = '501';
    expect(code(() => signedReadings16([lying]))).toBe('PropertyConstraintViolation');
    const unsigned = { timestamp: 'x', sampledValue: [{ value: '500', unit: 'Wh' }] };
    expect(code(() => signedReadings16([unsigned]))).toBe('PropertyConstraintViolation');
    // Other measurands need no signature; a kWh register is compared in Wh.
    const power = {
      timestamp: 'x',
      sampledValue: [{ value: '7.2', measurand: 'Power.Active.Import', unit: 'kW' }],
    };
    expect(signedReadings16([power])).toEqual([]);
    const kwh = meterValue16(r);
    Object.assign(kwh.sampledValue[0] as object, { value: '0.5', unit: 'kWh' });
    expect(signedReadings16([kwh])).toEqual([r]);
    // A PROGRESS reading in a Transaction.Begin sample is refused.
    const wrongKind = meterValue16(reading('PROGRESS', 500));
    for (const s of wrongKind.sampledValue) s.context = 'Transaction.Begin';
    expect(code(() => signedReadings16([wrongKind]))).toBe('PropertyConstraintViolation');
  });

  test('2.0.1: signedMeterValue with the encoding method and public key', () => {
    const r = reading('STOP', 900);
    const mv = meterValue201(r, pile.keys.publicKeyHex);
    expect(mv.sampledValue[0]?.signedMeterValue).toMatchObject({
      encodingMethod: ENCODING_METHOD,
      signingMethod: 'SM2-SM3',
      publicKey: pile.keys.publicKeyHex,
    });
    expect(signedReadings201([mv])).toEqual([r]);
    const other = meterValue201(r, pile.keys.publicKeyHex);
    Object.assign(other.sampledValue[0]?.signedMeterValue as object, { encodingMethod: 'OCMF' });
    expect(code(() => signedReadings201([other]))).toBe('PropertyConstraintViolation');
    const unsigned = { timestamp: 'x', sampledValue: [{ value: 900 }] };
    expect(code(() => signedReadings201([unsigned]))).toBe('PropertyConstraintViolation');
    const off = meterValue201(r, pile.keys.publicKeyHex);
    (off.sampledValue[0] as { value: number }).value = 899;
    expect(code(() => signedReadings201([off]))).toBe('PropertyConstraintViolation');
  });
});

describe('the OCPP transaction mapping and the chargers, in the data dir', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'evpay-ocpp-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const authorization = {
    walletId: 'a'.repeat(64),
    pileId: 'AlphaMSP.P1',
    capFen: 100,
    maxBeans: 0,
    nonce: 'n1',
    expiresAt: T + 600,
    signature: 'ab'.repeat(36),
  };

  test('a pending start becomes a transaction; ids, readings and the stop answer survive a restart', () => {
    const store = new OcppTransactionStore(dir);
    const id = store.nextId();
    store.addPending({
      sessionId: 's1',
      chargePointId: 'CP1',
      pileId: 'AlphaMSP.P1',
      remoteStartId: id,
      authorization,
      createdAt: T,
    });
    expect(store.pendingFor('CP1', 's1')).toBeDefined();
    expect(store.pendingFor('CP2', 's1')).toBeUndefined();
    expect(store.pendingFor('CP1', undefined, id)?.sessionId).toBe('s1');
    const pending = store.pendingFor('CP1', 's1');
    if (!pending) throw new Error('no pending start');
    store.open(pending, 'ocpp1.6', '7', 0);
    const key = transactionKey('CP1', 7);
    store.enqueue(key, [reading('START', 0), reading('PROGRESS', 10, T + 1)]);
    store.enqueue(key, [reading('PROGRESS', 10, T + 1)]); // sent again: queued once
    store.enqueue(
      key,
      [reading('STOP', 20, T + 2)],
      (t) => (t.stopAnswer = { idTagInfo: { status: 'Accepted' } }),
    );

    const again = new OcppTransactionStore(dir);
    expect(again.nextId()).toBe(id + 1);
    expect(again.pendingFor('CP1', 's1')).toBeUndefined();
    const t = again.get(key);
    expect(t).toMatchObject({
      pileId: 'AlphaMSP.P1',
      sessionId: 's1',
      meterStart: 0,
      stopAnswer: { idTagInfo: { status: 'Accepted' } },
    });
    expect(t?.ops.map((o) => [o.reading.kind, o.status])).toEqual([
      ['START', 'queued'],
      ['PROGRESS', 'queued'],
      ['STOP', 'queued'],
    ]);
    expect(again.unfinished()).toEqual([key]);
    expect(again.bySession('CP1', 's1')?.transactionId).toBe('7');
  });

  test('charger passwords are kept as scrypt hashes and checked', async () => {
    const store = new ChargerStore(dir);
    const { password } = await store.add({ chargePointId: 'CP1', pileId: 'AlphaMSP.P1' });
    expect(password.length).toBeGreaterThanOrEqual(16);
    expect(JSON.stringify(store.list())).not.toContain(password);
    expect(await store.authenticate('CP1', Buffer.from(password))).toMatchObject({
      charger: { pileId: 'AlphaMSP.P1' },
    });
    expect(await store.authenticate('CP1', Buffer.from('wrong-password-123456'))).toMatchObject({
      status: 401,
    });
    expect(await store.authenticate('CP1', undefined)).toMatchObject({ status: 401 });
    expect(store.remove('CP1')).toBe(true);
    expect(await store.authenticate('CP1', Buffer.from(password))).toMatchObject({ status: 401 });
  });
});
