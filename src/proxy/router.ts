/**
 * Per-destination choice between the VPN dialer and the direct one.
 *
 * Policies (CLI: default, --route-all, --direct-unrouted):
 *  - 'follow': destinations inside the VPN's routes (or the tunnel subnet) go through the VPN; when the server
 *    pushes redirect-gateway, everything does; the rest goes directly from this host.
 *  - 'route-all': everything through the VPN.
 *  - 'direct-unrouted': only destinations inside the VPN's routes / tunnel subnet go through the VPN, even when
 *    redirect-gateway is pushed.
 * Names are resolved through the VPN's DNS first whenever the VPN has resolvers (pushed or --dns), so that a
 * lookup never leaks to the local resolver; the route is then chosen from the resolved address.
 */
import type { Duplex } from 'node:stream';
import { isIPv4, isIPv6 } from 'node:net';
import { VpnError } from '../errors.js';
import type { LinkConfig } from '../link/link.js';
import { cidrContains, ipv4ToInt, netmaskToPrefix, parseIpv4Cidr, type Ipv4Cidr } from './cidr.js';
import { parseIpv6Address, parseIpv6Cidr, ipv6InPrefix } from '../wire/ipv6.js';
import { planFamilies } from './family-choice.js';
import { netDialer, type DialOptions, type DialedSocket, type Dialer, type UdpLike, type UdpPeer } from './dialer.js';

export type RoutePolicy = 'follow' | 'route-all' | 'direct-unrouted';
export type RouteName = 'vpn' | 'direct';

/** What the router needs to know about the VPN side (a subset of LinkConfig). */
export type VpnRouteConfig = Pick<LinkConfig, 'address' | 'netmask' | 'gateway' | 'routes' | 'redirectGateway' | 'dns'> &
  Partial<Pick<LinkConfig, 'address6' | 'prefixLength6' | 'gateway6' | 'routes6' | 'redirectGateway6'>>;

/**
 * The refusal for an IPv6 destination the tunnel cannot carry (it has no IPv6) when unrouted traffic may not go
 * direct: SOCKS5 answers 0x03 (network unreachable), HTTP 502 with this reason.
 */
export function noIpv6Route(host: string): VpnError {
  const cause = Object.assign(new Error('no IPv6 route'), { code: 'ENETUNREACH' });
  return new VpnError(
    'HOST_UNREACHABLE',
    `${host} is an IPv6 destination and the VPN carries no IPv6; it is not sent directly from this host (use --direct-unrouted to allow that)`,
    { cause },
  );
}

interface Ipv6Route {
  prefix: Uint8Array;
  length: number;
}

/** The VPN side as the router sees it. */
export interface VpnSide {
  /** Dials through the tunnel (the userspace stack); resolves names through the VPN's DNS. */
  readonly dialer: Dialer;
  /** Current configuration; undefined while the tunnel is not up. */
  config(): VpnRouteConfig | undefined;
  /** Optional: resolve true as soon as the tunnel is up, false after timeoutMs. (Default: poll config().) */
  whenUp?(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
}

export interface Dialed {
  socket: DialedSocket;
  route: RouteName;
  /** The address actually dialed (IPv4 literal, or the name when the VPN dialer resolved it itself). */
  address: string;
}

/** What the proxies use: route-aware dialing plus tunnel readiness. Router implements it; so does fixedRoute(). */
export interface Routing {
  dial(host: string, port: number, opts?: DialOptions): Promise<Dialed>;
  resolve(host: string): Promise<string[]>;
  /** A UDP socket whose datagrams are routed per destination like TCP connections. */
  bindUdp(): Promise<UdpLike>;
  /** The route an IPv4 destination would take now (undefined while the tunnel is down). */
  routeFor(ip: string): RouteName | undefined;
  /** Is the tunnel up (may the proxies dial)? */
  isUp(): boolean;
  /** Resolves true when up (immediately if it is), false after timeoutMs. */
  waitUp(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
}

export interface RouterOptions {
  vpn: VpnSide;
  /** Direct dialer (default netDialer()). */
  direct?: Dialer;
  policy?: RoutePolicy;
  /** Connect timeout enforced around either dialer (ms, default 10 000). */
  connectTimeoutMs?: number;
}

const notUp = () => new VpnError('TRANSPORT_CLOSED', 'the VPN tunnel is not up');

export class Router implements Routing {
  readonly policy: RoutePolicy;
  private readonly vpn: VpnSide;
  private readonly direct: Dialer;
  private readonly connectTimeoutMs: number;
  private cachedFor: VpnRouteConfig | undefined;
  private cachedRoutes: Ipv4Cidr[] = [];
  private cachedFor6: VpnRouteConfig | undefined;
  private cachedRoutes6: Ipv6Route[] = [];

  constructor(opts: RouterOptions) {
    this.vpn = opts.vpn;
    this.direct = opts.direct ?? netDialer();
    this.policy = opts.policy ?? 'follow';
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  }

  isUp(): boolean {
    return this.vpn.config() !== undefined;
  }

  async waitUp(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.isUp()) return true;
    if (timeoutMs <= 0) return false;
    if (this.vpn.whenUp) return this.vpn.whenUp(timeoutMs, signal);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !signal?.aborted) {
      await new Promise((r) => setTimeout(r, Math.min(50, deadline - Date.now())));
      if (this.isUp()) return true;
    }
    return this.isUp();
  }

  /**
   * The route an IPv4 or IPv6 destination takes under the current VPN configuration (undefined while down, and
   * for an IPv6 destination that may go neither way: see route6).
   */
  routeFor(ip: string): RouteName | undefined {
    const cfg = this.vpn.config();
    if (!cfg) return undefined;
    if (isIPv6(ip)) {
      const r = this.route6(cfg, ip);
      return r === 'unrouted' ? undefined : r;
    }
    if (this.policy === 'route-all') return 'vpn';
    if (this.policy === 'follow' && cfg.redirectGateway) return 'vpn';
    const addr = ipv4ToInt(ip);
    if (addr === undefined) return 'vpn';
    for (const c of this.routesOf(cfg)) if (cidrContains(c, addr)) return 'vpn';
    return 'direct';
  }

  /**
   * IPv6: with IPv6 in the tunnel, like IPv4 (route-all and a pushed redirect-gateway ipv6 send everything in,
   * otherwise the pushed routes and our prefix). Without IPv6 in the tunnel nothing can go in, and an IPv6
   * destination goes direct only under --direct-unrouted: a proxy user who asked for the VPN must not find their
   * IPv6 traffic leaving from this host.
   */
  private route6(cfg: VpnRouteConfig, ip: string): RouteName | 'unrouted' {
    if (cfg.address6 === undefined) return this.policy === 'direct-unrouted' ? 'direct' : 'unrouted';
    if (this.policy === 'route-all') return 'vpn';
    if (this.policy === 'follow' && cfg.redirectGateway6) return 'vpn';
    const addr = parseIpv6Address(ip);
    for (const r of this.routes6Of(cfg)) if (ipv6InPrefix(addr, r.prefix, r.length)) return 'vpn';
    return 'direct';
  }

  private routes6Of(cfg: VpnRouteConfig): Ipv6Route[] {
    if (this.cachedFor6 !== cfg) {
      const list: Ipv6Route[] = [];
      const add = (text: string): void => {
        try {
          list.push(parseIpv6Cidr(text));
        } catch {
          // not an IPv6 prefix: ignored
        }
      };
      for (const r of cfg.routes6 ?? []) add(r);
      if (cfg.address6 !== undefined) add(`${cfg.address6}/${cfg.prefixLength6 ?? 64}`);
      if (cfg.gateway6 !== undefined) add(cfg.gateway6);
      this.cachedFor6 = cfg;
      this.cachedRoutes6 = list;
    }
    return this.cachedRoutes6;
  }

  /** True when every destination goes through the VPN, so names can be handed to the VPN dialer unresolved. */
  private allVpn(cfg: VpnRouteConfig): boolean {
    return this.policy === 'route-all' || (this.policy === 'follow' && cfg.redirectGateway);
  }

  private routesOf(cfg: VpnRouteConfig): Ipv4Cidr[] {
    if (this.cachedFor !== cfg) {
      const list: Ipv4Cidr[] = [];
      for (const r of cfg.routes) {
        const c = parseIpv4Cidr(r);
        if (c) list.push(c);
      }
      const prefix = netmaskToPrefix(cfg.netmask);
      const self = prefix === undefined ? undefined : parseIpv4Cidr(`${cfg.address}/${prefix}`);
      if (self) list.push(self);
      if (cfg.gateway !== undefined) {
        const gw = parseIpv4Cidr(cfg.gateway);
        if (gw) list.push(gw);
      }
      this.cachedFor = cfg;
      this.cachedRoutes = list;
    }
    return this.cachedRoutes;
  }

  async resolve(host: string): Promise<string[]> {
    if (isIPv4(host) || isIPv6(host)) return [host];
    const cfg = this.vpn.config();
    if (!cfg) throw notUp();
    if (cfg.dns.length > 0 || this.allVpn(cfg)) return this.vpn.dialer.resolve(host);
    return this.direct.resolve(host);
  }

  async dial(host: string, port: number, opts: DialOptions = {}): Promise<Dialed> {
    const cfg = this.vpn.config();
    if (!cfg) throw notUp();
    const timeoutMs = opts.timeoutMs ?? this.connectTimeoutMs;
    if (isIPv6(host)) {
      const route = this.route6(cfg, host);
      if (route === 'unrouted') throw noIpv6Route(host);
      const socket = await withTimeout(route === 'vpn' ? this.vpn.dialer : this.direct, host, port, timeoutMs, opts.signal);
      return { socket, route, address: host };
    }
    if (!isIPv4(host) && this.allVpn(cfg)) {
      const socket = await withTimeout(this.vpn.dialer, host, port, timeoutMs, opts.signal);
      return { socket, route: 'vpn', address: host };
    }
    if (!isIPv4(host) && cfg.address6 !== undefined && this.vpn.dialer.resolve6 && (cfg.dns.length > 0 || this.allVpn(cfg)))
      return this.dialName(host, port, timeoutMs, opts.signal);
    const address = isIPv4(host) ? host : (await this.resolve(host))[0]!;
    const route = this.routeFor(address);
    if (!isIPv4(host) && route === 'vpn' && cfg.address6 !== undefined && (cfg.dns.length > 0 || this.allVpn(cfg))) {
      // A VPN dialer that cannot ask AAAA on its own: hand it the name (it races A and AAAA itself).
      const socket = await withTimeout(this.vpn.dialer, host, port, timeoutMs, opts.signal);
      return { socket, route, address: host };
    }
    if (!route) throw notUp();
    const dialer = route === 'vpn' ? this.vpn.dialer : this.direct;
    const socket = await withTimeout(dialer, address, port, timeoutMs, opts.signal);
    return { socket, route, address };
  }

  /**
   * A name, with IPv6 in the tunnel and the VPN's DNS: A and AAAA are asked at once, then planFamilies decides
   * (both routed in: the tunnel's Happy Eyeballs; one routed in: that address through the tunnel, the other
   * directly only under direct-unrouted; neither: directly as before).
   */
  private async dialName(host: string, port: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<Dialed> {
    const vpn = this.vpn.dialer;
    const [r4, r6] = await Promise.allSettled([vpn.resolve(host), vpn.resolve6!(host)]);
    const got4 = r4.status === 'fulfilled' ? r4.value : [];
    const a4 = got4.find((a) => isIPv4(a));
    const a6 = (r6.status === 'fulfilled' ? r6.value : []).find((a) => isIPv6(a)) ?? got4.find((a) => isIPv6(a));
    if (a4 === undefined && a6 === undefined) {
      throw r4.status === 'rejected' ? r4.reason : r6.status === 'rejected' ? r6.reason : new VpnError('DNS_NODATA', `${host} has no address`);
    }
    const plan = planFamilies({ a4, a6 }, (ip) => this.routeFor(ip), this.policy);
    if (plan.kind === 'tunnel') {
      const socket = await withTimeout(vpn, host, port, timeoutMs, signal);
      return { socket, route: 'vpn', address: host };
    }
    if (plan.attempts.length === 0) throw noIpv6Route(host);
    let firstError: unknown;
    for (const a of plan.attempts) {
      try {
        const socket = await withTimeout(a.route === 'vpn' ? vpn : this.direct, a.address, port, timeoutMs, signal);
        return { socket, route: a.route, address: a.address };
      } catch (e) {
        firstError ??= e;
        if (signal?.aborted) break;
      }
    }
    throw firstError;
  }

  async bindUdp(): Promise<UdpLike> {
    if (!this.isUp()) throw notUp();
    return new RoutedUdp((ip) => this.routeFor(ip), this.vpn.dialer, this.direct);
  }
}

/** Dial with a timeout and abort enforced here, whatever the dialer does with them. */
async function withTimeout(
  dialer: Dialer,
  host: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<DialedSocket> {
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const attempt = dialer.connect(host, port, { timeoutMs, signal: ac.signal });
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new VpnError('CONNECT_TIMEOUT', `connecting to ${host}:${port} timed out after ${timeoutMs} ms`));
      ac.abort();
    }, timeoutMs);
    ac.signal.addEventListener(
      'abort',
      () => reject(new VpnError('TRANSPORT_CLOSED', `connecting to ${host}:${port} was aborted`)),
      { once: true },
    );
  });
  try {
    return await Promise.race([attempt, guard]);
  } catch (err) {
    // A socket that arrives after we gave up must not leak.
    attempt.then((s) => (s as Duplex).destroy(), () => {});
    throw err;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** A UDP socket that sends each datagram through the VPN or directly, binding either side lazily. */
class RoutedUdp implements UdpLike {
  private handler: (data: Uint8Array, from: UdpPeer) => void = () => {};
  private readonly sides = new Map<RouteName, Promise<UdpLike | undefined>>();
  private closed = false;

  constructor(
    private readonly routeFor: (ip: string) => RouteName | undefined,
    private readonly vpn: Dialer,
    private readonly direct: Dialer,
  ) {}

  private side(route: RouteName): Promise<UdpLike | undefined> {
    let p = this.sides.get(route);
    if (!p) {
      p = (route === 'vpn' ? this.vpn : this.direct).bindUdp().then(
        (u) => {
          if (this.closed) {
            u.close();
            return undefined;
          }
          u.onMessage((d, from) => this.handler(d, from));
          return u;
        },
        () => undefined,
      );
      this.sides.set(route, p);
    }
    return p;
  }

  send(data: Uint8Array, port: number, address: string): void {
    if (this.closed) return;
    const route = this.routeFor(address);
    if (!route) return; // tunnel down: dropped
    void this.side(route).then((u) => u?.send(data, port, address));
  }

  onMessage(handler: (data: Uint8Array, from: UdpPeer) => void): void {
    this.handler = handler;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.sides.values()) void p.then((u) => u?.close());
  }
}

/** A Routing that always uses one dialer under one route name (tests, or a library user with no VPN routes). */
export function fixedRoute(
  dialer: Dialer,
  route: RouteName = 'vpn',
  isUp: () => boolean = () => true,
  connectTimeoutMs = 10_000,
): Routing {
  return {
    async dial(host, port, opts = {}) {
      if (!isUp()) throw notUp();
      const socket = await withTimeout(dialer, host, port, opts.timeoutMs ?? connectTimeoutMs, opts.signal);
      return { socket, route, address: host };
    },
    resolve: (host) => dialer.resolve(host),
    bindUdp: () => dialer.bindUdp(),
    routeFor: () => (isUp() ? route : undefined),
    isUp,
    async waitUp(timeoutMs, signal) {
      const deadline = Date.now() + timeoutMs;
      while (!isUp() && Date.now() < deadline && !signal?.aborted)
        await new Promise((r) => setTimeout(r, Math.min(20, deadline - Date.now())));
      return isUp();
    },
  };
}
