import t from 'tap';
import { Bridge, Forwarder, BridgeError, parsePortName } from '#bridge';
import { frame, send, recv, invariant } from './helpers/bridge-util.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function setup(opts = {}) {
  const b = Bridge.create('vale0', { maxPorts: 8, txSlots: 64, rxSlots: 64, ...opts });
  const fw = new Forwarder(b, 0);
  const pa = b.addPort('vale0:a');
  const pb = b.addPort('vale0:b');
  const pc = b.addPort('vale0:c');
  return { b, fw, pa, pb, pc };
}

t.test('unknown unicast floods, the reply is learned and goes unicast', async (t) => {
  const { b, fw, pa, pb, pc } = setup();
  t.equal(send(b, fw, pa, [frame(B, A, [1])]), 1);
  t.equal(recv(b, pa).length, 0, 'never back to the source port');
  t.equal(recv(b, pb).length, 1, 'flooded to b');
  t.equal(recv(b, pc).length, 1, 'flooded to c');
  send(b, fw, pb, [frame(A, B, [2])]);
  const got = recv(b, pa);
  t.equal(got.length, 1, 'reply reaches a');
  t.equal(got[0][14], 2);
  t.equal(recv(b, pc).length, 0, 'reply to a learned MAC is not flooded');
  send(b, fw, pa, [frame(B, A, [3])]);
  t.equal(recv(b, pb).length, 1);
  t.equal(recv(b, pc).length, 0, 'b is learned now too');
  const table = b.macTable();
  t.same(table.map((e) => [e.mac, e.portName]), [[A, 'vale0:a'], [B, 'vale0:b']]);
  for (const p of [pa, pb, pc]) {
    const { lhs, rhs } = invariant(b, p);
    t.equal(lhs, rhs, `counters add up on port ${p}`);
  }
  t.equal(b.counters(pa).txFrames, 2);
  t.equal(b.counters(pa).txCopies, 3, 'a flood to two ports is two copies');
  t.equal(b.counters(pb).rxFrames, 2);
  t.equal(b.counters(pa).rxBytes, 60);
});

t.test('broadcast and multicast flood; multicast sources are not learned', async (t) => {
  const { b, fw, pa, pb, pc } = setup();
  send(b, fw, pa, [frame(BCAST, A)]);
  t.equal(recv(b, pb).length, 1);
  t.equal(recv(b, pc).length, 1);
  t.equal(recv(b, pa).length, 0);
  send(b, fw, pb, [frame('01:00:5e:00:00:01', B)]);
  t.equal(recv(b, pa).length, 1, 'multicast floods');
  t.equal(recv(b, pc).length, 1);
  send(b, fw, pc, [frame(A, '03:00:00:00:00:01')]);
  t.notOk(b.macTable().some((e) => e.mac === '03:00:00:00:00:01'), 'multicast source not learned');
  t.equal(recv(b, pa).length, 1, 'learned unicast to a');
  t.equal(recv(b, pb).length, 0);
});

t.test('a moved MAC follows its new port', async (t) => {
  const { b, fw, pa, pb, pc } = setup();
  send(b, fw, pa, [frame(BCAST, A)]);
  recv(b, pb); recv(b, pc);
  send(b, fw, pb, [frame(A, B)]);
  t.equal(recv(b, pa).length, 1);
  send(b, fw, pc, [frame(BCAST, A)]); // A now appears on c
  recv(b, pa); recv(b, pb);
  send(b, fw, pb, [frame(A, B)]);
  t.equal(recv(b, pc).length, 1, 'goes to c');
  t.equal(recv(b, pa).length, 0, 'not to a any more');
});

t.test('a frame to a MAC learned on the source port is dropped, not hairpinned', async (t) => {
  const { b, fw, pa, pb, pc } = setup();
  send(b, fw, pa, [frame(BCAST, A), frame(BCAST, C)]);
  recv(b, pb); recv(b, pc);
  send(b, fw, pa, [frame(C, A)]);
  t.equal(recv(b, pa).length + recv(b, pb).length + recv(b, pc).length, 0);
  t.equal(b.counters(pa).dropNoDest, 1);
  t.same(invariant(b, pa).lhs, invariant(b, pa).rhs);
});

t.test('two bridges are isolated', async (t) => {
  const b1 = Bridge.create('vale1', { maxPorts: 4, txSlots: 16, rxSlots: 16 });
  const b2 = Bridge.create('vale2', { maxPorts: 4, txSlots: 16, rxSlots: 16 });
  const f1 = new Forwarder(b1, 0);
  const f2 = new Forwarder(b2, 0);
  const x = b1.addPort('vale1:x'); const y = b1.addPort('vale1:y');
  const z = b2.addPort('vale2:z'); const w = b2.addPort('vale2:w');
  send(b1, f1, x, [frame(BCAST, A)]);
  t.equal(recv(b1, y).length, 1);
  t.equal(recv(b2, z).length + recv(b2, w).length, 0, 'nothing leaks into the other bridge');
  t.equal(b2.macTable().length, 0);
  send(b2, f2, z, [frame(A, B)]);
  t.equal(recv(b2, w).length, 1);
  t.equal(recv(b1, x).length, 0);
});

t.test('invalid slots are dropped and counted, never read out of range', async (t) => {
  const { b, fw, pa, pb } = setup();
  const tx = b.txRing(pa);
  const nif = b.netmapIf(pa);
  let h = tx.head;
  const bad = [[0, 60], [1, 60], [nif.poolBufs, 60], [0xffffffff, 60], [tx.bufIdx(h), 13], [tx.bufIdx(h), 0], [tx.bufIdx(h), 2049]];
  for (const [bi, len] of bad) { tx.setBufIdx(h, bi); tx.setLen(h, len); h = tx.next(h); }
  tx.advance(bad.length);
  t.equal(fw.txsync(pa), bad.length, 'every slot consumed');
  const c = b.counters(pa);
  t.equal(c.dropBadBuf, 4);
  t.equal(c.dropBadLen, 3);
  t.equal(recv(b, pb).length, 0);
  t.equal(invariant(b, pa).lhs, invariant(b, pa).rhs);
  // restore sane buffer indices and send a good frame: the port still works
  for (let i = 0; i < tx.numSlots; i++) tx.setBufIdx(i, 2 + i);
  send(b, fw, pa, [frame(BCAST, A)]);
  t.equal(recv(b, pb).length, 1);
});

t.test('a full ring drops and counts, the sender never blocks', async (t) => {
  const b = Bridge.create('vale3', { maxPorts: 4, txSlots: 64, rxSlots: 16 });
  const fw = new Forwarder(b, 0);
  const pa = b.addPort('vale3:a'); const pb = b.addPort('vale3:b');
  const frames = Array.from({ length: 40 }, (_, i) => frame(BCAST, A, [i]));
  t.equal(send(b, fw, pa, frames), 40);
  const got = recv(b, pb);
  t.equal(got.length, 15, 'a 16-slot ring holds 15');
  t.same(got.map((f) => f[14]), Array.from({ length: 15 }, (_, i) => i), 'the first ones, in order');
  t.equal(b.counters(pa).dropRingFull, 25);
  t.equal(b.counters(pb).rxDropRingFull, 25);
  t.equal(invariant(b, pa).lhs, invariant(b, pa).rhs);
  t.equal(b.counters(pa).txDelivered, b.counters(pb).rxFrames);
});

t.test('names and limits give errors that state the rule', async (t) => {
  for (const bad of ['foo', 'vale', 'vale0:', 'vale0:a:b', 'vale0:a b', 'vale0:abcdefghijkl', 'vale0:é', 'VALE0:a']) {
    t.throws(() => parsePortName(bad), { code: 'ERR_BAD_NAME', message: /start with "vale".*15 characters/ }, bad);
  }
  t.same(parsePortName('vale-foo'), { name: 'vale-foo', bridge: 'vale', port: 'vale-foo' });
  t.same(parsePortName('vale0:a'), { name: 'vale0:a', bridge: 'vale0', port: 'a' });
  t.throws(() => Bridge.create('bridge'), { code: 'ERR_BAD_NAME' });
  t.throws(() => Bridge.create('vale9', { maxPorts: 300 }), { code: 'ERR_BAD_OPTION', message: /maxPorts must be an integer in \[1, 254\]/ });
  t.throws(() => Bridge.create('vale9', { rxSlots: 1000 }), { message: /rxSlots must be a power of two/ });
  t.throws(() => Bridge.create('vale9', { batch: 0 }), { message: /batch must be an integer in \[1, 1024\]/ });
  const b = Bridge.create('vale9', { maxPorts: 2, txSlots: 8, rxSlots: 8 });
  b.addPort('vale9:a');
  t.throws(() => b.addPort('vale9:a'), { code: 'ERR_PORT_EXISTS' });
  b.addPort('vale9:b');
  t.throws(() => b.addPort('vale9:c'), { code: 'ERR_BRIDGE_FULL', message: /all 2 ports/ });
  // Every one of these errors is a BridgeError (callers tell bridge errors apart by class).
  const caught: unknown[] = [];
  for (const f of [() => parsePortName('foo'), () => Bridge.create('vale9', { batch: 0 }), () => b.addPort('vale9:a')]) {
    try { f(); } catch (e) { caught.push(e); }
  }
  t.equal(caught.length, 3);
  t.ok(caught.every((e) => e instanceof BridgeError && e instanceof Error), 'thrown errors are BridgeError instances');
});

t.test('batches smaller than the ring keep order across batches', async (t) => {
  const b = Bridge.create('vale4', { maxPorts: 2, txSlots: 64, rxSlots: 64, batch: 7 });
  const fw = new Forwarder(b, 0);
  const pa = b.addPort('vale4:a'); const pb = b.addPort('vale4:b');
  send(b, fw, pa, Array.from({ length: 50 }, (_, i) => frame(BCAST, A, [i])));
  t.same(recv(b, pb).map((f) => f[14]), Array.from({ length: 50 }, (_, i) => i));
  t.equal(b.counters(pa).txBatches, 8);
});

t.test('a batch that starts with one destination and then has others delivers each frame once, in order', async (t) => {
  // The forwarder skips per-destination lists while a batch goes to one port; every way of
  // leaving that case must still give each port exactly its frames, in batch order.
  const { b, fw, pa, pb, pc } = setup();
  send(b, fw, pb, [frame(BCAST, B)]);
  send(b, fw, pc, [frame(BCAST, C)]);
  recv(b, pa); recv(b, pb); recv(b, pc);
  const D = '02:00:00:00:00:0d'; // unknown: floods
  const cases: { name: string; dsts: string[] }[] = [
    { name: 'all to b', dsts: [B, B, B, B] },
    { name: 'b then c', dsts: [B, B, B, C, B, C] },
    { name: 'b then a flood', dsts: [B, B, BCAST, B, D, C] },
    { name: 'flood first', dsts: [BCAST, B, B, C] },
    { name: 'b then a frame to its own source (dropped)', dsts: [B, B, A, B, C] },
  ];
  let seq = 0;
  for (const c of cases) {
    const before = b.counters(pa);
    const frames = c.dsts.map((d) => frame(d, A, [seq++ & 0xff]));
    if (c.dsts.includes(A)) {
      // a's own address is learned on a: a frame to it has no destination
      send(b, fw, pa, [frame(BCAST, A)]); recv(b, pb); recv(b, pc);
    }
    t.equal(send(b, fw, pa, frames), frames.length, `${c.name}: all consumed`);
    const want = (to: string) => frames.filter((_, i) => c.dsts[i] === to || c.dsts[i] === BCAST || c.dsts[i] === D).map((f) => f[14]);
    t.same(recv(b, pb).map((f) => f[14]), want(B), `${c.name}: b got its frames in order`);
    t.same(recv(b, pc).map((f) => f[14]), want(C), `${c.name}: c got its frames in order`);
    const after = b.counters(pa);
    const noDest = c.dsts.filter((d) => d === A).length;
    t.equal(after.dropNoDest - before.dropNoDest, noDest, `${c.name}: ${noDest} counted without a destination`);
    const { lhs, rhs } = invariant(b, pa);
    t.equal(lhs, rhs, `${c.name}: a's counters add up`);
  }
});

t.test('removing a port: frames stop, its slot is reused, its MACs are forgotten', async (t) => {
  const { b, fw, pa, pb, pc } = setup();
  send(b, fw, pb, [frame(BCAST, B)]);
  recv(b, pa); recv(b, pc);
  b.beginRemove(pb);
  t.ok(b.tryFinishRemove(pb));
  t.notOk(b.macTable().some((e) => e.mac === B));
  send(b, fw, pa, [frame(B, A)]);
  t.equal(recv(b, pc).length, 1, 'unknown again: flooded to the remaining port');
  t.equal(b.activePorts, 2);
  const again = b.addPort('vale0:d');
  t.equal(again, pb, 'slot reused');
  t.equal(b.counters(again).rxFrames, 0, 'fresh counters');
  t.equal(fw.txsync(pb), 0);
});
