// The README's library example runs as written.
import t from 'tap';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

t.test('README library example runs and prints what it says', async (t) => {
  const md = readFileSync(`${root}/README.md`, 'utf8');
  const m = md.match(/## Use it as a library\n\n```js\n([\s\S]*?)```/);
  t.ok(m, 'README has the example');
  const file = `${root}/.readme-example-${process.pid}.mjs`;
  writeFileSync(file, m![1]);
  t.teardown(() => rmSync(file, { force: true }));
  const out = execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 30000 });
  t.match(out, /vale0:b got 60 bytes from port vale0:a/);
  t.match(out, /mac: '02:00:00:00:00:0a'/);
  t.match(out, /portName: 'vale0:a'/);
  t.match(out, /^1 1$/m);
});

t.test('the README\'s first command can run the bin: the build leaves dist/cli/vswitch.js executable', async (t) => {
  // npm ci links bins before `prepare` builds dist/, so nothing else marks it executable, and
  // `npx vswitch bench` in a fresh clone then fails with "Permission denied".
  const { statSync } = await import('node:fs');
  const mode = statSync(`${root}/dist/cli/vswitch.js`).mode;
  t.not(mode & 0o111, 0, `dist/cli/vswitch.js mode ${(mode & 0o777).toString(8)} has execute bits`);
  t.match(readFileSync(`${root}/dist/cli/vswitch.js`, 'utf8'), /^#!\/usr\/bin\/env node\n/, 'and starts with a node shebang');
});
