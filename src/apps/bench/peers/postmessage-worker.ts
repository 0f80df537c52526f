/**
 * The postMessage peer: the Worker switch a JavaScript developer would write without this
 * project, and the hosts around it. One file, three roles (workerData.role):
 *
 *  switch    owns one MessagePort per host. On each message (a batch: an array of Uint8Array
 *            frames; or one Uint8Array frame), for each frame: learn source MAC → port in a
 *            Map, look the destination up, collect frames per output port (broadcast, multicast
 *            and unknown destinations go to every other port), then one postMessage per output
 *            port (an array in batch mode, a single frame per message in frame mode). Frames
 *            are structured-cloned (copied), not transferred: a flooded frame goes to several
 *            ports, and a 60-byte copy costs less than detaching a buffer.
 *  sender    builds every frame as a fresh Uint8Array (template copied in) and posts them to the
 *            switch in batches, keeping at most `window` frames in flight end to end.
 *  receiver  counts frames and bytes into shared counters the harness samples, and credits the
 *            sender of each frame (its index is the last byte of its source MAC).
 *
 * Written the way such code is usually written — per-frame allocation, Map lookups, event
 * handlers — because that is what is being compared against. Only the harness (counters,
 * credits, the window) uses SharedArrayBuffer and Atomics, so the switch itself sees nothing but
 * postMessage traffic; the window keeps queues bounded so this measures forwarding, not how far
 * an unbounded message queue can grow.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { FrameBuilder } from '../../../frame.js';
import { SENDER_INDEX_BYTE, helloFrame } from './common.js';

export interface PmSwitchData { role: 'switch'; mode: 'batch' | 'frame' }
export interface PmSenderData {
  role: 'sender'; mode: 'batch' | 'frame'; port: MessagePort; index: number; receivers: number;
  targets: number[]; frameLen: number; srcMac: string; dstMac: string; batch: number; window: number;
  /** Int32 per (sender, receiver): frames of that sender the receiver got. */
  credits: SharedArrayBuffer;
  stop: SharedArrayBuffer;
}
export interface PmReceiverData {
  role: 'receiver'; mode: 'batch' | 'frame'; port: MessagePort; index: number; receivers: number; mac: string;
  credits: SharedArrayBuffer;
  /** Float64 [frames, bytes]. */
  live: SharedArrayBuffer;
}
export type PmWorkerData = PmSwitchData | PmSenderData | PmReceiverData;

const data = workerData as PmWorkerData;

function macKey(f: Uint8Array, o: number): number {
  return ((f[o] << 8) | f[o + 1]) * 0x100000000 + (((f[o + 2] << 24) | (f[o + 3] << 16) | (f[o + 4] << 8) | f[o + 5]) >>> 0);
}

if (data.role === 'switch') {
  const ports: MessagePort[] = [];
  const table = new Map<number, number>();
  const batchMode = data.mode === 'batch';
  const forward = (inPort: number, msg: Uint8Array | Uint8Array[]) => {
    const frames = Array.isArray(msg) ? msg : [msg];
    const out: Uint8Array[][] = ports.map(() => []);
    for (const f of frames) {
      table.set(macKey(f, 6), inPort);
      const dst = (f[0] & 1) === 0 ? table.get(macKey(f, 0)) : undefined;
      if (dst === undefined) {
        for (let p = 0; p < ports.length; p++) if (p !== inPort) out[p].push(f);
      } else if (dst !== inPort) {
        out[dst].push(f);
      }
    }
    for (let p = 0; p < ports.length; p++) {
      if (out[p].length === 0) continue;
      if (batchMode) ports[p].postMessage(out[p]);
      else for (const f of out[p]) ports[p].postMessage(f);
    }
  };
  parentPort!.on('message', (m: { port: MessagePort }) => {
    const idx = ports.length;
    ports.push(m.port);
    m.port.on('message', (msg: Uint8Array | Uint8Array[]) => forward(idx, msg));
    parentPort!.postMessage('attached');
  });
} else if (data.role === 'receiver') {
  const d = data;
  const live = new Float64Array(d.live);
  const credits = new Int32Array(d.credits);
  const perSender: number[] = [];
  d.port.on('message', (msg: Uint8Array | Uint8Array[]) => {
    const frames = Array.isArray(msg) ? msg : [msg];
    let bytes = 0;
    for (const f of frames) {
      bytes += f.length;
      const s = f[SENDER_INDEX_BYTE];
      perSender[s] = (perSender[s] ?? 0) + 1;
    }
    live[0] += frames.length;
    live[1] += bytes;
    for (let s = 0; s < perSender.length; s++) {
      const n = perSender[s];
      if (!n) continue;
      perSender[s] = 0;
      const i = s * d.receivers + d.index;
      if (i < credits.length) {
        Atomics.add(credits, i, n);
        Atomics.notify(credits, i);
      }
    }
  });
  // Make this host's MAC known to the switch, as a real host's first frame would.
  d.port.postMessage(d.mode === 'batch' ? [helloFrame(d.mac)] : helloFrame(d.mac));
  parentPort!.postMessage('ready');
} else {
  const d = data;
  const credits = new Int32Array(d.credits);
  const stop = new Int32Array(d.stop);
  const fb = new FrameBuilder({ length: d.frameLen, srcMac: d.srcMac, dstMac: d.dstMac });
  const tpl = new Uint8Array(d.frameLen);
  fb.write(tpl, 0);
  // Frames flooded back to this host before the switch learns the receivers are ignored.
  d.port.on('message', () => {});
  let sent = 0; // wraps like the Int32 credits
  const run = async () => {
    while (Atomics.load(stop, 0) === 0) {
      // In flight: sent minus what the slowest target receiver got.
      let worst = 0;
      let worstIdx = d.index * d.receivers + d.targets[0];
      let worstSeen = Atomics.load(credits, worstIdx);
      for (const r of d.targets) {
        const i = d.index * d.receivers + r;
        const seen = Atomics.load(credits, i);
        const inFlight = (sent - seen) | 0;
        if (inFlight > worst) { worst = inFlight; worstIdx = i; worstSeen = seen; }
      }
      if (worst + d.batch <= d.window) {
        if (d.mode === 'batch') {
          const frames: Uint8Array[] = [];
          for (let k = 0; k < d.batch; k++) frames.push(tpl.slice());
          d.port.postMessage(frames);
        } else {
          for (let k = 0; k < d.batch; k++) d.port.postMessage(tpl.slice());
        }
        sent = (sent + d.batch) | 0;
        continue;
      }
      // Window full: sleep until a receiver credits us (or 50 ms, to look at `stop` again).
      const w = Atomics.waitAsync(credits, worstIdx, worstSeen, 50);
      if (w.async) await w.value;
    }
  };
  parentPort!.postMessage('ready');
  void run();
}
