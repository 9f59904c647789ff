/**
 * The topology file and what is rendered from it, without starting anything: consenter order by English
 * name, the endorsement policy, port clashes, `extends`, and the committed crypto-config.yaml in sync.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cryptoConfig, endorsementPolicy } from '../network/tools/render';
import { genesisDocument, loadTopology, orderers, peers, toMs } from '../network/tools/topology';
import { initSchema } from '../chaincode/src/domain/consortium';

const ROOT = join(__dirname, '..');
const DEFAULT = join(ROOT, 'network', 'topology.json');
const base = JSON.parse(readFileSync(DEFAULT, 'utf8')) as Record<string, unknown> & {
  operators: Array<Record<string, unknown>>;
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'evpay-topology-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const write = (doc: unknown, name = 'topology.json'): string => {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(doc));
  return file;
};

test('crypto-config/crypto-config.yaml is the rendering of network/topology.json (edit the topology, not the yaml)', () => {
  expect(readFileSync(join(ROOT, 'crypto-config', 'crypto-config.yaml'), 'utf8')).toBe(
    cryptoConfig(loadTopology(DEFAULT)),
  );
});

test("consenter ids follow the operators' English names, whatever their order in the file", () => {
  const shuffled = { ...base, operators: [...base.operators].reverse() };
  const t = loadTopology(write(shuffled));
  expect(orderers(t).map((o) => [o.consenterId, o.orgName])).toEqual([
    [1, 'Alpha Charge'],
    [2, 'Beta Power'],
    [3, 'Cetus Energy'],
    [4, 'Delta Grid'],
  ]);
});

test("the genesis document is valid and names the auditor organization as the pool's custodian", () => {
  const t = loadTopology(DEFAULT);
  const doc = initSchema.parse(genesisDocument(t));
  expect(doc.auditorMspIds).toEqual([t.auditor.mspId]);
  expect(doc.custodianMspId).toBe(t.auditor.mspId);
  expect(doc.operators.map((o) => o.mspId)).not.toContain(doc.custodianMspId);
});

test('the endorsement policy is a majority of the operators, never the auditor', () => {
  const t = loadTopology(DEFAULT);
  expect(endorsementPolicy(t)).toBe(
    "OutOf(3,'AlphaMSP.peer','BetaMSP.peer','CetusMSP.peer','DeltaMSP.peer')",
  );
  const five = {
    ...base,
    operators: [
      ...base.operators,
      {
        name: 'Echo Volt',
        mspId: 'EchoMSP',
        ordererMspId: 'EchoOrdererMSP',
        domain: 'echo.evpay.local',
        peer: { port: 7451, chaincodePort: 7452, operationsPort: 9445 },
        orderer: { port: 7450, adminPort: 7453, operationsPort: 9455 },
        gateway: { port: 8085 },
      },
    ],
  };
  const t5 = loadTopology(write(five));
  expect(endorsementPolicy(t5)).toMatch(/^OutOf\(3,/);
  expect(peers(t5).filter((p) => p.endorser)).toHaveLength(5);
  expect(orderers(t5).map((o) => o.consenterId)).toEqual([1, 2, 3, 4, 5]);
});

test('a port used twice is named with both of its users', () => {
  const clash = structuredClone(base);
  (clash.operators[1] as { peer: { port: number } }).peer.port = 7051;
  expect(() => loadTopology(write(clash))).toThrow(
    /port 7051 is used by both Alpha Charge peer port and Beta Power peer port/,
  );
});

test("a bad field is named; the block interval may not exceed 1 s (the paper's t)", () => {
  const bad = structuredClone(base) as unknown as { ordering: { smartBFT: Record<string, unknown> } };
  bad.ordering.smartBFT.requestBatchMaxInterval = '2s';
  expect(() => loadTopology(write(bad))).toThrow(/ordering\.smartBFT\.requestBatchMaxInterval: at most 1s/);
  expect(toMs('100ms')).toBe(100);
  expect(toMs('3m0s')).toBe(180_000);
});

test('extends: a second network overrides only what it names, and shifts every port', () => {
  const parent = write(base, 'parent.json');
  const child = write({
    extends: parent,
    name: 'second',
    portOffset: 1000,
    consortium: { params: { clearingPeriodSec: 60 } },
  });
  const t = loadTopology(child);
  expect(t.name).toBe('second');
  expect((t.consortium.params as { clearingPeriodSec: number; marginFen: number }).clearingPeriodSec).toBe(
    60,
  );
  expect((t.consortium.params as { marginFen: number }).marginFen).toBe(1_000_000);
  expect(peers(t)[0]?.port).toBe(8051);
  expect(orderers(t)[0]?.adminPort).toBe(8053);
});
