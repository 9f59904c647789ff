/**
 * Server-Sent Events of the piles' live OCPP status (BootNotification, Heartbeat, StatusNotification,
 * connect and disconnect; ocpp/csms.ts). That status is not on the ledger, so it has its own stream
 * beside /v1/events, whose ids are ledger positions (`block.n.k`) that clients keep as Last-Event-ID
 * checkpoints: mixing id-less, unreplayable events into it would make those checkpoints lie. Events here
 * carry no id and Last-Event-ID is ignored: status is state, not history, so a client that (re)connects
 * first gets the current status of every pile it may see (`change: "snapshot"`), then one
 * `PileLiveSnapshotEnd`, then every change as it happens.
 *
 * Who sees what (as GET /v1/piles/:pileId/live, narrowed for streams of a whole operator): an operator
 * admin and an auditor every pile, a pile backend its own piles (all of the operator's when its
 * credential names none), a driver app none.
 */
import type { Request, Response } from 'express';
import type { Principal } from '../auth/credentials';
import type { Csms, LiveChange, LiveStatus } from '../ocpp/csms';
import { openEventStream } from './events';
import { ApiError } from './problems';
import { refuseUnknownQuery } from './transactions';

export const LIVE_STATUS_EVENT = 'PileLiveStatus';
export const LIVE_SNAPSHOT_END_EVENT = 'PileLiveSnapshotEnd';

/** What one event carries: the change and the pile's whole status after it. */
export type LiveEventData = { change: LiveChange['change'] | 'snapshot' } & LiveStatus;

/**
 * Which piles a principal may watch on this stream, optionally narrowed to one (`?pileId=`). Throws the
 * refusal: a driver app may not watch piles, a scoped pile backend not another pile.
 */
export function liveScope(principal: Principal, pileId?: string): (pileId: string) => boolean {
  if (!['auditor', 'operator-admin', 'pile-backend'].includes(principal.role))
    throw new ApiError('ROLE_FORBIDDEN', 'operator admins, auditors and pile backends watch piles', {
      role: principal.role,
    });
  const scoped = principal.role === 'pile-backend' ? principal.piles : undefined;
  if (pileId !== undefined && scoped && !scoped.includes(pileId))
    throw new ApiError('PILE_NOT_IN_SCOPE', `this credential does not act for pile ${pileId}`, { pileId });
  return (p) => (pileId === undefined || p === pileId) && (!scoped || scoped.includes(p));
}

/** One event in the text/event-stream format, with no id line (see above). */
export function liveEventText(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Streams live status until the client goes away. `?pileId=` watches one pile. */
export function streamLiveStatus(
  req: Request,
  res: Response,
  csms: Csms | undefined,
  principal: Principal,
  heartbeatMs = 15_000,
): void {
  const raw: unknown = req.query.pileId;
  if (raw !== undefined && (typeof raw !== 'string' || raw === ''))
    throw new ApiError('VALIDATION_FAILED', 'query parameter pileId must be given once, as a pile id');
  refuseUnknownQuery(req.query, 'pileId');
  const visible = liveScope(principal, raw);
  if (!csms) throw new ApiError('CHARGER_NOT_FOUND', "the auditor's gateway has no chargers");

  openEventStream(res, 'evpay live pile status');
  // The snapshot and the subscription happen in one tick: no change can fall between them.
  const snapshot = csms.liveStatuses().filter((s) => visible(s.pileId));
  for (const s of snapshot) res.write(liveEventText(LIVE_STATUS_EVENT, { change: 'snapshot', ...s }));
  res.write(liveEventText(LIVE_SNAPSHOT_END_EVENT, { piles: snapshot.length }));
  const stopListening = csms.onLiveChange((c) => {
    if (visible(c.status.pileId))
      res.write(liveEventText(LIVE_STATUS_EVENT, { change: c.change, ...c.status }));
  });
  const beat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
  req.on('close', () => {
    clearInterval(beat);
    stopListening();
    if (!res.writableEnded) res.end();
  });
}
