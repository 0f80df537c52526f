/**
 * The Worker side of attachInWorker (threaded.ts): opens the port by name, runs the adapter on
 * this thread's event loop, copies its counters into the shared buffer every PUBLISH_MS, and
 * stops when told to or when the adapter closes (its port was removed).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DROP_REASONS, type AdapterBase } from './common.js';
import { attachQemuDgram } from './qemu-dgram.js';
import { attachQemuStream } from './qemu-stream.js';
import { attachTap } from './tap.js';
import { attachVxlan } from './vxlan.js';
import { FIXED_WORDS, PUBLISH_MS, type FromWorker, type WorkerAdapterSpec } from './threaded.js';

const { switchName, spec, counters } = workerData as { switchName: string; spec: WorkerAdapterSpec; counters: SharedArrayBuffer };
const c = new Float64Array(counters);
const post = (m: FromWorker) => parentPort!.postMessage(m);

function publish(a: AdapterBase): void {
  const s = a.stats();
  c[0] = s.rxFrames;
  c[1] = s.rxBytes;
  c[2] = s.txFrames;
  c[3] = s.txBytes;
  c[4] = s.connections ?? 0;
  c[5] = s.disconnects ?? 0;
  c[6] = s.refused ?? 0;
  c[7] = s.connected ? 1 : 0;
  c[8] = s.txQueuedBytes ?? 0;
  c[9] = s.txQueuedPeak ?? 0;
  for (let i = 0; i < DROP_REASONS.length; i++) c[FIXED_WORDS + i] = s.drops[DROP_REASONS[i]];
  if (s.remotes) {
    const base = FIXED_WORDS + DROP_REASONS.length;
    for (let i = 0; i < s.remotes.length; i++) {
      c[base + 3 * i] = s.remotes[i].rxFrames;
      c[base + 3 * i + 1] = s.remotes[i].txFrames;
      c[base + 3 * i + 2] = s.remotes[i].learned;
    }
  }
}

async function main(): Promise<void> {
  let a: AdapterBase;
  try {
    switch (spec.kind) {
      case 'vxlan': a = await attachVxlan(switchName, spec.port, spec.options); break;
      case 'qemu-dgram': a = await attachQemuDgram(switchName, spec.port, spec.options); break;
      case 'qemu-stream': a = await attachQemuStream(switchName, spec.port, spec.addr, spec.options); break;
      case 'tap': a = await attachTap(switchName, spec.port, spec.options); break;
      default: throw new Error(`no such adapter kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
    }
  } catch (e) {
    post({ type: 'error', code: (e as { code?: string }).code, message: (e as Error).message });
    parentPort!.close();
    return;
  }
  a.countKernelDrops = false; // the handle reads the kernel's count itself, exact at each call
  a.on('warning', (e: unknown) => post({ type: 'warning', message: e instanceof Error ? e.message : String(e) }));
  const timer = setInterval(() => publish(a), PUBLISH_MS);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    await a.close();
    publish(a);
    post({ type: 'closed' });
    setImmediate(() => process.exit(0)); // ends this Worker only
  };
  a.once('close', () => void stop());
  parentPort!.on('message', (m: { type: string }) => {
    if (m.type === 'close') void stop();
  });
  publish(a);
  const s = a.stats();
  post({
    type: 'ready',
    local: a.local,
    kernel: a.kernelDropSource(),
    ...(s.vni !== undefined ? { vni: s.vni } : {}),
    ...(s.remotes ? { remotes: s.remotes.map((r) => r.remote) } : {}),
  });
}

void main();
