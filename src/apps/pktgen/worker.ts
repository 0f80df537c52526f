/**
 * Worker entry of pkt-gen: opens the port by name on the switch of this process, runs the
 * engine, and posts every report to the parent. Stopped through the shared stop word.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openPort } from '../../core/open.js';
import { PktGen } from './engine.js';
import type { PktGenOptions } from './types.js';

const { opts, stop, live } = workerData as { opts: PktGenOptions; stop: SharedArrayBuffer; live: SharedArrayBuffer };
try {
  const port = await openPort(opts.port, { switch: opts.switch, holder: `pkt-gen -f ${opts.func}` });
  const gen = new PktGen(port, opts, { stop: new Int32Array(stop), live: new Float64Array(live) });
  parentPort!.postMessage({ type: 'started' });
  gen.run((r) => parentPort!.postMessage({ type: 'report', report: r }));
  await port.close();
  parentPort!.postMessage({ type: 'done' });
} catch (e) {
  const err = e as { code?: string; message?: string };
  parentPort!.postMessage({ type: 'error', error: { code: err.code ?? 'ERR_PKTGEN', message: err.message ?? String(e) } });
}
