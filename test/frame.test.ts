import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  FrameBuilder,
  FrameError,
  OFF,
  PKTGEN_PAYLOAD,
  describeFrame,
  formatIp,
  formatMac,
  getSeq,
  internetChecksum,
  ipv4Checksum,
  onesSum,
  parseIp,
  parseIpRange,
  parseMac,
  readTimestamp,
  timestampMs,
  setSeq,
  swapForPong,
  verifyIpv4Udp,
  writeTimestamp,
} from '../src/frame.js';

// ---- independent reference implementation (deliberately naive) ----------------------------

/** RFC 1071 the slow way: array of words, add, fold at the end. */
function refChecksum(bytes: number[]): number {
  const b = bytes.length % 2 ? [...bytes, 0] : bytes;
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += b[i] * 256 + b[i + 1];
  while (sum > 0xffff) sum = (sum % 65536) + Math.floor(sum / 65536);
  return 0xffff - sum;
}
const u16 = (f: Uint8Array, o: number) => f[o] * 256 + f[o + 1];
const u32 = (f: Uint8Array, o: number) => ((f[o] << 24) | (f[o + 1] << 16) | (f[o + 2] << 8) | f[o + 3]) >>> 0;

/** Reference IPv4 header checksum of a frame: field zeroed. */
function refIpCsum(f: Uint8Array): number {
  const h = [...f.subarray(14, 34)];
  h[10] = h[11] = 0;
  return refChecksum(h);
}
/** Reference UDP checksum of a pkt-gen frame: pseudo-header + UDP with field zeroed. */
function refUdpCsum(f: Uint8Array): number {
  const udpLen = u16(f, 38);
  const udp = [...f.subarray(34, 34 + udpLen)];
  udp[6] = udp[7] = 0;
  const pseudo = [...f.subarray(26, 34), 0, 17, udpLen >> 8, udpLen & 0xff];
  const c = refChecksum([...pseudo, ...udp]);
  return c === 0 ? 0xffff : c;
}
/** The assertions checkSums needs (any tap Test has them). */
interface Asserts {
  equal(found: unknown, wanted: unknown, msg: string): boolean;
  same(found: unknown, wanted: unknown, msg: string): boolean;
}
function checkSums(t: Asserts, f: Uint8Array, msg: string) {
  t.equal(u16(f, 24), refIpCsum(f), `${msg}: IP checksum matches reference`);
  t.equal(u16(f, 40), refUdpCsum(f), `${msg}: UDP checksum matches reference`);
  t.same(verifyIpv4Udp(f, 0, f.length), { ipOk: true, udpOk: true }, `${msg}: verifyIpv4Udp`);
}

function frameOf(b: FrameBuilder): Uint8Array {
  const f = new Uint8Array(b.length);
  if (b.write(f, 0) !== b.length) throw new Error('write() returned the wrong length');
  return f;
}

// ---- tests --------------------------------------------------------------------------------

t.test('default 60-byte frame has the pkt-gen layout', async (t) => {
  const b = new FrameBuilder();
  const f = frameOf(b);
  t.equal(f.length, 60);
  t.same([...f.subarray(0, 6)], [255, 255, 255, 255, 255, 255], 'dst MAC broadcast');
  t.same([...f.subarray(6, 12)], [0, 0, 0, 0, 0, 0], 'src MAC zero (as pkt-gen on VALE)');
  t.equal(u16(f, 12), 0x0800, 'ethertype IPv4');
  t.equal(f[14], 0x45, 'version 4, IHL 5');
  t.equal(f[15], 0x10, 'TOS lowdelay');
  t.equal(u16(f, 16), 46, 'IP total length 46');
  t.equal(u16(f, 18), 0, 'id 0');
  t.equal(u16(f, 20), 0x4000, 'DF');
  t.equal(f[22], 64, 'TTL 64');
  t.equal(f[23], 17, 'proto UDP');
  t.equal(formatIp(u32(f, 26)), '10.0.0.1', 'src IP');
  t.equal(formatIp(u32(f, 30)), '10.1.0.1', 'dst IP');
  t.equal(u16(f, 34), 1234, 'src port');
  t.equal(u16(f, 36), 1234, 'dst port');
  t.equal(u16(f, 38), 26, 'UDP length 26');
  const payload = Buffer.from(f.subarray(42, 59)).toString('latin1');
  t.equal(payload, PKTGEN_PAYLOAD.slice(0, 17), 'payload pattern');
  t.equal(f[59], 0, 'last byte NUL');
  checkSums(t, f, 'default');
  t.equal(internetChecksum(f, 14, 20), 0, 'header with its checksum sums to zero');
  t.equal(b.describe(), '00:00:00:00:00:00 > ff:ff:ff:ff:ff:ff IPv4 10.0.0.1:1234 > 10.1.0.1:1234 UDP len 60');
});

t.test('other lengths: payload repeats, odd lengths, minimum 42', async (t) => {
  for (const len of [42, 43, 61, 100, 127, 1514, 9000]) {
    const b = new FrameBuilder({ length: len, srcMac: '02:00:00:00:00:01', dstMac: '02-00-00-00-00-02' });
    const f = frameOf(b);
    t.equal(u16(f, 16), len - 14, `len ${len}: IP length`);
    t.equal(u16(f, 38), len - 34, `len ${len}: UDP length`);
    if (len > 42) {
      const exp = Buffer.alloc(len - 42);
      for (let i = 0; i < exp.length; i++) exp[i] = PKTGEN_PAYLOAD.charCodeAt(i % PKTGEN_PAYLOAD.length);
      exp[exp.length - 1] = 0;
      t.same(Buffer.from(f.subarray(42)), exp, `len ${len}: payload`);
    }
    checkSums(t, f, `len ${len}`);
  }
});

t.test('write at an offset, and into a too-small buffer', async (t) => {
  const b = new FrameBuilder({ length: 64 });
  const big = new Uint8Array(200).fill(0xee);
  t.equal(b.write(big, 100), 64);
  t.same(big.subarray(100, 164), b.toBytes());
  t.equal(big[99], 0xee, 'byte before untouched');
  t.equal(big[164], 0xee, 'byte after untouched');
  t.throws(() => b.write(new Uint8Array(63), 0), /does not fit a 63-byte buffer/);
  t.throws(() => b.write(big, 137), /at offset 137 does not fit/);
});

t.test('checksum helpers', async (t) => {
  const bytes = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7];
  t.equal(ipv4Checksum(Uint8Array.from(bytes), 0, 20), 0xb861, 'Wikipedia example header');
  const odd = Uint8Array.from([1, 2, 3]);
  t.equal(internetChecksum(odd, 0, 3), refChecksum([1, 2, 3]), 'odd trailing byte is the high byte');
  t.equal(internetChecksum(odd, 0, 3), ~(0x0102 + 0x0300) & 0xffff);
  t.equal(onesSum(odd, 0, 2, 0xffff), 0x0102, 'initial folds with end-around carry');
  t.throws(() => onesSum(odd, 2, 2), /outside a 3-byte buffer/);
  const big = new Uint8Array(65535).fill(0xff);
  t.equal(internetChecksum(big, 0, big.length), refChecksum([...big]), 'large buffer');
});

t.test('ranges iterate in odometer order and wrap', async (t) => {
  const b = new FrameBuilder({ src: '10.0.0.1:100-10.0.0.2:101', dst: '10.1.0.1:200-10.1.0.2:201' });
  t.ok(b.ranged);
  const seen: string[] = [];
  for (let i = 0; i < 17; i++) {
    const f = frameOf(b);
    checkSums(t, f, `frame ${i}`);
    seen.push(`${formatIp(u32(f, 26))}:${u16(f, 34)}>${formatIp(u32(f, 30))}:${u16(f, 36)}`);
    b.next();
  }
  const exp: string[] = [];
  for (const dip of ['10.1.0.1', '10.1.0.2'])
    for (const dp of [200, 201])
      for (const sip of ['10.0.0.1', '10.0.0.2'])
        for (const sp of [100, 101]) exp.push(`${sip}:${sp}>${dip}:${dp}`);
  t.same(seen.slice(0, 16), exp, 'src port fastest, then src IP, dst port, dst IP');
  t.equal(seen[16], exp[0], 'wraps back to the start after 16 combinations');
  b.next();
  b.reset();
  t.equal(b.srcPort, 100);
  t.equal(formatIp(b.dstIp), '10.1.0.1');
});

t.test('a range on one side only; single addresses make next() a no-op', async (t) => {
  const b = new FrameBuilder({ dst: '10.1.0.1-10.1.0.3' });
  const ips: string[] = [];
  for (let i = 0; i < 4; i++) {
    ips.push(formatIp(b.dstIp));
    t.equal(formatIp(b.srcIp), '10.0.0.1');
    b.next();
  }
  t.same(ips, ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.1']);

  const s = new FrameBuilder();
  t.notOk(s.ranged);
  const before = s.toBytes();
  s.next();
  t.same(s.toBytes(), before);

  const wide = new FrameBuilder({ src: '255.255.255.254:65534-255.255.255.255:65535' });
  const seen: string[] = [];
  for (let i = 0; i < 5; i++) {
    seen.push(`${formatIp(wide.srcIp)}:${wide.srcPort}`);
    checkSums(t, wide.toBytes(), `top of range ${i}`);
    wide.next();
  }
  t.same(seen, ['255.255.255.254:65534', '255.255.255.254:65535', '255.255.255.255:65534', '255.255.255.255:65535', '255.255.255.254:65534'],
    'u32/u16 maxima wrap without overflow');
});

t.test('parseIpRange follows pkt-gen syntax', async (t) => {
  const ip = parseIp;
  t.same(parseIpRange('10.0.0.1', 1234), { ipStart: ip('10.0.0.1'), ipEnd: ip('10.0.0.1'), portStart: 1234, portEnd: 1234 });
  t.same(parseIpRange('10.0.0.1:99', 1234), { ipStart: ip('10.0.0.1'), ipEnd: ip('10.0.0.1'), portStart: 99, portEnd: 99 });
  t.same(parseIpRange('10.0.0.1:1234-10.0.0.9', 7), { ipStart: ip('10.0.0.1'), ipEnd: ip('10.0.0.9'), portStart: 1234, portEnd: 1234 },
    'end port defaults to the start port');
  t.same(parseIpRange('10.0.0.1-10.0.0.9:5000', 1234), { ipStart: ip('10.0.0.1'), ipEnd: ip('10.0.0.9'), portStart: 1234, portEnd: 5000 },
    'start port defaults to defaultPort');
  t.same(parseIpRange('10.0.0.9:20-10.0.0.1:10', 1), { ipStart: ip('10.0.0.1'), ipEnd: ip('10.0.0.9'), portStart: 10, portEnd: 20 },
    'reversed ranges are put in order, like pkt-gen');
  t.equal(ip('255.255.255.255'), 0xffffffff);
});

t.test('bad inputs throw messages that name the problem', async (t) => {
  const bad = (fn: () => unknown, re: RegExp, msg: string) => t.throws(fn, re, msg);
  bad(() => parseMac('aa:bb:cc:dd:ee'), /invalid MAC address "aa:bb:cc:dd:ee"/, 'five octets');
  bad(() => parseMac('aa:bb:cc:dd:ee:gg'), /invalid MAC address "aa:bb:cc:dd:ee:gg"/, 'non-hex');
  bad(() => parseMac('aa:bb-cc:dd:ee:ff'), /invalid MAC/, 'mixed separators');
  bad(() => parseMac('aaa:bb:cc:dd:ee:ff'), /invalid MAC/, 'three digits');
  bad(() => parseIpRange('10.0.0', 1), /invalid IPv4 address "10.0.0": expected 4/, 'three parts');
  bad(() => parseIpRange('10.0.0.256', 1), /"256" is not a number 0..255/, 'octet too big');
  bad(() => parseIpRange('10.0.0.1:70000', 1), /port "70000" is not a number 0..65535/, 'port too big');
  bad(() => parseIpRange('10.0.0.1:', 1), /port "" is not a number/, 'empty port');
  bad(() => parseIpRange('10.0.0.1-', 1), /the end address is empty/, 'empty end');
  bad(() => parseIpRange('-10.0.0.1', 1), /the start address is empty/, 'empty start');
  bad(() => parseIpRange('1.1.1.1-2.2.2.2-3.3.3.3', 1), /more than one '-'/, 'two dashes');
  bad(() => parseIpRange('', 1), /empty/, 'empty string');
  bad(() => parseIpRange('10.0.0.1', 65536), /invalid default port 65536/, 'default port');
  bad(() => new FrameBuilder({ length: 41 }), /invalid frame length 41: an IPv4\/UDP frame needs 42\.\.65535 bytes \(14 Ethernet \+ 20 IPv4 \+ 8 UDP/, 'too short');
  bad(() => new FrameBuilder({ length: 65536 }), /invalid frame length 65536/, 'too long');
  bad(() => new FrameBuilder({ length: 60.5 }), /invalid frame length 60.5/, 'fractional');
  bad(() => new FrameBuilder({ srcMac: 'nope' }), /invalid MAC address "nope"/, 'builder MAC');
  bad(() => new FrameBuilder({ dst: '10.1.0.x' }), /invalid address range "10.1.0.x"/, 'builder range');
  bad(() => new FrameBuilder({ src: { ipStart: 5, ipEnd: 4, portStart: 1, portEnd: 1 } }), /src: invalid range/, 'range object');
  const e = t.throws(() => parseMac('x')) as unknown;
  t.ok(e instanceof FrameError && e.code === 'ERR_BAD_ARG', 'FrameError with code ERR_BAD_ARG');
});

t.test('MAC text forms round trip', async (t) => {
  t.same([...parseMac('02:0a:FF:0:1:b')], [2, 10, 255, 0, 1, 11]);
  t.same([...parseMac('aa-bb-cc-dd-ee-ff')], [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
  t.equal(formatMac(Uint8Array.from([9, 9, 2, 0, 10, 255, 1]), 1), '09:02:00:0a:ff:01');
  t.throws(() => formatMac(new Uint8Array(6), 1), /outside a 6-byte buffer/);
});

t.test('setSeq/getSeq keep the UDP checksum valid', async (t) => {
  const b = new FrameBuilder({ length: 60, src: '10.0.0.1-10.0.0.5' });
  const buf = new Uint8Array(1000);
  const seqs = [0, 1, 0xff, 0x1234, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
  let off = 3;
  for (const seq of seqs) {
    b.write(buf, off);
    setSeq(buf, off, seq);
    t.equal(getSeq(buf, off), seq);
    t.equal(u32(buf, off + 42), seq, 'big-endian at byte 42');
    checkSums(t, buf.subarray(off, off + 60), `seq ${seq}`);
    b.setSeq(buf, off, seq + 1); // re-stamping an already stamped frame stays valid
    checkSums(t, buf.subarray(off, off + 60), `seq ${seq} restamped`);
    b.next();
    off += 61;
  }
  // exhaustive over the 16 low bits: finds any 0x0000/0xffff corner case of the RFC 1624 update
  const f = b.toBytes();
  let bad = 0;
  for (let s = 0; s < 0x10000; s++) {
    setSeq(f, 0, s * 65537);
    if (u16(f, 40) !== refUdpCsum(f)) bad++;
  }
  t.equal(bad, 0, 'all 65536 sequence values give the reference checksum');
  const short = new Uint8Array(100);
  new FrameBuilder({ length: 45 }).write(short, 0);
  t.throws(() => setSeq(short, 0, 1), /UDP length 11 leaves fewer than 4 payload bytes/, 'frame too short, buffer long enough');
  t.throws(() => setSeq(short, 60, 1), /needs bytes 60..106 but the buffer has 100/, 'buffer too short');
  t.throws(() => setSeq(new Uint8Array(60), 0, 1), /not IPv4/);
});

t.test('timestamps and swapForPong', async (t) => {
  const b = new FrameBuilder({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', src: '10.0.0.1:1000', dst: '10.1.0.7:2000' });
  const f = b.toBytes();
  setSeq(f, 0, 42);
  writeTimestamp(f, 0, 1_700_000_000, 123_456_789);
  t.same(readTimestamp(f, 0), { sec: 1_700_000_000, nsec: 123_456_789 });
  t.ok(Math.abs(timestampMs(f, 0) - (1_700_000_000_000 + 123.456789)) < 1e-3, 'timestampMs: the same instant in ms, without an object');
  t.equal(getSeq(f, 0), 42, 'timestamp does not clobber the sequence');
  checkSums(t, f, 'after timestamp');
  t.throws(() => writeTimestamp(f, 0, 1, 1e9), /nsec 1000000000/);
  const short = new Uint8Array(100);
  new FrameBuilder({ length: 53 }).write(short, 0);
  t.throws(() => writeTimestamp(short, 0, 1, 1), /UDP length 19 leaves fewer than 12 payload bytes/);

  const before = f.slice();
  swapForPong(f, 0, f.length);
  t.equal(formatMac(f, 0), '02:00:00:00:00:01', 'dst MAC is the old src');
  t.equal(formatMac(f, 6), '02:00:00:00:00:02', 'src MAC is the old dst');
  t.equal(formatIp(u32(f, 26)), '10.1.0.7', 'src IP is the old dst');
  t.equal(formatIp(u32(f, 30)), '10.0.0.1', 'dst IP is the old src');
  t.equal(u16(f, 34), 1000, 'ports untouched (as pkt-gen)');
  t.same(f.subarray(24, 26), before.subarray(24, 26), 'IP checksum bytes unchanged');
  t.same(f.subarray(40, 42), before.subarray(40, 42), 'UDP checksum bytes unchanged');
  checkSums(t, f, 'after swap');
  t.equal(describeFrame(f, 0, f.length), '02:00:00:00:00:02 > 02:00:00:00:00:01 IPv4 10.1.0.7:1000 > 10.0.0.1:2000 UDP len 60');
  swapForPong(f, 0, f.length);
  t.same(f, before, 'swapping twice restores the frame');

  const arp = new Uint8Array(42);
  arp.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06]);
  arp[26] = 0xaa;
  swapForPong(arp, 0, 42);
  t.same([...arp.subarray(0, 12)], [7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6], 'non-IP: MACs swapped');
  t.equal(arp[26], 0xaa, 'non-IP: bytes 26.. untouched');
  t.match(describeFrame(arp, 0, 42), /ARP 0x0806 len 42/);
});

t.test('verifyIpv4Udp detects corruption and never reads past len', async (t) => {
  const f = new FrameBuilder({ length: 100 }).toBytes();
  t.same(verifyIpv4Udp(f, 0, 100), { ipOk: true, udpOk: true });
  const g = f.slice();
  g[22]--; // TTL
  t.same(verifyIpv4Udp(g, 0, 100), { ipOk: false, udpOk: true }, 'TTL change breaks only the IP checksum');
  const h = f.slice();
  h[80] ^= 1;
  t.same(verifyIpv4Udp(h, 0, 100), { ipOk: true, udpOk: false }, 'payload bit flip breaks only UDP');
  t.same(verifyIpv4Udp(f, 0, 99), { ipOk: true, udpOk: false }, 'UDP length beyond len is not ok');
  t.same(verifyIpv4Udp(f, 0, 20), { ipOk: false, udpOk: false }, 'truncated');
  const z = f.slice();
  z[40] = z[41] = 0;
  t.same(verifyIpv4Udp(z, 0, 100), { ipOk: true, udpOk: false }, 'absent UDP checksum is not "ok"');
});

// Allocation is measured in a child process run with --expose-gc (test/fixtures/alloc-probe.ts):
// a forced full GC, then a million calls during which no collection may run. The checker is
// itself checked: the same work done by an allocating version must fail it.
const PROBE = fileURLToPath(new URL('../dist/test/fixtures/alloc-probe.js', import.meta.url));

async function allocProbe(name: string): Promise<{ gcs: number; grownBytes: number; calls: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', PROBE, name], { timeout: 60_000 });
  return JSON.parse(stdout) as { gcs: number; grownBytes: number; calls: number };
}

/** The verdict the checks below use: no GC during the calls and under 1 byte per call retained. */
const allocates = (r: { gcs: number; grownBytes: number; calls: number }) => r.gcs > 0 || r.grownBytes > r.calls;

t.test('write() and next() do not allocate per call', async (t) => {
  const r = await allocProbe('frame-write-next');
  t.equal(r.gcs, 0, `no garbage collection during ${r.calls} write+next calls`);
  t.notOk(allocates(r), `heap grew ${r.grownBytes} bytes over ${r.calls} calls`);
  const b = new FrameBuilder({ length: 60, src: '10.0.0.1:1-10.0.255.255:100' });
  const buf = new Uint8Array(60 * 64);
  for (let i = 0; i < 1_000_000; i++) {
    b.write(buf, (i & 63) * 60);
    b.next();
  }
  checkSums(t, buf.subarray(0, 60), 'after a million frames');
});

t.test('the allocation check fails on code that allocates', async (t) => {
  for (const name of ['frame-tobytes', 'small-array']) {
    const r = await allocProbe(name);
    t.ok(allocates(r), `${name}: caught (${r.gcs} collections, heap grew ${r.grownBytes} bytes)`);
    t.ok(r.gcs > 0, `${name}: V8 collected garbage during the calls`);
  }
});
