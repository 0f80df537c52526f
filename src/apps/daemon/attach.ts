/**
 * Attach specifications: plain data naming an adapter and its addresses, as `vswitch ctl
 * attach`, the control socket and the serve config file give them.
 *
 *   { "port": "vale0:vm1", "kind": "qemu-stream", "addr": "unix:/path/vm1.sock" }
 *   { "port": "vale0:vm2", "kind": "qemu-dgram", "local": "127.0.0.1:5601", "remote": "127.0.0.1:5602" }
 *   { "port": "vale0:up", "kind": "vxlan", "local": "10.99.0.1:4789", "remotes": ["10.99.0.2:4789"], "vni": 42 }
 *   { "port": "vale0:t1", "kind": "tap", "name": "vsw-t1", "netns": "ns1" }
 */
import { parsePortName } from '#bridge';
import { VswitchError } from '../../core/errors.js';
import type { Switch } from '../../core/switch.js';
import {
  attachInWorker, attachQemuDgram, attachQemuStream, attachTap, attachVxlan, formatHostPort, listAdapters, parseHostPort, type Adapter,
} from '../../adapters/index.js';

export type AttachSpec =
  | { port: string; kind: 'qemu-stream'; addr: string }
  | { port: string; kind: 'qemu-dgram'; local: string; remote: string }
  | { port: string; kind: 'vxlan'; local: string; remotes: string[]; vni: number }
  | { port: string; kind: 'tap'; name: string; netns?: string };

function bad(msg: string): VswitchError {
  return new VswitchError('ERR_BAD_ATTACH', msg);
}

/** Checks a spec's shape (addresses are checked by the adapter itself). Returns it typed. */
export function checkAttachSpec(raw: unknown): AttachSpec {
  if (!raw || typeof raw !== 'object') throw bad('an attach spec is an object with "port" and "kind"');
  const r = raw as Record<string, unknown>;
  if (typeof r.port !== 'string') throw bad('attach: "port" must be a port name such as vale0:vm1');
  parsePortName(r.port);
  const str = (k: string) => {
    if (typeof r[k] !== 'string' || (r[k] as string).length === 0) throw bad(`attach ${r.kind}: "${k}" must be an address string`);
    return r[k] as string;
  };
  switch (r.kind) {
    case 'qemu-stream':
      return { port: r.port, kind: r.kind, addr: str('addr') };
    case 'qemu-dgram':
      return { port: r.port, kind: r.kind, local: str('local'), remote: str('remote') };
    case 'vxlan': {
      if (!Array.isArray(r.remotes) || r.remotes.length === 0 || !r.remotes.every((x) => typeof x === 'string')) {
        throw bad('attach vxlan: "remotes" must be a non-empty array of "ip:port" strings');
      }
      if (!Number.isInteger(r.vni) || (r.vni as number) < 0 || (r.vni as number) > 0xffffff) {
        throw bad(`attach vxlan: "vni" must be an integer from 0 to 16777215, got ${JSON.stringify(r.vni)}`);
      }
      return { port: r.port, kind: r.kind, local: str('local'), remotes: r.remotes as string[], vni: r.vni as number };
    }
    case 'tap':
      if (r.netns !== undefined && typeof r.netns !== 'string') throw bad('attach tap: "netns" must be a namespace name');
      return { port: r.port, kind: r.kind, name: str('name'), ...(r.netns !== undefined ? { netns: r.netns as string } : {}) };
    default:
      throw bad(`attach: "kind" must be qemu-stream, qemu-dgram, vxlan or tap, got ${JSON.stringify(r.kind)}`);
  }
}

export interface AttachOptions {
  /**
   * Run each adapter (VXLAN, QEMU dgram, QEMU stream, TAP) in a Worker of its own
   * (attachInWorker): the default, and the fast way. false runs them on the calling thread's
   * event loop.
   */
  threads?: boolean;
}

/** Attaches the adapter a spec describes; the port is created (persistent) if needed. */
export async function attachFromSpec(sw: Switch, raw: AttachSpec, opts: AttachOptions = {}): Promise<Adapter> {
  const s = checkAttachSpec(raw);
  const threads = opts.threads ?? true;
  switch (s.kind) {
    case 'qemu-stream': {
      const addr = s.addr as Parameters<typeof attachQemuStream>[2];
      return threads ? attachInWorker(sw, { kind: 'qemu-stream', port: s.port, addr, options: { persistent: true } }) : attachQemuStream(sw, s.port, addr, { persistent: true });
    }
    case 'qemu-dgram': {
      const o = { local: s.local, remote: s.remote, persistent: true };
      return threads ? attachInWorker(sw, { kind: 'qemu-dgram', port: s.port, options: o }) : attachQemuDgram(sw, s.port, o);
    }
    case 'vxlan': {
      const o = { local: s.local, remotes: s.remotes, vni: s.vni, persistent: true };
      if (threads) {
        // VXLAN adapters in one thread share a UDP endpoint; adapters in Workers cannot.
        let want = '';
        try {
          const l = parseHostPort(s.local, 'vxlan local');
          if (l.port !== 0) want = formatHostPort(l);
        } catch {
          // attachVxlan reports the bad address
        }
        const other = want ? listAdapters(sw).find((a) => a.kind === 'vxlan' && a.local === want) : undefined;
        if (other) {
          throw bad(`attach vxlan: ${want} is already the endpoint of ${other.portName}, whose adapter runs in its own thread; ports share one UDP endpoint only with serve --no-adapter-threads (or give this port another local address)`);
        }
      }
      return threads ? attachInWorker(sw, { kind: 'vxlan', port: s.port, options: o }) : attachVxlan(sw, s.port, o);
    }
    case 'tap': {
      const o = { name: s.name, netns: s.netns, persistent: true };
      return threads ? attachInWorker(sw, { kind: 'tap', port: s.port, options: o }) : attachTap(sw, s.port, o);
    }
  }
}
