/**
 * Security defaults.
 *
 * - `vswitch serve` opens no TCP or UDP socket of its own: its only listener is the Unix
 *   control socket (checked in /proc/<pid>/fd against /proc/net/{tcp,tcp6,udp,udp6,unix},
 *   after a self-check that the same lookup does see a TCP listener of this process). The
 *   socket's mode 0600 and its directory's 0700 are checked in test/cli-serve.test.ts.
 * - A short frame never carries stale bytes: through the public API, 1500-byte frames and then
 *   60-byte frames through the same RX slots show 60 bytes (RxBatch.length, frame(), recv());
 *   at the bridge level, for every length from 14 to the buffer size, the destination buffer
 *   gets exactly `len` bytes — its bytes past `len` are still what its owner left there, never
 *   bytes from the source buffer past the frame — on the fast path and on the 802.1Q paths that
 *   strip or insert a tag, and for mirror copies.
 */
import t from 'tap';
import { createServer } from 'node:net';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { Bridge, Forwarder } from '#bridge';
import { Switch } from '../src/index.js';
import { frame, recv, send } from './helpers/bridge-util.js';
import { runCli, startServe, tmpSocket } from './helpers/cli.js';

const linux = process.platform === 'linux';

/** Inodes of the sockets process `pid` has open. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** Entries of /proc/net/<table> whose inode is in `inodes`: local address and state. */
function inetSockets(table: string, inodes: Set<string>): { local: string; state: string }[] {
  let text: string;
  try {
    text = readFileSync(`/proc/net/${table}`, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').slice(1).filter((l) => l.trim()).map((l) => l.trim().split(/\s+/))
    .filter((f) => inodes.has(f[9])).map((f) => ({ local: f[1], state: f[3] }));
}

function unixPaths(inodes: Set<string>): string[] {
  return readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 7 && inodes.has(f[6]) && f[7]).map((f) => f[7]);
}

t.test('vswitch serve opens no TCP or UDP socket: the Unix control socket is its only listener', { skip: !linux && 'needs /proc' }, async (t) => {
  // Self-check: the lookup does find a TCP listener (this process's own).
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const mine = inetSockets('tcp', socketInodes(process.pid)).filter((s) => s.state === '0A');
  t.ok(mine.length >= 1, `self-check: this process's own TCP listener is seen (${mine.map((s) => s.local).join(', ')})`);
  srv.close();

  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket);
  // Make it do some work first: ports, a bridge, a short pkt-gen job through the daemon.
  for (const args of [['ctl', 'create', 'vale0:a'], ['ctl', 'create', 'vale0:b'], ['ctl', 'list']]) {
    const r = await runCli([...args, '--socket', socket]);
    t.equal(r.code, 0, `vswitch ${args.join(' ')}: ${r.stderr.trim()}`);
  }
  const pg = await runCli(['pkt-gen', '-i', 'vale0:c', '-f', 'tx', '-n', '1000', '--socket', socket], { timeoutMs: 30_000 });
  t.equal(pg.code, 0, `a pkt-gen job ran in the daemon: ${pg.stderr.trim()}`);
  const inodes = socketInodes(d.pid);
  const tcp = [...inetSockets('tcp', inodes), ...inetSockets('tcp6', inodes)];
  const udp = [...inetSockets('udp', inodes), ...inetSockets('udp6', inodes)];
  t.same(tcp, [], 'the daemon has no TCP socket, listening or not');
  t.same(udp, [], 'the daemon has no UDP socket');
  t.ok(unixPaths(inodes).includes(socket), `its Unix control socket ${socket} is among its sockets`);
  t.same(await d.stop(), { code: 0, signal: null });
});

t.test('public API: 60-byte frames after 1500-byte ones through the same slots show 60 bytes', async (t) => {
  const sw = new Switch({ name: 'relSec' });
  t.teardown(() => sw.close());
  sw.createBridge('valeS', { txSlots: 64, rxSlots: 64 });
  const a = await sw.open('valeS:a');
  const b = await sw.open('valeS:b');
  const A = '02:00:00:00:00:0a';
  const B = '02:00:00:00:00:0b';
  b.send(frame('ff:ff:ff:ff:ff:ff', B));
  a.recv();
  const slots = 64;
  // Fill every RX slot of b with a 1500-byte frame of 0xab, twice round the ring.
  const big = frame(B, A, new Array(1486).fill(0xab), 1500);
  for (let sent = 0; sent < 2 * slots; sent += 32) {
    t.equal(a.sendBatch(Array.from({ length: 32 }, () => big)), 32);
    const got = b.receive();
    if (got.count !== 32 || got.length(0) !== 1500) t.fail(`expected 32 frames of 1500 bytes, got ${got.count} of ${got.length(0)}`);
    b.release();
  }
  // Now 60-byte frames, sent from TX buffers whose bytes past 60 are a marker (0x5a).
  const bad: string[] = [];
  for (let round = 0; round < 4; round++) {
    const tx = a.txReserve(16);
    for (let i = 0; i < tx.count; i++) {
      const off = tx.offset(i);
      tx.buffer.fill(0x5a, off, off + tx.bufSize);
      tx.buffer.set(frame(B, A, [round, i, 0x11, 0x22], 60), off);
      tx.setLength(i, 60);
    }
    t.equal(a.txCommit(tx.count), 16);
    const got = b.receive();
    for (let i = 0; i < got.count; i++) {
      const f = got.frame(i);
      const off = got.offset(i);
      if (got.length(i) !== 60 || f.length !== 60) bad.push(`round ${round} frame ${i}: length ${got.length(i)}, view ${f.length}`);
      if (f[14] !== round || f[15] !== i || f[16] !== 0x11) bad.push(`round ${round} frame ${i}: wrong content`);
      // Past the frame: the old 1500-byte frame's bytes (b's own), never the sender's marker.
      for (let k = 60; k < 1500; k++) {
        if (got.buffer[off + k] !== 0xab) { bad.push(`round ${round} frame ${i}: byte ${k} of the buffer is ${got.buffer[off + k]}`); break; }
      }
    }
    b.release();
  }
  t.same(bad, [], 'every 60-byte frame is 60 bytes in RxBatch.length and frame(), and nothing past it came from the sender');
  const tx = a.txReserve(1);
  tx.buffer.fill(0x5a, tx.offset(0), tx.offset(0) + tx.bufSize);
  tx.buffer.set(frame(B, A, [9], 60), tx.offset(0));
  tx.setLength(0, 60);
  a.txCommit(1);
  const copy = b.recv();
  t.equal(copy?.length, 60, 'recv() returns a 60-byte copy');
  await a.close();
  await b.close();
});

/**
 * Sends one frame of `len` bytes from port `src` (its TX buffer past `len` filled with 0x5a),
 * after the destination's user poisoned every RX buffer with 0xc3; returns what the destination
 * port(s) got: length and the offset of the first byte past it that is not 0xc3 (-1: none).
 */
function oneFrame(b: Bridge, fw: Forwarder, src: number, dsts: number[], bytes: Uint8Array, len: number): { len: number; stale: number; ok: boolean }[] {
  const u8 = b.region.u8;
  for (const p of dsts) {
    const rx = b.rxRing(p);
    for (let j = 0; j < rx.numSlots; j++) u8.fill(0xc3, rx.slotBuf(j), rx.slotBuf(j) + b.bufSize);
  }
  const tx = b.txRing(src);
  const h = tx.head;
  const off = tx.slotBuf(h);
  u8.fill(0x5a, off, off + b.bufSize);
  u8.set(bytes.subarray(0, len), off);
  tx.setLen(h, len);
  tx.advance(1);
  fw.txsync(src);
  return dsts.map((p) => {
    const rx = b.rxRing(p);
    if (rx.space() !== 1) return { len: -1, stale: -1, ok: false };
    const j = rx.head;
    const l = rx.len(j);
    const at = rx.slotBuf(j);
    let stale = -1;
    for (let k = l; k < b.bufSize; k++) if (u8[at + k] !== 0xc3) { stale = k; break; }
    rx.advance(1);
    return { len: l, stale, ok: true };
  });
}

t.test('bridge: exactly len bytes are copied, for every length, on every copy path', async (t) => {
  const bufSize = 2048;
  const b = Bridge.create('valeX', { maxPorts: 8, txSlots: 8, rxSlots: 8, bufSize });
  const fw = new Forwarder(b, 0);
  const pa = b.addPort('valeX:a'); // VLAN-unaware pair first
  const pb = b.addPort('valeX:b');
  const A = '02:00:00:00:00:0a';
  const B = '02:00:00:00:00:0b';
  send(b, fw, pb, [frame('ff:ff:ff:ff:ff:ff', B)]);
  recv(b, pa);
  const payload = new Uint8Array(bufSize);
  payload.set(frame(B, A, [], 14));
  for (let i = 14; i < bufSize; i++) payload[i] = (i * 7 + 1) & 0xff;
  const bad: string[] = [];
  for (let len = 14; len <= bufSize; len++) {
    const [r] = oneFrame(b, fw, pa, [pb], payload, len);
    if (!r.ok || r.len !== len || r.stale >= 0) bad.push(`fast path, len ${len}: got len ${r.len}, byte ${r.stale} past it changed`);
    if (bad.length > 10) break;
  }
  t.same(bad, [], `fast path: lengths 14..${bufSize}, the destination gets exactly len bytes`);

  // 802.1Q: a (access 10) → t (trunk carrying 10): a tag is inserted (len + 4);
  // t → a: the tag is stripped (len − 4). A mirror m gets a copy of what a sends, as it is.
  b.setVlan(pa, { mode: 'access', vlan: 10 });
  b.setVlan(pb, { mode: 'none' });
  const pt = b.addPort('valeX:t');
  b.setVlan(pt, { mode: 'trunk', vlans: [10] });
  const pm = b.addPort('valeX:m');
  const T = '02:00:00:00:00:0c';
  const tagged = (dst: string, src: string) => {
    const f = frame(dst, src, [], 18);
    f[12] = 0x81; f[13] = 0x00; f[14] = 0x00; f[15] = 10; f[16] = 0x88; f[17] = 0xb5;
    return f;
  };
  send(b, fw, pt, [tagged('ff:ff:ff:ff:ff:ff', T)]);
  send(b, fw, pa, [frame('ff:ff:ff:ff:ff:ff', A)]);
  for (const p of [pa, pb, pt, pm]) recv(b, p);
  b.setMirror(pm, { tx: [pa] });
  const toT = new Uint8Array(payload);
  toT.set(frame(T, A, [], 14));
  const empties: number[] = [];
  for (let len = 14; len <= bufSize; len++) {
    const [rt, rm] = oneFrame(b, fw, pa, [pt, pm], toT, len);
    if (len + 4 > bufSize) {
      // Does not fit with its tag: the trunk gets an empty slot, nothing copied into it.
      if (!rt.ok || rt.len !== 0 || rt.stale >= 0) bad.push(`tag insert, len ${len}: got len ${rt.len}, byte ${rt.stale} changed`);
      else empties.push(len);
    } else if (!rt.ok || rt.len !== len + 4 || rt.stale >= 0) {
      bad.push(`tag insert, len ${len}: got len ${rt.len}, byte ${rt.stale} past it changed`);
    }
    if (!rm.ok || rm.len !== len || rm.stale >= 0) bad.push(`mirror, len ${len}: got len ${rm.len}, byte ${rm.stale} past it changed`);
    if (bad.length > 10) break;
  }
  const toA = new Uint8Array(payload);
  toA.set(tagged(A, T));
  for (let len = 18; len <= bufSize; len++) {
    const [ra] = oneFrame(b, fw, pt, [pa], toA, len);
    if (!ra.ok || ra.len !== len - 4 || ra.stale >= 0) bad.push(`tag strip, len ${len}: got len ${ra.len}, byte ${ra.stale} past it changed`);
    if (bad.length > 10) break;
  }
  t.same(bad, [], `802.1Q insert and strip, and mirror copies, lengths 14..${bufSize}: exactly the frame's bytes, nothing past them`);
  t.same(empties, [bufSize - 3, bufSize - 2, bufSize - 1, bufSize], 'frames that do not fit with a tag arrive as empty slots with nothing copied');
});
