/**
 * Peers `vswitch bench --peers` measures beside vswitch, on the throughput scenarios they can
 * run (N senders to M receivers, unicast or broadcast; no batch/port sweeps, no latency):
 *
 *  postmessage    the Worker switch a JS developer would write: batches of frames as arrays of
 *                 Uint8Array through postMessage (postmessage.ts)
 *  postmessage-1  the same switch with one frame per message
 *  vde_switch     Debian vde2's vde_switch through vde_plug, closed loop (vde.ts)
 */
import type { PeerRun, PeerScenario } from './common.js';
import { runPostMessage } from './postmessage.js';
import { runVde, vdeUnavailable } from './vde.js';

export type { PeerRun, PeerScenario } from './common.js';

export interface Peer {
  system: string;
  describe: string;
  /** Why it cannot run on this machine, or undefined. */
  unavailable(): string | undefined;
  run(s: PeerScenario, warmup: number, duration: number): Promise<PeerRun>;
}

/** Scenarios the peers run (the plain throughput ones). */
export const PEER_SCENARIOS = ['1to1-60', '1to1-1514', '2to1-60', '1to4-bcast-60'];

export const PEERS: Peer[] = [
  {
    system: 'postmessage',
    describe: 'Worker switch, 256 Uint8Array frames per postMessage, MACs in a Map',
    unavailable: () => undefined,
    run: (s, w, d) => runPostMessage(s, w, d, { mode: 'batch' }),
  },
  {
    system: 'postmessage-1',
    describe: 'the same Worker switch, one frame per postMessage',
    unavailable: () => undefined,
    run: (s, w, d) => runPostMessage(s, w, d, { mode: 'frame' }),
  },
  {
    system: 'vde_switch',
    describe: 'Debian vde2 through vde_plug, 64 frames in flight per sender',
    unavailable: vdeUnavailable,
    run: (s, w, d) => runVde(s, w, d),
  },
];
