// perf/forward-cpu.ts: CPU time per forwarded frame, for A/B comparisons on busy machines.
// perf/rtt-floor.ts: the two bounds under rtt-spin (a cache line each way; a round trip's CPU).
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../dist/perf/forward-cpu.js', import.meta.url));

t.test('forward-cpu measures this tree, and another build given with --bridge', async (t) => {
  const bridge = fileURLToPath(new URL('../lib/bridge/dist/index.js', import.meta.url));
  for (const args of [['--json', '--batch', '32'], ['--json', '--batch', '32', '--len', '1514', '--senders', '2', '--bridge', bridge]]) {
    const { stdout } = await run(process.execPath, [script, ...args], { timeout: 120_000 });
    const r = JSON.parse(stdout) as { len: number; senders: number; nsPerFrame: { min: number; median: number; max: number } };
    t.ok(r.nsPerFrame.min > 0 && r.nsPerFrame.min <= r.nsPerFrame.median && r.nsPerFrame.median <= r.nsPerFrame.max,
      `${args.join(' ')}: ${r.nsPerFrame.median.toFixed(1)} ns per frame (min ${r.nsPerFrame.min.toFixed(1)})`);
  }
  await t.rejects(run(process.execPath, [script, '--len', '10']), /--len must be 60\.\.2048/, 'bad input is refused with a message');
});

t.test('rtt-floor measures a word ping-pong between two Workers and a round trip\'s CPU through the Port API', async (t) => {
  const floor = fileURLToPath(new URL('../dist/perf/rtt-floor.js', import.meta.url));
  // Few flips: two spinning Workers on a busy machine may each wait for a time slice per flip.
  const { stdout } = await run(process.execPath, [floor, '--json', '--rounds', '1', '--flips', '500', '--trips', '20000'], { timeout: 120_000 });
  const r = JSON.parse(stdout) as { transferNsPerRoundTrip: { min: number; median: number }; cpuNsPerRoundTrip: { min: number; median: number } };
  t.ok(r.transferNsPerRoundTrip.median > 0 && Number.isFinite(r.transferNsPerRoundTrip.median), `word ping-pong: ${r.transferNsPerRoundTrip.median.toFixed(0)} ns per round trip`);
  // A round trip is two txsyncs, two receives and a copy: it cannot cost less than a few dozen ns.
  t.ok(r.cpuNsPerRoundTrip.median > 50 && Number.isFinite(r.cpuNsPerRoundTrip.median), `Port API round trip: ${r.cpuNsPerRoundTrip.median.toFixed(0)} ns CPU`);
  await t.rejects(run(process.execPath, [floor, '--rounds', '0']), /--rounds must be 1\.\.100/, 'bad input is refused with a message');
});
