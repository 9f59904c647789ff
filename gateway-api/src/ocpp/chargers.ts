/**
 * The chargers allowed to connect to this gateway's OCPP endpoint. Each charger id maps to one pile of the
 * operator, and says how the charger proves it is that charger (OCPP security profiles):
 * - profiles 1 and 2: HTTP Basic with the charger id as user name and a password kept only as a scrypt
 *   hash, as API keys are (auth/credentials.ts); profile 2 also demands TLS (wss://);
 * - profile 3: a TLS client certificate that chains to the gateway's `listen.tls.clientCaPath` and whose
 *   subject CN is the charger id (OCPP 2.0.1 security whitepaper); no password.
 * An entry without a profile is a password charger on whatever the listener offers (as before profiles
 * were recorded). Kept in chargers.json in the data dir, written by `evpay-gateway chargers add|remove`,
 * re-read by the running gateway when the file changes, so adding or removing a charger needs no restart.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { pileIdSchema } from '@evpay/chaincode/client';
import { hashSecret, verifySecret } from '../auth/credentials';
import { readJsonFile, writeJsonFileAtomic } from '../store/jsonFile';

/** OCPP's charge point identity in the URL: printable, no '/', at most 48 characters (OCPP 2.0.1). */
export const chargePointIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,48}$/, '1 to 48 of A-Z a-z 0-9 . _ : -');
/** OCPP's AuthorizationKey: 16 to 40 characters (1.6 security whitepaper, 2.0.1 BasicAuthPassword). */
export const chargerPasswordSchema = z.string().min(16).max(40);

export const SECURITY_PROFILES = [1, 2, 3] as const;
export type SecurityProfile = (typeof SECURITY_PROFILES)[number];

const passwordChargerSchema = z
  .object({
    chargePointId: chargePointIdSchema,
    pileId: pileIdSchema,
    securityProfile: z.union([z.literal(1), z.literal(2)]).optional(),
    /** scrypt$N$r$p$salt$hash of the charger's password. */
    hash: z.string().startsWith('scrypt$'),
    createdAt: z.string(),
  })
  .strict();
const certificateChargerSchema = z
  .object({
    chargePointId: chargePointIdSchema,
    pileId: pileIdSchema,
    securityProfile: z.literal(3),
    createdAt: z.string(),
  })
  .strict();
const chargerSchema = z.union([certificateChargerSchema, passwordChargerSchema]);
export type Charger = z.infer<typeof chargerSchema>;
/** A charger as listed: never its hash. */
export type ChargerEntry = Omit<z.infer<typeof passwordChargerSchema>, 'hash'> | Charger;

/** What the TLS layer knows of a connection, read from its socket at the handshake. */
export interface TlsFacts {
  /** The connection is TLS (wss://). */
  encrypted: boolean;
  /** A client certificate was presented and verified against the listener's client CA. */
  authorized: boolean;
  /** The subject CN of the presented client certificate, if any. */
  subjectCN?: string;
}

/** Why a handshake is refused (HTTP status and a reason for the log), or undefined when admitted. */
export type Refusal = { status: 401 | 403; reason: string };

/**
 * Whether the credentials a charger presented are its own, by its security profile. Pure (the password
 * check is the caller's `passwordOk`), so every case is unit-tested. A certificate that verifies but
 * names another charger is 403 (it is somebody, just not this charger); no or an untrusted certificate,
 * or a password where a certificate is due, is 401.
 */
export async function refusal(
  c: Charger | undefined,
  password: Buffer | undefined,
  tls: TlsFacts,
  passwordOk: (password: Buffer, hash: string) => Promise<boolean>,
): Promise<Refusal | undefined> {
  if (!c) return { status: 401, reason: 'unknown charger' };
  if (c.securityProfile === 3) {
    if (!tls.encrypted) return { status: 401, reason: 'profile 3 needs TLS with a client certificate' };
    if (!tls.authorized)
      return {
        status: 401,
        reason: 'profile 3 needs a client certificate from the chargers CA (none, or untrusted)',
      };
    if (tls.subjectCN !== c.chargePointId)
      return { status: 403, reason: `the client certificate is for ${String(tls.subjectCN)}` };
    return undefined;
  }
  if (c.securityProfile === 2 && !tls.encrypted) return { status: 401, reason: 'profile 2 needs TLS' };
  if (!password) return { status: 401, reason: 'no password' };
  return (await passwordOk(password, c.hash)) ? undefined : { status: 401, reason: 'wrong password' };
}
const fileSchema = z.object({ version: z.literal(1), chargers: z.array(chargerSchema) }).strict();
type ChargersFile = z.infer<typeof fileSchema>;

interface NewCharger {
  chargePointId: string;
  pileId: string;
  password?: string;
  securityProfile?: SecurityProfile;
}

export class ChargerStore {
  private readonly file: string;
  private loaded: { stamp: string; byId: Map<string, Charger> } | undefined;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'chargers.json');
  }

  private read(): ChargersFile {
    return readJsonFile(this.file, fileSchema, { version: 1, chargers: [] });
  }

  private current(): Map<string, Charger> {
    let stamp = 'none';
    try {
      const st = statSync(this.file);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      // no file yet: no chargers
    }
    if (this.loaded?.stamp !== stamp)
      this.loaded = { stamp, byId: new Map(this.read().chargers.map((c) => [c.chargePointId, c])) };
    return this.loaded.byId;
  }

  get(chargePointId: string): Charger | undefined {
    return this.current().get(chargePointId);
  }

  /** The charger if what it presented is its own (scrypt, constant time; or its client certificate). */
  async authenticate(
    chargePointId: string,
    password: Buffer | undefined,
    tls: TlsFacts = { encrypted: false, authorized: false },
  ): Promise<{ charger: Charger } | Refusal> {
    const c = this.get(chargePointId);
    const refused = await refusal(c, password, tls, verifySecret);
    return refused ?? { charger: c as Charger };
  }

  list(): ChargerEntry[] {
    return this.read().chargers.map(shown);
  }

  /**
   * Adds (or replaces) a charger. A password charger's password is answered, generated when none is
   * given (shown once); a profile-3 charger has none (its certificate is checked against the CA).
   */
  async add(input: NewCharger & { securityProfile: 3 }): Promise<{ charger: ChargerEntry }>;
  async add(
    input: NewCharger & { securityProfile?: 1 | 2 },
  ): Promise<{ charger: ChargerEntry; password: string }>;
  async add(input: NewCharger): Promise<{ charger: ChargerEntry; password?: string }>;
  async add(input: NewCharger): Promise<{ charger: ChargerEntry; password?: string }> {
    const base = {
      chargePointId: input.chargePointId,
      pileId: input.pileId,
      createdAt: new Date().toISOString(),
    };
    let charger: Charger;
    let password: string | undefined;
    if (input.securityProfile === 3) {
      if (input.password !== undefined) throw new Error('a profile-3 charger has no password');
      charger = certificateChargerSchema.parse({ ...base, securityProfile: 3 });
    } else {
      password = chargerPasswordSchema.parse(input.password ?? randomBytes(24).toString('base64url'));
      charger = passwordChargerSchema.parse({
        ...base,
        ...(input.securityProfile === undefined ? {} : { securityProfile: input.securityProfile }),
        hash: await hashSecret(password),
      });
    }
    const f = this.read();
    f.chargers = [...f.chargers.filter((c) => c.chargePointId !== charger.chargePointId), charger];
    writeJsonFileAtomic(this.file, f);
    return { charger: shown(charger), ...(password === undefined ? {} : { password }) };
  }

  /** Removes a charger; false when there is none. A connected charger keeps its socket until it drops. */
  remove(chargePointId: string): boolean {
    const f = this.read();
    const left = f.chargers.filter((c) => c.chargePointId !== chargePointId);
    if (left.length === f.chargers.length) return false;
    writeJsonFileAtomic(this.file, { ...f, chargers: left });
    return true;
  }
}

const shown = (c: Charger): ChargerEntry => {
  if (c.securityProfile === 3) return c;
  const { hash: _hash, ...rest } = c;
  void _hash;
  return rest;
};
