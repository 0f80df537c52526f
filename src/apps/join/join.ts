/**
 * The bridge tool (netmap apps/bridge): joins two ports, usually of two different bridges, by
 * forwarding every frame received on one to the other, in both directions, in batches.
 *
 * netmap's bridge is one thread polling both ports; here each direction is its own Worker that
 * blocks on its source port's RX ring, so the two directions run in parallel and an idle bridge
 * sleeps. Each Worker opens both ports by name on a Switch of this process, receives from its
 * source and transmits on its destination (so every ring keeps a single user thread).
 *
 * ```ts
 * const sw = new Switch();
 * const job = runBridge('valeA:x', 'valeB:y');
 * await job.started;
 * // ... later
 * const c = await job.stop();   // { aToB: { frames, bytes, dropped }, bToA: ..., seconds }
 * ```
 */
import { Worker } from 'node:worker_threads';
import { parsePortName } from '#bridge';
import { ERR, VswitchError } from '../../core/errors.js';

export interface BridgeToolOptions {
  /** Frames per batch (-b), 1..8192 (default 1024, as netmap's bridge). */
  batch?: number;
  /** Switch of this process the ports are on (default "default"). */
  switch?: string;
}

export interface BridgeDirection {
  frames: number;
  bytes: number;
  /** Frames taken from the source that could not go to the destination (too long, empty). */
  dropped: number;
}

export interface BridgeToolCounters {
  a: string;
  b: string;
  /** Frames received on a and sent on b. */
  aToB: BridgeDirection;
  /** Frames received on b and sent on a. */
  bToA: BridgeDirection;
  /** Seconds since the bridge started forwarding. */
  seconds: number;
}

export interface BridgeToolJob {
  readonly a: string;
  readonly b: string;
  /** Resolves once both directions have both ports open. */
  readonly started: Promise<void>;
  /** Resolves with the counters when the job ends; rejects if a direction failed. */
  readonly done: Promise<BridgeToolCounters>;
  /** Counters so far (read from shared memory, no message passing). */
  counters(): BridgeToolCounters;
  /** Stops both directions; resolves with the final counters. */
  stop(): Promise<BridgeToolCounters>;
}

/** Layout of the shared counters: per direction frames, bytes, dropped. */
export const LIVE_WORDS = 3;

const workerUrl = new URL('./join-worker.js', import.meta.url);

export function runBridge(a: string, b: string, opts: BridgeToolOptions = {}): BridgeToolJob {
  const pa = parsePortName(a);
  const pb = parsePortName(b);
  if (pa.name === pb.name) throw new VswitchError(ERR.BAD_ARG, `bridge needs two different ports, got ${pa.name} twice`);
  if (pa.bridge === pb.bridge) {
    throw new VswitchError(ERR.BAD_ARG,
      `${pa.name} and ${pb.name} are on the same bridge ${pa.bridge}: joining them would loop frames; give ports of two bridges`);
  }
  const batch = opts.batch ?? 1024;
  if (!Number.isInteger(batch) || batch < 1 || batch > 8192) {
    throw new VswitchError(ERR.BAD_ARG, `batch (-b) must be an integer in [1, 8192], got ${String(opts.batch)}`);
  }
  const switchName = opts.switch ?? 'default';
  const stopSab = new SharedArrayBuffer(4);
  const stopWord = new Int32Array(stopSab);
  const liveSab = new SharedArrayBuffer(8 * LIVE_WORDS * 2);
  const live = new Float64Array(liveSab);
  let t0 = performance.now();
  let tEnd: number | undefined;

  const dirs = [
    { src: pa.name, dst: pb.name, dir: 0 },
    { src: pb.name, dst: pa.name, dir: 1 },
  ];
  const counters = (): BridgeToolCounters => {
    const d = (k: number): BridgeDirection => ({
      frames: live[k * LIVE_WORDS], bytes: live[k * LIVE_WORDS + 1], dropped: live[k * LIVE_WORDS + 2],
    });
    return { a: pa.name, b: pb.name, aToB: d(0), bToA: d(1), seconds: ((tEnd ?? performance.now()) - t0) / 1000 };
  };
  const stopAll = () => {
    Atomics.store(stopWord, 0, 1);
    Atomics.notify(stopWord, 0);
  };

  let failure: Error | undefined;
  const starts: Promise<void>[] = [];
  const exits: Promise<void>[] = [];
  for (const d of dirs) {
    const w = new Worker(workerUrl, {
      workerData: { src: d.src, dst: d.dst, dir: d.dir, batch, switchName, stop: stopSab, live: liveSab },
    });
    let ok!: () => void;
    let ko!: (e: Error) => void;
    const started = new Promise<void>((res, rej) => { ok = res; ko = rej; });
    started.catch(() => {});
    const fail = (e: Error) => {
      failure ??= e;
      ko(e);
      stopAll();
    };
    w.on('message', (m: { type: string; error?: { code: string; message: string } }) => {
      if (m.type === 'started') ok();
      else if (m.type === 'error' && m.error) fail(new VswitchError(m.error.code, m.error.message));
    });
    w.on('error', (e) => fail(e));
    exits.push(new Promise<void>((res) => {
      w.once('exit', () => {
        ko(failure ?? new VswitchError('ERR_BRIDGE', `bridge ${d.src} -> ${d.dst} stopped before it started`));
        res();
      });
    }));
    starts.push(started);
  }
  const started = Promise.all(starts).then(() => { t0 = performance.now(); });
  started.catch(() => {});
  const done = Promise.all(exits).then(() => {
    tEnd = performance.now();
    if (failure) throw failure;
    return counters();
  });
  done.catch(() => {});
  return {
    a: pa.name, b: pb.name, started, done, counters,
    stop() {
      stopAll();
      return done;
    },
  };
}
