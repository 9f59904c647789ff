/**
 * From a route and a request to a validated call of the contract: argument values checked with the
 * chaincode's own schemas (so the gateway refuses exactly what the chaincode would, before any peer
 * work), pile scope, and the Fabric identity that acts (ROLES RULE in routes.ts: an operator admin acts
 * with the organization's admin identity, every other role with its client identity).
 */
import { createHash } from 'node:crypto';
import { evpayTransactions, toInteger, type ArgSpec } from '@evpay/chaincode/client';
import type { ZodIssue } from 'zod';
import type { Principal } from '../auth/credentials';
import type { IdentityKind } from '../fabric/orgLedger';
import { ApiError } from './problems';
import type { Route, RouteInput } from './routes';

export interface PreparedCall {
  tx: Route['tx'];
  submit: boolean;
  /** Wire strings, in argument order. */
  args: string[];
  identity: IdentityKind;
}

const issuesDetail = (issues: readonly ZodIssue[], prefix: string) =>
  issues.map((i) => ({
    path: [prefix, ...i.path].filter((p) => p !== '').join('.'),
    message: i.message,
    code: i.code,
  }));

function invalid(issues: Array<{ path: string; message: string; code: string }>): ApiError {
  const unknown = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown) return new ApiError('UNKNOWN_FIELD', `unknown field: ${unknown.message}`, { issues });
  const first = issues[0];
  return new ApiError(
    'VALIDATION_FAILED',
    first ? `${first.path || 'body'}: ${first.message}` : 'invalid request',
    {
      issues,
    },
  );
}

/** Refuses a query parameter other than `allowed` (UNKNOWN_FIELD). */
export function refuseUnknownQuery(query: Record<string, unknown>, ...allowed: string[]): void {
  const unknown = Object.keys(query).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw new ApiError('UNKNOWN_FIELD', `unknown query parameter: ${unknown.join(', ')}`);
}

/** Checks the query string against the route's declared parameters (unknown ones are refused). */
export function parseQuery(route: Route, raw: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(raw))
    if (typeof v !== 'string')
      throw new ApiError('VALIDATION_FAILED', `query parameter ${k} must be given once, as a plain value`);
  if (!route.query) {
    refuseUnknownQuery(raw);
    return {};
  }
  const r = route.query.safeParse(raw);
  if (!r.success) throw invalid(issuesDetail(r.error.issues, 'query'));
  return r.data;
}

function defaultArgs(route: Route, input: RouteInput): unknown[] {
  return evpayTransactions[route.tx].args.map((a: ArgSpec) =>
    a.encoding === 'json' ? input.body : input.params[a.name],
  );
}

/** The wire string of one argument value, after the chaincode's schema accepted it. */
function wire(arg: ArgSpec, value: unknown): string {
  if (arg.encoding === 'json') return JSON.stringify(value);
  return String(value);
}

export function prepareCall(
  route: Route,
  input: RouteInput,
  principal: Principal,
  mspId: string,
): PreparedCall {
  const spec = evpayTransactions[route.tx];
  const values = route.args ? route.args(input) : defaultArgs(route, input);
  const args: string[] = [];
  const issues: Array<{ path: string; message: string; code: string }> = [];
  spec.args.forEach((a: ArgSpec, i: number) => {
    let v = values[i];
    if (v === undefined && a.encoding === 'json') v = {};
    if (a.encoding === 'integer') v = toInteger(String(v));
    const r = a.schema.safeParse(v);
    if (!r.success) issues.push(...issuesDetail(r.error.issues, a.encoding === 'json' ? '' : a.name));
    else args.push(wire(a, v));
  });
  if (issues.length > 0) throw invalid(issues);
  const body = input.body;
  const signed = typeof body === 'object' && body !== null && 'signature' in body;
  if (route.unsignedRoles && !signed && !route.unsignedRoles.includes(principal.role))
    throw new ApiError(
      'ROLE_FORBIDDEN',
      `${route.tx} without the driver's signature is the operator's own act: a ${principal.role} credential may not send it`,
      { role: principal.role, allowed: route.unsignedRoles },
    );
  if (spec.submit && route.piles && principal.role === 'pile-backend') {
    for (const pileId of route.piles(input)) {
      if (!pileId.startsWith(`${mspId}.`))
        throw new ApiError('PILE_NOT_IN_SCOPE', `pile ${pileId} is not a pile of ${mspId}`, { pileId });
      if (principal.piles && !principal.piles.includes(pileId))
        throw new ApiError('PILE_NOT_IN_SCOPE', `this credential does not act for pile ${pileId}`, {
          pileId,
        });
    }
  }
  return {
    tx: route.tx,
    submit: spec.submit,
    args,
    identity: principal.role === 'operator-admin' ? 'admin' : 'client',
  };
}

/** What an Idempotency-Key is bound to: the route, the path and the exact arguments. */
export function requestDigest(method: string, path: string, call: PreparedCall): string {
  return createHash('sha256')
    .update(JSON.stringify([method.toUpperCase(), path, call.tx, call.args]))
    .digest('hex');
}
