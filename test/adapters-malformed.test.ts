// Malformed input on every adapter is counted by reason and dropped, and the port keeps
// forwarding good frames afterwards. The outside peers are played by plain Node sockets on
// loopback (a net.Socket for QEMU stream, UDP sockets for QEMU dgram and VXLAN).
import t from 'tap';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, type Socket } from 'node:net';
import { onceWithin } from './helpers/wait.js';

/** events.once with a deadline: a test never hangs on an event that does not come. */
const once = (e: Parameters<typeof onceWithin>[0], ev: string, ms = 10_000) => onceWithin(e, ev, ms);
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch, type Port } from '../src/index.js';
import {
  StreamDecoder, attachQemuDgram, attachQemuStream, attachVxlan, encodeStreamFrames, vxlanEncap, vxlanHeader, type DropReason,
} from '../src/adapters/index.js';
import { ethFrame, waitFor } from './vm/interop-util.js';

const PEER = '02:00:00:00:00:01';
const B = '02:00:00:00:00:0b';
const BCAST = 'ff:ff:ff:ff:ff:ff';

/** Waits until port b has received a frame with `tag`; returns it. */
async function expectAt(b: Port, tag: number, timeoutMs = 3000): Promise<Uint8Array | null> {
  let got: Uint8Array | null = null;
  await waitFor(() => {
    for (let f = b.recv(); f; f = b.recv()) {
      if (f[14] === (tag & 0xff) && f[15] === ((tag >>> 8) & 0xff)) got = f;
    }
    return got !== null;
  }, timeoutMs);
  return got;
}

async function udp(host = '127.0.0.1'): Promise<UdpSocket> {
  const s = createSocket('udp4');
  s.bind(0, host);
  await onceWithin(s, 'listening', 30_000);
  return s;
}

function send(s: UdpSocket, data: Uint8Array, port: number, host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => s.send(data, port, host, (e) => (e ? reject(e) : resolve())));
}

async function connect(path: string): Promise<Socket> {
  const c = createConnection({ path });
  await onceWithin(c, 'connect', 30_000);
  return c;
}

t.test('StreamDecoder: every split point, every bad length', async (t) => {
  const frames = [ethFrame(B, PEER, 1, 60), ethFrame(B, PEER, 2, 1514), ethFrame(B, PEER, 3, 14)];
  const wire = encodeStreamFrames(frames);
  // Feed the stream cut at every position into two chunks, and byte by byte.
  for (const cut of [...Array(wire.length + 1).keys()].filter((c) => c < 80 || c > wire.length - 80 || c % 97 === 0)) {
    const out: Uint8Array[] = [];
    const d = new StreamDecoder({ mtu: 2048, onFrame: (b, o, l) => out.push(b.slice(o, o + l)), onDrop: () => t.fail('no drop expected') });
    d.feed(wire.subarray(0, cut));
    d.feed(wire.subarray(cut));
    if (out.length !== 3 || out.some((f, i) => Buffer.compare(f, frames[i]) !== 0)) t.fail(`split at ${cut} broke the frames`);
  }
  const out: Uint8Array[] = [];
  const d1 = new StreamDecoder({ mtu: 2048, onFrame: (b, o, l) => out.push(b.slice(o, o + l)), onDrop: () => {} });
  for (let i = 0; i < wire.length; i++) d1.feed(wire.subarray(i, i + 1));
  t.same(out.map((f) => f.length), [60, 1514, 14], 'one byte at a time');
  t.ok(d1.idle);

  const drops: string[] = [];
  const good: number[] = [];
  const d = new StreamDecoder({ mtu: 2048, onFrame: (_b, _o, l) => good.push(l), onDrop: (r, l) => drops.push(`${r}:${l}`) });
  const bad = Buffer.concat([
    Buffer.from([0, 0, 0, 0]), // zero-length frame
    Buffer.from([0, 0, 0, 5, 1, 2, 3, 4, 5]), // 5 bytes: under an Ethernet header
    encodeStreamFrames([new Uint8Array(3000)]), // over the MTU, skipped in sync
    encodeStreamFrames([frames[0]]),
  ]);
  t.equal(d.feed(bad), true);
  t.same(drops, ['undersize:0', 'undersize:5', 'oversize:3000']);
  t.same(good, [60], 'the good frame after them is decoded');
  t.equal(d.feed(Buffer.from([0xff, 0xff, 0xff, 0xff])), false, 'an impossible length loses the framing');
  t.ok(d.desynced);
  t.equal(d.feed(encodeStreamFrames([frames[0]])), false, 'nothing is decoded after a desync');
  d.reset();
  d.feed(Buffer.from([0, 0]));
  d.end();
  t.same(drops.slice(3), ['desync:4294967295', 'truncated:2'], 'a stream that ends inside a prefix is truncated');
});

t.test('QEMU stream: truncated prefix, oversize, zero-length, desync — counted; the port keeps working', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-mal-'));
  const sw = new Switch({ name: `mal-stream-${process.pid}` });
  const path = join(dir, 'vm.sock');
  const a = await attachQemuStream(sw, 'vale0:vm', `unix:${path}`);
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    await a.close();
    await b.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const drops = () => a.stats().drops;
  const check = async (c: Socket, tag: number, what: string) => {
    c.write(encodeStreamFrames([ethFrame(BCAST, PEER, tag)]));
    t.ok(await expectAt(b, tag), `good frame after ${what} arrives`);
  };

  let c = await connect(path);
  await waitFor(() => a.stats().connected === true);
  await check(c, 1, 'connect');

  c.write(Buffer.from([0, 0, 0, 0]));
  await check(c, 2, 'a zero-length frame');
  t.equal(drops().undersize, 1, 'zero-length counted as undersize');

  c.write(encodeStreamFrames([ethFrame(BCAST, PEER, 99, 9000)]));
  await check(c, 3, 'an oversize frame');
  t.equal(drops().oversize, 1, 'oversize counted');

  c.write(Buffer.from([0, 0, 0, 6, 1, 2, 3, 4, 5, 6]));
  await check(c, 4, 'a 6-byte frame');
  t.equal(drops().undersize, 2, 'undersize counted');

  // A frame split over many writes is reassembled.
  const wire = encodeStreamFrames([ethFrame(BCAST, PEER, 5, 1000)]);
  for (let i = 0; i < wire.length; i += 97) {
    c.write(wire.subarray(i, i + 97));
    await new Promise((r) => setImmediate(r));
  }
  t.ok(await expectAt(b, 5), 'a frame written in 97-byte pieces arrives');

  // Switch → peer direction.
  const rx: Uint8Array[] = [];
  const dec = new StreamDecoder({ mtu: 65535, onFrame: (x, o, l) => rx.push(x.slice(o, o + l)), onDrop: () => {} });
  c.on('data', (d: Buffer) => dec.feed(d));
  b.send(ethFrame(PEER, B, 6));
  t.ok(await waitFor(() => rx.some((f) => f[14] === 6)), 'a frame from the switch reaches the peer, framed');

  // Truncated length prefix: two bytes, then the peer goes away.
  c.end(Buffer.from([0, 0]));
  await onceWithin(c, 'close', 30_000);
  t.ok(await waitFor(() => a.stats().disconnects === 1), 'disconnect seen');
  t.equal(drops().truncated, 1, 'truncated prefix counted');
  b.send(ethFrame(BCAST, B, 7));
  t.ok(await waitFor(() => drops().noPeer === 1), 'frames while no peer is connected are counted (noPeer)');

  // QEMU reconnects: same port.
  c = await connect(path);
  await waitFor(() => a.stats().connected === true);
  await check(c, 8, 'a reconnect');

  // Truncated frame: prefix says 60, 30 bytes come, the peer goes away.
  c.end(Buffer.concat([Buffer.from([0, 0, 0, 60]), Buffer.alloc(30)]));
  t.ok(await waitFor(() => drops().truncated === 2), 'truncated frame counted');

  // A length prefix that cannot be resynchronised: the adapter drops the connection.
  c = await connect(path);
  await waitFor(() => a.stats().connected === true);
  c.on('error', () => {});
  c.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]));
  await onceWithin(c, 'close', 30_000);
  t.equal(drops().desync, 1, 'desync counted');
  t.equal(a.stats().disconnects, 3, 'the connection was dropped');
  c = await connect(path);
  await waitFor(() => a.stats().connected === true);
  await check(c, 9, 'a desync and reconnect');

  // A second connection while the first is live is refused and counted: it must not take the
  // VM's traffic. The first keeps working.
  const c2 = await connect(path);
  c2.on('error', () => {});
  await new Promise((r) => (c2.destroyed ? r(null) : c2.once('close', r)));
  t.equal(a.stats().refused, 1, 'the second connection was refused and counted');
  t.equal(a.stats().connections, 4, 'and not accepted');
  await check(c, 10, 'a refused second connection, on the first');
  c.destroy();
  const s = a.stats();
  t.same(
    Object.fromEntries(Object.entries(s.drops).filter(([, v]) => v > 0)),
    { truncated: 2, oversize: 1, undersize: 2, desync: 1, noPeer: 1 },
    'every drop counted once, by reason',
  );
  t.equal(s.rxFrames, 8, 'the 8 good frames from the peer counted');
});

t.test('QEMU dgram: garbage datagrams counted; the port keeps working', async (t) => {
  const sw = new Switch({ name: `mal-dgram-${process.pid}` });
  const peer = await udp();
  const stranger = await udp();
  const a = await attachQemuDgram(sw, 'vale0:vm', { local: '127.0.0.1:0', remote: `127.0.0.1:${peer.address().port}` });
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    peer.close();
    stranger.close();
    await a.close();
    await b.close();
    await sw.close();
  });
  const port = Number(a.local.split(':')[1]);
  const drops = () => a.stats().drops;

  await send(peer, ethFrame(BCAST, PEER, 1), port);
  t.ok(await expectAt(b, 1), 'good datagram arrives');
  await send(peer, Buffer.from([1, 2, 3, 4, 5]), port);
  await send(peer, ethFrame(BCAST, PEER, 2, 3000), port);
  await send(stranger, ethFrame(BCAST, PEER, 3), port);
  await send(peer, ethFrame(BCAST, PEER, 4), port);
  t.ok(await expectAt(b, 4), 'good datagram after the garbage arrives');
  t.equal(drops().undersize, 1, '5-byte datagram: undersize');
  t.equal(drops().oversize, 1, '3000-byte datagram: oversize');
  t.equal(drops().unknownSource, 1, 'datagram from another port: unknownSource');
  t.equal(a.stats().rxFrames, 2);

  const got: Buffer[] = [];
  peer.on('message', (m) => got.push(m));
  b.send(ethFrame(PEER, B, 5, 1514));
  t.ok(await waitFor(() => got.length === 1), 'the switch sends to the configured remote');
  t.equal(got[0].length, 1514, 'one whole frame per datagram');
  t.equal(a.stats().txFrames, 1);
});

t.test('VXLAN: short header, bad flags, wrong VNI, bad inner length, unknown source — counted; the port keeps working', async (t) => {
  const sw = new Switch({ name: `mal-vxlan-${process.pid}` });
  const peer = await udp('127.0.0.1');
  const stranger = await udp('127.0.0.2');
  const a = await attachVxlan(sw, 'vale0:up', { local: '127.0.0.1:0', remotes: [`127.0.0.1:${peer.address().port}`], vni: 42 });
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    peer.close();
    stranger.close();
    await a.close();
    await b.close();
    await sw.close();
  });
  const port = Number(a.local.split(':')[1]);
  const drops = () => a.stats().drops;
  const only = (): Partial<Record<DropReason, number>> => Object.fromEntries(Object.entries(drops()).filter(([, v]) => v > 0));

  await send(peer, vxlanEncap(42, ethFrame(BCAST, PEER, 1)), port);
  t.ok(await expectAt(b, 1), 'good VXLAN datagram arrives');
  await send(peer, Buffer.from([0x08, 0, 0, 0, 0]), port); // 5 bytes: short header
  const noI = vxlanEncap(42, ethFrame(BCAST, PEER, 2));
  noI[0] = 0x00;
  await send(peer, noI, port); // I flag clear
  await send(peer, vxlanEncap(43, ethFrame(BCAST, PEER, 3)), port); // another VNI
  await send(peer, Buffer.concat([vxlanHeader(42), Buffer.alloc(10)]), port); // inner frame of 10 bytes
  await send(peer, vxlanEncap(42, ethFrame(BCAST, PEER, 4, 3000)), port); // inner over the MTU
  await send(stranger, vxlanEncap(42, ethFrame(BCAST, PEER, 5)), port); // not a configured remote
  const reserved = vxlanEncap(42, ethFrame(BCAST, PEER, 6));
  reserved[0] = 0x0c; reserved[3] = 0xff; reserved[7] = 0xff; // reserved bits: ignored on receipt (RFC 7348)
  await send(peer, reserved, port);
  t.ok(await expectAt(b, 6), 'good datagram (reserved bits set) after the garbage arrives');
  t.same(only(), { truncated: 1, badHeader: 1, wrongVni: 1, undersize: 1, oversize: 1, unknownSource: 1 }, 'each counted by reason');
  t.equal(a.stats().rxFrames, 2);

  const got: Buffer[] = [];
  peer.on('message', (m) => got.push(m));
  b.send(ethFrame(PEER, B, 7));
  t.ok(await waitFor(() => got.length === 1), 'the switch encapsulates towards the remote');
  t.same([...got[0].subarray(0, 8)], [0x08, 0, 0, 0, 0, 0, 42, 0], 'VXLAN header: I flag, VNI 42, reserved zero');
  t.equal(got[0][8 + 14], 7, 'inner frame intact');
});

t.test('bad arguments are refused with messages that say what to do', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-arg-'));
  const sw = new Switch({ name: `mal-args-${process.pid}` });
  t.teardown(async () => {
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await t.rejects(attachQemuStream(sw, 'vale0:a', 'udp:1.2.3.4:5'), { code: 'ERR_BAD_ARG', message: /unix:\/path.*tcp:127\.0\.0\.1:PORT/ });
  await t.rejects(attachQemuStream(sw, 'vale0:a', 'tcp:localhost:5600'), { code: 'ERR_BAD_ARG', message: /host names are not accepted/ });
  const file = join(dir, 'plain');
  rmSync(file, { force: true });
  writeFileSync(file, 'x');
  await t.rejects(attachQemuStream(sw, 'vale0:a', `unix:${file}`), { message: /exists and is not a socket/ });
  const live = await attachQemuStream(sw, 'vale0:a', `unix:${join(dir, 'a.sock')}`);
  await t.rejects(attachQemuStream(sw, 'vale0:b', `unix:${join(dir, 'a.sock')}`), { message: /another program accepts connections/ });
  await t.rejects(attachQemuStream(sw, 'vale0:a', `unix:${join(dir, 'other.sock')}`), { code: 'ERR_PORT_BUSY' }, 'one adapter per port');
  await live.close();
  // A stale socket file (its server died without removing it) is replaced.
  execFileSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(join(dir, 's.sock'))},()=>process.exit(0))`]);
  t.ok(lstatSync(join(dir, 's.sock')).isSocket(), 'a dead server left its socket file');
  const st = await attachQemuStream(sw, 'vale0:s', `unix:${join(dir, 's.sock')}`);
  t.equal(st.local, `unix:${join(dir, 's.sock')}`, 'a stale socket file is replaced');
  await st.close();
  await t.rejects(attachVxlan(sw, 'vale0:v', { local: '127.0.0.1:0', remotes: ['127.0.0.1:4789'], vni: 1 << 24 }), { message: /VNI must be an integer 0\.\.16777215/ });
  await t.rejects(attachVxlan(sw, 'vale0:v', { local: '127.0.0.1:0', remotes: [], vni: 1 }), { message: /at least one remote/ });
  await t.rejects(attachVxlan(sw, 'vale0:v', { local: '127.0.0.1:0', remotes: ['[::1]:4789'], vni: 1 }), { message: /same IP family/ });
  await t.rejects(attachQemuDgram(sw, 'vale0:d', { local: '127.0.0.1:0', remote: '127.0.0.1:0' }), { message: /port 0 is not a destination/ });
  t.same(sw.list().flatMap((b) => b.ports.map((p) => p.name)), [], 'failed attaches leave no port behind');
});
