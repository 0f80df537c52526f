/**
 * Client of the `vswitch serve` control socket (see protocol.ts), usable from any program:
 *
 * ```ts
 * const c = await ControlClient.connect(resolveSocketPath());
 * console.log(await c.request('list'));
 * const s = c.stream('pktgen', { opts: { port: 'vale0:a', func: 'rx' } }, (ev) => console.log(ev));
 * setTimeout(() => s.cancel(), 5000);
 * console.log(await s.done);          // the final report
 * c.close();
 * ```
 */
import { createConnection, type Socket } from 'node:net';
import { VswitchError } from '../../core/errors.js';
import { checkSocketPath, resolveSocketPath } from './paths.js';
import { CTL_ERR, LineSplitter, MAX_REPLY_LINE, encodeLine, noDaemonMessage, type ErrorData } from './control-protocol.js';

export { resolveSocketPath };

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onEvent?: (ev: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface ConnectOptions {
  /** Milliseconds to wait for the connection (default 5000). */
  timeoutMs?: number;
}

export class ControlClient {
  readonly path: string;
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending>();
  readonly #lines = new LineSplitter(MAX_REPLY_LINE);
  #seq = 0;
  #closed: VswitchError | undefined;

  private constructor(path: string, socket: Socket) {
    this.path = path;
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => { /* 'close' follows */ });
    socket.on('close', () => this.#fail(new VswitchError(CTL_ERR.DAEMON_GONE, `vswitch serve on ${path} closed the connection`)));
  }

  /**
   * Connects to the server on `path`. A missing or dead server rejects with ERR_NO_DAEMON and a
   * one-line message that says how to start one.
   */
  static connect(path: string, opts: ConnectOptions = {}): Promise<ControlClient> {
    try {
      checkSocketPath(path);
    } catch (e) {
      return Promise.reject(e);
    }
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new VswitchError(CTL_ERR.NO_DAEMON, `${noDaemonMessage(path)} (no answer within ${timeoutMs} ms)`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(new ControlClient(path, s));
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e.code === 'EACCES' || e.code === 'EPERM') {
          reject(new VswitchError(CTL_ERR.NO_DAEMON, `cannot connect to ${path}: permission denied (the socket belongs to another user?)`));
        } else {
          reject(new VswitchError(CTL_ERR.NO_DAEMON, noDaemonMessage(path)));
        }
      });
    });
  }

  /** True once the connection is closed (by close() or by the server). */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  #send(id: number, op: string, args: object | undefined, p: Pending): void {
    if (this.#closed) {
      p.reject(this.#closed);
      return;
    }
    this.#pending.set(id, p);
    this.#socket.write(encodeLine({ ...args, id, op }));
  }

  /** Sends one request; resolves with its value, rejects with a VswitchError carrying the server's code. */
  request<T = unknown>(op: string, args?: object): Promise<T> {
    const id = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      this.#send(id, op, args, { resolve: resolve as (v: unknown) => void, reject });
    });
  }

  /**
   * Starts a streaming op (pktgen, bridge): `onEvent` gets each event line, `done` the final
   * value. `cancel()` asks the server to stop it (done then resolves with the final value).
   */
  stream<T = unknown>(op: string, args: object, onEvent: (ev: any) => void): { done: Promise<T>; cancel(): Promise<void> } { // eslint-disable-line @typescript-eslint/no-explicit-any
    const id = ++this.#seq;
    let finished = false;
    const done = new Promise<T>((resolve, reject) => {
      this.#send(id, op, args, {
        resolve: (v) => { finished = true; resolve(v as T); },
        reject: (e) => { finished = true; reject(e); },
        onEvent,
      });
    });
    done.catch(() => {});
    const cancel = async (): Promise<void> => {
      if (finished || this.#closed) return;
      try {
        await this.request('stop', { target: id });
      } catch (e) {
        // The stream ended meanwhile, or the connection is gone: nothing left to stop.
        if ((e as VswitchError).code !== CTL_ERR.NO_STREAM && !this.#closed) throw e;
      }
    };
    return { done, cancel };
  }

  /**
   * Stops reading from the daemon until resume(): replies and events wait, and what the daemon
   * sends backs up on its side (a capture then drops and counts frames instead of this process
   * buffering them). For a consumer that cannot keep up, e.g. a capture written to a full pipe.
   */
  pause(): void {
    this.#socket.pause();
  }

  /** Reads from the daemon again after pause(). */
  resume(): void {
    this.#socket.resume();
  }

  /** Closes the connection; the server stops every stream this client started. */
  close(): void {
    this.#fail(new VswitchError('ERR_CLIENT_CLOSED', 'the control connection was closed'));
    this.#socket.end();
    this.#socket.destroy();
  }

  #fail(e: VswitchError): void {
    if (this.#closed) return;
    this.#closed = e;
    this.#lines.clear();
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    this.#lines.push(chunk);
    for (;;) {
      const line = this.#lines.next();
      if (line === null) return;
      if (line === false) {
        this.#fail(new VswitchError(CTL_ERR.BAD_REQUEST, `vswitch serve sent a line over ${MAX_REPLY_LINE} bytes`));
        this.#socket.destroy();
        return;
      }
      if (line.length === 0) continue;
      let msg: { id?: unknown; ok?: boolean; value?: unknown; error?: ErrorData; event?: unknown };
      try {
        msg = JSON.parse(line.toString('utf8'));
      } catch {
        continue;
      }
      if (!msg || typeof msg !== 'object') continue;
      if (typeof msg.id !== 'number') {
        // A protocol error the server could not tie to a request (it sends id null).
        if (msg.ok === false && msg.error) {
          this.#fail(new VswitchError(String(msg.error.code), String(msg.error.message)));
        }
        continue;
      }
      const p = this.#pending.get(msg.id);
      if (!p) continue;
      if (typeof msg.event === 'string') {
        try {
          p.onEvent?.(msg);
        } catch (e) {
          // Not the connection's fault: keep reading, and let the error surface on its own.
          queueMicrotask(() => { throw e; });
        }
        continue;
      }
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new VswitchError(String(msg.error?.code ?? 'ERR_UNKNOWN'), String(msg.error?.message ?? 'unknown error')));
    }
  }
}
