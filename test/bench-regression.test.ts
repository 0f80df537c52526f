// vswitch bench's regression mode, as CI runs it: the real CLI, one short trial of 1to1-60.
// Baselines are chosen so no machine speed can flip the outcome (a ratio of 1000 cannot be met,
// one of 1e-6 always is): the test checks the mechanism, never absolute speed.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oneLine, runCli } from './helpers/cli.js';

const SHORT = ['bench', '--scenario', '1to1-60', '--trials', '1', '--duration', '0.3', '--warmup', '0.1', '--json'];

const dir = mkdtempSync(join(tmpdir(), 'vst-bench-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function baselineWithRatio(name: string, ratio: number): string {
  const file = join(dir, name);
  const doc = {
    machine: { date: '2025-01-01T00:00:00.000Z', node: 'v20', cpus: 2, cpuModel: 'test', totalMemGiB: 1, platform: 'linux', loadavg: [0, 0, 0] },
    settings: { trials: 1, duration: 0.3, warmup: 0.1, ratioTo: 'reference' },
    results: [{
      system: 'vswitch', scenario: '1to1-60', frameSize: 60, mpps: 1, gbps: 1, refMpps: 1, copyBoundMpps: 1, ratio, boundRatio: 1,
      spread: { minMpps: 1, maxMpps: 1, minRatio: ratio, maxRatio: ratio }, trials: [],
    }],
  };
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

/** The last stderr line (progress lines come before it when stderr is not a terminal). */
const lastLine = (s: string) => s.trim().split('\n').at(-1) ?? '';

t.test('a baseline it meets: exit 0, the --json document, and --save', async (t) => {
  const saved = join(dir, 'saved.json');
  const r = await runCli([...SHORT, '--baseline', baselineWithRatio('tiny.json', 1e-6), '--tolerance', '10', '--save', saved], { timeoutMs: 20000 });
  t.equal(r.code, 0, r.stderr);
  t.match(lastLine(r.stderr), /1 scenario\(s\) within 10% of/);
  const doc = JSON.parse(r.stdout);
  t.type(doc.machine, 'object');
  t.type(doc.machine.cpus, 'number');
  t.ok(Array.isArray(doc.results) && doc.results.length === 1, 'one result');
  const res = doc.results[0];
  t.equal(res.system, 'vswitch');
  t.equal(res.scenario, '1to1-60');
  t.equal(res.frameSize, 60);
  for (const k of ['mpps', 'gbps', 'refMpps', 'copyBoundMpps', 'ratio', 'boundRatio']) t.ok(typeof res[k] === 'number' && res[k] > 0, `${k} is a positive number (${res[k]})`);
  t.ok(Array.isArray(res.trials) && res.trials.length === 1, 'one trial');
  t.ok(Math.abs(res.ratio - res.mpps / res.refMpps) < 1e-9, 'ratio = mpps / reference path');
  t.ok(Math.abs(res.boundRatio - res.mpps / res.copyBoundMpps) < 1e-9, 'boundRatio = mpps / copy bound');
  t.equal(doc.settings.ratioTo, 'reference');
  t.same(JSON.parse(readFileSync(saved, 'utf8')).results[0].scenario, '1to1-60', '--save wrote the run');

  // The saved file is a baseline --baseline accepts (tolerance 100%: only the format is tested).
  const again = await runCli([...SHORT, '--baseline', saved, '--tolerance', '100'], { timeoutMs: 20000 });
  t.equal(again.code, 0, again.stderr);
  t.match(lastLine(again.stderr), /within 100% of/);
});

t.test('a baseline it cannot meet: non-zero exit naming the scenario in one line', async (t) => {
  const r = await runCli([...SHORT, '--baseline', baselineWithRatio('huge.json', 1000), '--tolerance', '10'], { timeoutMs: 20000 });
  t.not(r.code, 0);
  const line = lastLine(r.stderr);
  t.match(line, /^vswitch: regression beyond 10%: 1to1-60 \(ratio [\d.]+ vs 1000\.000, -[\d.]+%\)$/);
  t.ok(JSON.parse(r.stdout).results.length === 1, 'the report is still printed');
});

t.test('a malformed baseline: one-line error before any measurement', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['not-json.json', '{ "results": [', /is not JSON/],
    ['no-results.json', '{ "machine": {} }', /has no "results" array/],
    ['null.json', 'null', /has no "results" array/],
    ['bad-entry.json', '{ "results": [ { "scenario": "1to1-60" } ] }', /results\[0\] needs "system" and "scenario" strings and a numeric "ratio"/],
    // Saved before ratios were taken to the reference path: its ratios are to the copy bound.
    ['old.json', '{ "settings": { "trials": 3 }, "results": [ { "system": "vswitch", "scenario": "1to1-60", "ratio": 0.4 } ] }', /ratios to the copy bound .*save a new one/],
  ];
  for (const [name, text, re] of cases) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = await runCli([...SHORT, '--baseline', file], { timeoutMs: 10000 });
    t.equal(r.code, 1, `${name}: exit 1`);
    t.ok(oneLine(r.stderr), `${name}: one line: ${r.stderr}`);
    t.match(r.stderr, re, name);
    t.equal(r.stdout, '', `${name}: nothing measured`);
  }
  const missing = await runCli([...SHORT, '--baseline', join(dir, 'does-not-exist.json')], { timeoutMs: 10000 });
  t.equal(missing.code, 1);
  t.ok(oneLine(missing.stderr), missing.stderr);
  t.match(missing.stderr, /cannot read baseline/);
});

t.test('no --scenario: the headline scenarios, one summary line each, rtt rows without a ratio', async (t) => {
  const r = await runCli(['bench', '--trials', '1', '--duration', '0.2', '--warmup', '0.05', '--json'], { timeoutMs: 60000 });
  t.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  t.same(doc.results.map((x: { scenario: string }) => x.scenario), ['1to1-60', '1to1-1514', 'rtt-spin', 'rtt-sleep']);
  // stderr is not a terminal here: exactly one plain line per scenario, in order.
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 4, r.stderr);
  lines.forEach((l, i) => t.match(l, new RegExp(`^\\[${i + 1}/4\\] ${doc.results[i].scenario} `)));
  t.notMatch(r.stderr, /\r|\x1b/, 'no terminal control characters');
  for (const x of doc.results.slice(2)) {
    t.equal(x.ratio, undefined, `${x.scenario}: no ratio`);
    t.ok(x.rttP50Us > 0 && x.rttP99Us >= x.rttP50Us, `${x.scenario}: p50 ${x.rttP50Us} us, p99 ${x.rttP99Us} us`);
    // The bare round trip (two Workers, one word each, waiting the same way) measured before the trial.
    t.ok(x.bareP50Us > 0 && x.bareP99Us >= x.bareP50Us, `${x.scenario}: bare p50 ${x.bareP50Us} us, p99 ${x.bareP99Us} us`);
    t.equal(x.trials[0].bare.p50Us, x.bareP50Us, `${x.scenario}: one trial, its bare round trip is the median`);
  }
  t.ok(doc.results[1].ratio > 0, '1to1-1514 has a ratio');
});

t.test('--all and --scenario together are refused', async (t) => {
  const r = await runCli(['bench', '--all', '--scenario', '1to1-60'], { timeoutMs: 10000 });
  t.equal(r.code, 1);
  t.match(r.stderr, /--all and --scenario/);
});

t.test('on a terminal: one line per scenario that rewrites itself, then ends as the summary', async (t) => {
  // util-linux `script` gives the CLI a pseudo-terminal; stdout and stderr both arrive on it.
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('script', ['--version'], { stdio: 'ignore' }).error) {
    t.pass('terminal progress', { skip: 'util-linux script(1) is not installed: no pseudo-terminal to test with' });
    return;
  }
  const { CLI, cliEnv } = await import('./helpers/cli.js');
  const cmd = [process.execPath, CLI, 'bench', '--scenario', '1to1-60', '--scenario', 'rtt', '--trials', '2', '--duration', '0.1', '--warmup', '0.05']
    .map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8', env: cliEnv(), timeout: 60000 });
  t.equal(r.status, 0, r.stderr);
  const out = r.stdout.replace(/\r\n/g, '\n');
  const lines = out.split('\n');
  // Each scenario's line: progress states separated by "\r\x1b[K", ending with its summary.
  for (const [i, name] of ['1to1-60', 'rtt-spin', 'rtt-sleep'].entries()) {
    const line = lines.find((l) => l.includes(`[${i + 1}/3] ${name} `)) ?? '';
    const states = line.split('\r\x1b[K').filter((x) => x !== '');
    t.ok(states.length >= 3, `${name}: ${states.length} states on one line`);
    t.match(states[0], new RegExp(`^\\[${i + 1}/3\\] ${name}\\s+trial 1/2: `), `${name}: starts with trial 1`);
    t.ok(states.some((x) => /trial 2\/2: /.test(x)), `${name}: then trial 2`);
    t.match(states.at(-1), new RegExp(`^\\[${i + 1}/3\\] ${name}\\s+(\\d|rtt p50)`), `${name}: ends as its summary`);
  }
  t.match(out, /^system\s+scenario\s+frame\s+Mpps/m, 'then the table');
});

t.test('the table: a header, then one row per system and scenario with figures that agree', async (t) => {
  const r = await runCli(['bench', '--scenario', '1to1-60', '--scenario', 'rtt', '--trials', '1', '--duration', '0.3', '--warmup', '0.1'], { timeoutMs: 120_000 });
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.match(lines[0], /^vswitch bench: .*node v\d+.*load .* at start, .* at end, 1 trials of 0\.3 s/, 'a line describing the run');
  const h = lines.findIndex((l) => /^system\s+scenario/.test(l));
  t.match(lines[h], /^system\s+scenario\s+frame\s+Mpps\s+Gbit\/s\s+ref Mpps\s+x ref\s+bound\s+x bound\s+spread \(Mpps\)/, 'the column header');
  const rows = lines.slice(h + 1).map((l) => l.trim().split(/\s+/));
  t.same(rows.map((x) => x.slice(0, 3)), [['vswitch', '1to1-60', '60'], ['vswitch', 'rtt-spin', '60'], ['vswitch', 'rtt-sleep', '60']], 'one row per scenario');
  const [, , , mpps, gbps, ref, xref, bound, xbound] = rows[0].map(Number);
  t.ok(mpps > 0 && ref > 0 && bound > 0, `rates are positive (${mpps} Mpps, reference ${ref}, bound ${bound})`);
  // The table rounds (Mpps to 3 decimals, ref and bound to 2, ratios to 3): the ratio of the
  // printed figures must agree with the printed ratio within that rounding. (On a busy machine the
  // reference can be as low as 0.06 Mpps, where 2 decimals are a wide interval.)
  const agrees = (ratio: number, num: number, den: number) =>
    ratio + 0.0005 >= (num - 0.0005) / (den + 0.005) && ratio - 0.0005 <= (num + 0.0005) / Math.max(1e-9, den - 0.005);
  t.ok(agrees(xref, mpps, ref), `x ref ${xref} = Mpps / reference (${(mpps / ref).toFixed(3)}, within the table's rounding)`);
  t.ok(agrees(xbound, mpps, bound), `x bound ${xbound} = Mpps / bound (${(mpps / bound).toFixed(3)}, within the table's rounding)`);
  t.ok(Math.abs(gbps - (mpps * 60 * 8) / 1000) < 0.02, `Gbit/s ${gbps} = Mpps × 60 bytes × 8`);
  for (const row of rows.slice(1)) t.match(row.join(' '), /p50 [\d.]+ us, p99 [\d.]+ us, bare p50 [\d.]+ us/, `${row[1]}: p50, p99 and the bare round trip instead of ratios`);
});
