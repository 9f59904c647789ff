/**
 * The REST gateway's Express application: request parsing with clear 4xx answers, API-key
 * authentication and per-credential rate limits, the routes of routes.ts, Server-Sent Events, health,
 * readiness, metrics and the OpenAPI document. Built by a factory so tests drive it with supertest.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { CredentialStore, Principal } from '../auth/credentials';
import type { GatewayConfig } from '../config';
import type { OrgLedger } from '../fabric/orgLedger';
import type { GatewayMetrics } from '../metrics';
import type { Csms } from '../ocpp/csms';
import { auditVerification } from './auditVerification';
import { DriverSignatures } from './driverSignatures';
import { findDuplicateKey, type DuplicateKey } from './duplicateKeys';
import { streamEvents } from './events';
import { liveScope, streamLiveStatus } from './liveEvents';
import { openApiDocument } from './openapi';
import { ApiError } from './problems';
import { routes, type Route } from './routes';
import { failureAnswer, type Answer, type Submitter } from './submitter';
import { ChaincodeRejection, LedgerUnavailable, TransactionInvalidated } from '../fabric/errors';
import { parseQuery, prepareCall, requestDigest } from './transactions';

export interface AppDeps {
  config: GatewayConfig;
  ledger: OrgLedger;
  credentials: CredentialStore;
  submitter: Submitter;
  metrics: GatewayMetrics;
  logger: Logger;
  /** The OCPP bridge of an operator's gateway (absent at the auditor's). */
  csms?: Csms;
}

type Authed = Request & { principal?: Principal };

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Wraps an async handler so its rejection reaches the error handler. */
const handle =
  (fn: (req: Authed, res: Response) => Promise<void>) =>
  (req: Request, res: Response, next: NextFunction): void => {
    fn(req as Authed, res).catch(next);
  };

function send(res: Response, a: Answer): void {
  if (a.replayed) res.set('Idempotent-Replayed', 'true');
  res.status(a.status).json(a.body);
}

function presentedKey(req: Request): string | undefined {
  const auth = req.get('authorization');
  if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
  return req.get('x-api-key') ?? undefined;
}

export function createApp(deps: AppDeps): express.Express {
  const { config, ledger, credentials, submitter, metrics, logger, csms } = deps;
  const signatures = new DriverSignatures(ledger, () => metrics.driverSignaturesRefused.inc());
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(
    pinoHttp({
      logger,
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
    }),
  );
  app.use((req, res, next) => {
    const end = metrics.latency.startTimer();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const labels = { method: req.method, route };
      end(labels);
      metrics.requests.inc({ ...labels, status: String(res.statusCode) });
    });
    next();
  });

  // --- unauthenticated operations endpoints ---
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok', mspId: config.mspId }));
  app.get(
    '/readyz',
    handle(async (_req, res) => {
      try {
        await ledger.evaluate('client', 'GetConsortium', []);
        res.json({ status: 'ready', mspId: config.mspId });
      } catch (e) {
        res.status(503).json({ code: 'NOT_READY', message: (e as Error).message, details: {} });
      }
    }),
  );
  app.get(
    '/metrics',
    handle(async (_req, res) => {
      res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
    }),
  );
  const openapi = openApiDocument();
  app.get('/openapi.json', (_req, res) => void res.json(openapi));

  // --- everything under /v1 needs a credential ---
  app.use('/v1', (req: Request, _res: Response, next: NextFunction) => {
    const key = presentedKey(req);
    if (!key)
      return next(new ApiError('UNAUTHENTICATED', 'an API key is needed (Authorization: Bearer evk_...)'));
    credentials.authenticate(key).then((principal) => {
      if (!principal) return next(new ApiError('UNAUTHENTICATED', 'unknown, wrong or revoked API key'));
      (req as Authed).principal = principal;
      next();
    }, next);
  });
  app.use(
    '/v1',
    rateLimit({
      windowMs: 60_000,
      limit: config.limits.requestsPerMinute,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      keyGenerator: (req) => (req as Authed).principal?.id ?? 'anonymous',
      handler: (_req, _res, next) =>
        next(new ApiError('RATE_LIMITED', `more than ${config.limits.requestsPerMinute} requests a minute`)),
    }),
  );
  // A byte order mark is refused rather than skipped (body-parser would strip it): the chaincode's own
  // JSON.parse refuses one, and the gateway refuses what the chaincode would (transactions.ts).
  const json = express.json({
    limit: config.limits.bodyBytes,
    strict: true,
    type: () => true,
    verify: (_req, _res, buf) => {
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf)
        throw Object.assign(new Error('byte order mark'), { type: 'json.bom' });
      const duplicate = findDuplicateKey(buf.toString('utf8'));
      if (duplicate) throw Object.assign(new Error('duplicate key'), { type: 'json.duplicate', duplicate });
    },
  });
  const needsJson = (req: Request, _res: Response, next: NextFunction): void => {
    const length = Number(req.get('content-length') ?? '0');
    const chunked = req.get('transfer-encoding') !== undefined;
    if ((length > 0 || chunked) && !req.is('application/json'))
      return next(
        new ApiError('UNSUPPORTED_MEDIA_TYPE', 'request bodies are JSON (Content-Type: application/json)'),
      );
    next();
  };

  app.get(
    '/v1/events',
    handle(async (req, res) => {
      await streamEvents(req, res, ledger);
    }),
  );
  app.get(
    '/v1/audit/:mspId/verification',
    handle(async (req, res) => {
      if (!['auditor', 'operator-admin'].includes(req.principal?.role ?? ''))
        throw new ApiError('ROLE_FORBIDDEN', 'auditors and operator admins verify audit chains');
      res.json(await auditVerification(ledger, String(req.params.mspId)));
    }),
  );

  // --- the OCPP bridge (ocpp/csms.ts): not chaincode transactions, so outside the route table ---
  app.get('/v1/piles/live/events', (req, res) =>
    streamLiveStatus(req, res, csms, (req as Authed).principal as Principal),
  );
  app.get(
    '/v1/piles/:pileId/live',
    handle(async (req, res) => {
      const pileId = String(req.params.pileId);
      // The same roles and pile scopes as the live stream: a driver app does not watch piles.
      liveScope(req.principal as Principal, pileId);
      const view = csms?.liveView(pileId);
      if (!view)
        throw new ApiError('CHARGER_NOT_FOUND', `no charger of pile ${pileId} has connected to this gateway`);
      res.json(view);
    }),
  );
  app.post(
    '/v1/ocpp/remote-start',
    needsJson,
    json,
    handle(async (req, res) => {
      const principal = req.principal as Principal;
      if (!csms) throw new ApiError('READ_ONLY_GATEWAY', "the auditor's gateway has no chargers");
      if (!['pile-backend', 'driver-app', 'operator-admin'].includes(principal.role))
        throw new ApiError('ROLE_FORBIDDEN', 'pile backends and driver apps start chargers');
      res.json(await csms.remoteStart(req.body, principal));
    }),
  );

  for (const route of routes) {
    const handler = handle(async (req, res) => {
      const principal = req.principal as Principal;
      if (route.method === 'post' && config.role === 'auditor')
        throw new ApiError('READ_ONLY_GATEWAY', "the auditor's gateway only reads");
      if (!route.roles.includes(principal.role))
        throw new ApiError('ROLE_FORBIDDEN', `a ${principal.role} credential may not call ${route.tx}`, {
          role: principal.role,
          allowed: route.roles,
        });
      const query = parseQuery(route, req.query as Record<string, unknown>);
      const body: unknown = req.body;
      // A route without a body takes none, or exactly `{}` (an empty body parses so): an array, even an
      // empty one, is a body it does not take.
      const emptyObject =
        typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0;
      if (!route.body && route.method === 'post' && body !== undefined && !emptyObject)
        throw new ApiError('UNKNOWN_FIELD', `${route.tx} takes no body`);
      const input = { params: req.params as Record<string, string>, query, body };
      const call = prepareCall(route, input, principal, config.mspId);
      if (!call.submit) return send(res, await submitter.evaluate(call));
      await signatures.check(call.tx, JSON.parse(call.args[0] ?? 'null'));
      const key = req.get('idempotency-key');
      if (key === undefined) return send(res, await submitter.submit(call));
      if (!IDEMPOTENCY_KEY.test(key))
        throw new ApiError('BAD_IDEMPOTENCY_KEY', 'Idempotency-Key: 1 to 128 of A-Z a-z 0-9 _ . : -');
      send(
        res,
        await submitter.submitOnce(call, principal.id, key, requestDigest(req.method, req.path, call)),
      );
    });
    if (route.method === 'post') app.post(route.path, needsJson, json, handler);
    else app.get(route.path, handler);
  }

  // --- unknown routes and methods ---
  const known = [
    ...routes.map((r): Pick<Route, 'method' | 'path'> => r),
    { method: 'get', path: '/v1/piles/:pileId/live' } as const,
    { method: 'get', path: '/v1/piles/live/events' } as const,
    { method: 'post', path: '/v1/ocpp/remote-start' } as const,
  ].map((r) => ({
    method: r.method.toUpperCase(),
    re: new RegExp(`^${r.path.replace(/:[A-Za-z]+/g, '[^/]+')}$`),
  }));
  app.use((req, _res, next) => {
    const same = known.filter((k) => k.re.test(req.path));
    if (same.length > 0)
      return next(
        new ApiError('METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, {
          allowed: [...new Set(same.map((k) => k.method))],
        }),
      );
    next(new ApiError('ROUTE_NOT_FOUND', `no resource ${req.method} ${req.path}`));
  });

  // --- one error shape ---
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    void _next;
    if (
      err instanceof ChaincodeRejection ||
      err instanceof LedgerUnavailable ||
      err instanceof TransactionInvalidated
    )
      return send(res, failureAnswer(err));
    const e = toApiError(err);
    if (e.status >= 500) req.log?.error({ err }, 'request failed');
    if (e.code === 'METHOD_NOT_ALLOWED') res.set('Allow', (e.details.allowed as string[]).join(', '));
    res.status(e.status).json(e.body());
  });
  return app;
}

/** Whether a text is one JSON value (body-parser's strict mode refuses valid JSON that is no object). */
function isJson(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * body-parser's and the router's errors and anything unexpected, as the gateway's error shape. What the
 * client sent wrong is a 4xx whatever layer noticed it: a request never gets a 500 for its own bytes.
 */
function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = (err ?? {}) as { type?: string; status?: number; body?: unknown; message?: string };
  const t = e.type;
  if (t === 'entity.parse.failed')
    return isJson(e.body)
      ? new ApiError('VALIDATION_FAILED', 'the body must be a JSON object')
      : new ApiError('MALFORMED_JSON', 'the body is not valid JSON');
  if (t === 'json.bom')
    return new ApiError('MALFORMED_JSON', 'the body starts with a byte order mark (RFC 8259 §8.1: none)');
  if (t === 'json.duplicate') {
    const { key, path } = (err as { duplicate: DuplicateKey }).duplicate;
    return new ApiError('DUPLICATE_JSON_KEY', `the body names "${key}" twice in one object`, { key, path });
  }
  if (t === 'entity.too.large')
    return new ApiError('BODY_TOO_LARGE', 'the body is larger than this gateway accepts');
  if (t === 'charset.unsupported' || t === 'encoding.unsupported')
    return new ApiError('UNSUPPORTED_MEDIA_TYPE', 'bodies are UTF-8 JSON');
  if (t === 'request.aborted') return new ApiError('VALIDATION_FAILED', 'the request was aborted');
  if (err instanceof URIError && e.status === 400)
    return new ApiError('VALIDATION_FAILED', 'a path parameter is not valid percent-encoding');
  // Anything else the HTTP layer refused as the client's fault: a body that does not decompress as its
  // Content-Encoding says, or a length that is not its Content-Length.
  if (e.status === 400)
    return new ApiError('MALFORMED_JSON', `the body could not be read: ${e.message ?? 'bad request'}`);
  return new ApiError('INTERNAL', 'internal error');
}
