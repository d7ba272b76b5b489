import type { Ipv4Header } from '../wire/ipv4.js';
import type { IcmpError } from '../wire/icmp.js';

/**
 * Seams inside the userspace IP stack. The IP layer (ip.ts) owns the Link; transport protocols (TCP, UDP)
 * register with it and send through it. Addresses are numbers: IPv4 as uint32; on the IPv6 layer (ip6.ts) a
 * small handle that layer gives each address it meets (see Ipv6Addresses), so the transports key their tables
 * and build pseudo-headers the same way for both families.
 */
export interface IpSendOptions {
  tos?: number;
  ttl?: number;
  /** Set DF (default true: we never want routers to fragment our TCP). */
  dontFragment?: boolean;
}

/** What a transport protocol may ask of the IP layer. */
export interface IpSender {
  /** Build an IPv4 header around payload (src = our address) and send it into the link. */
  sendIp(dst: number, protocol: number, payload: Uint8Array, opts?: IpSendOptions): void;
  /** Our tunnel address (uint32), or 0 while the link is down. */
  localAddress(): number;
  /** Link MTU (largest IPv4 packet). */
  mtu(): number;
  /** 6 for the IPv6 layer; absent or 4 for IPv4. */
  readonly family?: 4 | 6;
  /** IPv6: the pre-added address words of the pseudo-header for two handles (see PseudoHeader.sum). */
  addressSum?(a: number, b: number): number;
  /** IPv6: the handle of an address literal (throws WireError for anything else). */
  parseAddress?(text: string): number;
  /** IPv6: the text of a handle. */
  addressText?(addr: number): string;
  /** Optional: like sendIp, but `fill` writes the payload (`length` bytes) straight into the packet at `offset`. */
  sendIpWith?(dst: number, protocol: number, length: number, fill: (out: Uint8Array, offset: number) => void, opts?: IpSendOptions): void;
}

/** A transport protocol handler registered with the IP layer for one protocol number. */
export interface ProtocolHandler {
  /** A validated, reassembled datagram for us: its payload (a view) and header. */
  input(src: number, dst: number, payload: Uint8Array, ip: Ipv4Header): void;
  /** An ICMP error whose quoted datagram was sent by this protocol (dest-unreachable, frag-needed, time-exceeded). */
  icmpError?(err: IcmpError): void;
}
