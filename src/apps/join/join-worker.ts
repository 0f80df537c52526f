/**
 * One direction of the bridge tool: receive a batch on `src`, copy it into `dst`'s TX buffers,
 * send, release; block on `src` when it is idle. Stopped through the shared stop word.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openPort } from '../../core/open.js';
import type { Port } from '../../core/port.js';
import { LIVE_WORDS } from './join.js';

const { src, dst, dir, batch, switchName, stop, live } = workerData as {
  src: string; dst: string; dir: number; batch: number; switchName: string; stop: SharedArrayBuffer; live: SharedArrayBuffer;
};
const stopWord = new Int32Array(stop);
const counters = new Float64Array(live);
const base = dir * LIVE_WORDS;

function run(s: Port, d: Port): void {
  let frames = 0;
  let bytes = 0;
  let dropped = 0;
  const mtu = d.mtu;
  while (Atomics.load(stopWord, 0) === 0) {
    const tx = d.txReserve(batch);
    if (tx.count === 0) {
      // Our TX ring is drained by our own txsync, so this is brief: retry after a pause.
      d.flush();
      Atomics.wait(stopWord, 0, 0, 1);
      continue;
    }
    const rx = s.receive(tx.count);
    const n = rx.count;
    if (n === 0) {
      if (s.closed || (!s.wait(100) && s.closed)) throw Object.assign(new Error(`port ${s.name} was closed or removed`), { code: 'ERR_PORT_CLOSED' });
      continue;
    }
    const sb = rx.buffer;
    const db = tx.buffer;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const len = rx.length(i);
      if (len < 14 || len > mtu) {
        dropped++;
        continue;
      }
      const off = rx.offset(i);
      db.set(sb.subarray(off, off + len), tx.offset(k));
      tx.setLength(k, len);
      bytes += len;
      k++;
    }
    d.txCommit(k);
    s.release();
    frames += k;
    counters[base] = frames;
    counters[base + 1] = bytes;
    counters[base + 2] = dropped;
  }
}

let s: Port | undefined;
let d: Port | undefined;
try {
  // Each port is used by both Workers: one reads its RX ring, the other writes its TX ring.
  s = await openPort(src, { switch: switchName, share: true, holder: 'vswitch bridge (join)' });
  d = await openPort(dst, { switch: switchName, share: true, holder: 'vswitch bridge (join)' });
  parentPort!.postMessage({ type: 'started' });
  run(s, d);
} catch (e) {
  const err = e as { code?: string; message?: string };
  parentPort!.postMessage({ type: 'error', error: { code: err.code ?? 'ERR_BRIDGE', message: err.message ?? String(e) } });
} finally {
  await s?.close().catch(() => {});
  await d?.close().catch(() => {});
}
