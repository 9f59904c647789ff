/**
 * Every endorsing peer must compute the same result: the same transaction (same id, same timestamp, same
 * committed state) simulated twice gives byte-identical write sets and events, for each kind of state
 * change, including the random red-envelope split and a settlement with beans and a rebate.
 */
import { allocateRebateFloat, buyBeans, creditReward, issueBeans } from '../src/domain/beans';
import { closePeriod } from '../src/domain/clearing';
import { setOperatorPolicy } from '../src/domain/consortium';
import type { TxContext } from '../src/domain/context';
import { claimEnvelope, createEnvelope } from '../src/domain/envelopes';
import { registerPile } from '../src/domain/piles';
import { startSession, stopSession } from '../src/domain/sessions';
import { sealAudit } from '../src/domain/audit';
import { openWallet, topUp } from '../src/domain/wallets';
import type { Caller } from '../src/domain/context';
import { MemoryLedger, type Simulation } from './support/ledger';
import { admin, bootstrap, client, Driver, OPS, PileDevice } from './support/fixtures';

const B = OPS.B.mspId;

function fingerprint(sim: Simulation<unknown>): string {
  const writes = [...sim.writes.entries()].map(([k, v]) => [
    k,
    v === null ? null : Buffer.from(v).toString('hex'),
  ]);
  return JSON.stringify({ ok: sim.ok, writes, events: sim.events, result: sim.result });
}

async function endorseTwice<T>(
  ledger: MemoryLedger,
  caller: Caller,
  fn: (ctx: TxContext) => Promise<T>,
  now = ledger.now,
): Promise<T> {
  const txId = ledger.nextTxId();
  const peer1 = await ledger.simulate(caller, fn, now, txId);
  const peer2 = await ledger.simulate(caller, fn, now, txId);
  expect(peer1.ok).toBe(true);
  expect(fingerprint(peer2)).toBe(fingerprint(peer1));
  expect(ledger.commitBlock([peer1])).toEqual(['VALID']);
  return peer1.result as T;
}

test('the same transaction endorsed on two peers writes the same bytes', async () => {
  const ledger = new MemoryLedger();
  await bootstrap(ledger);
  const t = ledger.now;
  const driver = new Driver();
  const friend = new Driver();
  const pile = new PileDevice(`${B}.D1`);
  await endorseTwice(ledger, client(B), (ctx) =>
    registerPile(ctx, { localId: pile.localId, publicKey: pile.keys.publicKeyHex }),
  );
  for (const d of [driver, friend])
    await endorseTwice(ledger, client(B), (ctx) => openWallet(ctx, { publicKey: d.keys.publicKeyHex }));
  await endorseTwice(ledger, client(B), (ctx) =>
    topUp(ctx, { walletId: driver.walletId, amountFen: 9_000, reference: 'p1' }),
  );
  await endorseTwice(ledger, client(B), (ctx) => creditReward(ctx, B, 'r1', 10_000));
  await endorseTwice(ledger, admin(B), (ctx) => issueBeans(ctx, { beans: 100, reference: 'i1' }));
  await endorseTwice(ledger, admin(B), (ctx) =>
    setOperatorPolicy(ctx, { rebateWhPerBean: 2_000, beanSalePriceFen: 50 }),
  );
  await endorseTwice(ledger, admin(B), (ctx) =>
    allocateRebateFloat(ctx, { pileId: pile.pileId, beans: 20, reference: 'f1' }),
  );
  // Signed inputs are made once, as a client would send the same proposal to every peer.
  const purchase = driver.buy(B, 3, 150, t + 60);
  await endorseTwice(ledger, client(B), (ctx) => buyBeans(ctx, purchase));
  const env = await endorseTwice(ledger, admin(B), (ctx) =>
    createEnvelope(ctx, {
      envelopeId: 'lucky',
      totalBeans: 50,
      claimants: 5,
      split: 'random',
      expiresAt: t + 3600,
    }),
  );
  expect(new Set(env.amounts).size).toBeGreaterThan(1); // really random-looking, yet identical on both peers
  const claim = friend.claim('lucky', t + 3600);
  await endorseTwice(ledger, client(B), (ctx) => claimEnvelope(ctx, claim));
  const start = {
    authorization: driver.authorize(pile.pileId, 4_000, t + 600, undefined, 10),
    startReading: pile.reading('START', 's1', 0, t),
  };
  await endorseTwice(ledger, client(B), (ctx) => startSession(ctx, start));

  const stop = { stopReading: pile.reading('STOP', 's1', 9_500, t + 5_400) };
  const s = await endorseTwice(ledger, client(B), (ctx) => stopSession(ctx, stop), t + 5_400);
  // 9.5 kWh, 3 of them paid with beans: the rebate counts the 6.5 kWh paid in money (2 kWh per bean).
  expect(s.settlement).toMatchObject({ beansUsed: 3, rebateBeans: 3 });
  await endorseTwice(ledger, client(B), (ctx) => sealAudit(ctx, B), t + 5_400);
  const period = Math.floor((t + 8 * 3600) / 86_400);
  await endorseTwice(ledger, client(B), (ctx) => closePeriod(ctx, period), t + 2 * 86_400);
});
