/**
 * v86 adapter: a v86 emulator's NIC as a switch port, in the thread where the emulator runs
 * (usually a Worker: one VM per Worker).
 *
 * v86 exposes its NIC on the emulator's bus: the NIC emits `net0-send` with each Ethernet frame
 * the guest transmits (destination MAC first, no FCS), and takes `net0-receive` with a frame for
 * the guest. The adapter connects those to a Port with the batch API both ways:
 *
 * - guest → switch: each `net0-send` frame is copied straight into a reserved TX buffer
 *   (txReserve); the frames of one emulator time slice are committed together (txCommit) from a
 *   microtask queued by the slice's first frame, so one txsync forwards the whole burst.
 * - switch → guest: an async loop waits on the RX ring (waitAsync), takes a batch (receive), and
 *   hands each frame to the NIC with `bus.send('net0-receive', frame)`, at most `rxBatch` frames
 *   per turn of the event loop so the guest can drain its NIC between bursts.
 *
 * Allocation per frame. The adapter allocates nothing per frame: the RX path copies each frame
 * into a scratch buffer and passes a cached view of the right length (one view per distinct
 * length, made once), because v86 takes a frame only as a Uint8Array whose length is the frame
 * length. What v86 itself allocates per frame (its API gives no way around it): ne2k, guest →
 * switch: the `subarray` view it emits, and the `[length]` array of its `eth-transmit-end` event;
 * ne2k, switch → guest: the `[length]` array of `eth-receive-end`; virtio-net: a new buffer for
 * every frame the guest sends plus a view of it, and a new buffer (frame + 12-byte virtio
 * header) and a DataView for every frame it receives, plus the same event arrays.
 *
 * Drops are counted by reason (AdapterStats.drops): frames from the guest shorter than an
 * Ethernet header (`undersize`) or longer than the port's buffers (`oversize`), and frames the
 * NIC threw on (`txError`). v86's NICs also drop silently, and this adapter cannot see it: ne2k
 * drops a frame not addressed to its MAC (unless broadcast, multicast or promiscuous) and a frame
 * that does not fit its 16 KiB receive ring; virtio-net drops when the guest has posted no
 * receive buffer. There is no backpressure from the guest.
 *
 * This module has no `node:` imports and uses no Node-only globals of its own (the port API and
 * openPort are all it uses), so that it can run in a browser Worker next to v86.
 */
import type { PortCounters } from '#bridge';
import type { Port, TxBatch } from '../core/port.js';
import { openPort } from '../core/open.js';
import { ERR, VswitchError } from '../core/errors.js';
import type { AdapterStats, DropCounters, FrameTap } from '../adapters/common.js';

/**
 * What the adapter needs of a v86 emulator (`new V86({...})` from the `v86` package): its event
 * listeners and its bus. Typed structurally so that v86 stays an optional peer dependency.
 */
export interface V86Emulator {
  add_listener(event: 'net0-send', listener: (frame: Uint8Array) => void): void;
  remove_listener(event: 'net0-send', listener: (frame: Uint8Array) => void): void;
}

/** The same, for event names built at run time (net1-send, net0-mac...). */
interface Listeners {
  add_listener(event: string, listener: (value: never) => void): void;
  remove_listener(event: string, listener: (value: never) => void): void;
}

interface V86Bus {
  send(name: string, value?: unknown): void;
}

export interface V86AttachOptions {
  /** Switch to open the port on when a name is given (default "default"). */
  switch?: string;
  /** Keep the port after detach (only for a port the adapter opens by name). Default false. */
  persistent?: boolean;
  /** Which NIC of the emulator: 0 for `net0-*` events (default). */
  nic?: number;
  /** Most frames handed to the guest's NIC per turn of the event loop (default 8: ne2k's receive ring holds ~10 full-size frames). */
  rxBatch?: number;
  /** Timeout of the open request to the switch, in ms (default 5000). */
  timeoutMs?: number;
}

/** AdapterStats of a v86 NIC, plus its MAC addresses. */
export interface V86AdapterStats extends AdapterStats {
  kind: 'v86';
  /** Source MAC of the last frame the guest sent (what the bridge learns), or null before the first. */
  mac: string | null;
  /** The MAC v86 gave the NIC (`net0-mac`: random 00:22:15:xx:xx:xx); a guest that sets its own MAC changes `mac`, not this. */
  nicMac: string | null;
}

/** What attachV86 returns. */
export interface V86Attachment {
  readonly kind: 'v86';
  /** The port this NIC feeds, e.g. vale0:vm1. */
  readonly portName: string;
  readonly port: Port;
  /** `v86:net0`. */
  readonly local: string;
  readonly closed: boolean;
  stats(): V86AdapterStats;
  /** Adds a tap that sees every frame moved (as the other adapters' addTap). Returns its remover. */
  addTap(tap: FrameTap): () => void;
  /**
   * Disconnects the NIC from the port: removes the listener, sends what is pending, stops the RX
   * loop, and closes the port if the adapter opened it by name (a Port passed in stays open).
   */
  detach(): Promise<void>;
  /** Same as detach() (the name the other adapters use). */
  close(): Promise<void>;
}

/** Runs `f` on a later turn of the event loop: setImmediate in Node, setTimeout elsewhere (browsers). */
const yieldTurn: (f: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function' ? (f) => setImmediate(f) : (f) => setTimeout(f, 0);

/** Ethernet header length: the shortest frame accepted from the guest. */
const MIN_FRAME = 14;
/** Frames reserved per TX batch. */
const TX_BATCH = 256;

function zeroDrops(): DropCounters {
  // Written out so that the compiler flags a reason added to DropCounters and missing here.
  return {
    truncated: 0, oversize: 0, undersize: 0, badHeader: 0, wrongVni: 0, unknownSource: 0,
    desync: 0, noPeer: 0, txError: 0, backpressure: 0, kernelQueue: 0,
  };
}

function sumDrops(d: DropCounters): number {
  let s = 0;
  for (const k in d) s += d[k as keyof DropCounters];
  return s;
}

class V86Adapter implements V86Attachment {
  readonly kind = 'v86' as const;
  readonly port: Port;
  readonly portName: string;
  readonly local: string;
  readonly drops: DropCounters = zeroDrops();
  rxFrames = 0;
  rxBytes = 0;
  txFrames = 0;
  txBytes = 0;
  nicMac: string | null = null;
  /** Source MAC of the last frame from the guest (copied per frame, formatted only by stats()). */
  readonly #srcMac = new Uint8Array(6);
  #haveSrc = false;
  readonly #emu: Listeners;
  readonly #bus: V86Bus;
  readonly #ownsPort: boolean;
  readonly #sendEvent: string;
  readonly #receiveEvent: string;
  readonly #macEvent: string;
  readonly #rxBatch: number;
  readonly #taps: FrameTap[] = [];
  // guest → switch
  #tx: TxBatch | null = null;
  #txN = 0;
  #flushQueued = false;
  // switch → guest
  readonly #scratch: Uint8Array;
  readonly #views: (Uint8Array | undefined)[];
  #loop: Promise<void> | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #stop!: (v: boolean) => void;
  readonly #stopped = new Promise<boolean>((r) => { this.#stop = r; });
  /** Last error a flush met (the port removed under us ends the adapter). */
  lastError: unknown = null;

  constructor(emu: V86Emulator, bus: V86Bus, port: Port, ownsPort: boolean, nic: number, rxBatch: number) {
    this.#emu = emu as unknown as Listeners;
    this.#bus = bus;
    this.port = port;
    this.portName = port.name;
    this.#ownsPort = ownsPort;
    this.#sendEvent = `net${nic}-send`;
    this.#receiveEvent = `net${nic}-receive`;
    this.#macEvent = `net${nic}-mac`;
    this.local = `v86:net${nic}`;
    this.#rxBatch = rxBatch;
    this.#scratch = new Uint8Array(port.mtu);
    this.#views = new Array<Uint8Array | undefined>(port.mtu + 1).fill(undefined);
    this.#emu.add_listener(this.#sendEvent, this.#onSend as (v: never) => void);
    this.#emu.add_listener(this.#macEvent, this.#onMac as (v: never) => void);
    this.#loop = this.#rxLoop().catch((e: unknown) => {
      // The port went away between checks: the adapter ends, as when the loop sees it closed.
      this.lastError = e;
      if (!this.#closed) void this.detach();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  addTap(tap: FrameTap): () => void {
    this.#taps.push(tap);
    return () => {
      const i = this.#taps.indexOf(tap);
      if (i >= 0) this.#taps.splice(i, 1);
    };
  }

  readonly #onMac = (mac: string): void => {
    if (typeof mac === 'string') this.nicMac = mac;
  };

  /** A frame from the guest (runs inside the emulator's time slice: must never throw). */
  readonly #onSend = (frame: Uint8Array): void => {
    if (this.#closed) return;
    if (!(frame instanceof Uint8Array)) {
      this.drops.badHeader++;
      return;
    }
    const len = frame.length;
    if (len < MIN_FRAME) {
      this.drops.undersize++;
      return;
    }
    if (len > this.#scratch.length) {
      this.drops.oversize++;
      return;
    }
    let b = this.#tx;
    try {
      if (b === null || this.#txN === b.count) {
        this.#commit();
        b = this.port.txReserve(TX_BATCH);
        if (b.count === 0) {
          // txCommit forwards everything at once, so the TX ring is never full for long.
          this.port.flush();
          b = this.port.txReserve(TX_BATCH);
        }
        if (b.count === 0) {
          this.#tx = null;
          this.drops.backpressure++;
          return;
        }
        this.#tx = b;
      }
    } catch (e) {
      this.#lost(e);
      return;
    }
    const n = this.#txN++;
    b.buffer.set(frame, b.offset(n));
    b.setLength(n, len);
    const sm = this.#srcMac;
    for (let k = 0; k < 6; k++) sm[k] = frame[6 + k];
    this.#haveSrc = true;
    this.rxFrames++;
    this.rxBytes += len;
    const taps = this.#taps;
    for (let i = 0; i < taps.length; i++) taps[i](frame, 0, len, 'rx');
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushTask);
    }
  };

  readonly #flushTask = (): void => {
    this.#flushQueued = false;
    try {
      this.#commit();
    } catch (e) {
      this.#lost(e);
    }
  };

  /** Sends the frames written since the last commit. */
  #commit(): void {
    const n = this.#txN;
    this.#txN = 0;
    this.#tx = null;
    if (n > 0) this.port.txCommit(n);
  }

  /** The port went away (removed by its owner, or the switch closed): the adapter ends. */
  #lost(e: unknown): void {
    this.#tx = null;
    this.#txN = 0;
    this.lastError = e;
    if (!this.#closed) void this.detach();
  }

  async #rxLoop(): Promise<void> {
    const port = this.port;
    const bus = this.#bus;
    const ev = this.#receiveEvent;
    const scratch = this.#scratch;
    const views = this.#views;
    const max = this.#rxBatch;
    for (;;) {
      if (this.#closed) return;
      if (port.closed) break;
      if (port.pending === 0) {
        // detach() ends the wait at once (a port we do not own cannot be closed to wake us, and a
        // pending Atomics.waitAsync does not keep Node's event loop alive); the wait itself is
        // bounded so that an abandoned one ends soon.
        const ok = await Promise.race([port.waitAsync(250), this.#stopped]);
        if (this.#closed) return;
        if (!ok) {
          if (port.closed) break;
          continue;
        }
      }
      const b = port.receive(max);
      const buf = b.buffer;
      for (let i = 0; i < b.count; i++) {
        const len = b.length(i);
        if (len === 0) continue; // a slot emptied by a sender that died
        const off = b.offset(i);
        for (let k = 0; k < len; k++) scratch[k] = buf[off + k];
        let v = views[len];
        if (v === undefined) views[len] = v = scratch.subarray(0, len);
        try {
          bus.send(ev, v);
        } catch {
          this.drops.txError++;
          continue;
        }
        this.txFrames++;
        this.txBytes += len;
        const taps = this.#taps;
        for (let t = 0; t < taps.length; t++) taps[t](buf, off, len, 'tx');
      }
      port.release();
      // Let the emulator run (and its guest drain the NIC) between batches.
      await new Promise<void>((r) => yieldTurn(r));
    }
    if (!this.#closed) void this.detach();
  }

  stats(): V86AdapterStats {
    let sw: PortCounters | null = null;
    try {
      if (!this.port.closed) sw = this.port.stats();
    } catch {
      sw = null;
    }
    return {
      kind: 'v86',
      port: this.portName,
      rxFrames: this.rxFrames,
      rxBytes: this.rxBytes,
      txFrames: this.txFrames,
      txBytes: this.txBytes,
      drops: { ...this.drops },
      dropped: sumDrops(this.drops),
      switch: sw,
      local: this.local,
      mac: this.#haveSrc ? Array.from(this.#srcMac, (x) => x.toString(16).padStart(2, '0')).join(':') : null,
      nicMac: this.nicMac,
    };
  }

  detach(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#closed) {
        try {
          this.#commit();
        } catch {
          // the port is gone: nothing to send it to
        }
      }
      this.#closed = true;
      this.#stop(false);
      this.#emu.remove_listener(this.#sendEvent, this.#onSend as (v: never) => void);
      this.#emu.remove_listener(this.#macEvent, this.#onMac as (v: never) => void);
      try {
        if (this.#ownsPort) await this.port.close();
        else if (!this.port.closed) this.port.release();
      } catch {
        // already closed under us: nothing to give back
      }
      if (this.#loop) await this.#loop;
    })();
    return this.#closing;
  }

  close(): Promise<void> {
    return this.detach();
  }
}

function busOf(emulator: V86Emulator): V86Bus {
  const bus = (emulator as unknown as { bus?: V86Bus }).bus;
  if (!bus || typeof bus.send !== 'function' || typeof emulator.add_listener !== 'function') {
    throw new VswitchError(ERR.BAD_ARG, 'attachV86: expected a v86 emulator (new V86({...}) from the v86 package), with add_listener() and bus.send()');
  }
  return bus;
}

/**
 * Connects a running (or not yet started) v86 emulator's NIC to a port. Call it in the thread
 * where the emulator runs. Give a port name (opened exclusively on the switch `opts.switch`, and
 * closed again by detach) or a Port you opened yourself (open it with `{ exclusive: true }`; it
 * stays open after detach).
 *
 * ```ts
 * import { V86 } from 'v86';
 * import { attachV86 } from 'vswitch/v86';
 * const emu = new V86({ ...bios, kernel, initrd..., net_device: { type: 'ne2k' } });
 * const nic = await attachV86(emu, 'vale0:vm1');
 * // ... later
 * console.log(nic.stats());
 * await nic.detach();
 * ```
 */
export async function attachV86(emulator: V86Emulator, port: string | Port, opts: V86AttachOptions = {}): Promise<V86Attachment> {
  const bus = busOf(emulator);
  const nic = opts.nic ?? 0;
  if (!Number.isInteger(nic) || nic < 0 || nic > 15) throw new VswitchError(ERR.BAD_ARG, `attachV86: nic must be an integer 0..15, got ${String(opts.nic)}`);
  const rxBatch = opts.rxBatch ?? 8;
  if (!Number.isInteger(rxBatch) || rxBatch < 1 || rxBatch > 4096) {
    throw new VswitchError(ERR.BAD_ARG, `attachV86: rxBatch must be an integer 1..4096, got ${String(opts.rxBatch)}`);
  }
  if (typeof port === 'string') {
    const p = await openPort(port, {
      exclusive: true, holder: 'the v86 adapter', persistent: !!opts.persistent, ...(opts.switch ? { switch: opts.switch } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    });
    return new V86Adapter(emulator, bus, p, true, nic, rxBatch);
  }
  if (!port || typeof port !== 'object' || typeof (port as Port).txReserve !== 'function') {
    throw new VswitchError(ERR.BAD_ARG, `attachV86: port must be a port name like vale0:vm1 or a Port, got ${typeof port}`);
  }
  if (port.closed) throw new VswitchError(ERR.CLOSED, `port ${port.name} is closed`);
  return new V86Adapter(emulator, bus, port, false, nic, rxBatch);
}
