/**
 * vswitch serve: the long-running switch (the role netmap's kernel module plays). Listens on a
 * Unix control socket (directory 0700, socket 0600) for `vswitch ctl`, `vswitch pkt-gen` and
 * `vswitch bridge`; stops cleanly on SIGINT/SIGTERM/SIGHUP or a `shutdown` request.
 */
import type { Argv, CommandModule } from 'yargs';
import type { BridgeOptions } from 'vswitch';
import { ControlServer, checkBridgeOption, loadConfig, resolveSocketPath, type ServeConfig } from 'vswitch/control';
import { die } from '../format.js';

interface ServeArgs {
  socket?: string;
  config?: string;
  'max-bridges'?: number;
  'max-ports'?: number;
  'ring-slots'?: number;
  'adapter-threads'?: boolean;
}

function flagInt(name: string, v: number | undefined, key: Parameters<typeof checkBridgeOption>[0] | null, min = 1, max = 64): number | undefined {
  if (v === undefined) return undefined;
  if (key) {
    const why = checkBridgeOption(key, v);
    if (why) die(`--${name} ${why}`);
  } else if (!Number.isInteger(v) || v < min || v > max) {
    die(`--${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Run the switch as a daemon on a Unix control socket (for ctl, pkt-gen, bridge)',
  builder: (y: Argv) => y
    .usage('$0 serve [options]\n\nRuns the switch in this process until SIGINT/SIGTERM. Prints one line when ready:\n  vswitch serve: listening on PATH (pid N)')
    .option('socket', {
      type: 'string', requiresArg: true,
      describe: 'Control socket path (default: $VSWITCH_SOCKET, else $XDG_RUNTIME_DIR/vswitch/vswitch.sock, else /tmp/vswitch-<uid>/vswitch.sock)',
    })
    .option('config', { type: 'string', requiresArg: true, describe: 'JSON file declaring bridges and persistent ports: {"bridges": {"vale0": {"maxPorts": 16}}, "ports": ["vale0:p1"]}' })
    .option('max-bridges', { type: 'number', requiresArg: true, describe: 'Bridges the switch may hold (VALE: 8)' })
    .option('max-ports', { type: 'number', requiresArg: true, describe: 'Ports per bridge for new bridges (VALE: 254)' })
    .option('ring-slots', { type: 'number', requiresArg: true, describe: 'Slots per TX and RX ring for new bridges, a power of two (default 1024)' })
    .option('adapter-threads', { type: 'boolean', default: true, describe: 'Run VXLAN, QEMU dgram and QEMU stream adapters in threads of their own (--no-adapter-threads: on the main thread)' })
    .example('$0 serve', 'serve on the default socket')
    .example('$0 serve --socket /tmp/vs.sock --max-ports 16', 'a private switch with small bridges') as Argv<ServeArgs>,
  handler: async (argv) => {
    const path = resolveSocketPath(argv.socket);
    const isDefault = !argv.socket && !process.env.VSWITCH_SOCKET;
    const maxBridges = flagInt('max-bridges', argv['max-bridges'], null, 1, 64);
    const maxPorts = flagInt('max-ports', argv['max-ports'], 'maxPorts');
    const ringSlots = flagInt('ring-slots', argv['ring-slots'], 'txSlots');
    let config: ServeConfig | undefined;
    try {
      if (argv.config) config = loadConfig(argv.config);
    } catch (e) {
      die((e as Error).message);
    }
    const defaults: BridgeOptions = { ...config?.defaults };
    if (maxPorts !== undefined) defaults.maxPorts = maxPorts;
    if (ringSlots !== undefined) { defaults.txSlots = ringSlots; defaults.rxSlots = ringSlots; }

    let server: ControlServer | undefined;
    let stopping = false;
    const shutdown = (why: string) => {
      if (stopping) {
        // A second signal: give up waiting for jobs.
        process.exit(1);
      }
      stopping = true;
      if (!server) process.exit(0);
      server.close().then(
        () => { process.stdout.write(`vswitch serve: stopped (${why})\n`); process.exit(0); },
        (e: Error) => { process.stderr.write(`vswitch serve: error while stopping: ${e.message}\n`); process.exit(1); },
      );
    };
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => shutdown(sig));
    try {
      server = await ControlServer.listen({
        socket: path, isDefaultPath: isDefault, config, configFile: argv.config,
        switchOptions: { maxBridges: maxBridges ?? config?.maxBridges, bridge: defaults },
        onShutdown: () => shutdown('shutdown request'),
        adapterThreads: argv['adapter-threads'] !== false,
      });
    } catch (e) {
      die((e as Error).message);
    }
    if (stopping) {
      await server.close();
      process.exit(0);
    }
    process.stdout.write(`vswitch serve: listening on ${path} (pid ${process.pid})\n`);
  },
};
