/**
 * A Region is one SharedArrayBuffer with typed views over all of it, like the memory a netmap
 * allocator maps into a process. Objects inside it (netmap_if, rings, buffers) refer to each
 * other by byte offsets, never by references, so a region handed to another thread
 * (postMessage of the SharedArrayBuffer, no copy) is usable there as it is.
 *
 * Where the runtime allows it, a region whose size is a multiple of 64 KiB is a shared
 * WebAssembly.Memory (its `buffer` is an ordinary SharedArrayBuffer, so every view and every
 * Atomics call is the same; WasmMemory is its type): then `copy` is WebAssembly's memory.copy, 2-3x faster than any
 * JavaScript copy of shared memory (copy.ts says why). Hand such a region to another thread as
 * `region.shareable` (the Memory itself), or the other side gets the buffer only and copies with
 * copyFrame: correct, just slower.
 *
 * The first 64 bytes hold a header (magic, version, size, a bump-allocation pointer); see
 * layout.ts. `alloc()` is safe from any thread (Atomics.add on the pointer) and never frees:
 * regions are carved once, when ports are laid out.
 */
import {
  ALIGN, REGION_HDR_SIZE, REGION_MAGIC, REGION_VERSION, RG_BRK, RG_BYTE_LENGTH, RG_MAGIC, RG_VERSION,
} from './layout.js';
import { RingError, check, checkInt } from './errors.js';
import { type MemCopy, type WasmMemory, isWasmMemory, jsCopier, sharedWasmMemory, wasmCopier, wasmCopyWanted } from './copy.js';

/** What a region is handed to another thread as: the WebAssembly.Memory if it is one, else its buffer. */
export type Shareable = SharedArrayBuffer | WasmMemory;

const WASM_PAGE = 65536;

/** Largest region: offsets are kept in 32-bit words. */
export const MAX_REGION_BYTES = 0xffff_ffc0;

export class Region {
  readonly sab: SharedArrayBuffer;
  /** The WebAssembly.Memory whose buffer `sab` is, if the region is one. */
  readonly memory: WasmMemory | undefined;
  /**
   * Copies `len` bytes from offset `src` to offset `dst` of this region: memory.copy when the
   * region is a WebAssembly.Memory, copyFrame otherwise. Offsets must be multiples of 8 and the
   * ranges inside the region (callers check; memory.copy throws a WebAssembly.RuntimeError, before writing anything, past
   * the end).
   */
  readonly copy: MemCopy;
  readonly byteLength: number;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly dv: DataView;

  private constructor(sab: SharedArrayBuffer, memory: WasmMemory | undefined) {
    this.sab = sab;
    this.memory = memory;
    this.byteLength = sab.byteLength;
    this.u8 = new Uint8Array(sab);
    this.u16 = new Uint16Array(sab, 0, sab.byteLength >>> 1);
    this.u32 = new Uint32Array(sab, 0, sab.byteLength >>> 2);
    this.i32 = new Int32Array(sab, 0, sab.byteLength >>> 2);
    this.f64 = new Float64Array(sab, 0, sab.byteLength >>> 3);
    this.dv = new DataView(sab);
    this.copy = (memory !== undefined ? wasmCopier(memory) : undefined) ?? jsCopier(this.u8, this.f64);
  }

  /** What to post to another thread for it to attach (Region.attach) with the same fast copy. */
  get shareable(): Shareable {
    return this.memory ?? this.sab;
  }

  /** Creates a zeroed region of `byteLength` bytes (a multiple of 64, at least 4096). */
  static create(byteLength: number): Region {
    checkInt(byteLength, 'region byteLength', 4096, MAX_REGION_BYTES);
    check(byteLength % ALIGN === 0, 'ERR_RING_ARG', `region byteLength must be a multiple of ${ALIGN}, got ${byteLength}`);
    let sab: SharedArrayBuffer | undefined;
    let memory: WasmMemory | undefined;
    if (byteLength % WASM_PAGE === 0 && wasmCopyWanted()) {
      memory = sharedWasmMemory(byteLength / WASM_PAGE); // undefined: a plain buffer below
      if (memory !== undefined) sab = memory.buffer as SharedArrayBuffer;
    }
    try {
      sab ??= new SharedArrayBuffer(byteLength);
    } catch (e) {
      throw new RingError('ERR_RING_NOMEM', `cannot allocate a ${byteLength}-byte SharedArrayBuffer: ${(e as Error).message}`);
    }
    const r = new Region(sab, memory);
    r.u32[RG_MAGIC >>> 2] = REGION_MAGIC;
    r.u32[RG_VERSION >>> 2] = REGION_VERSION;
    r.u32[RG_BYTE_LENGTH >>> 2] = byteLength;
    Atomics.store(r.i32, RG_BRK >>> 2, REGION_HDR_SIZE);
    return r;
  }

  /**
   * Attaches to a region created elsewhere (typically in another thread) without copying.
   * Checks the header so that a wrong buffer fails here, not later with garbage.
   */
  static attach(shared: Shareable): Region {
    const memory = isWasmMemory(shared) ? shared : undefined;
    const sab: unknown = memory !== undefined ? memory.buffer : shared;
    check(sab instanceof SharedArrayBuffer, 'ERR_RING_ARG', 'Region.attach needs a SharedArrayBuffer or a shared WebAssembly.Memory');
    check(sab.byteLength >= REGION_HDR_SIZE && sab.byteLength % ALIGN === 0, 'ERR_RING_BAD_REGION',
      `not a region: ${sab.byteLength} bytes is not a multiple of ${ALIGN} of at least ${REGION_HDR_SIZE}`);
    const r = new Region(sab, memory);
    check(r.u32[RG_MAGIC >>> 2] === REGION_MAGIC, 'ERR_RING_BAD_REGION', 'not a region: bad magic (was it created with Region.create?)');
    check(r.u32[RG_VERSION >>> 2] === REGION_VERSION, 'ERR_RING_BAD_REGION',
      `region layout version ${r.u32[RG_VERSION >>> 2]} is not ${REGION_VERSION}`);
    check(r.u32[RG_BYTE_LENGTH >>> 2] === sab.byteLength, 'ERR_RING_BAD_REGION', 'region header size does not match the buffer');
    return r;
  }

  /** Bytes not yet allocated. */
  get free(): number {
    return this.byteLength - Atomics.load(this.u32, RG_BRK >>> 2);
  }

  /** Reserves `size` bytes aligned to `align` (power of two ≥ 64); returns the byte offset. */
  alloc(size: number, align = ALIGN): number {
    checkInt(size, 'alloc size', 1, MAX_REGION_BYTES);
    check(align >= ALIGN && (align & (align - 1)) === 0, 'ERR_RING_ARG', `alignment must be a power of two ≥ ${ALIGN}, got ${align}`);
    const want = Math.ceil(size / ALIGN) * ALIGN;
    for (;;) {
      const brk = Atomics.load(this.u32, RG_BRK >>> 2);
      const start = Math.ceil(brk / align) * align;
      const end = start + want;
      if (end > this.byteLength) {
        throw new RingError('ERR_RING_REGION_FULL',
          `region too small: ${size} bytes requested, ${this.byteLength - start} left of ${this.byteLength}; create a larger region`);
      }
      if (Atomics.compareExchange(this.u32, RG_BRK >>> 2, brk, end) === brk) return start;
    }
  }

  /** A Uint8Array over [offset, offset+length) of the region (allocates a view: not for hot paths). */
  bytes(offset: number, length: number): Uint8Array {
    check(offset >= 0 && length >= 0 && offset + length <= this.byteLength, 'ERR_RING_RANGE',
      `byte range [${offset}, ${offset + length}) is outside the region of ${this.byteLength} bytes`);
    return new Uint8Array(this.sab, offset, length);
  }
}
