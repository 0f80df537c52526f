/**
 * A dead thread stopped at each step of the RX lease protocol, on the ring of a receiver that a
 * live sender keeps sending to, then reclaimed (issue 19 asked whether reclaiming can rewind or
 * re-publish a live receiver's ring).
 *
 * The protocol (rx-lease.ts, as Forwarder.deliver drives it): under the ring lock a sender
 * reserves slots (lease entry start, end, done = 0, owner, then one store of the next lease
 * number), drops the lock, copies its frames without it, marks the lease done, takes the lock
 * again and publishes every done lease from the oldest on (tail first, then the lease head). A
 * thread can die between any two of those steps. Here the main thread plays such a thread (owner
 * DEAD + 1, a thread id no Worker has), through the same RxLeases calls, stopping at one step:
 *
 *   lock          holds the lock, nothing else (died in reserve, before reserving)
 *   lock+lease    reserved, still holding the lock
 *   half-copied   reserved, unlocked, one frame and a half copied
 *   done+lock     copied, took the lock, marked done, died before publishing
 *   mid-publish   ... published tail, died before moving the lease head
 *   done-nolock   copied and marked done without the lock (deliver's give-up path)
 *
 * while a live sender Worker (unicast to the receiver, numbered across 2^32) and the receiver
 * Worker keep running; then reclaimThread(DEAD). Each step ROUNDS times. Must hold: reclaimThread
 * releases exactly what was held and nothing is held after; the live pair forwards again; and at
 * the end the receiver saw nothing corrupt, reordered or duplicated, got exactly the live
 * sender's delivered frames, exactly the dead thread's frames of the leases it had completed, and
 * exactly one empty slot per slot of the leases it had not.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Bridge, Forwarder, LEASE_WORDS, L_DONE, L_END } from '#bridge';
import { frame, send, recv, invariant } from './helpers/bridge-util.js';
import {
  CTL_COUNT, CTL_STOP_RX, CTL_STOP_TX, CTL_WORDS, ETHERTYPE_LE, OFF_ID, OFF_SEQ, OFF_SEQ_HI, SEQ_HI, ctlSince, lenOf,
  macOf, macString, trailerOf, type ReceiverData, type ReceiverReport, type SenderData, type SenderReport,
} from './fixtures/bridge-proto.js';
import { runWorker, waitUntil } from './fixtures/bridge-harness.js';
import { heldBy, leasesPending } from './fixtures/rel-bridge.js';

const SENDER_JS = new URL('../dist/test/fixtures/bridge-sender.js', import.meta.url);
const RECEIVER_JS = new URL('../dist/test/fixtures/bridge-receiver.js', import.meta.url);

/** The dead thread's id (its owner word is DEAD + 1); no Worker gets an id this high. */
const DEAD = 0x3fff0000;
const RECEIVER_ID = 0;
const LIVE_ID = 1;
const DEAD_ID = 2;
/** Slots per dead lease. */
const LEASE = 8;
const ROUNDS = 12;
const RUN_TIMEOUT_MS = 120_000;

const STEPS = ['lock', 'lock+lease', 'half-copied', 'done+lock', 'mid-publish', 'done-nolock'] as const;
type Step = typeof STEPS[number];

t.before(() => {
  for (const f of [SENDER_JS, RECEIVER_JS]) {
    if (!existsSync(fileURLToPath(f))) {
      throw new Error(`${fileURLToPath(f)} is missing: build first (npx tsc -b tsconfig.build.json, or npm test)`);
    }
  }
});

t.test(`a dead thread stopped at each lease step (${STEPS.join(', ')}) is reclaimed under live traffic, ${ROUNDS} times each`, async (t) => {
  const b = Bridge.create('valeQ', { maxPorts: 4, txSlots: 256, rxSlots: 256, batch: 64, ageing: 0 });
  const r = b.addPort('valeQ:r');
  const l = b.addPort('valeQ:l');
  const fw = new Forwarder(b, 0);
  t.equal(send(b, fw, r, [frame('ff:ff:ff:ff:ff:ff', macString(RECEIVER_ID))]), 1, 'the bridge learns the receiver');
  recv(b, l);
  b.resetCounters(r);
  b.resetCounters(l);
  const { u8, u16, u32, i32 } = b.region;
  const rx = b.rxRing(r);
  const lk = b.rxLeasesAt(r);
  const mask = rx.mask;

  const ctlSab = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(ctlSab);
  const rdata: ReceiverData = { sab: b.sab, ctl: ctlSab, port: r, spin: 2000, sleepMs: 20, waitGo: false };
  const receiver = runWorker<ReceiverReport>(RECEIVER_JS, rdata, 'receiver', RUN_TIMEOUT_MS);
  const sdata: SenderData = {
    sab: b.sab, ctl: ctlSab, port: l, id: LIVE_ID, dstId: RECEIVER_ID, bcastEvery: 0, frames: 0, waitGo: false,
    drainRx: true, announce: false, seqBase: SEQ_HI - (1 << 16),
  };
  const sender = runWorker<SenderReport>(SENDER_JS, sdata, 'live sender', RUN_TIMEOUT_MS);

  /** Waits until the live sender has delivered, and the receiver has taken, more of its frames than now. */
  async function liveMoves(ms = 2000): Promise<boolean> {
    const d = b.counters(l).txDelivered;
    const c = Atomics.load(ctl, CTL_COUNT + LIVE_ID);
    return waitUntil(() => b.counters(l).txDelivered > d && ctlSince(ctl, CTL_COUNT + LIVE_ID, c) > 0, ms);
  }

  /** The dead thread's frames are numbered 0, 1, ... as a sender's are. */
  let deadSeq = 0;
  const dst = macOf(RECEIVER_ID);
  const src = macOf(DEAD_ID);
  /** Writes the dead thread's next frame into RX slot j (its own buffer), `part` of it, as the forwarder's copy does. */
  function copyInto(j: number, part = 1): void {
    const seq = deadSeq++;
    const len = lenOf(seq);
    const off = rx.slotBuf(j);
    const tmp = new Uint8Array(len);
    const dv = new DataView(tmp.buffer);
    dv.setUint32(0, dst.a, true);
    dv.setUint16(4, dst.b, true);
    dv.setUint16(6, src.a & 0xffff, true);
    dv.setUint32(8, ((src.a >>> 16) | (src.b << 16)) >>> 0, true);
    dv.setUint16(12, ETHERTYPE_LE, true);
    dv.setUint32(OFF_ID, DEAD_ID, true);
    dv.setUint32(OFF_SEQ, seq >>> 0, true);
    dv.setUint32(OFF_SEQ_HI, Math.floor(seq / SEQ_HI), true);
    tmp[len - 1] = trailerOf(DEAD_ID, seq);
    u8.set(tmp.subarray(0, Math.floor(len * part)), off);
    u32[(rx.slotOffset(j)) >>> 2] = rx.bufIdx(j);
    u16[(rx.slotOffset(j) + 4) >>> 1] = len;
    u16[(rx.slotOffset(j) + 6) >>> 1] = 0;
  }

  /**
   * Takes the lock as the dead thread and reserves LEASE slots as Forwarder.deliver does,
   * keeping the lock. Waits for room first.
   */
  async function lockAndReserve(): Promise<{ k: number; start: number; end: number }> {
    for (;;) {
      lk.lock(DEAD + 1, Infinity);
      if (lk.room() >= LEASE) {
        lk.reserve(LEASE, DEAD + 1);
        return { k: lk.lease, start: lk.start, end: (lk.start + LEASE) & mask };
      }
      lk.unlock();
      await sleep(1);
    }
  }

  const expect = { deadFrames: 0, empties: 0 };
  const failures: string[] = [];
  let reclaimed = 0;
  /** Plays the dead thread up to `step`, lets the live pair run into it, reclaims it. */
  async function dieAt(step: Step, round: number): Promise<void> {
    let held = 0;
    if (step === 'lock') {
      lk.lock(DEAD + 1, Infinity);
      held = 1;
    } else {
      const lease = await lockAndReserve();
      if (step === 'lock+lease') {
        held = 2;
        expect.empties += LEASE;
      } else {
        lk.unlock();
        if (step === 'half-copied') {
          copyInto(lease.start);
          copyInto((lease.start + 1) & mask, 0.5);
          deadSeq += LEASE - 2; // numbers it would have used
          held = 1;
          expect.empties += LEASE;
        } else {
          for (let c = 0; c < LEASE; c++) copyInto((lease.start + c) & mask);
          expect.deadFrames += LEASE;
          if (step === 'done-nolock') {
            lk.finish(lease.k, 0);
          } else {
            lk.finish(lease.k, 0);
            lk.lock(DEAD + 1, Infinity);
            held = 1;
            if (step === 'mid-publish') {
              // RxLeases.publish up to, not including, the store of the lease head.
              let k = i32[lk.headW] & mask;
              const next = i32[lk.nextW] & mask;
              let tl = -1;
              while (k !== next && Atomics.load(u32, lk.lw + LEASE_WORDS * k + L_DONE) !== 0) {
                tl = u32[lk.lw + LEASE_WORDS * k + L_END];
                k = (k + 1) & mask;
              }
              if (tl >= 0) {
                i32[lk.hwtailW] = tl;
                rx.publishTail(tl);
              }
            }
          }
        }
      }
    }
    // Let the live pair run into what the dead thread left: a held lock only briefly (a live
    // sender that waits out its lock budget would drop, or leave its lease unpublished and its
    // frames uncounted, which is another matter); a lease until later live leases are done behind it.
    if (held > 0 && lk.lockHolder() === DEAD + 1) await sleep(2);
    else await waitUntil(() => leasesPending(b, r) >= 2, 200);
    const n = b.reclaimThread(DEAD);
    reclaimed += n;
    if (n !== held) failures.push(`${step} #${round}: reclaimThread released ${n}, expected ${held}`);
    const after = heldBy(b, DEAD);
    if (after.busy + after.locks + after.leases !== 0) failures.push(`${step} #${round}: still held after reclaim: ${JSON.stringify(after)}`);
    if (!await liveMoves()) failures.push(`${step} #${round}: the live pair did not forward again within 2 s`);
  }

  let rep: ReceiverReport;
  let srep: SenderReport;
  try {
    t.ok(await liveMoves(30_000), 'the live pair forwards (both Workers started)');
    for (let round = 0; round < ROUNDS; round++) {
      for (const step of STEPS) await dieAt(step, round);
    }
    Atomics.store(ctl, CTL_STOP_TX, 1);
    srep = await sender.done;
    const d = b.counters(l).txDelivered;
    t.ok(await waitUntil(() => ctlSince(ctl, CTL_COUNT + LIVE_ID, d) >= 0 && rx.space() === 0, 10_000, 2),
      `the receiver drained everything (live frames ${Atomics.load(ctl, CTL_COUNT + LIVE_ID)} of ${d}, head ${rx.head}, ` +
      `tail ${rx.tail}, leases ${leasesPending(b, r)}, lock ${lk.lockHolder()})`);
    Atomics.store(ctl, CTL_STOP_RX, 1);
    rx.wakeAll();
    rep = await receiver.done;
  } finally {
    void sender.worker.terminate();
    void receiver.worker.terminate();
  }
  t.same(failures, [], 'every step: exactly what was held released, nothing left, live pair forwarding again');
  const c = b.counters(l);
  t.equal(c.txFrames, srep.sent, 'live sender: txFrames = frames it sent');
  const { lhs, rhs } = invariant(b, l);
  t.equal(lhs, rhs, 'live sender: txCopies = delivered + dropped');
  t.same(rep.problems, [], 'the receiver saw no problem');
  t.equal(rep.corrupt + rep.reordered + rep.duplicated, 0, 'nothing corrupt, reordered or duplicated');
  t.equal(rep.perId[LIVE_ID], c.txDelivered, `the receiver got exactly the live sender's ${c.txDelivered} delivered frames`);
  t.equal(rep.perId[DEAD_ID], expect.deadFrames, `... exactly the dead thread's ${expect.deadFrames} frames of completed leases`);
  t.equal(rep.empty, expect.empties, `... and exactly ${expect.empties} empty slots of its unfinished leases`);
  t.equal(rep.received, c.txDelivered + expect.deadFrames + expect.empties, 'and nothing else');
  t.equal(b.counters(r).rxFrames, c.txDelivered + expect.deadFrames,
    'receiver rxFrames = the live sender\'s txDelivered + the dead thread\'s frames of completed leases (counted when published)');
  t.equal(b.counters(r).rxBadHead, 0, 'the receiver\'s head was never out of [hwcur, tail]');
  t.equal(leasesPending(b, r), 0, 'no lease outstanding');
  t.equal(lk.lockHolder(), 0, 'the ring lock is free');
  t.comment(`${ROUNDS * STEPS.length} dead threads reclaimed (${reclaimed} objects released); live sender ${srep.sent} frames, ` +
    `${c.txDelivered} delivered, ${c.dropRingFull} ring-full, ${c.dropBusy} busy; dead thread ${expect.deadFrames} frames ` +
    `delivered, ${expect.empties} slots emptied`);
});
