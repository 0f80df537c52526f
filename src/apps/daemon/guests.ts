/**
 * v86 guests hosted by the daemon: `vswitch ctl guest-start` (or a serve config "guests" entry)
 * boots a guest in a Worker of `vswitch serve`, with its NIC on a port of the daemon's switch, so
 * the guest outlives the command that started it. Its serial console goes to a file if asked and
 * its last lines are kept for `vswitch ctl guests`.
 *
 *   { "port": "vale0:vm1", "kernel": "/srv/v86/vmlinuz", "initrd": "/srv/v86/initrd.cpio",
 *     "bios": "/usr/share/seabios/bios.bin", "append": "console=ttyS0 quiet", "memoryMB": 128,
 *     "console": "/var/log/vm1.log" }
 */
import { parsePortName } from '#bridge';
import { VswitchError } from '../../core/errors.js';
import type { Switch } from '../../core/switch.js';
import { startV86Guest, type V86Guest } from '../../v86/index.js';

export interface GuestSpec {
  port: string;
  kernel: string;
  initrd?: string;
  bios: string;
  vgaBios?: string;
  append?: string;
  memoryMB?: number;
  nic?: 'ne2k' | 'virtio';
  /** File the serial console is appended to (default: kept in memory only). */
  console?: string;
}

export interface GuestInfo {
  port: string;
  running: boolean;
  /** The last characters of the serial console. */
  consoleTail: string;
  /** The NIC adapter's counters (null before it attached or after it stopped). */
  stats: unknown;
}

const TAIL = 2000;

function bad(msg: string): VswitchError {
  return new VswitchError('ERR_BAD_GUEST', msg);
}

/** Checks a guest spec's shape (files are checked when the guest starts). */
export function checkGuestSpec(raw: unknown): GuestSpec {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('a guest spec is an object with "port", "kernel" and "bios"');
  const r = raw as Record<string, unknown>;
  const known = ['port', 'kernel', 'initrd', 'bios', 'vgaBios', 'append', 'memoryMB', 'nic', 'console'];
  for (const k of Object.keys(r)) if (!known.includes(k)) throw bad(`guest: unknown key "${k}" (known: ${known.join(', ')})`);
  const str = (k: string, required: boolean): string | undefined => {
    const v = r[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v.length === 0 || v.length > 4096) throw bad(`guest: "${k}" must be a non-empty string`);
    return v;
  };
  if (typeof r.port !== 'string') throw bad('guest: "port" must be a port name such as vale0:vm1');
  const port = parsePortName(r.port).name;
  if (r.memoryMB !== undefined && (!Number.isInteger(r.memoryMB) || (r.memoryMB as number) < 16 || (r.memoryMB as number) > 2048)) {
    throw bad(`guest: "memoryMB" must be an integer from 16 to 2048, got ${JSON.stringify(r.memoryMB)}`);
  }
  if (r.nic !== undefined && r.nic !== 'ne2k' && r.nic !== 'virtio') throw bad('guest: "nic" must be "ne2k" or "virtio"');
  const spec: GuestSpec = { port, kernel: str('kernel', true)!, bios: str('bios', true)! };
  for (const k of ['initrd', 'vgaBios', 'append', 'console'] as const) {
    const v = str(k, false);
    if (v !== undefined) spec[k] = v;
  }
  if (r.memoryMB !== undefined) spec.memoryMB = r.memoryMB as number;
  if (r.nic !== undefined) spec.nic = r.nic as 'ne2k' | 'virtio';
  return spec;
}

/** The guests one daemon hosts, by port name. */
export class GuestHost {
  readonly #sw: Switch;
  readonly #guests = new Map<string, V86Guest>();

  constructor(sw: Switch) {
    this.#sw = sw;
  }

  /** Boots a guest; resolves once its Worker has attached the NIC (not when Linux is up). */
  async start(raw: unknown): Promise<GuestInfo> {
    const spec = checkGuestSpec(raw);
    const held = this.#sw.holderOf(spec.port);
    if (this.#guests.has(spec.port) || held) {
      throw new VswitchError('ERR_PORT_BUSY', `${spec.port} is held by ${held ?? 'a v86 guest'}; stop it first (vswitch ctl guest-stop ${spec.port})`);
    }
    const g = await startV86Guest({
      kernel: spec.kernel, initrd: spec.initrd, bios: spec.bios, vgaBios: spec.vgaBios, append: spec.append ?? 'console=ttyS0 quiet',
      port: spec.port, switch: this.#sw.name, memoryMB: spec.memoryMB, nic: spec.nic, console: spec.console ?? 'none', persistent: true,
    });
    this.#guests.set(spec.port, g);
    void g.exited.then(() => { if (this.#guests.get(spec.port) === g) this.#guests.delete(spec.port); });
    return this.#info(g);
  }

  /** Stops a guest; its port stays (persistent) so the daemon's bridge keeps its settings. */
  async stop(port: string): Promise<unknown> {
    const name = parsePortName(port).name;
    const g = this.#guests.get(name);
    if (!g) throw new VswitchError('ERR_NO_GUEST', `no guest runs on ${name}; guests: ${[...this.#guests.keys()].join(', ') || 'none'}`);
    this.#guests.delete(name);
    return g.stop();
  }

  async list(): Promise<GuestInfo[]> {
    return Promise.all([...this.#guests.values()].map((g) => this.#info(g)));
  }

  async stopAll(): Promise<void> {
    const all = [...this.#guests.values()];
    this.#guests.clear();
    await Promise.all(all.map((g) => g.stop().catch(() => null)));
  }

  async #info(g: V86Guest): Promise<GuestInfo> {
    const out = g.output();
    return { port: g.port, running: g.running, consoleTail: out.slice(-TAIL), stats: await g.stats() };
  }
}
