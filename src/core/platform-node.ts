/**
 * What the library needs from its platform, for Node (the browser twin is platform-browser.ts;
 * the package's `#platform` import picks one by the `browser` condition). Everything below it —
 * lib/rings, lib/bridge, the rest of src/core — uses only what browsers also have.
 */
import { threadId as nodeThreadId } from 'node:worker_threads';

export type { OsThread } from './os-thread.js';

/** This thread's id: unique in the process, small, positive or 0 (the main thread). */
export const threadId: number = nodeThreadId;

/** A string naming this thread and process, for request ids. */
export const processTag = `${nodeThreadId}:${process.pid}`;

/** Calls `onExit(tid)` when a Worker that this thread creates exits. */
export function onWorkerExit(onExit: (tid: number) => void): void {
  process.on('worker', (w) => {
    const tid = w.threadId;
    w.once('exit', () => onExit(tid));
  });
}

/** This thread as an OS thread (Linux), for liveness checks by another thread, and whether one still runs. */
export { thisOsThread, osThreadAlive } from './liveness.js';

/** Lets the process exit although this channel or timer is live (Node), a no-op elsewhere. */
export function unref(x: unknown): void {
  (x as { unref?: () => void }).unref?.();
}
