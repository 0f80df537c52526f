/**
 * Capture (to classic pcap) and replay (from pcap).
 *
 * `capture(sw, target, sink, opts)` records the traffic of a port (both directions) or of a
 * whole bridge. Where the frames come from (`capture.mode`):
 *
 * - `adapter`: the port is fed by an adapter of this process (QEMU stream/dgram, VXLAN); the
 *   adapter hands every frame it moves, both directions, to the capture. Exact, lossless (up to
 *   the sink's buffer limit), and the bridge is not involved.
 * - `mirror`: a capture port is opened on the bridge and made a mirror port (Switch.setMirror) of
 *   the target port's sent and received frames (for a bridge: of the frames every port sends,
 *   ports attached later included). The bridge copies into the capture port's ring; when that
 *   ring is full the bridge drops the copy (counted as the capture port's mirrorDrops), never the
 *   traffic. While a mirror exists the bridge forwards on its general (slower) path.
 * - `flood` (asked for explicitly, bridges only): a capture port that receives what the bridge
 *   floods (broadcast, multicast, unknown unicast — the capture port never sends, so no MAC is
 *   learned on it). Known unicast between other ports is not seen. Costs the bridge nothing.
 *
 * `mode: 'auto'` (default) picks adapter for adapter ports (exact, and the bridge stays on its
 * fast path), mirror for plain ports and bridges.
 *
 * `replayPcap(port, source, opts)` sends the frames of a pcap file into a port (pkt-gen --pcap).
 */
import type { Switch } from '../core/switch.js';
import type { Port } from '../core/port.js';
import { VswitchError } from '../core/errors.js';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { PcapReader, PcapWriter, PcapFileWriter, type PcapRecord, type PcapSink } from '../pcap.js';
import { MIN_FRAME, adapterError, adapterFor, type FrameTap } from './common.js';

export type CaptureMode = 'adapter' | 'mirror' | 'flood';

export interface CaptureOptions {
  /** Stop after this many frames (default: no limit). */
  count?: number;
  /** Stop after this many milliseconds (default: no limit). */
  durationMs?: number;
  /** Bytes stored per frame (default 65535). */
  snaplen?: number;
  /** Where frames come from (see the module doc). Default 'auto'. */
  mode?: 'auto' | CaptureMode;
  /** Name of the capture port (mirror and flood modes); default `<bridge>:capN`. */
  portName?: string;
  /** When the sink buffers more than this many bytes (a Writable's writableLength), frames are dropped and counted. Default 16 MiB. */
  maxBufferedBytes?: number;
}

export interface CaptureResult {
  mode: CaptureMode;
  target: string;
  /** Frames and (original) bytes written. */
  frames: number;
  bytes: number;
  /** Frames seen but not written because the sink was too slow (it buffered more than maxBufferedBytes). */
  dropped: number;
  /**
   * Mirror and flood modes: frames the bridge could not copy into the capture port because its
   * ring was full (the capture port's rxDropRingFull; the traffic itself is not affected). 0 in
   * adapter mode, which has no ring. Frames a capture ever lost = dropped + ringDropped, but for
   * one rare case: a sender in another thread that finds the capture ring's lock held past its
   * spin budget (~0.1 s) drops the copy without touching the ring, and that is counted on the
   * sending port (mirrorDrops in mirror mode, dropBusy in flood mode), not here.
   */
  ringDropped: number;
  /** Why it ended: count reached, duration elapsed, stop() called, the target went away, or a write error. */
  reason: 'count' | 'duration' | 'stopped' | 'gone' | 'error';
  error?: Error;
}

export interface Capture {
  readonly mode: CaptureMode;
  readonly target: string;
  /** The capture port's name (mirror and flood modes), else null. */
  readonly portName: string | null;
  /** Resolves when the capture ended (count, duration, stop, error); the file is closed by then. */
  readonly done: Promise<CaptureResult>;
  /** Counters so far. */
  stats(): Omit<CaptureResult, 'reason'>;
  /** Ends the capture now; resolves like `done`. */
  stop(): Promise<CaptureResult>;
}

/** Per switch: mirrored port name → the capture port that mirrors it; and the capture ports (never mirrored themselves). */
const mirrorState = new WeakMap<Switch, { owner: Map<string, string>; capturePorts: Set<string> }>();

function portIndexes(sw: Switch, bridge: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of sw.ports(bridge)) if (p.state === 'active') m.set(p.name, p.index);
  return m;
}

function capturePortName(sw: Switch, bridge: string): string {
  const taken = portIndexes(sw, bridge);
  for (let k = 0; k < 1000; k++) {
    const n = `${bridge}:cap${k}`;
    if (!taken.has(n)) return n;
  }
  throw adapterError(`no free capture port name on ${bridge}: pass opts.portName`);
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Starts a capture of `target` (a port `vale0:vm1`, or a bridge `vale0`) into `sink`: a file
 * path (created or truncated; closed when the capture ends), or anything with `write(chunk)`
 * such as `process.stdout` or a socket (left open: the caller owns it).
 */
export async function capture(sw: Switch, target: string, sink: string | PcapSink, opts: CaptureOptions = {}): Promise<Capture> {
  if (typeof target !== 'string' || target.length === 0) throw adapterError('capture target must be a port (vale0:vm1) or a bridge (vale0)');
  const count = opts.count ?? 0;
  const durationMs = opts.durationMs ?? 0;
  if (!(Number.isInteger(count) && count >= 0)) throw adapterError(`capture count must be a non-negative integer, got ${String(opts.count)}`);
  if (!(durationMs >= 0)) throw adapterError(`capture duration must be >= 0 ms, got ${String(opts.durationMs)}`);
  const maxBuffered = opts.maxBufferedBytes ?? 16 << 20;
  if (!(typeof maxBuffered === 'number' && maxBuffered >= 0)) throw adapterError(`capture maxBufferedBytes must be a number of bytes >= 0, got ${String(opts.maxBufferedBytes)}`);
  const isPort = target.includes(':');
  const bridge = isPort ? target.slice(0, target.indexOf(':')) : target;
  sw.bridge(bridge); // throws ERR_NO_BRIDGE with the list
  const ports = portIndexes(sw, bridge);
  if (isPort && !ports.has(target)) throw new VswitchError('ERR_NO_PORT', `no port named ${target} on bridge ${bridge}; ports: ${[...ports.keys()].join(', ') || 'none'}`);

  const want = opts.mode ?? 'auto';
  const found = isPort ? adapterFor(sw, target) : undefined;
  // An adapter in its own Worker has no frames in this thread to tap: capture it through a mirror.
  const adapter = found && found.port !== null ? found : undefined;
  let mode: CaptureMode;
  if (want === 'auto') {
    mode = adapter ? 'adapter' : 'mirror';
  } else {
    mode = want;
    if (mode === 'adapter' && !adapter) {
      throw new VswitchError('ERR_CAPTURE_UNSUPPORTED', `${target} is not fed by an adapter of this process: capture it with mode 'mirror'`);
    }
    if (mode === 'flood' && isPort) throw new VswitchError('ERR_CAPTURE_UNSUPPORTED', 'flood capture is for a bridge, not a port: use mode \'mirror\'');
    if (mode !== 'adapter' && mode !== 'mirror' && mode !== 'flood') throw adapterError(`capture mode must be auto, adapter, mirror or flood, got ${String(want)}`);
  }

  if (typeof sink !== 'string' && (typeof sink !== 'object' || sink === null || typeof (sink as PcapSink).write !== 'function')) {
    throw adapterError('capture sink must be a file path or something with write(chunk) (process.stdout, a socket)');
  }
  // The writable under the writer, whose writableLength tells how much is still buffered.
  let stream: { writableLength?: number } | null;
  let fileWriter: PcapFileWriter | null = null;
  if (typeof sink === 'string') {
    const ws = createWriteStream(sink);
    await once(ws, 'open'); // ENOENT/EACCES now, not later
    fileWriter = new PcapFileWriter(ws, { snaplen: opts.snaplen });
    stream = ws;
  } else {
    stream = sink as { writableLength?: number };
  }
  const writer: PcapWriter = fileWriter ?? new PcapWriter(sink as PcapSink, { snaplen: opts.snaplen });
  const buffered = (): number => (stream && typeof stream.writableLength === 'number' ? stream.writableLength : 0);

  let frames = 0;
  let bytes = 0;
  let dropped = 0;
  let ended = false;
  let endReason: CaptureResult['reason'] = 'stopped';
  let endError: Error | undefined;
  let resolveDone!: (r: CaptureResult) => void;
  const done = new Promise<CaptureResult>((r) => { resolveDone = r; });
  const cleanups: (() => void | Promise<void>)[] = [];
  let capPort: Port | null = null;
  // The capture port's ring-full count, read before the port closes (its counters go with it).
  let ringDroppedAtEnd = 0;
  const ringDropped = (): number => {
    if (capPort === null || capPort.closed) return ringDroppedAtEnd;
    return capPort.stats().rxDropRingFull;
  };

  /** Writes one frame; returns false once the capture has ended. */
  const write = (buf: Uint8Array, off: number, len: number): boolean => {
    if (ended) return false;
    if (buffered() > maxBuffered) {
      dropped++;
      return true;
    }
    try {
      writer.writeFrame(off === 0 && len === buf.length ? buf : buf.subarray(off, off + len), now());
    } catch (e) {
      void finish('error', e as Error);
      return false;
    }
    frames++;
    bytes += len;
    if (count > 0 && frames >= count) {
      void finish('count');
      return false;
    }
    return true;
  };

  let finishing: Promise<CaptureResult> | null = null;
  const finish = (reason: CaptureResult['reason'], err?: Error): Promise<CaptureResult> => {
    finishing ??= (async () => {
      ended = true;
      endReason = reason;
      endError = err;
      ringDroppedAtEnd = ringDropped();
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch {
          // best effort
        }
      }
      if (fileWriter) {
        try {
          await fileWriter.close();
        } catch (e) {
          endReason = 'error';
          endError ??= e as Error;
        }
      }
      const r: CaptureResult = { mode, target, frames, bytes, dropped, ringDropped: ringDroppedAtEnd, reason: endReason };
      if (endError) r.error = endError;
      resolveDone(r);
      return r;
    })();
    return finishing;
  };

  if (mode === 'adapter') {
    const tap: FrameTap = (buf, off, len) => { write(buf, off, len); };
    const remove = adapter!.addTap(tap);
    cleanups.push(remove);
    const onClose = () => void finish('gone');
    adapter!.once('close', onClose);
    cleanups.push(() => { adapter!.off('close', onClose); });
  } else {
    const name = opts.portName ?? capturePortName(sw, bridge);
    if (!name.startsWith(`${bridge}:`)) throw adapterError(`capture port ${name} must be on bridge ${bridge}`);
    const p = await sw.open(name, { holder: `a capture of ${target}` }).catch(async (e: unknown) => {
      await finish('error', e as Error); // closes the file
      throw e;
    });
    capPort = p;
    cleanups.push(() => p.close());
    if (mode === 'mirror') {
      // The bridge gives a port one mirror: refuse to steal a port another capture mirrors.
      let state = mirrorState.get(sw);
      if (!state) mirrorState.set(sw, (state = { owner: new Map(), capturePorts: new Set() }));
      const { owner, capturePorts } = state;
      const apply = () => {
        const live = portIndexes(sw, bridge);
        for (const n of [...owner.keys()]) if (n.startsWith(`${bridge}:`) && !live.has(n)) owner.delete(n);
        const names = isPort ? [target] : [...live.keys()].filter((n) => n !== p.name && !capturePorts.has(n));
        const busy = names.filter((n) => owner.has(n) && owner.get(n) !== p.name);
        if (busy.length > 0) {
          throw new VswitchError('ERR_CAPTURE_BUSY',
            `${busy.join(', ')}: already mirrored by capture port ${owner.get(busy[0])}; a port has one mirror, stop that capture first`);
        }
        // Every frame of a bridge is sent by some port: for a bridge, mirror what every port sends.
        sw.setMirror(p.name, isPort ? { tx: names, rx: names } : { tx: names });
        for (const n of names) owner.set(n, p.name);
      };
      capturePorts.add(p.name);
      cleanups.push(() => {
        capturePorts.delete(p.name);
        for (const [n, o] of [...owner]) if (o === p.name) owner.delete(n);
      });
      try {
        apply();
      } catch (e) {
        await finish('error', e as Error);
        throw e;
      }
      if (!isPort) {
        // Ports attached later join the capture.
        let known = [...portIndexes(sw, bridge).keys()].sort().join();
        const t = setInterval(() => {
          const cur = [...portIndexes(sw, bridge).keys()].sort().join();
          if (cur !== known) {
            known = cur;
            try { apply(); } catch { /* a port went away meanwhile; next tick */ }
          }
        }, 250);
        t.unref();
        cleanups.push(() => clearInterval(t));
      }
    }
    void (async () => {
      for (;;) {
        if (ended) return;
        if (p.closed) return void finish('gone');
        if (p.pending === 0) {
          const ok = await p.waitAsync(250);
          if (ended) return;
          if (!ok) {
            if (p.closed) return void finish('gone');
            if (isPort && !portIndexes(sw, bridge).has(target)) return void finish('gone');
            continue;
          }
        }
        const b = p.receive(512);
        for (let i = 0; i < b.count; i++) {
          const len = b.length(i);
          if (len === 0) continue;
          if (!write(b.buffer, b.offset(i), len)) break;
        }
        p.release();
        await new Promise<void>((r) => setImmediate(r));
      }
    })().catch((e: unknown) => void finish('error', e as Error));
  }

  if (durationMs > 0) {
    const t = setTimeout(() => void finish('duration'), durationMs);
    cleanups.push(() => clearTimeout(t));
  }

  return {
    mode,
    target,
    portName: capPort === null ? null : (capPort as Port).name,
    done,
    stats: () => ({ mode, target, frames, bytes, dropped, ringDropped: ringDropped() }),
    stop: () => finish('stopped'),
  };
}

// ---- replay ------------------------------------------------------------------------------------

export interface ReplayOptions {
  /** Frames to send in total; default: every record once (with `loop`, until stopped by count). */
  count?: number;
  /** Start over at the end of the file until `count` frames are sent. Default false. */
  loop?: boolean;
  /** Frames per second (default: as fast as the switch takes them). */
  ratePps?: number;
  /** Frames per sendBatch (default 256). */
  batch?: number;
}

export interface ReplayResult {
  /** Frames handed to the switch (port.sendBatch), and frames it accepted. */
  sent: number;
  accepted: number;
  /** Records not sent: shorter than 14 bytes, longer than the port's MTU, or stored truncated (snaplen). */
  skipped: { undersize: number; oversize: number; truncated: number };
}

/**
 * Replays the frames of a pcap file (or reader, or any list of frames) into `port`, in order.
 * Records stored truncated (incl_len < orig_len) are skipped and counted: sending them would
 * put frames on the bridge that never existed.
 */
export async function replayPcap(port: Port, source: string | PcapReader | Iterable<Uint8Array>, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const batchSize = opts.batch ?? 256;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw adapterError(`replay batch must be a positive integer, got ${String(opts.batch)}`);
  const reader = typeof source === 'string' ? await PcapReader.fromFile(source) : source;
  const skipped = { undersize: 0, oversize: 0, truncated: 0 };
  const frames: Uint8Array[] = [];
  const iter: Iterable<PcapRecord | Uint8Array> = reader instanceof PcapReader ? reader.records() : reader;
  for (const r of iter) {
    const data = r instanceof Uint8Array ? r : r.data;
    if (!(r instanceof Uint8Array) && r.data.length < r.origLen) skipped.truncated++;
    else if (data.length < MIN_FRAME) skipped.undersize++;
    else if (data.length > port.mtu) skipped.oversize++;
    else frames.push(data);
  }
  const total = opts.count ?? (opts.loop ? Infinity : frames.length);
  if (!(total >= 0)) throw adapterError(`replay count must be >= 0, got ${String(opts.count)}`);
  if (opts.loop && total === Infinity) throw adapterError('replay with loop needs a count');
  const rate = opts.ratePps ?? 0;
  let sent = 0;
  let accepted = 0;
  let k = 0;
  const t0 = performance.now();
  while (sent < total && frames.length > 0) {
    const batch: Uint8Array[] = [];
    while (batch.length < batchSize && sent + batch.length < total) {
      if (k === frames.length) {
        if (!opts.loop) break;
        k = 0;
      }
      batch.push(frames[k++]);
    }
    if (batch.length === 0) break;
    accepted += port.sendBatch(batch);
    sent += batch.length;
    if (rate > 0) {
      const due = t0 + (sent / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    } else {
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  return { sent, accepted, skipped };
}
