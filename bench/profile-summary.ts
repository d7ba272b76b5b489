/**
 * Top self-time functions of a V8 .cpuprofile (from `node --cpu-prof`).
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top 25]
 *
 * Self time of a function = the sampled time spent in it, not in its callees; summed over every node of the
 * call tree with the same function, file and line. Percentages are of the busy time (everything but "(idle)").
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  fn: string;
  /** Short location, e.g. 'src/stack/tcp/conn.ts:120' or 'node:internal/...'. */
  where: string;
  ms: number;
  /** Percent of busy time. */
  pct: number;
  /** The nearest caller in our own code (dist/ or src/) on the paths that spent most of this time, if any. */
  via?: string;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  top: SelfTime[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  const i = url.search(/\/(src|dist|node_modules|bench|test)\//);
  if (i >= 0) return url.slice(i + 1);
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(p: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  if (p.samples && p.timeDeltas && p.samples.length === p.timeDeltas.length) {
    // timeDeltas[i] is the time since the previous sample; charge it to the sample it ends on (as DevTools does
    // for the sample that was running during that interval, approximately).
    for (let i = 0; i < p.samples.length; i++) {
      const id = p.samples[i]!;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, p.timeDeltas[i]!));
    }
  } else {
    const hits = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
    const per = hits ? (p.endTime - p.startTime) / hits : 0;
    for (const n of p.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * per);
  }
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ourCaller = (id: number): string | undefined => {
    for (let q = parent.get(id), depth = 0; q !== undefined && depth < 30; q = parent.get(q), depth++) {
      const f = byId.get(q)?.callFrame;
      if (f && /\/(dist|src)\//.test(f.url)) return `${f.functionName || '(anonymous)'} (${shortUrl(f.url)}:${f.lineNumber + 1})`;
    }
    return undefined;
  };
  const callers = new Map<string, Map<string, number>>();
  const agg = new Map<string, SelfTime>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    totalUs += us;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') idleUs += us;
    const url = shortUrl(n.callFrame.url);
    const where = url ? `${url}:${n.callFrame.lineNumber + 1}` : '';
    const key = `${fn}\0${where}`;
    const e = agg.get(key);
    if (e) e.ms += us / 1000;
    else agg.set(key, { fn, where, ms: us / 1000, pct: 0 });
    const via = /\/(dist|src)\//.test(n.callFrame.url) ? undefined : ourCaller(id);
    if (via) {
      const m = callers.get(key) ?? new Map<string, number>();
      m.set(via, (m.get(via) ?? 0) + us);
      callers.set(key, m);
    }
  }
  for (const [key, m] of callers) {
    const best = [...m].sort((a, b) => b[1] - a[1])[0];
    const e = agg.get(key);
    if (e && best) e.via = best[0];
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const list = [...agg.values()].filter((e) => e.fn !== '(idle)');
  for (const e of list) e.pct = busyMs > 0 ? (100 * e.ms) / busyMs : 0;
  list.sort((a, b) => b.ms - a.ms);
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, busyMs, top: list.slice(0, top) };
}

export function formatProfileSummary(s: ProfileSummary): string {
  const lines = [
    `profile: ${(s.totalMs / 1000).toFixed(1)} s sampled, busy ${(s.busyMs / 1000).toFixed(1)} s, idle ${(s.idleMs / 1000).toFixed(1)} s`,
    '  self ms   % busy  function  (location)  <- nearest caller in our code',
  ];
  for (const e of s.top) {
    lines.push(`${e.ms.toFixed(0).padStart(9)}  ${e.pct.toFixed(1).padStart(6)}%  ${e.fn}${e.where ? `  (${e.where})` : ''}${e.via ? `  <- ${e.via}` : ''}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: profile-summary.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const ti = process.argv.indexOf('--top');
  const top = ti > 0 ? Number(process.argv[ti + 1]) : 25;
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${formatProfileSummary(summarizeProfile(p, top))}\n`);
}
