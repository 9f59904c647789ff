/** Chaincode entry point: fabric-chaincode-node loads `contracts` from here. */
import { EvPayContract } from './contracts/evpayContract';
import { dropBelowLevelEarly } from './contracts/shimLogging';

dropBelowLevelEarly();

export { EvPayContract };
export const contracts = [EvPayContract];
