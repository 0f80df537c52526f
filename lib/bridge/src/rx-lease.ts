/**
 * The RX lease protocol of one port: how several senders fill one receiver's ring at once
 * without publishing out of order or over each other (VALE's nm_kr_lease / nm_vale_flush, and
 * netmap's kring helpers beside it).
 *
 * A sender takes the ring lock, validates the receiver's head, reserves a run of slots (a lease)
 * and drops the lock; it copies its frames into those slots without the lock; then it marks the
 * lease done and, if it gets the lock again, publishes every done lease from the oldest on (tail
 * moves, the receiver is woken). A done lease whose sender could not get the lock is published
 * by the next reserve or publish on the ring, so no finished work is stranded. Frames and bytes
 * are counted on the receiver when their lease is published: Σ txDelivered = Σ rxFrames holds.
 *
 * All the words used here are switch-private (the port table entry and the lease table, see
 * layout.ts): the port's user cannot make another port wait or lose frames by writing its own
 * ring header. What the user does write — head, and the tail it may scribble on — is checked
 * against the private copies, and a ring found inconsistent is put back (netmap_ring_reinit):
 * head and cur to hwcur, tail to hwtail, counted.
 */
import { NS_FLAGS, NS_LEN, SLOT_SIZE, acquireLock, breakLock, releaseLock, type Region, type Ring } from '#rings';
import {
  C_RX_REPAIRS, C_RX_BAD_HEAD, C_RX_BYTES, C_RX_DROP_RING_FULL, C_RX_FRAMES, LEASE_WORDS, L_DONE, L_END, L_OWNER,
  L_COUNTED, L_RECLAIMED, L_START, P_COUNTERS, P_LEASE_HEAD, P_LEASE_NEXT, P_RX_HWCUR, P_RX_HWTAIL, P_RX_LOCK,
} from './layout.js';

export class RxLeases {
  readonly ring: Ring;
  readonly mask: number;
  /** Int32 indices of the private words (port table entry). */
  readonly lockW: number;
  readonly hwcurW: number;
  readonly hwtailW: number;
  readonly headW: number;
  readonly nextW: number;
  /** Uint32 index of the lease table. */
  readonly lw: number;
  /** Float64 index of the port's counters. */
  readonly cw: number;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly u16: Uint16Array;
  private readonly f64: Float64Array;
  /** Set by reserve(): the first slot and the number of the lease it made. */
  start = 0;
  lease = 0;
  /** Set by room(): the next lease number and the slot it would start at. */
  #next = 0;
  #hwlease = 0;

  /** `entry`: byte offset of the port's table entry; `leaseOff`: byte offset of its lease table. */
  constructor(region: Region, entry: number, ring: Ring, leaseOff: number) {
    this.ring = ring;
    this.mask = ring.mask;
    this.i32 = region.i32;
    this.u32 = region.u32;
    this.u16 = region.u16;
    this.f64 = region.f64;
    this.lockW = (entry + P_RX_LOCK) >>> 2;
    this.hwcurW = (entry + P_RX_HWCUR) >>> 2;
    this.hwtailW = (entry + P_RX_HWTAIL) >>> 2;
    this.headW = (entry + P_LEASE_HEAD) >>> 2;
    this.nextW = (entry + P_LEASE_NEXT) >>> 2;
    this.lw = leaseOff >>> 2;
    this.cw = (entry + P_COUNTERS) >>> 3;
  }

  // ---- the lock -------------------------------------------------------------------------------

  /** Takes the ring lock as `holder` (thread id + 1), giving up after `waitMs` (see acquireLock). */
  lock(holder: number, waitMs: number): boolean {
    return acquireLock(this.i32, this.lockW, holder, waitMs);
  }

  unlock(): void {
    releaseLock(this.i32, this.lockW);
  }

  /** The lock's holder value (thread id + 1), or 0 when free. */
  lockHolder(): number {
    return Atomics.load(this.i32, this.lockW);
  }

  /** Frees the lock if `holder` has it (a dead thread's). */
  breakLock(holder: number): boolean {
    return breakLock(this.i32, this.lockW, holder);
  }

  // ---- leases (caller holds the lock) ---------------------------------------------------------

  /**
   * The slots free for new leases, at least as many as `needed` if the ring has them. The
   * receiver's head is read (and validated: it may only have moved forward within [hwcur,
   * hwtail]; a head or tail out of place is repaired, reinit) only when the slots known free
   * since the last read are fewer than `needed`. Not reading it saves a round trip its line
   * would make between the cores: the receiver writes head, and every read of it by a sender
   * takes the line back (the tail store that follows then needs it a second time). A bad head
   * or tail is then found at the next read, or at the next publication (publishTail). Caller
   * holds the lock; reserve() calls it.
   */
  room(needed = this.mask + 1): number {
    const i32 = this.i32;
    const mask = this.mask;
    const ring = this.ring;
    // Private words are masked too: a wild store anywhere must not make us index outside the ring.
    const hwtail = i32[this.hwtailW] & mask;
    let hwcur = i32[this.hwcurW] & mask;
    const next = i32[this.nextW] & mask;
    this.#next = next;
    this.#hwlease = (i32[this.headW] & mask) === next ? hwtail : this.u32[this.lw + LEASE_WORDS * ((next - 1) & mask) + L_END] & mask;
    const known = mask - ((this.#hwlease - hwcur) & mask);
    if (known >= needed) return known;
    const h = Atomics.load(i32, ring.headW);
    if (h !== hwcur) {
      if (h >>> 0 <= mask && ((h - hwcur) & mask) <= ((hwtail - hwcur) & mask)) {
        hwcur = h;
        i32[this.hwcurW] = h;
      } else {
        this.f64[this.cw + C_RX_BAD_HEAD]++;
        this.reinit(h, hwcur, hwtail);
      }
    }
    if (i32[ring.tailW] !== hwtail) this.reinit(-1, hwcur, hwtail);
    return mask - ((this.#hwlease - hwcur) & mask);
  }

  /**
   * Reserves up to `needed` slots for `holder` and returns how many (what does not fit is
   * counted on the receiver as rxDropRingFull). The lease is in start/lease. Caller holds the lock.
   */
  reserve(needed: number, holder: number): number {
    const space = this.room(needed);
    const howmany = needed < space ? needed : space;
    if (howmany < needed) this.f64[this.cw + C_RX_DROP_RING_FULL] += needed - howmany;
    if (howmany === 0) return 0;
    const u32 = this.u32;
    const next = this.#next;
    const hwlease = this.#hwlease;
    const e = this.lw + LEASE_WORDS * next;
    u32[e + L_START] = hwlease;
    u32[e + L_END] = (hwlease + howmany) & this.mask;
    u32[e + L_DONE] = 0;
    u32[e + L_OWNER] = holder;
    Atomics.store(this.i32, this.nextW, (next + 1) & this.mask); // the reservation exists from here on
    this.start = hwlease;
    this.lease = next;
    return howmany;
  }

  /**
   * No lease in flight (every reservation published): a small delivery may then skip the lease
   * table and fill the ring under the lock (reserveDirect, publishDirect). Caller holds the lock.
   */
  quiet(): boolean {
    return (this.i32[this.headW] & this.mask) === (this.i32[this.nextW] & this.mask);
  }

  /**
   * Reserves up to `needed` slots from hwtail on without a lease (start is set; what does not fit
   * is counted as rxDropRingFull): the caller keeps the lock until publishDirect. If it dies
   * before, nothing was published and the lock breaker finds no lease: the slots are simply
   * still free. Only when quiet(). Caller holds the lock.
   */
  reserveDirect(needed: number): number {
    const space = this.room(needed);
    const howmany = needed < space ? needed : space;
    if (howmany < needed) this.f64[this.cw + C_RX_DROP_RING_FULL] += needed - howmany;
    this.start = this.#hwlease;
    return howmany;
  }

  /**
   * Publishes the `n` slots of reserveDirect (`bytes` copied): counted, tail moved, receiver woken.
   * Caller holds the lock. The counters and hwtail are stored with no call or loop between them,
   * so a thread terminated here (a Worker stops only at a call or a loop's back edge) leaves both
   * or neither; if it dies before the public tail follows, reclaim() stores it.
   */
  publishDirect(n: number, bytes: number): void {
    const i32 = this.i32;
    const t = (this.start + n) & this.mask;
    const old = i32[this.hwtailW];
    const f64 = this.f64;
    f64[this.cw + C_RX_FRAMES] += n;
    f64[this.cw + C_RX_BYTES] += bytes;
    i32[this.hwtailW] = t;
    this.publishTail(old, t);
  }

  /**
   * tail to t (hwtail already is), the receiver woken if it sleeps. The tail is swapped in (one
   * exchange, which takes the line once) rather than checked and then stored: a value other
   * than the old hwtail `old` is the user's scribble, repaired by this very store and counted
   * (rxRepairs).
   */
  private publishTail(old: number, t: number): void {
    const i32 = this.i32;
    const ring = this.ring;
    if (Atomics.exchange(i32, ring.tailW, t) !== old) this.f64[this.cw + C_RX_REPAIRS]++;
    // A plain load after the exchange, a full barrier (see Ring.publishTail).
    if (i32[ring.userWaitW] !== 0) Atomics.notify(i32, ring.tailW);
  }

  /**
   * netmap_ring_reinit: the user wrote a head outside [hwcur, hwtail] (`badHead`, or -1 when only
   * tail was scribbled on). Puts head and cur back to hwcur (only if head still holds the bad
   * value: a compare-exchange, so a legitimate store that raced us wins) and tail to hwtail.
   */
  private reinit(badHead: number, hwcur: number, hwtail: number): void {
    const i32 = this.i32;
    const ring = this.ring;
    if (badHead !== -1) {
      Atomics.compareExchange(i32, ring.headW, badHead, hwcur);
      i32[ring.curW] = hwcur;
    }
    ring.publishTail(hwtail);
    this.f64[this.cw + C_RX_REPAIRS]++;
  }

  /** Marks lease `lease` done with `bytes` copied; no lock needed (publish() takes it in order). */
  finish(lease: number, bytes: number): void {
    Atomics.store(this.u32, this.lw + LEASE_WORDS * lease + L_DONE, bytes + 1);
  }

  /**
   * Publishes, in reservation order, every done lease from the oldest on: tail moves to the end of
   * the last one with no unfinished lease before it, the receiver is woken, and the frames are
   * counted on the receiver. Caller holds the lock.
   *
   * A thread can die anywhere in here (a Worker is terminated at its next interrupt check: a
   * call, or the loop's back edge), leaving tail published and the lease head not moved; the
   * next publish then walks the same leases again. So each lease's frames are added to the
   * counters and the lease marked L_COUNTED in one step with no interrupt check inside (counted
   * only once, never marked without being counted: summing over the loop and adding after it
   * lost the sum when a thread died on a back edge); hwtail, tail and the lease head are stored
   * last, in that order, and storing them again changes nothing (reclaim() stores tail from
   * hwtail if the thread died between the two).
   */
  publish(): void {
    const i32 = this.i32;
    const u32 = this.u32;
    const mask = this.mask;
    const lw = this.lw;
    let k = i32[this.headW] & mask;
    const next = i32[this.nextW] & mask;
    const f64 = this.f64;
    const cw = this.cw;
    let t = -1;
    while (k !== next) {
      const e = lw + LEASE_WORDS * k;
      const done = Atomics.load(u32, e + L_DONE);
      if (done === 0) break;
      t = u32[e + L_END] & mask;
      if (done !== L_RECLAIMED && (done & L_COUNTED) === 0) {
        // Counted and marked with no call or back edge between: a terminated thread did both or neither.
        f64[cw + C_RX_FRAMES] += (t - u32[e + L_START]) & mask;
        f64[cw + C_RX_BYTES] += done - 1;
        u32[e + L_DONE] = (done | L_COUNTED) >>> 0;
      }
      k = (k + 1) & mask;
    }
    if (t < 0) return;
    const old = i32[this.hwtailW];
    i32[this.hwtailW] = t;
    this.publishTail(old, t);
    Atomics.store(i32, this.headW, k);
  }

  /** Leases reserved and not yet published. */
  pending(): number {
    return (Atomics.load(this.i32, this.nextW) - Atomics.load(this.i32, this.headW)) & this.mask;
  }

  /** Nothing in flight: lock free, every lease published. */
  idle(): boolean {
    return this.lockHolder() === 0 && this.pending() === 0;
  }

  /**
   * Releases the unfinished leases whose holder is dead (`dead(holder)`): their slots become empty
   * frames (length 0) and the lease is marked L_RECLAIMED, then everything done is published.
   * Returns the leases released. Caller holds the lock.
   */
  reclaim(dead: (holder: number) => boolean): number {
    const u32 = this.u32;
    const u16 = this.u16;
    const mask = this.mask;
    const lw = this.lw;
    const slotBase = this.ring.slotBase;
    let released = 0;
    // A publisher that died between hwtail and the public tail (publishDirect, publish): the
    // frames are counted and hwtail says where they end, so tail follows it, without counting
    // a repair; the receiver is woken in case it died before the notify.
    this.ring.publishTail(this.i32[this.hwtailW] & mask);
    const next = Atomics.load(this.i32, this.nextW) & mask;
    for (let k = Atomics.load(this.i32, this.headW) & mask; k !== next; k = (k + 1) & mask) {
      const e = lw + LEASE_WORDS * k;
      if (u32[e + L_DONE] !== 0 || !dead(u32[e + L_OWNER])) continue;
      const end = u32[e + L_END] & mask;
      for (let j = u32[e + L_START] & mask; j !== end; j = (j + 1) & mask) emptySlot(u16, slotBase, j);
      Atomics.store(u32, e + L_DONE, L_RECLAIMED);
      released++;
    }
    this.publish();
    return released;
  }

  /** The holders (thread id + 1) of unfinished leases, oldest first (diagnostics and tests). */
  unfinished(): number[] {
    const out: number[] = [];
    const mask = this.mask;
    const next = Atomics.load(this.i32, this.nextW) & mask;
    for (let k = Atomics.load(this.i32, this.headW) & mask; k !== next; k = (k + 1) & mask) {
      const e = this.lw + LEASE_WORDS * k;
      if (Atomics.load(this.u32, e + L_DONE) === 0) out.push(this.u32[e + L_OWNER]);
    }
    return out;
  }
}

/** Slot j of a ring becomes an empty frame: length 0, no flags (the buffer index stays). */
function emptySlot(u16: Uint16Array, slotBase: number, j: number): void {
  const s = slotBase + j * SLOT_SIZE;
  u16[(s + NS_LEN) >>> 1] = 0;
  u16[(s + NS_FLAGS) >>> 1] = 0;
}
