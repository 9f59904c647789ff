/**
 * The gateway's configuration: one JSON file (EVPAY_GATEWAY_CONFIG or --config), rendered per
 * organization by network/tools/render.ts, with a few environment overrides for operators. Validated
 * with zod at start: a bad value stops the gateway with every problem named, before it listens.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { MAX_BATCH_CALLS } from '@evpay/chaincode/client';

const file = z.string().min(1);
const identitySchema = z
  .object({
    /** The signing certificate (PEM). */
    certPath: file,
    /** The folder holding its private key (`*_sk` or `priv_sk`). */
    keyDir: file,
  })
  .strict();

export const configSchema = z
  .object({
    /** The organization this gateway speaks for, and whether it is an operator or the auditor. */
    mspId: z.string().regex(/^[A-Za-z][A-Za-z0-9.-]{0,63}$/),
    role: z.enum(['operator', 'auditor']),
    listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(1).max(65535),
        /** TLS for the gateway's own listener (HTTPS and WSS): PEM files. Off when absent. */
        tls: z
          .object({
            certPath: file,
            keyPath: file,
            /**
             * The CA (PEM, one or more certificates) that OCPP security-profile-3 chargers' client
             * certificates must chain to. When set the listener asks every client for a certificate but
             * refuses none at TLS level: REST clients and password chargers have none (ocpp/chargers.ts).
             */
            clientCaPath: file.optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
    peer: z
      .object({
        endpoint: z.string().regex(/^[^:\s]+:\d+$/, 'host:port'),
        /** The TLS host name the peer's certificate carries (the endpoint may be an IP address). */
        hostname: z.string().min(1),
        tlsCACert: file,
      })
      .strict(),
    channel: z.string().min(1),
    chaincode: z.string().min(1),
    /** The organization's client identity (routine calls) and admin identity (operator-admin calls). */
    identities: z.object({ client: identitySchema, admin: identitySchema.optional() }).strict(),
    /** Where the credentials file and the idempotency store live (survives restarts). */
    dataDir: file,
    limits: z
      .object({
        /** Requests per credential per minute before 429. */
        requestsPerMinute: z.number().int().min(1).max(1_000_000).default(600),
        /** Largest JSON body accepted. */
        bodyBytes: z.number().int().min(1024).max(1_048_576).default(65_536),
        /** How often a transaction invalidated by an MVCC read conflict is endorsed again. */
        mvccRetries: z.number().int().min(0).max(10).default(3),
        /**
         * How long a refusal that may come from a peer a block behind (fabric/ledger.ts, MAYBE_STALE) is
         * endorsed again before it is answered.
         */
        staleRetryMs: z.number().int().min(0).max(30_000).default(1_500),
        /**
         * Session calls (start, stop, reading) of one identity sent while `maxInFlight` transactions are
         * in flight wait and go together, up to `maxCalls`, as one SessionBatch (fabric/batcher.ts);
         * `maxInFlight: 0` turns batching off (every call its own transaction). One in flight: in the
         * network benchmark it made batches of 5.5 calls (3 with two) and cut CPU per session by 14 %.
         */
        batch: z
          .object({
            maxInFlight: z.number().int().min(0).max(64).default(1),
            maxCalls: z.number().int().min(2).max(MAX_BATCH_CALLS).default(MAX_BATCH_CALLS),
          })
          .strict()
          .default({}),
        /** How long an Idempotency-Key's first outcome is kept. */
        idempotencyTtlHours: z
          .number()
          .int()
          .min(1)
          .max(24 * 90)
          .default(72),
      })
      .strict()
      .default({}),
    timeouts: z
      .object({
        evaluateMs: z.number().int().min(100).default(10_000),
        endorseMs: z.number().int().min(100).default(30_000),
        submitMs: z.number().int().min(100).default(10_000),
        commitMs: z.number().int().min(100).default(60_000),
      })
      .strict()
      .default({}),
    /** The reward keeper (rewards/keeper.ts): on by default in operators' gateways. */
    rewardKeeper: z
      .object({
        enabled: z.boolean().default(true),
        /** How long a keeper waits per place behind the block's first keeper (STAGGER RULE). */
        staggerMs: z.number().int().min(0).max(600_000).default(3_000),
      })
      .strict()
      .default({}),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export type GatewayConfig = z.infer<typeof configSchema>;
/** The configuration file as written (defaults may be left out). */
export type GatewayConfigFile = z.input<typeof configSchema>;

export class ConfigError extends Error {}

/** Environment variables that override the file (for an operator's deployment tooling). */
const ENV_OVERRIDES: ReadonlyArray<[string, (c: Record<string, unknown>, v: string) => void]> = [
  ['EVPAY_GATEWAY_PORT', (c, v) => ((c.listen as Record<string, unknown>).port = Number(v))],
  ['EVPAY_GATEWAY_HOST', (c, v) => ((c.listen as Record<string, unknown>).host = v)],
  ['EVPAY_GATEWAY_LOG_LEVEL', (c, v) => (c.logLevel = v)],
  ['EVPAY_GATEWAY_DATA_DIR', (c, v) => (c.dataDir = v)],
];

/** Reads, overrides and validates the configuration; relative paths are relative to the file. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`cannot read gateway configuration ${path}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null) throw new ConfigError(`${path}: not a JSON object`);
  const obj = raw as Record<string, unknown>;
  if (typeof obj.listen !== 'object' || obj.listen === null) obj.listen = {};
  for (const [name, apply] of ENV_OVERRIDES) {
    const v = env[name];
    if (v !== undefined && v !== '') apply(obj, v);
  }
  const parsed = configSchema.safeParse(obj);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid gateway configuration ${path}:\n${problems.join('\n')}`);
  }
  const base = dirname(resolve(path));
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const c = parsed.data;
  return {
    ...c,
    dataDir: abs(c.dataDir),
    peer: { ...c.peer, tlsCACert: abs(c.peer.tlsCACert) },
    listen: c.listen.tls
      ? {
          ...c.listen,
          tls: {
            certPath: abs(c.listen.tls.certPath),
            keyPath: abs(c.listen.tls.keyPath),
            ...(c.listen.tls.clientCaPath ? { clientCaPath: abs(c.listen.tls.clientCaPath) } : {}),
          },
        }
      : c.listen,
    identities: {
      client: { certPath: abs(c.identities.client.certPath), keyDir: abs(c.identities.client.keyDir) },
      admin: c.identities.admin && {
        certPath: abs(c.identities.admin.certPath),
        keyDir: abs(c.identities.admin.keyDir),
      },
    },
  };
}
