/**
 * The main-thread side of the bench's references (the Workers have the loops and say what they
 * do): layout constants shared with the Workers; `referencePath()` (ref-worker.ts), which starts
 * two Workers and measures, one after the other on the same frames, the copy bound (phase 0) and
 * the reference path (phase 1); and `bareRtt()` (bare-worker.ts), the round trip of two
 * Workers that wait like pkt-gen's ping and pong with nothing between them.
 */
import { Worker } from 'node:worker_threads';
import { sharedWasmMemory, wasmCopyWanted, type WasmMemory } from '#rings';
import { quantile } from '../pktgen/engine.js';

export const REF_SLOTS = 1024;
export const REF_BUF = 2048;
// Int32 word indices of the control words (each on its own 64-byte line).
export const W_HEAD = 0;
export const W_TAIL = 16;
export const W_PHASE = 32;
export const W_WAITERS = 48;
export const SLOT_OFF = 4096;
export const TX_BUF = 65536;
export const RX_BUF = TX_BUF + REF_SLOTS * REF_BUF;
/** Whole 64 KiB pages, so the buffer can be a WebAssembly.Memory like a bridge region. */
export const REF_BYTES = Math.ceil((RX_BUF + REF_SLOTS * REF_BUF) / 65536) * 65536;
export const PHASE_COPY = 0;
export const PHASE_RING = 1;
export const PHASE_STOP = 2;

export interface ReferenceRun {
  /** Copies per second in one thread with no ring (Mpps). */
  copyBoundMpps: number;
  /** Frames per second received through the reference path (Mpps), and its Gbit/s of frames. */
  mpps: number;
  gbps: number;
}

const workerUrl = new URL('./ref-worker.js', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts one Worker of `url` per entry of `data`. `exited` resolves when all have ended (however
 * they end); `ready` when each has posted its first message, and rejects if one fails first.
 */
function startWorkers(url: URL, data: object[]): { exited: Promise<void[]>; ready: Promise<void[]> } {
  const workers = data.map((workerData) => new Worker(url, { workerData }));
  return {
    exited: Promise.all(workers.map((w) => new Promise<void>((ok) => w.once('exit', () => ok())))),
    ready: Promise.all(workers.map((w) => new Promise<void>((ok, ko) => { w.once('message', () => ok()); w.once('error', ko); }))),
  };
}

export interface ReferenceOptions {
  frameLen: number;
  /** Frames per sender batch (the scenario's). */
  batch: number;
  srcMac: string;
  dstMac: string;
  /** Seconds of traffic before each window. */
  warmup: number;
  /** Seconds measured for the reference path; the copy bound gets a quarter of it. */
  duration: number;
}

export async function referencePath(o: ReferenceOptions): Promise<ReferenceRun> {
  // The same copy as the switch's: a WebAssembly.Memory copied with memory.copy where the
  // bridges get one (Region.create), a SharedArrayBuffer and copyFrame where they do not.
  const memory: WasmMemory | undefined = wasmCopyWanted() ? sharedWasmMemory(REF_BYTES / 65536) : undefined;
  const sab = (memory?.buffer as SharedArrayBuffer | undefined) ?? new SharedArrayBuffer(REF_BYTES);
  const live = new SharedArrayBuffer(64);
  const ctl = new Int32Array(sab);
  const l = new Float64Array(live);
  const data = { sab, memory, live, frameLen: o.frameLen, batch: o.batch, srcMac: o.srcMac, dstMac: o.dstMac };
  const { exited, ready } = startWorkers(workerUrl, (['rx', 'tx'] as const).map((role) => ({ role, ...data })));
  try {
    await ready;
    const rate = async (k: number, secs: number): Promise<[number, number]> => {
      const f1 = l[k];
      const b1 = l[k + 1];
      const t1 = performance.now();
      await sleep(secs * 1000);
      const s = (performance.now() - t1) / 1000;
      return [(l[k] - f1) / s / 1e6, ((l[k + 1] - b1) * 8) / s / 1e9];
    };
    // The copy loop settles within a few ms; phase 1 then runs in Workers whose code is compiled
    // and whose buffers are already in memory, so it needs less warm-up than a fresh switch.
    await sleep(Math.min(o.warmup, 0.05) * 1000);
    const [copyBoundMpps] = await rate(0, o.duration / 4);
    Atomics.store(ctl, W_PHASE, PHASE_RING);
    await sleep(Math.min(o.warmup, 0.1) * 1000);
    const [mpps, gbps] = await rate(1, o.duration);
    return { copyBoundMpps, mpps, gbps };
  } finally {
    Atomics.store(ctl, W_PHASE, PHASE_STOP);
    Atomics.notify(ctl, W_TAIL);
    await exited;
  }
}

// bareRtt's control words (Int32 indices, each on its own 64-byte line).
export const F_PING = 0;
export const F_PING_WAITERS = 16;
export const F_PONG = 32;
export const F_PONG_WAITERS = 48;
export const F_PHASE = 64;
// Phases: 0 (the buffer's initial value) warms up without recording, then MEASURE, then STOP.
export const BARE_MEASURE = 1;
export const BARE_STOP = 2;
/** Round trips bareRtt keeps at most (8 MiB of Float64): spinning at ~0.2-0.6 us, an eighth of a second gives ~200-600 k. */
const BARE_SAMPLES = 1 << 20;

const bareUrl = new URL('./bare-worker.js', import.meta.url);

/** What bareRtt hands each of its Workers. */
export interface BareData {
  role: 'ping' | 'pong';
  spin: boolean;
  ctl: SharedArrayBuffer;
  /** Float64: round-trip microseconds, as many as fit. */
  samples: SharedArrayBuffer;
  /** Float64: [0] samples written. */
  live: SharedArrayBuffer;
}

export interface BareRun {
  /** Round trips measured, and their median and 99th percentile in microseconds. */
  count: number;
  p50Us: number;
  p99Us: number;
}

/**
 * The bare round trip beside an rtt scenario on this machine, now: two Workers ping-ponging one
 * word each, spinning (`spin`) or sleeping on Atomics.wait the way pkt-gen's ping and pong wait
 * on a port (bare-worker.ts). `warmup` seconds first (at most 0.05), then `duration` seconds
 * measured.
 *
 * Spinning, it is a floor: one cache line moving each way, which any two-thread round trip pays.
 * Sleeping, it is not: it shows what two wake-ups cost here, and that depends on the rhythm of
 * the work as much as on the code. On the project's KVM machines the guest's idle driver
 * (haltpoll) polls for a while before halting a vCPU and adapts that window to how soon wake-ups
 * came before, so the same ping-pong with ~1 us of switch work in each hop has been measured both
 * below and above the bare figure (docs/ARCHITECTURE.md, perf/README.md).
 */
export async function bareRtt(o: { spin: boolean; warmup: number; duration: number }): Promise<BareRun> {
  const ctl = new SharedArrayBuffer(F_PHASE * 4 + 64);
  const samples = new SharedArrayBuffer(BARE_SAMPLES * 8);
  const live = new SharedArrayBuffer(64);
  const i32 = new Int32Array(ctl);
  const { exited, ready } = startWorkers(bareUrl, (['pong', 'ping'] as const).map((role) => ({ role, spin: o.spin, ctl, samples, live }) satisfies BareData));
  try {
    await ready;
    await sleep(Math.min(o.warmup, 0.05) * 1000);
    Atomics.store(i32, F_PHASE, BARE_MEASURE);
    await sleep(o.duration * 1000);
  } finally {
    Atomics.store(i32, F_PHASE, BARE_STOP);
    for (const w of [F_PING, F_PONG]) Atomics.notify(i32, w);
    await exited;
  }
  const us = new Float64Array(samples, 0, new Float64Array(live)[0]).sort(); // a typed array sorts numerically
  const pick = (q: number) => (us.length === 0 ? NaN : quantile(us, q));
  return { count: us.length, p50Us: pick(0.5), p99Us: pick(0.99) };
}
