/**
 * The one Ethernet/IPv4/UDP frame builder shared by pkt-gen, bench, the examples and tests.
 *
 * Frames are built exactly like netmap's pkt-gen (`initialize_packet`, `update_ip`; see
 * docs/ARCHITECTURE.md §8), so captures, switch tests and benchmarks all talk about the same bytes.
 * No dependencies: plain Uint8Array and arithmetic.
 *
 * Performance design. A sender calls `write()` once per packet and `next()` once per packet
 * when address ranges are in use, so neither may allocate. The builder keeps one template
 * frame that always holds the *current* frame, headers and checksums included; `write()` is
 * a single `set()` copy. The payload never changes, so its one's-complement sum is computed
 * once; `next()` then rewrites the four address fields and recomputes both checksums from a
 * handful of 16-bit words (pseudo-header, headers, cached payload sum) — O(1), no loop over
 * the payload. `setSeq`/`writeTimestamp` patch UDP checksums incrementally (RFC 1624).
 *
 * Frame layout (IPv4, IHL 5, no VLAN, no vnet header) — offsets relative to the frame start:
 *
 * | bytes  | field                      | value written by FrameBuilder                    |
 * |--------|----------------------------|--------------------------------------------------|
 * | 0-5    | dst MAC                    | dstMac (default ff:ff:ff:ff:ff:ff)               |
 * | 6-11   | src MAC                    | srcMac (default 00:00:00:00:00:00, as on VALE)   |
 * | 12-13  | ethertype                  | 0x0800                                           |
 * | 14     | version/IHL                | 0x45                                             |
 * | 15     | TOS                        | 0x10 (IPTOS_LOWDELAY)                            |
 * | 16-17  | IP total length            | length − 14                                      |
 * | 18-19  | IP id                      | 0                                                |
 * | 20-21  | flags/fragment offset      | 0x4000 (DF)                                      |
 * | 22     | TTL                        | 64                                               |
 * | 23     | protocol                   | 17 (UDP)                                         |
 * | 24-25  | IP header checksum         | over bytes 14-33                                 |
 * | 26-29  | src IP                     | current source address                           |
 * | 30-33  | dst IP                     | current destination address                      |
 * | 34-35  | UDP src port               | current source port                              |
 * | 36-37  | UDP dst port               | current destination port                         |
 * | 38-39  | UDP length                 | length − 34                                      |
 * | 40-41  | UDP checksum               | pseudo-header + UDP header + payload             |
 * | 42-45  | payload: sequence number   | (ping/txseq) u32 big-endian, see setSeq          |
 * | 46-53  | payload: timestamp         | (ping) u32 sec, u32 nsec, big-endian             |
 * | 42..   | payload                    | "netmap pkt-gen DIRECT payload\n" repeated,      |
 * |        |                            | last byte of the frame 0                         |
 *
 * All multi-byte fields are big-endian (network order). Checksums are the Internet checksum:
 * 16-bit big-endian one's-complement sum with end-around carry, an odd trailing byte counting
 * as the high byte of a word, final value ~sum & 0xffff. A computed UDP checksum of 0 is sent
 * as 0xffff (RFC 768: 0 means "no checksum"); pkt-gen does not do this, but for its payload
 * and default addresses the difference never shows.
 */

/** Byte offsets of the pkt-gen IPv4/UDP layout (see the table above). */
export const OFF = {
  DST_MAC: 0,
  SRC_MAC: 6,
  ETHERTYPE: 12,
  IP: 14,
  IP_VHL: 14,
  IP_TOS: 15,
  IP_LEN: 16,
  IP_ID: 18,
  IP_FRAG: 20,
  IP_TTL: 22,
  IP_PROTO: 23,
  IP_CSUM: 24,
  IP_SRC: 26,
  IP_DST: 30,
  UDP: 34,
  UDP_SPORT: 34,
  UDP_DPORT: 36,
  UDP_LEN: 38,
  UDP_CSUM: 40,
  PAYLOAD: 42,
  SEQ: 42,
  TS_SEC: 46,
  TS_NSEC: 50,
} as const;

export const ETHERTYPE_IPV4 = 0x0800;
export const IPPROTO_UDP = 17;
/** Smallest frame we build: 14 Ethernet + 20 IPv4 + 8 UDP, no payload. */
export const MIN_FRAME_LEN = 42;
/** Largest frame we build: the UDP length field (length − 34) must fit in 16 bits. */
export const MAX_FRAME_LEN = 65535;
export const DEFAULT_FRAME_LEN = 60;
export const DEFAULT_PORT = 1234;
/** pkt-gen's payload pattern (docs/ARCHITECTURE.md §8). */
export const PKTGEN_PAYLOAD = 'netmap pkt-gen DIRECT payload\n';

/** Invalid argument to the frame helpers; `code` matches errors.ts's ERR_BAD_ARG. */
export class FrameError extends Error {
  readonly code = 'ERR_BAD_ARG';
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

// ---------------------------------------------------------------------------------------------
// MAC and IPv4 text forms

const MAC_RE = /^([0-9a-f]{1,2})([:-])([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})$/i;

/**
 * Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (one or two hex digits per octet, one
 * separator throughout) into 6 new bytes.
 */
export function parseMac(s: string): Uint8Array {
  const m = typeof s === 'string' ? MAC_RE.exec(s.trim()) : null;
  if (!m) {
    throw new FrameError(
      `invalid MAC address ${JSON.stringify(s)}: expected 6 hex octets separated by ':' or '-', e.g. 02:00:00:00:00:01`,
    );
  }
  const out = new Uint8Array(6);
  out[0] = parseInt(m[1], 16);
  for (let i = 1; i < 6; i++) out[i] = parseInt(m[i + 2], 16);
  return out;
}

const HEX2: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Formats 6 bytes at `off` as lower-case `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: Uint8Array, off = 0): string {
  if (!Number.isInteger(off) || off < 0 || off + 6 > bytes.length) {
    throw new FrameError(`formatMac: offset ${off} + 6 is outside a ${bytes.length}-byte buffer`);
  }
  return `${HEX2[bytes[off]]}:${HEX2[bytes[off + 1]]}:${HEX2[bytes[off + 2]]}:${HEX2[bytes[off + 3]]}:${HEX2[bytes[off + 4]]}:${HEX2[bytes[off + 5]]}`;
}

/** Parses a dotted-quad IPv4 address into an unsigned 32-bit number. */
export function parseIp(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) {
    throw new FrameError(`invalid IPv4 address ${JSON.stringify(s)}: expected 4 dot-separated numbers, e.g. 10.0.0.1`);
  }
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) {
      throw new FrameError(`invalid IPv4 address ${JSON.stringify(s)}: ${JSON.stringify(p)} is not a number 0..255`);
    }
    v = v * 256 + Number(p);
  }
  return v;
}

/** Formats an unsigned 32-bit number as a dotted quad. */
export function formatIp(ip: number): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** An inclusive range of IPv4 addresses (u32) and UDP ports, as given to pkt-gen -s / -d. */
export interface IpRange {
  ipStart: number;
  ipEnd: number;
  portStart: number;
  portEnd: number;
}

function parsePort(p: string, whole: string): number {
  if (!/^\d{1,5}$/.test(p) || Number(p) > 65535) {
    throw new FrameError(`invalid address range ${JSON.stringify(whole)}: port ${JSON.stringify(p)} is not a number 0..65535`);
  }
  return Number(p);
}

function parseEndpoint(part: string, whole: string, side: string): { ip: number; port?: number } {
  if (part === '') {
    throw new FrameError(`invalid address range ${JSON.stringify(whole)}: the ${side} address is empty (syntax ip[:port][-ip[:port]])`);
  }
  const colon = part.indexOf(':');
  const ipText = colon < 0 ? part : part.slice(0, colon);
  let ip: number;
  try {
    ip = parseIp(ipText);
  } catch (e) {
    throw new FrameError(`invalid address range ${JSON.stringify(whole)}: ${(e as Error).message}`);
  }
  return colon < 0 ? { ip } : { ip, port: parsePort(part.slice(colon + 1), whole) };
}

/**
 * Parses pkt-gen's `-s`/`-d` syntax `ip[:port][-ip[:port]]` (IPv4 only).
 *
 * As in pkt-gen's `extract_ip_range`: the first '-' splits start and end; the start port
 * defaults to `defaultPort`, the end port to the start port; a reversed range is swapped
 * into order. Examples: `10.0.0.1` → one address and port; `10.0.0.1:1234-10.0.0.9` →
 * 9 addresses, port 1234; `10.0.0.1-10.0.0.9:5000` → 9 addresses, ports 1234..5000.
 */
export function parseIpRange(s: string, defaultPort: number = DEFAULT_PORT): IpRange {
  if (typeof s !== 'string' || s.trim() === '') {
    throw new FrameError(`invalid address range ${JSON.stringify(s)}: empty (syntax ip[:port][-ip[:port]], e.g. 10.0.0.1:1234-10.0.0.9)`);
  }
  if (!Number.isInteger(defaultPort) || defaultPort < 0 || defaultPort > 65535) {
    throw new FrameError(`invalid default port ${defaultPort}: expected 0..65535`);
  }
  const text = s.trim();
  const dash = text.indexOf('-');
  if (dash >= 0 && text.indexOf('-', dash + 1) >= 0) {
    throw new FrameError(`invalid address range ${JSON.stringify(s)}: more than one '-' (syntax ip[:port][-ip[:port]])`);
  }
  const a = parseEndpoint(dash < 0 ? text : text.slice(0, dash), s, 'start');
  const b = dash < 0 ? a : parseEndpoint(text.slice(dash + 1), s, 'end');
  const p0 = a.port ?? defaultPort;
  const p1 = b.port ?? p0;
  return {
    ipStart: Math.min(a.ip, b.ip),
    ipEnd: Math.max(a.ip, b.ip),
    portStart: Math.min(p0, p1),
    portEnd: Math.max(p0, p1),
  };
}

/** Formats a range back into pkt-gen syntax (`ip:port` or `ip:port-ip:port`). */
export function formatIpRange(r: IpRange): string {
  const a = `${formatIp(r.ipStart)}:${r.portStart}`;
  return r.ipStart === r.ipEnd && r.portStart === r.portEnd ? a : `${a}-${formatIp(r.ipEnd)}:${r.portEnd}`;
}

// ---------------------------------------------------------------------------------------------
// Checksums

function checkSpan(buf: Uint8Array, off: number, len: number, what: string): void {
  if (!Number.isInteger(off) || !Number.isInteger(len) || off < 0 || len < 0 || off + len > buf.length) {
    throw new FrameError(`${what}: bytes ${off}..${off + len} are outside a ${buf.length}-byte buffer`);
  }
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * One's-complement sum of `len` bytes at `off` as big-endian 16-bit words (an odd trailing
 * byte is the high byte of a word), plus `initial`, folded to 16 bits but NOT complemented.
 * Chain partial sums through `initial`; pass the result to `~x & 0xffff` for a checksum.
 */
export function onesSum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  checkSpan(buf, off, len, 'onesSum');
  let sum = initial;
  const last = off + len - 1;
  let i = off;
  for (; i < last; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i === last) sum += buf[i] << 8;
  return fold(sum);
}

/**
 * The Internet checksum (RFC 1071) of `len` bytes at `off`: ~(initial + Σ words) & 0xffff.
 * Over a region that already contains a correct checksum field the result is 0.
 */
export function internetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~onesSum(buf, off, len, initial) & 0xffff;
}

/** Same function as `internetChecksum`; for an IPv4 header use (buf, ipOff, 20) with the field zeroed. */
export const ipv4Checksum = internetChecksum;

/** RFC 1624 eqn. 3: patch checksum field at `at` after a 16-bit word changed from `o` to `n`. */
function patchSum(u8: Uint8Array, at: number, delta: number, udp: boolean): void {
  const hc = (u8[at] << 8) | u8[at + 1];
  if (udp && hc === 0) return; // UDP over IPv4: 0 = no checksum transmitted; keep it absent
  let c = ~fold((~hc & 0xffff) + delta) & 0xffff;
  if (udp && c === 0) c = 0xffff;
  u8[at] = c >>> 8;
  u8[at + 1] = c & 0xff;
}

/** Writes big-endian u32 `v` at `at`; returns the RFC 1624 delta (Σ ~old + new) of its two words. */
function putU32(u8: Uint8Array, at: number, v: number): number {
  const o = (u8[at] << 8) | u8[at + 1];
  const o2 = (u8[at + 2] << 8) | u8[at + 3];
  const n = (v >>> 16) & 0xffff;
  const n2 = v & 0xffff;
  u8[at] = n >>> 8;
  u8[at + 1] = n & 0xff;
  u8[at + 2] = n2 >>> 8;
  u8[at + 3] = n2 & 0xff;
  return (~o & 0xffff) + n + (~o2 & 0xffff) + n2;
}

function getU32(u8: Uint8Array, at: number): number {
  return ((u8[at] << 24) | (u8[at + 1] << 16) | (u8[at + 2] << 8) | u8[at + 3]) >>> 0;
}

function getU16(u8: Uint8Array, at: number): number {
  return (u8[at] << 8) | u8[at + 1];
}

/** Checks that the frame at `off` is pkt-gen-shaped IPv4/UDP whose UDP payload covers `need` bytes. */
function checkPayload(u8: Uint8Array, off: number, need: number, what: string): void {
  if (!Number.isInteger(off) || off < 0 || off + OFF.PAYLOAD + need > u8.length) {
    throw new FrameError(`${what}: needs bytes ${off}..${off + OFF.PAYLOAD + need} but the buffer has ${u8.length}`);
  }
  if (getU16(u8, off + OFF.ETHERTYPE) !== ETHERTYPE_IPV4 || u8[off + OFF.IP_VHL] !== 0x45 || u8[off + OFF.IP_PROTO] !== IPPROTO_UDP) {
    throw new FrameError(`${what}: the frame at offset ${off} is not IPv4 (IHL 5) / UDP`);
  }
  const udpLen = getU16(u8, off + OFF.UDP_LEN);
  if (udpLen < 8 + need) {
    throw new FrameError(`${what}: UDP length ${udpLen} leaves fewer than ${need} payload bytes (frame too short; use length >= ${OFF.PAYLOAD + need})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers, timestamps, pong

/**
 * Writes u32 `seq` big-endian at payload offset 42 (pkt-gen txseq) and patches the UDP
 * checksum incrementally so the frame still verifies. O(1), no allocation.
 */
export function setSeq(u8: Uint8Array, off: number, seq: number): void {
  checkPayload(u8, off, 4, 'setSeq');
  patchSum(u8, off + OFF.UDP_CSUM, putU32(u8, off + OFF.SEQ, seq >>> 0), true);
}

/** Reads the u32 big-endian sequence number at payload offset 42. */
export function getSeq(u8: Uint8Array, off: number): number {
  checkSpan(u8, off, OFF.SEQ + 4, 'getSeq');
  return getU32(u8, off + OFF.SEQ);
}

/**
 * Writes a ping timestamp {u32 sec, u32 nsec} at byte 46 and patches the UDP checksum.
 * pkt-gen stores these in host order (only the pinger reads them back); we use big-endian
 * like every other field. `sec` is taken modulo 2^32.
 */
export function writeTimestamp(u8: Uint8Array, off: number, sec: number, nsec: number): void {
  checkPayload(u8, off, 12, 'writeTimestamp');
  if (!Number.isInteger(nsec) || nsec < 0 || nsec >= 1e9) {
    throw new FrameError(`writeTimestamp: nsec ${nsec} is not an integer 0..999999999`);
  }
  const d = putU32(u8, off + OFF.TS_SEC, sec >>> 0) + putU32(u8, off + OFF.TS_NSEC, nsec);
  patchSum(u8, off + OFF.UDP_CSUM, d, true);
}

/** The ping timestamp written by `writeTimestamp`, as milliseconds (sec·1000 + nsec/1e6); allocates nothing. */
export function timestampMs(u8: Uint8Array, off: number): number {
  checkSpan(u8, off, OFF.TS_NSEC + 4, 'timestampMs');
  return getU32(u8, off + OFF.TS_SEC) * 1000 + getU32(u8, off + OFF.TS_NSEC) / 1e6;
}

/** Reads the ping timestamp written by `writeTimestamp`. */
export function readTimestamp(u8: Uint8Array, off: number): { sec: number; nsec: number } {
  checkSpan(u8, off, OFF.TS_NSEC + 4, 'readTimestamp');
  return { sec: getU32(u8, off + OFF.TS_SEC), nsec: getU32(u8, off + OFF.TS_NSEC) };
}

function swapBytes(u8: Uint8Array, a: number, b: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const t = u8[a + i];
    u8[a + i] = u8[b + i];
    u8[b + i] = t;
  }
}

/**
 * Turns a received ping into its pong in place, like pkt-gen's pong_body: swap dst/src MAC
 * (0-5 ↔ 6-11) and, if the ethertype is IPv4 and the frame holds the addresses, swap IP
 * src/dst (26-29 ↔ 30-33). Ports are left alone, as in pkt-gen.
 *
 * No checksum needs fixing: the IPv4 header checksum and the UDP pseudo-header both cover
 * the two addresses only through a one's-complement *sum* of their 16-bit words, and
 * addition is commutative, so exchanging the two 4-byte fields (word-aligned) leaves every
 * sum, hence every checksum, unchanged. MACs are covered by no checksum at all.
 */
export function swapForPong(u8: Uint8Array, off: number, len: number): void {
  checkSpan(u8, off, len, 'swapForPong');
  if (len < 14) throw new FrameError(`swapForPong: a ${len}-byte frame has no complete Ethernet header`);
  swapBytes(u8, off + OFF.DST_MAC, off + OFF.SRC_MAC, 6);
  if (len >= OFF.IP_DST + 4 && getU16(u8, off + OFF.ETHERTYPE) === ETHERTYPE_IPV4) {
    swapBytes(u8, off + OFF.IP_SRC, off + OFF.IP_DST, 4);
  }
}

// ---------------------------------------------------------------------------------------------
// Inspection

/**
 * Recomputes the IPv4 header checksum and the UDP checksum of the frame at `off`.
 * Honours the IHL and the UDP length field; never reads outside [off, off+len).
 * Non-IPv4 or non-UDP frames, truncated frames and a UDP checksum of 0 ("none") give false.
 */
export function verifyIpv4Udp(u8: Uint8Array, off: number, len: number): { ipOk: boolean; udpOk: boolean } {
  checkSpan(u8, off, len, 'verifyIpv4Udp');
  const r = { ipOk: false, udpOk: false };
  if (len < 34 || getU16(u8, off + OFF.ETHERTYPE) !== ETHERTYPE_IPV4 || u8[off + OFF.IP] >> 4 !== 4) return r;
  const ihl = (u8[off + OFF.IP] & 0x0f) * 4;
  if (ihl < 20 || 14 + ihl > len) return r;
  r.ipOk = onesSum(u8, off + OFF.IP, ihl) === 0xffff;
  if (u8[off + OFF.IP_PROTO] !== IPPROTO_UDP) return r;
  const udp = off + 14 + ihl;
  if (14 + ihl + 8 > len) return r;
  const udpLen = getU16(u8, udp + 4);
  if (udpLen < 8 || 14 + ihl + udpLen > len || getU16(u8, udp + 6) === 0) return r;
  const ipSrc = off + OFF.IP + 12;
  const pseudo = onesSum(u8, ipSrc, 8, IPPROTO_UDP + udpLen);
  r.udpOk = onesSum(u8, udp, udpLen, pseudo) === 0xffff;
  return r;
}

/**
 * One line for logs and the CLI, e.g.
 * `00:00:00:00:00:00 > ff:ff:ff:ff:ff:ff IPv4 10.0.0.1:1234 > 10.1.0.1:1234 UDP len 60`.
 */
export function describeFrame(u8: Uint8Array, off: number, len: number): string {
  checkSpan(u8, off, len, 'describeFrame');
  if (len < 14) return `runt frame len ${len}`;
  const macs = `${formatMac(u8, off + OFF.SRC_MAC)} > ${formatMac(u8, off + OFF.DST_MAC)}`;
  const et = getU16(u8, off + OFF.ETHERTYPE);
  if (et !== ETHERTYPE_IPV4) {
    const name = et === 0x86dd ? 'IPv6' : et === 0x0806 ? 'ARP' : et === 0x8100 ? 'VLAN' : et < 0x0600 ? '802.3' : 'ethertype';
    return `${macs} ${name} 0x${et.toString(16).padStart(4, '0')} len ${len}`;
  }
  if (len < 34) return `${macs} IPv4 (truncated) len ${len}`;
  const ihl = (u8[off + OFF.IP] & 0x0f) * 4;
  const proto = u8[off + OFF.IP_PROTO];
  const src = formatIp(getU32(u8, off + OFF.IP_SRC));
  const dst = formatIp(getU32(u8, off + OFF.IP_DST));
  if (proto === IPPROTO_UDP && ihl >= 20 && 14 + ihl + 4 <= len) {
    const sp = getU16(u8, off + 14 + ihl);
    const dp = getU16(u8, off + 14 + ihl + 2);
    return `${macs} IPv4 ${src}:${sp} > ${dst}:${dp} UDP len ${len}`;
  }
  return `${macs} IPv4 ${src} > ${dst} proto ${proto} len ${len}`;
}

// ---------------------------------------------------------------------------------------------
// FrameBuilder

export interface FrameBuilderOptions {
  /** Frame length without FCS, 42..65535; default 60 (pkt-gen -l). */
  length?: number;
  /** Default 00:00:00:00:00:00 (pkt-gen on a VALE port). */
  srcMac?: string | Uint8Array;
  /** Default ff:ff:ff:ff:ff:ff. */
  dstMac?: string | Uint8Array;
  /** pkt-gen -s syntax or a parsed range; default 10.0.0.1:1234. */
  src?: string | IpRange;
  /** pkt-gen -d syntax or a parsed range; default 10.1.0.1:1234. */
  dst?: string | IpRange;
}

function toMac(v: string | Uint8Array | undefined, dflt: string, what: string): Uint8Array {
  if (v === undefined) return parseMac(dflt);
  if (typeof v === 'string') return parseMac(v);
  if (v instanceof Uint8Array && v.length === 6) return Uint8Array.from(v);
  throw new FrameError(`${what}: expected a MAC string or 6 bytes, got ${v instanceof Uint8Array ? `${v.length} bytes` : typeof v}`);
}

function toRange(v: string | IpRange | undefined, dflt: string, what: string): IpRange {
  if (v === undefined) return parseIpRange(dflt, DEFAULT_PORT);
  if (typeof v === 'string') return parseIpRange(v, DEFAULT_PORT);
  const { ipStart, ipEnd, portStart, portEnd } = v;
  const u32 = (x: number) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
  const u16 = (x: number) => Number.isInteger(x) && x >= 0 && x <= 0xffff;
  if (!u32(ipStart) || !u32(ipEnd) || !u16(portStart) || !u16(portEnd) || ipStart > ipEnd || portStart > portEnd) {
    throw new FrameError(`${what}: invalid range ${JSON.stringify(v)} (need u32 ipStart <= ipEnd, u16 portStart <= portEnd)`);
  }
  return { ipStart, ipEnd, portStart, portEnd };
}

/**
 * Builds pkt-gen frames. Holds the current frame in a template; `write()` copies it out and
 * `next()` advances the addresses odometer-style (src port → src IP → dst port → dst IP, each
 * wrapping to its start and carrying into the next), exactly like pkt-gen's `update_ip`.
 * Without ranges (single address and port on both sides) `next()` is a no-op.
 */
export class FrameBuilder {
  readonly length: number;
  readonly srcRange: Readonly<IpRange>;
  readonly dstRange: Readonly<IpRange>;
  /** True when either side is a range, i.e. when frames differ from one another. */
  readonly ranged: boolean;

  #tpl: Uint8Array;
  #payloadSum: number;
  #ipConst: number;
  #udpLen: number;
  #srcIp: number;
  #srcPort: number;
  #dstIp: number;
  #dstPort: number;

  constructor(opts: FrameBuilderOptions = {}) {
    const length = opts.length ?? DEFAULT_FRAME_LEN;
    if (!Number.isInteger(length) || length < MIN_FRAME_LEN || length > MAX_FRAME_LEN) {
      throw new FrameError(
        `invalid frame length ${length}: an IPv4/UDP frame needs ${MIN_FRAME_LEN}..${MAX_FRAME_LEN} bytes ` +
          `(14 Ethernet + 20 IPv4 + 8 UDP header minimum, no FCS); pkt-gen's shorter 16..41 are not supported`,
      );
    }
    this.length = length;
    const srcMac = toMac(opts.srcMac, '00:00:00:00:00:00', 'srcMac');
    const dstMac = toMac(opts.dstMac, 'ff:ff:ff:ff:ff:ff', 'dstMac');
    this.srcRange = Object.freeze(toRange(opts.src, '10.0.0.1', 'src'));
    this.dstRange = Object.freeze(toRange(opts.dst, '10.1.0.1', 'dst'));
    const s = this.srcRange;
    const d = this.dstRange;
    this.ranged = s.ipStart !== s.ipEnd || s.portStart !== s.portEnd || d.ipStart !== d.ipEnd || d.portStart !== d.portEnd;

    const t = new Uint8Array(length);
    t.set(dstMac, OFF.DST_MAC);
    t.set(srcMac, OFF.SRC_MAC);
    t[OFF.ETHERTYPE] = 0x08;
    t[OFF.ETHERTYPE + 1] = 0x00;
    t[OFF.IP_VHL] = 0x45;
    t[OFF.IP_TOS] = 0x10;
    const ipLen = length - 14;
    t[OFF.IP_LEN] = ipLen >>> 8;
    t[OFF.IP_LEN + 1] = ipLen & 0xff;
    t[OFF.IP_FRAG] = 0x40; // DF
    t[OFF.IP_TTL] = 64;
    t[OFF.IP_PROTO] = IPPROTO_UDP;
    this.#udpLen = length - 34;
    t[OFF.UDP_LEN] = this.#udpLen >>> 8;
    t[OFF.UDP_LEN + 1] = this.#udpLen & 0xff;
    // Payload: the pattern repeated, last byte of the frame NUL (docs/ARCHITECTURE.md §8).
    for (let i = OFF.PAYLOAD, j = 0; i < length; i++, j = j + 1 === PKTGEN_PAYLOAD.length ? 0 : j + 1) {
      t[i] = PKTGEN_PAYLOAD.charCodeAt(j);
    }
    if (length > OFF.PAYLOAD) t[length - 1] = 0;
    this.#tpl = t;
    this.#payloadSum = onesSum(t, OFF.PAYLOAD, length - OFF.PAYLOAD);
    // Constant IPv4 header words: 0x4510, total length, id 0, 0x4000, TTL|proto; csum as 0.
    this.#ipConst = 0x4510 + ipLen + 0x4000 + ((64 << 8) | IPPROTO_UDP);
    this.#srcIp = s.ipStart;
    this.#srcPort = s.portStart;
    this.#dstIp = d.ipStart;
    this.#dstPort = d.portStart;
    this.#refresh();
  }

  get srcIp(): number {
    return this.#srcIp;
  }
  get srcPort(): number {
    return this.#srcPort;
  }
  get dstIp(): number {
    return this.#dstIp;
  }
  get dstPort(): number {
    return this.#dstPort;
  }

  /** Writes the current frame at `u8[off]`; returns its length. One copy, no allocation. */
  write(u8: Uint8Array, off: number): number {
    const len = this.length;
    if (!(off >= 0 && off + len <= u8.length)) {
      throw new FrameError(`FrameBuilder.write: a ${len}-byte frame at offset ${off} does not fit a ${u8.length}-byte buffer`);
    }
    u8.set(this.#tpl, off);
    return len;
  }

  /** Advances to the next address combination (odometer order); no-op without ranges. */
  next(): void {
    if (!this.ranged) return;
    const s = this.srcRange;
    const d = this.dstRange;
    if (this.#srcPort < s.portEnd) this.#srcPort++;
    else {
      this.#srcPort = s.portStart;
      if (this.#srcIp < s.ipEnd) this.#srcIp++;
      else {
        this.#srcIp = s.ipStart;
        if (this.#dstPort < d.portEnd) this.#dstPort++;
        else {
          this.#dstPort = d.portStart;
          this.#dstIp = this.#dstIp < d.ipEnd ? this.#dstIp + 1 : d.ipStart;
        }
      }
    }
    this.#refresh();
  }

  /** Goes back to the first address combination. */
  reset(): void {
    this.#srcIp = this.srcRange.ipStart;
    this.#srcPort = this.srcRange.portStart;
    this.#dstIp = this.dstRange.ipStart;
    this.#dstPort = this.dstRange.portStart;
    this.#refresh();
  }

  /** A fresh copy of the current frame (allocates; for tests and one-off use). */
  toBytes(): Uint8Array {
    return this.#tpl.slice();
  }

  /** `describeFrame` of the current frame. */
  describe(): string {
    return describeFrame(this.#tpl, 0, this.length);
  }

  /** Same as the module-level `setSeq`. */
  setSeq(u8: Uint8Array, off: number, seq: number): void {
    setSeq(u8, off, seq);
  }

  /** Same as the module-level `getSeq`. */
  getSeq(u8: Uint8Array, off: number): number {
    return getSeq(u8, off);
  }

  /** Rewrites address fields and both checksums of the template from a few words. */
  #refresh(): void {
    const t = this.#tpl;
    const si = this.#srcIp;
    const di = this.#dstIp;
    const sp = this.#srcPort;
    const dp = this.#dstPort;
    t[26] = si >>> 24; t[27] = (si >>> 16) & 0xff; t[28] = (si >>> 8) & 0xff; t[29] = si & 0xff;
    t[30] = di >>> 24; t[31] = (di >>> 16) & 0xff; t[32] = (di >>> 8) & 0xff; t[33] = di & 0xff;
    t[34] = sp >>> 8; t[35] = sp & 0xff;
    t[36] = dp >>> 8; t[37] = dp & 0xff;
    const addrs = (si >>> 16) + (si & 0xffff) + (di >>> 16) + (di & 0xffff);
    const ipSum = ~fold(this.#ipConst + addrs) & 0xffff;
    t[24] = ipSum >>> 8; t[25] = ipSum & 0xff;
    // pseudo-header (addresses, proto, UDP length) + UDP header (ports, length, csum 0) + payload
    const ul = this.#udpLen;
    let udpSum = ~fold(addrs + IPPROTO_UDP + ul + sp + dp + ul + this.#payloadSum) & 0xffff;
    if (udpSum === 0) udpSum = 0xffff;
    t[40] = udpSum >>> 8; t[41] = udpSum & 0xff;
  }
}
