/**
 * Dead threads must not wedge the bridge. A sender forwards in its own thread and, while doing
 * so, holds things other threads wait for: a destination RX ring's lock, a lease (reserved RX
 * slots it is still copying into, which hold back the publication of every later lease on that
 * ring), and its own port's "txsync running" mark (which keeps the port from being freed).
 * Bridge.reclaimThread(id) must release all of them after thread `id` died.
 *
 * 1. Unit level, one thread: a "dead" thread 7 is simulated by writing what it would have left
 *    behind through the same RxLeases calls Forwarder.deliver makes (lock word, lease entries,
 *    P_BUSY); forwarding is driven through the rings as in bridge-learning.test.ts.
 * 2. Real Workers: a sender Worker sending flat out is terminated at a random (seeded) moment,
 *    50 times, each time a fresh Worker on a port re-added under the same name; the main thread
 *    reclaims what it held, removes its port (within BOUND_MS), and checks that a live
 *    sender → receiver pair on the same bridge, whose receiver ring the victims were sending to,
 *    keeps forwarding within BOUND_MS, and that its accounting is exact at the end.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Bridge, C_RX_BYTES, C_RX_FRAMES, Forwarder, P_BUSY, PORT_FREE, type RxLeases } from '#bridge';
import { frame, send, recv, invariant } from './helpers/bridge-util.js';
import {
  CTL_COUNT, CTL_STOP_RX, CTL_STOP_TX, CTL_WORDS, macString,
  type ReceiverData, type ReceiverReport, type SenderData, type SenderReport,
} from './fixtures/bridge-proto.js';
import { prng, runWorker, startWorker, waitUntil } from './fixtures/bridge-harness.js';
import { heldBy, leasesPending, type Held } from './fixtures/rel-bridge.js';

const SENDER_JS = new URL('../dist/test/fixtures/bridge-sender.js', import.meta.url);
const RECEIVER_JS = new URL('../dist/test/fixtures/bridge-receiver.js', import.meta.url);

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const BCAST = 'ff:ff:ff:ff:ff:ff';
/** The simulated dead thread of part 1, and a second one. */
const DEAD = 7;
const OTHER = 3;

t.before(() => {
  for (const f of [SENDER_JS, RECEIVER_JS]) {
    if (!existsSync(fileURLToPath(f))) {
      throw new Error(`${fileURLToPath(f)} is missing: build first (npx tsc -b tsconfig.build.json, or npm test)`);
    }
  }
});

// ---- part 1: unit level ---------------------------------------------------------------------

function setup(name: string) {
  const b = Bridge.create(name, { maxPorts: 4, txSlots: 64, rxSlots: 64 });
  const fw = new Forwarder(b, 0); // this (main) thread is thread 0
  const pa = b.addPort(`${name}:a`);
  const pb = b.addPort(`${name}:b`);
  const pc = b.addPort(`${name}:c`);
  // learn A, B and C
  send(b, fw, pa, [frame(BCAST, A)]);
  send(b, fw, pb, [frame(BCAST, B)]);
  send(b, fw, pc, [frame(BCAST, C)]);
  for (const p of [pa, pb, pc]) recv(b, p);
  return { b, fw, pa, pb, pc };
}

/**
 * Reserves `count` slots of port p's RX ring as thread `thread` does in Forwarder.deliver
 * (under the ring lock: lease entry start, end, done = 0, owner = thread + 1, then one store of
 * the next lease number), and returns the lease number and its slots. The caller plays the rest.
 */
function reserveAs(b: Bridge, p: number, thread: number, count: number): { k: number; start: number; end: number } {
  const lk = b.rxLeasesAt(p);
  lk.lock(thread + 1, Infinity);
  const got = lk.reserve(count, thread + 1);
  lk.unlock();
  if (got !== count) throw new Error(`test bug: ${count} slots wanted, ${got} reserved`);
  return { k: lk.lease, start: lk.start, end: (lk.start + count) & lk.mask };
}

/** Thread `thread` holds port p's RX ring lock (as a thread that died holding it leaves it). */
function lockAs(b: Bridge, p: number, thread: number): RxLeases {
  const lk = b.rxLeasesAt(p);
  lk.lock(thread + 1, Infinity);
  return lk;
}

/** Thread id holding port p's RX ring lock, or -1. */
function lockOwner(b: Bridge, p: number): number {
  return b.rxLeasesAt(p).lockHolder() - 1;
}

/** Writes a frame into RX slot j of port p as the forwarder's copy does (slot j uses its own buffer). */
function writeRxSlot(b: Bridge, p: number, j: number, f: Uint8Array): void {
  const rx = b.rxRing(p);
  b.region.u8.set(f, rx.slotBuf(j));
  rx.setLen(j, f.length);
}

/**
 * Thread `thread` copies `frames` into port p's RX ring as Forwarder.deliver's direct path does
 * (ring lock held, slots taken by reserveDirect, no lease entry, frames written from the
 * published tail on) and stops there, publishing nothing. Returns the slots it got and where
 * they start.
 */
function copyDirectAs(b: Bridge, p: number, thread: number, frames: Uint8Array[]): { lk: RxLeases; got: number; start: number } {
  const lk = lockAs(b, p, thread);
  const got = lk.reserveDirect(frames.length);
  const start = lk.start;
  const mask = b.rxRing(p).mask;
  for (let i = 0; i < got; i++) writeRxSlot(b, p, (start + i) & mask, frames[i]);
  return { lk, got, start };
}

function markDone(b: Bridge, p: number, k: number, bytes: number): void {
  b.rxLeasesAt(p).finish(k, bytes);
}

t.test('a ring lock left by a dead thread is broken; forwarding to that port resumes', async (t) => {
  const { b, fw, pa, pb } = setup('valeU1');
  fw.lockWaitMs = 1; // give up on the dead holder quickly (a few sleeps)
  lockAs(b, pb, DEAD);
  t.equal(lockOwner(b, pb), DEAD, 'thread 7 holds b\'s RX ring lock');
  t.equal(send(b, fw, pa, [frame(B, A, [1])]), 1);
  t.equal(recv(b, pb).length, 0, 'nothing gets through a lock whose holder is dead');
  t.equal(b.counters(pa).dropBusy, 1, 'the frame is dropped as busy, and counted');
  t.equal(b.reclaimThread(DEAD), 1, 'reclaiming thread 7 releases one object: the lock');
  t.equal(lockOwner(b, pb), -1, 'the lock is free');
  t.equal(b.reclaimThread(DEAD), 0, 'reclaiming twice is harmless');
  t.equal(send(b, fw, pa, [frame(B, A, [2]), frame(B, A, [3])]), 2);
  t.same(recv(b, pb).map((f) => f[14]), [2, 3], 'forwarding a → b works again, in order');
  t.equal(b.counters(pa).dropBusy, 1);
  const { lhs, rhs } = invariant(b, pa);
  t.equal(lhs, rhs, 'the sender\'s counters add up');
  const ports = [pa, pb, b.findPort('valeU1:c')];
  t.equal(ports.reduce((s, p) => s + b.counters(p).txDelivered, 0), ports.reduce((s, p) => s + b.counters(p).rxFrames, 0),
    'bridge-wide Σ txDelivered = Σ rxFrames');
});

t.test('a thread that dies copying a few frames under the ring lock (no lease) publishes nothing', async (t) => {
  // A delivery of a few frames to a ring with no lease in flight copies while it holds the lock
  // and publishes before it lets go (Forwarder.deliver, DIRECT_MAX). Thread 7 died half-way.
  const { b, fw, pa, pb } = setup('valeU8');
  fw.lockWaitMs = 1;
  const rx = b.rxRing(pb);
  const { got, start } = copyDirectAs(b, pb, DEAD, [frame(B, C, [0xee]), frame(B, C, [0xee]).subarray(0, 20)]);
  t.equal(got, 2, 'thread 7 took two slots without a lease');
  t.equal(start, rx.tail, '... from the published tail on');
  t.equal(leasesPending(b, pb), 0, 'no lease records it');
  t.equal(recv(b, pb).length, 0, 'the receiver sees nothing of it');
  t.equal(b.reclaimThread(DEAD), 1, 'reclaiming thread 7 releases its lock');
  t.equal(rx.tail, start, 'tail did not move');
  t.equal(send(b, fw, pa, [frame(B, A, [1]), frame(B, A, [2])]), 2);
  t.same(recv(b, pb).map((f) => [f.length, f[14]]), [[60, 1], [60, 2]], 'the next frames take those slots, whole and in order');
  const { lhs, rhs } = invariant(b, pa);
  t.equal(lhs, rhs, 'the sender\'s counters add up');
  const ports = [pa, pb, b.findPort('valeU8:c')];
  t.equal(ports.reduce((s, p) => s + b.counters(p).rxFrames, 0), ports.reduce((s, p) => s + b.counters(p).txDelivered, 0),
    'bridge-wide Σ rxFrames = Σ txDelivered: the dead copy is counted nowhere');
});

t.test('a thread that dies between counting a direct delivery and publishing its tail: reclaim publishes it', async (t) => {
  // RxLeases.publishDirect stores the receiver's counters and the private hwtail together, then
  // the public tail; thread 7 died between the two (a call is an interrupt point).
  const { b, fw, pa, pb } = setup('valeU9');
  fw.lockWaitMs = 1;
  const rx = b.rxRing(pb);
  const { lk, got: taken, start } = copyDirectAs(b, pb, DEAD, [frame(B, C, [0xd1]), frame(B, C, [0xd2])]);
  t.equal(taken, 2, 'thread 7 took two slots without a lease');
  const before = b.counters(pb);
  const f64 = b.region.f64;
  f64[lk.cw + C_RX_FRAMES] += 2;
  f64[lk.cw + C_RX_BYTES] += 120;
  b.region.i32[lk.hwtailW] = (start + 2) & rx.mask;
  t.equal(rx.tail, start, 'it died before the public tail moved');
  t.equal(recv(b, pb).length, 0, 'so the receiver sees nothing yet');
  t.equal(b.reclaimThread(DEAD), 1, 'reclaiming thread 7 releases its lock');
  t.equal(rx.tail, (start + 2) & rx.mask, 'and the tail follows hwtail');
  const got = recv(b, pb);
  t.same(got.map((f) => [f.length, f[14]]), [[60, 0xd1], [60, 0xd2]], 'the receiver gets both frames, whole and in order');
  const after = b.counters(pb);
  t.equal(after.rxFrames - before.rxFrames, got.length, 'counted once, as they were published');
  t.equal(after.rxRepairs, before.rxRepairs, 'not counted as a repair of the user\'s ring');
  t.equal(send(b, fw, pa, [frame(B, A, [1]), frame(B, A, [2])]), 2);
  t.same(recv(b, pb).map((f) => f[14]), [1, 2], 'the next frames follow');
  t.equal(b.counters(pb).rxRepairs, before.rxRepairs, 'and still no repair');
});

t.test('two dead threads, reclaimed in either order: no hang, nothing left behind', async (t) => {
  const { b, fw, pa, pb } = setup('valeU7');
  fw.lockWaitMs = 1;
  reserveAs(b, pb, OTHER, 2); // thread 3 reserved two slots of b's ring and died copying
  lockAs(b, pb, DEAD); // thread 7 died holding b's ring lock
  t.equal(send(b, fw, pa, [frame(B, A, [1])]), 1);
  t.equal(b.counters(pa).dropBusy, 1);
  // Thread 3 is reclaimed first: b's ring cannot be checked while dead thread 7 holds its lock.
  // This must neither spin forever nor touch the ring without the lock.
  const t0 = performance.now();
  t.equal(b.reclaimThread(OTHER), 0, 'reclaiming thread 3 returns (b\'s ring skipped)');
  t.ok(performance.now() - t0 < 5000, `... after ${(performance.now() - t0).toFixed(0)} ms`);
  t.equal(lockOwner(b, pb), DEAD, 'thread 7\'s lock is left alone');
  t.equal(leasesPending(b, pb), 1, 'thread 3\'s lease is still there');
  t.equal(b.reclaimThread(DEAD), 2, 'reclaiming thread 7 releases its lock and thread 3\'s lease');
  t.equal(lockOwner(b, pb), -1);
  t.equal(leasesPending(b, pb), 0);
  t.same(recv(b, pb).map((f) => f.length), [0, 0], 'thread 3\'s two slots arrive empty');
  t.equal(send(b, fw, pa, [frame(B, A, [2])]), 1);
  t.same(recv(b, pb).map((f) => f[14]), [2], 'forwarding a → b works again');
  t.equal(b.reclaimThread(OTHER) + b.reclaimThread(DEAD), 0, 'nothing left for either');
});

t.test('a port a dead thread was in txsync on, or held a lock of, can still be removed', async (t) => {
  const { b, fw, pa, pc } = setup('valeU2');
  const i32 = b.region.i32;
  Atomics.store(i32, b.portWord(pc, P_BUSY), DEAD + 1); // died inside txsync(pc)
  lockAs(b, pc, DEAD); // ... while holding c's own RX ring lock (it cannot: but a dead thread may hold any)
  b.beginRemove(pc);
  t.notOk(b.tryFinishRemove(pc), 'not freed while thread 7 looks busy in it');
  t.equal(b.portState(pc), 2, 'still closing');
  t.equal(b.reclaimThread(DEAD), 2, 'txsync mark and RX lock released');
  t.equal(Atomics.load(i32, b.portWord(pc, P_BUSY)), 0);
  t.ok(b.tryFinishRemove(pc), 'freed once reclaimed');
  t.equal(b.portState(pc), PORT_FREE);
  send(b, fw, pa, [frame(BCAST, A)]);
  t.equal(b.counters(pa).txCopies, 2 + 1, 'a later flood reaches only the remaining port');
  const again = b.addPort('valeU2:c');
  t.equal(again, pc, 'the slot is reused');
  t.equal(send(b, fw, again, [frame(A, C, [9])]), 1, 'and the new port sends');
  t.same(recv(b, pa).map((f) => f[14]), [9]);
});

t.test('a dead thread\'s unfinished lease becomes empty frames and later leases are published', async (t) => {
  const { b, fw, pa, pb } = setup('valeU3');
  const rx = b.rxRing(pb);
  // Move the ring near its end so that the dead lease wraps round.
  while (rx.tail !== 61) {
    const k = Math.min(30, (61 - rx.tail) & rx.mask);
    send(b, fw, pa, Array.from({ length: k }, () => frame(B, A)));
    t.equal(recv(b, pb).length, k);
  }
  const dead = reserveAs(b, pb, DEAD, 6); // slots 61..2
  t.same([dead.start, dead.end], [61, 3], 'the dead lease wraps round the ring');
  writeRxSlot(b, pb, 61, frame(B, A, [0xee])); // it had copied one frame and a half when it died
  writeRxSlot(b, pb, 62, frame(B, A, [0xee]).subarray(0, 20));
  const before = b.counters(pb).rxFrames;
  t.equal(send(b, fw, pa, [frame(B, A, [1]), frame(B, A, [2]), frame(B, A, [3])]), 3, 'a live sender forwards after it');
  t.equal(b.counters(pb).rxFrames - before, 0, 'its lease is done, but b counts frames when they are published');
  t.equal(rx.tail, 61, 'and nothing is published past the dead lease');
  t.equal(recv(b, pb).length, 0, 'the receiver sees nothing yet');
  t.equal(leasesPending(b, pb), 2, 'two leases outstanding');
  t.equal(b.reclaimThread(DEAD), 1, 'one unfinished lease released');
  t.equal(leasesPending(b, pb), 0, 'no lease outstanding');
  t.equal(rx.tail, 6, 'tail moved past both leases');
  t.equal(b.counters(pb).rxFrames - before, 3, 'b counted the live sender\'s 3 frames (not the empty slots)');
  const got = recv(b, pb);
  t.same(got.map((f) => f.length), [0, 0, 0, 0, 0, 0, 60, 60, 60], 'six empty slots, then the live frames');
  t.same(got.slice(6).map((f) => f[14]), [1, 2, 3], 'live frames intact and in order');
  t.equal(send(b, fw, pa, [frame(B, A, [4])]), 1);
  t.same(recv(b, pb).map((f) => f[14]), [4], 'forwarding continues normally');
  const { lhs, rhs } = invariant(b, pa);
  t.equal(lhs, rhs);
});

t.test('a dead thread\'s completed but unpublished lease is published intact', async (t) => {
  const { b, fw, pa, pb } = setup('valeU4');
  const rx = b.rxRing(pb);
  const dead = reserveAs(b, pb, DEAD, 2);
  writeRxSlot(b, pb, dead.start, frame(B, A, [0x51]));
  writeRxSlot(b, pb, (dead.start + 1) & rx.mask, frame(B, A, [0x52], 64));
  // It marked the lease done without the lock (its completion lock attempt gave up), then died:
  // the next thread to take the lock publishes it...
  markDone(b, pb, dead.k, 60 + 64);
  t.equal(rx.tail, dead.start, 'not yet visible');
  t.equal(b.reclaimThread(DEAD), 0, 'nothing of thread 7 to release: its lease is complete');
  t.equal(rx.tail, dead.end, '... and reclaimThread publishes it');
  t.same(recv(b, pb).map((f) => [f.length, f[14]]), [[60, 0x51], [64, 0x52]], 'its frames are intact, not emptied');
  send(b, fw, pa, [frame(B, A, [1])]);
  t.same(recv(b, pb).map((f) => f[14]), [1]);
});

t.test('reclaiming one thread leaves the leases of other threads alone', async (t) => {
  const { b, fw, pa, pb } = setup('valeU5');
  const rx = b.rxRing(pb);
  const d = reserveAs(b, pb, DEAD, 2);
  const o = reserveAs(b, pb, OTHER, 3); // thread 3 is alive and still copying
  writeRxSlot(b, pb, o.start, frame(B, C, [0x31]));
  writeRxSlot(b, pb, (o.start + 1) & rx.mask, frame(B, C, [0x32]));
  writeRxSlot(b, pb, (o.start + 2) & rx.mask, frame(B, C, [0x33]));
  send(b, fw, pa, [frame(B, A, [1])]); // thread 0's lease, completed
  t.equal(b.reclaimThread(DEAD), 1);
  t.equal(rx.tail, d.end, 'published up to thread 3\'s unfinished lease, not beyond');
  t.same(recv(b, pb).map((f) => f.length), [0, 0], 'the dead lease: two empty slots');
  t.equal(leasesPending(b, pb), 2, 'thread 3\'s and thread 0\'s leases still outstanding');
  // thread 3 finishes as Forwarder.deliver does: lock, done, publish, unlock (here: through
  // reclaimThread of an unrelated thread id, which takes the lock and publishes what is done).
  markDone(b, pb, o.k, 3 * 60);
  t.equal(b.reclaimThread(DEAD), 0);
  t.same(recv(b, pb).map((f) => f[14]), [0x31, 0x32, 0x33, 1], 'thread 3\'s frames untouched, then thread 0\'s');
  t.equal(leasesPending(b, pb), 0);
});

t.test('a port with a dead thread\'s lease on its RX ring is freed only after reclaimThread', async (t) => {
  const { b, pc } = setup('valeU6');
  reserveAs(b, pc, DEAD, 4);
  b.beginRemove(pc);
  t.notOk(b.tryFinishRemove(pc), 'a lease is outstanding: some thread may still be copying into the ring');
  t.notOk(b.tryFinishRemove(pc));
  t.equal(b.reclaimThread(DEAD), 1);
  t.ok(b.tryFinishRemove(pc), 'freed');
});

// ---- part 2: real Workers -------------------------------------------------------------------

const KILLS = 50;
const SEED = 0x5eed2024;
/**
 * Per kill: the victim's port freed, then the live pair forwarding again, each within this. With
 * the senders flat out on 2 busy cores the main thread gets the CPU late: measured at load 15 on
 * 2 cores, freed after <= 0.3 ms and forwarding after <= 38 ms (the figures this test prints);
 * 5 s (as in reliability-dead-threads.test.ts, which measured over 1 s under the same load)
 * keeps a wide margin while still failing a bridge that stays wedged.
 */
const BOUND_MS = 5000;
const RECEIVER_ID = 0;
const LIVE_ID = 1;

t.test(`${KILLS} sender Workers terminated at random moments do not wedge the bridge`, async (t) => {
  const started = performance.now();
  const b = Bridge.create('valeK', { maxPorts: 8, txSlots: 256, rxSlots: 256, batch: 64 });
  const r = b.addPort('valeK:r');
  const l = b.addPort('valeK:l');
  const ctlSab = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(ctlSab);
  const fw = new Forwarder(b, 0);
  send(b, fw, r, [frame(BCAST, macString(RECEIVER_ID))]); // the bridge learns the receiver's MAC
  t.equal(b.macTable().find((e) => e.mac === macString(RECEIVER_ID))?.port, r, 'receiver MAC learned');

  const rdata: ReceiverData = { sab: b.sab, ctl: ctlSab, port: r, spin: 2000, sleepMs: 20, waitGo: false };
  const receiver = runWorker<ReceiverReport>(RECEIVER_JS, rdata, 'receiver', 120_000);
  const ldata: SenderData = {
    sab: b.sab, ctl: ctlSab, port: l, id: LIVE_ID, dstId: RECEIVER_ID, bcastEvery: 0, frames: 0,
    waitGo: false, drainRx: true, announce: false,
  };
  const live = runWorker<SenderReport>(SENDER_JS, ldata, 'live sender', 120_000);
  const liveCount = () => Atomics.load(ctl, CTL_COUNT + LIVE_ID);
  const rand = prng(SEED);
  const totals: Held = { busy: 0, locks: 0, leases: 0 };
  let killsHolding = 0;
  let released = 0;
  let maxFreeMs = 0;
  let maxFreePolls = 0;
  let maxResumeMs = 0;
  const failures: string[] = [];
  const victimErrors: string[] = [];
  let lrep: SenderReport;
  let rep: ReceiverReport;
  try {
    t.ok(await waitUntil(() => liveCount() > 0, 30_000, 5), 'the live pair forwards');
    for (let i = 0; i < KILLS; i++) {
      const v = b.addPort('valeK:v');
      const id = 2 + i;
      const vdata: SenderData = {
        sab: b.sab, ctl: ctlSab, port: v, id, dstId: RECEIVER_ID, bcastEvery: 8, frames: 0,
        waitGo: false, drainRx: false, announce: true,
      };
      const w = startWorker(SENDER_JS, vdata);
      const tid = w.threadId;
      b.setOwner(v, tid);
      w.on('error', (e) => victimErrors.push(`victim ${i}: ${String(e)}`));
      let timer: NodeJS.Timeout | undefined;
      const running = await Promise.race([
        new Promise<boolean>((res) => w.once('message', () => res(true))),
        new Promise<boolean>((res) => { timer = setTimeout(() => res(false), 30_000); }),
      ]);
      clearTimeout(timer);
      if (!running) { failures.push(`victim ${i} never started sending`); await w.terminate(); break; }
      // A random moment: right away, or up to 25 ms into its sending.
      const u = rand();
      if (u >= 0.1) await sleep(Math.floor((u - 0.1) / 0.9 * 25));
      await w.terminate();

      const held = heldBy(b, tid);
      if (held.busy + held.locks + held.leases > 0) killsHolding++;
      totals.busy += held.busy;
      totals.locks += held.locks;
      totals.leases += held.leases;
      const n = b.reclaimThread(tid);
      released += n;
      if (n !== held.busy + held.locks + held.leases) {
        failures.push(`victim ${i}: reclaimThread released ${n}, it held ${JSON.stringify(held)}`);
      }
      const after = heldBy(b, tid);
      if (after.busy + after.locks + after.leases !== 0) failures.push(`victim ${i}: still held after reclaim ${JSON.stringify(after)}`);

      b.beginRemove(v);
      const t0 = performance.now();
      let polls = 0;
      const freed = await waitUntil(() => { polls++; return b.tryFinishRemove(v); }, BOUND_MS);
      maxFreePolls = Math.max(maxFreePolls, polls);
      maxFreeMs = Math.max(maxFreeMs, performance.now() - t0);
      if (!freed) { failures.push(`victim ${i}: its port was not freed within ${BOUND_MS} ms`); break; }

      const d0 = b.counters(l).txDelivered;
      const r0 = liveCount();
      const t1 = performance.now();
      const moving = await waitUntil(() => b.counters(l).txDelivered > d0 && liveCount() > r0, BOUND_MS);
      maxResumeMs = Math.max(maxResumeMs, performance.now() - t1);
      if (!moving) { failures.push(`victim ${i}: the live pair did not forward within ${BOUND_MS} ms`); break; }
    }
    Atomics.store(ctl, CTL_STOP_TX, 1);
    lrep = await live.done;
    const delivered = b.counters(l).txDelivered;
    t.ok(await waitUntil(() => liveCount() >= delivered, 10_000, 2),
      `the receiver drained the live sender's ${delivered} delivered frames (got ${liveCount()})`);
    Atomics.store(ctl, CTL_STOP_RX, 1);
    b.rxRing(r).wakeAll();
    rep = await receiver.done;
  } finally {
    void live.worker.terminate();
    void receiver.worker.terminate();
  }
  const ms = performance.now() - started;

  t.same(failures, [], `every kill: reclaimed exactly what it held, port freed within ${BOUND_MS} ms, live pair forwarding within ${BOUND_MS} ms`);
  t.same(victimErrors, [], 'no victim Worker failed on its own');
  t.ok(totals.busy > 0, `some victims died inside txsync (${totals.busy} of ${KILLS})`);
  t.ok(totals.locks + totals.leases > 0,
    `some victims died holding a ring lock or an unfinished lease (${totals.locks} locks, ${totals.leases} leases)`);
  const c = b.counters(l);
  const { lhs, rhs } = invariant(b, l);
  t.equal(lhs, rhs, 'live sender: txCopies = txDelivered + all drops, exactly');
  t.equal(c.txFrames, lrep.sent, 'live sender: txFrames = frames it put in its TX ring');
  t.equal(c.txCopies, c.txFrames, 'live sender: one copy per frame (unicast)');
  t.equal(c.dropNoDest + c.dropBadBuf + c.dropBadLen, 0, 'live sender: no frame without destination or invalid');
  t.equal(rep.perId[LIVE_ID], c.txDelivered, 'the receiver got exactly the live sender\'s txDelivered frames');
  t.same(rep.problems, [], 'the receiver saw no problem');
  t.equal(rep.corrupt + rep.reordered + rep.duplicated, 0, 'no corrupt, reordered or duplicated frame from anybody');
  t.equal(b.rxRing(r).space(), 0, 'the receiver\'s ring is empty at the end');
  t.equal(leasesPending(b, r), 0, 'no lease outstanding on the receiver\'s ring');
  t.equal(b.rxLeasesAt(r).lockHolder(), 0, 'its lock is free');
  const victimsFrames = rep.perId.slice(2).reduce((s, x) => s + x, 0);
  t.comment(`${KILLS} kills in ${ms.toFixed(0)} ms; ${killsHolding} left something to reclaim ` +
    `(txsync marks ${totals.busy}, ring locks ${totals.locks}, unfinished leases ${totals.leases}; ${released} released); ` +
    `port freed after ≤ ${maxFreeMs.toFixed(1)} ms (≤ ${maxFreePolls} tryFinishRemove calls), live pair seen forwarding after ≤ ${maxResumeMs.toFixed(1)} ms; ` +
    `live sender: ${c.txFrames} frames, ${c.txDelivered} delivered, ${c.dropRingFull} ring-full, ${c.dropBusy} busy; ` +
    `receiver: ${victimsFrames} frames from victims, ${rep.empty} empty slots of dead leases`);
});
