/**
 * The VALE learning-bridge core. A Bridge is one switch's shared memory; a Forwarder is one
 * thread's forwarding engine over it (txsync). By concept: bridge.ts (control: ports, removal,
 * reclaim, VLAN and mirror configuration), forward.ts (the txsync loop), rx-lease.ts (the RX
 * lease protocol), mac-table.ts, lookups.ts, vlan.ts.
 */
export * from './layout.js';
export { BridgeError } from './errors.js';
export { parsePortName, checkBridgeName, NAME_RULE, DEFAULT_BRIDGE, MAX_NAME_LEN, type ParsedName } from './names.js';
export {
  Bridge, BRIDGE_DEFAULTS, macString, type BridgeOptions, type MacEntry, type PortInfo, type VlanConfig,
  type MirrorConfig,
} from './bridge.js';
export { Forwarder, TXSYNC_BUSY } from './forward.js';
export { registerLookup, learningLookup, type LookupFn, type LookupContext } from './lookups.js';
export { RxLeases } from './rx-lease.js';
export { MacTable } from './mac-table.js';
export { vlanIngress, vlanMember, vlanCopy, VLAN_DROP, VLAN_TAGGED } from './vlan.js';
