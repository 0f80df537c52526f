/**
 * A view of one netmap_ring inside a Region, with netmap's ownership rules
 * (netmap.h, "struct netmap_ring"):
 *
 * - Slots are indexed in [0, numSlots). The **user** owns [head, tail); the **kernel** (here: the
 *   other thread, or the switch running in a sender's thread) owns [tail, head).
 * - One slot is always empty, so a ring holds at most numSlots − 1 frames and head == tail means
 *   "nothing for the user".
 * - TX ring: [head, tail) are free slots the user may fill; the user writes buffers and lengths,
 *   then advances head (and cur). The kernel consumes [next(tail), head) and moves tail.
 *   RX ring: [head, tail) are received frames; the user reads them and advances head to give the
 *   slots back. The kernel fills [tail, prev(head)) and moves tail.
 * - `cur` is the user's wake-up threshold; applications keep cur == head (advance() does).
 *
 * Publication: the writer of a frame fills slot and buffer with plain stores and then publishes
 * the index (tail for the kernel, head for the user) with one Atomics.store, which orders all
 * earlier stores before it; the reader loads the index with Atomics.load before touching the
 * slots. One load and one store per batch, never per frame (as in ringbuf.js).
 *
 * Wake-ups: a side that finds nothing to do may spin for a budget and then sleep on the word it
 * waits for (Atomics.wait in Workers, Atomics.waitAsync on the main thread), after announcing
 * itself in a waiter count. The other side notifies only when that count is non-zero, so the
 * fast path costs one Atomics.load per batch. Sequentially consistent Atomics make the
 * "announce, re-check, sleep" / "publish, check waiters" pair free of lost wake-ups.
 *
 * The num_slots of a ring must be a power of two (netmap allows any size; a mask is cheaper
 * than a branch in every index step and VALE's defaults are powers of two anyway).
 */
import { acquireLock, breakLock, releaseLock } from './lock.js';
import {
  FIRST_BUF, MAX_NUM_SLOTS, NR_BUF_ALIGN, NR_BUF_OFS, NR_BUF_SIZE, NR_CUR, NR_DIR, NR_ERRORS, NR_FLAGS, NR_HEAD,
  NR_KERN_WAITERS, NR_LOCK, NR_NUM_SLOTS, NR_PRIVATE, NR_RINGID, NR_TAIL, NR_USER_WAITERS, NS_BUF_IDX, NS_FLAGS,
  NS_LEN, NR_HDR_SIZE, SLOT_SIZE, TX, ALIGN, MIN_BUF_SIZE, MAX_BUF_SIZE,
} from './layout.js';
import { RingError, check, checkInt, checkPow2 } from './errors.js';
import type { Region } from './region.js';

export interface RingInit {
  /** Slots in the ring: a power of two in [2, 4096]. */
  numSlots: number;
  /** Bytes per buffer: a multiple of 64 in [64, 65536]. */
  bufSize: number;
  /** Byte offset, in the region, of buffer index 0 of the pool this ring's slots refer to. */
  poolOffset: number;
  /** Number of buffers in that pool (indices 0 and 1 are reserved). */
  poolBufs: number;
  /** First buffer index given to slot 0; slot i gets firstBuf + i. */
  firstBuf: number;
  /** 0 = TX, 1 = RX. */
  dir: number;
  ringId?: number;
}

/** Options for the waiting calls. */
export interface WaitOptions {
  /** Polls before sleeping (each poll is one Atomics.load). Default 0: sleep at once. */
  spin?: number;
  /** Give up after this many milliseconds (default: wait forever). */
  timeoutMs?: number;
}

const noop = (): void => {};

export class Ring {
  readonly region: Region;
  /** Byte offset of the ring header in the region. */
  readonly offset: number;
  readonly numSlots: number;
  readonly mask: number;
  readonly bufSize: number;
  readonly dir: number;
  /** Byte offset in the region of buffer index 0 (ring offset + buf_ofs). */
  readonly bufBase: number;
  /** Byte offset in the region of slot 0. */
  readonly slotBase: number;
  /** Int32 indices (into region.i32) of the header words used with Atomics. */
  readonly headW: number;
  readonly curW: number;
  readonly tailW: number;
  readonly userWaitW: number;
  readonly kernWaitW: number;
  readonly lockW: number;
  readonly errorsW: number;
  /** Int32 index of the 28 private words for the kernel side's own state. */
  readonly privW: number;

  private constructor(region: Region, offset: number) {
    this.region = region;
    this.offset = offset;
    const dv = region.dv;
    this.numSlots = dv.getUint32(offset + NR_NUM_SLOTS, true);
    this.mask = this.numSlots - 1;
    this.bufSize = dv.getUint32(offset + NR_BUF_SIZE, true);
    this.dir = dv.getUint16(offset + NR_DIR, true);
    this.bufBase = offset + Number(dv.getBigInt64(offset + NR_BUF_OFS, true));
    this.slotBase = offset + NR_HDR_SIZE;
    this.headW = (offset + NR_HEAD) >>> 2;
    this.curW = (offset + NR_CUR) >>> 2;
    this.tailW = (offset + NR_TAIL) >>> 2;
    this.userWaitW = (offset + NR_USER_WAITERS) >>> 2;
    this.kernWaitW = (offset + NR_KERN_WAITERS) >>> 2;
    this.lockW = (offset + NR_LOCK) >>> 2;
    this.errorsW = (offset + NR_ERRORS) >>> 2;
    this.privW = (offset + NR_PRIVATE) >>> 2;
  }

  /**
   * Writes a new ring header and its slots at `offset` (which must lie in the region, 64-aligned,
   * with room for 256 + 16·numSlots bytes) and returns a view of it. A TX ring starts with all
   * numSlots − 1 usable slots free (tail = numSlots − 1), an RX ring starts empty (tail = 0),
   * exactly as netmap_krings_create initialises them.
   */
  static init(region: Region, offset: number, o: RingInit): Ring {
    checkInt(o.numSlots, 'numSlots', 2, MAX_NUM_SLOTS);
    checkPow2(o.numSlots, 'numSlots');
    checkInt(o.bufSize, 'bufSize', MIN_BUF_SIZE, MAX_BUF_SIZE);
    check(o.bufSize % ALIGN === 0, 'ERR_RING_ARG', `bufSize must be a multiple of ${ALIGN}, got ${o.bufSize}`);
    checkInt(o.dir, 'dir', 0, 1);
    check(offset % ALIGN === 0 && offset >= 0 && offset + NR_HDR_SIZE + SLOT_SIZE * o.numSlots <= region.byteLength,
      'ERR_RING_RANGE', `ring at ${offset} with ${o.numSlots} slots does not fit 64-aligned in the region of ${region.byteLength} bytes`);
    checkInt(o.poolBufs, 'poolBufs', FIRST_BUF + 1, 0xffffffff);
    check(o.poolOffset % ALIGN === 0 && o.poolOffset + o.poolBufs * o.bufSize <= region.byteLength,
      'ERR_RING_RANGE', `buffer pool at ${o.poolOffset} (${o.poolBufs} × ${o.bufSize} B) does not fit in the region`);
    check(o.firstBuf >= FIRST_BUF && o.firstBuf + o.numSlots <= o.poolBufs, 'ERR_RING_ARG',
      `slots need buffers ${o.firstBuf}..${o.firstBuf + o.numSlots - 1} but the pool has indices ${FIRST_BUF}..${o.poolBufs - 1}`);
    const dv = region.dv;
    region.u8.fill(0, offset, offset + NR_HDR_SIZE);
    dv.setBigInt64(offset + NR_BUF_OFS, BigInt(o.poolOffset - offset), true);
    dv.setUint32(offset + NR_NUM_SLOTS, o.numSlots, true);
    dv.setUint32(offset + NR_BUF_SIZE, o.bufSize, true);
    dv.setUint16(offset + NR_RINGID, o.ringId ?? 0, true);
    dv.setUint16(offset + NR_DIR, o.dir, true);
    dv.setUint32(offset + NR_FLAGS, 0, true);
    dv.setBigUint64(offset + NR_BUF_ALIGN, 1n, true);
    for (let i = 0; i < o.numSlots; i++) {
      const s = offset + NR_HDR_SIZE + i * SLOT_SIZE;
      dv.setUint32(s + NS_BUF_IDX, o.firstBuf + i, true);
      dv.setUint16(s + NS_LEN, o.dir === TX ? o.bufSize > 0xffff ? 0xffff : o.bufSize : 0, true);
      dv.setUint16(s + NS_FLAGS, 0, true);
      dv.setBigUint64(s + 8, 0n, true);
    }
    const tail = o.dir === TX ? o.numSlots - 1 : 0;
    Atomics.store(region.i32, (offset + NR_HEAD) >>> 2, 0);
    Atomics.store(region.i32, (offset + NR_CUR) >>> 2, 0);
    Atomics.store(region.i32, (offset + NR_TAIL) >>> 2, tail);
    return new Ring(region, offset);
  }

  /** A view of a ring written earlier by `Ring.init` (possibly in another thread). */
  static attach(region: Region, offset: number): Ring {
    check(Number.isInteger(offset) && offset >= 0 && offset % ALIGN === 0 && offset + NR_HDR_SIZE <= region.byteLength,
      'ERR_RING_RANGE', `no ring can start at offset ${offset} of a ${region.byteLength}-byte region`);
    const n = region.dv.getUint32(offset + NR_NUM_SLOTS, true);
    check(n >= 2 && n <= MAX_NUM_SLOTS && (n & (n - 1)) === 0 && offset + NR_HDR_SIZE + n * SLOT_SIZE <= region.byteLength,
      'ERR_RING_BAD_RING', `offset ${offset} does not hold a ring (num_slots ${n})`);
    return new Ring(region, offset);
  }

  // ---- index helpers -------------------------------------------------------------------------

  next(i: number): number {
    return (i + 1) & this.mask;
  }

  prev(i: number): number {
    return (i - 1) & this.mask;
  }

  /** Slots from a to b going forward (b − a mod numSlots). */
  distance(a: number, b: number): number {
    return (b - a) & this.mask;
  }

  // ---- shared words ---------------------------------------------------------------------------

  get head(): number {
    return Atomics.load(this.region.i32, this.headW);
  }

  get cur(): number {
    return Atomics.load(this.region.i32, this.curW);
  }

  get tail(): number {
    return Atomics.load(this.region.i32, this.tailW);
  }

  // ---- user side (netmap_user.h) --------------------------------------------------------------

  /**
   * head as the user side reads it. The user is head's only writer, so this is a plain load, not
   * an Atomics.load: on Node 20 every Atomics call is a builtin call of 10-15 ns, and a round trip
   * makes dozens. (Atomics stay where they order memory between threads: the store that publishes
   * an index, and the load of the other side's index before its slots are read or reused.)
   */
  userHead(): number {
    return this.region.i32[this.headW];
  }

  /** nm_ring_space: slots the user owns, tail − head. TX: free slots; RX: frames to read. User side. */
  space(): number {
    const i32 = this.region.i32;
    return (Atomics.load(i32, this.tailW) - i32[this.headW]) & this.mask;
  }

  empty(): boolean {
    return this.space() === 0;
  }

  /**
   * Gives `n` slots from head on to the other side (TX: frames to send; RX: slots read) and sets
   * cur = head. Publishes with one Atomics.store; wakes a sleeping kernel side.
   */
  advance(n: number): void {
    const i32 = this.region.i32;
    const h = (i32[this.headW] + n) & this.mask; // our own word (userHead)
    // cur is only the user's wake-up threshold: no one synchronises on it, a plain store will do.
    i32[this.curW] = h;
    Atomics.store(i32, this.headW, h);
    // A plain load is enough after the Atomics.store (see publishTail).
    if (i32[this.kernWaitW] !== 0) Atomics.notify(i32, this.headW);
  }

  /** Sets head and cur to `h` (an index in [0, numSlots)), publishing like advance(). */
  setHead(h: number): void {
    if (!(h >= 0 && h <= this.mask && Number.isInteger(h))) {
      throw new RingError('ERR_RING_ARG', `head must be an integer in [0, ${this.mask}], got ${h}`);
    }
    this.advance((h - this.head) & this.mask);
  }

  // ---- kernel side ----------------------------------------------------------------------------

  /**
   * Free slots for the kernel side of an RX ring given the user's head: numSlots − 1 − (tail − head).
   * An out-of-range head written by a misbehaving user counts as a full ring.
   */
  rxFree(): number {
    const i32 = this.region.i32;
    const h = Atomics.load(i32, this.headW);
    if (h >>> 0 > this.mask) {
      Atomics.add(i32, this.errorsW, 1);
      return 0;
    }
    return this.mask - ((Atomics.load(i32, this.tailW) - h) & this.mask);
  }

  /** Frames a TX ring's user has handed over and the kernel side has not consumed: [next(tail), head). */
  txPending(): number {
    const i32 = this.region.i32;
    const h = Atomics.load(i32, this.headW);
    if (h >>> 0 > this.mask) {
      Atomics.add(i32, this.errorsW, 1);
      return 0;
    }
    return (h - Atomics.load(i32, this.tailW) - 1) & this.mask;
  }

  /** Publishes a new tail (kernel side) and wakes the user side if it sleeps. */
  publishTail(t: number): void {
    const i32 = this.region.i32;
    Atomics.store(i32, this.tailW, t & this.mask);
    // The waiter count is read after the store with a plain load: the store is a full barrier
    // (sequentially consistent; a locked instruction on x86-64) and a call V8 orders every later
    // memory access after. So either this load sees the sleeper's count, or the sleeper's
    // Atomics.wait, which comes after its count, sees the new tail and does not sleep.
    if (i32[this.userWaitW] !== 0) Atomics.notify(i32, this.tailW);
  }

  // ---- slots and buffers ----------------------------------------------------------------------

  slotOffset(i: number): number {
    return this.slotBase + (i & this.mask) * 16;
  }

  bufIdx(i: number): number {
    return this.region.u32[(this.slotBase + (i & this.mask) * 16) >>> 2];
  }

  setBufIdx(i: number, idx: number): void {
    this.region.u32[(this.slotBase + (i & this.mask) * 16) >>> 2] = idx;
  }

  len(i: number): number {
    return this.region.u16[(this.slotBase + (i & this.mask) * 16 + 4) >>> 1];
  }

  setLen(i: number, len: number): void {
    this.region.u16[(this.slotBase + (i & this.mask) * 16 + 4) >>> 1] = len;
  }

  flags(i: number): number {
    return this.region.u16[(this.slotBase + (i & this.mask) * 16 + 6) >>> 1];
  }

  setFlags(i: number, flags: number): void {
    this.region.u16[(this.slotBase + (i & this.mask) * 16 + 6) >>> 1] = flags;
  }

  /** Byte offset in the region of buffer `idx` (NETMAP_BUF). No range check: callers validate. */
  bufOffset(idx: number): number {
    return this.bufBase + idx * this.bufSize;
  }

  /** Byte offset of the buffer of slot i. */
  slotBuf(i: number): number {
    return this.bufBase + this.bufIdx(i) * this.bufSize;
  }

  /** A Uint8Array over slot i's frame (`len` bytes). Allocates a view: for convenience paths. */
  frame(i: number): Uint8Array {
    return new Uint8Array(this.region.sab, this.slotBuf(i), this.len(i));
  }

  // ---- locking (kernel side, several producers) ------------------------------------------------

  /** Takes the ring lock as `owner` (a non-negative thread id), waiting as long as it takes. */
  lock(owner: number): void {
    acquireLock(this.region.i32, this.lockW, owner + 1, Infinity);
  }

  /** Takes the ring lock as `owner` unless another holder keeps it for `waitMs`; false then. */
  tryLock(owner: number, waitMs: number): boolean {
    return acquireLock(this.region.i32, this.lockW, owner + 1, waitMs);
  }

  unlock(): void {
    releaseLock(this.region.i32, this.lockW);
  }

  /** The thread id holding the lock, or -1. */
  lockOwner(): number {
    return Atomics.load(this.region.i32, this.lockW) - 1;
  }

  /** Releases the lock if `owner` holds it (used to clean up after a dead thread). */
  breakLock(owner: number): boolean {
    return breakLock(this.region.i32, this.lockW, owner + 1);
  }

  // ---- waiting --------------------------------------------------------------------------------

  /**
   * User side: blocks (Atomics.wait, so not on the main thread) until tail differs from `seen`.
   * Returns false on timeout.
   */
  waitTail(seen: number, opts?: WaitOptions): boolean {
    return this.waitWord(this.tailW, this.userWaitW, seen, opts);
  }

  /** Kernel side: blocks until head differs from `seen`. */
  waitHead(seen: number, opts?: WaitOptions): boolean {
    return this.waitWord(this.headW, this.kernWaitW, seen, opts);
  }

  /** User side, without blocking the thread: resolves when tail differs from `seen` (false on timeout). */
  waitTailAsync(seen: number, opts?: WaitOptions): Promise<boolean> {
    return this.waitWordAsync(this.tailW, this.userWaitW, seen, opts);
  }

  /** Kernel side, without blocking: resolves when head differs from `seen`. */
  waitHeadAsync(seen: number, opts?: WaitOptions): Promise<boolean> {
    return this.waitWordAsync(this.headW, this.kernWaitW, seen, opts);
  }

  /** Wakes every thread sleeping on this ring (both sides); used when a port closes. */
  wakeAll(): void {
    const i32 = this.region.i32;
    Atomics.notify(i32, this.tailW);
    Atomics.notify(i32, this.headW);
  }

  private waitWord(word: number, waiters: number, seen: number, opts?: WaitOptions): boolean {
    const i32 = this.region.i32;
    const spin = opts?.spin ?? 0;
    for (let k = 0; k < spin; k++) if (Atomics.load(i32, word) !== seen) return true;
    Atomics.add(i32, waiters, 1);
    try {
      return Atomics.wait(i32, word, seen, opts?.timeoutMs ?? Infinity) !== 'timed-out';
    } finally {
      Atomics.sub(i32, waiters, 1);
    }
  }

  private async waitWordAsync(word: number, waiters: number, seen: number, opts?: WaitOptions): Promise<boolean> {
    const i32 = this.region.i32;
    const spin = opts?.spin ?? 0;
    for (let k = 0; k < spin; k++) if (Atomics.load(i32, word) !== seen) return true;
    Atomics.add(i32, waiters, 1);
    try {
      const ms = opts?.timeoutMs ?? Infinity;
      const r = Atomics.waitAsync(i32, word, seen, ms);
      if (!r.async) return r.value !== 'timed-out';
      // A pending Atomics.waitAsync does not keep Node's event loop alive: without this timer a
      // program whose only pending work is this wait would exit in the middle of it. The timer
      // never fires (a timer of the wait's own length can expire just before the wait does).
      const hold = setInterval(noop, 0x3fffffff);
      try {
        return (await r.value) !== 'timed-out';
      } finally {
        clearTimeout(hold);
      }
    } finally {
      Atomics.sub(i32, waiters, 1);
    }
  }
}
