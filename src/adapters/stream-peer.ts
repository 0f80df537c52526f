/**
 * The other end of a stream socket port: what QEMU does, for any program (and for tests and
 * benchmarks). Connects to `unix:/path` or `tcp:host:port`, sends frames with the 4-byte
 * big-endian length framing and decodes the frames the switch sends back.
 */
import { EventEmitter, once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { zeroDrops, type DropCounters } from './common.js';
import { StreamDecoder, encodeStreamFrames } from './stream-framing.js';
import { parseStreamSpec } from './qemu-stream.js';

export interface StreamPeerOptions {
  /** Largest frame accepted from the switch (default 65535). */
  mtu?: number;
  /** Zero-copy receive callback (`buf[off, off + len)` valid only during the call); without it, 'frame' events carry copies. */
  onFrame?: (buf: Uint8Array, off: number, len: number) => void;
}

export class StreamPeer extends EventEmitter {
  readonly socket: Socket;
  readonly drops: DropCounters = zeroDrops();
  rxFrames = 0;
  txFrames = 0;
  readonly #decoder: StreamDecoder;

  constructor(socket: Socket, opts: StreamPeerOptions = {}) {
    super();
    this.socket = socket;
    const cb = opts.onFrame;
    this.#decoder = new StreamDecoder({
      mtu: opts.mtu ?? 65535,
      onFrame: (buf, off, len) => {
        this.rxFrames++;
        if (cb) cb(buf, off, len);
        else this.emit('frame', buf.slice(off, off + len));
      },
      onDrop: (reason) => { this.drops[reason]++; },
    });
    socket.on('data', (chunk: Buffer) => {
      if (!this.#decoder.feed(chunk)) socket.destroy();
    });
    socket.on('error', (e) => this.emit('warning', e));
    socket.on('close', () => {
      this.#decoder.end();
      this.emit('close');
    });
  }

  /** Sends frames (one write). Returns the socket's write() result (false: wait for 'drain'). */
  send(...frames: Uint8Array[]): boolean {
    this.txFrames += frames.length;
    return this.socket.write(encodeStreamFrames(frames));
  }

  sendBatch(frames: readonly Uint8Array[]): boolean {
    this.txFrames += frames.length;
    return this.socket.write(encodeStreamFrames(frames));
  }

  /** Writes raw bytes (for tests that play a broken peer). */
  writeRaw(bytes: Uint8Array): boolean {
    return this.socket.write(bytes);
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    const closed = once(this.socket, 'close');
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 1000);
    await closed;
    clearTimeout(t);
  }
}

/** Connects to a stream socket port (`unix:/path`, `tcp:127.0.0.1:5600`). */
export async function connectStreamPeer(spec: string, opts: StreamPeerOptions = {}): Promise<StreamPeer> {
  const p = parseStreamSpec(spec);
  const s = p.type === 'unix' ? createConnection({ path: p.path! }) : createConnection({ host: p.host!, port: p.port! });
  await once(s, 'connect');
  s.setNoDelay(true);
  return new StreamPeer(s, opts);
}
