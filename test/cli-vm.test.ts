// `vswitch vm --v86` against a running `vswitch serve`: the guest's NIC lands on a port of the
// daemon's bridge. The test attaches its own stream port to the same bridge (ctl attach) and
// checks both directions with ARP: its ARP request for the guest's address reaches the guest, the
// guest's ARP reply comes back. It types a command on the guest's console through the CLI's stdin,
// and checks that Ctrl-C (SIGINT) stops the guest and takes its port off the daemon.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { BridgeSummary } from 'vswitch';
import { ControlClient } from 'vswitch/control';
import { connectStreamPeer } from 'vswitch/adapters';
import { CLI, cliEnv, runCli, startServe, tmpSocket } from './helpers/cli.js';
import { v86Image, type V86Image } from './vm/v86-image.js';
import { waitFor } from './vm/interop-util.js';

const BOOT_MS = 240_000;
const img = await v86Image();
const skip = typeof img === 'string' ? img : false;
if (skip) console.log(`# cli-vm: skipping: ${skip}`);

t.test('vm without --v86 says what is missing', async (t) => {
  const r = await runCli(['vm', '--kernel', 'k', '--bios', 'b', '-i', 'vale0:x', '--embedded']);
  t.equal(r.code, 1);
  t.match(r.stderr, /only v86 guests are supported: add --v86/);
});

const GUEST_MAC = '52:54:00:77:00:21';
const TEST_MAC = [0x52, 0x54, 0x00, 0x77, 0x00, 0x99];

function arpRequest(targetIp: number[]): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set(TEST_MAC, 6);
  f.set([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01], 12);
  f.set(TEST_MAC, 22);
  f.set([10, 0, 77, 99], 28);
  f.set(targetIp, 38);
  return f;
}

/**
 * Attaches a stream port vale0:probe to the daemon's bridge, then sends an ARP request for
 * `ip` from it once a second until a reply comes (60 s at most). Returns the reply or null.
 */
async function arpProbe(t: Test, client: ControlClient, sock: string, ip: number[]): Promise<Uint8Array | null> {
  await client.request('attach', { spec: { port: 'vale0:probe', kind: 'qemu-stream', addr: `unix:${sock}` } });
  let reply: Uint8Array | null = null;
  const peer = await connectStreamPeer(`unix:${sock}`, {
    onFrame: (buf, off, len) => {
      const f = buf.subarray(off, off + len);
      if (len >= 42 && f[12] === 0x08 && f[13] === 0x06 && f[21] === 2) reply = f.slice();
    },
  });
  t.teardown(() => peer.close());
  await waitFor(() => {
    if (!reply) peer.send(arpRequest(ip));
    return reply !== null;
  }, 60_000, 1000);
  return reply;
}

t.test('vswitch vm --v86 puts a guest on the daemon\'s bridge', { skip, timeout: BOOT_MS + 60_000 }, async (t) => {
  const image = img as V86Image;
  const { dir, socket } = tmpSocket(t);
  await startServe(t, socket);
  const client = await ControlClient.connect(socket);
  t.teardown(() => client.close());

  const append = `console=ttyS0 quiet tsc=reliable mitigations=off cryptomgr.notests noisapnp initcall_blacklist=init_kprobe_trace vs_name=c1 vs_ip=10.0.77.21/24 vs_mac=${GUEST_MAC}`;
  const vm = spawn(process.execPath, [CLI, 'vm', '--v86', '--kernel', image.kernel, '--initrd', image.initrd, '--bios', image.bios,
    '--append', append, '-i', 'vale0:c1', '--socket', socket], { env: cliEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  vm.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  vm.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((r) => vm.on('close', (code) => r(code)));
  t.teardown(() => { if (vm.exitCode === null) vm.kill('SIGKILL'); });

  t.ok(await waitFor(() => /VSWITCH-V86-READY c1/.test(out) || vm.exitCode !== null, BOOT_MS, 200), 'the guest booted (console on stdout)');
  if (!/VSWITCH-V86-READY/.test(out)) t.comment(`stdout: ${out.slice(-2000)}\nstderr: ${err}`);
  t.match(err, /v86 guest on vale0:c1 \(vswitch serve on /, 'says where the guest is');
  const adapters = await client.request<{ port: string; kind: string }[]>('adapters');
  t.ok(adapters.some((a) => a.port === 'vale0:c1' && a.kind === 'qemu-stream'), 'the daemon serves the guest\'s port');

  // Our own port on the same bridge.
  const reply = await arpProbe(t, client, join(dir, 'probe.sock'), [10, 0, 77, 21]);
  t.ok(reply, 'the guest answered an ARP request sent from another port of the daemon\'s bridge');
  if (reply) {
    const sender = Array.from((reply as Uint8Array).subarray(22, 28), (x) => x.toString(16).padStart(2, '0')).join(':');
    t.equal(sender, GUEST_MAC, 'the reply comes from the guest\'s MAC');
  }

  // stdin is typed on the console.
  vm.stdin.write('echo VSW-$((6*7))\n');
  t.ok(await waitFor(() => out.includes('VSW-42'), 60_000, 100), 'stdin reaches the guest\'s shell');

  vm.kill('SIGINT');
  t.equal(await exited, 0, 'Ctrl-C stops it cleanly');
  const list = await client.request<BridgeSummary[]>('list');
  t.notOk(list.some((b) => b.ports.some((p) => p.name === 'vale0:c1')), 'the guest\'s port is removed from the daemon');
});

t.test('vswitch ctl guest-start boots a guest inside the daemon; guests and guest-stop manage it', { skip, timeout: BOOT_MS + 60_000 }, async (t) => {
  const image = img as V86Image;
  const { dir, socket } = tmpSocket(t);
  await startServe(t, socket);
  const client = await ControlClient.connect(socket);
  t.teardown(() => client.close());
  const mac = '52:54:00:77:00:22';
  const append = `console=ttyS0 quiet tsc=reliable mitigations=off cryptomgr.notests noisapnp initcall_blacklist=init_kprobe_trace vs_name=d1 vs_ip=10.0.77.22/24 vs_mac=${mac}`;
  const consoleFile = join(dir, 'd1.log');
  const start = await runCli(['ctl', 'guest-start', 'vale0:d1', '--kernel', image.kernel, '--initrd', image.initrd, '--bios', image.bios,
    '--append', append, '--console', consoleFile, '--socket', socket], { timeoutMs: 120_000 });
  t.equal(start.code, 0, start.stderr);
  t.match(start.stdout, /^started a v86 guest on vale0:d1/);
  const again = await runCli(['ctl', 'guest-start', 'vale0:d1', '--kernel', image.kernel, '--bios', image.bios, '--socket', socket]);
  t.equal(again.code, 1, 'a second guest on the same port is refused');
  t.match(again.stderr, /^vswitch: vale0:d1 is held by /);

  type G = { port: string; running: boolean; consoleTail: string };
  let list: G[] = [];
  t.ok(await waitFor(async () => {
    list = await client.request<G[]>('guests');
    return list.some((g) => /VSWITCH-V86-READY d1/.test(g.consoleTail));
  }, BOOT_MS, 1000), 'the guest booted inside the daemon (seen in ctl guests)');
  t.ok(existsSync(consoleFile) && readFileSync(consoleFile, 'utf8').includes('VSWITCH-V86-READY d1'), 'its console is written to the file asked');

  t.ok(await arpProbe(t, client, join(dir, 'probe2.sock'), [10, 0, 77, 22]), 'the daemon-hosted guest answers ARP from another port of the bridge');

  const shown = await runCli(['ctl', 'guests', '--socket', socket]);
  t.match(shown.stdout, /^vale0:d1: running, \d+ frames in, \d+ out, \d+ dropped/m, 'ctl guests lists it with its counters');
  const stop = await runCli(['ctl', 'guest-stop', 'vale0:d1', '--socket', socket], { timeoutMs: 60_000 });
  t.equal(stop.code, 0, stop.stderr);
  t.match(stop.stdout, /^stopped the guest on vale0:d1/);
  t.same(await client.request('guests'), [], 'no guest left');
  const none = await runCli(['ctl', 'guest-stop', 'vale0:d1', '--socket', socket]);
  t.equal(none.code, 1);
  t.match(none.stderr, /^vswitch: no guest runs on vale0:d1/);
});

t.test('serve --config checks its "guests" entries', async (t) => {
  const { dir, socket } = tmpSocket(t);
  const cfg = join(dir, 'bad.json');
  writeFileSync(cfg, JSON.stringify({ guests: [{ port: 'vale0:g', kernel: '/nonexistent/vmlinuz', bios: '/nonexistent/bios.bin', colour: 1 }] }));
  const r = await runCli(['serve', '--config', cfg, '--socket', socket]);
  t.equal(r.code, 1);
  t.match(r.stderr, /guests\[0\].*unknown key "colour"/);
  writeFileSync(cfg, JSON.stringify({ guests: [{ port: 'vale0:g', kernel: '/nonexistent/vmlinuz', bios: '/nonexistent/bios.bin' }] }));
  const r2 = await runCli(['serve', '--config', cfg, '--socket', socket]);
  t.equal(r2.code, 1);
  t.match(r2.stderr, /guests\[0\].*kernel/, 'a missing kernel file is named before anything boots');
});
