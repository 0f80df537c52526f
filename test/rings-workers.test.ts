/**
 * Rings between threads: a producer Worker (kernel side) and a consumer Worker (user side) move
 * 10,000,000 sequence-numbered frames through one RX ring, once sleeping whenever they cannot
 * progress and once spinning; and a Worker that attaches a region by handle sees the main
 * thread's bytes and the main thread sees its bytes. The workers run test/fixtures/ring-peer.ts,
 * compiled to dist/ (npm test builds it first).
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { NetmapIf, Region, netmapIfBytes, transferable } from 'shared-memory-ring';
import type { AttachData, AttachReport, StreamData, StreamReport } from './fixtures/ring-peer.js';

const FIXTURE = new URL('../dist/test/fixtures/ring-peer.js', import.meta.url);
const FRAMES = 10_000_000;
const SLOTS = 1024;
const BUF_SIZE = 2048;
const BATCH = 256;
/** Per stream run: a hung or crashed peer fails the test instead of the whole file timing out. */
const RUN_TIMEOUT_MS = 50_000;

// The same byte patterns as the fixture (which cannot be imported here: it runs on load).
const txByte = (seed: number, i: number, j: number) => (seed + i * 31 + j * 7) & 0xff;
const scratchByte = (seed: number, j: number) => (seed * 3 + j * 13 + 1) & 0xff;

function runWorker<R>(data: StreamData | AttachData, timeoutMs: number): { worker: Worker; done: Promise<R> } {
  const worker = new Worker(FIXTURE, { workerData: data });
  const done = new Promise<R>((resolve, reject) => {
    let report: R | undefined;
    const timer = setTimeout(() => {
      reject(new Error(`${data.role} worker did not finish within ${timeoutMs} ms`));
      void worker.terminate();
    }, timeoutMs);
    worker.on('message', (m: R) => { report = m; });
    worker.on('error', (e) => { clearTimeout(timer); reject(e); });
    worker.on('exit', (code) => {
      clearTimeout(timer);
      if (report !== undefined && code === 0) resolve(report);
      else reject(new Error(`${data.role} worker exited with code ${code} ${report === undefined ? 'without a report' : ''}`));
    });
  });
  return { worker, done };
}

t.before(() => {
  if (!existsSync(fileURLToPath(FIXTURE))) {
    throw new Error(`${fileURLToPath(FIXTURE)} is missing: build first (npx tsc -b tsconfig.build.json, or npm test)`);
  }
});

for (const mode of [
  { name: 'blocking waits (spin 0: both sides sleep when they cannot progress)', spin: 0 },
  // 10,000 polls outlast many batch intervals, so on an idle machine the sides sleep a few hundred
  // times in 10M frames; larger budgets (10^5, 10^6) made this run 2–4× slower on a loaded
  // 2-core machine, where a spinner burns its time slice while its peer is descheduled.
  { name: 'spinning (spin budget 10,000 polls before sleeping)', spin: 10_000 },
]) {
  t.test(`${FRAMES.toLocaleString('en')} frames through one RX ring, ${mode.name}`, async (t) => {
    const opts = { txRings: 0, rxRings: 1, rxSlots: SLOTS, bufSize: BUF_SIZE, name: 'stream' };
    const bytes = netmapIfBytes(opts);
    const region = Region.create(Math.ceil((bytes + 2 * 64 + 64) / 64) * 64);
    const ctl = region.alloc(64); // control block on its own cache line: word 0 = DONE
    const nif = NetmapIf.init(region, region.alloc(bytes), opts);
    const ring = nif.rxRings[0];
    const common = { ring: transferable(ring), doneW: ctl >>> 2, total: FRAMES, batch: BATCH, spin: mode.spin };
    const start = performance.now();
    const consumer = runWorker<StreamReport>({ role: 'consumer', ...common }, RUN_TIMEOUT_MS);
    const producer = runWorker<StreamReport>({ role: 'producer', ...common }, RUN_TIMEOUT_MS);
    let c: StreamReport;
    let p: StreamReport;
    try {
      [c, p] = await Promise.all([consumer.done, producer.done]);
    } finally {
      void consumer.worker.terminate();
      void producer.worker.terminate();
    }
    const ms = performance.now() - start;
    t.equal(p.sent, FRAMES, 'producer published every frame');
    t.equal(c.received, FRAMES, 'consumer received exactly 10,000,000 frames');
    t.equal(c.lost, 0, 'none lost');
    t.equal(c.reordered, 0, 'none reordered');
    t.equal(c.duplicated, 0, 'none duplicated');
    t.equal(c.corrupt, 0, 'every frame has its length and trailer byte (none corrupt or stale)');
    t.equal(ring.space(), 0, 'the ring is empty at the end');
    t.equal(ring.head, FRAMES & (SLOTS - 1), 'head went round the ring FRAMES times');
    if (mode.spin === 0) t.ok(p.peerAsleep + c.peerAsleep > 0, 'the sleeping path was taken (a side published while the other slept)');
    t.comment(`${(FRAMES / ms / 1000).toFixed(1)} Mfps over ${ms.toFixed(0)} ms; producer: ${p.batches} publications ` +
      `(avg ${(p.sent / p.batches).toFixed(1)} frames), ${p.waits} waits, consumer asleep after ${p.peerAsleep}; ` +
      `consumer: ${c.batches} batches (avg ${(c.received / c.batches).toFixed(1)}), ${c.waits} waits, producer asleep after ${c.peerAsleep}`);
  });
}

t.test('a Worker attaching by handle sees the same bytes as the main thread, both ways', async (t) => {
  const opts = { txRings: 1, rxRings: 1, txSlots: 8, rxSlots: 8, bufSize: 128, name: 'vale0:attach' };
  const bytes = netmapIfBytes(opts);
  const region = Region.create(Math.ceil((bytes + 4096) / 64) * 64);
  const nif = NetmapIf.init(region, region.alloc(bytes), opts);
  const scratch = region.alloc(256);
  const rx = nif.rxRings[0];
  const tx = nif.txRings[0];
  // main thread = kernel side of the RX ring: three frames, then publish tail
  const wrote: number[][] = [];
  for (let i = 0; i < 3; i++) {
    const len = 20 + 17 * i;
    const b = rx.slotBuf(i);
    const frame = [len];
    for (let j = 0; j < len; j++) { region.u8[b + j] = (i * 89 + j * 5 + 3) & 0xff; frame.push(region.u8[b + j]); }
    rx.setLen(i, len);
    wrote.push(frame);
  }
  rx.publishTail(3);
  const seed = 0x3c;
  const data: AttachData = {
    role: 'attach', region: transferable(region), nif: transferable(nif), rxRing: transferable(rx), rxFrames: 3,
    scratch, scratchLen: 256, txFrames: 5, txLen: 60, seed,
  };
  const w = runWorker<AttachReport>(data, 20_000);
  // main thread = kernel side of the TX ring: wait (without blocking the event loop) until the
  // worker publishes head, then read the frames through the ring, before any message arrives
  const moved = await tx.waitHeadAsync(0, { timeoutMs: 20_000 });
  t.ok(moved, 'the worker advanced the TX ring head');
  t.equal(tx.txPending(), 5, 'five frames pending on the TX ring');
  const seenByMain: number[][] = [];
  for (let i = 0, s = tx.next(tx.tail); i < tx.txPending(); i++, s = tx.next(s)) seenByMain.push([...tx.frame(s)]);
  tx.publishTail(tx.prev(tx.head));
  const r = await w.done;
  t.equal(r.name, 'vale0:attach', 'netmap_if name read in the worker');
  t.equal(r.nifOffset, nif.offset);
  t.equal(r.rxOffset, rx.offset, 'ring handle names the same ring');
  t.equal(r.rxViaIfOffset, rx.offset, 'ring_ofs[] of the attached netmap_if leads to the same ring');
  t.same(r.rxSeen, wrote, 'the worker read the bytes and lengths the main thread wrote');
  t.equal(rx.head, 3, 'the worker returned the RX slots (head moved in the main thread view)');
  const expected = Array.from({ length: 5 }, (_, i) => Array.from({ length: 60 }, (_, j) => txByte(seed, i, j)));
  t.same(r.txWritten, expected, 'the worker wrote the agreed pattern');
  t.same(seenByMain, expected, 'the main thread read the worker\'s frames through the TX ring');
  let scratchOk = true;
  for (let j = 0; j < 256; j++) if (region.u8[scratch + j] !== scratchByte(seed, j)) scratchOk = false;
  t.ok(scratchOk, 'the worker\'s writes through the region handle are visible in the main thread');
});
