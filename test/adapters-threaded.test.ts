// Adapters in Workers of their own (attachInWorker): frames flow both ways, counters reach the
// handle through shared memory, two adapters run on two threads, a port removed under a Worker
// adapter Worker that dies releases its port, a busy port is refused, and under a flood every datagram is accounted for
// (delivered + dropped by reason, the kernel's queue drops included).
import t from 'tap';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { Switch, type Port } from '../src/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  attachInWorker, attachQemuDgram, adapterFor, connectStreamPeer, listAdapters, vxlanEncap, type Adapter,
} from '../src/adapters/index.js';
import { ethFrame, waitFor } from './vm/interop-util.js';
import { attachFromSpec } from '../src/apps/daemon/attach.js';
import { onceWithin } from './helpers/wait.js';

const BCAST = 'ff:ff:ff:ff:ff:ff';
const PEER = '02:00:00:00:00:01';

async function udp(host = '127.0.0.1'): Promise<UdpSocket & { got: Buffer[] }> {
  const s = createSocket('udp4') as UdpSocket & { got: Buffer[] };
  s.got = [];
  s.on('message', (m) => s.got.push(m));
  s.bind(0, host);
  await onceWithin(s, 'listening', 30_000);
  return s;
}

const portOf = (a: Adapter) => Number(a.local.slice(a.local.lastIndexOf(':') + 1));

function drain(p: Port): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = p.recv(); f; f = p.recv()) out.push(f);
  return out;
}

t.test('QEMU dgram and VXLAN in two Workers: both directions, stats, close', async (t) => {
  const sw = new Switch({ name: `thr-${process.pid}` });
  const qpeer = await udp();
  const vpeer = await udp('127.0.0.2');
  const vm = await attachInWorker(sw, { kind: 'qemu-dgram', port: 'vale0:vm', options: { local: '127.0.0.1:0', remote: `127.0.0.1:${qpeer.address().port}` } });
  const up = await attachInWorker(sw, { kind: 'vxlan', port: 'vale0:up', options: { local: '127.0.0.1:0', remotes: [`127.0.0.2:${vpeer.address().port}`], vni: 42 } });
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    await vm.close();
    await up.close();
    await b.close();
    qpeer.close();
    vpeer.close();
    await sw.close();
  });
  t.equal(vm.port, null, 'the Worker holds the port, not this thread');
  t.equal(adapterFor(sw, 'vale0:vm'), vm, 'the handle is in the registry');
  t.equal(listAdapters(sw).length, 2);
  const s0 = vm.stats();
  const s1 = up.stats();
  t.ok(s0.thread && s1.thread && s0.thread !== s1.thread, `two adapters, two threads (${s0.thread}, ${s1.thread})`);
  t.equal(sw.holderOf('vale0:vm'), 'the qemu-dgram adapter', 'the port is held by the adapter');
  await t.rejects(attachQemuDgram(sw, 'vale0:vm', { local: '127.0.0.1:0', remote: '127.0.0.1:9' }), { code: 'ERR_PORT_BUSY' }, 'a second opener is refused');
  await t.rejects(attachInWorker(sw, { kind: 'vxlan', port: 'vale0:x', options: { local: '127.0.0.1:0', remotes: [], vni: 1 } }),
    { message: /at least one remote/ }, 'an attach error in the Worker rejects with its message');

  // Outside → switch: the QEMU peer floods, port b and the VXLAN remote receive it.
  const f1 = ethFrame(BCAST, PEER, 1);
  qpeer.send(f1, portOf(vm), '127.0.0.1');
  t.ok(await waitFor(() => drain(b).some((f) => f[14] === 1)), 'frame from the QEMU peer reached port b');
  t.ok(await waitFor(() => vpeer.got.length === 1), 'and was flooded to the VXLAN remote');
  t.same([...vpeer.got[0].subarray(0, 8)], [8, 0, 0, 0, 0, 0, 42, 0], 'VXLAN header with VNI 42');
  // VXLAN remote → switch: reaches b and the QEMU peer.
  vpeer.send(vxlanEncap(42, ethFrame(BCAST, '02:00:00:00:00:22', 2)), portOf(up), '127.0.0.1');
  t.ok(await waitFor(() => drain(b).some((f) => f[14] === 2)), 'frame from the VXLAN remote reached port b');
  t.ok(await waitFor(() => qpeer.got.some((f) => f[14] === 2)), 'and the QEMU peer');
  // A malformed datagram is counted by reason in the Worker and seen here.
  qpeer.send(Buffer.alloc(5), portOf(vm), '127.0.0.1');
  t.ok(await waitFor(() => vm.stats().drops.undersize === 1), 'undersize drop counted');
  t.ok(await waitFor(() => vm.stats().rxFrames === 1 && vm.stats().txFrames === 1), 'rx and tx counters of the QEMU adapter');
  const us = up.stats();
  t.equal(us.vni, 42);
  t.ok(await waitFor(() => up.stats().remotes?.[0].learned === 1), 'VXLAN per-remote counters: one MAC learned');
  t.equal(us.switch?.txFrames, 1, 'switch counters of the port are read from the bridge');

  const last = vm.stats();
  await vm.close();
  t.ok(vm.closed);
  t.equal(adapterFor(sw, 'vale0:vm'), undefined, 'unregistered');
  t.equal(sw.holderOf('vale0:vm'), null, 'the Worker released the port');
  t.equal(vm.stats().rxFrames, last.rxFrames, 'counters stay readable after close');
});

t.test('QEMU stream adapter in a Worker: a peer connects, frames both ways', async (t) => {
  const sw = new Switch({ name: `thr-st-${process.pid}` });
  const dir = mkdtempSync(join(tmpdir(), 'vsw-thr-'));
  const spec = `unix:${join(dir, 'vm.sock')}`;
  const vm = await attachInWorker(sw, { kind: 'qemu-stream', port: 'vale0:vm', addr: spec });
  const b = await sw.open('vale0:b');
  const got: number[] = [];
  const peer = await connectStreamPeer(spec, { onFrame: (buf, off) => got.push(buf[off + 14]) });
  t.teardown(async () => {
    await peer.close();
    await vm.close();
    await b.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  t.ok(await waitFor(() => vm.stats().connected === true), 'the handle sees the peer connected');
  peer.send(ethFrame(BCAST, PEER, 1));
  t.ok(await waitFor(() => drain(b).some((f) => f[14] === 1)), 'frame from the stream peer reached port b');
  b.send(ethFrame(BCAST, '02:00:00:00:00:0b', 2));
  t.ok(await waitFor(() => got.includes(2)), 'frame from port b reached the stream peer');
  t.ok(await waitFor(() => vm.stats().connections === 1 && vm.stats().rxFrames === 1 && vm.stats().txFrames === 1), 'stream counters');
});

t.test('an adapter Worker that dies releases its port and closes its handle', async (t) => {
  const sw = new Switch({ name: `thr-rm-${process.pid}` });
  t.teardown(() => sw.close());
  const peer = await udp();
  t.teardown(() => peer.close());
  const a = await attachInWorker(sw, { kind: 'qemu-dgram', port: 'vale0:vm', options: { local: '127.0.0.1:0', remote: `127.0.0.1:${peer.address().port}` } });
  t.teardown(() => a.close());
  const closed = onceWithin(a, 'close', 30_000);
  await a.worker.terminate();
  await closed;
  t.ok(a.closed, 'the handle closed when its Worker ended');
  t.ok(await waitFor(() => sw.holderOf('vale0:vm') === null, 10_000), 'the switch released the port of the dead thread');
  const again = await attachInWorker(sw, { kind: 'qemu-dgram', port: 'vale0:vm', options: { local: '127.0.0.1:0', remote: `127.0.0.1:${peer.address().port}` } });
  t.teardown(() => again.close());
  t.notOk(again.closed, 'the port can be attached again');
});

// The peer: a Worker that sends `count` datagrams as fast as it can and posts 'done'.
const FLOOD_SRC = `
const { parentPort } = require('node:worker_threads');
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
s.bind(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));
parentPort.on('message', ({ port, frame, count }) => {
  let left = count;
  const done = () => { if (--left === 0) { parentPort.postMessage('done'); s.close(); } };
  for (let i = 0; i < count; i++) s.send(frame, port, '127.0.0.1', done);
});
`;

t.test('flood into a Worker adapter: delivered + dropped by reason = sent', async (t) => {
  const sw = new Switch({ name: `thr-fl-${process.pid}` });
  const w = new Worker(FLOOD_SRC, { eval: true });
  const [peerPort] = await onceWithin<[number]>(w, 'message', 30_000);
  const a = await attachInWorker(sw, { kind: 'qemu-dgram', port: 'vale0:vm', options: { local: '127.0.0.1:0', remote: `127.0.0.1:${peerPort}`, recvBufferSize: 16384 } });
  const b = await sw.open('vale0:b');
  t.teardown(async () => {
    await w.terminate();
    await a.close();
    await b.close();
    await sw.close();
  });
  const N = 50_000;
  let atB = 0;
  const timer = setInterval(() => { atB += drain(b).length; }, 1);
  w.postMessage({ port: portOf(a), frame: ethFrame(BCAST, PEER, 1), count: N });
  await onceWithin(w, 'message', 30_000);
  const settled = await waitFor(() => { const s = a.stats(); return s.rxFrames + s.dropped >= N; }, 10_000);
  await new Promise((r) => setTimeout(r, 100));
  clearInterval(timer);
  atB += drain(b).length;
  const s = a.stats();
  t.ok(settled, `${s.rxFrames} delivered + ${s.dropped} dropped (kernelQueue ${s.drops.kernelQueue}) of ${N}`);
  t.equal(s.rxFrames + s.dropped, N, 'every datagram accounted for');
  t.equal(s.switch!.txFrames, s.rxFrames, 'the switch saw every frame the adapter delivered');
  t.equal(atB + s.switch!.dropRingFull, s.rxFrames, 'port b received them or the switch counted a full ring');
});

t.test('serve\'s attach: Worker adapters by default, in-thread on request; a shared VXLAN endpoint needs in-thread adapters', async (t) => {
  const sw = new Switch({ name: `thr-spec-${process.pid}` });
  t.teardown(async () => {
    for (const a of listAdapters(sw)) await a.close();
    await sw.close();
  });
  const up = await attachFromSpec(sw, { port: 'vale0:up', kind: 'vxlan', local: '127.0.0.1:0', remotes: ['127.0.0.2:4789'], vni: 42 });
  t.ok(up.stats().thread! > 0, 'a Worker adapter by default');
  await t.rejects(attachFromSpec(sw, { port: 'vale0:up2', kind: 'vxlan', local: up.local, remotes: ['127.0.0.3:4789'], vni: 42 }),
    { message: /already the endpoint of vale0:up, whose adapter runs in its own thread/ }, 'a second port on the same endpoint is refused with the reason');
  const a = await attachFromSpec(sw, { port: 'vale1:up', kind: 'vxlan', local: '127.0.0.1:0', remotes: ['127.0.0.2:4789'], vni: 7 }, { threads: false });
  const b = await attachFromSpec(sw, { port: 'vale1:up2', kind: 'vxlan', local: a.local, remotes: ['127.0.0.3:4789'], vni: 7 }, { threads: false });
  t.equal(a.stats().thread, undefined, 'in-thread on request');
  t.equal(b.local, a.local, 'in-thread VXLAN adapters share their endpoint');
});
