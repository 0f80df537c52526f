// Two real QEMU guests (TCG, the Debian kernel, a busybox initramfs built by test/vm/) ping each
// other through a vswitch bridge: once attached with the QEMU stream adapter (unix sockets), once
// with the QEMU dgram adapter (UDP on 127.0.0.1). Success is read from the guests' serial
// consoles (a marker line printed by test/vm/init). As root it installs QEMU and the guest pieces
// and fails if that or the guest image build fails; it skips, saying why, only where it cannot
// install (not root, no apt-get), and fails then too under VSWITCH_REQUIRE_INTEROP=1.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch } from '../src/index.js';
import { attachQemuDgram, attachQemuStream, type Adapter } from '../src/adapters/index.js';
import { bootGuest, freeUdpPort, guestImage, type Guest, type GuestImage } from './vm/interop-util.js';
import { isRoot, needPackages, skipFor, type Missing } from './helpers/interop.js';
import { runCli, startServe, tmpSocket } from './helpers/cli.js';

const BOOT_MS = 120_000;
// Three pairs of TCG guests: ~4.5 minutes on 2 cores shared with other work (load 15), over tap's
// default 300 s per file. The runner is told of the longer limit.
t.setTimeout(600_000);

async function setup(): Promise<GuestImage | Missing> {
  const missing = needPackages(['qemu-system-x86', 'busybox-static', 'linux-image-amd64', 'cpio', 'kmod'], ['qemu-system-x86_64', 'cpio']);
  if (missing) return missing;
  const img = await guestImage();
  // As root the kernel is readable and every piece installed: a failure here is a broken setup.
  return typeof img === 'string' ? { reason: img, fatal: isRoot } : img;
}

const img = await setup();
const skip = skipFor(t, 'QEMU guests', 'reason' in img ? img : null);

async function pingPair(
  t: Test,
  label: string,
  attach: (sw: Switch) => Promise<{ adapters: Adapter[]; netdevs: [string, string] }>,
): Promise<void> {
  const sw = new Switch({ name: `qemu-${label}-${process.pid}` });
  const guests: Guest[] = [];
  let adapters: Adapter[] = [];
  t.teardown(async () => {
    await Promise.all(guests.map((g) => g.kill()));
    await Promise.all(adapters.map((a) => a.close()));
    await sw.close();
  });
  const att = await attach(sw);
  adapters = att.adapters;
  const image = img as GuestImage;
  const t0 = Date.now();
  guests.push(bootGuest(image, { name: 'vm1', netdev: att.netdevs[0], mac: '52:54:00:00:00:01', ip: '10.0.42.1', peer: '10.0.42.2' }));
  guests.push(bootGuest(image, { name: 'vm2', netdev: att.netdevs[1], mac: '52:54:00:00:00:02', ip: '10.0.42.2', peer: '10.0.42.1' }));
  const [r1, r2] = await Promise.all(guests.map((g) => g.result(BOOT_MS)));
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  t.comment(`${label}: both guests answered in ${secs} s`);
  for (const [i, r] of [r1, r2].entries()) {
    if (!r || !r.startsWith('VSWITCH-PING-OK')) t.comment(`vm${i + 1} console:\n${guests[i].output().slice(-3000)}`);
  }
  t.match(r1, /^VSWITCH-PING-OK vm1 10\.0\.42\.2 replies=3/, 'vm1 pinged vm2 through the switch');
  t.match(r2, /^VSWITCH-PING-OK vm2 10\.0\.42\.1 replies=3/, 'vm2 pinged vm1 through the switch');
  for (const a of adapters) {
    const s = a.stats();
    t.ok(s.rxFrames > 0 && s.txFrames > 0, `${a.portName}: frames both ways (rx ${s.rxFrames}, tx ${s.txFrames})`);
    t.equal(s.dropped - s.drops.noPeer, 0, `${a.portName}: nothing malformed from QEMU (${JSON.stringify(s.drops)})`);
  }
  const fdb = sw.fdb('vale0').map((e) => `${e.mac}@${e.portName}`).sort();
  t.ok(fdb.includes('52:54:00:00:00:01@vale0:vm1') && fdb.includes('52:54:00:00:00:02@vale0:vm2'), `bridge learned both guests (${fdb.join(' ')})`);
}

t.test('two QEMU guests ping each other over --qemu-stream (unix sockets)', { skip, timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-qemu-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await pingPair(t, 'stream', async (sw) => {
    const s1 = join(dir, 'vm1.sock');
    const s2 = join(dir, 'vm2.sock');
    // The switch listens before QEMU starts (QEMU 7.2 does not retry).
    const adapters = [await attachQemuStream(sw, 'vale0:vm1', `unix:${s1}`), await attachQemuStream(sw, 'vale0:vm2', `unix:${s2}`)];
    const nd = (p: string) => `stream,server=off,addr.type=unix,addr.path=${p}`;
    return { adapters, netdevs: [nd(s1), nd(s2)] };
  });
});

t.test('two QEMU guests ping each other over --qemu-dgram (UDP on 127.0.0.1)', { skip, timeout: 150_000 }, async (t) => {
  await pingPair(t, 'dgram', async (sw) => {
    const [sw1, vm1, sw2, vm2] = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
    const adapters = [
      await attachQemuDgram(sw, 'vale0:vm1', { local: `127.0.0.1:${sw1}`, remote: `127.0.0.1:${vm1}` }),
      await attachQemuDgram(sw, 'vale0:vm2', { local: `127.0.0.1:${sw2}`, remote: `127.0.0.1:${vm2}` }),
    ];
    const nd = (mine: number, theirs: number) =>
      `dgram,local.type=inet,local.host=127.0.0.1,local.port=${mine},remote.type=inet,remote.host=127.0.0.1,remote.port=${theirs}`;
    return { adapters, netdevs: [nd(vm1, sw1), nd(vm2, sw2)] };
  });
});

t.test('two QEMU guests attached through vswitch serve + vswitch ctl attach ping each other', { skip, timeout: 180_000 }, async (t) => {
  const { dir, socket } = tmpSocket(t);
  await startServe(t, socket);
  const ctl = (...a: string[]) => runCli(['ctl', ...a, '--socket', socket]);
  const socks = [join(dir, 'vm1.sock'), join(dir, 'vm2.sock')];
  for (const [i, s] of socks.entries()) {
    const r = await ctl('attach', `vale0:vm${i + 1}`, '--qemu-stream', `unix:${s}`);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, new RegExp(`attached qemu-stream to vale0:vm${i + 1}`));
  }
  const image = img as GuestImage;
  const nd = (p: string) => `stream,server=off,addr.type=unix,addr.path=${p}`;
  const guests = [
    bootGuest(image, { name: 'vm1', netdev: nd(socks[0]), mac: '52:54:00:00:00:11', ip: '10.0.43.1', peer: '10.0.43.2' }),
    bootGuest(image, { name: 'vm2', netdev: nd(socks[1]), mac: '52:54:00:00:00:12', ip: '10.0.43.2', peer: '10.0.43.1' }),
  ];
  t.teardown(() => Promise.all(guests.map((g) => g.kill())));
  const [r1, r2] = await Promise.all(guests.map((g) => g.result(BOOT_MS)));
  for (const [i, r] of [r1, r2].entries()) {
    if (!r || !r.startsWith('VSWITCH-PING-OK')) t.comment(`vm${i + 1} console:\n${guests[i].output().slice(-3000)}`);
  }
  t.match(r1, /^VSWITCH-PING-OK vm1 10\.0\.43\.2 replies=3/, 'vm1 pinged vm2 through the daemon');
  t.match(r2, /^VSWITCH-PING-OK vm2 10\.0\.43\.1 replies=3/, 'vm2 pinged vm1 through the daemon');
  const ad = JSON.parse((await ctl('adapters', '--json')).stdout) as { port: string; rxFrames: number; txFrames: number; connected?: boolean; dropped: number; drops: { noPeer: number } }[];
  for (const a of ad) {
    t.ok(a.rxFrames > 0 && a.txFrames > 0, `${a.port}: frames both ways (rx ${a.rxFrames}, tx ${a.txFrames})`);
    t.equal(a.dropped - a.drops.noPeer, 0, `${a.port}: nothing malformed from QEMU`);
  }
  const fdb = JSON.parse((await ctl('fdb', 'vale0', '--json')).stdout) as { mac: string; portName: string }[];
  t.same(fdb.map((e) => `${e.mac}@${e.portName}`).sort(), ['52:54:00:00:00:11@vale0:vm1', '52:54:00:00:00:12@vale0:vm2'], 'the daemon\'s bridge learned both guests');
  for (const p of ['vale0:vm1', 'vale0:vm2']) {
    const r = await ctl('detach', p);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, new RegExp(`detached qemu-stream from ${p}: [1-9]\\d* frames in, [1-9]\\d* out`));
  }
});
