// pkt-gen's and capture's flags as a user types them, against a real vswitch serve, checked on
// what they produce: the frames in a capture file (addresses, lengths, count), the capture
// itself (-w -, -s, --duration, a whole bridge), and pkt-gen's reports (-N, -w, --duration,
// --pcap, --spin).
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PcapReader, PcapWriter } from '../src/pcap.js';
import { CLI, cliEnv, pollUntil, runCli, spawnCli, startServe, tmpSocket } from './helpers/cli.js';

const ip = (f: Uint8Array, off: number) => `${f[off]}.${f[off + 1]}.${f[off + 2]}.${f[off + 3]}`;
const port = (f: Uint8Array, off: number) => (f[off] << 8) | f[off + 1];
const mac = (f: Uint8Array, off: number) => [...f.subarray(off, off + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');

/** serve with two persistent ports on vale9 (a whole-bridge capture covers the ports it starts with). */
async function setup(t: Test) {
  const { dir, socket } = tmpSocket(t);
  await startServe(t, socket);
  for (const p of ['vale9:rx', 'vale9:tx']) {
    const r = await runCli(['ctl', 'create', p, '--socket', socket]);
    t.equal(r.code, 0, r.stderr);
  }
  return { dir, socket };
}

t.test('pkt-gen -n -l -s -d -S -D -b -N: a whole-bridge capture holds exactly those frames', async (t) => {
  const { dir, socket } = await setup(t);
  const file = join(dir, 'c.pcap');
  const cap = spawnCli(t, ['capture', '-i', 'vale9', '-w', file, '-c', '12', '--socket', socket]);
  await cap.waitFor(/capturing vale9 \(mirror\)/);
  const tx = await runCli(['pkt-gen', '--socket', socket, '-i', 'vale9:tx', '-f', 'tx', '-n', '12', '-l', '100',
    '-s', '10.0.0.1:1000-10.0.0.3:1000', '-d', '10.1.0.5:2000-10.1.0.5:2001', '-S', '02:00:00:00:00:01', '-D', '02:00:00:00:00:02',
    '-b', '4', '-N'], { timeoutMs: 30_000 });
  t.equal(tx.code, 0, tx.stderr);
  t.match(tx.stdout, /Sent 12 packets 1200 bytes 3 events 100 bytes each/, '-n 12 -l 100 in batches of -b 4: 3 events');
  t.match(tx.stdout, /Speed: [\d.]+pps Bandwidth: [\d.]+bps/, '-N: plain numbers');
  t.notMatch(tx.stdout, /[\d.]+ ?[KMG](pps|bps)/, '-N: no K/M/G units');
  t.same(await cap.exited, { code: 0, signal: null }, 'capture -c 12 ends by itself');
  t.match(cap.stderr, /12 frames \(1200 bytes\) captured, 0 dropped by a slow reader, 0 by a full capture ring; ended: count/);
  const recs = (await PcapReader.fromFile(file)).readAll();
  t.equal(recs.length, 12);
  const f0 = recs[0].data;
  t.ok(recs.every((r) => r.data.length === 100 && r.origLen === 100), 'every frame 100 bytes');
  t.ok(recs.every((r) => mac(r.data, 0) === '02:00:00:00:00:02' && mac(r.data, 6) === '02:00:00:00:00:01'), '-D and -S in every frame');
  // The ranges: 3 sources × 2 destination ports, each combination twice in 12 frames.
  const combos = new Map<string, number>();
  for (const r of recs) {
    const k = `${ip(r.data, 26)}:${port(r.data, 34)} -> ${ip(r.data, 30)}:${port(r.data, 36)}`;
    combos.set(k, (combos.get(k) ?? 0) + 1);
  }
  t.same([...combos.keys()].sort(), [
    '10.0.0.1:1000 -> 10.1.0.5:2000', '10.0.0.1:1000 -> 10.1.0.5:2001', '10.0.0.2:1000 -> 10.1.0.5:2000',
    '10.0.0.2:1000 -> 10.1.0.5:2001', '10.0.0.3:1000 -> 10.1.0.5:2000', '10.0.0.3:1000 -> 10.1.0.5:2001',
  ], 'every address in the -s and -d ranges');
  t.same([...combos.values()], [2, 2, 2, 2, 2, 2], 'each combination equally often');
  t.equal(port(f0, 12), 0x0800, 'IPv4');
});

t.test('capture -w - -s 64 writes a pcap to stdout with frames cut to the snaplen', async (t) => {
  const { socket } = await setup(t);
  const p = spawn(process.execPath, [CLI, 'capture', '-i', 'vale9', '-w', '-', '-s', '64', '-c', '3', '--socket', socket], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { p.kill('SIGKILL'); });
  const out: Buffer[] = [];
  let err = '';
  p.stdout.on('data', (d: Buffer) => out.push(d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((r) => p.on('close', (c) => r(c)));
  // Ready when it says so on stderr (stdout is the pcap).
  const end = Date.now() + 15_000;
  while (!/capturing vale9/.test(err)) {
    if (Date.now() > end || p.exitCode !== null) throw new Error(`capture did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const tx = await runCli(['pkt-gen', '--socket', socket, '-i', 'vale9:tx', '-f', 'tx', '-n', '3', '-l', '100'], { timeoutMs: 30_000 });
  t.equal(tx.code, 0, tx.stderr);
  t.equal(await exited, 0, err);
  const recs = PcapReader.fromBuffer(Buffer.concat(out)).readAll();
  t.equal(recs.length, 3, 'three records on stdout');
  t.ok(recs.every((r) => r.data.length === 64 && r.origLen === 100), 'each cut to 64 bytes, original length 100 kept');
  const bad = await runCli(['capture', '-i', 'vale9', '-w', '-', '-s', '10', '--socket', socket]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /snaplen" must be a number ≥ 64/);
});

t.test('capture -w - into a reader that stops reading: frames dropped and counted, the pcap on stdout whole', async (t) => {
  const { socket } = await setup(t);
  const p = spawn(process.execPath, [CLI, 'capture', '-i', 'vale9:tx', '-w', '-', '--socket', socket], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { p.kill('SIGKILL'); });
  // Nobody reads stdout until told: the pipe fills, then capture's output backs up.
  const out: Buffer[] = [];
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((r) => p.on('close', (c) => r(c)));
  await pollUntil('capture to start', async () => (/capturing vale9:tx/.test(err) ? true : undefined), 15_000);
  // Far more than the daemon may buffer for a client (16 MiB of pcap): 30000 frames of 1514 bytes,
  // at a rate the capture keeps up with (what it cannot take is counted too, as ring drops).
  const N = 30_000;
  const tx = await runCli(['pkt-gen', '--socket', socket, '-i', 'vale9:tx', '-f', 'tx', '-n', String(N), '-l', '1514', '-R', '5000'], { timeoutMs: 120_000 });
  t.equal(tx.code, 0, tx.stderr);
  t.match(tx.stdout, new RegExp(`Sent ${N} packets`), `pkt-gen sent ${N} frames`);
  // The reader comes back; the capture drains, then Ctrl-C ends it.
  p.stdout.on('data', (d: Buffer) => out.push(d));
  const seen = () => out.reduce((n, b) => n + b.length, 0);
  let last = -1;
  await pollUntil('stdout to stop growing', async () => {
    const n = seen();
    if (n === last) return true;
    last = n;
    await new Promise((r) => setTimeout(r, 200));
    return undefined;
  }, 60_000);
  p.kill('SIGINT');
  t.equal(await exited, 0, err);
  const m = /(\d+) frames \((\d+) bytes\) captured, (\d+) dropped by a slow reader, (\d+) by a full capture ring; ended: stopped/.exec(err);
  t.ok(m, err);
  const [frames, bytes, dropped, ring] = m!.slice(1).map(Number);
  t.ok(dropped > 0, `the reader fell behind: ${dropped} frames dropped by a slow reader (${ring} by a full capture ring, ${frames} written)`);
  t.equal(frames + dropped + ring, N, 'written + dropped + ring drops = frames sent: every one counted');
  t.equal(bytes, frames * 1514, 'bytes are those of the written frames');
  const recs = PcapReader.fromBuffer(Buffer.concat(out)).readAll();
  t.equal(recs.length, frames, 'stdout holds exactly the written frames, as whole records');
  t.ok(recs.every((r) => r.data.length === 1514), 'each whole');
});

t.test('capture --duration stops by itself', async (t) => {
  const { dir, socket } = await setup(t);
  const t0 = Date.now();
  const r = await runCli(['capture', '-i', 'vale9:rx', '-w', join(dir, 'd.pcap'), '--duration', '1', '--socket', socket], { timeoutMs: 20_000 });
  const ms = Date.now() - t0;
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /0 frames \(0 bytes\) captured.*ended: duration/);
  t.ok(ms >= 1000, `it ran its second (${ms} ms)`);
  t.equal((await PcapReader.fromFile(join(dir, 'd.pcap'))).readAll().length, 0, 'an empty but valid pcap');
});

t.test('pkt-gen --pcap replays a file\'s frames; the capture holds them byte for byte', async (t) => {
  const { dir, socket } = await setup(t);
  const src = join(dir, 'in.pcap');
  const w = await PcapWriter.toFile(src);
  const want: Uint8Array[] = [];
  for (let i = 0; i < 5; i++) {
    const f = new Uint8Array(64 + i * 10);
    f.set([2, 0, 0, 0, 0, 0x99, 2, 0, 0, 0, 0, 0x98, 0x88, 0xb5, i]);
    for (let j = 15; j < f.length; j++) f[j] = (j * 31 + i) & 0xff;
    w.writeFrame(f);
    want.push(f);
  }
  await w.close();
  const file = join(dir, 'out.pcap');
  const cap = spawnCli(t, ['capture', '-i', 'vale9:tx', '-w', file, '-c', '10', '--socket', socket]);
  await cap.waitFor(/capturing vale9:tx/);
  const tx = await runCli(['pkt-gen', '--socket', socket, '-i', 'vale9:tx', '-f', 'tx', '--pcap', src, '-n', '10'], { timeoutMs: 30_000 });
  t.equal(tx.code, 0, tx.stderr);
  t.match(tx.stdout, /Sent 10 packets/);
  if (tx.code !== 0) return; // the capture would wait for frames that never come (teardown kills it)
  t.same(await cap.exited, { code: 0, signal: null });
  const recs = (await PcapReader.fromFile(file)).readAll();
  t.equal(recs.length, 10);
  t.ok(recs.every((r, i) => Buffer.compare(r.data, want[i % 5]) === 0), 'the file\'s 5 frames, cycled, unchanged');
});

t.test('pkt-gen -w waits, --duration bounds the run, --spin busy-polls', async (t) => {
  const t0 = Date.now();
  const r = await runCli(['pkt-gen', '--embedded', '-i', 'vale0:rx', '-f', 'rx', '-i', 'vale0:tx', '-f', 'tx', '-w', '1', '--duration', '0.5', '-R', '20000', '--json'], { timeoutMs: 30_000 });
  const ms = Date.now() - t0;
  t.equal(r.code, 0, r.stderr);
  const reps = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; func: string; packets: number; seconds: number; dropped?: number });
  const tx = reps.find((x) => x.kind === 'final' && x.func === 'tx')!;
  const rx = reps.find((x) => x.kind === 'final' && x.func === 'rx')!;
  t.ok(tx.packets > 0, `--duration with no -n sent ${tx.packets} frames and stopped`);
  t.ok(tx.seconds >= 0.45, `the sender ran its half second (${tx.seconds} s)`);
  t.equal(rx.packets + (tx.dropped ?? 0), tx.packets, 'received + dropped = sent');
  t.ok(ms >= 1500, `-w 1 then --duration 0.5: at least 1.5 s in all (${ms} ms)`);
  const ping = await runCli(['pkt-gen', '--embedded', '-i', 'vale0:pong', '-f', 'pong', '-i', 'vale0:ping', '-f', 'ping', '-n', '300', '-T', '20', '--spin'], { timeoutMs: 30_000 });
  t.equal(ping.code, 0, ping.stderr);
  const m = ping.stdout.match(/RTT: (\d+) round trips, .* (\d+) lost/);
  t.ok(m, ping.stdout);
  // Interval reports every 20 ms: the summary still covers the whole run, not the last interval.
  t.equal(Number(m![1]) + Number(m![2]), 300, '--spin: every ping answered or counted lost, in the summary');
});
