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
    settings: { trials: 1, duration: 0.3, warmup: 0.1 },
    results: [{
      system: 'vswitch', scenario: '1to1-60', frameSize: 60, mpps: 1, gbps: 1, copyBoundMpps: 1, ratio,
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
  for (const k of ['mpps', 'gbps', 'copyBoundMpps', 'ratio']) t.ok(typeof res[k] === 'number' && res[k] > 0, `${k} is a positive number (${res[k]})`);
  t.ok(Array.isArray(res.trials) && res.trials.length === 1, 'one trial');
  t.ok(Math.abs(res.ratio - res.mpps / res.copyBoundMpps) < 1e-9, 'ratio = mpps / copy bound');
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

t.test('the table: a header, then one row per system and scenario with figures that agree', async (t) => {
  const r = await runCli(['bench', '--scenario', '1to1-60', '--scenario', 'rtt', '--trials', '1', '--duration', '0.3', '--warmup', '0.1'], { timeoutMs: 120_000 });
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.match(lines[0], /^vswitch bench: .*node v\d+.*load .* at start, .* at end, 1 trials of 0\.3 s/, 'a line describing the run');
  t.match(lines[1], /^system\s+scenario\s+frame\s+Mpps\s+Gbit\/s\s+bound Mpps\s+ratio\s+spread \(Mpps\)\s+rtt p50/, 'the column header');
  const rows = lines.slice(2).map((l) => l.trim().split(/\s+/));
  t.same(rows.map((x) => x.slice(0, 3)), [['vswitch', '1to1-60', '60'], ['vswitch', 'rtt-spin', '60'], ['vswitch', 'rtt-sleep', '60']], 'one row per scenario');
  const [, , , mpps, gbps, bound, ratio] = rows[0].map(Number);
  t.ok(mpps > 0 && bound > 0, `rates are positive (${mpps} Mpps, bound ${bound})`);
  t.ok(Math.abs(ratio - mpps / bound) < 0.002, `ratio ${ratio} = Mpps / bound (${(mpps / bound).toFixed(3)})`);
  t.ok(Math.abs(gbps - (mpps * 60 * 8) / 1000) < 0.02, `Gbit/s ${gbps} = Mpps × 60 bytes × 8`);
  for (const row of rows.slice(1)) t.match(row.join(' '), /\d+(\.\d+)? ?us$/, `${row[1]}: a round-trip p50 in the last column`);
});
