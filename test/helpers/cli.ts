// Runs the real CLI (dist/cli/vswitch.js) as a subprocess: one-shot commands and a `serve`
// daemon per test, on a private temporary socket, always killed in teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/apps/daemon/control-client.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/vswitch.js', import.meta.url));

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment for subprocesses: never the user's own daemon. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
  delete env.VSWITCH_SOCKET;
  delete env.XDG_RUNTIME_DIR;
  delete env.NODE_OPTIONS;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runs `vswitch ...args` to completion (killed after timeoutMs, default 60 s: a deadline that holds when
 * several Node processes start at once on 2 busy cores, which took over 15 s under load 15). */
export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: cliEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A fresh directory under os.tmpdir() (removed in teardown) and a socket path in a subdirectory serve creates. */
export function tmpSocket(t: Teardown): { dir: string; socketDir: string; socket: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vst-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketDir = join(dir, 'run');
  return { dir, socketDir, socket: join(socketDir, 'vs.sock') };
}

export interface Proc {
  proc: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first match of `re` in stdout+stderr (rejects after timeoutMs or on exit). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a long-running `vswitch ...args`; SIGKILLed in teardown if still alive. */
export function spawnCli(t: Teardown, args: string[], opts: { env?: Record<string, string | undefined> } = {}): Proc {
  const proc = spawn(process.execPath, [CLI, ...args], { env: cliEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let alive = true;
  const watchers = new Set<() => void>();
  const poke = () => { for (const w of [...watchers]) w(); };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; poke(); });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; poke(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('close', (code, signal) => { alive = false; poke(); resolve({ code, signal }); });
  });
  t.teardown(async () => {
    if (alive) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return {
    proc, exited,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (stdout + stderr).match(re);
          if (m) { done(); resolve(m); } else if (!alive) { done(); reject(new Error(`process exited before ${re}; stdout: ${stdout} stderr: ${stderr}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${re}; stdout: ${stdout} stderr: ${stderr}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); watchers.delete(check); };
        watchers.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (alive) proc.kill(signal);
      return exited;
    },
  };
}

export interface Daemon extends Proc {
  socket: string;
  pid: number;
}

export const READY_RE = /vswitch serve: listening on (.+) \(pid (\d+)\)/;

/** Starts `vswitch serve --socket <socket> ...args` and waits for its ready line. */
export async function startServe(t: Teardown, socket: string, args: string[] = []): Promise<Daemon> {
  const p = spawnCli(t, ['serve', '--socket', socket, ...args]);
  const m = await p.waitFor(READY_RE);
  return Object.assign(p, { socket, pid: Number(m[2]) });
}

/** One line on stderr, no stack trace. */
export function oneLine(s: string): boolean {
  const lines = s.split('\n').filter((l) => l.length > 0);
  return lines.length === 1 && !/\n\s+at /.test(s);
}

// ---- readiness: ask the daemon, with a deadline, instead of sleeping ----------------------

/** One control request to the daemon at `socket` (a fresh connection each time). */
export async function ask<T = unknown>(socket: string, op: string, args: Record<string, unknown> = {}): Promise<T> {
  const c = await ControlClient.connect(socket);
  try {
    return await c.request<T>(op, args);
  } finally {
    c.close();
  }
}

/** Polls `probe` every 20 ms until it returns a value other than undefined; rejects with `what` after `ms`. */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export type PortCountersJson = Record<string, number>;

/** The port's counters once it exists on the daemon (e.g. a pkt-gen job's Worker opened it). */
export function waitForPort(socket: string, name: string, ms = 15_000): Promise<PortCountersJson> {
  return pollUntil(`port ${name} to open`, async () => (await ask<{ counters: PortCountersJson }>(socket, 'stats', { port: name })).counters, ms);
}

/** Adapter stats from the daemon once `ready` holds for them (e.g. a stream peer connected). */
export function waitForAdapters(socket: string, what: string, ready: (list: { port: string; connected?: boolean; rxFrames: number }[]) => boolean, ms = 15_000) {
  return pollUntil(what, async () => {
    const list = await ask<{ port: string; connected?: boolean; rxFrames: number }[]>(socket, 'adapters');
    return ready(list) ? list : undefined;
  }, ms);
}

/** Frames in pkt-gen's text interval reports ("(2.000 Kpkts"), summed; exact below 1e6 per interval. */
export function rxReportedPackets(stdout: string): number {
  const mult: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9 };
  let n = 0;
  for (const m of stdout.matchAll(/ \(([\d.]+) ([KMG]?)pkts /g)) n += Math.round(Number(m[1]) * mult[m[2]]);
  return n;
}
