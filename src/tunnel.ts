/**
 * The whole client side in one object, for any VPN protocol: the reconnect loop over a protocol's backend
 * (a Link), the userspace IP stack on it (IPv4, ICMP, UDP, DNS) and TCP, plus the seams the proxies and the
 * library use: a Dialer (TCP connects and UDP through the tunnel, names resolved by the tunnel's DNS), a
 * VpnSide for the Router, a listen() for remote forwards, and a status snapshot for /status and /metrics.
 * It knows no protocol: the backend (src/openvpn/backend.ts, later src/ipsec/) is all that differs.
 *
 *   const t = new VpnTunnel({ backend: new OpenVpnBackend({ profile, credentials, createTransport }), logger });
 *   await t.start();
 *   const sock = await t.connect({ host: 'intranet.example', port: 80 });
 */
import { EventEmitter } from 'node:events';
import { isIPv4, isIPv6 } from 'node:net';
import { VpnError } from './errors.js';
import type { Link } from './link/link.js';
import { PcapWriter, withPcap } from './link/pcap.js';
import { withTrace } from './link/trace.js';
import { ReconnectingLink, type ReconnectingEvent } from './session/reconnect.js';
import type { SessionClosed, SessionInfo, VpnBackend } from './session/types.js';
import type { Dialer, DialOptions, DialedSocket, UdpLike } from './proxy/dialer.js';
import type { VpnRouteConfig, VpnSide } from './proxy/router.js';
import type { TunnelState, TunnelStatus } from './proxy/status.js';
import type { EchoReply } from './stack/ip.js';
import { dnsOverTcp } from './stack/dns-tcp.js';
import { happyEyeballs } from './stack/happy-eyeballs.js';
import { IpStack } from './stack/stack.js';
import { TcpStack, type TcpStackOptions } from './stack/tcp/tcp.js';
import type { TcpSocket } from './stack/tcp/socket.js';
import type { UdpSocket } from './stack/udp.js';
import { SystemClock, type Clock } from './util/clock.js';
import { silentLogger, type Logger } from './util/log.js';
import { IpProtocol } from './wire/ipv4.js';
import { ipv6InPrefix, parseIpv6Address, parseIpv6Cidr } from './wire/ipv6.js';
import { hostPort } from './util/host-port.js';

export type { TunnelState } from './proxy/status.js';

export interface TunnelOptions {
  /** The VPN protocol: makes one session per attempt (OpenVpnBackend, …). */
  backend: VpnBackend<any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- each backend carries its own state type
  /** DNS servers to use instead of the pushed ones. */
  dns?: string[];
  /** Write the tunnel's IP packets to this pcap file. */
  pcap?: string;
  logger?: Logger;
  clock?: Clock;
  /** TCP tuning (buffers, congestion control, timeouts). */
  tcp?: Partial<Omit<TcpStackOptions, 'clock' | 'logger'>>;
  /** Random source in [0, 1) for the reconnect jitter (tests). */
  random?: () => number;
}

export interface TunnelEvents {
  connected: [SessionInfo];
  reconnecting: [ReconnectingEvent];
  closed: [SessionClosed];
}

export class VpnTunnel extends EventEmitter<TunnelEvents> {
  /** The reconnecting link over the backend (the current session, the last error). */
  readonly client: ReconnectingLink<unknown>;
  readonly stack: IpStack;
  readonly tcp: TcpStack;
  /** TCP over the tunnel's IPv6 (idle unless the VPN gives us an IPv6 address). */
  readonly tcp6: TcpStack;
  readonly dialer: Dialer;
  readonly vpnSide: VpnSide;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly pcap: PcapWriter | undefined;
  private stateValue: TunnelState = 'idle';
  private upSince: number | undefined;
  private reconnects = 0;
  private upWaiters = new Set<() => void>();

  constructor(private readonly opts: TunnelOptions) {
    super();
    this.clock = opts.clock ?? new SystemClock();
    this.log = opts.logger ?? silentLogger;
    this.client = new ReconnectingLink(opts.backend, { clock: opts.clock, logger: opts.logger, random: opts.random });
    let link: Link = this.client;
    if (opts.pcap) {
      this.pcap = PcapWriter.open(opts.pcap);
      link = withPcap(link, this.pcap);
    }
    if (this.log.enabled('trace')) link = withTrace(link, this.log.child('packet'));
    this.stack = new IpStack(link, {
      clock: this.clock,
      logger: this.log.child('stack'),
      // Truncated UDP answers are retried over TCP through our own TcpStack (created just below).
      dns: { ...(opts.dns?.length ? { servers: opts.dns } : {}), tcp: (server, port, query, timeoutMs) => dnsOverTcp(this.tcp)(server, port, query, timeoutMs) },
    });
    // Batch per event-loop turn: one chunk per socket and one ACK per connection for all the packets that
    // arrived together (the dgram socket hands over up to 32 per poll).
    this.tcp = new TcpStack(this.stack.ip, { defer: setImmediate, ...opts.tcp, clock: this.clock, logger: this.log.child('tcp') });
    this.stack.registerProtocol(IpProtocol.TCP, this.tcp);
    this.tcp6 = new TcpStack(this.stack.ip6, { defer: setImmediate, ...opts.tcp, clock: this.clock, logger: this.log.child('tcp6') });
    this.stack.ip6.registerProtocol(IpProtocol.TCP, this.tcp6);
    this.client.on('connected', (info) => {
      if (this.stateValue === 'reconnecting') this.reconnects++;
      this.stateValue = 'up';
      this.upSince = Date.now();
      this.stack.linkChanged();
      for (const w of this.upWaiters) w();
      this.emit('connected', info);
    });
    this.client.on('reconnecting', (e) => {
      this.stateValue = 'reconnecting';
      this.upSince = undefined;
      this.stack.linkChanged();
      this.emit('reconnecting', e);
    });
    this.client.on('closed', (e) => {
      this.stateValue = 'closed';
      this.upSince = undefined;
      this.emit('closed', e);
    });
    this.dialer = {
      connect: (host, port, o) => this.dial(host, port, o),
      resolve: (host) => this.lookup(host),
      resolve6: (host) => (isIPv6(host) ? Promise.resolve([host]) : this.stack.dns.resolve6(host)),
      bindUdp: async () => udpLike(this.udp()),
    };
    this.vpnSide = {
      dialer: this.dialer,
      config: () => this.routeConfig(),
      whenUp: (timeoutMs, signal) => this.whenUp(timeoutMs, signal),
    };
  }

  get state(): TunnelState {
    return this.stateValue;
  }
  /** The current session, once up: protocol, server, addresses, cipher and the protocol's details. */
  get info(): SessionInfo | undefined {
    return this.client.sessionInfo;
  }

  get protocol(): string {
    return this.opts.backend.protocol;
  }

  /** Connects; resolves once the tunnel is up the first time (the client keeps reconnecting after that). */
  async start(): Promise<SessionInfo> {
    this.stateValue = 'connecting';
    return this.client.start();
  }

  /**
   * start() bounded in time and abortable, as the CLI and the library both need it: throws CONNECT_TIMEOUT
   * (with the last attempt's error) after `timeoutMs` (0 = no limit), TRANSPORT_CLOSED when `signal` aborts,
   * or the fatal VPN error; the tunnel is closed whenever it throws.
   */
  async startWithin(o: { timeoutMs: number; signal?: AbortSignal }): Promise<SessionInfo> {
    const { timeoutMs, signal } = o;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          const last = this.client.lastError ? `; last error: ${this.client.lastError.message}` : '';
          reject(new VpnError('CONNECT_TIMEOUT', `the tunnel was not up within ${timeoutMs / 1000} s${last}`));
        }, timeoutMs);
      }
      onAbort = () => reject(new VpnError('TRANSPORT_CLOSED', 'connecting the VPN was aborted'));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.start(), stop]);
    } catch (e) {
      await this.close().catch(() => undefined);
      throw e;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    this.tcp.close();
    this.tcp6.close();
    this.stack.close();
    await this.client.close();
    await this.pcap?.close();
    this.stateValue = 'closed';
  }

  /** Resolve true once the tunnel is up (at once if it is), false after timeoutMs or on abort. */
  whenUp(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.stateValue === 'up') return Promise.resolve(true);
    if (this.stateValue === 'closed') return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(t);
        this.upWaiters.delete(onUp);
        signal?.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const onUp = () => done(true);
      const onAbort = () => done(false);
      const t = setTimeout(() => done(false), timeoutMs);
      this.upWaiters.add(onUp);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A TCP connection through the tunnel; names are resolved by the tunnel's DNS. */
  connect(o: { host: string; port: number; timeoutMs?: number; signal?: AbortSignal }): Promise<TcpSocket> {
    return this.dial(o.host, o.port, o) as Promise<TcpSocket>;
  }

  /**
   * Addresses of a name through the tunnel's DNS: its IPv4 addresses, or, when it has none and the tunnel has
   * IPv6, its IPv6 ones (literals are returned as they are). dial() races both families (Happy Eyeballs).
   */
  async lookup(name: string): Promise<string[]> {
    if (isIPv4(name) || isIPv6(name)) return [name];
    try {
      return await this.stack.resolve(name);
    } catch (e) {
      // A name with no A record (DNS_NODATA) may still have AAAA ones, usable when the tunnel carries IPv6.
      if (!(e instanceof VpnError) || e.code !== 'DNS_NODATA' || this.stack.ip6.localAddress() === 0) throw e;
      return this.stack.dns.resolve6(name);
    }
  }

  /** A UDP socket on the tunnel address. */
  udp(port?: number): UdpSocket {
    return this.stack.udp.bind(port);
  }

  /** One ICMP (ICMPv6 for an IPv6 literal) echo through the tunnel. */
  ping(ip: string, opts?: { timeoutMs?: number; payloadSize?: number }): Promise<EchoReply | undefined> {
    return this.stack.ping(ip, opts);
  }

  /** Accept TCP connections on the tunnel address (for remote forwards). */
  listen(port: number, onConnection: (s: TcpSocket) => void): { port: number; close(): void } {
    return this.tcp.listen(port, onConnection);
  }

  status(): TunnelStatus {
    const info = this.client.sessionInfo;
    const current = this.client.current;
    const c = current?.stats();
    const live = info && current?.statusDetails?.();
    const pending = info ? undefined : current?.authPendingStatus?.();
    return {
      state: this.stateValue,
      protocol: this.opts.backend.protocol,
      server: info ? `${hostPort(info.server.host, info.server.port)}/${info.server.proto}` : undefined,
      address: info?.link.address,
      cipher: info?.cipher,
      connectedSince: this.upSince,
      reconnects: this.reconnects,
      bytesIn: c?.bytesIn,
      bytesOut: c?.bytesOut,
      packetsIn: c?.packetsIn,
      packetsOut: c?.packetsOut,
      drops: c?.dropped,
      dropReasons: c?.drops,
      details: info ? { ...info.details, ...live } : undefined,
      metrics: info ? current?.metrics?.() : undefined,
      tcp: this.tcp.stats,
      tcp6: this.tcp6.stats,
      ...(pending ? { extra: authPendingExtra(pending) } : {}),
    };
  }

  private routeConfig(): VpnRouteConfig | undefined {
    if (this.stateValue !== 'up') return undefined;
    const cfg = this.client.config;
    if (!cfg) return undefined;
    return {
      address: cfg.address,
      netmask: cfg.netmask,
      gateway: cfg.gateway,
      routes: cfg.routes,
      redirectGateway: cfg.redirectGateway,
      dns: this.opts.dns?.length ? this.opts.dns : cfg.dns,
      address6: cfg.address6,
      prefixLength6: cfg.prefixLength6,
      gateway6: cfg.gateway6,
      routes6: cfg.routes6,
      redirectGateway6: cfg.redirectGateway6,
    };
  }

  /**
   * Does the tunnel route this IPv6 address (redirect-gateway ipv6, a pushed IPv6 route or our own prefix)?
   * Decides which family Happy Eyeballs tries first.
   */
  private routes6(addr: string): boolean {
    const cfg = this.client.config;
    if (!cfg?.address6) return false;
    if (cfg.redirectGateway6) return true;
    let a: Uint8Array;
    try {
      a = parseIpv6Address(addr);
    } catch {
      return false;
    }
    const nets = [...(cfg.routes6 ?? []), `${cfg.address6}/${cfg.prefixLength6 ?? 128}`];
    for (const n of nets) {
      try {
        const c = parseIpv6Cidr(n);
        if (ipv6InPrefix(a, c.prefix, c.length)) return true;
      } catch {
        /* not a prefix: skipped */
      }
    }
    return false;
  }

  private async dial(host: string, port: number, o: DialOptions = {}): Promise<DialedSocket> {
    if (this.stateValue !== 'up') throw new VpnError('TRANSPORT_CLOSED', 'the VPN tunnel is not up');
    if (!isIPv4(host) && !isIPv6(host) && this.stack.ip6.localAddress() !== 0) {
      // A name and IPv6 in the tunnel: Happy Eyeballs over both families.
      const cfg = this.client.config;
      const r = await happyEyeballs<DialedSocket>({
        clock: this.clock,
        name: host,
        resolve4: () => this.stack.resolve(host),
        resolve6: () => this.stack.dns.resolve6(host),
        prefer6: cfg?.redirectGateway6 ? true : (a) => this.routes6(a[0]!),
        connect: (addr, signal) => this.dialAddress(addr, port, { ...o, signal: anySignal(signal, o.signal) }),
        discard: (s) => s.destroy(),
        signal: o.signal,
      });
      this.log.debug('connected by Happy Eyeballs', { host, address: r.address, family: r.family });
      return r.conn;
    }
    return this.dialAddress(host, port, o);
  }

  private async dialAddress(host: string, port: number, o: DialOptions): Promise<DialedSocket> {
    const addrs = await this.lookup(host);
    const addr = addrs[0];
    if (!addr) throw new VpnError('DNS_NXDOMAIN', `${host} has no IPv4 address`);
    if (o.signal?.aborted) throw new VpnError('TRANSPORT_CLOSED', 'aborted');
    if (isIPv6(addr) && this.stack.ip6.localAddress() === 0)
      throw new VpnError('HOST_UNREACHABLE', `${addr} is an IPv6 destination and the VPN gave us no IPv6 address`);
    const sock = (isIPv6(addr) ? this.tcp6 : this.tcp).connect({ host: addr, port, timeoutMs: o.timeoutMs });
    return new Promise<DialedSocket>((resolve, reject) => {
      const onAbort = () => {
        sock.destroy();
        reject(new VpnError('TRANSPORT_CLOSED', 'aborted'));
      };
      if (o.signal?.aborted) return onAbort();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      sock.once('connect', () => {
        o.signal?.removeEventListener('abort', onAbort);
        sock.removeListener('error', onError);
        resolve(sock as unknown as DialedSocket);
      });
      const onError = (e: Error) => {
        o.signal?.removeEventListener('abort', onAbort);
        reject(e instanceof VpnError ? e : new VpnError('TRANSPORT_ERROR', e.message));
      };
      sock.once('error', onError);
    });
  }
}

function udpLike(s: UdpSocket): UdpLike {
  return {
    send(data, port, address) {
      try {
        s.send(data, port, address);
      } catch {
        // UdpLike drops instead of throwing (closed socket, link down, oversize).
      }
    },
    onMessage(handler) {
      s.removeAllListeners('message');
      s.on('message', (data, rinfo) => handler(data, { address: rinfo.address, port: rinfo.port }));
    },
    close() {
      s.close();
    },
  };
}

/** An AbortSignal that aborts when either does. */
function anySignal(a: AbortSignal, b: AbortSignal | undefined): AbortSignal {
  return b ? AbortSignal.any([a, b]) : a;
}

/** /status fields while a sign-in is pending: authPending, its URL, the server's timeout and since when (ISO). */
function authPendingExtra(p: { url?: string; timeout?: number; since: number }): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = { authPending: true, authPendingSince: new Date(p.since).toISOString() };
  if (p.url !== undefined) out.authPendingUrl = p.url;
  if (p.timeout !== undefined) out.authPendingTimeout = p.timeout;
  return out;
}
