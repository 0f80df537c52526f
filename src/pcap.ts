/**
 * Classic pcap (libpcap format) writer and reader, Ethernet only. No dependencies beyond node:fs.
 *
 * File layout (libpcap's classic format):
 *
 * | offset | size | global header (24 bytes)                                              |
 * |--------|------|-----------------------------------------------------------------------|
 * | 0      | 4    | magic 0xa1b2c3d4 (µs timestamps) or 0xa1b23c4d (ns); its byte order   |
 * |        |      | is the file's byte order — we write little-endian                     |
 * | 4      | 2    | version major 2                                                       |
 * | 6      | 2    | version minor 4                                                       |
 * | 8      | 4    | thiszone 0                                                            |
 * | 12     | 4    | sigfigs 0                                                             |
 * | 16     | 4    | snaplen (default 65535)                                               |
 * | 20     | 4    | linktype 1 (LINKTYPE_ETHERNET)                                        |
 *
 * | offset | size | record header (16 bytes), then incl_len bytes of frame (no FCS)       |
 * |--------|------|-----------------------------------------------------------------------|
 * | 0      | 4    | ts_sec                                                                |
 * | 4      | 4    | ts_usec (ts_nsec in a nanosecond file)                                |
 * | 8      | 4    | incl_len: bytes stored, min(orig_len, snaplen)                        |
 * | 12     | 4    | orig_len: length of the frame on the wire                             |
 *
 * The writer emits the global header in one `write` at construction and every record
 * (header + data) in exactly one `write`, so a live reader (`tshark -r -`, `wireshark -k -i -`)
 * never sees half a record. It copies each frame, so callers may reuse their buffers (ring
 * slots) immediately.
 *
 * The reader works on one in-memory buffer, bounds-checks every header against it and
 * returns records as views (no copies) into that buffer.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';

export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;
export const PCAP_GLOBAL_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;
export const LINKTYPE_ETHERNET = 1;
export const DEFAULT_SNAPLEN = 65535;
/** Largest incl_len we accept (libpcap's MAXIMUM_SNAPLEN). */
export const MAX_RECORD_LEN = 262144;

export type PcapErrorCode = 'ERR_PCAP_ARG' | 'ERR_PCAP_FORMAT' | 'ERR_PCAP_LINKTYPE' | 'ERR_PCAP_TRUNCATED' | 'ERR_PCAP_CLOSED';

export class PcapError extends Error {
  readonly code: PcapErrorCode;
  constructor(code: PcapErrorCode, message: string) {
    super(message);
    this.name = 'PcapError';
    this.code = code;
  }
}

/** Anything with a `write(chunk)`: a Node Writable, a socket, an array collector. */
export interface PcapSink {
  write(chunk: Uint8Array): unknown;
}

export interface PcapWriterOptions {
  /** Largest number of bytes stored per frame, 1..262144; default 65535. */
  snaplen?: number;
}

// ---------------------------------------------------------------------------------------------
// Writer

export class PcapWriter {
  readonly snaplen: number;
  /** Frames written. */
  frames = 0;
  /** Sum of the frames' original lengths. */
  bytes = 0;
  /** Bytes handed to the sink, headers included. */
  written = 0;

  protected readonly sink: PcapSink;

  constructor(sink: PcapSink, opts: PcapWriterOptions = {}) {
    const snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > MAX_RECORD_LEN) {
      throw new PcapError('ERR_PCAP_ARG', `invalid snaplen ${snaplen}: expected an integer 1..${MAX_RECORD_LEN}`);
    }
    this.snaplen = snaplen;
    this.sink = sink;
    const h = new Uint8Array(PCAP_GLOBAL_HEADER_LEN);
    const v = new DataView(h.buffer);
    v.setUint32(0, PCAP_MAGIC_USEC, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true);
    v.setUint32(12, 0, true);
    v.setUint32(16, snaplen, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    this.written += h.length;
    sink.write(h);
  }

  /**
   * Appends one frame as one record in one `sink.write`. `tsMs` is milliseconds since the
   * epoch (fractions kept to the microsecond); default `Date.now()`. Frames longer than
   * snaplen are stored truncated with their original length. Returns false when the sink's
   * `write` returned false (Node backpressure), true otherwise.
   */
  writeFrame(bytes: Uint8Array, tsMs: number = Date.now()): boolean {
    this.checkOpen();
    if (!Number.isFinite(tsMs) || tsMs < 0 || tsMs >= 0x100000000 * 1000) {
      throw new PcapError('ERR_PCAP_ARG', `invalid timestamp ${tsMs} ms: expected 0 <= ms < 2^32 s`);
    }
    let sec = Math.floor(tsMs / 1000);
    let usec = Math.round((tsMs - sec * 1000) * 1000);
    if (usec >= 1_000_000) {
      sec += 1;
      usec -= 1_000_000;
    }
    const orig = bytes.length;
    const incl = orig < this.snaplen ? orig : this.snaplen;
    const rec = new Uint8Array(PCAP_RECORD_HEADER_LEN + incl);
    const v = new DataView(rec.buffer);
    v.setUint32(0, sec, true);
    v.setUint32(4, usec, true);
    v.setUint32(8, incl, true);
    v.setUint32(12, orig, true);
    rec.set(incl === orig ? bytes : bytes.subarray(0, incl), PCAP_RECORD_HEADER_LEN);
    this.frames++;
    this.bytes += orig;
    this.written += rec.length;
    return this.sink.write(rec) !== false;
  }

  protected checkOpen(): void {}

  /** A writer backed by a new file (truncated if it exists); `close()` flushes and closes it. */
  static async toFile(path: string, opts: PcapWriterOptions = {}): Promise<PcapFileWriter> {
    const stream = createWriteStream(path);
    await once(stream, 'open'); // rejects with e.g. ENOENT/EACCES instead of crashing later
    return new PcapFileWriter(stream, opts);
  }
}

export class PcapFileWriter extends PcapWriter {
  #stream: WriteStream;
  #error: Error | null = null;
  #closing: Promise<void> | null = null;

  constructor(stream: WriteStream, opts: PcapWriterOptions = {}) {
    super(stream, opts);
    this.#stream = stream;
    // Keep write errors (disk full…) from crashing the process; close() reports them.
    stream.on('error', (e) => {
      this.#error ??= e;
    });
  }

  get path(): string {
    return String(this.#stream.path);
  }

  protected override checkOpen(): void {
    if (this.#closing) throw new PcapError('ERR_PCAP_CLOSED', `pcap file ${this.path} is closed`);
    if (this.#error) throw this.#error;
  }

  /** Flushes buffered records and closes the file. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve, reject) => {
      const s = this.#stream;
      const done = () => (this.#error ? reject(this.#error) : resolve());
      if (s.closed) return done();
      s.once('close', done);
      s.end();
    });
    return this.#closing;
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

export interface PcapRecord {
  /** 1-based record number, as tshark's frame.number. */
  index: number;
  /** Byte offset of the record header in the file. */
  offset: number;
  tsSec: number;
  /** Microseconds (derived from nanoseconds in a nanosecond file). */
  tsUsec: number;
  /** Nanoseconds (microseconds × 1000 in a microsecond file). */
  tsNsec: number;
  /** The stored bytes (incl_len of them): a view into the reader's buffer, not a copy. */
  data: Uint8Array;
  origLen: number;
}

export interface PcapReaderOptions {
  /**
   * Stop quietly at a truncated last record (header or data cut short, e.g. a capture still
   * being written) and set `reader.truncated`, instead of throwing.
   */
  allowTruncated?: boolean;
  /** Name used in error messages (fromFile passes the path). */
  name?: string;
}

export class PcapReader implements Iterable<PcapRecord> {
  readonly littleEndian: boolean;
  readonly nanosecond: boolean;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly snaplen: number;
  readonly linktype: number;
  /** Set once iteration stopped at a truncated last record (allowTruncated only). */
  truncated = false;

  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #allowTruncated: boolean;
  readonly #name: string;

  private constructor(buf: Uint8Array, opts: PcapReaderOptions) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#allowTruncated = opts.allowTruncated ?? false;
    this.#name = opts.name ?? 'pcap';
    if (buf.length < PCAP_GLOBAL_HEADER_LEN) {
      throw new PcapError('ERR_PCAP_TRUNCATED', `${this.#name}: ${buf.length} bytes is shorter than the 24-byte pcap global header`);
    }
    const le = this.#view.getUint32(0, true);
    const be = this.#view.getUint32(0, false);
    if (le === PCAP_MAGIC_USEC || le === PCAP_MAGIC_NSEC) {
      this.littleEndian = true;
      this.nanosecond = le === PCAP_MAGIC_NSEC;
    } else if (be === PCAP_MAGIC_USEC || be === PCAP_MAGIC_NSEC) {
      this.littleEndian = false;
      this.nanosecond = be === PCAP_MAGIC_NSEC;
    } else {
      const hint = be === 0x0a0d0d0a ? ' (this is a pcapng file; convert it with `editcap -F pcap`)' : '';
      throw new PcapError('ERR_PCAP_FORMAT', `${this.#name}: bad magic 0x${be.toString(16).padStart(8, '0')}, not a classic pcap file${hint}`);
    }
    const v = this.#view;
    const l = this.littleEndian;
    this.versionMajor = v.getUint16(4, l);
    this.versionMinor = v.getUint16(6, l);
    this.snaplen = v.getUint32(16, l);
    this.linktype = v.getUint32(20, l) & 0xffff; // upper bits: FCS info (pcap spec), ignored
    if (this.versionMajor !== 2) {
      throw new PcapError('ERR_PCAP_FORMAT', `${this.#name}: unsupported pcap version ${this.versionMajor}.${this.versionMinor} (expected 2.x)`);
    }
    if (this.linktype !== LINKTYPE_ETHERNET) {
      throw new PcapError('ERR_PCAP_LINKTYPE', `${this.#name}: link type ${this.linktype} is not supported; only 1 (Ethernet) is`);
    }
  }

  /** Reads a capture held in memory. Records are views into `buf`. */
  static fromBuffer(buf: Uint8Array, opts: PcapReaderOptions = {}): PcapReader {
    return new PcapReader(buf, opts);
  }

  /** Reads a whole capture file into memory. */
  static async fromFile(path: string, opts: PcapReaderOptions = {}): Promise<PcapReader> {
    const buf = await readFile(path);
    return new PcapReader(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), { name: path, ...opts });
  }

  /** Iterates the records in file order. Throws PcapError on a malformed or truncated record. */
  *records(): Generator<PcapRecord, void, undefined> {
    const buf = this.#buf;
    const v = this.#view;
    const l = this.littleEndian;
    const limit = this.snaplen > 0 && this.snaplen < MAX_RECORD_LEN ? this.snaplen : MAX_RECORD_LEN;
    let off = PCAP_GLOBAL_HEADER_LEN;
    this.truncated = false;
    for (let index = 1; off < buf.length; index++) {
      const where = `${this.#name}: record #${index} at offset ${off}`;
      if (buf.length - off < PCAP_RECORD_HEADER_LEN) {
        if (this.#stopTruncated()) return;
        throw new PcapError('ERR_PCAP_TRUNCATED', `${where} is truncated: only ${buf.length - off} of the 16 header bytes are present`);
      }
      const tsSec = v.getUint32(off, l);
      const frac = v.getUint32(off + 4, l);
      const incl = v.getUint32(off + 8, l);
      const origLen = v.getUint32(off + 12, l);
      if (incl > limit) {
        const why = incl > MAX_RECORD_LEN ? `the maximum ${MAX_RECORD_LEN}` : `the file's snaplen ${this.snaplen}`;
        throw new PcapError('ERR_PCAP_FORMAT', `${where} is corrupt: incl_len ${incl} exceeds ${why}`);
      }
      const start = off + PCAP_RECORD_HEADER_LEN;
      if (buf.length - start < incl) {
        if (this.#stopTruncated()) return;
        throw new PcapError('ERR_PCAP_TRUNCATED', `${where} is truncated: incl_len ${incl} but only ${buf.length - start} data bytes remain`);
      }
      yield {
        index,
        offset: off,
        tsSec,
        tsUsec: this.nanosecond ? Math.floor(frac / 1000) : frac,
        tsNsec: this.nanosecond ? frac : frac * 1000,
        data: buf.subarray(start, start + incl),
        origLen,
      };
      off = start + incl;
    }
  }

  [Symbol.iterator](): Iterator<PcapRecord> {
    return this.records();
  }

  /** All records as an array. */
  readAll(): PcapRecord[] {
    return [...this.records()];
  }

  #stopTruncated(): boolean {
    if (!this.#allowTruncated) return false;
    this.truncated = true;
    return true;
  }
}
