/**
 * A small client of an operator's REST gateway, shared by the `evpay gw` commands and the simulators, so
 * that one place knows the gateway's conventions: the API key as a Bearer token, an Idempotency-Key on
 * every POST, the one error shape `{ code, message, details }`, and the three ways a call can end. An
 * answer; a refusal (4xx: the request was wrong or not allowed, sending it again changes nothing); a
 * failure (5xx: the gateway or the ledger failed, and for a submit the outcome may be unknown); or no
 * answer at all (unreachable, timed out). Callers decide what to retry from the kind of failure, never
 * from message text: a failure or a missing answer is retried with the SAME Idempotency-Key, so a
 * request that did commit is answered with its first outcome instead of charging twice.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { evpayAnswers, type EvPayResults, type EvPayTransactionName } from '@evpay/chaincode/client';

/** What the gateway accepts as an Idempotency-Key (gateway-api/src/http/app.ts). */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A fresh Idempotency-Key: 96 random bits, so two clients never pick the same one. */
export const newIdempotencyKey = (): string => `evpay-${randomBytes(12).toString('hex')}`;

const problemSchema = z.object({
  code: z.string().min(1),
  message: z.string(),
  details: z.record(z.unknown()).optional(),
});

/** The gateway answered with an error status and its `{ code, message, details }`. */
export class GatewayRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    /** The key the request was sent with (a POST): retry a 5xx with it to learn the outcome. */
    readonly idempotencyKey?: string,
  ) {
    super(message);
    this.name = 'GatewayRefusal';
  }
  /** 5xx: the gateway or the ledger failed; the same request, with the same key, may succeed later. */
  get isFailure(): boolean {
    return this.status >= 500;
  }
  /** What the CLI prints on stderr. */
  toJSON(): Record<string, unknown> {
    return {
      status: this.status,
      code: this.code,
      message: this.message,
      details: this.details,
      ...(this.idempotencyKey === undefined ? {} : { idempotencyKey: this.idempotencyKey }),
    };
  }
}

/** No answer: the gateway could not be reached, or did not answer in time (a POST may have committed). */
export class GatewayUnreachable extends Error {
  constructor(
    readonly url: string,
    message: string,
    readonly idempotencyKey?: string,
  ) {
    super(message);
    this.name = 'GatewayUnreachable';
  }
  toJSON(): Record<string, unknown> {
    return {
      code: 'GATEWAY_UNREACHABLE',
      message: this.message,
      url: this.url,
      ...(this.idempotencyKey === undefined ? {} : { idempotencyKey: this.idempotencyKey }),
    };
  }
}

/** The part of `fetch` the client uses (tests pass one that answers from an in-memory ledger). */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/**
 * A FetchLike over node:http(s) that trusts `ca` (PEM) for https: the global fetch trusts only the
 * system's roots, and a gateway's TLS certificate may come from the operator's own CA.
 */
export function fetchTrusting(ca: string): FetchLike {
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const u = new URL(url);
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
        u,
        {
          method: init.method ?? 'GET',
          headers: init.headers as Record<string, string>,
          ...(u.protocol === 'https:' ? { ca } : {}),
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers))
              if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
            const body = Buffer.concat(chunks);
            resolve(new Response(body.length > 0 ? body : null, { status: res.statusCode ?? 502, headers }));
          });
        },
      );
      req.on('error', reject);
      if (typeof init.body === 'string') req.write(init.body);
      req.end();
    });
}

export interface GatewayClientOptions {
  /** The gateway's base URL, e.g. http://127.0.0.1:8081 */
  url: string;
  /** An API key made by `evpay-gateway credentials create` (evk_...). */
  apiKey?: string;
  /** How long to wait for an answer (a submit waits for the commit). Default 120 s. */
  timeoutMs?: number;
  fetch?: FetchLike;
}

/** The answer of a submitted transaction: its id, its block and the chaincode's answer. */
export interface Committed<T> {
  txId: string;
  blockNumber: number;
  result: T;
}

const committedSchema = z.object({ txId: z.string(), blockNumber: z.number().int(), result: z.unknown() });

/** Checks a POST answer against the transaction's answer schema (the chaincode's, strict). */
export function committedAnswer<N extends EvPayTransactionName>(
  tx: N,
  body: unknown,
): Committed<EvPayResults[N]> {
  const envelope = committedSchema.parse(body);
  return { ...envelope, result: queryAnswer(tx, envelope.result) };
}

/** Checks a GET answer against the transaction's answer schema. */
export function queryAnswer<N extends EvPayTransactionName>(tx: N, body: unknown): EvPayResults[N] {
  const schema = (evpayAnswers as Partial<Record<EvPayTransactionName, z.ZodTypeAny>>)[tx];
  if (!schema) throw new Error(`no answer schema for ${tx}`);
  return schema.parse(body) as EvPayResults[N];
}

/** A gateway's base URL: http or https, no query, no trailing slash. */
export function gatewayUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`not a URL: ${value}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error('expected an http:// or https:// URL');
  if (u.search || u.hash) throw new Error('expected a base URL without query or fragment');
  return u.toString().replace(/\/+$/, '');
}

export class GatewayClient {
  readonly url: string;
  private readonly apiKey?: string;
  private readonly timeoutMs: number;
  private readonly fetchFn: FetchLike;

  constructor(o: GatewayClientOptions) {
    this.url = gatewayUrl(o.url);
    this.apiKey = o.apiKey;
    this.timeoutMs = o.timeoutMs ?? 120_000;
    this.fetchFn = o.fetch ?? ((url, init) => fetch(url, init));
  }

  /** GET a resource; `query` values that are undefined are left out. */
  get(path: string, query: Record<string, string | number | undefined> = {}): Promise<unknown> {
    const q = Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined);
    const search =
      q.length === 0 ? '' : '?' + new URLSearchParams(q.map(([k, v]): [string, string] => [k, String(v)]));
    return this.request('GET', path + search, undefined, undefined);
  }

  /** POST a JSON body under an Idempotency-Key (a fresh one unless given). */
  post(path: string, body: unknown, idempotencyKey: string = newIdempotencyKey()): Promise<unknown> {
    if (!IDEMPOTENCY_KEY.test(idempotencyKey))
      throw new Error('Idempotency-Key: 1 to 128 of A-Z a-z 0-9 _ . : -');
    return this.request('POST', path, body, idempotencyKey);
  }

  private async request(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    idempotencyKey: string | undefined,
  ): Promise<unknown> {
    const url = this.url + path;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await this.fetchFn(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (e) {
      // A DOMException (the abort) is not an Error of every realm: its name is what tells.
      const name = typeof e === 'object' && e !== null ? (e as { name?: unknown }).name : undefined;
      const timedOut = name === 'TimeoutError' || name === 'AbortError';
      const why = timedOut
        ? `no answer from ${this.url} within ${this.timeoutMs / 1000} s`
        : `cannot reach ${this.url}: ${describe(e)}`;
      const retry = idempotencyKey
        ? `; retry with Idempotency-Key ${idempotencyKey} to learn the outcome`
        : '';
      throw new GatewayUnreachable(this.url, why + (timedOut ? retry : ''), idempotencyKey);
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok) {
      if (parsed === undefined)
        throw new GatewayRefusal(
          res.status,
          'UNEXPECTED_ANSWER',
          `${method} ${path}: the answer is not JSON`,
        );
      return parsed;
    }
    const problem = problemSchema.safeParse(parsed);
    if (problem.success)
      throw new GatewayRefusal(
        res.status,
        problem.data.code,
        problem.data.message,
        problem.data.details ?? {},
        idempotencyKey,
      );
    throw new GatewayRefusal(
      res.status,
      `HTTP_${res.status}`,
      `${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`,
      {},
      idempotencyKey,
    );
  }
}

/** The innermost cause of a fetch failure (undici wraps ECONNREFUSED and friends in `cause`). */
function describe(e: unknown): string {
  let cur: unknown = e;
  while (cur instanceof Error && cur.cause !== undefined) cur = cur.cause;
  if (cur instanceof Error) return (cur as Error & { code?: string }).code ?? cur.message;
  return String(cur);
}
