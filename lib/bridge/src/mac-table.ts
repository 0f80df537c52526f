/**
 * The MAC table: where each learned address lives, per VLAN. 4-way set associative, in the
 * bridge region so every forwarding thread shares it without messages. Entry (MAC_ENTRY = 16
 * bytes): w0 = MAC bytes 0-3 (u32 LE), w1 = bytes 4-5 | MAC_VALID | VLAN id << 17, w2 = port
 * slot, w3 = last-seen time (seconds since the bridge epoch). A MAC is the pair (a, b): a =
 * bytes 0-3, b = bytes 4-5, the form both the source and the destination are read in.
 *
 * Writers race benignly (VALE does the same): an entry is invalidated while it is rewritten, so
 * no reader pairs a new MAC with an old port; a lost update only costs a flood.
 */
import type { Region } from '#rings';
import {
  BH_AGEING, BH_MAC_FULL, LOOKUP_FLOOD, MAC_ENTRY, MAC_VALID, MAC_WAYS, PT_SIZE, P_LAST_A, P_LAST_B, P_LAST_ENT,
} from './layout.js';

/** Entry word offsets (u32). */
const E_A = 0;
const E_B = 1;
const E_PORT = 2;
const E_SEEN = 3;

export class MacTable {
  private readonly u32: Uint32Array;
  private readonly hdrW: number;
  private readonly portsOff: number;
  private readonly macOff: number;
  private readonly mask: number;
  readonly entries: number;
  private readonly maxPorts: number;

  constructor(region: Region, hdr: number, portsOff: number, macOff: number, sets: number, maxPorts: number) {
    this.u32 = region.u32;
    this.hdrW = hdr >>> 2;
    this.portsOff = portsOff;
    this.macOff = macOff;
    this.mask = sets - 1;
    this.entries = sets * MAC_WAYS;
    this.maxPorts = maxPorts;
  }

  /** u32 index of the first entry of (a, bv)'s set. */
  private setOf(a: number, bv: number): number {
    let h = Math.imul(a ^ Math.imul(bv, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return (this.macOff + ((h & this.mask) >>> 0) * MAC_WAYS * MAC_ENTRY) >>> 2;
  }

  /** Learns that MAC (a, b) in VLAN `vlan` lives on port slot `port`, seen at `now`. */
  learn(a: number, b: number, vlan: number, port: number, now: number): void {
    const u32 = this.u32;
    const pw = (this.portsOff + port * PT_SIZE) >>> 2;
    const bv = b | MAC_VALID | (vlan << 17);
    // Repeated sender: refresh the entry found last time (VALE's last_smac, plus ageing).
    if (u32[pw + (P_LAST_A >>> 2)] === a && u32[pw + (P_LAST_B >>> 2)] === bv) {
      const w = u32[pw + (P_LAST_ENT >>> 2)];
      if (u32[w + E_A] === a && u32[w + E_B] === bv && u32[w + E_PORT] === port) {
        if (u32[w + E_SEEN] !== now) u32[w + E_SEEN] = now;
        return;
      }
    }
    const base = this.setOf(a, bv);
    const ageing = u32[this.hdrW + (BH_AGEING >>> 2)];
    let free = -1;
    for (let k = 0; k < MAC_WAYS; k++) {
      const w = base + k * (MAC_ENTRY >>> 2);
      const v = u32[w + E_B];
      if (v === bv && u32[w + E_A] === a) {
        u32[w + E_PORT] = port; // a moved MAC follows its new port
        u32[w + E_SEEN] = now;
        this.remember(pw, a, bv, w);
        return;
      }
      if (free < 0 && ((v & MAC_VALID) === 0 || (ageing !== 0 && now - u32[w + E_SEEN] > ageing))) free = w;
    }
    if (free < 0) {
      Atomics.add(u32, this.hdrW + (BH_MAC_FULL >>> 2), 1);
      return;
    }
    u32[free + E_B] = 0; // invalidate while rewriting, so no reader pairs the new MAC with an old port
    u32[free + E_A] = a;
    u32[free + E_PORT] = port;
    u32[free + E_SEEN] = now;
    u32[free + E_B] = bv;
    this.remember(pw, a, bv, free);
  }

  /** The port's learning cache: the entry its last source MAC is in. */
  private remember(pw: number, a: number, bv: number, w: number): void {
    const u32 = this.u32;
    u32[pw + (P_LAST_A >>> 2)] = a;
    u32[pw + (P_LAST_B >>> 2)] = bv;
    u32[pw + (P_LAST_ENT >>> 2)] = w;
  }

  /** The port slot where MAC (a, b) of VLAN `vlan` was learned and has not aged, or LOOKUP_FLOOD. */
  find(a: number, b: number, vlan: number, now: number): number {
    const u32 = this.u32;
    const bv = b | MAC_VALID | (vlan << 17);
    const base = this.setOf(a, bv);
    for (let k = 0; k < MAC_WAYS; k++) {
      const w = base + k * (MAC_ENTRY >>> 2);
      if (u32[w + E_A] === a && u32[w + E_B] === bv) {
        const ageing = u32[this.hdrW + (BH_AGEING >>> 2)];
        if (ageing !== 0 && now - u32[w + E_SEEN] > ageing) return LOOKUP_FLOOD;
        const p = u32[w + E_PORT];
        return p < this.maxPorts ? p : LOOKUP_FLOOD;
      }
    }
    return LOOKUP_FLOOD;
  }

  /** Removes every entry that points at port slot `port`. */
  forget(port: number): void {
    const u32 = this.u32;
    for (let k = 0; k < this.entries; k++) {
      const w = (this.macOff + k * MAC_ENTRY) >>> 2;
      if ((u32[w + E_B] & MAC_VALID) !== 0 && u32[w + E_PORT] === port) u32[w + E_B] = 0;
    }
  }

  /** Forgets every address. */
  flush(): void {
    this.u32.fill(0, this.macOff >>> 2, (this.macOff + this.entries * MAC_ENTRY) >>> 2);
  }

  /** Calls `fn` for every valid entry: MAC (a, b), VLAN, port slot, last-seen time. */
  forEach(fn: (a: number, b: number, vlan: number, port: number, seen: number) => void): void {
    const u32 = this.u32;
    for (let k = 0; k < this.entries; k++) {
      const w = (this.macOff + k * MAC_ENTRY) >>> 2;
      const bv = u32[w + E_B];
      if ((bv & MAC_VALID) === 0) continue;
      fn(u32[w + E_A], bv & 0xffff, (bv >>> 17) & 0xfff, u32[w + E_PORT], u32[w + E_SEEN]);
    }
  }
}
