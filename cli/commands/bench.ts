import { readFileSync, writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { SCENARIO_GROUPS, SCENARIO_NAMES, compareBaseline, parseBaseline, runBench, type BenchReport, PEERS, PEER_SCENARIOS } from 'vswitch/bench';
import { die, pad } from '../format.js';

interface Args {
  scenario?: string[];
  trials: number;
  duration: number;
  warmup: number;
  json: boolean;
  baseline?: string;
  tolerance: number;
  save?: string;
  peers: boolean;
}

function table(report: BenchReport): string {
  const head = `${pad('system', 13, true)} ${pad('scenario', 14, true)} ${pad('frame', 5)} ${pad('Mpps', 8)} ${pad('Gbit/s', 8)} ${pad('bound Mpps', 10)} ${pad('ratio', 6)}  spread (Mpps)     ${report.peers ? 'vswitch/peer  ' : ''}rtt p50`;
  const rows = report.results.map((r) => [
    pad(r.system, 13, true), pad(r.scenario, 14, true), pad(r.frameSize, 5), pad(r.mpps.toFixed(3), 8), pad(r.gbps.toFixed(2), 8),
    pad(r.copyBoundMpps.toFixed(2), 10), pad(r.ratio.toFixed(3), 6),
    ` ${pad(`${r.spread.minMpps.toFixed(2)}-${r.spread.maxMpps.toFixed(2)}`, 16, true)}`,
    report.peers ? pad(r.speedup !== undefined ? `${r.speedup.toFixed(1)}x` : '', 12) + ' ' : '',
    r.rttP50Us !== undefined ? ` ${r.rttP50Us.toFixed(1)} us` : '',
  ].join(' ').trimEnd());
  const m = report.machine;
  const lines = [
    `vswitch bench: ${m.cpus} x ${m.cpuModel}, node ${m.node}, load ${m.loadavgAtStart ? `${m.loadavgAtStart.map((x) => x.toFixed(2)).join(' ')} at start, ` : ''}${m.loadavg.map((x) => x.toFixed(2)).join(' ')} at end, ${report.settings.trials} trials of ${report.settings.duration} s (medians; ratio = rate / copy bound measured in the same run)`,
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
  describe: 'Measure packet rates on an embedded switch, against the copy-only bound measured in the same run',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 bench [--scenario NAME]... [--trials N] [--duration S] [--json] [--baseline FILE --tolerance PCT] [--save FILE]\n\n' +
          'Runs each scenario for N trials; before each trial it measures the copy-only bound (the same copy of the same\n' +
          'frames inside one region, with no rings and no lookup) and reports every rate as a ratio to it, because absolute\n' +
          'rates on shared machines drift. Scenarios:\n' +
          Object.entries(SCENARIO_GROUPS).map(([k, v]) => `  ${k.padEnd(14)} ${v.length > 1 ? v.map((s) => s.name).join(', ') + ': ' : ''}${v[0].describe}`).join('\n') +
          `\n\n--peers adds, on ${PEER_SCENARIOS.join(', ')}:\n` +
          PEERS.map((p) => `  ${p.system.padEnd(14)} ${p.describe}`).join('\n'),
      )
      .option('scenario', { type: 'string', array: true, choices: SCENARIO_NAMES, describe: 'scenario to run (repeatable; default: all)' })
      .option('trials', { type: 'number', default: 3, describe: 'trials per scenario (the median is reported)' })
      .option('duration', { type: 'number', default: 2, describe: 'seconds measured per trial' })
      .option('warmup', { type: 'number', default: 0.3, describe: 'seconds of traffic before each measurement' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document instead of the table' })
      .option('baseline', { type: 'string', describe: 'compare with this saved run; exit 1 naming scenarios that fell below it' })
      .option('tolerance', { type: 'number', default: 10, describe: 'percent a median ratio may fall below the baseline\'s' })
      .option('save', { type: 'string', describe: 'write this run as a new baseline file' })
      .option('peers', { type: 'boolean', default: false, describe: 'also measure a postMessage Worker switch and vde_switch (vde2) on the same scenarios' }),
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
    const tty = process.stderr.isTTY;
    const report = await runBench({
      scenarios: a.scenario, trials: a.trials, duration: a.duration, warmup: a.warmup, peers: a.peers,
      onProgress: (msg) => process.stderr.write(tty ? `\r\x1b[K${msg}` : `${msg}\n`),
      onNotice: (msg) => process.stderr.write(tty ? `\r\x1b[K${msg}\n` : `${msg}\n`),
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (a.save) writeFileSync(a.save, JSON.stringify(report, null, 2) + '\n');
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
