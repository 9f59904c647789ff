/**
 * The gateway's batching policy (fabric/batcher.ts), with a stand-in for the ledger that answers as the
 * chaincode's SessionBatch does: which calls go alone and which together, each call's own outcome, a
 * lagging peer's refusal queued again, a refused batch split. The real transaction runs on the network
 * (test/network/gateway.test.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { EndorseError } from '@hyperledger/fabric-gateway';
import { ChaincodeRejection, EndorsersDisagree, classify, type ChaincodeError } from '../src/fabric/errors';
import { isStaleRefusal } from '../src/fabric/ledger';
import { SessionBatcher } from '../src/fabric/batcher';
import type { Committed, Endorsed, SubmitHooks } from '../src/fabric/ledger';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as unknown;
const refusal = (code: string): ChaincodeError => ({
  code,
  category: 'PRECONDITION',
  message: code,
  details: {},
});

interface Sent {
  tx: string;
  calls: string[];
}

/** A ledger whose answers `answer` decides per call id; each submit resolves when `release` is called. */
function fakeLedger(answer: (id: string, attempt: number) => ChaincodeError | undefined) {
  const sent: Sent[] = [];
  const waiting: Array<() => void> = [];
  const attempts = new Map<string, number>();
  const outcome = (id: string) => {
    const n = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, n);
    return answer(id, n);
  };
  const submit = async (_as: string, tx: string, args: string[], hooks?: SubmitHooks): Promise<Committed> => {
    const arg = JSON.parse(args[0]!) as { id?: string; calls?: Array<{ args: { id: string } }> };
    const ids = tx === 'SessionBatch' ? arg.calls!.map((c) => c.args.id) : [arg.id!];
    sent.push({ tx, calls: ids });
    await new Promise<void>((r) => waiting.push(r));
    let result: Uint8Array;
    if (tx === 'SessionBatch') {
      result = enc({
        results: ids.map((id) => {
          const e = outcome(id);
          return e ? { ok: false, error: e } : { ok: true, result: { id } };
        }),
      });
    } else {
      const e = outcome(ids[0]!);
      if (e) throw new ChaincodeRejection(e);
      result = enc({ id: ids[0] });
    }
    const endorsed: Endorsed = { txId: `tx${sent.length}`, bytes: new Uint8Array([1]), result };
    await hooks?.onEndorsed?.(endorsed);
    return { txId: endorsed.txId, blockNumber: 7n, result, attempts: 1 };
  };
  const releaseAll = async () => {
    while (waiting.length > 0) waiting.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { submit, sent, releaseAll };
}

const call = (id: string) => [JSON.stringify({ id })];

describe('SessionBatcher', () => {
  test('a call that finds a free slot goes alone; calls that wait go together, each with its own answer', async () => {
    const ledger = fakeLedger(() => undefined);
    const endorsed: string[] = [];
    const b = new SessionBatcher(ledger, { maxInFlight: 1, maxCalls: 3, staleRetryMs: 0 });
    const hooks = (id: string): SubmitHooks => ({
      onEndorsed: (e) => void endorsed.push(`${id}:${e.txId}:${JSON.stringify(dec(e.result))}`),
    });
    const first = b.submit('client', 'StopSession', call('a'), hooks('a'));
    const rest = ['b', 'c', 'd', 'e'].map((id) => b.submit('client', 'StopSession', call(id), hooks(id)));
    expect(ledger.sent).toEqual([{ tx: 'StopSession', calls: ['a'] }]);
    await ledger.releaseAll();
    // b, c, d go as one batch (maxCalls 3); e waits for it.
    expect(ledger.sent.slice(1)).toEqual([{ tx: 'SessionBatch', calls: ['b', 'c', 'd'] }]);
    await ledger.releaseAll();
    expect(ledger.sent.slice(2)).toEqual([{ tx: 'StopSession', calls: ['e'] }]);
    await ledger.releaseAll();
    const all = await Promise.all([first, ...rest]);
    expect(all.map((c) => [c.txId, dec(c.result)])).toEqual([
      ['tx1', { id: 'a' }],
      ['tx2', { id: 'b' }],
      ['tx2', { id: 'c' }],
      ['tx2', { id: 'd' }],
      ['tx3', { id: 'e' }],
    ]);
    // The idempotency store learns each call's own answer under the batch's transaction.
    expect(endorsed).toEqual([
      'a:tx1:{"id":"a"}',
      'b:tx2:{"id":"b"}',
      'c:tx2:{"id":"c"}',
      'd:tx2:{"id":"d"}',
      'e:tx3:{"id":"e"}',
    ]);
  });

  test('a refused call gets its own refusal and never reaches the idempotency store; the others stand', async () => {
    const ledger = fakeLedger((id) => (id === 'y' ? refusal('SESSION_ALREADY_SETTLED') : undefined));
    const endorsed: string[] = [];
    const b = new SessionBatcher(ledger, { maxInFlight: 1, maxCalls: 50, staleRetryMs: 0 });
    const first = b.submit('client', 'StopSession', call('w'), {});
    const xs = Promise.allSettled(
      ['x', 'y', 'z'].map((id) =>
        b.submit('client', 'StopSession', call(id), { onEndorsed: () => void endorsed.push(id) }),
      ),
    );
    await ledger.releaseAll();
    await ledger.releaseAll();
    await first;
    const outcomes = (await xs).map((o) =>
      o.status === 'fulfilled' ? 'ok' : (o.reason as ChaincodeRejection).error.code,
    );
    expect(outcomes).toEqual(['ok', 'SESSION_ALREADY_SETTLED', 'ok']);
    expect(endorsed).toEqual(['x', 'z']);
  });

  test("a lagging peer's refusal is sent again; a refusal that is not one is answered at once", async () => {
    // In the batch, 'p' is refused as a peer a block behind would, then stands when sent again; 'q' is
    // refused with a code no lagging peer gives.
    const ledger = fakeLedger((id, n) =>
      id === 'q'
        ? refusal('SESSION_ALREADY_SETTLED')
        : id === 'p' && n === 1
          ? refusal('PILE_BUSY')
          : undefined,
    );
    const retried: string[] = [];
    const b = new SessionBatcher(
      ledger,
      { maxInFlight: 1, maxCalls: 50, staleRetryMs: 5_000 },
      { onStaleRetry: (code) => void retried.push(code) },
    );
    const blocker = b.submit('client', 'StartSession', call('o'), {});
    const both = Promise.allSettled([
      b.submit('client', 'StartSession', call('p'), {}),
      b.submit('client', 'StopSession', call('q'), {}),
    ]);
    let settled = false;
    void both.then(() => (settled = true));
    for (let i = 0; !settled && i < 200; i++) {
      await ledger.releaseAll();
      await new Promise((r) => setTimeout(r, 20));
    }
    await blocker;
    const [p, q] = await both;
    expect(p.status === 'fulfilled' && dec(p.value.result)).toEqual({ id: 'p' });
    expect(q.status === 'rejected' && (q.reason as ChaincodeRejection).error.code).toBe(
      'SESSION_ALREADY_SETTLED',
    );
    expect(retried).toEqual(['PILE_BUSY']);
    expect(ledger.sent.map((s) => s.calls.join('+'))).toEqual(['o', 'p+q', 'p']);
  });

  test.each([
    ['refuses as a whole', () => new ChaincodeRejection(refusal('INVALID_ARGUMENT'))],
    ['cannot get its endorsers to agree on', () => new EndorsersDisagree()],
  ])('a batch the chaincode %s is sent again call by call', async (_what, failure) => {
    const ledger = fakeLedger(() => undefined);
    const submit = ledger.submit;
    let failedOnce = false;
    const b = new SessionBatcher(
      {
        submit: async (as, tx, args, hooks) => {
          if (tx === 'SessionBatch' && !failedOnce) {
            failedOnce = true;
            throw failure();
          }
          return submit(as, tx, args, hooks);
        },
      },
      { maxInFlight: 1, maxCalls: 50, staleRetryMs: 0 },
    );
    const first = b.submit('client', 'StopSession', call('m'), {});
    const rest = ['n', 'o'].map((id) => b.submit('client', 'StopSession', call(id), {}));
    await ledger.releaseAll();
    await ledger.releaseAll();
    await ledger.releaseAll();
    const all = await Promise.all([first, ...rest]);
    expect(all.map((c) => dec(c.result))).toEqual([{ id: 'm' }, { id: 'n' }, { id: 'o' }]);
    expect(ledger.sent.map((s) => s.tx)).toEqual(['StopSession', 'StopSession', 'StopSession']);
  });
});

test('endorsers that disagree (one a block behind) are a retryable refusal, not an internal error', () => {
  const mismatch = new EndorseError({
    code: grpc.status.ABORTED,
    details: [
      { address: 'peer1:7051', message: 'ProposalResponsePayloads do not match', mspId: 'BetaMSP' },
      { address: 'peer2:7051', message: 'ProposalResponsePayloads do not match', mspId: 'DeltaMSP' },
    ],
    cause: Object.assign(new Error('ABORTED'), {
      code: grpc.status.ABORTED,
      details: '',
      metadata: new grpc.Metadata(),
    }),
    transactionId: 'tx1',
    message: 'failed to collect enough transaction endorsements',
  });
  const c = classify(mismatch);
  expect(c).toBeInstanceOf(EndorsersDisagree);
  expect(isStaleRefusal(c)).toBe(true);
  const other = new EndorseError({
    code: grpc.status.ABORTED,
    details: [{ address: 'peer1:7051', message: 'chaincode response 500, boom', mspId: 'BetaMSP' }],
    cause: Object.assign(new Error('ABORTED'), {
      code: grpc.status.ABORTED,
      details: '',
      metadata: new grpc.Metadata(),
    }),
    transactionId: 'tx2',
  });
  expect(isStaleRefusal(classify(other))).toBe(false);
});
