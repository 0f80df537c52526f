/**
 * What every adapter shares: the stats record, address parsing, the injector that moves frames
 * from the outside peer into the port's TX ring, the loop that drains the port's RX ring towards
 * the peer, frame taps (for capture), and the per-switch registry of adapters.
 *
 * Direction names, used in every counter of this folder, are from the adapter's side of the
 * outside link, like a NIC's: **rx** = received from the outside peer (and sent into the switch),
 * **tx** = transmitted to the outside peer (taken from the switch).
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { PortCounters } from '#bridge';
import { VswitchError, ERR } from '../core/errors.js';
import type { Port, TxBatch } from '../core/port.js';
import type { Switch } from '../core/switch.js';
import { openPort } from '../core/open.js';
import type { SocketDropsSource } from './kernel-drops.js';

/**
 * Where an adapter opens its port: a Switch of this thread, or (from a Worker) the name of a
 * switch, reached by name like openPort. Adapters attached by name are not in this thread's
 * registry (adapterFor/listAdapters): the thread that started the Worker registers its handle.
 */
export type SwitchRef = Switch | string;

/** Smallest Ethernet frame an adapter accepts (the Ethernet header). */
export const MIN_FRAME = 14;

/** Why an adapter dropped something it read from outside or could not deliver to it. */
export const DROP_REASONS = [
  /** Input cut short: a stream that ended inside a length prefix or a frame; a VXLAN datagram shorter than its 8-byte header. */
  'truncated',
  /** A frame longer than the port's MTU (buffer size). */
  'oversize',
  /** A frame shorter than 14 bytes (an Ethernet header), zero-length included. */
  'undersize',
  /** A header that is not valid: VXLAN without the I flag. */
  'badHeader',
  /** A VXLAN datagram for a VNI no adapter on that UDP endpoint serves. */
  'wrongVni',
  /** A datagram from an address that is not a configured remote. */
  'unknownSource',
  /** A stream length prefix too large to be a frame of any size QEMU sends: the framing is lost, the connection is dropped. */
  'desync',
  /** Frames from the switch while no peer is connected (stream adapters). */
  'noPeer',
  /** The operating system refused to send (e.g. EMSGSIZE, unreachable). */
  'txError',
  /** The peer reads too slowly: its socket's send queue is over the limit (datagrams queued, or a stream's maxQueueBytes). */
  'backpressure',
  /**
   * Datagrams the kernel discarded because the adapter's UDP socket receive queue was full (the
   * adapter read more slowly than the peer sent). Read from /proc/net/udp{,6} on Linux.
   */
  'kernelQueue',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
export type DropCounters = Record<DropReason, number>;

export type AdapterKind = 'qemu-stream' | 'qemu-dgram' | 'vxlan' | 'tap' | 'v86';

export interface AdapterStats {
  kind: AdapterKind;
  /** Port name, e.g. vale0:vm1. */
  port: string;
  /** Frames and bytes received from the outside peer and sent into the switch. */
  rxFrames: number;
  rxBytes: number;
  /** Frames and bytes transmitted to the outside peer (per remote for VXLAN replication: a frame sent to 3 remotes counts 3). */
  txFrames: number;
  txBytes: number;
  /** Everything dropped, by reason. Frames the switch itself dropped are in `switch` (the port's counters). */
  drops: DropCounters;
  /** Sum of `drops`. */
  dropped: number;
  /** The port's counters in the bridge (dropNoDest, rxDropRingFull…), or null once the port is gone. */
  switch: PortCounters | null;
  /** Stream adapters: connections accepted, connections ended, and whether a peer is connected now. */
  connections?: number;
  disconnects?: number;
  /** Stream adapters: connections refused because a peer was already connected. */
  refused?: number;
  connected?: boolean;
  /**
   * Stream adapters: bytes (frames and length prefixes) written for the peer that it has not read
   * yet, beyond the kernel's socket buffer, now and at most so far. Frames that would take it over
   * maxQueueBytes are dropped (drops.backpressure).
   */
  txQueuedBytes?: number;
  txQueuedPeak?: number;
  /** Where the adapter listens or is bound, e.g. `unix:/run/vm1.sock`, `tcp:127.0.0.1:5600`, `127.0.0.1:4789`. */
  local: string;
  /** VXLAN: per remote counters; MAC addresses learned behind remotes. */
  remotes?: { remote: string; rxFrames: number; txFrames: number; learned: number }[];
  vni?: number;
  /** threadId of the Worker that runs the adapter (attachInWorker); absent for an adapter on the calling thread. */
  thread?: number;
}

export function zeroDrops(): DropCounters {
  const d = {} as DropCounters;
  for (const r of DROP_REASONS) d[r] = 0;
  return d;
}

export function sumDrops(d: DropCounters): number {
  let s = 0;
  for (const r of DROP_REASONS) s += d[r];
  return s;
}

/** Direction of a tapped frame: 'rx' from the outside peer into the switch, 'tx' from the switch to the peer. */
export type TapDirection = 'rx' | 'tx';
/** Sees every frame an adapter moves, in both directions. `buf[off, off + len)` is valid only during the call. */
export type FrameTap = (buf: Uint8Array, off: number, len: number, dir: TapDirection) => void;

/** What every attach* function returns. */
export interface Adapter extends EventEmitter {
  readonly kind: AdapterKind;
  /** The port this adapter feeds, e.g. vale0:vm1. */
  readonly portName: string;
  /** The Port handle the adapter holds (opened exclusively for it); null for an adapter running in its own Worker (attachInWorker), whose thread holds the port. */
  readonly port: Port | null;
  /** Where the adapter listens (see AdapterStats.local). */
  readonly local: string;
  readonly closed: boolean;
  stats(): AdapterStats;
  /**
   * Adds a tap that sees every frame moved in both directions (capture uses it when the bridge
   * has no mirror ports). Returns a function that removes it.
   */
  addTap(tap: FrameTap): () => void;
  /** Stops the adapter: closes sockets (and removes a unix socket file it created) and closes the port. */
  close(): Promise<void>;
}

export function adapterError(message: string): VswitchError {
  return new VswitchError(ERR.BAD_ARG, message);
}

// ---- addresses ---------------------------------------------------------------------------------

export interface HostPort {
  host: string;
  port: number;
  family: 4 | 6;
}

/** `1.2.3.4:5`, `[::1]:5`. Hosts must be IP literals (no name lookups on the data path). */
export function parseHostPort(s: string, what: string): HostPort {
  if (typeof s !== 'string') throw adapterError(`${what}: expected "ip:port", got ${typeof s}`);
  let host: string;
  let portStr: string;
  const m6 = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (m6) {
    host = m6[1];
    portStr = m6[2];
  } else {
    const i = s.lastIndexOf(':');
    if (i <= 0) throw adapterError(`${what}: expected "ip:port" (e.g. 127.0.0.1:4789 or [::1]:4789), got ${JSON.stringify(s)}`);
    host = s.slice(0, i);
    portStr = s.slice(i + 1);
  }
  const fam = isIP(host);
  if (fam !== 4 && fam !== 6) throw adapterError(`${what}: ${JSON.stringify(host)} is not an IPv4 or IPv6 address (host names are not accepted)`);
  const port = /^\d{1,5}$/.test(portStr) ? Number(portStr) : NaN;
  if (!(port >= 0 && port <= 65535)) throw adapterError(`${what}: port must be 0..65535, got ${JSON.stringify(portStr)}`);
  return { host, port, family: fam };
}

export function formatHostPort(h: { host: string; port: number; family?: number }): string {
  return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}

// ---- peer → switch ------------------------------------------------------------------------------

/**
 * Moves frames read from outside into the port's TX ring, writing straight into TX buffers
 * (txReserve/txCommit) and sending in batches: call `put` per frame, `flush` at the end of each
 * chunk/datagram burst. Lengths must already be validated (MIN_FRAME ≤ len ≤ port.mtu).
 */
export class Injector {
  readonly #port: Port;
  readonly #maxBatch: number;
  #batch: TxBatch | null = null;
  #n = 0;
  /** Frames and bytes put. */
  frames = 0;
  bytes = 0;
  taps: FrameTap[] = [];
  /** Called when a deferred flush (flushSoon) fails, e.g. because the port was removed. */
  onError: (e: unknown) => void = () => {};
  #soon = false;
  readonly #flushSoonCb = (): void => {
    this.#soon = false;
    try {
      this.flush();
    } catch (e) {
      this.onError(e);
    }
  };

  constructor(port: Port, maxBatch = 256) {
    this.#port = port;
    this.#maxBatch = maxBatch;
  }

  /**
   * Sends what was put once the event loop has run every callback that is ready: Node emits one
   * 'message' per UDP datagram, but reads every datagram ready on the socket in one turn of the
   * loop, so the datagrams of one burst go to the switch in one txCommit (a full batch is sent
   * at once by put).
   */
  flushSoon(): void {
    if (this.#soon || this.#n === 0) return;
    this.#soon = true;
    setImmediate(this.#flushSoonCb);
  }

  put(src: Uint8Array, off: number, len: number): void {
    let b = this.#batch;
    if (b === null || this.#n === b.count) {
      this.flush();
      b = this.#port.txReserve(this.#maxBatch);
      this.#batch = b;
      // The TX ring is drained by every txCommit, so it is never full for long; be safe anyway.
      if (b.count === 0) {
        this.#port.flush();
        b = this.#port.txReserve(this.#maxBatch);
        if (b.count === 0) throw new VswitchError('ERR_TX_FULL', `port ${this.#port.name}: TX ring stays full`);
      }
    }
    const n = this.#n++;
    b.buffer.set(off === 0 && len === src.length ? src : src.subarray(off, off + len), b.offset(n));
    b.setLength(n, len);
    this.frames++;
    this.bytes += len;
    const taps = this.taps;
    for (let i = 0; i < taps.length; i++) taps[i](src, off, len, 'rx');
  }

  /** Sends what was put since the last flush. */
  flush(): void {
    if (this.#n > 0) {
      const n = this.#n;
      this.#n = 0;
      this.#batch = null;
      this.#port.txCommit(n);
    } else {
      this.#batch = null;
    }
  }
}

// ---- base class ----------------------------------------------------------------------------------

/** Shared plumbing: the port, counters, taps, the RX drain loop, and close. */
export abstract class AdapterBase extends EventEmitter implements Adapter {
  abstract readonly kind: AdapterKind;
  readonly port: Port;
  readonly portName: string;
  readonly drops: DropCounters = zeroDrops();
  readonly injector: Injector;
  txFrames = 0;
  txBytes = 0;
  protected readonly taps: FrameTap[] = [];
  protected readonly sw: SwitchRef;
  #closed = false;
  #closing: Promise<void> | null = null;
  #loop: Promise<void> | null = null;
  /** Largest RX batch handed to deliver(). */
  protected rxBatchMax = 256;

  constructor(sw: SwitchRef, port: Port) {
    super();
    this.sw = sw;
    this.port = port;
    this.portName = port.name;
    this.injector = new Injector(port);
    this.injector.taps = this.taps;
    this.injector.onError = (e) => {
      if (this.port.closed) void this.close();
      else if (!this.#closed) this.emit('warning', e);
    };
  }

  abstract get local(): string;

  get closed(): boolean {
    return this.#closed;
  }

  addTap(tap: FrameTap): () => void {
    this.taps.push(tap);
    return () => {
      const i = this.taps.indexOf(tap);
      if (i >= 0) this.taps.splice(i, 1);
    };
  }

  /** Datagrams the kernel dropped from this adapter's socket receive queue (0 where not a UDP adapter). */
  protected kernelQueueDrops(): number {
    return 0;
  }

  /** @internal Where the kernel counts this adapter's socket's queue drops (UDP adapters), for a Worker's handle. */
  kernelDropSource(): SocketDropsSource | null {
    return null;
  }

  /** @internal False: stats() leaves kernelQueue at 0 (an adapter Worker's handle reads it itself). */
  countKernelDrops = true;

  protected baseStats(): AdapterStats {
    const drops = { ...this.drops };
    if (this.countKernelDrops) drops.kernelQueue += this.kernelQueueDrops();
    let sw: PortCounters | null = null;
    try {
      if (!this.port.closed) sw = this.port.stats();
    } catch {
      sw = null;
    }
    return {
      kind: this.kind,
      port: this.portName,
      rxFrames: this.injector.frames,
      rxBytes: this.injector.bytes,
      txFrames: this.txFrames,
      txBytes: this.txBytes,
      drops,
      dropped: sumDrops(drops),
      switch: sw,
      local: this.local,
    };
  }

  stats(): AdapterStats {
    return this.baseStats();
  }

  /** Runs the switch → peer loop until the adapter or the port closes. */
  protected startRxLoop(): void {
    this.#loop = this.#rxLoop().catch((e: unknown) => {
      if (!this.#closed) this.emit('warning', e);
    });
  }

  async #rxLoop(): Promise<void> {
    const port = this.port;
    for (;;) {
      if (this.#closed) return;
      if (port.closed) break;
      if (port.pending === 0) {
        const ok = await port.waitAsync();
        if (!ok) {
          if (port.closed || this.#closed) break;
          continue;
        }
        if (this.#closed) return;
      }
      const b = port.receive(this.rxBatchMax);
      if (b.count > 0) {
        try {
          this.deliver(b.buffer, b);
        } finally {
          port.release();
        }
      }
      // Let socket I/O run between batches even when frames keep coming.
      await new Promise<void>((r) => setImmediate(r));
    }
    // The port went away under us (removed by its owner): the adapter has nothing left to do.
    if (!this.#closed) void this.close();
  }

  /**
   * Sends frames of an RX batch to the peer. `batch.offset(i)`, `batch.length(i)` index `buf`;
   * the bytes are valid only during the call (copy what must outlive it). Length 0 means a slot
   * emptied by a sender that died: skip it.
   */
  protected abstract deliver(buf: Uint8Array, batch: { count: number; offset(i: number): number; length(i: number): number }): void;

  /** Subclasses close their sockets here. */
  protected abstract shutdown(): Promise<void>;

  protected tapTx(buf: Uint8Array, off: number, len: number): void {
    const taps = this.taps;
    for (let i = 0; i < taps.length; i++) taps[i](buf, off, len, 'tx');
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      unregisterAdapter(this.sw, this);
      try {
        this.injector.flush(); // frames read but not yet sent (flushSoon pending)
      } catch {
        // the port is gone
      }
      try {
        await this.shutdown();
      } finally {
        await this.port.close();
        if (this.#loop) await this.#loop;
        this.emit('close');
      }
    })();
    return this.#closing;
  }
}

// ---- registry --------------------------------------------------------------------------------------

const registry = new WeakMap<Switch, Map<string, Adapter>>();

export function registerAdapter(sw: SwitchRef, a: Adapter): void {
  if (typeof sw === 'string') return;
  let m = registry.get(sw);
  if (!m) registry.set(sw, (m = new Map()));
  m.set(a.portName, a);
}

export function unregisterAdapter(sw: SwitchRef, a: Adapter): void {
  if (typeof sw === 'string') return;
  const m = registry.get(sw);
  if (m && m.get(a.portName) === a) m.delete(a.portName);
}

/** The adapter that feeds `portName` on `sw` in this process, if any. */
export function adapterFor(sw: Switch, portName: string): Adapter | undefined {
  return registry.get(sw)?.get(portName);
}

/** All adapters of `sw` in this process. */
export function listAdapters(sw: Switch): Adapter[] {
  return [...(registry.get(sw)?.values() ?? [])];
}

/**
 * Opens the port for an adapter. Always exclusively (two readers of one RX ring would split its
 * frames); a second opener is told that `the KIND adapter` holds it.
 */
export async function openAdapterPort(sw: SwitchRef, portName: string, persistent: boolean | undefined, kind: string): Promise<Port> {
  if (typeof portName !== 'string') throw adapterError(`port name must be a string like vale0:vm1, got ${typeof portName}`);
  if (typeof sw === 'string') return openPort(portName, { switch: sw, persistent: !!persistent, holder: `the ${kind} adapter` });
  return sw.open(portName, { persistent: !!persistent, holder: `the ${kind} adapter` });
}
