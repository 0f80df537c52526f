/**
 * vswitch: a virtual Ethernet switch in pure TypeScript, modelled on netmap's VALE.
 *
 * This is the front door: the switch, ports opened by name from any thread, errors, and the
 * bridge option/stat/FDB types. Everything else has its own entry point:
 *
 * | entry point         | what                                                          |
 * | ------------------- | ------------------------------------------------------------- |
 * | `vswitch/adapters`  | QEMU stream/dgram, VXLAN, TAP, pcap capture/replay as ports    |
 * | `vswitch/v86`       | v86 guests: attachV86, startV86Guest                           |
 * | `vswitch/control`   | the daemon (`vswitch serve`): control server, client, config    |
 * | `vswitch/pktgen`    | the pkt-gen engine, run in a Worker on a port                  |
 * | `vswitch/bench`     | the benchmark scenarios behind `vswitch bench`                 |
 * | `vswitch/join`      | the two-port join tool behind `vswitch bridge`                 |
 * | `vswitch/frame`     | Ethernet/IPv4/UDP frame builder and parsers                    |
 * | `vswitch/pcap`      | pcap file reader and writer                                    |
 *
 * ```ts
 * import { Switch, openPort } from 'vswitch';
 * const sw = new Switch();                 // main thread: the registry
 * const a = await openPort('vale0:a');     // any thread
 * ```
 */
export { Switch, type SwitchOptions } from './core/switch.js';
export { Port, RxBatch, TxBatch } from './core/port.js';
export { openPort, listSwitch } from './core/open.js';
export { VswitchError, ERR } from './core/errors.js';
export type { OpenOptions, BridgeSummary } from './core/messages.js';
export {
  parsePortName, checkBridgeName, NAME_RULE, COUNTER_NAMES, BRIDGE_DEFAULTS, registerLookup, LOOKUP_FLOOD, LOOKUP_DROP,
  type PortCounters, type MacEntry, type PortInfo, type BridgeOptions, type LookupFn, type VlanConfig,
} from '#bridge';
