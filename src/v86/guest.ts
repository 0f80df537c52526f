/**
 * startV86Guest: boots a Linux guest in v86 inside a Worker of this process, with its NIC on a
 * switch port (opened by name in the Worker, exclusively) and its serial console (ttyS0)
 * streamed back to this thread. Node only (Workers, files).
 *
 * ```ts
 * import { Switch } from 'vswitch';
 * import { startV86Guest } from 'vswitch/v86';
 * const sw = new Switch();
 * const vm = await startV86Guest({
 *   kernel: 'vmlinuz', initrd: 'initrd.cpio', bios: '/usr/share/seabios/bios.bin',
 *   append: 'console=ttyS0 quiet', port: 'vale0:vm1', console: 'stdout',
 * });
 * await vm.waitFor('# ', { timeoutMs: 120_000 });
 * vm.send('ip addr\n');
 * await vm.stop();
 * ```
 */
import { EventEmitter } from 'node:events';
import { createWriteStream, statSync, type WriteStream } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { parsePortName } from '#bridge';
import { ERR, VswitchError } from '../core/errors.js';
import type { V86AdapterStats } from './adapter.js';

export interface V86GuestOptions {
  /** Linux bzImage for i386 (e.g. /boot/vmlinuz-6.1.0-50-686 from linux-image-686:i386). */
  kernel: string;
  /** initrd/initramfs (an uncompressed cpio boots fastest). */
  initrd?: string;
  /** SeaBIOS image (Debian seabios: /usr/share/seabios/bios.bin or bios-256k.bin). Required: without one v86 boots nothing. */
  bios: string;
  /** VGA BIOS (e.g. /usr/share/seabios/vgabios-stdvga.bin); optional for serial-console guests. */
  vgaBios?: string;
  /** Kernel command line, e.g. "console=ttyS0 quiet". */
  append?: string;
  /** Port to attach the guest's NIC to, e.g. vale0:vm1 (opened exclusively). */
  port: string;
  /** Switch the port is on (default "default"); it must live in this process. */
  switch?: string;
  /** Keep the port when the guest stops (default false). */
  persistent?: boolean;
  /** Guest RAM in MiB (default 128). v86 loads the initrd at 64 MiB, so it must exceed 64 + the initrd's size. */
  memoryMB?: number;
  /** Emulated NIC: 'ne2k' (default; Linux ne2k-pci) or 'virtio' (Linux virtio_net). */
  nic?: 'ne2k' | 'virtio';
  /** Serial console: 'stdout', 'none' (default; still kept for output()/waitFor), a file path, or a callback. */
  console?: 'stdout' | 'none' | string | ((text: string) => void);
  /** Most frames handed to the NIC per event-loop turn (see V86AttachOptions.rxBatch). */
  rxBatch?: number;
  /** Time allowed for the Worker to load v86 and attach the port, in ms (default 60000). */
  startTimeoutMs?: number;
}

/** @internal What the Worker gets. */
export interface GuestWorkerData {
  kernel: string;
  initrd?: string;
  bios: string;
  vgaBios?: string;
  append: string;
  port: string;
  switch?: string;
  persistent?: boolean;
  memoryMB: number;
  nic: 'ne2k' | 'virtio';
  rxBatch?: number;
}

export interface WaitForOptions {
  /** Give up after this many ms (default 60000). */
  timeoutMs?: number;
  /** Search the output from this offset (see `outputLength`), e.g. the length before a command was sent. Default 0. */
  from?: number;
}

/** Serial output kept for output()/waitFor(); older output is dropped beyond this. */
const KEEP_CHARS = 4 << 20;

export class V86Guest extends EventEmitter {
  readonly port: string;
  readonly worker: Worker;
  /** Resolves with the Worker's exit code once it has exited. */
  readonly exited: Promise<number>;
  #out = '';
  /** Characters dropped from the front of #out. */
  #base = 0;
  #sink: ((text: string) => void) | null;
  #file: WriteStream | null;
  #stats = new Map<number, (s: V86AdapterStats | null) => void>();
  #seq = 0;
  #stopping: Promise<V86AdapterStats | null> | null = null;
  #stopped: ((s: V86AdapterStats | null) => void) | null = null;
  #exitCode: number | null = null;
  #error: Error | null = null;

  /** @internal use startV86Guest */
  constructor(worker: Worker, port: string, sink: ((text: string) => void) | null, file: WriteStream | null) {
    super();
    this.worker = worker;
    this.port = port;
    this.#sink = sink;
    this.#file = file;
    this.exited = new Promise<number>((resolve) => {
      worker.once('exit', (code) => {
        this.#exitCode = code;
        for (const r of this.#stats.values()) r(null);
        this.#stats.clear();
        this.#stopped?.(null);
        this.#file?.end();
        this.emit('exit', code);
        resolve(code);
      });
    });
  }

  /** @internal */
  onMessage(m: { t: string; text?: string; id?: number; stats?: V86AdapterStats | null; error?: { code: string; message: string } }): void {
    if (m.t === 'serial' && typeof m.text === 'string') {
      this.#out += m.text;
      if (this.#out.length > KEEP_CHARS) {
        const cut = this.#out.length - KEEP_CHARS / 2;
        this.#out = this.#out.slice(cut);
        this.#base += cut;
      }
      this.#sink?.(m.text);
      this.#file?.write(m.text);
      this.emit('serial', m.text);
    } else if (m.t === 'stats' && typeof m.id === 'number') {
      const r = this.#stats.get(m.id);
      this.#stats.delete(m.id);
      r?.(m.stats ?? null);
    } else if (m.t === 'stopped') {
      this.#stopped?.(m.stats ?? null);
    } else if (m.t === 'error' && m.error) {
      this.#error = new VswitchError(m.error.code, m.error.message);
      this.emit('error', this.#error);
    }
  }

  /** Serial console output so far (the last 2–4 MiB of it). */
  output(): string {
    return this.#out;
  }

  /** Serial output from offset `from` (an earlier `outputLength`) on, as far as it is still kept. */
  outputSince(from: number): string {
    return this.#out.slice(Math.max(0, from - this.#base));
  }

  /** Total characters of serial output seen so far (an offset for waitFor's `from`). */
  get outputLength(): number {
    return this.#base + this.#out.length;
  }

  /** True while the Worker runs. */
  get running(): boolean {
    return this.#exitCode === null;
  }

  /**
   * Resolves with the first match of `pattern` in the serial output (from `opts.from` on), waiting
   * for more output as needed. Rejects on timeout or when the guest exits first, with the end of
   * the output in the message.
   */
  waitFor(pattern: string | RegExp, opts: WaitForOptions = {}): Promise<string> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const from = opts.from ?? 0;
    const find = (): string | null => {
      const start = Math.max(0, from - this.#base);
      const s = this.#out.slice(start);
      if (typeof pattern === 'string') return s.includes(pattern) ? pattern : null;
      const m = pattern.exec(s);
      return m ? m[0] : null;
    };
    return new Promise<string>((resolve, reject) => {
      const hit = find();
      if (hit !== null) return resolve(hit);
      const done = (err: Error | null, v?: string) => {
        clearTimeout(timer);
        this.off('serial', onSerial);
        this.off('exit', onExit);
        if (err) reject(err); else resolve(v!);
      };
      const tail = () => this.#out.slice(-2000);
      const onSerial = () => {
        const h = find();
        if (h !== null) done(null, h);
      };
      const onExit = () => done(new VswitchError('ERR_V86_EXITED', `guest on ${this.port} exited before printing ${String(pattern)}; console ends with:\n${tail()}`));
      const timer = setTimeout(() => done(new VswitchError('ERR_TIMEOUT',
        `guest on ${this.port} did not print ${String(pattern)} within ${timeoutMs} ms; console ends with:\n${tail()}`)), timeoutMs);
      this.on('serial', onSerial);
      this.on('exit', onExit);
      if (!this.running) onExit();
    });
  }

  /** Types `text` on the guest's serial console (ttyS0). */
  send(text: string): void {
    if (!this.running) throw new VswitchError(ERR.CLOSED, `guest on ${this.port} is not running`);
    this.worker.postMessage({ t: 'serial', data: text });
  }

  /** The NIC adapter's counters (asked from the Worker), or null once it has stopped. */
  stats(): Promise<V86AdapterStats | null> {
    if (!this.running) return Promise.resolve(null);
    const id = ++this.#seq;
    return new Promise((resolve) => {
      this.#stats.set(id, resolve);
      this.worker.postMessage({ t: 'stats', id });
    });
  }

  /**
   * Stops the guest: detaches the NIC (closing the port), destroys the emulator, ends the Worker.
   * Resolves with the adapter's last counters (null if it never attached).
   */
  stop(timeoutMs = 5000): Promise<V86AdapterStats | null> {
    this.#stopping ??= (async () => {
      if (!this.running) return null;
      const got = new Promise<V86AdapterStats | null>((r) => { this.#stopped = r; });
      this.worker.postMessage({ t: 'stop' });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stats = await Promise.race([got, new Promise<null>((r) => { timer = setTimeout(() => r(null), timeoutMs); })]);
      clearTimeout(timer);
      await this.worker.terminate();
      await this.exited;
      return stats;
    })();
    return this.#stopping;
  }

  /** The error the Worker reported, if any. */
  get error(): Error | null {
    return this.#error;
  }
}

function checkFile(what: string, p: string | undefined, required: boolean): number {
  if (p === undefined && !required) return 0;
  if (typeof p !== 'string' || !p) throw new VswitchError(ERR.BAD_ARG, `startV86Guest: ${what} must be a file path`);
  try {
    const st = statSync(p);
    if (!st.isFile()) throw new Error('not a regular file');
    return st.size;
  } catch (e) {
    throw new VswitchError(ERR.BAD_ARG, `startV86Guest: ${what} ${p}: ${(e as Error).message}`);
  }
}

const workerUrl = new URL('./guest-worker.js', import.meta.url);

/**
 * Starts a v86 guest in a new Worker, its NIC on `opts.port`. Resolves once the Worker has
 * opened the port and the emulator runs (booting takes longer: wait for a console line with
 * waitFor). The Switch must live in this process (any thread).
 */
export async function startV86Guest(opts: V86GuestOptions): Promise<V86Guest> {
  const port = parsePortName(opts.port).name;
  checkFile('kernel', opts.kernel, true);
  const initrdSize = checkFile('initrd', opts.initrd, false);
  checkFile('bios', opts.bios, true);
  checkFile('vgaBios', opts.vgaBios, false);
  const memoryMB = opts.memoryMB ?? 128;
  if (!Number.isInteger(memoryMB) || memoryMB < 16 || memoryMB > 2048) {
    throw new VswitchError(ERR.BAD_ARG, `startV86Guest: memoryMB must be an integer 16..2048, got ${String(opts.memoryMB)}`);
  }
  if (opts.initrd && memoryMB * 1048576 < 64 * 1048576 + initrdSize + 16 * 1048576) {
    throw new VswitchError(ERR.BAD_ARG,
      `startV86Guest: memoryMB ${memoryMB} is too small: v86 loads the initrd at 64 MiB, so RAM must exceed 64 MiB + the initrd (${(initrdSize / 1048576).toFixed(1)} MiB) + room for the kernel (use ${Math.ceil(80 + initrdSize / 1048576)} or more)`);
  }
  const nic = opts.nic ?? 'ne2k';
  if (nic !== 'ne2k' && nic !== 'virtio') throw new VswitchError(ERR.BAD_ARG, `startV86Guest: nic must be 'ne2k' or 'virtio', got ${JSON.stringify(nic)}`);
  let sink: ((text: string) => void) | null = null;
  let file: WriteStream | null = null;
  const c = opts.console ?? 'none';
  if (typeof c === 'function') sink = c;
  else if (c === 'stdout') sink = (t) => process.stdout.write(t);
  else if (c !== 'none') {
    if (typeof c !== 'string' || !c) throw new VswitchError(ERR.BAD_ARG, "startV86Guest: console must be 'stdout', 'none', a file path or a function");
    file = createWriteStream(c, { flags: 'w' });
  }
  const data: GuestWorkerData = {
    kernel: opts.kernel, bios: opts.bios, append: opts.append ?? 'console=ttyS0', port, memoryMB, nic,
    ...(opts.initrd ? { initrd: opts.initrd } : {}), ...(opts.vgaBios ? { vgaBios: opts.vgaBios } : {}),
    ...(opts.switch ? { switch: opts.switch } : {}), ...(opts.persistent ? { persistent: true } : {}),
    ...(opts.rxBatch ? { rxBatch: opts.rxBatch } : {}),
  };
  const worker = new Worker(workerUrl, { workerData: data });
  const g = new V86Guest(worker, port, sink, file);
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new VswitchError('ERR_TIMEOUT', `v86 guest on ${port}: the Worker did not start within ${opts.startTimeoutMs ?? 60_000} ms`)), opts.startTimeoutMs ?? 60_000);
    worker.on('message', (m: { t: string; error?: { code: string; message: string } }) => {
      g.onMessage(m as Parameters<V86Guest['onMessage']>[0]);
      if (m.t === 'started') { clearTimeout(timer); resolve(); }
      else if (m.t === 'error' && m.error) { clearTimeout(timer); reject(new VswitchError(m.error.code, m.error.message)); }
    });
    worker.on('error', (e) => { clearTimeout(timer); reject(e); });
    worker.once('exit', (code) => { clearTimeout(timer); reject(new VswitchError('ERR_V86_EXITED', `v86 guest on ${port}: the Worker exited (code ${code}) before the guest started`)); });
  });
  // 'error' events without a listener would throw: keep them as g.error for callers that do not listen.
  g.on('error', () => {});
  try {
    await started;
  } catch (e) {
    await worker.terminate();
    file?.end();
    throw e;
  }
  return g;
}
