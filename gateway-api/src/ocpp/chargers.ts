/**
 * The chargers allowed to connect to this gateway's OCPP endpoint (security profiles 1 and 2: HTTP Basic
 * with the charger id as user name). Each charger id maps to one pile of the operator; its password is
 * kept only as a scrypt hash, as API keys are (auth/credentials.ts), in chargers.json in the data dir.
 * Written by `evpay-gateway chargers add|remove`, re-read by the running gateway when the file changes,
 * so adding or removing a charger needs no restart.
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

const chargerSchema = z
  .object({
    chargePointId: chargePointIdSchema,
    pileId: pileIdSchema,
    /** scrypt$N$r$p$salt$hash of the charger's password. */
    hash: z.string().startsWith('scrypt$'),
    createdAt: z.string(),
  })
  .strict();
export type Charger = z.infer<typeof chargerSchema>;
const fileSchema = z.object({ version: z.literal(1), chargers: z.array(chargerSchema) }).strict();
type ChargersFile = z.infer<typeof fileSchema>;

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

  /** The charger if the password is its own (scrypt, constant time). */
  async authenticate(chargePointId: string, password: Buffer | undefined): Promise<Charger | undefined> {
    const c = this.get(chargePointId);
    if (!c || !password) return undefined;
    return (await verifySecret(password, c.hash)) ? c : undefined;
  }

  list(): Array<Omit<Charger, 'hash'>> {
    return this.read().chargers.map(({ chargePointId, pileId, createdAt }) => ({
      chargePointId,
      pileId,
      createdAt,
    }));
  }

  /** Adds (or replaces) a charger; answers its password, generated when none is given (shown once). */
  async add(input: { chargePointId: string; pileId: string; password?: string }): Promise<{
    charger: Omit<Charger, 'hash'>;
    password: string;
  }> {
    const password = chargerPasswordSchema.parse(input.password ?? randomBytes(24).toString('base64url'));
    const charger = chargerSchema.parse({
      chargePointId: input.chargePointId,
      pileId: input.pileId,
      hash: await hashSecret(password),
      createdAt: new Date().toISOString(),
    });
    const f = this.read();
    f.chargers = [...f.chargers.filter((c) => c.chargePointId !== charger.chargePointId), charger];
    writeJsonFileAtomic(this.file, f);
    const { hash: _hash, ...shown } = charger;
    void _hash;
    return { charger: shown, password };
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
