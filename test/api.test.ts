import t from 'tap';
import { Worker } from 'node:worker_threads';
import { onceWithin } from './helpers/wait.js';

/** events.once with a deadline: a test never hangs on an event that does not come. */
const once = (e: Parameters<typeof onceWithin>[0], ev: string, ms = 10_000) => onceWithin(e, ev, ms);
import { Switch, openPort, VswitchError } from '../src/index.js';
import { BH_CLOCK, BH_EPOCH } from '#bridge';

const fixture = new URL('../dist/test/fixtures/api-worker.js', import.meta.url);
const A = [2, 0, 0, 0, 0, 0xa];
const B = [2, 0, 0, 0, 0, 0xb];
const BCAST = [255, 255, 255, 255, 255, 255];

function frame(dst: number[], src: number[], tag = 0): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0); f.set(src, 6); f[12] = 8; f[14] = tag;
  return f;
}

function startWorker(data: object): { w: Worker; next: () => Promise<Record<string, unknown>> } {
  const w = new Worker(fixture, { workerData: data });
  const queue: Record<string, unknown>[] = [];
  const waiters: ((m: Record<string, unknown>) => void)[] = [];
  w.on('message', (m) => { const r = waiters.shift(); if (r) r(m); else queue.push(m); });
  w.on('error', (e) => { const r = waiters.shift(); if (r) r({ fatal: String(e) }); else queue.push({ fatal: String(e) }); });
  return { w, next: () => new Promise((res) => { const m = queue.shift(); if (m) res(m); else waiters.push(res); }) };
}

t.test('main thread: open by name, send, receive, counters, MAC table', async (t) => {
  const sw = new Switch({ name: 'api1' });
  t.teardown(() => sw.close());
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  a.send(frame(BCAST, A, 1));
  const got = b.recv();
  t.ok(got);
  t.equal(got![14], 1);
  t.equal(a.recv(), null, 'nothing comes back to the sender');
  b.send(frame(A, B, 2));
  const batch = a.receive();
  t.equal(batch.count, 1);
  t.equal(batch.length(0), 60);
  t.equal(batch.buffer[batch.offset(0) + 14], 2, 'zero-copy view of the frame');
  a.release();
  t.same(sw.fdb('vale0').map((e) => [e.mac, e.portName]), [['02:00:00:00:00:0a', 'vale0:a'], ['02:00:00:00:00:0b', 'vale0:b']]);
  t.equal(a.stats().txFrames, 1);
  t.equal(b.stats().rxFrames, 1);
  t.equal(a.stats().rxFrames, 1);
  const list = sw.list();
  t.same(list.map((x) => [x.name, x.ports.map((p) => p.name)]), [['vale0', ['vale0:a', 'vale0:b']]]);
  t.throws(() => a.send(new Uint8Array(10)), { code: 'ERR_BAD_FRAME', message: /14 to 2048 bytes/ });
  await a.close();
  await b.close();
  t.same(sw.list()[0].ports, [], 'last close destroys the ports');
  t.throws(() => a.send(frame(BCAST, A)), { code: 'ERR_PORT_CLOSED' });
});

t.test('persistent ports survive their last close; busy and name errors are typed', async (t) => {
  const sw = new Switch({ name: 'api2' });
  t.teardown(() => sw.close());
  sw.createPort('vale1:keep');
  const p = await sw.open('vale1:keep');
  await p.close();
  t.same(sw.list()[0].ports.map((x) => x.name), ['vale1:keep'], 'persistent port stays');
  const q = await sw.open('vale1:keep');
  await t.rejects(sw.removePort('vale1:keep'), { code: 'ERR_PORT_BUSY', message: /close it first/ });
  await t.rejects(sw.open('vale1:keep', { exclusive: true }), { code: 'ERR_PORT_BUSY' });
  await q.close();
  await sw.removePort('vale1:keep');
  t.same(sw.list()[0].ports, []);
  await t.rejects(sw.open('notvale:x'), { code: 'ERR_BAD_NAME', message: /start with "vale"/ });
  t.throws(() => sw.fdb('vale7'), { code: 'ERR_NO_BRIDGE' });
  t.throws(() => new Switch({ name: 'api2' }), { code: 'ERR_SWITCH_EXISTS' });
  const small = new Switch({ name: 'api2b', maxBridges: 1, bridge: { maxPorts: 1 } });
  t.teardown(() => small.close());
  await small.open('vale2:a');
  await t.rejects(small.open('vale2:b'), { code: 'ERR_BRIDGE_FULL', message: /all 1 ports/ });
  await t.rejects(small.open('vale3:a'), { code: 'ERR_TOO_MANY_BRIDGES', message: /larger maxBridges/ });
  // The switch's own errors are VswitchError instances (what callers test with instanceof);
  // the bridge core's (a bad port name) keep their class and code (src/errors.ts).
  const tooMany = await small.open('vale3:a').catch((e: unknown) => e);
  let fdbErr: unknown;
  try { sw.fdb('vale7'); } catch (e) { fdbErr = e; }
  t.ok([tooMany, fdbErr].every((e) => e instanceof VswitchError && e instanceof Error), 'switch errors are VswitchError instances');
  const badName = await sw.open('notvale:x').catch((e: unknown) => e);
  t.ok(badName instanceof Error && !(badName instanceof VswitchError) && (badName as { code?: string }).code === 'ERR_BAD_NAME', 'a bridge-core error keeps its class and code');
});

t.test('Workers open ports by name and exchange frames; bridges stay apart', async (t) => {
  const sw = new Switch();
  t.teardown(() => sw.close());
  const echo = startWorker({ role: 'echo', name: 'vale0:echo', count: 100 });
  t.ok((await echo.next()).opened !== undefined, 'echo worker opened its port');
  const other = startWorker({ role: 'recv', name: 'vale9:x', count: 1 });
  t.ok((await other.next()).opened !== undefined);
  const sender = startWorker({ role: 'send', name: 'vale0:tx', count: 100, dst: BCAST, src: A });
  const main = await openPort('vale0:main');
  t.ok((await sender.next()).opened !== undefined);
  const sent = await sender.next();
  t.equal(sent.sent, 100);
  t.equal((await echo.next()).echoed, 100, 'the echo worker got all 100 frames');
  // echo replies go to A, learned on vale0:tx; main sees the 100 broadcasts only
  let n = 0;
  while (await main.waitAsync(200)) {
    const b = main.receive();
    for (let i = 0; i < b.count; i++) if (b.buffer[b.offset(i)] === 0xff) n++;
    main.release();
  }
  t.equal(n, 100, 'main port saw the 100 broadcasts');
  const seqs = (await other.next()).seqs as number[];
  t.same(seqs, [], 'nothing reached the other bridge');
  await main.close();
  for (const [name, w] of [['echo', echo.w], ['other', other.w], ['sender', sender.w]] as const) {
    if (w.threadId !== -1) await onceWithin(w, 'exit', 30_000).catch(() => {}); // the assertion below says if it did not
    t.equal(w.threadId, -1, `${name} worker exited`);
  }
});

t.test('a Worker terminated while sending does not wedge the bridge; its port goes away', async (t) => {
  const sw = new Switch({ name: 'default2' });
  t.teardown(() => sw.close());
  const rx = await sw.open('vale0:rx');
  const blaster = startWorker({ role: 'blast', name: 'vale0:blast', dst: BCAST, src: B, switch: 'default2' });
  t.ok((await blaster.next()).opened !== undefined);
  await blaster.next();
  let got = 0;
  const until = Date.now() + 300;
  while (Date.now() < until) { if (await rx.waitAsync(50)) { got += rx.receive().count; rx.release(); } }
  t.ok(got > 0, `frames flowed before the kill (${got})`);
  await blaster.w.terminate();
  const gone = Date.now() + 1000;
  while (Date.now() < gone && sw.list()[0].ports.some((p) => p.name === 'vale0:blast')) await new Promise((r) => setTimeout(r, 10));
  t.notOk(sw.list()[0].ports.some((p) => p.name === 'vale0:blast'), 'the dead worker\'s port is gone within a second');
  const tx = await sw.open('vale0:tx2');
  rx.receive(); rx.release();
  tx.send(frame(BCAST, A, 7));
  const f = rx.recv();
  t.equal(f?.[14], 7, 'the bridge still forwards');
  const c = tx.stats();
  t.equal(c.txCopies, c.txDelivered + c.dropRingFull + c.dropBadBuf + c.dropBadLen + c.dropNoDest + c.dropBusy);
  await tx.close();
  await rx.close();
});

t.test('a Worker with no switch to talk to gets a clear error', async (t) => {
  const w = startWorker({ role: 'open-fail', name: 'vale0:x', switch: 'nobody-here' });
  const m = await w.next();
  t.match(m.error, { code: 'ERR_NO_SWITCH', message: /new Switch\(\)/ });
  await onceWithin(w.w, 'exit', 30_000);
});

t.test('the switch moves each bridge clock word once a second (no txsync reads the system clock)', async (t) => {
  const sw = new Switch({ name: 'apiclock' });
  const p = await sw.open('valeclk:a');
  const b = sw.bridge('valeclk');
  const u32 = new Uint32Array(b.sab);
  u32[(b.hdr + BH_EPOCH) >>> 2] -= 100; // as if the bridge were 100 s old and nothing had moved its clock
  u32[(b.hdr + BH_CLOCK) >>> 2] = 0;
  const want = () => Math.floor(Date.now() / 1000) - b.epoch;
  const start = Date.now();
  while (b.clock < want() - 1 && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 50));
  t.ok(want() >= 100 && b.clock >= want() - 1, `the clock word follows the system clock (${b.clock} vs ${want()})`);
  await p.close();
  await sw.close();
});
