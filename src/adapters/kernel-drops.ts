/**
 * Datagrams the kernel dropped from a UDP socket's receive queue: when an adapter reads more
 * slowly than its peer sends, the queue (SO_RCVBUF) fills and Linux discards further datagrams
 * without telling the reader. Linux counts them per socket in `/proc/net/udp` and
 * `/proc/net/udp6` (the last column, `drops`). Each line there is one socket of the reading
 * thread's network namespace:
 *
 *   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode ref pointer drops
 *   9413: 0100007F:CCD3 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 112634 2 00000000dd073312 0
 *
 * The local address is the IPv4 address as one 32-bit word in host byte order (IPv6: four such
 * words), then the port, all in hex. We find the socket's line by its inode (the socket's file
 * descriptor links to `socket:[INODE]` in /proc/self/fd), which is unique; if the descriptor
 * cannot be read, by local address and port.
 *
 * Reading the table costs a file read per call: it is done when stats are asked for, never per
 * frame. On systems without /proc/net/udp (not Linux) the count stays 0 and `available` is false.
 */
import type { Socket } from 'node:dgram';
import { readFileSync, readlinkSync } from 'node:fs';

/** The file descriptor behind a Node dgram socket (an internal property; undefined if Node hides it). */
function socketFd(sock: Socket): number | undefined {
  for (const sym of Object.getOwnPropertySymbols(sock)) {
    const st = (sock as unknown as Record<symbol, unknown>)[sym] as { handle?: { fd?: unknown } } | undefined;
    const fd = st && typeof st === 'object' ? st.handle?.fd : undefined;
    if (typeof fd === 'number' && fd >= 0) return fd;
  }
  return undefined;
}

function socketInode(sock: Socket): string | undefined {
  const fd = socketFd(sock);
  if (fd === undefined) return undefined;
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

/** /proc/net/udp's spelling of a local address (host byte order per 32-bit word, upper-case hex). */
function procAddress(host: string, family: 4 | 6): string {
  const le32 = (b: number[]) => b.slice().reverse().map((x) => x.toString(16).padStart(2, '0')).join('');
  if (family === 4) return le32(host.split('.').map(Number)).toUpperCase();
  // Expand an IPv6 literal to 16 bytes.
  let h = host.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    h = h.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [a, z = ''] = h.split('::');
  const head = a ? a.split(':') : [];
  const tail = z ? z.split(':') : [];
  const groups = h.includes('::') ? [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail] : head;
  const bytes: number[] = [];
  for (const g of groups) {
    const v = parseInt(g || '0', 16);
    bytes.push(v >> 8, v & 0xff);
  }
  let s = '';
  for (let i = 0; i < 16; i += 4) s += le32(bytes.slice(i, i + 4));
  return s.toUpperCase();
}

/**
 * Where to find one socket in the kernel's table, and its count when it was found: plain data,
 * so another thread (the one holding an adapter Worker's handle) can read the same count.
 */
export interface SocketDropsSource {
  file: string;
  inode: string | null;
  local: string;
  base: number;
  available: boolean;
}

/** Reads one socket's kernel receive-queue drop count. */
export class SocketDrops {
  readonly #file: string;
  readonly #inode: string | undefined;
  readonly #local: string;
  #base = 0;
  #last = 0;
  /** False where the kernel table cannot be read or the socket is not in it (counts stay 0). */
  available = true;

  constructor(from: Socket | SocketDropsSource) {
    if ('file' in from) {
      this.#file = from.file;
      this.#inode = from.inode ?? undefined;
      this.#local = from.local;
      this.#base = from.base;
      this.available = from.available;
      return;
    }
    const a = from.address();
    const family = a.family === 'IPv6' ? 6 : 4;
    this.#file = family === 6 ? '/proc/net/udp6' : '/proc/net/udp';
    this.#inode = socketInode(from);
    this.#local = `${procAddress(a.address, family)}:${a.port.toString(16).toUpperCase().padStart(4, '0')}`;
    const now = this.#read();
    if (now === undefined) this.available = false;
    else this.#base = now;
  }

  /** What another thread needs to read the same count. */
  source(): SocketDropsSource {
    return { file: this.#file, inode: this.#inode ?? null, local: this.#local, base: this.#base, available: this.available };
  }

  #read(): number | undefined {
    let text: string;
    try {
      text = readFileSync(this.#file, 'latin1');
    } catch {
      return undefined;
    }
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i].trim().split(/\s+/);
      if (f.length < 13) continue;
      if (this.#inode !== undefined ? f[9] === this.#inode : f[1] === this.#local) return Number(f[12]) || 0;
    }
    return undefined;
  }

  /**
   * Datagrams dropped since this reader was made. Once the socket is closed (gone from the
   * table) the last count read is kept.
   */
  read(): number {
    if (!this.available) return this.#last;
    const now = this.#read();
    if (now !== undefined) this.#last = now - this.#base;
    return this.#last;
  }
}
