/**
 * Status endpoint (--status ADDR): GET /healthz (200 "ok" when the tunnel is up, 503 with the state otherwise),
 * GET /status (JSON), GET /metrics (Prometheus text format 0.0.4). Fed by a getStatus() callback so it does not
 * depend on the session type, plus the ProxyMetrics registry the proxies update.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { silentLogger, type Logger } from '../util/log.js';
import { AccessList } from './access.js';
import { ProxyMetrics, type MetricFamily } from './metrics.js';
import { ListeningServer } from './listen.js';
import type { TcpStats } from '../stack/tcp/stats.js';

/** A metric family a protocol contributes (the shape of session/types.ts SessionMetric). */
export interface ProtocolMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly samples: readonly { readonly labels?: Readonly<Record<string, string>>; readonly value: number }[];
}

/** The one tunnel state type: VpnTunnel's, shown as it is in /status and /healthz. */
export type TunnelState = 'idle' | 'connecting' | 'up' | 'reconnecting' | 'closed';

/** What the session reports; everything but `state` is optional. Counters are totals since start. */
export interface TunnelStatus {
  state: TunnelState;
  /** 'openvpn' | 'ipsec' … */
  protocol?: string;
  /** The VPN server, e.g. "vpn.example.org:1194/udp". */
  server?: string;
  /** Our address inside the tunnel. */
  address?: string;
  /** Data-channel cipher, e.g. "AES-256-GCM". */
  cipher?: string;
  /** When the current tunnel came up (epoch ms). */
  connectedSince?: number;
  reconnects?: number;
  bytesIn?: number;
  bytesOut?: number;
  packetsIn?: number;
  packetsOut?: number;
  /** Packets dropped (bad authentication, replays, full queues …). */
  drops?: number;
  /** The same drops by reason ('replayed', 'bad-icv', 'control', …). */
  dropReasons?: Readonly<Record<string, number>>;
  /** Protocol-specific facts about the session (TLS version, key derivation, SPIs, …), shown in /status. */
  details?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** The protocol's own metric families (e.g. vpnproxy_ike_*), rendered on /metrics as they are. */
  metrics?: readonly ProtocolMetric[];
  /** Counters of the user-space TCP stack (retransmissions, recoveries, windows …), for diagnosing throughput. */
  tcp?: TcpStats;
  /** The same for TCP over the tunnel's IPv6. */
  tcp6?: TcpStats;
  /** Free-form extra fields included in /status as they are. */
  extra?: Record<string, string | number | boolean>;
}

export interface StatusServerOptions {
  getStatus: () => TunnelStatus;
  /** Proxy counters (shared with the proxies); its registry is rendered on /metrics. */
  metrics?: ProxyMetrics;
  /** Listen address (default 127.0.0.1) and port (default 9090; 0 = ephemeral). */
  host?: string;
  port?: number;
  /** Clients allowed (default loopback only); others get 403. */
  access?: AccessList;
  logger?: Logger;
  /** Wall clock in ms (tests). */
  now?: () => number;
  /** Version string reported in /status. */
  version?: string;
}

/** The JSON document served on /status. */
export interface StatusDocument {
  version?: string;
  tunnel: {
    state: TunnelState;
    up: boolean;
    protocol?: string;
    server?: string;
    address?: string;
    cipher?: string;
    uptimeSeconds: number;
    reconnects: number;
    details?: Record<string, string | number | boolean>;
  };
  traffic: { bytesIn: number; bytesOut: number; packetsIn: number; packetsOut: number; drops: number; dropReasons?: Record<string, number> };
  proxy: { connections: { active: number; total: number }; bytes: { up: number; down: number }; errors: number; denied: number };
  tcp?: TcpStats;
  extra?: Record<string, string | number | boolean>;
}

/** Events: 'listening' (AddressInfo). */
export class StatusServer extends ListeningServer {
  private readonly server: Server;
  readonly metrics: ProxyMetrics;
  private readonly access: AccessList;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly removeCollector: () => void;

  constructor(private readonly opts: StatusServerOptions) {
    super();
    this.metrics = opts.metrics ?? new ProxyMetrics();
    this.access = opts.access ?? new AccessList();
    this.log = (opts.logger ?? silentLogger).child('status');
    this.now = opts.now ?? Date.now;
    this.removeCollector = this.metrics.registry.addCollector(() => this.tunnelFamilies());
    this.server = createServer({ headersTimeout: 10_000, requestTimeout: 15_000 }, (req, res) => this.handle(req, res));
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.server.on('error', (err) => this.log.error('listener error', { error: err.message }));
  }

  protected listenTarget(): { server: Server; port: number; host: string } {
    return { server: this.server, port: this.opts.port ?? 9090, host: this.opts.host ?? '127.0.0.1' };
  }

  protected override closing(): void {
    this.removeCollector();
    this.server.closeAllConnections();
  }

  private status(): TunnelStatus | undefined {
    try {
      return this.opts.getStatus();
    } catch (err) {
      this.log.warn('getStatus failed', { error: (err as Error).message });
      return undefined;
    }
  }

  /** The /status document for a status snapshot. */
  document(st: TunnelStatus): StatusDocument {
    const up = st.state === 'up';
    const s = this.metrics.summary();
    const doc: StatusDocument = {
      tunnel: {
        state: st.state,
        up,
        protocol: st.protocol,
        server: st.server,
        address: st.address,
        cipher: st.cipher,
        uptimeSeconds: up && st.connectedSince !== undefined ? Math.max(0, Math.floor((this.now() - st.connectedSince) / 1000)) : 0,
        reconnects: st.reconnects ?? 0,
      },
      traffic: {
        bytesIn: st.bytesIn ?? 0,
        bytesOut: st.bytesOut ?? 0,
        packetsIn: st.packetsIn ?? 0,
        packetsOut: st.packetsOut ?? 0,
        drops: st.drops ?? 0,
      },
      proxy: {
        connections: { active: s.active, total: s.total },
        bytes: { up: s.bytesUp, down: s.bytesDown },
        errors: s.errors,
        denied: s.denied,
      },
    };
    if (st.details) {
      const details: Record<string, string | number | boolean> = {};
      for (const [k, v] of Object.entries(st.details)) if (v !== undefined) details[k] = v;
      doc.tunnel.details = details;
    }
    if (st.dropReasons) doc.traffic.dropReasons = { ...st.dropReasons };
    if (this.opts.version) doc.version = this.opts.version;
    if (st.tcp) doc.tcp = { ...st.tcp };
    if (st.extra) doc.extra = st.extra;
    return doc;
  }

  private tunnelFamilies(): MetricFamily[] {
    const st = this.status();
    if (!st) return [];
    const d = this.document(st);
    const g = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'gauge', samples: [{ value }] });
    const c = (name: string, help: string, samples: MetricFamily['samples']): MetricFamily => ({ name, help, type: 'counter', samples });
    return [
      {
        name: 'vpnproxy_tunnel_up',
        help: 'Whether the VPN tunnel is up (1) or not (0), with its state as a label.',
        type: 'gauge',
        samples: [{ labels: { state: st.state }, value: d.tunnel.up ? 1 : 0 }],
      },
      g('vpnproxy_tunnel_uptime_seconds', 'Seconds since the current tunnel came up.', d.tunnel.uptimeSeconds),
      c('vpnproxy_tunnel_reconnects_total', 'Reconnections since start.', [{ value: d.tunnel.reconnects }]),
      c('vpnproxy_tunnel_bytes_total', 'Bytes of IP packets through the tunnel, by direction.', [
        { labels: { direction: 'in' }, value: d.traffic.bytesIn },
        { labels: { direction: 'out' }, value: d.traffic.bytesOut },
      ]),
      c('vpnproxy_tunnel_packets_total', 'IP packets through the tunnel, by direction.', [
        { labels: { direction: 'in' }, value: d.traffic.packetsIn },
        { labels: { direction: 'out' }, value: d.traffic.packetsOut },
      ]),
      c('vpnproxy_tunnel_drops_total', 'Packets dropped by the tunnel (authentication, replay, queue full).', [
        { value: d.traffic.drops },
      ]),
      ...(st.dropReasons
        ? [
            c(
              'vpnproxy_tunnel_dropped_packets_total',
              'Packets dropped by the tunnel, by reason (protocol-specific reasons).',
              Object.entries(st.dropReasons).map(([reason, value]) => ({ labels: { reason }, value })),
            ),
          ]
        : []),
      ...(st.details && Object.values(st.details).some((v) => typeof v === 'number')
        ? [
            {
              name: 'vpnproxy_tunnel_detail',
              help: "The protocol's numeric session facts (sequence numbers, lifetime left, keepalives …), by name.",
              type: 'gauge' as const,
              samples: Object.entries(st.details)
                .filter((e): e is [string, number] => typeof e[1] === 'number')
                .map(([name, value]) => ({ labels: { name }, value })),
            },
          ]
        : []),
      ...(st.metrics ?? []).map((m) => ({ name: m.name, help: m.help, type: m.type, samples: m.samples.map((x) => ({ labels: x.labels && { ...x.labels }, value: x.value })) })),
      ...(st.tcp ? tcpFamilies(st.tcp) : []),
    ];
  }

  private send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    });
    res.end(head ? undefined : body);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const text = 'text/plain; charset=utf-8';
    try {
      if (!this.access.allows(req.socket.remoteAddress)) return this.send(res, 403, text, 'forbidden\n', false);
      const head = req.method === 'HEAD';
      if (req.method !== 'GET' && !head) {
        res.setHeader('Allow', 'GET, HEAD');
        return this.send(res, 405, text, 'method not allowed\n', false);
      }
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') {
        const st = this.status();
        if (st?.state === 'up') return this.send(res, 200, text, 'ok\n', head);
        return this.send(res, 503, text, `${st?.state ?? 'unknown'}\n`, head);
      }
      if (path === '/status') {
        const st = this.status();
        if (!st) return this.send(res, 500, text, 'status unavailable\n', head);
        return this.send(res, 200, 'application/json; charset=utf-8', JSON.stringify(this.document(st), null, 2) + '\n', head);
      }
      if (path === '/metrics') {
        return this.send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', this.metrics.registry.render(), head);
      }
      return this.send(res, 404, text, 'not found (try /healthz, /status, /metrics)\n', head);
    } catch (err) {
      this.log.warn('status request failed', { error: (err as Error).message });
      if (!res.headersSent) this.send(res, 500, text, 'internal error\n', false);
      else res.destroy();
    }
  }
}

/** The TCP stack's counters as metric families: gauges for levels and maxima, counters for the rest. */
export function tcpFamilies(t: TcpStats): MetricFamily[] {
  const gauges: Partial<Record<keyof TcpStats, string>> = {
    connections: 'TCP connections in the user-space stack now (TIME_WAIT included).',
    timeWait: 'TCP connections of the user-space stack in TIME_WAIT now.',
    maxAdvertisedWindow: 'Largest receive window the stack advertised, in bytes.',
    maxPeerWindow: 'Largest window a peer offered the stack, in bytes.',
  };
  const out: MetricFamily[] = [];
  for (const [key, value] of Object.entries(t) as [keyof TcpStats, number][]) {
    const snake = key.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
    const gaugeHelp = gauges[key];
    if (gaugeHelp) out.push({ name: `vpnproxy_tcp_${snake}`, help: gaugeHelp, type: 'gauge', samples: [{ value }] });
    else out.push({ name: `vpnproxy_tcp_${snake}_total`, help: `User-space TCP stack counter ${key} since start.`, type: 'counter', samples: [{ value }] });
  }
  return out;
}
