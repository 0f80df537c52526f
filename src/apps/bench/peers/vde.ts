/**
 * The vde_switch peer (Debian vde2): a daemonized `vde_switch` in a
 * temporary directory, one `vde_plug SOCKDIR` child process per host, driven from this thread
 * through their stdin/stdout (each frame a 2-byte big-endian length and the frame).
 *
 * Closed loop: each sender keeps at most `window` frames in flight (sent minus what its slowest
 * target receiver got back), topping up as frames arrive, so this measures forwarding rather
 * than how much vde_switch drops when blasted (30–40% open loop). A frame not delivered within
 * the stall timeout is counted lost and its credit returned, so a drop cannot wedge the window.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameBuilder } from '../../../frame.js';
import { SENDER_INDEX_BYTE, helloFrame, rxMac, sleep, targetsOf, txMac, type PeerRun, type PeerScenario } from './common.js';

export const DEFAULT_VDE_WINDOW = 64;
const STALL_MS = 100;

/** Why vde_switch cannot run here, or undefined when it can. */
export function vdeUnavailable(): string | undefined {
  for (const cmd of ['vde_switch', 'vde_plug']) {
    const r = spawnSync(cmd, ['--help'], { stdio: 'ignore', timeout: 5000 });
    if (r.error) {
      const code = (r.error as NodeJS.ErrnoException).code;
      return code === 'ENOENT'
        ? `${cmd} not found on PATH (install Debian's vde2: apt-get install vde2)`
        : `${cmd} cannot be run: ${r.error.message}`;
    }
  }
  return undefined;
}

function lenPrefixed(frames: Uint8Array[]): Buffer {
  const total = frames.reduce((a, f) => a + 2 + f.length, 0);
  const b = Buffer.allocUnsafe(total);
  let o = 0;
  for (const f of frames) {
    b.writeUInt16BE(f.length, o);
    b.set(f, o + 2);
    o += 2 + f.length;
  }
  return b;
}

/** Splits a vde_plug stdout stream into frames. */
class Deframer {
  #rest: Buffer | undefined;
  constructor(private readonly onFrame: (buf: Buffer, off: number, len: number) => void) {}
  push(chunk: Buffer): void {
    const b = this.#rest ? Buffer.concat([this.#rest, chunk]) : chunk;
    let o = 0;
    while (b.length - o >= 2) {
      const len = b.readUInt16BE(o);
      if (b.length - o - 2 < len) break;
      this.onFrame(b, o + 2, len);
      o += 2 + len;
    }
    this.#rest = o < b.length ? b.subarray(o) : undefined;
  }
}

/** A word to nap on (Atomics.wait) while waiting for vde_switch to exit in a synchronous cleanup. */
const nap = new Int32Array(new SharedArrayBuffer(4));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function runVde(s: PeerScenario, warmup: number, duration: number, window = DEFAULT_VDE_WINDOW): Promise<PeerRun> {
  const dir = mkdtempSync(join(tmpdir(), 'vswitch-bench-vde-'));
  const sock = join(dir, 'sock');
  const pidFile = join(dir, 'vde_switch.pid');
  const plugs: ChildProcessWithoutNullStreams[] = [];
  let switchPid = 0;
  let failure: Error | undefined;
  const cleanup = () => {
    for (const p of plugs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (switchPid > 0) {
      const pid = switchPid;
      switchPid = 0;
      try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
      // It removes its sockets as it exits: wait for that (up to 1 s, then SIGKILL), or the
      // directory can still gain or lose entries while we remove it (ENOTEMPTY, seen on a
      // loaded machine, which failed the whole peer and left vde_switch running).
      const end = Date.now() + 1000;
      while (alive(pid) && Date.now() < end) Atomics.wait(nap, 0, 0, 10);
      if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    }
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
    } catch {
      // A leftover empty temp directory is not worth failing the benchmark over.
    }
  };
  // vde_switch is a daemon: do not leave it behind if the bench is interrupted.
  const onSignal = (sig: NodeJS.Signals) => { cleanup(); process.kill(process.pid, sig); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', cleanup);
  try {
    const r = spawnSync('vde_switch', ['-s', sock, '-M', join(dir, 'mgmt'), '-d', '-p', pidFile], { encoding: 'utf8', timeout: 10000 });
    if (r.error || r.status !== 0) throw new Error(`vde_switch did not start: ${r.error?.message ?? (r.stderr.trim() || `exit ${r.status}`)}`);
    for (let i = 0; i < 200 && !(switchPid > 0); i++) {
      try { switchPid = parseInt(readFileSync(pidFile, 'utf8'), 10); } catch { await sleep(10); }
    }
    if (!(switchPid > 0)) throw new Error('vde_switch wrote no pid file');

    const plug = (): ChildProcessWithoutNullStreams => {
      const p = spawn('vde_plug', [sock], { stdio: ['pipe', 'pipe', 'pipe'] });
      plugs.push(p);
      let err = '';
      p.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
      p.on('error', (e) => { failure ??= e; });
      p.on('exit', (code, sig) => { failure ??= new Error(`vde_plug exited (${sig ?? code})${err ? `: ${err.trim()}` : ''}`); });
      p.stdin.on('error', (e) => { failure ??= e; });
      return p;
    };

    // got[i][r]: frames of sender i that receiver r got.
    const got = Array.from({ length: s.senders }, () => new Array<number>(s.receivers).fill(0));
    const sent = new Array<number>(s.senders).fill(0);
    const lost = new Array<number>(s.senders).fill(0);
    let frames = 0;
    let bytes = 0;
    let lastProgress = performance.now();
    const targets = targetsOf(s);
    const inFlight = (i: number) => sent[i] - lost[i] - Math.min(...targets.map((r) => got[i][r]));
    const senders: { stdin: NodeJS.WritableStream; frame: Uint8Array }[] = [];
    const pump = (i: number) => {
      // Top up once half the window is back: fewer, larger writes for the harness and vde_plug.
      const n = window - inFlight(i);
      if (n < window / 2 || failure) return;
      const { stdin, frame } = senders[i];
      stdin.write(lenPrefixed(new Array<Uint8Array>(n).fill(frame)));
      sent[i] += n;
    };

    for (let r = 0; r < s.receivers; r++) {
      const p = plug();
      const d = new Deframer((b, off, len) => {
        const i = b[off + SENDER_INDEX_BYTE];
        if (len < 12 || b[off + 6] !== 0x02 || b[off + 10] !== 0x02 || i >= s.senders) return;
        got[i][r]++;
        frames++;
        bytes += len;
      });
      p.stdout.on('data', (c: Buffer) => {
        d.push(c);
        lastProgress = performance.now();
        for (let i = 0; i < senders.length; i++) pump(i);
      });
      p.stdin.write(lenPrefixed([helloFrame(rxMac(r))]));
    }
    await sleep(50); // let vde_switch learn the receivers before the first unicast frame
    const dstMac = s.bcast ? 'ff:ff:ff:ff:ff:ff' : rxMac(0);
    for (let i = 0; i < s.senders; i++) {
      const p = plug();
      p.stdout.resume(); // floods before learning; ignored
      const frame = new Uint8Array(s.frameLen);
      new FrameBuilder({ length: s.frameLen, srcMac: txMac(i), dstMac }).write(frame, 0);
      senders.push({ stdin: p.stdin, frame });
    }
    for (let i = 0; i < s.senders; i++) pump(i);
    const stall = setInterval(() => {
      if (performance.now() - lastProgress < STALL_MS) return;
      lastProgress = performance.now();
      for (let i = 0; i < s.senders; i++) {
        const n = inFlight(i);
        if (n > 0) lost[i] += n;
        pump(i);
      }
    }, STALL_MS / 2);
    try {
      await sleep(warmup * 1000);
      const p1 = frames;
      const b1 = bytes;
      const l1 = lost.reduce((a, x) => a + x, 0);
      const t1 = performance.now();
      await sleep(duration * 1000);
      const secs = (performance.now() - t1) / 1000;
      if (failure) throw failure;
      return { mpps: (frames - p1) / secs / 1e6, gbps: ((bytes - b1) * 8) / secs / 1e9, lost: lost.reduce((a, x) => a + x, 0) - l1 };
    } finally {
      clearInterval(stall);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', cleanup);
    const exits = plugs.map((p) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((ok) => p.once('exit', ok))));
    for (const p of plugs) p.stdin.end();
    cleanup();
    await Promise.race([Promise.all(exits), sleep(2000)]);
  }
}
