/**
 * Figures for v86 guests: two guests (one Worker each) joined either by vswitch (startV86Guest:
 * attachV86 on ports of one bridge) or by v86's own `inbrowser` relay (a BroadcastChannel every
 * guest's NIC posts every frame to), on the same kernel, initrd and command line.
 *
 *   node dist/perf/v86-figures.js --image DIR [--mode switch|inbrowser|both] [--pings 10] [--kib 2048] [--append CMDLINE] [--json]
 *
 * DIR holds vmlinuz and initrd.cpio as test/vm/build-v86-image.sh writes them (the tests cache one
 * under $TMPDIR/vswitch-v86-cache/<hash>/). BIOS: Debian's seabios.
 * Measured per mode: boot (Workers started → both guests printed their ready line), ping RTT
 * v1 → v2 (busybox ping, `--pings` echo requests 1 s apart), a TCP transfer of `--kib` KiB with
 * busybox nc (v1 → v2, from the command typed to the receiver's byte count), and host CPU of the
 * whole process per guest while both sit idle at a shell prompt (10 s) and during the transfer.
 */
import { isMainThread, parentPort, workerData, Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Switch } from 'vswitch';
import { startV86Guest, V86Guest } from 'vswitch/v86';

const BIOS = '/usr/share/seabios/bios.bin';
const APPEND = 'console=ttyS0 quiet tsc=reliable mitigations=off cryptomgr.notests noisapnp initcall_blacklist=init_kprobe_trace';

interface InbrowserJob { kernel: string; initrd: string; bios: string; append: string }

/** Worker side of the inbrowser mode: the same message protocol as src/v86/guest-worker.ts. */
async function inbrowserWorker(): Promise<void> {
  const job = workerData as InbrowserJob;
  const img = (p: string) => { const b = readFileSync(p); return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) }; };
  const { V86 } = (await import('v86')) as unknown as { V86: new (o: Record<string, unknown>) => {
    add_listener(e: string, f: (v: never) => void): void; run(): void; serial0_send(s: string): void; destroy(): Promise<void> } };
  const emu = new V86({
    wasm_path: join(dirname(fileURLToPath(import.meta.resolve('v86'))), 'v86.wasm'),
    bios: img(job.bios), bzimage: img(job.kernel), initrd: img(job.initrd), cmdline: job.append,
    memory_size: 128 << 20, net_device: { type: 'ne2k', relay_url: 'inbrowser' }, autostart: true, disable_speaker: true,
  });
  let buf: number[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  const dec = new TextDecoder();
  const flush = () => { timer = null; parentPort!.postMessage({ t: 'serial', text: dec.decode(new Uint8Array(buf), { stream: true }) }); buf = []; };
  emu.add_listener('serial0-output-byte', ((b: number) => { buf.push(b); timer ??= setTimeout(flush, 10); }) as (v: never) => void);
  parentPort!.on('message', (m: { t: string; data?: string }) => {
    if (m.t === 'serial' && m.data) emu.serial0_send(m.data);
    if (m.t === 'stop') void emu.destroy().finally(() => parentPort!.postMessage({ t: 'stopped', stats: null }));
  });
  parentPort!.postMessage({ t: 'started' });
}

async function run(g: V86Guest, cmd: string, timeoutMs = 120_000): Promise<string> {
  const from = g.outputLength;
  g.send(`${cmd}; echo VSW-DONE-$((6*7))\n`);
  await g.waitFor('VSW-DONE-42', { from, timeoutMs });
  return g.outputSince(from);
}

const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figures {
  mode: string; bootS: number; ping: { sent: number; received: number; rttMs: number[]; min: number; median: number; max: number };
  tcp: { kib: number; seconds: number; kibPerS: number; cpuPerGuestPct: number }; idleCpuPerGuestPct: number; load: number[];
}

async function measure(mode: 'switch' | 'inbrowser', dir: string, pings: number, kib: number, base: string): Promise<Figures> {
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.cpio');
  const sw = mode === 'switch' ? new Switch({ name: `v86fig-${process.pid}` }) : null;
  const append = (n: number) => `${base} vs_name=v${n} vs_ip=10.0.77.${n}/24 vs_mac=52:54:00:77:00:0${n}`;
  const t0 = performance.now();
  const start = async (n: number): Promise<V86Guest> => {
    if (sw) return startV86Guest({ kernel, initrd, bios: BIOS, append: append(n), port: `vale0:v${n}`, switch: sw.name });
    const w = new Worker(new URL(import.meta.url), { workerData: { kernel, initrd, bios: BIOS, append: append(n) } satisfies InbrowserJob });
    const g = new V86Guest(w, `inbrowser:v${n}`, null, null);
    w.on('message', (m) => g.onMessage(m));
    return g;
  };
  const [g1, g2] = await Promise.all([start(1), start(2)]);
  try {
    await Promise.all([g1, g2].map((g) => g.waitFor(/VSWITCH-V86-READY[^\n]*\n/, { timeoutMs: 400_000 })));
    const bootS = (performance.now() - t0) / 1000;
    await Promise.all([g1, g2].map((g) => g.waitFor('# ', { timeoutMs: 30_000 })));

    const out = await run(g1, `ping -c ${pings} 10.0.77.2`, 60_000 + pings * 2000);
    const m = /(\d+) packets transmitted, (\d+) packets received/.exec(out);
    const rttMs = [...out.matchAll(/time=([\d.]+) ms/g)].map((x) => Number(x[1]));
    const sorted = [...rttMs].sort((a, b) => a - b);

    await sleep(3000);
    const c0 = cpuMs();
    await sleep(10_000);
    const idleCpuPerGuestPct = ((cpuMs() - c0) / 10_000) * 100 / 2;

    const rxFrom = g2.outputLength;
    g2.send('nc -l -p 5001 | wc -c; echo RECV-$((6*7))\n');
    await sleep(1000);
    const c1 = cpuMs();
    const t1 = performance.now();
    g1.send(`dd if=/dev/zero bs=1024 count=${kib} 2>/dev/null | nc 10.0.77.2 5001\n`);
    await g2.waitFor('RECV-42', { from: rxFrom, timeoutMs: 600_000 });
    const seconds = (performance.now() - t1) / 1000;
    const tcpCpu = ((cpuMs() - c1) / (seconds * 1000)) * 100 / 2;
    const got = /(\d+)\s+RECV-42/.exec(g2.outputSince(rxFrom));
    if (!got || Number(got[1]) !== kib * 1024) throw new Error(`nc delivered ${got?.[1]} bytes, expected ${kib * 1024}:\n${g2.outputSince(rxFrom)}`);
    return {
      mode, bootS,
      ping: { sent: Number(m?.[1]), received: Number(m?.[2]), rttMs, min: sorted[0], median: sorted[sorted.length >> 1], max: sorted[sorted.length - 1] },
      tcp: { kib, seconds, kibPerS: kib / seconds, cpuPerGuestPct: tcpCpu },
      idleCpuPerGuestPct,
      load: (await import('node:os')).loadavg(),
    };
  } finally {
    await Promise.all([g1.stop(), g2.stop()]);
    await sw?.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      image: { type: 'string' }, mode: { type: 'string', default: 'both' }, pings: { type: 'string', default: '10' },
      kib: { type: 'string', default: '2048' }, append: { type: 'string', default: APPEND }, json: { type: 'boolean', default: false },
    },
  });
  if (!values.image) throw new Error('--image DIR is required (a directory with vmlinuz and initrd.cpio from test/vm/build-v86-image.sh)');
  const modes = values.mode === 'both' ? (['switch', 'inbrowser'] as const) : [values.mode as 'switch' | 'inbrowser'];
  const all: Figures[] = [];
  for (const mode of modes) {
    const f = await measure(mode, values.image, Number(values.pings), Number(values.kib), values.append!);
    all.push(f);
    if (!values.json) {
      console.log(`${mode}: boot ${f.bootS.toFixed(1)} s; ping ${f.ping.received}/${f.ping.sent}, RTT min/median/max ${f.ping.min}/${f.ping.median}/${f.ping.max} ms; ` +
        `TCP ${f.tcp.kib} KiB in ${f.tcp.seconds.toFixed(1)} s = ${f.tcp.kibPerS.toFixed(0)} KiB/s (CPU ${f.tcp.cpuPerGuestPct.toFixed(0)} %/guest); ` +
        `idle CPU ${f.idleCpuPerGuestPct.toFixed(0)} %/guest; load ${f.load.map((x) => x.toFixed(1)).join(' ')}`);
    }
  }
  if (values.json) console.log(JSON.stringify(all, null, 2));
}

if (isMainThread) {
  main().then(() => process.exit(0), (e: unknown) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
} else {
  void inbrowserWorker();
}
