/**
 * The Fabric glue as fabric-contract-api sees it: the contract class loads, every transaction is
 * registered with the right kind (submit vs evaluate), and NodeOU roles are read from real identity strings.
 * (Running it on a peer needs the network: see the README.)
 */
import 'reflect-metadata';
import { contracts, EvPayContract } from '../src';
import { roleFromId } from '../src/contracts/fabricContext';

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

test('NodeOU role comes from the subject, never from the issuer', () => {
  const subject = '/C=CN/ST=Beijing/L=Beijing/OU=admin/CN=Admin@alpha.example.com';
  const issuer = '/C=CN/ST=Beijing/L=Beijing/O=alpha.example.com/CN=ca.alpha.example.com';
  expect(roleFromId(`x509::${subject}::${issuer}`)).toBe('admin');
  expect(roleFromId(`x509::/C=CN/OU=client/CN=gw@alpha::${issuer}`)).toBe('client');
  expect(roleFromId(`x509::/C=CN/CN=x::/C=CN/OU=admin/CN=ca`)).toBe('');
  expect(roleFromId(`x509::/C=CN/OU=administrator/CN=x::${issuer}`)).toBe('');
});
