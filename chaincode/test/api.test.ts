/**
 * The transaction registry (domain/api.ts, exported by @evpay/chaincode/client): it names every
 * transaction of EvPayContract with the schemas the chaincode validates with, and its schemas accept
 * what the other tests send and refuse what the chaincode refuses.
 */
import {
  checkWireArg,
  evpayTransactions,
  toWireArgs,
  transactionJsonSchemas,
  type ArgSpec,
  type EvPayTransactionName,
} from '../src/client';
import { EvPayContract } from '../src/contracts/evpayContract';
import { describeTransactions } from '../src/contracts/metadata';
import { genesis, OPS, Driver, PileDevice } from './support/fixtures';

interface TxMeta {
  name: string;
  tag: string[];
  parameters?: Array<{ name: string; schema: { type?: string; contentSchema?: unknown } }>;
}
const contractTransactions = (): TxMeta[] =>
  (Reflect as unknown as { getMetadata(k: string, t: object): unknown }).getMetadata(
    'fabric:transactions',
    EvPayContract.prototype,
  ) as TxMeta[];
const arg = (tx: EvPayTransactionName, i = 0): ArgSpec => {
  const a: ArgSpec | undefined = evpayTransactions[tx].args[i];
  if (!a) throw new Error(`${tx} has no argument ${i}`);
  return a;
};
const accepts = (tx: EvPayTransactionName, raw: string, i = 0): boolean => checkWireArg(arg(tx, i), raw).ok;

describe('the registry names every transaction of EvPayContract', () => {
  test('its keys are exactly the @Transaction methods, and the prototype has no other method', () => {
    const declared = contractTransactions().map((t) => t.name);
    const methods = Object.getOwnPropertyNames(EvPayContract.prototype).filter((n) => n !== 'constructor');
    expect([...declared].sort()).toEqual(Object.keys(evpayTransactions).sort());
    expect([...methods].sort()).toEqual([...declared].sort());
  });

  test('submit or evaluate, and the arguments in order, as the contract declares them', () => {
    for (const tx of contractTransactions()) {
      const spec = evpayTransactions[tx.name as EvPayTransactionName];
      expect([tx.name, tx.tag.includes('SUBMIT')]).toEqual([tx.name, spec.submit]);
      expect([tx.name, (tx.parameters ?? []).map((p) => p.name)]).toEqual([
        tx.name,
        spec.args.map((a) => a.name),
      ]);
    }
  });

  test('a transaction without an entry, or with other arguments, is refused when the chaincode loads', () => {
    class Extra {}
    const define = (txs: unknown): void =>
      (Reflect as unknown as { defineMetadata(k: string, v: unknown, t: object): void }).defineMetadata(
        'fabric:transactions',
        txs,
        Extra.prototype,
      );
    define([{ name: 'MintMoney', tag: ['SUBMIT'], parameters: [] }]);
    expect(() => describeTransactions(Extra)).toThrow(/MintMoney is missing from the registry/);
    define([
      { name: 'TopUp', tag: ['SUBMIT'], parameters: [{ name: 'amount', schema: { type: 'string' } }] },
    ]);
    expect(() => describeTransactions(Extra)).toThrow(/TopUp: parameters \(amount\) differ/);
  });
});

describe("the registry's schemas are the chaincode's", () => {
  const now = 1_767_225_600; // 2026-01-01
  const driver = new Driver();
  const pile = new PileDevice(`${OPS.A.mspId}.P1`);

  test('they accept the inputs the other tests send', () => {
    expect(accepts('InitConsortium', JSON.stringify(genesis()))).toBe(true);
    expect(accepts('OpenWallet', JSON.stringify({ publicKey: driver.keys.publicKeyHex }))).toBe(true);
    expect(
      accepts('TopUp', JSON.stringify({ walletId: driver.walletId, amountFen: 10_000, reference: 'cash-1' })),
    ).toBe(true);
    const start = {
      authorization: driver.authorize(pile.pileId, 5_000, now + 600),
      startReading: pile.reading('START', 's1', 1_000, now),
    };
    expect(accepts('StartSession', JSON.stringify(start))).toBe(true);
    expect(
      accepts('StopSession', JSON.stringify({ stopReading: pile.reading('STOP', 's1', 9_000, now + 60) })),
    ).toBe(true);
    expect(accepts('BuyBeans', JSON.stringify(driver.buy(OPS.A.mspId, 10, 1_000, now + 600)))).toBe(true);
    expect(accepts('FindSessions', JSON.stringify({ by: 'wallet', walletId: driver.walletId }))).toBe(true);
    expect(accepts('GetPositions', JSON.stringify({ period: 3, mspId: OPS.B.mspId }))).toBe(true);
    expect(accepts('ClosePeriod', '12')).toBe(true);
    expect(accepts('GetSession', pile.pileId, 0) && accepts('GetSession', 's1', 1)).toBe(true);
    expect(accepts('ListAuditRecords', '1', 1)).toBe(true);
    expect(accepts('KeyHistory', 'wallet/abc')).toBe(true);
  });

  test('they refuse what the chaincode refuses', () => {
    const start = {
      authorization: driver.authorize(pile.pileId, 5_000, now + 600),
      startReading: pile.reading('STOP', 's1', 1_000, now), // a START reading is required
    };
    expect(accepts('StartSession', JSON.stringify(start))).toBe(false);
    expect(accepts('OpenWallet', JSON.stringify({ publicKey: driver.keys.publicKeyHex, extra: 1 }))).toBe(
      false,
    );
    expect(
      accepts('TopUp', JSON.stringify({ walletId: driver.walletId, amountFen: 0, reference: 'r' })),
    ).toBe(false);
    expect(accepts('TopUp', '{"walletId":')).toBe(false);
    expect(accepts('InitConsortium', JSON.stringify({ ...genesis(), networkId: 'a/b' }))).toBe(false);
    expect(accepts('ClosePeriod', '-1')).toBe(false);
    expect(accepts('ClosePeriod', '1e3')).toBe(false);
    expect(accepts('ConfirmMargin', 'Org1.MSP')).toBe(false); // no '.' in an MSP id
    expect(accepts('ListAuditRecords', '0', 1)).toBe(false);
    const bad = checkWireArg(arg('TopUp'), JSON.stringify({ walletId: 'x', amountFen: 1, reference: 'r' }));
    expect(bad.ok ? [] : [...new Set(bad.issues.map((i) => i.path.join('.')))]).toEqual(['walletId']); // length and hex
  });

  test('toWireArgs writes what checkWireArg reads back', () => {
    const wire = toWireArgs('GetSession', [pile.pileId, 's1']);
    expect(wire).toEqual([pile.pileId, 's1']);
    const [period] = toWireArgs('GetClearing', [7]);
    expect(checkWireArg(arg('GetClearing'), period ?? '')).toEqual({ ok: true, value: 7 });
    const [vote] = toWireArgs('Vote', [{ proposalId: 'p1', approve: true }]);
    expect(checkWireArg(arg('Vote'), vote ?? '')).toEqual({
      ok: true,
      value: { proposalId: 'p1', approve: true },
    });
  });
});

describe('JSON Schemas for OpenAPI', () => {
  test('every argument of every transaction has one', () => {
    const schemas = transactionJsonSchemas();
    expect(Object.keys(schemas).sort()).toEqual(Object.keys(evpayTransactions).sort());
    for (const [tx, spec] of Object.entries(evpayTransactions)) {
      const byArg = schemas[tx as EvPayTransactionName];
      expect([tx, Object.keys(byArg)]).toEqual([tx, spec.args.map((a) => a.name)]);
      for (const s of Object.values(byArg)) {
        expect(s.$schema).toBeUndefined();
        expect(JSON.stringify(s)).not.toContain('$ref');
        expect(s.type ?? s.anyOf ?? s.oneOf ?? s.allOf).toBeDefined();
      }
    }
  });

  test('they carry the rules: strict objects, bounds, patterns', () => {
    const s = transactionJsonSchemas();
    expect(s.TopUp.topup).toMatchObject({
      type: 'object',
      additionalProperties: false,
      required: expect.arrayContaining(['walletId', 'amountFen', 'reference']) as unknown,
      properties: { walletId: { type: 'string', pattern: '^[0-9a-f]*$', minLength: 64, maxLength: 64 } },
    });
    expect(s.ClosePeriod.period).toMatchObject({ type: 'integer', minimum: 0, maximum: 100_000_000 });
    expect(s.GetPile.pileId).toMatchObject({ type: 'string' });
  });
});
