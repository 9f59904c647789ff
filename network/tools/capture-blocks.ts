/**
 * Captures real blocks of a running network as test fixtures for the reward rules:
 *   npx tsx network/tools/capture-blocks.ts <network> <fromBlock> <count> <out.json>
 * Writes each block's evidence (as the reward keeper sends it), its data (base64), the consenters'
 * certificates and the channel id, so unit tests check the chaincode's rules against what real SmartBFT
 * orderers wrote (views, signers, leaders), not against hand-made bytes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { evidenceOf } from '../../gateway-api/src/rewards/evidence';
import { connectAs } from './client';
import { readNetwork } from './network';

async function main(): Promise<void> {
  const [name, from, count, out] = process.argv.slice(2);
  if (!name || !from || !count || !out)
    throw new Error('usage: capture-blocks.ts <network> <fromBlock> <count> <out.json>');
  const net = readNetwork(name);
  const op = net.orgs.find((o) => o.role === 'operator');
  if (!op) throw new Error('no operator');
  const conn = connectAs(net, op.mspId, 'client');
  const blocks = [];
  const events = await conn.network.getBlockEvents({ startBlock: BigInt(from) });
  try {
    for await (const b of events) {
      const { evidence, data } = evidenceOf(b);
      blocks.push({ evidence, data: Buffer.from(data).toString('base64') });
      if (blocks.length >= Number(count)) break;
    }
  } finally {
    events.close();
    conn.close();
  }
  const consenters = net.orderers.map((o) => ({
    consenterId: o.consenterId,
    ordererMspId: o.mspId,
    operator: o.operator,
    certificate: readFileSync(o.signCert, 'utf8'),
  }));
  writeFileSync(
    out,
    `${JSON.stringify({ channel: net.channel, capturedAt: Math.floor(Date.now() / 1000), consenters, blocks }, null, 1)}\n`,
  );
  process.stdout.write(`${blocks.length} blocks written to ${out}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`capture-blocks: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
