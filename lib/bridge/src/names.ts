/**
 * Port names, as in netmap: `vale<bridge>:<port>`. The bridge is everything before the first
 * colon (`vale0`, `valeA`, `vale` alone for `vale:x`); a name without a colon (`vale-foo`) is a
 * port of the default bridge, `vale`. Whole names start with "vale", are at most 15 characters
 * (IFNAMSIZ 16 with its NUL) and use [A-Za-z0-9_.-] plus that one colon.
 */
import { BridgeError } from './errors.js';

export const NAME_PREFIX = 'vale';
export const DEFAULT_BRIDGE = 'vale';
export const MAX_NAME_LEN = 15;
export const NAME_RULE =
  'port names are vale<bridge>:<port> (or vale<name> for the default bridge): they start with "vale", ' +
  `have at most ${MAX_NAME_LEN} characters, use only A-Z a-z 0-9 _ . - and at most one ":" followed by a non-empty port name`;

const NAME_RE = /^vale[A-Za-z0-9_.-]*(:[A-Za-z0-9_.-]+)?$/;
const BRIDGE_RE = /^vale[A-Za-z0-9_.-]{0,10}$/;

export interface ParsedName {
  /** The whole port name, e.g. `vale0:a`. */
  name: string;
  /** Bridge name, e.g. `vale0` (`vale` for names without a colon). */
  bridge: string;
  /** Port part, e.g. `a` (the whole name for names without a colon). */
  port: string;
}

export function parsePortName(name: unknown): ParsedName {
  if (typeof name !== 'string') throw new BridgeError('ERR_BAD_NAME', `port name must be a string; ${NAME_RULE}`);
  if (name.length > MAX_NAME_LEN || !NAME_RE.test(name) || name === NAME_PREFIX) {
    throw new BridgeError('ERR_BAD_NAME', `invalid port name ${JSON.stringify(name)}: ${NAME_RULE}`);
  }
  const colon = name.indexOf(':');
  if (colon < 0) return { name, bridge: DEFAULT_BRIDGE, port: name };
  return { name, bridge: name.slice(0, colon), port: name.slice(colon + 1) };
}

export function checkBridgeName(name: unknown): string {
  if (typeof name !== 'string' || !BRIDGE_RE.test(name)) {
    throw new BridgeError('ERR_BAD_NAME',
      `invalid bridge name ${JSON.stringify(name)}: bridge names start with "vale", have at most 14 characters and use only A-Z a-z 0-9 _ . -`);
  }
  return name;
}
