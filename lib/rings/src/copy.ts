/**
 * Frame copy inside one region. For short frames a Float64 word loop beats `copyWithin`, because
 * `copyWithin` pays a fixed call cost (63 vs 34 Mpps at 60 B on the project's 2-core machines,
 * Node 20); for long frames `copyWithin` (memmove) wins (135 vs 58 Gbit/s at 1514 B). The
 * crossover lies between 512 and 640 bytes: copies per CPU-second of 1024 buffers of 2 KiB
 * (median of 15 interleaved rounds, two runs, 2026-12-01):
 *
 * | frame | 256 B | 320 B | 384 B | 448 B | 512 B | 640 B | 1514 B |
 * | --- | --- | --- | --- | --- | --- | --- | --- |
 * | word loop, M/s | 22.7–32.5 | 21.6–22.2 | 16.4–16.9 | 21.6–22.0 | 19.3–19.5 | 9.4–15.9 | 7.0 |
 * | copyWithin, M/s | 16.0–20.3 | 7.8–16.7 | 15.5–16.7 | 19.1–19.9 | 18.1–18.8 | 9.8–16.5 | 10.5 |
 *
 * Float64 loads and stores keep every bit pattern (NaN payloads included) on x86-64, checked in
 * all V8 tiers. Exactly `len` bytes are written: nothing past the frame leaks from the source
 * buffer.
 *
 * Both offsets must be multiples of 8 (buffers are 64-aligned).
 */
export const COPY_LOOP_MAX = 512;

export function copyFrame(u8: Uint8Array, f64: Float64Array, dst: number, src: number, len: number): void {
  if (len > COPY_LOOP_MAX) {
    u8.copyWithin(dst, src, src + len);
    return;
  }
  const words = len >>> 3;
  const d = dst >>> 3;
  const s = src >>> 3;
  for (let k = 0; k < words; k++) f64[d + k] = f64[s + k];
  let k = words << 3;
  if ((len & 4) !== 0) {
    u8[dst + k] = u8[src + k];
    u8[dst + k + 1] = u8[src + k + 1];
    u8[dst + k + 2] = u8[src + k + 2];
    u8[dst + k + 3] = u8[src + k + 3];
    k += 4;
  }
  for (; k < len; k++) u8[dst + k] = u8[src + k];
}

/** A copy of `len` bytes from byte offset `src` to `dst` inside one region (Region.copy). */
export type MemCopy = (dst: number, src: number, len: number) => void;

/**
 * The whole WebAssembly module behind `wasmCopier`, in binary form (56 bytes):
 *
 *   (module
 *     (import "e" "m" (memory 1 65536 shared))
 *     (func (export "c") (param i32 i32 i32)
 *       local.get 0  local.get 1  local.get 2  memory.copy))
 *
 * One instruction, `memory.copy`, over the region's own memory. Why: V8 copies a shared
 * `Uint8Array` (copyWithin, set) with a relaxed-atomic word loop, because JavaScript may read
 * the buffer from another thread meanwhile; Wasm's memory.copy on shared memory has no such
 * promise to keep and runs the C library's memmove. Measured on the project's 2-core AMD EPYC
 * machines (Node 20, 1024 buffers of 2 KiB, copies per second): 1514 B 9.9 M (copyWithin) vs
 * 22.8 M (memory.copy); 60 B 32.8 M (copyWithin), ~63 M (the Float64 loop above), 102 M
 * (memory.copy). A frame still lands byte for byte as copyFrame would put it: exactly `len`
 * bytes, nothing past the frame.
 */
const COPY_WASM = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00, // type: (i32 i32 i32) -> ()
  0x02, 0x0b, 0x01, 0x01, 0x65, 0x01, 0x6d, 0x02, 0x03, 0x01, 0x80, 0x80, 0x04, // import e.m: shared memory 1..65536
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x07, 0x05, 0x01, 0x01, 0x63, 0x00, 0x00, // export "c" = function 0
  0x0a, 0x0e, 0x01, 0x0c, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfc, 0x0a, 0x00, 0x00, 0x0b, // memory.copy
];

/**
 * The part of the WebAssembly API used here, typed locally: TypeScript ships the global
 * WebAssembly types with its DOM libraries only, and this package compiles without them.
 */
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
}
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** A shared WebAssembly memory of `pages` 64 KiB pages (fixed size), or undefined where there is none. */
export function sharedWasmMemory(pages: number): WasmMemory | undefined {
  if (wasm === undefined) return undefined;
  try {
    return new wasm.Memory({ initial: pages, maximum: pages, shared: true });
  } catch {
    return undefined; // no shared WebAssembly memory here, or none that large
  }
}

/** Whether `x` is a WebAssembly.Memory. */
export function isWasmMemory(x: unknown): x is WasmMemory {
  return wasm !== undefined && x instanceof wasm.Memory;
}

let copyModule: object | null | undefined;

/**
 * Whether new regions are WebAssembly memories copied with memory.copy: yes where WebAssembly
 * with shared memory is available, unless the environment says VSWITCH_COPY=js (then every
 * copy is copyFrame's, e.g. to compare the two).
 */
export function wasmCopyWanted(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.VSWITCH_COPY !== 'js' && wasm !== undefined;
}

/** memory.copy over `memory` as a function, or undefined where this runtime cannot build it. */
export function wasmCopier(memory: WasmMemory): MemCopy | undefined {
  if (wasm === undefined) return undefined;
  try {
    if (copyModule === undefined) copyModule = new wasm.Module(new Uint8Array(COPY_WASM));
    if (copyModule === null) return undefined;
    return new wasm.Instance(copyModule, { e: { m: memory } }).exports.c as MemCopy;
  } catch {
    copyModule = copyModule ?? null;
    return undefined;
  }
}

/** copyFrame over one region's views, as a MemCopy (regions that are plain SharedArrayBuffers). */
export function jsCopier(u8: Uint8Array, f64: Float64Array): MemCopy {
  return (dst, src, len) => copyFrame(u8, f64, dst, src, len);
}
