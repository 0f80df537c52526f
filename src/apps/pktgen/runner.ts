/**
 * Runs pkt-gen jobs in Workers of this process, against a Switch of this process (embedded, or
 * inside `vswitch serve`). A job reports through a callback and is stopped with `stop()`.
 */
import { Worker } from 'node:worker_threads';
import { VswitchError } from '../../core/errors.js';
import { LIVE_SIZE } from './engine.js';
import { PKTGEN_FUNCS, type PktGenOptions, type PktGenReport } from './types.js';

export interface PktGenJob {
  readonly opts: PktGenOptions;
  /** Packets/bytes so far, updated by the Worker every batch (LIVE_* indices of engine.ts). */
  readonly live: Float64Array;
  /** Resolves once the port is open and traffic starts. */
  readonly started: Promise<void>;
  /** Resolves with the final report (rejects if the job failed). */
  readonly done: Promise<PktGenReport>;
  /** Asks the job to stop; resolves with its final report. */
  stop(): Promise<PktGenReport>;
}

const workerUrl = new URL('./worker.js', import.meta.url);

export function validatePktGen(opts: PktGenOptions): void {
  if (typeof opts.port !== 'string') throw new VswitchError('ERR_BAD_ARG', 'pkt-gen needs a port (-i vale0:a)');
  if (!PKTGEN_FUNCS.includes(opts.func)) {
    throw new VswitchError('ERR_BAD_ARG', `unknown function -f ${String(opts.func)}: use one of ${PKTGEN_FUNCS.join(', ')}`);
  }
  const len = opts.length ?? 60;
  const min = opts.func === 'ping' || opts.func === 'pong' ? 54 : opts.func === 'txseq' || opts.func === 'rxseq' ? 46 : 42;
  if (!Number.isInteger(len) || len < min || len > 65535) {
    throw new VswitchError('ERR_BAD_ARG', `frame length -l must be an integer from ${min} (for -f ${opts.func}) to the buffer size, got ${len}`);
  }
}

export function startPktGen(opts: PktGenOptions, onReport: (r: PktGenReport) => void = () => {}): PktGenJob {
  validatePktGen(opts);
  const stopSab = new SharedArrayBuffer(4);
  const liveSab = new SharedArrayBuffer(8 * LIVE_SIZE);
  const stopWord = new Int32Array(stopSab);
  const w = new Worker(workerUrl, { workerData: { opts, stop: stopSab, live: liveSab } });
  let final: PktGenReport | undefined;
  let failure: Error | undefined;
  let startedOk!: () => void;
  let startedKo!: (e: Error) => void;
  const started = new Promise<void>((a, b) => { startedOk = a; startedKo = b; });
  started.catch(() => {});
  w.on('message', (m: { type: string; report?: PktGenReport; error?: { code: string; message: string } }) => {
    if (m.type === 'started') startedOk();
    else if (m.type === 'report' && m.report) {
      if (m.report.kind === 'final') final = m.report;
      onReport(m.report);
    } else if (m.type === 'error' && m.error) {
      failure = new VswitchError(m.error.code, m.error.message);
      startedKo(failure);
    }
  });
  w.on('error', (e) => { failure = e; startedKo(e); });
  const done = new Promise<PktGenReport>((resolve, reject) => {
    w.once('exit', () => {
      if (final) resolve(final);
      else {
        const e = failure ?? new VswitchError('ERR_PKTGEN', 'pkt-gen worker exited without a final report');
        startedKo(e);
        reject(e);
      }
    });
  });
  return {
    opts, live: new Float64Array(liveSab), started, done,
    stop() {
      Atomics.store(stopWord, 0, 1);
      Atomics.notify(stopWord, 0);
      return done;
    },
  };
}
