// One user per port, closed handles that stay closed, and the daemon/adapter edges of port
// ownership: through the public API, real Workers, the real CLI and real sockets.
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { createConnection, type Socket } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch, openPort, type Port } from '../src/index.js';
import { attachQemuStream } from '../src/adapters/index.js';
import { LineSplitter } from '../src/apps/daemon/control-protocol.js';
import { runCli, startServe, tmpSocket } from './helpers/cli.js';
import { onceWithin, until } from './helpers/wait.js';

const fixture = new URL('../dist/test/fixtures/api-worker.js', import.meta.url);
const A = [2, 0, 0, 0, 0, 0xa];
const B = [2, 0, 0, 0, 0, 0xb];
const BCAST = [255, 255, 255, 255, 255, 255];

function frame(dst: number[], src: number[], tag = 0): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0); f.set(src, 6); f[12] = 8; f[14] = tag;
  return f;
}

t.test('a held port refuses a second opener, in the same thread and from a Worker, naming the holder', async (t) => {
  const sw = new Switch({ name: 'own1' });
  t.teardown(() => sw.close());
  const a = await sw.open('vale0:a', { holder: 'the test harness' });
  t.equal(sw.holderOf('vale0:a'), 'the test harness');
  await t.rejects(sw.open('vale0:a'), { code: 'ERR_PORT_BUSY', message: /^vale0:a is held by the test harness; use vswitch capture -i vale0:a to watch it$/ });
  await t.rejects(sw.open('vale0:a', { share: true }), { code: 'ERR_PORT_BUSY' }, 'sharing needs the holder to share too');

  const w = new Worker(fixture, { workerData: { role: 'open-fail', name: 'vale0:a', switch: 'own1' } });
  const [m] = await onceWithin<[{ error: { code: string; message: string } | null }]>(w, 'message', 10_000);
  t.equal(m.error?.code, 'ERR_PORT_BUSY', 'a Worker is refused too');
  t.match(m.error?.message, /held by the test harness/);
  await onceWithin(w, 'exit', 10_000);

  await a.close();
  t.equal(sw.holderOf('vale0:a'), null, 'nobody holds it after close');
  const again = await sw.open('vale0:a');
  t.match(sw.holderOf('vale0:a'), /^thread \d+$/, 'the default holder is the thread');
  await again.close();

  const s1 = await sw.open('vale0:s', { share: true, holder: 'a sharing tool' });
  const s2 = await sw.open('vale0:s', { share: true });
  t.equal(s1.index, s2.index, 'openers that all share hold the port together');
  await t.rejects(sw.open('vale0:s'), { code: 'ERR_PORT_BUSY', message: /held by a sharing tool \(shared; open it with share: true to join\)/ });
  await s1.close();
  await s2.close();
  await t.rejects(sw.open('vale0:x', { holder: 'x'.repeat(81) }), { code: 'ERR_BAD_ARG' });
});

t.test('an adapter holds its port: a library open and the CLI pkt-gen are refused', async (t) => {
  const sw = new Switch({ name: 'own2' });
  t.teardown(() => sw.close());
  const dir = mkdtempSync(join(tmpdir(), 'vsown-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const vm = await attachQemuStream(sw, 'vale0:vm1', `unix:${join(dir, 'vm1.sock')}`);
  t.teardown(() => vm.close());
  await t.rejects(sw.open('vale0:vm1'), { code: 'ERR_PORT_BUSY', message: /^vale0:vm1 is held by the qemu-stream adapter;/ });

  const { socket } = tmpSocket(t);
  await startServe(t, socket);
  const att = await runCli(['ctl', 'attach', 'vale0:vm1', '--qemu-stream', `unix:${join(dir, 'vm1d.sock')}`, '--socket', socket]);
  t.equal(att.code, 0, att.stderr);
  const pg = await runCli(['pkt-gen', '-i', 'vale0:vm1', '-f', 'rx', '--socket', socket], { timeoutMs: 30_000 });
  t.equal(pg.code, 1, 'pkt-gen exits 1');
  t.equal(pg.stderr, 'vswitch: vale0:vm1 is held by the qemu-stream adapter; use vswitch capture -i vale0:vm1 to watch it\n', 'one clear line');
  t.equal(pg.stdout, '', 'and nothing else');
});

t.test('every method of a closed Port throws ERR_PORT_CLOSED, also after its slot was reused', async (t) => {
  const sw = new Switch({ name: 'own3' });
  t.teardown(() => sw.close());
  const old = await sw.open('vale0:old');
  const slot = old.index;
  const src = await sw.open('vale0:src');
  await old.close();
  const reused = await sw.open('vale0:new');
  t.equal(reused.index, slot, 'the new port took the old slot');
  for (let i = 0; i < 5; i++) src.send(frame(BCAST, A, i));
  const calls: [string, () => unknown][] = [
    ['receive', () => old.receive()], ['recv', () => old.recv()], ['release', () => old.release()],
    ['flush', () => old.flush()], ['send', () => old.send(frame(BCAST, B))], ['sendBatch', () => old.sendBatch([frame(BCAST, B)])],
    ['txReserve', () => old.txReserve()], ['txCommit', () => old.txCommit(0)], ['txPrefill', () => old.txPrefill(() => 60)],
    ['stats', () => old.stats()], ['mtu', () => old.mtu], ['wait', () => old.wait(0)],
  ];
  for (const [name, fn] of calls) t.throws(fn, { code: 'ERR_PORT_CLOSED' }, `${name}() throws`);
  await t.rejects(old.waitAsync(0), { code: 'ERR_PORT_CLOSED' }, 'waitAsync() rejects');
  t.equal(old.pending, 0, 'pending reads 0, not the new port\'s frames');
  t.equal(old.closed, true);
  const seen: number[] = [];
  for (let f = reused.recv(); f; f = reused.recv()) seen.push(f[14]!);
  t.same(seen, [0, 1, 2, 3, 4], 'the new port got all its frames; the old handle consumed none');
  await old.close(); // closing twice is a no-op and must not close the new port
  t.equal(reused.closed, false, 'a second close of the old handle leaves the new port open');
  t.equal(sw.holderOf('vale0:new') !== null, true);

  // A handle whose port was removed under it (not closed by itself) is closed too.
  sw.createPort('vale0:p');
  const p = await sw.open('vale0:p');
  const other = await sw.open('vale0:q');
  sw.threadExited(-5); // unrelated thread: nothing changes
  t.equal(p.closed, false);
  await other.close();
  await p.close();
  await sw.removePort('vale0:p');
  const iterated: Uint8Array[] = [];
  let ended = false;
  void (async () => { for await (const f of p) iterated.push(f); ended = true; })();
  await until('iteration of a closed port to end', () => ended, 10_000);
  t.same(iterated, [], 'for await over a closed port ends at once');
  await src.close();
  await reused.close();
});

t.test('the qemu-stream adapter refuses a second client while one is live, and listens with the mode asked', async (t) => {
  const sw = new Switch({ name: 'own4' });
  t.teardown(() => sw.close());
  const dir = mkdtempSync(join(tmpdir(), 'vsown-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'vm.sock');
  const vm = await attachQemuStream(sw, 'vale0:vm', `unix:${path}`);
  t.teardown(() => vm.close());
  t.equal(statSync(path).mode & 0o777, 0o600, 'socket file mode 0600');
  const host = await sw.open('vale0:host');
  t.teardown(() => host.close());

  const connect = async (): Promise<Socket> => {
    const s = createConnection({ path });
    await onceWithin(s, 'connect', 10_000);
    return s;
  };
  const first = await connect();
  t.teardown(() => first.destroy());
  await until('the first peer to be accepted', () => vm.connected, 10_000);
  const second = await connect();
  second.on('error', () => {});
  await until('the second client to be disconnected', () => second.destroyed, 10_000);
  t.equal(vm.stats().refused, 1, 'counted as refused');
  t.equal(vm.connected, true, 'the first client stays connected');

  // The first client still gets the port's traffic.
  let got = Buffer.alloc(0);
  first.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); });
  host.send(frame(BCAST, B, 7));
  await until('a frame to reach the first client', () => got.length >= 64, 10_000);
  t.equal(got.readUInt32BE(0), 60, 'length prefix');
  t.equal(got[4 + 14], 7, 'the frame');
  t.equal(vm.stats().connections, 1);
});

t.test('the control line splitter returns lines across any chunking, and enforces its limit', async (t) => {
  const text = Buffer.from('{"op":"ping"}\r\n{"op":"list"}\n\n{"x":1}\n');
  for (const size of [1, 2, 3, 7, text.length]) {
    const ls = new LineSplitter(64);
    const lines: string[] = [];
    for (let i = 0; i < text.length; i += size) {
      ls.push(text.subarray(i, i + size));
      for (let l = ls.next(); l; l = ls.next()) lines.push(l.toString());
    }
    t.same(lines, ['{"op":"ping"}', '{"op":"list"}', '', '{"x":1}'], `chunks of ${size}`);
    t.equal(ls.pending, 0);
  }
  const ls = new LineSplitter(10);
  for (let i = 0; i < 11; i++) ls.push(Buffer.from('a'));
  t.equal(ls.next(), false, 'a line over the limit, even unfinished, is refused');
  ls.clear();
  ls.push(Buffer.from('0123456789\n'));
  t.equal(ls.next()?.toString(), '0123456789', 'a line of exactly the limit is fine');
});

t.test('MAC learning time stamps work after 2038', async (t) => {
  const realNow = Date.now;
  Date.now = () => 2_240_611_200_000; // 2041
  t.teardown(() => { Date.now = realNow; });
  const sw = new Switch({ name: 'own5' });
  t.teardown(() => sw.close());
  const a: Port = await sw.open('vale0:a');
  const b: Port = await sw.open('vale0:b');
  a.send(frame(BCAST, A));
  b.send(frame(A, B));
  t.equal(a.recv()?.[6], 2, 'b reaches a by its learned address');
  t.same(sw.fdb('vale0').map((e) => [e.mac, e.age]), [['02:00:00:00:00:0a', 0], ['02:00:00:00:00:0b', 0]], 'entries learned, age 0');
  t.equal(a.stats().dropNoDest ?? 0, 0);
  await a.close();
  await b.close();
  void openPort;
});
