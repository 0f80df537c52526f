/** `vswitch/bench`: the scenarios, references and baseline comparison behind `vswitch bench`. */
export { SCENARIO_GROUPS, SCENARIO_NAMES, compareBaseline, parseBaseline, runBench, type BenchReport } from './bench.js';
export { PEERS, PEER_SCENARIOS } from './peers/index.js';
