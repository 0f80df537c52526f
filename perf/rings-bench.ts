/**
 * Ring benchmark: how much does moving a frame through one shared-memory-ring cost, compared
 * with only copying it?
 *
 * - ring: a producer Worker (kernel side of one RX ring, 1024 slots of 2048 B) copies a prepared
 *   frame into each free slot's buffer with copyFrame, sets len, and publishes tail once per
 *   batch; a consumer Worker reads each len and advances head once per batch. Both spin.
 *   Two producer loops: `onepass` (copy and set len slot by slot) and `twopass` (first every
 *   len of the batch, then the copies); `--producer both` (default) measures both.
 * - copy bound: one Worker does the same copyFrame of the same frame from the same source into
 *   the same 1024 buffers, in the same batches, with no ring at all.
 *
 * Each measurement starts fresh Workers, lets them run `--warmup` ms (JIT), then counts frames
 * over `--duration` seconds from the main thread (which sleeps meanwhile). Trials alternate
 * ring and bound for every frame size, so machine noise hits both alike. Reported: the median
 * over `--trials` and the min–max spread. Ratio = ring Mpps / copy-bound Mpps of the same trial.
 * "others" is the share of all CPUs that other processes used during a measurement (from
 * /proc/stat minus this process's own CPU time): two spinning Workers on a 2-core machine
 * collapse when anything else runs, so trust only measurements where it is near 0.
 *
 *   node dist/perf/rings-bench.js [--duration 2] [--trials 3] [--sizes 60,1514] [--batch 256]
 *                                 [--slots 1024] [--warmup 300] [--producer onepass|twopass|both]
 *                                 [--max-others PCT] [--json]
 *
 * `--max-others PCT` repeats a measurement (up to 10 times, pausing in between) while other
 * processes used more than PCT % of the machine during it; the last attempt counts regardless
 * and the table shows the worst share kept.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { NetmapIf, Region, netmapIfBytes, transferable } from '#rings';
import { CMD_RUN, CMD_STOP, type BenchWorkerData, type BenchWorkerReport } from './rings-bench-worker.js';

const WORKER = new URL('./rings-bench-worker.js', import.meta.url);

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '2' },
    trials: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '60,1514' },
    batch: { type: 'string', default: '256' },
    slots: { type: 'string', default: '1024' },
    warmup: { type: 'string', default: '300' },
    producer: { type: 'string', default: 'both' },
    'max-others': { type: 'string', default: '100' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (opt.help) {
  console.log('usage: node dist/perf/rings-bench.js [--duration S] [--trials N] [--sizes 60,1514] [--batch N] [--slots N] [--warmup MS]\n' +
    '                                     [--producer onepass|twopass|both] [--max-others PCT] [--json]');
  process.exit(0);
}

function num(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`rings-bench: --${name} must be a number in [${min}, ${max}], got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

const durationMs = num('duration', opt.duration, 0.1, 600) * 1000;
const trials = Math.round(num('trials', opt.trials, 1, 100));
const batch = Math.round(num('batch', opt.batch, 1, 4096));
const slots = Math.round(num('slots', opt.slots, 2, 4096));
const warmupMs = num('warmup', opt.warmup, 0, 60_000);
const maxOthers = num('max-others', opt['max-others'], 0, 100) / 100;
const RETRIES = 10;
const sizes = opt.sizes.split(',').map((s) => Math.round(num('sizes', s, 1, 2048)));
const BUF_SIZE = 2048;
type Loop = 'onepass' | 'twopass';
if (!['onepass', 'twopass', 'both'].includes(opt.producer)) {
  console.error(`rings-bench: --producer must be onepass, twopass or both, got ${JSON.stringify(opt.producer)}`);
  process.exit(2);
}
const loops: Loop[] = opt.producer === 'both' ? ['onepass', 'twopass'] : [opt.producer as Loop];

interface Setup {
  region: Region;
  base: Omit<BenchWorkerData, 'role'>;
}

function setup(len: number, twoPass: boolean): Setup {
  const opts = { txRings: 0, rxRings: 1, rxSlots: slots, bufSize: BUF_SIZE, name: 'bench' };
  const bytes = netmapIfBytes(opts);
  const region = Region.create(Math.ceil((bytes + 3 * 64 + BUF_SIZE + 4 * 64) / 64) * 64);
  // control words, each on its own cache line, away from the ring header
  const cmd = region.alloc(64);
  const count = region.alloc(64);
  const ready = region.alloc(64);
  const src = region.alloc(BUF_SIZE);
  for (let j = 0; j < len; j++) region.u8[src + j] = (j * 37 + 11) & 0xff; // any bytes: copyFrame keeps them all
  const nif = NetmapIf.init(region, region.alloc(bytes), opts);
  return {
    region,
    base: { ring: transferable(nif.rxRings[0]), cmdW: cmd >>> 2, countW: count >>> 2, readyW: ready >>> 2, src, len, batch, twoPass },
  };
}

/** Busy and total CPU milliseconds of the whole machine, from /proc/stat (undefined elsewhere). */
function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: (total - f[3] - f[4]) * 10, total: total * 10 }; // USER_HZ = 100
  } catch {
    return undefined;
  }
}

interface Measurement {
  /** Frames per second counted by the consumer (or the copy worker) over the measured window. */
  fps: number;
  /** Share of all CPUs used by other processes meanwhile (NaN where /proc/stat is missing). */
  others: number;
  reports: BenchWorkerReport[];
}

/** Runs the given roles in fresh Workers: warm-up, then `durationMs` counted from the main thread. */
async function measure(len: number, roles: BenchWorkerData['role'][], twoPass = false): Promise<Measurement> {
  const { region, base } = setup(len, twoPass);
  const i32 = region.i32;
  const workers = roles.map((role) => new Worker(WORKER, { workerData: { role, ...base } satisfies BenchWorkerData }));
  const reports = workers.map((w) => new Promise<BenchWorkerReport>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`bench worker exited with code ${code} before reporting`)));
  }));
  try {
    while (Atomics.load(i32, base.readyW) < roles.length) await sleep(2);
    Atomics.store(i32, base.cmdW, CMD_RUN);
    Atomics.notify(i32, base.cmdW);
    await sleep(warmupMs);
    const m0 = machineCpu();
    const u0 = process.cpuUsage();
    const c0 = Atomics.load(i32, base.countW);
    const t0 = performance.now();
    await sleep(durationMs);
    const c1 = Atomics.load(i32, base.countW);
    const t1 = performance.now();
    const u1 = process.cpuUsage(u0);
    const m1 = machineCpu();
    Atomics.store(i32, base.cmdW, CMD_STOP);
    const rs = await Promise.all(reports);
    const others = m0 && m1 && m1.total > m0.total
      ? Math.max(0, (m1.busy - m0.busy - (u1.user + u1.system) / 1000) / (m1.total - m0.total)) : NaN;
    return { fps: ((c1 - c0) >>> 0) / ((t1 - t0) / 1000), others, reports: rs };
  } finally {
    Atomics.store(i32, base.cmdW, CMD_STOP);
    await Promise.allSettled(workers.map((w) => w.terminate()));
  }
}

interface Row {
  len: number;
  loop: Loop;
  ring: number[]; // Mpps per trial
  bound: number[]; // copy-bound Mpps of the same trial
  ratio: number[];
  others: number[]; // worst of the ring's and the bound's measurement
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
const gbps = (mpps: number, len: number) => (mpps * 1e6 * len * 8) / 1e9;
const pct = (x: number) => (Number.isNaN(x) ? 'n/a' : `${(x * 100).toFixed(0)}%`);
const worst = (xs: number[]) => xs.reduce((a, b) => (Number.isNaN(b) ? a : Number.isNaN(a) ? b : Math.max(a, b)), Number.NaN);

/** measure(), repeated while other processes took more than --max-others of the machine. */
async function measureQuiet(label: string, len: number, roles: BenchWorkerData['role'][], twoPass = false): Promise<Measurement> {
  for (let attempt = 1; ; attempt++) {
    const m = await measure(len, roles, twoPass);
    if (!(m.others > maxOthers) || attempt > RETRIES) return m;
    if (!opt.json) console.error(`  ${label}: others used ${pct(m.others)} of the CPUs (${(m.fps / 1e6).toFixed(2)} Mpps), measuring again`);
    await sleep(1000 * attempt);
  }
}

const rows: Row[] = sizes.flatMap((len) => loops.map((loop) => ({ len, loop, ring: [], bound: [], ratio: [], others: [] })));
for (let trial = 0; trial < trials; trial++) {
  for (const len of sizes) {
    const bound = await measureQuiet(`${len} B copy bound`, len, ['copy']);
    const b = bound.fps / 1e6;
    if (!opt.json) console.error(`trial ${trial + 1}/${trials} ${len} B: copy bound ${b.toFixed(2)} Mpps, others ${pct(bound.others)}`);
    for (const row of rows.filter((r) => r.len === len)) {
      const ring = await measureQuiet(`${len} B ring (${row.loop})`, len, ['producer', 'consumer'], row.loop === 'twopass');
      const r = ring.fps / 1e6;
      row.ring.push(r);
      row.bound.push(b);
      row.ratio.push(r / b);
      row.others.push(worst([ring.others, bound.others]));
      if (!opt.json) {
        const [p, c] = ring.reports;
        console.error(`trial ${trial + 1}/${trials} ${len} B: ring (${row.loop}) ${r.toFixed(2)} Mpps, ratio ${(r / b).toFixed(2)}, ` +
          `others ${pct(ring.others)} (producer avg batch ${(p.frames / Math.max(1, p.batches)).toFixed(0)}, ring full ${p.idle} polls; ` +
          `consumer avg batch ${(c.frames / Math.max(1, c.batches)).toFixed(0)}, empty ${c.idle} polls)`);
      }
    }
  }
}

const stats = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), trials: xs });
if (opt.json) {
  console.log(JSON.stringify({
    node: process.version, slots, bufSize: BUF_SIZE, batch, durationMs, warmupMs, trials,
    results: rows.map((r) => ({
      len: r.len,
      producer: r.loop,
      ringMpps: stats(r.ring),
      ringGbps: median(r.ring.map((m) => gbps(m, r.len))),
      boundMpps: stats(r.bound),
      ratio: stats(r.ratio),
      othersCpu: r.others,
    })),
  }, null, 2));
} else {
  const head = ['frame', 'producer', 'ring Mpps', 'ring Gbit/s', 'copy-bound Mpps', 'ratio ring/bound', 'others (max)'];
  const lines = rows.map((r) => [
    `${r.len} B`,
    r.loop,
    `${median(r.ring).toFixed(2)} (${spread(r.ring, 2)})`,
    `${median(r.ring.map((m) => gbps(m, r.len))).toFixed(1)}`,
    `${median(r.bound).toFixed(2)} (${spread(r.bound, 2)})`,
    `${median(r.ratio).toFixed(2)} (${spread(r.ratio, 2)})`,
    pct(worst(r.others)),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  console.log(`ring: ${slots} slots × ${BUF_SIZE} B, batch ≤ ${batch}, both sides spinning; ${trials} trial(s) of ${durationMs / 1000} s; ` +
    'median (min–max); Gbit/s counts frame bytes only; others = CPU share used by other processes');
  console.log(fmt(head));
  console.log(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
}
