/**
 * Handing rings to other threads. A SharedArrayBuffer posted to a Worker is shared, not copied,
 * so a handle is just the buffer and the byte offsets; `fromTransferable` rebuilds the views on
 * the other side and validates the header so a wrong handle fails loudly.
 */
import { check } from './errors.js';
import { isWasmMemory } from './copy.js';
import { NetmapIf } from './netmap-if.js';
import { Region, type Shareable } from './region.js';
import { Ring } from './ring.js';

/** Plain data that survives postMessage / workerData (structured clone shares the buffer). */
export interface RingHandle {
  /** The region's buffer, or its WebAssembly.Memory (Region.shareable: the other side then copies as fast). */
  sab: Shareable;
  kind: 'region' | 'ring' | 'if';
  offset: number;
}

export function transferable(obj: Region): RingHandle & { kind: 'region' };
export function transferable(obj: Ring): RingHandle & { kind: 'ring' };
export function transferable(obj: NetmapIf): RingHandle & { kind: 'if' };
export function transferable(obj: Region | Ring | NetmapIf): RingHandle;
export function transferable(obj: Region | Ring | NetmapIf): RingHandle {
  if (obj instanceof Region) return { sab: obj.shareable, kind: 'region', offset: 0 };
  if (obj instanceof Ring) return { sab: obj.region.shareable, kind: 'ring', offset: obj.offset };
  return { sab: obj.region.shareable, kind: 'if', offset: obj.offset };
}

export function fromTransferable(h: RingHandle & { kind: 'region' }): Region;
export function fromTransferable(h: RingHandle & { kind: 'ring' }): Ring;
export function fromTransferable(h: RingHandle & { kind: 'if' }): NetmapIf;
export function fromTransferable(h: RingHandle): Region | Ring | NetmapIf;
export function fromTransferable(h: RingHandle): Region | Ring | NetmapIf {
  check(h !== null && typeof h === 'object' && (h.sab instanceof SharedArrayBuffer || isWasmMemory(h.sab)),
    'ERR_RING_ARG', 'not a ring handle: expected { sab: SharedArrayBuffer or WebAssembly.Memory, kind, offset }');
  const region = Region.attach(h.sab);
  switch (h.kind) {
    case 'region': return region;
    case 'ring': return Ring.attach(region, h.offset);
    case 'if': return NetmapIf.attach(region, h.offset);
    default: throw new Error(`unknown ring handle kind ${String((h as RingHandle).kind)}`);
  }
}
