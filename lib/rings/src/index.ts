/**
 * shared-memory-ring: netmap-layout rings in a SharedArrayBuffer.
 *
 * - `Region`: one SharedArrayBuffer with typed views and a bump allocator.
 * - `NetmapIf`: a netmap_if with its TX/RX rings and buffer pool, netmap's layout.
 * - `Ring`: head/cur/tail semantics, one-slot-empty rule, Atomics publication, wake-ups.
 * - `acquireLock` / `releaseLock` / `breakLock`: the spin lock over one word that records its holder.
 * - `copyFrame`, `Region.copy`: exact-length copies between two buffers of one region (copyFrame in
 *   JavaScript; Region.copy is WebAssembly's memory.copy when the region is a WebAssembly.Memory).
 * - `transferable` / `fromTransferable`: hand a region or ring to another thread without copying.
 */
export * from './layout.js';
export { RingError } from './errors.js';
export { Region, MAX_REGION_BYTES, type Shareable } from './region.js';
export { Ring, type RingInit, type WaitOptions } from './ring.js';
export { NetmapIf, netmapIfBytes, type NetmapIfOptions } from './netmap-if.js';
export { copyFrame, COPY_LOOP_MAX, type MemCopy, type WasmMemory, wasmCopier, jsCopier, wasmCopyWanted, sharedWasmMemory, isWasmMemory } from './copy.js';
export { acquireLock, releaseLock, breakLock } from './lock.js';
export { transferable, fromTransferable, type RingHandle } from './transfer.js';
