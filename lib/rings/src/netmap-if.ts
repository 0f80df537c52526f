/**
 * A netmap_if and everything it describes: its TX and RX rings and the buffer pool their slots
 * point into, laid out contiguously in a Region, in netmap's order [if][rings][buffers]. This is
 * what a netmap file descriptor gives a process; vswitch gives one to every port.
 *
 * ring_ofs[] holds each ring's offset from the netmap_if (netmap: ssize_t), TX rings first, then
 * RX rings. We create no host rings (ni_host_tx_rings = ni_host_rx_rings = 0): they exist in
 * netmap to talk to the host stack of a NIC, which a VALE-style port does not have.
 */
import {
  ALIGN, DEFAULT_BUF_SIZE, DEFAULT_NUM_SLOTS, FIRST_BUF, IFNAMSIZ, NETMAP_API, NI_BUFS_HEAD, NI_FLAGS,
  NI_HOST_RX_RINGS, NI_HOST_TX_RINGS, NI_NAME, NI_POOL_BUFS, NI_PRIV_MEM, NI_RING_OFS, NI_RX_RINGS, NI_TX_RINGS, NI_VERSION, RX,
  TX, align, netmapIfSize, ringSize, MAX_NUM_SLOTS,
} from './layout.js';
import { check, checkInt, checkPow2 } from './errors.js';
import type { Region } from './region.js';
import { Ring } from './ring.js';

export interface NetmapIfOptions {
  /** Name stored in ni_name (at most 15 bytes of ASCII). */
  name?: string;
  txRings?: number;
  rxRings?: number;
  /** Slots per TX ring (power of two ≤ 4096, default 1024). */
  txSlots?: number;
  /** Slots per RX ring (power of two ≤ 4096, default 1024). */
  rxSlots?: number;
  /** Buffer size in bytes (multiple of 64, default 2048). */
  bufSize?: number;
  /** Buffers beyond one per slot and the two reserved ones (netmap's extra_bufs). */
  extraBufs?: number;
}

interface Resolved {
  name: string; txRings: number; rxRings: number; txSlots: number; rxSlots: number; bufSize: number; extraBufs: number;
}

function resolve(o: NetmapIfOptions): Resolved {
  const r: Resolved = {
    name: o.name ?? '',
    txRings: o.txRings ?? 1,
    rxRings: o.rxRings ?? 1,
    txSlots: o.txSlots ?? DEFAULT_NUM_SLOTS,
    rxSlots: o.rxSlots ?? DEFAULT_NUM_SLOTS,
    bufSize: o.bufSize ?? DEFAULT_BUF_SIZE,
    extraBufs: o.extraBufs ?? 0,
  };
  checkInt(r.txRings, 'txRings', 0, 16);
  checkInt(r.rxRings, 'rxRings', 0, 16);
  check(r.txRings + r.rxRings > 0, 'ERR_RING_ARG', 'a netmap_if needs at least one ring');
  checkInt(r.txSlots, 'txSlots', 2, MAX_NUM_SLOTS);
  checkPow2(r.txSlots, 'txSlots');
  checkInt(r.rxSlots, 'rxSlots', 2, MAX_NUM_SLOTS);
  checkPow2(r.rxSlots, 'rxSlots');
  checkInt(r.bufSize, 'bufSize', 64, 65536);
  check(r.bufSize % ALIGN === 0, 'ERR_RING_ARG', `bufSize must be a multiple of ${ALIGN}, got ${r.bufSize}`);
  checkInt(r.extraBufs, 'extraBufs', 0, 1 << 20);
  check(typeof r.name === 'string' && /^[\x20-\x7e]{0,15}$/.test(r.name), 'ERR_RING_ARG',
    `name must be at most ${IFNAMSIZ - 1} printable ASCII characters, got ${JSON.stringify(r.name)}`);
  return r;
}

/** Bytes a netmap_if with these options needs, rings and buffers included (64-aligned). */
export function netmapIfBytes(o: NetmapIfOptions = {}): number {
  const r = resolve(o);
  const nbufs = FIRST_BUF + r.txRings * r.txSlots + r.rxRings * r.rxSlots + r.extraBufs;
  return netmapIfSize(r.txRings + r.rxRings)
    + r.txRings * align(ringSize(r.txSlots), ALIGN)
    + r.rxRings * align(ringSize(r.rxSlots), ALIGN)
    + nbufs * r.bufSize;
}

export class NetmapIf {
  readonly region: Region;
  /** Byte offset of the netmap_if in the region. */
  readonly offset: number;
  readonly name: string;
  readonly txRings: readonly Ring[];
  readonly rxRings: readonly Ring[];
  /** Byte offset of the buffer pool (buffer index 0) and its size in buffers. */
  readonly poolOffset: number;
  readonly poolBufs: number;
  readonly bufSize: number;

  private constructor(region: Region, offset: number) {
    this.region = region;
    this.offset = offset;
    const dv = region.dv;
    const ntx = dv.getUint32(offset + NI_TX_RINGS, true);
    const nrx = dv.getUint32(offset + NI_RX_RINGS, true);
    check(ntx <= 16 && nrx <= 16 && ntx + nrx > 0, 'ERR_RING_BAD_IF', `offset ${offset} does not hold a netmap_if`);
    let name = '';
    for (let i = 0; i < IFNAMSIZ && region.u8[offset + NI_NAME + i] !== 0; i++) name += String.fromCharCode(region.u8[offset + NI_NAME + i]);
    this.name = name;
    const ring = (i: number) => Ring.attach(region, offset + Number(dv.getBigInt64(offset + NI_RING_OFS + 8 * i, true)));
    const tx: Ring[] = [];
    const rx: Ring[] = [];
    for (let i = 0; i < ntx; i++) tx.push(ring(i));
    for (let i = 0; i < nrx; i++) rx.push(ring(ntx + i));
    this.txRings = tx;
    this.rxRings = rx;
    const any = tx[0] ?? rx[0];
    this.poolOffset = any.bufBase;
    this.bufSize = any.bufSize;
    this.poolBufs = dv.getUint32(offset + NI_POOL_BUFS, true) || 0;
  }

  /**
   * Lays out a netmap_if, its rings and its buffer pool at `offset` (64-aligned; allocate
   * `netmapIfBytes(opts)` bytes there, e.g. with region.alloc) and returns a view.
   */
  static init(region: Region, offset: number, opts: NetmapIfOptions = {}): NetmapIf {
    const r = resolve(opts);
    const bytes = netmapIfBytes(r);
    check(offset % ALIGN === 0 && offset >= 0 && offset + bytes <= region.byteLength, 'ERR_RING_RANGE',
      `a netmap_if of ${bytes} bytes does not fit at offset ${offset} of a ${region.byteLength}-byte region`);
    const dv = region.dv;
    const nrings = r.txRings + r.rxRings;
    region.u8.fill(0, offset, offset + netmapIfSize(nrings));
    for (let i = 0; i < r.name.length; i++) region.u8[offset + NI_NAME + i] = r.name.charCodeAt(i);
    dv.setUint32(offset + NI_VERSION, NETMAP_API, true);
    dv.setUint32(offset + NI_FLAGS, NI_PRIV_MEM, true);
    dv.setUint32(offset + NI_TX_RINGS, r.txRings, true);
    dv.setUint32(offset + NI_RX_RINGS, r.rxRings, true);
    dv.setUint32(offset + NI_BUFS_HEAD, 0, true);
    dv.setUint32(offset + NI_HOST_TX_RINGS, 0, true);
    dv.setUint32(offset + NI_HOST_RX_RINGS, 0, true);
    let at = offset + netmapIfSize(nrings);
    const ringAt: number[] = [];
    for (let i = 0; i < nrings; i++) {
      ringAt.push(at);
      at += align(ringSize(i < r.txRings ? r.txSlots : r.rxSlots), ALIGN);
    }
    const poolOffset = at;
    const poolBufs = FIRST_BUF + r.txRings * r.txSlots + r.rxRings * r.rxSlots + r.extraBufs;
    // ni_spare1[0] holds the pool size in buffers, so a view can validate indices without
    // knowing the options it was made with.
    dv.setUint32(offset + NI_POOL_BUFS, poolBufs, true);
    let firstBuf = FIRST_BUF;
    for (let i = 0; i < nrings; i++) {
      const isTx = i < r.txRings;
      const numSlots = isTx ? r.txSlots : r.rxSlots;
      dv.setBigInt64(offset + NI_RING_OFS + 8 * i, BigInt(ringAt[i] - offset), true);
      Ring.init(region, ringAt[i], {
        numSlots, bufSize: r.bufSize, poolOffset, poolBufs, firstBuf, dir: isTx ? TX : RX, ringId: isTx ? i : i - r.txRings,
      });
      firstBuf += numSlots;
    }
    return new NetmapIf(region, offset);
  }

  /** A view of a netmap_if written by `NetmapIf.init`, e.g. in another thread. */
  static attach(region: Region, offset: number): NetmapIf {
    check(Number.isInteger(offset) && offset >= 0 && offset % ALIGN === 0 && offset + NI_RING_OFS <= region.byteLength,
      'ERR_RING_RANGE', `no netmap_if can start at offset ${offset} of a ${region.byteLength}-byte region`);
    return new NetmapIf(region, offset);
  }

  /** True when `idx` names a buffer of this pool that a slot may use (not 0 or 1). */
  validBuf(idx: number): boolean {
    return idx >= FIRST_BUF && idx < this.poolBufs;
  }
}
