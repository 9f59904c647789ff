/**
 * Server-Sent Events of the contract's committed business events (SessionSettled, BeansCredited,
 * EnvelopeClaimed, ClearingPeriodClosed, ...). Each event's id is its position in the ledger:
 * `<block>.<n>.<k>` = block number, the n-th chaincode event of that block, the k-th business event in
 * it. That id is the checkpoint: a client that reconnects with `Last-Event-ID` is replayed from that
 * block on, skipping what it already had, so it misses nothing, whichever gateway process serves it.
 */
import type { Request, Response } from 'express';
import type { OrgLedger } from '../fabric/orgLedger';
import { ApiError } from './problems';
import { refuseUnknownQuery } from './transactions';

export interface EventPosition {
  block: bigint;
  n: number;
  k: number;
}

const ID_PATTERN = /^(\d{1,19})\.(\d{1,9})\.(\d{1,9})$/;

export function parseEventId(id: string): EventPosition | undefined {
  const m = ID_PATTERN.exec(id);
  if (!m) return undefined;
  return { block: BigInt(m[1] as string), n: Number(m[2]), k: Number(m[3]) };
}

const after = (p: EventPosition, q: EventPosition): boolean =>
  p.block !== q.block ? p.block > q.block : p.n !== q.n ? p.n > q.n : p.k > q.k;

interface Payload {
  txId?: string;
  events?: Array<{ name?: unknown; payload?: unknown }>;
}

/** Answers 200 as a Server-Sent Events stream (unbuffered by proxies), opened with a comment line. */
export function openEventStream(res: Response, comment: string): void {
  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  res.write(`: ${comment}\n\n`);
}

/** Streams events until the client goes away. `?fromBlock=` starts at a block when no Last-Event-ID. */
export async function streamEvents(
  req: Request,
  res: Response,
  ledger: OrgLedger,
  heartbeatMs = 15_000,
): Promise<void> {
  const lastId = req.get('last-event-id');
  const rawFrom: unknown = req.query.fromBlock;
  // A repeated fromBlock is refused, not ignored: ignoring it would stream from now on, silently.
  if (rawFrom !== undefined && typeof rawFrom !== 'string')
    throw new ApiError('VALIDATION_FAILED', 'query parameter fromBlock must be given once, as a plain value');
  const from = rawFrom;
  let since: EventPosition | undefined;
  let startBlock: bigint | undefined;
  if (lastId !== undefined && lastId !== '') {
    since = parseEventId(lastId);
    if (!since)
      throw new ApiError('VALIDATION_FAILED', 'Last-Event-ID is not an id this stream sent', {
        lastEventId: lastId,
      });
    startBlock = since.block;
  } else if (from !== undefined) {
    if (!/^\d{1,19}$/.test(from)) throw new ApiError('VALIDATION_FAILED', 'fromBlock must be a block number');
    startBlock = BigInt(from);
  }
  refuseUnknownQuery(req.query, 'fromBlock');

  const events = await ledger.events(startBlock);
  openEventStream(res, 'evpay events');
  const beat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
  const stop = (): void => {
    clearInterval(beat);
    events.close();
  };
  req.on('close', stop);
  let block = -1n;
  let n = -1;
  try {
    for await (const ev of events) {
      if (ev.blockNumber !== block) {
        block = ev.blockNumber;
        n = 0;
      } else n++;
      let payload: Payload;
      try {
        payload = JSON.parse(Buffer.from(ev.payload).toString('utf8')) as Payload;
      } catch {
        continue; // not one of ours
      }
      (payload.events ?? []).forEach((e, k) => {
        const pos = { block, n, k };
        if (since && !after(pos, since)) return;
        const name = typeof e.name === 'string' ? e.name : 'event';
        const data = { name, txId: ev.transactionId, blockNumber: Number(block), payload: e.payload ?? {} };
        res.write(`id: ${block}.${n}.${k}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      });
    }
  } catch (e) {
    if (!res.writableEnded)
      res.write(`event: error\ndata: ${JSON.stringify({ message: (e as Error).message })}\n\n`);
  } finally {
    stop();
    if (!res.writableEnded) res.end();
  }
}
