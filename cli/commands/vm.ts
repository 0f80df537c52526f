/**
 * `vswitch vm --v86 ...`: runs a v86 guest (in a Worker of this process) with its NIC on a switch
 * port and its serial console on stdout (or a file); stdin is typed on the console.
 *
 * - `--embedded`: the switch lives in this process (useful with more guests, or to try a guest).
 * - otherwise the port is on the bridge of a running `vswitch serve`: the daemon attaches a
 *   stream socket port (the QEMU stream adapter) on a unix socket in a private temporary
 *   directory, and this process links the guest to it: guest NIC → port of a private in-process
 *   switch → stream socket → the daemon's port. On exit the daemon's adapter is detached and the
 *   port removed again (unless it existed before).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { Argv, CommandModule } from 'yargs';
import { Switch, parsePortName, type BridgeSummary, type Port, type TxBatch } from 'vswitch';
import { ControlClient, resolveSocketPath } from 'vswitch/control';
import { connectStreamPeer, type StreamPeer } from 'vswitch/adapters';
import { startV86Guest, type V86Guest } from 'vswitch/v86';
import { die } from '../format.js';

interface Args {
  v86?: boolean;
  kernel: string;
  initrd?: string;
  bios: string;
  'vga-bios'?: string;
  append?: string;
  memory: number;
  nic: string;
  i: string;
  embedded?: boolean;
  socket?: string;
  console?: string;
}

/** Writes frames into the port's TX buffers (txReserve) and sends them together on flush (txCommit). */
function injector(port: Port): { put: (buf: Uint8Array, off: number, len: number) => void; flush: () => void } {
  let batch: TxBatch | null = null;
  let n = 0;
  const flush = () => {
    const k = n;
    n = 0;
    batch = null;
    if (k > 0 && !port.closed) port.txCommit(k);
  };
  const put = (buf: Uint8Array, off: number, len: number) => {
    if (len < 14 || len > port.mtu || port.closed) return;
    if (batch === null || n === batch.count) {
      flush();
      batch = port.txReserve(256);
      if (batch.count === 0) {
        batch = null;
        return;
      }
    }
    batch.buffer.set(buf.subarray(off, off + len), batch.offset(n));
    batch.setLength(n, len);
    n++;
  };
  return { put, flush };
}

/** Links a local port to a stream socket (4-byte length framing) both ways, until either ends. */
function linkPortToStream(port: Port, peerSock: Socket): { stop(): void; done: Promise<void> } {
  let stopped = false;
  const done = (async () => {
    while (!stopped && !peerSock.destroyed) {
      if (port.pending === 0) {
        const ok = await port.waitAsync(250);
        if (!ok) {
          if (port.closed) break;
          continue;
        }
      }
      const b = port.receive(256);
      let total = 0;
      for (let i = 0; i < b.count; i++) if (b.length(i) > 0) total += 4 + b.length(i);
      if (total > 0) {
        const out = Buffer.allocUnsafe(total);
        let o = 0;
        for (let i = 0; i < b.count; i++) {
          const len = b.length(i);
          if (len === 0) continue;
          out.writeUInt32BE(len, o);
          const off = b.offset(i);
          out.set(b.buffer.subarray(off, off + len), o + 4);
          o += 4 + len;
        }
        if (!peerSock.write(out)) await new Promise<void>((r) => { peerSock.once('drain', r); peerSock.once('close', r); });
      }
      port.release();
    }
  })();
  return { stop: () => { stopped = true; }, done };
}

export const vmCommand: CommandModule<object, Args> = {
  command: 'vm',
  describe: 'Run a v86 guest (x86 emulator in a Worker) with its NIC on a switch port',
  builder: (y: Argv) =>
    y
      .usage(
        '$0 vm --v86 --kernel BZIMAGE [--initrd FILE] --bios BIOS [--append CMDLINE] -i PORT [--embedded]\n\n' +
          'Boots a Linux guest in v86 (npm package v86, installed next to vswitch) in a Worker of this process,\n' +
          'with its NIC on PORT and its serial console (ttyS0) on stdout; what you type goes to the console.\n' +
          'Without --embedded the port is on the bridge of the running `vswitch serve` (reached over a stream\n' +
          'socket the daemon attaches for the guest); with --embedded this process runs its own switch.\n' +
          'Files come from Debian packages: seabios (/usr/share/seabios/bios.bin) and an i386 kernel\n' +
          '(linux-image-686:i386); see docs/V86.md. Ctrl-C stops the guest.',
      )
      .example('$0 vm --v86 --kernel vmlinuz --initrd initrd.cpio --bios /usr/share/seabios/bios.bin --append "console=ttyS0 quiet" -i vale0:vm1', '')
      .option('v86', { type: 'boolean', describe: 'run the guest in v86 (the only engine so far)' })
      .option('kernel', { type: 'string', demandOption: true, describe: 'Linux bzImage (i386)' })
      .option('initrd', { type: 'string', describe: 'initrd / initramfs (uncompressed cpio boots fastest)' })
      .option('bios', { type: 'string', demandOption: true, describe: 'SeaBIOS image, e.g. /usr/share/seabios/bios.bin' })
      .option('vga-bios', { type: 'string', describe: 'VGA BIOS, e.g. /usr/share/seabios/vgabios-stdvga.bin (optional)' })
      .option('append', { type: 'string', default: 'console=ttyS0', describe: 'kernel command line' })
      .option('memory', { alias: 'm', type: 'number', default: 128, describe: 'guest RAM in MiB (> 64 + initrd size)' })
      .option('nic', { type: 'string', default: 'ne2k', choices: ['ne2k', 'virtio'], describe: 'emulated NIC' })
      .option('i', { alias: 'interface', type: 'string', demandOption: true, describe: 'port for the guest NIC, e.g. vale0:vm1' })
      .option('embedded', { type: 'boolean', describe: 'run a switch in this process instead of using vswitch serve' })
      .option('socket', { type: 'string', describe: 'control socket of vswitch serve' })
      .option('console', { type: 'string', describe: 'write the serial console to this file instead of stdout' }),
  handler: async (a) => {
    if (!a.v86) die('vm: only v86 guests are supported: add --v86');
    let port: string;
    try {
      port = parsePortName(a.i).name;
    } catch (e) {
      die((e as Error).message);
    }
    const cleanups: (() => Promise<unknown> | unknown)[] = [];
    const cleanup = async () => {
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch {
          // keep cleaning up
        }
      }
    };
    let ending = false;
    async function shutdown(code: number): Promise<void> {
      if (ending) return;
      ending = true;
      await cleanup();
      process.exit(code);
    }
    let guestPort = port;
    let switchName: string;
    let where: string;
    try {
      if (a.embedded) {
        const sw = new Switch({ name: `vm-${process.pid}` });
        cleanups.push(() => sw.close());
        switchName = sw.name;
        where = 'embedded switch';
      } else {
        const client = await ControlClient.connect(resolveSocketPath(a.socket));
        cleanups.push(() => client.close());
        const list = await client.request<BridgeSummary[]>('list');
        const existed = list.some((b) => b.ports.some((p) => p.name === port));
        const dir = mkdtempSync(join(tmpdir(), 'vswitch-vm-'));
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        const sock = join(dir, 'nic.sock');
        await client.request('attach', { spec: { port, kind: 'qemu-stream', addr: `unix:${sock}` } });
        cleanups.push(async () => {
          await client.request('detach', { port });
          if (!existed) await client.request('remove', { name: port });
        });
        // The guest's port on a private switch, linked to the daemon's port over the socket.
        const sw = new Switch({ name: `vm-${process.pid}` });
        cleanups.push(() => sw.close());
        switchName = sw.name;
        guestPort = 'vale0:guest';
        const up = await sw.open('vale0:uplink', { exclusive: true });
        cleanups.push(() => up.close());
        const inj = injector(up);
        const peer: StreamPeer = await connectStreamPeer(`unix:${sock}`, { mtu: up.mtu, onFrame: inj.put });
        // After the peer's own 'data' listener has decoded the chunk: send its frames together.
        peer.socket.on('data', inj.flush);
        cleanups.push(() => peer.close());
        const link = linkPortToStream(up, peer.socket);
        cleanups.push(() => { link.stop(); return link.done; });
        peer.on('close', () => {
          if (ending) return;
          process.stderr.write('vswitch vm: the daemon closed the guest\'s socket; stopping\n');
          void shutdown(1);
        });
        where = `vswitch serve on ${client.path}`;
      }
    } catch (e) {
      await cleanup();
      die((e as Error).message);
    }
    let guest: V86Guest;
    try {
      guest = await startV86Guest({
        kernel: a.kernel, initrd: a.initrd, bios: a.bios, vgaBios: a['vga-bios'], append: a.append,
        port: guestPort, switch: switchName, memoryMB: a.memory, nic: a.nic as 'ne2k' | 'virtio',
        console: a.console ?? 'stdout',
      });
    } catch (e) {
      await cleanup();
      die((e as Error).message);
    }
    cleanups.push(() => guest.stop());
    process.stderr.write(`vswitch vm: v86 guest on ${port} (${where}); Ctrl-C stops it\n`);
    process.stdin.on('data', (d: Buffer) => { if (guest.running) guest.send(d.toString('utf8')); });
    process.stdin.on('error', () => {});
    process.once('SIGINT', () => void shutdown(0));
    process.once('SIGTERM', () => void shutdown(0));
    guest.once('exit', () => void shutdown(guest.error ? 1 : 0));
  },
};
