/**
 * Where the control socket of `vswitch serve` lives, and the private directory around it.
 *
 * Resolution order (every client subcommand and `vswitch serve` use the same):
 *   1. `--socket PATH`,
 *   2. `$VSWITCH_SOCKET`,
 *   3. `$XDG_RUNTIME_DIR/vswitch/vswitch.sock` when XDG_RUNTIME_DIR is set,
 *   4. `/tmp/vswitch-<uid>/vswitch.sock`.
 */
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { VswitchError } from '../../core/errors.js';

/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

function uid(): number | string {
  return typeof process.getuid === 'function' ? process.getuid() : 'user';
}

/** The default socket path (without --socket or $VSWITCH_SOCKET). */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'vswitch', 'vswitch.sock');
  return join(process.platform === 'linux' ? '/tmp' : tmpdir(), `vswitch-${uid()}`, 'vswitch.sock');
}

/** --socket PATH, else $VSWITCH_SOCKET, else the default path. Always absolute. */
export function resolveSocketPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const p = flag && flag.length > 0 ? flag : env.VSWITCH_SOCKET && env.VSWITCH_SOCKET.length > 0 ? env.VSWITCH_SOCKET : defaultSocketPath(env);
  return resolve(p);
}

/** Throws ERR_BAD_ARG when the path cannot be a Unix socket address. */
export function checkSocketPath(path: string): void {
  if (path.includes('\0')) throw new VswitchError('ERR_BAD_ARG', 'socket path must not contain NUL bytes');
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new VswitchError('ERR_BAD_ARG',
      `socket path ${path} is ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH}-byte limit of Unix sockets: pass a shorter --socket PATH`);
  }
}

/**
 * Makes sure the socket's directory exists and is private. A directory we create is made 0700.
 * The default directory (ours by name, e.g. /tmp/vswitch-1000) must be owned by us: if it is
 * not, someone else planted it and we refuse; if it is ours with a wider mode, it is narrowed.
 * An existing directory the user chose with --socket is left as it is.
 * Returns true when the directory was created.
 */
export function preparePrivateDir(socketPath: string, isDefault: boolean): boolean {
  const dir = dirname(socketPath);
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (!st) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    return true;
  }
  if (!st.isDirectory()) {
    throw new VswitchError('ERR_BAD_ARG', `${dir} exists and is not a directory: choose another --socket PATH`);
  }
  if (isDefault) {
    const me = typeof process.getuid === 'function' ? process.getuid() : st.uid;
    if (st.uid !== me) {
      throw new VswitchError('ERR_BAD_ARG',
        `${dir} belongs to uid ${st.uid}, not to you (uid ${me}): remove it, or pass --socket PATH`);
    }
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  }
  return false;
}
