/**
 * An OS thread as one thread reports it to another (see liveness.ts): Linux task id and its start
 * time in clock ticks since boot. Plain data, so browsers and Node share it.
 */
export interface OsThread {
  tid: number;
  start: string;
}

/** Whether a value received from another thread is an OS thread description. */
export function isOsThread(v: unknown): v is OsThread {
  const o = v as OsThread;
  return !!o && typeof o === 'object' && Number.isInteger(o.tid) && o.tid > 0 && typeof o.start === 'string' && /^\d{1,20}$/.test(o.start);
}
