// Waiting with deadlines: every wait in the tests ends, with an error saying what did not happen.

type Emitter = {
  once(ev: string, fn: (...a: any[]) => void): unknown;
  off(ev: string, fn: (...a: any[]) => void): unknown;
};

/** Resolves when `emitter` emits `event` (with its arguments), rejects after `ms` or on 'error'. */
export function onceWithin<T extends unknown[] = unknown[]>(
  emitter: Emitter,
  event: string,
  ms: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onEvent = (...args: unknown[]) => { done(); resolve(args as T); };
    const onError = (e: unknown) => { done(); reject(e instanceof Error ? e : new Error(String(e))); };
    const timer = setTimeout(() => { done(); reject(new Error(`no '${event}' within ${ms} ms`)); }, ms);
    const done = () => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      if (event !== 'error') emitter.off('error', onError);
    };
    emitter.once(event, onEvent);
    if (event !== 'error') emitter.once('error', onError);
  });
}

/** Polls `cond` every `stepMs` until it holds; rejects with `what` after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 10_000, stepMs = 5): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
