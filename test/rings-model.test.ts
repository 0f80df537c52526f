/**
 * Model check of one Ring, both sides played in one thread.
 *
 * A seeded PRNG drives thousands of random operation sequences against a Ring and, in lockstep,
 * against a plain JS model: an array of the frames (sequence numbers) that are in flight, plus
 * head and tail counted independently. After every operation head, cur, tail, space(), rxFree()
 * and txPending() must equal the model's, the ring must hold at most numSlots − 1 frames, and
 * every frame read back must be the one written, in order, with its length and a trailer byte.
 *
 * RX ring: the kernel side writes frames at tail (k ≤ rxFree()) and publishes tail; the user
 * reads [head, tail) and advances head by k ≤ space().
 * TX ring: the user writes frames into [head, tail) and advances head by k ≤ space(); the kernel
 * side consumes k ≤ txPending() frames from next(tail) and publishes tail + k (all of them:
 * prev(head), as VALE's txsync does).
 *
 * A failure names the seed of its sequence; RING_MODEL_SEED=<n> (or VSWITCH_SEED) sets the base seed and
 * RING_MODEL_ONLY=<seed> runs just that seed on every ring (e.g. RING_MODEL_ONLY=0x3017b695 npx tap
 * test/rings-model.test.ts); the message says which ring failed.
 */
import t from 'tap';
import { NetmapIf, NR_ERRORS, RX, Region, Ring, TX, netmapIfBytes } from 'shared-memory-ring';

/** mulberry32: 32-bit state, good enough to drive a model check, and trivially reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return (x ^ (x >>> 14)) >>> 0;
  };
}

const hex = (n: number) => '0x' + (n >>> 0).toString(16).padStart(8, '0');

const SEED_ENV = process.env.RING_MODEL_SEED ?? process.env.VSWITCH_SEED;
const BASE_SEED = SEED_ENV !== undefined && SEED_ENV !== 'random' ? Number(SEED_ENV) >>> 0 : 0x5eed2025;
const ONLY = process.env.RING_MODEL_ONLY !== undefined ? Number(process.env.RING_MODEL_ONLY) >>> 0 : undefined;
const SIZES = [2, 4, 8, 64];
const SEQUENCES = 3000;
const OPS = 200;
const BUF_SIZE = 64;

/** Length of frame `seq`: 5..BUF_SIZE, deterministic (the u32 sequence number, then at least a trailer byte). */
const lenOf = (seq: number) => 5 + (Math.imul(seq, 2654435761) >>> 0) % (BUF_SIZE - 4);
const trailerOf = (seq: number) => (seq ^ (seq >>> 8) ^ 0xa5) & 0xff;

class ModelFailure extends Error {}

interface Env {
  region: Region;
  rx: Ring;
  tx: Ring;
  /** Every slot's initial buf_idx: nothing in these sequences may change them. */
  rxBufs: number[];
  txBufs: number[];
}

function makeEnv(slots: number): Env {
  const opts = { txSlots: slots, rxSlots: slots, bufSize: BUF_SIZE, name: `model${slots}` };
  const bytes = netmapIfBytes(opts);
  const region = Region.create(Math.max(4096, Math.ceil((bytes + 64 + 64) / 64) * 64));
  const nif = NetmapIf.init(region, region.alloc(bytes), opts);
  const rx = nif.rxRings[0];
  const tx = nif.txRings[0];
  const rxBufs: number[] = [];
  const txBufs: number[] = [];
  for (let i = 0; i < slots; i++) { rxBufs.push(rx.bufIdx(i)); txBufs.push(tx.bufIdx(i)); }
  return { region, rx, tx, rxBufs, txBufs };
}

/** Resets a ring to its initial state (what Ring.init writes), keeping the slots' buffers. */
function reset(env: Env, ring: Ring): void {
  const i32 = env.region.i32;
  Atomics.store(i32, ring.headW, 0);
  Atomics.store(i32, ring.curW, 0);
  Atomics.store(i32, ring.tailW, ring.dir === TX ? ring.numSlots - 1 : 0);
  Atomics.store(i32, ring.errorsW, 0);
  env.region.u8.fill(0xee, ring.bufBase, ring.bufOffset(ring.bufIdx(ring.numSlots - 1)) + ring.bufSize);
  for (let i = 0; i < ring.numSlots; i++) ring.setLen(i, 0);
}

function writeFrame(ring: Ring, slot: number, seq: number): void {
  const u8 = ring.region.u8;
  const b = ring.slotBuf(slot);
  const len = lenOf(seq);
  ring.region.u32[b >>> 2] = seq;
  u8[b + len - 1] = trailerOf(seq);
  ring.setLen(slot, len);
}

/** Runs one sequence; returns the number of operations checked. Throws ModelFailure. */
function runSequence(env: Env, slots: number, dir: number, seed: number): number {
  const ring = dir === RX ? env.rx : env.tx;
  const bufs = dir === RX ? env.rxBufs : env.txBufs;
  reset(env, ring);
  const rnd = mulberry32(seed);
  const n = slots;
  const mask = n - 1;
  // the model
  const queue: number[] = []; // RX: frames in [head, tail); TX: frames handed over, not yet consumed
  let mHead = 0;
  let mTail = dir === TX ? n - 1 : 0;
  let nextSeq = (rnd() & 0xffff) * 1000; // sequence numbers are arbitrary u32s
  let expectSeq = nextSeq;
  let op = 0;
  let what = 'initial state';

  const fail = (msg: string): never => {
    throw new ModelFailure(`seed ${hex(seed)} (${dir === RX ? 'RX' : 'TX'} ring, ${n} slots), op ${op} [${what}]: ${msg}`);
  };
  const eq = (got: number, want: number, name: string) => {
    if (got !== want) fail(`${name} is ${got}, model says ${want}`);
  };
  const readFrame = (slot: number) => {
    const b = ring.slotBuf(slot);
    const seq = ring.region.u32[b >>> 2];
    const len = ring.len(slot);
    const want = queue.shift();
    if (want === undefined) fail(`read a frame from slot ${slot} but the model has none`);
    if (seq !== want) fail(`slot ${slot} holds frame ${seq}, expected ${want} (order or data lost)`);
    if (seq !== expectSeq) fail(`frame ${seq} read out of order, expected ${expectSeq}`);
    expectSeq = (expectSeq + 1) >>> 0;
    eq(len, lenOf(want!), `len of slot ${slot}`);
    eq(ring.region.u8[b + len - 1], trailerOf(want!), `trailer byte of slot ${slot}`);
  };
  const checkState = () => {
    eq(ring.head, mHead, 'head');
    eq(ring.cur, mHead, 'cur (applications keep cur == head)');
    eq(ring.tail, mTail, 'tail');
    const space = ring.space();
    if (dir === RX) {
      eq(space, queue.length, 'space() (frames to read)');
      eq(ring.rxFree(), n - 1 - queue.length, 'rxFree()');
    } else {
      eq(space, n - 1 - queue.length, 'space() (free TX slots)');
      eq(ring.txPending(), queue.length, 'txPending()');
    }
    // one slot always empty: the ring never holds numSlots frames, and head == tail means "none for the user"
    if (queue.length > n - 1) fail(`model holds ${queue.length} frames in a ${n}-slot ring`);
    if (dir === RX && (ring.tail === ring.head) !== (queue.length === 0)) fail('head == tail must mean an empty RX ring');
    if (dir === TX && (ring.next(ring.tail) === ring.head) !== (queue.length === 0)) fail('next(tail) == head must mean no TX frame pending');
    eq(ring.region.i32[(ring.offset + NR_ERRORS) >>> 2], 0, 'errors word');
    for (let i = 0; i < n; i++) if (ring.bufIdx(i) !== bufs[i]) fail(`slot ${i} buf_idx changed to ${ring.bufIdx(i)}`);
  };

  checkState();
  for (op = 1; op <= OPS; op++) {
    const r = rnd();
    // pick the side; bias toward the side that can move, and sometimes do a no-op move (k = 0)
    const user = (r & 1) === 0;
    const pick = (max: number) => {
      if (max === 0) return 0;
      const m = (r >>> 1) % 8;
      if (m === 0) return 0; // empty batch
      if (m <= 2) return max; // whole batch (fills/drains the ring)
      return 1 + ((r >>> 4) % max);
    };
    if (dir === RX) {
      if (user) {
        const k = pick(ring.space());
        what = `user reads ${k} and advance(${k})`;
        for (let j = 0; j < k; j++) readFrame((mHead + j) & mask);
        ring.advance(k);
        mHead = (mHead + k) & mask;
      } else {
        const k = pick(ring.rxFree());
        what = `kernel writes ${k} at tail and publishTail`;
        const t0 = ring.tail;
        let tl = t0;
        for (let j = 0; j < k; j++) {
          writeFrame(ring, tl, nextSeq);
          queue.push(nextSeq);
          nextSeq = (nextSeq + 1) >>> 0;
          tl = ring.next(tl);
        }
        ring.publishTail(((r >>> 24) & 1) === 0 ? tl : t0 + k); // publishTail masks: tail + k may be passed as is
        mTail = (mTail + k) & mask;
      }
    } else {
      if (user) {
        const k = pick(ring.space());
        what = `user writes ${k} at head and advance(${k})`;
        for (let j = 0; j < k; j++) {
          writeFrame(ring, (mHead + j) & mask, nextSeq);
          queue.push(nextSeq);
          nextSeq = (nextSeq + 1) >>> 0;
        }
        if (((r >>> 20) & 7) === 0) ring.setHead((ring.head + k) & mask); // the other user entry point
        else ring.advance(k);
        mHead = (mHead + k) & mask;
      } else {
        const pending = ring.txPending();
        const all = ((r >>> 1) % 3) !== 0; // usually everything, as VALE's txsync
        const k = all ? pending : pick(pending);
        what = all ? `kernel consumes all ${k} and publishTail(prev(head))` : `kernel consumes ${k} and publishTail(tail + ${k})`;
        const t0 = ring.tail;
        let tl = t0;
        for (let j = 0; j < k; j++) { tl = ring.next(tl); readFrame(tl); }
        ring.publishTail(all ? ring.prev(ring.head) : ((r >>> 24) & 1) === 0 ? tl : t0 + k);
        mTail = (mTail + k) & mask;
      }
    }
    checkState();
  }
  return OPS;
}

for (const dir of [RX, TX]) {
  t.test(`${dir === RX ? 'RX' : 'TX'} ring matches the queue model (base seed ${hex(BASE_SEED)})`, async (t) => {
    for (const slots of SIZES) {
      const env = makeEnv(slots);
      let ops = 0;
      let failure: string | undefined;
      const seeds: number[] = [];
      if (ONLY !== undefined) seeds.push(ONLY);
      else for (let s = 0; s < SEQUENCES; s++) seeds.push((Math.imul(BASE_SEED ^ (slots << 24) ^ (dir << 31), 0x9e3779b1) + s * 0x85ebca6b) >>> 0);
      for (const seed of seeds) {
        try {
          ops += runSequence(env, slots, dir, seed);
        } catch (e) {
          if (!(e instanceof ModelFailure)) throw e;
          failure = e.message;
          break;
        }
      }
      if (failure) t.fail(failure);
      else t.pass(`${slots} slots: ${seeds.length} sequences, ${ops} operations agree with the model`);
    }
  });
}

t.test('why one slot stays empty: numSlots frames would wrap tail onto head', async (t) => {
  const env = makeEnv(4);
  const rx = env.rx;
  reset(env, rx);
  for (let i = 0; i < 4; i++) writeFrame(rx, i, i);
  rx.publishTail(4); // 4 & mask = 0: a full ring would look empty
  t.equal(rx.space(), 0, 'publishing numSlots frames makes the ring look empty (why one slot stays free)');
  t.equal(rx.rxFree(), 3);
});
