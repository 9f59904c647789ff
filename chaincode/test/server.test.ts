/**
 * Packaging: the built chaincode (dist/, the package's "main") boots under the real fabric-chaincode-node
 * runtime as a chaincode server (the mode an external builder or chaincode-as-a-service uses) and
 * listens. Nothing here imitates a peer: invoking it needs the network (see the README).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const root = path.resolve(__dirname, '..');
const bin = path.resolve(root, '..', 'node_modules', '.bin', 'fabric-chaincode-node');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGTERM');
});

test('the chaincode package boots as a chaincode server and listens', async () => {
  expect(existsSync(path.join(root, 'dist', 'index.js'))).toBe(true); // built by `npm test` (npm run build)
  const port = await freePort();
  let log = '';
  child = spawn(
    bin,
    ['server', '--chaincode-address', `127.0.0.1:${port}`, '--chaincode-id', 'evpay_1.0:0123456789abcdef'],
    {
      cwd: root,
      env: { ...process.env, CORE_CHAINCODE_LOGGING_LEVEL: 'info' },
    },
  );
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  // The port can accept before the runtime's last log line has crossed the pipe: wait for both.
  let up = false;
  for (let i = 0; i < 150 && !(up && log.includes('Bootstrap process completed')); i++) {
    await new Promise((r) => setTimeout(r, 100));
    up = up || (await listening(port));
  }
  expect({ up, exited: child.exitCode }).toEqual({ up: true, exited: null });
  expect(log).toContain('Bootstrap process completed');
  expect(log).toContain('EvPayContract');
}, 20_000);
