/**
 * Adapter throughput: frames/s through a QEMU stream socket, QEMU dgram and VXLAN on loopback.
 *
 *   node dist/perf/adapters-bench.js [--duration 3] [--trials 3] [--window 256] [--json] [--scenario stream-60,...]
 *                                    [--threads main,worker]
 *
 * Each scenario is peer → adapter A → bridge → adapter B → peer. `--threads main`: the switch and
 * both adapters run on the main thread; `worker`: each adapter runs in a Worker of its own
 * (attachInWorker, as `vswitch serve` does by default).
 * Both are measured in the same run by default, so they can be compared. A Worker plays the outside peers (QEMU's side):
 * it sends frames into A's socket and counts them arriving from B's. The sender is closed-loop
 * with `window` frames in flight (below the port rings' size, so the switch itself drops
 * nothing; a frame the OS loses is written off after 200 ms and reported as lost). Reported: the
 * median of `trials` runs of frames/s delivered end to end, and the spread.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switch } from 'vswitch';
import { FrameBuilder } from 'vswitch/frame';
import {
  attachInWorker, attachQemuDgram, attachQemuStream, attachVxlan, connectStreamPeer, encodeStreamFrames, vxlanEncap, type Adapter,
} from 'vswitch/adapters';

type Kind = 'stream' | 'dgram' | 'vxlan';

interface PeerJob {
  kind: Kind;
  len: number;
  durationMs: number;
  window: number;
  /** stream: socket specs of A and B. dgram/vxlan: the adapters' ports, and the peer ports to bind. */
  aSpec?: string;
  bSpec?: string;
  aPort?: number;
  bPort?: number;
  peerA?: number;
  peerB?: number;
}

interface PeerResult {
  sent: number;
  received: number;
  lost: number;
  seconds: number;
}

const MAC_A = '02:00:00:00:0a:0a';
const MAC_B = '02:00:00:00:0b:0b';

// ---- the peer (Worker) ---------------------------------------------------------------------------

async function runPeer(job: PeerJob): Promise<PeerResult> {
  const toB = new FrameBuilder({ length: job.len, srcMac: MAC_A, dstMac: MAC_B }).toBytes();
  const fromB = new FrameBuilder({ length: 60, srcMac: MAC_B, dstMac: 'ff:ff:ff:ff:ff:ff' }).toBytes();
  let received = 0;
  let sent = 0;
  let lost = 0;
  let sendMore: () => void = () => {};
  const onRx = () => {
    received++;
    if (sent - received - lost < job.window / 2) sendMore();
  };
  let sendBatch: (n: number) => boolean;
  let learn: () => Promise<void>;
  let cleanup: () => Promise<void>;

  if (job.kind === 'stream') {
    const a = await connectStreamPeer(job.aSpec!);
    const b = await connectStreamPeer(job.bSpec!, { onFrame: onRx });
    const chunk = encodeStreamFrames(Array(64).fill(toB));
    const one = encodeStreamFrames([toB]);
    sendBatch = (n) => {
      if (n >= 64) return a.writeRaw(chunk);
      let ok = true;
      for (let i = 0; i < n; i++) ok = a.writeRaw(one);
      return ok;
    };
    learn = async () => {
      b.send(fromB);
    };
    cleanup = async () => {
      await a.close();
      await b.close();
    };
  } else {
    const encap = job.kind === 'vxlan';
    const sa: UdpSocket = createSocket('udp4');
    const sb: UdpSocket = createSocket('udp4');
    sa.bind(job.peerA!, '127.0.0.1');
    sb.bind(job.peerB!, '127.0.0.1');
    await Promise.all([once(sa, 'listening'), once(sb, 'listening')]);
    for (const s of [sa, sb]) {
      try {
        s.setRecvBufferSize(4 << 20);
        s.setSendBufferSize(4 << 20);
      } catch {
        /* keep defaults */
      }
    }
    sb.on('message', onRx);
    const dg = encap ? vxlanEncap(42, toB) : Buffer.from(toB);
    sendBatch = (n) => {
      for (let i = 0; i < n; i++) sa.send(dg, job.aPort!, '127.0.0.1');
      return true;
    };
    learn = async () => {
      sb.send(encap ? vxlanEncap(42, fromB) : Buffer.from(fromB), job.bPort!, '127.0.0.1');
    };
    cleanup = async () => {
      sa.close();
      sb.close();
    };
  }

  await learn();
  await new Promise((r) => setTimeout(r, 100));
  received = 0;
  const t0 = performance.now();
  const end = t0 + job.durationMs;
  let waitingDrain = false;
  // (time, sent) every tick: frames sent more than 200 ms ago and still missing are lost (the OS
  // dropped them), so the window does not stay clogged by them.
  const history: [number, number][] = [];
  sendMore = () => {
    if (waitingDrain || performance.now() >= end) return;
    let room = job.window - (sent - received - lost);
    while (room > 0) {
      const n = Math.min(room, 64);
      sent += n;
      room -= n;
      if (!sendBatch(n)) {
        waitingDrain = true;
        setTimeout(() => { waitingDrain = false; sendMore(); }, 1);
        return;
      }
    }
  };
  sendMore();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      history.push([now, sent]);
      while (history.length > 1 && now - history[1][0] > 200) history.shift();
      if (now - history[0][0] > 200 && received + lost < history[0][1]) lost = history[0][1] - received;
      if (now >= end) {
        clearInterval(tick);
        resolve();
      } else sendMore();
    }, 10);
  });
  const seconds = (performance.now() - t0) / 1000;
  const result = { sent, received, lost, seconds };
  await cleanup();
  return result;
}

if (!isMainThread) {
  runPeer(workerData as PeerJob).then(
    (r) => parentPort!.postMessage({ ok: true, r }),
    (e: unknown) => parentPort!.postMessage({ ok: false, e: String(e) }),
  );
}

// ---- the switch (main thread) --------------------------------------------------------------------

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const p = s.address().port;
  s.close();
  return p;
}

type Threads = 'main' | 'worker';

async function trial(kind: Kind, len: number, durationMs: number, window: number, threads: Threads): Promise<PeerResult & { drops: number }> {
  const sw = new Switch({ name: `adbench-${kind}-${len}-${Date.now()}` });
  const dir = mkdtempSync(join(tmpdir(), 'vsw-adbench-'));
  const adapters: Adapter[] = [];
  const job: PeerJob = { kind, len, durationMs, window };
  try {
    if (kind === 'stream') {
      job.aSpec = `unix:${join(dir, 'a.sock')}`;
      job.bSpec = `unix:${join(dir, 'b.sock')}`;
      for (const [name, addr] of [['vale0:a', job.aSpec], ['vale0:b', job.bSpec]] as const) {
        adapters.push(threads === 'worker' ? await attachInWorker(sw, { kind: 'qemu-stream', port: name, addr }) : await attachQemuStream(sw, name, addr));
      }
    } else {
      job.peerA = await freeUdpPort();
      job.peerB = await freeUdpPort();
      for (const [name, peer] of [['vale0:a', job.peerA], ['vale0:b', job.peerB]] as const) {
        if (kind === 'dgram') {
          const options = { local: '127.0.0.1:0', remote: `127.0.0.1:${peer}` };
          adapters.push(threads === 'worker' ? await attachInWorker(sw, { kind: 'qemu-dgram', port: name, options }) : await attachQemuDgram(sw, name, options));
        } else {
          const options = { local: '127.0.0.1:0', remotes: [`127.0.0.1:${peer}`], vni: 42 };
          adapters.push(threads === 'worker' ? await attachInWorker(sw, { kind: 'vxlan', port: name, options }) : await attachVxlan(sw, name, options));
        }
      }
      job.aPort = Number(adapters[0].local.split(':').pop());
      job.bPort = Number(adapters[1].local.split(':').pop());
    }
    const w = new Worker(new URL(import.meta.url), { workerData: job });
    const [msg] = (await once(w, 'message')) as [{ ok: boolean; r?: PeerResult; e?: string }];
    await w.terminate();
    if (!msg.ok) throw new Error(`peer failed: ${msg.e}`);
    const drops = adapters.reduce((s, a) => s + a.stats().dropped, 0);
    if (process.env.ADBENCH_DEBUG) {
      console.log(JSON.stringify(msg.r), JSON.stringify(adapters.map((a) => {
        const s = a.stats();
        return { rx: s.rxFrames, tx: s.txFrames, sw: s.switch && { tx: s.switch.txFrames, rx: s.switch.rxFrames, drop: s.switch.rxDropRingFull } };
      })));
    }
    return { ...msg.r!, drops };
  } finally {
    for (const a of adapters) await a.close();
    await sw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
  };
  const durationMs = Number(opt('duration', '3')) * 1000;
  const trials = Number(opt('trials', '3'));
  const window = Number(opt('window', '256'));
  const json = args.includes('--json');
  const all = ['stream-60', 'stream-1514', 'dgram-60', 'dgram-1514', 'vxlan-60', 'vxlan-1514'];
  const scenarios = opt('scenario', all.join(',')).split(',');
  const threadModes = opt('threads', 'main,worker').split(',') as Threads[];
  if (!threadModes.every((m) => m === 'main' || m === 'worker')) throw new Error('--threads takes main, worker or main,worker');
  const rows: { scenario: string; threads: Threads; fps: number; min: number; max: number; mbps: number; lost: number; drops: number }[] = [];
  for (const sc of scenarios) for (const threads of threadModes) {
    const [kind, lenStr] = sc.split('-') as [Kind, string];
    const len = Number(lenStr);
    if (!['stream', 'dgram', 'vxlan'].includes(kind) || !(len >= 60 && len <= 1514)) throw new Error(`unknown scenario ${sc}; known: ${all.join(', ')}`);
    const fps: number[] = [];
    let lost = 0;
    let drops = 0;
    for (let i = 0; i < trials; i++) {
      const r = await trial(kind, len, durationMs, window, threads);
      fps.push(r.received / r.seconds);
      lost += r.lost;
      drops += r.drops;
    }
    const m = median(fps);
    const row = { scenario: sc, threads, fps: m, min: Math.min(...fps), max: Math.max(...fps), mbps: (m * len * 8) / 1e6, lost, drops };
    rows.push(row);
    if (!json) {
      console.log(`${sc.padEnd(12)} ${threads.padEnd(6)} ${(m / 1000).toFixed(1).padStart(7)} kfps  (${(row.min / 1000).toFixed(1)}–${(row.max / 1000).toFixed(1)})  ${row.mbps.toFixed(0).padStart(6)} Mbit/s  lost ${lost}  adapter drops ${drops}`);
    }
  }
  if (json) console.log(JSON.stringify({ durationMs, trials, window, node: process.version, rows }, null, 2));
}

if (isMainThread) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
