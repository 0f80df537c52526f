/**
 * `vswitch bench`: named scenarios over the public API and the pkt-gen engine, each run for
 * several trials. Every throughput trial is paired with two references measured just before it
 * on the same machine, with the same frames and the same sender batch:
 *
 *  - the reference data path (ref-worker.ts): two Workers, one ring, a hash lookup and one
 *    copy per frame, nothing else. The ratio rate / reference is what travels across machines
 *    (both sides pay the same cross-core traffic and copy), so it is what baselines compare.
 *  - the copy bound: the same copies in one thread with no ring at all, shown alongside.
 *
 * Latency scenarios (rtt) report p50/p99 round trips and no ratio. Medians over trials, with
 * their spread.
 */
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Switch } from '../../core/switch.js';
import { startPktGen, type PktGenJob } from '../pktgen/runner.js';
import { LIVE_BYTES, LIVE_PACKETS } from '../pktgen/engine.js';
import type { PktGenOptions, RttStats } from '../pktgen/types.js';
import { VswitchError } from '../../core/errors.js';
import { rxMac, txMac } from './peers/common.js';
import { PEERS, PEER_SCENARIOS, type Peer } from './peers/index.js';
import { referencePath, bareRtt } from './reference.js';

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
const sweepSizes = [128, 256, 512, 1024];

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
  'size-sweep': sweepSizes.map((n) => ({
    name: `size-${n}`, describe: `1to1 with ${n}-byte frames (with 1to1-60 and 1to1-1514: frame size vs Gbit/s)`, senders: 1, receivers: 1, frameLen: n,
  })),
  rtt: [
    { name: 'rtt-spin', describe: 'ping-pong round trip, both sides spinning', senders: 1, receivers: 1, frameLen: 60, rtt: 'spin' },
    { name: 'rtt-sleep', describe: 'ping-pong round trip, both sides sleeping on Atomics.wait', senders: 1, receivers: 1, frameLen: 60, rtt: 'sleep' },
  ],
};

export const SCENARIO_NAMES = Object.keys(SCENARIO_GROUPS);

/** What each group measures, for --help. */
export const GROUP_DESCRIBE: Record<string, string> = {
  ...Object.fromEntries(Object.entries(SCENARIO_GROUPS).map(([k, v]) => [k, v[0].describe])),
  'batch-sweep': `1to1-60 with sender batches of ${sweepBatches.join(', ')} (batch-N)`,
  'ports-sweep': `1to1-60 on a bridge with ${sweepPorts.join(', ')} ports attached (ports-N)`,
  'size-sweep': `one sender to one receiver with ${sweepSizes.join(', ')}-byte frames (size-N)`,
  rtt: 'ping-pong round trips, both sides spinning (rtt-spin) or sleeping (rtt-sleep)',
};

/** What `vswitch bench` runs with no --scenario and no --all: the figures a first look needs. */
export const HEADLINE_SCENARIOS = ['1to1-60', '1to1-1514', 'rtt'];

export interface Trial {
  mpps: number;
  gbps: number;
  /** Throughput trials: the reference data path and the copy bound measured just before. */
  refMpps?: number;
  copyBoundMpps?: number;
  /** mpps / refMpps. */
  ratio?: number;
  rtt?: RttStats;
  /** rtt trials: the bare round trip measured just before (bareRtt: two Workers, one word each, waiting the same way). */
  bare?: { p50Us: number; p99Us: number };
}

export interface BenchResult {
  system: string;
  scenario: string;
  frameSize: number;
  /** Frames (rtt: round trips) per second, median over trials. */
  mpps: number;
  gbps: number;
  /** Throughput rows: median reference data path rate, copy bound, and ratios to both. */
  refMpps?: number;
  copyBoundMpps?: number;
  /** Median of the trials' rate / reference path: what --baseline compares. */
  ratio?: number;
  /** Median of the trials' rate / copy bound. */
  boundRatio?: number;
  spread: { minMpps: number; maxMpps: number; minRatio?: number; maxRatio?: number };
  /** rtt rows: median over trials of each trial's p50 and p99 round trip. */
  rttP50Us?: number;
  rttP99Us?: number;
  /**
   * rtt rows: median over trials of the bare round trip's p50 and p99, measured before each
   * trial (two Workers waiting the same way with no ring or switch between them: bareRtt).
   * Spinning, it is the floor of any two-thread round trip here; sleeping, it shows what waking
   * a thread costs on this machine now (see bareRtt).
   */
  bareP50Us?: number;
  bareP99Us?: number;
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
  /** `ratioTo: 'reference'`: ratios are to the reference data path (older files: to the copy bound). */
  settings: { trials: number; duration: number; warmup: number; ratioTo?: 'reference'; seconds?: number; bridgeBatch?: number };
  results: BenchResult[];
  /** Present when run with `peers: true` (--peers). */
  peers?: PeersInfo;
}

export interface BenchOptions {
  /** Scenario groups to run (SCENARIO_NAMES); default HEADLINE_SCENARIOS, or all with `all`. */
  scenarios?: string[];
  all?: boolean;
  trials?: number;
  /** Seconds measured per trial. */
  duration?: number;
  /** Seconds of traffic before measuring. */
  warmup?: number;
  /** Also measure the peers (postMessage Worker switch, vde_switch) on the scenarios they run. */
  peers?: boolean;
  /**
   * The bridges' `batch` option (frames per txsync pass: one lease, copy and publication per
   * destination per pass); default the bridge default (1024, VALE's). For experiments.
   */
  bridgeBatch?: number;
  /** What the current scenario is doing (a status line to rewrite in place). */
  onProgress?: (msg: string) => void;
  /** A scenario finished: its one-line summary. */
  onScenario?: (line: string, result: BenchResult) => void;
  /** One-line notices, e.g. a peer skipped and why. */
  onNotice?: (msg: string) => void;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let switchSeq = 0;

let gcFn: (() => void) | undefined;
/**
 * A full garbage collection of this thread, so every trial starts with the memory of the
 * previous ones returned. Each trial makes a Switch whose bridge is one SharedArrayBuffer of
 * 8 MiB (2 ports) to 270 MiB (ports-64) plus the reference path's 4 MiB; the main thread itself
 * allocates almost nothing, so V8 saw no reason to collect and a full run piled up gigabytes of
 * dead regions (process.memoryUsage().arrayBuffers +480 MiB per pass over the scenarios) that a
 * major GC would then free in the middle of some later trial.
 */
export function collectGarbage(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** One trial of a throughput or latency scenario on a fresh embedded switch. */
export async function runScenario(s: Scenario, warmup: number, duration: number, bridgeBatch?: number): Promise<{ mpps: number; gbps: number; rtt?: RttStats }> {
  const name = `bench-${process.pid}-${++switchSeq}`;
  const ports = s.senders + s.receivers + (s.idlePorts ?? 0);
  const sw = new Switch({ name, bridge: { maxPorts: Math.max(2, ports), ...(bridgeBatch !== undefined ? { batch: bridgeBatch } : {}) } });
  const jobs: PktGenJob[] = [];
  try {
    for (let i = 0; i < (s.idlePorts ?? 0); i++) sw.createPort(`valeb:idle${i}`);
    if (s.rtt) {
      const spin = s.rtt === 'spin';
      const pong = startPktGen({ port: 'valeb:pong', func: 'pong', switch: name, spin, srcMac: rxMac(0) });
      jobs.push(pong);
      await pong.started;
      // Half the window: round trips come by the ten thousand per second, so half a second
      // still gives thousands of samples, and the headline run stays within 30 s.
      const ping = startPktGen({
        port: 'valeb:ping', func: 'ping', switch: name, spin, srcMac: txMac(0), dstMac: rxMac(0), duration: warmup + duration / 2, reportMs: 100000,
      });
      jobs.push(ping);
      const fin = await ping.done;
      return { mpps: fin.pps / 1e6, gbps: fin.bps / 1e9, rtt: fin.rtt };
    }
    // Receivers first; each teaches the bridge its MAC with one frame, as a real host would.
    // Workers start in parallel (each start is a Worker boot and an open on the switch).
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
    }
    await Promise.all(rx.map((j) => j.started));
    const dstMac = s.bcast ? 'ff:ff:ff:ff:ff:ff' : rxMac(0);
    const tx: PktGenJob[] = [];
    for (let i = 0; i < s.senders; i++) {
      const o: PktGenOptions = {
        port: `valeb:s${i}`, func: 'tx', switch: name, length: s.frameLen, batch: s.batch ?? 1024, srcMac: txMac(i), dstMac,
      };
      const job = startPktGen(o);
      tx.push(job);
      jobs.push(job);
    }
    await Promise.all(tx.map((j) => j.started));
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

export function expandScenarios(names: string[] | undefined, all = false): Scenario[] {
  const wanted = names && names.length > 0 ? names : all ? SCENARIO_NAMES : HEADLINE_SCENARIOS;
  const out: Scenario[] = [];
  for (const n of wanted) {
    const g = SCENARIO_GROUPS[n];
    if (!g) throw new VswitchError('ERR_BAD_ARG', `unknown scenario ${JSON.stringify(n)}: use ${SCENARIO_NAMES.join(', ')}`);
    out.push(...g); // a scenario named twice runs twice (first vs last in one run)
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
  const r: BenchResult = {
    system, scenario: s.name, frameSize: s.frameLen, mpps: median(mp), gbps: median(ts.map((x) => x.gbps)),
    spread: { minMpps: Math.min(...mp), maxMpps: Math.max(...mp) }, trials: ts,
  };
  if (s.rtt) {
    r.rttP50Us = median(ts.map((x) => x.rtt?.p50Us ?? NaN));
    r.rttP99Us = median(ts.map((x) => x.rtt?.p99Us ?? NaN));
    if (ts.every((x) => x.bare)) {
      r.bareP50Us = median(ts.map((x) => x.bare!.p50Us));
      r.bareP99Us = median(ts.map((x) => x.bare!.p99Us));
    }
  } else {
    const ra = ts.map((x) => x.ratio ?? NaN);
    r.refMpps = median(ts.map((x) => x.refMpps ?? NaN));
    r.copyBoundMpps = median(ts.map((x) => x.copyBoundMpps ?? NaN));
    r.ratio = median(ra);
    r.boundRatio = median(ts.map((x) => x.mpps / (x.copyBoundMpps ?? NaN)));
    r.spread.minRatio = Math.min(...ra);
    r.spread.maxRatio = Math.max(...ra);
  }
  return r;
}

/**
 * A warning when the machine was busy during the run (load average above the CPU count at its
 * start or end): the bench's threads spin, so other work on the same CPUs shows up directly in
 * every rate and, less but still, in the ratios. Undefined when the machine looked free enough.
 */
export function busyWarning(report: BenchReport): string | undefined {
  const m = report.machine;
  const worst = Math.max(m.loadavg[0] ?? 0, m.loadavgAtStart?.[0] ?? 0);
  if (!(worst > m.cpus)) return undefined;
  return `warning: load average ${worst.toFixed(1)} on ${m.cpus} CPUs: other work competed with the benchmark's spinning threads, so rates (and less so ratios) are not reliable; measure again on a quiet machine`;
}

/** The one-line summary of a finished scenario (progress output and the table's neighbours). */
export function scenarioLine(r: BenchResult, seconds?: number): string {
  const name = `${r.system === 'vswitch' ? '' : `${r.system} `}${r.scenario}`.padEnd(22);
  const took = seconds !== undefined ? `  (${r.trials.length} trials, ${seconds.toFixed(1)} s)` : '';
  if (r.rttP50Us !== undefined) {
    const bare = r.bareP50Us !== undefined ? `, bare p50 ${r.bareP50Us.toFixed(1)} us` : '';
    return `${name} rtt p50 ${r.rttP50Us.toFixed(1)} us, p99 ${(r.rttP99Us ?? NaN).toFixed(1)} us${bare}  (${(r.mpps * 1e3).toFixed(1)} k round trips/s)${took}`;
  }
  return `${name} ${r.mpps.toFixed(2).padStart(7)} Mpps ${r.gbps.toFixed(1).padStart(6)} Gbit/s  ${(r.ratio ?? NaN).toFixed(2)} x reference (${(r.refMpps ?? NaN).toFixed(2)} Mpps)` +
    `  ${(r.boundRatio ?? NaN).toFixed(2)} x copy bound (${(r.copyBoundMpps ?? NaN).toFixed(2)} Mpps)${took}`;
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const trials = opts.trials ?? 3;
  const duration = opts.duration ?? 1;
  const warmup = opts.warmup ?? 0.2;
  if (!Number.isInteger(trials) || trials < 1 || trials > 100) throw new VswitchError('ERR_BAD_ARG', `--trials must be an integer in [1, 100], got ${trials}`);
  if (!(duration > 0 && duration <= 3600)) throw new VswitchError('ERR_BAD_ARG', `--duration must be in (0, 3600] seconds, got ${duration}`);
  if (!(warmup >= 0 && warmup <= 3600)) throw new VswitchError('ERR_BAD_ARG', `--warmup must be in [0, 3600] seconds, got ${warmup}`);
  if (opts.bridgeBatch !== undefined && !(Number.isInteger(opts.bridgeBatch) && opts.bridgeBatch >= 1 && opts.bridgeBatch <= 1024)) {
    throw new VswitchError('ERR_BAD_ARG', `--bridge-batch must be an integer in [1, 1024], got ${opts.bridgeBatch}`);
  }
  const scenarios = expandScenarios(opts.scenarios, opts.all);
  const loadavgAtStart = os.loadavg();
  const started = performance.now();
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
  let done = 0;
  for (const s of scenarios) {
    const t0 = performance.now();
    const ts: Trial[] = [];
    const runPeers = PEER_SCENARIOS.includes(s.name) ? peers : [];
    const peerTrials = new Map<Peer, Trial[]>(runPeers.map((p) => [p, []]));
    const peerLost = new Map<Peer, number>();
    for (let t = 0; t < trials; t++) {
      const head = `[${done + 1}/${scenarios.length}] ${s.name.padEnd(13)} trial ${t + 1}/${trials}`;
      let ref: { mpps: number; copyBoundMpps: number } | undefined;
      let bare: { p50Us: number; p99Us: number } | undefined;
      collectGarbage();
      if (!s.rtt) {
        progress(`${head}: reference path…`);
        ref = await referencePath({ frameLen: s.frameLen, batch: s.batch ?? 1024, srcMac: txMac(0), dstMac: rxMac(0), warmup, duration });
      } else {
        // An eighth of the window: even sleeping (~20-120 us a round trip) that is a thousand samples.
        progress(`${head}: bare round trip…`);
        const f = await bareRtt({ spin: s.rtt === 'spin', warmup, duration: duration / 8 });
        bare = { p50Us: f.p50Us, p99Us: f.p99Us };
      }
      progress(`${head}: vswitch…`);
      collectGarbage();
      const r = await runScenario(s, warmup, duration, opts.bridgeBatch);
      ts.push(ref
        ? { mpps: r.mpps, gbps: r.gbps, refMpps: ref.mpps, copyBoundMpps: ref.copyBoundMpps, ratio: ref.mpps > 0 ? r.mpps / ref.mpps : NaN }
        : { mpps: r.mpps, gbps: r.gbps, ...(r.rtt ? { rtt: r.rtt } : {}), ...(bare ? { bare } : {}) });
      for (const p of runPeers) {
        const pt = peerTrials.get(p);
        if (!pt || !ref) continue;
        progress(`${head}: ${p.system}…`);
        try {
          const pr = await p.run(s, warmup, duration);
          pt.push({ mpps: pr.mpps, gbps: pr.gbps, refMpps: ref.mpps, copyBoundMpps: ref.copyBoundMpps, ratio: ref.mpps > 0 ? pr.mpps / ref.mpps : NaN });
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
    done++;
    const res = summarize('vswitch', s, ts);
    results.push(res);
    opts.onScenario?.(`[${done}/${scenarios.length}] ${scenarioLine(res, (performance.now() - t0) / 1000)}`, res);
    for (const [p, pt] of peerTrials) {
      if (pt.length === 0) continue;
      const pr = summarize(p.system, s, pt);
      pr.speedup = res.mpps / pr.mpps;
      if (peerLost.has(p)) pr.lost = peerLost.get(p);
      results.push(pr);
    }
  }
  return {
    machine: { ...machineInfo(), loadavgAtStart },
    settings: {
      trials, duration, warmup, ratioTo: 'reference', seconds: (performance.now() - started) / 1000, ...(opts.bridgeBatch !== undefined ? { bridgeBatch: opts.bridgeBatch } : {}),
    },
    results, ...(peersInfo ? { peers: peersInfo } : {}),
  };
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
 * what is wrong: not JSON, no `results` array, a result without system/scenario/ratio (rtt rows,
 * which carry rttP50Us, need no ratio), or a file from before ratios were taken to the reference
 * data path (its ratios are to the copy bound and cannot be compared).
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
    const ratioOk = typeof x?.ratio === 'number' && Number.isFinite(x.ratio);
    // rtt rows have no ratio; a row whose reference measured nothing has ratio null (not compared).
    const rttRow = typeof x?.rttP50Us === 'number' || x?.ratio === null;
    if (typeof x !== 'object' || x === null || typeof x.system !== 'string' || typeof x.scenario !== 'string' || !(ratioOk || rttRow)) {
      throw new VswitchError('ERR_BAD_ARG', `baseline ${file}: results[${i}] needs "system" and "scenario" strings and a numeric "ratio"`);
    }
  });
  if ((doc as BenchReport).settings?.ratioTo !== 'reference') {
    throw new VswitchError('ERR_BAD_ARG', `baseline ${file} has ratios to the copy bound (saved by an older vswitch bench): save a new one with --save FILE`);
  }
  return doc as BenchReport;
}

/**
 * Compares each vswitch result's median ratio (rate / reference data path) with the baseline's
 * for the same scenario. Returns the scenarios that fell more than `tolerancePct` below it.
 * Scenarios missing from the baseline are not compared, nor are latency rows (no ratio: their
 * p50 is printed instead) or peers: a regression is vswitch getting slower, not vde_switch.
 */
export function compareBaseline(report: BenchReport, baseline: BenchReport, tolerancePct: number): { regressions: Regression[]; compared: number } {
  const regressions: Regression[] = [];
  let compared = 0;
  for (const r of report.results) {
    if (r.system !== 'vswitch' || r.ratio === undefined) continue;
    const b = baseline.results.find((x) => x.scenario === r.scenario && x.system === r.system);
    if (!b || typeof b.ratio !== 'number' || !(b.ratio > 0) || !Number.isFinite(r.ratio)) continue;
    compared++;
    const dropPct = ((b.ratio - r.ratio) / b.ratio) * 100;
    if (dropPct > tolerancePct) regressions.push({ scenario: r.scenario, system: r.system, baselineRatio: b.ratio, ratio: r.ratio, dropPct });
  }
  return { regressions, compared };
}
