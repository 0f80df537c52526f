/**
 * What every thread that imports vswitch shares: the Switches created in this thread (so an open
 * in the Switch's own thread is a direct call), and the watch on Workers this thread creates
 * (Node emits 'worker' on `process` in the creating thread only), whose exits are reported to
 * every Switch of the process.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { ERR, VswitchError } from './errors.js';
import { THREADS_CHANNEL, type BridgeSummary, type OpenOptions } from './messages.js';
import type { Port } from './port.js';

/** The part of a Switch that openPort and the Worker watch use. */
export interface LocalSwitch {
  readonly name: string;
  open(name: string, opts?: OpenOptions): Promise<Port>;
  list(): BridgeSummary[];
  threadExited(tid: number): void;
}

const localSwitches = new Map<string, LocalSwitch>();

/** @internal */
export function registerLocalSwitch(sw: LocalSwitch): void {
  if (localSwitches.has(sw.name)) {
    throw new VswitchError(ERR.SWITCH_EXISTS, `a switch named ${sw.name} already exists in this thread: close it or pick another name`);
  }
  localSwitches.set(sw.name, sw);
}

/** @internal */
export function unregisterLocalSwitch(sw: LocalSwitch): void {
  if (localSwitches.get(sw.name) === sw) localSwitches.delete(sw.name);
}

/** @internal The Switch of this name created in this thread, if any. */
export function findLocalSwitch(name: string): LocalSwitch | undefined {
  return localSwitches.get(name);
}

let watching = false;
/**
 * Watches the Workers this thread creates and reports their exit to every Switch of the process.
 */
export function watchWorkers(): void {
  if (watching) return;
  watching = true;
  process.on('worker', (w) => {
    const tid = w.threadId;
    w.once('exit', () => {
      for (const sw of localSwitches.values()) sw.threadExited(tid);
      const ch = new BroadcastChannel(THREADS_CHANNEL);
      ch.postMessage({ op: 'exited', threadId: tid });
      ch.close();
    });
  });
}
