/**
 * Dead threads, many times over (the harness of test/bridge-reclaim.test.ts, at scale, with more
 * live ports and the Switch's own clean-up path). A victim Worker (fixtures/bridge-sender.ts)
 * sends flat out, unicast to a live receiver and, depending on the kill, broadcast to everybody;
 * it is terminated at a random (seeded) moment, which lands inside txsync most of the time:
 * holding its port's txsync mark, a destination's ring lock, or a lease it was copying into.
 *
 * 1. Bridge level, KILLS times: the test reclaims the victim's thread itself (reclaimThread must
 *    release exactly what it held) and removes its port.
 * 2. Switch level, SWITCH_KILLS times: the victim's port is opened on a Switch on the victim's
 *    behalf; when the Worker dies the Switch notices by itself (watchWorkers), reclaims and
 *    destroys the port.
 *
 * Each time, within one second: nothing is held by the dead thread any more, its port is gone,
 * and the live ports keep forwarding. At the end every live port's accounting is exact
 * (txCopies = txDelivered + all drops; txFrames = frames it sent), the live receivers got every
 * frame of the live unicast sender, in order, and nothing corrupt, duplicated or reordered from
 * anybody.
 *
 * KILLS 30 + SWITCH_KILLS 10 by default, 1,000 + 200 with VSWITCH_STRESS=1. Seed: VSWITCH_SEED
 * (decimal or 0x hex); without it a fixed default when CI=1 and a random one otherwise. The seed is
 * in every message, and a failed run ends with the command line that repeats it.
 *
 * Live sender 1 numbers its frames from just below 2^32, so every run, short or stress, checks
 * frames on both sides of 2^32: the stress run used to fail only because its u32 sequence number
 * wrapped after an hour of sending (issue 19; see test/bridge-seq-wrap.test.ts).
 */
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'node:worker_threads';
import { Bridge, Forwarder, PORT_FREE } from '#bridge';
import { Switch } from '../src/index.js';
import { frame, recv, send } from './helpers/bridge-util.js';
import {
  CTL_COUNT, CTL_STOP_RX, CTL_STOP_TX, CTL_WORDS, ctlSince, macString,
  type ReceiverData, type ReceiverReport, type SenderData, type SenderReport,
} from './fixtures/bridge-proto.js';
import { prng, runWorker, startWorker, waitUntil } from './fixtures/bridge-harness.js';
import { heldBy, invariantOf, leasesPending, type Held } from './fixtures/rel-bridge.js';

const SENDER_JS = new URL('../dist/test/fixtures/bridge-sender.js', import.meta.url);
const RECEIVER_JS = new URL('../dist/test/fixtures/bridge-receiver.js', import.meta.url);

const STRESS = process.env.VSWITCH_STRESS === '1';
const KILLS = STRESS ? 1000 : 30;
const SWITCH_KILLS = STRESS ? 200 : 10;
/** The seed of runs with CI=1 and no VSWITCH_SEED. */
const CI_SEED = 0x3edb655e;
function seedOf(env: string | undefined): number {
  if (env === undefined || env === '') return process.env.CI === '1' ? CI_SEED : (Math.random() * 0x100000000) >>> 0;
  const v = Number(env);
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`VSWITCH_SEED must be an integer in [0, 2^32), decimal or 0x hex, got ${env}`);
  return v;
}
const SEED = seedOf(process.env.VSWITCH_SEED);
const S = `seed=0x${SEED.toString(16)}`;
/** Live sender 1's first sequence number: its frames cross 2^32 after 2^21 of them (seconds). */
const L1_SEQ_BASE = 2 ** 32 - 2 ** 21;
const BCAST = 'ff:ff:ff:ff:ff:ff';
/** MAC ids (bridge-proto macOf) of the two live receivers; sender ids are 1..63. */
const R1_ID = 0;
const R2_ID = 70;
const L1_ID = 1;
const L2_ID = 2;
/** Victims take ids 3..63 in turn; a reused id starts its sequence numbers above the last one's. */
const FIRST_VICTIM_ID = 3;
const VICTIM_IDS = 61;
const WHOLE_MS = STRESS ? 3_600_000 : 240_000;
/** Time the four live Workers get to start and forward (a shared 2-core machine can take seconds). */
const STARTUP_MS = 30_000;

t.before(() => {
  for (const f of [SENDER_JS, RECEIVER_JS]) {
    if (!existsSync(fileURLToPath(f))) {
      throw new Error(`${fileURLToPath(f)} is missing: build first (npx tsc -b tsconfig.build.json, or npm test)`);
    }
  }
});
t.comment(`dead threads ${S}: ${KILLS} bridge-level kills, ${SWITCH_KILLS} through a Switch`);
t.teardown(() => {
  if (!t.passing()) {
    console.log(`# dead threads FAILED with ${S}; repeat with: VSWITCH_SEED=0x${SEED.toString(16)}` +
      `${STRESS ? ' VSWITCH_STRESS=1' : ''} npx tap test/reliability-dead-threads.test.ts`);
  }
});

/** Everything both parts share: a bridge with two live receivers and two live senders. */
interface Live {
  b: Bridge;
  ctl: Int32Array;
  ctlSab: SharedArrayBuffer;
  r1: number; r2: number; l1: number; l2: number;
  receivers: ReturnType<typeof runWorker<ReceiverReport>>[];
  senders: ReturnType<typeof runWorker<SenderReport>>[];
}

function startLive(b: Bridge, ports: { r1: number; r2: number; l1: number; l2: number }): Live {
  const ctlSab = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(ctlSab);
  // The bridge learns where the receivers are.
  const fw = new Forwarder(b, 0);
  send(b, fw, ports.r1, [frame(BCAST, macString(R1_ID))]);
  send(b, fw, ports.r2, [frame(BCAST, macString(R2_ID))]);
  for (const p of Object.values(ports)) recv(b, p);
  for (const p of Object.values(ports)) b.resetCounters(p);
  const rdata = (port: number): ReceiverData => ({ sab: b.sab, ctl: ctlSab, port, spin: 2000, sleepMs: 20, waitGo: false });
  const receivers = [runWorker<ReceiverReport>(RECEIVER_JS, rdata(ports.r1), 'receiver 1', WHOLE_MS),
    runWorker<ReceiverReport>(RECEIVER_JS, rdata(ports.r2), 'receiver 2', WHOLE_MS)];
  const sdata = (port: number, id: number, dstId: number, bcastEvery: number, seqBase: number): SenderData => ({
    sab: b.sab, ctl: ctlSab, port, id, dstId, bcastEvery, frames: 0, waitGo: false, drainRx: true, announce: false, seqBase,
  });
  // l1: unicast to r1 only (exact per-destination accounting), numbered across 2^32;
  // l2: to r2, every 16th frame broadcast.
  const senders = [runWorker<SenderReport>(SENDER_JS, sdata(ports.l1, L1_ID, R1_ID, 0, L1_SEQ_BASE), 'live sender 1', WHOLE_MS),
    runWorker<SenderReport>(SENDER_JS, sdata(ports.l2, L2_ID, R2_ID, 16, 0), 'live sender 2', WHOLE_MS)];
  return { b, ctl, ctlSab, ...ports, receivers, senders };
}

interface KillStats {
  kills: number; holding: number; held: Held; released: number; maxGoneMs: number; maxResumeMs: number;
  victimFrames: number;
}

/** Waits (up to timeoutMs) until both live senders have delivered more, and both receivers have taken more, than now: ms taken, or -1. */
/**
 * Per kill: the victim's port freed, then the live ports forwarding again, each within this. With
 * Workers sending flat out on 2 busy cores the main thread gets the CPU late: full runs measured
 * up to 927 ms (freed) at load 20, and a CI-size run at load 15 saw the live ports forwarding
 * again after 1009 ms (over the 1 s this bound used to be). 5 s keeps a wide margin over that
 * while still failing a bridge that stays wedged.
 */
const BOUND_MS = 5000;

async function liveMoves(lv: Live, timeoutMs = BOUND_MS): Promise<number> {
  const { b, ctl } = lv;
  const d1 = b.counters(lv.l1).txDelivered;
  const d2 = b.counters(lv.l2).txDelivered;
  const c1 = Atomics.load(ctl, CTL_COUNT + L1_ID);
  const c2 = Atomics.load(ctl, CTL_COUNT + L2_ID);
  const t0 = performance.now();
  const ok = await waitUntil(() => b.counters(lv.l1).txDelivered > d1 && b.counters(lv.l2).txDelivered > d2 &&
    ctlSince(ctl, CTL_COUNT + L1_ID, c1) > 0 && ctlSince(ctl, CTL_COUNT + L2_ID, c2) > 0, timeoutMs);
  return ok ? performance.now() - t0 : -1;
}

/** Victim i's sender data: id, sequence base, and its kind of traffic. */
function victimData(lv: Live, port: number, i: number, rand: () => number): SenderData {
  const kinds = [0, 1, 4, 16];
  return {
    sab: lv.b.sab, ctl: lv.ctlSab, port, id: FIRST_VICTIM_ID + (i % VICTIM_IDS), dstId: rand() < 0.5 ? R1_ID : R2_ID,
    bcastEvery: kinds[Math.floor(rand() * kinds.length)], frames: 0, waitGo: false, drainRx: false, announce: true,
    seqBase: Math.floor(i / VICTIM_IDS) * (1 << 26),
  };
}

/** Starts a victim, waits for its first txsync, lets it run a random 0-25 ms, terminates it. */
async function killVictim(data: SenderData, rand: () => number, onStart?: (w: Worker) => void): Promise<{ tid: number } | string> {
  const w = startWorker(SENDER_JS, data);
  onStart?.(w);
  const errors: string[] = [];
  w.on('error', (e) => errors.push(String(e)));
  let timer: NodeJS.Timeout | undefined;
  const running = await Promise.race([
    new Promise<boolean>((res) => w.once('message', () => res(true))),
    new Promise<boolean>((res) => { timer = setTimeout(() => res(false), 30_000); }),
  ]);
  clearTimeout(timer);
  if (!running) {
    await w.terminate();
    return `never started sending${errors.length ? `: ${errors.join('; ')}` : ''}`;
  }
  const u = rand();
  if (u >= 0.1) await sleep(Math.floor((u - 0.1) / 0.9 * 25));
  const tid = w.threadId;
  await w.terminate();
  if (errors.length) return `failed by itself: ${errors.join('; ')}`;
  return { tid };
}

async function stopLive(t: Test, lv: Live, stats: KillStats, failures: string[], what: string, countsHeld: boolean): Promise<void> {
  const { b, ctl } = lv;
  Atomics.store(ctl, CTL_STOP_TX, 1);
  let sreps: SenderReport[];
  let rreps: ReceiverReport[];
  try {
    sreps = await Promise.all(lv.senders.map((s) => s.done));
    // Every sender is stopped: counters are final. The receivers must drain what was delivered.
    const d1 = b.counters(lv.l1).txDelivered;
    t.ok(await waitUntil(() => ctlSince(ctl, CTL_COUNT + L1_ID, d1) >= 0 && b.rxRing(lv.r1).space() === 0 && b.rxRing(lv.r2).space() === 0, 10_000, 2),
      `${S}: ${what}: the receivers drained everything`);
    Atomics.store(ctl, CTL_STOP_RX, 1);
    b.rxRing(lv.r1).wakeAll();
    b.rxRing(lv.r2).wakeAll();
    rreps = await Promise.all(lv.receivers.map((r) => r.done));
  } finally {
    for (const w of [...lv.senders, ...lv.receivers]) void w.worker.terminate();
  }
  t.same(failures, [], `${S}: ${what}: every kill — reclaimed, port gone within ${BOUND_MS} ms, live ports forwarding again within ${BOUND_MS} ms`);
  if (countsHeld) {
    t.ok(stats.held.busy > 0, `${S}: ${what}: some victims died inside txsync (${stats.held.busy} of ${stats.kills})`);
    t.ok(stats.held.locks + stats.held.leases > 0,
      `${S}: ${what}: some died holding a ring lock or a lease (${stats.held.locks} locks, ${stats.held.leases} leases)`);
  }
  const names: [number, string, SenderReport][] = [[lv.l1, 'live sender 1', sreps[0]], [lv.l2, 'live sender 2', sreps[1]]];
  for (const [p, name, rep] of names) {
    const c = b.counters(p);
    const inv = invariantOf(b, p);
    t.equal(inv.lhs, inv.rhs, `${S}: ${what}: ${name}: sent = delivered + dropped (txCopies ${inv.lhs})`);
    t.equal(c.txFrames, rep.sent, `${S}: ${what}: ${name}: txFrames = frames it sent`);
    t.equal(c.dropBadBuf + c.dropBadLen, 0, `${S}: ${what}: ${name}: no invalid frame`);
  }
  const c1 = b.counters(lv.l1);
  t.equal(c1.txCopies, c1.txFrames, `${S}: ${what}: live sender 1: one copy per frame (unicast)`);
  t.equal(c1.dropNoDest, 0, `${S}: ${what}: live sender 1: never without destination`);
  t.equal(rreps[0].perId[L1_ID], c1.txDelivered, `${S}: ${what}: receiver 1 got exactly live sender 1's ${c1.txDelivered} delivered frames`);
  t.ok(rreps[0].firstSeq[L1_ID] < 2 ** 32 && rreps[0].lastSeq[L1_ID] >= 2 ** 32,
    `${S}: ${what}: receiver 1 got live sender 1's frames from both sides of 2^32 (${rreps[0].firstSeq[L1_ID]}..${rreps[0].lastSeq[L1_ID]})`);
  for (const [k, rep] of rreps.entries()) {
    const p = k === 0 ? lv.r1 : lv.r2;
    t.same(rep.problems, [], `${S}: ${what}: receiver ${k + 1} saw no problem`);
    t.equal(rep.corrupt + rep.reordered + rep.duplicated, 0, `${S}: ${what}: receiver ${k + 1}: nothing corrupt, reordered or duplicated`);
    const inv = invariantOf(b, p);
    t.equal(inv.lhs, inv.rhs, `${S}: ${what}: receiver ${k + 1}'s port: its (learning) sends add up`);
    t.equal(b.counters(p).rxFrames, rep.received - rep.empty,
      `${S}: ${what}: receiver ${k + 1}: rxFrames = frames received (${rep.received}) − empty slots of dead leases (${rep.empty})`);
  }
  for (const p of [lv.r1, lv.r2, lv.l1, lv.l2]) {
    t.equal(leasesPending(b, p), 0, `${S}: ${what}: port ${p}: no lease outstanding`);
    t.equal(b.rxLeasesAt(p).lockHolder(), 0, `${S}: ${what}: port ${p}: RX lock free`);
  }
  stats.victimFrames = rreps.reduce((s, r) => s + r.perId.slice(FIRST_VICTIM_ID).reduce((a, x) => a + x, 0), 0);
  t.comment(`${what} ${S}: ${stats.kills} kills; ${stats.holding} left something held (txsync marks ${stats.held.busy}, ring locks ` +
    `${stats.held.locks}, unfinished leases ${stats.held.leases}; ${stats.released} released by reclaimThread); port gone after ≤ ` +
    `${stats.maxGoneMs.toFixed(1)} ms; live ports forwarding again after ≤ ${stats.maxResumeMs.toFixed(1)} ms; live senders ` +
    `${c1.txFrames}/${b.counters(lv.l2).txFrames} frames, delivered ${c1.txDelivered}/${b.counters(lv.l2).txDelivered}, ` +
    `ring-full ${c1.dropRingFull}/${b.counters(lv.l2).dropRingFull}, busy ${c1.dropBusy}/${b.counters(lv.l2).dropBusy}, ` +
    `no-dest ${c1.dropNoDest}/${b.counters(lv.l2).dropNoDest}; receivers got ${stats.victimFrames} victim frames and ` +
    `${rreps[0].empty + rreps[1].empty} empty slots of dead leases`);
}

t.test(`${KILLS} victims killed at random moments, reclaimed at bridge level`, async (t) => {
  // No MAC ageing: the receivers never send, and the full run outlasts the default 300 s.
  const b = Bridge.create('valeD', { maxPorts: 8, txSlots: 256, rxSlots: 256, batch: 64, ageing: 0 });
  const ports = { r1: b.addPort('valeD:r1'), r2: b.addPort('valeD:r2'), l1: b.addPort('valeD:l1'), l2: b.addPort('valeD:l2') };
  const lv = startLive(b, ports);
  const rand = prng(SEED);
  const stats: KillStats = { kills: 0, holding: 0, held: { busy: 0, locks: 0, leases: 0 }, released: 0, maxGoneMs: 0, maxResumeMs: 0, victimFrames: 0 };
  const failures: string[] = [];
  try {
    t.ok(await liveMoves(lv, STARTUP_MS) >= 0, `${S}: the live ports forward (their four Workers started)`);
    for (let i = 0; i < KILLS; i++) {
      const v = b.addPort('valeD:v');
      const r = await killVictim(victimData(lv, v, i, rand), rand, (w) => b.setOwner(v, w.threadId));
      if (typeof r === 'string') { failures.push(`victim ${i}: ${r}`); break; }
      const held = heldBy(b, r.tid);
      if (held.busy + held.locks + held.leases > 0) stats.holding++;
      stats.held.busy += held.busy;
      stats.held.locks += held.locks;
      stats.held.leases += held.leases;
      const t0 = performance.now();
      const n = b.reclaimThread(r.tid);
      stats.released += n;
      if (n !== held.busy + held.locks + held.leases) failures.push(`victim ${i}: reclaimThread released ${n}, it held ${JSON.stringify(held)}`);
      const after = heldBy(b, r.tid);
      if (after.busy + after.locks + after.leases !== 0) failures.push(`victim ${i}: still held after reclaim: ${JSON.stringify(after)}`);
      b.beginRemove(v);
      const gone = await waitUntil(() => b.tryFinishRemove(v), BOUND_MS);
      stats.maxGoneMs = Math.max(stats.maxGoneMs, performance.now() - t0);
      if (!gone) { failures.push(`victim ${i}: its port was not freed within ${BOUND_MS} ms`); break; }
      const resume = await liveMoves(lv);
      if (resume < 0) { failures.push(`victim ${i}: the live ports did not forward within ${BOUND_MS} ms`); break; }
      stats.maxResumeMs = Math.max(stats.maxResumeMs, resume);
      stats.kills++;
    }
  } finally {
    await stopLive(t, lv, stats, failures, 'bridge level', true);
  }
  t.equal(stats.kills, KILLS, `${S}: all ${KILLS} kills done`);
});

t.test(`${SWITCH_KILLS} victims killed at random moments, cleaned up by the Switch itself`, async (t) => {
  const sw = new Switch({ name: 'relDead' });
  t.teardown(() => sw.close());
  sw.createBridge('valeE', { maxPorts: 8, txSlots: 256, rxSlots: 256, batch: 64, ageing: 0 });
  for (const n of ['r1', 'r2', 'l1', 'l2']) sw.createPort(`valeE:${n}`);
  const b = sw.bridge('valeE');
  const ports = { r1: b.findPort('valeE:r1'), r2: b.findPort('valeE:r2'), l1: b.findPort('valeE:l1'), l2: b.findPort('valeE:l2') };
  const lv = startLive(b, ports);
  const rand = prng((SEED ^ 0x5bd1e995) >>> 0);
  const stats: KillStats = { kills: 0, holding: 0, held: { busy: 0, locks: 0, leases: 0 }, released: 0, maxGoneMs: 0, maxResumeMs: 0, victimFrames: 0 };
  const failures: string[] = [];
  /** A thread id no Worker has: opens the victim's port until the victim itself holds it open. */
  const PLACEHOLDER = 0x7fff0000;
  try {
    t.ok(await liveMoves(lv, STARTUP_MS) >= 0, `${S}: the live ports forward (their four Workers started)`);
    for (let i = 0; i < SWITCH_KILLS; i++) {
      const name = `valeE:v${i}`;
      const v = sw.openFor(PLACEHOLDER, name, { share: true }).index;
      let tid = -1;
      const r = await killVictim(victimData(lv, v, i, rand), rand, (w) => {
        // The victim's thread opens the port (as openPort from the Worker would); the placeholder lets go.
        tid = w.threadId;
        sw.openFor(tid, name, { share: true });
        void sw.closeFor(PLACEHOLDER, name);
      });
      if (typeof r === 'string') { failures.push(`victim ${i}: ${r}`); break; }
      const t0 = performance.now();
      // Nothing here calls reclaimThread: the Switch saw the Worker exit.
      const gone = await waitUntil(() => b.portState(v) === PORT_FREE && sw.opens(name) === 0 &&
        !sw.list()[0].ports.some((p) => p.name === name), BOUND_MS);
      stats.maxGoneMs = Math.max(stats.maxGoneMs, performance.now() - t0);
      const after = heldBy(b, tid);
      if (after.busy + after.locks + after.leases !== 0) failures.push(`victim ${i}: still held after the Switch's clean-up: ${JSON.stringify(after)}`);
      if (!gone) { failures.push(`victim ${i}: its port was not destroyed within ${BOUND_MS} ms (state ${b.portState(v)}, opens ${sw.opens(name)})`); break; }
      const resume = await liveMoves(lv);
      if (resume < 0) { failures.push(`victim ${i}: the live ports did not forward within ${BOUND_MS} ms`); break; }
      stats.maxResumeMs = Math.max(stats.maxResumeMs, resume);
      stats.kills++;
    }
  } finally {
    // (What each victim held is not counted here: the Switch reclaims on the Worker's exit event,
    // before the test can look; part 1 shows what kills leave behind.)
    await stopLive(t, lv, stats, failures, 'Switch', false);
  }
  t.equal(stats.kills, SWITCH_KILLS, `${S}: all ${SWITCH_KILLS} kills done`);
});
