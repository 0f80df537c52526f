/**
 * Seeing a thread die without its help. A Worker killed by terminate(), by process.exit() inside
 * it, or by the end of its parent runs none of its own code on the way out, and Node tells only
 * the thread that created it (which may never have imported vswitch, or may be dead too). On
 * Linux every Worker is an OS thread listed under /proc/self/task while it lives, so a thread
 * that opens a port tells the registry which OS thread it is (its task id and start time, so a
 * recycled id is not mistaken for it), and the registry checks that the entry still exists.
 * Elsewhere this reports nothing and the registry relies on the creating thread's 'worker' event.
 */
import { readFileSync, readlinkSync } from 'node:fs';

// Node only: reached through platform-node.ts.

import type { OsThread } from './os-thread.js';

let self: OsThread | null | undefined;

function startTime(statPath: string): string | null {
  try {
    const st = readFileSync(statPath, 'utf8');
    // Field 22 (starttime); the command name (field 2) may contain spaces, so count after ')'.
    const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** This thread as an OS thread, or null where /proc/thread-self does not exist. */
export function thisOsThread(): OsThread | null {
  if (self !== undefined) return self;
  self = null;
  try {
    const m = /\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
    const start = startTime('/proc/thread-self/stat');
    if (m && start !== null) self = { tid: Number(m[1]), start };
  } catch {
    // not Linux, or /proc not mounted
  }
  return self;
}

/** Whether `t` (a thread of this process) still runs. */
export function osThreadAlive(t: OsThread): boolean {
  return startTime(`/proc/self/task/${t.tid}/stat`) === t.start;
}
