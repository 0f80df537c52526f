/** `vswitch/bench`: the scenarios, references and baseline comparison behind `vswitch bench`. */
export {
  GROUP_DESCRIBE, HEADLINE_SCENARIOS, SCENARIO_GROUPS, busyWarning, SCENARIO_NAMES, compareBaseline, parseBaseline, runBench, scenarioLine,
  type BenchReport, type BenchResult,
} from './bench.js';
export { bareRtt, referencePath, type BareRun, type ReferenceRun } from './reference.js';
export { PEERS, PEER_SCENARIOS } from './peers/index.js';
export { renderHtml } from './html.js';
