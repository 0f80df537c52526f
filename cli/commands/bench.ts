import { readFileSync, writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import {
  GROUP_DESCRIBE, HEADLINE_SCENARIOS, busyWarning, SCENARIO_NAMES, compareBaseline, parseBaseline, renderHtml, runBench, type BenchReport, PEERS, PEER_SCENARIOS,
} from 'vswitch/bench';
import { die, pad } from '../format.js';

interface Args {
  scenario?: string[];
  all: boolean;
  trials: number;
  duration: number;
  warmup: number;
  json: boolean;
  html?: string;
  baseline?: string;
  tolerance: number;
  save?: string;
  peers: boolean;
  bridgeBatch?: number;
}

const f = (x: number | undefined, d: number) => (x === undefined ? '' : x.toFixed(d));

function table(report: BenchReport): string {
  const head = `${pad('system', 13, true)} ${pad('scenario', 13, true)} ${pad('frame', 5)} ${pad('Mpps', 8)} ${pad('Gbit/s', 7)} ${pad('ref Mpps', 8)} ${pad('x ref', 6)} ${pad('bound', 7)} ${pad('x bound', 7)}  ${pad('spread (Mpps)', 13, true)}${report.peers ? ' vswitch/peer' : ''}`;
  const rows = report.results.map((r) => {
    const cols = [pad(r.system, 13, true), pad(r.scenario, 13, true), pad(r.frameSize, 5), pad(r.mpps.toFixed(3), 8), pad(r.gbps.toFixed(2), 7)];
    // Latency rows: no ratio (a round trip is not a copy); their percentiles instead.
    if (r.rttP50Us !== undefined) {
      const bare = r.bareP50Us !== undefined ? `, bare p50 ${r.bareP50Us.toFixed(1)} us` : '';
      cols.push(` p50 ${r.rttP50Us.toFixed(1)} us, p99 ${f(r.rttP99Us, 1)} us${bare}`.padEnd(40));
    } else {
      cols.push(pad(f(r.refMpps, 2), 8), pad(f(r.ratio, 3), 6), pad(f(r.copyBoundMpps, 2), 7), pad(f(r.boundRatio, 3), 7));
    }
    cols.push(` ${pad(`${r.spread.minMpps.toFixed(2)}-${r.spread.maxMpps.toFixed(2)}`, 13, true)}`);
    if (report.peers) cols.push(pad(r.speedup !== undefined ? `${r.speedup.toFixed(1)}x` : '', 12));
    return cols.join(' ').trimEnd();
  });
  const m = report.machine;
  const la = (x: number[]) => x.map((v) => v.toFixed(2)).join(' ');
  const lines = [
    `vswitch bench: ${m.cpus} x ${m.cpuModel}, node ${m.node}, load ${m.loadavgAtStart ? `${la(m.loadavgAtStart)} at start, ` : ''}${la(m.loadavg)} at end, ` +
      `${report.settings.trials} trials of ${report.settings.duration} s, ${(report.settings.seconds ?? 0).toFixed(0)} s in all`,
    '(medians; x ref = rate / reference data path, x bound = rate / copy bound, both measured before each trial on the same frames and batch;',
    ' bare = the same ping-pong with no switch: two Workers flipping one word each, waiting the same way, measured before each rtt trial)',
    ...(busyWarning(report) ? [busyWarning(report)!] : []),
    head, ...rows,
  ];
  if (report.peers) {
    lines.push('', `peers (on ${report.peers.scenarios.join(', ')}; vswitch/peer = vswitch Mpps / peer Mpps):`);
    for (const p of report.peers.systems) lines.push(`  ${pad(p.system, 13, true)} ${p.describe}`);
    for (const p of report.peers.skipped) lines.push(`  ${pad(p.system, 13, true)} skipped: ${p.reason}`);
  }
  return lines.join('\n');
}

export const benchCommand: CommandModule<object, Args> = {
  command: 'bench',
  describe: 'Measure packet rates on an embedded switch, against a reference data path measured in the same run',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 bench [--all | --scenario NAME...] [--trials N] [--duration S] [--json] [--html FILE] [--baseline FILE --tolerance PCT] [--save FILE]\n\n' +
          `With no --scenario, runs ${HEADLINE_SCENARIOS.join(', ')} (about 30 s); --all runs every scenario. Before each ` +
          'throughput trial it measures the reference data path (two Workers, one ring, the same frames and batch, a hash ' +
          'lookup and one copy per frame, no switching) and the copy bound (the same copies in one thread, no ring), and ' +
          'reports every rate as a ratio to both: absolute rates on shared machines drift, the ratio to the reference much ' +
          'less. Latency scenarios report round-trip percentiles beside the bare round trip: two Workers ping-ponging one ' +
          'word each with no switch, waiting the same way (spinning, or sleeping on Atomics.wait), measured before each ' +
          'trial.\n\nScenarios:\n' +
          Object.entries(GROUP_DESCRIBE).map(([k, v]) => `  ${k.padEnd(14)} ${v}`).join('\n') +
          `\n\n--peers adds, on ${PEER_SCENARIOS.join(', ')}:\n` +
          PEERS.map((p) => `  ${p.system.padEnd(14)} ${p.describe}`).join('\n'),
      )
      .option('scenario', { type: 'string', array: true, choices: SCENARIO_NAMES, describe: `scenario to run (repeatable; default: ${HEADLINE_SCENARIOS.join(', ')})` })
      .option('all', { type: 'boolean', default: false, describe: 'run every scenario' })
      .option('trials', { type: 'number', default: 3, describe: 'trials per scenario (the median is reported)' })
      .option('duration', { type: 'number', default: 1, describe: 'seconds measured per trial' })
      .option('warmup', { type: 'number', default: 0.2, describe: 'seconds of traffic before each measurement' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document instead of the table' })
      .option('html', { type: 'string', describe: 'also write a self-contained HTML report with charts to FILE' })
      .option('baseline', { type: 'string', describe: 'compare with this saved run; exit 1 naming scenarios that fell below it' })
      .option('tolerance', { type: 'number', default: 10, describe: 'percent a median ratio may fall below the baseline\'s' })
      .option('save', { type: 'string', describe: 'write this run as a new baseline file' })
      .option('peers', { type: 'boolean', default: false, describe: 'also measure a postMessage Worker switch and vde_switch (vde2) on the same scenarios' })
      .option('bridge-batch', { type: 'number', describe: 'frames per txsync pass of the bridges (default 1024): one lease and publication per pass' }),
  handler: async (a) => {
    if (!(a.tolerance >= 0)) die(`--tolerance must be a percentage ≥ 0, got ${a.tolerance}`);
    let baseline: BenchReport | undefined;
    if (a.baseline) {
      let text: string;
      try {
        text = readFileSync(a.baseline, 'utf8');
      } catch (e) {
        die(`cannot read baseline ${a.baseline}: ${(e as Error).message}`);
      }
      try {
        baseline = parseBaseline(text, a.baseline);
      } catch (e) {
        die((e as Error).message);
      }
    }
    if (a.all && a.scenario && a.scenario.length > 0) die('--all and --scenario do not go together');
    // On a terminal each scenario has one line that rewrites itself as it goes and ends as its
    // summary; elsewhere (a log, a pipe) only the summaries are printed, one line each.
    const tty = process.stderr.isTTY === true;
    const report = await runBench({
      scenarios: a.scenario, all: a.all, trials: a.trials, duration: a.duration, warmup: a.warmup, peers: a.peers, bridgeBatch: a.bridgeBatch,
      onProgress: (msg) => { if (tty) process.stderr.write(`\r\x1b[K${msg.slice(0, (process.stderr.columns || 100) - 1)}`); },
      onScenario: (line) => process.stderr.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`),
      onNotice: (msg) => process.stderr.write(tty ? `\r\x1b[K${msg}\n` : `${msg}\n`),
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (a.save) writeFileSync(a.save, JSON.stringify(report, null, 2) + '\n');
    if (a.html) writeFileSync(a.html, renderHtml(report));
    console.log(a.json ? JSON.stringify(report, null, 2) : table(report));
    if (baseline) {
      const { regressions, compared } = compareBaseline(report, baseline, a.tolerance);
      if (compared === 0) die(`baseline ${a.baseline} has none of the scenarios that ran`);
      if (regressions.length > 0) {
        die(`regression beyond ${a.tolerance}%: ${regressions.map((r) => `${r.scenario} (ratio ${r.ratio.toFixed(3)} vs ${r.baselineRatio.toFixed(3)}, -${r.dropPct.toFixed(1)}%)`).join(', ')}`);
      }
      process.stderr.write(`vswitch bench: ${compared} scenario(s) within ${a.tolerance}% of ${a.baseline}\n`);
    }
  },
};
