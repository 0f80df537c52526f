/**
 * Many senders into one receiver, each in its own Worker, on one bridge: 4 sender Workers push
 * 2,000,000 sequence-numbered frames each, flat out, unicast to one receiver Worker whose RX ring
 * (256 slots) is far too small to take them all, so the senders' concurrent reservations (leases)
 * on that ring race, fill it and overflow it. The receiver checks every frame it gets.
 *
 * What must hold exactly at the end:
 * - per sender: every frame it sent is either delivered or dropped because the ring was full
 *   (txCopies = txDelivered + dropRingFull, every other drop counter 0, txFrames = 2,000,000);
 * - the receiver got exactly txDelivered frames of each sender, in that sender's order, none
 *   twice, none corrupt, and the ring is empty;
 * - the receiver's rxFrames is what it received, its rxDropRingFull is the senders' dropRingFull;
 * - bridge-wide, Σ txDelivered = Σ rxFrames;
 * - the overflow case was exercised (some frames were dropped because the ring was full).
 *
 * The Workers run test/fixtures/bridge-sender.ts and bridge-receiver.ts compiled to dist/
 * (npx tsc -b tsconfig.build.json, or npm test, builds them).
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Bridge, Forwarder, type PortCounters } from '#bridge';
import { frame, send, invariant } from './helpers/bridge-util.js';
import {
  CTL_COUNT, CTL_GO, CTL_READY, CTL_RECEIVED, CTL_STOP_RX, CTL_WORDS, macString,
  type ReceiverData, type ReceiverReport, type SenderData, type SenderReport,
} from './fixtures/bridge-proto.js';
import { runWorker, waitUntil } from './fixtures/bridge-harness.js';

const SENDER_JS = new URL('../dist/test/fixtures/bridge-sender.js', import.meta.url);
const RECEIVER_JS = new URL('../dist/test/fixtures/bridge-receiver.js', import.meta.url);

const SENDERS = 4;
const FRAMES = 2_000_000;
const RX_SLOTS = 256;
const TX_SLOTS = 1024;
/** Frames per forwarding batch: each batch is one lease on the receiver's ring, so many leases race. */
const BATCH = 64;
const RECEIVER_ID = 0; // endpoint id of the receiver's MAC (bridge-proto.ts macOf)
/** A sender or the receiver that has not finished by then fails the test instead of hanging it. */
const RUN_TIMEOUT_MS = 75_000;
/** After the last sender is done, the receiver must have drained everything within this time. */
const DRAIN_TIMEOUT_MS = 10_000;

t.before(() => {
  for (const f of [SENDER_JS, RECEIVER_JS]) {
    if (!existsSync(fileURLToPath(f))) {
      throw new Error(`${fileURLToPath(f)} is missing: build first (npx tsc -b tsconfig.build.json, or npm test)`);
    }
  }
});

const OTHER_DROPS = ['dropBadBuf', 'dropBadLen', 'dropNoDest', 'dropBusy', 'dropVlan'] as const;

t.test(`${SENDERS} sender Workers × ${FRAMES.toLocaleString('en')} frames into one receiver Worker (RX ring ${RX_SLOTS} slots)`, async (t) => {
  const b = Bridge.create('valeC', { maxPorts: 8, txSlots: TX_SLOTS, rxSlots: RX_SLOTS, batch: BATCH });
  const r = b.addPort('valeC:r');
  const s = Array.from({ length: SENDERS }, (_, i) => b.addPort(`valeC:s${i}`));
  const ctlSab = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(ctlSab);

  // Teach the bridge where the receiver's MAC lives: one broadcast from the receiver's port.
  const fw = new Forwarder(b, 0);
  t.equal(send(b, fw, r, [frame('ff:ff:ff:ff:ff:ff', macString(RECEIVER_ID))]), 1);
  t.same(b.macTable().map((e) => [e.mac, e.port]), [[macString(RECEIVER_ID), r]], 'the receiver\'s MAC is learned on its port');

  const start = performance.now();
  const rdata: ReceiverData = { sab: b.sab, ctl: ctlSab, port: r, spin: 2000, sleepMs: 20, waitGo: true };
  const receiver = runWorker<ReceiverReport>(RECEIVER_JS, rdata, 'receiver', RUN_TIMEOUT_MS);
  const senders = s.map((port, i) => {
    const data: SenderData = {
      sab: b.sab, ctl: ctlSab, port, id: i + 1, dstId: RECEIVER_ID, bcastEvery: 0, frames: FRAMES,
      waitGo: true, drainRx: false, announce: false,
    };
    return runWorker<SenderReport>(SENDER_JS, data, `sender ${i + 1}`, RUN_TIMEOUT_MS);
  });
  const all = [receiver, ...senders];
  let rep: ReceiverReport;
  let sreps: SenderReport[];
  let drained: boolean;
  let sendMs: number;
  let startupMs = 0;
  try {
    // Start everybody at once, so that the senders really overlap.
    const ready = await waitUntil(() => Atomics.load(ctl, CTL_READY) === SENDERS + 1, 30_000, 5);
    t.ok(ready, 'all Workers started');
    const go = performance.now();
    startupMs = go - start;
    Atomics.store(ctl, CTL_GO, 1);
    Atomics.notify(ctl, CTL_GO);
    sreps = await Promise.all(senders.map((w) => w.done));
    sendMs = performance.now() - go;
    // Every sender is done: its counters are final. Let the receiver drain what was delivered.
    const target = s.reduce((sum, p) => sum + b.counters(p).txDelivered, 0);
    drained = await waitUntil(() => Atomics.load(ctl, CTL_RECEIVED) >= target, DRAIN_TIMEOUT_MS, 2);
    t.ok(drained, `the receiver took all ${target} delivered frames within ${DRAIN_TIMEOUT_MS} ms ` +
      `(got ${Atomics.load(ctl, CTL_RECEIVED)})`);
    Atomics.store(ctl, CTL_STOP_RX, 1);
    b.rxRing(r).wakeAll();
    rep = await receiver.done;
  } finally {
    for (const w of all) void w.worker.terminate();
  }
  const ms = performance.now() - start;
  if (!drained) return;

  t.same(rep.problems, [], 'the receiver saw no problem');
  t.equal(rep.corrupt, 0, 'no corrupt or stale frame');
  t.equal(rep.reordered, 0, 'no frame out of its sender\'s order');
  t.equal(rep.duplicated, 0, 'no frame twice');
  t.equal(rep.empty, 0, 'no empty frame');
  t.equal(b.rxRing(r).space(), 0, 'the receiver\'s ring is empty at the end');

  const c: PortCounters[] = s.map((p) => b.counters(p));
  let delivered = 0;
  let ringFull = 0;
  for (let i = 0; i < SENDERS; i++) {
    const id = i + 1;
    const ci = c[i];
    t.equal(sreps[i].sent, FRAMES, `sender ${id} put ${FRAMES} frames in its TX ring`);
    t.equal(ci.txFrames, FRAMES, `sender ${id}: txFrames`);
    t.equal(ci.txCopies, FRAMES, `sender ${id}: one copy per frame (unicast)`);
    t.equal(ci.txCopies, ci.txDelivered + ci.dropRingFull, `sender ${id}: txCopies = txDelivered + dropRingFull`);
    for (const k of OTHER_DROPS) t.equal(ci[k], 0, `sender ${id}: ${k} is 0`);
    const { lhs, rhs } = invariant(b, s[i]);
    t.equal(lhs, rhs, `sender ${id}: the accounting invariant holds`);
    t.equal(rep.perId[id], ci.txDelivered, `sender ${id}: the receiver got exactly its txDelivered frames`);
    t.equal(Atomics.load(ctl, CTL_COUNT + id), rep.perId[id]);
    t.ok(rep.lastSeq[id] < FRAMES, `sender ${id}: sequence numbers in range`);
    delivered += ci.txDelivered;
    ringFull += ci.dropRingFull;
  }
  const cr = b.counters(r);
  t.equal(rep.received, delivered, 'the receiver got Σ txDelivered frames');
  t.equal(cr.rxFrames, rep.received, 'receiver rxFrames = frames received');
  t.equal(cr.rxDropRingFull, ringFull, 'receiver rxDropRingFull = Σ senders\' dropRingFull');
  t.ok(ringFull > 0, `the RX ring overflowed (${ringFull} frames dropped ring-full)`);
  t.ok(delivered > 0, 'frames were delivered');
  const ports = [r, ...s];
  const txd = ports.reduce((sum, p) => sum + b.counters(p).txDelivered, 0);
  const rxf = ports.reduce((sum, p) => sum + b.counters(p).rxFrames, 0);
  t.equal(txd, rxf, 'bridge-wide Σ txDelivered = Σ rxFrames');
  t.equal(b.rxLeasesAt(r).lockHolder(), 0, 'the receiver\'s ring lock is free');

  t.comment(`${(SENDERS * FRAMES / 1e6).toFixed(0)}M frames sent in ${sendMs.toFixed(0)} ms ` +
    `(${(SENDERS * FRAMES / sendMs / 1000).toFixed(1)} Mfps offered), ${delivered} delivered ` +
    `(${(100 * delivered / (SENDERS * FRAMES)).toFixed(2)} %), ${ringFull} dropped ring-full; ` +
    `per sender delivered ${c.map((x) => x.txDelivered).join(' / ')}; dropBusy ${c.map((x) => x.dropBusy).join(' / ')}; txBatches ${c.map((x) => x.txBatches).join(' / ')}; ` +
    `receiver ${rep.batches} batches (avg ${(rep.received / Math.max(1, rep.batches)).toFixed(1)}), ${rep.sleeps} sleeps; ` +
    `Worker start-up ${startupMs.toFixed(0)} ms, whole test ${ms.toFixed(0)} ms`);
});
