/**
 * The peer's offer in READY (contracts/peerState.ts), decoded from bytes the upstream generated protos
 * (@hyperledger/fabric-protos 0.3) encode: an independent check of the chaincode's own field numbers.
 * The batched messages themselves are checked by shim.test.ts (a simulated peer decoding them with the
 * same upstream classes) and by every network test (real v3.1.5 peers).
 */
import { peer } from 'fabric-protos-v3';
import { offerOf } from '../src/contracts/peerState';

function ready(use: boolean, writes: number, useGet: boolean, gets: number): Uint8Array {
  const p = new peer.ChaincodeAdditionalParams();
  p.setUseWriteBatch(use);
  p.setMaxSizeWriteBatch(writes);
  p.setUseGetMultipleKeys(useGet);
  p.setMaxSizeGetMultipleKeys(gets);
  return p.serializeBinary();
}

test("a v3.1 peer's offer is read field by field; a 2.x peer's empty READY offers nothing", () => {
  expect(offerOf(ready(true, 1000, true, 700))).toEqual({ writeBatch: 1000, getMultiple: 700 });
  expect(offerOf(ready(false, 1000, true, 1000))).toEqual({ writeBatch: 0, getMultiple: 1000 });
  expect(offerOf(ready(true, 500, false, 1000))).toEqual({ writeBatch: 500, getMultiple: 0 });
  expect(offerOf(new Uint8Array())).toEqual({ writeBatch: 0, getMultiple: 0 });
});

test('an offer below 100 (or with no size) is raised to 100, as the Go shim does; the peer sets no cap', () => {
  expect(offerOf(ready(true, 0, true, 7))).toEqual({ writeBatch: 100, getMultiple: 100 });
});
