// TAP devices in two network namespaces, attached to one bridge, ping each other (root + socat,
// installed with apt-get when missing; a failed install fails the test).
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { Switch, attachTap } from '../src/index.js';
import { needPackages, needRoot, skipFor } from './helpers/interop.js';

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
