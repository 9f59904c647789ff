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
import { roleFromCertificate, singleCertificatePem } from '../src/contracts/fabricContext';

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

/** The subject OUs of the certificate a Fabric peer's MSP takes from identity bytes: Go's pem + x509. */
function mspOUs(idBytes: string): string[] {
  const r = spawnSync('go', ['run', path.join(__dirname, 'support', 'go', 'fabric_msp_decode.go')], {
    input: idBytes,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`go run failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

test('the role is read from the very certificate the peer validated: one plain PEM certificate only', () => {
  const client = certificate('/C=CN/O=AlphaMSP/OU=client/CN=gateway@alpha');
  const forged = certificate('/C=CN/O=AlphaMSP/OU=admin/CN=Admin@alpha'); // self-made, never validated
  // Found in review: with a space before its BEGIN line, Go's pem.Decode (the peer's MSP) skips the
  // forged block and validates the client certificate, while fabric-shim's parser read the forged one.
  const disguised = ' ' + forged + client;
  expect(mspOUs(disguised)).toEqual(['client']);
  expect(() => singleCertificatePem(disguised)).toThrow(expect.objectContaining({ code: 'BAD_IDENTITY' }));
  for (const junk of [
    forged + client,
    client + 'trailing text\n',
    '# note\n' + client,
    client.replace('\n', ' \n'),
  ])
    expect(() => singleCertificatePem(junk)).toThrow(expect.objectContaining({ code: 'BAD_IDENTITY' }));
  // A plain certificate (LF or CRLF) passes, and the chaincode and the peer read the same role from it.
  for (const plain of [client, client.replace(/\n/g, '\r\n')]) {
    expect(mspOUs(plain)).toEqual(['client']);
    expect(roleFromCertificate(singleCertificatePem(plain))).toBe('client');
  }
}, 120_000);
