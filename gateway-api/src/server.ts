/**
 * Starts one gateway: validated configuration, the organization's ledger connection, the credential
 * and idempotency stores, and the HTTP(S) listener. Stops cleanly on SIGTERM/SIGINT (in-flight requests
 * finish, the stores close), so network/down.sh loses nothing.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { pino } from 'pino';
import { CredentialStore } from './auth/credentials';
import { loadConfig, type GatewayConfig } from './config';
import { connectOrgLedger } from './fabric/orgLedger';
import { createApp } from './http/app';
import { answerClientErrors } from './http/clientErrors';
import { Submitter } from './http/submitter';
import { GatewayMetrics } from './metrics';
import { RewardKeeper } from './rewards/keeper';
import { Csms } from './ocpp/csms';
import { IdempotencyStore } from './store/idempotency';

export interface RunningGateway {
  server: Server;
  url: string;
  stop(): Promise<void>;
}

export async function startGateway(config: GatewayConfig): Promise<RunningGateway> {
  const logger = pino({ level: config.logLevel, base: { mspId: config.mspId, service: 'evpay-gateway' } });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = new IdempotencyStore(config.dataDir, config.limits.idempotencyTtlHours * 3_600_000);
  await store.open();
  const purged = await store.purgeExpired();
  const ledger = connectOrgLedger(config);
  const metrics = new GatewayMetrics();
  const submitter = new Submitter(ledger, store, metrics, {
    ...config.limits.batch,
    staleRetryMs: config.limits.staleRetryMs,
  });
  // Operators' chargers connect over OCPP on the same listener (ocpp/csms.ts); the auditor has none.
  const csms =
    config.role === 'operator'
      ? new Csms(config, ledger, submitter, logger.child({ component: 'ocpp' }), (kind, code) =>
          metrics.ocppRefusedAfterAnswer.inc({ kind, code }),
        )
      : undefined;
  const app = createApp({
    config,
    ledger,
    credentials: new CredentialStore(config.dataDir),
    submitter,
    metrics,
    logger,
    ...(csms ? { csms } : {}),
  });
  const tls = config.listen.tls;
  const server = tls
    ? createHttpsServer(
        {
          cert: readFileSync(tls.certPath),
          key: readFileSync(tls.keyPath),
          // Profile-3 chargers: a certificate is asked for, never required here (REST clients and password
          // chargers share the listener); the CSMS admits a profile-3 charger only if it verified.
          ...(tls.clientCaPath
            ? { ca: readFileSync(tls.clientCaPath), requestCert: true, rejectUnauthorized: false }
            : {}),
        },
        app,
      )
    : createHttpServer(app);
  answerClientErrors(server);
  server.on('upgrade', (req, socket, head: Buffer) => {
    if (!csms?.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => resolve());
  });
  const keeper =
    config.role === 'operator' && config.rewardKeeper.enabled
      ? new RewardKeeper(ledger, logger.child({ component: 'reward-keeper' }), {
          staggerMs: config.rewardKeeper.staggerMs,
        })
      : undefined;
  const keeping = keeper?.run();
  const purge = setInterval(() => void store.purgeExpired().catch(() => undefined), 3_600_000);
  purge.unref();
  const url = `${tls ? 'https' : 'http'}://${config.listen.host}:${config.listen.port}`;
  logger.info({ url, peer: config.peer.endpoint, role: config.role, purged }, 'gateway listening');
  return {
    server,
    url,
    stop: async () => {
      clearInterval(purge);
      keeper?.stop();
      await keeping;
      await csms?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // event streams never end by themselves
      });
      ledger.close();
      await store.close();
      logger.info('gateway stopped');
    },
  };
}

/** `evpay-gateway serve --config <file>`: runs until SIGTERM or SIGINT. */
export async function serve(configPath: string): Promise<void> {
  const gw = await startGateway(loadConfig(configPath));
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    gw.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
