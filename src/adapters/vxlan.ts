/**
 * VXLAN adapter (RFC 7348): the port is an uplink to VXLAN tunnel endpoints — Linux kernel vxlan
 * devices (`ip link add vx0 type vxlan id 42 local A remote B dstport 4789`), Open vSwitch, or
 * vswitch on other hosts — so one bridge spans several hosts.
 *
 * Outer packet: UDP (to the remote's configured port, 4789 by IANA), then the 8-byte header,
 * then the inner Ethernet frame (no FCS):
 *
 * | byte | field                                                                    |
 * |------|--------------------------------------------------------------------------|
 * | 0    | flags: 0x08 = I (VNI valid) must be set; the other 7 bits are reserved    |
 * |      | (sent as 0, ignored on receipt as the RFC says)                           |
 * | 1-3  | reserved (sent as 0, ignored)                                             |
 * | 4-6  | VNI, 24 bits big-endian                                                   |
 * | 7    | reserved (sent as 0, ignored)                                             |
 *
 * Several remotes per VNI, as Linux vxlan (`bridge fdb append 00:00:00:00:00:00 dst …`) and OVS
 * do: flooded frames (broadcast, multicast, unknown unicast) are replicated to every remote
 * (head-end replication); the adapter learns behind which remote each inner source MAC lives, so
 * known unicast goes to that remote only. Frames received from one remote are never sent to
 * another (the bridge does not send a frame back out of the port it came in on): remotes are
 * expected to form a full mesh, as with Linux vxlan.
 *
 * A remote is identified by its IP address alone: the Linux kernel sends from a different UDP
 * source port per inner flow but listens only on its dstport, so the adapter always sends to the
 * configured address:port and never replies to a datagram's source port.
 *
 * Remotes of one port form one segment (a full mesh, as the hosts of one Linux vxlan device): the
 * bridge never sends a frame back out of the port it came in on, so two remotes of the same port
 * reach each other directly, not through this switch. To switch between hosts (a hub-and-spoke
 * overlay, or hosts that are not meshed), give each remote its own port.
 *
 * Adapters may share one local address:port (one UDP socket), like several kernel vxlan devices
 * on dstport 4789: a datagram goes to the adapter of its VNI that lists its source address as a
 * remote (so a remote address may appear in only one adapter per VNI and endpoint). Header-level
 * drops of a shared endpoint (truncated, badHeader, wrongVni, unknownSource) cannot be
 * attributed to one adapter and are reported by every adapter on that endpoint; so are the
 * datagrams the kernel dropped from the shared socket's receive queue (kernelQueue).
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import type { Port } from '../core/port.js';
import {
  AdapterBase, MIN_FRAME, adapterError, formatHostPort, openAdapterPort, parseHostPort, registerAdapter,
  type AdapterStats, type HostPort, type SwitchRef,
} from './common.js';
import { SocketDrops, type SocketDropsSource } from './kernel-drops.js';

export const VXLAN_PORT = 4789;
export const VXLAN_HEADER_LEN = 8;
export const VXLAN_FLAG_I = 0x08;
/** Outer IPv4 + UDP + VXLAN + inner Ethernet header: what VXLAN adds to an inner IP packet (50 bytes). */
export const VXLAN_OVERHEAD_V4 = 20 + 8 + 8 + 14;

export interface VxlanOptions {
  /** Local address:port to bind, e.g. 10.99.0.1:4789 (0.0.0.0:4789 for all addresses). */
  local: string;
  /** Remote tunnel endpoints, `ip:port` each (port usually 4789). At least one. */
  remotes: string[];
  /** VXLAN Network Identifier, 0..16777215. */
  vni: number;
  /** Seconds a learned MAC → remote entry lives without traffic (default 300, as Linux). */
  ageing?: number;
  /** Most MAC addresses learned (default 8192); when full, the oldest entry is forgotten. */
  maxMacs?: number;
  persistent?: boolean;
  /** Socket receive buffer in bytes (default 4 MiB; the kernel caps it at net.core.rmem_max). */
  recvBufferSize?: number;
  /** Datagrams queued in the socket before further frames are dropped (backpressure). Default 4096. */
  maxQueue?: number;
  /**
   * UDP source ports per remote (RFC 7348 §5): frames are sent from one of this many sockets
   * bound to ports in 49152–65535 and connected to the remote, chosen by a hash of the inner flow.
   * Default 8; 0 sends everything from the local address:port (the receiving socket).
   */
  sourcePorts?: number;
  /** Send buffer of each sending socket in bytes (default 1 MiB; the kernel caps it at net.core.wmem_max). */
  sendBufferSize?: number;
}

/** Builds the 8-byte VXLAN header for `vni` (I flag set, reserved fields zero). */
export function vxlanHeader(vni: number): Buffer {
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) throw adapterError(`VNI must be an integer 0..16777215, got ${String(vni)}`);
  const h = Buffer.alloc(VXLAN_HEADER_LEN);
  h[0] = VXLAN_FLAG_I;
  h[4] = vni >>> 16;
  h[5] = (vni >>> 8) & 0xff;
  h[6] = vni & 0xff;
  return h;
}

/** Encapsulates one frame: header + frame in a new Buffer. */
export function vxlanEncap(vni: number, frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(VXLAN_HEADER_LEN + frame.length);
  vxlanHeader(vni).copy(out, 0);
  out.set(frame, VXLAN_HEADER_LEN);
  return out;
}

interface Remote extends HostPort {
  name: string;
  rxFrames: number;
  txFrames: number;
  /** Sockets connected to this remote, one per UDP source port (picked by flow hash). */
  socks: Socket[];
}

/** RFC 7348 §5: the outer UDP source port comes from a hash of the inner frame, in 49152–65535. */
export const VXLAN_SRC_PORT_MIN = 49152;
export const VXLAN_SRC_PORT_MAX = 65535;

/**
 * A hash of the inner frame's flow: MAC addresses and EtherType, and for IPv4/IPv6 the addresses,
 * the protocol and (TCP/UDP/SCTP, first fragment) the ports. Frames of one flow get one outer
 * source port, so the receiving host spreads flows over its CPUs without reordering any.
 */
export function flowHash(b: Uint8Array, off: number, len: number): number {
  let h = mixBytes(0x811c9dc5, b, off, off + 14);
  let et = (b[off + 12] << 8) | b[off + 13];
  let l3 = off + 14;
  if (et === 0x8100 && len >= 18) {
    et = (b[off + 16] << 8) | b[off + 17];
    l3 = off + 18;
  }
  const end = off + len;
  if (et === 0x0800 && l3 + 20 <= end) {
    const ihl = (b[l3] & 0x0f) * 4;
    const proto = b[l3 + 9];
    h = mixBytes(h, b, l3 + 9, l3 + 10);
    h = mixBytes(h, b, l3 + 12, l3 + 20);
    const firstFrag = ((b[l3 + 6] & 0x1f) | b[l3 + 7]) === 0;
    if (firstFrag && (proto === 6 || proto === 17 || proto === 132) && l3 + ihl + 4 <= end) h = mixBytes(h, b, l3 + ihl, l3 + ihl + 4);
  } else if (et === 0x86dd && l3 + 40 <= end) {
    const proto = b[l3 + 6];
    h = mixBytes(h, b, l3 + 6, l3 + 7);
    h = mixBytes(h, b, l3 + 8, l3 + 40);
    if ((proto === 6 || proto === 17 || proto === 132) && l3 + 44 <= end) h = mixBytes(h, b, l3 + 40, l3 + 44);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** FNV-1a over b[from, to), continuing from h. */
function mixBytes(h: number, b: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h;
}

/** Binds a UDP socket to a free port in 49152–65535 on `host` and connects it to `r`. */
async function flowSocket(host: string, family: 4 | 6, r: HostPort): Promise<Socket> {
  const span = VXLAN_SRC_PORT_MAX - VXLAN_SRC_PORT_MIN + 1;
  let lastErr: unknown;
  for (let attempt = 0; attempt < 64; attempt++) {
    const sock = createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    try {
      sock.bind(VXLAN_SRC_PORT_MIN + Math.floor(Math.random() * span), host);
      await once(sock, 'listening');
      sock.connect(r.port, r.host);
      await once(sock, 'connect');
      return sock;
    } catch (e) {
      lastErr = e;
      sock.close();
      if ((e as { code?: string }).code !== 'EADDRINUSE') break;
    }
  }
  throw lastErr;
}

interface MacEntry {
  remote: number;
  seen: number;
}

/**
 * One UDP socket shared by the VXLAN adapters bound to the same local address:port. A datagram
 * goes to the adapter of its VNI that lists its source address as a remote.
 */
class Endpoint {
  readonly key: string;
  readonly sock: Socket;
  readonly byVni = new Map<number, VxlanAdapter[]>();
  truncated = 0;
  badHeader = 0;
  wrongVni = 0;
  unknownSource = 0;
  /** Datagrams the kernel dropped from this socket's receive queue. */
  readonly kernelDrops: SocketDrops;

  constructor(key: string, sock: Socket) {
    this.key = key;
    this.sock = sock;
    this.kernelDrops = new SocketDrops(sock);
    sock.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    sock.on('error', (e) => {
      for (const l of this.byVni.values()) for (const a of l) a.emit('warning', e);
    });
  }

  get empty(): boolean {
    return this.byVni.size === 0;
  }

  add(a: VxlanAdapter): void {
    const l = this.byVni.get(a.vni);
    if (l) l.push(a);
    else this.byVni.set(a.vni, [a]);
  }

  remove(a: VxlanAdapter): void {
    const l = this.byVni.get(a.vni);
    if (!l) return;
    const i = l.indexOf(a);
    if (i >= 0) l.splice(i, 1);
    if (l.length === 0) this.byVni.delete(a.vni);
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length < VXLAN_HEADER_LEN) {
      this.truncated++;
      return;
    }
    if ((msg[0] & VXLAN_FLAG_I) === 0) {
      this.badHeader++;
      return;
    }
    const vni = (msg[4] << 16) | (msg[5] << 8) | msg[6];
    const l = this.byVni.get(vni);
    if (l === undefined) {
      this.wrongVni++;
      return;
    }
    for (let i = 0; i < l.length; i++) {
      const r = l[i].remoteIndex(rinfo.address);
      if (r >= 0) {
        l[i].onDatagram(msg, r);
        return;
      }
    }
    this.unknownSource++;
  }
}

const endpoints = new Map<string, Endpoint>();
const binding = new Map<string, Promise<Endpoint>>();

/** The endpoint bound to `local`, shared if one exists (or is being bound), else a new one. */
async function endpointFor(local: HostPort, recvBufferSize: number): Promise<Endpoint> {
  const want = `${local.host}|${local.port}`;
  if (local.port !== 0) {
    const have = endpoints.get(want);
    if (have) return have;
    const pending = binding.get(want); // no await unless there is one: the check and the set below must not be split
    if (pending) return pending;
  }
  const p = (async () => {
    // No SO_REUSEADDR: no other socket, of this program or another, can bind this address:port
    // and receive the tunnel's datagrams.
    const sock = createSocket({ type: local.family === 6 ? 'udp6' : 'udp4' });
    try {
      sock.bind(local.port, local.host);
      await once(sock, 'listening'); // rejects on 'error' (EADDRINUSE…)
    } catch (e) {
      sock.close();
      throw e;
    }
    try {
      sock.setRecvBufferSize(recvBufferSize);
    } catch {
      // keep the default size
    }
    const ep = new Endpoint(`${local.host}|${sock.address().port}`, sock);
    endpoints.set(ep.key, ep);
    return ep;
  })();
  if (local.port === 0) return p;
  binding.set(want, p);
  try {
    return await p;
  } finally {
    binding.delete(want);
  }
}

function macKey(b: Uint8Array, off: number): number {
  return ((b[off] << 8) | b[off + 1]) * 0x100000000 + (((b[off + 2] << 24) | (b[off + 3] << 16) | (b[off + 4] << 8) | b[off + 5]) >>> 0);
}

export class VxlanAdapter extends AdapterBase {
  readonly kind = 'vxlan' as const;
  readonly vni: number;
  readonly #ep: Endpoint;
  readonly #remotes: Remote[];
  readonly #hdr: Buffer;
  readonly #macs = new Map<number, MacEntry>();
  readonly #ageingMs: number;
  readonly #maxMacs: number;
  readonly #maxQueue: number;
  readonly #local: string;
  readonly #onSent: (err: Error | null) => void;
  /** The entry learned or refreshed last, and its MAC as two integers (see onDatagram). */
  #last: MacEntry | null = null;
  #lastHi = 0;
  #lastLo = 0;
  /** Outgoing datagram buffer, header in place; replaced when a queued send still holds it. */
  #out: Buffer;
  #outHeld = false;

  /** @internal use attachVxlan */
  constructor(sw: SwitchRef, port: Port, ep: Endpoint, remotes: Remote[], opts: VxlanOptions) {
    super(sw, port);
    this.vni = opts.vni;
    this.#ep = ep;
    this.#remotes = remotes;
    this.#hdr = vxlanHeader(opts.vni);
    this.#out = this.#newOut();
    this.#ageingMs = (opts.ageing ?? 300) * 1000;
    this.#maxMacs = opts.maxMacs ?? 8192;
    this.#maxQueue = opts.maxQueue ?? 4096;
    const a = ep.sock.address();
    this.#local = formatHostPort({ host: a.address, port: a.port });
    this.#onSent = (err) => {
      if (err) {
        this.drops.txError++;
        this.txFrames--;
      }
    };
    this.startRxLoop();
  }

  get local(): string {
    return this.#local;
  }

  /** @internal Index of the remote with this address, or -1. */
  remoteIndex(address: string): number {
    const remotes = this.#remotes;
    for (let i = 0; i < remotes.length; i++) if (remotes[i].host === address) return i;
    return -1;
  }

  /** @internal A datagram with a valid header for this VNI, from remote r. */
  onDatagram(msg: Buffer, r: number): void {
    if (this.closed) return;
    const remotes = this.#remotes;
    const len = msg.length - VXLAN_HEADER_LEN;
    if (len < MIN_FRAME) {
      this.drops.undersize++;
      return;
    }
    if (len > this.port.mtu) {
      this.drops.oversize++;
      return;
    }
    // Learn the inner source MAC behind remote r (unicast sources only). A run of frames from
    // one source (a TCP stream) refreshes the entry it found last without a table lookup.
    const src = VXLAN_HEADER_LEN + 6;
    if ((msg[src] & 1) === 0) {
      const now = performance.now();
      const hi = (msg[src] << 8) | msg[src + 1];
      const lo = (msg[src + 2] << 24) | (msg[src + 3] << 16) | (msg[src + 4] << 8) | msg[src + 5];
      const last = this.#last;
      if (last !== null && last.remote === r && hi === this.#lastHi && lo === this.#lastLo) last.seen = now;
      else this.#learn(msg, src, r, now, hi, lo);
    }
    remotes[r].rxFrames++;
    try {
      this.injector.put(msg, VXLAN_HEADER_LEN, len);
      this.injector.flushSoon(); // one txCommit per burst of datagrams
    } catch (e) {
      if (this.port.closed) void this.close();
      else this.emit('warning', e);
    }
  }

  #learn(buf: Uint8Array, src: number, r: number, now: number, hi: number, lo: number): void {
    const k = macKey(buf, src);
    let e = this.#macs.get(k);
    if (e !== undefined && e.remote === r) e.seen = now;
    else {
      if (e !== undefined) this.#macs.delete(k);
      else if (this.#macs.size >= this.#maxMacs) {
        const oldest = this.#macs.keys().next();
        if (!oldest.done) this.#macs.delete(oldest.value);
      }
      e = { remote: r, seen: now };
      this.#macs.set(k, e);
    }
    this.#last = e;
    this.#lastHi = hi;
    this.#lastLo = lo;
  }

  protected deliver(buf: Uint8Array, b: { count: number; offset(i: number): number; length(i: number): number }): void {
    const remotes = this.#remotes;
    const now = performance.now();
    for (let i = 0; i < b.count; i++) {
      const len = b.length(i);
      if (len === 0) continue;
      const off = b.offset(i);
      let target = -1;
      if ((buf[off] & 1) === 0) {
        const e = this.#macs.get(macKey(buf, off));
        if (e !== undefined) {
          if (now - e.seen <= this.#ageingMs) target = e.remote;
          else {
            this.#macs.delete(macKey(buf, off));
            if (e === this.#last) this.#last = null;
          }
        }
      }
      const flow = remotes[0].socks.length > 1 ? flowHash(buf, off, len) : 0;
      // Header and frame go into one reused buffer (the header is written once).
      const out = this.#out;
      out.set(buf.subarray(off, off + len), VXLAN_HEADER_LEN);
      if (this.taps.length) this.tapTx(buf, off, len);
      if (target >= 0) {
        this.#send(out, len, remotes[target], flow);
      } else {
        for (let k = 0; k < remotes.length; k++) this.#send(out, len, remotes[k], flow);
      }
      if (this.#outHeld) {
        // A send waits in the socket's queue and still holds the buffer: take a fresh one.
        this.#out = this.#newOut();
        this.#outHeld = false;
      }
    }
  }

  #newOut(): Buffer {
    const out = Buffer.allocUnsafe(VXLAN_HEADER_LEN + 65536);
    this.#hdr.copy(out, 0);
    return out;
  }

  #send(out: Buffer, len: number, r: Remote, flow: number): void {
    const socks = r.socks;
    const connected = socks.length > 0;
    const sock = connected ? socks[flow % socks.length]! : this.#ep.sock;
    if (sock.getSendQueueCount() >= this.#maxQueue) {
      this.drops.backpressure++;
      return;
    }
    r.txFrames++;
    this.txFrames++;
    this.txBytes += len;
    // Connected: no address to resolve per call; no callback: a failed send is counted by the
    // socket's 'error' handler (txError). Node sends at once when the socket's queue is empty and
    // keeps (a view of) the buffer only when it had to queue the datagram.
    if (connected) sock.send(out, 0, VXLAN_HEADER_LEN + len);
    else sock.send(out, 0, VXLAN_HEADER_LEN + len, r.port, r.host, this.#onSent);
    if (sock.getSendQueueCount() > 0) this.#outHeld = true;
  }

  /** Learned inner MAC → remote entries (live ones), for tools and tests. */
  macTable(): { mac: string; remote: string; ageSec: number }[] {
    const now = performance.now();
    const out: { mac: string; remote: string; ageSec: number }[] = [];
    for (const [k, e] of this.#macs) {
      const age = now - e.seen;
      if (age > this.#ageingMs) continue;
      const hex = k.toString(16).padStart(12, '0');
      out.push({ mac: hex.match(/../g)!.join(':'), remote: this.#remotes[e.remote].name, ageSec: Math.floor(age / 1000) });
    }
    return out;
  }

  protected override kernelQueueDrops(): number {
    return this.#ep.kernelDrops.read();
  }

  override kernelDropSource(): SocketDropsSource {
    return this.#ep.kernelDrops.source();
  }

  override stats(): AdapterStats {
    const s = this.baseStats();
    const ep = this.#ep;
    s.drops.truncated += ep.truncated;
    s.drops.badHeader += ep.badHeader;
    s.drops.wrongVni += ep.wrongVni;
    s.drops.unknownSource += ep.unknownSource;
    s.dropped += ep.truncated + ep.badHeader + ep.wrongVni + ep.unknownSource;
    const learned = new Array<number>(this.#remotes.length).fill(0);
    for (const m of this.macTable()) learned[this.#remotes.findIndex((r) => r.name === m.remote)]++;
    s.remotes = this.#remotes.map((r, i) => ({ remote: r.name, rxFrames: r.rxFrames, txFrames: r.txFrames, learned: learned[i] }));
    s.vni = this.vni;
    return s;
  }

  protected async shutdown(): Promise<void> {
    for (const r of this.#remotes) {
      for (const sock of r.socks) {
        try {
          sock.close();
        } catch {
          // already closed
        }
      }
      r.socks = [];
    }
    const ep = this.#ep;
    ep.remove(this);
    if (ep.empty) {
      ep.kernelDrops.read(); // the last count, kept once the socket is gone
      if (endpoints.get(ep.key) === ep) endpoints.delete(ep.key);
      await new Promise<void>((resolve) => {
        try {
          ep.sock.close(() => resolve());
        } catch {
          resolve();
        }
      });
    }
  }
}

/**
 * Attaches a VXLAN uplink as port `portName`.
 *
 * ```ts
 * await attachVxlan(sw, 'vale0:up', { local: '10.99.0.1:4789', remotes: ['10.99.0.2:4789', '10.99.0.3:4789'], vni: 42 });
 * // on 10.99.0.2: ip link add vx0 type vxlan id 42 local 10.99.0.2 remote 10.99.0.1 dstport 4789
 * //               ethtool -K vx0 tx off; ip link set vx0 mtu 1450 up
 * ```
 */
export async function attachVxlan(sw: SwitchRef, portName: string, opts: VxlanOptions): Promise<VxlanAdapter> {
  if (!opts || typeof opts !== 'object') throw adapterError('attachVxlan needs { local: "ip:port", remotes: ["ip:port", …], vni }');
  vxlanHeader(opts.vni); // validates the VNI
  const local = parseHostPort(opts.local, 'vxlan local');
  if (!Array.isArray(opts.remotes) || opts.remotes.length === 0) throw adapterError('vxlan: give at least one remote ("ip:port")');
  const remotes: Remote[] = [];
  for (const s of opts.remotes) {
    const r = parseHostPort(s, 'vxlan remote');
    if (r.port === 0) throw adapterError(`vxlan remote ${s}: port 0 is not a destination (use 4789)`);
    if (r.family !== local.family) throw adapterError(`vxlan remote ${s} is not of the same IP family as local ${opts.local}`);
    if (remotes.some((x) => x.host === r.host)) throw adapterError(`vxlan remote ${r.host} is listed twice (a remote is identified by its address)`);
    remotes.push({ ...r, name: formatHostPort(r), rxFrames: 0, txFrames: 0, socks: [] });
  }
  if (opts.ageing !== undefined && !(opts.ageing > 0)) throw adapterError(`vxlan ageing must be > 0 seconds, got ${opts.ageing}`);
  if (opts.maxMacs !== undefined && !(Number.isInteger(opts.maxMacs) && opts.maxMacs > 0)) throw adapterError(`vxlan maxMacs must be a positive integer, got ${opts.maxMacs}`);
  const sourcePorts = opts.sourcePorts ?? 8;
  if (!(Number.isInteger(sourcePorts) && sourcePorts >= 0 && sourcePorts <= 64)) throw adapterError(`vxlan sourcePorts must be an integer 0..64, got ${opts.sourcePorts}`);

  const port = await openAdapterPort(sw, portName, opts.persistent, 'vxlan');
  let ep: Endpoint;
  try {
    ep = await endpointFor(local, opts.recvBufferSize ?? 4 << 20);
    for (const other of ep.byVni.get(opts.vni) ?? []) {
      const dup = remotes.find((r) => other.remoteIndex(r.host) >= 0);
      if (dup) {
        throw adapterError(`remote ${dup.host} with VNI ${opts.vni} on ${formatHostPort(local)} is already served by port ${other.portName}: a datagram could not tell the two ports apart`);
      }
    }
    for (const r of remotes) {
      for (let i = 0; i < sourcePorts; i++) {
        const sock = await flowSocket(local.host, local.family, r);
        try {
          sock.setSendBufferSize(opts.sendBufferSize ?? 1 << 20);
        } catch {
          // keep the default size
        }
        r.socks.push(sock);
      }
    }
  } catch (e) {
    for (const r of remotes) for (const sock of r.socks) sock.close();
    if (ep! && ep.empty) {
      if (endpoints.get(ep.key) === ep) endpoints.delete(ep.key);
      ep.sock.close();
    }
    await port.close();
    throw e;
  }
  const a = new VxlanAdapter(sw, port, ep, remotes, opts);
  for (const r of remotes) {
    for (const sock of r.socks) {
      sock.on('error', (e: Error & { syscall?: string }) => {
        if (e.syscall === 'send') {
          a.drops.txError++;
          a.txFrames--;
        } else a.emit('warning', e);
      });
    }
  }
  ep.add(a);
  registerAdapter(sw, a);
  return a;
}
