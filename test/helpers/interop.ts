// Prerequisites of the interop tests (Debian packages, root, a guest kernel) and what a test does
// when one is missing. The rule: a test installs what it needs (as root, with apt-get) and FAILS
// when that or its setup fails; it skips, through tap's skip with the reason, only where the
// machine cannot run it at all (not root, no apt-get). With VSWITCH_REQUIRE_INTEROP=1 (set by
// .ci/run when it runs as root) a skip is a failure too, so a green CI run ran every interop test.
import { execFileSync } from 'node:child_process';

/** The slice of tap's Test these helpers use (the root `t` or a subtest). */
export interface TestLike {
  fail(message: string): unknown;
  pass(message: string, extra: { skip?: string | boolean }): unknown;
  comment(...message: unknown[]): unknown;
}

export const requireInterop = process.env.VSWITCH_REQUIRE_INTEROP === '1';

/**
 * Why a prerequisite is missing. `fatal`: the machine should have been able to provide it (we
 * are root with apt-get, or a step of the setup failed), so the test fails rather than skips.
 */
export interface Missing {
  reason: string;
  fatal: boolean;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v '${cmd.replace(/'/g, '')}'`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function installed(pkg: string): boolean {
  try {
    execFileSync('dpkg', ['-s', pkg], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs the Debian packages in `pkgs` that are missing (root with apt-get only), then checks
 * that the commands in `cmds` exist. Returns null when everything is there, or what is missing:
 * not fatal only where this machine cannot install (not root, no apt-get, no dpkg).
 */
export function needPackages(pkgs: string[], cmds: string[] = []): Missing | null {
  if (!have('dpkg')) {
    const absent = cmds.filter((c) => !have(c));
    return absent.length ? { reason: `${absent.join(', ')} not found and no dpkg/apt-get to install ${pkgs.join(' ')}`, fatal: false } : null;
  }
  const missing = pkgs.filter((p) => !installed(p));
  if (missing.length) {
    if (!isRoot || !have('apt-get')) {
      return { reason: `Debian packages ${missing.join(' ')} missing and this machine cannot install them (${isRoot ? 'no apt-get' : 'not root'})`, fatal: false };
    }
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // A failed update (one index out of sync on the mirror, say) need not stop the install:
    // the install's own result decides.
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
    } catch { /* the install below reports what is really missing */ }
    try {
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'pipe'], env, timeout: 900_000 });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      const detail = (err.stderr?.toString() || err.message).trim().split('\n').slice(-2).join(' | ');
      return { reason: `apt-get install ${missing.join(' ')} failed: ${detail}`, fatal: true };
    }
  }
  const absent = cmds.filter((c) => !have(c));
  if (absent.length) return { reason: `${absent.join(', ')} not found after installing ${pkgs.join(' ')}`, fatal: true };
  return null;
}

/** Root, or a reason this machine cannot run the test (never fatal: nothing to install). */
export function needRoot(what: string): Missing | null {
  return isRoot ? null : { reason: `needs root (${what})`, fatal: false };
}

/**
 * At the top of a test file: turns a missing prerequisite into the value of a test's `skip`
 * option. A fatal one, or any one under VSWITCH_REQUIRE_INTEROP=1, also records a failure on
 * `t`, so the run is red; otherwise the reason is printed and the tests skip with it.
 */
export function skipFor(t: TestLike, what: string, missing: Missing | null | undefined): string | false {
  if (!missing) return false;
  const reason = `${what}: ${missing.reason}`;
  if (missing.fatal) t.fail(`${reason} (setup failed on a machine that can run it)`);
  else if (requireInterop) t.fail(`${reason} (VSWITCH_REQUIRE_INTEROP=1: every interop test must run)`);
  else t.comment(`skipping ${reason}`);
  return reason;
}

/**
 * Inside a test: part of it cannot run. Fails under VSWITCH_REQUIRE_INTEROP=1 (or when
 * `missing.fatal`), otherwise records a skip with the reason (tap prints "# SKIP <reason>").
 */
export function requireOrSkip(t: TestLike, what: string, missing: Missing | string): void {
  const m = typeof missing === 'string' ? { reason: missing, fatal: false } : missing;
  const reason = `${what}: ${m.reason}`;
  if (m.fatal) t.fail(`${reason} (setup failed on a machine that can run it)`);
  else if (requireInterop) t.fail(`${reason} (VSWITCH_REQUIRE_INTEROP=1: every interop test must run)`);
  else t.pass(what, { skip: m.reason });
}
