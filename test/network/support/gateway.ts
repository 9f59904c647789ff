/**
 * Talking to the running gateways over HTTP, as pile backends, driver apps, operator admins and
 * auditors do: credentials created with the gateway's own store (what `evpay-gateway credentials create`
 * does), and a small fetch wrapper that returns status, headers and the parsed body.
 */
import { join } from 'node:path';
import { CredentialStore, type Role } from '../../../gateway-api/src/auth/credentials';
import type { OrgDescription } from '../../../network/tools/network';
import { net, waitFor } from './fabric';

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export const orgByMsp = (mspId: string): OrgDescription => {
  const o = net.orgs.find((x) => x.mspId === mspId);
  if (!o) throw new Error(`no organization ${mspId}`);
  return o;
};

export const gatewayDataDir = (org: OrgDescription): string =>
  join(net.runDir, 'nodes', org.gateway.node, 'data');

/** A new credential on an organization's gateway; answers its API key. */
export async function credential(mspId: string, role: Role, name: string, piles?: string[]): Promise<string> {
  const store = new CredentialStore(gatewayDataDir(orgByMsp(mspId)));
  const { apiKey } = await store.create({ name, role, ...(piles ? { piles } : {}) });
  return apiKey;
}

export function revokeCredential(mspId: string, apiKey: string): void {
  const id = apiKey.split('_')[1] as string;
  new CredentialStore(gatewayDataDir(orgByMsp(mspId))).revoke(id);
}

/**
 * A request exactly as written: any method, the headers given and no others (no default Content-Type),
 * the body's bytes as they are (a string, or bytes, or JSON-encoded when `json` is given); `chunked`
 * streams the body without a Content-Length.
 */
export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  json?: unknown;
  chunked?: boolean;
}

export interface Client {
  url: string;
  get<T = unknown>(path: string, headers?: Record<string, string>): Promise<Reply<T>>;
  post<T = unknown>(path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply<T>>;
  raw(path: string, init: RequestInit): Promise<Reply>;
  send(r: RawRequest): Promise<Reply>;
}

function bodyOf(r: RawRequest): RequestInit {
  const bytes = r.json !== undefined ? JSON.stringify(r.json) : r.body;
  if (bytes === undefined) return {};
  // A Uint8Array body gets no Content-Type from fetch; a string would get text/plain.
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  if (!r.chunked) return { body: data };
  const stream = new ReadableStream<Uint8Array>({
    start(ctrl) {
      for (let i = 0; i < data.length; i += 16_384) ctrl.enqueue(data.slice(i, i + 16_384));
      ctrl.close();
    },
  });
  return { body: stream, duplex: 'half' } as RequestInit;
}

export function client(mspId: string, apiKey?: string): Client {
  const url = orgByMsp(mspId).gateway.url;
  const auth: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const raw = async (path: string, init: RequestInit): Promise<Reply> => {
    const res = await fetch(url + path, {
      ...init,
      headers: { ...auth, ...(init.headers as Record<string, string>) },
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (metrics, event streams)
    }
    return { status: res.status, headers: res.headers, body, text };
  };
  return {
    url,
    raw,
    // A deadline: an answer that wrongly turns into an event stream fails the test instead of hanging it.
    send: (r: RawRequest) =>
      raw(r.path, {
        method: r.method,
        headers: r.headers ?? {},
        signal: AbortSignal.timeout(30_000),
        ...bodyOf(r),
      }),
    get: async <T>(path: string, headers: Record<string, string> = {}) =>
      (await raw(path, { method: 'GET', headers })) as Reply<T>,
    post: async <T>(path: string, body?: unknown, headers: Record<string, string> = {}) =>
      (await raw(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })) as Reply<T>,
  };
}

/** Every gateway answers /readyz (its peer reachable, the chaincode answering). */
export async function gatewaysReady(limitMs = 90_000): Promise<void> {
  for (const o of net.orgs)
    await waitFor(
      `${o.gateway.node} ready`,
      async () => {
        try {
          return (await fetch(`${o.gateway.url}/readyz`)).ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      limitMs,
    );
}
