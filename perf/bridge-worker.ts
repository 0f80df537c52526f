/**
 * Worker for the bridge benchmark: one role per Worker.
 *  - tx: fills its TX ring with a prepared frame (buffers written once, as pkt-gen does; only
 *    `len` is set per slot) and runs txsync, until told to stop.
 *  - rx: empties its RX ring, counting frames and bytes.
 *  - copy: the copy-only bound: the same copyFrame of the same frames between two buffer areas
 *    of one region, in batches, with no rings and no lookup.
 * Control words (Int32Array over `ctl`): [0] go, [1] stop, then per-role results in Float64.
 */
import { workerData, parentPort, threadId } from 'node:worker_threads';
import { Bridge, Forwarder } from '#bridge';
import { copyFrame } from '#rings';

interface Job {
  role: 'tx' | 'rx' | 'copy';
  sab: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  port: number;
  slot: number;
  frameLen: number;
  dst: number[];
  src: number[];
  batch: number;
}

const job = workerData as Job;
const ctl = new Int32Array(job.ctl);
const res = new Float64Array(job.ctl, 64);
const b = Bridge.attach(job.sab);

function waitGo(): void {
  parentPort!.postMessage('ready');
  while (Atomics.load(ctl, 0) === 0) Atomics.wait(ctl, 0, 0, 100);
}

if (job.role === 'tx') {
  const fw = new Forwarder(b, threadId);
  const tx = b.txRing(job.port);
  const u8 = b.region.u8;
  for (let i = 0; i < tx.numSlots; i++) {
    const off = tx.slotBuf(i);
    u8.fill(0, off, off + job.frameLen);
    u8.set(job.dst, off);
    u8.set(job.src, off + 6);
    u8[off + 12] = 0x08;
    tx.setLen(i, job.frameLen);
  }
  waitGo();
  let frames = 0;
  const burst = job.batch;
  while (Atomics.load(ctl, 1) === 0) {
    let n = tx.space();
    if (n > burst) n = burst;
    if (n === 0) continue;
    tx.advance(n);
    frames += fw.txsync(job.port);
  }
  res[job.slot] = frames;
} else if (job.role === 'rx') {
  const rx = b.rxRing(job.port);
  const u16 = b.region.u16;
  waitGo();
  let frames = 0;
  let bytes = 0;
  const i32 = b.region.i32;
  const mask = rx.mask;
  while (Atomics.load(ctl, 1) === 0) {
    const h = Atomics.load(i32, rx.headW);
    const n = (Atomics.load(i32, rx.tailW) - h) & mask;
    if (n === 0) continue;
    if (!process.env.NOLEN) for (let i = 0; i < n; i++) bytes += u16[(rx.slotBase + ((h + i) & mask) * 16 + 4) >>> 1];
    frames += n;
    rx.advance(n);
  }
  res[job.slot] = frames;
  res[job.slot + 1] = bytes;
} else {
  // copy-only bound: tx buffers of port 0 → rx buffers of port 0, same frames, same batches
  const tx = b.txRing(job.port);
  const rx = b.rxRing(job.port);
  const r = b.region;
  const n = Math.min(tx.numSlots, rx.numSlots);
  for (let i = 0; i < n; i++) r.u8.fill(1, tx.slotBuf(i), tx.slotBuf(i) + job.frameLen);
  waitGo();
  let frames = 0;
  const len = job.frameLen;
  const u8 = r.u8;
  const f64 = r.f64;
  const mask = n - 1;
  let j = 0;
  while (Atomics.load(ctl, 1) === 0) {
    for (let k = 0; k < 1024; k++) {
      copyFrame(u8, f64, rx.bufBase + (rx.numSlots + 2 + j) * rx.bufSize, tx.bufBase + (2 + j) * tx.bufSize, len);
      j = (j + 1) & mask;
    }
    frames += 1024;
  }
  res[job.slot] = frames;
}
