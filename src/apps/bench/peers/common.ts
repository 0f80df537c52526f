/**
 * What the bench and its peers share: the shape of a throughput scenario they can all run, the
 * MAC addresses of the hosts (receivers r0…, senders s0…, the sender's index in the last byte
 * so a sink can credit the right sender), and a peer's result.
 */

/** The part of a bench scenario a peer needs: N senders to M receivers, unicast or broadcast. */
export interface PeerScenario {
  name: string;
  senders: number;
  receivers: number;
  frameLen: number;
  bcast?: boolean;
}

export interface PeerRun {
  mpps: number;
  gbps: number;
  /** Frames the harness gave up on (not delivered within its stall timeout). */
  lost?: number;
}

export const rxMac = (i: number): string => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`;
export const txMac = (i: number): string => `02:00:00:00:02:${i.toString(16).padStart(2, '0')}`;

/** Byte 11 of a frame from sender i (the last byte of txMac(i)). */
export const SENDER_INDEX_BYTE = 11;

/** Receivers that get each frame of sender i: all of them on broadcast, else receiver 0. */
export function targetsOf(s: PeerScenario): number[] {
  return s.bcast ? Array.from({ length: s.receivers }, (_, r) => r) : [0];
}

/** A 60-byte frame from `mac` to broadcast: how a host makes itself known to a learning switch. */
export function helloFrame(mac: string): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set(mac.split(':').map((x) => parseInt(x, 16)), 6);
  f[12] = 0x08;
  return f;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
