// perf/forward-cpu.ts: CPU time per forwarded frame, for A/B comparisons on busy machines.
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
