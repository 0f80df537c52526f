/**
 * Worker entry of startV86Guest: boots one v86 guest and attaches its NIC to a port by name.
 * Messages from the parent: `{ t: 'serial', data }` (serial input), `{ t: 'stats', id }`,
 * `{ t: 'stop' }`. To the parent: `{ t: 'started', nicMac }`, `{ t: 'serial', text }`,
 * `{ t: 'stats', id, stats }`, `{ t: 'error', error }`, `{ t: 'stopped', stats }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attachV86, type V86Attachment } from './adapter.js';
import type { GuestWorkerData } from './guest.js';

const o = workerData as GuestWorkerData;
const post = (m: unknown) => parentPort!.postMessage(m);
const errData = (e: unknown) => ({
  code: (e as { code?: string }).code ?? 'ERR_V86',
  message: e instanceof Error ? e.message : String(e),
});

/** Reads a file as an ArrayBuffer of exactly its size (v86 takes `{ buffer }`). */
function image(path: string): { buffer: ArrayBuffer } {
  const b = readFileSync(path);
  const ab = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return { buffer: ab as ArrayBuffer };
}

interface V86Like {
  add_listener(event: string, listener: (value: never) => void): void;
  remove_listener(event: string, listener: (value: never) => void): void;
  run(): unknown;
  destroy(): Promise<void>;
  serial0_send(s: string): void;
}

let emu: V86Like | null = null;
let nic: V86Attachment | null = null;

// Serial output arrives one byte per event: gather bytes and post them every few ms.
const serialBuf = new Uint8Array(1 << 16);
let serialLen = 0;
let serialTimer: ReturnType<typeof setTimeout> | null = null;
const decoder = new TextDecoder('utf-8');
function flushSerial(): void {
  serialTimer = null;
  if (serialLen === 0) return;
  const text = decoder.decode(serialBuf.subarray(0, serialLen), { stream: true });
  serialLen = 0;
  if (text) post({ t: 'serial', text });
}
function onSerialByte(byte: number): void {
  serialBuf[serialLen++] = byte;
  if (serialLen === serialBuf.length) flushSerial();
  else serialTimer ??= setTimeout(flushSerial, 10);
}

async function start(): Promise<void> {
  const { V86 } = (await import('v86')) as unknown as { V86: new (opts: Record<string, unknown>) => V86Like };
  const wasmDir = dirname(fileURLToPath(import.meta.resolve('v86')));
  const opts: Record<string, unknown> = {
    wasm_path: join(wasmDir, 'v86.wasm'),
    bios: image(o.bios),
    bzimage: image(o.kernel),
    cmdline: o.append,
    memory_size: o.memoryMB << 20,
    net_device: { type: o.nic },
    autostart: false,
    disable_speaker: true,
  };
  if (o.vgaBios) opts.vga_bios = image(o.vgaBios);
  if (o.initrd) opts.initrd = image(o.initrd);
  const e = new V86(opts);
  emu = e;
  const ready = new Promise<void>((r) => e.add_listener('emulator-ready', (() => r()) as (v: never) => void));
  e.add_listener('serial0-output-byte', onSerialByte as (v: never) => void);
  nic = await attachV86(e, o.port, { switch: o.switch, rxBatch: o.rxBatch, persistent: o.persistent });
  await ready;
  e.run();
  post({ t: 'started', nicMac: nic.stats().nicMac });
}

async function stop(): Promise<void> {
  flushSerial();
  const last = nic?.stats() ?? null;
  try {
    await nic?.detach();
  } finally {
    nic = null;
    const e = emu;
    emu = null;
    if (e) await Promise.race([e.destroy(), new Promise((r) => setTimeout(r, 2000))]);
    post({ t: 'stopped', stats: last });
  }
}

parentPort!.on('message', (m: { t: string; data?: string; id?: number }) => {
  if (m.t === 'serial' && typeof m.data === 'string') {
    emu?.serial0_send(m.data);
  } else if (m.t === 'stats') {
    post({ t: 'stats', id: m.id, stats: nic?.stats() ?? null });
  } else if (m.t === 'stop') {
    stop().catch((e: unknown) => post({ t: 'error', error: errData(e) }));
  }
});

start().catch((e: unknown) => {
  post({ t: 'error', error: errData(e) });
});
