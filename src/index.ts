/**
 * vswitch: a virtual Ethernet switch in pure TypeScript, modelled on netmap's VALE.
 *
 * ```ts
 * import { Switch, openPort } from 'vswitch';
 * const sw = new Switch();                 // main thread: the registry
 * const a = await openPort('vale0:a');     // any thread
 * ```
 */
export { Switch, type SwitchOptions } from './switch.js';
export { Port, RxBatch, TxBatch } from './port.js';
export { openPort, listSwitch } from './client.js';
export { VswitchError, ERR } from './errors.js';
export type { OpenOptions, BridgeSummary } from './protocol.js';
export {
  parsePortName, NAME_RULE, COUNTER_NAMES, BRIDGE_DEFAULTS, registerLookup, LOOKUP_FLOOD, LOOKUP_DROP,
  type PortCounters, type MacEntry, type PortInfo, type BridgeOptions, type LookupFn, type VlanConfig,
} from '@vswitch/bridge';
export { ControlClient, resolveSocketPath, type ConnectOptions } from './control/client.js';
export { ControlServer, type ControlServerOptions } from './control/server.js';
export { loadConfig, validateConfig, applyConfig, checkBridgeOption, type ServeConfig } from './control/config.js';
export { defaultSocketPath } from './control/paths.js';
export {
  OPS as CONTROL_OPS, PROTOCOL_VERSION, CTL_ERR, noDaemonMessage, type PingInfo, type PortStats,
} from './control/protocol.js';
export {
  runBridge, type BridgeToolOptions, type BridgeToolCounters, type BridgeToolJob, type BridgeDirection,
} from './bridge-tool.js';
export * from './adapters/index.js';
export { PcapReader, PcapWriter, PcapError, type PcapRecord } from './pcap.js';
export {
  FrameBuilder, FrameError, parseMac, formatMac, parseIpRange, describeFrame, verifyIpv4Udp, setSeq, getSeq,
  type FrameBuilderOptions, type IpRange,
} from './frame.js';
export { startPktGen, type PktGenJob } from './pktgen/runner.js';
export type { PktGenOptions, PktGenReport, PktGenFunc } from './pktgen/types.js';
