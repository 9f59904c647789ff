/**
 * The OpenAPI 3.1 document of the REST gateway, generated from the route table (routes.ts) and the
 * chaincode's own schemas: request bodies and path parameters from the transactions' argument schemas,
 * answers from their answer schemas. Served at /openapi.json and kept in gateway-api/openapi.json
 * (a test fails when the committed copy drifts; `evpay-gateway openapi` regenerates it).
 */
import { argJsonSchema, evpayTransactions, answerJsonSchemas, type ArgSpec } from '@evpay/chaincode/client';
import type { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
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

function operation(route: Route, answers: Record<string, Json>): Json {
  const spec = evpayTransactions[route.tx];
  const pathNames = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] as string);
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
    const p = route.path.replace(/:([A-Za-z]+)/g, '{$1}');
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
