/**
 * The one spin lock of this package, and of the switch built on it: a 32-bit word that holds 0
 * when free, else its holder's id (any non-zero value the caller chooses; by convention thread id
 * + 1). Recording the holder lets whoever cleans up after a dead thread find and break its locks.
 *
 * A live holder keeps such a lock for a few hundred nanoseconds, so the first tries spin. After
 * every 1024 failed polls the caller naps for ~50 µs with Atomics.wait on the word (nobody
 * notifies: the nap ends early only if the word already changed), which leaves the CPU to a
 * holder that the OS descheduled when there are more busy threads than cores. After `waitMs` the
 * caller gives up and gets false: its holder is taken to be stuck or dead.
 */
export function acquireLock(i32: Int32Array, w: number, holder: number, waitMs: number): boolean {
  if (Atomics.compareExchange(i32, w, 0, holder) === 0) return true;
  let end = -1;
  for (let k = 1; ; k++) {
    const v = Atomics.load(i32, w);
    if (v === 0) {
      if (Atomics.compareExchange(i32, w, 0, holder) === 0) return true;
    } else if ((k & 1023) === 0) {
      const now = performance.now();
      if (end < 0) end = now + waitMs;
      else if (now >= end) return false;
      Atomics.wait(i32, w, v, 0.05);
    }
  }
}

/** Frees a lock word (its holder calls this). */
export function releaseLock(i32: Int32Array, w: number): void {
  Atomics.store(i32, w, 0);
}

/** Frees the lock word if `holder` holds it; true if it did (cleanup after a dead holder). */
export function breakLock(i32: Int32Array, w: number, holder: number): boolean {
  return Atomics.compareExchange(i32, w, holder, 0) === holder;
}
