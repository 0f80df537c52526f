// vswitch ctl as a subprocess against a real vswitch serve: create/list/fdb/stats/remove
// round trip, and one-line errors for bad flags, bad names and a missing daemon.
import t from 'tap';
import { ControlClient } from '../src/apps/daemon/control-client.js';
import { oneLine, runCli, startServe, tmpSocket } from './helpers/cli.js';

const NO_DAEMON = (p: string) =>
  `vswitch: no vswitch serve is listening on ${p}: start one with "vswitch serve" (or pass --socket PATH / set VSWITCH_SOCKET)\n`;

t.test('ctl create/list/fdb/stats/remove round trip', async (t) => {
  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket);
  const ctl = (...args: string[]) => runCli(['ctl', ...args, '--socket', socket]);

  const r = await ctl('list');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^no bridges/);

  const c1 = await ctl('create', 'valeA:t');
  const c2 = await ctl('create', 'valeA:u');
  t.equal(c1.code, 0, c1.stderr);
  t.equal(c1.stdout, 'created persistent port valeA:t on bridge valeA\n');
  t.equal(c2.code, 0, c2.stderr);

  // Traffic from valeA:t with a known source MAC, through the daemon (pkt-gen's op).
  const c = await ControlClient.connect(socket);
  t.teardown(() => c.close());
  const [dup, tx] = await Promise.all([
    ctl('create', 'valeA:t'),
    c.stream<{ packets: number }>('pktgen', { opts: { port: 'valeA:t', func: 'tx', count: 500, srcMac: '02:00:00:00:00:aa', batch: 64 } }, () => {}).done,
  ]);
  t.equal(dup.code, 1);
  t.equal(dup.stderr, 'vswitch: port valeA:t already exists\n');
  t.equal(tx.packets, 500);

  const [list, listJ, fdb, fdbJ, stats, statsOne, statsAll] = await Promise.all([
    ctl('list'), ctl('list', '--json'), ctl('fdb', 'valeA'), ctl('fdb', 'valeA', '--json'),
    ctl('stats', 'valeA:t', '--json'), ctl('stats', 'valeA:u'), ctl('stats'),
  ]);
  for (const x of [list, listJ, fdb, fdbJ, stats, statsOne, statsAll]) t.equal(x.code, 0, x.stderr);
  t.match(list.stdout, /^BRIDGE\s+PORTS\s+MAX_PORTS\s+MACS\s+AGEING\nvaleA\s+2\s+254\s+1\s+300s\n/);
  t.match(list.stdout, /\nBRIDGE\s+PORT\s+IDX\s+STATE\s+PERSISTENT\s+RX_FRAMES\s+RX_BYTES\s+TX_FRAMES\s+TX_BYTES\s+DROPS\n/);
  t.match(list.stdout, /valeA\s+valeA:t\s+0\s+active\s+yes\s+0\s+0\s+500\s+30000\s+0\n/);
  t.match(list.stdout, /valeA\s+valeA:u\s+1\s+active\s+yes\s+500\s+30000\s+0\s+0\s+0\n/);
  const lj = JSON.parse(listJ.stdout) as { name: string; ports: { name: string; counters: { txFrames: number } }[] }[];
  t.same(lj.map((b) => [b.name, b.ports.map((p) => [p.name, p.counters.txFrames])]), [['valeA', [['valeA:t', 500], ['valeA:u', 0]]]]);
  t.match(fdb.stdout, /^MAC\s+VLAN\s+PORT\s+AGE\n02:00:00:00:00:aa\s+-\s+valeA:t\s+\d+s\n$/);
  t.match(JSON.parse(fdbJ.stdout), [{ mac: '02:00:00:00:00:aa', portName: 'valeA:t' }]);
  t.match(JSON.parse(stats.stdout), { name: 'valeA:t', bridge: 'valeA', persistent: true, counters: { txFrames: 500, txBytes: 30000 } });
  t.match(statsOne.stdout, /^valeA:u \(bridge valeA, slot 1, persistent\)\n/);
  t.match(statsOne.stdout, /\n  rxFrames\s+500\n/);
  t.match(statsAll.stdout, /^PORT\s+RX_FRAMES\s+RX_BYTES\s+TX_FRAMES\s+TX_BYTES\s+FLOODED\s+DROPS\n/);
  t.match(statsAll.stdout, /\nvaleA:t\s+0\s+0\s+500\s+30000\s+\d+\s+0\n/);

  const rm = await ctl('remove', 'valeA:t');
  t.equal(rm.code, 0, rm.stderr);
  t.equal(rm.stdout, 'removed port valeA:t\n');
  const [rmAgain, after, fdbAfter, noPort, ping] = await Promise.all([
    ctl('remove', 'valeA:t'), ctl('list', '--json'), ctl('fdb', 'valeA', '--json'), ctl('stats', 'valeA:zz'), ctl('ping', '--json'),
  ]);
  t.equal(rmAgain.code, 1);
  t.match(rmAgain.stderr, /^vswitch: no port named valeA:t\n$/);
  const bridges = JSON.parse(after.stdout) as { ports: { name: string }[] }[];
  t.same(bridges.flatMap((b) => b.ports.map((p) => p.name)), ['valeA:u']);
  t.same(JSON.parse(fdbAfter.stdout), [], 'entries of a removed port go with it');
  t.equal(noPort.code, 1);
  t.match(noPort.stderr, /^vswitch: no port named valeA:zz; ports: valeA:u\n$/);
  t.match(JSON.parse(ping.stdout), { pid: d.pid, socket, jobs: 0 });
  c.close();
  t.same(await d.stop(), { code: 0, signal: null });
});

t.test('ctl: bad flags, bad names, missing daemon: one line on stderr, non-zero exit', async (t) => {
  const { socket } = tmpSocket(t);
  const cases: [string[], RegExp | string, Record<string, string>?][] = [
    [['ctl', 'list', '--bogus', '--socket', socket], /^vswitch: Unknown argument: bogus/],
    [['ctl', 'frobnicate', '--socket', socket], /^vswitch: Unknown command: frobnicate/],
    [['ctl'], /^vswitch: Give a ctl command: list, create, remove, fdb, stats, vlan, mirror, ageing, attach, detach, adapters, guest-start, guest-stop, guests or ping/],
    [['ctl', 'create', '--socket', socket], /^vswitch: Not enough non-option arguments/],
    [['ctl', 'create', 'eth0', '--socket', socket], /^vswitch: invalid port name "eth0": port names are vale<bridge>:<port> \(or vale<name> for the default bridge\)/],
    [['ctl', 'remove', 'vale0:a:b', '--socket', socket], /^vswitch: invalid port name "vale0:a:b": port names are vale/],
    [['ctl', 'stats', 'vale0:' + 'x'.repeat(20), '--socket', socket], /^vswitch: invalid port name .*at most 15 characters/],
    [['ctl', 'fdb', 'br0', '--socket', socket], /^vswitch: invalid bridge name "br0": bridge names start with "vale"/],
    [['ctl', 'list', '--socket', socket], NO_DAEMON(socket)],
    [['ctl', 'create', 'vale0:p', '--socket', socket], NO_DAEMON(socket)],
    [['ctl', 'ping'], NO_DAEMON(socket), { VSWITCH_SOCKET: socket }],
    [['ctl', 'stats', '--socket', '/nonexistent/dir/vs.sock'], NO_DAEMON('/nonexistent/dir/vs.sock')],
    [['serve', '--socket', '/tmp/' + 'x'.repeat(120)], /^vswitch: socket path .* over the 107-byte limit/],
    [['serve', '--bogus'], /^vswitch: Unknown argument: bogus/],
    [['serve', '--max-ports', '0', '--socket', socket], /^vswitch: --max-ports must be an integer in \[1, 254\]/],
  ];
  const results = await Promise.all(cases.map(([args, , env]) => runCli(args, { env })));
  results.forEach((r, i) => {
    const [args, want] = cases[i];
    const name = args.join(' ');
    t.not(r.code, 0, `${name}: non-zero exit`);
    t.ok(oneLine(r.stderr), `${name}: one line: ${r.stderr}`);
    if (typeof want === 'string') t.equal(r.stderr, want, name);
    else t.match(r.stderr, want, name);
    t.equal(r.stdout, '', `${name}: nothing on stdout`);
  });
});

t.test('ctl vlan --access/--trunk/--native/--none and ctl mirror --tx/--rx/--off: configured, and traffic obeys', async (t) => {
  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket);
  const ctl = (...args: string[]) => runCli(['ctl', ...args, '--socket', socket]);
  for (const p of ['vale0:a', 'vale0:b', 'vale0:c', 'vale0:m']) t.equal((await ctl('create', p)).code, 0);
  const steps: [string[], string][] = [
    [['vlan', 'vale0:a', '--access', '10'], 'vale0:a: access VLAN 10\n'],
    [['vlan', 'vale0:b', '--trunk', '10,20', '--native', '30'], 'vale0:b: trunk 10,20 native 30\n'],
    [['vlan', 'vale0:c', '--access', '20'], 'vale0:c: access VLAN 20\n'],
    [['mirror', 'vale0:m', '--tx', 'vale0:a', '--rx', 'vale0:a'], ''],
  ];
  for (const [args, out] of steps) {
    const r = await ctl(...args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    if (out) t.equal(r.stdout, out);
  }
  type P = { name: string; vlan: Record<string, unknown>; mirror: boolean };
  const ports = async () => new Map((JSON.parse((await ctl('list', '--json')).stdout) as { ports: P[] }[])[0].ports.map((p) => [p.name, p]));
  let pm = await ports();
  t.same(pm.get('vale0:a')!.vlan, { mode: 'access', vlan: 10 });
  t.match(pm.get('vale0:b')!.vlan, { mode: 'trunk', vlans: [10, 20], native: 30 });
  t.equal(pm.get('vale0:m')!.mirror, true, 'vale0:m is a mirror');
  // 50 broadcasts from a (VLAN 10): b (trunk with 10) gets them, c (VLAN 20) does not, m mirrors them.
  const c = await ControlClient.connect(socket);
  t.teardown(() => c.close());
  const tx = await c.stream<{ packets: number }>('pktgen', { opts: { port: 'vale0:a', func: 'tx', count: 50, batch: 10 } }, () => {}).done;
  t.equal(tx.packets, 50);
  const rx = async (p: string) => (await c.request<{ counters: { rxFrames: number } }>('stats', { port: p })).counters.rxFrames;
  t.same([await rx('vale0:b'), await rx('vale0:c'), await rx('vale0:m')], [50, 0, 50], 'b: 50 (VLAN 10 on its trunk), c: 0 (VLAN 20), m: 50 (mirror of a)');
  // Undo both.
  for (const args of [['vlan', 'vale0:a', '--none'], ['vlan', 'vale0:b', '--none'], ['vlan', 'vale0:c', '--none'], ['mirror', 'vale0:m', '--off']]) {
    const r = await ctl(...args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  pm = await ports();
  t.same([...pm.values()].map((p) => [p.name, p.vlan.mode, p.mirror]), [
    ['vale0:a', 'none', false], ['vale0:b', 'none', false], ['vale0:c', 'none', false], ['vale0:m', 'none', false],
  ], 'every port VLAN-unaware, no mirror');
  await c.stream('pktgen', { opts: { port: 'vale0:a', func: 'tx', count: 50, batch: 10 } }, () => {}).done;
  t.same([await rx('vale0:b'), await rx('vale0:c'), await rx('vale0:m')], [100, 50, 100], 'now the broadcasts reach every port (m as a plain port)');
  c.close();
  t.same(await d.stop(), { code: 0, signal: null });
});
