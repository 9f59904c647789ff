/**
 * The Fabric glue as fabric-contract-api sees it: the contract class loads, every transaction is
 * registered with the right kind (submit vs evaluate), and NodeOU roles are read from real identity strings.
 * (Running it on a peer needs the network: see the README.)
 */
import 'reflect-metadata';
import { contracts, EvPayContract } from '../src';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { roleFromCertificate } from '../src/contracts/fabricContext';

interface TxMeta {
  name: string;
  tag: string[];
}

test('every transaction is registered, queries as evaluate-only', () => {
  expect(contracts).toEqual([EvPayContract]);
  expect(new EvPayContract().getName()).toBe('evpay');
  const meta = Reflect.getMetadata('fabric:transactions', EvPayContract.prototype) as TxMeta[];
  const methods = Object.getOwnPropertyNames(EvPayContract.prototype).filter((m) => m !== 'constructor');
  expect(meta.map((t) => t.name).sort()).toEqual(methods.sort());
  for (const t of meta) {
    const isQuery = /^(Get|List|Find|KeyHistory)/.test(t.name);
    expect([t.name, t.tag.includes('SUBMIT')]).toEqual([t.name, !isQuery]);
  }
});

function certificate(subject: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'evpay-cert-'));
  try {
    const key = path.join(dir, 'k.pem');
    const cert = path.join(dir, 'c.pem');
    const run = (args: string[]): void => {
      const r = spawnSync('openssl', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
    };
    run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    run(['req', '-new', '-x509', '-key', key, '-out', cert, '-days', '1', '-subj', subject]);
    return readFileSync(cert, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("NodeOU role comes from the certificate's OU attributes, never from another field's text", () => {
  expect(roleFromCertificate(certificate('/C=CN/L=Beijing/OU=admin/CN=Admin@alpha.example.com'))).toBe(
    'admin',
  );
  expect(roleFromCertificate(certificate('/C=CN/OU=client/CN=gateway@alpha'))).toBe('client');
  // A client whose locality spells "/OU=admin" (fabric-shim's identity string would show it) stays a client.
  expect(roleFromCertificate(certificate('/C=CN/L=Haidian\\/OU=admin/OU=client/CN=evil'))).toBe('client');
  expect(roleFromCertificate(certificate('/C=CN/O=x/CN=no-role'))).toBe('');
  expect(roleFromCertificate(certificate('/C=CN/OU=admin/OU=client/CN=two-roles'))).toBe('');
  expect(roleFromCertificate(certificate('/C=CN/OU=administrator/CN=lookalike'))).toBe('');
});
