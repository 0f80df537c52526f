// VLANs, mirrors and ageing through the public API, `vswitch ctl` and the serve config file.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Switch } from '../src/index.js';
import { runCli, startServe, tmpSocket, oneLine } from './helpers/cli.js';

function frame(dst: number[], src: number[], tag: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0); f.set(src, 6); f[12] = 8; f[14] = tag;
  return f;
}
const BCAST = [255, 255, 255, 255, 255, 255];

t.test('library: VLAN access ports confine flooding; a mirror sees a port both ways; ageing is set', async (t) => {
  const sw = new Switch({ name: 'feat1' });
  t.teardown(() => sw.close());
  const a = await sw.open('vale0:a');
  const b = await sw.open('vale0:b');
  const c = await sw.open('vale0:c');
  const mon = await sw.open('vale0:mon');
  sw.setVlan('vale0:a', { mode: 'access', vlan: 10 });
  sw.setVlan('vale0:b', { mode: 'access', vlan: 10 });
  sw.setVlan('vale0:c', { mode: 'access', vlan: 20 });
  sw.setMirror('vale0:mon', { tx: ['vale0:a'], rx: ['vale0:a'] });
  a.send(frame(BCAST, [2, 0, 0, 0, 0, 1], 1));
  t.equal(b.recv()?.[14], 1, 'same VLAN');
  t.equal(c.recv(), null, 'other VLAN: nothing');
  b.send(frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 2));
  t.equal(a.recv()?.[14], 2);
  t.equal(mon.recv()?.[14], 1, 'mirror: what a sent');
  t.equal(mon.recv()?.[14], 2, 'mirror: what a received');
  t.same(sw.list()[0].ports.find((p) => p.name === 'vale0:c')?.vlan, { mode: 'access', vlan: 20 });
  t.equal(sw.list()[0].ports.find((p) => p.name === 'vale0:mon')?.mirror, true);
  t.throws(() => sw.setVlan('vale0:a', { mode: 'access', vlan: 5000 }), { code: 'ERR_BAD_VLAN', message: /1 to 4094/ });
  t.throws(() => sw.setVlan('vale0:zz', { mode: 'none' }), { code: 'ERR_NO_PORT' });
  sw.setAgeing('vale0', 42);
  t.equal(sw.list()[0].ageing, 42);
  t.throws(() => sw.setAgeing('vale0', -1), { code: 'ERR_BAD_OPTION' });
  for (const p of [a, b, c, mon]) await p.close();
});

t.test('ctl vlan, mirror and ageing; the config file declares them', async (t) => {
  const { dir, socket } = tmpSocket(t);
  const cfg = join(dir, 'cfg.json');
  writeFileSync(cfg, JSON.stringify({
    bridges: { vale0: { maxPorts: 8, ageing: 60 } },
    ports: ['vale0:p1', 'vale0:up', 'vale0:mon'],
    vlans: { 'vale0:p1': { mode: 'access', vlan: 10 }, 'vale0:up': { mode: 'trunk', vlans: [10, 20], native: 30 } },
    mirrors: { 'vale0:mon': { tx: ['vale0:p1'] } },
  }));
  await startServe(t, socket, ['--config', cfg]);
  const list = JSON.parse((await runCli(['ctl', 'list', '--json', '--socket', socket])).stdout);
  const ports = Object.fromEntries(list[0].ports.map((p: { name: string }) => [p.name, p]));
  t.same(ports['vale0:p1'].vlan, { mode: 'access', vlan: 10 });
  t.same(ports['vale0:up'].vlan, { mode: 'trunk', vlans: [10, 20], native: 30 });
  t.equal(ports['vale0:mon'].mirror, true);
  t.equal(list[0].ageing, 60);
  let r = await runCli(['ctl', 'vlan', 'vale0:p1', '--trunk', '10,11', '--socket', socket]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /vale0:p1: trunk 10,11/);
  r = await runCli(['ctl', 'mirror', 'vale0:mon', '--off', '--socket', socket]);
  t.equal(r.code, 0, r.stderr);
  r = await runCli(['ctl', 'ageing', 'vale0', '0', '--socket', socket]);
  t.match(r.stdout, /MAC ageing off/);
  const again = JSON.parse((await runCli(['ctl', 'list', '--json', '--socket', socket])).stdout);
  const p2 = Object.fromEntries(again[0].ports.map((p: { name: string }) => [p.name, p]));
  t.same(p2['vale0:p1'].vlan, { mode: 'trunk', vlans: [10, 11] });
  t.equal(p2['vale0:mon'].mirror, false);
  t.equal(again[0].ageing, 0);
  for (const [args, re] of [
    [['ctl', 'vlan', 'vale0:p1', '--access', '5000'], /not a VLAN id from 1 to 4094/],
    [['ctl', 'vlan', 'vale0:p1'], /exactly one of --access/],
    [['ctl', 'vlan', 'vale0:nope', '--none'], /no port named vale0:nope/],
    [['ctl', 'mirror', 'vale0:mon'], /give --tx\/--rx ports/],
    [['ctl', 'ageing', 'vale0', '-5'], /whole number of seconds/],
  ] as [string[], RegExp][]) {
    const e = await runCli([...args, '--socket', socket]);
    t.not(e.code, 0, args.join(' '));
    t.match(e.stderr, re, args.join(' '));
    t.ok(oneLine(e.stderr));
  }
  writeFileSync(cfg, JSON.stringify({ ports: ['vale0:a'], vlans: { 'vale0:b': { mode: 'access', vlan: 1 } } }));
  const bad = await runCli(['serve', '--socket', join(dir, 'other.sock'), '--config', cfg]);
  t.not(bad.code, 0);
  t.match(bad.stderr, /vlans\.vale0:b: port vale0:b is not in "ports"/);
});
