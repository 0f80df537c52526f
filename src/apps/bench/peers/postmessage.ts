/**
 * Runs the postMessage peer (see postmessage-worker.ts): a switch Worker, one Worker per
 * receiver and per sender, each host joined to the switch by a MessageChannel. Measures frames
 * delivered to the receivers per second over the same warmup/duration windows as vswitch.
 *
 * Two modes, the two ways people write it:
 *  - batch ("postmessage"): an array of `batch` Uint8Array frames per message (the sensible
 *    way; default 256 frames, at most 1024 in flight per sender);
 *  - frame ("postmessage-1"): one frame per message (the naive way; at most 256 in flight).
 */
import { MessageChannel, Worker, type TransferListItem } from 'node:worker_threads';
import type { PmWorkerData } from './postmessage-worker.js';
import { rxMac, sleep, targetsOf, txMac, type PeerRun, type PeerScenario } from './common.js';

const workerUrl = new URL('./postmessage-worker.js', import.meta.url);

export interface PostMessageOptions {
  mode: 'batch' | 'frame';
  /** Frames per message (batch) or posted back to back (frame). */
  batch?: number;
  /** Frames in flight per sender, end to end. */
  window?: number;
}

function start(data: PmWorkerData, transfer: TransferListItem[] = []): Promise<Worker> {
  const w = new Worker(workerUrl, { workerData: data, transferList: transfer });
  return new Promise((ok, ko) => {
    w.once('message', () => ok(w));
    w.once('error', ko);
    w.once('exit', (c) => ko(new Error(`postmessage ${data.role} exited with code ${c} before starting`)));
  });
}

export async function runPostMessage(s: PeerScenario, warmup: number, duration: number, o: PostMessageOptions): Promise<PeerRun> {
  const mode = o.mode;
  const batch = o.batch ?? (mode === 'batch' ? 256 : 16);
  const window = Math.max(batch, o.window ?? (mode === 'batch' ? 1024 : 256));
  const workers: Worker[] = [];
  const credits = new SharedArrayBuffer(4 * s.senders * s.receivers);
  const stop = new SharedArrayBuffer(4);
  const lives: Float64Array[] = [];
  try {
    const sw = new Worker(workerUrl, { workerData: { role: 'switch', mode } satisfies PmWorkerData });
    workers.push(sw);
    const swErr = new Promise<never>((_, ko) => sw.once('error', ko));
    swErr.catch(() => {});
    const attach = async () => {
      const ch = new MessageChannel();
      const attached = new Promise((ok) => sw.once('message', ok));
      sw.postMessage({ port: ch.port1 }, [ch.port1]);
      await Promise.race([attached, swErr]);
      return ch.port2;
    };
    for (let r = 0; r < s.receivers; r++) {
      const port = await attach();
      const live = new SharedArrayBuffer(16);
      lives.push(new Float64Array(live));
      workers.push(await start({ role: 'receiver', mode, port, index: r, receivers: s.receivers, mac: rxMac(r), credits, live }, [port]));
    }
    const dstMac = s.bcast ? 'ff:ff:ff:ff:ff:ff' : rxMac(0);
    const targets = targetsOf(s);
    for (let i = 0; i < s.senders; i++) {
      const port = await attach();
      workers.push(await start({
        role: 'sender', mode, port, index: i, receivers: s.receivers, targets, frameLen: s.frameLen, srcMac: txMac(i), dstMac,
        batch, window, credits, stop,
      }, [port]));
    }
    const failed = Promise.race(workers.map((w) => new Promise<never>((_, ko) => w.once('error', ko))));
    failed.catch(() => {});
    const sample = () => lives.reduce((a, l) => [a[0] + l[0], a[1] + l[1]], [0, 0]);
    await Promise.race([sleep(warmup * 1000), failed]);
    const [p1, b1] = sample();
    const t1 = performance.now();
    await Promise.race([sleep(duration * 1000), failed]);
    const [p2, b2] = sample();
    const secs = (performance.now() - t1) / 1000;
    return { mpps: (p2 - p1) / secs / 1e6, gbps: ((b2 - b1) * 8) / secs / 1e9 };
  } finally {
    Atomics.store(new Int32Array(stop), 0, 1);
    await Promise.allSettled(workers.map((w) => w.terminate()));
  }
}
