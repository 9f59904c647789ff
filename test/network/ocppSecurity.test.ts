/**
 * OCPP security profile 3 and the live-status stream on the running network (issue 13).
 *
 * Profile 3: the README's openssl block makes a test CA, a server certificate and a charger
 * certificate; a second gateway of operator A is started in this process beside the network (its own
 * port and data dir, A's identities and peer, no reward keeper) with `listen.tls` and its
 * `clientCaPath`. A charger registered with `evpay-gateway chargers add --profile 3` is admitted with its
 * certificate and charges a car through `evpay charger --cert --key --ca` (1.6J) and the simulator's
 * module (2.0.1), each session settled on the ledger; it is refused with a certificate of another charger
 * id (403), of another CA (401), and with no certificate (password or none: 401). A profile-2 password
 * charger still works over wss, and is refused over plain ws at the network's own gateway.
 *
 * Live status: GET /v1/piles/live/events at A's network gateway, as an operator admin, an auditor and a
 * pile backend scoped to another pile: the snapshot, then connect, boot, status, heartbeat and disconnect
 * of a 1.6J charger, in order, with no event id; the scoped backend sees only its own pile; a client that
 * reconnects gets the status as it is now; the one-pile view GET /v1/piles/:pileId/live refuses the same
 * roles and scopes. Every wait is on a condition.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RPCClient } from 'ocpp-rpc';
import type { RPC_ClientOptions } from 'ocpp-rpc/lib/client';
import type { Session } from '../../chaincode/src/domain/sessions';
import { sm2GenerateKeyPair } from '../../chaincode/src/crypto';
import { CredentialStore } from '../../gateway-api/src/auth/credentials';
import { fetchTrusting, GatewayClient } from '../../gateway-api/src/client/gatewayClient';
import { loadConfig } from '../../gateway-api/src/config';
import { ChargerStore } from '../../gateway-api/src/ocpp/chargers';
import { startGateway, type RunningGateway } from '../../gateway-api/src/server';
import { runChargerSimulation } from '../../gateway-api/src/sim/chargerRun';
import { committedOnEveryPeer } from '../../network/tools/client';
import { ROOT } from './networkScripts';
import { marginsPaid } from './support/margins';
import { net, waitFor } from './support/fabric';
import { client, credential, gatewayDataDir, gatewaysReady, orgByMsp, type Client } from './support/gateway';

jest.setTimeout(300_000);

const exec = promisify(execFile);
const A = (net.orgs.find((o) => o.role === 'operator') as { mspId: string }).mspId;
const RUN = Date.now().toString(36).toUpperCase();
const CP3 = `CP3R${RUN}`;
const PASSWORD = 'a-charger-password-0123';
const dir = mkdtempSync(join(tmpdir(), 'evpay-ocpp-sec-'));
const pem = (f: string): string => readFileSync(join(dir, f), 'utf8');

let admin: Client;
let tlsGateway: RunningGateway;
let tlsConfig: string;
let tlsUrl = '';
const rpcs: RPCClient[] = [];

/** The first bash block of the README's profile-3 paragraph: the openssl commands, as printed. */
function opensslBlock(): string {
  const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = md.indexOf('**Security profile 3', md.indexOf('\n## Chargers (OCPP)'));
  const open = md.indexOf('```bash\n', start);
  const close = md.indexOf('\n  ```', open + 1);
  if (start < 0 || open < 0 || close < 0) throw new Error('no openssl block in "Chargers (OCPP)"');
  return md.slice(open + 8, close);
}

const bash = (script: string): Promise<unknown> =>
  exec('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: dir });

/** A client certificate for `cn` from the CA in `ca`.{crt,key}, as the README makes CP3's. */
const leaf = (ca: string, cn: string, out: string): Promise<unknown> =>
  bash(
    `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ${out}.key ` +
      `-out ${out}.csr -subj '/CN=${cn}' 2>/dev/null\n` +
      `openssl x509 -req -in ${out}.csr -CA ${ca}.crt -CAkey ${ca}.key -CAcreateserial -days 2 ` +
      `-extfile <(printf 'extendedKeyUsage=clientAuth') -out ${out}.crt 2>/dev/null`,
  );

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** An ocpp-rpc charger at the TLS gateway, with whatever credentials a test gives it. */
function wssCharger(
  identity: string,
  o: { cert?: string; key?: string; password?: string; protocol?: string } = {},
): RPCClient {
  const c = new RPCClient({
    endpoint: `${tlsUrl.replace(/^https/, 'wss')}/ocpp`,
    identity,
    protocols: [o.protocol ?? 'ocpp2.0.1'],
    reconnect: false,
    strictMode: false,
    ...(o.password === undefined ? {} : { password: o.password }),
    wsOpts: {
      ca: pem('chargers-ca.crt'),
      ...(o.cert ? { cert: pem(o.cert), key: pem(o.key ?? '') } : {}),
    },
  } as Partial<RPC_ClientOptions> as RPC_ClientOptions);
  rpcs.push(c);
  return c;
}

async function registerPile(
  localId: string,
): Promise<{ pileId: string; keys: ReturnType<typeof sm2GenerateKeyPair> }> {
  const keys = sm2GenerateKeyPair();
  const r = await admin.post<{ blockNumber: number }>('/v1/piles', { localId, publicKey: keys.publicKeyHex });
  if (r.status !== 200) throw new Error(`RegisterPile ${localId}: ${r.status} ${r.text}`);
  await committedOnEveryPeer(net, BigInt(r.body.blockNumber));
  return { pileId: `${A}.${localId}`, keys };
}

beforeAll(async () => {
  await gatewaysReady();
  await marginsPaid();
  admin = client(A, await credential(A, 'operator-admin', 'ocpp security ops'));
  await bash(opensslBlock().replace(/\bCP3\b/g, CP3));
  await bash(
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout other-ca.key -out other-ca.crt -days 2 -subj '/CN=another CA' -addext basicConstraints=critical,CA:TRUE 2>/dev/null",
  );
  await leaf('other-ca', CP3, 'foreign'); // the right id, the wrong CA
  await leaf('chargers-ca', `NOT${CP3}`, 'someone'); // the right CA, another id
  // A's gateway configuration, on its own port and data dir, with TLS and the chargers' CA.
  const alpha = orgByMsp(A);
  const conf = JSON.parse(
    readFileSync(join(net.runDir, 'nodes', alpha.gateway.node, 'gateway.json'), 'utf8'),
  ) as Record<string, unknown>;
  const port = await freePort();
  mkdirSync(join(dir, 'data'));
  tlsConfig = join(dir, 'gateway.json');
  writeFileSync(
    tlsConfig,
    JSON.stringify({
      ...conf,
      listen: {
        host: '127.0.0.1',
        port,
        tls: { certPath: 'gateway.crt', keyPath: 'gateway.key', clientCaPath: 'chargers-ca.crt' },
      },
      dataDir: join(dir, 'data'),
      rewardKeeper: { enabled: false },
      logLevel: 'error',
    }),
  );
  tlsGateway = await startGateway(loadConfig(tlsConfig));
  tlsUrl = tlsGateway.url;
});

afterAll(async () => {
  await Promise.all(rpcs.map((c) => c.close({ force: true }).catch(() => undefined)));
  await tlsGateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('security profile 3: client certificates', () => {
  let pile: { pileId: string; keys: ReturnType<typeof sm2GenerateKeyPair> };
  const tlsApi = (apiKey: string): GatewayClient =>
    new GatewayClient({
      url: tlsUrl,
      apiKey,
      timeoutMs: 120_000,
      fetch: fetchTrusting(pem('chargers-ca.crt')),
    });
  const tlsCredential = async (role: 'driver-app' | 'operator-admin', name: string): Promise<string> =>
    (await new CredentialStore(join(dir, 'data')).create({ name, role })).apiKey;

  test('`evpay-gateway chargers add --profile 3` registers a charger with no password', async () => {
    pile = await registerPile(CP3);
    const { stdout } = await exec(process.execPath, [
      join(ROOT, 'gateway-api', 'bin', 'evpay-gateway.js'),
      'chargers',
      'add',
      '--config',
      tlsConfig,
      '--pile',
      pile.pileId,
      '--id',
      CP3,
      '--profile',
      '3',
    ]);
    const shown = JSON.parse(stdout) as Record<string, unknown>;
    expect(shown).toMatchObject({ chargePointId: CP3, pileId: pile.pileId, securityProfile: 3 });
    expect(shown).not.toHaveProperty('password');
    expect(shown).not.toHaveProperty('warning');
  });

  test('refused at the handshake: a certificate of another id 403, of another CA 401, none 401', async () => {
    await expect(
      wssCharger(CP3, { cert: 'someone.crt', key: 'someone.key' }).connect(),
    ).rejects.toMatchObject({
      code: 403,
    });
    await expect(
      wssCharger(CP3, { cert: 'foreign.crt', key: 'foreign.key' }).connect(),
    ).rejects.toMatchObject({
      code: 401,
    });
    await expect(wssCharger(CP3, { password: PASSWORD }).connect()).rejects.toMatchObject({ code: 401 });
    await expect(wssCharger(CP3).connect()).rejects.toMatchObject({ code: 401 });
    // The right certificate, presented for another charger id (a password charger here): refused too.
    const other = await registerPile(`PW${RUN}`);
    await new ChargerStore(join(dir, 'data')).add({
      chargePointId: `PW${RUN}`,
      pileId: other.pileId,
      password: PASSWORD,
      securityProfile: 2,
    });
    await expect(
      wssCharger(`PW${RUN}`, { cert: `${CP3}.crt`, key: `${CP3}.key` }).connect(),
    ).rejects.toMatchObject({
      code: 401,
    });
    // A profile-2 password charger keeps working over wss on the same listener ...
    const pw = wssCharger(`PW${RUN}`, { password: PASSWORD, protocol: 'ocpp1.6' });
    await pw.connect();
    expect(await pw.call('Heartbeat', {})).toHaveProperty('currentTime');
    await pw.close();
    // ... and profile 2 is refused on plain ws (the network's own gateway has no TLS).
    await new ChargerStore(gatewayDataDir(orgByMsp(A))).add({
      chargePointId: `PW${RUN}`,
      pileId: other.pileId,
      password: PASSWORD,
      securityProfile: 2,
    });
    const plain = new RPCClient({
      endpoint: `${orgByMsp(A).gateway.url.replace(/^http/, 'ws')}/ocpp`,
      identity: `PW${RUN}`,
      password: PASSWORD,
      protocols: ['ocpp1.6'],
      reconnect: false,
    } as Partial<RPC_ClientOptions> as RPC_ClientOptions);
    rpcs.push(plain);
    await expect(plain.connect()).rejects.toMatchObject({ code: 401 });
  });

  test('admitted with its certificate: `evpay charger --cert --key --ca` (1.6J) and the simulator (2.0.1) settle on the ledger', async () => {
    const appKey = await tlsCredential('driver-app', 'p3 app');
    const deskKey = await tlsCredential('operator-admin', 'p3 desk');
    const evpay = join(ROOT, 'gateway-api', 'bin', 'evpay.js');
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('EVPAY_')) delete env[k];
    // The 1.6J charger's pile key as `evpay keygen --plaintext` writes it.
    const made = join(dir, 'made.key');
    await exec(process.execPath, [evpay, 'keygen', '--out', made, '--plaintext'], { env });
    const keyDoc = JSON.parse(readFileSync(made, 'utf8')) as { publicKeyHex: string };
    const cliPile = await (async () => {
      const r = await admin.post<{ blockNumber: number }>('/v1/piles', {
        localId: `${CP3}C`,
        publicKey: keyDoc.publicKeyHex,
      });
      expect(r.status).toBe(200);
      await committedOnEveryPeer(net, BigInt(r.body.blockNumber));
      return `${A}.${CP3}C`;
    })();
    await leaf('chargers-ca', `${CP3}C`, 'cli');
    await new ChargerStore(join(dir, 'data')).add({
      chargePointId: `${CP3}C`,
      pileId: cliPile,
      securityProfile: 3,
    });
    const { stdout } = await exec(
      process.execPath,
      [
        evpay,
        'charger',
        '--gateway',
        tlsUrl,
        '--id',
        `${CP3}C`,
        '--pile',
        cliPile,
        '--pile-key',
        made,
        '--cert',
        join(dir, 'cli.crt'),
        '--key',
        join(dir, 'cli.key'),
        '--ca',
        join(dir, 'chargers-ca.crt'),
        '--ocpp',
        '1.6',
        '--driver-api-key',
        appKey,
        '--top-up-api-key',
        deskKey,
      ],
      { env },
    );
    expect(JSON.parse(stdout)).toMatchObject({ sessions: { planned: 1, settled: 1, failed: 0 } });

    const summary = await runChargerSimulation({
      gatewayUrl: tlsUrl,
      chargers: [
        {
          chargePointId: CP3,
          tls: { cert: pem(`${CP3}.crt`), key: pem(`${CP3}.key`), ca: pem('chargers-ca.crt') },
          ocpp: '2.0.1',
          pileId: pile.pileId,
          pileKeys: pile.keys,
        },
      ],
      api: tlsApi(appKey),
      driverApi: tlsApi(appKey),
      topUpApi: tlsApi(deskKey),
      sessions: 1,
      capFen: 5_000,
      seed: 3,
    });
    expect(summary).toMatchObject({ sessions: { planned: 1, settled: 1, failed: 0, skipped: 0 } });
    // The ledger says so at the network's own gateway too.
    for (const p of [pile.pileId, cliPile]) {
      const sessions = await admin.get<Session[]>(`/v1/piles/${p}/sessions`);
      expect(sessions.body.map((s) => s.status)).toEqual(['settled']);
      expect(sessions.body[0]?.settlement?.chargedFen).toBeGreaterThan(0);
    }
  });
});

interface SseEvent {
  event?: string;
  id?: string;
  data: Record<string, unknown>;
}

/** An event stream read as it arrives; `events` grows until `close()`. */
async function stream(
  apiKey: string,
  query = '',
): Promise<{ status: number; body?: unknown; events: SseEvent[]; close(): void }> {
  const ac = new AbortController();
  const res = await fetch(`${orgByMsp(A).gateway.url}/v1/piles/live/events${query}`, {
    headers: { authorization: `Bearer ${apiKey}` },
    signal: ac.signal,
  });
  const events: SseEvent[] = [];
  if (res.status !== 200)
    return { status: res.status, body: await res.json(), events, close: () => undefined };
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buf = '';
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const ev: Partial<SseEvent> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const [k, v] = [line.slice(0, i), line.slice(i + 1).trimStart()];
            if (k === 'event') ev.event = v;
            else if (k === 'id') ev.id = v;
            else if (k === 'data') ev.data = JSON.parse(v) as Record<string, unknown>;
          }
          if (ev.data) events.push(ev as SseEvent);
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return { status: 200, events, close: () => ac.abort() };
}

describe('live charger status on its own event stream', () => {
  test('roles, the snapshot, every change in order with no id, and a reconnecting client brought up to date', async () => {
    const livePile = await registerPile(`LV${RUN}`);
    const otherPile = await registerPile(`LX${RUN}`);
    const chargers = new ChargerStore(gatewayDataDir(orgByMsp(A)));
    await chargers.add({ chargePointId: `LV${RUN}`, pileId: livePile.pileId, password: PASSWORD });
    await chargers.add({ chargePointId: `LX${RUN}`, pileId: otherPile.pileId, password: PASSWORD });

    // Who may not watch.
    const driverKey = await credential(A, 'driver-app', 'live app');
    const driverStream = await stream(driverKey);
    expect([driverStream.status, (driverStream.body as { code: string }).code]).toEqual([
      403,
      'ROLE_FORBIDDEN',
    ]);
    const scopedKey = await credential(A, 'pile-backend', 'live scoped', [otherPile.pileId]);
    const outOfScope = await stream(scopedKey, `?pileId=${livePile.pileId}`);
    expect([outOfScope.status, (outOfScope.body as { code: string }).code]).toEqual([
      403,
      'PILE_NOT_IN_SCOPE',
    ]);
    expect((await stream(scopedKey, '?pile=x')).status).toBe(400);

    const adminKey = await credential(A, 'operator-admin', 'live desk');
    const one = await stream(adminKey, `?pileId=${livePile.pileId}`);
    const auditor = await stream(await credential(A, 'auditor', 'live auditor'));
    const scoped = await stream(scopedKey);
    try {
      for (const s of [one, auditor, scoped])
        await waitFor('the snapshot sent', async () =>
          s.events.some((e) => e.event === 'PileLiveSnapshotEnd'),
        );
      expect(one.events).toEqual([{ event: 'PileLiveSnapshotEnd', data: { piles: 0 } }]);

      const cp = new RPCClient({
        endpoint: `${orgByMsp(A).gateway.url.replace(/^http/, 'ws')}/ocpp`,
        identity: `LV${RUN}`,
        password: PASSWORD,
        protocols: ['ocpp1.6'],
        reconnect: false,
      } as Partial<RPC_ClientOptions> as RPC_ClientOptions);
      rpcs.push(cp);
      await cp.connect();
      await cp.call('BootNotification', { chargePointVendor: 'EvPay', chargePointModel: 'Live16' });
      await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' });
      await cp.call('Heartbeat', {});
      await cp.close();
      const changes = ['connected', 'boot', 'status', 'heartbeat', 'disconnected'];
      const mine = (s: { events: SseEvent[] }): SseEvent[] =>
        s.events.filter((e) => e.event === 'PileLiveStatus' && e.data.pileId === livePile.pileId);
      for (const s of [one, auditor])
        await waitFor('the disconnect streamed', async () =>
          mine(s).some((e) => e.data.change === 'disconnected'),
        );
      for (const s of [one, auditor]) expect(mine(s).map((e) => e.data.change)).toEqual(changes);
      const [connected, boot, status, heartbeat, disconnected] = mine(one).map((e) => e.data);
      expect(connected).toMatchObject({ connected: true, protocol: 'ocpp1.6', chargePointId: `LV${RUN}` });
      expect(boot).toMatchObject({ boot: { vendor: 'EvPay', model: 'Live16' } });
      expect(status).toMatchObject({ connectors: { '1': { status: 'Available', errorCode: 'NoError' } } });
      expect(Date.parse(String(heartbeat?.lastSeenAt))).toBeGreaterThanOrEqual(
        Date.parse(String(boot?.lastSeenAt)),
      );
      expect(disconnected).toMatchObject({ connected: false, boot: { model: 'Live16' } });
      // The one-pile view (GET /v1/piles/:pileId/live) answers to the same roles and scopes as the stream.
      const view = async (key: string): Promise<{ status: number; body: Record<string, unknown> }> => {
        const r = await fetch(`${orgByMsp(A).gateway.url}/v1/piles/${livePile.pileId}/live`, {
          headers: { authorization: `Bearer ${key}` },
        });
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      };
      expect(await view(driverKey)).toMatchObject({ status: 403, body: { code: 'ROLE_FORBIDDEN' } });
      expect(await view(scopedKey)).toMatchObject({ status: 403, body: { code: 'PILE_NOT_IN_SCOPE' } });
      expect(await view(adminKey)).toMatchObject({ status: 200, body: { boot: { model: 'Live16' } } });
      // Live status is no ledger checkpoint: no event on this stream carries an id.
      for (const s of [one, auditor, scoped]) expect(s.events.filter((e) => e.id !== undefined)).toEqual([]);

      // The scoped pile backend sees its own pile's charger, and saw nothing of the other one before it.
      const own = new RPCClient({
        endpoint: `${orgByMsp(A).gateway.url.replace(/^http/, 'ws')}/ocpp`,
        identity: `LX${RUN}`,
        password: PASSWORD,
        protocols: ['ocpp2.0.1'],
        reconnect: false,
      } as Partial<RPC_ClientOptions> as RPC_ClientOptions);
      rpcs.push(own);
      await own.connect();
      await waitFor('its own charger streamed', async () =>
        scoped.events.some((e) => e.data.pileId === otherPile.pileId && e.data.change === 'connected'),
      );
      await own.close();
      expect(scoped.events.filter((e) => e.data.pileId === livePile.pileId)).toEqual([]);
      expect(
        scoped.events
          .filter((e) => e.event === 'PileLiveStatus')
          .every((e) => e.data.pileId === otherPile.pileId),
      ).toBe(true);
    } finally {
      for (const s of [one, auditor, scoped]) s.close();
    }

    // A client that reconnects gets the status as it is now, then the end of the snapshot.
    const again = await stream(adminKey, `?pileId=${livePile.pileId}`);
    try {
      await waitFor('the snapshot sent again', async () =>
        again.events.some((e) => e.event === 'PileLiveSnapshotEnd'),
      );
      expect(again.events.map((e) => [e.event, e.data.change])).toEqual([
        ['PileLiveStatus', 'snapshot'],
        ['PileLiveSnapshotEnd', undefined],
      ]);
      expect(again.events[0]?.data).toMatchObject({
        pileId: livePile.pileId,
        connected: false,
        boot: { model: 'Live16' },
        connectors: { '1': { status: 'Available' } },
      });
      expect(again.events[1]?.data).toEqual({ piles: 1 });
    } finally {
      again.close();
    }
  });
});
