/**
 * `vswitch bench --html FILE`: one self-contained HTML page (no scripts, no external files) with
 * inline SVG charts of a BenchReport, the table and the machine line beside them, and the report
 * itself as JSON in a <script type="application/json"> block for whoever wants the raw figures.
 *
 * Charts, each drawn when the run has its data:
 *  - batch-sweep: Mpps vs sender batch (log scale), with the reference path and the copy bound
 *    measured at each batch drawn as lines;
 *  - ports-sweep: Mpps vs ports attached, with the reference path;
 *  - frame size vs Gbit/s (1to1-60, size-sweep, 1to1-1514), with the reference path and the copy
 *    bound in Gbit/s;
 *  - with --peers: Mpps of vswitch and each peer per scenario, bars on a log scale.
 */
import { busyWarning, type BenchReport, type BenchResult } from './bench.js';

const W = 520;
const H = 300;
const M = { l: 60, r: 20, t: 34, b: 46 };
const COLORS = { vswitch: '#1f6fb2', reference: '#2a9d4b', bound: '#c0392b', peers: ['#8e44ad', '#e67e22', '#7f8c8d', '#16a085'] };

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const num = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '–');

/** Round-ish tick values covering [lo, hi] (linear). */
function ticks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
  /** Draw markers with their values (the measured series). */
  marks?: boolean;
}

interface LineChart {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  xTicks?: number[];
  series: Series[];
}

function lineChart(c: LineChart): string {
  const pts = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const fx = (x: number) => (c.xLog ? Math.log2(x) : x);
  const xs = pts.map(([x]) => fx(x));
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  const y1 = Math.max(...pts.map(([, y]) => y)) * 1.15 || 1;
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const sx = (x: number) => M.l + ((fx(x) - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => M.t + ph - (y / y1) * ph;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" id="${c.id}" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(c.title)}">`);
  o.push(`<title>${esc(c.title)}</title>`);
  o.push(`<text x="${W / 2}" y="18" text-anchor="middle" class="ttl">${esc(c.title)}</text>`);
  for (const t of ticks(0, y1)) {
    o.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" class="grid"/>`);
    o.push(`<text x="${M.l - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" class="tick">${t}</text>`);
  }
  for (const t of c.xTicks ?? [...new Set(pts.map(([x]) => x))].sort((a, b) => a - b)) {
    o.push(`<text x="${sx(t).toFixed(1)}" y="${H - M.b + 16}" text-anchor="middle" class="tick">${t}</text>`);
  }
  o.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${M.t + ph}" y2="${M.t + ph}" class="axis"/>`);
  o.push(`<line x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${M.t + ph}" class="axis"/>`);
  o.push(`<text x="${M.l + pw / 2}" y="${H - 8}" text-anchor="middle" class="lbl">${esc(c.xLabel)}</text>`);
  o.push(`<text x="14" y="${M.t + ph / 2}" text-anchor="middle" class="lbl" transform="rotate(-90 14 ${M.t + ph / 2})">${esc(c.yLabel)}</text>`);
  const leg = [`<rect x="${M.l + 6}" y="${M.t - 6}" width="152" height="${c.series.length * 14 + 6}" fill="#fff" fill-opacity="0.85" stroke="#ddd"/>`];
  c.series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    if (p.length === 0) return;
    const d = p.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    o.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} class="series" data-series="${esc(s.name)}"/>`);
    if (s.marks) {
      for (const [x, y] of p) {
        o.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" fill="${s.color}" data-x="${x}" data-y="${num(y)}"><title>${esc(`${s.name} ${x}: ${num(y)}`)}</title></circle>`);
        o.push(`<text x="${sx(x).toFixed(1)}" y="${(sy(y) - 8).toFixed(1)}" text-anchor="middle" class="val">${num(y, y >= 100 ? 0 : y >= 10 ? 1 : 2)}</text>`);
      }
    }
    const ly = M.t + 4 + i * 14;
    leg.push(`<line x1="${M.l + 12}" x2="${M.l + 32}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    leg.push(`<text x="${M.l + 36}" y="${ly + 4}" class="leg">${esc(s.name)}</text>`);
  });
  o.push(...leg, '</svg>');
  return o.join('\n');
}

interface BarGroup {
  label: string;
  bars: { name: string; value: number }[];
}

function logBarChart(id: string, title: string, yLabel: string, groups: BarGroup[], names: string[]): string {
  const vals = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0 && Number.isFinite(v));
  const lo = 10 ** Math.floor(Math.log10(Math.min(...vals)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...vals)));
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const sy = (v: number) => M.t + ph - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * ph;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" id="${id}" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`);
  o.push(`<title>${esc(title)}</title>`);
  o.push(`<text x="${W / 2}" y="18" text-anchor="middle" class="ttl">${esc(title)}</text>`);
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    o.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" class="grid"/>`);
    o.push(`<text x="${M.l - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end" class="tick">${Number(v.toPrecision(6))}</text>`);
  }
  o.push(`<line x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${M.t + ph}" class="axis"/>`);
  o.push(`<text x="14" y="${M.t + ph / 2}" text-anchor="middle" class="lbl" transform="rotate(-90 14 ${M.t + ph / 2})">${esc(yLabel)}</text>`);
  const gw = pw / groups.length;
  const bw = Math.min(28, (gw - 10) / Math.max(1, names.length));
  const color = (n: string) => (n === 'vswitch' ? COLORS.vswitch : COLORS.peers[(names.indexOf(n) - 1 + COLORS.peers.length) % COLORS.peers.length]);
  groups.forEach((g, gi) => {
    const gx = M.l + gi * gw + (gw - bw * names.length) / 2;
    names.forEach((n, bi) => {
      const b = g.bars.find((x) => x.name === n);
      if (!b || !(b.value > 0)) return;
      const x = gx + bi * bw;
      const y = sy(b.value);
      o.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(M.t + ph - y).toFixed(1)}" fill="${color(n)}" data-system="${esc(n)}" data-value="${num(b.value)}"><title>${esc(`${n} ${g.label}: ${num(b.value)} ${yLabel}`)}</title></rect>`);
    });
    o.push(`<text x="${(M.l + gi * gw + gw / 2).toFixed(1)}" y="${H - M.b + 16}" text-anchor="middle" class="tick">${esc(g.label)}</text>`);
  });
  names.forEach((n, i) => {
    const lx = M.l + 8 + i * 120;
    o.push(`<rect x="${lx}" y="${H - 20}" width="10" height="10" fill="${color(n)}"/>`);
    o.push(`<text x="${lx + 14}" y="${H - 11}" class="leg">${esc(n)}</text>`);
  });
  o.push('</svg>');
  return o.join('\n');
}

const vs = (r: BenchReport) => r.results.filter((x) => x.system === 'vswitch');

function batchOf(x: BenchResult): number {
  return Number(x.scenario.slice('batch-'.length));
}

function charts(report: BenchReport): { svg: string[]; missing: string[] } {
  const svg: string[] = [];
  const missing: string[] = [];
  const v = vs(report);
  const batch = v.filter((x) => /^batch-\d+$/.test(x.scenario));
  if (batch.length > 0) {
    svg.push(lineChart({
      id: 'chart-batch', title: 'batch-sweep: 1to1-60 rate vs sender batch', xLabel: 'frames per sender batch (log scale)', yLabel: 'Mpps', xLog: true,
      series: [
        { name: 'vswitch', color: COLORS.vswitch, points: batch.map((x) => [batchOf(x), x.mpps]), marks: true },
        { name: 'reference path', color: COLORS.reference, points: batch.map((x) => [batchOf(x), x.refMpps ?? NaN]), dashed: true },
        { name: 'copy bound', color: COLORS.bound, points: batch.map((x) => [batchOf(x), x.copyBoundMpps ?? NaN]), dashed: true },
      ],
    }));
  } else missing.push('batch-sweep');
  const ports = v.filter((x) => /^ports-\d+$/.test(x.scenario));
  if (ports.length > 0) {
    const n = (x: BenchResult) => Number(x.scenario.slice('ports-'.length));
    svg.push(lineChart({
      id: 'chart-ports', title: 'ports-sweep: 1to1-60 rate vs ports on the bridge', xLabel: 'ports attached (log scale)', yLabel: 'Mpps', xLog: true,
      series: [
        { name: 'vswitch', color: COLORS.vswitch, points: ports.map((x) => [n(x), x.mpps]), marks: true },
        { name: 'reference path', color: COLORS.reference, points: ports.map((x) => [n(x), x.refMpps ?? NaN]), dashed: true },
      ],
    }));
  } else missing.push('ports-sweep');
  const sizes = v.filter((x) => x.scenario === '1to1-60' || x.scenario === '1to1-1514' || /^size-\d+$/.test(x.scenario));
  if (sizes.length > 0) {
    const g = (mpps: number | undefined, f: number) => ((mpps ?? NaN) * f * 8) / 1e3;
    svg.push(lineChart({
      id: 'chart-size', title: 'one sender to one receiver: frame size vs Gbit/s', xLabel: 'frame size (bytes)', yLabel: 'Gbit/s of frames',
      series: [
        { name: 'vswitch', color: COLORS.vswitch, points: sizes.map((x) => [x.frameSize, x.gbps]), marks: true },
        { name: 'reference path', color: COLORS.reference, points: sizes.map((x) => [x.frameSize, g(x.refMpps, x.frameSize)]), dashed: true },
        { name: 'copy bound', color: COLORS.bound, points: sizes.map((x) => [x.frameSize, g(x.copyBoundMpps, x.frameSize)]), dashed: true },
      ],
    }));
  } else missing.push('1to1-60 / 1to1-1514 / size-sweep');
  if (report.peers) {
    const names = ['vswitch', ...report.peers.systems.map((p) => p.system)];
    const groups: BarGroup[] = report.peers.scenarios
      .filter((sc) => report.results.some((x) => x.scenario === sc && x.system !== 'vswitch'))
      .map((sc) => ({ label: sc, bars: report.results.filter((x) => x.scenario === sc).map((x) => ({ name: x.system, value: x.mpps })) }));
    if (groups.length > 0) svg.push(logBarChart('chart-peers', 'vswitch and its peers, same scenarios, same run', 'Mpps', groups, names));
  }
  return { svg, missing };
}

function table(report: BenchReport): string {
  const head = ['system', 'scenario', 'frame', 'Mpps', 'Gbit/s', 'reference Mpps', '× reference', 'copy bound Mpps', '× copy bound', 'spread (Mpps)', 'rtt p50 µs', 'rtt p99 µs', 'rtt bare p50 µs', 'vswitch / peer'];
  const rows = report.results.map((r) => [
    r.system, r.scenario, String(r.frameSize), num(r.mpps), num(r.gbps, 2),
    r.refMpps !== undefined ? num(r.refMpps, 2) : '', r.ratio !== undefined ? num(r.ratio) : '',
    r.copyBoundMpps !== undefined ? num(r.copyBoundMpps, 2) : '', r.boundRatio !== undefined ? num(r.boundRatio) : '',
    `${num(r.spread.minMpps, 2)}–${num(r.spread.maxMpps, 2)}`,
    r.rttP50Us !== undefined ? num(r.rttP50Us, 1) : '', r.rttP99Us !== undefined ? num(r.rttP99Us, 1) : '',
    r.bareP50Us !== undefined ? num(r.bareP50Us, 1) : '',
    r.speedup !== undefined ? `${num(r.speedup, 1)}×` : '',
  ]);
  return [
    '<table>',
    `<thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>`,
    '<tbody>',
    ...rows.map((r) => `<tr>${r.map((c, i) => `<td${i >= 2 ? ' class="n"' : ''}>${esc(c)}</td>`).join('')}</tr>`),
    '</tbody>',
    '</table>',
  ].join('\n');
}

/** The machine line of the text report, shared with the CLI. */
export function machineLine(report: BenchReport): string {
  const m = report.machine;
  const la = (x: number[]) => x.map((v) => v.toFixed(2)).join(' ');
  return `${m.cpus} × ${m.cpuModel}, ${m.totalMemGiB} GiB, node ${m.node}, ${m.platform}; load ${m.loadavgAtStart ? `${la(m.loadavgAtStart)} at start, ` : ''}${la(m.loadavg)} at end; ` +
    `${report.settings.trials} trials of ${report.settings.duration} s (warm-up ${report.settings.warmup} s), medians; ${m.date}`;
}

export function renderHtml(report: BenchReport): string {
  const { svg, missing } = charts(report);
  const json = JSON.stringify(report).replace(/</g, '\\u003c');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vswitch bench</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
.machine { color: #555; margin: 0 0 1em; }
.warn { color: #a33; margin: -0.5em 0 1em; }
.wrap { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.charts { display: flex; flex-direction: column; gap: 1em; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.chart { background: #fafafa; border: 1px solid #e4e4e4; }
.chart .ttl { font-weight: 600; font-size: 13px; }
.chart .tick, .chart .leg, .chart .val { font-size: 11px; fill: #444; }
.chart .lbl { font-size: 12px; fill: #333; }
.chart .grid { stroke: #e6e6e6; }
.chart .axis { stroke: #888; }
.note { color: #666; font-size: 12px; max-width: 60em; }
</style>
</head>
<body>
<h1>vswitch bench</h1>
<p class="machine">${esc(machineLine(report))}</p>
${busyWarning(report) ? `<p class="warn">${esc(busyWarning(report)!)}</p>` : ''}
<div class="wrap">
<div class="charts">
${svg.join('\n')}
${missing.length > 0 ? `<p class="note">Not in this run (use --all or --scenario): ${esc(missing.join(', '))}.</p>` : ''}
</div>
<div>
${table(report)}
<p class="note">× reference: the rate divided by the reference data path measured just before each trial on this machine
(two Workers, one ring, the same frames and batch, a hash lookup and one copy per frame, no switching).
× copy bound: the rate divided by the same copies in one thread with no ring. Latency rows show round-trip percentiles instead.</p>
</div>
</div>
<script type="application/json" id="report">${json}</script>
</body>
</html>
`;
}
