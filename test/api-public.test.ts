// Public library features driven through the API a user has: custom lookups (registerLookup and
// the bridge `lookup` option), the built-in hub lookup, Port's mtu, receive(max), txPrefill and
// `for await`, listSwitch, and what a Switch does once closed.
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LOOKUP_DROP, LOOKUP_FLOOD, Switch, listSwitch, openPort, registerLookup, type Port } from '../src/index.js';

const A = [2, 0, 0, 0, 0, 0xa];
const B = [2, 0, 0, 0, 0, 0xb];
const BCAST = [255, 255, 255, 255, 255, 255];

function frame(dst: number[], src: number[], tag: number, len = 60): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0); f.set(src, 6); f[12] = 0x88; f[13] = 0xb5; f[14] = tag;
  return f;
}

function drain(p: Port): number[] {
  const tags: number[] = [];
  for (let f = p.recv(); f; f = p.recv()) tags.push(f[14]);
  return tags;
}

t.test('registerLookup + the bridge lookup option: a custom lookup picks the port, or drops', async (t) => {
  // Byte 14 of the frame names the destination port slot; 0xff floods; anything else >= 3 drops.
  registerLookup('by-tag', (fw, off) => {
    const k = fw.u8[off + 14];
    return k === 0xff ? LOOKUP_FLOOD : k < 3 ? k : LOOKUP_DROP;
  });
  const sw = new Switch({ name: `lk1-${process.pid}` });
  t.teardown(() => sw.close());
  sw.createBridge('vale7', { lookup: 'by-tag' });
  t.equal(sw.list().find((b) => b.name === 'vale7')?.options.lookup, 'by-tag', 'the bridge reports its lookup');
  const [p0, p1, p2] = [await sw.open('vale7:a'), await sw.open('vale7:b'), await sw.open('vale7:c')];
  t.teardown(async () => { for (const p of [p0, p1, p2]) await p.close(); });
  // All from p0, to broadcast MAC: a learning bridge would flood every one of them.
  for (const tag of [2, 1, 2, 9, 0, 0xff]) p0.send(frame(BCAST, A, tag));
  t.same(drain(p1), [1, 0xff], 'slot 1 got the frame for it and the flood');
  t.same(drain(p2), [2, 2, 0xff], 'slot 2 got its two and the flood');
  t.same(drain(p0), [], 'nothing back to the sender (its own slot, 0, is not a destination)');
  const c = sw.list().find((b) => b.name === 'vale7')!.ports.find((p) => p.name === 'vale7:a')!.counters;
  t.equal(c.txDelivered, 5, 'delivered: 1 + 2 + the flood to 2 ports');
  t.equal(c.dropNoDest, 2, 'the dropped tag and the frame for its own port: no destination');
});

t.test('the hub lookup floods known unicast too; the learning bridge does not', async (t) => {
  const sw = new Switch({ name: `lk2-${process.pid}` });
  t.teardown(() => sw.close());
  sw.createBridge('vale1', { lookup: 'hub' });
  const run = async (bridge: string): Promise<number[]> => {
    const [a, b, c] = [await sw.open(`${bridge}:a`), await sw.open(`${bridge}:b`), await sw.open(`${bridge}:c`)];
    a.send(frame(BCAST, A, 1)); // the bridge may learn A behind a
    b.recv();
    c.recv();
    b.send(frame(A, B, 2)); // known unicast to A
    const got = [drain(a).length, drain(c).length];
    for (const p of [a, b, c]) await p.close();
    return got;
  };
  t.same(await run('vale1'), [1, 1], 'hub: the unicast to A reached a and c');
  t.same(await run('vale2'), [1, 0], 'learning (the default): only a');
  t.equal(sw.list().find((b) => b.name === 'vale2')?.options.lookup, 'learning');
});

t.test('mtu follows the bridge bufSize; a larger frame is refused with the limit', async (t) => {
  const sw = new Switch({ name: `mtu-${process.pid}` });
  t.teardown(() => sw.close());
  sw.createBridge('vale3', { bufSize: 4096 });
  const a = await sw.open('vale3:a');
  const b = await sw.open('vale3:b');
  const d = await sw.open('vale4:d');
  t.teardown(async () => { for (const p of [a, b, d]) await p.close(); });
  t.equal(a.mtu, 4096, 'a port of a bridge with 4096-byte buffers');
  t.equal(d.mtu, 2048, 'the default bridge buffer');
  a.send(frame(BCAST, A, 7, 4096));
  const f = b.recv();
  t.equal(f?.length, 4096, 'a frame of exactly mtu bytes crosses whole');
  t.throws(() => a.send(frame(BCAST, A, 8, 4097)), { code: 'ERR_BAD_FRAME', message: /14 to 4096 bytes/ });
  t.throws(() => d.send(frame(BCAST, A, 8, 2049)), { code: 'ERR_BAD_FRAME', message: /14 to 2048 bytes/ });
});

t.test('receive(max) takes at most max frames and leaves the rest pending', async (t) => {
  const sw = new Switch({ name: `rx-${process.pid}` });
  t.teardown(() => sw.close());
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  t.teardown(async () => { await a.close(); await b.close(); });
  a.sendBatch([1, 2, 3, 4, 5].map((i) => frame(BCAST, A, i)));
  t.equal(b.pending, 5);
  const first = b.receive(2);
  t.equal(first.count, 2, 'two frames');
  t.same([0, 1].map((i) => first.frame(i)[14]), [1, 2], 'the first two, in order');
  t.equal(b.pending, 3, 'three still pending while the batch is held');
  const rest = b.receive(); // releases the first batch
  t.equal(rest.count, 3);
  t.same([0, 1, 2].map((i) => rest.frame(i)[14]), [3, 4, 5]);
  b.release();
  t.equal(b.pending, 0);
  t.equal(b.receive(10).count, 0, 'an empty batch when nothing waits');
});

t.test('txPrefill writes every TX buffer once; txReserve/txCommit then send it repeatedly', async (t) => {
  const sw = new Switch({ name: `pf-${process.pid}`, bridge: { txSlots: 64 } });
  t.teardown(() => sw.close());
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  t.teardown(async () => { await a.close(); await b.close(); });
  const proto = frame(BCAST, A, 0x5a, 100);
  let calls = 0;
  a.txPrefill((buf, off) => {
    buf.set(proto, off);
    calls++;
    return proto.length;
  });
  t.equal(calls, 64, 'write() called once per TX slot');
  let sent = 0;
  for (let round = 0; round < 3; round++) {
    const batch = a.txReserve(40);
    t.equal(batch.count, 40, `round ${round}: 40 slots reserved`);
    sent += a.txCommit(40);
    const got: Uint8Array[] = [];
    for (let f = b.recv(); f; f = b.recv()) got.push(f);
    t.equal(got.length, 40, `round ${round}: 40 frames arrived`);
    t.ok(got.every((f) => f.length === 100 && Buffer.compare(f, proto) === 0), 'each the prefilled frame, byte for byte');
  }
  t.equal(sent, 120, 'txCommit counted every frame (slots wrapped past the ring end)');
});

t.test('for await over a Port yields frames as copies and ends when the port closes', async (t) => {
  const sw = new Switch({ name: `it-${process.pid}` });
  t.teardown(() => sw.close());
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  t.teardown(() => a.close());
  const got: number[] = [];
  const loop = (async () => {
    for await (const f of b) {
      got.push(f[14]);
      if (got.length === 3) setImmediate(() => void b.close()); // close while the loop waits
    }
    return 'ended';
  })();
  a.sendBatch([1, 2, 3].map((i) => frame(BCAST, A, i)));
  const end = await Promise.race([loop, new Promise((r) => setTimeout(r, 10_000, 'timeout').unref())]);
  t.equal(end, 'ended', 'the loop ended on close');
  t.same(got, [1, 2, 3], 'every frame once, in order');
  // A frame arriving later is not seen: the port is gone.
  t.same(sw.list()[0].ports.map((p) => p.name), ['vale0:a'], 'and the port is gone');
});

t.test('listSwitch answers with the switch\'s list; an unknown switch is an error', async (t) => {
  const sw = new Switch({ name: `ls-${process.pid}` });
  t.teardown(() => sw.close());
  const a = await sw.open('vale3:x', {});
  sw.createPort('vale3:keep');
  t.teardown(() => a.close());
  const l = (await listSwitch({ switch: sw.name })) as ReturnType<Switch['list']>;
  t.same(l, sw.list(), 'the same summary the Switch gives');
  t.same(l.map((b) => [b.name, b.ports.map((p) => [p.name, p.persistent])]), [['vale3', [['vale3:x', false], ['vale3:keep', true]]]]);
  await t.rejects(listSwitch({ switch: `nobody-${process.pid}`, timeoutMs: 300 }), { code: 'ERR_NO_SWITCH' });
});

t.test('after Switch.close(): opening fails with ERR_NO_SWITCH, the name can be used again', async (t) => {
  const name = `closed-${process.pid}`;
  const sw = new Switch({ name });
  const a = await sw.open('vale0:a');
  await a.close();
  await sw.close();
  await sw.close(); // twice is fine
  await t.rejects(sw.open('vale0:b'), { code: 'ERR_NO_SWITCH', message: /closed/ });
  t.throws(() => sw.createBridge('vale1'), { code: 'ERR_NO_SWITCH' });
  t.throws(() => sw.createPort('vale0:p'), { code: 'ERR_NO_SWITCH' });
  await t.rejects(openPort('vale0:c', { switch: name, timeoutMs: 300 }), { code: 'ERR_NO_SWITCH' }, 'a closed switch answers no one');
  await t.rejects(listSwitch({ switch: name, timeoutMs: 300 }), { code: 'ERR_NO_SWITCH' });
  const again = new Switch({ name });
  t.teardown(() => again.close());
  const p = await again.open('vale0:a');
  t.equal(p.name, 'vale0:a', 'a new Switch under the same name works');
  await p.close();
});

t.test('waitAsync and for await keep the process alive while they wait (nothing else pending)', async (t) => {
  // A script whose only pending work is a Port wait: it must see the wait through (Node does not
  // count a pending Atomics.waitAsync as work; before the fix such a script exited with code 13).
  const lib = JSON.stringify(fileURLToPath(new URL('../dist/src/index.js', import.meta.url)));
  const script = `
    import { Switch } from ${lib};
    const sw = new Switch({ name: 'alive' });
    const p = await sw.open('vale0:a');
    console.log('waitAsync', await p.waitAsync(300));
    const q = await sw.open('vale0:b');
    setTimeout(() => { q.send(new Uint8Array(60).fill(255, 0, 6)); }, 200).unref(); // an unref'd timer: not work either
    for await (const f of p) { console.log('for await got', f.length); break; }
    await p.close(); await q.close(); await sw.close();`;
  const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 })
    .then((x) => ({ code: 0, out: x.stdout }), (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }));
  t.equal(r.code, 0, 'exits 0');
  t.equal(r.out, 'waitAsync false\nfor await got 60\n', 'the timed wait ended with false; for await got the frame');
});
