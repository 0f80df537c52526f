// vswitch bench --peers: vswitch and its peers measured in the same run, on the same scenario
// and against the same copy bound. Checks that every system moved frames, never how fast.
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { needPackages, requireOrSkip } from './helpers/interop.js';

// vde2 is installed as root (a failed install fails the test); skipped only where it cannot be.
const vdeMissing = needPackages(['vde2'], ['vde_switch', 'vde_plug']);
const haveVde = !vdeMissing;

interface Result { system: string; scenario: string; frameSize: number; mpps: number; gbps: number; refMpps: number; copyBoundMpps: number; ratio: number; speedup?: number; trials: unknown[] }

t.test('--peers --scenario 1to1-60: vswitch, postmessage and vde_switch side by side', async (t) => {
  const r = await runCli(['bench', '--peers', '--scenario', '1to1-60', '--trials', '1', '--duration', '0.5', '--warmup', '0.2', '--json'], { timeoutMs: 60000 });
  t.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { results: Result[]; peers: { systems: { system: string }[]; skipped: { system: string; reason: string }[] } };
  const by = new Map(doc.results.map((x) => [x.system, x]));
  const vs = by.get('vswitch');
  t.ok(vs && vs.mpps > 0, `vswitch moved frames (${vs?.mpps} Mpps)`);
  const expected = ['postmessage', 'postmessage-1', ...(haveVde ? ['vde_switch'] : [])];
  for (const sys of expected) {
    const p = by.get(sys);
    t.ok(p, `a ${sys} result`);
    if (!p) continue;
    t.equal(p.scenario, '1to1-60');
    t.equal(p.frameSize, 60);
    t.ok(p.mpps > 0, `${sys} moved frames (${p.mpps} Mpps)`);
    t.equal(p.refMpps, vs!.refMpps, `${sys} is compared with the same trial's reference path`);
    t.equal(p.copyBoundMpps, vs!.copyBoundMpps, `${sys} and the same trial's copy bound`);
    t.ok(Math.abs(p.ratio - p.mpps / p.refMpps) < 1e-9, `${sys} ratio = mpps / reference`);
    t.ok(Math.abs(p.speedup! - vs!.mpps / p.mpps) < 1e-9, `${sys} speedup = vswitch / ${sys}`);
    t.equal(p.trials.length, 1);
  }
  if (haveVde) {
    t.notOk(doc.peers.skipped.some((s) => s.system === 'vde_switch'), 'vde_switch was not skipped');
  } else {
    const s = doc.peers.skipped.find((x) => x.system === 'vde_switch');
    t.match(s?.reason, /vde_switch not found/, 'the skip is reported with its reason');
    t.match(r.stderr, /--peers: vde_switch skipped: /, 'and printed');
    requireOrSkip(t, 'the vde_switch result', vdeMissing!);
  }
});
