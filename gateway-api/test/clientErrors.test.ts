/**
 * What Node's HTTP parser refuses before any route (http/clientErrors.ts) is answered in the gateway's
 * error shape, on a real listening server, with raw bytes on a socket.
 */
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { answerClientErrors } from '../src/http/clientErrors';

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((_req, res) => res.end('ok'));
  answerClientErrors(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Everything the server sends back on one connection for `raw`, until it closes. */
function exchange(raw: string): Promise<{ status: number; headers: string; body: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({
        status: Number(head.split(' ')[1]),
        headers: head,
        body: /application\/json/.test(head) ? JSON.parse(body) : body,
      });
    });
    socket.end(raw);
  });
}

test('headers over the limit: 431 HEADERS_TOO_LARGE, JSON, the connection closed', async () => {
  const r = await exchange(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  expect(r.status).toBe(431);
  expect(r.headers).toMatch(/\r\nContent-Type: application\/json/);
  expect(r.headers).toMatch(/\r\nConnection: close/);
  expect(r.body).toEqual({
    code: 'HEADERS_TOO_LARGE',
    message: 'the request headers are larger than this gateway accepts',
    details: { parserError: 'HPE_HEADER_OVERFLOW' },
  });
});

test('a malformed request line or header: 400 MALFORMED_REQUEST naming the parser error', async () => {
  for (const raw of ['NOT HTTP AT ALL\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n']) {
    const r = await exchange(raw);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      code: 'MALFORMED_REQUEST',
      details: { parserError: expect.stringMatching(/^HPE_/) },
    });
  }
});

test('a well-formed request still reaches the application', async () => {
  const r = await exchange('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  expect([r.status, r.body]).toEqual([200, 'ok']);
});
