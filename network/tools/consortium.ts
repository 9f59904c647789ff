/**
 * Consortium bootstrap and readiness, through the Fabric Gateway (used by network/up.sh):
 *   init <network>   InitConsortium with run/<network>/config/genesis.json, as an admin of the first
 *                    operator in name order, unless the consortium already exists. Every operator's peers
 *                    pinned that document's SM3 digest (EVPAY_GENESIS_SM3), so no other document, and no
 *                    member acting alone, can be endorsed: the majority policy needs several pins to agree.
 *   ready <network>  a transaction endorsed by a majority of operators, ordered and committed VALID; prints
 *                    its block number so the caller can wait for every peer to reach it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chaincodeError, committedOnEveryPeer, connectAs, evaluate, submit, whenEndorsable } from './client';
import { readNetwork } from './network';

async function main(): Promise<void> {
  const [cmd, name] = process.argv.slice(2);
  if ((cmd !== 'init' && cmd !== 'ready') || !name)
    throw new Error('usage: consortium.ts init|ready <network>');
  const net = readNetwork(name);
  const first = net.orderers.find((o) => o.consenterId === 1);
  const founder = net.orgs.find((o) => o.role === 'operator' && o.name === first?.operator) ?? net.orgs[0];
  if (!founder) throw new Error('no operator in the network');
  const conn = connectAs(net, founder.mspId, cmd === 'init' ? 'admin' : 'client');
  try {
    if (cmd === 'init') {
      try {
        const c = await evaluate<{ consortium: { genesisSm3: string } }>(conn, 'GetConsortium');
        process.stdout.write(`consortium already initialized (genesis SM3 ${c.consortium.genesisSm3})\n`);
        return;
      } catch (e) {
        if (chaincodeError(e)?.code !== 'CONSORTIUM_NOT_INITIALIZED') throw e;
      }
      const genesis = readFileSync(join(net.runDir, 'config', 'genesis.json'), 'utf8');
      const r = await whenEndorsable(() => submit<{ genesisSm3: string }>(conn, 'InitConsortium', genesis));
      await committedOnEveryPeer(net, r.blockNumber);
      process.stdout.write(
        `InitConsortium by ${founder.mspId} committed in block ${r.blockNumber} (tx ${r.txId}, genesis SM3 ${r.result.genesisSm3})\n`,
      );
    } else {
      const r = await whenEndorsable(() => submit<unknown>(conn, 'GetConsortium'));
      process.stdout.write(`${r.blockNumber}\t${r.txId}\n`);
    }
  } finally {
    conn.close();
  }
}

main().catch((e: unknown) => {
  const cc = chaincodeError(e);
  process.stderr.write(
    `consortium: ${cc ? `${cc.code}: ${cc.message}` : e instanceof Error ? e.message : String(e)}\n`,
  );
  process.exit(1);
});
