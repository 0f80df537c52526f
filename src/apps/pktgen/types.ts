/**
 * pkt-gen's functions and options (netmap apps/pkt-gen), as one plain-data record so the same
 * job runs in an embedded switch or inside `vswitch serve` (sent over the control socket).
 */
export type PktGenFunc = 'tx' | 'rx' | 'txseq' | 'rxseq' | 'ping' | 'pong';
export const PKTGEN_FUNCS: readonly PktGenFunc[] = ['tx', 'rx', 'txseq', 'rxseq', 'ping', 'pong'];

export interface PktGenOptions {
  /** Port name, e.g. vale0:a. */
  port: string;
  /** -f: function (default rx). */
  func: PktGenFunc;
  /** -n: frames to send or receive (ping: round trips); 0 = until stopped. */
  count?: number;
  /** -l: frame length without FCS (default 60). */
  length?: number;
  /** -b: frames per batch (default 512; ping/pong 1). */
  batch?: number;
  /** -R: rate limit in frames per second (0 = unlimited). */
  rate?: number;
  /** -T: report interval in ms (default 1000). */
  reportMs?: number;
  /** -w: seconds to wait before starting (default 0). */
  waitSec?: number;
  /** --duration: seconds to run (0 = until count or stopped). */
  duration?: number;
  /** -s / -d: source / destination IPv4[:port] ranges (pkt-gen syntax). */
  src?: string;
  dst?: string;
  /** -S / -D: source / destination MAC. */
  srcMac?: string;
  dstMac?: string;
  /** Frames to replay instead of generated ones (from a pcap file), cycled. */
  frames?: Uint8Array[];
  /** Busy-poll instead of sleeping when idle (lower latency, one core busy). */
  spin?: boolean;
  /** Switch name in this process (embedded use). */
  switch?: string;
}

export interface RttStats {
  count: number;
  minUs: number;
  avgUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export interface PktGenReport {
  kind: 'interval' | 'final';
  func: PktGenFunc;
  port: string;
  /** Frames and bytes in this interval (interval) or in total (final). */
  packets: number;
  bytes: number;
  /** Batches that moved at least one frame. */
  events: number;
  /** Seconds covered by this report. */
  seconds: number;
  pps: number;
  bps: number;
  /** txseq/tx: frames the switch dropped for this sender (ring full etc.). */
  dropped?: number;
  /** rxseq: frames missing from the sequence, and frames that arrived out of order. */
  lost?: number;
  reordered?: number;
  /** ping: round-trip times. */
  rtt?: RttStats;
}
