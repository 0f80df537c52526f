/**
 * Opening ports from any thread. In the thread that owns the Switch the call is direct; in any
 * other thread it is one request on the switch's BroadcastChannel, answered with the bridge's
 * SharedArrayBuffer and the port's slot. Each thread keeps one Bridge view and one Forwarder per
 * bridge it uses.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { ERR, VswitchError, errorFromData } from './errors.js';
import { CHANNEL_PREFIX, type OpenOptions, type OpenReply, type Reply, type Request } from './messages.js';
import { Port } from './port.js';
import { findLocalSwitch, watchWorkers } from './threads.js';
import { bridgeView } from './views.js';
import { thisOsThread } from './liveness.js';

let seq = 0;

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
  const local = findLocalSwitch(switchName);
  if (local) return local.open(name, opts);
  const reply = (await request(switchName, {
    op: 'open', name, persistent: !!opts.persistent, share: !!opts.share, holder: opts.holder, os: thisOsThread(),
  } as Omit<Request, 'id' | 'threadId'>, opts.timeoutMs ?? 5000)) as OpenReply;
  const { bridge, fw } = bridgeView(reply.sab);
  return new Port(bridge, fw, reply.index, reply.name, reply.gen, {
    close: async (p) => { await request(switchName, { op: 'close', name: p.name, gen: reply.gen } as Omit<Request, 'id' | 'threadId'>, opts.timeoutMs ?? 5000); },
  });
}

/** Lists bridges and ports of a switch from any thread. */
export async function listSwitch(opts: { switch?: string; timeoutMs?: number } = {}): Promise<unknown> {
  const name = opts.switch ?? 'default';
  const local = findLocalSwitch(name);
  if (local) return local.list();
  return request(name, { op: 'list' } as Omit<Request, 'id' | 'threadId'>, opts.timeoutMs ?? 5000);
}
