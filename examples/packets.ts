/**
 * Just enough Ethernet, ARP, IPv4 and ICMP to ping: build and parse real packets, with correct
 * IPv4 header and ICMP checksums. Used by the ping-hosts example (ping-host.ts).
 *
 * Every multi-byte field is big-endian (network order); DataView reads and writes big-endian
 * by default. MACs are 6-byte Uint8Arrays, IPv4 addresses dotted-quad strings ('10.0.0.1').
 *
 *   Ethernet   dst MAC (6) | src MAC (6) | ethertype (2)                         14 bytes
 *   ARP        htype 1 | ptype 0x0800 | hlen 6 | plen 4 | op (1 request, 2 reply)
 *              sender MAC | sender IP | target MAC | target IP                   28 bytes
 *   IPv4       0x45 | tos | total length | id | flags/frag | ttl | proto | csum
 *              src IP | dst IP                                                   20 bytes
 *   ICMP echo  type (8 request, 0 reply) | code 0 | csum | id | seq | data        8 + data
 */
import { formatMac } from 'vswitch/frame';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const IPPROTO_ICMP = 1;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;
export const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** Shortest Ethernet frame without FCS; shorter frames are padded with zeros, as NICs do. */
export const MIN_FRAME = 60;

const ETH_LEN = 14;
const IP_LEN = 20;
const ICMP_HDR = 8;

// ---- addresses ---------------------------------------------------------------------------------

export function ipToBytes(ip: string): Uint8Array {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  return Uint8Array.from(parts);
}

export function bytesToIp(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---- the Internet checksum (RFC 1071) -----------------------------------------------------------

/**
 * One's-complement of the one's-complement sum of 16-bit big-endian words (an odd last byte is
 * padded with a zero). Computed over data whose checksum field is zero, it is the value to
 * store there; computed over data with a correct checksum in place, it is 0.
 */
export function internetChecksum(b: Uint8Array, off = 0, len = b.length - off): number {
  let sum = 0;
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (len % 2 === 1) sum += b[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

// ---- building ------------------------------------------------------------------------------------

function ethernet(dst: Uint8Array, src: Uint8Array, ethertype: number, payloadLen: number): { frame: Uint8Array; view: DataView } {
  const frame = new Uint8Array(Math.max(MIN_FRAME, ETH_LEN + payloadLen));
  frame.set(dst, 0);
  frame.set(src, 6);
  const view = new DataView(frame.buffer);
  view.setUint16(12, ethertype);
  return { frame, view };
}

export interface Arp {
  op: number;
  senderMac: Uint8Array;
  senderIp: string;
  targetMac: Uint8Array;
  targetIp: string;
}

/**
 * An ARP packet in an Ethernet frame. A request ("who has targetIp? tell senderIp") goes to the
 * broadcast address with a zero target MAC; a reply goes to the asker only.
 */
export function buildArp(a: Arp): Uint8Array {
  const dst = a.op === ARP_REQUEST ? BROADCAST : a.targetMac;
  const { frame, view } = ethernet(dst, a.senderMac, ETHERTYPE_ARP, 28);
  view.setUint16(14, 1); //              hardware type: Ethernet
  view.setUint16(16, ETHERTYPE_IPV4); // protocol type: IPv4
  frame[18] = 6; //                      hardware address length
  frame[19] = 4; //                      protocol address length
  view.setUint16(20, a.op);
  frame.set(a.senderMac, 22);
  frame.set(ipToBytes(a.senderIp), 28);
  frame.set(a.targetMac, 32);
  frame.set(ipToBytes(a.targetIp), 38);
  return frame;
}

export interface IcmpEcho {
  /** ICMP_ECHO_REQUEST or ICMP_ECHO_REPLY. */
  type: number;
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  srcIp: string;
  dstIp: string;
  /** Identifier and sequence number: a reply carries the request's. */
  id: number;
  seq: number;
  /** Echo data: a reply carries the request's. */
  data: Uint8Array;
}

/** An ICMP echo request or reply in an IPv4 packet in an Ethernet frame, both checksums set. */
export function buildIcmpEcho(e: IcmpEcho): Uint8Array {
  const ipTotal = IP_LEN + ICMP_HDR + e.data.length;
  const { frame, view } = ethernet(e.dstMac, e.srcMac, ETHERTYPE_IPV4, ipTotal);
  const ip = ETH_LEN;
  frame[ip] = 0x45; //                  version 4, header length 5 words
  view.setUint16(ip + 2, ipTotal);
  view.setUint16(ip + 4, e.seq); //     identification (anything; unique per packet is polite)
  view.setUint16(ip + 6, 0x4000); //    flags: don't fragment
  frame[ip + 8] = 64; //                TTL
  frame[ip + 9] = IPPROTO_ICMP;
  frame.set(ipToBytes(e.srcIp), ip + 12);
  frame.set(ipToBytes(e.dstIp), ip + 16);
  view.setUint16(ip + 10, internetChecksum(frame, ip, IP_LEN)); // over the header only

  const icmp = ip + IP_LEN;
  frame[icmp] = e.type;
  frame[icmp + 1] = 0; //               code
  view.setUint16(icmp + 4, e.id);
  view.setUint16(icmp + 6, e.seq);
  frame.set(e.data, icmp + ICMP_HDR);
  view.setUint16(icmp + 2, internetChecksum(frame, icmp, ICMP_HDR + e.data.length)); // header + data
  return frame;
}

// ---- parsing -------------------------------------------------------------------------------------

export type Packet =
  | ({ kind: 'arp'; dstMac: Uint8Array } & Arp)
  | ({ kind: 'icmp-echo' } & IcmpEcho);

/**
 * Parses an Ethernet frame into an ARP packet or an ICMP echo, or returns null for anything
 * else, including IPv4 packets with a bad header or ICMP checksum (a host drops those).
 * The returned MACs and data are copies: the frame may be a view that is about to be reused.
 */
export function parsePacket(frame: Uint8Array): Packet | null {
  if (frame.length < ETH_LEN) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const dstMac = frame.slice(0, 6);
  const srcMac = frame.slice(6, 12);
  const ethertype = view.getUint16(12);

  if (ethertype === ETHERTYPE_ARP) {
    if (frame.length < ETH_LEN + 28) return null;
    if (view.getUint16(14) !== 1 || view.getUint16(16) !== ETHERTYPE_IPV4 || frame[18] !== 6 || frame[19] !== 4) return null;
    return {
      kind: 'arp', dstMac, op: view.getUint16(20),
      senderMac: frame.slice(22, 28), senderIp: bytesToIp(frame, 28),
      targetMac: frame.slice(32, 38), targetIp: bytesToIp(frame, 38),
    };
  }

  if (ethertype === ETHERTYPE_IPV4) {
    const ip = ETH_LEN;
    if (frame.length < ip + IP_LEN || frame[ip] >> 4 !== 4) return null;
    const ihl = (frame[ip] & 0x0f) * 4;
    const total = view.getUint16(ip + 2);
    if (ihl < IP_LEN || total < ihl + ICMP_HDR || ip + total > frame.length) return null;
    if (internetChecksum(frame, ip, ihl) !== 0) return null; //          bad IPv4 header checksum
    if (frame[ip + 9] !== IPPROTO_ICMP) return null;
    const icmp = ip + ihl;
    const icmpLen = total - ihl;
    if (internetChecksum(frame, icmp, icmpLen) !== 0) return null; //    bad ICMP checksum
    const type = frame[icmp];
    if ((type !== ICMP_ECHO_REQUEST && type !== ICMP_ECHO_REPLY) || frame[icmp + 1] !== 0) return null;
    return {
      kind: 'icmp-echo', type, srcMac, dstMac,
      srcIp: bytesToIp(frame, ip + 12), dstIp: bytesToIp(frame, ip + 16),
      id: view.getUint16(icmp + 4), seq: view.getUint16(icmp + 6),
      data: frame.slice(icmp + ICMP_HDR, ip + total),
    };
  }
  return null;
}

/** One line for logs: `02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP who-has 10.0.0.3 tell 10.0.0.1`. */
export function describePacket(frame: Uint8Array): string {
  const p = parsePacket(frame);
  if (!p) return `${frame.length}-byte frame (not ARP or ICMP echo)`;
  if (p.kind === 'arp') {
    const macs = `${formatMac(p.senderMac)} > ${formatMac(p.dstMac)}`;
    return p.op === ARP_REQUEST
      ? `${macs} ARP who-has ${p.targetIp} tell ${p.senderIp}`
      : `${macs} ARP ${p.senderIp} is-at ${formatMac(p.senderMac)}`;
  }
  const what = p.type === ICMP_ECHO_REQUEST ? 'echo request' : 'echo reply';
  return `${formatMac(p.srcMac)} > ${formatMac(p.dstMac)} ${p.srcIp} > ${p.dstIp} ICMP ${what} id ${p.id} seq ${p.seq}`;
}
