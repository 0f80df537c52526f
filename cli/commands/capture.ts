import { createWriteStream, type WriteStream } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { checkBridgeName, parsePortName } from 'vswitch';
import { ControlClient, resolveSocketPath } from 'vswitch/control';
import { die } from '../format.js';

interface Args {
  i: string;
  w: string;
  c?: number;
  duration?: number;
  s?: number;
  socket?: string;
}

export const captureCommand: CommandModule<object, Args> = {
  command: 'capture',
  describe: 'Capture a port\'s traffic (both directions) or a whole bridge\'s to a pcap file or stdout',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 capture -i PORT|BRIDGE -w FILE|- [-c COUNT] [--duration S]\n\n' +
          'Asks vswitch serve to record the frames a port sends and receives (or every frame sent on a bridge) and\n' +
          'writes them as a classic pcap file; "-w -" streams to stdout for tshark/wireshark. Ends after -c frames,\n' +
          '--duration seconds or Ctrl-C, and prints a summary on stderr. If the reader is too slow, frames are\n' +
          'dropped and counted, never the switch\'s traffic: "dropped by a slow reader" (the pcap stream backed up)\n' +
          'and "by a full capture ring" (the bridge outran the capture port).',
      )
      .example('$0 capture -i vale0:vm1 -w out.pcap -c 1000 --duration 10', '')
      .example('$0 capture -i vale0 -w - | tshark -r -', 'a whole bridge, live')
      .option('i', { alias: 'interface', type: 'string', demandOption: true, describe: 'port (vale0:vm1) or bridge (vale0)' })
      .option('w', { type: 'string', demandOption: true, describe: 'pcap file to write, or - for stdout' })
      .option('c', { alias: 'count', type: 'number', describe: 'stop after this many frames' })
      .option('duration', { type: 'number', describe: 'stop after this many seconds' })
      .option('s', { alias: 'snaplen', type: 'number', describe: 'bytes kept per frame (default 65535)' })
      .option('socket', { type: 'string', describe: 'control socket of vswitch serve' }),
  handler: async (a) => {
    let target = a.i;
    try {
      target = a.i.includes(':') || !/^vale[A-Za-z0-9_.-]*$/.test(a.i) ? parsePortName(a.i).name : checkBridgeName(a.i);
    } catch (e) {
      die((e as Error).message);
    }
    if (a.c !== undefined && !(Number.isInteger(a.c) && a.c >= 1)) die(`-c must be a whole number of frames ≥ 1, got ${a.c}`);
    if (a.duration !== undefined && !(a.duration > 0)) die(`--duration must be a number of seconds > 0, got ${a.duration}`);
    let client: ControlClient;
    try {
      client = await ControlClient.connect(resolveSocketPath(a.socket));
    } catch (e) {
      die((e as Error).message);
    }
    let out: WriteStream | NodeJS.WriteStream;
    if (a.w === '-') out = process.stdout;
    else {
      out = createWriteStream(a.w, { mode: 0o644 });
      out.on('error', (e) => die(`cannot write ${a.w}: ${e.message}`));
    }
    let paused = false;
    const s = client.stream<{ frames: number; bytes: number; dropped: number; ringDropped: number; reason: string; mode: string }>('capture', {
      target, ...(a.c ? { count: a.c } : {}), ...(a.duration ? { durationMs: a.duration * 1000 } : {}), ...(a.s ? { snaplen: a.s } : {}),
    }, (ev: { event: string; data?: string; mode?: string }) => {
      if (ev.event === 'pcap' && ev.data) {
        // A reader that falls behind (a full pipe, a slow disk): stop taking frames from the
        // daemon until it catches up, so that the daemon drops and counts them ("dropped by a
        // slow reader") instead of this process holding them all in memory.
        if (!out.write(Buffer.from(ev.data, 'base64')) && !paused) {
          paused = true;
          client.pause();
          out.once('drain', () => { paused = false; client.resume(); });
        }
      }
      else if (ev.event === 'started') process.stderr.write(`capturing ${target} (${ev.mode}) to ${a.w === '-' ? 'stdout' : a.w}; Ctrl-C stops\n`);
    });
    const onSig = () => void s.cancel();
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    try {
      const r = await s.done;
      await new Promise<void>((res) => (out === process.stdout ? res() : (out as WriteStream).end(() => res())));
      process.stderr.write(`${r.frames} frames (${r.bytes} bytes) captured, ${r.dropped} dropped by a slow reader, ${r.ringDropped} by a full capture ring; ended: ${r.reason}\n`);
    } catch (e) {
      die((e as Error).message);
    } finally {
      client.close();
    }
  },
};
