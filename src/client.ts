/**
 * Opening ports from any thread. In the thread that owns the Switch the call is direct; in any
 * other thread it is one request on the switch's BroadcastChannel, answered with the bridge's
 * SharedArrayBuffer and the port's slot. Each thread keeps one Bridge view and one Forwarder per
 * bridge it uses.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { Bridge, Forwarder } from '@vswitch/bridge';
import { ERR, VswitchError, errorFromData } from './errors.js';
import { CHANNEL_PREFIX, THREADS_CHANNEL, type OpenOptions, type OpenReply, type Reply, type Request } from './protocol.js';
import { Port } from './port.js';
import type { Switch } from './switch.js';

const localSwitches = new Map<string, Switch>();
const views = new WeakMap<SharedArrayBuffer, { bridge: Bridge; fw: Forwarder }>();
let seq = 0;

/** @internal */
export function registerLocalSwitch(sw: Switch): void {
  if (localSwitches.has(sw.name)) {
    throw new VswitchError(ERR.SWITCH_EXISTS, `a switch named ${sw.name} already exists in this thread: close it or pick another name`);
  }
  localSwitches.set(sw.name, sw);
}

/** @internal */
export function unregisterLocalSwitch(sw: Switch): void {
  if (localSwitches.get(sw.name) === sw) localSwitches.delete(sw.name);
}

function view(sab: SharedArrayBuffer): { bridge: Bridge; fw: Forwarder } {
  let v = views.get(sab);
  if (!v) {
    const bridge = Bridge.attach(sab);
    v = { bridge, fw: new Forwarder(bridge, threadId) };
    views.set(sab, v);
  }
  return v;
}

/** @internal A Port for a reply obtained in this thread. */
export function localPort(sw: Switch, r: OpenReply): Port {
  const { bridge, fw } = view(r.sab);
  return new Port(bridge, fw, r.index, r.name, r.gen, { close: (p) => sw.closeFor(threadId, p.name) });
}

let watching = false;
/**
 * Watches the Workers this thread creates and reports their exit to every Switch of the process
 * (Node emits 'worker' on process in the creating thread only).
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

async function request(switchName: string, req: Omit<Request, 'id' | 'threadId'>, timeoutMs: number): Promise<unknown> {
  const ch = new BroadcastChannel(CHANNEL_PREFIX + switchName);
  const id = `${threadId}:${process.pid}:${++seq}`;
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new VswitchError(ERR.NO_SWITCH,
        `no switch named "${switchName}" answered within ${timeoutMs} ms: create one with new Switch() in the main thread (or pass { switch: name })`)), timeoutMs);
      ch.onmessage = (ev: unknown) => {
        const d = (ev as { data: Reply }).data;
        if (!d || d.id !== id) return;
        clearTimeout(timer);
        if (d.ok) resolve(d.value); else reject(errorFromData(d.error));
      };
      ch.postMessage({ ...req, id, threadId });
    });
  } finally {
    ch.close();
  }
}

/**
 * Opens a port by name from any thread of the process: the main thread or any Worker. The port
 * (and its bridge) is created on first open. Workers need no setup: the Switch is found by name.
 */
export async function openPort(name: string, opts: OpenOptions = {}): Promise<Port> {
  watchWorkers();
  const switchName = opts.switch ?? 'default';
  const local = localSwitches.get(switchName);
  if (local) return local.open(name, opts);
  const reply = (await request(switchName, {
    op: 'open', name, persistent: !!opts.persistent, exclusive: !!opts.exclusive,
  } as Omit<Request, 'id' | 'threadId'>, opts.timeoutMs ?? 5000)) as OpenReply;
  const { bridge, fw } = view(reply.sab);
  return new Port(bridge, fw, reply.index, reply.name, reply.gen, {
    close: async (p) => { await request(switchName, { op: 'close', name: p.name } as Omit<Request, 'id' | 'threadId'>, opts.timeoutMs ?? 5000); },
  });
}

/** Lists bridges and ports of a switch from any thread. */
export async function listSwitch(opts: { switch?: string; timeoutMs?: number } = {}): Promise<unknown> {
  const name = opts.switch ?? 'default';
  const local = localSwitches.get(name);
  if (local) return local.list();
  return request(name, { op: 'list' } as Omit<Request, 'id' | 'threadId'>, opts.timeoutMs ?? 5000);
}
