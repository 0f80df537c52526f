// A custom lookup that throws, or answers something that is not a port slot (-1, 1.5, NaN, a
// slot beyond the bridge), loses only the frame it was asked about, counted as dropLookup: the
// port stays usable and removable, the switch closes. And one port's txsync never runs twice at
// once: a second sender gets ERR_PORT_BUSY instead of a race.
import t from 'tap';
import { Switch, registerLookup, LOOKUP_FLOOD, type LookupFn } from '../src/index.js';

function frame(tag: number): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6); f.set([2, 0, 0, 0, 0, 1], 6); f[12] = 8; f[14] = tag;
  return f;
}

// Frames whose byte 14 is 0 are flooded; otherwise the behaviour under test.
const bad: Record<string, (tag: number) => number> = {
  throws: () => { throw new Error('lookup bug'); },
  minus1: () => -1,
  half: () => 1.5,
  nan: () => NaN,
  huge: () => 100_000,
};

for (const [name, answer] of Object.entries(bad)) {
  t.test(`a lookup that ${name === 'throws' ? 'throws' : `answers ${name}`}`, async (t) => {
    const fn: LookupFn = (fw, off) => {
      const tag = fw.u8[off + 14]!;
      return tag === 0 ? LOOKUP_FLOOD : answer(tag);
    };
    registerLookup(`bad-${name}`, fn);
    const sw = new Switch({ name: `lk-${name}` });
    sw.createBridge('vale0', { lookup: `bad-${name}` });
    const a = await sw.open('vale0:a');
    const b = await sw.open('vale0:b');
    const sent = a.sendBatch([frame(0), frame(1), frame(0), frame(2), frame(0)]);
    t.equal(sent, 5, 'txsync consumed every frame (none left pending to poison later sends)');
    const got: number[] = [];
    for (let f = b.recv(); f; f = b.recv()) got.push(f[14]!);
    t.same(got, [0, 0, 0], 'the good frames went through');
    const c = a.stats();
    t.equal(c.dropLookup, 2, 'the two bad answers counted as dropLookup');
    t.equal(c.txCopies, c.txDelivered + c.dropLookup + c.dropNoDest + c.dropRingFull + c.dropBusy + c.dropBadBuf + c.dropBadLen + c.dropVlan, 'accounting exact');
    t.equal(a.sendBatch([frame(0)]), 1, 'the port still sends');
    t.ok(b.recv(), 'and b gets it');
    await a.close();
    await b.close();
    await sw.close();
    t.same(sw.list()[0]?.ports, [], 'ports removed; the switch closed');
  });
}

t.test('a second txsync on a port while one runs gets ERR_PORT_BUSY', async (t) => {
  // A lookup runs inside the sender's txsync; this one sends on the same port from there, as a
  // second user of the port would in the middle of the first one's txsync.
  let target: { send(f: Uint8Array): void } | null = null;
  let inner: unknown = 'not called';
  registerLookup('reenter', () => {
    if (target && inner === 'not called') {
      inner = null;
      try { target.send(frame(1)); } catch (e) { inner = e; }
    }
    return LOOKUP_FLOOD;
  });
  const sw = new Switch({ name: 'lk-busy' });
  t.teardown(() => sw.close());
  sw.createBridge('vale3', { lookup: 'reenter' });
  const h = await sw.open('vale3:h');
  const k = await sw.open('vale3:k');
  target = h;
  h.send(frame(0));
  t.match(inner, { code: 'ERR_PORT_BUSY', message: /another thread is sending on vale3:h/ }, 'the nested txsync was refused, not run');
  t.equal(k.recv()?.[14], 0, 'the outer send went through');
  t.ok(h.sendBatch([frame(3)]) >= 1, 'the port is free again afterwards');
  const tags: number[] = [];
  for (let f = k.recv(); f; f = k.recv()) tags.push(f[14]!);
  t.same(tags, [1, 3], 'the refused frame stayed in the ring and left with the next send, in order');
  await h.close();
  await k.close();
});
