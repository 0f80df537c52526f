/**
 * Sustained load with exact accounting, for a bounded time, repeated: N→1 (4 sender Workers
 * unicast into one receiver Worker) and 1→N (one sender Worker whose frames are broadcast, or
 * half broadcast and half unicast, to 4 receiver Workers). Workers: fixtures/bridge-sender.ts and
 * bridge-receiver.ts; they send flat out until told to stop, the receivers check every frame
 * (sender, order, length, last byte, no duplicate).
 *
 * After each run, exactly: every sender's txCopies = txDelivered + all drops and txFrames = what
 * it sent; the receivers got exactly the frames delivered to them, per sender, in order, nothing
 * corrupt; each receiver's rxFrames = frames it took and its rxDropRingFull = the copies dropped
 * on its ring; bridge-wide Σ txDelivered = Σ rxFrames.
 *
 * DURATION_MS per run: 3 s by default (2 repetitions of each shape), 60 s with VSWITCH_STRESS=1.
 * Each run fails instead of hanging if it has not ended DURATION_MS + 60 s after it started.
 */
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Bridge, Forwarder } from '#bridge';
import { frame, recv, send } from './helpers/bridge-util.js';
import {
  CTL_GO, CTL_READY, CTL_RECEIVED, CTL_STOP_RX, CTL_STOP_TX, CTL_WORDS, macString,
  type ReceiverData, type ReceiverReport, type SenderData, type SenderReport,
} from './fixtures/bridge-proto.js';
import { runWorker, waitUntil } from './fixtures/bridge-harness.js';
import { invariantOf, leasesPending } from './fixtures/rel-bridge.js';

const SENDER_JS = new URL('../dist/test/fixtures/bridge-sender.js', import.meta.url);
const RECEIVER_JS = new URL('../dist/test/fixtures/bridge-receiver.js', import.meta.url);

const STRESS = process.env.VSWITCH_STRESS === '1';
const DURATION_MS = STRESS ? 60_000 : 3_000;
const REPEATS = 2;
const N = 4;
const BCAST = 'ff:ff:ff:ff:ff:ff';

t.before(() => {
  for (const f of [SENDER_JS, RECEIVER_JS]) {
    if (!existsSync(fileURLToPath(f))) {
      throw new Error(`${fileURLToPath(f)} is missing: build first (npx tsc -b tsconfig.build.json, or npm test)`);
    }
  }
});

interface Shape {
  name: string;
  senders: number;
  receivers: number;
  /** Every bcastEvery-th frame of a sender is broadcast (0: never). */
  bcastEvery: number;
  rxSlots: number;
  batch: number;
}

/** Frames sent, delivered and dropped (by reason) in one run, for the figures. */
interface RunFigures { sent: number; copies: number; delivered: number; ringFull: number; busy: number; noDest: number; ms: number }

async function loadRun(t: Test, shape: Shape, rep: number): Promise<RunFigures | undefined> {
  const b = Bridge.create(`valeL${rep}`, { maxPorts: 16, txSlots: 512, rxSlots: shape.rxSlots, batch: shape.batch, ageing: 0 });
  const rx = Array.from({ length: shape.receivers }, (_, i) => b.addPort(`valeL${rep}:r${i}`));
  const tx = Array.from({ length: shape.senders }, (_, i) => b.addPort(`valeL${rep}:s${i}`));
  // The bridge learns the receivers' addresses (ids 0..receivers-1; senders are 1..senders,
  // receivers are told apart from senders by port, not id).
  const fw = new Forwarder(b, 0);
  rx.forEach((p, i) => send(b, fw, p, [frame(BCAST, macString(32 + i))]));
  for (const p of [...rx, ...tx]) recv(b, p);
  for (const p of [...rx, ...tx]) b.resetCounters(p);
  const ctlSabs = rx.map(() => new SharedArrayBuffer(CTL_WORDS * 4));
  const ctls = ctlSabs.map((s) => new Int32Array(s));
  // One control block per receiver (its own CTL_RECEIVED); the senders wait on the first one's GO.
  const go = ctls[0];
  const limit = DURATION_MS + 60_000;
  const receivers = rx.map((port, i) => runWorker<ReceiverReport>(RECEIVER_JS,
    { sab: b.sab, ctl: ctlSabs[i], port, spin: 2000, sleepMs: 20, waitGo: false } satisfies ReceiverData, `receiver ${i}`, limit));
  const senders = tx.map((port, i) => runWorker<SenderReport>(SENDER_JS, {
    sab: b.sab, ctl: ctlSabs[0], port, id: i + 1, dstId: 32 + (i % shape.receivers), bcastEvery: shape.bcastEvery, frames: 0,
    waitGo: true, drainRx: true, announce: false,
  } satisfies SenderData, `sender ${i + 1}`, limit));
  const all = [...receivers, ...senders];
  let sreps: SenderReport[] | undefined;
  let rreps: ReceiverReport[] | undefined;
  let ms = 0;
  try {
    // Receivers count themselves in their own block's CTL_READY, senders in the first one's.
    t.ok(await waitUntil(() => Atomics.load(go, CTL_READY) === 1 + shape.senders &&
      ctls.every((c, i) => i === 0 || Atomics.load(c, CTL_READY) === 1), 60_000, 5), 'all Workers started');
    const t0 = performance.now();
    Atomics.store(go, CTL_GO, 1);
    Atomics.notify(go, CTL_GO);
    await sleep(DURATION_MS);
    Atomics.store(go, CTL_STOP_TX, 1);
    sreps = await Promise.all(senders.map((s) => s.done));
    ms = performance.now() - t0;
    // Senders stopped: every counter is final. Each receiver must take what was delivered to it.
    const drained = await waitUntil(() => rx.every((p, i) => Atomics.load(ctls[i], CTL_RECEIVED) === b.counters(p).rxFrames &&
      b.rxRing(p).space() === 0), 10_000, 2);
    t.ok(drained, `the receivers drained every delivered frame (${rx.map((p, i) => `${Atomics.load(ctls[i], CTL_RECEIVED)}/${b.counters(p).rxFrames}`).join(', ')})`);
    for (const [i, c] of ctls.entries()) {
      Atomics.store(c, CTL_STOP_RX, 1);
      b.rxRing(rx[i]).wakeAll();
    }
    rreps = await Promise.all(receivers.map((r) => r.done));
  } catch (e) {
    t.fail(`${shape.name} run ${rep + 1}: ${(e as Error).message}`);
  } finally {
    for (const w of all) void w.worker.terminate();
  }
  if (!sreps || !rreps) return undefined;

  const fig: RunFigures = { sent: 0, copies: 0, delivered: 0, ringFull: 0, busy: 0, noDest: 0, ms };
  for (const [i, p] of tx.entries()) {
    const c = b.counters(p);
    const inv = invariantOf(b, p);
    const id = i + 1;
    t.equal(inv.lhs, inv.rhs, `sender ${id}: txCopies = txDelivered + all drops (${inv.lhs})`);
    t.equal(c.txFrames, sreps[i].sent, `sender ${id}: txFrames = frames it sent (${sreps[i].sent})`);
    t.equal(c.dropBadBuf + c.dropBadLen + c.dropVlan, 0, `sender ${id}: no invalid frame`);
    const got: number = rreps.reduce((s: number, r: ReceiverReport) => s + r.perId[id], 0);
    t.equal(got, c.txDelivered, `sender ${id}: the receivers got exactly its ${c.txDelivered} delivered frames`);
    fig.sent += c.txFrames;
    fig.copies += c.txCopies;
    fig.delivered += c.txDelivered;
    fig.ringFull += c.dropRingFull;
    fig.busy += c.dropBusy;
    fig.noDest += c.dropNoDest;
  }
  for (const [i, p] of rx.entries()) {
    const r: ReceiverReport = rreps[i];
    const c = b.counters(p);
    t.same(r.problems, [], `receiver ${i}: no problem`);
    t.equal(r.corrupt + r.reordered + r.duplicated + r.empty, 0, `receiver ${i}: nothing corrupt, reordered, duplicated or empty`);
    t.equal(c.rxFrames, r.received, `receiver ${i}: rxFrames = frames it took (${r.received})`);
    t.equal(leasesPending(b, p), 0, `receiver ${i}: no lease outstanding`);
    t.equal(b.rxLeasesAt(p).lockHolder(), 0, `receiver ${i}: RX lock free`);
  }
  const rxDrops = rx.reduce((s, p) => s + b.counters(p).rxDropRingFull, 0);
  t.equal(rxDrops, fig.ringFull, 'Σ receivers\' rxDropRingFull = Σ senders\' dropRingFull');
  const ports = [...rx, ...tx];
  const txd = ports.reduce((s, p) => s + b.counters(p).txDelivered, 0);
  const rxf = ports.reduce((s, p) => s + b.counters(p).rxFrames, 0);
  t.equal(txd, rxf, `bridge-wide Σ txDelivered = Σ rxFrames (${rxf})`);
  t.ok(fig.delivered > 0, 'frames were delivered');
  t.comment(`${shape.name}, run ${rep + 1}: ${(ms / 1000).toFixed(1)} s, ${fig.sent} frames sent (${(fig.sent / ms / 1000).toFixed(2)} Mfps), ` +
    `${fig.copies} copies: ${fig.delivered} delivered (${(fig.delivered / ms / 1000).toFixed(2)} Mfps), ${fig.ringFull} dropped ring-full, ` +
    `${fig.busy} busy, ${fig.noDest} no destination; receivers took ${rreps.map((r) => r.received).join(' / ')}`);
  return fig;
}

const shapes: Shape[][] = [
  [
    { name: `${N}→1 unicast, RX ring 256, batch 64`, senders: N, receivers: 1, bcastEvery: 0, rxSlots: 256, batch: 64 },
    { name: `1→${N} broadcast, RX rings 256, batch 64`, senders: 1, receivers: N, bcastEvery: 1, rxSlots: 256, batch: 64 },
  ],
  [
    { name: `${N}→1 unicast, RX ring 1024, batch 1024`, senders: N, receivers: 1, bcastEvery: 0, rxSlots: 1024, batch: 1024 },
    { name: `1→${N} half broadcast, RX rings 1024, batch 1024`, senders: 1, receivers: N, bcastEvery: 2, rxSlots: 1024, batch: 1024 },
  ],
];

for (let rep = 0; rep < REPEATS; rep++) {
  for (const shape of shapes[rep % shapes.length]) {
    t.test(`${shape.name}, ${DURATION_MS / 1000} s (run ${rep + 1})`, async (t) => {
      await loadRun(t, shape, rep);
    });
  }
}
