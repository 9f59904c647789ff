/**
 * Test-only preload for the chaincode process started by shimPeer.ts (NODE_OPTIONS=--require <this file>).
 *
 * The chaincode's run() gate (checkTxTime in src/contracts/fabricContext.ts) refuses a proposal stamped
 * more than 300 s from the process's Date.now(). Stories that need time to pass (a one-hour charging
 * session, an envelope's expiry, the end of a clearing period plus its grace) cannot wait for it, and the
 * product code must not change. So the harness starts the chaincode with its clock shifted by
 * EVPAY_TEST_CLOCK_OFFSET_MS (milliseconds, may be negative) and stamps its proposals with the same
 * virtual time. Only Date.now() is shifted: it is the only clock the chaincode reads.
 */
const offset = Number(process.env.EVPAY_TEST_CLOCK_OFFSET_MS ?? '0');
if (!Number.isSafeInteger(offset)) throw new Error('EVPAY_TEST_CLOCK_OFFSET_MS must be an integer');
if (offset !== 0) {
  const realNow = Date.now;
  Date.now = () => realNow() + offset;
}
