/**
 * `vswitch bench`: named scenarios over the public API and the pkt-gen engine, each run for
 * several trials, each trial paired with a copy-bound measurement taken just before it on the
 * same machine (the same copyFrame of the same frames inside one region, no rings, no lookup).
 * Shared machines drift from run to run, so the figure that compares across runs is the ratio
 * to that bound; medians are reported with their spread.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { Switch } from '../../core/switch.js';
import { startPktGen, type PktGenJob } from '../pktgen/runner.js';
import { LIVE_BYTES, LIVE_PACKETS } from '../pktgen/engine.js';
import type { PktGenOptions, RttStats } from '../pktgen/types.js';
import { VswitchError } from '../../core/errors.js';
import { rxMac, txMac } from './peers/common.js';
import { PEERS, PEER_SCENARIOS, type Peer } from './peers/index.js';

export interface Scenario {
  name: string;
  /** What it measures, for --help and reports. */
  describe: string;
  senders: number;
  receivers: number;
  frameLen: number;
  bcast?: boolean;
  batch?: number;
  /** Extra idle ports attached to the bridge. */
  idlePorts?: number;
  /** Ping-pong latency instead of throughput. */
  rtt?: 'spin' | 'sleep';
}

const sweepBatches = [1, 4, 16, 64, 256, 1024];
const sweepPorts = [2, 8, 32, 64];

export const SCENARIO_GROUPS: Record<string, Scenario[]> = {
  '1to1-60': [{ name: '1to1-60', describe: 'one sender to one receiver, 60-byte frames', senders: 1, receivers: 1, frameLen: 60 }],
  '1to1-1514': [{ name: '1to1-1514', describe: 'one sender to one receiver, 1514-byte frames', senders: 1, receivers: 1, frameLen: 1514 }],
  '2to1-60': [{ name: '2to1-60', describe: 'two senders to one receiver, 60-byte frames', senders: 2, receivers: 1, frameLen: 60 }],
  '1to4-bcast-60': [{ name: '1to4-bcast-60', describe: 'one sender broadcasting to four receivers', senders: 1, receivers: 4, frameLen: 60, bcast: true }],
  'batch-sweep': sweepBatches.map((b) => ({
    name: `batch-${b}`, describe: `1to1-60 with sender batches of ${b}`, senders: 1, receivers: 1, frameLen: 60, batch: b,
  })),
  'ports-sweep': sweepPorts.map((n) => ({
    name: `ports-${n}`, describe: `1to1-60 on a bridge with ${n} ports attached`, senders: 1, receivers: 1, frameLen: 60, idlePorts: n - 2,
  })),
  rtt: [
    { name: 'rtt-spin', describe: 'ping-pong round trip, both sides spinning', senders: 1, receivers: 1, frameLen: 60, rtt: 'spin' },
    { name: 'rtt-sleep', describe: 'ping-pong round trip, both sides sleeping on Atomics.wait', senders: 1, receivers: 1, frameLen: 60, rtt: 'sleep' },
  ],
};

export const SCENARIO_NAMES = Object.keys(SCENARIO_GROUPS);

export interface Trial {
  mpps: number;
  gbps: number;
  copyBoundMpps: number;
  ratio: number;
  rtt?: RttStats;
}

export interface BenchResult {
  system: string;
  scenario: string;
  frameSize: number;
  mpps: number;
  gbps: number;
  copyBoundMpps: number;
  ratio: number;
  spread: { minMpps: number; maxMpps: number; minRatio: number; maxRatio: number };
  rttP50Us?: number;
  /** Peers only: vswitch's median Mpps on the same scenario divided by this one's. */
  speedup?: number;
  /** vde_switch only: frames its closed-loop driver gave up on during the measured windows. */
  lost?: number;
  trials: Trial[];
}

export interface PeersInfo {
  /** Peers measured, with what each one is. */
  systems: { system: string; describe: string }[];
  /** Peers not measured, and why. */
  skipped: { system: string; reason: string }[];
  /** Scenarios peers run (others have vswitch only). */
  scenarios: string[];
}

export interface BenchReport {
  /** `loadavg` is taken at the end of the run, `loadavgAtStart` before it (from os.loadavg()). */
  machine: { date: string; node: string; cpus: number; cpuModel: string; totalMemGiB: number; platform: string; loadavg: number[]; loadavgAtStart?: number[] };
  settings: { trials: number; duration: number; warmup: number };
  results: BenchResult[];
  /** Present when run with `peers: true` (--peers). */
  peers?: PeersInfo;
}

export interface BenchOptions {
  scenarios?: string[];
  trials?: number;
  /** Seconds measured per trial. */
  duration?: number;
  /** Seconds of traffic before measuring. */
  warmup?: number;
  /** Also measure the peers (postMessage Worker switch, vde_switch) on the scenarios they run. */
  peers?: boolean;
  onProgress?: (msg: string) => void;
  /** One-line notices, e.g. a peer skipped and why. */
  onNotice?: (msg: string) => void;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const copyUrl = new URL('./copy-worker.js', import.meta.url);
let switchSeq = 0;

/** The copy bound, in Mpps, for frames of `frameLen` bytes. */
export async function copyBound(frameLen: number, warmup: number, duration: number): Promise<number> {
  const stop = new SharedArrayBuffer(4);
  const live = new SharedArrayBuffer(16);
  const w = new Worker(copyUrl, { workerData: { frameLen, bufSize: 2048, slots: 1024, stop, live } });
  await new Promise<void>((ok, ko) => { w.once('message', () => ok()); w.once('error', ko); });
  const l = new Float64Array(live);
  await sleep(warmup * 1000);
  const f1 = l[0];
  const t1 = performance.now();
  await sleep(duration * 1000);
  const f2 = l[0];
  const t2 = performance.now();
  Atomics.store(new Int32Array(stop), 0, 1);
  await new Promise((r) => w.once('exit', r));
  return (f2 - f1) / ((t2 - t1) / 1000) / 1e6;
}

/** One trial of a throughput or latency scenario on a fresh embedded switch. */
export async function runScenario(s: Scenario, warmup: number, duration: number): Promise<{ mpps: number; gbps: number; rtt?: RttStats }> {
  const name = `bench-${process.pid}-${++switchSeq}`;
  const ports = s.senders + s.receivers + (s.idlePorts ?? 0);
  const sw = new Switch({ name, bridge: { maxPorts: Math.max(2, ports) } });
  const jobs: PktGenJob[] = [];
  try {
    for (let i = 0; i < (s.idlePorts ?? 0); i++) sw.createPort(`valeb:idle${i}`);
    if (s.rtt) {
      const spin = s.rtt === 'spin';
      const pong = startPktGen({ port: 'valeb:pong', func: 'pong', switch: name, spin, srcMac: rxMac(0) });
      jobs.push(pong);
      await pong.started;
      const ping = startPktGen({
        port: 'valeb:ping', func: 'ping', switch: name, spin, srcMac: txMac(0), dstMac: rxMac(0), duration: warmup + duration, reportMs: 100000,
      });
      jobs.push(ping);
      const fin = await ping.done;
      return { mpps: fin.pps / 1e6, gbps: fin.bps / 1e9, rtt: fin.rtt };
    }
    // Receivers first; each teaches the bridge its MAC with one frame, as a real host would.
    const rx: PktGenJob[] = [];
    for (let i = 0; i < s.receivers; i++) {
      const port = `valeb:r${i}`;
      sw.createPort(port); // kept across the hello's close: the receiver job then holds it alone
      const p = await sw.open(port);
      const f = new Uint8Array(60);
      f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
      f.set(rxMac(i).split(':').map((x) => parseInt(x, 16)), 6);
      f[12] = 0x08;
      p.send(f);
      await p.close();
      const job = startPktGen({ port, func: 'rx', switch: name, batch: 1024 });
      rx.push(job);
      jobs.push(job);
      await job.started;
    }
    const dstMac = s.bcast ? 'ff:ff:ff:ff:ff:ff' : rxMac(0);
    for (let i = 0; i < s.senders; i++) {
      const o: PktGenOptions = {
        port: `valeb:s${i}`, func: 'tx', switch: name, length: s.frameLen, batch: s.batch ?? 1024, srcMac: txMac(i), dstMac,
      };
      const job = startPktGen(o);
      jobs.push(job);
      await job.started;
    }
    await sleep(warmup * 1000);
    const sum = (k: number) => rx.reduce((a, j) => a + j.live[k], 0);
    const p1 = sum(LIVE_PACKETS);
    const b1 = sum(LIVE_BYTES);
    const t1 = performance.now();
    await sleep(duration * 1000);
    const p2 = sum(LIVE_PACKETS);
    const b2 = sum(LIVE_BYTES);
    const t2 = performance.now();
    const secs = (t2 - t1) / 1000;
    return { mpps: (p2 - p1) / secs / 1e6, gbps: ((b2 - b1) * 8) / secs / 1e9 };
  } finally {
    await Promise.allSettled(jobs.map((j) => j.stop()));
    await sw.close();
  }
}

export function expandScenarios(names: string[] | undefined): Scenario[] {
  const wanted = names && names.length > 0 ? names : SCENARIO_NAMES;
  const out: Scenario[] = [];
  for (const n of wanted) {
    const g = SCENARIO_GROUPS[n];
    if (!g) throw new VswitchError('ERR_BAD_ARG', `unknown scenario ${JSON.stringify(n)}: use ${SCENARIO_NAMES.join(', ')}`);
    out.push(...g);
  }
  return out;
}

export function machineInfo(): BenchReport['machine'] {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(), node: process.version, cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}`, loadavg: os.loadavg(),
  };
}

function summarize(system: string, s: Scenario, ts: Trial[]): BenchResult {
  const mp = ts.map((x) => x.mpps);
  const ra = ts.map((x) => x.ratio);
  return {
    system, scenario: s.name, frameSize: s.frameLen, mpps: median(mp), gbps: median(ts.map((x) => x.gbps)),
    copyBoundMpps: median(ts.map((x) => x.copyBoundMpps)), ratio: median(ra),
    spread: { minMpps: Math.min(...mp), maxMpps: Math.max(...mp), minRatio: Math.min(...ra), maxRatio: Math.max(...ra) },
    trials: ts,
  };
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const trials = opts.trials ?? 3;
  const duration = opts.duration ?? 2;
  const warmup = opts.warmup ?? 0.3;
  if (!Number.isInteger(trials) || trials < 1 || trials > 100) throw new VswitchError('ERR_BAD_ARG', `--trials must be an integer in [1, 100], got ${trials}`);
  if (!(duration > 0 && duration <= 3600)) throw new VswitchError('ERR_BAD_ARG', `--duration must be in (0, 3600] seconds, got ${duration}`);
  if (!(warmup >= 0 && warmup <= 3600)) throw new VswitchError('ERR_BAD_ARG', `--warmup must be in [0, 3600] seconds, got ${warmup}`);
  const scenarios = expandScenarios(opts.scenarios);
  const loadavgAtStart = os.loadavg();
  const progress = opts.onProgress ?? (() => {});
  const notice = opts.onNotice ?? (() => {});
  let peers: Peer[] = [];
  let peersInfo: PeersInfo | undefined;
  if (opts.peers) {
    peersInfo = { systems: [], skipped: [], scenarios: PEER_SCENARIOS };
    for (const p of PEERS) {
      const why = p.unavailable();
      if (why) {
        peersInfo.skipped.push({ system: p.system, reason: why });
        notice(`--peers: ${p.system} skipped: ${why}`);
      } else {
        peers.push(p);
        peersInfo.systems.push({ system: p.system, describe: p.describe });
      }
    }
  }
  const results: BenchResult[] = [];
  let step = 0;
  const steps = scenarios.length * trials;
  for (const s of scenarios) {
    const ts: Trial[] = [];
    const runPeers = PEER_SCENARIOS.includes(s.name) ? peers : [];
    const peerTrials = new Map<Peer, Trial[]>(runPeers.map((p) => [p, []]));
    const peerLost = new Map<Peer, number>();
    for (let t = 0; t < trials; t++) {
      const head = `[${++step}/${steps}] ${s.name} trial ${t + 1}/${trials}`;
      progress(`${head}: copy bound…`);
      const bound = await copyBound(s.frameLen, warmup, duration);
      progress(`${head}: running…`);
      const r = await runScenario(s, warmup, duration);
      ts.push({ mpps: r.mpps, gbps: r.gbps, copyBoundMpps: bound, ratio: r.mpps / bound, ...(r.rtt ? { rtt: r.rtt } : {}) });
      for (const p of runPeers) {
        const pt = peerTrials.get(p);
        if (!pt) continue;
        progress(`${head}: ${p.system}…`);
        try {
          const pr = await p.run(s, warmup, duration);
          pt.push({ mpps: pr.mpps, gbps: pr.gbps, copyBoundMpps: bound, ratio: pr.mpps / bound });
          if (pr.lost !== undefined) peerLost.set(p, (peerLost.get(p) ?? 0) + pr.lost);
        } catch (e) {
          // A peer that breaks is reported and not run again; what it measured before stands,
          // and so do vswitch's own figures.
          const reason = `failed on ${s.name}: ${(e as Error).message.split('\n')[0]}`;
          notice(`--peers: ${p.system} ${reason}`);
          peers = peers.filter((x) => x !== p);
          peersInfo!.skipped.push({ system: p.system, reason });
          peerTrials.delete(p);
        }
      }
    }
    const res = summarize('vswitch', s, ts);
    if (s.rtt) res.rttP50Us = median(ts.map((x) => x.rtt?.p50Us ?? NaN));
    results.push(res);
    for (const [p, pt] of peerTrials) {
      const pr = summarize(p.system, s, pt);
      pr.speedup = res.mpps / pr.mpps;
      if (peerLost.has(p)) pr.lost = peerLost.get(p);
      results.push(pr);
    }
  }
  return { machine: { ...machineInfo(), loadavgAtStart }, settings: { trials, duration, warmup }, results, ...(peersInfo ? { peers: peersInfo } : {}) };
}

export interface Regression {
  scenario: string;
  system: string;
  baselineRatio: number;
  ratio: number;
  dropPct: number;
}

/**
 * Reads a baseline written by `--save` (a BenchReport). Throws a one-line VswitchError naming
 * what is wrong: not JSON, no `results` array, or a result without system/scenario/ratio.
 */
export function parseBaseline(text: string, file: string): BenchReport {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new VswitchError('ERR_BAD_ARG', `baseline ${file} is not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const results = (doc as { results?: unknown } | null)?.results;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(results)) {
    throw new VswitchError('ERR_BAD_ARG', `baseline ${file} has no "results" array (write one with vswitch bench --save FILE)`);
  }
  results.forEach((r: unknown, i) => {
    const x = r as Partial<BenchResult> | null;
    if (typeof x !== 'object' || x === null || typeof x.system !== 'string' || typeof x.scenario !== 'string' || typeof x.ratio !== 'number' || !Number.isFinite(x.ratio)) {
      throw new VswitchError('ERR_BAD_ARG', `baseline ${file}: results[${i}] needs "system" and "scenario" strings and a numeric "ratio"`);
    }
  });
  return doc as BenchReport;
}

/**
 * Compares each vswitch result's median ratio with the baseline's for the same scenario.
 * Returns the scenarios that fell more than `tolerancePct` below it (latency scenarios compare
 * their round-trip rate the same way). Scenarios missing from the baseline are not compared, nor
 * are peers: a regression is vswitch getting slower, not vde_switch.
 */
export function compareBaseline(report: BenchReport, baseline: BenchReport, tolerancePct: number): { regressions: Regression[]; compared: number } {
  const regressions: Regression[] = [];
  let compared = 0;
  for (const r of report.results) {
    if (r.system !== 'vswitch') continue;
    const b = baseline.results.find((x) => x.scenario === r.scenario && x.system === r.system);
    if (!b || !(b.ratio > 0)) continue;
    compared++;
    const dropPct = ((b.ratio - r.ratio) / b.ratio) * 100;
    if (dropPct > tolerancePct) regressions.push({ scenario: r.scenario, system: r.system, baselineRatio: b.ratio, ratio: r.ratio, dropPct });
  }
  return { regressions, compared };
}
