// VLANs, MAC ageing, a full MAC table, mirror ports.
import t, { type Test } from 'tap';
import { BH_CLOCK, Bridge, CLOCK_TICK_SYNCS, Forwarder } from '#bridge';
import { frame, mac, send, recv, invariant } from './helpers/bridge-util.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function tagged(dst: string, src: string, vid: number, tag = 0): Uint8Array {
  const f = new Uint8Array(64);
  f.set(mac(dst), 0); f.set(mac(src), 6);
  f[12] = 0x81; f[13] = 0x00; f[14] = vid >> 8; f[15] = vid & 0xff; f[16] = 0x08; f[17] = 0x00; f[18] = tag;
  return f;
}
const vidOf = (f: Uint8Array) => (f[12] === 0x81 && f[13] === 0 ? ((f[14] << 8) | f[15]) & 0xfff : 0);

function ok(t: Test, b: Bridge, ports: number[]) {
  for (const p of ports) { const { lhs, rhs } = invariant(b, p); t.equal(lhs, rhs, `counters add up on port ${p}`); }
}

t.test('access and trunk ports: tags added and removed, native VLAN, wrong VLAN dropped', async (t) => {
  const b = Bridge.create('valev', { maxPorts: 8, txSlots: 32, rxSlots: 32 });
  const fw = new Forwarder(b, 0);
  const a10 = b.addPort('valev:a10'); const a20 = b.addPort('valev:a20'); const tr = b.addPort('valev:tr');
  const b10 = b.addPort('valev:b10');
  b.setVlan(a10, { mode: 'access', vlan: 10 });
  b.setVlan(b10, { mode: 'access', vlan: 10 });
  b.setVlan(a20, { mode: 'access', vlan: 20 });
  b.setVlan(tr, { mode: 'trunk', vlans: [10, 20], native: 30 });
  t.same(b.vlanConfig(tr), { mode: 'trunk', vlans: [10, 20], native: 30 });

  // untagged in on access 10 → trunk gets it tagged 10, b10 untagged, a20 nothing
  send(b, fw, a10, [frame(BCAST, A, [1])]);
  const onTrunk = recv(b, tr);
  t.equal(onTrunk.length, 1);
  t.equal(vidOf(onTrunk[0]), 10, 'tagged with VLAN 10 on the trunk');
  t.equal(onTrunk[0].length, 64, 'four bytes longer');
  t.equal(onTrunk[0][18], 1, 'payload shifted behind the tag');
  const onB10 = recv(b, b10);
  t.equal(onB10.length, 1);
  t.equal(vidOf(onB10[0]), 0, 'untagged on the access port');
  t.equal(recv(b, a20).length, 0, 'flooding stays inside VLAN 10');

  // tagged 20 in on the trunk → a20 untagged; tagged 99 (not carried) dropped
  send(b, fw, tr, [tagged(BCAST, B, 20, 2), tagged(BCAST, B, 99, 3)]);
  const onA20 = recv(b, a20);
  t.equal(onA20.length, 1);
  t.equal(vidOf(onA20[0]), 0);
  t.equal(onA20[0].length, 60, 'tag removed');
  t.equal(onA20[0][14], 2);
  t.equal(recv(b, a10).length + recv(b, b10).length, 0);
  t.equal(b.counters(tr).dropVlan, 1, 'VLAN the trunk does not carry: dropped and counted');

  // untagged on the trunk takes the native VLAN 30: no access port is in 30
  send(b, fw, tr, [frame(BCAST, B, [4])]);
  t.equal(recv(b, a10).length + recv(b, a20).length + recv(b, b10).length, 0);
  t.equal(b.counters(tr).dropNoDest, 1, 'flooded in VLAN 30 to nobody');
  // a tagged frame on an access port is dropped
  send(b, fw, a10, [tagged(BCAST, A, 10)]);
  t.equal(b.counters(a10).dropVlan, 1);
  ok(t, b, [a10, a20, tr, b10]);
});

t.test('the same MAC learned in two VLANs on two ports', async (t) => {
  const b = Bridge.create('valew', { maxPorts: 8, txSlots: 32, rxSlots: 32 });
  const fw = new Forwarder(b, 0);
  const p10 = b.addPort('valew:p10'); const p20 = b.addPort('valew:p20'); const tr = b.addPort('valew:tr');
  b.setVlan(p10, { mode: 'access', vlan: 10 });
  b.setVlan(p20, { mode: 'access', vlan: 20 });
  b.setVlan(tr, { mode: 'trunk', vlans: [10, 20] });
  send(b, fw, p10, [frame(BCAST, A)]);
  send(b, fw, p20, [frame(BCAST, A)]);
  recv(b, tr);
  const fdb = b.macTable().filter((e) => e.mac === A).map((e) => [e.vlan, e.portName]);
  t.same(fdb, [[10, 'valew:p10'], [20, 'valew:p20']]);
  send(b, fw, tr, [tagged(A, B, 20, 7)]);
  t.equal(recv(b, p20).length, 1, 'VLAN 20 unicast goes to the VLAN 20 port');
  t.equal(recv(b, p10).length, 0);
  send(b, fw, tr, [tagged(A, B, 10, 8)]);
  t.equal(recv(b, p10)[0]?.[14], 8, 'VLAN 10 unicast goes to the VLAN 10 port, untagged');
  ok(t, b, [p10, p20, tr]);
});

t.test('MAC ageing with an injected clock; 0 disables it', async (t) => {
  const b = Bridge.create('valeg', { maxPorts: 4, txSlots: 16, rxSlots: 16, ageing: 10 });
  const fw = new Forwarder(b, 0);
  fw.manualClock = true;
  const pa = b.addPort('valeg:a'); const pb = b.addPort('valeg:b'); const pc = b.addPort('valeg:c');
  fw.now = 100;
  send(b, fw, pa, [frame(BCAST, A)]);
  recv(b, pb); recv(b, pc);
  fw.now = 105;
  send(b, fw, pb, [frame(A, B)]);
  t.equal(recv(b, pc).length, 0, 'fresh entry: unicast');
  t.equal(b.macTable(b.epoch + 105).length, 2);
  fw.now = 111;
  send(b, fw, pb, [frame(A, B)]);
  t.equal(recv(b, pc).length, 1, 'expired after 10 s: flooded again');
  t.equal(b.macTable(b.epoch + 111).map((e) => e.mac).join(), B, 'the dump leaves out expired entries');
  recv(b, pa);
  b.ageing = 0;
  fw.now = 5_000_000;
  send(b, fw, pb, [frame(A, B)]);
  t.equal(recv(b, pa).length, 1, 'with ageing off, even an old entry is used');
  t.equal(recv(b, pc).length, 0, 'and nothing is flooded');
});

t.test('the clock word: forwarders stamp MACs with it, move it every CLOCK_TICK_SYNCS txsyncs, never back', async (t) => {
  const b = Bridge.create('valek', { maxPorts: 4, txSlots: 16, rxSlots: 16, ageing: 10 });
  const pa = b.addPort('valek:a'); const pb = b.addPort('valek:b');
  const sec = () => Math.floor(Date.now() / 1000) - b.epoch;
  t.equal(b.clock, 0, 'a new bridge starts at its epoch');
  t.equal(b.tickClock(Date.now() - 60_000), 0, 'a clock behind the word does not move it back');
  const ahead = b.tickClock(Date.now() + 3_600_000);
  t.ok(ahead >= 3599 && ahead <= 3601, `the word moves forward (${ahead})`);
  t.equal(b.tickClock(), ahead, 'and stays there when the system clock is behind it');
  const fw = new Forwarder(b, 0);
  send(b, fw, pa, [frame(BCAST, A)]);
  recv(b, pb);
  t.equal(fw.now, ahead, 'a txsync takes its time from the word');
  t.same(b.macTable(b.epoch + ahead).map((e) => e.age), [0], 'and stamps the MAC with it');
  // A word far behind (a bridge whose owner's timer stopped): the forwarder moves it itself.
  const b2 = Bridge.create('valel', { maxPorts: 4, txSlots: 16, rxSlots: 16, ageing: 10 });
  const qa = b2.addPort('valel:a'); const qb = b2.addPort('valel:b');
  const fw2 = new Forwarder(b2, 0);
  new Uint32Array(b2.sab)[(b2.hdr + BH_CLOCK) >>> 2] = 0; // what the word holds at creation
  const before = Math.floor(Date.now() / 1000) - b2.epoch;
  for (let i = 0; i < CLOCK_TICK_SYNCS; i++) {
    send(b2, fw2, qa, [frame(BCAST, A)]);
    recv(b2, qb);
  }
  t.ok(b2.clock >= before && b2.clock <= sec() + 1, `within CLOCK_TICK_SYNCS txsyncs the word is the system clock again (${b2.clock})`);
});

t.test('a full MAC table floods new addresses and counts them, live entries stay', async (t) => {
  const b = Bridge.create('valef', { maxPorts: 4, txSlots: 64, rxSlots: 64, macTableSize: 4 });
  const fw = new Forwarder(b, 0);
  const pa = b.addPort('valef:a'); const pb = b.addPort('valef:b'); const pc = b.addPort('valef:c');
  const srcs = Array.from({ length: 6 }, (_, i) => `02:00:00:00:01:${String(i).padStart(2, '0')}`);
  send(b, fw, pa, srcs.map((s) => frame(BCAST, s)));
  recv(b, pb); recv(b, pc);
  t.equal(b.macTable().length, 4, 'table holds 4');
  t.equal(b.macFull, 2, 'two sources could not be learned, counted');
  const learned = b.macTable().map((e) => e.mac);
  t.same(learned, srcs.slice(0, 4), 'the first four stay: no unfair eviction');
  send(b, fw, pb, [frame(srcs[5], B)]);
  t.equal(recv(b, pc).length, 1, 'unlearned address is flooded');
  send(b, fw, pb, [frame(srcs[0], B)]);
  t.equal(recv(b, pc).length, 0, 'learned address still unicast');
});

t.test('a mirror sees both directions; its full ring costs the mirrored ports nothing', async (t) => {
  const b = Bridge.create('valem', { maxPorts: 8, txSlots: 64, rxSlots: 16 });
  const fw = new Forwarder(b, 0);
  const pa = b.addPort('valem:a'); const pb = b.addPort('valem:b'); const mon = b.addPort('valem:mon');
  b.setMirror(mon, { tx: [pa], rx: [pa] });
  send(b, fw, pa, [frame(BCAST, A, [1])]);
  t.equal(recv(b, pb).length, 1);
  send(b, fw, pb, [frame(A, B, [2])]);
  t.equal(recv(b, pa).length, 1);
  const seen = recv(b, mon);
  t.same(seen.map((f) => f[14]), [1, 2], 'what a sent and what a received, in order');
  t.equal(b.counters(pa).mirrored, 1);
  t.equal(b.counters(pb).mirrored, 1);
  t.equal(b.ports().find((p) => p.index === mon)?.mirror, true);
  // the mirror gets no normal traffic: a broadcast from b reaches a only (plus a's rx mirror copy)
  send(b, fw, pb, [frame(BCAST, B, [3])]);
  t.equal(recv(b, pa).length, 1);
  t.same(recv(b, mon).map((f) => f[14]), [3], 'only as a mirror copy');
  // fill the mirror ring: 40 frames from a to b; b keeps up, the mirror (15 slots) overflows
  let got = 0;
  for (let round = 0; round < 4; round++) {
    send(b, fw, pa, Array.from({ length: 10 }, (_, i) => frame(B, A, [round * 10 + i])));
    got += recv(b, pb).length;
  }
  t.equal(got, 40, 'the mirrored traffic is all delivered');
  t.equal(recv(b, mon).length, 15, 'the mirror got what fit');
  t.equal(b.counters(pa).mirrorDrops, 25, 'and the rest is counted as mirror drops');
  t.equal(b.counters(pa).dropRingFull, 0, 'not as drops of the mirrored port');
  ok(t, b, [pa, pb, mon]);
  b.setMirror(mon, {});
  send(b, fw, pa, [frame(BCAST, A)]);
  t.equal(recv(b, mon).length, 1, 'a normal port again');
});
