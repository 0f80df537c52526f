/** An OS thread as one thread reports it to another (see liveness.ts), and its validation. */
export interface OsThreadInfo {
  tid: number;
  start: string;
}

/** Whether a value received from another thread is an OS thread description. */
export function isOsThread(v: unknown): v is OsThreadInfo {
  const o = v as OsThreadInfo;
  return !!o && typeof o === 'object' && Number.isInteger(o.tid) && o.tid > 0 && typeof o.start === 'string' && /^\d{1,20}$/.test(o.start);
}
