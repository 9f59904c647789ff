/** Chaincode entry point: fabric-chaincode-node loads `contracts` from here. */
import { EvPayContract } from './contracts/evpayContract';
import { listenForPeerOffer } from './contracts/peerState';
import { dropBelowLevelEarly } from './contracts/shimLogging';

dropBelowLevelEarly();
listenForPeerOffer();

export { EvPayContract };
export const contracts = [EvPayContract];
