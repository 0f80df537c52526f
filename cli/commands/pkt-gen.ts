import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { Switch, parsePortName } from 'vswitch';
import { startPktGen, validatePktGen, PKTGEN_FUNCS, type PktGenJob, type PktGenFunc, type PktGenOptions, type PktGenReport } from 'vswitch/pktgen';
import { FrameBuilder, formatIp } from 'vswitch/frame';
import { PcapReader } from 'vswitch/pcap';
import { ControlClient, resolveSocketPath } from 'vswitch/control';
import { die, norm } from '../format.js';

interface Args {
  i: string[];
  f: string[];
  n: number;
  l: number;
  s?: string;
  d?: string;
  S?: string;
  D?: string;
  b?: number;
  R: number;
  T: number;
  w: number;
  duration: number;
  json: boolean;
  embedded: boolean;
  socket?: string;
  pcap?: string;
  spin: boolean;
  N: boolean;
}

/** pkt-gen's periodic line: `14.880 Mpps (14.880 Mpkts 7.142 Gbps in 1000123 usec) 512.00 avg_batch`. */
export function formatReport(r: PktGenReport, raw: boolean): string {
  const who = `${r.port} ${r.func}:`;
  if (r.kind === 'interval') {
    let line = `${who} ${norm(r.pps, raw)}pps (${norm(r.packets, raw)}pkts ${norm(r.bps, raw)}bps in ${Math.round(r.seconds * 1e6)} usec) ${(r.events ? r.packets / r.events : 0).toFixed(2)} avg_batch`;
    if (r.lost !== undefined && r.func === 'rxseq') line += ` lost ${r.lost} reordered ${r.reordered ?? 0}`;
    if (r.rtt && r.rtt.count) line += ` RTT min ${r.rtt.minUs.toFixed(1)} av ${r.rtt.avgUs.toFixed(1)} p50 ${r.rtt.p50Us.toFixed(1)} p99 ${r.rtt.p99Us.toFixed(1)} us`;
    return line;
  }
  const verb = r.func === 'rx' || r.func === 'rxseq' ? 'Received' : r.func === 'pong' ? 'Answered' : r.func === 'ping' ? 'Completed' : 'Sent';
  if (r.packets === 0) return `${who} ${verb === 'Sent' ? 'Sent nothing.' : `${verb} nothing.`}`;
  const each = r.packets ? r.bytes / r.packets : 0;
  const lines = [
    `${who} ${verb} ${r.packets} packets ${r.bytes} bytes ${r.events} events ${Math.round(each)} bytes each in ${r.seconds.toFixed(2)} seconds.`,
    `${who} Speed: ${norm(r.pps, raw)}pps Bandwidth: ${norm(r.bps, raw)}bps (raw ${norm(r.pps * Math.max(60, each) * 8 + r.pps * 24 * 8, raw)}bps). Average batch: ${(r.events ? r.packets / r.events : 0).toFixed(2)} pkts`,
  ];
  if (r.dropped !== undefined) lines.push(`${who} Dropped by the switch: ${r.dropped} (ring full, no destination, invalid)`);
  if (r.func === 'rxseq') lines.push(`${who} Sequence: ${r.lost ?? 0} lost, ${r.reordered ?? 0} out of order`);
  if (r.rtt) lines.push(`${who} RTT: ${r.rtt.count} round trips, min ${r.rtt.minUs.toFixed(1)} av ${r.rtt.avgUs.toFixed(1)} p50 ${r.rtt.p50Us.toFixed(1)} p99 ${r.rtt.p99Us.toFixed(1)} max ${r.rtt.maxUs.toFixed(1)} us, ${r.lost ?? 0} lost`);
  return lines.join('\n');
}

function header(o: PktGenOptions): string {
  if (o.func === 'tx' || o.func === 'txseq' || o.func === 'ping') {
    const b = new FrameBuilder({ length: o.length, srcMac: o.srcMac, dstMac: o.dstMac, src: o.src, dst: o.dst });
    const lines = [`Sending on ${o.port}: 1 queues, 1 threads and 1 cpus.`];
    lines.push(o.frames ? `replaying ${o.frames.length} frames from a pcap file` :
      `${formatIp(b.srcRange.ipStart)} -> ${formatIp(b.dstRange.ipStart)} (${o.srcMac ?? '00:00:00:00:00:00'} -> ${o.dstMac ?? 'ff:ff:ff:ff:ff:ff'})`);
    if (o.rate) lines.push(`Sending ${o.batch ?? 512} packets every ${((o.batch ?? 512) / o.rate).toFixed(9)} s`);
    return lines.join('\n');
  }
  return `Receiving from ${o.port}: 1 queues, 1 threads and 1 cpus.`;
}

function jobsFrom(a: Args): PktGenOptions[] {
  const ports = a.i;
  const funcs = a.f.length ? a.f : ['rx'];
  if (ports.length === 0) die('give a port with -i (e.g. -i vale0:a)');
  if (!a.embedded && ports.length > 1) die('one -i per command when talking to vswitch serve; use --embedded to run several ports in one process');
  if (funcs.length !== 1 && funcs.length !== ports.length) die(`give one -f per -i (got ${ports.length} -i and ${funcs.length} -f)`);
  let frames: Uint8Array[] | undefined;
  if (a.pcap) {
    try {
      frames = [...PcapReader.fromBuffer(readFileSync(a.pcap))].map((r) => r.data);
    } catch (e) {
      die(`cannot replay ${a.pcap}: ${(e as Error).message}`);
    }
    if (frames.length === 0) die(`${a.pcap} has no frames to replay`);
  }
  return ports.map((port, k) => {
    try {
      parsePortName(port);
    } catch (e) {
      die((e as Error).message);
    }
    const func = (funcs.length === 1 ? funcs[0] : funcs[k]) as PktGenFunc;
    if (!PKTGEN_FUNCS.includes(func)) die(`unknown function -f ${func}: use one of ${PKTGEN_FUNCS.join(', ')}`);
    const o: PktGenOptions = {
      port, func, count: a.n, length: a.l, rate: a.R, reportMs: a.T, waitSec: a.w, duration: a.duration, spin: a.spin,
      ...(a.b !== undefined ? { batch: a.b } : {}),
      ...(a.s ? { src: a.s } : {}), ...(a.d ? { dst: a.d } : {}), ...(a.S ? { srcMac: a.S } : {}), ...(a.D ? { dstMac: a.D } : {}),
      ...(frames && (func === 'tx' || func === 'txseq') ? { frames } : {}),
    };
    try {
      validatePktGen(o);
      if (func !== 'rx' && func !== 'rxseq') header(o); // validates addresses and MACs
    } catch (e) {
      die((e as Error).message);
    }
    return o;
  });
}

async function runEmbedded(a: Args, all: PktGenOptions[]): Promise<void> {
  // -n and --duration bound the senders; receivers beside a bounded sender run until it is done
  // and its frames in flight have arrived (below), not on a clock of their own that may stop
  // them with frames still in their ring.
  if (all.some((o) => ['tx', 'txseq', 'ping'].includes(o.func))) {
    for (const o of all) if (o.func === 'rx' || o.func === 'rxseq') o.duration = 0;
  }
  const sw = new Switch({ name: `pktgen-${process.pid}` });
  const print = (r: PktGenReport) => console.log(a.json ? JSON.stringify(r) : formatReport(r, a.N));
  const jobs: PktGenJob[] = [];
  // Receivers and pong first, so senders find them listening.
  const order = [...all].sort((x, y) => Number(x.func.startsWith('tx') || x.func === 'ping') - Number(y.func.startsWith('tx') || y.func === 'ping'));
  let stopping = false;
  const stopAll = async () => { stopping = true; await Promise.allSettled(jobs.map((j) => j.stop())); };
  process.once('SIGINT', () => void stopAll());
  process.once('SIGTERM', () => void stopAll());
  try {
    for (const o of order) {
      if (!a.json) console.log(header(o));
      const j = startPktGen({ ...o, switch: sw.name }, print);
      jobs.push(j);
      await j.started;
    }
  } catch (e) {
    await stopAll();
    await sw.close();
    die((e as Error).message);
  }
  const active = jobs.filter((j) => ['tx', 'txseq', 'ping'].includes(j.opts.func));
  const bounded = (j: PktGenJob) => (j.opts.count ?? 0) > 0 || (j.opts.duration ?? 0) > 0;
  if (active.length > 0 && active.every(bounded)) {
    const sent = await Promise.allSettled(active.map((j) => j.done));
    // Receivers take what is still in flight, then stop: frames the switch dropped will never
    // come, whatever their -n says. With one sender and one receiver the count to wait for is
    // known (sent − dropped); otherwise wait until 1 s passes with nothing new (a receiver Worker
    // may be descheduled that long on a busy machine).
    const passive = jobs.filter((j) => !active.includes(j));
    let expect = -1;
    if (active.length === 1 && passive.length === 1 && sent[0]!.status === 'fulfilled') {
      const f = sent[0]!.value;
      expect = f.packets - (f.dropped ?? 0);
    }
    let last = -1;
    let quietSince = Date.now();
    while (!stopping && passive.some((j) => j.live[2] === 0)) {
      const now = passive.reduce((s, j) => s + j.live[0], 0);
      if (expect >= 0 && now >= expect) break;
      if (now !== last) {
        last = now;
        quietSince = Date.now();
      } else if (Date.now() - quietSince >= 1000) {
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.allSettled(passive.map((j) => j.stop()));
  }
  const results = await Promise.allSettled(jobs.map((j) => j.done));
  await sw.close();
  const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  if (failed) die((failed.reason as Error).message);
}

async function runRemote(a: Args, o: PktGenOptions): Promise<void> {
  const path = resolveSocketPath(a.socket);
  let client: ControlClient;
  try {
    client = await ControlClient.connect(path);
  } catch (e) {
    die((e as Error).message);
  }
  const head = header(o); // printed once the daemon's job has its port: a refused open prints only the reason
  // The control protocol carries replayed frames as base64 strings (JSON has no bytes).
  const wire = o.frames ? { ...o, frames: o.frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64')) } : o;
  const s = client.stream<PktGenReport>('pktgen', { opts: wire }, (ev: { event: string; report?: PktGenReport }) => {
    if (ev.event === 'started' && !a.json) console.log(head);
    if (ev.event === 'report' && ev.report && ev.report.kind === 'interval') console.log(a.json ? JSON.stringify(ev.report) : formatReport(ev.report, a.N));
  });
  const onSig = () => void s.cancel();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    const fin = await s.done;
    console.log(a.json ? JSON.stringify(fin) : formatReport(fin, a.N));
  } catch (e) {
    die((e as Error).message);
  } finally {
    client.close();
  }
}

export const pktGenCommand: CommandModule<object, Args> = {
  command: 'pkt-gen',
  describe: 'Traffic generator and sink with netmap pkt-gen\'s functions and flags',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 pkt-gen -i PORT [-f tx|rx|txseq|rxseq|ping|pong] [options]\n\n' +
          'By default the generator runs inside "vswitch serve" (found by --socket, $VSWITCH_SOCKET or the default path)\n' +
          'and this command prints its reports; Ctrl-C stops it and prints the summary. With --embedded it runs against a\n' +
          'switch in this process, with several ports: repeat -i and -f in pairs.\n\n' +
          'Examples (two shells, a running "vswitch serve"):\n' +
          '  vswitch pkt-gen -i vale-foo              # receiver\n' +
          '  vswitch pkt-gen -i vale-bar -f tx        # sender\n' +
          '  vswitch pkt-gen --embedded -i vale0:rx -f rx -i vale0:tx -f tx -n 1000000',
      )
      .option('i', { alias: 'interface', type: 'string', array: true, default: [], describe: 'port, vale<bridge>:<port> (repeat with --embedded)' })
      .option('f', { alias: 'function', type: 'string', array: true, default: [], describe: 'tx, rx (default), txseq, rxseq, ping or pong (one per -i)' })
      .option('n', { type: 'number', default: 0, describe: 'frames to send/receive, ping: round trips (0 = until stopped)' })
      .option('l', { type: 'number', default: 60, describe: 'frame length in bytes, without FCS' })
      .option('s', { type: 'string', describe: 'source IPv4[:port] or range a.b.c.d[:port]-e.f.g.h[:port] (default 10.0.0.1:1234)' })
      .option('d', { type: 'string', describe: 'destination IPv4[:port] or range (default 10.1.0.1:1234)' })
      .option('S', { type: 'string', describe: 'source MAC (default 00:00:00:00:00:00)' })
      .option('D', { type: 'string', describe: 'destination MAC (default ff:ff:ff:ff:ff:ff)' })
      .option('b', { type: 'number', describe: 'batch: frames per ring pass (default 512; ping/pong 1)' })
      .option('R', { type: 'number', default: 0, describe: 'rate limit in frames per second (0 = unlimited)' })
      .option('T', { type: 'number', default: 1000, describe: 'report interval in ms' })
      .option('w', { type: 'number', default: 0, describe: 'seconds to wait before starting' })
      .option('N', { type: 'boolean', default: false, describe: 'print plain numbers, no K/M/G units' })
      .option('duration', { type: 'number', default: 0, describe: 'stop after this many seconds (0 = no limit)' })
      .option('pcap', { type: 'string', describe: 'tx/txseq: replay the frames of this pcap file instead of generating them' })
      .option('spin', { type: 'boolean', default: false, describe: 'busy-poll instead of sleeping when idle (lower latency, one core busy)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object per report' })
      .option('embedded', { type: 'boolean', default: false, describe: 'run a switch in this process instead of asking vswitch serve' })
      .option('socket', { type: 'string', describe: 'control socket of vswitch serve' }),
  handler: async (a) => {
    const all = jobsFrom(a);
    if (a.embedded) await runEmbedded(a, all);
    else await runRemote(a, all[0]);
  },
};
