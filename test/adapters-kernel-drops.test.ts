// Every datagram offered to a UDP adapter is accounted for: delivered into the switch, or dropped
// by a named reason, including the datagrams the kernel discarded because the adapter's socket
// receive queue was full (kernelQueue, read from /proc/net/udp). A Worker thread plays the peer
// and sends a burst while the adapter's thread is blocked, so the small receive queue overflows.
import t, { type Test } from 'tap';
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { Switch, type Port } from '../src/index.js';
import { attachQemuDgram, attachVxlan, vxlanEncap, type Adapter } from '../src/adapters/index.js';
import { onceWithin } from './helpers/wait.js';
import { ethFrame, waitFor } from './vm/interop-util.js';

const BURST = 3000;

// The peer: binds 127.0.0.1:0, posts its port, then on 'go' sends `frames` to `port` (each frame
// once, in order, cycling) and raises flag[0] when every send has completed.
const PEER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
s.bind(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));
parentPort.on('message', ({ port, frames, count }) => {
  const flag = new Int32Array(workerData);
  let left = count;
  const done = () => { if (--left === 0) { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); s.close(); } };
  for (let i = 0; i < count; i++) s.send(frames[i % frames.length], port, '127.0.0.1', done);
});
`;

async function burst(t: Test, makeAdapter: (sw: Switch, peerPort: number) => Promise<Adapter>, frames: Uint8Array[]): Promise<void> {
  const sw = new Switch({ name: `kdrop-${process.pid}-${Math.random().toString(36).slice(2)}` });
  const flagSab = new SharedArrayBuffer(4);
  const flag = new Int32Array(flagSab);
  const w = new Worker(PEER_SRC, { eval: true, workerData: flagSab });
  const [peerPort] = await onceWithin<[number]>(w, 'message', 30_000);
  const a = await makeAdapter(sw, peerPort);
  const b: Port = await sw.open('vale0:b');
  t.teardown(async () => {
    await w.terminate();
    await a.close();
    await b.close();
    await sw.close();
  });
  let atB = 0;
  const drainB = () => {
    for (let f = b.recv(); f; f = b.recv()) atB++;
  };

  w.postMessage({ port: Number(a.local.split(':')[1]), frames, count: BURST });
  // Block this thread (the adapter's) until the peer has sent everything: nobody reads the socket.
  t.equal(Atomics.wait(flag, 0, 0, 20_000), 'ok', 'the peer sent its burst while the adapter was blocked');

  const settled = await waitFor(() => {
    drainB();
    const s = a.stats();
    return s.rxFrames + s.dropped >= BURST;
  }, 10_000);
  await new Promise((r) => setTimeout(r, 100)); // nothing more may arrive
  drainB();
  const s = a.stats();
  t.ok(settled, `accounted: ${s.rxFrames} delivered + ${s.dropped} dropped ${JSON.stringify(Object.fromEntries(Object.entries(s.drops).filter(([, v]) => v > 0)))} of ${BURST} sent`);
  t.equal(s.rxFrames + s.dropped, BURST, 'delivered + dropped by reason = sent');
  t.equal(s.dropped, Object.values(s.drops).reduce((x, y) => x + y, 0), 'dropped is the sum of the reasons');
  t.ok(s.drops.kernelQueue > 0, `the kernel dropped datagrams from the full receive queue (${s.drops.kernelQueue})`);
  t.ok(s.rxFrames > 0, 'datagrams were delivered');
  const sp = s.switch!;
  t.equal(sp.txFrames, s.rxFrames, 'the adapter sent into the switch every frame it counts as delivered');
  t.equal(atB + sp.dropRingFull, sp.txFrames, 'port b received them (or the switch counted a full ring)');
}

const skip = existsSync('/proc/net/udp') ? false : 'no /proc/net/udp (not Linux): kernel queue drops cannot be read';
const BCAST = 'ff:ff:ff:ff:ff:ff';
const PEER = '02:00:00:00:00:01';

t.test('QEMU dgram: kernel receive-queue drops are counted', { skip }, async (t) => {
  // Good frames and one too short (counted as undersize when it gets through the queue).
  const frames = [ethFrame(BCAST, PEER, 1), ethFrame(BCAST, PEER, 2, 1514), new Uint8Array(10)];
  await burst(t, (sw, peerPort) =>
    attachQemuDgram(sw, 'vale0:vm', { local: '127.0.0.1:0', remote: `127.0.0.1:${peerPort}`, recvBufferSize: 16384 }), frames);
});

t.test('VXLAN: kernel receive-queue drops are counted', { skip }, async (t) => {
  const frames = [vxlanEncap(42, ethFrame(BCAST, PEER, 1)), vxlanEncap(42, ethFrame(BCAST, PEER, 2, 1514)), vxlanEncap(7, ethFrame(BCAST, PEER, 3))];
  await burst(t, (sw, peerPort) =>
    attachVxlan(sw, 'vale0:up', { local: '127.0.0.1:0', remotes: [`127.0.0.1:${peerPort}`], vni: 42, recvBufferSize: 16384 }), frames);
});
