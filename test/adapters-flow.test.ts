// Adapter behaviour under flow limits and address families, on loopback with Node sockets as the
// outside party: a QEMU stream peer that stops reading (maxQueueBytes: the adapter stops taking
// frames, the switch drops and counts, nothing is lost uncounted), and VXLAN over IPv6.
import t, { type Test } from 'tap';
import { createSocket } from 'node:dgram';
import { createConnection } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch } from '../src/index.js';
import { attachQemuStream, attachVxlan, StreamDecoder, vxlanEncap } from '../src/adapters/index.js';
import { ethFrame, waitFor } from './vm/interop-util.js';
import { onceWithin } from './helpers/wait.js';

const BCAST = 'ff:ff:ff:ff:ff:ff';

interface FlowRun { got: number; dropped: number; adapterDrops: number; txFrames: number }

/** N full-size frames towards a stream peer that reads nothing until the switch drops, then everything. */
async function slowPeer(t: Test, maxQueueBytes: number, N: number): Promise<FlowRun> {
  const dir = mkdtempSync(join(tmpdir(), 'vsw-flow-'));
  const sw = new Switch({ name: `flow-${maxQueueBytes}-${process.pid}`, bridge: { rxSlots: 256, txSlots: 256 } });
  const vm = await attachQemuStream(sw, 'vale0:vm', `unix:${join(dir, 'vm.sock')}`, { maxQueueBytes });
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
    sent += gen.sendBatch(frames);
    await new Promise((r) => setImmediate(r)); // the adapter runs on this event loop
  }
  t.equal(sent, N, 'the sender handed every frame to the switch');
  t.ok(await waitFor(() => (vm.stats().switch?.rxDropRingFull ?? 0) > 0, 10_000), 'the switch drops at the adapter port once its ring is full');
  let got = 0;
  const dec = new StreamDecoder({ mtu: 65535, onFrame: () => { got++; }, onDrop: () => {} });
  peer.on('data', (d: Buffer) => dec.feed(d));
  peer.resume();
  t.ok(await waitFor(() => got + vm.stats().switch!.rxDropRingFull === N, 20_000), `received ${got} + dropped ${vm.stats().switch!.rxDropRingFull} = ${N}`);
  const st = vm.stats();
  return { got, dropped: st.switch!.rxDropRingFull, adapterDrops: st.dropped, txFrames: st.txFrames };
}

t.test('qemu-stream maxQueueBytes: a peer that stops reading holds at most that much; the rest is dropped and counted', async (t) => {
  const N = 6000; // ~9 MB of 1514-byte frames: more than the 4 MiB default limit plus the socket buffers
  const small = await slowPeer(t, 64 * 1024, N);
  const big = await slowPeer(t, 4 << 20, N);
  for (const [name, r] of [['64 KiB', small], ['4 MiB', big]] as const) {
    t.ok(r.dropped > 0 && r.got > 0, `${name}: some frames delivered (${r.got}), some dropped by the switch (${r.dropped})`);
    t.equal(r.txFrames, r.got, `${name}: the adapter counted exactly what the peer received`);
    t.equal(r.adapterDrops, 0, `${name}: the adapter itself dropped nothing (the switch did, and counted)`);
  }
  // Frames the adapter took while the peer was stalled are all delivered later; the rest were
  // dropped by the switch. So what the peer got measures what the adapter queued.
  t.ok(small.got < big.got, `the adapter queues fewer frames towards a stalled peer with the smaller limit (${small.got} vs ${big.got})`);
  t.ok((big.got - small.got) * 1514 > 2 << 20, 'by about the difference of the limits (over 2 MiB of frames)');
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
