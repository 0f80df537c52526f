// Helpers for the adapter/interop tests: waiting, frames, Debian packages, the guest initramfs,
// and booting QEMU guests. Used by test/adapters-*.test.ts.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createSocket } from 'node:dgram';

export const execFileP = promisify(execFile);
export const VM_DIR = fileURLToPath(new URL('.', import.meta.url));
export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until it is true or `timeoutMs` passes; returns its last value. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 5): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
}

export function mac(s: string): number[] {
  return s.split(':').map((x) => parseInt(x, 16));
}

/** A 60-byte (or `len`) Ethernet frame with a recognisable tag at byte 14. */
export function ethFrame(dst: string, src: string, tag = 0, len = 60): Uint8Array {
  const f = new Uint8Array(len);
  f.set(mac(dst), 0);
  f.set(mac(src), 6);
  f[12] = 0x88; f[13] = 0xb5; // local experimental ethertype
  f[14] = tag & 0xff;
  f[15] = (tag >>> 8) & 0xff;
  for (let i = 16; i < len; i++) f[i] = (i * 7 + tag) & 0xff;
  return f;
}

/** A free UDP port on 127.0.0.1 (bound then released: fine for tests on loopback). */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

export function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Debian packages the interop tests use (also listed for .ci/run). */
export const INTEROP_PKGS = ['qemu-system-x86', 'busybox-static', 'linux-image-amd64', 'cpio', 'kmod', 'tshark', 'iproute2', 'ethtool', 'iputils-ping'];

/**
 * Installs missing Debian packages when root with apt-get; returns null on success, or the
 * reason they could not be installed (the caller skips with it).
 */
export function ensureDebianPackages(pkgs: string[]): string | null {
  const missing = pkgs.filter((p) => {
    try {
      execFileSync('dpkg', ['-s', p], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return null;
  if (!isRoot || !have('apt-get')) return `Debian packages missing (${missing.join(' ')}) and cannot install them (not root or no apt-get)`;
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'ignore', env, timeout: 600_000 });
    return null;
  } catch (e) {
    return `apt-get install ${missing.join(' ')} failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

// ---- guests -----------------------------------------------------------------------------------

export interface GuestImage {
  kernel: string;
  initrd: string;
  kver: string;
}

/** The newest Debian kernel in /boot (vmlinuz-<kver> with /lib/modules/<kver>), or null. */
export function findKernel(): { kernel: string; kver: string } | null {
  let names: string[];
  try {
    names = readdirSync('/boot').filter((n) => n.startsWith('vmlinuz-'));
  } catch {
    return null;
  }
  const ok = names
    .map((n) => ({ kernel: join('/boot', n), kver: n.slice('vmlinuz-'.length) }))
    .filter((k) => existsSync(join('/lib/modules', k.kver)))
    .sort((a, b) => b.kver.localeCompare(a.kver, undefined, { numeric: true }));
  return ok[0] ?? null;
}

/**
 * Builds (or reuses from the cache) the guest initramfs: static busybox, the virtio-net modules
 * of kernel `kver`, and test/vm/init. Cached under $TMPDIR/vswitch-vm-cache keyed by kernel
 * version and a hash of the init script and builder.
 */
export async function guestImage(): Promise<GuestImage | string> {
  const k = findKernel();
  if (!k) return 'no kernel in /boot with modules in /lib/modules (Debian package linux-image-amd64)';
  try {
    if (!(statSync(k.kernel).mode & 0o444)) return `${k.kernel} is not readable`;
  } catch (e) {
    return `${k.kernel}: ${(e as Error).message}`;
  }
  const h = createHash('sha256');
  h.update(readFileSync(join(VM_DIR, 'init')));
  h.update(readFileSync(join(VM_DIR, 'build-initramfs.sh')));
  const key = h.digest('hex').slice(0, 12);
  const dir = join(tmpdir(), 'vswitch-vm-cache');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `initramfs-${k.kver}-${key}.cpio.gz`);
  if (!existsSync(out)) {
    const tmp = `${out}.${process.pid}.tmp`;
    try {
      await execFileP('bash', [join(VM_DIR, 'build-initramfs.sh'), k.kver, tmp], { timeout: 60_000 });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      return `building the initramfs failed: ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' | ')}`;
    }
    renameSync(tmp, out);
  }
  return { kernel: k.kernel, initrd: out, kver: k.kver };
}

export interface GuestOptions {
  name: string;
  /** `-netdev` value without the id, e.g. `stream,server=off,addr.type=unix,addr.path=/x.sock`. */
  netdev: string;
  mac: string;
  ip: string;
  peer: string;
  /** Seconds the guest tries to ping its peer. */
  pingTimeout?: number;
  /** Seconds the guest keeps answering after its ping, before powering off. */
  linger?: number;
}

export interface Guest {
  proc: ChildProcess;
  /** Serial console output so far. */
  output(): string;
  /** Resolves with the marker line (VSWITCH-PING-OK / -FAIL) or null on exit/timeout. */
  result(timeoutMs: number): Promise<string | null>;
  kill(): Promise<void>;
}

/** Boots a guest with QEMU (TCG) whose /init pings `peer` and prints a marker line on ttyS0. */
export function bootGuest(img: GuestImage, o: GuestOptions): Guest {
  const append = [
    'console=ttyS0', 'quiet', 'panic=-1', 'loglevel=3',
    `vmname=${o.name}`, `vmip=${o.ip}`, `vmpeer=${o.peer}`,
    `vmtimeout=${o.pingTimeout ?? 60}`, `vmlinger=${o.linger ?? 60}`,
  ].join(' ');
  const args = [
    '-accel', 'tcg', '-m', '256', '-smp', '1', '-nodefaults', '-no-user-config',
    '-display', 'none', '-monitor', 'none', '-no-reboot', '-serial', 'stdio',
    '-kernel', img.kernel, '-initrd', img.initrd, '-append', append,
    '-netdev', `${o.netdev.split(',')[0]},id=n0${o.netdev.slice(o.netdev.split(',')[0].length)}`,
    '-device', `virtio-net-pci,netdev=n0,mac=${o.mac},romfile=`,
  ];
  const proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (d: Buffer) => {
    out += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  let exited = false;
  const exit = new Promise<void>((r) => proc.once('exit', () => { exited = true; r(); }));
  proc.once('error', (e) => { out += `\n[spawn error: ${e.message}]\n`; });
  // Whole lines only: the console arrives in pieces.
  const marker = () => /VSWITCH-PING-(OK|FAIL)[^\r\n]*(?=\r?\n)/.exec(out)?.[0] ?? null;
  return {
    proc,
    output: () => out,
    async result(timeoutMs) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const m = marker();
        if (m || exited) return m;
        const left = end - Date.now();
        if (left <= 0) return null;
        await Promise.race([new Promise<void>((r) => waiters.push(r)), exit, sleep(Math.min(left, 1000))]);
      }
    },
    async kill() {
      if (exited) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(t);
    },
  };
}
