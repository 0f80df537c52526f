// Adapter behaviour under flow limits and address families, on loopback with Node sockets as the
// outside party: a QEMU stream peer that stops reading (maxQueueBytes: the adapter holds at most
// that many bytes for it, shows them as txQueuedBytes, drops the rest as backpressure, nothing is
// lost uncounted; the same through an adapter Worker), and VXLAN over IPv6.
import t, { type Test } from 'tap';
import { createSocket } from 'node:dgram';
import { createConnection } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch } from '../src/index.js';
import { attachInWorker, attachQemuStream, attachVxlan, StreamDecoder, vxlanEncap, type Adapter } from '../src/adapters/index.js';
import { ethFrame, waitFor } from './vm/interop-util.js';
import { onceWithin } from './helpers/wait.js';

const BCAST = 'ff:ff:ff:ff:ff:ff';

interface FlowRun { got: number; backpressure: number; txFrames: number; peak: number; queuedWhileStalled: number }

/**
 * N full-size frames towards a stream peer that reads nothing until the adapter drops, then
 * everything. With `worker`, the adapter runs in a Worker of its own (counters published every
 * PUBLISH_MS, so the checks wait for them).
 */
async function slowPeer(t: Test, maxQueueBytes: number, N: number, worker = false): Promise<FlowRun> {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-flow-'));
  const sw = new Switch({ name: `flow-${maxQueueBytes}-${worker ? 'w' : 'm'}-${process.pid}`, bridge: { rxSlots: 256, txSlots: 256 } });
  const addr = `unix:${join(dir, 'vm.sock')}`;
  const vm: Adapter = worker
    ? await attachInWorker(sw, { kind: 'qemu-stream', port: 'vale0:vm', addr, options: { maxQueueBytes } })
    : await attachQemuStream(sw, 'vale0:vm', addr, { maxQueueBytes });
  const gen = await sw.open('vale0:gen');
  const peer = createConnection({ path: join(dir, 'vm.sock') });
  t.teardown(async () => {
    peer.destroy();
    await vm.close();
    await gen.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await onceWithin(peer, 'connect', 10_000);
  peer.pause(); // reads nothing for now
  t.ok(await waitFor(() => vm.stats().connected === true, 10_000), 'the adapter has the peer');
  const frames = Array.from({ length: 100 }, (_, i) => ethFrame(BCAST, '02:00:00:00:00:01', i, 1514));
  let sent = 0;
  for (let i = 0; i < N / 100; i++) {
    // 100 frames at a time into a 256-slot ring, then wait until the adapter took them (it
    // writes or drops each one), so the switch never has to drop for a full ring.
    sent += gen.sendBatch(frames);
    const want = sent;
    await waitFor(() => { const s = vm.stats(); return s.txFrames + s.drops.backpressure >= want; }, 10_000, 1);
  }
  t.equal(sent, N, 'the sender handed every frame to the switch');
  t.ok(await waitFor(() => { const s = vm.stats(); return s.txFrames + s.drops.backpressure === N; }, 10_000),
    'every frame the switch gave the adapter is written or dropped by it');
  const stalled = vm.stats();
  t.ok(stalled.drops.backpressure > 0, `frames beyond the limit are dropped as backpressure (${stalled.drops.backpressure})`);
  t.equal(stalled.dropped, stalled.drops.backpressure, 'and for no other reason');
  t.equal(stalled.switch!.rxDropRingFull, 0, 'the switch dropped nothing: the adapter kept taking frames');
  t.ok(stalled.txQueuedBytes! > 0 && stalled.txQueuedBytes! <= maxQueueBytes, `bytes queued for the stalled peer (${stalled.txQueuedBytes}) are within the limit (${maxQueueBytes})`);
  t.ok(stalled.txQueuedPeak! <= maxQueueBytes && stalled.txQueuedPeak! > maxQueueBytes - 2 * (4 + 1514),
    `the peak (${stalled.txQueuedPeak}) reached the limit less at most one frame, never more`);
  let got = 0;
  const dec = new StreamDecoder({ mtu: 65535, onFrame: () => { got++; }, onDrop: () => {} });
  peer.on('data', (d: Buffer) => dec.feed(d));
  peer.resume();
  t.ok(await waitFor(() => got === stalled.txFrames && vm.stats().txQueuedBytes === 0, 20_000),
    `the peer received every frame the adapter wrote (${got} of ${stalled.txFrames}); nothing is queued any more`);
  const st = vm.stats();
  t.equal(got + st.drops.backpressure, N, `received ${got} + dropped ${st.drops.backpressure} = ${N} sent`);
  t.equal(st.txFrames, got, 'the adapter counted exactly what the peer received');
  return { got, backpressure: st.drops.backpressure, txFrames: st.txFrames, peak: st.txQueuedPeak!, queuedWhileStalled: stalled.txQueuedBytes! };
}

t.test('qemu-stream maxQueueBytes: a peer that stops reading holds at most that much; the rest is dropped and counted by the adapter', async (t) => {
  const N = 6000; // ~9 MB of 1514-byte frames: more than the 4 MiB default limit plus the socket buffers
  const small = await slowPeer(t, 64 * 1024, N);
  const big = await slowPeer(t, 4 << 20, N);
  // What the peer got = what the kernel's socket buffer took + what the adapter queued.
  t.ok(small.got < big.got, `the adapter queues fewer frames towards a stalled peer with the smaller limit (${small.got} vs ${big.got})`);
  t.ok((big.got - small.got) * 1514 > 2 << 20, 'by about the difference of the limits (over 2 MiB of frames)');
});

t.test('qemu-stream in a Worker: the same accounting through the shared counters', async (t) => {
  await slowPeer(t, 256 * 1024, 3000, true);
});

t.test('VXLAN over IPv6: encapsulated both ways on ::1, learned behind the remote', async (t) => {
  const sw = new Switch({ name: `vx6-${process.pid}` });
  const remote = createSocket('udp6');
  const got: Buffer[] = [];
  remote.on('message', (m) => got.push(m));
  remote.bind(0, '::1');
  await onceWithin(remote, 'listening', 5000);
  const up = await attachVxlan(sw, 'vale0:up', { local: '[::1]:0', remotes: [`[::1]:${remote.address().port}`], vni: 77 });
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    remote.close();
    await up.close();
    await b.close();
    await sw.close();
  });
  t.match(up.local, /^\[::1\]:\d+$/, 'bound on ::1');
  const lport = Number(up.local.split(':').at(-1));
  b.send(ethFrame(BCAST, '02:00:00:00:00:0b', 1));
  t.ok(await waitFor(() => got.length === 1), 'a flood reaches the IPv6 remote');
  t.same([...got[0].subarray(0, 8)], [8, 0, 0, 0, 0, 0, 77, 0], 'VXLAN header, VNI 77');
  t.equal(got[0][8 + 14], 1, 'the inner frame follows');
  await new Promise<void>((res, rej) => remote.send(vxlanEncap(77, ethFrame('02:00:00:00:00:0b', '02:00:00:00:00:66', 2)), lport, '::1', (e) => (e ? rej(e) : res())));
  let inner: Uint8Array | null = null;
  t.ok(await waitFor(() => (inner = b.recv()) !== null), 'a datagram from the IPv6 remote reaches the bridge');
  t.equal(inner![14], 2);
  t.same(up.macTable().map((e) => [e.mac, e.remote]), [['02:00:00:00:00:66', `[::1]:${remote.address().port}`]], 'the MAC is learned behind the IPv6 remote');
  await t.rejects(attachVxlan(sw, 'vale0:bad', { local: '[::1]:0', remotes: ['127.0.0.1:4789'], vni: 1 }), { message: /IPv4|IPv6|family/i }, 'an IPv4 remote on an IPv6 socket is refused');
});
