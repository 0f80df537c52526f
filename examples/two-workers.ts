/**
 * Two Workers exchange frames through a Switch created in the main thread: `left` sends
 * numbered frames to `right`, `right` echoes them back with the MACs swapped, `left` checks they
 * all came back in order. The Workers open their ports by name; no MessagePort plumbing, and
 * frames move through shared memory only.
 *
 *   npm run build && node dist/examples/two-workers.js [--count 1000]
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { COUNTER_NAMES, Switch } from 'vswitch';
import type { PeerJob, PeerResult } from './two-workers-peer.js';

const { values: opts } = parseArgs({ options: { count: { type: 'string', default: '1000' } } });
const COUNT = Number(opts.count);
if (!Number.isInteger(COUNT) || COUNT < 1) {
  console.error('usage: two-workers [--count N>=1]');
  process.exit(2);
}

const sw = new Switch(); // the registry; Workers find it by name ('default')
// Persistent ports (like `vale-ctl -n`) outlive the Workers' opens, so their counters can be
// read at the end; without this, a port is created by its first open and destroyed by its last close.
sw.createPort('vale0:left');
sw.createPort('vale0:right');

function start(role: PeerJob['role']): Promise<PeerResult> {
  const job: PeerJob = { role, count: COUNT, window: 256, leftMac: '02:00:00:00:00:01', rightMac: '02:00:00:00:00:02' };
  const w = new Worker(new URL('./two-workers-peer.js', import.meta.url), { workerData: job });
  const timer = setTimeout(() => void w.terminate(), 10_000); // a stuck Worker must not hang the example
  return new Promise<PeerResult>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`${role} exited with code ${code} before reporting`)));
  }).finally(async () => {
    clearTimeout(timer);
    if (w.threadId !== -1) await once(w, 'exit'); // it exits once it has closed its port and reported
  });
}

let ok = false;
try {
  const [l, r] = await Promise.all([start('left'), start('right')]);
  console.log(l.line);
  console.log(r.line);
  ok = l.sent === COUNT && l.received === COUNT && l.outOfOrder === 0 && r.sent === COUNT;

  console.log('switch counters:');
  for (const p of sw.list().find((b) => b.name === 'vale0')!.ports) {
    const c = p.counters;
    const drops = COUNTER_NAMES.filter((n) => n.startsWith('drop') || n === 'rxDropRingFull').reduce((s, n) => s + c[n], 0);
    console.log(`  ${p.name.padEnd(11)} tx ${c.txFrames} frames ${c.txBytes} bytes, rx ${c.rxFrames} frames ${c.rxBytes} bytes, drops ${drops}`);
  }
  console.log('MAC table:', sw.fdb('vale0').map((e) => `${e.mac} on ${e.portName}`).join(', '));
} catch (e) {
  console.error(`two-workers: ${(e as Error).message}`);
} finally {
  await sw.removePort('vale0:left').catch(() => {});
  await sw.removePort('vale0:right').catch(() => {});
  await sw.close();
}
process.exitCode = ok ? 0 : 1;
