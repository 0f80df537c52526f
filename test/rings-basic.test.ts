import t from 'tap';
import {
  Region, Ring, NetmapIf, netmapIfBytes, RingError, TX, RX, FIRST_BUF, NR_HEAD, NR_TAIL, NR_ERRORS, NR_NUM_SLOTS, NR_BUF_SIZE,
  NI_RING_OFS, NI_TX_RINGS, NI_RX_RINGS, transferable, fromTransferable, copyFrame,
} from 'shared-memory-ring';

t.test('netmap_if layout: rings, slots and buffers at netmap offsets', async (t) => {
  const bytes = netmapIfBytes({ txSlots: 8, rxSlots: 16, bufSize: 2048, name: 'vale0:a' });
  const region = Region.create(Math.ceil((bytes + 4096) / 64) * 64);
  const off = region.alloc(bytes);
  const nif = NetmapIf.init(region, off, { txSlots: 8, rxSlots: 16, bufSize: 2048, name: 'vale0:a' });
  t.equal(nif.name, 'vale0:a');
  t.equal(region.dv.getUint32(off + NI_TX_RINGS, true), 1);
  t.equal(region.dv.getUint32(off + NI_RX_RINGS, true), 1);
  const tx = nif.txRings[0];
  const rx = nif.rxRings[0];
  t.equal(Number(region.dv.getBigInt64(off + NI_RING_OFS, true)), tx.offset - off, 'ring_ofs[0] is the TX ring');
  t.equal(Number(region.dv.getBigInt64(off + NI_RING_OFS + 8, true)), rx.offset - off, 'ring_ofs[1] is the RX ring');
  t.equal(region.dv.getUint32(tx.offset + NR_NUM_SLOTS, true), 8);
  t.equal(region.dv.getUint32(rx.offset + NR_BUF_SIZE, true), 2048);
  t.equal(tx.dir, TX);
  t.equal(rx.dir, RX);
  t.equal(tx.tail, 7, 'TX ring starts with numSlots - 1 free slots');
  t.equal(tx.space(), 7);
  t.equal(rx.tail, 0, 'RX ring starts empty');
  t.equal(rx.space(), 0);
  t.equal(rx.rxFree(), 15, 'one slot always stays empty');
  t.equal(nif.poolBufs, FIRST_BUF + 8 + 16);
  const seen = new Set<number>();
  for (let i = 0; i < 8; i++) seen.add(tx.bufIdx(i));
  for (let i = 0; i < 16; i++) seen.add(rx.bufIdx(i));
  t.equal(seen.size, 24, 'every slot has its own buffer');
  t.notOk(seen.has(0) || seen.has(1), 'buffers 0 and 1 are reserved');
  t.equal(tx.bufOffset(FIRST_BUF) % 64, 0, 'buffers are 64-aligned');
  t.ok(tx.bufOffset(nif.poolBufs) <= off + bytes, 'pool ends inside the allocation');
});

t.test('bad arguments say what is wrong', async (t) => {
  const region = Region.create(1 << 16);
  t.throws(() => Ring.init(region, 64, { numSlots: 100, bufSize: 2048, poolOffset: 4096, poolBufs: 10, firstBuf: 2, dir: 0 }),
    { code: 'ERR_RING_ARG', message: /numSlots must be a power of two, got 100/ });
  t.throws(() => NetmapIf.init(region, 64, { bufSize: 100 }), { message: /bufSize must be a multiple of 64, got 100/ });
  t.throws(() => NetmapIf.init(region, 64, { txSlots: 8192 }), { message: /txSlots must be an integer in \[2, 4096\]/ });
  t.throws(() => NetmapIf.init(region, 64, {}), { code: 'ERR_RING_RANGE', message: /does not fit/ });
  t.throws(() => region.alloc(1 << 20), { code: 'ERR_RING_REGION_FULL', message: /region too small/ });
  t.throws(() => Region.create(1000), { message: /region byteLength must be an integer in \[4096/ });
  t.throws(() => Region.attach(new SharedArrayBuffer(4096)), { code: 'ERR_RING_BAD_REGION' });
  t.throws(() => NetmapIf.init(region, 64, { name: 'a-name-that-is-too-long' }), { message: /at most 15/ });
  const r = Region.create(1 << 16);
  const ring = Ring.init(r, r.alloc(512), { numSlots: 4, bufSize: 64, poolOffset: r.alloc(64 * 8), poolBufs: 8, firstBuf: 2, dir: 1 });
  t.throws(() => ring.setHead(4), RingError);
});

t.test('user side and kernel side move frames with netmap semantics', async (t) => {
  const region = Region.create(1 << 16);
  const nif = NetmapIf.init(region, region.alloc(netmapIfBytes({ txSlots: 4, rxSlots: 4, bufSize: 64 })), { txSlots: 4, rxSlots: 4, bufSize: 64 });
  const rx = nif.rxRings[0];
  // kernel fills 3 frames (the most a 4-slot ring can hold)
  t.equal(rx.rxFree(), 3);
  for (let i = 0; i < 3; i++) { rx.setLen(i, 20 + i); region.u8[rx.slotBuf(i)] = i + 1; }
  rx.publishTail(3);
  t.equal(rx.rxFree(), 0, 'full with one slot empty');
  t.equal(rx.space(), 3);
  t.same([...rx.frame(1).subarray(0, 1)], [2]);
  t.equal(rx.frame(2).length, 22);
  rx.advance(2);
  t.equal(rx.head, 2);
  t.equal(rx.cur, 2, 'cur follows head');
  t.equal(rx.rxFree(), 2);
  // TX: user fills 2, kernel consumes them and returns the slots
  const tx = nif.txRings[0];
  t.equal(tx.space(), 3);
  tx.advance(2);
  t.equal(tx.txPending(), 2);
  tx.publishTail(tx.prev(tx.head));
  t.equal(tx.txPending(), 0);
  t.equal(tx.space(), 3, 'all free again after the kernel consumed them');
  // a corrupted head (user side misbehaving) is counted, not trusted
  const errors = () => region.i32[(rx.offset + NR_ERRORS) >>> 2];
  t.equal(errors(), 0, 'no ring error before');
  region.i32[(rx.offset + NR_HEAD) >>> 2] = 99;
  t.equal(rx.rxFree(), 0, 'an out-of-range head leaves nothing free');
  t.equal(errors(), 1, 'and is counted in the ring\'s error word');
  t.equal(rx.rxFree(), 0);
  t.equal(errors(), 2, 'each time it is seen');
  t.equal(region.i32[(rx.offset + NR_TAIL) >>> 2], 3, 'the tail is not moved by it');
  const txErrors = () => region.i32[(tx.offset + NR_ERRORS) >>> 2];
  region.i32[(tx.offset + NR_HEAD) >>> 2] = -1;
  t.equal(tx.txPending(), 0, 'a negative TX head gives nothing pending');
  t.equal(txErrors(), 1, 'and is counted too');
});

t.test('a handle reattaches to the same bytes', async (t) => {
  const region = Region.create(1 << 16);
  const nif = NetmapIf.init(region, region.alloc(netmapIfBytes({ txSlots: 4, rxSlots: 4, bufSize: 64 })), { txSlots: 4, rxSlots: 4, bufSize: 64, name: 'x' });
  const again = fromTransferable(transferable(nif));
  t.equal(again.offset, nif.offset);
  t.equal(again.txRings[0].bufBase, nif.txRings[0].bufBase);
  const ring2 = fromTransferable(transferable(nif.rxRings[0]));
  ring2.setLen(0, 33);
  t.equal(nif.rxRings[0].len(0), 33);
  t.throws(() => fromTransferable({ sab: new SharedArrayBuffer(64), kind: 'ring', offset: 0 }));
});

t.test('copyFrame copies exactly len bytes, short and long', async (t) => {
  const region = Region.create(1 << 16);
  for (const len of [0, 1, 7, 8, 60, 255, 256, 257, 300, 511, 512, 513, 1514, 2048]) {
    for (let i = 0; i < 2048; i++) { region.u8[4096 + i] = (i * 7 + len) & 0xff; region.u8[8192 + i] = 0xee; }
    copyFrame(region.u8, region.f64, 8192, 4096, len);
    let ok = true;
    for (let i = 0; i < len; i++) if (region.u8[8192 + i] !== ((i * 7 + len) & 0xff)) ok = false;
    for (let i = len; i < 2048; i++) if (region.u8[8192 + i] !== 0xee) ok = false;
    t.ok(ok, `len ${len}: the frame and nothing after it`);
  }
});
