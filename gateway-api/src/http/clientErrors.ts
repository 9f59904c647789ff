/**
 * Requests that Node's HTTP parser refuses before Express sees them (headers over the size limit, a
 * malformed request line or header, a request that never finished arriving) get the gateway's one error
 * shape too, `{ code, message, details }`, instead of Node's bare status line; the connection is then
 * closed, as Node does, because the parser cannot tell where the next request would begin.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, type GatewayCode } from './problems';

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/** The answer to a parser error (Node's error codes: llhttp's HPE_* and the request timeout's). */
export function clientErrorProblem(code: string | undefined): ApiError {
  const [gatewayCode, message]: [GatewayCode, string] =
    code === 'HPE_HEADER_OVERFLOW'
      ? ['HEADERS_TOO_LARGE', 'the request headers are larger than this gateway accepts']
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['REQUEST_TIMEOUT', 'the request did not arrive in time']
        : ['MALFORMED_REQUEST', 'the request is not well-formed HTTP/1.1'];
  return new ApiError(gatewayCode, message, code ? { parserError: code } : {});
}

/** Answers parser errors on `server` in the gateway's error shape (see above). */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A reset connection, or one an answer was already written to, has no one left to tell.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const problem = clientErrorProblem(err.code);
    const body = JSON.stringify(problem.body());
    socket.end(
      `HTTP/1.1 ${problem.status} ${REASONS[problem.status] ?? 'Error'}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  });
}
