// ctl attach/detach/adapters and vswitch capture, against a real vswitch serve, with Node
// sockets playing QEMU (stream and dgram) and a VXLAN peer on loopback.
import t from 'tap';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { connectStreamPeer } from '../src/adapters/index.js';
import { PcapReader } from '../src/pcap.js';
import { runCli, spawnCli, startServe, tmpSocket, oneLine, waitForAdapters } from './helpers/cli.js';
import { onceWithin } from './helpers/wait.js';

const once = (e: Parameters<typeof onceWithin>[0], ev: string) => onceWithin(e, ev, 10_000);

function frame(dst: number[], src: number[], tag: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0); f.set(src, 6); f[12] = 8; f[14] = tag;
  return f;
}
const BCAST = [255, 255, 255, 255, 255, 255];
const freePort = async () => {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await onceWithin(s, 'listening', 30_000);
  const p = s.address().port;
  s.close();
  return p;
};

t.test('attach QEMU stream, dgram and VXLAN ports from the CLI; capture a port', async (t) => {
  const { dir, socket } = tmpSocket(t);
  await startServe(t, socket);
  const ctl = (...a: string[]) => runCli(['ctl', ...a, '--socket', socket]);
  const vm1 = join(dir, 'vm1.sock');
  let r = await ctl('attach', 'vale0:vm1', '--qemu-stream', `unix:${vm1}`);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /attached qemu-stream to vale0:vm1/);
  const tcpPort = await freePort();
  r = await ctl('attach', 'vale0:vm2', '--qemu-stream', `tcp:127.0.0.1:${tcpPort}`);
  t.equal(r.code, 0, r.stderr);
  const [dgA, dgB] = [await freePort(), await freePort()];
  r = await ctl('attach', 'vale0:vm3', '--qemu-dgram', `127.0.0.1:${dgA}`, '--remote', `127.0.0.1:${dgB}`);
  t.equal(r.code, 0, r.stderr);
  const [vxA, vxB] = [await freePort(), await freePort()];
  r = await ctl('attach', 'vale0:up', '--vxlan', '--local', `127.0.0.1:${vxA}`, '--remote', `127.0.0.1:${vxB}`, '--vni', '42');
  t.equal(r.code, 0, r.stderr);

  const p1 = await connectStreamPeer(`unix:${vm1}`);
  const p2 = await connectStreamPeer(`tcp:127.0.0.1:${tcpPort}`);
  t.teardown(() => { p1.socket.destroy(); p2.socket.destroy(); });
  const vm3 = createSocket('udp4');
  vm3.bind(dgB, '127.0.0.1');
  const vx = createSocket('udp4');
  vx.bind(vxB, '127.0.0.1');
  t.teardown(() => { vm3.close(); vx.close(); });
  await Promise.all([onceWithin(vm3, 'listening', 30_000), onceWithin(vx, 'listening', 30_000)]);
  // The stream adapters have accepted the two peers.
  await waitForAdapters(socket, 'both stream peers to be connected',
    (l) => ['vale0:vm1', 'vale0:vm2'].every((p) => l.find((a) => a.port === p)?.connected === true));

  const cap = spawnCli(t, ['capture', '-i', 'vale0:vm1', '-w', join(dir, 'vm1.pcap'), '-c', '2', '--socket', socket]);
  await cap.waitFor(/capturing vale0:vm1/);
  const got2 = onceWithin(p2, 'frame', 30_000);
  const got3 = onceWithin(vm3, 'message', 30_000);
  const got4 = onceWithin(vx, 'message', 30_000);
  p1.send(frame(BCAST, [2, 0, 0, 0, 0, 1], 7));
  const [f2] = (await got2) as [Uint8Array];
  t.equal(f2[14], 7, 'the TCP stream VM got the broadcast');
  const [d3] = (await got3) as [Buffer];
  t.equal(d3.length, 60, 'the dgram VM got it as one datagram');
  const [d4] = (await got4) as [Buffer];
  t.equal(d4[0], 0x08, 'VXLAN flags: I');
  t.equal(d4.readUIntBE(4, 3), 42, 'VNI 42');
  t.equal(d4[8 + 14], 7, 'inner frame after the 8-byte header');
  const back = onceWithin(p1, 'frame', 30_000);
  p2.send(frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 8));
  t.equal(((await back) as [Uint8Array])[0][14], 8, 'unicast reply to the learned MAC');
  const end = await cap.exited;
  t.equal(end.code, 0, cap.stderr);
  t.match(cap.stderr, /2 frames \(120 bytes\) captured/);
  const recs = [...PcapReader.fromBuffer(readFileSync(join(dir, 'vm1.pcap')))];
  t.same(recs.map((x) => x.data[14]), [7, 8], 'the capture holds both directions');

  r = await ctl('adapters', '--json');
  const list = JSON.parse(r.stdout) as { port: string; kind: string; rxFrames: number; thread?: number; drops: Record<string, number> }[];
  t.same(list.map((a) => [a.port, a.kind]).sort(), [['vale0:up', 'vxlan'], ['vale0:vm1', 'qemu-stream'], ['vale0:vm2', 'qemu-stream'], ['vale0:vm3', 'qemu-dgram']]);
  const by = (p: string) => list.find((a) => a.port === p)!;
  t.ok(by('vale0:vm3').thread! > 0 && by('vale0:up').thread! > 0 && by('vale0:vm3').thread !== by('vale0:up').thread,
    'serve runs the dgram and VXLAN adapters in Workers of their own');
  t.ok(by('vale0:vm1').thread! > 0, 'and the stream adapter too');
  t.equal(by('vale0:vm3').drops.kernelQueue, 0, 'kernel queue drops are reported (none here)');
  t.equal((by('vale0:vm1') as { txQueuedBytes?: number }).txQueuedBytes, 0, 'a stream adapter reports the bytes it holds for its peer (none here)');
  r = await ctl('adapters');
  t.match(r.stdout, /PORT\s+KIND\s+LOCAL\s+THREAD\s+IN\s+OUT\s+DROPPED\s+BY REASON\s+RING FULL\s+QUEUED/);
  r = await ctl('detach', 'vale0:vm3');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /detached qemu-dgram from vale0:vm3: 0 frames in, 1 out/);
  for (const [args, re] of [
    [["attach", "vale0:x", "--qemu-stream", "unix:/a", "--vxlan"], /exactly one of/],
    [['attach', 'vale0:x', '--qemu-dgram', '127.0.0.1:1'], /needs one --remote/],
    [['attach', 'vale0:x', '--vxlan', '--local', '127.0.0.1:1'], /--vxlan needs/],
    [['attach', 'vale0:vm1', '--qemu-stream', `unix:${join(dir, 'other.sock')}`], /held by the qemu-stream adapter/],
    [['detach', 'vale0:nothing'], /no adapter is attached to vale0:nothing/],
  ] as [string[], RegExp][]) {
    const e = await ctl(...args);
    t.not(e.code, 0, args.join(' '));
    t.match(e.stderr, re, args.join(' '));
    t.ok(oneLine(e.stderr), e.stderr);
  }
  // A stream port with its peer still connected, and a VXLAN uplink.
  r = await ctl('detach', 'vale0:vm1');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /detached qemu-stream from vale0:vm1: 1 frames in, 1 out/);
  t.ok(await new Promise((res) => { if (p1.socket.destroyed) res(true); else p1.socket.once('close', () => res(true)); setTimeout(() => res(false), 10_000); }),
    'the stream peer is disconnected');
  r = await ctl('detach', 'vale0:up');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /detached vxlan from vale0:up: 0 frames in, 1 out/);
  r = await ctl('adapters', '--json');
  t.same((JSON.parse(r.stdout) as { port: string }[]).map((a) => a.port), ['vale0:vm2'], 'one adapter left');
  // The VXLAN socket is closed: its port can be bound again.
  const again = createSocket('udp4');
  t.teardown(() => again.close());
  again.bind(vxA, '127.0.0.1');
  await onceWithin(again, 'listening', 30_000);
  t.pass(`127.0.0.1:${vxA} is free again`);
});

t.test('serve --config attaches adapters at start, before it listens', async (t) => {
  const { dir, socket } = tmpSocket(t);
  const { writeFileSync } = await import('node:fs');
  const vm = join(dir, 'cfg-vm.sock');
  const cfg = join(dir, 'cfg.json');
  writeFileSync(cfg, JSON.stringify({ attach: [{ port: 'vale5:vm', kind: 'qemu-stream', addr: `unix:${vm}` }] }));
  await startServe(t, socket, ['--config', cfg]);
  const peer = await connectStreamPeer(`unix:${vm}`);
  t.teardown(() => peer.socket.destroy());
  const r = await runCli(['ctl', 'adapters', '--json', '--socket', socket]);
  t.same(JSON.parse(r.stdout).map((a: { port: string; kind: string }) => [a.port, a.kind]), [['vale5:vm', 'qemu-stream']]);
  writeFileSync(cfg, JSON.stringify({ attach: [{ port: 'vale5:vm', kind: 'bogus' }] }));
  const bad = await runCli(['serve', '--socket', join(dir, 'x.sock'), '--config', cfg]);
  t.not(bad.code, 0);
  t.match(bad.stderr, /attach\[0\]: attach: "kind" must be qemu-stream, qemu-dgram, vxlan or tap/);
});
