/**
 * Byte layout of the netmap objects inside a region, as netmap defines them in
 * `sys/net/netmap.h` (API 14, LP64). Every offset used anywhere in this package comes from
 * this file; lib/rings/README.md carries the same table in prose.
 *
 * Region header (ours; netmap has none because the kernel knows its allocator):
 *
 * | off | size | field        | meaning                                            |
 * |-----|------|--------------|----------------------------------------------------|
 * | 0   | 4    | magic        | 0x4e4d5247 ("NMRG")                                |
 * | 4   | 4    | version      | layout version, 1                                  |
 * | 8   | 4    | byteLength   | size of the region in bytes (≤ 4 GiB − 1)          |
 * | 12  | 4    | brk          | bump-allocator pointer (Atomics.add), 64-aligned   |
 * | 16  | 48   | reserved     |                                                    |
 *
 * struct netmap_if (56 + 8·N bytes):
 *
 * | off | size | field             |
 * |-----|------|-------------------|
 * | 0   | 16   | ni_name           |
 * | 16  | 4    | ni_version        |
 * | 20  | 4    | ni_flags          |
 * | 24  | 4    | ni_tx_rings       |
 * | 28  | 4    | ni_rx_rings       |
 * | 32  | 4    | ni_bufs_head      |
 * | 36  | 4    | ni_host_tx_rings  |
 * | 40  | 4    | ni_host_rx_rings  |
 * | 44  | 12   | ni_spare1 (ours: [0] = pool size in buffers) |
 * | 56  | 8·N  | ring_ofs[] (i64, ring − nifp) |
 *
 * struct netmap_ring (256-byte header, then the slots):
 *
 * | off | size | field        | who writes                                  |
 * |-----|------|--------------|---------------------------------------------|
 * | 0   | 8    | buf_ofs      | const: buffer pool offset from this ring (i64) |
 * | 8   | 4    | num_slots    | const                                       |
 * | 12  | 4    | nr_buf_size  | const                                       |
 * | 16  | 2    | ringid       | const                                       |
 * | 18  | 2    | dir          | const: 0 TX, 1 RX                           |
 * | 20  | 4    | head         | user                                        |
 * | 24  | 4    | cur          | user                                        |
 * | 28  | 4    | tail         | kernel (the other side)                     |
 * | 32  | 4    | flags        |                                             |
 * | 40  | 16   | ts           | timeval of the last sync (sec i64, usec i64) |
 * | 56  | 8    | offset_mask  | const, 0                                    |
 * | 64  | 8    | buf_align    | const                                       |
 * | 128 | 128  | sem          | netmap: opaque lock room. Ours: see below   |
 * | 256 | 16·n | slot[]       |                                             |
 *
 * Our use of `sem` (all Int32, Atomics only):
 *
 * | off | field        | meaning                                                        |
 * |-----|--------------|----------------------------------------------------------------|
 * | 128 | userWaiters  | threads sleeping until `tail` moves (user side)                |
 * | 132 | kernWaiters  | threads sleeping until `head` moves (kernel side)               |
 * | 136 | lock         | 0 free, else owner id + 1 (spin lock that records its owner)   |
 * | 140 | errors       | count of invalid head/cur values the kernel side rejected      |
 * | 144 | private[28]  | 112 bytes for the kernel side's shadow state (leases etc.)      |
 *
 * struct netmap_slot (16 bytes): buf_idx u32 @0, len u16 @4, flags u16 @6, ptr u64 @8.
 */

export const REGION_MAGIC = 0x4e4d5247;
export const REGION_VERSION = 1;
export const REGION_HDR_SIZE = 64;
export const RG_MAGIC = 0;
export const RG_VERSION = 4;
export const RG_BYTE_LENGTH = 8;
export const RG_BRK = 12;

export const IFNAMSIZ = 16;
export const NI_NAME = 0;
export const NI_VERSION = 16;
export const NI_FLAGS = 20;
export const NI_TX_RINGS = 24;
export const NI_RX_RINGS = 28;
export const NI_BUFS_HEAD = 32;
export const NI_HOST_TX_RINGS = 36;
export const NI_HOST_RX_RINGS = 40;
/** ni_spare1[0]: we keep the pool size in buffers here (netmap leaves it unused). */
export const NI_POOL_BUFS = 44;
export const NI_RING_OFS = 56;
export const NI_PRIV_MEM = 0x1;
export const NETMAP_API = 14;

export const NR_BUF_OFS = 0;
export const NR_NUM_SLOTS = 8;
export const NR_BUF_SIZE = 12;
export const NR_RINGID = 16;
export const NR_DIR = 18;
export const NR_HEAD = 20;
export const NR_CUR = 24;
export const NR_TAIL = 28;
export const NR_FLAGS = 32;
export const NR_TS = 40;
export const NR_OFFSET_MASK = 56;
export const NR_BUF_ALIGN = 64;
export const NR_SEM = 128;
export const NR_USER_WAITERS = 128;
export const NR_KERN_WAITERS = 132;
export const NR_LOCK = 136;
export const NR_ERRORS = 140;
export const NR_PRIVATE = 144;
export const NR_PRIVATE_SIZE = 112;
export const NR_HDR_SIZE = 256;

export const SLOT_SIZE = 16;
export const NS_BUF_IDX = 0;
export const NS_LEN = 4;
export const NS_FLAGS = 6;
export const NS_PTR = 8;

/** Slot flags, with netmap's values. */
export const NS_BUF_CHANGED = 0x0001;
export const NS_REPORT = 0x0002;
export const NS_FORWARD = 0x0004;
export const NS_NO_LEARN = 0x0008;
export const NS_INDIRECT = 0x0010;
export const NS_MOREFRAG = 0x0020;
export const NS_TXMON = 0x0040;

/** Ring flags. */
export const NR_TIMESTAMP = 0x0002;
export const NR_FORWARD_FLAG = 0x0004;

export const TX = 0;
export const RX = 1;

/** Buffer indices 0 and 1 are reserved, as in netmap (0 is the "null" buffer). */
export const FIRST_BUF = 2;
export const DEFAULT_BUF_SIZE = 2048;
export const DEFAULT_NUM_SLOTS = 1024;
export const MAX_NUM_SLOTS = 4096;
export const MIN_BUF_SIZE = 64;
export const MAX_BUF_SIZE = 65536;
export const ALIGN = 64;

export function ringSize(numSlots: number): number {
  return NR_HDR_SIZE + SLOT_SIZE * numSlots;
}

export function netmapIfSize(nRings: number): number {
  return align(NI_RING_OFS + 8 * nRings, ALIGN);
}

export function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
