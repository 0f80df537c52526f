// The test machinery checked on its own: the interop skip rule (test/helpers/interop.ts) with and
// without VSWITCH_REQUIRE_INTEROP=1, onceWithin's deadline, and .ci/tap-summary's verdicts on
// captured TAP logs (skips listed with reasons, "N skipped", the closing line, exit status).
import t from 'tap';
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { onceWithin } from './helpers/wait.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs the helpers in a child with `env`, recording what they do to a fake test. */
async function helpersWith(env: Record<string, string>): Promise<unknown[][]> {
  const script = `
    const m = await import(${JSON.stringify(join(ROOT, 'test/helpers/interop.ts'))});
    const log = [];
    const T = { fail: (x) => log.push(['fail', x]), pass: (x, e) => log.push(['skip', x, e.skip]), comment: (x) => log.push(['comment', x]) };
    log.push(['returned', m.skipFor(T, 'thing', { reason: 'not root', fatal: false })]);
    log.push(['returned', m.skipFor(T, 'broken', { reason: 'apt-get failed', fatal: true })]);
    log.push(['returned', m.skipFor(T, 'fine', null)]);
    m.requireOrSkip(T, 'part', 'no qemu');
    console.log(JSON.stringify(log));`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('VSWITCH_REQUIRE_INTEROP' in env)) delete childEnv.VSWITCH_REQUIRE_INTEROP;
  const { stdout } = await run(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { env: childEnv, cwd: ROOT, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as unknown[][];
}

t.test('interop helpers: skip with the reason; fail when setup broke or VSWITCH_REQUIRE_INTEROP=1', async (t) => {
  const plain = await helpersWith({});
  t.same(plain, [
    ['comment', 'skipping thing: not root'], ['returned', 'thing: not root'],
    ['fail', 'broken: apt-get failed (setup failed on a machine that can run it)'], ['returned', 'broken: apt-get failed'],
    ['returned', false],
    ['skip', 'part', 'no qemu'],
  ], 'without the variable: a skip with its reason, but a broken setup fails');
  const required = await helpersWith({ VSWITCH_REQUIRE_INTEROP: '1' });
  t.same(required.filter((x) => x[0] === 'fail').map((x) => x[1]), [
    'thing: not root (VSWITCH_REQUIRE_INTEROP=1: every interop test must run)',
    'broken: apt-get failed (setup failed on a machine that can run it)',
    'part: no qemu (VSWITCH_REQUIRE_INTEROP=1: every interop test must run)',
  ], 'with VSWITCH_REQUIRE_INTEROP=1 every skip is a failure');
  t.notOk(required.some((x) => x[0] === 'skip'), 'and nothing is merely skipped');
});

t.test('onceWithin resolves with the event, rejects on timeout and on error', async (t) => {
  const e = new EventEmitter();
  setImmediate(() => e.emit('x', 1, 2));
  t.same(await onceWithin(e, 'x', 1000), [1, 2]);
  await t.rejects(onceWithin(e, 'never', 30), { message: /no 'never' within 30 ms/ });
  setImmediate(() => e.emit('error', new Error('boom')));
  await t.rejects(onceWithin(e, 'x', 1000), { message: 'boom' });
  t.equal(e.listenerCount('x') + e.listenerCount('error'), 0, 'no listeners left behind');
});

t.test('.ci/tap-summary: skips listed with reasons, "N skipped", the closing line, the exit status', async (t) => {
  const dir = t.testdir({});
  const log = (name: string, text: string) => { const f = join(dir, name); writeFileSync(f, text); return f; };
  const withSkips = log('skips.log', [
    'TAP version 14', '1..2',
    '# Subtest: test/a.test.ts',
    '    ok 1 - kernel vxlan # SKIP kernel vxlan in namespaces: needs root (network namespaces)',
    '    # Subtest: capture',
    '        ok 1 - frames', '        ok 2 - tshark reads the capture # SKIP tshark checks: not root',
    '        1..2', '    ok 2 - capture', '    1..2',
    'ok 1 - test/a.test.ts', 'ok 2 - test/b.test.ts',
    '# { total: 5, pass: 3, skip: 2 }', '',
  ].join('\n'));
  const summary = async (file: string, status = '0', env: Record<string, string> = {}) => {
    const r = await run('bash', [join(ROOT, '.ci/tap-summary'), file, status], { env: { ...process.env, VSWITCH_REQUIRE_INTEROP: '0', ...env } })
      .then((x) => ({ code: 0, out: x.stdout }), (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }));
    return { code: r.code, lines: r.out.trimEnd().split('\n') };
  };
  let r = await summary(withSkips);
  t.same(r.lines, [
    'ci: skipped: test/a.test.ts > kernel vxlan — kernel vxlan in namespaces: needs root (network namespaces)',
    'ci: skipped: test/a.test.ts > capture > tshark reads the capture — tshark checks: not root',
    '2 skipped',
    '3 passed, 0 failed',
  ], 'each skip with where it is and why, then "2 skipped" just before the closing line');
  t.equal(r.code, 0, 'skips alone do not fail a run');
  r = await summary(withSkips, '0', { VSWITCH_REQUIRE_INTEROP: '1' });
  t.equal(r.code, 1, 'with VSWITCH_REQUIRE_INTEROP=1 they do');
  t.same(r.lines.slice(-2), ['2 skipped', '3 passed, 1 failed'], 'and the closing line says so');
  r = await summary(log('clean.log', 'TAP version 14\nok 1 - test/a.test.ts\n# { total: 4, pass: 4 }\n'), '0', { VSWITCH_REQUIRE_INTEROP: '1' });
  t.same([r.code, ...r.lines], [0, '0 skipped', '4 passed, 0 failed'], 'a clean run');
  r = await summary(log('fail.log', 'TAP version 14\nnot ok 1 - test/a.test.ts\n# { total: 4, pass: 3, fail: 1 }\n'), '1');
  t.same([r.code, ...r.lines], [1, '0 skipped', '3 passed, 1 failed'], 'a failed run');
  r = await summary(log('cut.log', 'TAP version 14\n# Subtest: test/a.test.ts\n'), '137');
  t.equal(r.code, 1, 'a run cut short fails');
  t.same(r.lines.slice(-2), ['0 skipped', '0 passed, 1 failed']);
});
