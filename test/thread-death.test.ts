// A Worker that dies while it holds a port is reclaimed within 1 s with nobody's help: created
// before the Switch existed (so no 'worker' event reached vswitch), or the child of a thread that
// never imported vswitch and was itself terminated; killed by terminate() or by process.exit()
// inside it, mid-send. The other ports keep moving.
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { onceWithin, until } from './helpers/wait.js';
import { Switch, type Port } from '../src/index.js';

const fixture = new URL('../dist/test/fixtures/liveness-worker.js', import.meta.url);
/** The promise (liveness scan every 200 ms). Measured 0-181 ms at load 12 on 2 cores. */
const LIMIT_MS = 1000;

/** Milliseconds until the Switch no longer has `name` (-1 if it still has it after 5 s). */
async function reclaimMs(sw: Switch, name: string): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 5000) {
    if (!sw.ports('vale0').some((p) => p.name === name)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 5));
  }
  return -1;
}

async function livePairMoves(a: Port, b: Port, tag: number): Promise<boolean> {
  for (let f = b.recv(); f; f = b.recv()); // drain the victim's flood
  const f = new Uint8Array(60);
  f.set([2, 0, 0, 0, 0, 0xb], 0); f.set([2, 0, 0, 0, 0, 0xa], 6); f[12] = 8; f[14] = tag;
  a.send(f);
  const deadline = performance.now() + 2000;
  while (performance.now() < deadline) {
    for (let g = b.recv(); g; g = b.recv()) if (g[14] === tag && g[11] === 0xa) return true;
    await b.waitAsync(50);
  }
  return false;
}

async function pair(sw: Switch): Promise<[Port, Port]> {
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  const hello = new Uint8Array(60);
  hello.fill(0xff, 0, 6); hello.set([2, 0, 0, 0, 0, 0xb], 6); hello[12] = 8;
  b.send(hello); // b's address learned
  for (let f = a.recv(); f; f = a.recv());
  return [a, b];
}

for (const kill of ['terminate', 'process.exit'] as const) {
  t.test(`a Worker created before the Switch, killed by ${kill} mid-send`, async (t) => {
    const w = new Worker(fixture, { workerData: { name: 'vale0:victim', switch: 'death1', exitAfter: kill === 'process.exit' ? 2000 : undefined } });
    await onceWithin(w, 'online', 10_000);
    const sw = new Switch({ name: 'death1' });
    t.teardown(() => sw.close());
    const [a, b] = await pair(sw);
    w.postMessage('go');
    await onceWithin(w, 'message', 10_000);
    t.ok(sw.holderOf('vale0:victim'), 'the victim holds its port');
    const exited = onceWithin(w, 'exit', 30_000);
    if (kill === 'terminate') {
      // Killed mid-send: once its broadcasts are reaching the other ports.
      await until('the victim\'s broadcasts to reach vale0:a', () => a.pending > 0, 10_000);
      void w.terminate();
    }
    await exited;
    const ms = await reclaimMs(sw, 'vale0:victim');
    t.ok(ms >= 0 && ms <= LIMIT_MS, `port reclaimed ${ms.toFixed(0)} ms after the thread died (limit ${LIMIT_MS})`);
    t.ok(await livePairMoves(a, b, 1), 'a→b still forwards');
    await a.close();
    await b.close();
  });
}

t.test('the child of a thread that never imported vswitch, killed with its terminated parent', async (t) => {
  const sw = new Switch({ name: 'death2' });
  t.teardown(() => sw.close());
  const [a, b] = await pair(sw);
  // The parent is plain Node: it starts the victim and relays two messages, nothing else.
  const parent = new Worker(`
    const { Worker, parentPort, workerData } = require('node:worker_threads');
    const child = new Worker(new URL(workerData.fixture), { workerData: workerData.job });
    parentPort.on('message', (m) => child.postMessage(m));
    child.on('message', (m) => parentPort.postMessage(m));
  `, { eval: true, workerData: { fixture: fixture.href, job: { name: 'vale0:gchild', switch: 'death2' } } });
  parent.postMessage('go');
  await onceWithin(parent, 'message', 10_000);
  t.ok(sw.holderOf('vale0:gchild'), 'the grandchild holds its port');
  await until('the grandchild\'s broadcasts to reach vale0:a', () => a.pending > 0, 10_000);
  await parent.terminate();
  const ms = await reclaimMs(sw, 'vale0:gchild');
  t.ok(ms >= 0 && ms <= LIMIT_MS, `port reclaimed ${ms.toFixed(0)} ms after its parent was terminated (limit ${LIMIT_MS})`);
  t.ok(await livePairMoves(a, b, 2), 'a→b still forwards');
  await a.close();
  await b.close();
});
