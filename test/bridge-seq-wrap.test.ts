/**
 * A sender whose sequence numbers pass 2^32 (issue 19). The stress run of
 * reliability-dead-threads.test.ts lets live sender 1 send flat out for about an hour: 4.3e9
 * frames, past 2^32. The test frame used to carry its sequence number as one u32 while its length
 * and last byte were computed from the whole number, so from frame 2^32 on every frame that
 * sender delivered looked corrupt to the receiver ("slot 38: id 1 seq 11219 len 90": seq 2^32 +
 * 11219 stored as 11219, 90 bytes long where a frame numbered 11219 is 101), it counted none of
 * them, and the test reported a switch that re-reads stale frames.
 *
 * Here one sender Worker starts just below 2^32 and sends across it, flat out, through a bridge
 * into one receiver Worker (a 256-slot ring, so frames are also dropped ring-full): the receiver
 * must see no problem, get exactly the delivered frames, and frames from both sides of 2^32.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Bridge, Forwarder } from '#bridge';
import { frame, send, invariant } from './helpers/bridge-util.js';
import {
  CTL_COUNT, CTL_GO, CTL_READY, CTL_RECEIVED, CTL_STOP_RX, CTL_WORDS, macString, ctlSince,
  type ReceiverData, type ReceiverReport, type SenderData, type SenderReport,
} from './fixtures/bridge-proto.js';
import { runWorker, waitUntil } from './fixtures/bridge-harness.js';

const SENDER_JS = new URL('../dist/test/fixtures/bridge-sender.js', import.meta.url);
const RECEIVER_JS = new URL('../dist/test/fixtures/bridge-receiver.js', import.meta.url);

const BEFORE = 1 << 18;
const FRAMES = 2 * BEFORE;
const SEQ_BASE = 2 ** 32 - BEFORE;
const ID = 1;
const RECEIVER_ID = 0;
const RUN_TIMEOUT_MS = 60_000;

t.before(() => {
  for (const f of [SENDER_JS, RECEIVER_JS]) {
    if (!existsSync(fileURLToPath(f))) {
      throw new Error(`${fileURLToPath(f)} is missing: build first (npx tsc -b tsconfig.build.json, or npm test)`);
    }
  }
});

t.test(`a sender's frames ${SEQ_BASE}..${SEQ_BASE + FRAMES - 1} (across 2^32) reach the receiver as they were sent`, async (t) => {
  const b = Bridge.create('valeW', { maxPorts: 4, txSlots: 256, rxSlots: 256, batch: 64 });
  const r = b.addPort('valeW:r');
  const s = b.addPort('valeW:s');
  const fw = new Forwarder(b, 0);
  t.equal(send(b, fw, r, [frame('ff:ff:ff:ff:ff:ff', macString(RECEIVER_ID))]), 1, 'the bridge learns the receiver');
  b.resetCounters(r);
  const ctlSab = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(ctlSab);
  const rdata: ReceiverData = { sab: b.sab, ctl: ctlSab, port: r, spin: 2000, sleepMs: 20, waitGo: true };
  const receiver = runWorker<ReceiverReport>(RECEIVER_JS, rdata, 'receiver', RUN_TIMEOUT_MS);
  const sdata: SenderData = {
    sab: b.sab, ctl: ctlSab, port: s, id: ID, dstId: RECEIVER_ID, bcastEvery: 0, frames: FRAMES, waitGo: true,
    drainRx: false, announce: false, seqBase: SEQ_BASE,
  };
  const sender = runWorker<SenderReport>(SENDER_JS, sdata, 'sender', RUN_TIMEOUT_MS);
  let rep: ReceiverReport;
  let srep: SenderReport;
  try {
    t.ok(await waitUntil(() => Atomics.load(ctl, CTL_READY) === 2, 30_000, 5), 'both Workers started');
    Atomics.store(ctl, CTL_GO, 1);
    Atomics.notify(ctl, CTL_GO);
    srep = await sender.done;
    const delivered = b.counters(s).txDelivered;
    t.ok(await waitUntil(() => ctlSince(ctl, CTL_RECEIVED, delivered) >= 0 && b.rxRing(r).space() === 0, 10_000, 2),
      `the receiver drained all ${delivered} delivered frames`);
    Atomics.store(ctl, CTL_STOP_RX, 1);
    b.rxRing(r).wakeAll();
    rep = await receiver.done;
  } finally {
    void sender.worker.terminate();
    void receiver.worker.terminate();
  }
  const c = b.counters(s);
  t.equal(srep.sent, FRAMES, `the sender sent ${FRAMES} frames`);
  t.equal(c.txFrames, FRAMES, 'txFrames');
  t.equal(c.txCopies, c.txDelivered + c.dropRingFull, 'txCopies = txDelivered + dropRingFull');
  const { lhs, rhs } = invariant(b, s);
  t.equal(lhs, rhs, 'the accounting invariant holds');
  t.same(rep.problems, [], 'the receiver saw no problem');
  t.equal(rep.corrupt + rep.reordered + rep.duplicated, 0, 'nothing corrupt, reordered or duplicated');
  t.equal(rep.perId[ID], c.txDelivered, `the receiver got exactly the ${c.txDelivered} delivered frames`);
  t.equal(ctlSince(ctl, CTL_COUNT + ID, rep.perId[ID]), 0, 'its running count says the same');
  t.equal(b.counters(r).rxFrames, rep.received, 'rxFrames = frames received');
  t.ok(rep.lastSeq[ID] >= 2 ** 32 && rep.lastSeq[ID] < SEQ_BASE + FRAMES,
    `frames from after 2^32 arrived, numbered as sent (last ${rep.lastSeq[ID]})`);
  t.ok(rep.firstSeq[ID] >= SEQ_BASE && rep.firstSeq[ID] < 2 ** 32, `frames from before 2^32 arrived (first ${rep.firstSeq[ID]})`);
  t.comment(`${c.txDelivered} of ${FRAMES} frames delivered, ${c.dropRingFull} dropped ring-full, seq ${rep.firstSeq[ID]}..${rep.lastSeq[ID]}`);
});
