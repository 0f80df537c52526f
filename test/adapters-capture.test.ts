// Capture to pcap during generated traffic, read back by `tshark -r` (Ethernet/IPv4/UDP count
// and checksum status), and pcap replay as a traffic source. tshark is installed as root (a
// failed install fails the run); the tshark checks skip, with the reason, only on a machine that
// cannot install it.
import t from 'tap';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch, type Port } from '../src/index.js';
import { FrameBuilder } from '../src/frame.js';
import { PcapReader, PcapWriter } from '../src/pcap.js';
import { attachQemuStream, capture, connectStreamPeer, replayPcap } from '../src/adapters/index.js';
import { execFileP, waitFor } from './vm/interop-util.js';
import { needPackages, skipFor } from './helpers/interop.js';
import { onceWithin, until } from './helpers/wait.js';

const PEER = '02:00:00:00:00:01';
const GEN = '02:00:00:00:00:02';

const tsharkSkip = skipFor(t, 'tshark checks', needPackages(['tshark'], ['tshark']));

/** Frames pkt-gen style: IPv4/UDP with valid checksums, source addresses cycling over a range. */
function frames(n: number, srcMac: string, dstMac: string, len = 60): Uint8Array[] {
  const fb = new FrameBuilder({ length: len, srcMac, dstMac, src: '10.0.0.1-10.0.0.50:1234', dst: '10.1.0.1:5000' });
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    out.push(fb.toBytes());
    fb.next();
  }
  return out;
}

/** tshark's view of a capture: one [eth.type, ip.checksum.status, udp.checksum.status] per IPv4/UDP frame, and the total. */
async function tshark(file: string): Promise<{ total: number; udp: string[][] }> {
  const all = await execFileP('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.number'], { timeout: 60_000 });
  const { stdout } = await execFileP('tshark', [
    '-r', file, '-Y', 'eth && ip && udp', '-T', 'fields', '-e', 'eth.type', '-e', 'ip.checksum.status', '-e', 'udp.checksum.status',
    '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
  ], { timeout: 60_000, maxBuffer: 64 << 20 });
  const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');
  return { total: lines(all.stdout).length, udp: lines(stdout).map((l) => l.split('\t')) };
}

function allGood(rows: string[][]): boolean {
  return rows.every((r) => r[0] === '0x0800' && r[1] === '1' && r[2] === '1');
}

async function drain(p: Port, n: number, timeoutMs = 5000): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  await waitFor(() => {
    for (let f = p.recv(); f; f = p.recv()) got.push(f);
    return got.length >= n;
  }, timeoutMs);
  return got;
}

t.test('capture an adapter port, both directions, during generated traffic; tshark reads it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-cap-'));
  const sw = new Switch({ name: `cap1-${process.pid}` });
  const vm = await attachQemuStream(sw, 'vale0:vm', `unix:${join(dir, 'vm.sock')}`);
  const peer = await connectStreamPeer(`unix:${join(dir, 'vm.sock')}`);
  const gen = await sw.open('vale0:gen');
  t.teardown(async () => {
    await peer.close();
    await vm.close();
    await gen.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const N = 2000;
  const file = join(dir, 'vm.pcap');
  const cap = await capture(sw, 'vale0:vm', file, { count: 2 * N, durationMs: 20_000 });
  t.equal(cap.mode, 'adapter', 'an adapter port is captured at its adapter');

  // Peer → switch: N frames from the "VM" to gen (the bridge learns the peer's MAC), in bursts
  // that fit gen's RX ring: a full ring drops, as in VALE, and this test counts exact numbers.
  const B = 200;
  const inFrames = frames(N, PEER, GEN);
  let got = 0;
  for (let i = 0; i < N; i += B) {
    peer.sendBatch(inFrames.slice(i, i + B));
    got += (await drain(gen, B)).length;
  }
  t.equal(got, N, 'gen received the peer frames');
  // Switch → peer: N frames from gen to the peer, in batches like pkt-gen.
  const out = frames(N, GEN, PEER, 128);
  for (let i = 0; i < N; i += B) {
    gen.sendBatch(out.slice(i, i + B));
    await waitFor(() => peer.rxFrames >= i + B);
  }
  t.equal(peer.rxFrames, N, 'the peer received the gen frames');

  const r = await cap.done;
  t.equal(r.reason, 'count', 'stopped at the count');
  t.equal(r.frames, 2 * N, 'both directions captured');
  const recs = (await PcapReader.fromFile(file)).readAll();
  t.equal(recs.length, 2 * N, 'the file holds every frame');
  t.same(recs.filter((x) => x.data.length === 60).length, N, 'N frames of 60 bytes (in) and N of 128 (out)');

  await t.test('tshark reads the capture', { skip: tsharkSkip }, async (t) => {
    const ts = await tshark(file);
    t.equal(ts.total, 2 * N, 'tshark reads every frame');
    t.equal(ts.udp.length, 2 * N, 'every frame is Ethernet/IPv4/UDP');
    t.ok(allGood(ts.udp), 'IPv4 and UDP checksum status good on every frame');
  });
});

t.test('capture a bridge: mirror of every port, or (flood mode) what it floods', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-cap-'));
  const sw = new Switch({ name: `cap2-${process.pid}` });
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    await a.close();
    await b.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'bridge.pcap');
  const cap = await capture(sw, 'vale0', file, { durationMs: 20_000 });
  t.equal(cap.mode, 'mirror', 'a bridge is captured through a mirror port');
  t.match(cap.portName, /^vale0:cap\d+$/, 'through a capture port');
  // The fallback for a bridge core without mirror ports, forced here: a port that gets floods.
  const flood = await capture(sw, 'vale0', join(dir, 'flood.pcap'), { mode: 'flood', durationMs: 20_000 });
  t.equal(flood.mode, 'flood');
  const N = 1000;
  const bc = frames(N, '02:00:00:00:00:0a', 'ff:ff:ff:ff:ff:ff', 90);
  for (let i = 0; i < N; i += 128) {
    a.sendBatch(bc.slice(i, i + 128));
    await waitFor(() => b.pending >= 128 || i + 128 > N);
    await drain(b, 0, 0);
  }
  t.ok(await waitFor(() => cap.stats().frames >= N && flood.stats().frames >= N), 'both captures got the broadcasts');
  // Known unicast (a's MAC was learned from its broadcasts, b's from its frame): the mirror sees
  // both frames, the flood port neither.
  b.send(frames(1, '02:00:00:00:00:0b', '02:00:00:00:00:0a')[0]);
  a.send(frames(1, '02:00:00:00:00:0a', '02:00:00:00:00:0b')[0]);
  await drain(a, 1);
  await drain(b, 1);
  // A last broadcast, sent after both unicasts were delivered: each capture port reads its ring
  // in order, so once it has counted this one it has counted everything before it.
  a.send(frames(1, '02:00:00:00:00:0a', 'ff:ff:ff:ff:ff:ff')[0]);
  await drain(b, 1);
  const wantMirror = N + 3;
  t.ok(await waitFor(() => cap.stats().frames >= wantMirror && flood.stats().frames >= N + 1), 'both captures got the last broadcast');
  const r = await cap.stop();
  const rf = await flood.stop();
  t.equal(r.reason, 'stopped');
  t.equal(r.frames, wantMirror, 'each frame once');
  t.equal(rf.frames, N + 1, 'the flood port saw the broadcasts, not the known unicasts');
  t.same(sw.list()[0].ports.map((p) => p.name).sort(), ['vale0:a', 'vale0:b'], 'the capture ports are gone after stop');
  await t.test('tshark reads the capture', { skip: tsharkSkip }, async (t) => {
    const ts = await tshark(file);
    t.equal(ts.udp.length, wantMirror, 'tshark: every frame Ethernet/IPv4/UDP');
    t.ok(allGood(ts.udp), 'checksums good');
  });
});

t.test('capture a plain port through a mirror port: both directions', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-cap-'));
  const sw = new Switch({ name: `cap3-${process.pid}` });
  const x = await sw.open('vale0:x');
  const y = await sw.open('vale0:y');
  t.teardown(async () => {
    await x.close();
    await y.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'x.pcap');
  await t.rejects(capture(sw, 'vale0:x', file, { mode: 'adapter' }), { code: 'ERR_CAPTURE_UNSUPPORTED' }, 'a plain port has no adapter to tap');
  await t.rejects(capture(sw, 'vale0:x', file, { mode: 'flood' }), { code: 'ERR_CAPTURE_UNSUPPORTED' }, 'flood mode is for bridges');
  const N = 500;
  const cap = await capture(sw, 'vale0:x', file, { count: 2 * N, durationMs: 20_000 });
  t.equal(cap.mode, 'mirror', 'a plain port is captured through a mirror port');
  await t.rejects(capture(sw, 'vale0:x', join(dir, 'x2.pcap')), { code: 'ERR_CAPTURE_BUSY' }, 'a port has one mirror: a second capture is refused');
  await t.rejects(capture(sw, 'vale0', join(dir, 'all.pcap')), { code: 'ERR_CAPTURE_BUSY' }, 'so is a bridge capture that would take it');
  t.same(sw.list()[0].ports.map((p) => p.name).sort(), ['vale0:cap0', 'vale0:x', 'vale0:y'], 'the refused captures left no port behind');
  x.sendBatch(frames(N, '02:00:00:00:00:0c', 'ff:ff:ff:ff:ff:ff')); // y learns nothing yet: broadcast
  await drain(y, N);
  y.sendBatch(frames(N, '02:00:00:00:00:0d', '02:00:00:00:00:0c', 100));
  await drain(x, N);
  const r = await cap.done;
  t.equal(r.frames, 2 * N, 'sent and received frames of x captured');
  await t.test('tshark reads the capture', { skip: tsharkSkip }, async (t) => {
    const ts = await tshark(file);
    t.equal(ts.udp.length, 2 * N, 'tshark: every frame is Ethernet/IPv4/UDP');
    t.ok(allGood(ts.udp), 'checksums good');
  });
});

t.test('capture streams to a pipe: tshark -r - reads it live', { skip: tsharkSkip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-cap-'));
  const sw = new Switch({ name: `cap4-${process.pid}` });
  const vm = await attachQemuStream(sw, 'vale0:vm', `unix:${join(dir, 'vm.sock')}`);
  const peer = await connectStreamPeer(`unix:${join(dir, 'vm.sock')}`);
  t.teardown(async () => {
    await peer.close();
    await vm.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // Node gives a child a socket as stdin, which tshark refuses ("special file"): put a real pipe
  // in between, as a shell does for `vswitch capture -w - | tshark -r -`.
  const ts = spawn('sh', ['-c', 'cat | tshark -r - -T fields -e udp.srcport'], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  ts.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = onceWithin<[number | null]>(ts, 'exit', 60_000).then(([c]) => c);
  const cap = await capture(sw, 'vale0:vm', ts.stdin, { count: 50 });
  peer.sendBatch(frames(50, PEER, 'ff:ff:ff:ff:ff:ff'));
  const r = await cap.done;
  ts.stdin.end();
  t.equal(await exited, 0, 'tshark exits 0 (whole records only)');
  t.equal(r.frames, 50, 'capture wrote 50 frames');
  t.equal(out.trim().split('\n').length, 50, 'tshark decoded 50 frames from the pipe');
});

t.test('a pcap replayed as a traffic source arrives intact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-cap-'));
  const sw = new Switch({ name: `cap5-${process.pid}` });
  const src = await sw.open('vale0:src');
  const dst = await sw.open('vale0:dst');
  t.teardown(async () => {
    await src.close();
    await dst.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // A file with frames of every size class, plus one runt that must be skipped.
  const file = join(dir, 'in.pcap');
  const w = await PcapWriter.toFile(file);
  const want: Uint8Array[] = [];
  for (const len of [60, 64, 128, 512, 1000, 1514]) {
    for (const f of frames(100, '02:00:00:00:00:0e', 'ff:ff:ff:ff:ff:ff', len)) {
      w.writeFrame(f);
      want.push(f);
    }
  }
  w.writeFrame(new Uint8Array(10));
  await w.close();
  const res = await replayPcap(src, file);
  t.same(res.skipped, { undersize: 1, oversize: 0, truncated: 0 }, 'the runt is skipped and counted');
  t.equal(res.sent, want.length);
  const got = await drain(dst, want.length);
  t.equal(got.length, want.length, 'every frame arrived');
  t.ok(got.every((f, i) => Buffer.compare(f, want[i]) === 0), 'byte for byte, in order');
  // Looping replay with a count and a rate.
  const t0 = performance.now();
  const res2 = await replayPcap(src, await PcapReader.fromFile(file), { loop: true, count: 1000, ratePps: 20_000, batch: 100 });
  const ms = performance.now() - t0;
  t.equal(res2.sent, 1000);
  t.ok(ms >= 40, `rate limit respected (${ms.toFixed(0)} ms for 1000 frames at 20k/s)`);
  t.equal((await drain(dst, 1000)).length, 1000);
});

t.test('a sink that backs up: frames past maxBufferedBytes are dropped and counted, writing resumes once it drains', async (t) => {
  const sw = new Switch({ name: `cap6-${process.pid}` });
  const x = await sw.open('vale0:x');
  const y = await sw.open('vale0:y');
  t.teardown(async () => {
    await x.close();
    await y.close();
    await sw.close();
  });
  // A reader that takes the first chunk and then stops reading until told to go on: everything
  // written after it stays buffered in the Writable (its writableLength grows).
  const chunks: Buffer[] = [];
  let hold: (() => void) | null = null;
  let flowing = false;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      if (flowing) cb();
      else hold = cb;
    },
  });
  const LEN = 100;
  const REC = 16 + LEN; // pcap record header + frame
  const HDR = 24; // pcap global header
  const LIMIT = HDR + 10 * REC;
  const cap = await capture(sw, 'vale0:x', sink, { mode: 'mirror', maxBufferedBytes: LIMIT });
  t.equal(sink.writableLength, HDR, 'the global header is written (and held) first');
  // A frame is written while the sink holds at most LIMIT bytes: 10 fit exactly, the 11th is
  // written on top of them, every later one is dropped.
  const fits = Math.floor((LIMIT - HDR) / REC) + 1;
  const N = 300; // fewer than the capture port's ring holds: the only losses are the sink's
  const first = frames(N, '02:00:00:00:00:0c', 'ff:ff:ff:ff:ff:ff', LEN);
  t.equal(x.sendBatch(first), N, 'x sent them all');
  await drain(y, N);
  await until('the capture to see every mirrored frame', () => cap.stats().frames + cap.stats().dropped === N);
  t.same(cap.stats(), { mode: 'mirror', target: 'vale0:x', frames: fits, bytes: fits * LEN, dropped: N - fits, ringDropped: 0 },
    `${fits} written, ${N - fits} dropped while the sink was backed up`);
  t.equal(sink.writableLength, HDR + fits * REC, 'nothing written past the limit');

  // The reader catches up: the buffer drains and frames are written again.
  flowing = true;
  (hold as (() => void) | null)?.();
  await until('the sink to drain', () => sink.writableLength === 0);
  const M = 5;
  const later = frames(M, '02:00:00:00:00:0d', 'ff:ff:ff:ff:ff:ff', LEN);
  x.sendBatch(later);
  await drain(y, M);
  await until('the capture to write the later frames', () => cap.stats().frames === fits + M);
  const r = await cap.stop();
  t.same({ frames: r.frames, dropped: r.dropped, ringDropped: r.ringDropped, reason: r.reason },
    { frames: fits + M, dropped: N - fits, ringDropped: 0, reason: 'stopped' }, 'the final counts');
  const recs = PcapReader.fromBuffer(Buffer.concat(chunks)).readAll();
  t.equal(recs.length, fits + M, 'the stream holds exactly the written frames, as whole records');
  const want = [...first.slice(0, fits), ...later];
  t.ok(recs.every((rec, i) => Buffer.compare(rec.data, want[i]) === 0), 'the first frames before the limit, then the later ones, byte for byte');
  await t.rejects(capture(sw, 'vale0:y', sink, { maxBufferedBytes: -1 }), /maxBufferedBytes must be a number of bytes >= 0, got -1/, 'a negative limit is refused');
});

t.test('a capture port whose ring is full: the copies the bridge could not give it are counted as ringDropped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-cap-'));
  const sw = new Switch({ name: `cap7-${process.pid}` });
  const RX = 64;
  sw.createBridge('vale0', { rxSlots: RX, txSlots: RX });
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    await a.close();
    await b.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'ring.pcap');
  const cap = await capture(sw, 'vale0', file, { mode: 'mirror' });
  // Sent in one go, without yielding: the capture loop cannot read meanwhile, so the capture
  // port's ring fills and the bridge drops the rest of the copies (never a's traffic to b,
  // which is limited by b's own ring here).
  const N = 10 * (RX / 2);
  const all = frames(N, '02:00:00:00:00:0a', 'ff:ff:ff:ff:ff:ff', 80);
  let accepted = 0;
  for (let i = 0; i < N; i += RX / 2) accepted += a.sendBatch(all.slice(i, i + RX / 2));
  const sent = a.stats().txFrames;
  t.equal(sent, accepted, 'a sent what sendBatch accepted');
  await until('every copy written or counted as dropped', () => cap.stats().frames + cap.stats().ringDropped === sent);
  const s = cap.stats();
  t.ok(s.ringDropped > 0, `the capture port's ring overflowed (${s.ringDropped} copies dropped, ${s.frames} written)`);
  t.ok(s.frames < RX, `at most a ring's worth was captured (${s.frames} of ${RX} slots)`);
  const ac = a.stats();
  t.equal(s.frames, ac.mirrored, 'written = copies the bridge made of a\'s frames (a.mirrored)');
  t.equal(s.ringDropped, ac.mirrorDrops, 'ringDropped = copies the bridge could not make (a.mirrorDrops)');
  t.equal(s.dropped, 0, 'the file kept up: no sink drops');
  const r = await cap.stop();
  t.same({ frames: r.frames, ringDropped: r.ringDropped, dropped: r.dropped }, { frames: s.frames, ringDropped: s.ringDropped, dropped: 0 },
    'the result keeps the counts after the capture port is gone');
  const recs = (await PcapReader.fromFile(file)).readAll();
  t.equal(recs.length, r.frames, 'the file holds the written frames');
  t.ok(recs.every((rec, i) => Buffer.compare(rec.data, all[i]) === 0), 'the first frames a sent, in order: the ones that found room');
});
