// TAP devices in two network namespaces, attached to one bridge, ping each other (root + socat,
// installed with apt-get when missing; a failed install fails the test).
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { Switch } from '../src/index.js';
import { attachTap } from '../src/adapters/index.js';
import { needPackages, needRoot, skipFor } from './helpers/interop.js';
import { runCli, startServe, tmpSocket } from './helpers/cli.js';

const sh = (cmd: string[]) => spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
const skip = skipFor(t, 'TAP devices in namespaces',
  needRoot('TAP devices and network namespaces') ?? needPackages(['socat', 'iproute2', 'iputils-ping'], ['socat', 'ip', 'ping']));

t.test('two namespaces with TAP devices ping through the switch', { skip }, async (t) => {
  const id = process.pid % 100000;
  const nsA = `vtap-a-${id}`;
  const nsB = `vtap-b-${id}`;
  for (const ns of [nsA, nsB]) {
    t.equal(sh(['ip', 'netns', 'add', ns]).status, 0, `netns ${ns}`);
    t.teardown(() => { sh(['ip', 'netns', 'del', ns]); });
  }
  const sw = new Switch({ name: 'taptest' });
  t.teardown(() => sw.close());
  const a = await attachTap(sw, 'vale0:ta', { name: `vta${id}`, netns: nsA });
  const b = await attachTap(sw, 'vale0:tb', { name: `vtb${id}`, netns: nsB });
  t.teardown(async () => { await a.close(); await b.close(); });
  // The devices exist, by the names asked for, inside the namespaces asked for (and not here).
  t.match(sh(['ip', '-n', nsA, '-o', 'link', 'show', `vta${id}`]).stdout, new RegExp(`: vta${id}: `), 'vta device in namespace a');
  t.match(sh(['ip', '-n', nsB, '-o', 'link', 'show', `vtb${id}`]).stdout, new RegExp(`: vtb${id}: `), 'vtb device in namespace b');
  t.not(sh(['ip', 'link', 'show', `vta${id}`]).status, 0, 'not in the test\'s own namespace');
  sh(['ip', '-n', nsA, 'addr', 'add', '192.168.77.1/24', 'dev', `vta${id}`]);
  sh(['ip', '-n', nsB, 'addr', 'add', '192.168.77.2/24', 'dev', `vtb${id}`]);
  for (const ns of [nsA, nsB]) sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
  // Asynchronously: the adapters run on this thread's event loop.
  const ping = await promisify(execFile)('ip', ['netns', 'exec', nsA, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '192.168.77.2'], { encoding: 'utf8' })
    .catch((e: { stdout?: string; stderr?: string }) => ({ stdout: `${e.stdout ?? ''}${e.stderr ?? ''}`, stderr: '' }));
  t.match(ping.stdout, /3 packets transmitted, 3 received/);
  t.ok(a.stats().rxFrames >= 4, 'ARP and echo requests came in from the TAP device');
  t.ok(b.stats().txFrames >= 4, 'and went out to the other one');
  t.same(sw.fdb('vale0').map((e) => e.portName).sort(), ['vale0:ta', 'vale0:tb']);
  await t.rejects(attachTap(sw, 'vale0:tc', { name: 'bad name!' }), { message: /1 to 15 characters/ });
});

t.test('the same through vswitch serve: ctl attach --tap --netns, ping, ctl detach', { skip }, async (t) => {
  const id = (process.pid + 7) % 100000;
  const ns = [`vctap-a-${id}`, `vctap-b-${id}`];
  const dev = [`vca${id}`, `vcb${id}`];
  for (const n of ns) {
    t.equal(sh(['ip', 'netns', 'add', n]).status, 0, `netns ${n}`);
    t.teardown(() => { sh(['ip', 'netns', 'del', n]); });
  }
  const { socket } = tmpSocket(t);
  const d = await startServe(t, socket);
  const ctl = (...a: string[]) => runCli(['ctl', ...a, '--socket', socket]);
  for (const i of [0, 1]) {
    const r = await ctl('attach', `vale0:t${i}`, '--tap', dev[i], '--netns', ns[i]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, new RegExp(`attached tap to vale0:t${i}`));
    t.match(sh(['ip', '-n', ns[i], '-o', 'link', 'show', dev[i]]).stdout, new RegExp(`: ${dev[i]}: .*UP`), `${dev[i]} is up in ${ns[i]}`);
    sh(['ip', 'netns', 'exec', ns[i], 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    t.equal(sh(['ip', '-n', ns[i], 'addr', 'add', `192.168.78.${i + 1}/24`, 'dev', dev[i]]).status, 0);
  }
  const ping = await promisify(execFile)('ip', ['netns', 'exec', ns[0], 'ping', '-c', '3', '-i', '0.2', '-W', '2', '192.168.78.2'], { encoding: 'utf8' })
    .catch((e: { stdout?: string; stderr?: string }) => ({ stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` }));
  t.match(ping.stdout, /3 packets transmitted, 3 received/, 'namespace a pings namespace b through the daemon');
  const ad = JSON.parse((await ctl('adapters', '--json')).stdout) as { port: string; kind: string; rxFrames: number; txFrames: number; thread?: number; drops: Record<string, number> }[];
  t.same(ad.map((a) => [a.port, a.kind]), [['vale0:t0', 'tap'], ['vale0:t1', 'tap']]);
  t.ok(ad[0].thread! > 0 && ad[1].thread! > 0 && ad[0].thread !== ad[1].thread, `serve runs each TAP adapter in a Worker of its own (threads ${ad.map((a) => a.thread).join(', ')})`);
  t.equal(ad[0].drops.kernelQueue, 0, 'its socket\'s kernel queue drops are read too (none here)');
  t.ok(ad.every((a) => a.rxFrames >= 4 && a.txFrames >= 4), `ARP and echoes both ways (${ad.map((a) => `${a.rxFrames}/${a.txFrames}`).join(', ')})`);
  for (const i of [0, 1]) {
    const r = await ctl('detach', `vale0:t${i}`);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, new RegExp(`detached tap from vale0:t${i}`));
  }
  t.not(sh(['ip', '-n', ns[0], 'link', 'show', dev[0]]).status, 0, 'the TAP device is gone after detach');
  t.same(await d.stop(), { code: 0, signal: null });
});
