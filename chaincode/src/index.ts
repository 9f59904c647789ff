/** Chaincode entry point: fabric-chaincode-node loads `contracts` from here. */
import { EvPayContract } from './contracts/evpayContract';

export { EvPayContract };
export const contracts = [EvPayContract];
