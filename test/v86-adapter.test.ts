// attachV86 against a stand-in for a v86 emulator (its event listeners and bus, as v86 0.5.462
// has them): frames both ways through the batch API, drops by reason, the exclusive port,
// detach, and a Port passed in by the caller. The real emulator runs in test/v86.test.ts.
import t from 'tap';
import { Switch, type Port } from 'vswitch';
import { attachV86 } from 'vswitch/v86';
import { ethFrame, waitFor } from './vm/interop-util.js';

/** The parts of a v86 emulator attachV86 uses: add_listener/remove_listener and bus.send. */
class FakeV86 {
  readonly listeners = new Map<string, Set<(v: unknown) => void>>();
  /** Frames the "NIC" received through bus.send('net0-receive'), copied. */
  readonly received: Uint8Array[] = [];
  /** Views passed in, to check they are reused rather than allocated per frame. */
  readonly views = new Set<Uint8Array>();
  throwOnReceive = false;
  readonly bus = {
    send: (name: string, v: Uint8Array) => {
      if (name !== 'net0-receive') return;
      if (this.throwOnReceive) throw new Error('NIC gone');
      this.views.add(v);
      this.received.push(v.slice());
    },
  };
  add_listener(name: string, fn: (v: never) => void): void {
    let s = this.listeners.get(name);
    if (!s) this.listeners.set(name, (s = new Set()));
    s.add(fn as (v: unknown) => void);
  }
  remove_listener(name: string, fn: (v: never) => void): void {
    this.listeners.get(name)?.delete(fn as (v: unknown) => void);
  }
  /** The guest transmits (v86 emits net0-send synchronously inside its time slice). */
  transmit(frame: Uint8Array): void {
    for (const fn of this.listeners.get('net0-send') ?? []) fn(frame);
  }
  emit(name: string, v: unknown): void {
    for (const fn of this.listeners.get(name) ?? []) fn(v);
  }
}

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';

t.test('frames both ways, counters, drops by reason, detach', async (t) => {
  const sw = new Switch({ name: `v86a-${process.pid}-1` });
  const peer = await sw.open('vale0:peer');
  t.teardown(async () => { await peer.close(); await sw.close(); });
  const emu = new FakeV86();
  const nic = await attachV86(emu, 'vale0:guest', { switch: sw.name });
  t.equal(nic.kind, 'v86');
  t.equal(nic.local, 'v86:net0');
  emu.emit('net0-mac', '00:22:15:01:02:03');

  // guest → switch: a burst in one "time slice" is committed together, after the slice.
  for (let i = 0; i < 5; i++) emu.transmit(ethFrame(B, A, i));
  t.equal(peer.pending, 0, 'nothing is sent before the time slice ends (one commit per burst)');
  await Promise.resolve();
  t.ok(await waitFor(() => peer.pending === 5, 10_000), 'the burst reached the peer port');
  const got = peer.receive();
  t.same(Array.from({ length: got.count }, (_, i) => got.frame(i)[14]), [0, 1, 2, 3, 4], 'in order, unchanged');
  peer.release();

  // Bad frames from the guest are dropped and counted.
  emu.transmit(new Uint8Array(10));
  emu.transmit(new Uint8Array(nic.port.mtu + 1));
  await Promise.resolve();

  // switch → guest, more frames than one rxBatch (8): all delivered, through reused views.
  peer.sendBatch(Array.from({ length: 20 }, (_, i) => ethFrame(A, B, 100 + i, 60 + i)));
  t.ok(await waitFor(() => emu.received.length === 20, 10_000), 'all 20 frames reached the NIC');
  t.same(emu.received.map((f) => f[14]), Array.from({ length: 20 }, (_, i) => 100 + i), 'in order');
  t.same(emu.received.map((f) => f.length), Array.from({ length: 20 }, (_, i) => 60 + i), 'each with its own length');
  t.same(emu.received[3], ethFrame(A, B, 103, 63), 'bytes intact');
  const before = emu.views.size;
  peer.sendBatch(Array.from({ length: 20 }, (_, i) => ethFrame(A, B, i, 60 + i)));
  t.ok(await waitFor(() => emu.received.length === 40, 10_000), 'again');
  t.equal(emu.views.size, before, 'frames of lengths seen before reuse the same views (no allocation per frame)');

  // A NIC that throws is counted, not crashed on.
  emu.throwOnReceive = true;
  peer.send(ethFrame(A, B, 7));
  t.ok(await waitFor(() => nic.stats().drops.txError === 1, 10_000), 'a throwing NIC counts txError');
  emu.throwOnReceive = false;

  const s = nic.stats();
  t.equal(s.rxFrames, 5, 'rxFrames: from the guest');
  t.equal(s.rxBytes, 5 * 60);
  t.equal(s.txFrames, 40, 'txFrames: to the guest');
  t.equal(s.drops.undersize, 1, 'undersize counted');
  t.equal(s.drops.oversize, 1, 'oversize counted');
  t.equal(s.dropped, 3, 'dropped = sum of drops');
  t.equal(s.mac, A, 'mac: the source MAC the guest sends from');
  t.equal(s.nicMac, '00:22:15:01:02:03', 'nicMac: what v86 reported');
  t.equal(s.switch?.txFrames, 5, 'the port\'s own counters are included');

  await nic.detach();
  t.ok(nic.closed);
  t.equal(emu.listeners.get('net0-send')?.size, 0, 'detach removes the listener');
  emu.transmit(ethFrame(B, A, 9));
  t.ok(await waitFor(() => !sw.list().some((b) => b.ports.some((p) => p.name === 'vale0:guest')), 10_000), 'the port it opened is gone');
});

t.test('the port is held exclusively', async (t) => {
  const sw = new Switch({ name: `v86a-${process.pid}-2` });
  t.teardown(() => sw.close());
  const nic = await attachV86(new FakeV86(), 'vale0:vm', { switch: sw.name });
  await t.rejects(attachV86(new FakeV86(), 'vale0:vm', { switch: sw.name }), { code: 'ERR_PORT_BUSY' }, 'a second NIC cannot take the port');
  await t.rejects(sw.open('vale0:vm'), { code: 'ERR_PORT_BUSY', message: /the v86 adapter/ }, 'nor can anyone else; the refusal names the holder');
  await nic.detach();
});

t.test('bad arguments are clear errors', async (t) => {
  await t.rejects(attachV86({} as never, 'vale0:x'), { code: 'ERR_BAD_ARG', message: /expected a v86 emulator/ });
  await t.rejects(attachV86(new FakeV86(), 'vale0:x', { rxBatch: 0 }), { code: 'ERR_BAD_ARG', message: /rxBatch/ });
  await t.rejects(attachV86(new FakeV86(), 42 as never), { code: 'ERR_BAD_ARG', message: /port name/ });
});

t.test('a Port passed in stays open after detach', async (t) => {
  const sw = new Switch({ name: `v86a-${process.pid}-3` });
  const port: Port = await sw.open('vale0:mine', { exclusive: true });
  const peer = await sw.open('vale0:peer');
  t.teardown(async () => { await peer.close(); await sw.close(); });
  const emu = new FakeV86();
  const nic = await attachV86(emu, port);
  emu.transmit(ethFrame(B, A, 1));
  t.ok(await waitFor(() => peer.pending === 1, 10_000), 'frames flow');
  await nic.detach();
  t.notOk(port.closed, 'the caller\'s port is still open');
  emu.transmit(ethFrame(B, A, 2));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(peer.pending, 1, 'nothing more is sent after detach');
  await port.close();
});

t.test('the adapter ends when its port is closed under it', async (t) => {
  const sw = new Switch({ name: `v86a-${process.pid}-4` });
  t.teardown(() => sw.close());
  const port = await sw.open('vale0:gone');
  const emu = new FakeV86();
  const nic = await attachV86(emu, port);
  await port.close();
  t.ok(await waitFor(() => nic.closed, 10_000), 'the adapter noticed and detached itself');
  t.doesNotThrow(() => emu.transmit(ethFrame(B, A, 1)), 'a frame from the guest afterwards is ignored, not thrown into the emulator');
  t.equal(emu.listeners.get('net0-send')?.size, 0, 'and its listener is gone');
});
