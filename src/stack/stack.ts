/**
 * The userspace IP stack on one Link: IPv4 + ICMP (IpLayer), UDP (UdpStack) and the tunnel DNS resolver,
 * with a place for TCP: `registerProtocol(6, handler)` (the handler sends through `stack.ip`, an IpSender).
 *
 *   const stack = new IpStack(session, { clock: new SystemClock(), logger, dns: { servers: ['10.8.0.1'] } });
 *   await stack.ping('10.8.0.1');           // EchoReply | undefined
 *   await stack.resolve('web.lab.test');    // ['10.8.0.1']
 *   const sock = stack.udp.bind();          // UdpSocket
 */
import type { Link } from '../link/link.js';
import type { Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { IpProtocol } from '../wire/ipv4.js';
import { Resolver, type LookupResult, type ResolverOptions, type ResolverStats } from './dns.js';
import { IpLayer, type EchoReply, type IpStats, type LinkChange, type PingOptions } from './ip.js';
import { Ip6Layer, type Ip6Stats } from './ip6.js';
import type { ReassemblyLimits } from './reassembly.js';
import type { ProtocolHandler } from './types.js';
import { UdpStack, type UdpStackOptions, type UdpStackStats } from './udp.js';

export interface IpStackOptions {
  clock: Clock;
  logger?: Logger;
  /** Resolver settings (servers/search domains override what the VPN pushed). */
  dns?: Omit<ResolverOptions, 'clock' | 'logger'>;
  udp?: UdpStackOptions;
  reassembly?: ReassemblyLimits;
  /** TTL of what we send (default 64). */
  ttl?: number;
}

export interface IpStackStats {
  ip: IpStats;
  ip6: Ip6Stats;
  udp: UdpStackStats;
  dns: ResolverStats;
}

export class IpStack {
  readonly ip: IpLayer;
  /** IPv6 on the same link: up while the link config has address6. TCP over it is a second TcpStack. */
  readonly ip6: Ip6Layer;
  readonly udp: UdpStack;
  readonly dns: Resolver;
  readonly clock: Clock;
  readonly logger: Logger;

  constructor(
    readonly link: Link,
    opts: IpStackOptions,
  ) {
    this.clock = opts.clock;
    this.logger = opts.logger ?? silentLogger;
    this.ip = new IpLayer(link, { clock: opts.clock, logger: this.logger, reassembly: opts.reassembly, ttl: opts.ttl });
    this.ip6 = new Ip6Layer(link, { clock: opts.clock, logger: this.logger, hopLimit: opts.ttl });
    this.ip.setIpv6Input((p) => this.ip6.input(p));
    this.udp = new UdpStack(this.ip, opts.udp);
    this.ip.registerProtocol(IpProtocol.UDP, this.udp);
    this.ip6.registerProtocol(IpProtocol.UDP, this.udp.attachIpv6(this.ip6));
    this.dns = new Resolver(this.udp, () => link.config, { ...opts.dns, clock: opts.clock, logger: this.logger });
    this.ip.onLinkChange(() => this.dns.clearCache());
  }

  /** Plug in a transport protocol (TCP: 6). */
  registerProtocol(protocol: number, handler: ProtocolHandler): void {
    this.ip.registerProtocol(protocol, handler);
  }

  /** One ICMP (or, for an IPv6 literal, ICMPv6) echo request; the reply, or undefined on timeout / ICMP error / link down. */
  ping(dst: string | number, opts?: PingOptions): Promise<EchoReply | undefined> {
    if (typeof dst === 'string' && dst.includes(':')) return this.ip6.ping(dst, opts);
    return this.ip.ping(dst, opts);
  }

  /** IPv4 addresses of a name, through the tunnel's DNS. Rejects with DnsError. */
  resolve(name: string): Promise<string[]> {
    return this.dns.resolve(name);
  }

  lookup(name: string): Promise<LookupResult> {
    return this.dns.lookup(name);
  }

  /** Tell the stack the link's config may have changed (reconnect, new address, down). */
  linkChanged(): void {
    this.ip.linkChanged();
    this.ip6.linkChanged();
  }

  onLinkChange(listener: (c: LinkChange) => void): void {
    this.ip.onLinkChange(listener);
  }

  stats(): IpStackStats {
    return { ip: this.ip.stats, ip6: this.ip6.stats, udp: this.udp.stats, dns: this.dns.stats };
  }

  /** Close sockets, stop timers, stop listening to the link. */
  close(): void {
    this.dns.close();
    this.udp.close();
    this.ip6.close();
    this.ip.close();
  }
}
