/**
 * Adapters in their own threads: `attachInWorker` starts a Worker that opens the port by name
 * (through the Switch's BroadcastChannel, like openPort) and runs the adapter's socket I/O
 * there, so two adapters use two cores and the thread holding the Switch only manages.
 *
 * The handle returned here has the same stats()/close() as an in-thread adapter. Counters travel
 * through a SharedArrayBuffer of float64 words that the Worker rewrites every PUBLISH_MS (and
 * once more when it stops), never a message per frame; the switch-side counters are read from
 * the bridge directly, and the kernel's receive-queue drops from /proc/net/udp by the socket's
 * inode, so both are exact at the moment of the call; the adapter's own counters may be up to
 * PUBLISH_MS old.
 *
 * Layout of the counters buffer (float64 words):
 *
 * | word                | what                                                           |
 * |---------------------|----------------------------------------------------------------|
 * | 0..7                | rxFrames, rxBytes, txFrames, txBytes, connections, disconnects, refused, connected (0/1) |
 * | 8..9                | txQueuedBytes, txQueuedPeak (stream adapters)                  |
 * | 10..10+D-1          | drops by reason, in DROP_REASONS order (D reasons)             |
 * | 10+D + 3r .. +2     | VXLAN remote r: rxFrames, txFrames, learned                    |
 *
 * Differences from in-thread adapters: frame taps (addTap, capture's 'adapter' mode) need the
 * frames in this thread and are not offered (capture uses a mirror port instead); VXLAN adapters
 * in Workers do not share a UDP endpoint with each other (each Worker binds its own socket); the
 * Worker keeps the process running until close(). VXLAN, QEMU dgram, QEMU stream and TAP adapters
 * can run this way (a TAP adapter's socat child is started and stopped by its Worker).
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { PortCounters } from '#bridge';
import { VswitchError } from '../core/errors.js';
import type { Port } from '../core/port.js';
import type { Switch } from '../core/switch.js';
import {
  DROP_REASONS, adapterError, registerAdapter, unregisterAdapter, zeroDrops,
  type Adapter, type AdapterKind, type AdapterStats, type FrameTap,
} from './common.js';
import { SocketDrops, type SocketDropsSource } from './kernel-drops.js';
import type { QemuDgramOptions } from './qemu-dgram.js';
import type { QemuStreamOptions, StreamSpec } from './qemu-stream.js';
import type { TapOptions } from './tap.js';
import type { VxlanOptions } from './vxlan.js';

/** How often a Worker copies its counters into the shared buffer. */
export const PUBLISH_MS = 10;
export const FIXED_WORDS = 10;
export const MAX_REMOTES = 256;
export const COUNTER_WORDS = FIXED_WORDS + DROP_REASONS.length + 3 * MAX_REMOTES;

/** What to run in the Worker: the same options as attachVxlan / attachQemuDgram / attachQemuStream / attachTap. */
export type WorkerAdapterSpec =
  | { kind: 'vxlan'; port: string; options: VxlanOptions }
  | { kind: 'qemu-dgram'; port: string; options: QemuDgramOptions }
  | { kind: 'qemu-stream'; port: string; addr: StreamSpec | string; options?: QemuStreamOptions }
  | { kind: 'tap'; port: string; options: TapOptions };

/** @internal Messages between the handle and its Worker. */
export interface WorkerReady {
  type: 'ready';
  local: string;
  vni?: number;
  remotes?: string[];
  kernel: SocketDropsSource | null;
}
export type FromWorker =
  | WorkerReady
  | { type: 'error'; code?: string; message: string }
  | { type: 'warning'; message: string }
  | { type: 'closed' };

const workerUrl = new URL('./worker-host.js', import.meta.url);

/** An adapter running in a Worker of its own, seen from the thread that started it. */
export class WorkerAdapter extends EventEmitter implements Adapter {
  readonly kind: AdapterKind;
  readonly portName: string;
  /** The port is held by the Worker: there is no Port handle in this thread. */
  readonly port: Port | null = null;
  readonly local: string;
  /** The Worker: its threadId names the thread that holds the port. */
  readonly worker: Worker;
  readonly #sw: Switch;
  readonly #c: Float64Array;
  readonly #vni: number | undefined;
  readonly #remotes: string[] | undefined;
  readonly #kernel: SocketDrops | null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #exited: Promise<void>;

  /** @internal use attachInWorker */
  constructor(sw: Switch, spec: WorkerAdapterSpec, w: Worker, counters: Float64Array, ready: WorkerReady) {
    super();
    this.#sw = sw;
    this.kind = spec.kind;
    this.portName = spec.port;
    this.worker = w;
    this.#c = counters;
    this.local = ready.local;
    this.#vni = ready.vni;
    this.#remotes = ready.remotes;
    this.#kernel = ready.kernel ? new SocketDrops(ready.kernel) : null;
    this.#exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.on('message', (m: FromWorker) => {
      if (m.type === 'warning') this.emit('warning', new Error(m.message));
      else if (m.type === 'closed') void this.close(); // the port went away: the Worker stopped
    });
    w.on('error', (e) => this.emit('warning', e));
    w.once('exit', () => {
      if (!this.#closed) void this.close();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): AdapterStats {
    const c = this.#c;
    const drops = zeroDrops();
    let dropped = 0;
    for (let i = 0; i < DROP_REASONS.length; i++) {
      drops[DROP_REASONS[i]] = c[FIXED_WORDS + i];
    }
    if (this.#kernel) drops.kernelQueue = this.#kernel.read();
    for (const r of DROP_REASONS) dropped += drops[r];
    let sw: PortCounters | null = null;
    if (!this.#closed) {
      try {
        sw = this.#sw.ports(this.portName.slice(0, this.portName.indexOf(':'))).find((p) => p.name === this.portName)?.counters ?? null;
      } catch {
        sw = null;
      }
    }
    const s: AdapterStats = {
      kind: this.kind,
      port: this.portName,
      rxFrames: c[0],
      rxBytes: c[1],
      txFrames: c[2],
      txBytes: c[3],
      drops,
      dropped,
      switch: sw,
      local: this.local,
      thread: this.worker.threadId,
    };
    if (this.kind === 'qemu-stream') {
      s.connections = c[4];
      s.disconnects = c[5];
      s.refused = c[6];
      s.connected = c[7] === 1;
      s.txQueuedBytes = c[8];
      s.txQueuedPeak = c[9];
    }
    if (this.#remotes) {
      const base = FIXED_WORDS + DROP_REASONS.length;
      s.remotes = this.#remotes.map((remote, i) => ({ remote, rxFrames: c[base + 3 * i], txFrames: c[base + 3 * i + 1], learned: c[base + 3 * i + 2] }));
    }
    if (this.#vni !== undefined) s.vni = this.#vni;
    return s;
  }

  addTap(_tap: FrameTap): () => void {
    throw new VswitchError('ERR_CAPTURE_UNSUPPORTED', `the ${this.kind} adapter of ${this.portName} runs in its own thread: frame taps need an in-thread adapter (capture it with mode 'mirror')`);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      unregisterAdapter(this.#sw, this);
      this.worker.postMessage({ type: 'close' });
      const timer = setTimeout(() => void this.worker.terminate(), 5000);
      await this.#exited;
      clearTimeout(timer);
      this.emit('close');
    })();
    return this.#closing;
  }
}

/**
 * Starts `spec`'s adapter in a Worker of its own and returns its handle once the port is open
 * and the socket bound (errors, e.g. EADDRINUSE or ERR_PORT_BUSY, reject as from attach*).
 *
 * ```ts
 * const up = await attachInWorker(sw, { kind: 'vxlan', port: 'vale0:up', options: { local: '10.99.0.1:4789', remotes: ['10.99.0.2:4789'], vni: 42 } });
 * ```
 */
export async function attachInWorker(sw: Switch, spec: WorkerAdapterSpec): Promise<WorkerAdapter> {
  if (!spec || typeof spec !== 'object' || typeof spec.port !== 'string') throw adapterError('attachInWorker needs { kind, port, options }');
  if (spec.kind === 'vxlan' && Array.isArray(spec.options?.remotes) && spec.options.remotes.length > MAX_REMOTES) {
    throw adapterError(`vxlan in a Worker: at most ${MAX_REMOTES} remotes`);
  }
  const sab = new SharedArrayBuffer(8 * COUNTER_WORDS);
  const w = new Worker(workerUrl, { workerData: { switchName: sw.name, spec, counters: sab } });
  const ready = await new Promise<WorkerReady>((resolve, reject) => {
    const onMsg = (m: FromWorker) => {
      if (m.type === 'ready') {
        cleanup();
        resolve(m);
      } else if (m.type === 'error') {
        cleanup();
        reject(new VswitchError(m.code ?? 'ERR_ADAPTER', m.message));
      }
    };
    const onErr = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new VswitchError('ERR_ADAPTER', `the adapter thread for ${spec.port} exited (code ${code}) before it was ready`));
    };
    const cleanup = () => {
      w.off('message', onMsg);
      w.off('error', onErr);
      w.off('exit', onExit);
    };
    w.on('message', onMsg);
    w.on('error', onErr);
    w.on('exit', onExit);
  }).catch(async (e: unknown) => {
    await w.terminate();
    throw e;
  });
  const a = new WorkerAdapter(sw, spec, w, new Float64Array(sab), ready);
  registerAdapter(sw, a);
  return a;
}
