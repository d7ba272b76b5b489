/**
 * The one seam between a VPN and the IP stack. An OpenVPN session, an ESP security association and an
 * in-memory loopback are Links; the pcap tracer and the fault injector wrap a Link. The stack and
 * everything above it import nothing from openvpn/ or ipsec/.
 */
export interface LinkConfig {
  /** Our IPv4 address inside the tunnel, dotted quad. */
  address: string;
  /** Netmask (dotted quad) of the tunnel network, or 255.255.255.255 for point-to-point. */
  netmask: string;
  /** Gateway / remote peer address inside the tunnel, if any. */
  gateway?: string;
  /** Largest IP packet the link carries. */
  mtu: number;
  /** DNS resolvers pushed by the server. */
  dns: string[];
  /** Search domains pushed by the server. */
  domains: string[];
  /** Routes (CIDR) that the VPN says belong to it; redirectGateway means "everything". */
  routes: string[];
  redirectGateway: boolean;
  /** Our IPv6 address inside the tunnel (RFC 5952 text), when the VPN gives us one. */
  address6?: string | undefined;
  /** Prefix length of the tunnel's IPv6 network (default 64 with address6). */
  prefixLength6?: number | undefined;
  /** The peer's IPv6 address inside the tunnel, if any. */
  gateway6?: string | undefined;
  /** IPv6 routes (CIDR) that belong to the VPN; redirectGateway6 means "all of IPv6". */
  routes6?: string[] | undefined;
  redirectGateway6?: boolean | undefined;
  /** IPv6 DNS resolvers pushed by the server (not queried yet: the resolver speaks to IPv4 servers). */
  dns6?: string[] | undefined;
  /** False when the VPN says IPv4 is not to be routed through it (OpenVPN redirect-gateway !ipv4). */
  redirectGateway4?: boolean | undefined;
}

export type PacketHandler = (packet: Uint8Array) => void;

export interface Link {
  /** Send one IP packet (IPv4, or IPv6 when the config has address6) into the tunnel. Must not throw for a full queue: drop and count instead. */
  send(packet: Uint8Array): void;
  /** Register the receiver of IP packets coming out of the tunnel (one receiver; a later call replaces it). */
  onReceive(handler: PacketHandler): void;
  /** Current configuration, undefined until the link is up. */
  readonly config: LinkConfig | undefined;
  readonly mtu: number;
}

/** Both ends of an in-memory link pair, for tests: what one sends, the other receives (synchronously or on a microtask). */
export function createLinkPair(cfgA: LinkConfig, cfgB: LinkConfig, opts: { async?: boolean } = {}): [Link, Link] {
  let recvA: PacketHandler = () => {};
  let recvB: PacketHandler = () => {};
  const deliver = (h: () => PacketHandler, p: Uint8Array) => {
    if (opts.async) queueMicrotask(() => h()(p));
    else h()(p);
  };
  const a: Link = {
    send: (p) => deliver(() => recvB, p),
    onReceive: (h) => {
      recvA = h;
    },
    config: cfgA,
    mtu: cfgA.mtu,
  };
  const b: Link = {
    send: (p) => deliver(() => recvA, p),
    onReceive: (h) => {
      recvB = h;
    },
    config: cfgB,
    mtu: cfgB.mtu,
  };
  return [a, b];
}
