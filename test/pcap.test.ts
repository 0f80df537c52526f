import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PcapError, PcapReader, PcapWriter } from '../src/pcap.js';
import { FrameBuilder, formatIp, setSeq } from '../src/frame.js';
import { needPackages, skipFor } from './helpers/interop.js';

/** A sink that keeps every write separately, to check "one write per record". */
class ArraySink {
  chunks: Uint8Array[] = [];
  write(c: Uint8Array): boolean {
    this.chunks.push(c);
    return true;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(Buffer.concat(this.chunks));
  }
}

/** Deterministic frame contents: byte i of frame n is (n * 31 + i * 7) & 0xff. */
function pattern(n: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (n * 31 + i * 7) & 0xff;
  return f;
}

/** Builds a pcap by hand in either byte order, independently of PcapWriter. */
function handPcap(opts: { bigEndian: boolean; nano?: boolean; snaplen?: number; linktype?: number; records: { sec: number; frac: number; data: Uint8Array; orig?: number }[] }): Uint8Array {
  const le = !opts.bigEndian;
  const size = 24 + opts.records.reduce((a, r) => a + 16 + r.data.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, le);
  v.setUint16(4, 2, le);
  v.setUint16(6, 4, le);
  v.setUint32(16, opts.snaplen ?? 65535, le);
  v.setUint32(20, opts.linktype ?? 1, le);
  let off = 24;
  for (const r of opts.records) {
    v.setUint32(off, r.sec, le);
    v.setUint32(off + 4, r.frac, le);
    v.setUint32(off + 8, r.data.length, le);
    v.setUint32(off + 12, r.orig ?? r.data.length, le);
    out.set(r.data, off + 16);
    off += 16 + r.data.length;
  }
  return out;
}

t.test('round trip through a buffer sink: bytes, timestamps, one write per record', async (t) => {
  const sink = new ArraySink();
  const w = new PcapWriter(sink);
  t.equal(sink.chunks.length, 1, 'global header written at construction');
  const h = new DataView(sink.chunks[0].buffer, sink.chunks[0].byteOffset, 24);
  t.equal(sink.chunks[0].length, 24);
  t.same([...sink.chunks[0].subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1], 'magic written little-endian');
  t.equal(h.getUint16(4, true), 2);
  t.equal(h.getUint16(6, true), 4);
  t.equal(h.getUint32(8, true), 0, 'thiszone');
  t.equal(h.getUint32(12, true), 0, 'sigfigs');
  t.equal(h.getUint32(16, true), 65535, 'snaplen');
  t.equal(h.getUint32(20, true), 1, 'linktype Ethernet');

  const sizes = [60, 0, 1, 14, 42, 61, 64, 1514, 9000, 65535];
  const base = 1_700_000_000_000;
  const stamps: { ms: number; sec: number; usec: number }[] = [];
  const sent: Uint8Array[] = [];
  let origBytes = 0;
  for (let n = 0; n < 40; n++) {
    const len = sizes[n % sizes.length];
    const f = pattern(n, len);
    // exact microsecond values; the last ones exercise rounding up into the next second
    const ms = n < 38 ? base + n * 1234.567 : base + 999.9996 + n * 1000;
    const sec = Math.floor(ms / 1000);
    let usec = Math.round((ms - sec * 1000) * 1000);
    stamps.push(usec >= 1e6 ? { ms, sec: sec + 1, usec: usec - 1e6 } : { ms, sec, usec });
    sent.push(f.slice());
    t.equal(w.writeFrame(f, ms), true);
    f.fill(0xee); // the writer must have copied: the caller reuses its buffer at once
    t.equal(sink.chunks.length, n + 2, `record ${n + 1}: one write`);
    t.equal(sink.chunks[n + 1].length, 16 + len, `record ${n + 1}: header + whole frame in that write`);
    origBytes += len;
  }
  t.equal(w.frames, 40);
  t.equal(w.bytes, origBytes);
  t.equal(w.written, 24 + 40 * 16 + origBytes);

  const r = PcapReader.fromBuffer(sink.bytes());
  t.equal(r.littleEndian, true);
  t.equal(r.nanosecond, false);
  t.equal(r.snaplen, 65535);
  const recs = r.readAll();
  t.equal(recs.length, 40);
  let mismatched = 0;
  recs.forEach((rec, i) => {
    if (Buffer.compare(Buffer.from(rec.data), Buffer.from(sent[i])) !== 0 || rec.origLen !== sent[i].length) mismatched++;
    if (rec.tsSec !== stamps[i].sec || rec.tsUsec !== stamps[i].usec) {
      t.fail(`record ${i + 1}: ts ${rec.tsSec}.${rec.tsUsec} != ${stamps[i].sec}.${stamps[i].usec}`);
    }
    t.equal(rec.index, i + 1);
  });
  t.equal(mismatched, 0, 'every frame read back byte for byte');
  t.equal(recs[38].tsUsec, 0, 'sub-microsecond rounding carried into the next second');
  t.equal(recs[1].tsUsec, 234567, 'fractional milliseconds kept to the microsecond');
  t.equal(recs[1].tsNsec, 234567000);
  t.equal(r.truncated, false);
});

t.test('snaplen truncation keeps orig_len', async (t) => {
  const sink = new ArraySink();
  const w = new PcapWriter(sink, { snaplen: 100 });
  w.writeFrame(pattern(1, 1514), 5000);
  w.writeFrame(pattern(2, 100), 6000);
  w.writeFrame(pattern(3, 99), 7000);
  t.equal(sink.chunks[1].length, 16 + 100, 'only snaplen bytes written');
  t.equal(w.bytes, 1514 + 100 + 99, 'bytes counts original lengths');
  const recs = PcapReader.fromBuffer(sink.bytes()).readAll();
  t.same(recs.map((r) => [r.data.length, r.origLen, r.tsSec]), [[100, 1514, 5], [100, 100, 6], [99, 99, 7]]);
  t.same(recs[0].data, pattern(1, 1514).subarray(0, 100), 'the first snaplen bytes');
  t.throws(() => new PcapWriter(sink, { snaplen: 0 }), /invalid snaplen 0/);
  t.throws(() => new PcapWriter(sink, { snaplen: 262145 }), /invalid snaplen 262145/);
  t.throws(() => w.writeFrame(new Uint8Array(10), -1), /invalid timestamp -1/);
});

t.test('big-endian and nanosecond files read correctly', async (t) => {
  const dir = t.testdir({});
  const data = [pattern(7, 60), pattern(8, 1), pattern(9, 1514)];
  for (const bigEndian of [true, false]) {
    for (const nano of [false, true]) {
      const file = join(dir, `f-${bigEndian ? 'be' : 'le'}-${nano ? 'ns' : 'us'}.pcap`);
      writeFileSync(file, handPcap({
        bigEndian,
        nano,
        records: data.map((d, i) => ({ sec: 0x12345678 + i, frac: nano ? 999_999_999 - i : 999_999 - i, data: d, orig: d.length + i })),
      }));
      const r = await PcapReader.fromFile(file);
      const label = `${bigEndian ? 'big' : 'little'}-endian ${nano ? 'ns' : 'µs'}`;
      t.equal(r.littleEndian, !bigEndian, `${label}: byte order detected`);
      t.equal(r.nanosecond, nano, `${label}: resolution detected`);
      const recs = [...r];
      t.equal(recs.length, 3, label);
      recs.forEach((rec, i) => {
        t.same(rec.data, data[i], `${label} #${i + 1}: data`);
        t.equal(rec.origLen, data[i].length + i, `${label} #${i + 1}: orig_len`);
        t.equal(rec.tsSec, 0x12345678 + i, `${label} #${i + 1}: ts_sec`);
        t.equal(rec.tsUsec, 999_999 - (nano ? 0 : i), `${label} #${i + 1}: usec`);
        if (nano) t.equal(rec.tsNsec, 999_999_999 - i, `${label} #${i + 1}: nsec`);
      });
    }
  }
});

t.test('truncated files: clear error, or stop and report', async (t) => {
  const sink = new ArraySink();
  const w = new PcapWriter(sink);
  for (let i = 0; i < 3; i++) w.writeFrame(pattern(i, 60), 1000 * i);
  const whole = sink.bytes();
  t.equal(whole.length, 24 + 3 * 76);
  const third = 24 + 2 * 76;

  const cutData = whole.subarray(0, whole.length - 10);
  const r = PcapReader.fromBuffer(cutData);
  const got: number[] = [];
  t.throws(() => {
    for (const rec of r) got.push(rec.index);
  }, { code: 'ERR_PCAP_TRUNCATED', message: `pcap: record #3 at offset ${third} is truncated: incl_len 60 but only 50 data bytes remain` });
  t.same(got, [1, 2], 'the whole records before it were delivered');

  const cutHeader = whole.subarray(0, third + 7);
  t.throws(() => PcapReader.fromBuffer(cutHeader).readAll(), {
    message: `pcap: record #3 at offset ${third} is truncated: only 7 of the 16 header bytes are present`,
  });

  for (const cut of [cutData, cutHeader]) {
    const lenient = PcapReader.fromBuffer(cut, { allowTruncated: true });
    t.equal(lenient.readAll().length, 2, 'allowTruncated: two whole records');
    t.equal(lenient.truncated, true, 'allowTruncated: reports truncated');
  }
  const full = PcapReader.fromBuffer(whole, { allowTruncated: true });
  t.equal(full.readAll().length, 3);
  t.equal(full.truncated, false);

  const dir = t.testdir({ 'cut.pcap': Buffer.from(cutData) });
  const fr = await PcapReader.fromFile(join(dir, 'cut.pcap'));
  t.throws(() => fr.readAll(), new RegExp(`cut\\.pcap: record #3 at offset ${third} is truncated`), 'file errors name the file');
});

t.test('corrupt headers are clear errors and nothing is read out of bounds', async (t) => {
  const one = handPcap({ bigEndian: false, snaplen: 100, records: [{ sec: 1, frac: 2, data: pattern(1, 50) }] });
  const tooBig = one.slice();
  new DataView(tooBig.buffer).setUint32(24 + 8, 101, true);
  t.throws(() => PcapReader.fromBuffer(tooBig).readAll(), {
    code: 'ERR_PCAP_FORMAT',
    message: "pcap: record #1 at offset 24 is corrupt: incl_len 101 exceeds the file's snaplen 100",
  });
  const huge = handPcap({ bigEndian: true, snaplen: 0xffffffff, records: [{ sec: 1, frac: 2, data: pattern(1, 50) }] });
  new DataView(huge.buffer).setUint32(24 + 8, 0x7fffffff, false);
  t.throws(() => PcapReader.fromBuffer(huge).readAll(), /record #1 at offset 24 is corrupt: incl_len 2147483647 exceeds the maximum 262144/);

  t.throws(() => PcapReader.fromBuffer(new Uint8Array(23)), { code: 'ERR_PCAP_TRUNCATED', message: /23 bytes is shorter than the 24-byte pcap global header/ });
  t.throws(() => PcapReader.fromBuffer(new Uint8Array(24)), { code: 'ERR_PCAP_FORMAT', message: /bad magic 0x00000000, not a classic pcap file/ });
  const ng = new Uint8Array(28);
  ng.set([0x0a, 0x0d, 0x0d, 0x0a]);
  t.throws(() => PcapReader.fromBuffer(ng), /pcapng/);
  t.throws(() => PcapReader.fromBuffer(handPcap({ bigEndian: false, linktype: 101, records: [] })), {
    code: 'ERR_PCAP_LINKTYPE',
    message: 'pcap: link type 101 is not supported; only 1 (Ethernet) is',
  });
  t.equal(PcapReader.fromBuffer(handPcap({ bigEndian: false, records: [] })).readAll().length, 0, 'header only: no records');

  // A reader over a view in the middle of a bigger buffer must stay inside the view.
  const arena = new Uint8Array(one.length + 200).fill(0x55);
  arena.set(one, 100);
  const view = arena.subarray(100, 100 + one.length - 1); // last data byte cut off
  t.throws(() => PcapReader.fromBuffer(view).readAll(), /record #1 at offset 24 is truncated: incl_len 50 but only 49/);
  const ok = PcapReader.fromBuffer(arena.subarray(100, 100 + one.length)).readAll();
  t.same(ok[0].data, pattern(1, 50), 'a view at an offset reads the right bytes');
  t.ok(PcapError);
});

t.test('toFile writes a file that reads back; close flushes and is idempotent', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'out.pcap');
  const w = await PcapWriter.toFile(file, { snaplen: 2000 });
  const b = new FrameBuilder({ length: 1514, src: '10.0.0.1:1-10.0.0.1:3' });
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    frames.push(b.toBytes());
    w.writeFrame(frames[i], 1_700_000_000_000 + i);
    b.next();
  }
  await w.close();
  await w.close();
  t.throws(() => w.writeFrame(frames[0]), { code: 'ERR_PCAP_CLOSED' });
  t.equal(readFileSync(file).length, 24 + 200 * (16 + 1514), 'every record flushed');
  const recs = (await PcapReader.fromFile(file)).readAll();
  t.equal(recs.length, 200);
  t.ok(recs.every((r, i) => Buffer.compare(Buffer.from(r.data), Buffer.from(frames[i])) === 0), 'all frames identical');
  t.same(recs.slice(0, 3).map((r) => r.tsUsec), [0, 1000, 2000]);
  await t.rejects(PcapWriter.toFile(join(dir, 'no', 'such', 'dir.pcap')), { code: 'ENOENT' });
});

// Installed with apt-get as root (a failed install fails the run); skipped only where it cannot be.
const tsharkSkip = skipFor(t, 'tshark checks', needPackages(['tshark'], ['tshark']));

t.test('tshark decodes FrameBuilder frames with good IP and UDP checksums', { skip: tsharkSkip }, async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'frames.pcap');
  const w = await PcapWriter.toFile(file);
  const a = new FrameBuilder({ length: 60, src: '10.0.0.1:1000-10.0.0.2:1001', dst: '10.1.0.1:2000-10.1.0.3:2000' });
  const b = new FrameBuilder({ length: 999, srcMac: '02:00:00:00:00:01', dst: '192.168.0.1:5000-192.168.0.1:5009' });
  const want: string[] = [];
  for (let i = 0; i < 10; i++) {
    const fb = i < 5 ? a : b;
    const f = fb.toBytes();
    setSeq(f, 0, 0xfffffff0 + i); // the stamped checksum must stay valid too
    want.push(`${formatIp(fb.srcIp)}\t${fb.dstPort}\t1\t1`);
    w.writeFrame(f, 1_700_000_000_000 + i);
    fb.next();
  }
  await w.close();
  const { stdout } = await promisify(execFile)('tshark', [
    '-r', file, '-T', 'fields',
    '-e', 'ip.src', '-e', 'udp.dstport', '-e', 'ip.checksum.status', '-e', 'udp.checksum.status',
    '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
  ]);
  const lines = stdout.trim().split('\n');
  t.equal(lines.length, 10, '10 frames decoded');
  t.same(lines, want, 'addresses in odometer order, checksum status 1 (good) for IP and UDP');
});
