/**
 * The control server of `vswitch serve`: a Unix stream socket speaking the NDJSON protocol of
 * protocol.ts to a Switch that lives in this (the main) thread. pkt-gen and bridge jobs run as
 * Workers of this process and open their ports by name on that Switch.
 *
 * Robustness, since anything that can open the socket may send anything:
 * - request lines are bounded (MAX_LINE): a longer one gets an error reply and the connection
 *   is closed; bad JSON or a bad request shape gets ERR_BAD_REQUEST and the connection stays;
 * - all connections together hold at most MAX_HELD_TOTAL bytes of requests not yet handled
 *   (lines still incomplete): the one that goes over gets ERR_SERVER_BUSY and is closed;
 * - a client that does not read its replies is paused (no more of its requests are read) while
 *   more than HIGH_WATER bytes wait for it, and dropped if stream events pile up over
 *   MAX_BUFFERED;
 * - an idle connection holds no timer and no buffer; connections and jobs are capped;
 * - every handler runs under try/catch and every socket has an error listener.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { checkBridgeName, parsePortName, type VlanConfig } from '#bridge';
import { Switch, type SwitchOptions } from '../../core/switch.js';
import { VswitchError, errorToData } from '../../core/errors.js';
import { startPktGen } from '../pktgen/runner.js';
import type { PktGenOptions } from '../pktgen/types.js';
import { runBridge } from '../join/join.js';
import { attachFromSpec, type AttachSpec } from './attach.js';
import { adapterFor, listAdapters, capture } from '../../adapters/index.js';
import { applyConfig, type ServeConfig } from './config.js';
import { GuestHost } from './guests.js';
import { checkSocketPath, preparePrivateDir } from './paths.js';
import {
  CTL_ERR, LineSplitter, MAX_LINE, OPS, PROTOCOL_VERSION, encodeLine, packageVersion,
  type PingInfo, type PortStats,
} from './control-protocol.js';

/** Reading a client's requests pauses while this many reply bytes wait for it. */
export const HIGH_WATER = 1 << 20;
/** A client with this many bytes waiting (it does not read) is disconnected. */
export const MAX_BUFFERED = 16 << 20;
export const MAX_CONNECTIONS = 512;
/**
 * Bytes of request data not yet handled (mostly lines still incomplete) that all connections
 * together may hold. Each may hold up to MAX_LINE, but MAX_CONNECTIONS of them would be half a
 * gigabyte: past this budget, the connection whose data pushed it over is refused.
 */
export const MAX_HELD_TOTAL = 32 << 20;
export const MAX_JOBS = 64;
export const MAX_JOBS_PER_CONNECTION = 32;

export interface ControlServerOptions {
  /** Absolute socket path (see resolveSocketPath). */
  socket: string;
  /** The path is the default one: its directory must then be ours and private. */
  isDefaultPath?: boolean;
  /** Serve this Switch (it is not closed by close()). Default: a new Switch(switchOptions). */
  switch?: Switch;
  switchOptions?: SwitchOptions;
  /** Bridges and persistent ports to create at start. */
  config?: ServeConfig;
  /** File name used in config error messages. */
  configFile?: string;
  /** Called when a client sends `shutdown` (default: close()). */
  onShutdown?: () => void;
  /** Run VXLAN, QEMU dgram and QEMU stream adapters in Workers of their own (default true; see AttachOptions). */
  adapterThreads?: boolean;
}

interface Job {
  done: Promise<unknown>;
  stop(): Promise<unknown>;
}

interface Conn {
  socket: Socket;
  lines: LineSplitter;
  /** Bytes of `lines` counted in the server's total (ControlServer.#held). */
  held: number;
  streams: Map<number, Job>;
  paused: boolean;
  ending: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function badRequest(message: string): VswitchError {
  return new VswitchError(CTL_ERR.BAD_REQUEST, message);
}

function strArg(req: Record<string, unknown>, key: string, usage: string): string {
  const v = req[key];
  if (typeof v !== 'string') throw badRequest(`${usage}: "${key}" must be a string`);
  return v;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** Resolves true if something accepts connections on `path`, false if nothing does. */
export function probeSocket(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const timer = setTimeout(() => { s.destroy(); resolve(true); }, timeoutMs);
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve(true); });
    s.once('error', (e) => {
      clearTimeout(timer);
      const c = errno(e);
      resolve(!(c === 'ECONNREFUSED' || c === 'ENOENT' || c === 'ENOTSOCK'));
    });
  });
}

export class ControlServer {
  readonly socketPath: string;
  readonly switch: Switch;
  readonly startedAt = Date.now();
  readonly #server: Server;
  readonly #ownSwitch: boolean;
  readonly #conns = new Set<Conn>();
  readonly #jobs = new Set<Job>();
  readonly #onShutdown: () => void;
  /** v86 guests this daemon hosts (ctl guest-start, config "guests"). */
  readonly guests: GuestHost;
  /** Request bytes all connections hold, not yet handled (see MAX_HELD_TOTAL). */
  #held = 0;
  #ino = -1;
  #closing: Promise<void> | undefined;

  readonly #adapterThreads: boolean;

  private constructor(socketPath: string, sw: Switch, ownSwitch: boolean, guests: GuestHost, onShutdown: (() => void) | undefined, adapterThreads: boolean) {
    this.#adapterThreads = adapterThreads;
    this.socketPath = socketPath;
    this.switch = sw;
    this.guests = guests;
    this.#ownSwitch = ownSwitch;
    this.#onShutdown = onShutdown ?? (() => { void this.close(); });
    this.#server = createServer({ allowHalfOpen: false }, (s) => this.#onConnection(s));
    this.#server.maxConnections = MAX_CONNECTIONS;
    this.#server.on('error', () => { /* after listen: nothing to do; the socket stays */ });
  }

  /**
   * Creates the socket (refusing to start over a live one, removing a stale one) and starts
   * serving. Rejects with ERR_DAEMON_RUNNING when another server answers on the path.
   */
  static async listen(opts: ControlServerOptions): Promise<ControlServer> {
    const path = opts.socket;
    checkSocketPath(path);
    preparePrivateDir(path, !!opts.isDefaultPath);
    await clearStale(path);
    const own = !opts.switch;
    const sw = opts.switch ?? new Switch(opts.switchOptions);
    let srv: ControlServer | undefined;
    const guests = new GuestHost(sw);
    try {
      if (opts.config) applyConfig(sw, opts.config, opts.configFile);
      // Adapters listen before the control socket does, so a VM started after "listening" finds them.
      for (const [i, spec] of (opts.config?.attach ?? []).entries()) {
        try {
          await attachFromSpec(sw, spec, { threads: opts.adapterThreads });
        } catch (e) {
          throw new VswitchError('ERR_BAD_CONFIG', `config ${opts.configFile ?? '(config)'}: attach[${i}]: ${(e as Error).message}`);
        }
      }
      for (const [i, spec] of (opts.config?.guests ?? []).entries()) {
        try {
          await guests.start(spec);
        } catch (e) {
          throw new VswitchError('ERR_BAD_CONFIG', `config ${opts.configFile ?? '(config)'}: guests[${i}]: ${(e as Error).message}`);
        }
      }
      srv = new ControlServer(path, sw, own, guests, opts.onShutdown, opts.adapterThreads ?? true);
      await srv.#listen();
      return srv;
    } catch (e) {
      await guests.stopAll();
      await Promise.all(listAdapters(sw).map((a) => a.close().catch(() => {})));
      if (own) await sw.close();
      throw e;
    }
  }

  async #listen(): Promise<void> {
    const path = this.socketPath;
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        if (errno(e) === 'EADDRINUSE') reject(new VswitchError(CTL_ERR.DAEMON_RUNNING, `another vswitch serve is running on ${path}`));
        else reject(new VswitchError('ERR_LISTEN', `cannot listen on ${path}: ${e.message}`));
      };
      this.#server.once('error', onError);
      // The socket file is created by bind() inside listen(): make it 0600 from the start.
      let old: number | undefined;
      try { old = process.umask(0o177); } catch { /* not allowed in Workers */ }
      try {
        this.#server.listen(path, () => {
          this.#server.off('error', onError);
          resolve();
        });
      } finally {
        if (old !== undefined) process.umask(old);
      }
    });
    chmodSync(path, 0o600);
    this.#ino = statSync(path).ino;
  }

  /** Streams (pkt-gen, bridge) running. */
  get jobs(): number {
    return this.#jobs.size;
  }

  get connections(): number {
    return this.#conns.size;
  }

  ping(): PingInfo {
    return {
      pid: process.pid, version: packageVersion(), uptimeSec: Math.round(Date.now() - this.startedAt) / 1000,
      socket: this.socketPath, switch: this.switch.name, jobs: this.#jobs.size, protocol: PROTOCOL_VERSION,
    };
  }

  /**
   * Stops every job (their clients get the final replies), closes every connection, removes
   * the socket file, and closes the Switch if this server created it.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    const stops = [...this.#jobs].map((j) => j.stop().catch(() => {}));
    await withTimeout(Promise.all(stops), 5000);
    await withTimeout(this.guests.stopAll(), 10_000);
    await withTimeout(Promise.all(listAdapters(this.switch).map((a) => a.close().catch(() => {}))), 5000);
    // Let the final replies reach the sockets, then hang up.
    await new Promise((r) => setImmediate(r));
    const ends = [...this.#conns].map((c) => new Promise<void>((r) => {
      c.ending = true;
      if (c.socket.destroyed) return r();
      c.socket.once('close', () => r());
      c.socket.end();
    }));
    await withTimeout(Promise.all(ends), 500);
    for (const c of this.#conns) c.socket.destroy();
    await withTimeout(closed, 500);
    this.#unlink();
    if (this.#ownSwitch) await this.switch.close();
  }

  #unlink(): void {
    try {
      const st = lstatSync(this.socketPath);
      if (st.isSocket() && st.ino === this.#ino) unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
  }

  // ---- connections ---------------------------------------------------------------------------

  #onConnection(socket: Socket): void {
    socket.on('error', () => { /* ECONNRESET, EPIPE: 'close' follows */ });
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const conn: Conn = { socket, lines: new LineSplitter(MAX_LINE), held: 0, streams: new Map(), paused: false, ending: false };
    this.#conns.add(conn);
    socket.on('data', (chunk: Buffer) => {
      if (conn.ending) return;
      conn.lines.push(chunk);
      this.#pump(conn);
      this.#account(conn);
      if (this.#held > MAX_HELD_TOTAL && conn.lines.pending > 0 && !conn.ending) {
        this.#refuse(conn, CTL_ERR.SERVER_BUSY,
          `the server already holds ${this.#held >> 20} MiB of incomplete requests from all clients: closing this connection`);
      }
    });
    socket.once('close', () => this.#dropConn(conn));
  }

  #dropConn(conn: Conn): void {
    if (!this.#conns.delete(conn)) return;
    conn.ending = true;
    conn.lines.clear();
    this.#account(conn);
    for (const job of conn.streams.values()) job.stop().catch(() => {});
  }

  /** Brings the server-wide count of held request bytes up to date for `conn`. */
  #account(conn: Conn): void {
    this.#held += conn.lines.pending - conn.held;
    conn.held = conn.lines.pending;
  }

  /** Replies one error, forgets what the connection sent, and hangs up on it. */
  #refuse(conn: Conn, code: string, message: string): void {
    const s = conn.socket;
    this.#send(conn, { id: null, ok: false, error: { code, message } });
    conn.ending = true;
    conn.lines.clear();
    this.#account(conn);
    s.end();
    setTimeout(() => s.destroy(), 1000).unref();
  }

  /** Handles complete lines while the client keeps up with its replies. */
  #pump(conn: Conn): void {
    const s = conn.socket;
    while (!conn.ending && !s.destroyed) {
      if (s.writableLength > HIGH_WATER) {
        if (!conn.paused) {
          conn.paused = true;
          s.pause();
          s.once('drain', () => {
            conn.paused = false;
            if (conn.ending || s.destroyed) return;
            s.resume();
            this.#pump(conn);
            this.#account(conn);
          });
        }
        return;
      }
      const line = conn.lines.next();
      if (line === null) return;
      if (line === false) {
        this.#refuse(conn, CTL_ERR.LINE_TOO_LONG, `request line longer than ${MAX_LINE} bytes: closing the connection`);
        return;
      }
      if (line.length === 0) continue;
      try {
        this.#onLine(conn, line);
      } catch (e) {
        this.#send(conn, { id: null, ok: false, error: errorToData(e) });
      }
    }
  }

  #send(conn: Conn, msg: { id: number | null; [k: string]: unknown }): void {
    const s = conn.socket;
    if (s.destroyed || !s.writable) return;
    if (s.writableLength > MAX_BUFFERED) {
      // The client does not read what it asked for: drop it (its jobs stop on close).
      s.destroy();
      return;
    }
    let line: string;
    try {
      line = encodeLine(msg);
    } catch (e) {
      line = encodeLine({ id: msg.id, ok: false, error: { code: 'ERR_INTERNAL', message: `reply could not be encoded: ${(e as Error).message}` } });
    }
    s.write(line);
  }

  #onLine(conn: Conn, line: Buffer): void {
    let req: unknown;
    try {
      req = JSON.parse(line.toString('utf8'));
    } catch (e) {
      this.#send(conn, {
        id: null, ok: false,
        error: { code: CTL_ERR.BAD_REQUEST, message: `request is not valid JSON (${(e as Error).message}): send one JSON object per line, like {"id":1,"op":"ping"}` },
      });
      return;
    }
    if (!isObject(req)) {
      this.#send(conn, { id: null, ok: false, error: { code: CTL_ERR.BAD_REQUEST, message: 'a request must be a JSON object like {"id":1,"op":"ping"}' } });
      return;
    }
    const id = req.id;
    if (typeof id !== 'number' || !Number.isFinite(id)) {
      this.#send(conn, { id: null, ok: false, error: { code: CTL_ERR.BAD_REQUEST, message: 'a request needs a numeric "id", like {"id":1,"op":"ping"}' } });
      return;
    }
    const op = req.op;
    if (typeof op !== 'string') {
      this.#send(conn, { id, ok: false, error: { code: CTL_ERR.BAD_REQUEST, message: `a request needs an "op" string; ops are ${OPS.join(', ')}` } });
      return;
    }
    if (!(OPS as readonly string[]).includes(op)) {
      const shown = JSON.stringify(op.length > 40 ? op.slice(0, 40) + '...' : op);
      this.#send(conn, { id, ok: false, error: { code: CTL_ERR.UNKNOWN_OP, message: `unknown op ${shown}; ops are ${OPS.join(', ')}` } });
      return;
    }
    this.#dispatch(conn, id, op, req);
  }

  #dispatch(conn: Conn, id: number, op: string, req: Record<string, unknown>): void {
    const ok = (value: unknown) => this.#send(conn, { id, ok: true, value });
    const fail = (e: unknown) => this.#send(conn, { id, ok: false, error: errorToData(e) });
    try {
      if (this.#closing) throw new VswitchError(CTL_ERR.SHUTTING_DOWN, 'vswitch serve is shutting down');
      const sw = this.switch;
      switch (op) {
        case 'ping':
          ok(this.ping());
          break;
        case 'list':
          ok(sw.list());
          break;
        case 'create': {
          const p = parsePortName(strArg(req, 'name', 'create needs {"name": "vale0:p"}'));
          sw.createPort(p.name);
          ok({ name: p.name, bridge: p.bridge });
          break;
        }
        case 'remove': {
          const p = parsePortName(strArg(req, 'name', 'remove needs {"name": "vale0:p"}'));
          sw.removePort(p.name).then(() => ok({ name: p.name }), fail);
          break;
        }
        case 'fdb': {
          const b = checkBridgeName(strArg(req, 'bridge', 'fdb needs {"bridge": "vale0"}'));
          ok(sw.fdb(b));
          break;
        }
        case 'stats':
          ok(this.#stats(req.port));
          break;
        case 'vlan': {
          const p = parsePortName(strArg(req, 'port', 'vlan needs {"port": "vale0:p", "mode": "access"|"trunk"|"none", ...}'));
          const cfg = req.config as VlanConfig;
          if (!cfg || typeof cfg !== 'object') throw badRequest('vlan needs {"config": {"mode": "access", "vlan": 10}} or a trunk/none config');
          sw.setVlan(p.name, cfg);
          ok({ port: p.name, vlan: cfg });
          break;
        }
        case 'mirror': {
          const p = parsePortName(strArg(req, 'port', 'mirror needs {"port": "vale0:mon", "tx": [...], "rx": [...]}'));
          const list = (k: string) => {
            const v = req[k];
            if (v === undefined) return [];
            if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw badRequest(`mirror: "${k}" must be an array of port names`);
            return v as string[];
          };
          sw.setMirror(p.name, { tx: list('tx'), rx: list('rx') });
          ok({ port: p.name, tx: list('tx'), rx: list('rx') });
          break;
        }
        case 'ageing': {
          const b = checkBridgeName(strArg(req, 'bridge', 'ageing needs {"bridge": "vale0", "seconds": 300}'));
          if (typeof req.seconds !== 'number') throw badRequest('ageing needs {"seconds": N} (0 disables ageing)');
          sw.setAgeing(b, req.seconds);
          ok({ bridge: b, seconds: req.seconds });
          break;
        }
        case 'attach': {
          const spec = req.spec;
          if (!isObject(spec)) throw badRequest('attach needs {"spec": {"port": "vale0:vm1", "kind": "qemu-stream", "addr": "unix:/path"}}');
          attachFromSpec(sw, spec as unknown as AttachSpec, { threads: this.#adapterThreads }).then((a) => ok(a.stats()), fail);
          break;
        }
        case 'detach': {
          const p = parsePortName(strArg(req, 'port', 'detach needs {"port": "vale0:vm1"}'));
          const a = adapterFor(sw, p.name);
          if (!a) throw new VswitchError('ERR_NO_ADAPTER', `no adapter is attached to ${p.name}; attached: ${listAdapters(sw).map((x) => x.portName).join(', ') || 'none'}`);
          const last = a.stats();
          a.close().then(() => ok(last), fail);
          break;
        }
        case 'adapters':
          ok(listAdapters(sw).map((a) => a.stats()));
          break;
        case 'guest-start':
          if (!isObject(req.spec)) throw badRequest('guest-start needs {"spec": {"port": "vale0:vm1", "kernel": "...", "bios": "...", ...}}');
          this.guests.start(req.spec).then(ok, fail);
          break;
        case 'guest-stop':
          this.guests.stop(strArg(req, 'port', 'guest-stop needs {"port": "vale0:vm1"}')).then(ok, fail);
          break;
        case 'guests':
          this.guests.list().then(ok, fail);
          break;
        case 'capture':
          this.#capture(conn, id, req, ok, fail);
          break;
        case 'pktgen':
          this.#pktgen(conn, id, req, ok, fail);
          break;
        case 'bridge':
          this.#bridge(conn, id, req, ok, fail);
          break;
        case 'stop': {
          const target = req.target;
          if (typeof target !== 'number') throw badRequest('stop needs {"target": <id of the stream>}');
          const job = conn.streams.get(target);
          if (!job) throw new VswitchError(CTL_ERR.NO_STREAM, `no stream with id ${target} is running on this connection`);
          job.stop().catch(() => {});
          ok({ stopped: target });
          break;
        }
        case 'shutdown':
          ok({ pid: process.pid });
          setImmediate(() => this.#onShutdown());
          break;
        default:
          throw new VswitchError(CTL_ERR.UNKNOWN_OP, `unknown op ${JSON.stringify(op)}; ops are ${OPS.join(', ')}`);
      }
    } catch (e) {
      fail(e);
    }
  }

  #stats(port: unknown): PortStats | PortStats[] {
    const all: PortStats[] = this.switch.ports().map((p) => ({ name: p.name, bridge: p.bridge, index: p.index, persistent: p.persistent, counters: p.counters }));
    if (port === undefined || port === null) return all;
    if (typeof port !== 'string') throw badRequest('stats takes {"port": "vale0:p"} or no port');
    const name = parsePortName(port).name;
    const found = all.find((p) => p.name === name);
    if (!found) {
      throw new VswitchError('ERR_NO_PORT', `no port named ${name}; ports: ${all.map((p) => p.name).join(', ') || 'none'}`);
    }
    return found;
  }

  #checkJobSlot(conn: Conn, id: number): void {
    if (conn.streams.has(id)) throw badRequest(`id ${id} is already used by a running stream on this connection: use a new id`);
    if (this.#jobs.size >= MAX_JOBS) {
      throw new VswitchError(CTL_ERR.TOO_MANY_JOBS, `vswitch serve already runs ${MAX_JOBS} jobs (the limit): stop some first`);
    }
    if (conn.streams.size >= MAX_JOBS_PER_CONNECTION) {
      throw new VswitchError(CTL_ERR.TOO_MANY_JOBS, `this connection already runs ${MAX_JOBS_PER_CONNECTION} jobs (the limit)`);
    }
  }

  #track(conn: Conn, id: number, job: Job, ok: (v: unknown) => void, fail: (e: unknown) => void, after?: () => void): void {
    conn.streams.set(id, job);
    this.#jobs.add(job);
    job.done.then(ok, fail).finally(() => {
      after?.();
      conn.streams.delete(id);
      this.#jobs.delete(job);
    });
    // A client that left while the job was being set up.
    if (conn.ending && !this.#closing) job.stop().catch(() => {});
  }

  #pktgen(conn: Conn, id: number, req: Record<string, unknown>, ok: (v: unknown) => void, fail: (e: unknown) => void): void {
    this.#checkJobSlot(conn, id);
    const raw = req.opts;
    if (!isObject(raw)) throw badRequest('pktgen needs {"opts": {"port": "vale0:a", "func": "rx", ...}} (PktGenOptions)');
    const opts = { ...raw, switch: this.switch.name } as unknown as PktGenOptions & { frames?: unknown };
    if (raw.frames !== undefined) {
      if (!Array.isArray(raw.frames) || raw.frames.length === 0 || !raw.frames.every((f) => typeof f === 'string')) {
        throw badRequest('pktgen opts.frames must be a non-empty array of base64 strings (one frame each)');
      }
      opts.frames = (raw.frames as string[]).map((f) => new Uint8Array(Buffer.from(f, 'base64')));
    }
    parsePortName(opts.port);
    const job = startPktGen(opts, (r) => {
      if (r.kind !== 'final') this.#send(conn, { id, event: 'report', report: r });
    });
    job.started.then(() => this.#send(conn, { id, event: 'started' }), () => {});
    this.#track(conn, id, job, ok, fail);
  }

  /**
   * Streams a capture to the client: the pcap bytes (global header, then whole records) travel
   * base64-encoded in `pcap` events, so the client writes a file or stdout exactly as produced.
   * A client that reads too slowly makes the capture drop (and count) frames, not the daemon grow.
   */
  #capture(conn: Conn, id: number, req: Record<string, unknown>, ok: (v: unknown) => void, fail: (e: unknown) => void): void {
    this.#checkJobSlot(conn, id);
    const target = strArg(req, 'target', 'capture needs {"target": "vale0:vm1" or "vale0"}');
    const num = (k: string, min: number) => {
      const v = req[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !(v >= min)) throw badRequest(`capture "${k}" must be a number ≥ ${min}`);
      return v;
    };
    const sink = {
      write: (chunk: Uint8Array) => { this.#send(conn, { id, event: 'pcap', data: Buffer.from(chunk).toString('base64') }); return true; },
      get writableLength() { return conn.socket.writableLength; },
    };
    capture(this.switch, target, sink, { count: num('count', 1), durationMs: num('durationMs', 1), snaplen: num('snaplen', 64) })
      .then((cap) => {
        this.#send(conn, { id, event: 'started', mode: cap.mode, portName: cap.portName });
        this.#track(conn, id, cap, ok, fail);
      }, fail);
  }

  #bridge(conn: Conn, id: number, req: Record<string, unknown>, ok: (v: unknown) => void, fail: (e: unknown) => void): void {
    this.#checkJobSlot(conn, id);
    const usage = 'bridge needs {"a": "valeA:x", "b": "valeB:y"}';
    const a = strArg(req, 'a', usage);
    const b = strArg(req, 'b', usage);
    const batch = req.batch;
    if (batch !== undefined && typeof batch !== 'number') throw badRequest('bridge "batch" must be a number');
    const intervalMs = req.intervalMs ?? 1000;
    if (typeof intervalMs !== 'number' || !(intervalMs === 0 || (intervalMs >= 10 && intervalMs <= 86_400_000))) {
      throw badRequest('bridge "intervalMs" must be 0 (no counter events) or from 10 to 86400000');
    }
    const job = runBridge(a, b, { batch, switch: this.switch.name });
    let timer: NodeJS.Timeout | undefined;
    job.started.then(() => {
      this.#send(conn, { id, event: 'started', a: job.a, b: job.b });
      if (intervalMs > 0) timer = setInterval(() => this.#send(conn, { id, event: 'counters', counters: job.counters() }), intervalMs);
    }, () => {});
    this.#track(conn, id, job, ok, fail, () => clearInterval(timer));
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Refuses a live socket at `path`, removes a stale one, refuses anything that is not a socket. */
async function clearStale(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) {
    throw new VswitchError('ERR_BAD_ARG', `${path} exists and is not a socket: remove it or pass another --socket PATH`);
  }
  if (await probeSocket(path)) throw new VswitchError(CTL_ERR.DAEMON_RUNNING, `another vswitch serve is running on ${path}`);
  try {
    unlinkSync(path);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}
