/**
 * Electric beans on the running network, backed by real block rewards (the reward keepers in the
 * operators' gateways claim every block from its evidence): B issues beans up to what its consenter
 * earned, a driver topped up at A earns B's beans as a rebate charging at B's pile, redeems them at B
 * but not at A, and a red envelope of B's beans is claimed by three wallets, once each. Every call goes
 * through the calling organization's own identity and peer; waits are on conditions.
 */
import type { Session } from '../../chaincode/src/domain/sessions';
import type { WitnessHead } from '../../chaincode/src/domain/rewards';
import { Driver, PileDevice } from '../../chaincode/test/support/fixtures';
import {
  chaincodeError,
  committedOnEveryPeer,
  evaluate,
  submit,
  whenEndorsable,
  type Connection,
} from '../../network/tools/client';
import { loadTopology } from '../../network/tools/topology';
import { sm2GenerateKeyPair } from '../../chaincode/src/crypto';
import { connections, net, TOPOLOGY, waitFor } from './support/fabric';
import { marginsPaid } from './support/margins';

jest.setTimeout(240_000);

const params = loadTopology(TOPOLOGY).consortium.params as { beanWh: number; beanFaceValueFen: number };
const operators = net.orgs.filter((o) => o.role === 'operator');
const [A, B] = operators.map((o) => o.mspId) as [string, string];
const AUDITOR = net.orgs.find((o) => o.role === 'auditor')?.mspId ?? 'AuditorMSP';
const RUN = Date.now().toString(36).toUpperCase();
const NETWORK_ID = loadTopology(TOPOLOGY).consortium.networkId;
const nowSec = (): number => Math.floor(Date.now() / 1000);
const json = (v: unknown): string => JSON.stringify(v);

const as = connections();
afterAll(as.closeAll);

/** Submits, and waits until every peer has the block (the next step may be endorsed anywhere). */
async function tx<T>(conn: Connection, fn: string, ...args: string[]): Promise<T> {
  try {
    const r = await whenEndorsable(() => submit<T>(conn, fn, ...args));
    await committedOnEveryPeer(net, r.blockNumber);
    return r.result;
  } catch (e) {
    const err = chaincodeError(e);
    throw err ? new Error(`${fn} refused: ${err.code}: ${err.message}`) : e;
  }
}
async function refused(conn: Connection, fn: string, ...args: string[]): Promise<string> {
  try {
    await whenEndorsable(() => submit(conn, fn, ...args));
  } catch (e) {
    return chaincodeError(e)?.code ?? String(e);
  }
  return 'committed';
}

const driver = new Driver();
const pileA = new PileDevice(`${A}.BA${RUN}`);
const pileB = new PileDevice(`${B}.BB${RUN}`);
driver.network = NETWORK_ID;
for (const p of [pileA, pileB]) p.network = NETWORK_ID;
let a: Connection, b: Connection, bAdmin: Connection, auditor: Connection;
const beansOf = async (walletId: string, issuer: string): Promise<number> =>
  (
    await evaluate<{ beans: Array<{ issuer: string; beans: number }> }>(auditor, 'GetWallet', walletId)
  ).beans.find((x) => x.issuer === issuer)?.beans ?? 0;

beforeAll(async () => {
  a = as(A);
  b = as(B);
  bAdmin = as(B, 'admin');
  auditor = as(AUDITOR);
  // The pool pays rewards only once margins are in.
  await marginsPaid();
});

test("B's rewards, earned by its consenter and witnessed from block evidence, back B's bean issuance, and no more", async () => {
  const wanted = 40;
  // Business blocks until B's earned rewards back `wanted` beans (a few blocks at the tests' reward).
  await waitFor(
    `rewards backing ${wanted} of B's beans`,
    async () => {
      const s = await evaluate<{ remaining: number }>(auditor, 'GetIssuance', B);
      if (s.remaining >= wanted) return true;
      const r = await whenEndorsable(() =>
        submit(a, 'OpenWallet', json({ publicKey: sm2GenerateKeyPair().publicKeyHex })),
      );
      await waitFor(`block ${r.blockNumber} witnessed`, async () => {
        const h = await evaluate<WitnessHead>(auditor, 'GetWitnessHead');
        return BigInt(h.block) >= r.blockNumber ? true : undefined;
      });
      return undefined;
    },
    180_000,
  );
  const before = await evaluate<{
    rewardsFen: number;
    issued: number;
    remaining: number;
    backingUsedFen: number;
  }>(auditor, 'GetIssuance', B);
  expect(before.rewardsFen - before.backingUsedFen).toBeGreaterThanOrEqual(wanted * params.beanFaceValueFen);
  expect(
    await refused(bAdmin, 'IssueBeans', json({ beans: before.remaining + 1, reference: `over-${RUN}` })),
  ).toBe('ISSUANCE_LIMIT_EXCEEDED');
  const after = await tx<{ issued: number }>(
    bAdmin,
    'IssueBeans',
    json({ beans: wanted, reference: `issue-${RUN}` }),
  );
  expect(after.issued).toBe(before.issued + wanted);
  // B's rebate: one bean per 5 kWh paid in money, from its pile's float.
  await tx(bAdmin, 'SetOperatorPolicy', json({ rebateWhPerBean: 5_000, beanSalePriceFen: 90 }));
  await tx(b, 'RegisterPile', json({ localId: pileB.localId, publicKey: pileB.keys.publicKeyHex }));
  await tx(a, 'RegisterPile', json({ localId: pileA.localId, publicKey: pileA.keys.publicKeyHex }));
  await tx(
    bAdmin,
    'AllocateRebateFloat',
    json({ pileId: pileB.pileId, beans: 20, reference: `float-${RUN}` }),
  );
  await tx(a, 'OpenWallet', json({ publicKey: driver.keys.publicKeyHex }));
  await tx(a, 'TopUp', json({ walletId: driver.walletId, amountFen: 10_000, reference: `beans-pay-${RUN}` }));
});

test("charging 20 kWh at B's pile earns 4 of B's beans", async () => {
  const t = nowSec();
  await tx(
    b,
    'StartSession',
    json({
      authorization: driver.authorize(pileB.pileId, 5_000, t + 600, `bn-${RUN}-1`),
      startReading: pileB.reading('START', 's1', 0, t),
    }),
  );
  await waitFor('the next second', async () => nowSec() > t);
  const s = await tx<Session>(
    b,
    'StopSession',
    json({ stopReading: pileB.reading('STOP', 's1', 20_000, nowSec()) }),
  );
  expect(s.settlement).toMatchObject({ energyWh: 20_000, beansUsed: 0, chargedFen: 3_000, rebateBeans: 4 });
  expect(await beansOf(driver.walletId, B)).toBe(4);
});

test("B's beans are redeemed at B's pile, and not at A's: there the wallet pays in full", async () => {
  let t = nowSec();
  await tx(
    b,
    'StartSession',
    json({
      authorization: driver.authorize(pileB.pileId, 1_000, t + 600, `bn-${RUN}-2`, 10),
      startReading: pileB.reading('START', 's2', 20_000, t),
    }),
  );
  await waitFor('the next second', async () => nowSec() > t);
  const atB = await tx<Session>(
    b,
    'StopSession',
    json({ stopReading: pileB.reading('STOP', 's2', 23_500, nowSec()) }),
  );
  // 3.5 kWh at 150 fen/kWh = 525 fen; 3 whole beans cover 3 kWh (450 fen); the wallet pays 75.
  const beansUsed = Math.floor(3_500 / params.beanWh);
  expect(atB.settlement).toMatchObject({
    energyWh: 3_500,
    beansUsed,
    chargedFen: 525 - beansUsed * 150,
    rebateBeans: 0,
  });
  expect(await beansOf(driver.walletId, B)).toBe(4 - beansUsed);
  t = nowSec();
  await tx(
    a,
    'StartSession',
    json({
      authorization: driver.authorize(pileA.pileId, 2_000, t + 600, `bn-${RUN}-3`, 10),
      startReading: pileA.reading('START', 'a1', 1_000, t),
    }),
  );
  await waitFor('the next second', async () => nowSec() > t);
  const atA = await tx<Session>(
    a,
    'StopSession',
    json({ stopReading: pileA.reading('STOP', 'a1', 6_000, nowSec()) }),
  );
  expect(atA.settlement).toMatchObject({ energyWh: 5_000, beansUsed: 0, chargedFen: 750 });
  expect(await beansOf(driver.walletId, B)).toBe(4 - beansUsed);
});

test("a red envelope of 9 of B's beans is claimed by three wallets, once each; a fourth finds it empty", async () => {
  const friends = [new Driver(), new Driver(), new Driver()];
  for (const f of friends) {
    f.network = NETWORK_ID;
    await tx(b, 'OpenWallet', json({ publicKey: f.keys.publicKeyHex }));
  }
  const exp = nowSec() + 3_600;
  const envelopeId = `ny-${RUN}`;
  const env = await tx<{ amounts: number[] }>(
    bAdmin,
    'CreateEnvelope',
    json({ envelopeId, totalBeans: 9, claimants: 3, split: 'random', expiresAt: exp }),
  );
  expect(env.amounts.reduce((x, y) => x + y, 0)).toBe(9);
  const got: number[] = [];
  for (const f of friends)
    got.push((await tx<{ beans: number }>(a, 'ClaimEnvelope', json(f.claim(envelopeId, exp)))).beans);
  expect([...got].sort()).toEqual([...env.amounts].sort());
  expect(await refused(a, 'ClaimEnvelope', json((friends[0] as Driver).claim(envelopeId, exp)))).toBe(
    'ENVELOPE_ALREADY_CLAIMED',
  );
  expect(await refused(a, 'ClaimEnvelope', json(driver.claim(envelopeId, exp)))).toBe('ENVELOPE_EMPTY');
  for (const [i, f] of friends.entries()) expect(await beansOf(f.walletId, B)).toBe(got[i]);
});
