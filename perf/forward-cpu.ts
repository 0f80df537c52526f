#!/usr/bin/env node
/**
 * CPU time per forwarded frame, one thread: a sender's txsync into a receiver's ring, and the
 * receiver giving its slots back, in a loop, timed with process.cpuUsage(). It measures what the
 * forwarding code costs, not how the OS schedules threads, so it still compares two builds on a
 * busy machine, where the Worker benchmarks (vswitch bench) only measure the load. Run the two
 * builds alternately, several times, and compare the lowest and the median figures.
 *
 *   node dist/perf/forward-cpu.js [--len 60] [--senders 1] [--batch 256] [--bridge PATH] [--json]
 *
 * --bridge: another build's lib/bridge/dist/index.js (default: this tree's #bridge).
 */
function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}
const len = Number(arg('--len', '60'));
const senders = Number(arg('--senders', '1'));
const BATCH = Number(arg('--batch', '256'));
const path = arg('--bridge', '');
if (!(Number.isInteger(len) && len >= 60 && len <= 2048)) throw new Error(`--len must be 60..2048, got ${len}`);
if (!(Number.isInteger(senders) && senders >= 1 && senders <= 8)) throw new Error(`--senders must be 1..8, got ${senders}`);
if (!(Number.isInteger(BATCH) && BATCH >= 1 && BATCH <= 1023)) throw new Error(`--batch must be 1..1023, got ${BATCH}`);

type BridgeMod = typeof import('#bridge');
const { Bridge, Forwarder } = (path ? await import(new URL(path, `file://${process.cwd()}/`).href) : await import('#bridge')) as BridgeMod;

const b = Bridge.create('valeP', { maxPorts: senders + 1, txSlots: 1024, rxSlots: 1024 });
const fw = new Forwarder(b, 0);
const rx = b.addPort('valeP:r');
const tx: number[] = [];
for (let i = 0; i < senders; i++) tx.push(b.addPort(`valeP:s${i}`));
const { u8 } = b.region;
const R = [2, 0, 0, 0, 0, 0xee];
// The receiver's address is learned first, so every frame is unicast to it.
{
  const ring = b.txRing(rx);
  const o = ring.slotBuf(ring.head);
  u8.fill(0xff, o, o + 6); u8.set(R, o + 6); u8[o + 12] = 8;
  ring.setLen(ring.head, 60);
  ring.advance(1);
  fw.txsync(rx);
}
tx.forEach((p, i) => {
  const ring = b.txRing(p);
  for (let j = 0; j < ring.numSlots; j++) {
    const o = ring.slotBuf(j);
    u8.fill(0, o, o + len); u8.set(R, o); u8.set([2, 0, 0, 0, 1, i], o + 6); u8[o + 12] = 8;
    ring.setLen(j, len);
  }
});
const rring = b.rxRing(rx);
function round(): void {
  for (const p of tx) {
    b.txRing(p).advance(BATCH);
    fw.txsync(p);
  }
  rring.advance(rring.space());
}
for (let i = 0; i < 2000; i++) round();
const ns: number[] = [];
const N = 3000;
for (let trial = 0; trial < 7; trial++) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) round();
  const c = process.cpuUsage(c0);
  ns.push(((c.user + c.system) * 1000) / (N * BATCH * senders));
}
ns.sort((x, y) => x - y);
const lost = tx.reduce((s, p) => s + b.counters(p).txCopies - b.counters(p).txDelivered, 0);
if (lost !== 0) throw new Error(`${lost} frames were not delivered: the figures would not be comparable`);
const out = { len, senders, batch: BATCH, bridge: path || 'this tree', nsPerFrame: { min: ns[0], median: ns[3], max: ns[6] } };
if (process.argv.includes('--json')) console.log(JSON.stringify(out));
else console.log(`${len} B, ${senders} sender(s), batch ${BATCH}: ${ns[3].toFixed(1)} ns CPU per frame (min ${ns[0].toFixed(1)}, max ${ns[6].toFixed(1)}; ${out.bridge})`);
