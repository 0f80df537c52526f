/**
 * @vswitch/bridge: the VALE learning-bridge core. A Bridge is one switch's shared memory; a
 * Forwarder is one thread's forwarding engine over it (txsync).
 */
export * from './layout.js';
export { BridgeError } from './errors.js';
export { parsePortName, checkBridgeName, NAME_RULE, DEFAULT_BRIDGE, MAX_NAME_LEN, type ParsedName } from './names.js';
export {
  Bridge, BRIDGE_DEFAULTS, macString, publishLeases, type BridgeOptions, type MacEntry, type PortInfo, type VlanConfig,
  type MirrorConfig,
} from './bridge.js';
export { Forwarder, registerLookup, learningLookup, TXSYNC_BUSY, type LookupFn } from './forward.js';
