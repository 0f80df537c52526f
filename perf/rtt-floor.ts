#!/usr/bin/env node
/**
 * The two bounds under `vswitch bench`'s rtt-spin figure, measured on this machine:
 *
 *  transfer  two Workers ping-pong by flipping one Int32 word each, in separate cache lines:
 *            what one cache line moving each way costs, with nothing else (the floor of any
 *            two-thread round trip here);
 *  cpu       one thread drives both ports of an embedded switch through the public Port API and
 *            does what pkt-gen's ping and pong do (patch seq and timestamp, txCommit, receive,
 *            copy and swap, txCommit back, receive): the CPU a round trip costs with no waiting
 *            and no line moving between cores (process.cpuUsage()).
 *
 * rtt-spin between two Workers is about cpu + the line transfers of two hops, so the pair says
 * how much of a round trip is work and how much is the machine.
 *
 *   node dist/perf/rtt-floor.js [--rounds 5] [--flips 1000000] [--trips 200000] [--json]
 *
 * --flips: word round trips per transfer round; --trips: switch round trips per CPU round (the
 * same number again warms up first). Two spinning Workers need two free cores: on a busy machine
 * each flip can wait for a time slice, so keep --flips small there.
 */
import { Worker, isMainThread, workerData } from 'node:worker_threads';

interface FlipData { sab: SharedArrayBuffer; id: number; n: number }

if (!isMainThread) {
  const { sab, id, n } = workerData as FlipData;
  const i32 = new Int32Array(sab);
  const mine = id === 0 ? 0 : 16; // 64 bytes apart
  const other = id === 0 ? 16 : 0;
  let t0 = 0;
  for (let k = 1; k <= n; k++) {
    if (id === 0) {
      Atomics.store(i32, mine, k);
      while (Atomics.load(i32, other) !== k);
      if (k === 1) t0 = performance.now(); // both Workers are running from here on
    } else {
      while (Atomics.load(i32, other) !== k);
      Atomics.store(i32, mine, k);
    }
  }
  if (id === 0) new Float64Array(sab, 64 * 2, 1)[0] = ((performance.now() - t0) * 1e6) / (n - 1);
} else {
  const arg = (name: string, dflt: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
  };
  const rounds = Number(arg('--rounds', '5'));
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 100)) throw new Error(`--rounds must be 1..100, got ${arg('--rounds', '')}`);
  const flips = Number(arg('--flips', '1000000'));
  const trips = Number(arg('--trips', '200000'));
  if (!(Number.isInteger(flips) && flips >= 2)) throw new Error(`--flips must be an integer ≥ 2, got ${arg('--flips', '')}`);
  if (!(Number.isInteger(trips) && trips >= 1)) throw new Error(`--trips must be an integer ≥ 1, got ${arg('--trips', '')}`);
  const json = process.argv.includes('--json');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  async function transfer(n: number): Promise<number> {
    const sab = new SharedArrayBuffer(192);
    const ws = [0, 1].map((id) => new Worker(new URL(import.meta.url), { workerData: { sab, id, n } satisfies FlipData }));
    await Promise.all(ws.map((w) => new Promise((resolve, reject) => { w.once('exit', resolve); w.once('error', reject); })));
    return new Float64Array(sab, 64 * 2, 1)[0]; // worker 0's ns per round trip, start-up excluded
  }

  const { Switch } = await import('vswitch');
  const { FrameBuilder, getSeq, setSeq, swapForPong, timestampMs, writeTimestamp } = await import('vswitch/frame');
  const sw = new Switch({ name: `rtt-floor-${process.pid}` });
  const ping = await sw.open('valeq:ping');
  const pong = await sw.open('valeq:pong');
  const A = '02:00:00:00:00:01';
  const B = '02:00:00:00:00:02';
  const hello = new Uint8Array(60);
  new FrameBuilder({ length: 60, srcMac: B, dstMac: A }).write(hello, 0);
  pong.send(hello); // the bridge learns B, so pings go unicast
  ping.receive();
  ping.release();
  const fb = new FrameBuilder({ length: 60, srcMac: A, dstMac: B });
  ping.txPrefill((buf, off) => fb.write(buf, off));
  let seq = 0;
  let seen = 0;
  function roundTrip(): void {
    const tx = ping.txReserve(1);
    const off = tx.offset(0);
    setSeq(tx.buffer, off, seq);
    const t = performance.now();
    writeTimestamp(tx.buffer, off, Math.floor(t / 1000), Math.floor((t % 1000) * 1e6));
    tx.setLength(0, 60);
    ping.txCommit(1);
    const rx = pong.receive();
    const n = rx.count;
    const back = pong.txReserve(n);
    for (let i = 0; i < n; i++) {
      const l = back.copyFrom(i, rx, i);
      swapForPong(back.buffer, back.offset(i), l);
    }
    pong.release();
    pong.txCommit(n);
    const b = ping.receive();
    for (let i = 0; i < b.count; i++) {
      if (getSeq(b.buffer, b.offset(i)) === seq && performance.now() >= timestampMs(b.buffer, b.offset(i))) seen++;
    }
    ping.release();
    seq = (seq + 1) >>> 0;
  }
  function cpu(n: number): number {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) roundTrip();
    const c = process.cpuUsage(c0);
    return ((c.user + c.system) * 1000) / n;
  }

  for (let i = 0; i < trips; i++) roundTrip(); // warm-up: optimised code before measuring
  const tr: number[] = [];
  const cp: number[] = [];
  for (let r = 0; r < rounds; r++) {
    tr.push(await transfer(flips));
    cp.push(cpu(trips));
  }
  const lost = seq - seen;
  await ping.close();
  await pong.close();
  await sw.close();
  if (lost !== 0) throw new Error(`${lost} of ${seq} pings did not come back`);
  const out = {
    transferNsPerRoundTrip: { min: Math.min(...tr), median: median(tr) },
    cpuNsPerRoundTrip: { min: Math.min(...cp), median: median(cp) },
    rounds,
  };
  if (json) console.log(JSON.stringify(out));
  else {
    console.log(`two Workers flipping one word each (one cache line each way): ${out.transferNsPerRoundTrip.median.toFixed(0)} ns per round trip (min ${out.transferNsPerRoundTrip.min.toFixed(0)})`);
    console.log(`one thread, ping and pong through the Port API: ${out.cpuNsPerRoundTrip.median.toFixed(0)} ns CPU per round trip (min ${out.cpuNsPerRoundTrip.min.toFixed(0)})`);
    console.log(`medians of ${rounds} rounds; rtt-spin between two Workers ≈ the CPU figure + the line transfers of two hops`);
  }
}
