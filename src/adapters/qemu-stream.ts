/**
 * QEMU stream adapter: the switch listens on a unix or TCP socket, QEMU connects with
 * `-netdev stream,id=n0,server=off,addr.type=unix,addr.path=P` (or `addr.type=inet,...`, or the
 * older `-netdev socket,connect=H:P`), and the VM's NIC becomes the port. Frames are framed as in
 * stream-framing.ts. The same socket is vswitch's "socket port" for any program.
 *
 * One peer at a time: a new connection replaces the current one (a VM that restarts reconnects
 * before the old connection's end is noticed), and the port stays across reconnects. While no
 * peer is connected, frames for the port are dropped and counted (noPeer).
 *
 * QEMU 7.2 does not retry a stream connection that failed, so the adapter must listen before
 * QEMU starts: `attachQemuStream` resolves once the socket listens.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { lstat, unlink, chmod, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import type { Port } from '../core/port.js';
import { AdapterBase, adapterError, openAdapterPort, parseHostPort, formatHostPort, registerAdapter, type AdapterStats, type SwitchRef,
} from './common.js';
import { StreamDecoder } from './stream-framing.js';

export type StreamSpec = `unix:${string}` | `tcp:${string}`;

export interface ParsedStreamSpec {
  type: 'unix' | 'tcp';
  path?: string;
  host?: string;
  port?: number;
}

/** `unix:/path`, `tcp:127.0.0.1:5600`, `tcp:[::1]:5600`, or `tcp:5600` (= 127.0.0.1:5600, loopback by default). */
export function parseStreamSpec(spec: string): ParsedStreamSpec {
  if (typeof spec !== 'string') throw adapterError(`stream address must be "unix:/path" or "tcp:127.0.0.1:PORT", got ${typeof spec}`);
  if (spec.startsWith('unix:')) {
    const path = spec.slice(5);
    if (!path) throw adapterError('unix: needs a socket path, e.g. unix:/run/vswitch/vm1.sock');
    if (Buffer.byteLength(path) > 107) throw adapterError(`unix socket path is ${Buffer.byteLength(path)} bytes; the limit is 107: ${path}`);
    return { type: 'unix', path };
  }
  if (spec.startsWith('tcp:')) {
    const rest = spec.slice(4);
    if (/^\d{1,5}$/.test(rest)) {
      const hp = parseHostPort(`127.0.0.1:${rest}`, spec);
      return { type: 'tcp', host: hp.host, port: hp.port };
    }
    const hp = parseHostPort(rest, spec);
    return { type: 'tcp', host: hp.host, port: hp.port };
  }
  throw adapterError(`stream address must be "unix:/path" or "tcp:127.0.0.1:PORT", got ${JSON.stringify(spec)}`);
}

export interface QemuStreamOptions {
  /** Keep the port after the adapter closes (default false: the port goes with the adapter). */
  persistent?: boolean;
  /** Mode of a unix socket file (default 0o600: only this user; QEMU as another user needs e.g. 0o660). */
  mode?: number;
  /** Replace a stale unix socket file (nobody accepts on it). Default true. A live one is an error. */
  replaceStale?: boolean;
  /**
   * Most bytes (frames with their length prefixes) the adapter holds for a peer that reads
   * slowly, beyond what the kernel's socket buffer took. Frames that would go over it are dropped
   * and counted (backpressure); one frame is always accepted when nothing is queued. Default 4 MiB.
   */
  maxQueueBytes?: number;
}

export class QemuStreamAdapter extends AdapterBase {
  readonly kind = 'qemu-stream' as const;
  readonly spec: ParsedStreamSpec;
  #server: Server;
  #peer: Socket | null = null;
  #decoder: StreamDecoder;
  #local: string;
  #maxQueue: number;
  /** Most bytes ever held for a peer (txQueuedPeak). */
  #queuedPeak = 0;
  connections = 0;
  disconnects = 0;
  /** Connections refused because a peer was already connected. */
  refused = 0;

  /** @internal use attachQemuStream */
  constructor(sw: SwitchRef, port: Port, spec: ParsedStreamSpec, server: Server, local: string, opts: QemuStreamOptions) {
    super(sw, port);
    this.spec = spec;
    this.#server = server;
    this.#local = local;
    this.#maxQueue = opts.maxQueueBytes ?? 4 << 20;
    this.#decoder = new StreamDecoder({
      mtu: port.mtu,
      onFrame: (buf, off, len) => this.injector.put(buf, off, len),
      onDrop: (reason) => {
        this.drops[reason]++;
      },
    });
    server.on('connection', (s) => this.#accept(s));
    this.startRxLoop();
  }

  get local(): string {
    return this.#local;
  }

  /** True while a peer is connected. */
  get connected(): boolean {
    return this.#peer !== null;
  }

  #accept(s: Socket): void {
    if (this.closed) {
      s.destroy();
      return;
    }
    if (this.#peer !== null) {
      // One peer per port: a second client must not take the VM's traffic. A restarted QEMU
      // reconnects once the old connection has closed.
      this.refused++;
      s.on('error', () => {});
      s.destroy();
      this.emit('refused', s.remoteAddress ?? this.#local);
      return;
    }
    this.#peer = s;
    this.connections++;
    this.#decoder.reset();
    if (s.setNoDelay) s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => {
      if (this.#peer !== s) return;
      let ok: boolean;
      try {
        ok = this.#decoder.feed(chunk);
        this.injector.flush();
      } catch (e) {
        // The port was removed under us.
        if (this.port.closed) void this.close();
        else this.emit('warning', e);
        return;
      }
      if (!ok) {
        // Unrecoverable length prefix: drop the connection; QEMU (or the program) may reconnect.
        this.#dropPeer(s);
        s.destroy();
      }
    });
    s.on('error', () => {});
    s.on('close', () => this.#dropPeer(s));
    this.emit('connect', s.remoteAddress ?? this.#local);
  }

  #dropPeer(s: Socket): void {
    if (this.#peer !== s) return;
    this.#peer = null;
    this.#decoder.end();
    this.disconnects++;
    this.emit('disconnect');
  }

  protected deliver(buf: Uint8Array, b: { count: number; offset(i: number): number; length(i: number): number }): void {
    const s = this.#peer;
    if (s === null) {
      for (let i = 0; i < b.count; i++) if (b.length(i) > 0) this.drops.noPeer++;
      return;
    }
    // Take frames while what the peer has not read yet stays within maxQueueBytes; drop the rest
    // of the batch (the adapter keeps draining the port's RX ring, so the switch never blocks on a
    // slow peer and every frame is accounted here: written, or dropped by reason).
    const queued = s.writableLength;
    const room = this.#maxQueue - queued;
    let total = 0;
    let last = -1;
    for (let i = 0; i < b.count; i++) {
      const len = b.length(i);
      if (len === 0) continue;
      if (total + 4 + len > room && !(queued === 0 && total === 0)) break;
      total += 4 + len;
      last = i;
    }
    for (let i = last + 1; i < b.count; i++) if (b.length(i) > 0) this.drops.backpressure++;
    if (total === 0) return;
    const out = Buffer.allocUnsafe(total);
    let o = 0;
    for (let i = 0; i <= last; i++) {
      const len = b.length(i);
      if (len === 0) continue;
      const off = b.offset(i);
      out[o] = len >>> 24;
      out[o + 1] = (len >>> 16) & 0xff;
      out[o + 2] = (len >>> 8) & 0xff;
      out[o + 3] = len & 0xff;
      out.set(buf.subarray(off, off + len), o + 4);
      o += 4 + len;
      this.txFrames++;
      this.txBytes += len;
      if (this.taps.length) this.tapTx(buf, off, len);
    }
    s.write(out); // one write per batch
    const now = s.writableLength;
    if (now > this.#queuedPeak) this.#queuedPeak = now;
  }

  /** Bytes written to the peer that it has not read yet and the kernel's socket buffer did not take. */
  get queuedBytes(): number {
    const s = this.#peer;
    return s === null ? 0 : s.writableLength;
  }

  override stats(): AdapterStats {
    return {
      ...this.baseStats(), connections: this.connections, disconnects: this.disconnects, refused: this.refused, connected: this.connected,
      txQueuedBytes: this.queuedBytes, txQueuedPeak: this.#queuedPeak,
    };
  }

  protected async shutdown(): Promise<void> {
    const s = this.#peer;
    if (s) {
      this.#dropPeer(s);
      s.destroy();
    }
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    await closed;
    if (this.spec.type === 'unix' && this.spec.path) await unlink(this.spec.path).catch(() => {});
  }
}

/**
 * Listens on the unix socket `path` so that it never exists with a looser mode than `mode`: the
 * socket is bound inside a fresh directory of mode 0700 next to `path`, given its mode, then
 * renamed into place (where that temporary path would be over the 107-byte limit, the process
 * umask is narrowed around bind instead; that works on the main thread only).
 */
async function listenPrivately(server: Server, path: string, mode: number): Promise<void> {
  const dir = dirname(path);
  if (Buffer.byteLength(dir) + 14 <= 107) {
    const tmp = await mkdtemp(join(dir, '.vs-'));
    try {
      const p = join(tmp, 's');
      server.listen({ path: p, exclusive: true });
      await once(server, 'listening');
      await chmod(p, mode);
      await rename(p, path);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    return;
  }
  let old: number | undefined;
  try { old = process.umask(0o777 & ~mode); } catch { /* not allowed in Workers */ }
  try {
    server.listen({ path, exclusive: true });
  } finally {
    if (old !== undefined) process.umask(old);
  }
  await once(server, 'listening');
  await chmod(path, mode);
}

/** Whether something accepts connections on the unix socket at `path`. */
async function unixSocketLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ path });
    const t = setTimeout(() => { c.destroy(); resolve(true); }, 1000);
    c.once('connect', () => { clearTimeout(t); c.destroy(); resolve(true); });
    c.once('error', () => { clearTimeout(t); resolve(false); });
  });
}

/**
 * Attaches a QEMU stream socket as port `portName` (created if needed, opened exclusively).
 * Resolves once the socket listens, so QEMU can be started right after.
 *
 * ```ts
 * const vm1 = await attachQemuStream(sw, 'vale0:vm1', 'unix:/run/vswitch/vm1.sock');
 * // qemu-system-x86_64 ... -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/run/vswitch/vm1.sock
 * //                        -device virtio-net-pci,netdev=n0
 * ```
 */
export async function attachQemuStream(sw: SwitchRef, portName: string, spec: StreamSpec | string, opts: QemuStreamOptions = {}): Promise<QemuStreamAdapter> {
  const parsed = parseStreamSpec(spec);
  const mq = opts.maxQueueBytes;
  if (mq !== undefined && !(Number.isInteger(mq) && mq >= 0)) throw adapterError(`maxQueueBytes must be a non-negative integer, got ${String(mq)}`);
  if (parsed.type === 'unix') {
    const path = parsed.path!;
    const st = await lstat(path).catch(() => null);
    if (st) {
      if (!st.isSocket()) throw adapterError(`${path} exists and is not a socket: remove it or choose another path`);
      if (await unixSocketLive(path)) throw adapterError(`${path}: another program accepts connections on this socket (another switch?)`);
      if (opts.replaceStale === false) throw adapterError(`${path}: a stale socket file exists (replaceStale is false)`);
      await unlink(path);
    }
  }
  const port = await openAdapterPort(sw, portName, opts.persistent, 'qemu-stream');
  const server = createServer({ noDelay: true } as Parameters<typeof createServer>[0]);
  try {
    if (parsed.type === 'unix') await listenPrivately(server, parsed.path!, opts.mode ?? 0o600);
    else {
      server.listen({ host: parsed.host, port: parsed.port, exclusive: true });
      await once(server, 'listening');
    }
  } catch (e) {
    server.close();
    await port.close();
    throw e;
  }
  let local: string;
  if (parsed.type === 'unix') local = `unix:${parsed.path}`;
  else {
    const a = server.address();
    const p = a && typeof a === 'object' ? a.port : parsed.port!;
    local = `tcp:${formatHostPort({ host: parsed.host!, port: p })}`;
  }
  const a = new QemuStreamAdapter(sw, port, parsed, server, local, opts);
  registerAdapter(sw, a);
  return a;
}
