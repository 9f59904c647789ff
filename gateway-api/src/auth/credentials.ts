/**
 * API-key credentials issued by the operator that runs this gateway. Keys look like
 * `evk_<id>_<secret>`; only a scrypt hash of the secret is stored (credentials.json in the data dir,
 * written atomically by `evpay-gateway credentials ...`, re-read by the running gateway when it changes,
 * so creating or revoking one needs no restart). A key verified once is remembered in memory by a fast
 * digest, so the slow hash is paid once per key and process, not per request.
 */
import {
  createHash,
  randomBytes,
  scrypt as scryptCb,
  timingSafeEqual,
  type BinaryLike,
  type ScryptOptions,
} from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { pileIdSchema } from '@evpay/chaincode/client';

/** Who may do what (ROLES RULE, see routes.ts for each route's roles). */
export const ROLES = ['pile-backend', 'driver-app', 'operator-admin', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

const credentialSchema = z
  .object({
    id: z.string().regex(/^[0-9a-f]{16}$/),
    name: z.string().min(1).max(100),
    role: z.enum(ROLES),
    /** For a pile backend: the piles it may act for (all of the operator's when absent). */
    piles: z.array(pileIdSchema).max(10_000).optional(),
    /** scrypt$N$r$p$salt(base64)$hash(base64) */
    hash: z.string().startsWith('scrypt$'),
    createdAt: z.string(),
    revokedAt: z.string().optional(),
  })
  .strict();
export type Credential = z.infer<typeof credentialSchema>;

const fileSchema = z.object({ version: z.literal(1), credentials: z.array(credentialSchema) }).strict();
type CredentialsFile = z.infer<typeof fileSchema>;

// Slow hash parameters (about 50-100 ms on a server core); stored with each hash so they can be raised.
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 32 } as const;

function scrypt(secret: BinaryLike, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(secret, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** A slow scrypt hash of a secret, with its parameters (also the chargers' passwords: ocpp/chargers.ts). */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keylen } = SCRYPT;
  const key = await scrypt(secret, salt, keylen, { N, r, p, maxmem: 128 * N * r * 2 });
  return ['scrypt', N, r, p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifySecret(secret: BinaryLike, stored: string): Promise<boolean> {
  const [, n, r, p, salt, hash] = stored.split('$');
  if (!n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const N = Number(n);
  const got = await scrypt(secret, Buffer.from(salt, 'base64'), expected.length, {
    N,
    r: Number(r),
    p: Number(p),
    maxmem: 128 * N * Number(r) * 2,
  });
  return got.length === expected.length && timingSafeEqual(got, expected);
}

const KEY_PATTERN = /^evk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface Principal {
  id: string;
  name: string;
  role: Role;
  piles?: readonly string[];
}

export class CredentialStore {
  private readonly file: string;
  private loaded: { mtimeMs: number; size: number; byId: Map<string, Credential> } | undefined;
  /** id → SHA-256 of a secret already verified with scrypt (cleared when the file changes). */
  private readonly verified = new Map<string, Buffer>();

  constructor(dataDir: string) {
    this.file = join(dataDir, 'credentials.json');
  }

  private read(): CredentialsFile {
    if (!existsSync(this.file)) return { version: 1, credentials: [] };
    return fileSchema.parse(JSON.parse(readFileSync(this.file, 'utf8')));
  }

  /** The current credentials, re-read when the file changed on disk. */
  private current(): Map<string, Credential> {
    const st = existsSync(this.file) ? statSync(this.file) : undefined;
    const stamp = { mtimeMs: st?.mtimeMs ?? 0, size: st?.size ?? 0 };
    if (!this.loaded || this.loaded.mtimeMs !== stamp.mtimeMs || this.loaded.size !== stamp.size) {
      const byId = new Map(this.read().credentials.map((c) => [c.id, c]));
      this.loaded = { ...stamp, byId };
      this.verified.clear();
    }
    return this.loaded.byId;
  }

  /** The principal of a presented API key, or undefined when it is unknown, wrong or revoked. */
  async authenticate(apiKey: string): Promise<Principal | undefined> {
    const m = KEY_PATTERN.exec(apiKey);
    if (!m) return undefined;
    const [, id, secret] = m as unknown as [string, string, string];
    const cred = this.current().get(id);
    if (!cred || cred.revokedAt) return undefined;
    const digest = createHash('sha256').update(secret).digest();
    const known = this.verified.get(id);
    if (known) {
      if (!timingSafeEqual(known, digest)) return undefined;
    } else {
      if (!(await verifySecret(secret, cred.hash))) return undefined;
      this.verified.set(id, digest);
    }
    return { id: cred.id, name: cred.name, role: cred.role, ...(cred.piles ? { piles: cred.piles } : {}) };
  }

  list(): Credential[] {
    return this.read().credentials;
  }

  /** Creates a credential and returns its API key (shown once: only its hash is kept). */
  async create(input: {
    name: string;
    role: Role;
    piles?: string[];
  }): Promise<{ credential: Credential; apiKey: string }> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const credential = credentialSchema.parse({
      id,
      name: input.name,
      role: input.role,
      ...(input.piles && input.piles.length > 0 ? { piles: input.piles } : {}),
      hash: await hashSecret(secret),
      createdAt: new Date().toISOString(),
    });
    this.update((f) => f.credentials.push(credential));
    return { credential, apiKey: `evk_${id}_${secret}` };
  }

  /** Revokes a credential by id (kept, marked revoked). False when there is no such credential. */
  revoke(id: string): boolean {
    let found = false;
    this.update((f) => {
      const c = f.credentials.find((x) => x.id === id);
      if (c && !c.revokedAt) c.revokedAt = new Date().toISOString();
      found = c !== undefined;
    });
    return found;
  }

  /** Read-modify-write under an exclusive lock file, replaced atomically (rename). */
  private update(change: (f: CredentialsFile) => void): void {
    mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
    const lock = `${this.file}.lock`;
    let fd: number | undefined;
    const deadline = Date.now() + 5_000;
    while (fd === undefined) {
      try {
        fd = openSync(lock, 'wx');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline)
          throw new Error(`cannot lock ${lock} (remove it if no other evpay-gateway command runs)`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      }
    }
    try {
      const f = this.read();
      change(f);
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, JSON.stringify(f, null, 2) + '\n', { mode: 0o600 });
      renameSync(tmp, this.file);
    } finally {
      closeSync(fd);
      unlinkSync(lock);
    }
  }
}
