/**
 * Messages between threads and the registry (the Switch). They travel on a BroadcastChannel
 * named after the switch, so any Worker of the process reaches it without the application
 * passing MessagePorts around. Only control traffic goes here: after `open`, frames move through
 * shared memory only.
 */
import type { BridgeOptions, MacEntry, PortInfo } from '#bridge';
import type { Shareable } from '#rings';

export const CHANNEL_PREFIX = 'vswitch:';
/** Every thread that imports vswitch reports the exit of Workers it created here. */
export const THREADS_CHANNEL = 'vswitch:threads';

export interface OpenOptions {
  /** Keep the port after its last close (like `vale-ctl -n`). Default false. */
  persistent?: boolean;
  /**
   * A port has one user at a time: a second open fails with ERR_PORT_BUSY naming the holder.
   * `share: true` lets several openers that all pass it hold the port together (for tools that
   * use its TX and RX rings from different threads, like the join tool); each ring must still
   * have one user. Default false.
   */
  share?: boolean;
  /** Who holds the port, as a second opener is told (default "thread N"), e.g. "the qemu-stream adapter". */
  holder?: string;
  /** Accepted for compatibility: every open is exclusive unless `share` is set. */
  exclusive?: boolean;
  /** Milliseconds to wait for the switch to answer from a Worker (default 5000). */
  timeoutMs?: number;
  /** Name of the Switch to use (default "default"). */
  switch?: string;
}

export interface BridgeSummary {
  name: string;
  ports: PortInfo[];
  macEntries: number;
  macFull: number;
  /** Port removals finished by force: something stayed held for REMOVE_FORCE_MS (see Switch). */
  forcedRemovals: number;
  ageing: number;
  options: Required<Omit<BridgeOptions, 'lookup'>> & { lookup: string };
}

export type Request =
  | { op: 'open'; id: string; threadId: number; name: string; persistent: boolean; share: boolean; holder?: string; os?: unknown }
  | { op: 'close'; id: string; threadId: number; name: string; gen?: number }
  | { op: 'list'; id: string; threadId: number }
  | { op: 'fdb'; id: string; threadId: number; bridge: string };

export interface OpenReply {
  /** The bridge region: its WebAssembly.Memory where it is one (fast copies there too), else its buffer. */
  sab: Shareable;
  bridge: string;
  index: number;
  gen: number;
  name: string;
}

export type Reply =
  | { id: string; ok: true; value: unknown }
  | { id: string; ok: false; error: { code: string; message: string } };

export type ThreadNote = { op: 'exited'; threadId: number };

export type { MacEntry };
