/**
 * `vswitch/pktgen`: netmap's pkt-gen as a library. `startPktGen` runs the generator in a Worker
 * of its own on a port opened by name and reports once per interval.
 */
export { startPktGen, validatePktGen, type PktGenJob } from './runner.js';
export { PKTGEN_FUNCS, type PktGenFunc, type PktGenOptions, type PktGenReport, type RttStats } from './types.js';
