/** The benchmark's results: the data model, the console table and the markdown. Pure. */
import { ratio, summarize, type Summary } from './stats.js';

export interface Metric {
  /** Stable key, e.g. 'download.mbps'. */
  id: string;
  /** What was measured, e.g. 'single download 200 MB'. */
  label: string;
  unit: string;
  /** Which direction is good (decides nothing in code; shown in the table). */
  better: 'higher' | 'lower' | 'zero';
  /** One value per round. */
  ours: number[];
  /** One value per round; null when the native client is not measured for this metric. */
  native: number[] | null;
  /** Which table it belongs to (e.g. 'OpenVPN', 'IPsec'); metrics without one go to the first. */
  group?: string;
  /** What issue 15 asks of it, if anything. */
  target?: Target;
}

/**
 * A goal for one metric: a bound on ours/native (`ratio`) or on our median itself (`value`). `min` means at least,
 * `max` at most.
 */
export interface Target {
  on: 'ratio' | 'value';
  min?: number;
  max?: number;
}

/** '≥ 1.0x', '≤ 3x', '≤ 150', ... */
export function targetText(t: Target): string {
  const n = (v: number): string => (t.on === 'ratio' ? `${v}x` : String(v));
  const parts: string[] = [];
  if (t.min !== undefined) parts.push(`≥ ${n(t.min)}`);
  if (t.max !== undefined) parts.push(`≤ ${n(t.max)}`);
  return parts.join(', ');
}

/** 'met', 'missed', or '-' when there is no target or nothing to judge it by. */
export function targetVerdict(r: MetricRow): 'met' | 'missed' | '-' {
  const t = r.metric.target;
  if (!t) return '-';
  // A ratio is judged as the table shows it (two decimals), so that 1.00x never reads as a miss of 1x.
  const v = t.on === 'ratio' ? Math.round(r.ratio * 100) / 100 : r.ours.median;
  if (!Number.isFinite(v)) return '-';
  if (t.min !== undefined && v < t.min) return 'missed';
  if (t.max !== undefined && v > t.max) return 'missed';
  return 'met';
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGB: number;
  kernel: string;
  node: string;
  openvpn: string;
}

export interface BenchResult {
  schema: 1;
  startedAt: string;
  durationS: number;
  quick: boolean;
  /** How our client ran (its command line). */
  oursMode: string;
  machine: MachineInfo;
  /** The benchmark's settings (sizes, rounds, ...). */
  settings: Record<string, unknown>;
  metrics: Metric[];
  /** How things were measured, and anything odd that happened. */
  notes: string[];
}

export interface MetricRow {
  metric: Metric;
  ours: Summary;
  native: Summary | null;
  /** ours median / native median. */
  ratio: number;
}

export function rows(metrics: readonly Metric[]): MetricRow[] {
  return metrics.map((m) => {
    const ours = summarize(m.ours);
    const native = m.native ? summarize(m.native) : null;
    return { metric: m, ours, native, ratio: native ? ratio(ours.median, native.median) : NaN };
  });
}

/** A number with about three significant digits ('-' for NaN / missing). */
export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** "median (min-max)", or just the value when all rounds agree or there is one round. */
export function fmtSummary(s: Summary | null): string {
  if (!s || s.n === 0) return '-';
  if (s.n === 1 || s.min === s.max) return fmt(s.median);
  return `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`;
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : '-';
}

const HEAD = ['metric', 'unit', 'ours median (min-max)', 'native median (min-max)', 'ours/native', 'target'];

function cells(r: MetricRow): string[] {
  const better = r.metric.better === 'higher' ? ' ↑' : r.metric.better === 'lower' ? ' ↓' : '';
  const t = r.metric.target;
  const target = t ? `${targetText(t)}: ${targetVerdict(r)}` : '';
  return [r.metric.label, `${r.metric.unit}${better}`, fmtSummary(r.ours), fmtSummary(r.native), fmtRatio(r.ratio), target];
}

/** Metrics split by group, in order of first appearance (ungrouped ones count as the first group). */
export function groups(metrics: readonly Metric[]): { name: string; metrics: Metric[] }[] {
  const out: { name: string; metrics: Metric[] }[] = [];
  for (const m of metrics) {
    const name = m.group ?? out[0]?.name ?? '';
    let g = out.find((x) => x.name === name);
    if (!g) out.push((g = { name, metrics: [] }));
    g.metrics.push(m);
  }
  return out;
}

/** Plain-text table, columns padded to their widest cell (numbers right-aligned); a heading line per group. */
export function formatTable(metrics: readonly Metric[]): string {
  const parts = groups(metrics);
  const body = parts.map((g) => rows(g.metrics).map(cells));
  const all = [HEAD, ...body.flat()];
  const widths = HEAD.map((_, c) => Math.max(...all.map((r) => [...r[c]!].length)));
  const line = (r: string[]): string =>
    r.map((cell, c) => (c < 2 || c === 5 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  const out = [line(HEAD), widths.map((w) => '-'.repeat(w)).join('  ')];
  parts.forEach((g, i) => {
    if (parts.length > 1) out.push(`${i ? '\n' : ''}${g.name}:`);
    out.push(...body[i]!.map(line));
  });
  return out.join('\n');
}

/** The markdown table alone (one per group, each under a `### group` heading when there are several). */
export function markdownTable(metrics: readonly Metric[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const parts = groups(metrics);
  const out: string[] = [];
  for (const g of parts) {
    if (parts.length > 1) out.push(`${out.length ? '\n' : ''}### ${g.name}`, '');
    out.push(`| ${HEAD.join(' | ')} |`, `|${HEAD.map((_, i) => (i < 2 || i === 5 ? '---' : '---:')).join('|')}|`);
    for (const r of rows(g.metrics)) out.push(`| ${cells(r).map(esc).join(' | ')} |`);
  }
  return out.join('\n');
}

/** latest.md: machine, settings, the table and the notes. */
export function toMarkdown(r: BenchResult): string {
  const m = r.machine;
  return [
    `# vpnproxy benchmark${r.quick ? ' (quick)' : ''}`,
    '',
    `${r.startedAt}, ${r.durationS.toFixed(0)} s. Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB.toFixed(1)} GB, ` +
      `Linux ${m.kernel}, Node ${m.node}, ${m.openvpn}. Our client: ${r.oursMode}.`,
    '',
    markdownTable(r.metrics),
    '',
    '↑ higher is better, ↓ lower is better. Values are the median over rounds with (min-max); rounds alternate between the two clients. ' +
      'Targets are issue 15\'s, judged on the medians (on ours/native, or on our own value where there is no native one).',
    '',
    ...r.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}
