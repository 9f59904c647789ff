/**
 * OCPP security profiles and the live-status stream without a network: which credentials admit which
 * charger at the handshake (chargers.ts `refusal`, the store's profile-3 entries), who may watch which
 * piles' live status (http/liveEvents.ts), and the configuration's client CA path.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Principal } from '../src/auth/credentials';
import { loadConfig } from '../src/config';
import { ChargerStore, refusal, type Charger, type TlsFacts } from '../src/ocpp/chargers';
import { liveEventText, liveScope } from '../src/http/liveEvents';
import { ApiError } from '../src/http/problems';

const base = { chargePointId: 'CP3', pileId: 'AlphaMSP.P3', createdAt: '2026-12-01T00:00:00Z' };
const cert3: Charger = { ...base, securityProfile: 3 };
const pw = (securityProfile?: 1 | 2): Charger => ({
  ...base,
  ...(securityProfile ? { securityProfile } : {}),
  hash: 'scrypt$x',
});
const right = async (p: Buffer): Promise<boolean> => p.toString() === 'the-right-password';
const plain: TlsFacts = { encrypted: false, authorized: false };
const tlsNoCert: TlsFacts = { encrypted: true, authorized: false };
const good: TlsFacts = { encrypted: true, authorized: true, subjectCN: 'CP3' };
const PASSWORD = Buffer.from('the-right-password');

describe('handshake credentials by security profile', () => {
  test('profile 3: only a verified certificate whose CN is the charger id', async () => {
    expect(await refusal(cert3, undefined, good, right)).toBeUndefined();
    // The right password does not stand in for the certificate.
    expect(await refusal(cert3, PASSWORD, tlsNoCert, right)).toMatchObject({ status: 401 });
    expect(await refusal(cert3, PASSWORD, plain, right)).toMatchObject({ status: 401 });
    // Untrusted (another CA): TLS let it through, the CSMS does not.
    expect(
      await refusal(cert3, undefined, { encrypted: true, authorized: false, subjectCN: 'CP3' }, right),
    ).toMatchObject({ status: 401 });
    // Trusted, but another charger's certificate.
    expect(
      await refusal(cert3, undefined, { encrypted: true, authorized: true, subjectCN: 'CP4' }, right),
    ).toMatchObject({ status: 403 });
    expect(await refusal(cert3, undefined, { encrypted: true, authorized: true }, right)).toMatchObject({
      status: 403,
    });
  });

  test('profiles 1 and 2: the password; 2 only over TLS; a certificate changes nothing', async () => {
    for (const c of [pw(), pw(1), pw(2)]) {
      expect(await refusal(c, PASSWORD, good, right)).toBeUndefined();
      expect(await refusal(c, PASSWORD, tlsNoCert, right)).toBeUndefined();
      expect(await refusal(c, undefined, good, right)).toMatchObject({ status: 401 });
      expect(await refusal(c, Buffer.from('wrong-password-1234'), good, right)).toMatchObject({
        status: 401,
      });
    }
    expect(await refusal(pw(), PASSWORD, plain, right)).toBeUndefined();
    expect(await refusal(pw(1), PASSWORD, plain, right)).toBeUndefined();
    expect(await refusal(pw(2), PASSWORD, plain, right)).toMatchObject({ status: 401 });
    expect(await refusal(undefined, PASSWORD, good, right)).toMatchObject({ status: 401 });
  });

  describe('in the data dir', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'evpay-ocpp-sec-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    test('a profile-3 charger has no password or hash; it is listed with its profile', async () => {
      const store = new ChargerStore(dir);
      const added = await store.add({ chargePointId: 'CP3', pileId: 'AlphaMSP.P3', securityProfile: 3 });
      expect(added).toEqual({ charger: expect.objectContaining({ securityProfile: 3 }) });
      const { password } = await store.add({
        chargePointId: 'CP2',
        pileId: 'AlphaMSP.P2',
        securityProfile: 2,
      });
      expect(store.list()).toEqual([
        expect.objectContaining({ chargePointId: 'CP3', securityProfile: 3 }),
        expect.objectContaining({ chargePointId: 'CP2', securityProfile: 2 }),
      ]);
      expect(JSON.stringify(store.list())).not.toMatch(/scrypt|hash/);
      expect(await store.authenticate('CP3', undefined, good)).toMatchObject({
        charger: { pileId: 'AlphaMSP.P3' },
      });
      expect(await store.authenticate('CP3', Buffer.from(password), tlsNoCert)).toMatchObject({
        status: 401,
      });
      expect(await store.authenticate('CP2', Buffer.from(password), plain)).toMatchObject({ status: 401 });
      expect(await store.authenticate('CP2', Buffer.from(password), tlsNoCert)).toMatchObject({
        charger: { chargePointId: 'CP2' },
      });
      await expect(
        store.add({
          chargePointId: 'CP3',
          pileId: 'AlphaMSP.P3',
          securityProfile: 3,
          password: 'x'.repeat(20),
        }),
      ).rejects.toThrow(/no password/);
    });

    test('the configuration takes listen.tls.clientCaPath, relative to the file', () => {
      const file = join(dir, 'gateway.json');
      const conf = {
        mspId: 'AlphaMSP',
        role: 'operator',
        listen: { port: 9443, tls: { certPath: 'gw.crt', keyPath: 'gw.key', clientCaPath: 'ca.crt' } },
        peer: { endpoint: '127.0.0.1:7051', hostname: 'peer0', tlsCACert: 'peer-ca.crt' },
        channel: 'evpay',
        chaincode: 'evpay',
        identities: { client: { certPath: 'c.pem', keyDir: 'k' } },
        dataDir: 'data',
      };
      writeFileSync(file, JSON.stringify(conf));
      expect(loadConfig(file, {}).listen.tls).toEqual({
        certPath: join(dir, 'gw.crt'),
        keyPath: join(dir, 'gw.key'),
        clientCaPath: join(dir, 'ca.crt'),
      });
      writeFileSync(
        file,
        JSON.stringify({ ...conf, listen: { port: 9443, tls: { clientCaPath: 'ca.crt' } } }),
      );
      expect(() => loadConfig(file, {})).toThrow(/listen\.tls\.certPath/);
    });
  });
});

describe('who watches live pile status', () => {
  const who = (role: Principal['role'], piles?: string[]): Principal => ({
    id: '0123456789abcdef',
    name: role,
    role,
    ...(piles ? { piles } : {}),
  });
  const refused = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      if (e instanceof ApiError) return e.code;
      throw e;
    }
    return 'allowed';
  };

  test('admins and auditors every pile, a pile backend its own, a driver app none', () => {
    for (const role of ['operator-admin', 'auditor'] as const) {
      const sees = liveScope(who(role));
      expect([sees('AlphaMSP.P1'), sees('AlphaMSP.P2')]).toEqual([true, true]);
      const one = liveScope(who(role), 'AlphaMSP.P1');
      expect([one('AlphaMSP.P1'), one('AlphaMSP.P2')]).toEqual([true, false]);
    }
    const scoped = liveScope(who('pile-backend', ['AlphaMSP.P1']));
    expect([scoped('AlphaMSP.P1'), scoped('AlphaMSP.P2')]).toEqual([true, false]);
    const all = liveScope(who('pile-backend'));
    expect([all('AlphaMSP.P1'), all('AlphaMSP.P2')]).toEqual([true, true]);
    expect(refused(() => liveScope(who('pile-backend', ['AlphaMSP.P1']), 'AlphaMSP.P2'))).toBe(
      'PILE_NOT_IN_SCOPE',
    );
    expect(refused(() => liveScope(who('driver-app')))).toBe('ROLE_FORBIDDEN');
  });

  test('an event has a name and JSON data, and never an id (it is no ledger checkpoint)', () => {
    const text = liveEventText('PileLiveStatus', { change: 'boot', pileId: 'AlphaMSP.P1' });
    expect(text).toBe('event: PileLiveStatus\ndata: {"change":"boot","pileId":"AlphaMSP.P1"}\n\n');
    expect(text).not.toMatch(/^id:/m);
  });
});
