/**
 * Bridge region layout. One SharedArrayBuffer (a shared-memory-ring Region) per bridge holds,
 * in this order: the bridge header, the port table, the MAC table, then one fixed-size area per
 * port slot (its netmap_if, TX ring, RX ring, buffer pool, and the RX ring's lease table).
 * Every thread that forwards reads and writes these words directly; nothing here is a JS object.
 *
 * Bridge header (BH_*, bytes from the header offset; all u32/i32 unless noted):
 *
 * | off | field       | meaning                                                        |
 * |-----|-------------|----------------------------------------------------------------|
 * | 0   | magic       | 0x56414c45 ("VALE")                                            |
 * | 4   | version     | 1                                                              |
 * | 8   | maxPorts    | port slots (VALE: 254)                                         |
 * | 12  | macSets     | MAC table sets (4 ways each); entries = 4·macSets               |
 * | 16  | txSlots     | slots per TX ring                                              |
 * | 20  | rxSlots     | slots per RX ring                                              |
 * | 24  | bufSize     | bytes per buffer                                               |
 * | 28  | batch       | frames per forwarding batch (VALE: 1024)                       |
 * | 32  | portBytes   | stride of the per-port areas                                   |
 * | 36  | portsOff    | byte offset of the port table                                  |
 * | 40  | macOff      | byte offset of the MAC table                                   |
 * | 44  | areaOff     | byte offset of port area 0                                     |
 * | 48  | portHigh    | 1 + highest port slot ever used (flooding scans [0, portHigh)) |
 * | 52  | ageing      | MAC ageing time in seconds (0: never)                          |
 * | 56  | epoch       | clock origin in seconds (MAC stamps are relative to it)        |
 * | 60  | macFull     | frames whose source could not be learned: table set full       |
 * | 64  | name[16]    | bridge name                                                    |
 * | 80  | nPorts      | active ports                                                   |
 * | 84  | vlanPorts   | ports in access or trunk mode (0: VLAN-unaware fast path)      |
 * | 88  | mirrors     | mirror links configured (0: no mirroring work at all)          |
 * | 92  | forced      | port removals finished by force (something stayed held > 2 s)  |
 * | 96  | lookup[32]  | name of the lookup function (registerLookup)                   |
 * | 128 | clock       | seconds since epoch, the MAC table's clock (own line, see below) |
 *
 * The clock word saves every txsync a Date.now() (~90 ns on this project's VMs, a tenth of a
 * round trip): forwarders read it, and write it (Bridge.tickClock) once every CLOCK_TICK_SYNCS
 * txsyncs of theirs; the thread that owns the bridge (the Switch) writes it every second from a
 * timer. It only moves forward, and it is at most a second behind while that thread's event
 * loop runs, or CLOCK_TICK_SYNCS txsyncs of a busy sender behind when it does not.
 *
 * Port table entry (P_*, 1024 bytes per port slot), laid out by who writes each cache line
 * (64 bytes). A line written by one thread and read by another moves between cores at every
 * write, and a round trip pays for each such line twice; so the words the port's own sender
 * writes at every txsync (busy, txHwcur, its counters) never share a line with words that
 * another port's sender writes (the RX ring's lock, lease and counters) or reads at every
 * delivery (state, gen, pvid):
 *
 * | off | field     | meaning                                                         |
 * |-----|-----------|-----------------------------------------------------------------|
 * |     |           | line 0: identity and configuration (read by every sender)       |
 * | 0   | state     | 0 free, 1 active, 2 closing (Atomics)                           |
 * | 4   | owner     | thread id + 1 of the thread that sends on this port, 0 unknown |
 * | 12  | flags     | 1 persistent, 2 mirror                                          |
 * | 16  | ifOff     | byte offset of the port's netmap_if                             |
 * | 20  | leaseOff  | byte offset of the RX ring's lease table                        |
 * | 24  | lastA     | learning cache: last source MAC bytes 0-3 (as u32 LE)           |
 * | 28  | lastB     | learning cache: bytes 4-5, | 0x10000 when valid                 |
 * | 32  | lastEnt   | learning cache: MAC table entry index of that MAC               |
 * | 36  | gen       | bumped at every attach of this slot                             |
 * | 40  | vlanMode  | 0 none (VLAN-unaware), 1 access, 2 trunk                         |
 * | 44  | pvid      | access VLAN, or the trunk's native VLAN (0: untagged dropped)   |
 * | 48  | name[16]  | port name                                                       |
 * |     |           | lines 1–4: counters, Float64 × 32 (C_* below), exact to 2^53    |
 * | 64  | counters  | 0–23: written by this port's txsync; 24–31: by the senders that |
 * |     |           | deliver to it, under its RX lock (their own line, 256–319)      |
 * |     |           | line 5: written only by this port's txsync                      |
 * | 320 | busy      | thread id + 1 while that thread runs txsync on this port        |
 * | 324 | txHwcur   | TX: first slot the next txsync reads (the head it consumed last) |
 * |     |           | line 7: RX side, written by the senders that deliver here       |
 * | 448 | mirrorTx  | slot + 1 of the mirror that gets a copy of what this port sends |
 * | 452 | mirrorRx  | slot + 1 of the mirror that gets a copy of what this port gets  |
 * | 456 | rxLock    | RX ring lock: 0 free, else holder (thread id + 1; registry 0x7fffffff) |
 * | 460 | rxHwcur   | RX: the receiver's head as last validated (netmap kring nr_hwcur) |
 * | 464 | rxHwtail  | RX: tail as the switch last published it (nr_hwtail)            |
 * | 468 | leaseHead | RX: oldest lease not yet published                              |
 * | 472 | leaseNext | RX: next lease number                                          |
 * | 512 | vlans     | trunk: bitmap of the 4096 VLAN ids it carries                   |
 *
 * MAC table entry (16 bytes, 4-way set associative): w0 = MAC bytes 0-3 (u32 LE),
 * w1 = bytes 4-5 | 0x10000 (valid) | VLAN id << 17, w2 = port slot, w3 = last-seen time
 * (seconds since epoch). Learning is per VLAN: the same MAC in two VLANs is two entries.
 *
 * Who may write what (netmap's netmap_ring / netmap_kring split). A port's user is handed its
 * netmap_if, its two rings and its buffers: it writes head, cur, slots and buffers, and may
 * scribble on anything else in them. Everything the switch relies on for a port lives in the
 * port table entry (busy, txHwcur and the RX words above, the kring half) and in the RX lease table, an area
 * after the port's buffers that no user API points at: ring locks, hwcur/hwtail copies, lease
 * numbers. What a user writes into its own ring header can confuse only its own port, and the
 * switch repairs it (rx-lease.ts, forward.ts: netmap_ring_reinit).
 *
 * The lease table has rxSlots entries of 4 u32 words (start, end, done, owner: L_*), one entry's
 * words side by side so a lease touches one cache line. done is 0 while the lease's frames are
 * being copied, then 1 + the bytes copied (| L_COUNTED once its frames are counted on the
 * receiver), or L_RECLAIMED when the registry released the lease of a dead thread. hwlease is derived (end of the newest lease, else hwtail), so a reservation
 * becomes visible with one store (leaseNext): a thread that dies half-way leaves either a whole
 * lease or none.
 */

export const BRIDGE_MAGIC = 0x56414c45;
export const BRIDGE_VERSION = 4;
export const BH_SIZE = 4096;
export const BH_MAGIC = 0;
export const BH_VERSION = 4;
export const BH_MAX_PORTS = 8;
export const BH_MAC_SETS = 12;
export const BH_TX_SLOTS = 16;
export const BH_RX_SLOTS = 20;
export const BH_BUF_SIZE = 24;
export const BH_BATCH = 28;
export const BH_PORT_BYTES = 32;
export const BH_PORTS_OFF = 36;
export const BH_MAC_OFF = 40;
export const BH_AREA_OFF = 44;
export const BH_PORT_HIGH = 48;
export const BH_AGEING = 52;
export const BH_EPOCH = 56;
export const BH_MAC_FULL = 60;
export const BH_NAME = 64;
export const BH_NPORTS = 80;
/** Ports with a VLAN mode other than none; 0 keeps the VLAN-unaware fast path. */
export const BH_VLAN_PORTS = 84;
/** Mirror links (port → mirror) configured; 0 keeps the fast path. */
export const BH_MIRRORS = 88;
/** Port removals finished by force after REMOVE_FORCE_MS (a lock or lease stayed held). */
export const BH_FORCED = 92;
export const BH_LOOKUP = 96;
/** The MAC table's clock, seconds since epoch; in a line of its own (it changes once a second). */
export const BH_CLOCK = 128;
/** A forwarder reads the system clock itself (and moves the clock word) every this many txsyncs. */
export const CLOCK_TICK_SYNCS = 256;

export const PT_SIZE = 1024;
export const P_STATE = 0;
export const P_OWNER = 4;
export const P_FLAGS = 12;
export const P_IF_OFF = 16;
export const P_LEASE_OFF = 20;
export const P_LAST_A = 24;
export const P_LAST_B = 28;
export const P_LAST_ENT = 32;
export const P_GEN = 36;
export const P_VLAN_MODE = 40;
export const P_PVID = 44;
export const P_MIRROR_TX = 448;
export const P_MIRROR_RX = 452;
export const P_VLAN_MAP = 512;
/** Switch-private port state (the kring half): see the table above. */
export const P_RX_LOCK = 456;
export const P_RX_HWCUR = 460;
export const P_RX_HWTAIL = 464;
export const P_LEASE_HEAD = 468;
export const P_LEASE_NEXT = 472;
export const P_NAME = 48;
export const P_COUNTERS = 64;
/** Line 5 of the entry: written only by the port's own txsync. */
export const P_BUSY = 320;
export const P_TX_HWCUR = 324;
/** Float64 counter slots from P_COUNTERS (bytes 64–319). */
export const N_COUNTERS = 32;

export const PORT_FREE = 0;
export const PORT_ACTIVE = 1;
export const PORT_CLOSING = 2;
export const PF_PERSISTENT = 1;
/** A mirror (monitor) port: gets mirrored copies only, never normal traffic. */
export const PF_MIRROR = 2;
export const VLAN_NONE = 0;
export const VLAN_ACCESS = 1;
export const VLAN_TRUNK = 2;

export const MAC_WAYS = 4;
export const MAC_ENTRY = 16;
export const MAC_VALID = 0x10000;

/** Lease entry k is at lease-table word 4·k; its words: */
export const LEASE_WORDS = 4;
export const L_START = 0;
export const L_END = 1;
export const L_DONE = 2;
export const L_OWNER = 3;
/** L_DONE of a lease the registry released for a dead thread (its slots hold empty frames). */
export const L_RECLAIMED = 0xffffffff;
/** Set in L_DONE (1 + bytes, below 2^31) once the lease's frames were counted on the receiver. */
export const L_COUNTED = 0x80000000;
/** Lock holder value of the registry (reclaimThread): never a thread id + 1. */
export const REGISTRY_HOLDER = 0x7fffffff;

/**
 * Per-port counters (Float64 indices from P_COUNTERS). Sender-side counters (0–23) are written
 * only by the port's own txsync; receiver-side ones (24–31) under the destination RX ring's lock.
 *
 * Accounting invariant, for every port: txCopies = txDelivered + dropRingFull + dropBadBuf +
 * dropBadLen + dropNoDest + dropBusy + dropVlan + dropLookup, where a frame flooded to k ports makes k copies
 * (a frame with no destination, or an invalid one, counts as one copy, dropped). Mirror copies
 * are outside it: `mirrored` (copies a mirror got of this port's traffic, counted on the
 * mirrored port that sent) and `mirrorDrops` (copies a full mirror ring could not take).
 */
export const C_TX_FRAMES = 0;
export const C_TX_BYTES = 1;
export const C_TX_COPIES = 2;
export const C_TX_DELIVERED = 3;
export const C_DROP_RING_FULL = 4;
export const C_DROP_BAD_BUF = 5;
export const C_DROP_BAD_LEN = 6;
export const C_DROP_NO_DEST = 7;
export const C_DROP_BUSY = 8;
export const C_TX_FLOODED = 9;
export const C_TX_BATCHES = 10;
export const C_TX_BAD_HEAD = 11;
export const C_DROP_VLAN = 12;
export const C_MIRROR_DROPS = 13;
export const C_MIRRORED = 14;
/** Frames a custom lookup threw on, or answered with something that is no port slot. */
export const C_DROP_LOOKUP = 15;
/**
 * Times the switch put this port's TX (RX) ring back into a consistent state after its user
 * wrote a head or tail out of place (netmap_ring_reinit); a bad head is also in txBadHead (rxBadHead).
 */
export const C_TX_REPAIRS = 16;
/** Receiver-side counters: written by the senders that deliver to this port, in a line of their own. */
export const C_RX_FRAMES = 24;
export const C_RX_BYTES = 25;
export const C_RX_DROP_RING_FULL = 26;
export const C_RX_BAD_HEAD = 27;
export const C_RX_REPAIRS = 28;

/** Counter names, in the order they are shown. */
export const COUNTER_NAMES = [
  'txFrames', 'txBytes', 'rxFrames', 'rxBytes', 'txCopies', 'txDelivered', 'dropRingFull', 'dropBadBuf',
  'dropBadLen', 'dropNoDest', 'dropBusy', 'rxDropRingFull', 'txFlooded', 'txBatches', 'txBadHead', 'rxBadHead',
  'dropVlan', 'mirrorDrops', 'mirrored', 'dropLookup', 'txRepairs', 'rxRepairs',
] as const;
/** COUNTER_NAMES[k] is Float64 index COUNTER_INDEX[k] from P_COUNTERS. */
export const COUNTER_INDEX: readonly number[] = [
  C_TX_FRAMES, C_TX_BYTES, C_RX_FRAMES, C_RX_BYTES, C_TX_COPIES, C_TX_DELIVERED, C_DROP_RING_FULL, C_DROP_BAD_BUF,
  C_DROP_BAD_LEN, C_DROP_NO_DEST, C_DROP_BUSY, C_RX_DROP_RING_FULL, C_TX_FLOODED, C_TX_BATCHES, C_TX_BAD_HEAD, C_RX_BAD_HEAD,
  C_DROP_VLAN, C_MIRROR_DROPS, C_MIRRORED, C_DROP_LOOKUP, C_TX_REPAIRS, C_RX_REPAIRS,
];
export type CounterName = typeof COUNTER_NAMES[number];
export type PortCounters = Record<CounterName, number>;

/** Lookup results besides a port slot. */
export const LOOKUP_FLOOD = 0xfffe;
export const LOOKUP_DROP = 0xffff;
/** @internal What a contained custom lookup answers when it threw or answered garbage. */
export const LOOKUP_BAD = 0xfffd;
