/**
 * Standing authorizations of RFID cards (domain/standing.ts, STANDING RULE): registered by the card's
 * issuer with the driver's signature, used by StartSession instead of a per-session authorization,
 * bounded per session, in total, in count and in time, revoked by the driver or the issuer.
 */
import { idTagDigest, standingIdOf } from '../src/domain/messages';
import { startSession, stopSession } from '../src/domain/sessions';
import {
  getStanding,
  MAX_STANDING_TTL_SEC,
  registerStanding,
  revokeStanding,
  standingByTag,
} from '../src/domain/standing';
import { registerPile } from '../src/domain/piles';
import { getWallet, openWallet, topUp } from '../src/domain/wallets';
import { MemoryLedger } from './support/ledger';
import { auditor, bootstrap, client, Driver, NETWORK, OPS, PileDevice } from './support/fixtures';

const A = OPS.A.mspId;
const B = OPS.B.mspId;
const DAY = 24 * 3600;
const CARD = 'RFID-04A1B2C3';

async function world() {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const driver = new Driver();
  const a1 = new PileDevice(`${A}.P1`);
  const a2 = new PileDevice(`${A}.P2`);
  const b1 = new PileDevice(`${B}.P1`);
  for (const [op, p] of [
    [A, a1],
    [A, a2],
    [B, b1],
  ] as const)
    await ledger.submit(client(op), (ctx) =>
      registerPile(ctx, { localId: p.localId, publicKey: p.keys.publicKeyHex }),
    );
  await ledger.submit(client(A), (ctx) => openWallet(ctx, { publicKey: driver.keys.publicKeyHex }));
  await ledger.submit(client(A), (ctx) =>
    topUp(ctx, { walletId: driver.walletId, amountFen: 10_000, reference: 'card-r1' }),
  );
  const t = ledger.now;
  // 2000 fen a session, 3500 fen and 3 sessions in all, for 30 days, at Alpha's piles.
  const signed = driver.standing(A, CARD, 2_000, 3_500, 3, t + 30 * DAY, 'card-1');
  const ref = { standingId: driver.standingId('card-1'), idTagSm3: signed.idTagSm3 };
  return { ledger, driver, a1, a2, b1, t, signed, ref };
}

describe('standing authorizations', () => {
  test('good path: registered by the issuer, found by the card digest, two sessions settle against the wallet and the caps', async () => {
    const { ledger, driver, a1, t, signed, ref } = await world();
    const s = await ledger.submit(client(A), (ctx) => registerStanding(ctx, signed));
    expect(s).toMatchObject({ standingId: ref.standingId, status: 'active', sessions: 0, spentFen: 0 });
    // The digest is of the network id and the card id; the raw card id is nowhere on the ledger.
    expect(signed.idTagSm3).toBe(idTagDigest(NETWORK, CARD));
    expect(standingIdOf(driver.walletId, 'card-1')).toBe(ref.standingId);
    expect(JSON.stringify(ledger.entries('standing'))).not.toContain(CARD);
    expect(
      await ledger.evaluate(auditor, (ctx) => standingByTag(ctx, { operator: A, idTagSm3: ref.idTagSm3 })),
    ).toEqual(s);
    await expect(
      ledger.evaluate(auditor, (ctx) => standingByTag(ctx, { operator: B, idTagSm3: ref.idTagSm3 })),
    ).rejects.toMatchObject({ code: 'STANDING_NOT_FOUND' });

    const started = await ledger.submit(client(A), (ctx) =>
      startSession(ctx, { standing: ref, startReading: a1.reading('START', 'c1', 0, t) }),
    );
    expect(started).toMatchObject({ walletId: driver.walletId, capFen: 2_000, standingId: ref.standingId });
    expect((await ledger.evaluate(auditor, (ctx) => getWallet(ctx, driver.walletId))).heldFen).toBe(2_000);
    expect(await ledger.evaluate(auditor, (ctx) => getStanding(ctx, ref.standingId))).toMatchObject({
      sessions: 1,
      spentFen: 0,
      open: { pileId: a1.pileId, sessionId: 'c1' },
    });
    // 10 kWh in the flat period (150 fen/kWh): 1500 fen.
    const stopped = await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: a1.reading('STOP', 'c1', 10_000, t + 600) }),
      t + 600,
    );
    expect(stopped.settlement).toMatchObject({ chargedFen: 1_500 });
    const after = await ledger.evaluate(auditor, (ctx) => getStanding(ctx, ref.standingId));
    expect(after).toMatchObject({ sessions: 1, spentFen: 1_500 });
    expect(after.open).toBeUndefined();
    // The second session may hold only what is left of the total: 3500 - 1500 = 2000 (the session cap too).
    const second = await ledger.submit(
      client(A),
      (ctx) => startSession(ctx, { standing: ref, startReading: a1.reading('START', 'c2', 10_000, t + 700) }),
      t + 700,
    );
    expect(second.capFen).toBe(2_000);
    expect((await ledger.evaluate(auditor, (ctx) => getWallet(ctx, driver.walletId))).balanceFen).toBe(8_500);
  });

  test('a forged signature, an operator that is not the issuer and a replayed registration are refused', async () => {
    const { ledger, driver, signed } = await world();
    const thief = new Driver();
    const forged = { ...thief.standing(A, CARD, 2_000, 3_500, 3, signed.expiresAt, 'card-1') };
    await expect(
      ledger.submit(client(A), (ctx) => registerStanding(ctx, { ...forged, walletId: driver.walletId })),
    ).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
    // A field changed after signing (a higher cap) breaks the signature too.
    await expect(
      ledger.submit(client(A), (ctx) => registerStanding(ctx, { ...signed, capFen: 3_000 })),
    ).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
    // Beta may not register a card the driver bound to Alpha's piles.
    await expect(ledger.submit(client(B), (ctx) => registerStanding(ctx, signed))).rejects.toMatchObject({
      code: 'STANDING_WRONG_OPERATOR',
    });
    await ledger.submit(client(A), (ctx) => registerStanding(ctx, signed));
    await expect(ledger.submit(client(A), (ctx) => registerStanding(ctx, signed))).rejects.toMatchObject({
      code: 'STANDING_EXISTS',
    });
    // Revoked, the same signed registration is still refused: its nonce is spent.
    await ledger.submit(client(A), (ctx) => revokeStanding(ctx, { standingId: driver.standingId('card-1') }));
    await expect(ledger.submit(client(A), (ctx) => registerStanding(ctx, signed))).rejects.toMatchObject({
      code: 'NONCE_REUSED',
    });
    // A new signed registration of the same card replaces the revoked one.
    const renewed = driver.standing(A, CARD, 1_000, 3_000, 2, signed.expiresAt, 'card-2');
    await ledger.submit(client(A), (ctx) => registerStanding(ctx, renewed));
    expect(
      await ledger.evaluate(auditor, (ctx) => standingByTag(ctx, { operator: A, idTagSm3: signed.idTagSm3 })),
    ).toMatchObject({ standingId: driver.standingId('card-2'), status: 'active' });
  });

  test('a pile of another operator, a wrong card digest and an unknown id are refused; nothing is written', async () => {
    const { ledger, driver, b1, a1, t, signed, ref } = await world();
    await ledger.submit(client(A), (ctx) => registerStanding(ctx, signed));
    await expect(
      ledger.submit(client(B), (ctx) =>
        startSession(ctx, { standing: ref, startReading: b1.reading('START', 'x1', 0, t) }),
      ),
    ).rejects.toMatchObject({ code: 'STANDING_WRONG_OPERATOR' });
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          standing: { ...ref, idTagSm3: idTagDigest(NETWORK, 'another card') },
          startReading: a1.reading('START', 'x1', 0, t),
        }),
      ),
    ).rejects.toMatchObject({ code: 'STANDING_TAG_MISMATCH' });
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          standing: { ...ref, standingId: driver.standingId('never') },
          startReading: a1.reading('START', 'x1', 0, t),
        }),
      ),
    ).rejects.toMatchObject({ code: 'STANDING_NOT_FOUND' });
    // Both an authorization and a standing reference, or neither: refused.
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, {
          authorization: driver.authorize(a1.pileId, 1_000, t + 600),
          standing: ref,
          startReading: a1.reading('START', 'x1', 0, t),
        }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      ledger.submit(client(A), (ctx) => startSession(ctx, { startReading: a1.reading('START', 'x1', 0, t) })),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await ledger.evaluate(auditor, (ctx) => getStanding(ctx, ref.standingId))).toMatchObject({
      sessions: 0,
    });
    expect((await ledger.evaluate(auditor, (ctx) => getWallet(ctx, driver.walletId))).heldFen).toBe(0);
  });

  test('expired: refused at registration, after the expiry at start, and beyond 366 days', async () => {
    const { ledger, driver, a1, t, signed, ref } = await world();
    const old = driver.standing(A, CARD, 2_000, 3_500, 3, t - 1, 'card-old');
    await expect(ledger.submit(client(A), (ctx) => registerStanding(ctx, old))).rejects.toMatchObject({
      code: 'STANDING_EXPIRED',
    });
    const tooLong = driver.standing(A, CARD, 2_000, 3_500, 3, t + MAX_STANDING_TTL_SEC + 1, 'card-long');
    await expect(ledger.submit(client(A), (ctx) => registerStanding(ctx, tooLong))).rejects.toMatchObject({
      code: 'STANDING_TOO_LONG',
    });
    await ledger.submit(client(A), (ctx) => registerStanding(ctx, signed));
    const later = signed.expiresAt + 1;
    await expect(
      ledger.submit(
        client(A),
        (ctx) => startSession(ctx, { standing: ref, startReading: a1.reading('START', 'e1', 0, later) }),
        later,
      ),
    ).rejects.toMatchObject({ code: 'STANDING_EXPIRED' });
  });

  test('revoked by the driver (any member submits it) or by the issuer; an open session still settles', async () => {
    const { ledger, driver, a1, t, signed, ref } = await world();
    await ledger.submit(client(A), (ctx) => registerStanding(ctx, signed));
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, { standing: ref, startReading: a1.reading('START', 'r1', 0, t) }),
    );
    // Another operator may not revoke it on its own, nor may a thief sign for the driver.
    await expect(
      ledger.submit(client(B), (ctx) => revokeStanding(ctx, { standingId: ref.standingId })),
    ).rejects.toMatchObject({ code: 'STANDING_WRONG_OPERATOR' });
    const thief = new Driver();
    await expect(
      ledger.submit(client(B), (ctx) =>
        revokeStanding(ctx, { ...thief.revokeStanding(ref.standingId), walletId: driver.walletId }),
      ),
    ).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
    const revoked = await ledger.submit(client(B), (ctx) =>
      revokeStanding(ctx, driver.revokeStanding(ref.standingId)),
    );
    expect(revoked).toMatchObject({ status: 'revoked', revokedBy: 'driver' });
    await expect(
      ledger.submit(client(A), (ctx) => revokeStanding(ctx, { standingId: ref.standingId })),
    ).rejects.toMatchObject({ code: 'STANDING_REVOKED' });
    const s = await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: a1.reading('STOP', 'r1', 2_000, t + 300) }),
      t + 300,
    );
    expect(s.settlement?.chargedFen).toBe(300);
    expect(await ledger.evaluate(auditor, (ctx) => getStanding(ctx, ref.standingId))).toMatchObject({
      spentFen: 300,
      status: 'revoked',
    });
    await expect(
      ledger.submit(
        client(A),
        (ctx) =>
          startSession(ctx, { standing: ref, startReading: a1.reading('START', 'r2', 2_000, t + 400) }),
        t + 400,
      ),
    ).rejects.toMatchObject({ code: 'STANDING_REVOKED' });
  });

  test('caps: a session is charged at most the per-session cap; the total cap and the session count end it', async () => {
    const { ledger, driver, a1, t, ref } = await world();
    // 1500 fen a session, 2000 fen in all, at most 2 sessions.
    const signed = driver.standing(A, CARD, 1_500, 2_000, 2, t + DAY, 'card-1');
    await ledger.submit(client(A), (ctx) => registerStanding(ctx, signed));
    await ledger.submit(client(A), (ctx) =>
      startSession(ctx, { standing: ref, startReading: a1.reading('START', 'k1', 0, t) }),
    );
    // 20 kWh cost 3000 fen: the wallet pays the cap, the rest is the operator's loss.
    const first = await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: a1.reading('STOP', 'k1', 20_000, t + 600) }),
      t + 600,
    );
    expect(first.settlement).toMatchObject({ chargedFen: 1_500, uncollectedFen: 1_500 });
    // What is left of the total (500 fen) bounds the next session.
    const second = await ledger.submit(
      client(A),
      (ctx) => startSession(ctx, { standing: ref, startReading: a1.reading('START', 'k2', 20_000, t + 700) }),
      t + 700,
    );
    expect(second.capFen).toBe(500);
    await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: a1.reading('STOP', 'k2', 40_000, t + 900) }),
      t + 900,
    );
    expect(await ledger.evaluate(auditor, (ctx) => getStanding(ctx, ref.standingId))).toMatchObject({
      sessions: 2,
      spentFen: 2_000,
    });
    await expect(
      ledger.submit(
        client(A),
        (ctx) =>
          startSession(ctx, { standing: ref, startReading: a1.reading('START', 'k3', 40_000, t + 1_000) }),
        t + 1_000,
      ),
    ).rejects.toMatchObject({ code: 'STANDING_EXHAUSTED' });
    expect((await ledger.evaluate(auditor, (ctx) => getWallet(ctx, driver.walletId))).balanceFen).toBe(8_000);
    // The count alone ends it too: one session allowed, a cheap one, then no more.
    const once = driver.standing(A, 'RFID-ONCE', 1_000, 9_000, 1, t + DAY, 'card-once');
    await ledger.submit(client(A), (ctx) => registerStanding(ctx, once));
    const onceRef = { standingId: driver.standingId('card-once'), idTagSm3: once.idTagSm3 };
    await ledger.submit(
      client(A),
      (ctx) =>
        startSession(ctx, { standing: onceRef, startReading: a1.reading('START', 'o1', 40_000, t + 1_100) }),
      t + 1_100,
    );
    await ledger.submit(
      client(A),
      (ctx) => stopSession(ctx, { stopReading: a1.reading('STOP', 'o1', 40_100, t + 1_200) }),
      t + 1_200,
    );
    await expect(
      ledger.submit(
        client(A),
        (ctx) =>
          startSession(ctx, {
            standing: onceRef,
            startReading: a1.reading('START', 'o2', 40_100, t + 1_300),
          }),
        t + 1_300,
      ),
    ).rejects.toMatchObject({ code: 'STANDING_EXHAUSTED' });
  });

  test('two sessions on one card at once: one commits, the other conflicts at commit and is then refused as busy', async () => {
    const { ledger, a1, a2, t, signed, ref } = await world();
    await ledger.submit(client(A), (ctx) => registerStanding(ctx, signed));
    const sims = await Promise.all(
      [a1, a2].map((p) =>
        ledger.simulate(client(A), (ctx) =>
          startSession(ctx, { standing: ref, startReading: p.reading('START', 'twin', 0, t) }),
        ),
      ),
    );
    expect(sims.every((s) => s.ok)).toBe(true);
    expect(ledger.commitBlock(sims)).toEqual(['VALID', 'MVCC_READ_CONFLICT']);
    await expect(
      ledger.submit(client(A), (ctx) =>
        startSession(ctx, { standing: ref, startReading: a2.reading('START', 'twin', 0, t) }),
      ),
    ).rejects.toMatchObject({ code: 'STANDING_BUSY' });
  });
});
