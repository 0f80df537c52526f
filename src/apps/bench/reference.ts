/**
 * The main-thread side of the reference data path (ref-worker.ts has the loops and says what
 * they do): layout constants shared with the Workers, and `referencePath()`, which starts the
 * two Workers and measures, one after the other on the same frames, the copy bound (phase 0)
 * and the reference path (phase 1).
 */
import { Worker } from 'node:worker_threads';
import { sharedWasmMemory, wasmCopyWanted, type WasmMemory } from '#rings';

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
  const workers = (['rx', 'tx'] as const).map((role) => new Worker(workerUrl, { workerData: { role, ...data } }));
  const exited = workers.map((w) => new Promise<void>((ok) => w.once('exit', () => ok())));
  try {
    await Promise.all(workers.map((w) => new Promise<void>((ok, ko) => { w.once('message', () => ok()); w.once('error', ko); })));
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
    await Promise.all(exited);
  }
}
