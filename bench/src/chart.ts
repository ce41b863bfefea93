/**
 * Draws the ratio columns of a bench JSON as one SVG: a panel per workload that has a reference, a bar per system,
 * a dashed line at 1× (the reference). No chart library: the picture is simple and must be reproducible offline.
 *
 *   npx tsx bench/src/chart.ts [bench/results/latest.json] [docs/img/bench-ratios.svg]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench.js';
import type { Role, WorkloadResult } from './harness.js';

const WIDTH = 960;
const LABEL = 300;
const RIGHT = 90;
const ROW = 20;
const BAR = 13;
const TITLE = 40;
const AXIS = 26;
const GAP = 18;

const COLOR: Record<Role, string> = {
  subject: '#1f6feb',
  reference: '#6e7781',
  control: '#afb8c1',
  raw: '#8c959f',
  peer: '#d4a72c',
};

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function ratioText(ratio: number): string {
  return ratio < 0.01 ? `${ratio.toFixed(4)}×` : `${ratio.toFixed(2)}×`;
}

interface Scale {
  readonly log: boolean;
  readonly min: number;
  readonly max: number;
  readonly ticks: readonly number[];
}

/** The smallest of 0.25, 0.5, 1, 2, 5, 10, 20, 50, … that is at least `raw`. */
function niceStep(raw: number): number {
  if (raw <= 0.25) return 0.25;
  if (raw <= 0.5) return 0.5;
  const decade = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * decade >= raw) return m * decade;
  return 10 * decade;
}

/** Linear from 0 unless the ratios span more than 30×, then log10 over whole decades. */
function scaleFor(ratios: readonly number[]): Scale {
  const positive = ratios.filter((r) => r > 0);
  const lo = Math.min(...positive, 1);
  const hi = Math.max(...positive, 1);
  if (hi / lo > 30) {
    const min = 10 ** Math.floor(Math.log10(lo));
    const max = 10 ** Math.ceil(Math.log10(hi));
    const ticks: number[] = [];
    for (let t = min; t <= max * 1.0001; t *= 10) ticks.push(t);
    return { log: true, min, max, ticks };
  }
  const step = niceStep(Math.max(1.25, hi * 1.1) / 6);
  const max = Math.max(1.25, Math.ceil((hi * 1.1) / step) * step);
  const ticks: number[] = [];
  for (let t = 0; t <= max + 1e-9; t += step) ticks.push(Math.round(t * 100) / 100);
  return { log: false, min: 0, max, ticks };
}

function position(scale: Scale, value: number, width: number): number {
  if (scale.log) {
    const v = Math.max(value, scale.min);
    return ((Math.log10(v) - Math.log10(scale.min)) / (Math.log10(scale.max) - Math.log10(scale.min))) * width;
  }
  return (Math.min(value, scale.max) / scale.max) * width;
}

function panel(workload: WorkloadResult, top: number): { svg: string; height: number } {
  const rows = workload.rows.filter((r) => r.ratio !== null && Number.isFinite(r.ratio));
  const scale = scaleFor(rows.map((r) => r.ratio as number));
  const plot = WIDTH - LABEL - RIGHT;
  const height = TITLE + rows.length * ROW + AXIS;
  const lowerBetter = workload.ratioLabel.includes('floor');
  const parts: string[] = [];
  parts.push(
    `<text x="12" y="${top + 18}" class="title">${escape(`${workload.id} — ${workload.title}`)}</text>`,
    `<text x="12" y="${top + 33}" class="sub">${escape(
      `${workload.ratioLabel} (${lowerBetter ? 'lower' : 'higher'} is better${scale.log ? ', log scale' : ''})`,
    )}</text>`,
  );
  const plotTop = top + TITLE;
  const plotBottom = plotTop + rows.length * ROW;
  for (const tick of scale.ticks) {
    const x = LABEL + position(scale, tick, plot);
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${plotTop}" x2="${x.toFixed(1)}" y2="${plotBottom}" class="${tick === 1 ? 'one' : 'grid'}"/>`,
      `<text x="${x.toFixed(1)}" y="${plotBottom + 15}" class="tick">${tick}×</text>`,
    );
  }
  rows.forEach((row, i) => {
    const y = plotTop + i * ROW;
    const ratio = row.ratio as number;
    const w = Math.max(1, position(scale, ratio, plot));
    const name =
      row.role === 'reference'
        ? `${row.system} (reference)`
        : row.role === 'control'
          ? `${row.system} (A/A)`
          : row.system;
    parts.push(
      `<text x="${LABEL - 8}" y="${y + BAR}" class="label${row.role === 'subject' ? ' strong' : ''}">${escape(name)}</text>`,
      `<rect x="${LABEL}" y="${y + 3}" width="${w.toFixed(1)}" height="${BAR}" fill="${COLOR[row.role]}"/>`,
      `<text x="${(LABEL + w + 5).toFixed(1)}" y="${y + BAR}" class="value">${ratioText(ratio)}</text>`,
    );
  });
  return { svg: parts.join('\n'), height: height + GAP };
}

export function renderChart(result: BenchResult): string {
  const charted = result.workloads.filter((w) => w.reference !== null && w.rows.some((r) => r.ratio !== null));
  let top = 56;
  const panels: string[] = [];
  for (const workload of charted) {
    const drawn = panel(workload, top);
    panels.push(drawn.svg);
    top += drawn.height;
  }
  const caption =
    `${result.mode} run of ${result.startedAt.slice(0, 16).replace('T', ' ')} UTC · Node ${result.machine.node} · ` +
    `Redis ${result.redis.version} · ${result.machine.cpus} CPUs · load average at start ${result.machine.loadAverageAtStart.join(' ')}` +
    ('rescored' in result ? ' · ratios: median of per-round ratios' : '');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top}" viewBox="0 0 ${WIDTH} ${top}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    '<style>',
    '.title{font-size:14px;font-weight:600;fill:#1f2328}.sub,.tick{font-size:11px;fill:#656d76}',
    '.tick{text-anchor:middle}.label{font-size:12px;fill:#1f2328;text-anchor:end}.strong{font-weight:700}',
    '.value{font-size:11px;fill:#1f2328}.grid{stroke:#d0d7de;stroke-width:1}.one{stroke:#1f2328;stroke-dasharray:4 3}',
    '</style>',
    `<rect width="${WIDTH}" height="${top}" fill="#ffffff"/>`,
    `<text x="12" y="22" class="title">tiercache benchmarks: ratio to each workload's reference, measured side by side in one run</text>`,
    `<text x="12" y="40" class="sub">${escape(caption)}</text>`,
    ...panels,
    '</svg>',
    '',
  ].join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const benchDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const input = resolve(process.argv[2] ?? join(benchDir, 'results', 'latest.json'));
  const output = resolve(process.argv[3] ?? join(benchDir, '..', 'docs', 'img', 'bench-ratios.svg'));
  const result = JSON.parse(readFileSync(input, 'utf8')) as BenchResult;
  mkdirSync(dirname(output), { recursive: true });
  writeFileSync(output, renderChart(result));
  process.stdout.write(`wrote ${output} from ${input}\n`);
}
