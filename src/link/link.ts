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
}

export type PacketHandler = (packet: Uint8Array) => void;

export interface Link {
  /** Send one IPv4 packet into the tunnel. Must not throw for a full queue: drop and count instead. */
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
