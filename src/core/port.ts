/**
 * A Port is one thread's handle on a switch port: its TX and RX rings in the bridge's shared
 * memory, and this thread's Forwarder, which does the switching work when this thread sends
 * (VALE's txsync runs in the sender's thread).
 *
 * Two ways to use it:
 * - batched and zero-copy: `receive()` returns an RxBatch over the frames waiting in the RX ring
 *   (views valid until the next receive()/release()); `txReserve()` returns a TxBatch of free TX
 *   buffers to write frames into, and `txCommit(n)` sends the first n;
 * - simple: `send(frame)`, `sendBatch(frames)`, `recv()`, and `for await (const f of port)`,
 *   which copy.
 * Waiting: `wait()` blocks the thread (Workers only: Atomics.wait), `waitAsync()` does not.
 */
import type { Bridge, Forwarder, PortCounters } from '#bridge';
import { PORT_ACTIVE, P_GEN, TXSYNC_BUSY } from '#bridge';
import type { MemCopy, Ring } from '#rings';
import { ERR, VswitchError } from './errors.js';

/** Frames received, as offsets into the bridge's memory. Reused by every receive() of a port. */
export class RxBatch {
  /** Number of frames in the batch. */
  count = 0;
  /** The whole bridge memory; frame i is buffer[offset(i) .. offset(i) + length(i)). */
  readonly buffer: Uint8Array;
  /** @internal */ start = 0;
  readonly #ring: Ring;

  /** @internal */
  constructor(ring: Ring, buffer: Uint8Array) {
    this.#ring = ring;
    this.buffer = buffer;
  }

  /** Byte offset of frame i in `buffer`. */
  offset(i: number): number {
    return this.#ring.slotBuf(this.start + i);
  }

  /** Length of frame i in bytes (0 for a slot emptied after a sender died mid-copy). */
  length(i: number): number {
    return this.#ring.len(this.start + i);
  }

  /** A view of frame i (allocates a view object; valid until the next receive). */
  frame(i: number): Uint8Array {
    const off = this.offset(i);
    return this.buffer.subarray(off, off + this.length(i));
  }
}

/** Free TX buffers to write frames into, then send with `port.txCommit(n)`. */
export class TxBatch {
  /** Number of free slots reserved. */
  count = 0;
  readonly buffer: Uint8Array;
  /** Largest frame a buffer holds. */
  readonly bufSize: number;
  /** @internal */ start = 0;
  readonly #ring: Ring;
  readonly #copy: MemCopy;

  /** @internal */
  constructor(ring: Ring, buffer: Uint8Array, copy: MemCopy) {
    this.#ring = ring;
    this.buffer = buffer;
    this.bufSize = ring.bufSize;
    this.#copy = copy;
  }

  /** Byte offset in `buffer` where frame i is to be written. */
  offset(i: number): number {
    return this.#ring.slotBuf(this.start + i);
  }

  /** Sets the length of frame i (14 ≤ len ≤ bufSize, or the switch drops it and counts it). */
  setLength(i: number, len: number): void {
    this.#ring.setLen(this.start + i, len);
  }

  /**
   * Copies frame j of `rx` into buffer i and sets its length: the way to forward or echo a
   * received frame. It copies as the switch does (WebAssembly's memory.copy where the bridge
   * memory is a WebAssembly.Memory, 2-3x faster than copyWithin on shared memory). A frame
   * longer than bufSize is cut to bufSize. Returns the length.
   */
  copyFrom(i: number, rx: RxBatch, j: number): number {
    let len = rx.length(j);
    if (len > this.bufSize) len = this.bufSize;
    this.#copy(this.offset(i), rx.offset(j), len);
    this.setLength(i, len);
    return len;
  }
}

export interface PortHooks {
  close(port: Port): Promise<void>;
}

export class Port implements AsyncIterable<Uint8Array> {
  /** Full port name, e.g. `vale0:a`. */
  readonly name: string;
  /** Bridge name, e.g. `vale0`. */
  readonly bridgeName: string;
  /** Port slot in the bridge. */
  readonly index: number;
  readonly #bridge: Bridge;
  readonly #fw: Forwarder;
  readonly #rx: Ring;
  readonly #tx: Ring;
  readonly #gen: number;
  readonly #genW: number;
  readonly #stateW: number;
  readonly #rxBatch: RxBatch;
  readonly #txBatch: TxBatch;
  readonly #hooks: PortHooks;
  #held = 0;
  #closed = false;
  /** Polls of the RX ring before wait()/waitAsync() sleep (default 0). */
  spin = 0;

  /** @internal Ports come from Switch.open() or openPort(). */
  constructor(bridge: Bridge, fw: Forwarder, index: number, name: string, gen: number, hooks: PortHooks) {
    this.#bridge = bridge;
    this.#fw = fw;
    this.index = index;
    this.name = name;
    this.bridgeName = bridge.name;
    const nif = bridge.netmapIf(index);
    this.#rx = nif.rxRings[0];
    this.#tx = nif.txRings[0];
    this.#gen = gen;
    this.#genW = bridge.portWord(index, P_GEN);
    this.#stateW = bridge.portWord(index, 0);
    this.#rxBatch = new RxBatch(this.#rx, bridge.region.u8);
    this.#txBatch = new TxBatch(this.#tx, bridge.region.u8, bridge.region.copy);
    this.#hooks = hooks;
  }

  /**
   * True once the port was closed here, or removed from the switch. The port's slot may then be
   * reused by another port (its generation changes), so every method of a closed handle throws
   * ERR_CLOSED instead of touching rings that are no longer its own.
   */
  get closed(): boolean {
    if (this.#closed) return true;
    const r = this.#bridge.region;
    return Atomics.load(r.i32, this.#stateW) !== PORT_ACTIVE || r.u32[this.#genW] !== this.#gen;
  }

  #check(): void {
    // The closed test with plain loads (every call makes it; an Atomics.load costs 10-15 ns on
    // Node 20). A removal that races this call is caught by txsync, which reads the state again
    // under the port's busy mark, and the slot is not reused before its users have let go.
    if (this.#closed) throw new VswitchError(ERR.CLOSED, `port ${this.name} is closed`);
    const r = this.#bridge.region;
    if (r.i32[this.#stateW] !== PORT_ACTIVE || r.u32[this.#genW] !== this.#gen) {
      throw new VswitchError(ERR.CLOSED, `port ${this.name} is closed`);
    }
  }

  /** Largest frame this port can send or receive, in bytes. */
  get mtu(): number {
    this.#check();
    return this.#tx.bufSize;
  }

  // ---- receive -------------------------------------------------------------------------------

  /** Frames waiting in the RX ring, without taking them (0 once the port is closed). */
  get pending(): number {
    // An empty ring answers 0 without the closed check: polling loops call this at full speed.
    const n = this.#rx.space() - this.#held;
    if (n <= 0 || this.closed) return 0;
    return n;
  }

  /**
   * Releases the previous batch and returns the frames now waiting (at most `max`). The views
   * stay valid until the next receive() or release(). Allocates nothing.
   */
  receive(max = 0x7fffffff): RxBatch {
    this.#check();
    this.#release();
    const rx = this.#rx;
    let n = rx.space();
    if (n > max) n = max;
    const b = this.#rxBatch;
    b.start = rx.userHead();
    b.count = n;
    this.#held = n;
    return b;
  }

  /** Gives the slots of the last batch back to the switch. */
  release(): void {
    this.#check();
    this.#release();
  }

  #release(): void {
    if (this.#held > 0) {
      this.#rx.advance(this.#held);
      this.#held = 0;
      this.#rxBatch.count = 0;
    }
  }

  /** The next frame as a copy, or null if none is waiting. */
  recv(): Uint8Array | null {
    this.#check();
    this.#release();
    const rx = this.#rx;
    while (rx.space() > 0) {
      const h = rx.head;
      const len = rx.len(h);
      const off = rx.slotBuf(h);
      const f = len > 0 ? this.#bridge.region.u8.slice(off, off + len) : null;
      rx.advance(1);
      if (f) return f;
    }
    return null;
  }

  /**
   * Blocks this thread until a frame is waiting, the port closes, or `timeoutMs` passes.
   * Returns true when frames are waiting. Workers only: the main thread cannot block.
   */
  wait(timeoutMs = Infinity): boolean {
    this.#check();
    const rx = this.#rx;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = rx.tail;
      if (this.closed) return false;
      if (rx.space() - this.#held > 0) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      rx.waitTail(seen, { spin: this.spin, timeoutMs: Math.min(left, 1000) });
    }
  }

  /** Resolves true when a frame is waiting, false when the port closes or `timeoutMs` passes. */
  async waitAsync(timeoutMs = Infinity): Promise<boolean> {
    this.#check();
    const rx = this.#rx;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = rx.tail;
      if (this.closed) return false;
      if (rx.space() - this.#held > 0) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await rx.waitTailAsync(seen, { spin: this.spin, timeoutMs: Math.min(left, 1000) });
    }
  }

  /** Yields copies of received frames until the port closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      if (this.closed) return;
      const f = this.recv();
      if (f) {
        yield f;
        continue;
      }
      if (!(await this.waitAsync())) return;
    }
  }

  // ---- send ----------------------------------------------------------------------------------

  /** Reserves up to `max` free TX buffers to write frames into; send them with txCommit(n). */
  txReserve(max = 0x7fffffff): TxBatch {
    this.#check();
    const tx = this.#tx;
    let n = tx.space();
    if (n > max) n = max;
    const b = this.#txBatch;
    b.start = tx.userHead();
    b.count = n;
    return b;
  }

  /**
   * Writes a frame into every TX buffer of the port, for traffic that repeats one frame (as
   * pkt-gen does: afterwards each send only commits slots). `write(buffer, offset)` returns the
   * frame length. Call it when nothing is pending in the TX ring (right after opening).
   */
  txPrefill(write: (buffer: Uint8Array, offset: number) => number): void {
    this.#check();
    const tx = this.#tx;
    if (tx.txPending() !== 0) throw new VswitchError(ERR.BAD_ARG, 'txPrefill: frames are pending in the TX ring; flush first');
    const u8 = this.#bridge.region.u8;
    for (let i = 0; i < tx.numSlots; i++) tx.setLen(i, write(u8, tx.slotBuf(i)));
  }

  /**
   * Sends the first `n` frames of the last txReserve() batch: this thread forwards them into the
   * destination rings now. Returns frames consumed (a full destination drops and counts).
   */
  txCommit(n: number): number {
    this.#check();
    const b = this.#txBatch;
    if (!(Number.isInteger(n) && n >= 0 && n <= b.count)) {
      throw new VswitchError(ERR.BAD_ARG, `txCommit(${n}): n must be an integer in [0, ${b.count}] (the reserved count)`);
    }
    this.#tx.advance(n);
    b.count = 0;
    return this.#flush();
  }

  /** Forwards whatever is pending in the TX ring (txsync). */
  flush(): number {
    this.#check();
    return this.#flush();
  }

  #flush(): number {
    const r = this.#fw.txsync(this.index);
    if (r === TXSYNC_BUSY) {
      throw new VswitchError(ERR.PORT_BUSY, `another thread is sending on ${this.name} right now: a ring has one user (open the port once, or send from one thread)`);
    }
    if (r < 0) throw new VswitchError(ERR.CLOSED, `port ${this.name} is closed`);
    return r;
  }

  #checkFrame(f: Uint8Array): void {
    if (!(f instanceof Uint8Array) || f.length < 14 || f.length > this.#tx.bufSize) {
      throw new VswitchError('ERR_BAD_FRAME',
        `a frame must be a Uint8Array of 14 to ${this.#tx.bufSize} bytes (Ethernet header included, no FCS), got ${f instanceof Uint8Array ? f.length + ' bytes' : typeof f}`);
    }
  }

  /** Copies one frame into the TX ring and sends it. */
  send(frame: Uint8Array): void {
    this.sendBatch([frame]);
  }

  /** Copies frames into the TX ring and sends them, in ring-sized batches. Returns frames sent. */
  sendBatch(frames: readonly Uint8Array[]): number {
    this.#check();
    for (const f of frames) this.#checkFrame(f);
    const tx = this.#tx;
    const u8 = this.#bridge.region.u8;
    let i = 0;
    let sent = 0;
    while (i < frames.length) {
      let n = tx.space();
      if (n > frames.length - i) n = frames.length - i;
      let h = tx.head;
      for (let k = 0; k < n; k++, i++) {
        const f = frames[i];
        u8.set(f, tx.slotBuf(h));
        tx.setLen(h, f.length);
        tx.setFlags(h, 0);
        h = tx.next(h);
      }
      tx.advance(n);
      sent += this.flush();
    }
    return sent;
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** This port's counters (names in COUNTER_NAMES). */
  stats(): PortCounters {
    this.#check();
    return this.#bridge.counters(this.index);
  }

  /** Closes this handle. The port is destroyed on its last close unless it is persistent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (!this.closed) this.#release(); // not when the slot already belongs to another port
    this.#closed = true;
    this.#rx.wakeAll();
    await this.#hooks.close(this);
  }
}
