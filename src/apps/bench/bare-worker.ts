/**
 * The bare round trip beside `vswitch bench`'s rtt rows: two Workers that wait the way pkt-gen's
 * ping and pong wait on a port, with no ring and no switch between them. Each owns one Int32 word
 * (64 bytes apart): ping writes a sequence number into its word and waits until pong's word says
 * the same number; pong waits for a new number and copies it into its own word.
 *
 *  spin   both poll the other's word with Atomics.load (rtt-spin): what one cache line moving
 *         each way costs here, plus the two clock reads per round trip that ping makes too.
 *  sleep  both look once, then block in Atomics.wait on the word with a waiter count beside it,
 *         and the writer calls Atomics.notify only when the count says someone sleeps (the
 *         ring's waitTail/publishTail protocol; rtt-sleep): what the OS takes to wake a thread
 *         twice here (not a floor: see bareRtt).
 *
 * Ping times every round trip with performance.now() (as pkt-gen's ping does) and writes the
 * microseconds into `samples` while the phase is MEASURE; `live[0]` counts them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { F_PHASE, F_PING, F_PING_WAITERS, F_PONG, F_PONG_WAITERS, BARE_MEASURE, BARE_STOP, type BareData } from './reference.js';

/**
 * Waits until word `w` of i32 differs from `seen`, or the phase is BARE_STOP (false). Spinning,
 * it reads the phase every 4096 polls; sleeping, it blocks at most 50 ms at a time. (Ping also
 * reads the phase after every round trip: while the other side answers, this never looks.)
 */
function waitChange(i32: Int32Array, w: number, waitersW: number, seen: number, spin: boolean): boolean {
  for (;;) {
    if (spin) {
      for (let k = 0; k < 4096; k++) if (Atomics.load(i32, w) !== seen) return true;
    } else {
      if (Atomics.load(i32, w) !== seen) return true;
      Atomics.add(i32, waitersW, 1);
      Atomics.wait(i32, w, seen, 50);
      Atomics.sub(i32, waitersW, 1);
      if (Atomics.load(i32, w) !== seen) return true;
    }
    if (Atomics.load(i32, F_PHASE) === BARE_STOP) return false;
  }
}

/** Publishes `v` in word `w` and wakes its reader if it sleeps (a plain load after the store, as in publishTail). */
function post(i32: Int32Array, w: number, waitersW: number, v: number): void {
  Atomics.store(i32, w, v);
  if (i32[waitersW] !== 0) Atomics.notify(i32, w);
}

function runPing(d: BareData): void {
  const i32 = new Int32Array(d.ctl);
  const out = new Float64Array(d.samples);
  const live = new Float64Array(d.live);
  let n = 0;
  // Pong's word holds the last number it echoed: 0 before the first.
  for (let seq = 1; ; seq = (seq + 1) | 0) {
    const t0 = performance.now();
    post(i32, F_PING, F_PING_WAITERS, seq);
    if (!waitChange(i32, F_PONG, F_PONG_WAITERS, (seq - 1) | 0, d.spin)) break;
    const t1 = performance.now();
    const phase = Atomics.load(i32, F_PHASE);
    if (phase === BARE_STOP) break; // pong then sees no new number, reads the phase and ends too
    if (phase === BARE_MEASURE && n < out.length) {
      out[n++] = (t1 - t0) * 1000;
      live[0] = n;
    }
  }
}

function runPong(d: BareData): void {
  const i32 = new Int32Array(d.ctl);
  let seen = 0;
  for (;;) {
    if (!waitChange(i32, F_PING, F_PING_WAITERS, seen, d.spin)) break;
    seen = Atomics.load(i32, F_PING);
    post(i32, F_PONG, F_PONG_WAITERS, seen);
  }
}

const d = workerData as BareData;
parentPort!.postMessage('ready');
if (d.role === 'ping') runPing(d);
else runPong(d);
