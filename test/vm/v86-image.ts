// The v86 guest for the tests: a Debian i686 kernel + busybox initramfs built from Debian i386
// packages by build-v86-image.sh (with v86-init as /init), cached under $TMPDIR/vswitch-v86-cache,
// and Debian's SeaBIOS. Used by test/v86.test.ts.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VM_DIR, ensureDebianPackages, execFileP, have, isRoot } from './interop-util.js';

export interface V86Image {
  kernel: string;
  initrd: string;
  bios: string;
  vgaBios: string;
  /** The Debian kernel package the image came from, e.g. linux-image-6.1.0-50-686:i386. */
  kernelPackage: string;
}

export const SEABIOS = '/usr/share/seabios/bios.bin';
export const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';

function i386Enabled(): boolean {
  try {
    return execFileSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' }).split('\n').includes('i386');
  } catch {
    return false;
  }
}

function knowsI386Kernel(): boolean {
  try {
    return /Depends: linux-image-\d/.test(execFileSync('apt-cache', ['depends', 'linux-image-686:i386'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return false;
  }
}

/** Builds (or reuses) the image; returns it, or why it cannot be had (the caller skips). */
export async function v86Image(): Promise<V86Image | string> {
  const missing = ensureDebianPackages(['seabios', 'cpio']);
  if (missing) return missing;
  if (!existsSync(SEABIOS)) return `${SEABIOS} missing (Debian package seabios)`;
  const h = createHash('sha256');
  h.update(readFileSync(join(VM_DIR, 'v86-init')));
  h.update(readFileSync(join(VM_DIR, 'build-v86-image.sh')));
  const dir = join(tmpdir(), 'vswitch-v86-cache', h.digest('hex').slice(0, 12));
  const done = (): V86Image => ({
    kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.cpio'), bios: SEABIOS, vgaBios: VGABIOS,
    kernelPackage: readFileSync(join(dir, 'kernel-package'), 'utf8').trim(),
  });
  if (existsSync(join(dir, 'kernel-package'))) return done();

  if (!have('apt-get') || !have('dpkg-deb')) return 'apt-get/dpkg-deb not found: cannot fetch the Debian i386 kernel and busybox';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!i386Enabled() || !knowsI386Kernel()) {
    if (!isRoot) return 'the i386 architecture is not enabled in dpkg (needs root: dpkg --add-architecture i386 && apt-get update)';
    try {
      if (!i386Enabled()) execFileSync('dpkg', ['--add-architecture', 'i386'], { stdio: 'ignore' });
      // An index (e.g. the i386 security one) may fail to fetch; the main index is enough.
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
    } catch {
      // checked next
    }
    if (!knowsI386Kernel()) return 'apt knows no linux-image-686:i386 after adding the i386 architecture (no mirror reachable?)';
  }
  mkdirSync(join(tmpdir(), 'vswitch-v86-cache'), { recursive: true });
  const tmp = `${dir}.${process.pid}.tmp`;
  try {
    await execFileP('bash', [join(VM_DIR, 'build-v86-image.sh'), tmp], { timeout: 300_000, env });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const err = e as { stderr?: string; message: string };
    return `building the v86 guest image failed: ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' | ')}`;
  }
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another run built it first
  }
  return done();
}
