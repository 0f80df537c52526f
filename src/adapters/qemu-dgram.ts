/**
 * QEMU dgram adapter: one raw Ethernet frame (no FCS) per UDP datagram, as QEMU's
 * `-netdev dgram,id=n0,local.type=inet,local.host=H,local.port=A,remote.type=inet,remote.host=H,remote.port=B`
 * sends and expects. The adapter binds `local` (QEMU's remote) and sends to `remote` (QEMU's
 * local). Datagrams from any other address:port are dropped and counted (unknownSource): QEMU
 * sends from its bound local port, so the source is exact.
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import type { Port } from '../core/port.js';
import {
  AdapterBase, MIN_FRAME, adapterError, formatHostPort, openAdapterPort, parseHostPort, registerAdapter, type HostPort, type SwitchRef,
} from './common.js';
import { SocketDrops, type SocketDropsSource } from './kernel-drops.js';

export interface QemuDgramOptions {
  /** Address this adapter binds, e.g. 127.0.0.1:5601 (QEMU's remote.*). Port 0 picks a free one (see `adapter.local`). */
  local: string;
  /** Where QEMU listens, e.g. 127.0.0.1:5602 (QEMU's local.*). */
  remote: string;
  /** Accept datagrams from any source, not only from `remote`. Default false. */
  anySource?: boolean;
  persistent?: boolean;
  /** Datagrams queued in the socket before further frames for the peer are dropped (backpressure). Default 4096. */
  maxQueue?: number;
  /** Socket receive buffer in bytes (default 4 MiB; the kernel caps it at net.core.rmem_max). */
  recvBufferSize?: number;
}

export class QemuDgramAdapter extends AdapterBase {
  /** 'tap' when a TAP adapter (tap.ts) drives this socket. */
  kind: 'qemu-dgram' | 'tap' = 'qemu-dgram';
  readonly remote: HostPort;
  #sock: Socket;
  #local: string;
  #anySource: boolean;
  #maxQueue: number;
  readonly #onSent: (err: Error | null) => void;
  readonly #kernelDrops: SocketDrops;

  /** @internal use attachQemuDgram */
  constructor(sw: SwitchRef, port: Port, sock: Socket, remote: HostPort, opts: QemuDgramOptions) {
    super(sw, port);
    this.#sock = sock;
    this.remote = remote;
    const a = sock.address();
    this.#local = formatHostPort({ host: a.address, port: a.port });
    this.#anySource = !!opts.anySource;
    this.#maxQueue = opts.maxQueue ?? 4096;
    this.#kernelDrops = new SocketDrops(sock);
    this.#onSent = (err) => {
      if (err) {
        this.drops.txError++;
        this.txFrames--;
      }
    };
    sock.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    sock.on('error', (e) => this.emit('warning', e));
    this.startRxLoop();
  }

  get local(): string {
    return this.#local;
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    if (!this.#anySource && (rinfo.port !== this.remote.port || rinfo.address !== this.remote.host)) {
      this.drops.unknownSource++;
      return;
    }
    const len = msg.length;
    if (len < MIN_FRAME) {
      this.drops.undersize++;
      return;
    }
    if (len > this.port.mtu) {
      this.drops.oversize++;
      return;
    }
    try {
      this.injector.put(msg, 0, len);
      this.injector.flushSoon(); // one txCommit per burst of datagrams
    } catch (e) {
      if (this.port.closed) void this.close();
      else this.emit('warning', e);
    }
  }

  protected deliver(buf: Uint8Array, b: { count: number; offset(i: number): number; length(i: number): number }): void {
    const sock = this.#sock;
    const r = this.remote;
    for (let i = 0; i < b.count; i++) {
      const len = b.length(i);
      if (len === 0) continue;
      if (sock.getSendQueueCount() > this.#maxQueue) {
        this.drops.backpressure++;
        continue;
      }
      const off = b.offset(i);
      const out = Buffer.allocUnsafe(len);
      out.set(buf.subarray(off, off + len));
      this.txFrames++;
      this.txBytes += len;
      if (this.taps.length) this.tapTx(buf, off, len);
      sock.send(out, r.port, r.host, this.#onSent);
    }
  }

  /** Runs after the socket closes (the TAP adapter stops its helper process here). */
  onShutdown?: () => Promise<void>;

  protected override kernelQueueDrops(): number {
    return this.#kernelDrops.read();
  }

  override kernelDropSource(): SocketDropsSource {
    return this.#kernelDrops.source();
  }

  protected async shutdown(): Promise<void> {
    this.#kernelDrops.read(); // the last count, kept once the socket is gone
    await new Promise<void>((resolve) => {
      try {
        this.#sock.close(() => resolve());
      } catch {
        resolve();
      }
    });
    if (this.onShutdown) await this.onShutdown();
  }
}

/**
 * Attaches a QEMU dgram peer as port `portName`.
 *
 * ```ts
 * await attachQemuDgram(sw, 'vale0:vm2', { local: '127.0.0.1:5601', remote: '127.0.0.1:5602' });
 * // qemu ... -netdev dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=5602,
 * //              remote.type=inet,remote.host=127.0.0.1,remote.port=5601
 * ```
 */
export async function attachQemuDgram(sw: SwitchRef, portName: string, opts: QemuDgramOptions, /** @internal */ kind: 'qemu-dgram' | 'tap' = 'qemu-dgram'): Promise<QemuDgramAdapter> {
  if (!opts || typeof opts !== 'object') throw adapterError('attachQemuDgram needs { local: "ip:port", remote: "ip:port" }');
  const local = parseHostPort(opts.local, 'dgram local');
  const remote = parseHostPort(opts.remote, 'dgram remote');
  if (remote.port === 0) throw adapterError('dgram remote: port 0 is not a destination');
  if (local.family !== remote.family) throw adapterError(`dgram local ${opts.local} and remote ${opts.remote} are not of the same IP family`);
  const port = await openAdapterPort(sw, portName, opts.persistent, kind);
  const sock = createSocket({ type: local.family === 6 ? 'udp6' : 'udp4' });
  try {
    sock.bind(local.port, local.host);
    await once(sock, 'listening'); // rejects on 'error' (EADDRINUSE…)
    try {
      // A burst of full-size frames overflows the default ~208 KiB and the kernel drops silently.
      sock.setRecvBufferSize(opts.recvBufferSize ?? 4 << 20);
    } catch {
      // keep the default size
    }
  } catch (e) {
    sock.close();
    await port.close();
    throw e;
  }
  const a = new QemuDgramAdapter(sw, port, sock, remote, opts);
  registerAdapter(sw, a);
  return a;
}
