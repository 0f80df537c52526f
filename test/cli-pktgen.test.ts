// vswitch pkt-gen as a user runs it: against a real `vswitch serve`, and --embedded.
import t from 'tap';
import { runCli, spawnCli, startServe, tmpSocket, oneLine, pollUntil, rxReportedPackets, waitForPort } from './helpers/cli.js';

t.test('the two-shell demo: a receiver and a sender through vswitch serve', async (t) => {
  const { socket } = tmpSocket(t);
  // Big rings and a modest rate: the receiver Worker may be descheduled for a while on a busy
  // 2-core machine, and the ring must hold what arrives meanwhile.
  await startServe(t, socket, ['--ring-slots', '4096', '--max-ports', '16']);
  const rx = spawnCli(t, ['pkt-gen', '--socket', socket, '-i', 'vale-foo', '-T', '200']);
  await rx.waitFor(/Receiving from vale-foo/);
  await waitForPort(socket, 'vale-foo'); // the daemon's rx Worker has opened the port
  const tx = await runCli(['pkt-gen', '--socket', socket, '-i', 'vale-bar', '-f', 'tx', '-n', '20000', '-R', '40000'], { timeoutMs: 30000 });
  t.equal(tx.code, 0, tx.stderr);
  t.match(tx.stdout, /Sending on vale-bar/);
  t.match(tx.stdout, /Sent 20000 packets 1200000 bytes/);
  t.match(tx.stdout, /Speed: [\d.]+ [KM]pps Bandwidth:/);
  // The sender has exited, so the switch has delivered (or dropped) all it will: wait until the
  // receiver's interval reports add up to what reached its ring, then stop it.
  const delivered = (await waitForPort(socket, 'vale-foo')).rxFrames;
  await pollUntil(`the receiver's reports to reach ${delivered} frames`, async () => (rxReportedPackets(rx.stdout) >= delivered ? true : undefined));
  const end = await rx.stop('SIGINT');
  t.equal(end.code, 0, 'Ctrl-C ends the receiver cleanly');
  const m = rx.stdout.match(/Received (\d+) packets (\d+) bytes/);
  t.ok(m, rx.stdout);
  // Exact accounting: what the receiver got plus what the switch dropped (ring full while the
  // receiver Worker was descheduled on a busy machine) is what the sender sent.
  const dropped = Number(tx.stdout.match(/Dropped by the switch: (\d+)/)?.[1]);
  t.equal(Number(m![1]) + dropped, 20000, `received ${m![1]} + dropped ${dropped} = sent`);
  t.equal(Number(m![2]), Number(m![1]) * 60);
  if (dropped > 0) t.comment(`the receiver fell behind: ${dropped} frames dropped and counted`);
});

t.test('txseq/rxseq: no reordering, and every sequence gap is a counted drop', async (t) => {
  const { socket } = tmpSocket(t);
  await startServe(t, socket, ['--ring-slots', '4096', '--max-ports', '16']);
  const rx = spawnCli(t, ['pkt-gen', '--socket', socket, '-i', 'vale1:rx', '-f', 'rxseq', '--json', '-T', '100']);
  await waitForPort(socket, 'vale1:rx');
  const tx = await runCli(['pkt-gen', '--socket', socket, '-i', 'vale1:tx', '-f', 'txseq', '-n', '20000', '-R', '40000', '--json'], { timeoutMs: 30000 });
  t.equal(tx.code, 0, tx.stderr);
  const txFin = tx.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((r) => r.kind === 'final');
  const delivered = (await waitForPort(socket, 'vale1:rx')).rxFrames;
  const reported = () => rx.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).reduce((n, r) => n + (r.kind === 'interval' ? r.packets : 0), 0);
  await pollUntil(`the receiver's reports to reach ${delivered} frames`, async () => (reported() >= delivered ? true : undefined));
  await rx.stop('SIGINT');
  const reports = rx.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const fin = reports.find((r) => r.kind === 'final');
  t.ok(fin, 'a final JSON report');
  t.equal(txFin.packets, 20000);
  t.equal(fin.reordered, 0, 'nothing out of order');
  t.equal(fin.lost, txFin.dropped, 'every sequence gap is a frame the switch dropped and counted');
  t.equal(fin.packets + fin.lost, 20000, 'received + lost = sent');
  if (fin.lost > 0) t.comment(`the receiver fell behind on this busy machine: ${fin.lost} frames dropped and counted`);
});

t.test('ping/pong prints round-trip times', async (t) => {
  const { socket } = tmpSocket(t);
  await startServe(t, socket);
  const pong = spawnCli(t, ['pkt-gen', '--socket', socket, '-i', 'vale2:pong', '-f', 'pong']);
  await waitForPort(socket, 'vale2:pong');
  const ping = await runCli(['pkt-gen', '--socket', socket, '-i', 'vale2:ping', '-f', 'ping', '-n', '200'], { timeoutMs: 30000 });
  t.equal(ping.code, 0, ping.stderr);
  const m = ping.stdout.match(/RTT: (\d+) round trips, min ([\d.]+) av ([\d.]+) p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+) us, (\d+) lost/);
  t.ok(m, ping.stdout);
  t.equal(Number(m![1]) + Number(m![7]), 200, 'every ping answered or counted lost');
  t.ok(Number(m![1]) >= 190, 'nearly all answered');
  t.ok(Number(m![2]) > 0 && Number(m![2]) <= Number(m![4]), 'min ≤ p50');
  await pong.stop('SIGINT');
  t.match(pong.stdout, /Answered \d+ packets/);
});

t.test('--embedded runs several ports in one process', async (t) => {
  const r = await runCli(['pkt-gen', '--embedded', '-i', 'vale0:rx', '-f', 'rx', '-i', 'vale0:tx', '-f', 'tx', '-n', '20000', '-R', '50000', '-l', '128'], { timeoutMs: 30000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /vale0:tx tx: Sent 20000 packets 2560000 bytes/);
  const got = Number(r.stdout.match(/vale0:rx rx: Received (\d+) packets/)?.[1]);
  const dropped = Number(r.stdout.match(/Dropped by the switch: (\d+)/)?.[1]);
  t.equal(got + dropped, 20000, `received ${got} + dropped ${dropped} = sent`);
});

t.test('bad input gives one line and a non-zero exit', async (t) => {
  const { socket } = tmpSocket(t);
  const cases: [string[], RegExp][] = [
    [['pkt-gen', '--embedded', '-i', 'vale0:a', '-f', 'bogus'], /unknown function -f bogus/],
    [['pkt-gen', '--embedded', '-i', 'eth0'], /start with "vale"/],
    [['pkt-gen', '--embedded', '-i', 'vale0:a', '-f', 'tx', '-l', '20'], /frame length -l must be an integer from 42/],
    [['pkt-gen', '--embedded', '-i', 'vale0:a', '-f', 'tx', '-s', '10.0.0.300'], /10\.0\.0\.300/],
    [['pkt-gen', '--socket', socket, '-i', 'vale0:a'], /no vswitch serve is listening on .*start one with "vswitch serve"/],
    [['pkt-gen', '-i', 'vale0:a', '--no-such-flag'], /Unknown argument/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args);
    t.not(r.code, 0, args.join(' '));
    t.match(r.stderr, re, args.join(' '));
    t.ok(oneLine(r.stderr), `one line: ${r.stderr}`);
  }
});
