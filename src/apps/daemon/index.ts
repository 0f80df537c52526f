/**
 * `vswitch/control`: the daemon behind `vswitch serve` and the client that tools use to drive
 * it over its Unix control socket (one JSON request per line, one reply per line).
 */
export { ControlClient, resolveSocketPath, type ConnectOptions } from './control-client.js';
export { ControlServer, type ControlServerOptions } from './control-server.js';
export { loadConfig, validateConfig, applyConfig, checkBridgeOption, type ServeConfig } from './config.js';
export { defaultSocketPath } from './paths.js';
export {
  OPS as CONTROL_OPS, PROTOCOL_VERSION, CTL_ERR, noDaemonMessage, type PingInfo, type PortStats,
} from './control-protocol.js';
