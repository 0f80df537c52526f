/**
 * The `vswitch serve --config FILE` file: JSON declaring the switch's bridges and persistent
 * ports at start.
 *
 * ```json
 * {
 *   "maxBridges": 8,
 *   "defaults": { "maxPorts": 64 },
 *   "bridges": { "vale0": { "maxPorts": 16, "ageing": 60 } },
 *   "ports": ["vale0:p1", "vale0:up", "vale0:mon"],
 *   "vlans": { "vale0:p1": { "mode": "access", "vlan": 10 }, "vale0:up": { "mode": "trunk", "vlans": [10, 20] } },
 *   "mirrors": { "vale0:mon": { "tx": ["vale0:p1"], "rx": ["vale0:p1"] } },
 *   "attach": [{ "port": "vale0:vm1", "kind": "qemu-stream", "addr": "unix:/run/vm1.sock" }]
 * }
 * ```
 * Every key is checked; an error names the file and the key path (e.g. `bridges.vale0.maxPorts`).
 */
import { readFileSync } from 'node:fs';
import { BRIDGE_DEFAULTS, checkBridgeName, parsePortName, type BridgeOptions, type VlanConfig } from '#bridge';
import { VswitchError } from '../../core/errors.js';
import { checkAttachSpec, type AttachSpec } from './attach.js';
import { checkGuestSpec, type GuestSpec } from './guests.js';
import type { Switch } from '../../core/switch.js';

export interface ServeConfig {
  maxBridges?: number;
  /** Options for every bridge (flags such as --max-ports override these). */
  defaults?: BridgeOptions;
  bridges?: Record<string, BridgeOptions>;
  ports?: string[];
  /** 802.1Q mode per persistent port. */
  vlans?: Record<string, VlanConfig>;
  /** Mirror ports and what they mirror. */
  mirrors?: Record<string, { tx?: string[]; rx?: string[] }>;
  /** Adapters to attach at start (see src/control/attach.ts for the forms). */
  attach?: AttachSpec[];
  /** v86 guests to boot at start (see src/apps/daemon/guests.ts). */
  guests?: GuestSpec[];
}

const TOP_KEYS = ['maxBridges', 'defaults', 'bridges', 'ports', 'vlans', 'mirrors', 'attach', 'guests'] as const;
const INT_KEYS = ['maxPorts', 'macTableSize', 'txSlots', 'rxSlots', 'bufSize', 'batch', 'ageing'] as const;
const BRIDGE_KEYS: readonly string[] = [...INT_KEYS, 'lookup'];

/** Ranges of the integer bridge options (the same as Bridge.create checks). */
export const BRIDGE_LIMITS: Record<typeof INT_KEYS[number], { min: number; max: number; pow2?: boolean; multiple?: number }> = {
  maxPorts: { min: 1, max: 254 },
  macTableSize: { min: 4, max: 1 << 20, pow2: true },
  txSlots: { min: 2, max: 4096, pow2: true },
  rxSlots: { min: 2, max: 4096, pow2: true },
  bufSize: { min: 64, max: 65472, multiple: 64 },
  batch: { min: 1, max: 1024 },
  ageing: { min: 0, max: 0x7fffffff },
};

/** Checks one integer bridge option; returns an error message or undefined. */
export function checkBridgeOption(key: typeof INT_KEYS[number], x: unknown): string | undefined {
  const l = BRIDGE_LIMITS[key];
  if (typeof x !== 'number' || !Number.isInteger(x) || x < l.min || x > l.max) {
    return `must be an integer in [${l.min}, ${l.max}]${l.pow2 ? ' and a power of two' : ''}, got ${JSON.stringify(x)}`;
  }
  if (l.pow2 && (x & (x - 1)) !== 0) return `must be a power of two, got ${x}`;
  if (l.multiple && x % l.multiple !== 0) return `must be a multiple of ${l.multiple}, got ${x}`;
  return undefined;
}

function bad(file: string, key: string, msg: string): VswitchError {
  return new VswitchError('ERR_BAD_CONFIG', `config ${file}: ${key}: ${msg}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bridgeOptions(file: string, key: string, v: unknown): BridgeOptions {
  if (!isObject(v)) throw bad(file, key, `must be an object of bridge options (${BRIDGE_KEYS.join(', ')})`);
  const out: BridgeOptions = {};
  for (const [k, x] of Object.entries(v)) {
    if (!BRIDGE_KEYS.includes(k)) throw bad(file, `${key}.${k}`, `unknown bridge option; known: ${BRIDGE_KEYS.join(', ')}`);
    if (k === 'lookup') {
      if (typeof x !== 'string' || x.length === 0) throw bad(file, `${key}.${k}`, 'must be the name of a registered lookup function, e.g. "learning"');
      out.lookup = x;
    } else {
      const why = checkBridgeOption(k as typeof INT_KEYS[number], x);
      if (why) throw bad(file, `${key}.${k}`, why);
      out[k as typeof INT_KEYS[number]] = x as number;
    }
  }
  return out;
}

/** Checks a parsed config object (throws ERR_BAD_CONFIG naming the bad key). */
export function validateConfig(raw: unknown, file = '(config)'): ServeConfig {
  if (!isObject(raw)) throw bad(file, '(top level)', 'must be a JSON object like {"bridges": {...}, "ports": [...]}');
  const cfg: ServeConfig = {};
  for (const k of Object.keys(raw)) {
    if (!(TOP_KEYS as readonly string[]).includes(k)) throw bad(file, k, `unknown key; known: ${TOP_KEYS.join(', ')}`);
  }
  if (raw.maxBridges !== undefined) {
    const m = raw.maxBridges;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 64) throw bad(file, 'maxBridges', `must be an integer in [1, 64], got ${JSON.stringify(m)}`);
    cfg.maxBridges = m;
  }
  if (raw.defaults !== undefined) cfg.defaults = bridgeOptions(file, 'defaults', raw.defaults);
  if (raw.bridges !== undefined) {
    if (!isObject(raw.bridges)) throw bad(file, 'bridges', 'must be an object mapping bridge names to options, e.g. {"vale0": {"maxPorts": 16}}');
    cfg.bridges = {};
    for (const [name, opts] of Object.entries(raw.bridges)) {
      try {
        checkBridgeName(name);
      } catch (e) {
        throw bad(file, `bridges.${name}`, (e as Error).message);
      }
      cfg.bridges[name] = bridgeOptions(file, `bridges.${name}`, opts);
    }
  }
  if (raw.ports !== undefined) {
    if (!Array.isArray(raw.ports)) throw bad(file, 'ports', 'must be an array of port names, e.g. ["vale0:p1"]');
    const seen = new Set<string>();
    cfg.ports = raw.ports.map((p, i) => {
      try {
        const n = parsePortName(p).name;
        if (seen.has(n)) throw new Error(`port ${n} is listed twice`);
        seen.add(n);
        return n;
      } catch (e) {
        throw bad(file, `ports[${i}]`, (e as Error).message);
      }
    });
  }
  const declared = (key: string, name: unknown): string => {
    let n: string;
    try {
      n = parsePortName(name).name;
    } catch (e) {
      throw bad(file, key, (e as Error).message);
    }
    if (!cfg.ports?.includes(n)) throw bad(file, key, `port ${n} is not in "ports": list it there to create it`);
    return n;
  };
  if (raw.vlans !== undefined) {
    if (!isObject(raw.vlans)) throw bad(file, 'vlans', 'must map port names to {"mode": "access", "vlan": 10} or {"mode": "trunk", "vlans": [...], "native": N}');
    cfg.vlans = {};
    for (const [name, v] of Object.entries(raw.vlans)) {
      const n = declared(`vlans.${name}`, name);
      if (!isObject(v) || !['access', 'trunk', 'none'].includes(v.mode as string)) {
        throw bad(file, `vlans.${name}`, 'must be {"mode": "access", "vlan": N}, {"mode": "trunk", "vlans": [N, ...], "native"?: N} or {"mode": "none"}');
      }
      cfg.vlans[n] = v as unknown as VlanConfig;
    }
  }
  if (raw.mirrors !== undefined) {
    if (!isObject(raw.mirrors)) throw bad(file, 'mirrors', 'must map mirror port names to {"tx": [ports], "rx": [ports]}');
    cfg.mirrors = {};
    for (const [name, v] of Object.entries(raw.mirrors)) {
      const n = declared(`mirrors.${name}`, name);
      if (!isObject(v)) throw bad(file, `mirrors.${name}`, 'must be {"tx": [ports], "rx": [ports]}');
      const list = (k: 'tx' | 'rx') => {
        const x = v[k];
        if (x === undefined) return [];
        if (!Array.isArray(x)) throw bad(file, `mirrors.${name}.${k}`, 'must be an array of port names');
        return x.map((p, i) => declared(`mirrors.${name}.${k}[${i}]`, p));
      };
      cfg.mirrors[n] = { tx: list('tx'), rx: list('rx') };
    }
  }
  if (raw.attach !== undefined) {
    if (!Array.isArray(raw.attach)) throw bad(file, 'attach', 'must be an array of attach specs, e.g. [{"port": "vale0:vm1", "kind": "qemu-stream", "addr": "unix:/run/vm1.sock"}]');
    cfg.attach = raw.attach.map((a, i) => {
      try {
        return checkAttachSpec(a);
      } catch (e) {
        throw bad(file, `attach[${i}]`, (e as Error).message);
      }
    });
  }
  if (raw.guests !== undefined) {
    if (!Array.isArray(raw.guests)) throw bad(file, 'guests', 'must be an array of v86 guest specs, e.g. [{"port": "vale0:vm1", "kernel": "vmlinuz", "bios": "bios.bin"}]');
    cfg.guests = raw.guests.map((g, i) => {
      try {
        return checkGuestSpec(g);
      } catch (e) {
        throw bad(file, `guests[${i}]`, (e as Error).message);
      }
    });
  }
  return cfg;
}

/** Reads and checks a config file. */
export function loadConfig(file: string): ServeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new VswitchError('ERR_BAD_CONFIG', `cannot read config ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new VswitchError('ERR_BAD_CONFIG', `config ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return validateConfig(raw, file);
}

/** Creates the config's bridges and persistent ports on a Switch. */
export function applyConfig(sw: Switch, cfg: ServeConfig, file = '(config)'): void {
  for (const [name, opts] of Object.entries(cfg.bridges ?? {})) {
    try {
      sw.createBridge(name, opts);
    } catch (e) {
      throw bad(file, `bridges.${name}`, (e as Error).message);
    }
  }
  (cfg.ports ?? []).forEach((p, i) => {
    try {
      sw.createPort(p);
    } catch (e) {
      throw bad(file, `ports[${i}]`, (e as Error).message);
    }
  });
  for (const [p, v] of Object.entries(cfg.vlans ?? {})) {
    try {
      sw.setVlan(p, v);
    } catch (e) {
      throw bad(file, `vlans.${p}`, (e as Error).message);
    }
  }
  for (const [m, v] of Object.entries(cfg.mirrors ?? {})) {
    try {
      sw.setMirror(m, v);
    } catch (e) {
      throw bad(file, `mirrors.${m}`, (e as Error).message);
    }
  }
}

export { BRIDGE_DEFAULTS };
