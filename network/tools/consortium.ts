/**
 * Consortium bootstrap and readiness, through the Fabric Gateway (used by network/up.sh):
 *   init <network>   InitConsortium with run/<network>/config/genesis.json, as an admin of the first
 *                    operator in name order, unless the consortium already exists. Every operator's peers
 *                    pinned that document's SM3 digest (EVPAY_GENESIS_SM3), so no other document, and no
 *                    member acting alone, can be endorsed: the majority policy needs several pins to agree.
 *   consenters <network>  each operator's admin registers its orderer's consenter id and certificate
 *                    (the ones the channel configuration names) with RegisterConsenter, unless already
 *                    registered with that certificate: block rewards are verified against them.
 *   ready <network>  a transaction endorsed by a majority of operators, ordered and committed VALID; prints
 *                    its block number so the caller can wait for every peer to reach it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chaincodeError, committedOnEveryPeer, connectAs, evaluate, submit, whenEndorsable } from './client';
import { readNetwork, type NetworkDescription } from './network';

async function registerConsenters(net: NetworkDescription): Promise<void> {
  let last = -1n;
  for (const o of net.orderers) {
    const op = net.orgs.find((x) => x.role === 'operator' && x.name === o.operator);
    if (!op) throw new Error(`no operator named ${o.operator}`);
    const conn = connectAs(net, op.mspId, 'admin');
    try {
      const certificate = readFileSync(o.signCert, 'utf8');
      const known = await evaluate<Array<{ consenterId: number; certificate: string }>>(
        conn,
        'GetConsenters',
      );
      if (known.some((c) => c.consenterId === o.consenterId && c.certificate === certificate)) continue;
      const r = await whenEndorsable(() =>
        submit<{ fingerprint: string }>(
          conn,
          'RegisterConsenter',
          JSON.stringify({ consenterId: o.consenterId, ordererMspId: o.mspId, certificate }),
        ),
      );
      last = r.blockNumber > last ? r.blockNumber : last;
      process.stdout.write(
        `consenter ${o.consenterId} of ${op.mspId} registered (certificate SHA-256 ${r.result.fingerprint})\n`,
      );
    } finally {
      conn.close();
    }
  }
  if (last >= 0n) await committedOnEveryPeer(net, last);
}

async function main(): Promise<void> {
  const [cmd, name] = process.argv.slice(2);
  if ((cmd !== 'init' && cmd !== 'ready' && cmd !== 'consenters') || !name)
    throw new Error('usage: consortium.ts init|consenters|ready <network>');
  const net = readNetwork(name);
  if (cmd === 'consenters') return registerConsenters(net);
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
