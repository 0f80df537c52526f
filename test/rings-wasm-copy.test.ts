// Regions as WebAssembly memories: Region.copy is memory.copy there, in every thread that gets
// the region as its Memory (Region.shareable), and copyFrame everywhere else.
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { Region, transferable, fromTransferable, isWasmMemory } from 'shared-memory-ring';
import { Switch } from 'vswitch';

const LENS = [0, 1, 7, 8, 12, 60, 64, 255, 256, 257, 511, 512, 513, 1514, 2048];

/** Copies a pattern of each length with region.copy; true if exactly `len` bytes changed each time. */
function copiesExactly(region: Region, src: number, dst: number): string[] {
  const bad: string[] = [];
  for (const len of LENS) {
    for (let i = 0; i < 2048 + 64; i++) { region.u8[src + i] = (i * 7 + len + 1) & 0xff; region.u8[dst + i] = 0xee; }
    region.copy(dst, src, len);
    for (let i = 0; i < len; i++) if (region.u8[dst + i] !== ((i * 7 + len + 1) & 0xff)) { bad.push(`len ${len}: byte ${i}`); break; }
    for (let i = len; i < 2048 + 64; i++) if (region.u8[dst + i] !== 0xee) { bad.push(`len ${len}: wrote byte ${i} past the frame`); break; }
  }
  return bad;
}

t.test('a region of whole 64 KiB pages is a WebAssembly memory and copies exactly len bytes', async (t) => {
  const r = Region.create(4 * 65536);
  t.ok(isWasmMemory(r.memory), 'backed by a WebAssembly.Memory');
  t.equal(r.sab, r.memory!.buffer, 'sab is the memory\'s buffer');
  t.equal(r.shareable, r.memory, 'handed to other threads as the Memory');
  t.same(copiesExactly(r, 8192, 65536 + 8), [], 'memory.copy: the frame and nothing after it, every length');
  r.u8.fill(0x5a, r.byteLength - 8);
  t.throws(() => r.copy(r.byteLength - 8, 0, 64), { name: 'RuntimeError' }, 'a copy past the end throws');
  t.same([...r.u8.subarray(r.byteLength - 8)], new Array(8).fill(0x5a), 'before writing a byte');
});

t.test('other sizes, a buffer-only attach and VSWITCH_COPY=js copy in JavaScript', async (t) => {
  const small = Region.create(8192 + 4096);
  t.equal(small.memory, undefined, 'not whole pages: a plain SharedArrayBuffer');
  t.same(copiesExactly(small, 64, 4096 + 8), [], 'copyFrame path copies exactly');
  const big = Region.create(2 * 65536);
  const viaSab = Region.attach(big.sab);
  t.equal(viaSab.memory, undefined, 'attached from the buffer alone: no Memory');
  t.same(copiesExactly(viaSab, 8192, 65536), [], 'and still copies exactly (copyFrame)');
  t.ok(isWasmMemory(Region.attach(big.shareable).memory), 'attached from shareable: the Memory again');
  process.env.VSWITCH_COPY = 'js';
  try {
    t.equal(Region.create(2 * 65536).memory, undefined, 'VSWITCH_COPY=js: a plain SharedArrayBuffer');
  } finally {
    delete process.env.VSWITCH_COPY;
  }
});

t.test('a Worker that attaches by handle copies with memory.copy into the same bytes', async (t) => {
  const r = Region.create(2 * 65536);
  const h = transferable(r);
  t.ok(isWasmMemory(h.sab), 'the handle carries the Memory');
  for (let i = 0; i < 1514; i++) r.u8[4096 + i] = (i * 13) & 0xff;
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    import('shared-memory-ring').then(({ fromTransferable, isWasmMemory }) => {
      const r = fromTransferable(workerData);
      r.copy(65536, 4096, 1514);
      parentPort.postMessage(isWasmMemory(r.memory));
    });`, { eval: true, workerData: h });
  const wasm = await new Promise((ok, ko) => { w.once('message', ok); w.once('error', ko); });
  await w.terminate();
  t.equal(wasm, true, 'the Worker\'s region is a WebAssembly memory too');
  let same = true;
  for (let i = 0; i < 1514; i++) if (r.u8[65536 + i] !== ((i * 13) & 0xff)) same = false;
  t.ok(same, 'the main thread sees the Worker\'s copy');
  t.equal(r.u8[65536 + 1514], 0, 'and nothing past it');
  t.equal(fromTransferable({ sab: r.sab, kind: 'region', offset: 0 }).memory, undefined, 'a handle with the buffer only still attaches');
});

t.test('a switch hands its bridges to Workers as WebAssembly memories, and frames cross intact', async (t) => {
  const sw = new Switch({ name: `wasm-copy-${process.pid}` });
  t.teardown(() => sw.close());
  const reply = sw.openFor(99, 'valew:a');
  t.ok(isWasmMemory(reply.sab), 'what a Worker gets for an open is the Memory');
  sw.closeFor(99, 'valew:a', reply.gen);
  const a = await sw.open('valew:a');
  const b = await sw.open('valew:b');
  const frame = (src: number, dst: number, len: number) => {
    const f = new Uint8Array(len);
    for (let i = 12; i < len; i++) f[i] = (i * 31 + len) & 0xff;
    f.set([2, 0, 0, 0, 0, dst, 2, 0, 0, 0, 0, src], 0);
    return f;
  };
  b.send(frame(2, 1, 60)); // the bridge learns b
  a.receive();
  a.release();
  for (const len of [60, 61, 512, 1514]) {
    const f = frame(1, 2, len);
    a.send(f);
    const got = b.recv();
    t.same(got, f, `${len}-byte frame arrives byte for byte`);
  }
  // Echo with TxBatch.copyFrom: b sends back what it receives, a gets the same bytes.
  const sent = [frame(1, 2, 60), frame(1, 2, 1514)];
  a.sendBatch(sent);
  const rx = b.receive();
  t.equal(rx.count, 2, 'b has both frames');
  const tx = b.txReserve(rx.count);
  const lens = [tx.copyFrom(0, rx, 1), tx.copyFrom(1, rx, 0)];
  t.same(lens, [1514, 60], 'copyFrom answers the lengths');
  for (let i = 0; i < 2; i++) tx.buffer.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2], tx.offset(i)); // back to a
  b.txCommit(2);
  b.release();
  const back = [a.recv(), a.recv()];
  t.same(back.map((f) => f?.subarray(12)), [sent[1].subarray(12), sent[0].subarray(12)], 'a gets both payloads back, in the order b sent them');
});
