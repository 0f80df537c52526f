/**
 * vswitch ctl: vale-ctl's jobs against a running `vswitch serve`: list bridges and ports,
 * create/remove persistent ports, show a bridge's MAC table and port counters, ping the daemon.
 * Each subcommand is one entry of `ctlSubcommands` (attach/detach of adapters go there too).
 */
import type { Argv, CommandModule } from 'yargs';
import { COUNTER_NAMES, checkBridgeName, parsePortName, type BridgeSummary, type MacEntry } from 'vswitch';
import { ControlClient, resolveSocketPath, type PingInfo, type PortStats } from 'vswitch/control';
import { resolve } from 'node:path';
import { die } from '../format.js';

export interface CtlArgs {
  socket?: string;
  json?: boolean;
}

/** Runs `fn` with a connected client; any failure becomes the one-line error and exit 1. */
export async function withClient<T>(argv: CtlArgs, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  let client: ControlClient | undefined;
  try {
    client = await ControlClient.connect(resolveSocketPath(argv.socket));
    return await fn(client);
  } catch (e) {
    return die((e as Error).message);
  } finally {
    client?.close();
  }
}

function check<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    die((e as Error).message);
  }
}

/** Left-aligned text columns, right-aligned numbers. */
export function table(head: string[], rows: (string | number)[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) =>
    r.map((c, i) => (typeof c === 'number' ? String(c).padStart(w[i]) : String(c).padEnd(w[i]))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

function drops(c: Record<string, number>): number {
  let n = 0;
  for (const [k, v] of Object.entries(c)) if (/^drop|Drop/.test(k)) n += v;
  return n;
}

function out(s: string): void {
  process.stdout.write(s);
}

function json(v: unknown): void {
  out(JSON.stringify(v, null, 2) + '\n');
}

const jsonOpt = { type: 'boolean', default: false, describe: 'Print JSON instead of a table' } as const;

type Sub<A> = CommandModule<CtlArgs, CtlArgs & A>;

const list: Sub<object> = {
  command: 'list',
  describe: 'Bridges, their ports and key counters',
  builder: (y) => y.option('json', jsonOpt) as Argv<CtlArgs>,
  handler: (argv) => withClient(argv, async (c) => {
    const bridges = await c.request<BridgeSummary[]>('list');
    if (argv.json) return json(bridges);
    if (bridges.length === 0) return out('no bridges (create a port with: vswitch ctl create vale0:p)\n');
    out(table(['BRIDGE', 'PORTS', 'MAX_PORTS', 'MACS', 'AGEING'],
      bridges.map((b) => [b.name, b.ports.length, b.options.maxPorts, b.macEntries, `${b.ageing}s`])));
    out('\n');
    const rows = bridges.flatMap((b) => b.ports.map((p) => [
      b.name, p.name, p.index, p.state, p.persistent ? 'yes' : 'no',
      p.counters.rxFrames, p.counters.rxBytes, p.counters.txFrames, p.counters.txBytes, drops(p.counters),
    ]));
    if (rows.length === 0) return out('no ports\n');
    out(table(['BRIDGE', 'PORT', 'IDX', 'STATE', 'PERSISTENT', 'RX_FRAMES', 'RX_BYTES', 'TX_FRAMES', 'TX_BYTES', 'DROPS'], rows));
  }),
};

const create: Sub<{ name: string }> = {
  command: 'create <name>',
  describe: 'Create a persistent port (vale-ctl -n), e.g. vale0:p',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true, describe: 'Port name, vale<bridge>:<port>' }) as Argv<CtlArgs & { name: string }>,
  handler: (argv) => {
    const p = check(() => parsePortName(argv.name));
    return withClient(argv, async (c) => {
      await c.request('create', { name: p.name });
      out(`created persistent port ${p.name} on bridge ${p.bridge}\n`);
    });
  },
};

const remove: Sub<{ name: string }> = {
  command: 'remove <name>',
  describe: 'Remove a persistent port (vale-ctl -r)',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true, describe: 'Port name, vale<bridge>:<port>' }) as Argv<CtlArgs & { name: string }>,
  handler: (argv) => {
    const p = check(() => parsePortName(argv.name));
    return withClient(argv, async (c) => {
      await c.request('remove', { name: p.name });
      out(`removed port ${p.name}\n`);
    });
  },
};

const fdb: Sub<{ bridge: string }> = {
  command: 'fdb <bridge>',
  describe: 'The MAC table (forwarding database) of a bridge: MAC, port, age',
  builder: (y) => y
    .positional('bridge', { type: 'string', demandOption: true, describe: 'Bridge name, e.g. vale0' })
    .option('json', jsonOpt) as Argv<CtlArgs & { bridge: string }>,
  handler: (argv) => {
    const bridge = check(() => checkBridgeName(argv.bridge));
    return withClient(argv, async (c) => {
      const entries = await c.request<MacEntry[]>('fdb', { bridge });
      if (argv.json) return json(entries);
      if (entries.length === 0) return out(`no MAC entries on ${bridge}\n`);
      out(table(['MAC', 'VLAN', 'PORT', 'AGE'], entries.map((e) => [e.mac, e.vlan ? e.vlan : '-', e.portName, `${e.age}s`])));
    });
  },
};

const stats: Sub<{ port?: string }> = {
  command: 'stats [port]',
  describe: 'Counters of one port, or of every port',
  builder: (y) => y
    .positional('port', { type: 'string', describe: 'Port name (default: all ports)' })
    .option('json', jsonOpt) as Argv<CtlArgs & { port?: string }>,
  handler: (argv) => {
    const port = argv.port === undefined ? undefined : check(() => parsePortName(argv.port)).name;
    return withClient(argv, async (c) => {
      if (port) {
        const s = await c.request<PortStats>('stats', { port });
        if (argv.json) return json(s);
        out(`${s.name} (bridge ${s.bridge}, slot ${s.index}${s.persistent ? ', persistent' : ''})\n`);
        const names = COUNTER_NAMES.filter((n) => n in s.counters);
        const w = Math.max(...names.map((n) => n.length));
        for (const n of names) out(`  ${n.padEnd(w)}  ${s.counters[n]}\n`);
        return;
      }
      const all = await c.request<PortStats[]>('stats');
      if (argv.json) return json(all);
      if (all.length === 0) return out('no ports\n');
      out(table(['PORT', 'RX_FRAMES', 'RX_BYTES', 'TX_FRAMES', 'TX_BYTES', 'FLOODED', 'DROPS'],
        all.map((p) => [p.name, p.counters.rxFrames, p.counters.rxBytes, p.counters.txFrames, p.counters.txBytes, p.counters.txFlooded, drops(p.counters)])));
    });
  },
};

const ping: Sub<object> = {
  command: 'ping',
  describe: 'Check that vswitch serve is running',
  builder: (y) => y.option('json', jsonOpt) as Argv<CtlArgs>,
  handler: (argv) => withClient(argv, async (c) => {
    const p = await c.request<PingInfo>('ping');
    if (argv.json) return json(p);
    out(`vswitch serve ${p.version} is running on ${p.socket}: pid ${p.pid}, up ${p.uptimeSec.toFixed(1)} s, ${p.jobs} job(s)\n`);
  }),
};

function vlanIds(s: string, what: string): number[] {
  return s.split(',').map((x) => {
    const v = Number(x.trim());
    if (!Number.isInteger(v) || v < 1 || v > 4094) die(`${what}: ${JSON.stringify(x)} is not a VLAN id from 1 to 4094`);
    return v;
  });
}

const vlan: Sub<{ port: string; access?: number; trunk?: string; native?: number; none?: boolean }> = {
  command: 'vlan <port>',
  describe: '802.1Q mode of a port: --access VID, --trunk VID[,VID...] [--native VID], or --none',
  builder: (y) => y
    .positional('port', { type: 'string', demandOption: true, describe: 'Port name' })
    .option('access', { type: 'number', describe: 'Access port in this VLAN: untagged in and out' })
    .option('trunk', { type: 'string', describe: 'Trunk carrying these VLANs, tagged (comma-separated)' })
    .option('native', { type: 'number', describe: 'Trunk: VLAN of untagged frames (they leave untagged); none: untagged frames are dropped' })
    .option('none', { type: 'boolean', describe: 'VLAN-unaware (the default): frames pass as they are' })
    .example('$0 ctl vlan vale0:a --access 10', '')
    .example('$0 ctl vlan vale0:up --trunk 10,20 --native 1', '') as Argv<CtlArgs & { port: string; access?: number; trunk?: string; native?: number; none?: boolean }>,
  handler: (argv) => {
    const p = check(() => parsePortName(argv.port));
    const given = [argv.access !== undefined, argv.trunk !== undefined, !!argv.none].filter(Boolean).length;
    if (given !== 1) die('give exactly one of --access VID, --trunk LIST or --none');
    if (argv.native !== undefined && argv.trunk === undefined) die('--native goes with --trunk');
    const config = argv.none ? { mode: 'none' }
      : argv.access !== undefined ? { mode: 'access', vlan: vlanIds(String(argv.access), '--access')[0] }
        : { mode: 'trunk', vlans: vlanIds(argv.trunk!, '--trunk'), ...(argv.native !== undefined ? { native: vlanIds(String(argv.native), '--native')[0] } : {}) };
    return withClient(argv, async (c) => {
      await c.request('vlan', { port: p.name, config });
      out(`${p.name}: ${argv.none ? 'VLAN-unaware' : argv.access !== undefined ? `access VLAN ${argv.access}` : `trunk ${argv.trunk}${argv.native !== undefined ? ` native ${argv.native}` : ''}`}\n`);
    });
  },
};

const mirror: Sub<{ port: string; tx?: string[]; rx?: string[]; off?: boolean }> = {
  command: 'mirror <port>',
  describe: 'Make a port a mirror of what other ports send (--tx) and receive (--rx); --off undoes it',
  builder: (y) => y
    .positional('port', { type: 'string', demandOption: true, describe: 'The mirror (monitor) port' })
    .option('tx', { type: 'string', array: true, describe: 'Copy every frame this port sends (repeatable)' })
    .option('rx', { type: 'string', array: true, describe: 'Copy every frame this port receives (repeatable)' })
    .option('off', { type: 'boolean', describe: 'Stop mirroring: a normal port again' })
    .example('$0 ctl mirror vale0:mon --tx vale0:a --rx vale0:a', 'both directions of vale0:a') as Argv<CtlArgs & { port: string; tx?: string[]; rx?: string[]; off?: boolean }>,
  handler: (argv) => {
    const p = check(() => parsePortName(argv.port));
    const tx = (argv.tx ?? []).map((n) => check(() => parsePortName(n)).name);
    const rx = (argv.rx ?? []).map((n) => check(() => parsePortName(n)).name);
    if (argv.off ? tx.length + rx.length > 0 : tx.length + rx.length === 0) die('give --tx/--rx ports to mirror, or --off alone');
    return withClient(argv, async (c) => {
      await c.request('mirror', { port: p.name, tx, rx });
      out(argv.off ? `${p.name}: not a mirror\n` : `${p.name}: mirrors${tx.length ? ` tx of ${tx.join(', ')}` : ''}${rx.length ? ` rx of ${rx.join(', ')}` : ''}\n`);
    });
  },
};

const ageing: Sub<{ bridge: string; seconds: number }> = {
  command: 'ageing <bridge> <seconds>',
  describe: 'MAC ageing time of a bridge in seconds (0: learned addresses never expire; default 300)',
  builder: (y) => y
    .positional('bridge', { type: 'string', demandOption: true, describe: 'Bridge name' })
    .positional('seconds', { type: 'number', demandOption: true, describe: 'Seconds' }) as Argv<CtlArgs & { bridge: string; seconds: number }>,
  handler: (argv) => {
    const b = check(() => checkBridgeName(argv.bridge));
    if (!Number.isInteger(argv.seconds) || argv.seconds < 0) die(`ageing must be a whole number of seconds ≥ 0, got ${argv.seconds}`);
    return withClient(argv, async (c) => {
      await c.request('ageing', { bridge: b, seconds: argv.seconds });
      out(`${b}: MAC ageing ${argv.seconds ? `${argv.seconds} s` : 'off'}\n`);
    });
  },
};

interface AttachArgs { port: string; 'qemu-stream'?: string; 'qemu-dgram'?: string; vxlan?: boolean; tap?: string; netns?: string; local?: string; remote?: string[]; vni?: number }

const attach: Sub<AttachArgs> = {
  command: 'attach <port>',
  describe: 'Connect outside software to a port: a QEMU VM (stream or dgram netdev), VXLAN peers or a TAP device',
  builder: (y) => y
    .positional('port', { type: 'string', demandOption: true, describe: 'Port name (created, persistent, if missing)' })
    .option('qemu-stream', { type: 'string', describe: 'Listen for QEMU -netdev stream: unix:PATH or tcp:HOST:PORT (loopback unless a host is given)' })
    .option('qemu-dgram', { type: 'string', describe: 'QEMU -netdev dgram: our local HOST:PORT (with --remote, the VM\'s HOST:PORT)' })
    .option('vxlan', { type: 'boolean', describe: 'VXLAN (RFC 7348) uplink: --local IP:PORT, --remote IP:PORT (repeatable), --vni N' })
    .option('tap', { type: 'string', describe: 'Create a TAP device of this name attached to the port (root and socat needed)' })
    .option('netns', { type: 'string', describe: 'TAP: move the device into this network namespace and bring it up there' })
    .option('local', { type: 'string', describe: 'VXLAN: local IP:PORT to bind' })
    .option('remote', { type: 'string', array: true, describe: 'dgram: the VM\'s address; VXLAN: a remote IP:PORT (repeatable)' })
    .option('vni', { type: 'number', describe: 'VXLAN network identifier (0-16777215)' })
    .example('$0 ctl attach vale0:vm1 --qemu-stream unix:/run/vm1.sock', 'QEMU: -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/run/vm1.sock')
    .example('$0 ctl attach vale0:vm2 --qemu-dgram 127.0.0.1:5601 --remote 127.0.0.1:5602', '')
    .example('$0 ctl attach vale0:up --vxlan --local 10.99.0.1:4789 --remote 10.99.0.2:4789 --vni 42', '')
    .example('$0 ctl attach vale0:t1 --tap vsw-t1 --netns ns1', 'a kernel interface in namespace ns1') as Argv<CtlArgs & AttachArgs>,
  handler: (argv) => {
    const p = check(() => parsePortName(argv.port));
    const kinds = [argv['qemu-stream'] !== undefined, argv['qemu-dgram'] !== undefined, !!argv.vxlan, argv.tap !== undefined].filter(Boolean).length;
    if (kinds !== 1) die('give exactly one of --qemu-stream SPEC, --qemu-dgram LOCAL --remote REMOTE, --vxlan --local L --remote R --vni N, or --tap NAME [--netns NS]');
    if (argv.netns !== undefined && argv.tap === undefined) die('--netns goes with --tap');
    const remotes = argv.remote ?? [];
    let spec: object;
    if (argv.tap !== undefined) {
      spec = { port: p.name, kind: 'tap', name: argv.tap, ...(argv.netns !== undefined ? { netns: argv.netns } : {}) };
    } else if (argv['qemu-stream'] !== undefined) {
      spec = { port: p.name, kind: 'qemu-stream', addr: argv['qemu-stream'] };
    } else if (argv['qemu-dgram'] !== undefined) {
      if (remotes.length !== 1) die('--qemu-dgram needs one --remote HOST:PORT (where the VM listens)');
      spec = { port: p.name, kind: 'qemu-dgram', local: argv['qemu-dgram'], remote: remotes[0] };
    } else {
      if (!argv.local || remotes.length === 0 || argv.vni === undefined) die('--vxlan needs --local IP:PORT, at least one --remote IP:PORT and --vni N');
      spec = { port: p.name, kind: 'vxlan', local: argv.local, remotes, vni: argv.vni };
    }
    return withClient(argv, async (c) => {
      const st = await c.request<{ kind: string; local: string }>('attach', { spec });
      if (argv.json) return json(st);
      out(`attached ${st.kind} to ${p.name} on ${st.local}\n`);
    });
  },
};

const detach: Sub<{ port: string }> = {
  command: 'detach <port>',
  describe: 'Disconnect the adapter of a port (the port stays; remove it with ctl remove)',
  builder: (y) => y.positional('port', { type: 'string', demandOption: true, describe: 'Port name' }).option('json', jsonOpt) as Argv<CtlArgs & { port: string }>,
  handler: (argv) => {
    const p = check(() => parsePortName(argv.port));
    return withClient(argv, async (c) => {
      const st = await c.request<{ kind: string; rxFrames: number; txFrames: number; dropped: number }>('detach', { port: p.name });
      if (argv.json) return json(st);
      out(`detached ${st.kind} from ${p.name}: ${st.rxFrames} frames in, ${st.txFrames} out, ${st.dropped} dropped\n`);
    });
  },
};

const adapters: Sub<object> = {
  command: 'adapters',
  describe: 'Attached adapters with their counters and drops by reason',
  builder: (y) => y.option('json', jsonOpt) as Argv<CtlArgs>,
  handler: (argv) => withClient(argv, async (c) => {
    const all = await c.request<{
      port: string; kind: string; local: string; rxFrames: number; txFrames: number; dropped: number; drops: Record<string, number>;
      switch: { rxDropRingFull: number } | null; thread?: number; txQueuedBytes?: number;
    }[]>('adapters');
    if (argv.json) return json(all);
    if (all.length === 0) return out('no adapters attached\n');
    // RING FULL: frames for the peer the switch dropped because the adapter did not empty its
    // port's RX ring in time (the port's rxDropRingFull). THREAD: the Worker running the adapter.
    // QUEUED: bytes a stream adapter holds for a peer that has not read them yet.
    out(table(['PORT', 'KIND', 'LOCAL', 'THREAD', 'IN', 'OUT', 'DROPPED', 'BY REASON', 'RING FULL', 'QUEUED'], all.map((a) => [
      a.port, a.kind, a.local, a.thread ?? 'main', a.rxFrames, a.txFrames, a.dropped,
      Object.entries(a.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(' ') || '-',
      a.switch ? a.switch.rxDropRingFull : '-',
      a.txQueuedBytes ?? '-',
    ])));
  }),
};

interface GuestArgs {
  port: string;
  kernel: string;
  initrd?: string;
  bios: string;
  'vga-bios'?: string;
  append?: string;
  m?: number;
  nic?: string;
  console?: string;
}

const guestStart: Sub<GuestArgs> = {
  command: 'guest-start <port>',
  describe: 'Boot a v86 guest inside the daemon with its NIC on <port> (the guest keeps running after this command)',
  builder: (y) => y
    .positional('port', { type: 'string', demandOption: true, describe: 'Port for the guest\'s NIC, e.g. vale0:vm1' })
    .option('kernel', { type: 'string', demandOption: true, requiresArg: true, describe: 'i386 Linux kernel (bzImage)' })
    .option('initrd', { type: 'string', requiresArg: true, describe: 'initramfs (uncompressed cpio boots fastest)' })
    .option('bios', { type: 'string', demandOption: true, requiresArg: true, describe: 'SeaBIOS image, e.g. /usr/share/seabios/bios.bin' })
    .option('vga-bios', { type: 'string', requiresArg: true, describe: 'VGA BIOS (optional for serial-console guests)' })
    .option('append', { type: 'string', requiresArg: true, describe: 'kernel command line (default "console=ttyS0 quiet")' })
    .option('m', { type: 'number', requiresArg: true, describe: 'guest RAM in MiB (default 128)' })
    .option('nic', { type: 'string', choices: ['ne2k', 'virtio'], describe: 'emulated NIC (default ne2k)' })
    .option('console', { type: 'string', requiresArg: true, describe: 'file the daemon appends the serial console to (path as the daemon sees it)' })
    .option('json', jsonOpt) as Argv<CtlArgs & GuestArgs>,
  handler: (argv) => {
    const p = check(() => parsePortName(argv.port));
    const abs = (f: string | undefined) => (f === undefined ? undefined : resolve(f)); // the daemon may run elsewhere
    const spec = {
      port: p.name, kernel: abs(argv.kernel), bios: abs(argv.bios),
      ...(argv.initrd !== undefined ? { initrd: abs(argv.initrd) } : {}),
      ...(argv['vga-bios'] !== undefined ? { vgaBios: abs(argv['vga-bios']) } : {}),
      ...(argv.append !== undefined ? { append: argv.append } : {}),
      ...(argv.m !== undefined ? { memoryMB: argv.m } : {}),
      ...(argv.nic !== undefined ? { nic: argv.nic } : {}),
      ...(argv.console !== undefined ? { console: abs(argv.console) } : {}),
    };
    return withClient(argv, async (c) => {
      const g = await c.request<{ port: string }>('guest-start', { spec });
      if (argv.json) return json(g);
      out(`started a v86 guest on ${g.port}; vswitch ctl guests shows its console\n`);
    });
  },
};

const guestStop: Sub<{ port: string }> = {
  command: 'guest-stop <port>',
  describe: 'Stop a v86 guest the daemon hosts (its port stays)',
  builder: (y) => y.positional('port', { type: 'string', demandOption: true, describe: 'Port name' }).option('json', jsonOpt) as Argv<CtlArgs & { port: string }>,
  handler: (argv) => {
    const p = check(() => parsePortName(argv.port));
    return withClient(argv, async (c) => {
      const st = await c.request<{ rxFrames: number; txFrames: number } | null>('guest-stop', { port: p.name });
      if (argv.json) return json(st);
      out(`stopped the guest on ${p.name}${st ? `: ${st.rxFrames} frames in, ${st.txFrames} out` : ''}\n`);
    });
  },
};

const guests: Sub<object> = {
  command: 'guests',
  describe: 'v86 guests the daemon hosts, with the end of their serial console',
  builder: (y) => y.option('json', jsonOpt) as Argv<CtlArgs>,
  handler: (argv) => withClient(argv, async (c) => {
    const all = await c.request<{ port: string; running: boolean; consoleTail: string; stats: { rxFrames: number; txFrames: number; dropped: number } | null }[]>('guests');
    if (argv.json) return json(all);
    if (all.length === 0) return out('no guests\n');
    for (const g of all) {
      out(`${g.port}: ${g.running ? 'running' : 'stopped'}${g.stats ? `, ${g.stats.rxFrames} frames in, ${g.stats.txFrames} out, ${g.stats.dropped} dropped` : ''}\n`);
      const tail = g.consoleTail.split('\n').slice(-5).join('\n');
      if (tail.trim()) out(`${tail.replace(/^/gm, '  | ')}\n`);
    }
  }),
};

/** The ctl subcommands; attach/detach (adapters) are added here. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const ctlSubcommands: CommandModule<CtlArgs, any>[] = [list, create, remove, fdb, stats, vlan, mirror, ageing, attach, detach, adapters, guestStart, guestStop, guests, ping];

export const ctlCommand: CommandModule<object, CtlArgs> = {
  command: 'ctl',
  describe: 'Manage a running vswitch serve like vale-ctl: list, create, remove, fdb, stats, vlan, mirror, ageing, attach, detach, adapters, guest-start, guest-stop, guests, ping',
  builder: (y: Argv) => {
    let a = y
      .usage('$0 ctl <command> [options]')
      .option('socket', {
        type: 'string', requiresArg: true, global: true,
        describe: 'Control socket of vswitch serve (default: $VSWITCH_SOCKET, else the default path)',
      }) as Argv<CtlArgs>;
    for (const c of ctlSubcommands) a = a.command(c);
    return a
      .strictCommands()
      .demandCommand(1, 'Give a ctl command: list, create, remove, fdb, stats, vlan, mirror, ageing, attach, detach, adapters, guest-start, guest-stop, guests or ping.')
      .example('$0 ctl create vale0:p', 'a persistent port')
      .example('$0 ctl fdb vale0', 'MAC table of bridge vale0')
      .example('$0 ctl stats vale0:p --json', 'counters as JSON');
  },
  handler: () => {},
};
