/**
 * The control protocol of `vswitch serve`: NDJSON (one JSON object per line, UTF-8, "\n") over a
 * Unix stream socket.
 *
 *   request   {"id": <number>, "op": "<op>", ...args}
 *   reply     {"id": <id>, "ok": true, "value": <any>}
 *             {"id": <id>, "ok": false, "error": {"code": "ERR_...", "message": "..."}}
 *   event     {"id": <id>, "event": "<name>", ...}      (streaming ops, before their reply)
 *
 * Ops (args → value):
 *   ping                      → PingInfo {pid, version, uptimeSec, socket, switch, jobs, protocol}
 *   list                      → BridgeSummary[] (Switch.list())
 *   create {name}             → {name, bridge}  creates a persistent port (vale-ctl -n)
 *   remove {name}             → {name}          removes a persistent port (ERR_PORT_BUSY while open)
 *   fdb {bridge}              → MacEntry[]
 *   stats {port?}             → PortStats for one port, PortStats[] for all ports
 *   pktgen {opts}             → stream: {"event":"started"}, then {"event":"report","report":PktGenReport}
 *                               per interval; final value = the final PktGenReport.
 *                               opts is PktGenOptions; opts.switch is set by the server;
 *                               opts.frames, if given, is an array of base64 strings.
 *   bridge {a, b, batch?, intervalMs?}
 *                             → stream: {"event":"started"}, then {"event":"counters","counters":BridgeToolCounters}
 *                               every intervalMs (default 1000, 0 = none) until stopped;
 *                               final value = BridgeToolCounters.
 *   stop {target}             → {stopped: target}  stops the stream with id `target` (its own
 *                               final reply follows); ERR_NO_STREAM if it is not running.
 *   shutdown                  → {pid}  then the server stops its jobs, closes and exits.
 *
 * Rules the server keeps: lines are at most MAX_LINE bytes (longer: ERR_LINE_TOO_LONG reply with
 * id null, then the connection is closed); a line that is not a JSON object with a numeric id
 * and a string op gets ERR_BAD_REQUEST (id null when none could be read) and the connection
 * stays; an unknown op gets ERR_UNKNOWN_OP; when a connection closes, every stream it started
 * is stopped.
 */
import { readFileSync } from 'node:fs';

export const PROTOCOL_VERSION = 1;
/** Longest request line the server reads (bytes, without the newline). */
export const MAX_LINE = 1 << 20;
/** Longest reply line a client reads (a `list` of a full switch is a few MB). */
export const MAX_REPLY_LINE = 64 << 20;

export const OPS = ['ping', 'list', 'create', 'remove', 'fdb', 'stats', 'vlan', 'mirror', 'ageing', 'attach', 'detach', 'adapters', 'guest-start', 'guest-stop', 'guests', 'capture', 'pktgen', 'bridge', 'stop', 'shutdown'] as const;
export type Op = typeof OPS[number];
/** Ops that send events and end with a final reply when done or stopped. */
export const STREAM_OPS: readonly Op[] = ['pktgen', 'bridge', 'capture'];

export const CTL_ERR = {
  NO_DAEMON: 'ERR_NO_DAEMON',
  DAEMON_RUNNING: 'ERR_DAEMON_RUNNING',
  DAEMON_GONE: 'ERR_DAEMON_GONE',
  BAD_REQUEST: 'ERR_BAD_REQUEST',
  UNKNOWN_OP: 'ERR_UNKNOWN_OP',
  LINE_TOO_LONG: 'ERR_LINE_TOO_LONG',
  NO_STREAM: 'ERR_NO_STREAM',
  TOO_MANY_JOBS: 'ERR_TOO_MANY_JOBS',
  SHUTTING_DOWN: 'ERR_SHUTTING_DOWN',
  /** All clients together hold too many incomplete request bytes (server.ts MAX_HELD_TOTAL). */
  SERVER_BUSY: 'ERR_SERVER_BUSY',
  TIMEOUT: 'ERR_TIMEOUT',
} as const;

export interface ErrorData {
  code: string;
  message: string;
}

export interface RequestMsg {
  id: number;
  op: string;
  [arg: string]: unknown;
}

export type ReplyMsg =
  | { id: number | null; ok: true; value: unknown }
  | { id: number | null; ok: false; error: ErrorData };

export interface EventMsg {
  id: number;
  event: string;
  [field: string]: unknown;
}

export interface PingInfo {
  pid: number;
  version: string;
  uptimeSec: number;
  socket: string;
  /** Name of the server's Switch (what pkt-gen jobs open ports on). */
  switch: string;
  /** Streams (pkt-gen, bridge) running. */
  jobs: number;
  protocol: number;
}

export interface PortStats {
  name: string;
  bridge: string;
  index: number;
  persistent: boolean;
  counters: Record<string, number>;
}

/** The message missing-daemon errors carry (one line, says what to do). */
export function noDaemonMessage(path: string): string {
  return `no vswitch serve is listening on ${path}: start one with "vswitch serve" (or pass --socket PATH / set VSWITCH_SOCKET)`;
}

/** One message as a line. */
export function encodeLine(msg: unknown): string {
  return JSON.stringify(msg) + '\n';
}

/**
 * Splits a byte stream into lines of at most `maxLine` bytes. `push` hands complete lines to
 * the callback (without "\n" and a trailing "\r"); it returns false, and stops, once the data
 * without a newline grows over the limit.
 */
export class LineSplitter {
  readonly maxLine: number;
  // Chunks received and not yet returned; chunks before #scanned hold no newline. Work is linear
  // in the bytes received: each byte is scanned once and copied at most once (into its line).
  #chunks: Buffer[] = [];
  #len = 0;
  #scanned = 0;
  /** Bytes in chunks[0 .. #scanned). */
  #scannedBytes = 0;

  constructor(maxLine: number) {
    this.maxLine = maxLine;
  }

  /** Bytes held that are not yet a complete line. */
  get pending(): number {
    return this.#len;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#len += chunk.length;
  }

  /**
   * The next complete line, null when none is complete yet, or false when the line being
   * received is longer than the limit.
   */
  next(): Buffer | null | false {
    const chunks = this.#chunks;
    let before = this.#scannedBytes; // bytes in the chunks before k
    for (let k = this.#scanned; k < chunks.length; k++) {
      const c = chunks[k]!;
      const nl = c.indexOf(10);
      if (nl < 0) {
        before += c.length;
        this.#scanned = k + 1;
        this.#scannedBytes = before;
        if (before > this.maxLine) return false;
        continue;
      }
      if (before + nl > this.maxLine) return false;
      const line = k === 0 ? c.subarray(0, nl) : Buffer.concat([...chunks.slice(0, k), c.subarray(0, nl)], before + nl);
      const rest = c.subarray(nl + 1);
      chunks.splice(0, k + 1);
      if (rest.length > 0) chunks.unshift(rest);
      this.#len -= before + nl + 1;
      this.#scanned = 0;
      this.#scannedBytes = 0;
      const n = line.length;
      return n > 0 && line[n - 1] === 13 ? line.subarray(0, n - 1) : line;
    }
    return this.#len > this.maxLine ? false : null;
  }

  clear(): void {
    this.#chunks = [];
    this.#len = 0;
    this.#scanned = 0;
    this.#scannedBytes = 0;
  }
}

let version: string | undefined;
/** This package's version (from its package.json), "0.0.0" if it cannot be read. */
export function packageVersion(): string {
  if (version) return version;
  version = '0.0.0';
  let url = new URL('.', import.meta.url);
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'vswitch' && typeof pkg.version === 'string') {
        version = pkg.version;
        break;
      }
    } catch {
      // keep looking upwards
    }
    url = new URL('..', url);
  }
  return version;
}
