/**
 * The browser twin of platform-node.ts (chosen through the `browser` condition of `#platform`).
 * Browsers give a Worker no thread id and no way to see another thread die, so: a random id, no
 * Worker exit notices (close ports explicitly, or let the page's lifetime end them), no OS thread.
 */
import type { OsThread } from './os-thread.js';

export type { OsThread };

function randomId(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return 1 + (a[0]! % 0x3ffffffe); // never 0 (the thread of the page) and below 2^30
}

const isWindow = typeof (globalThis as { document?: unknown }).document !== 'undefined';
export const threadId: number = isWindow ? 0 : randomId();
export const processTag = `${threadId}:browser`;

export function onWorkerExit(_onExit: (tid: number) => void): void {
  // Browsers do not tell a page that a Worker ended.
}

export function thisOsThread(): OsThread | null {
  return null;
}

export function osThreadAlive(_t: OsThread): boolean {
  return true;
}

export function unref(_x: unknown): void {
  // nothing keeps a browser "process" alive
}
