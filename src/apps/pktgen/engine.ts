/**
 * The pkt-gen engine: netmap's traffic generator and sink over one Port, run in the thread
 * that owns the port (a Worker, so it can block and spin). The loops keep to the rules of the
 * data path: nothing allocated per frame, counters in locals, one ring publication per batch.
 *
 *  tx     fill TX buffers once with the frame (as pkt-gen does), then per batch only commit;
 *         address ranges and pcap replay rewrite each frame.
 *  txseq  like tx, with a 32-bit big-endian sequence number at byte 42 (UDP payload) and the
 *         UDP checksum kept right.
 *  rx     count frames and bytes.
 *  rxseq  rx, checking sequence numbers: gaps are lost frames, going backwards is reordering.
 *  ping   one frame with sequence number and timestamp, wait for the echo, measure the RTT.
 *  pong   send every frame back with MACs and IPs swapped.
 *
 * Reports are produced every `reportMs` and at the end, through a callback. Progress is also
 * mirrored in `live` (a Float64Array, possibly shared) so a benchmark can sample it.
 */
import type { Port } from '../../core/port.js';
import { FrameBuilder, getSeq, setSeq, swapForPong, timestampMs, writeTimestamp } from '../../frame.js';
import type { PktGenOptions, PktGenReport, RttStats } from './types.js';

/** Indices in the `live` array. */
export const LIVE_PACKETS = 0;
export const LIVE_BYTES = 1;
export const LIVE_DONE = 2;
export const LIVE_LOST = 3;
export const LIVE_SIZE = 8;

export interface EngineControl {
  /** Int32Array whose word 0 becomes non-zero to stop the run. */
  stop: Int32Array;
  /** Mirrors packets/bytes as the run goes (LIVE_* indices). */
  live: Float64Array;
}

const now = () => performance.now();

export class PktGen {
  readonly port: Port;
  readonly opts: Required<Omit<PktGenOptions, 'frames' | 'src' | 'dst' | 'srcMac' | 'dstMac' | 'switch'>> & PktGenOptions;
  readonly ctl: EngineControl;
  #builder: FrameBuilder;
  // running totals
  #packets = 0;
  #bytes = 0;
  #events = 0;
  #lost = 0;
  #reordered = 0;
  #rtts: number[] = [];
  /** Index in #rtts of the first sample of the current interval. */
  #rttMark = 0;
  #t0 = 0;
  // interval state
  #lastT = 0;
  #lastPackets = 0;
  #lastBytes = 0;
  #lastEvents = 0;

  constructor(port: Port, opts: PktGenOptions, ctl?: Partial<EngineControl>) {
    this.port = port;
    const pingLike = opts.func === 'ping' || opts.func === 'pong';
    this.opts = {
      ...opts,
      count: opts.count ?? 0,
      length: opts.length ?? 60,
      batch: opts.batch ?? (pingLike ? 1 : 512),
      rate: opts.rate ?? 0,
      reportMs: opts.reportMs ?? 1000,
      waitSec: opts.waitSec ?? 0,
      duration: opts.duration ?? 0,
      spin: opts.spin ?? false,
    };
    const o = this.opts;
    if (!Number.isInteger(o.batch) || o.batch < 1 || o.batch > 4096) throw new RangeError(`batch (-b) must be an integer in [1, 4096], got ${o.batch}`);
    if (!Number.isInteger(o.count) || o.count < 0) throw new RangeError(`count (-n) must be a whole number, got ${o.count}`);
    if (!(o.rate >= 0)) throw new RangeError(`rate (-R) must be ≥ 0 frames/s, got ${o.rate}`);
    if (!(o.reportMs >= 10)) throw new RangeError(`report interval (-T) must be at least 10 ms, got ${o.reportMs}`);
    if (o.length > port.mtu) throw new RangeError(`frame length (-l) ${o.length} is over the port's buffer size ${port.mtu}`);
    this.#builder = new FrameBuilder({ length: o.length, srcMac: o.srcMac, dstMac: o.dstMac, src: o.src, dst: o.dst });
    this.ctl = {
      stop: ctl?.stop ?? new Int32Array(new SharedArrayBuffer(4)),
      live: ctl?.live ?? new Float64Array(LIVE_SIZE),
    };
  }

  /** Runs to the end (count, duration, or stop) and returns the final report. */
  run(onReport: (r: PktGenReport) => void = () => {}): PktGenReport {
    const o = this.opts;
    if (o.waitSec > 0) this.#sleep(o.waitSec * 1000);
    this.#t0 = this.#lastT = now();
    switch (o.func) {
      case 'tx': case 'txseq': this.#tx(onReport); break;
      case 'rx': case 'rxseq': this.#rx(onReport); break;
      case 'ping': this.#ping(onReport); break;
      case 'pong': this.#pong(onReport); break;
      default: throw new RangeError(`unknown function ${String(o.func)}: use tx, rx, txseq, rxseq, ping or pong`);
    }
    const fin = this.#report('final', now());
    this.ctl.live[LIVE_DONE] = 1;
    onReport(fin);
    return fin;
  }

  #stopped(t: number): boolean {
    const o = this.opts;
    if (Atomics.load(this.ctl.stop, 0) !== 0) return true;
    if (o.duration > 0 && t - this.#t0 >= o.duration * 1000) return true;
    return this.#countReached();
  }

  /** `count` frames done (never with count 0): #stopped's test that needs no clock. */
  #countReached(): boolean {
    return this.opts.count > 0 && this.#packets >= this.opts.count;
  }

  #sleep(ms: number): void {
    Atomics.wait(this.ctl.stop, 0, 0, ms);
  }

  #tick(t: number, onReport: (r: PktGenReport) => void): void {
    const live = this.ctl.live;
    live[LIVE_PACKETS] = this.#packets;
    live[LIVE_BYTES] = this.#bytes;
    live[LIVE_LOST] = this.#lost;
    if (t - this.#lastT >= this.opts.reportMs) onReport(this.#report('interval', t));
  }

  #report(kind: 'interval' | 'final', t: number): PktGenReport {
    const o = this.opts;
    const final = kind === 'final';
    const seconds = (t - (final ? this.#t0 : this.#lastT)) / 1000;
    const packets = this.#packets - (final ? 0 : this.#lastPackets);
    const bytes = this.#bytes - (final ? 0 : this.#lastBytes);
    const events = this.#events - (final ? 0 : this.#lastEvents);
    this.#lastT = t;
    this.#lastPackets = this.#packets;
    this.#lastBytes = this.#bytes;
    this.#lastEvents = this.#events;
    const r: PktGenReport = {
      kind, func: o.func, port: o.port, packets, bytes, events, seconds,
      pps: seconds > 0 ? packets / seconds : 0, bps: seconds > 0 ? (bytes * 8) / seconds : 0,
    };
    if (o.func === 'tx' || o.func === 'txseq') {
      const c = this.port.closed ? undefined : this.port.stats();
      if (c) r.dropped = c.dropRingFull + c.dropNoDest + c.dropBusy + c.dropBadLen + c.dropBadBuf + c.dropVlan + c.dropLookup;
    }
    if (o.func === 'rxseq') { r.lost = this.#lost; r.reordered = this.#reordered; }
    // Interval reports cover the samples since the last one; the final report covers them all.
    if (o.func === 'ping') {
      r.rtt = rttStats(final ? this.#rtts : this.#rtts.slice(this.#rttMark));
      r.lost = this.#lost;
      if (!final) this.#rttMark = this.#rtts.length;
    }
    return r;
  }

  #tx(onReport: (r: PktGenReport) => void): void {
    const o = this.opts;
    const port = this.port;
    const builder = this.#builder;
    const seq = o.func === 'txseq';
    const replay = o.frames && o.frames.length > 0 ? o.frames : null;
    const dynamic = seq || replay !== null || builder.ranged;
    const len = o.length;
    // Fill every TX buffer once; static traffic then only commits slots, like pkt-gen.
    port.txPrefill((buf, off) => builder.write(buf, off));
    let next = 0;
    let r = 0;
    const rate = o.rate;
    for (;;) {
      const t = now();
      if (this.#stopped(t)) break;
      let n = o.batch;
      if (o.count > 0 && o.count - this.#packets < n) n = o.count - this.#packets;
      if (rate > 0) {
        const allowed = Math.floor(((t - this.#t0) * rate) / 1000) - this.#packets;
        if (allowed <= 0) {
          if (!o.spin) this.#sleep(Math.min(1, (1 - allowed) * 1000 / rate));
          this.#tick(t, onReport);
          continue;
        }
        if (allowed < n) n = allowed;
      }
      const b = port.txReserve(n);
      let bytes = 0;
      if (dynamic) {
        for (let i = 0; i < b.count; i++) {
          const off = b.offset(i);
          let l = len;
          if (replay) {
            const f = replay[r];
            r = r + 1 === replay.length ? 0 : r + 1;
            l = f.length > b.bufSize ? b.bufSize : f.length;
            b.buffer.set(l === f.length ? f : f.subarray(0, l), off);
          } else {
            if (builder.ranged) { builder.next(); builder.write(b.buffer, off); }
            if (seq) setSeq(b.buffer, off, next++);
          }
          b.setLength(i, l);
          bytes += l;
        }
      } else {
        // Buffers and lengths were written once above; the switch never changes TX slots.
        bytes = b.count * len;
      }
      const sent = port.txCommit(b.count);
      if (sent > 0) this.#events++;
      this.#packets += sent;
      this.#bytes += bytes;
      this.#tick(t, onReport);
    }
  }

  #rx(onReport: (r: PktGenReport) => void): void {
    const o = this.opts;
    const port = this.port;
    // Poll a while (~100-200 us) before sleeping: a sender whose receiver sleeps pays a futex wake
    // per batch, and a batch of 1024 frames takes ~50 us to arrive at full speed.
    if (!o.spin && port.spin === 0) port.spin = 20000;
    const check = o.func === 'rxseq';
    let expect = -1;
    for (;;) {
      const t = now();
      if (this.#stopped(t)) break;
      if (port.pending === 0) {
        if (port.closed) break;
        if (!o.spin) port.wait(Math.min(100, o.reportMs));
        this.#tick(now(), onReport);
        continue;
      }
      let max = o.batch;
      if (o.count > 0 && o.count - this.#packets < max) max = o.count - this.#packets;
      const b = port.receive(max);
      let bytes = 0;
      let frames = 0;
      for (let i = 0; i < b.count; i++) {
        const l = b.length(i);
        if (l === 0) continue; // a slot emptied after a sender died mid-copy
        frames++;
        bytes += l;
        if (check && l >= 46) {
          const s = getSeq(b.buffer, b.offset(i));
          if (expect >= 0 && s !== expect) {
            if (((s - expect) >>> 0) < 0x80000000) this.#lost += (s - expect) >>> 0;
            else this.#reordered++;
          }
          if (expect < 0 || ((s - expect) >>> 0) < 0x80000000) expect = (s + 1) >>> 0;
        }
      }
      port.release();
      if (frames > 0) this.#events++;
      this.#packets += frames;
      this.#bytes += bytes;
      this.#tick(t, onReport);
    }
  }

  #ping(onReport: (r: PktGenReport) => void): void {
    const o = this.opts;
    const port = this.port;
    // Every TX buffer holds the frame from the start; a ping then patches only its sequence
    // number and timestamp (with the UDP checksum) into the next slot.
    port.txPrefill((buf, off) => this.#builder.write(buf, off));
    let seq = 0;
    // Two clock reads per ping (sent, and the echo's arrival, which also serves the loop's
    // stop test and the report): each costs ~100 ns here, as much as a quarter of a hop.
    let t = now();
    for (;;) {
      if (this.#stopped(t)) break;
      const tx = port.txReserve(1);
      if (tx.count === 0) { port.flush(); t = now(); continue; }
      const off = tx.offset(0);
      setSeq(tx.buffer, off, seq);
      const sent = now();
      writeTimestamp(tx.buffer, off, Math.floor(sent / 1000), Math.floor((sent % 1000) * 1e6));
      tx.setLength(0, o.length);
      port.txCommit(1);
      // wait for the echo of this sequence number (1 s at most)
      let got = false;
      const deadline = sent + 1000;
      while (!got) {
        if (!this.#waitRx(deadline)) {
          if (port.closed) return;
          t = now();
          break;
        }
        const b = port.receive();
        t = now();
        for (let i = 0; i < b.count; i++) {
          const fo = b.offset(i);
          if (b.length(i) >= 54 && getSeq(b.buffer, fo) === seq) {
            const rtt = t - timestampMs(b.buffer, fo);
            this.#rtts.push(rtt * 1000);
            this.#bytes += b.length(i);
            got = true;
          }
        }
        port.release();
      }
      if (got) { this.#packets++; this.#events++; } else this.#lost++;
      seq = (seq + 1) >>> 0;
      this.#tick(t, onReport);
    }
  }

  /**
   * Waits until a frame is in the RX ring (true), or `deadline` (performance.now() ms) passes,
   * the run is stopped, or the port closes (false). Spinning, it polls the ring in a tight loop
   * and reads the clock only every 256 polls: a clock read costs more than a poll, and each one
   * in the loop delays noticing the frame. Sleeping, it blocks on the ring's tail (Atomics.wait).
   */
  #waitRx(deadline: number): boolean {
    const port = this.port;
    const spin = this.opts.spin;
    for (;;) {
      // Sleeping (rtt-sleep), one look before blocking; spinning, 256 polls per clock read.
      for (let k = spin ? 256 : 1; k > 0; k--) if (port.pending !== 0) return true;
      const w = now();
      if (w > deadline || Atomics.load(this.ctl.stop, 0) !== 0 || port.closed) return false;
      if (!spin) port.wait(Math.max(1, Math.min(100, deadline - w)));
    }
  }

  #pong(onReport: (r: PktGenReport) => void): void {
    const o = this.opts;
    const port = this.port;
    // The clock is read while waiting, and every 64 replies when busy, never between noticing a
    // frame and answering it: a clock read there (~100 ns) is paid by every round trip.
    let t = now();
    let busy = 0;
    for (;;) {
      if (port.pending === 0) {
        t = now();
        if (this.#stopped(t) || port.closed) break;
        this.#tick(t, onReport);
        this.#waitRx(t + Math.min(100, o.reportMs));
        continue;
      }
      if ((++busy & 63) === 0) {
        t = now();
        if (this.#stopped(t)) break;
      } else if (this.#countReached()) {
        break;
      }
      const rx = port.receive(o.batch);
      const tx = port.txReserve(rx.count);
      let n = 0;
      let bytes = 0;
      for (let i = 0; i < rx.count && n < tx.count; i++) {
        if (rx.length(i) < 14) continue;
        const l = tx.copyFrom(n, rx, i);
        swapForPong(tx.buffer, tx.offset(n), l);
        n++;
        bytes += l;
      }
      // Send first, then give the RX slots back: the release stores the RX head, whose line the
      // switch's last delivery took to the sender's core, and that transfer need not delay the echo.
      port.txCommit(n);
      port.release();
      if (n > 0) this.#events++;
      this.#packets += n;
      this.#bytes += bytes;
      this.#tick(t, onReport);
    }
  }
}

/** The q-quantile (0 ≤ q < 1) of ascending, non-empty `sorted`: the sample at floor(q × n). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export function rttStats(us: number[]): RttStats {
  if (us.length === 0) return { count: 0, minUs: 0, avgUs: 0, p50Us: 0, p99Us: 0, maxUs: 0 };
  const s = [...us].sort((a, b) => a - b);
  const pick = (q: number) => quantile(s, q);
  return {
    count: s.length, minUs: s[0], avgUs: s.reduce((a, b) => a + b, 0) / s.length, p50Us: pick(0.5), p99Us: pick(0.99),
    maxUs: s[s.length - 1],
  };
}
