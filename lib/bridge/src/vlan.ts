/**
 * 802.1Q on the data path: which VLAN a frame belongs to when it enters a port, whether a port
 * may get it, and the copy that adds or strips the tag on the way out. The configuration
 * (Bridge.setVlan) lives in the port table: mode (VLAN_NONE, VLAN_ACCESS, VLAN_TRUNK), pvid (the
 * access VLAN, or a trunk's native VLAN, 0 for none) and, for trunks, a bitmap of 4096 VLAN ids.
 * Only the forwarder's general path calls these: a bridge with no VLAN ports never pays for them.
 */
import type { MemCopy } from '#rings';
import { VLAN_ACCESS, VLAN_NONE, VLAN_TRUNK } from './layout.js';

/** TPID 0x8100 as the u16 it reads as (little-endian) at byte 12 of a tagged frame. */
const TPID_LE = 0x0081;
const TAG_BYTES = 4;
/** vlanIngress: the frame is dropped (wrong VLAN for the port, or no native VLAN). */
export const VLAN_DROP = -1;
/** vlanIngress: set in the answer when the frame's buffer carries a tag. */
export const VLAN_TAGGED = 0x1000;

function inMap(u32: Uint32Array, mapW: number, vid: number): boolean {
  return (u32[mapW + (vid >>> 5)] & (1 << (vid & 31))) !== 0;
}

/**
 * The VLAN of a frame (at byte `off`, `len` bytes) entering a port of mode `mode` with `pvid` and
 * trunk bitmap at u32 index `mapW`: its VLAN id | VLAN_TAGGED if it carries a tag, or VLAN_DROP.
 * Access ports take untagged frames only; trunks take tagged frames of their VLANs, and untagged
 * ones into the native VLAN; VLAN-unaware ports put everything in VLAN 0.
 */
export function vlanIngress(u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, off: number, len: number,
  mode: number, pvid: number, mapW: number): number {
  const tagged = u16[(off + 12) >>> 1] === TPID_LE && len >= 14 + TAG_BYTES;
  if (mode === VLAN_NONE) return tagged ? VLAN_TAGGED : 0;
  if (mode === VLAN_ACCESS) return tagged ? VLAN_DROP : pvid;
  if (tagged) {
    const tvid = ((u8[off + 14] << 8) | u8[off + 15]) & 0xfff;
    return tvid === 0 || !inMap(u32, mapW, tvid) ? VLAN_DROP : tvid | VLAN_TAGGED;
  }
  return pvid === 0 ? VLAN_DROP : pvid;
}

/** Whether a port of mode `mode` (pvid, bitmap at mapW) gets frames of VLAN `vid`. */
export function vlanMember(u32: Uint32Array, mode: number, pvid: number, mapW: number, vid: number): boolean {
  if (mode === VLAN_NONE) return vid === 0;
  if (mode === VLAN_ACCESS) return vid === pvid;
  return vid !== 0 && inMap(u32, mapW, vid);
}

/**
 * Copies a frame of VLAN `vid` (`tagged`: its buffer carries the tag) out of a port of mode
 * `mode` with `pvid`: access ports and a trunk's native VLAN get it untagged, other trunk VLANs
 * tagged. Returns the length written, 0 if the tagged frame does not fit in `bufSize`. `copy` is the
 * region's (Region.copy) for the aligned whole-frame case; the shifted parts use copyWithin.
 */
export function vlanCopy(u8: Uint8Array, copy: MemCopy, dst: number, src: number, len: number, mode: number,
  pvid: number, vid: number, tagged: boolean, bufSize: number): number {
  const untag = mode === VLAN_ACCESS || (mode === VLAN_TRUNK && vid === pvid);
  if (untag && tagged) {
    u8.copyWithin(dst, src, src + 12);
    u8.copyWithin(dst + 12, src + 12 + TAG_BYTES, src + len);
    return len - TAG_BYTES;
  }
  if (mode === VLAN_TRUNK && !untag && !tagged) {
    if (len + TAG_BYTES > bufSize) return 0;
    u8.copyWithin(dst, src, src + 12);
    u8[dst + 12] = 0x81;
    u8[dst + 13] = 0x00;
    u8[dst + 14] = vid >>> 8;
    u8[dst + 15] = vid & 0xff;
    u8.copyWithin(dst + 12 + TAG_BYTES, src + 12, src + len);
    return len + TAG_BYTES;
  }
  copy(dst, src, len);
  return len;
}
