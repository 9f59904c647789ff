/**
 * The OpenAPI 3.1 document of the REST gateway, generated from the route table (routes.ts) and the
 * chaincode's own schemas: request bodies and path parameters from the transactions' argument schemas,
 * answers from their answer schemas. Served at /openapi.json and kept in gateway-api/openapi.json
 * (a test fails when the committed copy drifts; `evpay-gateway openapi` regenerates it).
 */
import { argJsonSchema, evpayTransactions, answerJsonSchemas, type ArgSpec } from '@evpay/chaincode/client';
import type { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { remoteStartSchema } from '../ocpp/csms';
import { GATEWAY_CODES } from './problems';
import { routes, type Route } from './routes';

type Json = Record<string, unknown>;

// zodToJsonSchema's generic signature is too deep for tsc on ZodTypeAny (TS2589); this is its plain shape.
const toJsonSchema = zodToJsonSchema as unknown as (
  schema: z.ZodTypeAny,
  options: { $refStrategy: 'none' },
) => Json;
const plain = (schema: z.ZodTypeAny): Json => {
  const s = { ...toJsonSchema(schema, { $refStrategy: 'none' }) };
  delete s.$schema;
  return s;
};

const problem: Json = {
  type: 'object',
  required: ['code', 'message', 'details'],
  properties: {
    code: {
      type: 'string',
      description: "A gateway code or the chaincode's error code (stable, machine-readable)",
    },
    message: { type: 'string' },
    details: { type: 'object' },
  },
};

const errorResponse = (description: string): Json => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** A route's operationId: its transaction, or its transaction and what it looks up by. */
export function operationId(route: Route): string {
  const same = routes.filter((r) => r.tx === route.tx);
  if (same.length === 1) return route.tx;
  const by = route.path
    .split('/')
    .filter((p) => p !== '' && !p.startsWith(':') && p !== 'v1' && p !== 'sessions');
  return `${route.tx}By${by.map((p) => p.charAt(0).toUpperCase() + p.slice(1, -1)).join('')}`;
}

/** An Express path parameter (`:name`, a JavaScript identifier as Express reads it, digits included). */
const PATH_PARAMETER = /:([A-Za-z_$][\w$]*)/g;

/** The names of a route's path parameters, in order. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(PATH_PARAMETER)].map((m) => m[1] as string);
}

/** An Express route path as an OpenAPI path template (`:pileId` as `{pileId}`). */
export function openApiPath(path: string): string {
  return path.replace(PATH_PARAMETER, '{$1}');
}

function operation(route: Route, answers: Record<string, Json>): Json {
  const spec = evpayTransactions[route.tx];
  const pathNames = pathParameters(route.path);
  const parameters: Json[] = pathNames.map((name) => {
    const arg = spec.args.find((a: ArgSpec) => a.name === name);
    return {
      name,
      in: 'path',
      required: true,
      schema: arg ? argJsonSchema(arg) : { type: 'string' },
    };
  });
  if (route.query) {
    const q = plain(route.query) as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {}))
      parameters.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema });
  }
  const bodyArg = route.body ? spec.args.find((a: ArgSpec) => a.encoding === 'json') : undefined;
  const answer = answers[route.tx] ?? {};
  const ok = spec.submit
    ? {
        type: 'object',
        required: ['txId', 'blockNumber', 'result'],
        properties: { txId: { type: 'string' }, blockNumber: { type: 'integer' }, result: answer },
      }
    : answer;
  const responses: Json = {
    '200': {
      description: spec.submit
        ? 'Committed VALID on the ledger: the transaction id, its block and the answer'
        : 'The answer',
      content: { 'application/json': { schema: ok } },
    },
    '400': errorResponse('Malformed JSON, an unknown field or a value the chaincode refuses'),
    '401': errorResponse('No valid API key, or a bad signature'),
    '403': errorResponse('The role or the pile scope does not allow this'),
    '404': errorResponse('Not found'),
    '429': errorResponse('Too many requests for this credential'),
    '503': errorResponse('The peer is unavailable'),
  };
  if (spec.submit) {
    Object.assign(responses, {
      '409': errorResponse('A conflict: replayed reference or nonce, or invalidated at commit'),
      '413': errorResponse('The body is too large'),
      '415': errorResponse('The body is not application/json'),
      '422': errorResponse(
        "A business rule's precondition failed, or an Idempotency-Key reused for another request",
      ),
      '504': errorResponse('The outcome is not known yet: retry with the same Idempotency-Key'),
    });
    parameters.push({
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description: 'A retry with the same key returns the first outcome and never runs the transaction twice',
      schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' },
    });
  }
  return {
    operationId: operationId(route),
    summary: route.summary,
    description: `${spec.description} Transaction \`${route.tx}\`. Roles: ${route.roles.join(', ')}.`,
    tags: [route.path.split('/')[2] ?? 'v1'],
    parameters,
    ...(bodyArg
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: argJsonSchema(bodyArg) } },
          },
        }
      : {}),
    responses,
  };
}

export function openApiDocument(): Json {
  const answers = answerJsonSchemas() as Record<string, Json>;
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    const p = openApiPath(route.path);
    (paths[p] ??= {})[route.method] = operation(route, answers);
  }
  paths['/v1/events'] = {
    get: {
      operationId: 'Events',
      summary:
        'Committed business events as Server-Sent Events; reconnect with Last-Event-ID to miss nothing',
      tags: ['events'],
      parameters: [
        {
          name: 'fromBlock',
          in: 'query',
          required: false,
          schema: { type: 'string', pattern: '^\\d{1,19}$' },
        },
        { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
      ],
      responses: {
        '200': {
          description: 'text/event-stream',
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        },
      },
    },
  };
  paths['/v1/audit/{mspId}/verification'] = {
    get: {
      operationId: 'VerifyAuditChain',
      summary: 'Every sealed audit record of an operator re-hashed with SM3 and linked up to the chain head',
      tags: ['audit'],
      parameters: [{ name: 'mspId', in: 'path', required: true, schema: { type: 'string' } }],
      responses: {
        '200': {
          description: 'The verdict',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['mspId', 'ok', 'verified', 'head'],
                properties: {
                  mspId: { type: 'string' },
                  ok: { type: 'boolean' },
                  verified: { type: 'integer' },
                  head: {
                    type: 'object',
                    properties: { seq: { type: 'integer' }, chain: { type: 'string' } },
                  },
                  firstBad: {
                    type: 'object',
                    properties: { seq: { type: 'integer' }, reason: { type: 'string' } },
                  },
                },
              },
            },
          },
        },
      },
    },
  };
  Object.assign(paths, ocppPaths());
  return {
    openapi: '3.1.0',
    info: {
      title: 'EV charging payment network: operator gateway',
      version: '1.0.0',
      description:
        'REST gateway of one operator (or the auditor) of the consortium. Money is in integer fen. Errors have one shape: {code, message, details}. Gateway codes and statuses: ' +
        Object.entries(GATEWAY_CODES)
          .map(([c, s]) => `${c} ${s}`)
          .join(', ') +
        '.',
    },
    servers: [
      { url: 'http://127.0.0.1:8081', description: 'Alpha Charge on a local network (network/up.sh)' },
    ],
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'evk_<id>_<secret> API key' },
      },
      schemas: { Problem: problem },
    },
    paths,
  };
}

const jsonAnswer = (description: string, schema: Json): Json => ({
  description,
  content: { 'application/json': { schema } },
});

/** The OCPP bridge's routes (ocpp/csms.ts, http/liveEvents.ts): not chaincode transactions, so by hand. */
function ocppPaths(): Record<string, Record<string, Json>> {
  const authorization = (plain(remoteStartSchema) as { properties: Record<string, Json> }).properties
    .authorization as Json;
  return {
    '/v1/ocpp/remote-start': {
      post: {
        operationId: 'OcppRemoteStart',
        summary:
          "Ask a connected charger to start a session on a driver's signed authorization (OCPP 1.6 RemoteStartTransaction / 2.0.1 RequestStartTransaction)",
        description:
          'The charger is started with an idTag / idToken that is the session id: it signs its START, PROGRESS and STOP readings with it (EVPAY-SM2-SM3-v1) and the gateway submits StartSession, RecordReading and StopSession as they arrive. Roles: pile-backend, driver-app, operator-admin.',
        tags: ['ocpp'],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                required: ['chargePointId', 'authorization'],
                properties: {
                  chargePointId: { type: 'string', maxLength: 48 },
                  authorization,
                  connectorId: { type: 'integer', minimum: 1, maximum: 100, default: 1 },
                },
              },
            },
          },
        },
        responses: {
          '200': jsonAnswer('The charger accepted', {
            type: 'object',
            required: ['chargePointId', 'pileId', 'sessionId', 'remoteStartId', 'protocol', 'status'],
            properties: {
              chargePointId: { type: 'string' },
              pileId: { type: 'string' },
              sessionId: { type: 'string' },
              remoteStartId: { type: 'integer' },
              protocol: { type: 'string', enum: ['ocpp1.6', 'ocpp2.0.1'] },
              status: { const: 'Accepted' },
            },
          }),
          '400': errorResponse('An invalid authorization, or one for another pile'),
          '403': errorResponse('The role or the pile scope does not allow this'),
          '404': errorResponse('No such charger (CHARGER_NOT_FOUND)'),
          '409': errorResponse(
            'The charger is not connected or refused (CHARGER_NOT_CONNECTED, CHARGER_REJECTED)',
          ),
        },
      },
    },
    '/v1/piles/live/events': {
      get: {
        operationId: 'PileLiveStatusEvents',
        summary:
          "Piles' live OCPP status as Server-Sent Events: the current status of each pile first, then every change",
        description:
          'Not ledger events, so apart from /v1/events and never with an id (Last-Event-ID is ignored): a client that (re)connects first gets one PileLiveStatus event per pile it may see with change "snapshot", then one PileLiveSnapshotEnd {piles}, then a PileLiveStatus event at each connect, disconnect, BootNotification, StatusNotification and Heartbeat (change "connected", "disconnected", "boot", "status", "heartbeat"), carrying the whole status after it (pileId, chargePointId, protocol, connected, connectedAt, lastSeenAt, boot, connectors). Roles: operator-admin and auditor see every pile, a pile backend its own piles, a driver app none.',
        tags: ['ocpp', 'events'],
        parameters: [{ name: 'pileId', in: 'query', required: false, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'text/event-stream',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          '403': errorResponse(
            'A driver app, or a pile outside a pile backend credential (PILE_NOT_IN_SCOPE)',
          ),
          '404': errorResponse("The auditor's gateway has no chargers (CHARGER_NOT_FOUND)"),
        },
      },
    },
    '/v1/piles/{pileId}/live': {
      get: {
        operationId: 'PileLiveStatus',
        summary:
          "A pile's live status as its OCPP charger reports it (boot, connectors, connection) and its recent OCPP transactions with their settlement state",
        tags: ['ocpp'],
        parameters: [{ name: 'pileId', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': jsonAnswer('The live status (kept in memory by the gateway)', {
            type: 'object',
            required: ['pileId', 'chargePointId', 'protocol', 'connected', 'connectors', 'transactions'],
            properties: {
              pileId: { type: 'string' },
              chargePointId: { type: 'string' },
              protocol: { type: 'string', enum: ['ocpp1.6', 'ocpp2.0.1'] },
              connected: { type: 'boolean' },
              connectedAt: { type: 'string', format: 'date-time' },
              lastSeenAt: { type: 'string', format: 'date-time' },
              boot: { type: 'object' },
              connectors: { type: 'object' },
              transactions: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    transactionId: { type: 'string' },
                    sessionId: { type: 'string' },
                    state: { type: 'string', enum: ['open', 'stopping', 'settled', 'failed'] },
                    settlement: { type: 'object' },
                    error: { type: 'object' },
                    stopToSettledMs: { type: 'integer' },
                  },
                },
              },
            },
          }),
          '404': errorResponse('No charger of this pile has connected (CHARGER_NOT_FOUND)'),
        },
      },
    },
  };
}
