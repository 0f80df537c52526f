#!/usr/bin/env node
/**
 * Bridge-alone benchmark: sender Workers → receiver Workers through one bridge, with the
 * copy-only bound measured in the same run. Scenarios: 1to1-60, 1to1-1514, 2to1-60, 1to4-bcast-60.
 *   node dist/perf/bridge-bench.js [--duration S] [--trials N] [--scenario NAME]... [--json]
 */
import { Worker } from 'node:worker_threads';
import { Bridge } from '#bridge';

interface Scenario { name: string; senders: number; receivers: number; frameLen: number; bcast: boolean }
const SCENARIOS: Scenario[] = [
  { name: '1to1-60', senders: 1, receivers: 1, frameLen: 60, bcast: false },
  { name: '1to1-1514', senders: 1, receivers: 1, frameLen: 1514, bcast: false },
  { name: '2to1-60', senders: 2, receivers: 1, frameLen: 60, bcast: false },
  { name: '1to4-bcast-60', senders: 1, receivers: 4, frameLen: 60, bcast: true },
];

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}
const duration = Number(arg('--duration', '2'));
const trials = Number(arg('--trials', '3'));
const json = process.argv.includes('--json');
const wanted = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--scenario' ? [a] : []));
const batch = Number(arg('--batch', '1024'));

const workerUrl = new URL('./bridge-worker.js', import.meta.url);
const macOf = (i: number) => [0x02, 0, 0, 0, 0x10, i];

async function run(roles: { role: string; port: number; dst?: number[]; src?: number[] }[], b: Bridge, frameLen: number): Promise<Float64Array> {
  const ctl = new SharedArrayBuffer(64 + 8 * 64);
  const res = new Float64Array(ctl, 64);
  const workers = roles.map((r, k) => new Worker(workerUrl, {
    workerData: { role: r.role, sab: b.sab, ctl, port: r.port, slot: 2 * k, frameLen, dst: r.dst ?? [], src: r.src ?? [], batch },
  }));
  await Promise.all(workers.map((w) => new Promise<void>((ok, ko) => { w.once('message', () => ok()); w.once('error', ko); })));
  const i32 = new Int32Array(ctl);
  const t0 = performance.now();
  Atomics.store(i32, 0, 1);
  Atomics.notify(i32, 0);
  await new Promise((r) => setTimeout(r, duration * 1000));
  Atomics.store(i32, 1, 1);
  const elapsed = (performance.now() - t0) / 1000;
  await Promise.all(workers.map((w) => new Promise((ok) => w.once('exit', ok))));
  const out = new Float64Array(res.length + 1);
  out.set(res);
  out[res.length] = elapsed;
  return out;
}

async function copyBound(frameLen: number): Promise<number> {
  const b = Bridge.create('valecopy', { maxPorts: 1 });
  b.addPort('valecopy:x');
  const r = await run([{ role: 'copy', port: 0 }], b, frameLen);
  return r[0] / r[r.length - 1] / 1e6;
}

async function scenario(s: Scenario): Promise<{ mpps: number; gbps: number }> {
  const b = Bridge.create('valebench', { maxPorts: s.senders + s.receivers });
  const rxPorts: number[] = [];
  const roles: { role: string; port: number; dst?: number[]; src?: number[] }[] = [];
  for (let i = 0; i < s.receivers; i++) {
    const p = b.addPort(`valebench:r${i}`);
    rxPorts.push(p);
    roles.push({ role: 'rx', port: p });
  }
  for (let i = 0; i < s.senders; i++) {
    const p = b.addPort(`valebench:s${i}`);
    roles.push({ role: 'tx', port: p, dst: s.bcast ? [255, 255, 255, 255, 255, 255] : macOf(0), src: macOf(100 + i) });
  }
  // Teach the bridge where receiver 0's MAC lives (one frame from it), as a real peer would.
  if (!s.bcast) {
    const { Forwarder } = await import('#bridge');
    const fw = new Forwarder(b, 0);
    const tx = b.txRing(rxPorts[0]);
    const off = tx.slotBuf(0);
    b.region.u8.set([255, 255, 255, 255, 255, 255, ...macOf(0), 8, 0], off);
    tx.setLen(0, 60);
    tx.advance(1);
    fw.txsync(rxPorts[0]);
    for (let p = 0; p < b.maxPorts; p++) if (b.portState(p) === 1) { const rx = b.rxRing(p); rx.advance(rx.space()); }
    for (let p = 0; p < b.maxPorts; p++) if (b.portState(p) === 1) b.resetCounters(p);
  }
  const r = await run(roles, b, s.frameLen);
  const elapsed = r[r.length - 1];
  let frames = 0;
  let bytes = 0;
  for (let k = 0; k < s.receivers; k++) { frames += r[2 * k]; bytes += r[2 * k + 1]; }
  return { mpps: frames / elapsed / 1e6, gbps: bytes * 8 / elapsed / 1e9 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const results = [];
for (const s of SCENARIOS.filter((x) => wanted.length === 0 || wanted.includes(x.name))) {
  const rows: { mpps: number; gbps: number; bound: number }[] = [];
  for (let t = 0; t < trials; t++) {
    const bound = await copyBound(s.frameLen);
    const m = await scenario(s);
    rows.push({ ...m, bound });
    if (!json) process.stderr.write(`  ${s.name} trial ${t + 1}/${trials}: ${m.mpps.toFixed(2)} Mpps, bound ${bound.toFixed(2)} Mpps\n`);
  }
  const mpps = median(rows.map((r) => r.mpps));
  const bound = median(rows.map((r) => r.bound));
  results.push({
    system: 'vswitch', scenario: s.name, frameSize: s.frameLen, mpps, gbps: median(rows.map((r) => r.gbps)), copyBoundMpps: bound,
    ratio: median(rows.map((r) => r.mpps / r.bound)), trials: rows,
  });
}
if (json) {
  console.log(JSON.stringify({ results }, null, 2));
} else {
  console.log('scenario        frame  Mpps    Gbit/s  bound Mpps  ratio  (median of trials; min-max Mpps)');
  for (const r of results) {
    const ms = r.trials.map((x) => x.mpps);
    console.log(`${r.scenario.padEnd(15)} ${String(r.frameSize).padStart(5)}  ${r.mpps.toFixed(2).padStart(6)}  ${r.gbps.toFixed(2).padStart(6)}  ${r.copyBoundMpps.toFixed(2).padStart(10)}  ${r.ratio.toFixed(2).padStart(5)}  (${Math.min(...ms).toFixed(2)}-${Math.max(...ms).toFixed(2)})`);
  }
}
