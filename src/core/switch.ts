/**
 * The Switch is the registry of bridges and ports, like the netmap kernel module's VALE tables.
 * It lives in the thread that creates it (usually the main thread) and answers requests from
 * any Worker of the process on a BroadcastChannel named after it, so Workers open ports by name
 * with no MessagePort plumbing: `await openPort('vale0:a')`. After the open, frames move through
 * the bridge's SharedArrayBuffer only.
 *
 * Lifecycle follows VALE: a port is created by its first open and destroyed by its last close,
 * unless it is persistent (createPort, like `vale-ctl -n`). A bridge is created with its first
 * port. When a Worker exits or crashes, the thread that created it sees the exit (every thread
 * that imports vswitch watches the Workers it starts and tells the Switch), and the Switch
 * releases what that thread held: ring locks, unfinished leases, its opens of ports.
 */
import { osThreadAlive, threadId, unref, type OsThread } from '#platform';
import {
  Bridge, BridgeError, BRIDGE_DEFAULTS, parsePortName, checkBridgeName, type BridgeOptions, type MacEntry, type PortInfo,
  P_GEN, type VlanConfig,
} from '#bridge';
import { ERR, VswitchError, errorToData } from './errors.js';
import { CHANNEL_PREFIX, THREADS_CHANNEL, type BridgeSummary, type OpenOptions, type OpenReply, type Request } from './messages.js';
import { Port } from './port.js';
import { registerLocalSwitch, unregisterLocalSwitch, watchWorkers, type LocalSwitch } from './threads.js';
import { bridgeView } from './views.js';
import { isOsThread } from './os-thread.js';

export interface SwitchOptions {
  /** Name of this switch; Workers reach it with `openPort(name, { switch })`. Default "default". */
  name?: string;
  /** Bridges this switch may hold (VALE: 8). */
  maxBridges?: number;
  /** Options for bridges created on first use (see BridgeOptions for defaults). */
  bridge?: BridgeOptions;
}

interface PortRecord {
  bridge: string;
  index: number;
  gen: number;
  persistent: boolean;
  /** Opens per thread id. */
  opens: Map<number, number>;
  /** The current holders opened it with `share` (then only sharing opens may join). */
  share: boolean;
  /** Who holds it, for ERR_PORT_BUSY messages. */
  holder: string;
}

/** How often the Switch checks that the threads holding its ports still run (ms). */
const LIVENESS_MS = 200;
/**
 * How long a removed port may stay closing because something is still held on it (a txsync mark,
 * its RX lock, an unfinished lease) before it is freed by force. A live thread holds these for
 * microseconds; a dead one is reclaimed within LIVENESS_MS. So this only ends waits on a thread
 * that is stuck, or dead without anyone seeing it.
 */
const REMOVE_FORCE_MS = 1000;

/** Length limit of a holder description (it travels in error messages). */
const MAX_HOLDER = 80;

export class Switch implements LocalSwitch {
  readonly name: string;
  readonly maxBridges: number;
  readonly bridgeDefaults: BridgeOptions;
  readonly #bridges = new Map<string, Bridge>();
  readonly #ports = new Map<string, PortRecord>();
  readonly #channel: InstanceType<typeof BroadcastChannel>;
  readonly #threads: InstanceType<typeof BroadcastChannel>;
  readonly #removing = new Set<Promise<void>>();
  /** Other threads that opened ports here, as OS threads: checked every LIVENESS_MS. */
  readonly #remote = new Map<number, OsThread>();
  #watchdog: ReturnType<typeof setInterval> | null = null;
  /** Moves every bridge's clock word once a second, so no txsync has to read the system clock. */
  readonly #clock: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(opts: SwitchOptions = {}) {
    this.name = opts.name ?? 'default';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(this.name)) {
      throw new VswitchError(ERR.BAD_ARG, `switch name must be 1-64 characters of A-Z a-z 0-9 _ . -, got ${JSON.stringify(this.name)}`);
    }
    this.maxBridges = opts.maxBridges ?? 8;
    if (!Number.isInteger(this.maxBridges) || this.maxBridges < 1 || this.maxBridges > 64) {
      throw new VswitchError(ERR.BAD_ARG, `maxBridges must be an integer in [1, 64], got ${String(opts.maxBridges)}`);
    }
    this.bridgeDefaults = { ...opts.bridge };
    registerLocalSwitch(this);
    this.#channel = new BroadcastChannel(CHANNEL_PREFIX + this.name);
    this.#channel.onmessage = (ev: unknown) => this.#onRequest((ev as { data: Request }).data);
    unref(this.#channel);
    this.#threads = new BroadcastChannel(THREADS_CHANNEL);
    this.#threads.onmessage = (ev: unknown) => {
      const d = (ev as { data: { op: string; threadId: number } }).data;
      if (d && d.op === 'exited' && Number.isInteger(d.threadId)) this.threadExited(d.threadId);
    };
    unref(this.#threads);
    this.#clock = setInterval(() => {
      for (const b of this.#bridges.values()) b.tickClock();
    }, 1000);
    unref(this.#clock);
    watchWorkers();
  }

  // ---- bridges -------------------------------------------------------------------------------

  /** Creates a bridge explicitly (with its own options). Bridges are otherwise created on first open. */
  createBridge(name: string, opts: BridgeOptions = {}): Bridge {
    this.#checkOpen();
    checkBridgeName(name);
    if (this.#bridges.has(name)) throw new VswitchError(ERR.BRIDGE_EXISTS, `bridge ${name} already exists`);
    if (this.#bridges.size >= this.maxBridges) {
      throw new VswitchError(ERR.TOO_MANY_BRIDGES,
        `switch ${this.name} already has ${this.maxBridges} bridges (the limit): remove one, or create the Switch with a larger maxBridges`);
    }
    const b = Bridge.create(name, { ...this.bridgeDefaults, ...opts });
    this.#bridges.set(name, b);
    return b;
  }

  /** The bridge with this name (throws ERR_NO_BRIDGE). */
  bridge(name: string): Bridge {
    const b = this.#bridges.get(name);
    if (!b) {
      throw new VswitchError(ERR.NO_BRIDGE, `no bridge named ${name} on switch ${this.name}; bridges: ${[...this.#bridges.keys()].join(', ') || 'none'}`);
    }
    return b;
  }

  bridgeNames(): string[] {
    return [...this.#bridges.keys()];
  }

  // ---- ports ---------------------------------------------------------------------------------

  /** Opens a port from this thread (creating it, and its bridge, if needed). */
  async open(name: string, opts: OpenOptions = {}): Promise<Port> {
    const r = this.openFor(threadId, name, opts);
    const { bridge, fw } = bridgeView(r.sab);
    return new Port(bridge, fw, r.index, r.name, r.gen, { close: (p) => this.closeFor(threadId, p.name, r.gen) });
  }

  /** Creates a persistent port without opening it (like `vale-ctl -n`). */
  createPort(name: string): void {
    this.#checkOpen();
    const p = parsePortName(name);
    if (this.#ports.has(p.name)) throw new VswitchError(ERR.PORT_EXISTS, `port ${p.name} already exists`);
    this.#attach(p.name, p.bridge, true);
  }

  /** Removes a persistent port. Fails with ERR_PORT_BUSY while it is open. */
  async removePort(name: string): Promise<void> {
    const rec = this.#ports.get(name);
    if (!rec) throw new VswitchError(ERR.NO_PORT, `no port named ${name}`);
    const opens = [...rec.opens.values()].reduce((a, b) => a + b, 0);
    if (opens > 0) throw new VswitchError(ERR.PORT_BUSY, `port ${name} is open ${opens} time(s): close it first`);
    await this.#destroy(name, rec);
  }

  /**
   * Who holds port `name` now ("the qemu-stream adapter", "thread 3"), or null when nobody has
   * it open.
   */
  holderOf(name: string): string | null {
    const rec = this.#ports.get(name);
    return rec && rec.opens.size > 0 ? rec.holder : null;
  }

  /** @internal Opens `name` on behalf of thread `tid`. */
  openFor(tid: number, name: string, opts: { persistent?: boolean; share?: boolean; holder?: string } = {}): OpenReply {
    this.#checkOpen();
    const p = parsePortName(name);
    const share = opts.share === true;
    let holder = `thread ${tid}`;
    if (opts.holder !== undefined) {
      if (typeof opts.holder !== 'string' || opts.holder.length === 0 || opts.holder.length > MAX_HOLDER) {
        throw new VswitchError(ERR.BAD_ARG, `holder must be a non-empty string of at most ${MAX_HOLDER} characters`);
      }
      holder = opts.holder;
    }
    let rec = this.#ports.get(p.name);
    if (rec && rec.opens.size > 0 && !(rec.share && share)) {
      throw new VswitchError(ERR.PORT_BUSY,
        `${p.name} is held by ${rec.holder}${rec.share ? ' (shared; open it with share: true to join)' : ''}; use vswitch capture -i ${p.name} to watch it`);
    }
    if (!rec) rec = this.#attach(p.name, p.bridge, !!opts.persistent);
    else if (opts.persistent) rec.persistent = true;
    if (rec.opens.size === 0) {
      rec.share = share;
      rec.holder = holder;
    }
    rec.opens.set(tid, (rec.opens.get(tid) ?? 0) + 1);
    const b = this.bridge(rec.bridge);
    b.setOwner(rec.index, tid);
    return { sab: b.shareable, bridge: rec.bridge, index: rec.index, gen: rec.gen, name: p.name };
  }

  #attach(name: string, bridgeName: string, persistent: boolean): PortRecord {
    const b = this.#bridges.get(bridgeName) ?? this.createBridge(bridgeName);
    let index: number;
    try {
      index = b.addPort(name, { persistent });
    } catch (e) {
      if (e instanceof BridgeError) throw new VswitchError(e.code, e.message);
      throw e;
    }
    const gen = b.region.u32[b.portWord(index, P_GEN)];
    const rec: PortRecord = { bridge: bridgeName, index, gen, persistent, opens: new Map(), share: false, holder: '' };
    this.#ports.set(name, rec);
    return rec;
  }

  /** @internal Thread `tid` closes one open of `name`. */
  async closeFor(tid: number, name: string, gen?: number): Promise<void> {
    const rec = this.#ports.get(name);
    if (!rec) return;
    if (gen !== undefined && rec.gen !== gen) return; // a later port of the same name: not ours to close
    const n = rec.opens.get(tid) ?? 0;
    if (n <= 1) rec.opens.delete(tid); else rec.opens.set(tid, n - 1);
    if (rec.opens.size === 0 && !rec.persistent) await this.#destroy(name, rec);
  }

  async #destroy(name: string, rec: PortRecord): Promise<void> {
    this.#ports.delete(name);
    const b = this.#bridges.get(rec.bridge);
    if (!b) return;
    b.beginRemove(rec.index);
    const done = (async () => {
      let delay = 0;
      const t0 = performance.now();
      while (!b.tryFinishRemove(rec.index)) {
        if (performance.now() - t0 >= REMOVE_FORCE_MS) {
          // Something stays held (a stuck or unseen dead thread's txsync mark, lock or lease):
          // the port goes anyway, and the bridge counts it (forcedRemovals).
          b.forceFinishRemove(rec.index);
          break;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(50, delay + 1);
      }
    })();
    this.#removing.add(done);
    try {
      await done;
    } finally {
      this.#removing.delete(done);
    }
  }

  /**
   * Releases everything thread `tid` held: ring locks and leases on every bridge, and its opens
   * of ports (destroying ports it was the last user of). Called when a Worker exits.
   */
  threadExited(tid: number): void {
    this.#remote.delete(tid);
    for (const b of this.#bridges.values()) b.reclaimThread(tid);
    for (const [name, rec] of [...this.#ports]) {
      const n = rec.opens.get(tid);
      if (!n) continue;
      rec.opens.delete(tid);
      if (rec.opens.size === 0 && !rec.persistent) void this.#destroy(name, rec);
    }
  }

  // ---- features ------------------------------------------------------------------------------

  #record(name: string): PortRecord {
    const rec = this.#ports.get(name);
    if (!rec) throw new VswitchError(ERR.NO_PORT, `no port named ${name}: open it or create it (vswitch ctl create ${name}) first`);
    return rec;
  }

  #wrap<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof BridgeError) throw new VswitchError(e.code, e.message);
      throw e;
    }
  }

  /**
   * Sets a port's 802.1Q mode: `{ mode: 'access', vlan }`, `{ mode: 'trunk', vlans, native? }`
   * or `{ mode: 'none' }` (VLAN-unaware, the default). Kept until the port is destroyed.
   */
  setVlan(portName: string, cfg: VlanConfig): void {
    const rec = this.#record(parsePortName(portName).name);
    this.#wrap(() => this.bridge(rec.bridge).setVlan(rec.index, cfg));
  }

  /**
   * Makes `mirrorName` a mirror (monitor) port that receives a copy of everything the `tx` ports
   * send and the `rx` ports receive (all on its bridge). `{}` makes it a normal port again.
   */
  setMirror(mirrorName: string, cfg: { tx?: string[]; rx?: string[] }): void {
    const m = this.#record(parsePortName(mirrorName).name);
    const slot = (n: string) => {
      const r = this.#record(parsePortName(n).name);
      if (r.bridge !== m.bridge) throw new VswitchError('ERR_BAD_MIRROR', `${n} is on bridge ${r.bridge}, the mirror ${mirrorName} on ${m.bridge}: a mirror sees its own bridge only`);
      return r.index;
    };
    const tx = (cfg.tx ?? []).map(slot);
    const rx = (cfg.rx ?? []).map(slot);
    this.#wrap(() => this.bridge(m.bridge).setMirror(m.index, { tx, rx }));
  }

  /** Sets a bridge's MAC ageing time in seconds (0: entries never expire). */
  setAgeing(bridgeName: string, seconds: number): void {
    const b = this.bridge(bridgeName);
    this.#wrap(() => { b.ageing = seconds; });
  }

  // ---- inspection ----------------------------------------------------------------------------

  /** Bridges with their ports and counters. */
  list(): BridgeSummary[] {
    return [...this.#bridges.values()].map((b) => ({
      name: b.name,
      ports: this.#portsOf(b),
      macEntries: b.macTable().length,
      macFull: b.macFull,
      forcedRemovals: b.forcedRemovals,
      ageing: b.ageing,
      options: {
        maxPorts: b.maxPorts, macTableSize: b.macSets * 4, txSlots: b.txSlots, rxSlots: b.rxSlots, bufSize: b.bufSize,
        batch: b.batch, ageing: b.ageing, lookup: b.lookupName,
      },
    }));
  }

  /**
   * Ports with their counters, without reading any MAC table: of one bridge, or of all. Cheaper
   * than list() for tools that look ports up (capture, ctl stats).
   */
  ports(bridgeName?: string): (PortInfo & { bridge: string })[] {
    const out: (PortInfo & { bridge: string })[] = [];
    for (const b of this.#bridges.values()) {
      if (bridgeName !== undefined && b.name !== bridgeName) continue;
      for (const p of this.#portsOf(b)) out.push({ ...p, bridge: b.name });
    }
    return out;
  }

  /** A bridge's ports, persistence as the registry knows it (createPort and persistent opens). */
  #portsOf(b: Bridge): PortInfo[] {
    return b.ports().map((p) => ({ ...p, persistent: this.#ports.get(p.name)?.persistent ?? p.persistent }));
  }

  /** The MAC table of a bridge: MAC, port, age in seconds. */
  fdb(bridgeName: string): MacEntry[] {
    return this.bridge(bridgeName).macTable();
  }

  /** Open counts per port name (for tools). */
  opens(name: string): number {
    const rec = this.#ports.get(name);
    return rec ? [...rec.opens.values()].reduce((a, b) => a + b, 0) : 0;
  }

  /** Waits for ports being removed, then stops answering Workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#removing]);
    this.#closed = true;
    clearInterval(this.#clock);
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = null;
    this.#remote.clear();
    this.#channel.close();
    this.#threads.close();
    unregisterLocalSwitch(this);
  }

  /** Watches thread `tid` (another thread of this process) until it dies, then reclaims what it held. */
  #watch(tid: number, os: OsThread): void {
    if (tid === threadId || this.#remote.has(tid)) return;
    this.#remote.set(tid, os);
    if (this.#watchdog) return;
    this.#watchdog = setInterval(() => {
      for (const [t, o] of this.#remote) {
        if (!osThreadAlive(o)) this.threadExited(t); // which forgets t
      }
      if (this.#remote.size === 0 && this.#watchdog) {
        clearInterval(this.#watchdog);
        this.#watchdog = null;
      }
    }, LIVENESS_MS);
    unref(this.#watchdog);
  }

  #checkOpen(): void {
    if (this.#closed) throw new VswitchError(ERR.NO_SWITCH, `switch ${this.name} is closed`);
  }

  #onRequest(req: Request): void {
    if (!req || typeof req !== 'object' || typeof req.id !== 'string' || !('op' in req)) return;
    const reply = (value: unknown) => this.#channel.postMessage({ id: req.id, ok: true, value });
    const fail = (e: unknown) => this.#channel.postMessage({ id: req.id, ok: false, error: errorToData(e) });
    try {
      switch (req.op) {
        case 'open':
          reply(this.openFor(req.threadId, req.name, { persistent: req.persistent, share: req.share, holder: req.holder }));
          if (isOsThread(req.os)) this.#watch(req.threadId, req.os);
          break;
        case 'close':
          this.closeFor(req.threadId, req.name, typeof req.gen === 'number' ? req.gen : undefined).then(() => reply(true), fail);
          break;
        case 'list':
          reply(this.list());
          break;
        case 'fdb':
          reply(this.fdb(req.bridge));
          break;
        default:
          break;
      }
    } catch (e) {
      fail(e);
    }
  }
}

export { BRIDGE_DEFAULTS };
