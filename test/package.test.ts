// The package as a user gets it: `npm pack` of this repo, installed into an empty project (no
// workspace, no repo; the registry, or npm's cache, only for yargs). There it must (a) run an ESM
// script whose Worker opens a port by name and exchanges frames with the main thread, (b) run the
// installed bin, and (c) type-check a TypeScript file that imports the front door and side doors
// under module/moduleResolution nodenext with strict.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');
const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');

let dir = '';
let app = '';
let info: { filename: string; files: { path: string }[] }[] = [];
let installed: (Error & { stderr?: string }) | null = null;

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vswitch-consumer-'));
  // --ignore-scripts: the build already ran (pretest); prepare would rebuild while other test files run.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repo, maxBuffer: 1 << 24 });
  info = JSON.parse(packed.stdout) as typeof info;
  app = join(dir, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  installed = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, info[0]!.filename)], { cwd: app, maxBuffer: 1 << 24 })
    .then(() => null, (e: Error & { stderr?: string }) => e);
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('the tarball holds the built library, the bin and shared-memory-ring, nothing from the repo beside them', async (t) => {
  const paths = info[0]!.files.map((f) => f.path);
  for (const p of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/cli/vswitch.js', 'lib/rings/dist/index.js', 'lib/rings/package.json',
    'lib/bridge/dist/index.js', 'dist/src/adapters/index.d.ts', 'dist/src/apps/daemon/index.d.ts']) {
    t.ok(paths.includes(p), `${p} is packed`);
  }
  t.notOk(paths.some((p) => p.startsWith('test/') || p.startsWith('src/') || p.endsWith('.tsbuildinfo')), 'no tests, sources or build info');
});


t.test('npm install of the tarball into an empty project', async (t) => {
  t.equal(installed, null, `npm install succeeded${installed ? `: ${installed.stderr ?? installed.message}` : ''}`);
  const pkg = JSON.parse(await readFile(join(app, 'node_modules', 'vswitch', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  t.same(Object.keys(pkg.dependencies), ['yargs'], 'its only dependency is yargs');
  const top = await readdir(join(app, 'node_modules'));
  t.notOk(top.includes('shared-memory-ring') || top.includes('@vswitch'), 'no workspace package is fetched separately');
});

t.test('a Worker opens a port by name and exchanges frames with the main thread', async (t) => {
  if (installed) return t.fail('install failed, see above');
  await writeFile(join(app, 'echo-worker.mjs'), `
import { openPort } from 'vswitch';
import { parentPort } from 'node:worker_threads';
const port = await openPort('vale0:w', { exclusive: true });
parentPort.postMessage('open');
let echoed = 0;
while (echoed < 100) {
  if (!port.wait(5000)) break;
  for (let f = port.recv(); f; f = port.recv()) {
    const out = new Uint8Array(f);
    out.copyWithin(0, 6, 12); out.set(f.subarray(0, 6), 6);   // swap MACs, echo back
    port.send(out);
    echoed++;
  }
}
await port.close();
parentPort.postMessage(echoed);
`);
  await writeFile(join(app, 'main.mjs'), `
import { Switch, openPort, ERR } from 'vswitch';
import { FrameBuilder } from 'vswitch/frame';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
const sw = new Switch();
const port = await openPort('vale0:m');
const w = new Worker(new URL('./echo-worker.mjs', import.meta.url));
const [first] = await once(w, 'message', { signal: AbortSignal.timeout(30_000) });
if (first !== 'open') throw new Error('worker said ' + first);
const fb = new FrameBuilder({ srcMac: '02:00:00:00:00:01', dstMac: 'ff:ff:ff:ff:ff:ff', length: 60 });
const frame = new Uint8Array(60);
fb.write(frame, 0);
let back = 0;
for (let i = 0; i < 100; i++) {
  port.send(frame);
  const deadline = Date.now() + 5000;
  for (;;) {
    const f = port.recv();
    if (f) { if (f[0] === 2 && f[5] === 1) back++; break; }
    if (Date.now() > deadline) throw new Error('no echo of frame ' + i);
    await port.waitAsync(100);
  }
}
const [echoed] = await once(w, 'message', { signal: AbortSignal.timeout(30_000) });
await port.close();
await sw.close();
console.log(JSON.stringify({ back, echoed, codes: typeof ERR.PORT_BUSY }));
`);
  const r = await run(process.execPath, ['main.mjs'], { cwd: app, timeout: 60_000 });
  const out = JSON.parse(r.stdout.trim()) as { back: number; echoed: number };
  t.equal(out.echoed, 100, 'the Worker echoed 100 frames');
  t.equal(out.back, 100, 'the main thread got 100 echoes addressed to itself');
});

t.test('the installed bin runs', async (t) => {
  if (installed) return t.fail('install failed, see above');
  const help = await run('npx', ['--no-install', 'vswitch', '--help'], { cwd: app });
  for (const c of ['serve', 'pkt-gen', 'ctl', 'bench', 'capture', 'bridge']) t.match(help.stdout, new RegExp(`vswitch ${c}\\b`), `--help lists ${c}`);
  const pg = await run('npx', ['--no-install', 'vswitch', 'pkt-gen', '--embedded', '-i', 'vale0:rx', '-f', 'rx', '-i', 'vale0:tx', '-f', 'tx', '-n', '1000'],
    { cwd: app, timeout: 60_000 });
  t.match(pg.stdout + pg.stderr, /Sent 1000 packets/, 'pkt-gen sent 1000 frames');
  t.match(pg.stdout + pg.stderr, /Received 1000 packets/, 'and received them');
});

t.test('TypeScript (nodenext, strict) type-checks the front door and side doors', async (t) => {
  if (installed) return t.fail('install failed, see above');
  await writeFile(join(app, 'use.ts'), `
import { Switch, openPort, VswitchError, ERR, type Port, type PortCounters, type BridgeOptions } from 'vswitch';
import { attachQemuStream, type AdapterStats } from 'vswitch/adapters';
import { ControlClient } from 'vswitch/control';
import { FrameBuilder } from 'vswitch/frame';
const opts: BridgeOptions = {};
const sw = new Switch({ bridge: opts });
const p: Port = await openPort('vale0:a');
const c: PortCounters = p.stats();
const n: number = c.txFrames + ERR.PORT_BUSY.length;
const e = new VswitchError(ERR.PORT_BUSY, 'x');
const s: AdapterStats | undefined = undefined;
void [sw, n, e, s, attachQemuStream, ControlClient, FrameBuilder];
`);
  const bad = `import { Switch } from 'vswitch';\nconst s: Switch = new Switch({ maxBridges: 'eight' });\nvoid s;\n`;
  await writeFile(join(app, 'bad.ts'), bad);
  const tsconfig = (files: string[]) => JSON.stringify({
    compilerOptions: {
      module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true,
      types: ['node'], typeRoots: [join(repo, 'node_modules', '@types')],
    },
    files,
  });
  await writeFile(join(app, 'tsconfig.json'), tsconfig(['use.ts']));
  const ok = await run(process.execPath, [tsc, '-p', '.'], { cwd: app }).then(() => '', (e: { stdout: string }) => e.stdout);
  t.equal(ok, '', 'use.ts type-checks with no error');
  await writeFile(join(app, 'tsconfig.json'), tsconfig(['bad.ts']));
  const err = await run(process.execPath, [tsc, '-p', '.'], { cwd: app }).then(() => '', (e: { stdout: string }) => e.stdout);
  t.match(err, /bad\.ts.*error TS2322/, 'and a wrong option type is caught, so the types are real');
});
