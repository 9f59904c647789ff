/**
 * The libraries' winston loggers drop a message below their level before formatting it
 * (contracts/shimLogging.ts): the same lines are logged, debug lines no longer cost their formatting.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { dropBelowLevelEarly } from '../src/contracts/shimLogging';

interface Logger {
  level: string;
  debug(m: string): void;
  info(m: string): void;
  error(m: string): void;
  log(level: string, m: string): void;
}
interface Winston {
  createLogger(o: unknown): Logger;
  format: { printf(f: (i: { message: string }) => string): unknown };
  transports: { Stream: new (o: { stream: Writable }) => unknown };
}

test('a message below the level is dropped before its format runs; others are formatted and written', () => {
  const winston = createRequire(require.resolve('fabric-shim'))('winston') as Winston;
  expect(dropBelowLevelEarly()).toBeGreaterThanOrEqual(0);
  // Patched once per winston, however often it is called.
  expect(dropBelowLevelEarly()).toBe(0);
  const formatted: string[] = [];
  const written: string[] = [];
  const logger = winston.createLogger({
    level: 'info',
    format: winston.format.printf((i) => {
      formatted.push(i.message);
      return i.message;
    }),
    transports: [
      new winston.transports.Stream({
        stream: new Writable({
          write(chunk: Buffer, _enc, done) {
            written.push(chunk.toString().trim());
            done();
          },
        }),
      }),
    ],
  });
  logger.debug('d1');
  logger.log('debug', 'd2');
  logger.info('i1');
  logger.error('e1');
  logger.level = 'debug';
  logger.debug('d3');
  expect(formatted).toEqual(['i1', 'e1', 'd3']);
  expect(written).toEqual(['i1', 'e1', 'd3']);
});
