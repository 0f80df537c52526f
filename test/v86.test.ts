// v86 guests on the switch: two v86 guests (a Debian i686 kernel + busybox initramfs, each in its
// own Worker via startV86Guest, NIC attached with attachV86) and one QEMU guest (TCG, stream
// adapter) share bridge vale0 of one Switch. The v86 guests ping each other and the QEMU guest;
// the QEMU guest's /init pings the first v86 guest and prints a marker. Pings are typed on the
// v86 guests' serial consoles and their output is read back from the consoles.
// Skips, saying why, where the Debian packages cannot be had (the QEMU part alone if only QEMU is
// missing).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch } from 'vswitch';
import { attachQemuStream, type Adapter } from 'vswitch/adapters';
import { startV86Guest, type V86Guest } from 'vswitch/v86';
import { bootGuest, ensureDebianPackages, guestImage, have, waitFor, type Guest, type GuestImage } from './vm/interop-util.js';
import { v86Image, type V86Image } from './vm/v86-image.js';

/** Generous: the 2-core test machines are shared, and a v86 boot takes 10–60 s there. */
const BOOT_MS = 240_000;
const APPEND = 'console=ttyS0 quiet tsc=reliable mitigations=off cryptomgr.notests noisapnp initcall_blacklist=init_kprobe_trace';

const img = await v86Image();
const skip = typeof img === 'string' ? img : false;
if (skip) {
  console.log(`# v86: skipping: ${skip}`);
  t.comment(`skipping v86 tests: ${skip}`);
}

async function qemuSetup(): Promise<GuestImage | string> {
  const missing = ensureDebianPackages(['qemu-system-x86', 'busybox-static', 'linux-image-amd64', 'cpio', 'kmod']);
  if (missing) return missing;
  if (!have('qemu-system-x86_64')) return 'qemu-system-x86_64 not found (Debian package qemu-system-x86)';
  return guestImage();
}

/** Runs a shell command on a guest's serial console; resolves with the output it printed. */
async function run(g: V86Guest, cmd: string, timeoutMs = 60_000): Promise<string> {
  const from = g.outputLength;
  // The marker is computed by the shell, so the echoed command line does not match it.
  g.send(`${cmd}; echo VSW-DONE-$((6*7))\n`);
  await g.waitFor('VSW-DONE-42', { from, timeoutMs });
  return g.outputSince(from);
}

interface PingResult { sent: number; received: number; rtt: number[] }

function parsePing(out: string): PingResult | null {
  const m = /(\d+) packets transmitted, (\d+) packets received/.exec(out);
  if (!m) return null;
  const rtt = [...out.matchAll(/time=([\d.]+) ms/g)].map((x) => Number(x[1]));
  return { sent: Number(m[1]), received: Number(m[2]), rtt };
}

t.test('v86 guests ping each other and a QEMU guest through one bridge', { skip, timeout: BOOT_MS + 120_000 }, async (t) => {
  const image = img as V86Image;
  const sw = new Switch({ name: `v86-${process.pid}` });
  const guests: V86Guest[] = [];
  let qemu: Guest | null = null;
  let qemuAdapter: Adapter | null = null;
  const dir = mkdtempSync(join(tmpdir(), 'vsw-v86-'));
  t.teardown(async () => {
    await Promise.all(guests.map((g) => g.stop()));
    await qemu?.kill();
    await qemuAdapter?.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const t0 = Date.now();
  const start = (n: number) =>
    startV86Guest({
      kernel: image.kernel, initrd: image.initrd, bios: image.bios, vgaBios: image.vgaBios,
      append: `${APPEND} vs_name=v${n} vs_ip=10.0.77.${n}/24 vs_mac=52:54:00:77:00:0${n}`,
      port: `vale0:v${n}`, switch: sw.name, memoryMB: 128,
    });
  guests.push(...(await Promise.all([start(1), start(2)])));
  const [g1, g2] = guests;

  // The QEMU guest boots meanwhile; its /init pings v1 until it answers (and then keeps answering).
  const qimg = await qemuSetup();
  const qemuSkip = typeof qimg === 'string' ? qimg : false;
  if (!qemuSkip) {
    const sock = join(dir, 'q1.sock');
    qemuAdapter = await attachQemuStream(sw, 'vale0:q1', `unix:${sock}`);
    qemu = bootGuest(qimg as GuestImage, {
      name: 'q1', netdev: `stream,server=off,addr.type=unix,addr.path=${sock}`, mac: '52:54:00:77:00:10',
      ip: '10.0.77.10', peer: '10.0.77.1', pingTimeout: BOOT_MS / 1000, linger: BOOT_MS / 1000,
    });
  }

  const ready = /VSWITCH-V86-READY v\d (\S+) \S+\r?\n/;
  const [r1, r2] = await Promise.all([g1.waitFor(ready, { timeoutMs: BOOT_MS }), g2.waitFor(ready, { timeoutMs: BOOT_MS })]);
  t.comment(`both v86 guests up after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  t.match(r1, /52:54:00:77:00:01/, 'v1 runs with the MAC it was given');
  t.match(r2, /52:54:00:77:00:02/, 'v2 runs with the MAC it was given');
  // The shell prompt comes right after the marker.
  await Promise.all([g1.waitFor('# ', { timeoutMs: 30_000 }), g2.waitFor('# ', { timeoutMs: 30_000 })]);

  await t.test('v86 ↔ v86', async (t) => {
    const out12 = await run(g1, 'ping -c 5 -W 5 10.0.77.2');
    const p12 = parsePing(out12);
    if (!p12 || p12.received !== 5) t.comment(`v1 console:\n${out12}`);
    t.ok(p12, 'v1 ran ping');
    t.equal(p12?.received, 5, `v1 → v2: 5/5 replies (RTT ms: ${p12?.rtt.join(' ')})`);
    const out21 = await run(g2, 'ping -c 3 -W 5 10.0.77.1');
    const p21 = parsePing(out21);
    t.equal(p21?.received, 3, `v2 → v1: 3/3 replies (RTT ms: ${p21?.rtt.join(' ')})`);
    for (const g of [g1, g2]) {
      const s = await g.stats();
      t.ok(s && s.rxFrames >= 8 && s.txFrames >= 8, `${g.port}: frames both ways (from guest ${s?.rxFrames}, to guest ${s?.txFrames})`);
      t.equal(s?.dropped, 0, `${g.port}: no drops (${JSON.stringify(s?.drops)})`);
      t.equal(s?.switch?.dropNoDest, 0, `${g.port}: the switch dropped nothing`);
    }
    const fdb = sw.fdb('vale0').map((e) => `${e.mac}@${e.portName}`);
    t.ok(fdb.includes('52:54:00:77:00:01@vale0:v1') && fdb.includes('52:54:00:77:00:02@vale0:v2'), `bridge learned both v86 guests (${fdb.join(' ')})`);
  });

  await t.test('v86 ↔ QEMU', { skip: qemuSkip }, async (t) => {
    const out = await run(g1, 'ping -c 3 -W 5 10.0.77.10');
    const p = parsePing(out);
    if (!p || p.received !== 3) t.comment(`v1 console:\n${out}`);
    t.ok(p, 'v1 ran ping');
    t.equal(p?.received, 3, `v86 v1 → QEMU q1: 3/3 replies (RTT ms: ${p?.rtt.join(' ')})`);
    const marker = await qemu!.result(BOOT_MS);
    if (!marker?.startsWith('VSWITCH-PING-OK')) t.comment(`q1 console:\n${qemu!.output().slice(-3000)}`);
    t.match(marker, /^VSWITCH-PING-OK q1 10\.0\.77\.1 replies=3/, 'QEMU q1 → v86 v1: the QEMU guest pinged the v86 guest');
    const qs = qemuAdapter!.stats();
    t.ok(qs.rxFrames > 0 && qs.txFrames > 0, `vale0:q1: frames both ways (rx ${qs.rxFrames}, tx ${qs.txFrames})`);
    const fdb = sw.fdb('vale0').map((e) => `${e.mac}@${e.portName}`);
    t.ok(fdb.includes('52:54:00:77:00:10@vale0:q1'), 'bridge learned the QEMU guest on its port');
  });

  await t.test('stop releases the ports', async (t) => {
    const last = await g2.stop();
    t.ok(last && last.rxFrames > 0, 'stop() returns the final counters');
    const gone = () => !sw.list().find((b) => b.name === 'vale0')?.ports.some((p) => p.name === 'vale0:v2');
    t.ok(await waitFor(gone, 5000), 'vale0:v2 is gone after the guest stopped');
  });
});
