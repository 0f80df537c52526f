/**
 * Worker side of perf/rings-bench.ts. Roles (workerData.role):
 *
 * - `producer`: kernel side of one RX ring. Per batch: one Atomics.load of head, then for each
 *   free slot (at most `batch`) copyFrame the prepared frame from `src` into the slot's buffer
 *   and set len, then one publishTail. Spins (never sleeps) when the ring is full.
 *   `twoPass`: the same work in two loops per batch, first every slot's len, then the copies.
 *   The slot lines were last read by the consumer, so each len store must first take its cache
 *   line back from the other core; issued back to back these misses overlap, instead of each
 *   one stalling the store buffer behind a frame's worth of copy stores (see perf/README.md).
 * - `consumer`: user side. Per batch: one Atomics.load of tail, read every slot's len, one
 *   advance(). Publishes its running frame count once per batch in the COUNT word.
 * - `copy`: the copy-only bound. The same copyFrame of the same frame into the same buffers,
 *   in batches of `batch`, no ring; publishes its count like the consumer.
 *
 * All three wait for CMD = RUN, run until CMD = STOP, and post a summary. The per-frame loops
 * touch only locals and typed arrays: no allocation, no closures, no method calls but copyFrame.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { copyFrame, fromTransferable, type RingHandle } from '#rings';

export interface BenchWorkerData {
  role: 'producer' | 'consumer' | 'copy';
  ring: RingHandle & { kind: 'ring' };
  /** Int32 indices of the control words (each on its own cache line). */
  cmdW: number;
  countW: number;
  readyW: number;
  /** Byte offset of the prepared frame. */
  src: number;
  len: number;
  batch: number;
  /** Producer: set the batch's lens in a first loop, copy in a second. */
  twoPass: boolean;
}

export interface BenchWorkerReport {
  role: BenchWorkerData['role'];
  frames: number;
  batches: number;
  /** Polls that found nothing to do (ring full for the producer, empty for the consumer). */
  idle: number;
  /** Sum of the lens read (consumer), so the reads cannot be optimised away. */
  check: number;
}

export const CMD_WAIT = 0;
export const CMD_RUN = 1;
export const CMD_STOP = 2;

// The main thread imports this module for its types and constants only.
const d = (isMainThread ? null : workerData) as BenchWorkerData;
const ring = isMainThread ? null! : fromTransferable(d.ring);
const { u8, u16, u32, i32, f64 } = isMainThread ? ({} as never) : ring.region;
const cmdW = isMainThread ? 0 : d.cmdW;
const countW = isMainThread ? 0 : d.countW;

function produce(): BenchWorkerReport {
  const mask = ring.mask;
  const slotBase = ring.slotBase;
  const bufBase = ring.bufBase;
  const bufSize = ring.bufSize;
  const headW = ring.headW;
  const src = d.src;
  const len = d.len;
  const batch = d.batch;
  const twoPass = d.twoPass;
  let t = Atomics.load(i32, ring.tailW);
  let frames = 0;
  let batches = 0;
  let idle = 0;
  for (;;) {
    const h = Atomics.load(i32, headW);
    let n = mask - ((t - h) & mask);
    if (n === 0) {
      idle++;
      if (Atomics.load(i32, cmdW) === CMD_STOP) break;
      continue;
    }
    if (n > batch) n = batch;
    if (twoPass) {
      let j = t;
      for (let k = 0; k < n; k++) {
        u16[(slotBase + (j << 4) + 4) >>> 1] = len;
        j = (j + 1) & mask;
      }
      for (let k = 0; k < n; k++) {
        copyFrame(u8, f64, bufBase + u32[(slotBase + (t << 4)) >>> 2] * bufSize, src, len);
        t = (t + 1) & mask;
      }
    } else {
      for (let k = 0; k < n; k++) {
        const s = slotBase + (t << 4);
        copyFrame(u8, f64, bufBase + u32[s >>> 2] * bufSize, src, len);
        u16[(s + 4) >>> 1] = len;
        t = (t + 1) & mask;
      }
    }
    ring.publishTail(t);
    frames += n;
    batches++;
    if (Atomics.load(i32, cmdW) === CMD_STOP) break;
  }
  return { role: 'producer', frames, batches, idle, check: 0 };
}

function consume(): BenchWorkerReport {
  const mask = ring.mask;
  const slotBase = ring.slotBase;
  const tailW = ring.tailW;
  let h = Atomics.load(i32, ring.headW);
  let frames = 0;
  let batches = 0;
  let idle = 0;
  let check = 0;
  for (;;) {
    const n = (Atomics.load(i32, tailW) - h) & mask;
    if (n === 0) {
      idle++;
      if (Atomics.load(i32, cmdW) === CMD_STOP) break;
      continue;
    }
    for (let k = 0; k < n; k++) {
      check += u16[(slotBase + (h << 4) + 4) >>> 1];
      h = (h + 1) & mask;
    }
    ring.advance(n);
    frames += n;
    batches++;
    Atomics.store(i32, countW, frames | 0);
    if (Atomics.load(i32, cmdW) === CMD_STOP) break;
  }
  return { role: 'consumer', frames, batches, idle, check };
}

function copyOnly(): BenchWorkerReport {
  const mask = ring.mask;
  const bufBase = ring.bufBase;
  const bufSize = ring.bufSize;
  const firstBuf = u32[ring.slotBase >>> 2]; // slots own consecutive buffers from here (Ring.init)
  const src = d.src;
  const len = d.len;
  const batch = d.batch;
  let i = 0;
  let frames = 0;
  let batches = 0;
  for (;;) {
    for (let k = 0; k < batch; k++) {
      copyFrame(u8, f64, bufBase + (firstBuf + i) * bufSize, src, len);
      i = (i + 1) & mask;
    }
    frames += batch;
    batches++;
    Atomics.store(i32, countW, frames | 0);
    if (Atomics.load(i32, cmdW) === CMD_STOP) break;
  }
  return { role: 'copy', frames, batches, idle: 0, check: 0 };
}

if (!isMainThread) {
  Atomics.add(i32, d.readyW, 1);
  while (Atomics.load(i32, cmdW) === CMD_WAIT) Atomics.wait(i32, cmdW, CMD_WAIT, 50);
  const report = d.role === 'producer' ? produce() : d.role === 'consumer' ? consume() : copyOnly();
  parentPort!.postMessage(report);
}
