/**
 * `vswitch/join`: netmap's `bridge` program. Joins two ports (of the same or different bridges)
 * with one Worker per direction that moves every frame received on one port to the other.
 */
export { runBridge, type BridgeToolOptions, type BridgeToolCounters, type BridgeToolJob, type BridgeDirection } from './join.js';
