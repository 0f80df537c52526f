// The examples run as a user runs them (compiled, as subprocesses) and print what they promise;
// the example's ARP and ICMP packets are byte-exact and verify with an independent checksum.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  ARP_REPLY, ARP_REQUEST, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, buildArp, buildIcmpEcho, describePacket, internetChecksum,
  parsePacket,
} from '../examples/packets.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(example: string, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = `${root}/dist/examples/${example}.js`;
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** One's-complement sum of big-endian 16-bit words, written independently of the example's. */
function onesSum(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += i + 1 < bytes.length ? dv.getUint16(i) : bytes[i] * 256;
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  return s;
}

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((h) => parseInt(h, 16)));
const MAC1 = hex('020000000001');
const MAC3 = hex('020000000003');

t.test('two-workers: every echo comes back in order, no drops', async (t) => {
  const r = await run('two-workers');
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.match(r.stdout, /^left: sent 1000, got 1000 echoes back in order$/m);
  t.match(r.stdout, /^right: echoed 1000 frames$/m);
  t.match(r.stdout, /^ {2}vale0:left +tx 1000 frames 60000 bytes, rx 1000 frames 60000 bytes, drops 0$/m);
  t.match(r.stdout, /^ {2}vale0:right +tx 1000 frames 60000 bytes, rx 1000 frames 60000 bytes, drops 0$/m);
  t.match(r.stdout, /02:00:00:00:00:01 on vale0:left, 02:00:00:00:00:02 on vale0:right/);

  const more = await run('two-workers', ['--count', '20000']);
  t.equal(more.code, 0, `--count 20000: exit 0 (stderr: ${more.stderr})`);
  t.match(more.stdout, /^left: sent 20000, got 20000 echoes back in order$/m);
});

for (const [hosts, count] of [[4, 5], [3, 2]]) {
  t.test(`ping-hosts --hosts ${hosts} --count ${count}: every pair gets every reply, every MAC is learned`, async (t) => {
    const r = await run('ping-hosts', ['--hosts', String(hosts), '--count', String(count)]);
    t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
    for (let i = 1; i <= hosts; i++) {
      for (let j = 1; j <= hosts; j++) {
        if (i === j) continue;
        const line = new RegExp(`^10\\.0\\.0\\.${i} -> 10\\.0\\.0\\.${j}: ${count}/${count} replies, rtt min/avg/max [\\d.]+/[\\d.]+/[\\d.]+ ms$`, 'm');
        t.match(r.stdout, line, `10.0.0.${i} -> 10.0.0.${j}`);
      }
      t.match(r.stdout, new RegExp(`^ {2}02:00:00:00:00:0${i} {2}vale0:host${i} `, 'm'), `MAC table lists host${i}`);
      t.match(r.stdout, new RegExp(`^host${i} \\(10\\.0\\.0\\.${i}, 02:00:00:00:00:0${i}\\) answered \\d ARP and ${(hosts - 1) * count} echo requests$`, 'm'));
    }
    const pairs = hosts * (hosts - 1);
    t.match(r.stdout, new RegExp(`^all ${pairs} pairs answered: ${pairs * count}/${pairs * count} replies$`, 'm'));
    t.match(r.stdout, /^PASS$/m);
  });
}

t.test('ping-hosts rejects bad arguments', async (t) => {
  const r = await run('ping-hosts', ['--hosts', '1']);
  t.equal(r.code, 2);
  t.match(r.stderr, /usage/);
});

t.test('ARP packets are byte-exact (RFC 826) and parse back', async (t) => {
  const req = buildArp({ op: ARP_REQUEST, senderMac: MAC1, senderIp: '10.0.0.1', targetMac: new Uint8Array(6), targetIp: '10.0.0.3' });
  t.same(req, hex(`
    ffffffffffff 020000000001 0806
    0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000003
    000000000000000000000000000000000000`), 'broadcast request, padded to 60 bytes');
  const rep = buildArp({ op: ARP_REPLY, senderMac: MAC3, senderIp: '10.0.0.3', targetMac: MAC1, targetIp: '10.0.0.1' });
  t.same(rep.subarray(0, 42), hex(`
    020000000001 020000000003 0806
    0001 0800 06 04 0002 020000000003 0a000003 020000000001 0a000001`), 'unicast reply');
  t.match(parsePacket(rep), { kind: 'arp', op: ARP_REPLY, senderIp: '10.0.0.3', targetIp: '10.0.0.1', senderMac: MAC3, targetMac: MAC1 });
  t.equal(describePacket(req), '02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP who-has 10.0.0.3 tell 10.0.0.1');
});

t.test('ICMP echo packets: layout, and both checksums verify independently', async (t) => {
  // The classic example IPv4 header (checksum 0xb861), for the example's checksum function.
  const classic = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
  t.equal(internetChecksum(classic), 0xb861);
  t.equal(internetChecksum(hex('00 01 f2 03 f4 f5 f6 f7')), ~0xddf2 & 0xffff, 'RFC 1071 section 3 example');
  t.equal(internetChecksum(hex('01 02 03')), ~0x0402 & 0xffff, 'odd length: last byte padded with zero');

  const data = Uint8Array.from({ length: 56 }, (_, i) => i);
  for (const [type, seq] of [[ICMP_ECHO_REQUEST, 1], [ICMP_ECHO_REPLY, 0xfffe]]) {
    const f = buildIcmpEcho({ type, srcMac: MAC1, dstMac: MAC3, srcIp: '10.0.0.1', dstIp: '10.0.0.3', id: 0x4001, seq, data });
    t.equal(f.length, 14 + 20 + 8 + 56, 'ping(8)-sized: 98 bytes');
    t.same(f.subarray(0, 14), hex('020000000003 020000000001 0800'));
    const ip = f.subarray(14, 34);
    t.same(ip.subarray(0, 10), hex(`4500 0054 ${seq.toString(16).padStart(4, '0')} 4000 40 01`), 'IPv4: v4 IHL 5, length 84, DF, TTL 64, ICMP');
    t.same(ip.subarray(12, 20), hex('0a000001 0a000003'));
    t.equal(onesSum(ip), 0xffff, 'IPv4 header checksum verifies');
    const icmp = f.subarray(34);
    t.same(icmp.subarray(0, 2), Uint8Array.of(type, 0));
    t.same(icmp.subarray(4, 8), hex(`4001 ${seq.toString(16).padStart(4, '0')}`));
    t.same(icmp.subarray(8), data);
    t.equal(onesSum(icmp), 0xffff, 'ICMP checksum verifies');
    t.match(parsePacket(f), { kind: 'icmp-echo', type, id: 0x4001, seq, srcIp: '10.0.0.1', dstIp: '10.0.0.3', data });

    const badIp = f.slice();
    badIp[14 + 8] ^= 1; // TTL
    t.equal(parsePacket(badIp), null, 'a bad IPv4 header checksum is dropped');
    const badIcmp = f.slice();
    badIcmp[f.length - 1] ^= 0x80;
    t.equal(parsePacket(badIcmp), null, 'a bad ICMP checksum is dropped');
  }
});
