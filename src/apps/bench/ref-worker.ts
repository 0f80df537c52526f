/**
 * The reference data path of `vswitch bench`: what two Workers, one ring and one copy per frame
 * reach on this machine, with nothing of a switch around it. One SharedArrayBuffer holds a TX
 * buffer pool, one RX ring (netmap-layout 16-byte slots, 1024 of them, 2048-byte buffers) and a
 * few control words. Two roles, one Worker each:
 *
 *  tx  phase 0 (copy bound): the switch's copy (memory.copy, or copyFrame where the bridges
 *      have no WebAssembly memory; see Region) of the same frames from the TX pool into the RX buffers,
 *      batch after batch, with no ring at all (one thread, the receiver sleeps).
 *      phase 1 (reference): per batch, read head once; per frame, read the destination MAC from
 *      the frame, look it up in a private hash table (the same kind of 4-word entry the bridge
 *      uses), copy it into the next free RX buffer and set the slot's length (a full ring
 *      drops, as the switch does); publish tail once per batch with Atomics.store and wake the
 *      receiver only if it said it sleeps.
 *  rx  drain the ring like pkt-gen's rx: read every slot's length, give the slots back with one
 *      Atomics.store of head per pass; poll 20000 times before sleeping on the tail word.
 *
 * No learning, leases, locks, validation, counters in shared memory, or busy words: a switch pays
 * for those on top, which is what the ratio rate / reference measures. Progress goes to `live`
 * (Float64: [0] frames copied in phase 0, [1] frames received, [2] bytes received).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isWasmMemory, jsCopier, wasmCopier, type WasmMemory } from '#rings';
import { FrameBuilder } from '../../frame.js';
import { PHASE_COPY, PHASE_RING, PHASE_STOP, REF_BUF, REF_SLOTS, RX_BUF, SLOT_OFF, TX_BUF, W_HEAD, W_PHASE, W_TAIL, W_WAITERS } from './reference.js';

export interface RefData {
  role: 'tx' | 'rx';
  sab: SharedArrayBuffer;
  /** The WebAssembly.Memory whose buffer sab is, when it is one: frames are then copied with memory.copy. */
  memory?: WasmMemory;
  live: SharedArrayBuffer;
  frameLen: number;
  batch: number;
  srcMac: string;
  dstMac: string;
}

function hashMac(a: number, b: number): number {
  let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  return (Math.imul(h, 0xc2b2ae35) >>> 22) & 1023;
}

function runTx(d: RefData): void {
  const { sab, frameLen: len, batch } = d;
  const u8 = new Uint8Array(sab);
  const u16 = new Uint16Array(sab);
  const u32 = new Uint32Array(sab);
  const i32 = new Int32Array(sab);
  const f64 = new Float64Array(sab);
  const copy = (isWasmMemory(d.memory) ? wasmCopier(d.memory) : undefined) ?? jsCopier(u8, f64);
  const live = new Float64Array(d.live);
  const mask = REF_SLOTS - 1;
  const fb = new FrameBuilder({ length: len, srcMac: d.srcMac, dstMac: d.dstMac });
  for (let s = 0; s < REF_SLOTS; s++) fb.write(u8, TX_BUF + s * REF_BUF);
  // The private MAC table: the destination's entry says "port 1".
  const table = new Uint32Array(1024 * 4);
  const a0 = u32[TX_BUF >>> 2];
  const b0 = u16[(TX_BUF + 4) >>> 1];
  const e0 = hashMac(a0, b0) * 4;
  table[e0] = a0;
  table[e0 + 1] = b0;
  table[e0 + 2] = 1;
  parentPort!.postMessage('ready');

  // Phase 0: the copy bound.
  let frames = 0;
  let j = 0;
  while (Atomics.load(i32, W_PHASE) === PHASE_COPY) {
    for (let k = 0; k < batch; k++) {
      copy(RX_BUF + j * REF_BUF, TX_BUF + j * REF_BUF, len);
      j = (j + 1) & mask;
    }
    frames += batch;
    live[0] = frames;
  }

  // Phase 1: the reference data path.
  let tail = Atomics.load(i32, W_TAIL);
  let t = 0; // next TX frame
  while (Atomics.load(i32, W_PHASE) === PHASE_RING) {
    const head = Atomics.load(i32, W_HEAD);
    let space = mask - ((tail - head) & mask);
    for (let k = 0; k < batch; k++) {
      const src = TX_BUF + t * REF_BUF;
      t = (t + 1) & mask;
      const a = u32[src >>> 2];
      const b = u16[(src + 4) >>> 1];
      const e = hashMac(a, b) * 4;
      if (table[e] !== a || table[e + 1] !== b || table[e + 2] !== 1) continue;
      if (space === 0) continue; // ring full: tail drop
      const s = SLOT_OFF + tail * 16;
      u16[(s + 4) >>> 1] = len;
      copy(RX_BUF + tail * REF_BUF, src, len);
      tail = (tail + 1) & mask;
      space--;
    }
    Atomics.store(i32, W_TAIL, tail);
    if (Atomics.load(i32, W_WAITERS) !== 0) Atomics.notify(i32, W_TAIL);
  }
}

function runRx(d: RefData): void {
  const { sab } = d;
  const u16 = new Uint16Array(sab);
  const i32 = new Int32Array(sab);
  const live = new Float64Array(d.live);
  const mask = REF_SLOTS - 1;
  let head = 0;
  let frames = 0;
  let bytes = 0;
  parentPort!.postMessage('ready');
  for (;;) {
    const phase = Atomics.load(i32, W_PHASE);
    if (phase === PHASE_STOP) break;
    let tail = Atomics.load(i32, W_TAIL);
    if (tail === head) {
      for (let k = 0; k < 20000 && tail === head; k++) tail = Atomics.load(i32, W_TAIL);
      if (tail === head) {
        Atomics.add(i32, W_WAITERS, 1);
        Atomics.wait(i32, W_TAIL, head, 100);
        Atomics.sub(i32, W_WAITERS, 1);
        continue;
      }
    }
    let n = 0;
    while (head !== tail) {
      const l = u16[(SLOT_OFF + head * 16 + 4) >>> 1];
      if (l !== 0) { n++; bytes += l; }
      head = (head + 1) & mask;
    }
    Atomics.store(i32, W_HEAD, head);
    frames += n;
    live[1] = frames;
    live[2] = bytes;
  }
}

const d = workerData as RefData;
if (d.role === 'tx') runTx(d);
else runRx(d);
