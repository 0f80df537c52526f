/**
 * An in-process network test: emulated hosts (Workers running ping-host.ts), each with a MAC and
 * an IPv4 address on bridge vale0, ping each other with real ARP and ICMP packets, while the
 * bridge learns where each MAC lives. The pattern for interconnecting in-process VMs, device
 * emulators or protocol stacks under test.
 *
 *   npm run build && node dist/examples/ping-hosts.js [--hosts 4] [--count 5]
 *
 * Prints one line per pair (`10.0.0.1 -> 10.0.0.3: 5/5 replies, rtt min/avg/max ... ms`), then
 * the bridge's MAC table, and exits 0 only if every ping got its reply and every host's MAC was
 * learned on its port.
 */
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { Switch } from 'vswitch';
import type { FromHost, HostConfig, PingResult, ToHost } from './ping-host.js';

const { values: opts } = parseArgs({
  options: { hosts: { type: 'string', default: '4' }, count: { type: 'string', default: '5' } },
});
const HOSTS = Number(opts.hosts);
const COUNT = Number(opts.count);
if (!Number.isInteger(HOSTS) || HOSTS < 2 || HOSTS > 250 || !Number.isInteger(COUNT) || COUNT < 1) {
  console.error('usage: ping-hosts [--hosts 2..250] [--count N>=1]');
  process.exit(2);
}
const REPLY_TIMEOUT_MS = 1000;
const OVERALL_TIMEOUT_MS = 20_000;

/** Host i (0-based): vale0:host<i+1>, MAC 02:00:00:00:00:<i+1>, IPv4 10.0.0.<i+1>. */
const hosts: HostConfig[] = Array.from({ length: HOSTS }, (_, i) => ({
  name: `host${i + 1}`,
  mac: `02:00:00:00:00:${(i + 1).toString(16).padStart(2, '0')}`,
  ip: `10.0.0.${i + 1}`,
}));

/** Whom host i pings: everybody else. Change this to test another matrix. */
function targetsOf(i: number): string[] {
  return hosts.filter((_, j) => j !== i).map((h) => h.ip);
}

/** Resolves with the next message of `type` from `w`; rejects if the Worker fails or exits first. */
function expect<T extends FromHost['type']>(w: Worker, type: T): Promise<Extract<FromHost, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromHost) => {
      if (m.type !== type) return;
      off();
      resolve(m as Extract<FromHost, { type: T }>);
    };
    const onError = (e: Error) => { off(); reject(e); };
    const onExit = (code: number) => { off(); reject(new Error(`a host exited (code ${code}) before sending "${type}"`)); };
    const off = () => { w.off('message', onMessage); w.off('error', onError); w.off('exit', onExit); };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
  });
}

function ms(x: number): string {
  return x.toFixed(2);
}

function summary(r: PingResult): string {
  const head = `${r.from} -> ${r.to}: ${r.received}/${r.sent} replies`;
  if (r.error) return `${head} (${r.error})`;
  if (r.rttMs.length === 0) return head;
  const avg = r.rttMs.reduce((a, b) => a + b, 0) / r.rttMs.length;
  return `${head}, rtt min/avg/max ${ms(Math.min(...r.rttMs))}/${ms(avg)}/${ms(Math.max(...r.rttMs))} ms`;
}

async function main(sw: Switch, workers: Worker[]): Promise<boolean> {
  const results: PingResult[] = [];
  for (const w of workers) w.on('message', (m: FromHost) => { if (m.type === 'result') results.push(m.result); });

  // 1. Every host opens its port; then all start pinging at once.
  await Promise.all(workers.map((w) => expect(w, 'ready')));
  console.log(`${HOSTS} hosts on vale0: ${hosts.map((h) => `${h.name} ${h.ip}`).join(', ')}`);
  const done = workers.map((w) => expect(w, 'done'));
  workers.forEach((w, i) => w.postMessage({ type: 'ping', targets: targetsOf(i), count: COUNT, timeoutMs: REPLY_TIMEOUT_MS } satisfies ToHost));
  await Promise.all(done);

  // 2. The results, in a stable order.
  const order = (ip: string) => Number(ip.split('.')[3]);
  results.sort((a, b) => order(a.from) - order(b.from) || order(a.to) - order(b.to));
  for (const r of results) console.log(summary(r));
  const expected = hosts.reduce((n, _, i) => n + targetsOf(i).length, 0);
  const pingsOk = results.length === expected && results.every((r) => r.sent === COUNT && r.received === COUNT);
  const replies = results.reduce((n, r) => n + r.received, 0);
  console.log(`${pingsOk ? 'all' : 'NOT all'} ${expected} pairs answered: ${replies}/${expected * COUNT} replies`);

  // 3. The bridge's MAC table (while the ports are still open: a port's entries go with it).
  const fdb = sw.fdb('vale0');
  console.log('MAC table of vale0:');
  for (const e of [...fdb].sort((a, b) => a.mac.localeCompare(b.mac))) {
    console.log(`  ${e.mac}  ${e.portName.padEnd(12)} age ${e.age} s`);
  }
  const learned = hosts.every((h) => fdb.some((e) => e.mac === h.mac && e.portName === `vale0:${h.name}`));
  console.log(learned ? `every host's MAC learned on its port (${HOSTS}/${HOSTS})` : 'NOT every host MAC was learned on its port');

  // 4. Stop the hosts: each closes its port and says what it answered.
  const stopped = workers.map((w) => expect(w, 'stopped'));
  for (const w of workers) w.postMessage({ type: 'stop' } satisfies ToHost);
  const answers = await Promise.all(stopped);
  answers.forEach((a, i) => {
    console.log(`${hosts[i].name} (${hosts[i].ip}, ${hosts[i].mac}) answered ${a.answeredArp} ARP and ${a.answeredEcho} echo requests`);
  });
  return pingsOk && learned;
}

const sw = new Switch(); // the registry; Workers find it by name ('default')
const workers = hosts.map((cfg) => new Worker(new URL('./ping-host.js', import.meta.url), { workerData: cfg }));
for (const w of workers) w.on('error', (e) => console.error(`a host failed: ${e.stack ?? e}`));

let ok = false;
let timer: NodeJS.Timeout | undefined;
try {
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${OVERALL_TIMEOUT_MS} ms`)), OVERALL_TIMEOUT_MS);
  });
  ok = await Promise.race([main(sw, workers), timeout]);
} catch (e) {
  console.error(`ping-hosts: ${(e as Error).message}`);
} finally {
  clearTimeout(timer);
  await Promise.all(workers.map((w) => w.terminate())); // hosts that stopped have exited already
  await sw.close();
}
console.log(ok ? 'PASS' : 'FAIL');
process.exitCode = ok ? 0 : 1;
