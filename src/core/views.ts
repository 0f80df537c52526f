/**
 * One Bridge view and one Forwarder per bridge region per thread: every Port of this thread on
 * that bridge shares them (the Forwarder's batch tables are per thread, like VALE's per-CPU
 * scratch space).
 */
import { threadId } from '#platform';
import { Bridge, Forwarder } from '#bridge';
import type { Shareable } from '#rings';

const views = new WeakMap<Shareable, { bridge: Bridge; fw: Forwarder }>();

/** @internal */
export function bridgeView(sab: Shareable): { bridge: Bridge; fw: Forwarder } {
  let v = views.get(sab);
  if (!v) {
    const bridge = Bridge.attach(sab);
    v = { bridge, fw: new Forwarder(bridge, threadId) };
    views.set(sab, v);
  }
  return v;
}
