/**
 * Lookup functions: what decides where a frame goes. A lookup gets the forwarder (for the region
 * views, the frame's VLAN and the MAC table helpers learn/find), the frame's byte offset and
 * length, and the source port slot; it answers a port slot, LOOKUP_FLOOD or LOOKUP_DROP. It must
 * not allocate. Register it under a name in every thread that forwards on the bridge
 * (registerLookup), and create the bridge with `lookup: name`. Built in: "learning" (VALE's
 * learning bridge) and "hub" (flood everything).
 */
import { LOOKUP_BAD, LOOKUP_DROP, LOOKUP_FLOOD } from './layout.js';

/**
 * What a lookup sees of the forwarder calling it (a Forwarder is one): the region's views, the
 * current frame's VLAN, the MAC table helpers and the per-batch caches of learningLookup.
 */
export interface LookupContext {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** Port slots of the bridge: a lookup answers 0 .. maxPorts − 1, LOOKUP_FLOOD or LOOKUP_DROP. */
  readonly maxPorts: number;
  /** VLAN of the frame being looked up (0 on a VLAN-unaware bridge). */
  vlan: number;
  seenA: number;
  seenB: number;
  seenV: number;
  dstA: number;
  dstB: number;
  dstP: number;
  dstV: number;
  /** Learns that MAC (a, b) of the current VLAN lives on port slot `port`. */
  learn(a: number, b: number, port: number): void;
  /** The port slot where MAC (a, b) of the current VLAN was learned, or LOOKUP_FLOOD. */
  find(a: number, b: number): number;
}

export type LookupFn = (fw: LookupContext, off: number, len: number, src: number) => number;

const lookups = new Map<string, LookupFn>();

/** The lookup registered under `name` in this thread, or undefined. */
export function lookupNamed(name: string): LookupFn | undefined {
  return lookups.get(name);
}

/**
 * Registers a lookup function. A custom lookup is contained: if it throws, or answers anything
 * but a port slot (an integer below the bridge's maxPorts), LOOKUP_FLOOD or LOOKUP_DROP, the
 * frame is dropped and counted as `dropLookup`; the sender's txsync goes on.
 */
export function registerLookup(name: string, fn: LookupFn): void {
  if (typeof fn !== 'function') throw new TypeError(`registerLookup(${JSON.stringify(name)}): fn must be a function`);
  lookups.set(name, fn === learningLookup ? fn : (fw, off, len, src) => {
    let d: number;
    try {
      d = fn(fw, off, len, src);
    } catch {
      return LOOKUP_BAD;
    }
    // Integers only: -1, 1.5, NaN, strings… are not a destination.
    if (d === LOOKUP_FLOOD || d === LOOKUP_DROP) return d;
    return typeof d === 'number' && (d >>> 0) === d && d < fw.maxPorts ? d : LOOKUP_BAD;
  });
}

/**
 * VALE's learning bridge: learn unicast sources, forward known unicast, flood the rest. Within a
 * batch the last source learned and the last destination found are remembered (fw.seen*, fw.dst*,
 * reset by every batch), so a burst from one host to another costs two compares per frame.
 */
export function learningLookup(fw: LookupContext, off: number, _len: number, src: number): number {
  const u16 = fw.u16;
  const u32 = fw.u32;
  // Source MAC bytes 6..11 → a (bytes 6-9) and b (bytes 10-11), the same form as a destination.
  const s0 = u16[(off + 6) >>> 1];
  const s1 = u32[(off + 8) >>> 2];
  if ((s0 & 1) === 0) {
    const a = (s0 | (s1 << 16)) >>> 0;
    const b = s1 >>> 16;
    if (a !== fw.seenA || b !== fw.seenB || fw.vlan !== fw.seenV) {
      fw.learn(a, b, src);
      fw.seenA = a;
      fw.seenB = b;
      fw.seenV = fw.vlan;
    }
  }
  const d0 = u32[off >>> 2];
  if ((d0 & 1) !== 0) return LOOKUP_FLOOD;
  const d1 = u16[(off + 4) >>> 1];
  if (d0 === fw.dstA && d1 === fw.dstB && fw.vlan === fw.dstV) return fw.dstP;
  const p = fw.find(d0, d1);
  fw.dstA = d0;
  fw.dstB = d1;
  fw.dstV = fw.vlan;
  fw.dstP = p;
  return p;
}

lookups.set('learning', learningLookup);
registerLookup('hub', () => LOOKUP_FLOOD);
