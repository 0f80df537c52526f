/**
 * A Bridge is the shared state of one VALE switch: a Region holding the header, port table, MAC
 * table and every port's rings (layout.ts). `Bridge.create` makes one (in the thread that owns
 * the registry); `Bridge.attach` gives any other thread a view of the same memory, after which
 * that thread forwards on its own (forward.ts) with no message passing.
 *
 * Control operations (adding and removing ports, reclaiming what a dead thread held) are meant
 * to run in one thread, the registry's; forwarding runs concurrently in every sender's thread.
 * Removing a port is two-phase so that no sender is still copying into its rings when its slot
 * is reused: `beginRemove` marks it closing (new reservations see that under the ring lock),
 * `tryFinishRemove` succeeds once its own txsync is idle and every lease on its RX ring is done.
 *
 * The data path lives beside it: forward.ts (the txsync loop), rx-lease.ts (the RX lease
 * protocol), mac-table.ts, lookups.ts and vlan.ts.
 */
import {
  DEFAULT_BUF_SIZE, DEFAULT_NUM_SLOTS, MAX_NUM_SLOTS, NetmapIf, Region, Ring, netmapIfBytes, align,
  ALIGN, FIRST_BUF, NI_POOL_BUFS, NI_RING_OFS, NI_RX_RINGS, NI_TX_RINGS, NR_BUF_OFS, NR_BUF_SIZE, NR_DIR, NR_NUM_SLOTS,
  RX, TX, netmapIfSize, ringSize, type Shareable,
} from '#rings';
import { MacTable } from './mac-table.js';
import { RxLeases } from './rx-lease.js';
import { BridgeError, bcheck } from './errors.js';
import {
  BH_AGEING, BH_AREA_OFF, BH_CLOCK, BH_BATCH, BH_BUF_SIZE, BH_EPOCH, BH_MAC_FULL, BH_MAC_OFF, BH_MAC_SETS, BH_MAGIC,
  BH_MAX_PORTS, BH_NAME, BH_LOOKUP, BH_NPORTS, BH_PORTS_OFF, BH_PORT_BYTES, BH_PORT_HIGH, BH_RX_SLOTS, BH_SIZE, BH_TX_SLOTS,
  BH_VERSION, BRIDGE_MAGIC, BRIDGE_VERSION, COUNTER_INDEX, COUNTER_NAMES, MAC_ENTRY, BH_FORCED, REGISTRY_HOLDER,
  MAC_WAYS, N_COUNTERS, PF_PERSISTENT, PORT_ACTIVE, PORT_CLOSING, PORT_FREE, PT_SIZE, P_BUSY, P_COUNTERS, P_FLAGS,
  P_GEN, P_IF_OFF, P_LAST_B, P_LEASE_OFF, P_NAME, P_OWNER, P_STATE, type PortCounters,
  BH_VLAN_PORTS, BH_MIRRORS, P_VLAN_MODE, P_PVID, P_VLAN_MAP, P_MIRROR_TX, P_MIRROR_RX, PF_MIRROR, VLAN_NONE, VLAN_ACCESS,
  VLAN_TRUNK,
} from './layout.js';
import { checkBridgeName } from './names.js';

export interface BridgeOptions {
  /** Port slots (VALE: 254). */
  maxPorts?: number;
  /** MAC table entries, a power of two ≥ 4 (VALE: 1024). */
  macTableSize?: number;
  /** Slots per TX ring, power of two (VALE: 1024). */
  txSlots?: number;
  /** Slots per RX ring, power of two (VALE: 1024). */
  rxSlots?: number;
  /** Buffer size, multiple of 64 (netmap: 2048). */
  bufSize?: number;
  /** Frames per forwarding batch, 1..1024 (VALE: 1024). */
  batch?: number;
  /** MAC ageing in seconds; 0 never ages (default 300, as Linux and Open vSwitch). */
  ageing?: number;
  /** Name of a registered lookup function (default "learning"); see registerLookup. */
  lookup?: string;
}

export const BRIDGE_DEFAULTS = {
  maxPorts: 254, macTableSize: 1024, txSlots: DEFAULT_NUM_SLOTS, rxSlots: DEFAULT_NUM_SLOTS,
  bufSize: DEFAULT_BUF_SIZE, batch: 1024, ageing: 300, lookup: 'learning',
} as const;

export interface MacEntry {
  mac: string;
  /** VLAN the address was learned in (0 on VLAN-unaware ports). */
  vlan: number;
  port: number;
  portName: string;
  /** Seconds since the entry was last refreshed. */
  age: number;
}

/** 802.1Q configuration of a port. */
export type VlanConfig =
  | { mode: 'none' }
  | { mode: 'access'; vlan: number }
  | { mode: 'trunk'; vlans: number[]; native?: number };

/** Mirror configuration: the ports whose sent (tx) and received (rx) frames a mirror port gets. */
export interface MirrorConfig {
  tx?: number[];
  rx?: number[];
}

export interface PortInfo {
  index: number;
  name: string;
  state: 'active' | 'closing';
  persistent: boolean;
  owner: number;
  vlan: VlanConfig;
  mirror: boolean;
  counters: PortCounters;
}

function intOpt(v: number | undefined, dflt: number, name: string, min: number, max: number): number {
  const x = v ?? dflt;
  bcheck(Number.isInteger(x) && x >= min && x <= max, 'ERR_BAD_OPTION', `${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return x;
}

function pow2Opt(v: number | undefined, dflt: number, name: string, min: number, max: number): number {
  const x = intOpt(v, dflt, name, min, max);
  bcheck((x & (x - 1)) === 0, 'ERR_BAD_OPTION', `${name} must be a power of two, got ${x}`);
  return x;
}

/** Lease table bytes for an RX ring: start, end, done, owner (u32 each) per slot. */
function leaseBytes(rxSlots: number): number {
  return align(16 * rxSlots, 64);
}

export function macString(a: number, b: number): string {
  const bytes = [a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, a >>> 24, b & 0xff, (b >>> 8) & 0xff];
  return bytes.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export class Bridge {
  readonly region: Region;
  readonly hdr: number;
  readonly name: string;
  readonly maxPorts: number;
  readonly macSets: number;
  readonly txSlots: number;
  readonly rxSlots: number;
  readonly bufSize: number;
  readonly batch: number;
  readonly portBytes: number;
  readonly portsOff: number;
  readonly macOff: number;
  readonly areaOff: number;
  readonly lookupName: string;
  /** The MAC table (shared by every thread's forwarder). */
  readonly mac: MacTable;
  private readonly ifs: (NetmapIf | undefined)[] = [];
  private readonly rxl: (RxLeases | undefined)[] = [];
  /** Lease owners (thread id + 1) of reclaimed threads whose leases some ring could not be checked for yet. */
  private readonly deadOwners = new Set<number>();

  private constructor(region: Region, hdr: number) {
    const u32 = region.u32;
    const h = hdr >>> 2;
    bcheck(u32[h + (BH_MAGIC >>> 2)] === BRIDGE_MAGIC, 'ERR_BAD_REGION', 'not a bridge region (bad magic)');
    bcheck(u32[h + (BH_VERSION >>> 2)] === BRIDGE_VERSION, 'ERR_BAD_REGION', 'bridge region of another layout version');
    this.region = region;
    this.hdr = hdr;
    this.maxPorts = u32[h + (BH_MAX_PORTS >>> 2)];
    this.macSets = u32[h + (BH_MAC_SETS >>> 2)];
    this.txSlots = u32[h + (BH_TX_SLOTS >>> 2)];
    this.rxSlots = u32[h + (BH_RX_SLOTS >>> 2)];
    this.bufSize = u32[h + (BH_BUF_SIZE >>> 2)];
    this.batch = u32[h + (BH_BATCH >>> 2)];
    this.portBytes = u32[h + (BH_PORT_BYTES >>> 2)];
    this.portsOff = u32[h + (BH_PORTS_OFF >>> 2)];
    this.macOff = u32[h + (BH_MAC_OFF >>> 2)];
    this.areaOff = u32[h + (BH_AREA_OFF >>> 2)];
    this.name = this.readStr(hdr + BH_NAME, 16);
    this.lookupName = this.readStr(hdr + BH_LOOKUP, 32);
    this.mac = new MacTable(region, hdr, this.portsOff, this.macOff, this.macSets, this.maxPorts);
  }

  /** Creates a bridge and its region. Sizes everything for `maxPorts` up front (pages are committed lazily). */
  static create(name: string, opts: BridgeOptions = {}): Bridge {
    checkBridgeName(name);
    const maxPorts = intOpt(opts.maxPorts, BRIDGE_DEFAULTS.maxPorts, 'maxPorts', 1, 254);
    const macSize = pow2Opt(opts.macTableSize, BRIDGE_DEFAULTS.macTableSize, 'macTableSize', MAC_WAYS, 1 << 20);
    const txSlots = pow2Opt(opts.txSlots, BRIDGE_DEFAULTS.txSlots, 'txSlots', 2, MAX_NUM_SLOTS);
    const rxSlots = pow2Opt(opts.rxSlots, BRIDGE_DEFAULTS.rxSlots, 'rxSlots', 2, MAX_NUM_SLOTS);
    const bufSize = intOpt(opts.bufSize, BRIDGE_DEFAULTS.bufSize, 'bufSize', 64, 65535 - 63);
    bcheck(bufSize % 64 === 0, 'ERR_BAD_OPTION', `bufSize must be a multiple of 64, got ${bufSize}`);
    const batch = intOpt(opts.batch, BRIDGE_DEFAULTS.batch, 'batch', 1, 1024);
    const ageing = intOpt(opts.ageing, BRIDGE_DEFAULTS.ageing, 'ageing', 0, 0x7fffffff);
    const lookup = opts.lookup ?? BRIDGE_DEFAULTS.lookup;
    bcheck(typeof lookup === 'string' && /^[A-Za-z0-9_.-]{1,31}$/.test(lookup), 'ERR_BAD_OPTION',
      `lookup must be the name of a registered lookup function, got ${String(lookup)}`);
    const ifBytes = netmapIfBytes({ txSlots, rxSlots, bufSize });
    const portBytes = align(ifBytes + leaseBytes(rxSlots), 4096);
    const portsOff = 4096 + BH_SIZE;
    const macOff = align(portsOff + PT_SIZE * maxPorts, 4096);
    const areaOff = align(macOff + MAC_ENTRY * macSize, 4096);
    // Whole 64 KiB pages: the region can then be a WebAssembly.Memory, copied with memory.copy (Region).
    const total = align(areaOff + portBytes * maxPorts, 65536);
    bcheck(total <= 0xffff_ff00, 'ERR_BAD_OPTION',
      `a bridge of ${maxPorts} ports with ${txSlots}/${rxSlots} slots of ${bufSize} B needs ${total} bytes, over 4 GiB: lower maxPorts or ring sizes`);
    let region: Region;
    try {
      region = Region.create(total);
    } catch (e) {
      throw new BridgeError('ERR_NO_MEMORY', `cannot allocate ${total} bytes for bridge ${name}: ${(e as Error).message}`);
    }
    const hdr = region.alloc(BH_SIZE, 4096);
    region.alloc(total - hdr - BH_SIZE); // the rest of the region is laid out by hand below
    const u32 = region.u32;
    const h = hdr >>> 2;
    u32[h + (BH_MAGIC >>> 2)] = BRIDGE_MAGIC;
    u32[h + (BH_VERSION >>> 2)] = BRIDGE_VERSION;
    u32[h + (BH_MAX_PORTS >>> 2)] = maxPorts;
    u32[h + (BH_MAC_SETS >>> 2)] = macSize / MAC_WAYS;
    u32[h + (BH_TX_SLOTS >>> 2)] = txSlots;
    u32[h + (BH_RX_SLOTS >>> 2)] = rxSlots;
    u32[h + (BH_BUF_SIZE >>> 2)] = bufSize;
    u32[h + (BH_BATCH >>> 2)] = batch;
    u32[h + (BH_PORT_BYTES >>> 2)] = portBytes;
    u32[h + (BH_PORTS_OFF >>> 2)] = portsOff;
    u32[h + (BH_MAC_OFF >>> 2)] = macOff;
    u32[h + (BH_AREA_OFF >>> 2)] = areaOff;
    u32[h + (BH_AGEING >>> 2)] = ageing;
    u32[h + (BH_EPOCH >>> 2)] = Math.floor(Date.now() / 1000);
    for (let i = 0; i < name.length; i++) region.u8[hdr + BH_NAME + i] = name.charCodeAt(i);
    for (let i = 0; i < lookup.length; i++) region.u8[hdr + BH_LOOKUP + i] = lookup.charCodeAt(i);
    return new Bridge(region, hdr);
  }

  /** A view of a bridge created elsewhere (usually in another thread), from its region's buffer. */
  static attach(shared: Shareable): Bridge {
    return new Bridge(Region.attach(shared), 4096);
  }

  get sab(): SharedArrayBuffer {
    return this.region.sab;
  }

  /** What to post to another thread for Bridge.attach: the region's WebAssembly.Memory, or its buffer. */
  get shareable(): Shareable {
    return this.region.shareable;
  }

  private readStr(off: number, max: number): string {
    let s = '';
    for (let i = 0; i < max && this.region.u8[off + i] !== 0; i++) s += String.fromCharCode(this.region.u8[off + i]);
    return s;
  }

  private hw(field: number): number {
    return (this.hdr + field) >>> 2;
  }

  /** Byte offset of port slot i's table entry. */
  portEntry(i: number): number {
    return this.portsOff + i * PT_SIZE;
  }

  portWord(i: number, field: number): number {
    return (this.portsOff + i * PT_SIZE + field) >>> 2;
  }

  get ageing(): number {
    return Atomics.load(this.region.u32, this.hw(BH_AGEING));
  }

  set ageing(seconds: number) {
    bcheck(Number.isInteger(seconds) && seconds >= 0 && seconds <= 0x7fffffff, 'ERR_BAD_OPTION',
      `ageing must be a whole number of seconds ≥ 0, got ${seconds}`);
    Atomics.store(this.region.u32, this.hw(BH_AGEING), seconds);
  }

  get epoch(): number {
    return this.region.u32[this.hw(BH_EPOCH)];
  }

  /** The MAC table's clock: seconds since the epoch, as the clock word holds it (layout.ts). */
  get clock(): number {
    return Atomics.load(this.region.u32, this.hw(BH_CLOCK));
  }

  /**
   * Moves the clock word to the system clock (`nowMs`, default Date.now()) unless it is already
   * there or ahead (it never goes back: a thread whose clock lags cannot age entries early).
   * Returns the word's value afterwards.
   */
  tickClock(nowMs = Date.now()): number {
    const u32 = this.region.u32;
    const w = this.hw(BH_CLOCK);
    const s = Math.floor(nowMs / 1000) - u32[this.hw(BH_EPOCH)];
    for (;;) {
      const c = Atomics.load(u32, w);
      if (s <= c || s < 0) return c;
      if (Atomics.compareExchange(u32, w, c, s) === c) return s;
    }
  }

  get portHigh(): number {
    return Atomics.load(this.region.i32, this.hw(BH_PORT_HIGH));
  }

  get activePorts(): number {
    return Atomics.load(this.region.i32, this.hw(BH_NPORTS));
  }

  /** Frames whose source MAC could not be learned because its table set was full of live entries. */
  get macFull(): number {
    return Atomics.load(this.region.u32, this.hw(BH_MAC_FULL));
  }

  portState(i: number): number {
    return Atomics.load(this.region.i32, this.portWord(i, P_STATE));
  }

  portName(i: number): string {
    return this.readStr(this.portEntry(i) + P_NAME, 16);
  }

  /** Slot index of the active (or closing) port with this full name, or -1. */
  findPort(name: string): number {
    const high = this.portHigh;
    for (let i = 0; i < high; i++) {
      if (this.portState(i) !== PORT_FREE && this.portName(i) === name) return i;
    }
    return -1;
  }

  /**
   * Adds a port and returns its slot. Lays out fresh rings and buffers in the slot's area, then
   * publishes the port (state = active) with one store: senders flood to it from then on.
   */
  addPort(name: string, opts: { persistent?: boolean; owner?: number } = {}): number {
    bcheck(this.findPort(name) < 0, 'ERR_PORT_EXISTS', `port ${name} already exists on bridge ${this.name}`);
    let slot = -1;
    for (let i = 0; i < this.maxPorts; i++) {
      if (this.portState(i) === PORT_FREE) { slot = i; break; }
    }
    if (slot < 0) {
      throw new BridgeError('ERR_BRIDGE_FULL',
        `bridge ${this.name} has all ${this.maxPorts} ports in use: close a port or create the bridge with a larger maxPorts`);
    }
    const r = this.region;
    const e = this.portEntry(slot);
    const ifOff = this.areaOff + slot * this.portBytes;
    const nif = NetmapIf.init(r, ifOff, { name, txSlots: this.txSlots, rxSlots: this.rxSlots, bufSize: this.bufSize });
    const leaseOff = this.#leaseOff(slot);
    r.u8.fill(0, leaseOff, leaseOff + leaseBytes(this.rxSlots));
    // The whole entry is zeroed below: its private words (RX lock, hwcur/hwtail copies, lease
    // numbers, TX hwcur) start at 0, which matches the fresh rings (RX tail 0, TX tail n − 1).
    const gen = r.u32[(e + P_GEN) >>> 2] + 1;
    r.u8.fill(0, e, e + PT_SIZE);
    r.u32[(e + P_GEN) >>> 2] = gen;
    r.u32[(e + P_IF_OFF) >>> 2] = ifOff;
    r.u32[(e + P_LEASE_OFF) >>> 2] = leaseOff;
    r.u32[(e + P_FLAGS) >>> 2] = opts.persistent ? PF_PERSISTENT : 0;
    r.i32[(e + P_OWNER) >>> 2] = opts.owner !== undefined ? opts.owner + 1 : 0;
    r.u32[(e + P_LAST_B) >>> 2] = 0;
    for (let i = 0; i < name.length; i++) r.u8[e + P_NAME + i] = name.charCodeAt(i);
    this.ifs[slot] = nif;
    this.rxl[slot] = undefined;
    if (slot >= this.portHigh) Atomics.store(r.i32, this.hw(BH_PORT_HIGH), slot + 1);
    Atomics.add(r.i32, this.hw(BH_NPORTS), 1);
    Atomics.store(r.i32, this.portWord(slot, P_STATE), PORT_ACTIVE);
    return slot;
  }

  /** Byte offset of slot i's RX lease table: right after its netmap_if, rings and buffers. */
  #leaseOff(i: number): number {
    return this.areaOff + i * this.portBytes + netmapIfBytes({ txSlots: this.txSlots, rxSlots: this.rxSlots, bufSize: this.bufSize });
  }

  /** The netmap_if of port slot i (its rings and buffers). */
  netmapIf(i: number): NetmapIf {
    if (!(Number.isInteger(i) && i >= 0 && i < this.maxPorts && this.portState(i) !== PORT_FREE)) {
      throw new BridgeError('ERR_NO_PORT', `bridge ${this.name} has no port in slot ${i}`);
    }
    let nif = this.ifs[i];
    const off = this.region.u32[this.portWord(i, P_IF_OFF)];
    if (!nif || nif.offset !== off) this.ifs[i] = nif = this.#attachIf(i, off);
    return nif;
  }

  /**
   * A view of the netmap_if at `off` (port slot i) with this bridge's geometry and no other. A
   * view is built, once per thread, from what the netmap_if and ring headers say, and those are
   * in memory the port's user can write: a user that rewrote its ring's buf_ofs or num_slots, or
   * the pool size, would make every thread that attaches later copy frames into, or read them
   * from, other ports' memory. So the geometry words are first written back from the bridge's
   * own values (they are constants: rewriting them changes nothing for a port that behaves),
   * and the view is checked after; a port whose user keeps rewriting them while we attach is
   * refused (ERR_BAD_PORT). Runs on a thread's first use of a port only.
   */
  #attachIf(i: number, off: number): NetmapIf {
    const r = this.region;
    const dv = r.dv;
    const txOff = off + netmapIfSize(2);
    const rxOff = txOff + align(ringSize(this.txSlots), ALIGN);
    const pool = rxOff + align(ringSize(this.rxSlots), ALIGN);
    const poolBufs = FIRST_BUF + this.txSlots + this.rxSlots;
    bcheck(off === this.areaOff + i * this.portBytes, 'ERR_BAD_PORT', `port slot ${i} has a corrupt netmap_if offset ${off}`);
    for (let attempt = 0; attempt < 3; attempt++) {
      dv.setUint32(off + NI_TX_RINGS, 1, true);
      dv.setUint32(off + NI_RX_RINGS, 1, true);
      dv.setBigInt64(off + NI_RING_OFS, BigInt(txOff - off), true);
      dv.setBigInt64(off + NI_RING_OFS + 8, BigInt(rxOff - off), true);
      dv.setUint32(off + NI_POOL_BUFS, poolBufs, true);
      for (const [ro, slots, dir] of [[txOff, this.txSlots, TX], [rxOff, this.rxSlots, RX]]) {
        dv.setBigInt64(ro + NR_BUF_OFS, BigInt(pool - ro), true);
        dv.setUint32(ro + NR_NUM_SLOTS, slots, true);
        dv.setUint32(ro + NR_BUF_SIZE, this.bufSize, true);
        dv.setUint16(ro + NR_DIR, dir, true);
      }
      let nif: NetmapIf;
      try {
        nif = NetmapIf.attach(r, off);
      } catch {
        continue;
      }
      const tx = nif.txRings[0];
      const rx = nif.rxRings[0];
      if (nif.txRings.length === 1 && nif.rxRings.length === 1 && nif.poolBufs === poolBufs &&
        tx.offset === txOff && tx.numSlots === this.txSlots && tx.bufSize === this.bufSize && tx.bufBase === pool &&
        rx.offset === rxOff && rx.numSlots === this.rxSlots && rx.bufSize === this.bufSize && rx.bufBase === pool) {
        return nif;
      }
    }
    throw new BridgeError('ERR_BAD_PORT', `the user of port ${this.portName(i)} keeps rewriting its ring geometry: port refused`);
  }

  setOwner(i: number, threadId: number): void {
    Atomics.store(this.region.i32, this.portWord(i, P_OWNER), threadId + 1);
  }

  isPersistent(i: number): boolean {
    return (this.region.u32[this.portWord(i, P_FLAGS)] & PF_PERSISTENT) !== 0;
  }

  setPersistent(i: number, on: boolean): void {
    const w = this.portWord(i, P_FLAGS);
    this.region.u32[w] = on ? this.region.u32[w] | PF_PERSISTENT : this.region.u32[w] & ~PF_PERSISTENT;
  }

  /** Phase 1 of removal: new frames stop going to (and coming from) the port. */
  beginRemove(i: number): void {
    bcheck(this.portState(i) === PORT_ACTIVE || this.portState(i) === PORT_CLOSING, 'ERR_NO_PORT', `no port in slot ${i}`);
    if (Atomics.compareExchange(this.region.i32, this.portWord(i, P_STATE), PORT_ACTIVE, PORT_CLOSING) === PORT_ACTIVE) {
      Atomics.sub(this.region.i32, this.hw(BH_NPORTS), 1);
    }
    const rx = this.netmapIf(i).rxRings[0];
    rx.wakeAll();
    this.netmapIf(i).txRings[0].wakeAll();
    // Nobody mirrors into a port that is going away, and its own settings stop counting.
    const u32 = this.region.u32;
    for (let p = 0; p < this.portHigh; p++) {
      if (u32[this.portWord(p, P_MIRROR_TX)] === i + 1) u32[this.portWord(p, P_MIRROR_TX)] = 0;
      if (u32[this.portWord(p, P_MIRROR_RX)] === i + 1) u32[this.portWord(p, P_MIRROR_RX)] = 0;
    }
    u32[this.portWord(i, P_MIRROR_TX)] = 0;
    u32[this.portWord(i, P_MIRROR_RX)] = 0;
    u32[this.portWord(i, P_VLAN_MODE)] = VLAN_NONE;
    this.recount();
  }

  /** Recomputes the header's feature counts, which keep forwarding on its fast path when 0. */
  private recount(): void {
    const u32 = this.region.u32;
    let vlans = 0;
    let mirrors = 0;
    for (let p = 0; p < this.portHigh; p++) {
      if (this.portState(p) !== PORT_ACTIVE) continue;
      if (u32[this.portWord(p, P_VLAN_MODE)] !== VLAN_NONE) vlans++;
      if (u32[this.portWord(p, P_MIRROR_TX)] !== 0) mirrors++;
      if (u32[this.portWord(p, P_MIRROR_RX)] !== 0) mirrors++;
    }
    Atomics.store(u32, this.hw(BH_VLAN_PORTS), vlans);
    Atomics.store(u32, this.hw(BH_MIRRORS), mirrors);
  }

  #activeSlot(i: number): void {
    bcheck(Number.isInteger(i) && i >= 0 && i < this.maxPorts && this.portState(i) === PORT_ACTIVE, 'ERR_NO_PORT',
      `bridge ${this.name} has no active port in slot ${i}`);
  }

  /**
   * Sets a port's 802.1Q mode. Access: untagged frames in and out, in one VLAN; tagged frames in
   * are dropped. Trunk: tagged frames of the listed VLANs pass with their tag; untagged frames
   * take the native VLAN (and leave untagged), or are dropped without one. None: VLAN-unaware,
   * frames pass as they are among other unaware ports. Learning and flooding are per VLAN.
   */
  setVlan(i: number, cfg: VlanConfig): void {
    this.#activeSlot(i);
    const u32 = this.region.u32;
    const vid = (v: unknown, what: string) => {
      bcheck(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 4094, 'ERR_BAD_VLAN',
        `${what} must be a VLAN id from 1 to 4094, got ${String(v)}`);
      return v as number;
    };
    const map = this.portWord(i, P_VLAN_MAP);
    if (cfg.mode === 'none') {
      u32[this.portWord(i, P_VLAN_MODE)] = VLAN_NONE;
    } else if (cfg.mode === 'access') {
      const v = vid(cfg.vlan, 'access vlan');
      u32[this.portWord(i, P_PVID)] = v;
      u32[this.portWord(i, P_VLAN_MODE)] = VLAN_ACCESS;
    } else if (cfg.mode === 'trunk') {
      bcheck(Array.isArray(cfg.vlans), 'ERR_BAD_VLAN', 'a trunk needs the list of VLANs it carries');
      const ids = cfg.vlans.map((v) => vid(v, 'trunk vlan'));
      const native = cfg.native === undefined || cfg.native === 0 ? 0 : vid(cfg.native, 'native vlan');
      u32.fill(0, map, map + 128);
      for (const v of ids) u32[map + (v >>> 5)] |= 1 << (v & 31);
      if (native) u32[map + (native >>> 5)] |= 1 << (native & 31);
      u32[this.portWord(i, P_PVID)] = native;
      u32[this.portWord(i, P_VLAN_MODE)] = VLAN_TRUNK;
    } else {
      throw new BridgeError('ERR_BAD_VLAN', `VLAN mode must be none, access or trunk, got ${String((cfg as { mode: unknown }).mode)}`);
    }
    this.recount();
  }

  vlanConfig(i: number): VlanConfig {
    const u32 = this.region.u32;
    const mode = u32[this.portWord(i, P_VLAN_MODE)];
    const pvid = u32[this.portWord(i, P_PVID)];
    if (mode === VLAN_ACCESS) return { mode: 'access', vlan: pvid };
    if (mode === VLAN_TRUNK) {
      const map = this.portWord(i, P_VLAN_MAP);
      const vlans: number[] = [];
      for (let v = 1; v < 4095; v++) if ((u32[map + (v >>> 5)] & (1 << (v & 31))) !== 0 && v !== pvid) vlans.push(v);
      return pvid ? { mode: 'trunk', vlans, native: pvid } : { mode: 'trunk', vlans };
    }
    return { mode: 'none' };
  }

  /**
   * Makes port `m` a mirror (monitor) port that gets a copy of every frame the `tx` ports send and
   * every frame the `rx` ports receive. A mirror port gets no normal traffic. When its ring is
   * full the copies are dropped and counted (mirrorDrops) and the mirrored ports lose nothing.
   * An empty config turns `m` back into a normal port.
   */
  setMirror(m: number, cfg: MirrorConfig): void {
    this.#activeSlot(m);
    const tx = cfg.tx ?? [];
    const rx = cfg.rx ?? [];
    for (const p of [...tx, ...rx]) {
      this.#activeSlot(p);
      bcheck(p !== m, 'ERR_BAD_MIRROR', 'a mirror port cannot mirror itself');
    }
    const u32 = this.region.u32;
    for (let p = 0; p < this.portHigh; p++) {
      if (u32[this.portWord(p, P_MIRROR_TX)] === m + 1) u32[this.portWord(p, P_MIRROR_TX)] = 0;
      if (u32[this.portWord(p, P_MIRROR_RX)] === m + 1) u32[this.portWord(p, P_MIRROR_RX)] = 0;
    }
    const on = tx.length + rx.length > 0;
    const fw = this.portWord(m, P_FLAGS);
    u32[fw] = on ? u32[fw] | PF_MIRROR : u32[fw] & ~PF_MIRROR;
    if (on) this.forgetPort(m);
    for (const p of tx) u32[this.portWord(p, P_MIRROR_TX)] = m + 1;
    for (const p of rx) u32[this.portWord(p, P_MIRROR_RX)] = m + 1;
    this.recount();
  }

  /**
   * Phase 2: frees the slot if nothing is in flight: the port's own txsync is idle and its RX ring
   * has no unfinished lease. Returns false to be called again later. Does not wait.
   */
  tryFinishRemove(i: number): boolean {
    if (this.portState(i) !== PORT_CLOSING) return this.portState(i) === PORT_FREE;
    const r = this.region;
    if (Atomics.load(r.i32, this.portWord(i, P_BUSY)) !== 0) return false;
    if (!this.rxLeasesAt(i).idle()) return false;
    this.#free(i);
    return true;
  }

  /**
   * Frees a closing port's slot even though something stays held: its txsync mark, its RX lock,
   * or a lease no thread finishes (a holder that is stuck, or dead without anyone knowing). The
   * unfinished leases become empty frames, as reclaimThread makes them. Counted (`forced`).
   * Switch calls it when tryFinishRemove has kept failing for REMOVE_FORCE_MS.
   */
  forceFinishRemove(i: number): void {
    if (this.portState(i) !== PORT_CLOSING) return;
    const r = this.region;
    const lk = this.rxLeasesAt(i);
    Atomics.store(r.i32, this.portWord(i, P_BUSY), 0);
    Atomics.store(r.i32, lk.lockW, REGISTRY_HOLDER);
    lk.reclaim(() => true);
    lk.unlock();
    Atomics.add(r.u32, this.hw(BH_FORCED), 1);
    this.#free(i);
  }

  /** The end of every removal: the port's MACs are forgotten and its slot is free for reuse. */
  #free(i: number): void {
    this.forgetPort(i);
    Atomics.store(this.region.i32, this.portWord(i, P_STATE), PORT_FREE);
  }

  /** Port removals finished by force (forceFinishRemove). */
  get forcedRemovals(): number {
    return Atomics.load(this.region.u32, this.hw(BH_FORCED));
  }

  /** Removes every MAC table entry that points at port slot i. */
  forgetPort(i: number): void {
    this.mac.forget(i);
  }

  /**
   * Releases what thread `threadId` held when it died: ring locks, its port's txsync mark, and
   * unfinished leases on every RX ring (their slots become empty 0-length frames, and later
   * leases are published). Returns how many objects were released.
   *
   * A ring whose lock another thread keeps for REGISTRY_LOCK_MS is taken to be held by another
   * dead thread, not yet reclaimed: it is skipped instead of waited for forever, and this
   * thread's leases on it are released by the reclaimThread call that frees that lock.
   */
  reclaimThread(threadId: number): number {
    const r = this.region;
    const me = threadId + 1;
    let released = 0;
    let blocked = false;
    const high = this.portHigh;
    const dead = (holder: number) => holder === me || this.deadOwners.has(holder);
    for (let i = 0; i < high; i++) {
      if (this.portState(i) === PORT_FREE) continue;
      if (Atomics.compareExchange(r.i32, this.portWord(i, P_BUSY), me, 0) === me) released++;
      const lk = this.rxLeasesAt(i);
      if (lk.breakLock(me)) released++;
      // Take the ring lock as the registry, to release leases and publish what is done.
      if (!lk.lock(REGISTRY_HOLDER, REGISTRY_LOCK_MS)) {
        blocked = true;
        continue;
      }
      released += lk.reclaim(dead);
      lk.unlock();
    }
    // Every ring was seen: no dead thread's lease is left anywhere. Otherwise remember this one.
    if (blocked) this.deadOwners.add(me);
    else this.deadOwners.clear();
    return released;
  }

  /** Counters of port slot i (a snapshot). */
  counters(i: number): PortCounters {
    const base = (this.portEntry(i) + P_COUNTERS) >>> 3;
    const out = {} as PortCounters;
    COUNTER_NAMES.forEach((name, k) => { out[name] = this.region.f64[base + COUNTER_INDEX[k]]; });
    return out;
  }

  resetCounters(i: number): void {
    const base = (this.portEntry(i) + P_COUNTERS) >>> 3;
    this.region.f64.fill(0, base, base + N_COUNTERS);
  }

  ports(): PortInfo[] {
    const out: PortInfo[] = [];
    const high = this.portHigh;
    for (let i = 0; i < high; i++) {
      const st = this.portState(i);
      if (st === PORT_FREE) continue;
      out.push({
        index: i, name: this.portName(i), state: st === PORT_ACTIVE ? 'active' : 'closing', persistent: this.isPersistent(i),
        owner: Atomics.load(this.region.i32, this.portWord(i, P_OWNER)) - 1, vlan: this.vlanConfig(i),
        mirror: (this.region.u32[this.portWord(i, P_FLAGS)] & PF_MIRROR) !== 0, counters: this.counters(i),
      });
    }
    return out;
  }

  /** The learned MAC addresses, with their port and age in seconds (nowSec: bridge clock). */
  macTable(nowSec = Math.floor(Date.now() / 1000)): MacEntry[] {
    const out: MacEntry[] = [];
    const ageing = this.ageing;
    const now = nowSec - this.epoch;
    this.mac.forEach((a, b, vlan, port, seen) => {
      const age = now - seen;
      if (ageing !== 0 && age > ageing) return;
      out.push({ mac: macString(a, b), vlan, port, portName: this.portName(port), age: Math.max(0, age) });
    });
    return out.sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : a.vlan - b.vlan));
  }

  /** Forgets every learned address. */
  flushMacTable(): void {
    this.mac.flush();
  }

  /**
   * The RX ring of slot i as laid out in the region, with no state check (the forwarder checks
   * the slot's state under the ring lock itself). The slot's area never moves, so this is safe
   * even for a slot that is being removed.
   */
  rxRingAt(i: number): Ring {
    const off = this.region.u32[this.portWord(i, P_IF_OFF)];
    let nif = this.ifs[i];
    if (!nif || nif.offset !== off) this.ifs[i] = nif = this.#attachIf(i, off);
    return nif.rxRings[0];
  }

  /**
   * The RX lease state of slot i (its ring, lock and leases), with no state check, as the
   * forwarder uses it. One view per slot per thread, rebuilt when the slot's area is attached again.
   */
  rxLeasesAt(i: number): RxLeases {
    const ring = this.rxRingAt(i);
    let lk = this.rxl[i];
    if (lk === undefined || lk.ring !== ring) this.rxl[i] = lk = new RxLeases(this.region, this.portEntry(i), ring, this.#leaseOff(i));
    return lk;
  }

  /** The RX ring of port i (helper for tests and tools). */
  rxRing(i: number): Ring {
    return this.netmapIf(i).rxRings[0];
  }

  txRing(i: number): Ring {
    return this.netmapIf(i).txRings[0];
  }
}

/** How long reclaimThread waits for a ring lock before taking its holder for dead too (a live one holds it for µs). */
const REGISTRY_LOCK_MS = 500;
