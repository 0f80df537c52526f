// The browser-ready core: the front door ('vswitch': Switch, openPort, Port over lib/bridge and
// lib/rings) bundles for a browser with no node: import, through the `browser` condition of the
// package's #platform import. The Node-only entry points (daemon, adapters) must fail the same
// check, which shows that the check can fail.
import t from 'tap';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// platform 'browser' adds the browser condition itself; 'neutral' with a plain condition list shows
// what a platform without it would get.
async function bundle(entry: string, platform: 'browser' | 'neutral'): Promise<{ ok: boolean; text: string; errors: string[] }> {
  try {
    const r = await build({
      stdin: { contents: `export * from ${JSON.stringify(entry)};`, resolveDir: root, loader: 'js' },
      bundle: true, platform, format: 'esm', write: false, logLevel: 'silent',
      ...(platform === 'neutral' ? { mainFields: ['module', 'main'], conditions: ['import', 'default'] } : {}),
    });
    return { ok: true, text: r.outputFiles[0]!.text, errors: [] };
  } catch (e) {
    return { ok: false, text: '', errors: (e as { errors?: { text: string }[] }).errors?.map((x) => x.text) ?? [String(e)] };
  }
}

t.test('the front door bundles for browsers without any node: import', async (t) => {
  const r = await bundle('vswitch', 'browser');
  t.ok(r.ok, `bundled: ${r.errors.join('; ')}`);
  t.notMatch(r.text, /["']node:/, 'no node: module in the bundle');
  for (const name of ['Switch', 'Port', 'Ring', 'Forwarder']) t.match(r.text, new RegExp(`(class ${name}\\b|var ${name} = class)`), `${name} is in it`);
  t.notMatch(r.text, /\/proc\/thread-self/, 'the Node liveness check stayed out');
});

t.test('without the browser condition, or for a Node-only entry point, the same check fails', async (t) => {
  const plain = await bundle('vswitch', 'neutral');
  t.notOk(plain.ok, 'the Node platform module is refused');
  t.match(plain.errors.join('\n'), /node:worker_threads/);
  const ctl = await bundle('vswitch/control', 'browser');
  t.notOk(ctl.ok, 'vswitch/control is Node-only');
  t.match(ctl.errors.join('\n'), /node:/);
});
