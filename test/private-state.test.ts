// What the switch relies on for a port (its RX ring lock, lease numbers, hwcur/hwtail copies)
// is out of the memory the port's user is handed: whatever that user writes into its own ring
// headers confuses only its own port, which the switch repairs and counts, and the port can
// always be removed. Through the public API (Switch, Port).
import t from 'tap';
import { Switch, type Port } from '../src/index.js';

const A = [2, 0, 0, 0, 0, 0xa];
const BCAST = [255, 255, 255, 255, 255, 255];
/** Ring header words the switch once kept for itself: lock, errors, sem private words (int32 index from lockW). */
const OLD_WORDS = 30;

function frame(dst: number[], src: number[], tag = 0): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0); f.set(src, 6); f[12] = 8; f[14] = tag;
  return f;
}

function drain(p: Port): number {
  let n = 0;
  for (let b = p.receive(); b.count > 0; b = p.receive()) n += b.count;
  return n;
}

/** Resolves to the ms `p` took, or rejects when it takes longer than `ms`. */
async function within(what: string, p: Promise<unknown>, ms: number): Promise<number> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: not done within ${ms} ms`)), ms); })]);
  clearTimeout(timer);
  return performance.now() - t0;
}

t.test('junk in a port\'s ring headers does not slow or lose other ports\' traffic, and the port still goes away', async (t) => {
  const sw = new Switch({ name: 'priv1' });
  let closed = false;
  t.teardown(() => { if (!closed) return sw.close(); });
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  const f = await sw.open('vale0:f');
  const br = sw.bridge('vale0');
  const { i32 } = br.region;
  const rx = br.rxRing(f.index);
  const tx = br.txRing(f.index);
  // f's user writes junk over every header word the switch once used (a held lock, huge lease
  // numbers...) and a head and tail out of place on its RX ring.
  for (let k = 0; k < OLD_WORDS; k++) {
    i32[rx.lockW + k] = k === 0 ? 0x7fffffff : 0x5a5a5a5a + k;
    i32[tx.lockW + k] = k === 0 ? 12345 : -k;
  }
  Atomics.store(i32, rx.headW, 999_999);
  Atomics.store(i32, rx.tailW, -7);

  // a floods: every frame is a copy for b and one for f. First f does not drain, so its ring
  // fills: the switch reads f's RX head only when the slots it knows to be free run out (it
  // finds the bad tail at its first publication, the bad head then).
  const N = 20_000;
  const burst = Array.from({ length: 256 }, (_, i) => frame(BCAST, A, i & 0xff));
  let sent = 0;
  let atB = 0;
  for (let k = 0; k < 64 && f.stats().rxDropRingFull === 0; k++) {
    sent += a.sendBatch(burst);
    atB += drain(b);
  }
  const full = f.stats();
  t.ok(full.rxDropRingFull > 0, `f's ring filled up (${full.rxDropRingFull} copies dropped for it)`);
  t.equal(full.rxBadHead, 1, 'f\'s bad RX head was seen once and counted...');
  t.equal(full.rxRepairs, 2, '... and its ring put back twice: tail at the first publication, head when it was read');
  while (sent < N) {
    sent += a.sendBatch(burst);
    atB += drain(b);
    drain(f);
  }
  atB += drain(b);
  const ca = a.stats();
  t.equal(ca.dropBusy, 0, 'no copy was dropped as busy: nothing f\'s user wrote is a lock anybody waits on');
  t.equal(ca.txCopies, ca.txDelivered + ca.dropRingFull, 'a: every copy delivered or dropped for a full ring, exactly');
  t.equal(atB, b.stats().rxFrames, `b received every frame counted for it (${atB})`);
  t.equal(atB + b.stats().rxDropRingFull, sent, 'b got or counted every frame a sent');
  const cf = f.stats();
  t.equal(cf.rxBadHead, 1, 'no bad head after the repair');
  t.equal(cf.rxRepairs, 2, 'no repair after the first two');
  t.ok(cf.rxFrames > full.rxFrames, `f receives again after the repair (${cf.rxFrames - full.rxFrames} frames)`);

  // f's TX side: a head out of range is counted and repaired, and f sends again.
  Atomics.store(i32, tx.headW, 4096);
  t.equal(f.flush(), 0, 'a txsync with a head out of range sends nothing');
  t.equal(f.stats().txBadHead, 1, 'counted as txBadHead');
  t.equal(f.stats().txRepairs, 1, 'and the TX ring was put back');
  f.send(frame(A, [2, 0, 0, 0, 0, 0xf], 7));
  t.equal(f.stats().txFrames, 1, 'f sends again');

  t.ok(await within('f.close()', f.close(), 2000) <= 2000, 'f closes within 2 s');
  t.notOk(sw.ports('vale0').some((p) => p.name === 'vale0:f'), 'and is gone');
  t.equal(sw.list()[0].forcedRemovals, 0, 'without being forced: nothing was held');
  await a.close();
  await b.close();
  closed = true;
  t.ok(await within('Switch.close()', sw.close(), 2000) <= 2000, 'the switch closes within 2 s');
});

t.test('other ports\' rate with junk in a port\'s ring headers is within 20% of their rate without', async (t) => {
  // Time per frame of a's flood in short chunks, clean and junk shuffled (see below), so a busy
  // machine does not decide the outcome.
  const sw = new Switch({ name: 'priv3' });
  t.teardown(() => sw.close());
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  const f = await sw.open('vale0:f');
  const br = sw.bridge('vale0');
  const { i32 } = br.region;
  const words = [br.rxRing(f.index).lockW, br.txRing(f.index).lockW];
  const saved = words.map((w) => i32.slice(w, w + OLD_WORDS));
  const junk = (on: boolean) => words.forEach((w, k) => {
    for (let j = 0; j < OLD_WORDS; j++) i32[w + j] = on ? (j === 0 ? 0x7fffffff : 0x5a5a5a5a - j) : saved[k][j];
  });
  const burst = Array.from({ length: 256 }, (_, i) => frame(BCAST, A, i & 0xff));
  // Short chunks (4 sends of 256 frames, a fraction of a millisecond), 400 of them, clean and
  // junk in a shuffled order (fixed seed), timed one by one: whatever else the machine runs
  // (another thread on this core's sibling, a time slice lost, this process's GC) lasts far
  // longer than a chunk and falls on both kinds alike, and the median per kind ignores the chunks
  // it hit. Coarser forms failed under load with nothing reading the junk: the lowest of 5
  // alternating 40-send rounds per side (439 vs 200 ns), then medians of 9 back-to-back pairs
  // (285 vs 174 ns), because the slow periods lined up with one side.
  function nsPerFrame(): number {
    const t0 = performance.now();
    let sent = 0;
    for (let r = 0; r < 4; r++) {
      sent += a.sendBatch(burst);
      drain(b);
      drain(f);
    }
    return ((performance.now() - t0) * 1e6) / sent;
  }
  for (let i = 0; i < 40; i++) nsPerFrame(); // warm up
  const order = Array.from({ length: 400 }, (_, i) => i % 2 === 1);
  let seed = 0x5eed18;
  for (let i = order.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const clean: number[] = [];
  const dirty: number[] = [];
  for (const on of order) {
    junk(on);
    (on ? dirty : clean).push(nsPerFrame());
  }
  junk(false);
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const c = med(clean);
  const d = med(dirty);
  t.ok(d <= 1.2 * c, `a's flood: ${d.toFixed(0)} ns per frame with junk in f's ring headers, ${c.toFixed(0)} without (medians of 200 chunks each, shuffled; ≤ 1.2×)`);
  t.equal(a.stats().dropBusy, 0, 'and no frame dropped as busy');
  await a.close();
  await b.close();
  await f.close();
});

t.test('a port something stays held on (a stuck lease) is freed by force after a bound, and counted', async (t) => {
  const sw = new Switch({ name: 'priv2' });
  t.teardown(() => sw.close());
  const a = await sw.open('vale0:a');
  const s = await sw.open('vale0:s');
  const br = sw.bridge('vale0');
  // A thread that no Switch knows of (id 0x3fff0000) reserved 4 slots of s's RX ring and is
  // stuck: its lease never finishes, so s's ring can never be called idle.
  const lk = br.rxLeasesAt(s.index);
  t.ok(lk.lock(0x3fff0001, 1000), 'the stuck thread took s\'s RX lock');
  t.equal(lk.reserve(4, 0x3fff0001), 4, '... reserved 4 slots');
  lk.unlock();
  const ms = await within('s.close()', s.close(), 2000);
  t.ok(ms >= 900, `the port waited for its lease first (${ms.toFixed(0)} ms)`);
  t.notOk(sw.ports('vale0').some((p) => p.name === 'vale0:s'), 'then it was freed');
  t.equal(sw.list()[0].forcedRemovals, 1, 'and the forced removal was counted');
  const again = await sw.open('vale0:s');
  a.send(frame(BCAST, A, 9));
  const got = again.recv();
  t.equal(got?.[14], 9, 'the slot works again for a new port');
  await again.close();
  await a.close();
});
