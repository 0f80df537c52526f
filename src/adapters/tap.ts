/**
 * TAP adapter: a Linux TAP device attached to a port, for programs that need a kernel network
 * interface. Node cannot make the TUNSETIFF ioctl, so socat (Debian package socat) opens the
 * device and relays one frame per UDP datagram on loopback to a dgram adapter of ours
 * (the relay is `socat TUN,tun-type=tap,iff-no-pi,tun-name=NAME UDP:…`). The device can then be
 * moved into a network namespace; socat's file descriptor stays attached to it.
 *
 *   const a = await attachTap(sw, 'vale0:t1', { name: 'vsw-t1', netns: 'ns1' });
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { adapterError, type SwitchRef } from './common.js';
import { attachQemuDgram, type QemuDgramAdapter } from './qemu-dgram.js';

export interface TapOptions {
  /** Interface name, at most 15 characters of [A-Za-z0-9_.-]. */
  name: string;
  /** Move the device into this existing network namespace (ip netns) and bring it up there. */
  netns?: string;
  persistent?: boolean;
  /** How long to wait for socat to create the device (default 5000 ms). */
  timeoutMs?: number;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

/** Creates TAP device `opts.name` attached to port `portName` (needs root and socat). */
export async function attachTap(sw: SwitchRef, portName: string, opts: TapOptions): Promise<QemuDgramAdapter> {
  if (!opts || typeof opts.name !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(opts.name)) {
    throw adapterError(`tap: the device name must be 1 to 15 characters of A-Z a-z 0-9 _ . -, got ${JSON.stringify(opts?.name)}`);
  }
  if (opts.netns !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(opts.netns)) throw adapterError(`tap: bad namespace name ${JSON.stringify(opts.netns)}`);
  if (spawnSync('socat', ['-V'], { stdio: 'ignore' }).error) throw adapterError('tap: socat is not installed (apt-get install socat); it opens the TAP device for us');
  if (process.getuid?.() !== 0) throw adapterError('tap: creating a TAP device needs root');
  if (ip(['link', 'show', opts.name]).ok) throw adapterError(`tap: a network interface named ${opts.name} already exists`);
  const ours = await freeUdpPort();
  const theirs = await freeUdpPort();
  const a = await attachQemuDgram(sw, portName, { local: `127.0.0.1:${ours}`, remote: `127.0.0.1:${theirs}`, persistent: opts.persistent }, 'tap');
  a.kind = 'tap';
  let child: ChildProcess | undefined;
  let stderr = '';
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  };
  a.onShutdown = stop;
  try {
    child = spawn('socat', ['-b', '65536', `TUN,tun-type=tap,iff-no-pi,iff-up,tun-name=${opts.name}`,
      `UDP:127.0.0.1:${ours},bind=127.0.0.1:${theirs}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    while (!ip(['link', 'show', opts.name]).ok) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw adapterError(`tap: socat did not create ${opts.name}${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (opts.netns !== undefined) {
      const mv = ip(['link', 'set', opts.name, 'netns', opts.netns]);
      if (!mv.ok) throw adapterError(`tap: cannot move ${opts.name} into namespace ${opts.netns}: ${mv.err}`);
      const up = ip(['-n', opts.netns, 'link', 'set', opts.name, 'up']);
      if (!up.ok) throw adapterError(`tap: cannot bring ${opts.name} up in ${opts.netns}: ${up.err}`);
    } else {
      ip(['link', 'set', opts.name, 'up']);
    }
  } catch (e) {
    await a.close();
    throw e;
  }
  return a;
}
