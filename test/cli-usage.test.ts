// The vswitch command's surface: --help lists every subcommand (and ctl --help every ctl
// subcommand), exit codes (0 ok, 1 a failure, 2 a usage error), the default control socket
// path, and serve --max-bridges.
import t from 'tap';
import { join } from 'node:path';
import { commands } from '../cli/commands/index.js';
import { CONTROL_OPS } from '../src/apps/daemon/index.js';
import { oneLine, runCli, spawnCli, startServe, tmpSocket, READY_RE } from './helpers/cli.js';

const names = commands.map((c) => String(c.command).split(' ')[0]);

t.test('vswitch --help lists every subcommand, and each has its own --help', async (t) => {
  t.ok(names.length >= 6, `the registered commands: ${names.join(', ')}`);
  const r = await runCli(['--help']);
  t.equal(r.code, 0, r.stderr);
  for (const n of names) t.match(r.stdout, new RegExp(`^  vswitch ${n} `, 'm'), `--help lists ${n}`);
  for (const n of names) {
    const h = await runCli([n, '--help']);
    t.equal(h.code, 0, `${n} --help exits 0`);
    t.match(h.stdout, new RegExp(`^vswitch ${n}`, 'm'), `${n} --help prints its usage`);
    t.match(h.stdout, /--help/, `${n} --help lists its options`);
  }
});

t.test('vswitch ctl --help lists a subcommand for every control op a user runs through ctl', async (t) => {
  // capture, pktgen and bridge have commands of their own; stop and shutdown are used by those
  // commands and by serve's clients, not typed by hand.
  const own = new Set(['capture', 'pktgen', 'bridge', 'stop', 'shutdown']);
  const ctlOps = CONTROL_OPS.filter((op) => !own.has(op));
  const r = await runCli(['ctl', '--help']);
  t.equal(r.code, 0, r.stderr);
  const section = r.stdout.slice(r.stdout.indexOf('Commands:'), r.stdout.indexOf('Options:'));
  const listed = [...section.matchAll(/^ {2}vswitch ctl ([\w-]+)/gm)].map((m) => m[1]);
  t.same([...listed].sort(), [...ctlOps].sort(), `ctl --help lists: ${listed.join(' ')}`);
  const h = await runCli(['ctl', 'vlan', '--help']);
  t.equal(h.code, 0, 'a ctl subcommand has its own --help');
  t.match(h.stdout, /--access/, 'with its options');
});

t.test('exit codes: 2 for a usage error, 1 for a failure, 0 for success; one line on stderr', async (t) => {
  const { socket } = tmpSocket(t);
  const usage: string[][] = [
    [],
    ['bogus'],
    ['ctl', 'bogus', '--socket', socket],
    ['pkt-gen', '--embedded', '-i', 'vale0:a', '--no-such-flag'],
    ['capture', '--socket', socket],
    ['bridge', '-i', 'valeA:x', '-i', 'valeB:y', '-b'],
  ];
  for (const args of usage) {
    const r = await runCli(args);
    t.equal(r.code, 2, `usage error, exit 2: vswitch ${args.join(' ')}`);
    t.match(r.stderr, /^vswitch: .*\(run "vswitch --help" or "vswitch <command> --help"\)\n$/, 'says where the help is');
    t.ok(oneLine(r.stderr), `one line: ${r.stderr.trim()}`);
  }
  const failures: string[][] = [
    ['ctl', 'ping', '--socket', socket], // no daemon
    ['pkt-gen', '--embedded', '-i', 'eth0'], // a bad port name: valid usage, refused value
    ['capture', '-i', 'vale0:a', '-w', join(socket, 'x.pcap'), '--socket', socket],
  ];
  for (const args of failures) {
    const r = await runCli(args);
    t.equal(r.code, 1, `failure, exit 1: vswitch ${args.join(' ')}`);
    t.ok(oneLine(r.stderr), `one line: ${r.stderr.trim()}`);
    t.notMatch(r.stderr, /vswitch --help/, 'not told to read the help: the usage was right');
  }
});

t.test('the default socket: $XDG_RUNTIME_DIR/vswitch/vswitch.sock, and $VSWITCH_SOCKET over it', async (t) => {
  const { dir } = tmpSocket(t);
  const env = { XDG_RUNTIME_DIR: dir };
  const d = spawnCli(t, ['serve'], { env });
  const m = await d.waitFor(READY_RE);
  t.equal(m[1], join(dir, 'vswitch', 'vswitch.sock'), 'serve without --socket listens on the XDG path');
  const ping = await runCli(['ctl', 'ping', '--json'], { env });
  t.equal(ping.code, 0, ping.stderr);
  t.equal(JSON.parse(ping.stdout).pid, Number(m[2]), 'ctl without --socket finds it');
  const create = await runCli(['ctl', 'create', 'vale0:p'], { env });
  t.equal(create.code, 0, create.stderr);
  // $VSWITCH_SOCKET wins over the XDG path: nothing listens there.
  const other = join(dir, 'other.sock');
  const viaEnv = await runCli(['ctl', 'ping'], { env: { ...env, VSWITCH_SOCKET: other } });
  t.equal(viaEnv.code, 1);
  t.match(viaEnv.stderr, new RegExp(`no vswitch serve is listening on ${other.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  t.same(await d.stop(), { code: 0, signal: null });
});

t.test('serve --max-bridges limits the bridges ctl can make', async (t) => {
  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket, ['--max-bridges', '2']);
  const ctl = (...a: string[]) => runCli(['ctl', ...a, '--socket', socket]);
  for (const p of ['vale0:a', 'vale1:a', 'vale1:b']) {
    const r = await ctl('create', p);
    t.equal(r.code, 0, `${p}: ${r.stderr}`);
  }
  const third = await ctl('create', 'vale2:a');
  t.equal(third.code, 1, 'a third bridge is refused');
  t.match(third.stderr, /already has 2 bridges \(the limit\)/);
  t.ok(oneLine(third.stderr));
  const list = JSON.parse((await ctl('list', '--json')).stdout) as { name: string }[];
  t.same(list.map((b) => b.name), ['vale0', 'vale1'], 'and not created');
  const bad = await runCli(['serve', '--socket', join(socket, '..', 'x.sock'), '--max-bridges', '0']);
  t.equal(bad.code, 1, '--max-bridges 0 is refused');
  t.ok(oneLine(bad.stderr), bad.stderr);
  t.same(await d.stop(), { code: 0, signal: null });
});
