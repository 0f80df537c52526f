/**
 * vswitch bridge -i valeA:x -i valeB:y: joins two ports (of two bridges) by forwarding between
 * them in both directions, as netmap's bridge tool does. It runs inside `vswitch serve` (the
 * ports live there); this command starts it, prints counters, and stops it on Ctrl-C, printing
 * the frames moved each way.
 */
import type { Argv, CommandModule } from 'yargs';
import { parsePortName } from 'vswitch';
import { ControlClient, resolveSocketPath } from 'vswitch/control';
import type { BridgeToolCounters } from 'vswitch/join';
import { die } from '../format.js';

interface BridgeArgs {
  i: string[] | string;
  b: number;
  T: number;
  json: boolean;
  socket?: string;
}

function line(c: BridgeToolCounters): string {
  const d = (from: string, to: string, x: BridgeToolCounters['aToB']) =>
    `${from} -> ${to}: ${x.frames} frames, ${x.bytes} bytes${x.dropped ? `, ${x.dropped} dropped` : ''}`;
  return `${d(c.a, c.b, c.aToB)}\n${d(c.b, c.a, c.bToA)}\n`;
}

export const bridgeCommand: CommandModule<object, BridgeArgs> = {
  command: 'bridge',
  describe: 'Join two ports (of two bridges) by forwarding frames between them both ways, like netmap\'s bridge',
  builder: (y: Argv) => y
    .usage('$0 bridge -i valeA:x -i valeB:y [options]\n\nRuns inside vswitch serve until Ctrl-C, then prints the frames moved each way.')
    .option('i', { type: 'string', array: true, demandOption: true, requiresArg: true, describe: 'A port to join; give exactly two' })
    .option('b', { type: 'number', default: 1024, requiresArg: true, describe: 'Frames per batch' })
    .option('T', { type: 'number', default: 0, requiresArg: true, describe: 'Print counters every T ms (0: only at the end)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print counters as JSON lines' })
    .option('socket', { type: 'string', requiresArg: true, describe: 'Control socket of vswitch serve (default: $VSWITCH_SOCKET, else the default path)' })
    .check((a) => {
      const ports = ([] as string[]).concat(a.i as string[] | string);
      if (ports.length !== 2) throw new Error(`give exactly two ports, as -i valeA:x -i valeB:y (got ${ports.length})`);
      return true;
    })
    .example('$0 bridge -i valeA:x -i valeB:y', 'join bridges valeA and valeB') as unknown as Argv<BridgeArgs>,
  handler: async (argv) => {
    const [a, b] = ([] as string[]).concat(argv.i).map((n) => {
      try {
        return parsePortName(n).name;
      } catch (e) {
        die((e as Error).message);
      }
    });
    if (!Number.isInteger(argv.b) || argv.b < 1 || argv.b > 8192) die(`-b must be an integer in [1, 8192], got ${String(argv.b)}`);
    if (!(argv.T === 0 || (argv.T >= 10 && argv.T <= 86_400_000))) die(`-T must be 0 or from 10 to 86400000 ms, got ${String(argv.T)}`);
    let client: ControlClient;
    try {
      client = await ControlClient.connect(resolveSocketPath(argv.socket));
    } catch (e) {
      die((e as Error).message);
    }
    const print = (kind: 'interval' | 'final', c: BridgeToolCounters) => {
      if (argv.json) process.stdout.write(JSON.stringify({ kind, ...c }) + '\n');
      else if (kind === 'interval') process.stdout.write(`[${c.seconds.toFixed(1)} s] ${line(c).trimEnd().replace('\n', ' | ')}\n`);
      else process.stdout.write(`${line(c)}in ${c.seconds.toFixed(3)} seconds\n`);
    };
    const s = client.stream<BridgeToolCounters>('bridge', { a, b, batch: argv.b, intervalMs: argv.T }, (ev) => {
      if (ev.event === 'started') process.stderr.write(`vswitch bridge: forwarding between ${a} and ${b} (Ctrl-C to stop)\n`);
      else if (ev.event === 'counters' && ev.counters) print('interval', ev.counters as BridgeToolCounters);
    });
    let stopping = false;
    const stop = () => {
      if (stopping) process.exit(130);
      stopping = true;
      s.cancel().catch(() => {});
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    try {
      const final = await s.done;
      print('final', final);
    } catch (e) {
      die((e as Error).message);
    } finally {
      client.close();
    }
    process.exit(0);
  },
};
