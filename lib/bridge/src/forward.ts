/**
 * The forwarding loop: VALE's txsync, run in the sending thread.
 *
 * Why it looks like this. A sender's txsync does all the switching work for the frames it
 * sends, so the switch scales with its senders and needs no thread of its own. Per batch (up to
 * `batch` frames) it works in two passes over preallocated typed arrays, the way VALE
 * (nm_vale_preflush / nm_vale_flush) and Snabb's bridge push() do:
 *
 *  1. validate each TX slot (buffer index inside this port's own pool, 14 ≤ len ≤ buffer size),
 *     classify its VLAN (vlan.ts), learn the source MAC and look up the destination
 *     (lookups.ts, mac-table.ts), and append the frame to that destination's list (or to the
 *     flood list);
 *  2. for each destination: select its frames in batch order, lease slots on its RX ring
 *     (rx-lease.ts), copy the frames without the lock, and publish.
 *
 * A full destination ring drops the frames that do not fit (tail drop, counted); the sender never
 * waits for a receiver. A destination whose ring lock cannot be had within lockWaitMs is skipped
 * for the rest of the txsync (dropBusy). Nothing here allocates, uses bigint, or creates
 * closures: MACs are read as a u32 and a u16 from the (64-aligned) buffer, per-frame state lives
 * in Int32Arrays sized once per thread.
 *
 * A frame's path: forward.ts → rx-lease.ts → the ring (#rings); it never comes back here.
 */
import { NS_BUF_IDX, NS_FLAGS, NS_LEN, SLOT_SIZE, type MemCopy, type Ring } from '#rings';
import type { Bridge } from './bridge.js';
import {
  BH_CLOCK, BH_MIRRORS, BH_PORT_HIGH, CLOCK_TICK_SYNCS, BH_VLAN_PORTS, C_DROP_BAD_BUF, C_DROP_BAD_LEN, C_DROP_BUSY, C_DROP_LOOKUP, C_DROP_NO_DEST,
  C_DROP_RING_FULL, C_DROP_VLAN, C_MIRROR_DROPS, C_MIRRORED, C_TX_REPAIRS, C_TX_BAD_HEAD, C_TX_BATCHES, C_TX_BYTES,
  C_TX_COPIES, C_TX_DELIVERED, C_TX_FLOODED, C_TX_FRAMES, LOOKUP_BAD, LOOKUP_FLOOD, PF_MIRROR, PORT_ACTIVE, PORT_FREE,
  PT_SIZE, P_BUSY, P_COUNTERS, P_FLAGS, P_GEN, P_MIRROR_RX, P_MIRROR_TX, P_PVID, P_STATE, P_TX_HWCUR, P_VLAN_MAP,
  P_VLAN_MODE, VLAN_NONE,
} from './layout.js';
import { lookupNamed, type LookupContext, type LookupFn } from './lookups.js';
import type { MacTable } from './mac-table.js';
import type { RxLeases } from './rx-lease.js';
import { VLAN_DROP, VLAN_TAGGED, vlanCopy, vlanIngress, vlanMember } from './vlan.js';

/** txsync's answer when another thread is in txsync on the same port. */
export const TXSYNC_BUSY = -2;

const NIL = -1;
/** Pass 1's `single` once the batch has more than one destination (or floods). */
const MULTI = -2;
/** How deliver() copies: as the frame is, through the port's VLAN egress rules, or into a mirror. */
const COPY_AS_IS = 0;
const COPY_VLAN = 1;
const COPY_MIRROR = 2;
/** Deliveries of at most this many frames to a ring with no lease in flight copy under its lock (deliver). */
const DIRECT_MAX = 16;

export class Forwarder implements LookupContext {
  readonly bridge: Bridge;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** The region's copy (memory.copy where the region is a WebAssembly.Memory; see Region). */
  private readonly copy: MemCopy;
  /** Holder value written into lock words and leases: thread id + 1. */
  readonly me: number;
  /**
   * Seconds since the bridge epoch: the bridge's clock word, read once per txsync (or set by
   * tests); every CLOCK_TICK_SYNCS txsyncs this thread moves the word itself (layout.ts).
   */
  now = 0;
  private clockTick = CLOCK_TICK_SYNCS - 1; // the first txsync reads the system clock
  private readonly clockW: number;
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
   * How long a destination's RX ring lock may stay taken by another thread before this sender
   * gives up on it for the rest of its txsync (its holder is stuck or dead; see acquireLock).
   */
  lockWaitMs = 500;
  /** Port slots of the bridge (lookups may answer 0 .. maxPorts-1). */
  readonly maxPorts: number;
  private readonly lookup: LookupFn;
  private readonly mac: MacTable;
  private readonly hdrW: number;
  private readonly portsOff: number;
  private readonly batch: number;
  /** RX slot j always uses buffer rxFirstBuf + j: a receiver cannot redirect our writes. */
  private readonly rxFirstBuf: number;
  // per-frame arrays (one batch)
  private readonly ftOff: Int32Array;
  private readonly ftLen: Int32Array;
  private readonly ftNext: Int32Array;
  private readonly ftVid: Int32Array;
  private readonly ftTag: Uint8Array;
  private readonly ftCopies: Int32Array;
  /** The frames of one delivery, in batch order. */
  private readonly sel: Int32Array;
  /** 0, 1, 2, …: the frames of a batch that goes to one port (or a mirror's copy of all). */
  private readonly ident: Int32Array;
  // per-destination lists
  private readonly qHead: Int32Array;
  private readonly qTail: Int32Array;
  private readonly qCnt: Int32Array;
  private readonly dsts: Int32Array;
  /** skip[p] === syncSeq: p's lock could not be had in this txsync; nothing more goes there. */
  private readonly skip: Int32Array;
  private syncSeq = 1;
  private readonly leases: (RxLeases | undefined)[];
  private readonly leaseGen: Uint32Array;
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
    this.copy = r.copy;
    this.me = threadId + 1;
    const fn = lookupNamed(bridge.lookupName);
    if (!fn) throw new Error(`lookup function "${bridge.lookupName}" is not registered in this thread: call registerLookup first`);
    this.lookup = fn;
    this.mac = bridge.mac;
    this.maxPorts = bridge.maxPorts;
    this.hdrW = bridge.hdr >>> 2;
    this.clockW = this.hdrW + (BH_CLOCK >>> 2);
    this.portsOff = bridge.portsOff;
    this.batch = bridge.batch;
    this.rxFirstBuf = 2 + bridge.txSlots;
    this.ftOff = new Int32Array(this.batch);
    this.ftLen = new Int32Array(this.batch);
    this.ftNext = new Int32Array(this.batch);
    this.ftVid = new Int32Array(this.batch);
    this.ftTag = new Uint8Array(this.batch);
    this.ftCopies = new Int32Array(this.batch);
    this.sel = new Int32Array(this.batch);
    this.ident = new Int32Array(this.batch).map((_, i) => i);
    this.qHead = new Int32Array(this.maxPorts).fill(NIL);
    this.qTail = new Int32Array(this.maxPorts).fill(NIL);
    this.qCnt = new Int32Array(this.maxPorts);
    this.dsts = new Int32Array(this.maxPorts);
    this.skip = new Int32Array(this.maxPorts);
    this.leases = new Array(this.maxPorts).fill(undefined);
    this.leaseGen = new Uint32Array(this.maxPorts);
    this.txRings = new Array(this.maxPorts).fill(undefined);
    this.txGen = new Uint32Array(this.maxPorts);
    this.txPool = new Uint32Array(this.maxPorts);
  }

  /** Learns that MAC (a, b) of the current frame's VLAN lives on port `port` (for lookups). */
  learn(a: number, b: number, port: number): void {
    this.mac.learn(a, b, this.vlan, port, this.now);
  }

  /** The port slot where MAC (a, b) of the current frame's VLAN was learned, or LOOKUP_FLOOD (for lookups). */
  find(a: number, b: number): number {
    return this.mac.find(a, b, this.vlan, this.now);
  }

  /**
   * The RX lease state of port p, or undefined if the slot was freed since the lookup chose it
   * (the caller counts the frames as having no destination).
   */
  private leasesOf(p: number): RxLeases | undefined {
    const e = (this.portsOff + p * PT_SIZE) >>> 2;
    // Plain loads here and for the other state checks that deliver() and txsync() make again
    // after a lock or busy compareExchange (a full barrier): a stale answer only sends the caller
    // on to that check. On Node 20 each Atomics call costs 10-15 ns.
    if (this.i32[e + (P_STATE >>> 2)] === PORT_FREE) return undefined;
    const gen = this.u32[e + (P_GEN >>> 2)];
    let lk = this.leases[p];
    if (lk === undefined || this.leaseGen[p] !== gen) {
      try {
        lk = this.bridge.rxLeasesAt(p);
      } catch {
        return undefined; // ERR_BAD_PORT: its user keeps corrupting its rings; nothing goes there
      }
      this.leases[p] = lk;
      this.leaseGen[p] = gen;
    }
    return lk;
  }

  /**
   * Forwards every frame the user of port `src` has put in its TX ring ([hwcur, head)) and gives
   * the slots back (tail = head − 1). Returns the number of frames consumed, -1 if the port is
   * not active, TXSYNC_BUSY if another thread is in txsync on it.
   */
  txsync(src: number): number {
    const i32 = this.i32;
    const pw = (this.portsOff + src * PT_SIZE) >>> 2;
    if (i32[pw + (P_STATE >>> 2)] !== PORT_ACTIVE) return -1; // again below, under the busy mark
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
    const mask = tx.mask;
    const head = Atomics.load(i32, tx.headW);
    // hwcur is switch-private (the port table): the user's tail is only checked against it.
    const hwcur = i32[pw + (P_TX_HWCUR >>> 2)] & mask;
    if (head === hwcur && i32[tx.tailW] === ((hwcur - 1) & mask)) return 0;
    // One txsync per port at a time: a second thread sending on the same port gets "busy"
    // (TXSYNC_BUSY) instead of racing the first over the same slots.
    if (Atomics.compareExchange(i32, pw + (P_BUSY >>> 2), 0, this.me) !== 0) return TXSYNC_BUSY;
    try {
      if (i32[pw + (P_STATE >>> 2)] !== PORT_ACTIVE) return -1; // after the compareExchange: current
      if (head >>> 0 > mask || i32[tx.tailW] !== ((hwcur - 1) & mask)) {
        // netmap_ring_reinit: head back to hwcur unless the user moved it again meanwhile, the
        // whole ring free again. A bad head sends nothing; a scribbled tail only is repaired.
        const cw = ((pw << 2) + P_COUNTERS) >>> 3;
        if (head >>> 0 > mask) {
          this.f64[cw + C_TX_BAD_HEAD]++;
          Atomics.compareExchange(i32, tx.headW, head, hwcur);
          i32[tx.curW] = hwcur;
        }
        this.f64[cw + C_TX_REPAIRS]++;
        tx.publishTail((hwcur - 1) & mask);
        if (head >>> 0 > mask) return 0;
      }
      const pending = (head - hwcur) & mask;
      if (pending === 0) return 0;
      return this.#txsync(src, pw, tx, head, hwcur, pending);
    } finally {
      Atomics.store(i32, pw + (P_BUSY >>> 2), 0);
    }
  }

  #txsync(src: number, pw: number, tx: Ring, head: number, cur: number, pending: number): number {
    const i32 = this.i32;
    const f64 = this.f64;
    const cw = (this.portsOff + src * PT_SIZE + P_COUNTERS) >>> 3;
    if (!this.manualClock) {
      this.clockTick = (this.clockTick + 1) & (CLOCK_TICK_SYNCS - 1);
      this.now = this.clockTick === 0 ? this.bridge.tickClock() : this.u32[this.clockW];
    }
    this.syncSeq = ((this.syncSeq + 1) | 0) || 1;
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
    const dsts = this.dsts;
    const maxPorts = this.maxPorts;
    // The general path (VLANs, mirrors) is taken only when the bridge has any configured.
    // (Configuration words, read plainly: a change takes effect from the next txsync on.)
    const vlanOn = u32[this.hdrW + (BH_VLAN_PORTS >>> 2)] !== 0;
    const slow = vlanOn || u32[this.hdrW + (BH_MIRRORS >>> 2)] !== 0;
    const smode = u32[pw + (P_VLAN_MODE >>> 2)];
    const spvid = u32[pw + (P_PVID >>> 2)];
    const smapW = pw + (P_VLAN_MAP >>> 2);
    let txBytes = 0;
    let badBuf = 0;
    let badLen = 0;
    let badVlan = 0;
    let noDest = 0;
    let badLookup = 0;
    while (pending > 0) {
      const n = pending < this.batch ? pending : this.batch;
      let k = 0;
      this.seenA = this.dstA = -1;
      this.vlan = 0;
      let nDsts = 0;
      let bHead = NIL;
      let bTail = NIL;
      let bCnt = 0;
      // The common batch goes to one port: while every frame so far (0 .. k-1) is unicast to
      // `single`, no per-destination list is built; the first frame that is not turns frames
      // 0 .. k-1 into single's list and the general path takes over (with VLANs or mirrors on,
      // from the start: there frames can stay in the batch without a destination).
      let single = slow ? MULTI : NIL;
      // Pass 1: validate, classify, learn, look up, group by destination.
      for (let i = 0; i < n; i++) {
        const s = slotBase + ((cur + i) & mask) * SLOT_SIZE;
        const bi = u32[(s + NS_BUF_IDX) >>> 2];
        const len = u16[(s + NS_LEN) >>> 1];
        txBytes += len;
        if (bi < 2 || bi >= poolBufs) { badBuf++; continue; }
        if (len < 14 || len > bufSize) { badLen++; continue; }
        const off = bufBase + bi * bufSize;
        if (vlanOn) {
          const v = vlanIngress(u8, u16, u32, off, len, smode, spvid, smapW);
          if (v === VLAN_DROP) { badVlan++; continue; }
          ftVid[k] = v & 0xfff;
          ftTag[k] = (v & VLAN_TAGGED) !== 0 ? 1 : 0;
          this.vlan = v & 0xfff;
        }
        const d = lookup(this, off, len, src);
        if (d === LOOKUP_BAD) { badLookup++; continue; }
        ftOff[k] = off;
        ftLen[k] = len;
        if (d === single || (single === NIL && d < maxPorts && d !== src)) {
          single = d;
          k++;
          continue;
        }
        if (single !== MULTI) {
          if (single !== NIL) {
            this.listAll(single, k);
            nDsts = 1;
          }
          single = MULTI;
        }
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
      // Pass 2: one lease, copy and publication per destination ring.
      if (single >= 0) this.deliver(single, k, cw, COPY_AS_IS, this.ident);
      if (bCnt > 0) {
        const high = Atomics.load(i32, this.hdrW + (BH_PORT_HIGH >>> 2));
        for (let p = 0; p < high; p++) {
          if (p === src || qTail[p] !== NIL) continue;
          const e = (this.portsOff + p * PT_SIZE) >>> 2;
          if (Atomics.load(i32, e) !== PORT_ACTIVE || (u32[e + (P_FLAGS >>> 2)] & PF_MIRROR) !== 0) continue;
          dsts[nDsts++] = p;
        }
      }
      if (vlanOn) this.ftCopies.fill(0, 0, k);
      let floodCopies = 0;
      for (let x = 0; x < nDsts; x++) {
        const p = dsts[x];
        const cnt = this.select(p, qHead[p], bHead, vlanOn, cw);
        qHead[p] = NIL;
        qTail[p] = NIL;
        qCnt[p] = 0;
        if (cnt === 0) continue;
        floodCopies += bCnt;
        const got = this.deliver(p, cnt, cw, vlanOn ? COPY_VLAN : COPY_AS_IS, this.sel);
        if (slow) {
          const m = u32[((this.portsOff + p * PT_SIZE) >>> 2) + (P_MIRROR_RX >>> 2)];
          if (m !== 0 && got > 0) this.deliver(m - 1, got, cw, COPY_MIRROR, this.sel);
        }
      }
      if (vlanOn) {
        // A flooded frame that no port of its VLAN took is a dropped copy with no destination.
        for (let f = bHead; f !== NIL; f = ftNext[f]) if (this.ftCopies[f] === 0) noDest++;
      } else if (bCnt > 0 && floodCopies === 0) {
        // A flooded frame that reached no port at all (nobody else on the bridge) is one dropped copy.
        noDest += bCnt;
      }
      if (slow) {
        const m = u32[pw + (P_MIRROR_TX >>> 2)];
        if (m !== 0 && k > 0) this.deliver(m - 1, k, cw, COPY_MIRROR, this.ident);
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
    f64[cw + C_DROP_LOOKUP] += badLookup;
    f64[cw + C_TX_COPIES] += badBuf + badLen + badVlan + noDest + badLookup;
    // VALE txsync: everything up to head is consumed; the whole ring is free again.
    i32[pw + (P_TX_HWCUR >>> 2)] = head;
    tx.publishTail((head - 1) & mask);
    return total;
  }

  /**
   * Makes frames 0 .. k-1 the list of destination p, as pass 1 would have built it, when a
   * one-destination batch turns out to have more; p becomes dsts[0] (the caller's nDsts is 1).
   */
  private listAll(p: number, k: number): void {
    const ftNext = this.ftNext;
    for (let f = 0; f < k - 1; f++) ftNext[f] = f + 1;
    ftNext[k - 1] = NIL;
    this.qHead[p] = 0;
    this.qTail[p] = k - 1;
    this.qCnt[p] = k;
    this.dsts[0] = p;
  }

  /**
   * Puts into sel[], in batch order, the frames of unicast list uh and flood list bh that port p
   * gets: all of them, or with VLANs on, those of p's VLANs (a unicast frame learned on p but no
   * longer allowed there is a dropped copy). Returns how many.
   */
  private select(p: number, uh: number, bh: number, vlanOn: boolean, cw: number): number {
    const ftNext = this.ftNext;
    const sel = this.sel;
    let cnt = 0;
    let a = uh;
    let b = bh;
    if (!vlanOn) {
      if (b === NIL) {
        for (; a !== NIL; a = ftNext[a]) sel[cnt++] = a;
      } else if (a === NIL) {
        for (; b !== NIL; b = ftNext[b]) sel[cnt++] = b;
      } else {
        while (a !== NIL || b !== NIL) {
          if (b === NIL || (a !== NIL && a < b)) { sel[cnt++] = a; a = ftNext[a]; } else { sel[cnt++] = b; b = ftNext[b]; }
        }
      }
      return cnt;
    }
    const u32 = this.u32;
    const ftVid = this.ftVid;
    const pw = (this.portsOff + p * PT_SIZE) >>> 2;
    const mode = u32[pw + (P_VLAN_MODE >>> 2)];
    const pvid = u32[pw + (P_PVID >>> 2)];
    const mapW = pw + (P_VLAN_MAP >>> 2);
    let filtered = 0;
    while (a !== NIL || b !== NIL) {
      let f: number;
      let unicast: boolean;
      if (b === NIL || (a !== NIL && a < b)) { f = a; a = ftNext[a]; unicast = true; } else { f = b; b = ftNext[b]; unicast = false; }
      if (!vlanMember(u32, mode, pvid, mapW, ftVid[f])) {
        // A flood simply skips ports outside the VLAN; a unicast frame is a dropped copy.
        if (unicast) filtered++;
        continue;
      }
      this.ftCopies[f]++;
      sel[cnt++] = f;
    }
    if (filtered > 0) {
      this.f64[cw + C_TX_COPIES] += filtered;
      this.f64[cw + C_DROP_VLAN] += filtered;
    }
    return cnt;
  }

  /**
   * Delivers frames sel[0..cnt) to port p: lease slots on its RX ring, copy them there (`how`:
   * COPY_AS_IS, COPY_VLAN through p's egress rules, COPY_MIRROR as they are, counted apart from
   * the sender's accounting), publish. Returns the frames delivered; counts every one that is not.
   */
  private deliver(p: number, cnt: number, cw: number, how: number, sel: Int32Array): number {
    const f64 = this.f64;
    const mirror = how === COPY_MIRROR;
    if (!mirror) f64[cw + C_TX_COPIES] += cnt;
    if (this.skip[p] === this.syncSeq) {
      f64[cw + (mirror ? C_MIRROR_DROPS : C_DROP_BUSY)] += cnt;
      return 0;
    }
    const lk = this.leasesOf(p);
    if (lk === undefined) {
      f64[cw + (mirror ? C_MIRROR_DROPS : C_DROP_NO_DEST)] += cnt;
      return 0;
    }
    const me = this.me;
    if (!lk.lock(me, this.lockWaitMs)) {
      this.skip[p] = this.syncSeq;
      f64[cw + (mirror ? C_MIRROR_DROPS : C_DROP_BUSY)] += cnt;
      return 0;
    }
    const pw = (this.portsOff + p * PT_SIZE) >>> 2;
    if (this.i32[pw + (P_STATE >>> 2)] !== PORT_ACTIVE) { // under the lock: current
      lk.unlock();
      f64[cw + (mirror ? C_MIRROR_DROPS : C_DROP_NO_DEST)] += cnt;
      return 0;
    }
    // A few frames into a ring with no lease in flight are copied under the lock and published
    // at once: one lock hold instead of two, and no lease entry (a round trip's frame takes this
    // way). A batch takes a lease and copies without the lock, so other senders to this ring
    // copy at the same time.
    const direct = cnt <= DIRECT_MAX && lk.quiet();
    let howmany: number;
    if (direct) {
      howmany = lk.reserveDirect(cnt);
    } else {
      lk.publish(); // done leases whose sender could not get the lock to publish them
      howmany = lk.reserve(cnt, me);
      lk.unlock();
    }
    if (howmany < cnt) f64[cw + (mirror ? C_MIRROR_DROPS : C_DROP_RING_FULL)] += cnt - howmany;
    if (howmany === 0) {
      if (direct) lk.unlock();
      return 0;
    }
    const lease = lk.lease;
    // The one copy loop: lease slot j gets frame sel[c], in its own buffer rxFirstBuf + j.
    const rx = lk.ring;
    const u8 = this.u8;
    const u16 = this.u16;
    const u32 = this.u32;
    const ftOff = this.ftOff;
    const ftLen = this.ftLen;
    const ftVid = this.ftVid;
    const ftTag = this.ftTag;
    const slotBase = rx.slotBase;
    const bufBase = rx.bufBase;
    const bufSize = rx.bufSize;
    const mask = rx.mask;
    const firstBuf = this.rxFirstBuf;
    const copy = this.copy;
    const vmode = how === COPY_VLAN ? u32[pw + (P_VLAN_MODE >>> 2)] : VLAN_NONE;
    const pvid = u32[pw + (P_PVID >>> 2)];
    let j = lk.start;
    let bytes = 0;
    for (let c = 0; c < howmany; c++) {
      const f = sel[c];
      const bi = firstBuf + j;
      const dst = bufBase + bi * bufSize;
      let len = ftLen[f];
      if (vmode === VLAN_NONE) copy(dst, ftOff[f], len);
      else len = vlanCopy(u8, copy, dst, ftOff[f], len, vmode, pvid, ftVid[f], ftTag[f] === 1, bufSize);
      // Each slot word is stored only when it differs: the receiver read this slot's line, and
      // a store would take it back from its core although nothing changed (same length, same
      // buffer: the common case of a steady stream). A changed word is stored as before.
      const s = slotBase + j * SLOT_SIZE;
      if (u32[(s + NS_BUF_IDX) >>> 2] !== bi) u32[(s + NS_BUF_IDX) >>> 2] = bi;
      if (u16[(s + NS_LEN) >>> 1] !== len) u16[(s + NS_LEN) >>> 1] = len;
      if (u16[(s + NS_FLAGS) >>> 1] !== 0) u16[(s + NS_FLAGS) >>> 1] = 0;
      bytes += len;
      j = (j + 1) & mask;
    }
    f64[cw + (mirror ? C_MIRRORED : C_TX_DELIVERED)] += howmany;
    if (direct) {
      lk.publishDirect(howmany, bytes);
      lk.unlock();
      return howmany;
    }
    lk.finish(lease, bytes);
    // Publish now if the lock can be had; if not, the lease is done and the next reserve or
    // publish on this ring publishes it (and counts its frames on the receiver).
    if (lk.lock(me, this.lockWaitMs)) {
      lk.publish();
      lk.unlock();
    } else {
      this.skip[p] = this.syncSeq;
    }
    return howmany;
  }
}
