/**
 * The QEMU stream framing (`-netdev stream`, `-netdev socket`), which is also vswitch's socket
 * port protocol for any program: on a byte stream (unix or TCP socket) each Ethernet frame (no
 * FCS) is preceded by its length as a 4-byte big-endian unsigned integer.
 *
 * ```
 * | 0..3            | 4 .. 4+len       | 4+len .. 8+len   | ...
 * | len (u32 BE)    | frame (len bytes)| len (u32 BE)     | frame ...
 * ```
 *
 * The byte stream arrives in chunks of any size, so the decoder reassembles frames across
 * chunks. It validates every length: under 14 bytes (zero included) or over the MTU, the frame
 * is skipped and counted, and the stream stays in sync; a length over `maxSkip` (QEMU never
 * sends more than its 68 KiB NET_BUFSIZE) cannot be a frame, so the framing is lost and the
 * caller must drop the connection.
 */
import { MIN_FRAME, type DropReason } from './common.js';

/** QEMU's NET_BUFSIZE (4096 + 65536): no QEMU frame is longer. */
export const STREAM_MAX_SKIP = 4096 + 65536;

export interface StreamDecoderOptions {
  /** Largest frame passed on (the port's MTU). */
  mtu: number;
  /** Largest length prefix that is skipped rather than treated as lost framing; default STREAM_MAX_SKIP. */
  maxSkip?: number;
  /** Called for each valid frame; `buf[off, off + len)` is valid only during the call. */
  onFrame(buf: Uint8Array, off: number, len: number): void;
  /** Called for each dropped frame (and once for a desync). */
  onDrop(reason: DropReason, len: number): void;
}

const S_HDR = 0;
const S_BODY = 1;
const S_SKIP = 2;
const S_DEAD = 3;

export class StreamDecoder {
  readonly mtu: number;
  readonly maxSkip: number;
  readonly #onFrame: StreamDecoderOptions['onFrame'];
  readonly #onDrop: StreamDecoderOptions['onDrop'];
  readonly #hdr = new Uint8Array(4);
  #hdrN = 0;
  #state = S_HDR;
  /** Length of the frame being read or skipped, and bytes of it seen so far. */
  #need = 0;
  #got = 0;
  /** Holds a frame that spans chunks. */
  readonly #scratch: Uint8Array;

  constructor(opts: StreamDecoderOptions) {
    this.mtu = opts.mtu;
    this.maxSkip = Math.max(opts.maxSkip ?? STREAM_MAX_SKIP, opts.mtu);
    this.#onFrame = opts.onFrame;
    this.#onDrop = opts.onDrop;
    this.#scratch = new Uint8Array(opts.mtu);
  }

  /** True once a length prefix could not be resynchronised; feed() ignores further input. */
  get desynced(): boolean {
    return this.#state === S_DEAD;
  }

  /** True when no frame or prefix is partly read. */
  get idle(): boolean {
    return this.#state === S_HDR && this.#hdrN === 0;
  }

  /** Consumes one chunk. Returns false when the framing is lost (the caller drops the connection). */
  feed(chunk: Uint8Array): boolean {
    const end = chunk.length;
    let i = 0;
    while (i < end) {
      switch (this.#state) {
        case S_HDR: {
          let len: number;
          if (this.#hdrN === 0 && end - i >= 4) {
            len = ((chunk[i] << 24) | (chunk[i + 1] << 16) | (chunk[i + 2] << 8) | chunk[i + 3]) >>> 0;
            i += 4;
          } else {
            const h = this.#hdr;
            while (this.#hdrN < 4 && i < end) h[this.#hdrN++] = chunk[i++];
            if (this.#hdrN < 4) return true;
            this.#hdrN = 0;
            len = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
          }
          if (len > this.maxSkip) {
            this.#state = S_DEAD;
            this.#onDrop('desync', len);
            return false;
          }
          if (len < MIN_FRAME || len > this.mtu) {
            this.#onDrop(len < MIN_FRAME ? 'undersize' : 'oversize', len);
            if (len === 0) break;
            this.#state = S_SKIP;
            this.#need = len;
            this.#got = 0;
            break;
          }
          if (end - i >= len) {
            // Whole frame in this chunk: no copy here.
            this.#onFrame(chunk, i, len);
            i += len;
            break;
          }
          this.#state = S_BODY;
          this.#need = len;
          this.#got = 0;
          break;
        }
        case S_BODY: {
          const take = Math.min(this.#need - this.#got, end - i);
          this.#scratch.set(chunk.subarray(i, i + take), this.#got);
          this.#got += take;
          i += take;
          if (this.#got === this.#need) {
            this.#state = S_HDR;
            this.#onFrame(this.#scratch, 0, this.#need);
          }
          break;
        }
        case S_SKIP: {
          const take = Math.min(this.#need - this.#got, end - i);
          this.#got += take;
          i += take;
          if (this.#got === this.#need) this.#state = S_HDR;
          break;
        }
        default:
          return false;
      }
    }
    return true;
  }

  /** The stream ended: counts a partly read prefix or frame as truncated. Resets the decoder. */
  end(): void {
    if (this.#state === S_HDR && this.#hdrN > 0) this.#onDrop('truncated', this.#hdrN);
    else if (this.#state === S_BODY) this.#onDrop('truncated', this.#got);
    else if (this.#state === S_SKIP) {
      // Already counted as oversize/undersize when its prefix was read.
    }
    this.reset();
  }

  /** Forgets any partial state (new connection). */
  reset(): void {
    this.#state = S_HDR;
    this.#hdrN = 0;
    this.#need = 0;
    this.#got = 0;
  }
}

/**
 * Encodes frames for the stream: one Buffer holding each frame behind its 4-byte big-endian
 * length. For programs that join a bridge through a socket port, and for tests.
 */
export function encodeStreamFrames(frames: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const f of frames) total += 4 + f.length;
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  for (const f of frames) {
    out.writeUInt32BE(f.length, o);
    out.set(f, o + 4);
    o += 4 + f.length;
  }
  return out;
}
