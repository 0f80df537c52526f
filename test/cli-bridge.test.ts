// vswitch bridge: two bridges joined through the daemon so frames cross, counters on exit;
// its errors; and runBridge used from the library with an embedded Switch.
import t from 'tap';
import { ControlClient } from '../src/apps/daemon/control-client.js';
import { oneLine, pollUntil, runCli, spawnCli, startServe, tmpSocket } from './helpers/cli.js';
// runBridge starts Workers from compiled code: use the built package.
import { Switch } from 'vswitch';
import { runBridge } from 'vswitch/join';

interface Report { kind: string; packets: number }

t.test('bridge -i valeA:x -i valeB:y: a frame sent on valeA crosses to valeB; counters on Ctrl-C', async (t) => {
  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket);
  const br = spawnCli(t, ['bridge', '-i', 'valeA:x', '-i', 'valeB:y', '--socket', socket]);
  await br.waitFor(/vswitch bridge: forwarding between valeA:x and valeB:y \(Ctrl-C to stop\)/);

  const c = await ControlClient.connect(socket);
  t.teardown(() => c.close());
  let rxStarted!: () => void;
  const started = new Promise<void>((r) => { rxStarted = r; });
  const rx = c.stream<Report>('pktgen', { opts: { port: 'valeB:r', func: 'rx', reportMs: 100 } }, (ev) => {
    if (ev.event === 'started') rxStarted();
  });
  await started;
  // Broadcast frames (pkt-gen's default destination); 1000 fit in valeA:x's RX ring even if
  // the bridge falls behind, so none is dropped.
  const tx = await c.stream<Report>('pktgen', {
    opts: { port: 'valeA:t', func: 'tx', count: 1000, batch: 64, srcMac: '02:00:00:00:00:01' },
  }, () => {}).done;
  t.equal(tx.packets, 1000);
  await pollUntil('1000 frames to reach valeB:r', async () =>
    ((await c.request<{ counters: { rxFrames: number } }>('stats', { port: 'valeB:r' })).counters.rxFrames >= 1000 ? true : undefined));
  const fdbB = await c.request<{ mac: string; portName: string }[]>('fdb', { bridge: 'valeB' });
  await rx.cancel();
  const got = await rx.done;
  t.equal(got.kind, 'final');
  t.equal(got.packets, 1000, 'every frame crossed to valeB:r');
  t.match(fdbB, [{ mac: '02:00:00:00:00:01', portName: 'valeB:y' }], 'valeB learned the sender behind the bridge port');

  const end = await br.stop('SIGINT');
  t.same(end, { code: 0, signal: null }, 'Ctrl-C: exit 0');
  t.match(br.stdout, /^valeA:x -> valeB:y: 1000 frames, 60000 bytes\nvaleB:y -> valeA:x: 0 frames, 0 bytes\nin \d+\.\d{3} seconds\n$/);
  const ping = await c.request<{ jobs: number }>('ping');
  t.equal(ping.jobs, 0, 'the daemon stopped the bridge job');
  c.close();
  t.same(await d.stop(), { code: 0, signal: null });
});

t.test('bridge -b -T --json: JSON counter lines while it runs, a final one on Ctrl-C', async (t) => {
  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket);
  const br = spawnCli(t, ['bridge', '-i', 'valeA:x', '-i', 'valeB:y', '-b', '16', '-T', '50', '--json', '--socket', socket]);
  await br.waitFor(/vswitch bridge: forwarding between valeA:x and valeB:y/);
  const c = await ControlClient.connect(socket);
  t.teardown(() => c.close());
  const tx = await c.stream<Report>('pktgen', { opts: { port: 'valeA:t', func: 'tx', count: 100, batch: 8 } }, () => {}).done;
  t.equal(tx.packets, 100);
  type Line = { kind: string; a: string; b: string; aToB: { frames: number; bytes: number }; bToA: { frames: number }; seconds: number };
  const parsed = () => br.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
  await pollUntil('an interval line with the 100 frames', async () => (parsed().some((l) => l.kind === 'interval' && l.aToB.frames === 100) ? true : undefined));
  t.same(await br.stop('SIGINT'), { code: 0, signal: null });
  const all = parsed();
  const intervals = all.filter((l) => l.kind === 'interval');
  t.ok(intervals.length >= 1, `${intervals.length} interval lines (-T 50)`);
  t.ok(intervals.every((l, i) => i === 0 || l.seconds >= intervals[i - 1].seconds), 'seconds since the start, never decreasing');
  const fin = all.at(-1)!;
  t.match(fin, { kind: 'final', a: 'valeA:x', b: 'valeB:y', aToB: { frames: 100, bytes: 6000 }, bToA: { frames: 0 } }, 'the final line counts the frames moved');
  t.equal(br.stdout.split('\n').filter((l) => l && !l.startsWith('{')).length, 0, 'nothing but JSON on stdout');
  const bad = await runCli(['bridge', '-i', 'valeA:x', '-i', 'valeB:y', '-b', '0', '--socket', socket]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /-b must be an integer in \[1, 8192\], got 0/);
  c.close();
  t.same(await d.stop(), { code: 0, signal: null });
});

t.test('bridge op over the control socket: counter events, both directions, stop', async (t) => {
  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket);
  const c = await ControlClient.connect(socket);
  t.teardown(() => c.close());
  const events: { event: string; counters?: { aToB: { frames: number }; bToA: { frames: number } } }[] = [];
  let onStart!: () => void;
  const started = new Promise<void>((r) => { onStart = r; });
  const s = c.stream<{ aToB: { frames: number }; bToA: { frames: number; bytes: number } }>('bridge', { a: 'valeA:x', b: 'valeB:y', intervalMs: 50, batch: 32 }, (ev) => {
    events.push(ev);
    if (ev.event === 'started') onStart();
  });
  await started;
  await t.rejects(c.request('bridge', { a: 'valeA:q', b: 'valeA:w' }), { code: 'ERR_BAD_ARG', message: /same bridge valeA: joining them would loop/ });
  // B to A this time, 100-byte frames.
  await c.stream('pktgen', { opts: { port: 'valeB:t', func: 'tx', count: 300, length: 100, batch: 32 } }, () => {}).done;
  // The job's counter events (every 50 ms) show when all 300 have crossed.
  await pollUntil('a counter event with 300 frames B to A', async () => (events.some((e) => (e.counters?.bToA.frames ?? 0) >= 300) ? true : undefined));
  await s.cancel();
  const fin = await s.done;
  t.equal(fin.bToA.frames, 300);
  t.equal(fin.bToA.bytes, 30000);
  t.equal(fin.aToB.frames, 0);
  t.ok(events.some((e) => e.event === 'counters' && e.counters), 'periodic counter events');
  t.equal(events[0].event, 'started');

  // A client that goes away: the daemon stops the jobs it started.
  const c2 = await ControlClient.connect(socket);
  await new Promise<void>((resolve) => {
    c2.stream('bridge', { a: 'valeC:x', b: 'valeD:y' }, (ev) => { if (ev.event === 'started') resolve(); });
  });
  t.equal((await c.request<{ jobs: number }>('ping')).jobs, 1);
  c2.close();
  const jobs = await pollUntil('the closed connection\'s job to stop', async () => {
    const n = (await c.request<{ jobs: number }>('ping')).jobs;
    return n === 0 ? n : undefined;
  });
  t.equal(jobs, 0, 'jobs of a closed connection are stopped');
  c.close();
  t.same(await d.stop(), { code: 0, signal: null });
});

t.test('bridge: errors are one line with a non-zero exit', async (t) => {
  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket);
  const cases: [string[], RegExp][] = [
    [['bridge', '-i', 'valeA:x', '--socket', socket], /^vswitch: give exactly two ports, as -i valeA:x -i valeB:y \(got 1\)/],
    [['bridge', '-i', 'valeA:x', '-i', 'valeB:y', '-i', 'valeC:z', '--socket', socket], /give exactly two ports.*\(got 3\)/],
    [['bridge', '--socket', socket], /^vswitch: Missing required argument: i/],
    [['bridge', '-i', 'valeA:x', '-i', 'valeB:y', '--frob', '--socket', socket], /^vswitch: Unknown argument: frob/],
    [['bridge', '-i', 'eth0', '-i', 'valeB:y', '--socket', socket], /^vswitch: invalid port name "eth0": port names are vale/],
    [['bridge', '-i', 'valeA:x', '-i', 'valeA:y', '--socket', socket], /^vswitch: valeA:x and valeA:y are on the same bridge valeA/],
    [['bridge', '-i', 'valeA:x', '-i', 'valeB:y', '--socket', socket + '.none'], /^vswitch: no vswitch serve is listening on .*\.none: start one with "vswitch serve"/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  results.forEach((r, i) => {
    const name = cases[i][0].join(' ');
    t.not(r.code, 0, `${name}: non-zero exit`);
    t.ok(oneLine(r.stderr), `${name}: one line: ${r.stderr}`);
    t.match(r.stderr, cases[i][1], name);
  });
  t.same(await d.stop(), { code: 0, signal: null });
});

t.test('runBridge from the library, on an embedded Switch', async (t) => {
  const sw = new Switch({ name: 'bridge-tool-test' });
  t.teardown(() => sw.close());
  const job = runBridge('valeA:x', 'valeB:y', { switch: sw.name, batch: 8 });
  await job.started;
  const a = await sw.open('valeA:a');
  const b = await sw.open('valeB:b');
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set([2, 0, 0, 0, 0, 0xa], 6);
  f[12] = 8;
  a.sendBatch(Array.from({ length: 20 }, () => f));
  let n = 0;
  const deadline = Date.now() + 3000;
  while (n < 20 && Date.now() < deadline) {
    while (b.recv()) n++;
    if (n < 20) await b.waitAsync(50);
  }
  t.equal(n, 20, 'frames crossed from valeA to valeB');
  const c = await job.stop();
  t.match(c, { a: 'valeA:x', b: 'valeB:y', aToB: { frames: 20, bytes: 1200, dropped: 0 }, bToA: { frames: 0 } });
  t.throws(() => runBridge('valeA:x', 'valeA:x'), { code: 'ERR_BAD_ARG' });
  t.throws(() => runBridge('eth0', 'valeA:x'), { code: 'ERR_BAD_NAME' });
  await a.close();
  await b.close();
  t.same(sw.list().flatMap((x) => x.ports.map((p) => p.name)), [], 'the bridge closed its ports');
});
