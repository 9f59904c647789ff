/**
 * RFID cards on the running network (issue 13 item 2): a driver signs a standing authorization of a card
 * for operator A's piles (EVPAY/STANDING/1), A's driver app registers it over REST, and an ocpp-rpc 1.6J
 * charger of A's pile that only knows its local card list charges with it: Authorize, StartTransaction
 * with the card's idTag (no remote start), the signed START in MeterValues under the local session id
 * ("L" + transactionId), StopTransaction with the signed STOP. The session settles on the ledger against
 * the driver's wallet at the tariff's price; the per-session cap bounds a long charge and the total cap
 * then ends the card; an unknown card and a revoked card are refused. A 2.0.1 charger does the same with
 * TransactionEvent (Started with the card's idToken, Ended). Every check reads the ledger back.
 */
import { RPCClient } from 'ocpp-rpc';
import type { RPC_ClientOptions } from 'ocpp-rpc/lib/client';
import type { Session } from '../../chaincode/src/domain/sessions';
import type { Standing } from '../../chaincode/src/domain/standing';
import type { Wallet } from '../../chaincode/src/domain/wallets';
import { idTagDigest } from '../../chaincode/src/domain/messages';
import { Driver, PileDevice } from '../../chaincode/test/support/fixtures';
import { committedOnEveryPeer } from '../../network/tools/client';
import { ChargerStore } from '../../gateway-api/src/ocpp/chargers';
import {
  localSessionId,
  meterValue16,
  meterValue201,
  type SignedReading,
} from '../../gateway-api/src/ocpp/signedMeter';
import { marginsPaid } from './support/margins';
import { net, waitFor } from './support/fabric';
import {
  client,
  credential,
  gatewayDataDir,
  gatewaysReady,
  orgByMsp,
  type Client,
  type Reply,
} from './support/gateway';

jest.setTimeout(300_000);

const [A] = net.orgs.filter((o) => o.role === 'operator').map((o) => o.mspId) as [string];
const RUN = Date.now().toString(36).toUpperCase();
const nowSec = (): number => Math.floor(Date.now() / 1000);
const PASSWORD = 'a-charger-password-0123';
const DAY = 24 * 3600;

type Committed<T> = { txId: string; blockNumber: number; result: T };

async function ok<T>(r: Promise<Reply>): Promise<Committed<T>> {
  const reply = await r;
  if (reply.status !== 200) throw new Error(`expected 200, got ${reply.status}: ${reply.text}`);
  const body = reply.body as Committed<T>;
  await committedOnEveryPeer(net, BigInt(body.blockNumber));
  return body;
}

let admin: Client, piles: Client, app: Client;
let network = '';
const driver = new Driver();
const pile = new PileDevice(`${A}.CARD${RUN}`);
const cpId = `cpcard-${RUN}`;
const CARD = `C${RUN}`;
const REVOKED_CARD = `R${RUN}`;
const cp = new RPCClient({
  endpoint: `${orgByMsp(A).gateway.url.replace(/^http/, 'ws')}/ocpp`,
  identity: cpId,
  protocols: ['ocpp1.6'],
  reconnect: false,
  strictMode: true,
  password: PASSWORD,
} as Partial<RPC_ClientOptions> as RPC_ClientOptions);
let standingId = '';
/** The pile's meter and the time of its last signed reading. */
let meterWh = 0;
let lastReadAt = 0;

const balance = async (): Promise<Wallet> =>
  (await app.get<{ wallet: Wallet }>(`/v1/wallets/${driver.walletId}`)).body.wallet;
const standing = async (id = standingId): Promise<Standing> =>
  (await app.get<Standing>(`/v1/standing-authorizations/${id}`)).body;
const authorize = async (idTag: string): Promise<{ status: string; expiryDate?: string }> =>
  ((await cp.call('Authorize', { idTag })) as { idTagInfo: { status: string; expiryDate?: string } })
    .idTagInfo;
const startTransaction = async (
  idTag: string,
): Promise<{ transactionId: number; idTagInfo: { status: string } }> =>
  (await cp.call('StartTransaction', {
    connectorId: 1,
    idTag,
    meterStart: meterWh,
    timestamp: new Date().toISOString(),
  })) as { transactionId: number; idTagInfo: { status: string } };

/** A reading time after the pile's last one (the chaincode wants them in order). */
async function nextSecond(): Promise<number> {
  const after = lastReadAt;
  await waitFor('the next second', async () => nowSec() > after);
  lastReadAt = nowSec();
  return lastReadAt;
}

/** One charge of `energyWh` on the card, without a remote start; answers the settled session. */
async function chargeOnCard(energyWh: number): Promise<Session> {
  const tx = await startTransaction(CARD);
  expect(tx.idTagInfo.status).toBe('Accepted');
  expect(tx.transactionId).toBeGreaterThan(0);
  const sessionId = localSessionId(tx.transactionId);
  const start = pile.reading('START', sessionId, meterWh, await nextSecond()) as SignedReading;
  expect(
    await cp.call('MeterValues', {
      connectorId: 1,
      transactionId: tx.transactionId,
      meterValue: [meterValue16(start)],
    }),
  ).toEqual({});
  const open = await waitFor(`session ${sessionId} open on the ledger`, async () => {
    const s = await piles.get<Session>(`/v1/piles/${pile.pileId}/sessions/${sessionId}`);
    return s.status === 200 ? s.body : undefined;
  });
  expect(open).toMatchObject({ walletId: driver.walletId, standingId, status: 'open' });
  // One session per card at a time: the charger hears so at once.
  expect((await authorize(CARD)).status).toBe('ConcurrentTx');
  const stopMeter = meterWh + energyWh;
  const stop = pile.reading('STOP', sessionId, stopMeter, await nextSecond()) as SignedReading;
  expect(
    await cp.call('StopTransaction', {
      transactionId: tx.transactionId,
      meterStop: stopMeter,
      timestamp: new Date().toISOString(),
      transactionData: [meterValue16(stop)],
    }),
  ).toEqual({ idTagInfo: { status: 'Accepted' } });
  meterWh = stopMeter;
  return waitFor(`session ${sessionId} settled`, async () => {
    const s = await piles.get<Session>(`/v1/piles/${pile.pileId}/sessions/${sessionId}`);
    return s.status === 200 && s.body.status === 'settled' ? s.body : undefined;
  });
}

beforeAll(async () => {
  await gatewaysReady();
  await marginsPaid();
  admin = client(A, await credential(A, 'operator-admin', 'card ops'));
  piles = client(A, await credential(A, 'pile-backend', 'card piles'));
  app = client(A, await credential(A, 'driver-app', 'card app'));
  network = (await app.get<{ consortium: { networkId: string } }>('/v1/consortium')).body.consortium
    .networkId;
  driver.network = network;
  pile.network = network;
  await ok(admin.post('/v1/piles', { localId: pile.localId, publicKey: pile.keys.publicKeyHex }));
  await ok(app.post('/v1/wallets', { publicKey: driver.keys.publicKeyHex }));
  await ok(
    admin.post('/v1/top-ups', { walletId: driver.walletId, amountFen: 20_000, reference: `card-${RUN}` }),
  );
  await new ChargerStore(gatewayDataDir(orgByMsp(A))).add({
    chargePointId: cpId,
    pileId: pile.pileId,
    password: PASSWORD,
  });
  await cp.connect();
  await cp.call('BootNotification', { chargePointVendor: 'EvPay', chargePointModel: 'CardReader' });
});

afterAll(async () => {
  await cp.close({ force: true }).catch(() => undefined);
});

describe('an RFID card with a standing authorization at a 1.6J charger', () => {
  test("the driver's signed standing authorization is registered by the card's issuer and readable by id and card digest", async () => {
    // 2000 fen a session, 3500 fen and 5 sessions in all, for 30 days, at A's piles.
    const signed = driver.standing(A, CARD, 2_000, 3_500, 5, nowSec() + 30 * DAY, `card-${RUN}`);
    expect(signed.idTagSm3).toBe(idTagDigest(network, CARD));
    const registered = await ok<Standing>(app.post('/v1/standing-authorizations', signed));
    standingId = registered.result.standingId;
    expect(standingId).toBe(driver.standingId(`card-${RUN}`));
    expect(registered.result).toMatchObject({ operator: A, status: 'active', sessions: 0, spentFen: 0 });
    // The raw card id is not on the ledger, only its digest.
    expect(JSON.stringify(registered.result)).not.toContain(CARD);
    expect(await standing()).toEqual(registered.result);
    const byTag = await piles.get<Standing>(
      `/v1/operators/${A}/cards/${signed.idTagSm3}/standing-authorization`,
    );
    expect(byTag.body).toEqual(registered.result);
    // The same signed registration again: refused (the card has a live one, and its nonce is spent).
    expect((await app.post('/v1/standing-authorizations', signed)).status).toBe(409);
  });

  test('an unknown card is refused at Authorize and at StartTransaction; nothing reaches the ledger', async () => {
    expect((await authorize(`NOBODY${RUN}`)).status).toBe('Invalid');
    expect(await startTransaction(`NOBODY${RUN}`)).toEqual({
      transactionId: 0,
      idTagInfo: { status: 'Invalid' },
    });
    expect(
      (await piles.get<{ activeSession?: string }>(`/v1/piles/${pile.pileId}`)).body.activeSession,
    ).toBeUndefined();
  });

  test('Authorize accepts the card; the charger starts and stops by itself and the session settles against the wallet', async () => {
    const info = await authorize(CARD);
    expect(info.status).toBe('Accepted');
    expect(info.expiryDate).toBe(new Date((await standing()).expiresAt * 1000).toISOString());
    const before = await balance();
    // 10 kWh at the test tariff's one price (150 fen/kWh): 1500 fen, under the 2000-fen session cap.
    const s = await chargeOnCard(10_000);
    expect(s).toMatchObject({ standingId, capFen: 2_000, walletId: driver.walletId });
    expect(s.settlement).toMatchObject({ energyWh: 10_000, chargedFen: 1_500, uncollectedFen: 0 });
    const after = await balance();
    expect(after.balanceFen).toBe(before.balanceFen - 1_500);
    expect(after.heldFen).toBe(0);
    const st = await standing();
    expect(st).toMatchObject({ sessions: 1, spentFen: 1_500, status: 'active' });
    expect(st.open).toBeUndefined();
  });

  test('the per-session cap bounds a long charge, and the spent total cap then ends the card', async () => {
    const before = await balance();
    // 20 kWh would cost 3000 fen; what is left of the total (2000) and the session cap (2000) bound it.
    const s = await chargeOnCard(20_000);
    expect(s.capFen).toBe(2_000);
    expect(s.settlement).toMatchObject({ energyWh: 20_000, chargedFen: 2_000, uncollectedFen: 1_000 });
    expect((await balance()).balanceFen).toBe(before.balanceFen - 2_000);
    expect(await standing()).toMatchObject({ sessions: 2, spentFen: 3_500 });
    // Nothing left: refused at the charger, before the ledger.
    expect((await authorize(CARD)).status).toBe('Blocked');
    expect(await startTransaction(CARD)).toMatchObject({
      transactionId: 0,
      idTagInfo: { status: 'Blocked' },
    });
    expect(
      (await piles.get<{ activeSession?: string }>(`/v1/piles/${pile.pileId}`)).body.activeSession,
    ).toBeUndefined();
  });

  test('a card the driver revoked is refused (Blocked); the ledger holds the revocation', async () => {
    const signed = driver.standing(A, REVOKED_CARD, 1_000, 5_000, 5, nowSec() + DAY, `revoked-${RUN}`);
    const id = (await ok<Standing>(app.post('/v1/standing-authorizations', signed))).result.standingId;
    expect((await authorize(REVOKED_CARD)).status).toBe('Accepted');
    // A forged revocation is refused; the driver's own is taken.
    const thief = new Driver();
    thief.network = network;
    const forged = await app.post('/v1/standing-revocations', {
      ...thief.revokeStanding(id),
      walletId: driver.walletId,
    });
    expect([forged.status, (forged.body as { code?: string }).code]).toEqual([401, 'BAD_SIGNATURE']);
    // Unsigned, a revocation is the issuer's own act: not a driver app's.
    const unsigned = await app.post('/v1/standing-revocations', { standingId: id });
    expect([unsigned.status, (unsigned.body as { code?: string }).code]).toEqual([403, 'ROLE_FORBIDDEN']);
    expect(await standing(id)).toMatchObject({ status: 'active' });
    const revoked = await ok<Standing>(app.post('/v1/standing-revocations', driver.revokeStanding(id)));
    expect(revoked.result).toMatchObject({ status: 'revoked', revokedBy: 'driver' });
    expect((await authorize(REVOKED_CARD)).status).toBe('Blocked');
    expect(await startTransaction(REVOKED_CARD)).toMatchObject({
      transactionId: 0,
      idTagInfo: { status: 'Blocked' },
    });
    expect(await standing(id)).toMatchObject({ status: 'revoked', sessions: 0, spentFen: 0 });
    const wallet = await balance();
    expect(wallet.heldFen).toBe(0);
    expect(wallet.balanceFen).toBe(20_000 - 1_500 - 2_000);
  });
});

describe('an RFID card at a 2.0.1 charger', () => {
  const pile2 = new PileDevice(`${A}.CARD2${RUN}`);
  const cp2Id = `cpcard2-${RUN}`;
  const card2 = `D${RUN}`;
  const txId = `T-CARD-${RUN}`;
  const cp2 = new RPCClient({
    endpoint: `${orgByMsp(A).gateway.url.replace(/^http/, 'ws')}/ocpp`,
    identity: cp2Id,
    protocols: ['ocpp2.0.1'],
    reconnect: false,
    strictMode: true,
    password: PASSWORD,
  } as Partial<RPC_ClientOptions> as RPC_ClientOptions);
  afterAll(async () => {
    await cp2.close({ force: true }).catch(() => undefined);
  });
  const event = (eventType: 'Started' | 'Ended', seqNo: number, extra: Record<string, unknown>) => ({
    eventType,
    timestamp: new Date().toISOString(),
    triggerReason: eventType === 'Started' ? 'Authorized' : 'StopAuthorized',
    seqNo,
    transactionInfo: { transactionId: txId },
    evse: { id: 1, connectorId: 1 },
    ...extra,
  });

  test('Authorize (strict schemas both ways), TransactionEvent Started and Ended on the card; the session settles', async () => {
    pile2.network = network;
    await ok(admin.post('/v1/piles', { localId: pile2.localId, publicKey: pile2.keys.publicKeyHex }));
    await new ChargerStore(gatewayDataDir(orgByMsp(A))).add({
      chargePointId: cp2Id,
      pileId: pile2.pileId,
      password: PASSWORD,
    });
    const signed = driver.standing(A, card2, 1_000, 2_000, 2, nowSec() + DAY, `card2-${RUN}`);
    const id = (await ok<Standing>(app.post('/v1/standing-authorizations', signed))).result.standingId;
    await cp2.connect();
    const token = { idToken: card2, type: 'ISO14443' };
    const auth = (await cp2.call('Authorize', { idToken: token })) as {
      idTokenInfo: { status: string; cacheExpiryDateTime?: string };
    };
    expect(auth.idTokenInfo).toMatchObject({ status: 'Accepted', cacheExpiryDateTime: expect.any(String) });
    expect(
      (
        (await cp2.call('Authorize', { idToken: { idToken: `NOBODY${RUN}`, type: 'ISO14443' } })) as {
          idTokenInfo: { status: string };
        }
      ).idTokenInfo.status,
    ).toBe('Invalid');
    const sessionId = localSessionId(txId);
    const t = nowSec();
    const start = pile2.reading('START', sessionId, 0, t) as SignedReading;
    const started = (await cp2.call(
      'TransactionEvent',
      event('Started', 0, { idToken: token, meterValue: [meterValue201(start, pile2.keys.publicKeyHex)] }),
    )) as { idTokenInfo: { status: string } };
    expect(started.idTokenInfo.status).toBe('Accepted');
    await waitFor('the next second', async () => nowSec() > t);
    const stop = pile2.reading('STOP', sessionId, 4_000, nowSec()) as SignedReading;
    await cp2.call(
      'TransactionEvent',
      event('Ended', 1, { meterValue: [meterValue201(stop, pile2.keys.publicKeyHex)] }),
    );
    const s = await waitFor(`session ${sessionId} settled`, async () => {
      const r = await piles.get<Session>(`/v1/piles/${pile2.pileId}/sessions/${sessionId}`);
      return r.status === 200 && r.body.status === 'settled' ? r.body : undefined;
    });
    // 4 kWh at 150 fen/kWh: 600 fen, on the driver's wallet, counted on the card.
    expect(s).toMatchObject({ standingId: id, capFen: 1_000, walletId: driver.walletId });
    expect(s.settlement).toMatchObject({ energyWh: 4_000, chargedFen: 600 });
    expect(await standing(id)).toMatchObject({ sessions: 1, spentFen: 600 });
    expect((await balance()).balanceFen).toBe(20_000 - 1_500 - 2_000 - 600);
  });
});
