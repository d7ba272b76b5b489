/**
 * A small metrics registry rendered in the Prometheus text exposition format (version 0.0.4): counters and
 * gauges with labels, plus collectors that contribute samples computed at scrape time (tunnel counters from
 * getStatus()). ProxyMetrics is the bundle the proxies and forwards update.
 */
export type Labels = Record<string, string>;
type MetricType = 'counter' | 'gauge';

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
function labelKey(labelNames: readonly string[], labels: Labels | undefined): string {
  return labelNames.map((n) => labels?.[n] ?? '').join('\u0000');
}

abstract class Metric {
  protected readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME_RE.test(name)) throw new Error(`bad metric name ${name}`);
    for (const l of labelNames) if (!LABEL_RE.test(l)) throw new Error(`bad label name ${l}`);
  }
  abstract readonly type: MetricType;
  protected entry(labels?: Labels): { labels: Labels; value: number } {
    const key = labelKey(this.labelNames, labels);
    let e = this.values.get(key);
    if (!e) {
      const own: Labels = {};
      for (const n of this.labelNames) own[n] = labels?.[n] ?? '';
      e = { labels: own, value: 0 };
      this.values.set(key, e);
    }
    return e;
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(this.labelNames, labels))?.value ?? 0;
  }
  /** Sum over all label sets. */
  total(): number {
    let t = 0;
    for (const e of this.values.values()) t += e.value;
    return t;
  }
  family(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      samples: [...this.values.values()].map((e) => ({ labels: e.labels, value: e.value })),
    };
  }
}

export class Counter extends Metric {
  readonly type = 'counter' as const;
  inc(labels?: Labels, by = 1): void {
    if (by < 0) throw new Error('counters only go up');
    this.entry(labels).value += by;
  }
}

export class Gauge extends Metric {
  readonly type = 'gauge' as const;
  set(value: number, labels?: Labels): void {
    this.entry(labels).value = value;
  }
  inc(labels?: Labels, by = 1): void {
    this.entry(labels).value += by;
  }
  dec(labels?: Labels, by = 1): void {
    this.entry(labels).value -= by;
  }
}

export type Collector = () => MetricFamily[];

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();
  private readonly collectors: Collector[] = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register(name, () => new Counter(name, help, labelNames), 'counter') as Counter;
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register(name, () => new Gauge(name, help, labelNames), 'gauge') as Gauge;
  }
  /** Add samples computed at scrape time. Returns a function that removes the collector. */
  addCollector(c: Collector): () => void {
    this.collectors.push(c);
    return () => {
      const i = this.collectors.indexOf(c);
      if (i >= 0) this.collectors.splice(i, 1);
    };
  }
  private register(name: string, make: () => Metric, type: MetricType): Metric {
    const existing = this.metrics.get(name);
    if (existing) {
      if (existing.type !== type) throw new Error(`metric ${name} already registered as ${existing.type}`);
      return existing;
    }
    const m = make();
    this.metrics.set(name, m);
    return m;
  }
  families(): MetricFamily[] {
    const out = [...this.metrics.values()].map((m) => m.family());
    for (const c of this.collectors) {
      try {
        out.push(...c());
      } catch {
        /* a failing collector must not break the scrape */
      }
    }
    return out;
  }
  /** Prometheus text format: HELP and TYPE once per family, then its samples. */
  render(): string {
    return renderFamilies(this.families());
  }
}

export function renderFamilies(families: MetricFamily[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const f of families) {
    if (seen.has(f.name)) continue; // a name may appear once per exposition
    seen.add(f.name);
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      const labels = s.labels && Object.keys(s.labels).length > 0
        ? `{${Object.entries(s.labels)
            .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
            .join(',')}}`
        : '';
      out += `${f.name}${labels} ${formatValue(s.value)}\n`;
    }
  }
  return out;
}

export type ProxyKind = 'http' | 'socks5' | 'forward' | 'remote-forward';

/** The counters every proxy front-end updates; shared by all listeners of one process. */
export class ProxyMetrics {
  readonly connectionsTotal: Counter;
  readonly connectionsActive: Gauge;
  readonly bytesTotal: Counter;
  readonly errorsTotal: Counter;
  readonly deniedTotal: Counter;

  constructor(readonly registry: MetricsRegistry = new MetricsRegistry()) {
    this.connectionsTotal = registry.counter(
      'vpnproxy_proxy_connections_total',
      'Proxied connections (or HTTP requests) completed, by front-end and route.',
      ['proxy', 'route'],
    );
    this.connectionsActive = registry.gauge(
      'vpnproxy_proxy_connections_active',
      'Proxied connections currently open, by front-end.',
      ['proxy'],
    );
    this.bytesTotal = registry.counter(
      'vpnproxy_proxy_bytes_total',
      'Payload bytes relayed by the proxies; direction up = client to destination, down = back.',
      ['proxy', 'direction'],
    );
    this.errorsTotal = registry.counter(
      'vpnproxy_proxy_errors_total',
      'Proxy requests that failed, by front-end and reason.',
      ['proxy', 'reason'],
    );
    this.deniedTotal = registry.counter(
      'vpnproxy_proxy_denied_total',
      'Clients refused by --allow or by proxy authentication.',
      ['proxy', 'reason'],
    );
  }

  opened(proxy: ProxyKind): void {
    this.connectionsActive.inc({ proxy });
  }
  closed(proxy: ProxyKind, route: string, up: number, down: number): void {
    this.connectionsActive.dec({ proxy });
    this.connectionsTotal.inc({ proxy, route });
    if (up) this.bytesTotal.inc({ proxy, direction: 'up' }, up);
    if (down) this.bytesTotal.inc({ proxy, direction: 'down' }, down);
  }
  error(proxy: ProxyKind, reason: string): void {
    this.errorsTotal.inc({ proxy, reason });
  }
  denied(proxy: ProxyKind, reason: 'allow' | 'auth'): void {
    this.deniedTotal.inc({ proxy, reason });
  }
  /** Totals for /status. */
  summary(): { active: number; total: number; errors: number; denied: number; bytesUp: number; bytesDown: number } {
    let bytesUp = 0;
    let bytesDown = 0;
    for (const s of this.bytesTotal.family().samples) {
      if (s.labels?.direction === 'up') bytesUp += s.value;
      else bytesDown += s.value;
    }
    return {
      active: this.connectionsActive.total(),
      total: this.connectionsTotal.total(),
      errors: this.errorsTotal.total(),
      denied: this.deniedTotal.total(),
      bytesUp,
      bytesDown,
    };
  }
}
