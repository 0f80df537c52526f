// VXLAN adapter. Part 1 (any machine): on loopback, Node sockets play remote tunnel endpoints:
// head-end replication of flooded frames, learning which remote a MAC lives behind, two ports
// and two VNIs sharing one UDP socket. Part 2 (root only): Linux kernel vxlan devices in two
// network namespaces that this test creates ping each other (and move a TCP stream) through a
// vswitch bridge running in a third namespace; malformed datagrams sent from a namespace are
// counted and the path keeps working. Part 3 (root and QEMU): a namespace pings a QEMU guest
// attached to the same bridge. As root the Debian packages are installed and a failed install
// or setup fails the test; without root the kernel parts skip with the reason.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Switch, type Port } from '../src/index.js';
import { attachVxlan, vxlanEncap, type AdapterStats, type VxlanAdapter } from '../src/adapters/index.js';
import { flowHash } from '../src/adapters/vxlan.js';
import { FrameBuilder } from '../src/frame.js';
import {
  REPO, bootGuest, ethFrame, execFileP, freeUdpPort, guestImage, waitFor, type Guest,
} from './vm/interop-util.js';
import { isRoot, needPackages, needRoot, requireOrSkip, skipFor } from './helpers/interop.js';
import { onceWithin } from './helpers/wait.js';

const BCAST = 'ff:ff:ff:ff:ff:ff';

async function udp(host: string): Promise<UdpSocket & { got: Buffer[] }> {
  const s = createSocket('udp4') as UdpSocket & { got: Buffer[] };
  s.got = [];
  s.on('message', (m) => s.got.push(m));
  s.bind(0, host);
  await onceWithin(s, 'listening', 5000);
  return s;
}

const sendTo = (s: UdpSocket, data: Uint8Array, port: number, host = '127.0.0.1') =>
  new Promise<void>((resolve, reject) => s.send(data, port, host, (e) => (e ? reject(e) : resolve())));

function drain(p: Port): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = p.recv(); f; f = p.recv()) out.push(f);
  return out;
}

t.test('loopback: head-end replication, learning per remote, shared UDP endpoint', async (t) => {
  const sw = new Switch({ name: `vx-lo-${process.pid}` });
  const r1 = await udp('127.0.0.1');
  const r2 = await udp('127.0.0.2');
  const r3 = await udp('127.0.0.3');
  const up = await attachVxlan(sw, 'vale0:up', {
    local: '127.0.0.1:0', remotes: [`127.0.0.1:${r1.address().port}`, `127.0.0.2:${r2.address().port}`], vni: 42,
  });
  const lport = Number(up.local.split(':')[1]);
  // A second port with the same VNI on the same socket (another remote), and another VNI on another bridge.
  const up2 = await attachVxlan(sw, 'vale0:up2', { local: `127.0.0.1:${lport}`, remotes: [`127.0.0.3:${r3.address().port}`], vni: 42 });
  const other = await attachVxlan(sw, 'vale1:up', { local: `127.0.0.1:${lport}`, remotes: [`127.0.0.1:${r1.address().port}`], vni: 7 });
  const b = await sw.open('vale0:b');
  const c = await sw.open('vale1:c');
  t.teardown(async () => {
    for (const s of [r1, r2, r3]) s.close();
    for (const a of [up, up2, other]) await a.close();
    await b.close();
    await c.close();
    await sw.close();
  });
  t.equal(up2.local, up.local, 'one UDP socket for both ports');
  await t.rejects(attachVxlan(sw, 'vale0:dup', { local: `127.0.0.1:${lport}`, remotes: ['127.0.0.2:4789'], vni: 42 }),
    { message: /already served by port vale0:up/ }, 'a remote is served by one port per VNI');

  // Flood from the bridge: replicated to both remotes of vale0:up, and to vale0:up2's remote.
  b.send(ethFrame(BCAST, '02:00:00:00:00:0b', 1));
  t.ok(await waitFor(() => r1.got.length === 1 && r2.got.length === 1 && r3.got.length === 1), 'broadcast replicated to every remote');
  t.same([...r1.got[0].subarray(0, 8)], [8, 0, 0, 0, 0, 0, 42, 0], 'VXLAN header with the I flag and VNI 42');

  // Remote 2 sends from MAC X: learned behind remote 2 (by address, whatever its source port).
  const x = '02:00:00:00:00:22';
  const other2 = createSocket('udp4');
  other2.bind(0, '127.0.0.2');
  await onceWithin(other2, 'listening', 5000);
  t.teardown(() => other2.close());
  await sendTo(other2, vxlanEncap(42, ethFrame('02:00:00:00:00:0b', x, 2)), lport);
  t.ok(await waitFor(() => drain(b).some((f) => f[14] === 2)), 'frame from remote 2 (random source port) reaches vale0:b');
  t.same(up.macTable().map((e) => [e.mac, e.remote]), [[x, `127.0.0.2:${r2.address().port}`]], 'MAC learned behind remote 2');

  // Known unicast to X goes to remote 2 only, at its configured port.
  b.send(ethFrame(x, '02:00:00:00:00:0b', 3));
  t.ok(await waitFor(() => r2.got.length === 2), 'unicast to a learned MAC goes to its remote');
  t.equal(r2.got[1][8 + 14], 3, 'the unicast frame');

  // Unknown unicast floods. The adapter sends in order on one socket, and loopback keeps that
  // order: once remote 1 has the flood, it would have had the unicast before it.
  b.send(ethFrame('02:00:00:00:00:99', '02:00:00:00:00:0b', 4));
  t.ok(await waitFor(() => r1.got.length >= 2 && r2.got.length === 3), 'unknown unicast replicated');
  t.same(r1.got.map((m) => m[8 + 14]), [1, 4], 'remote 1 got the broadcast and the flood, not the unicast to remote 2');

  // The other VNI on the same socket belongs to bridge vale1.
  await sendTo(r1, vxlanEncap(7, ethFrame(BCAST, '02:00:00:00:00:77', 5)), lport);
  t.ok(await waitFor(() => drain(c).some((f) => f[14] === 5)), 'VNI 7 goes to vale1');
  t.notOk(drain(b).some((f) => f[14] === 5), 'and not to vale0');
  // A datagram from remote 3 goes to vale0:up2 (same VNI 42, its own port).
  await sendTo(r3, vxlanEncap(42, ethFrame(BCAST, '02:00:00:00:00:33', 6)), lport);
  t.ok(await waitFor(() => drain(b).some((f) => f[14] === 6)), 'remote 3 reaches vale0 through vale0:up2');
  t.equal(up2.stats().rxFrames, 1, 'counted on vale0:up2');
  // Remote 3's broadcast entered through vale0:up2, so the bridge flooded it out of vale0:up too
  // (vale0:up sends it when its thread reads its RX ring: wait for that).
  await waitFor(() => up.stats().txFrames === 7);
  const s: AdapterStats = up.stats();
  t.same(s.remotes!.map((r) => [r.rxFrames, r.txFrames, r.learned]), [[0, 3, 0], [1, 4, 1]], 'per-remote counters');
  t.equal(s.dropped, 0, 'nothing dropped');

  // Two attaches racing for one fixed local port share one socket.
  const fixed = await freeUdpPort();
  const [ra, rb] = await Promise.all([
    attachVxlan(sw, 'vale2:a', { local: `127.0.0.1:${fixed}`, remotes: ['127.0.0.5:4789'], vni: 9 }),
    attachVxlan(sw, 'vale2:b', { local: `127.0.0.1:${fixed}`, remotes: ['127.0.0.6:4789'], vni: 9 }),
  ]);
  t.equal(ra.local, rb.local, 'concurrent attaches on one address share its socket');
  await ra.close();
  await rb.close();
});

// ---- kernel vxlan in network namespaces (root) ---------------------------------------------------

const rootSkip = skipFor(t, 'kernel vxlan in namespaces',
  needRoot('network namespaces, kernel vxlan devices') ?? needPackages(['iproute2', 'ethtool', 'iputils-ping'], ['ip', 'ethtool', 'ping']));

t.test('loopback: outer UDP source port by flow hash (RFC 7348 §5)', async (t) => {
  const sw = new Switch({ name: `vx-flow-${process.pid}` });
  const r1 = createSocket('udp4');
  const from: number[] = [];
  const got: Buffer[] = [];
  r1.on('message', (m, rinfo) => {
    from.push(rinfo.port);
    got.push(m);
  });
  r1.bind(0, '127.0.0.1');
  await onceWithin(r1, 'listening', 10_000);
  const up = await attachVxlan(sw, 'vale0:up', { local: '127.0.0.1:0', remotes: [`127.0.0.1:${r1.address().port}`], vni: 42 });
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    r1.close();
    await up.close();
    await b.close();
    await sw.close();
  });
  // 64 flows (IPv4 UDP, different source ports), each sent twice.
  const frame = (flow: number) => {
    const f = new FrameBuilder({ length: 60, dstMac: BCAST, srcMac: '02:00:00:00:00:0b', src: `10.0.0.1:${1000 + flow}` }).toBytes();
    return f;
  };
  for (let rep = 0; rep < 2; rep++) for (let f = 0; f < 64; f++) b.send(frame(f));
  t.ok(await waitFor(() => got.length === 128), 'every frame reached the remote');
  const byFlow = new Map<number, Set<number>>();
  for (let i = 0; i < got.length; i++) {
    const inner = got[i].subarray(8);
    const sport = (inner[34] << 8) | inner[35];
    if (!byFlow.has(sport)) byFlow.set(sport, new Set());
    byFlow.get(sport)!.add(from[i]);
  }
  t.equal(byFlow.size, 64, '64 inner flows');
  t.ok([...byFlow.values()].every((s) => s.size === 1), 'each flow always leaves from one UDP source port');
  const ports = new Set(from);
  t.ok(ports.size > 1, `flows are spread over ${ports.size} source ports`);
  t.ok([...ports].every((p) => p >= 49152 && p <= 65535), 'source ports are in 49152-65535');
  t.ok(flowHash(frame(1), 0, 60) === flowHash(frame(1), 0, 60) && flowHash(frame(1), 0, 60) !== flowHash(frame(2), 0, 60), 'flowHash depends on the L4 ports');
});

t.test('loopback: a burst from a remote arrives whole and in order; strangers counted; the UDP port is exclusive, even to SO_REUSEADDR', async (t) => {
  const sw = new Switch({ name: `vx-burst-${process.pid}` });
  const r1 = await udp('127.0.0.1');
  const stranger = await udp('127.0.0.2');
  const lport = await freeUdpPort();
  const up = await attachVxlan(sw, 'vale0:up', { local: `127.0.0.1:${lport}`, remotes: [`127.0.0.1:${r1.address().port}`], vni: 42 });
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    r1.close();
    stranger.close();
    await up.close();
    await b.close();
    await sw.close();
  });

  // The adapter binds its UDP port without SO_REUSEADDR, so no other socket can take the port
  // and receive the tunnel's traffic, not even one that asks for SO_REUSEADDR itself.
  for (const reuseAddr of [false, true]) {
    const other = createSocket({ type: 'udp4', reuseAddr });
    const bindErr = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      other.once('error', (e) => resolve(e));
      other.bind(lport, '127.0.0.1', () => resolve(null));
    });
    other.close();
    t.equal(bindErr?.code, 'EADDRINUSE', `a socket ${reuseAddr ? 'with' : 'without'} SO_REUSEADDR cannot bind the adapter's address:port`);
  }

  // 1000 datagrams (port b's RX ring holds 1023) sent while this thread (the adapter's) is busy
  // sending them: they wait in the kernel's queue and are read one after another. One from a
  // stranger in the middle.
  const N = 1000;
  const sent: Promise<void>[] = [];
  for (let i = 0; i < N; i++) {
    sent.push(sendTo(r1, vxlanEncap(42, ethFrame(BCAST, '02:00:00:00:00:01', i, 60 + (i % 7) * 100)), lport));
    if (i === N / 2) sent.push(sendTo(stranger, vxlanEncap(42, ethFrame(BCAST, '02:00:00:00:00:09', 0xffff)), lport, '127.0.0.1'));
  }
  await Promise.all(sent);
  const got: number[] = [];
  const done = await waitFor(() => {
    for (let f = b.recv(); f; f = b.recv()) got.push(f[14] | (f[15] << 8));
    return got.length >= N;
  }, 10_000);
  const s = up.stats();
  t.ok(done, `all ${N} frames reached port b (${got.length}; adapter rx ${s.rxFrames}, drops ${JSON.stringify(s.drops)})`);
  t.same(got, Array.from({ length: N }, (_, i) => i & 0xffff), 'in the order sent, none from the stranger');
  t.equal(s.rxFrames, N, 'rxFrames counts every datagram of the remote');
  t.equal(s.remotes![0].rxFrames, N, 'all attributed to the remote');
  t.equal(s.drops.unknownSource, 1, 'the stranger\'s datagram: unknownSource');
  t.equal(s.dropped, 1, 'nothing else dropped');
});

const id = process.pid % 100000;
const NS = { sw: `vsw-sw-${id}`, a: `vsw-a-${id}`, b: `vsw-b-${id}` };
const DIST = join(REPO, 'dist/test/fixtures');

async function sh(...args: string[]): Promise<string> {
  const { stdout } = await execFileP(args[0], args.slice(1), { timeout: 30_000 });
  return stdout;
}
const inNs = (ns: string, ...args: string[]) => sh('ip', 'netns', 'exec', ns, ...args);

async function makeNamespaces(): Promise<void> {
  for (const ns of Object.values(NS)) {
    await sh('ip', 'netns', 'add', ns);
    // No IPv6 autoconf chatter (MLD/ND) on the links we create.
    await inNs(ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1');
    await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  for (const [side, n] of [['a', 1], ['b', 2]] as const) {
    const ns = NS[side];
    const swEnd = `vs${side}${id}`;
    const nsEnd = `vn${side}${id}`;
    await sh('ip', 'link', 'add', swEnd, 'type', 'veth', 'peer', 'name', nsEnd);
    await sh('ip', 'link', 'set', swEnd, 'netns', NS.sw);
    await sh('ip', 'link', 'set', nsEnd, 'netns', ns);
    await inNs(NS.sw, 'ip', 'addr', 'add', `10.99.${n}.1/24`, 'dev', swEnd);
    await inNs(NS.sw, 'ip', 'link', 'set', swEnd, 'up');
    await inNs(ns, 'ip', 'addr', 'add', `10.99.${n}.2/24`, 'dev', nsEnd);
    await inNs(ns, 'ip', 'link', 'set', nsEnd, 'up');
    await inNs(ns, 'ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'local', `10.99.${n}.2`, 'remote', `10.99.${n}.1`, 'dstport', '4789');
    // Without this, inner TCP/UDP checksums stay unfinished across the veth (see docs/INTEROP-TESTS.md).
    await inNs(ns, 'ethtool', '-K', 'vx0', 'tx', 'off');
    await inNs(ns, 'ip', 'link', 'set', 'vx0', 'mtu', '1450');
    await inNs(ns, 'ip', 'addr', 'add', `192.168.42.${n}/24`, 'dev', 'vx0');
    await inNs(ns, 'ip', 'link', 'set', 'vx0', 'up');
  }
}

async function deleteNamespaces(): Promise<void> {
  for (const ns of Object.values(NS)) await execFileP('ip', ['netns', 'del', ns]).catch(() => {});
}

interface SwitchProc {
  proc: ChildProcess;
  request(cmd: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function startSwitch(config: object): Promise<SwitchProc> {
  const proc = spawn('ip', ['netns', 'exec', NS.sw, process.execPath, join(DIST, 'adapter-vxlan-switch.js'), JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      lines.push({ raw: l });
    }
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const next = async (key: string, timeoutMs = 10_000): Promise<Record<string, unknown>> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = lines.findIndex((l) => key in l || 'error' in l);
      if (i >= 0) {
        const l = lines.splice(i, 1)[0];
        if ('error' in l) throw new Error(`switch process: ${String(l.error)}`);
        return l;
      }
      if (Date.now() > end || proc.exitCode !== null) throw new Error(`switch process: no "${key}" reply`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), exited, new Promise((r) => setTimeout(r, 200))]);
    }
  };
  await next('ready');
  return {
    proc,
    async request(cmd) {
      proc.stdin!.write(cmd + '\n');
      return next(cmd);
    },
    async stop() {
      if (proc.exitCode !== null) return;
      proc.stdin!.end('quit\n');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

const ping = (ns: string, dst: string, count = 3) =>
  execFileP('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '2', dst], { timeout: 30_000 });

t.test('kernel vxlan in two namespaces ping each other through vswitch', { skip: rootSkip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-vx-'));
  const vmSock = join(dir, 'vm.sock');
  await deleteNamespaces();
  // Cleanups run last-registered first: processes stop before their namespaces go.
  const cleanups: (() => unknown)[] = [];
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c();
    await deleteNamespaces();
    rmSync(dir, { recursive: true, force: true });
  });
  await makeNamespaces();
  // One port per remote host: the bridge switches between them. Both ports share one UDP socket.
  const sw = await startSwitch({
    vxlan: [
      { port: 'vale0:nsa', local: '0.0.0.0:4789', remotes: ['10.99.1.2:4789'], vni: 42 },
      { port: 'vale0:nsb', local: '0.0.0.0:4789', remotes: ['10.99.2.2:4789'], vni: 42 },
    ],
    stream: [{ port: 'vale0:vm', spec: `unix:${vmSock}` }],
  });
  cleanups.push(() => sw.stop());

  await ping(NS.a, '192.168.42.2', 1).catch(() => {}); // first one resolves ARP across the overlay
  const p = await ping(NS.a, '192.168.42.2', 3).then((r) => r.stdout, (e: { stdout?: string }) => `FAILED ${e.stdout ?? ''}`);
  t.match(p, /3 packets transmitted, 3 received/, 'namespace a pings namespace b through the bridge');
  const p2 = await ping(NS.b, '192.168.42.1', 3).then((r) => r.stdout, (e: { stdout?: string }) => `FAILED ${e.stdout ?? ''}`);
  t.match(p2, /3 packets transmitted, 3 received/, 'and back');

  // TCP with full-size segments (MTU 1450 inside, checksums finished by `ethtool -K vx0 tx off`).
  const server = `const s=require('net').createServer(c=>c.pipe(c)).listen(7000,'192.168.42.2',()=>console.log('up'));setTimeout(()=>s.close(),20000).unref()`;
  const srv = spawn('ip', ['netns', 'exec', NS.b, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => srv.kill());
  await onceWithin(srv.stdout!, 'data', 15_000);
  const client = `const n=1<<20,buf=Buffer.alloc(n,7);let got=0;const c=require('net').connect(7000,'192.168.42.2',()=>c.end(buf));` +
    `c.on('data',d=>{got+=d.length});c.on('close',()=>{console.log(got);process.exit(got===n?0:1)});setTimeout(()=>{console.log('timeout',got);process.exit(2)},20000)`;
  const tcp = await execFileP('ip', ['netns', 'exec', NS.a, process.execPath, '-e', client], { timeout: 30_000 }).then((r) => r.stdout.trim(), (e: { stdout?: string }) => `FAILED ${e.stdout ?? ''}`);
  t.equal(tcp, String(1 << 20), 'a 1 MiB TCP echo between the namespaces completes');

  // Malformed datagrams from namespace a (a configured remote's address): wrong VNI, short header.
  const wrongVni = Buffer.concat([Buffer.from([0x08, 0, 0, 0, 0, 0, 43, 0]), Buffer.from(ethFrame(BCAST, '02:00:00:00:00:01', 1))]).toString('hex');
  await inNs(NS.a, process.execPath, join(DIST, 'adapter-udp-send.js'), '10.99.1.1', '4789', wrongVni, '08000000', '00000000000000002a00');
  const st = (await sw.request('stats')).stats as Record<string, AdapterStats>;
  const nsa = st['vale0:nsa'];
  t.equal(nsa.drops.wrongVni, 1, 'wrong VNI counted');
  t.equal(nsa.drops.truncated, 1, 'short header counted');
  t.equal(nsa.drops.badHeader, 1, 'header without the I flag counted');
  t.ok(nsa.rxFrames > 0 && nsa.txFrames > 0 && st['vale0:nsb'].rxFrames > 0, 'frames both ways on both uplinks');
  const after = await ping(NS.a, '192.168.42.2', 3).then((r) => r.stdout, (e: { stdout?: string }) => `FAILED ${e.stdout ?? ''}`);
  t.match(after, /3 packets transmitted, 3 received/, 'the path keeps working after the malformed datagrams');

  // Part 3: a QEMU guest on the same bridge (a stream port) and namespace a ping each other.
  const noQemu = needPackages(['qemu-system-x86', 'busybox-static', 'linux-image-amd64', 'cpio', 'kmod'], ['qemu-system-x86_64']);
  const img = noQemu ? noQemu.reason : await guestImage();
  if (typeof img === 'string') {
    requireOrSkip(t, 'the namespace ↔ QEMU guest ping', noQemu ?? { reason: img, fatal: isRoot });
    return;
  }
  let g: Guest | null = null;
  cleanups.push(() => g?.kill());
  g = bootGuest(img, { name: 'vm3', netdev: `stream,server=off,addr.type=unix,addr.path=${vmSock}`, mac: '52:54:00:00:00:03', ip: '192.168.42.3', peer: '192.168.42.1' });
  const r = await g.result(120_000);
  if (!r?.startsWith('VSWITCH-PING-OK')) t.comment(g.output().slice(-3000));
  t.match(r, /^VSWITCH-PING-OK vm3 192\.168\.42\.1 replies=3/, 'the QEMU guest pings namespace a across the bridge');
  const toVm = await ping(NS.a, '192.168.42.3', 3).then((x) => x.stdout, (e: { stdout?: string }) => `FAILED ${e.stdout ?? ''}`);
  t.match(toVm, /3 packets transmitted, 3 received/, 'namespace a pings the QEMU guest');
  await g.kill();
});
