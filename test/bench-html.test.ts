// vswitch bench --html FILE: the real CLI on a short run writes one self-contained page whose
// tags balance, whose SVG charts are there with their marks, and which carries the numbers the
// same run printed as JSON. Checks the report, never how fast anything is.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vst-bench-html-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const VOID = new Set(['meta', 'link', 'br', 'img', 'input', 'hr']);

/** Every start tag closed in order (void elements and `<x/>` aside); returns the problems. */
function unbalanced(html: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  // Raw-text elements: their content is not markup.
  const body = html.replace(/<(script|style)(\s[^>]*)?>[\s\S]*?<\/\1>/g, '<$1></$1>');
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*(\/?)>|<!DOCTYPE html>|<(?!\/?[A-Za-z!])/g)) {
    if (m[0] === '<!DOCTYPE html>') continue;
    if (m[2] === undefined) { problems.push(`stray "<" at ${m.index}`); continue; }
    const [, close, name, , self] = m;
    const tag = name.toLowerCase();
    if (self || VOID.has(tag)) continue;
    if (!close) stack.push(tag);
    else if (stack.pop() !== tag) problems.push(`</${tag}> at ${m.index} closes something else`);
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`);
  return problems;
}

interface Result { system: string; scenario: string; mpps: number; gbps: number; ratio?: number | null; refMpps?: number }

t.test('--html: a well-formed page with the charts and the measured numbers', async (t) => {
  const file = join(dir, 'report.html');
  const r = await runCli([
    'bench', '--scenario', '1to1-60', '--scenario', '1to1-1514', '--scenario', 'batch-sweep', '--scenario', 'ports-sweep',
    '--peers', '--trials', '1', '--duration', '0.2', '--warmup', '0.05', '--json', '--html', file,
  ], { timeoutMs: 120000 });
  t.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { machine: { cpuModel: string }; results: Result[] };
  const html = readFileSync(file, 'utf8');
  t.match(html, /^<!DOCTYPE html>\n<html lang="en">/, 'an HTML document');
  t.same(unbalanced(html), [], 'every tag is closed, in order');
  t.notMatch(html, /<(link|img|iframe)\b|\bsrc="|\bhref="http/i, 'nothing loaded from elsewhere');

  // The charts: one inline SVG each, with their marks.
  const svgs = [...html.matchAll(/<svg [^>]*id="(chart-[a-z]+)"[^>]*>([\s\S]*?)<\/svg>/g)];
  const byId = new Map(svgs.map((m) => [m[1], m[2]]));
  t.same([...byId.keys()].sort(), ['chart-batch', 'chart-peers', 'chart-ports', 'chart-size']);
  for (const [id, body] of byId) t.match(body, /<path d="M[\d.]+,[\d.]+|<rect [^>]*data-system=/, `${id} draws lines or bars`);
  const batch = byId.get('chart-batch') ?? '';
  t.match(batch, /data-series="reference path"/, 'batch-sweep draws the reference path');
  t.match(batch, /data-series="copy bound"/, 'and the copy bound');
  t.equal((byId.get('chart-peers') ?? '').match(/<rect [^>]*data-system=/g)?.length,
    doc.results.filter((x) => (x.scenario === '1to1-60' || x.scenario === '1to1-1514') && x.mpps > 0).length,
    'one bar per system and peer scenario (a log scale has no place for a rate of 0)');

  // The numbers of this run: in the table, on the chart marks, and as the embedded JSON.
  for (const x of doc.results) {
    const row = new RegExp(`<tr><td>${x.system}</td><td>${x.scenario}</td>.*?</tr>`).exec(html)?.[0] ?? '';
    t.ok(row.includes(`>${x.mpps.toFixed(3)}<`), `${x.system} ${x.scenario}: table has ${x.mpps.toFixed(3)} Mpps`);
    if (typeof x.ratio === 'number') t.ok(row.includes(`>${x.ratio.toFixed(3)}<`), `${x.system} ${x.scenario}: table has ratio ${x.ratio.toFixed(3)}`);
  }
  for (const x of doc.results.filter((y) => y.scenario.startsWith('batch-'))) {
    t.match(batch, `data-x="${x.scenario.slice(6)}" data-y="${x.mpps.toFixed(3)}"`, `${x.scenario} plotted at ${x.mpps.toFixed(3)} Mpps`);
  }
  const embedded = /<script type="application\/json" id="report">([\s\S]*?)<\/script>/.exec(html)?.[1];
  t.same(JSON.parse(embedded ?? 'null'), doc, 'the embedded report is the run printed with --json');
  t.ok(html.includes(doc.machine.cpuModel) && /load [\d.]+ [\d.]+ [\d.]+ at start/.test(html), 'the machine line');
});
