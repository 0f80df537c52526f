/**
 * The forwarding loop: VALE's txsync, run in the sending thread.
 *
 * Why it looks like this. A sender's txsync does all the switching work for the frames it
 * sends, so the switch scales with its senders and needs no thread of its own. Per batch (up to
 * `batch` frames) it works in two passes over preallocated typed arrays, the way VALE
 * (nm_vale_preflush / nm_vale_flush) and Snabb's bridge push() do:
 *
 *  1. validate each TX slot (buffer index inside this port's own pool, 14 ≤ len ≤ buffer size),
 *     learn the source MAC, look up the destination, and append the frame to that destination's
 *     list (or to the flood list);
 *  2. for each destination: take its RX ring lock, validate the receiver's head, reserve slots
 *     (a lease), drop the lock; copy the frames without the lock; take the lock again, mark the
 *     lease done and publish every completed lease in reservation order, so concurrent senders
 *     copy in parallel but never publish out of order or over each other.
 *
 * A full destination ring drops the frames that do not fit (tail drop, counted); the sender never
 * waits for a receiver. Nothing here allocates, uses bigint, or creates closures: MACs are read as
 * a u32 and a u16 from the (64-aligned) buffer, table entries are four u32 words, per-frame state
 * lives in Int32Arrays sized once per thread.
 */
import { copyFrame, type Ring } from '#rings';
import type { Bridge } from './bridge.js';
import { publishLeases } from './bridge.js';
import {
  BH_MAC_FULL, C_DROP_BAD_BUF, C_DROP_BAD_LEN, C_DROP_BUSY, C_DROP_NO_DEST, C_DROP_RING_FULL, C_RX_BAD_HEAD,
  C_RX_BYTES, C_RX_DROP_RING_FULL, C_RX_FRAMES, C_TX_BAD_HEAD, C_TX_BATCHES, C_TX_BYTES, C_TX_COPIES,
  C_TX_DELIVERED, C_TX_FLOODED, C_TX_FRAMES, K_HWCUR, K_LEASE_HEAD, K_LEASE_NEXT, LOOKUP_DROP, LOOKUP_FLOOD,
  MAC_ENTRY, MAC_VALID, MAC_WAYS, PORT_ACTIVE, PORT_FREE, P_GEN, PT_SIZE, P_BUSY, P_COUNTERS, P_LAST_A, P_LAST_B, P_LAST_ENT, P_STATE,
  BH_AGEING, BH_PORT_HIGH, BH_VLAN_PORTS, BH_MIRRORS, C_DROP_VLAN, C_MIRROR_DROPS, C_MIRRORED, P_FLAGS, PF_MIRROR,
  P_LEASE_OFF, P_MIRROR_RX, P_MIRROR_TX, P_PVID, P_VLAN_MAP, P_VLAN_MODE, VLAN_ACCESS, VLAN_NONE, VLAN_TRUNK,
  LEASE_WORDS, L_START, L_END, L_DONE, L_OWNER,
} from './layout.js';

/**
 * A lookup decides where a frame goes: a port slot, LOOKUP_FLOOD, or LOOKUP_DROP. It receives the
 * forwarder (for the region views and the MAC table helpers), the frame's byte offset and length,
 * and the source port slot. It must not allocate. Register it under a name in every thread that
 * forwards on the bridge (registerLookup), and create the bridge with `lookup: name`.
 */
export type LookupFn = (fw: Forwarder, off: number, len: number, src: number) => number;

const lookups = new Map<string, LookupFn>();

export function registerLookup(name: string, fn: LookupFn): void {
  lookups.set(name, fn);
}

/**
 * VALE's learning bridge: learn unicast sources, forward known unicast, flood the rest. Within a
 * batch the last source learned and the last destination found are remembered (fw.seen*, fw.dst*,
 * reset by every batch), so a burst from one host to another costs two compares per frame.
 */
export function learningLookup(fw: Forwarder, off: number, _len: number, src: number): number {
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

registerLookup('learning', learningLookup);
registerLookup('hub', () => LOOKUP_FLOOD);

const NIL = -1;
const NORMAL_COPY = 0;
const ACCESS_COPY = 1;
const TRUNK_COPY = 2;
const MIRROR_COPY = 3;

export class Forwarder {
  readonly bridge: Bridge;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** Owner value written into lock words and leases: thread id + 1. */
  readonly me: number;
  /** Seconds since the bridge epoch, refreshed once per txsync (or set by tests). */
  now = 0;
  /** When set, `now` is not refreshed from Date.now() (tests inject a clock). */
  manualClock = false;
  /** Per-batch lookup caches of learningLookup (reset at every batch start). */
  seenA = -1;
  seenB = -1;
  seenV = -1;
  dstA = -1;
  dstB = -1;
  dstP = LOOKUP_FLOOD;
  dstV = -1;
  /** VLAN of the frame being looked up (0 when the bridge has no VLANs configured). */
  vlan = 0;
  /**
   * Polls of a held ring lock before giving up on it (its holder is stuck or dead). After every
   * 1024 polls the thread sleeps ~50 µs, so the default budget is ~0.1 s, not one time slice.
   */
  lockSpins = 1 << 20;
  private readonly lookup: LookupFn;
  private readonly maxPorts: number;
  private readonly hdrW: number;
  private readonly portsOff: number;
  private readonly macOff: number;
  private readonly macMask: number;
  private readonly batch: number;
  private readonly rxFirstBuf: number;
  // per-frame arrays (one batch)
  private readonly ftOff: Int32Array;
  private readonly ftLen: Int32Array;
  private readonly ftNext: Int32Array;
  private readonly ftVid: Int32Array;
  private readonly ftTag: Uint8Array;
  private readonly ftCopies: Int32Array;
  private readonly sel: Int32Array;
  private rStart = 0;
  private rLease = 0;
  private rLw = 0;
  // per-destination lists
  private readonly qHead: Int32Array;
  private readonly qTail: Int32Array;
  private readonly qCnt: Int32Array;
  private readonly dsts: Int32Array;
  private readonly rings: (Ring | undefined)[];
  private readonly ringGen: Uint32Array;
  private readonly txRings: (Ring | undefined)[];
  private readonly txGen: Uint32Array;
  private readonly txPool: Uint32Array;

  constructor(bridge: Bridge, threadId: number) {
    this.bridge = bridge;
    const r = bridge.region;
    this.u8 = r.u8;
    this.u16 = r.u16;
    this.u32 = r.u32;
    this.i32 = r.i32;
    this.f64 = r.f64;
    this.me = threadId + 1;
    const fn = lookups.get(bridge.lookupName);
    if (!fn) throw new Error(`lookup function "${bridge.lookupName}" is not registered in this thread: call registerLookup first`);
    this.lookup = fn;
    this.maxPorts = bridge.maxPorts;
    this.hdrW = bridge.hdr >>> 2;
    this.portsOff = bridge.portsOff;
    this.macOff = bridge.macOff;
    this.macMask = bridge.macSets - 1;
    this.batch = bridge.batch;
    this.rxFirstBuf = 2 + bridge.txSlots;
    this.ftOff = new Int32Array(this.batch);
    this.ftLen = new Int32Array(this.batch);
    this.ftNext = new Int32Array(this.batch);
    this.ftVid = new Int32Array(this.batch);
    this.ftTag = new Uint8Array(this.batch);
    this.ftCopies = new Int32Array(this.batch);
    this.sel = new Int32Array(this.batch);
    this.qHead = new Int32Array(this.maxPorts).fill(NIL);
    this.qTail = new Int32Array(this.maxPorts).fill(NIL);
    this.qCnt = new Int32Array(this.maxPorts);
    this.dsts = new Int32Array(this.maxPorts);
    this.rings = new Array(this.maxPorts).fill(undefined);
    this.ringGen = new Uint32Array(this.maxPorts);
    this.txRings = new Array(this.maxPorts).fill(undefined);
    this.txGen = new Uint32Array(this.maxPorts);
    this.txPool = new Uint32Array(this.maxPorts);
  }

  // ---- MAC table ----------------------------------------------------------------------------

  private setOf(a: number, b: number): number {
    let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return (h & this.macMask) >>> 0;
  }

  /** Learns that MAC (a, b) lives on port `port`. */
  learn(a: number, b: number, port: number): void {
    const u32 = this.u32;
    const pw = (this.portsOff + port * PT_SIZE) >>> 2;
    const bv = b | MAC_VALID | (this.vlan << 17);
    // Repeated sender: refresh the entry found last time (VALE's last_smac, plus ageing).
    if (u32[pw + (P_LAST_A >>> 2)] === a && u32[pw + (P_LAST_B >>> 2)] === bv) {
      const w = u32[pw + (P_LAST_ENT >>> 2)];
      if (u32[w] === a && u32[w + 1] === bv && u32[w + 2] === port) {
        u32[w + 3] = this.now;
        return;
      }
    }
    const base = (this.macOff + this.setOf(a, bv) * MAC_WAYS * MAC_ENTRY) >>> 2;
    const ageing = u32[this.hdrW + (BH_AGEING >>> 2)];
    let free = -1;
    for (let k = 0; k < MAC_WAYS; k++) {
      const w = base + k * 4;
      const v = u32[w + 1];
      if (v === bv && u32[w] === a) {
        u32[w + 2] = port; // a moved MAC follows its new port
        u32[w + 3] = this.now;
        u32[pw + (P_LAST_A >>> 2)] = a;
        u32[pw + (P_LAST_B >>> 2)] = bv;
        u32[pw + (P_LAST_ENT >>> 2)] = w;
        return;
      }
      if (free < 0 && ((v & MAC_VALID) === 0 || (ageing !== 0 && this.now - u32[w + 3] > ageing))) free = w;
    }
    if (free < 0) {
      Atomics.add(u32, this.hdrW + (BH_MAC_FULL >>> 2), 1);
      return;
    }
    u32[free + 1] = 0; // invalidate while rewriting, so no reader pairs the new MAC with an old port
    u32[free] = a;
    u32[free + 2] = port;
    u32[free + 3] = this.now;
    u32[free + 1] = bv;
    u32[pw + (P_LAST_A >>> 2)] = a;
    u32[pw + (P_LAST_B >>> 2)] = bv;
    u32[pw + (P_LAST_ENT >>> 2)] = free;
  }

  /** The port slot where MAC (a, b) was learned, or LOOKUP_FLOOD. */
  find(a: number, b: number): number {
    const u32 = this.u32;
    const bv = b | MAC_VALID | (this.vlan << 17);
    const base = (this.macOff + this.setOf(a, bv) * MAC_WAYS * MAC_ENTRY) >>> 2;
    for (let k = 0; k < MAC_WAYS; k++) {
      const w = base + k * 4;
      if (u32[w] === a && u32[w + 1] === bv) {
        const ageing = u32[this.hdrW + (BH_AGEING >>> 2)];
        if (ageing !== 0 && this.now - u32[w + 3] > ageing) return LOOKUP_FLOOD;
        const p = u32[w + 2];
        return p < this.maxPorts ? p : LOOKUP_FLOOD;
      }
    }
    return LOOKUP_FLOOD;
  }

  // ---- txsync -------------------------------------------------------------------------------

  /**
   * The RX ring of port p, or undefined if the slot was freed since the lookup chose it (the
   * caller counts the frames as having no destination).
   */
  private rxRing(p: number): Ring | undefined {
    if (Atomics.load(this.i32, (this.portsOff + p * PT_SIZE) >>> 2) === PORT_FREE) return undefined;
    const gen = this.u32[(this.portsOff + p * PT_SIZE + P_GEN) >>> 2];
    let ring = this.rings[p];
    if (ring === undefined || this.ringGen[p] !== gen) {
      try {
        ring = this.bridge.rxRingAt(p);
      } catch {
        return undefined; // ERR_BAD_PORT: its user keeps corrupting its rings; nothing goes there
      }
      this.rings[p] = ring;
      this.ringGen[p] = gen;
    }
    return ring;
  }

  /**
   * Forwards every frame the user of port `src` has put in its TX ring ([next(tail), head)) and
   * gives the slots back (tail = head − 1). Returns the number of frames consumed, or -1 if the
   * port is not active.
   */
  txsync(src: number): number {
    const i32 = this.i32;
    const pw = (this.portsOff + src * PT_SIZE) >>> 2;
    if (Atomics.load(i32, pw + (P_STATE >>> 2)) !== PORT_ACTIVE) return -1;
    const gen = this.u32[pw + (P_GEN >>> 2)];
    if (this.txRings[src] === undefined || this.txGen[src] !== gen) {
      let nif;
      try {
        nif = this.bridge.netmapIf(src);
      } catch {
        return -1; // ERR_BAD_PORT (its user keeps corrupting its rings), or the slot was just freed
      }
      this.txRings[src] = nif.txRings[0];
      this.txPool[src] = nif.poolBufs;
      this.txGen[src] = gen;
    }
    const tx = this.txRings[src]!;
    const head = Atomics.load(i32, tx.headW);
    const cw = (this.portsOff + src * PT_SIZE + P_COUNTERS) >>> 3;
    const f64 = this.f64;
    if (head >>> 0 > tx.mask) {
      f64[cw + C_TX_BAD_HEAD]++;
      return 0;
    }
    let cur = (Atomics.load(i32, tx.tailW) + 1) & tx.mask;
    let pending = (head - cur) & tx.mask;
    if (pending === 0) return 0;
    Atomics.store(i32, pw + (P_BUSY >>> 2), this.me);
    if (Atomics.load(i32, pw + (P_STATE >>> 2)) !== PORT_ACTIVE) {
      Atomics.store(i32, pw + (P_BUSY >>> 2), 0);
      return -1;
    }
    if (!this.manualClock) this.now = Math.floor(Date.now() / 1000) - this.bridge.epoch;
    const total = pending;
    const u32 = this.u32;
    const u16 = this.u16;
    const u8 = this.u8;
    const slotBase = tx.slotBase;
    const bufBase = tx.bufBase;
    const bufSize = tx.bufSize;
    const mask = tx.mask;
    const poolBufs = this.txPool[src];
    const lookup = this.lookup;
    const ftOff = this.ftOff;
    const ftLen = this.ftLen;
    const ftNext = this.ftNext;
    const ftVid = this.ftVid;
    const ftTag = this.ftTag;
    const qHead = this.qHead;
    const qTail = this.qTail;
    const qCnt = this.qCnt;
    const maxPorts = this.maxPorts;
    // The general path (VLANs, mirrors) is taken only when the bridge has any configured.
    const vlanOn = Atomics.load(u32, this.hdrW + (BH_VLAN_PORTS >>> 2)) !== 0;
    const slow = vlanOn || Atomics.load(u32, this.hdrW + (BH_MIRRORS >>> 2)) !== 0;
    const smode = u32[pw + (P_VLAN_MODE >>> 2)];
    const spvid = u32[pw + (P_PVID >>> 2)];
    const smapW = pw + (P_VLAN_MAP >>> 2);
    let txBytes = 0;
    let badBuf = 0;
    let badLen = 0;
    let badVlan = 0;
    let noDest = 0;
    while (pending > 0) {
      const n = pending < this.batch ? pending : this.batch;
      let k = 0;
      this.seenA = this.dstA = -1;
      this.vlan = 0;
      let nDsts = 0;
      let bHead = NIL;
      let bTail = NIL;
      let bCnt = 0;
      const dsts = this.dsts;
      // Pass 1: validate, learn, look up, group by destination.
      for (let i = 0; i < n; i++) {
        const s = slotBase + ((cur + i) & mask) * 16;
        const bi = u32[s >>> 2];
        const len = u16[(s + 4) >>> 1];
        txBytes += len;
        if (bi < 2 || bi >= poolBufs) { badBuf++; continue; }
        if (len < 14 || len > bufSize) { badLen++; continue; }
        const off = bufBase + bi * bufSize;
        if (vlanOn) {
          // Ingress: which VLAN the frame belongs to, and whether its buffer carries a tag.
          const tagged = u16[(off + 12) >>> 1] === 0x0081 && len >= 18;
          const tvid = tagged ? ((u8[off + 14] << 8) | u8[off + 15]) & 0xfff : 0;
          let vid = 0;
          if (smode === VLAN_ACCESS) {
            if (tagged) { badVlan++; continue; }
            vid = spvid;
          } else if (smode === VLAN_TRUNK) {
            if (tagged) {
              if (tvid === 0 || (u32[smapW + (tvid >>> 5)] & (1 << (tvid & 31))) === 0) { badVlan++; continue; }
              vid = tvid;
            } else {
              if (spvid === 0) { badVlan++; continue; }
              vid = spvid;
            }
          }
          ftVid[k] = vid;
          ftTag[k] = tagged ? 1 : 0;
          this.vlan = vid;
        }
        const d = lookup(this, off, len, src);
        ftOff[k] = off;
        ftLen[k] = len;
        ftNext[k] = NIL;
        if (d === LOOKUP_FLOOD) {
          if (bTail === NIL) bHead = k; else ftNext[bTail] = k;
          bTail = k;
          bCnt++;
        } else if (d >= maxPorts || d === src) {
          noDest++;
          if (!slow) continue; // the mirror still sees it
        } else {
          if (qTail[d] === NIL) {
            qHead[d] = k;
            dsts[nDsts++] = d;
          } else {
            ftNext[qTail[d]] = k;
          }
          qTail[d] = k;
          qCnt[d]++;
        }
        k++;
      }
      // Pass 2: one reservation, copy and publication per destination ring.
      let floodCopies = 0;
      if (bCnt > 0) {
        const high = Atomics.load(i32, this.hdrW + (BH_PORT_HIGH >>> 2));
        for (let p = 0; p < high; p++) {
          if (p === src || qTail[p] !== NIL) continue;
          const e = (this.portsOff + p * PT_SIZE) >>> 2;
          if (Atomics.load(i32, e) !== PORT_ACTIVE || (u32[e + (P_FLAGS >>> 2)] & PF_MIRROR) !== 0) continue;
          dsts[nDsts++] = p;
        }
      }
      if (slow) {
        this.ftCopies.fill(0, 0, k);
        for (let x = 0; x < nDsts; x++) {
          const p = dsts[x];
          this.deliverGeneral(src, p, qHead[p], bHead, cw, vlanOn, false);
          qHead[p] = NIL;
          qTail[p] = NIL;
          qCnt[p] = 0;
        }
        // A flooded frame that no port of its VLAN took is a dropped copy with no destination.
        for (let f = bHead; f !== NIL; f = ftNext[f]) if (this.ftCopies[f] === 0) noDest++;
        const m = u32[pw + (P_MIRROR_TX >>> 2)];
        if (m !== 0) {
          const sel = this.sel;
          for (let f = 0; f < k; f++) sel[f] = f;
          this.deliverSel(src, m - 1, k, cw, MIRROR_COPY);
        }
      } else {
        for (let x = 0; x < nDsts; x++) {
          const p = dsts[x];
          floodCopies += bCnt;
          this.deliver(p, qHead[p], qCnt[p], bHead, bCnt, cw);
          qHead[p] = NIL;
          qTail[p] = NIL;
          qCnt[p] = 0;
        }
        // A flooded frame that reached no port at all (nobody else on the bridge) is one dropped copy.
        if (bCnt > 0 && floodCopies === 0) noDest += bCnt;
      }
      if (bCnt > 0) f64[cw + C_TX_FLOODED] += bCnt;
      cur = (cur + n) & mask;
      pending -= n;
      f64[cw + C_TX_BATCHES]++;
    }
    f64[cw + C_TX_FRAMES] += total;
    f64[cw + C_TX_BYTES] += txBytes;
    f64[cw + C_DROP_BAD_BUF] += badBuf;
    f64[cw + C_DROP_BAD_LEN] += badLen;
    f64[cw + C_DROP_VLAN] += badVlan;
    f64[cw + C_DROP_NO_DEST] += noDest;
    f64[cw + C_TX_COPIES] += badBuf + badLen + badVlan + noDest;
    // VALE txsync: everything up to head is consumed; the whole ring is free again.
    tx.publishTail((head - 1) & mask);
    Atomics.store(i32, pw + (P_BUSY >>> 2), 0);
    return total;
  }

  /** Takes ring lock word `w`, giving up after lockSpins tries. */
  private tryLock(w: number): boolean {
    const i32 = this.i32;
    const me = this.me;
    if (Atomics.compareExchange(i32, w, 0, me) === 0) return true;
    for (let k = this.lockSpins; k > 0; k--) {
      const v = Atomics.load(i32, w);
      if (v === 0) {
        if (Atomics.compareExchange(i32, w, 0, me) === 0) return true;
      } else if ((k & 1023) === 0) {
        // The holder may be a live thread that the OS descheduled (more busy threads than
        // cores). Spinning would only burn the CPU it needs to finish; give it up for a moment
        // (nobody notifies: this is a sleep that ends early only if the lock is already free).
        Atomics.wait(i32, w, v, 0.05);
      }
    }
    return false;
  }

  /**
   * Reserves up to `needed` slots on port p's RX ring (a lease), under its lock. Returns the
   * number reserved; the lease is in rStart/rLease/rLw. Counts what does not fit or cannot go.
   * `mode` says whose counters the failures go to (normal copies or mirror copies).
   */
  private reserve(p: number, rx: Ring, needed: number, cw: number, mode: number): number {
    const f64 = this.f64;
    const i32 = this.i32;
    const u32 = this.u32;
    const pe = this.portsOff + p * PT_SIZE;
    const dcw = (pe + P_COUNTERS) >>> 3;
    const fail = mode === MIRROR_COPY ? C_MIRROR_DROPS : -1;
    if (!this.tryLock(rx.lockW)) {
      f64[cw + (fail < 0 ? C_DROP_BUSY : fail)] += needed;
      return 0;
    }
    if (Atomics.load(i32, pe >>> 2) !== PORT_ACTIVE) {
      Atomics.store(i32, rx.lockW, 0);
      f64[cw + (fail < 0 ? C_DROP_NO_DEST : fail)] += needed;
      return 0;
    }
    const n = rx.numSlots;
    const mask = rx.mask;
    const pv = rx.privW;
    // Validate the receiver's head: it may only move forward within [hwcur, tail].
    // tail, the private words and the lease table are in memory the port's user can write (its
    // ring header, the area after its buffers): every index read from there is masked, so that
    // scribbling on them confuses only that port's own ring, never makes us write outside it.
    const tail = i32[rx.tailW] & mask;
    let hwcur = i32[pv + K_HWCUR] & mask;
    const h = Atomics.load(i32, rx.headW);
    if (h >>> 0 <= mask && ((h - hwcur) & mask) <= ((tail - hwcur) & mask)) {
      hwcur = h;
      i32[pv + K_HWCUR] = h;
    } else if (h !== hwcur) {
      f64[dcw + C_RX_BAD_HEAD]++;
    }
    const lw = u32[(pe + P_LEASE_OFF) >>> 2] >>> 2;
    const next = i32[pv + K_LEASE_NEXT] & mask;
    const hwlease = (i32[pv + K_LEASE_HEAD] & mask) === next ? tail : u32[lw + LEASE_WORDS * ((next - 1) & mask) + L_END] & mask;
    const space = mask - ((hwlease - hwcur) & mask);
    const howmany = needed < space ? needed : space;
    if (howmany < needed) {
      f64[dcw + C_RX_DROP_RING_FULL] += needed - howmany;
      f64[cw + (fail < 0 ? C_DROP_RING_FULL : fail)] += needed - howmany;
    }
    if (howmany === 0) {
      Atomics.store(i32, rx.lockW, 0);
      return 0;
    }
    u32[lw + LEASE_WORDS * next + L_START] = hwlease;
    u32[lw + LEASE_WORDS * next + L_END] = (hwlease + howmany) & mask;
    u32[lw + LEASE_WORDS * next + L_DONE] = 0;
    u32[lw + LEASE_WORDS * next + L_OWNER] = this.me;
    Atomics.store(i32, pv + K_LEASE_NEXT, (next + 1) & mask); // the reservation exists from here on
    Atomics.store(i32, rx.lockW, 0);
    this.rStart = hwlease;
    this.rLease = next;
    this.rLw = lw;
    return howmany;
  }

  /** Marks the lease done, counts the frames received and publishes what is ready, in order. */
  private complete(p: number, rx: Ring, howmany: number, bytes: number): void {
    const lw = this.rLw;
    const n = rx.numSlots;
    const lease = this.rLease;
    if (!this.tryLock(rx.lockW)) {
      Atomics.store(this.u32, lw + LEASE_WORDS * lease + L_DONE, 1); // whoever takes the lock next publishes it
      return;
    }
    Atomics.store(this.u32, lw + LEASE_WORDS * lease + L_DONE, 1);
    const dcw = (this.portsOff + p * PT_SIZE + P_COUNTERS) >>> 3;
    this.f64[dcw + C_RX_FRAMES] += howmany;
    this.f64[dcw + C_RX_BYTES] += bytes;
    publishLeases(this.bridge.region, rx, lw, n);
    Atomics.store(this.i32, rx.lockW, 0);
  }

  /**
   * Fast path (no VLANs, no mirrors): delivers to port p the unicast list (uh, uc) merged in batch
   * order with the flood list (bh, bc): reserve, copy without the lock, complete.
   */
  private deliver(p: number, uh: number, uc: number, bh: number, bc: number, cw: number): void {
    const needed = uc + bc;
    const f64 = this.f64;
    f64[cw + C_TX_COPIES] += needed;
    const rx = this.rxRing(p);
    if (rx === undefined) {
      f64[cw + C_DROP_NO_DEST] += needed;
      return;
    }
    const howmany = this.reserve(p, rx, needed, cw, NORMAL_COPY);
    if (howmany === 0) return;
    const u32 = this.u32;
    const u16 = this.u16;
    const u8 = this.u8;
    const ftOff = this.ftOff;
    const ftLen = this.ftLen;
    const ftNext = this.ftNext;
    const slotBase = rx.slotBase;
    const bufBase = rx.bufBase;
    const bufSize = rx.bufSize;
    const mask = rx.mask;
    const firstBuf = this.rxFirstBuf; // RX slot j always uses buffer firstBuf + j: a receiver cannot redirect our writes
    let j = this.rStart;
    let bytes = 0;
    if (bc === 0 || uc === 0) {
      // One list only (the common case): walk it.
      let f = bc === 0 ? uh : bh;
      for (let c = 0; c < howmany; c++) {
        const len = ftLen[f];
        const s = slotBase + j * 16;
        const bi = firstBuf + j;
        u32[s >>> 2] = bi;
        u16[(s + 4) >>> 1] = len;
        u16[(s + 6) >>> 1] = 0;
        copyFrame(u8, f64, bufBase + bi * bufSize, ftOff[f], len);
        bytes += len;
        j = (j + 1) & mask;
        f = ftNext[f];
      }
    } else {
      let a = uh;
      let b = bh;
      for (let c = 0; c < howmany; c++) {
        let f: number;
        if (b === NIL || (a !== NIL && a < b)) { f = a; a = ftNext[a]; } else { f = b; b = ftNext[b]; }
        const len = ftLen[f];
        const s = slotBase + j * 16;
        const bi = firstBuf + j;
        u32[s >>> 2] = bi;
        u16[(s + 4) >>> 1] = len;
        u16[(s + 6) >>> 1] = 0;
        copyFrame(u8, f64, bufBase + bi * bufSize, ftOff[f], len);
        bytes += len;
        j = (j + 1) & mask;
      }
    }
    f64[cw + C_TX_DELIVERED] += howmany;
    this.complete(p, rx, howmany, bytes);
  }

  /**
   * General path: selects, in batch order, the frames of the unicast list uh and the flood list
   * bh that port p may get (its VLAN membership), delivers them with their tags adjusted for p,
   * then gives p's rx mirror a copy of what p got.
   */
  private deliverGeneral(src: number, p: number, uh: number, bh: number, cw: number, vlanOn: boolean, _mirror: boolean): void {
    const u32 = this.u32;
    const ftNext = this.ftNext;
    const ftVid = this.ftVid;
    const sel = this.sel;
    const pw = (this.portsOff + p * PT_SIZE) >>> 2;
    const mode = u32[pw + (P_VLAN_MODE >>> 2)];
    const pvid = u32[pw + (P_PVID >>> 2)];
    const mapW = pw + (P_VLAN_MAP >>> 2);
    let cnt = 0;
    let a = uh;
    let b = bh;
    let filtered = 0;
    while (a !== NIL || b !== NIL) {
      let f: number;
      let unicast: boolean;
      if (b === NIL || (a !== NIL && a < b)) { f = a; a = ftNext[a]; unicast = true; } else { f = b; b = ftNext[b]; unicast = false; }
      if (vlanOn) {
        const vid = ftVid[f];
        const member = mode === VLAN_NONE ? vid === 0 : mode === VLAN_ACCESS ? vid === pvid
          : vid !== 0 && (u32[mapW + (vid >>> 5)] & (1 << (vid & 31))) !== 0;
        if (!member) {
          // A flood simply skips ports outside the VLAN; a unicast frame learned here earlier
          // but no longer allowed is a dropped copy.
          if (unicast) filtered++;
          continue;
        }
      }
      this.ftCopies[f]++;
      sel[cnt++] = f;
    }
    if (filtered > 0) {
      this.f64[cw + C_TX_COPIES] += filtered;
      this.f64[cw + C_DROP_VLAN] += filtered;
    }
    if (cnt === 0) return;
    this.f64[cw + C_TX_COPIES] += cnt;
    const got = this.deliverSel(src, p, cnt, cw, vlanOn ? (mode === VLAN_NONE ? NORMAL_COPY : mode === VLAN_ACCESS ? ACCESS_COPY : TRUNK_COPY) : NORMAL_COPY);
    const m = u32[pw + (P_MIRROR_RX >>> 2)];
    if (m !== 0 && got > 0) this.deliverSel(src, m - 1, got, cw, MIRROR_COPY);
  }

  /**
   * Delivers frames sel[0..cnt) to port p. `mode`: NORMAL_COPY as they are, ACCESS_COPY without
   * a tag, TRUNK_COPY tagged unless in p's native VLAN, MIRROR_COPY as they are into a mirror
   * (counted apart from the sender's accounting). Returns frames delivered.
   */
  private deliverSel(_src: number, p: number, cnt: number, cw: number, mode: number): number {
    const f64 = this.f64;
    const rx = this.rxRing(p);
    if (rx === undefined) {
      f64[cw + (mode === MIRROR_COPY ? C_MIRROR_DROPS : C_DROP_NO_DEST)] += cnt;
      return 0;
    }
    const howmany = this.reserve(p, rx, cnt, cw, mode);
    if (howmany === 0) return 0;
    const u32 = this.u32;
    const u16 = this.u16;
    const u8 = this.u8;
    const ftOff = this.ftOff;
    const ftLen = this.ftLen;
    const ftVid = this.ftVid;
    const ftTag = this.ftTag;
    const sel = this.sel;
    const slotBase = rx.slotBase;
    const bufBase = rx.bufBase;
    const bufSize = rx.bufSize;
    const mask = rx.mask;
    const firstBuf = this.rxFirstBuf;
    const pvid = u32[((this.portsOff + p * PT_SIZE) >>> 2) + (P_PVID >>> 2)];
    let j = this.rStart;
    let bytes = 0;
    for (let c = 0; c < howmany; c++) {
      const f = sel[c];
      const src = ftOff[f];
      let len = ftLen[f];
      const s = slotBase + j * 16;
      const bi = firstBuf + j;
      const dst = bufBase + bi * bufSize;
      const tagged = ftTag[f] === 1;
      const vid = ftVid[f];
      if ((mode === ACCESS_COPY || (mode === TRUNK_COPY && vid === pvid)) && tagged) {
        // strip the 802.1Q tag
        u8.copyWithin(dst, src, src + 12);
        u8.copyWithin(dst + 12, src + 16, src + len);
        len -= 4;
      } else if (mode === TRUNK_COPY && vid !== pvid && !tagged) {
        if (len + 4 > bufSize) {
          len = 0; // does not fit with its tag: an empty slot, counted below
        } else {
          u8.copyWithin(dst, src, src + 12);
          u8[dst + 12] = 0x81;
          u8[dst + 13] = 0x00;
          u8[dst + 14] = vid >>> 8;
          u8[dst + 15] = vid & 0xff;
          u8.copyWithin(dst + 16, src + 12, src + len);
          len += 4;
        }
      } else {
        copyFrame(u8, f64, dst, src, len);
      }
      u32[s >>> 2] = bi;
      u16[(s + 4) >>> 1] = len;
      u16[(s + 6) >>> 1] = 0;
      bytes += len;
      j = (j + 1) & mask;
    }
    f64[cw + (mode === MIRROR_COPY ? C_MIRRORED : C_TX_DELIVERED)] += howmany;
    this.complete(p, rx, howmany, bytes);
    return howmany;
  }
}
