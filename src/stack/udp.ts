/**
 * UDP over the IP layer: sockets bound to local ports (given, or ephemeral from 49152-65535), datagrams in and
 * out, a bounded receive queue per socket (counted drops when full), and ICMP errors about what a socket sent
 * surfaced on that socket as an 'error' event (port unreachable = CONN_REFUSED, other unreachables and time
 * exceeded = HOST_UNREACHABLE). A datagram for a port nobody bound gets an ICMP port unreachable back, as a
 * kernel would send.
 *
 * IPv6: with an IPv6 layer attached (attachIpv6), the same sockets send to IPv6 literals and receive from IPv6
 * peers (rinfo.address is then the IPv6 text); one port space for both families, like a dual-stack socket. The
 * IPv4 path is unchanged. A UDP checksum of 0 is refused over IPv6 (RFC 8200 makes it mandatory).
 *
 * Delivery: received datagrams are copied into the socket's queue and emitted as 'message' on a microtask, in
 * batches; a paused socket keeps them queued until resume(), up to its limits.
 */
import { EventEmitter } from 'node:events';
import { VpnError } from '../errors.js';
import { IcmpUnreachableCode, quotedPorts, type IcmpError } from '../wire/icmp.js';
import { IPV4_MIN_HEADER, IpProtocol, ipv4ToString, parseIpv4Address, type Ipv4Header } from '../wire/ipv4.js';
import { IPV6_HEADER_LENGTH } from '../wire/ipv6.js';
import { UDP_HEADER_LENGTH, parseUdp, writeUdpHeader } from '../wire/udp.js';
import type { IpSender, ProtocolHandler } from './types.js';

/** The IP layer as UDP needs it: IpSender, plus (optionally) sending ICMP port unreachable. */
export interface UdpIpLayer extends IpSender {
  sendUnreachable?(code: number, ip: Ipv4Header, payload: Uint8Array): void;
  /** Build the packet with the payload written in place (no extra copy). */
  sendIpWith?(dst: number, protocol: number, length: number, fill: (out: Uint8Array, offset: number) => void): void;
}

export interface UdpStackOptions {
  /** Per-socket receive queue: datagrams (default 256) and bytes (default 1 MiB). */
  queuePackets?: number;
  queueBytes?: number;
  /** Ephemeral port range (default 49152-65535). */
  ephemeralMin?: number;
  ephemeralMax?: number;
}

export interface UdpStackStats {
  received: number;
  delivered: number;
  sent: number;
  /** Malformed datagrams (short, bad length, bad checksum). */
  malformed: number;
  /** Datagrams for a port with no socket (answered with ICMP port unreachable). */
  noPort: number;
  /** Datagrams dropped because the socket's queue was full. */
  queueDrops: number;
  /** ICMP errors handed to a socket / that matched none. */
  icmpErrors: number;
  icmpUnmatched: number;
}

export interface UdpSocketStats {
  received: number;
  sent: number;
  /** Datagrams dropped because the receive queue was full. */
  dropped: number;
}

export interface RemoteInfo {
  address: string;
  port: number;
  /** Datagram payload size. */
  size: number;
}

/** An ICMP error about a datagram this socket sent. */
export class UdpIcmpError extends VpnError {
  constructor(
    code: 'CONN_REFUSED' | 'HOST_UNREACHABLE',
    message: string,
    /** Where the datagram that caused it was going. */
    readonly address: string,
    readonly port: number,
    /** The ICMP error itself (type via kind, code, next-hop MTU for frag-needed). */
    readonly icmp: { kind: IcmpError['kind']; code: number; nextHopMtu: number },
  ) {
    super(code, message);
    this.name = 'UdpIcmpError';
  }
}

export interface UdpSocketEvents {
  message: [data: Uint8Array, rinfo: RemoteInfo];
  error: [err: UdpIcmpError];
  close: [];
}

interface Queued {
  data: Uint8Array;
  rinfo: RemoteInfo;
}

export class UdpSocket extends EventEmitter<UdpSocketEvents> {
  readonly stats: UdpSocketStats = { received: 0, sent: 0, dropped: 0 };
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private paused = false;
  private flushScheduled = false;
  private closed = false;

  /** @internal created by UdpStack.bind */
  constructor(
    private readonly stack: UdpStack,
    readonly localPort: number,
    private readonly maxPackets: number,
    private readonly maxBytes: number,
  ) {
    super();
  }

  address(): { address: string; port: number } {
    return { address: ipv4ToString(this.stack.localAddress()), port: this.localPort };
  }

  /** Largest payload one send() takes (link MTU minus IPv4 and UDP headers; IPv6 allows 20 bytes less). */
  maxPayload(): number {
    return this.stack.maxPayload();
  }

  /** Our IPv6 address and this port, or undefined while IPv6 is down (or not attached). */
  address6(): { address: string; port: number } | undefined {
    const a = this.stack.localAddress6();
    return a === undefined ? undefined : { address: a, port: this.localPort };
  }

  /**
   * Send one datagram. Throws VpnError: 'TRANSPORT_CLOSED' after close(), 'USAGE' for a bad address/port or a
   * payload larger than maxPayload(), 'HOST_UNREACHABLE' while the link is down.
   */
  send(data: Uint8Array, port: number, address: string | number): void {
    if (this.closed) throw new VpnError('TRANSPORT_CLOSED', `UDP socket on port ${this.localPort} is closed`);
    this.stack.sendFrom(this.localPort, data, port, address);
    this.stats.sent++;
  }

  /** Stop emitting 'message'; datagrams queue up to the limits, then are dropped and counted. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (this.queue.length) this.scheduleFlush();
  }

  /** Datagrams waiting in the queue. */
  get queued(): number {
    return this.queue.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.stack.release(this.localPort, this);
    queueMicrotask(() => this.emit('close'));
  }

  /** @internal */
  deliver(payload: Uint8Array, address: string, srcPort: number): boolean {
    if (this.queue.length >= this.maxPackets || this.queuedBytes + payload.length > this.maxBytes) {
      this.stats.dropped++;
      return false;
    }
    this.stats.received++;
    this.queue.push({ data: payload.slice(), rinfo: { address, port: srcPort, size: payload.length } });
    this.queuedBytes += payload.length;
    if (!this.paused) this.scheduleFlush();
    return true;
  }

  /** @internal */
  icmpError(err: UdpIcmpError): boolean {
    if (this.closed || this.listenerCount('error') === 0) return false;
    this.emit('error', err);
    return true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    while (!this.paused && !this.closed && this.queue.length) {
      const batch = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      for (let i = 0; i < batch.length; i++) {
        const q = batch[i]!;
        this.emit('message', q.data, q.rinfo);
        if ((this.paused || this.closed) && i + 1 < batch.length) {
          // Keep the rest, in order, ahead of anything that arrived meanwhile.
          if (this.closed) return;
          const rest = batch.slice(i + 1);
          this.queue = rest.concat(this.queue);
          this.queuedBytes = this.queue.reduce((n, x) => n + x.data.length, 0);
          return;
        }
      }
    }
  }
}

export class UdpStack implements ProtocolHandler {
  readonly stats: UdpStackStats = { received: 0, delivered: 0, sent: 0, malformed: 0, noPort: 0, queueDrops: 0, icmpErrors: 0, icmpUnmatched: 0 };
  private readonly sockets = new Map<number, UdpSocket>();
  private readonly queuePackets: number;
  private readonly queueBytes: number;
  private readonly ephMin: number;
  private readonly ephMax: number;
  private ip6: UdpIpLayer | undefined;

  constructor(
    private readonly ip: UdpIpLayer,
    opts: UdpStackOptions = {},
  ) {
    this.queuePackets = opts.queuePackets ?? 256;
    this.queueBytes = opts.queueBytes ?? 1 << 20;
    this.ephMin = opts.ephemeralMin ?? 49152;
    this.ephMax = opts.ephemeralMax ?? 65535;
  }

  /**
   * A socket on `port`, or on a free ephemeral port (chosen at random, so query ports are hard to guess).
   * Throws VpnError 'USAGE' if the port is taken or out of range, 'INTERNAL' if no ephemeral port is free.
   */
  bind(port?: number): UdpSocket {
    let p: number;
    if (port === undefined || port === 0) {
      p = this.pickEphemeral();
    } else {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new VpnError('USAGE', `UDP port ${port} is out of range`);
      if (this.sockets.has(port)) throw new VpnError('USAGE', `UDP port ${port} is already bound`);
      p = port;
    }
    const s = new UdpSocket(this, p, this.queuePackets, this.queueBytes);
    this.sockets.set(p, s);
    return s;
  }

  /**
   * Carry UDP over IPv6 too: sockets then send to IPv6 literals through `ip6` and receive what it hands the
   * returned handler (register it with the IPv6 layer for next header 17).
   */
  attachIpv6(ip6: UdpIpLayer): { input(src: number, dst: number, payload: Uint8Array): void; icmpError(err: IcmpError): void } {
    if (ip6.family !== 6 || !ip6.addressSum || !ip6.addressText || !ip6.parseAddress) throw new VpnError('INTERNAL', 'attachIpv6 needs an IPv6 layer');
    this.ip6 = ip6;
    return { input: (src, dst, payload) => this.input6(src, dst, payload), icmpError: (err) => this.icmpError(err, ip6) };
  }

  /** Our IPv6 address as text, or undefined while IPv6 is down or not attached. */
  localAddress6(): string | undefined {
    const ip6 = this.ip6;
    const a = ip6 ? ip6.localAddress() : 0;
    return a === 0 ? undefined : ip6!.addressText!(a);
  }

  /** Bound sockets. */
  get size(): number {
    return this.sockets.size;
  }

  localAddress(): number {
    return this.ip.localAddress();
  }

  maxPayload(): number {
    return this.ip.mtu() - IPV4_MIN_HEADER - UDP_HEADER_LENGTH;
  }

  /** Close every socket. */
  close(): void {
    for (const s of [...this.sockets.values()]) s.close();
  }

  // ---- ProtocolHandler ----

  input(src: number, dst: number, payload: Uint8Array, ip: Ipv4Header): void {
    this.stats.received++;
    let d;
    try {
      d = parseUdp(payload, { src, dst });
    } catch {
      this.stats.malformed++;
      return;
    }
    const s = this.sockets.get(d.dstPort);
    if (!s) {
      this.stats.noPort++;
      this.ip.sendUnreachable?.(IcmpUnreachableCode.PORT, ip, payload);
      return;
    }
    if (s.deliver(d.payload, ipv4ToString(src), d.srcPort)) this.stats.delivered++;
    else this.stats.queueDrops++;
  }

  private input6(src: number, dst: number, payload: Uint8Array): void {
    const ip6 = this.ip6!;
    this.stats.received++;
    let d;
    try {
      d = parseUdp(payload, { src, dst, sum: ip6.addressSum!(src, dst) });
    } catch {
      this.stats.malformed++;
      return;
    }
    if (d.checksum === 0) {
      this.stats.malformed++;
      return;
    }
    const s = this.sockets.get(d.dstPort);
    if (!s) {
      this.stats.noPort++;
      return;
    }
    if (s.deliver(d.payload, ip6.addressText!(src), d.srcPort)) this.stats.delivered++;
    else this.stats.queueDrops++;
  }

  icmpError(err: IcmpError, via?: UdpIpLayer): void {
    const ports = quotedPorts(err);
    const s = ports ? this.sockets.get(ports.srcPort) : undefined;
    if (!ports || !s) {
      this.stats.icmpUnmatched++;
      return;
    }
    const address = via ? via.addressText!(err.original.dst) : ipv4ToString(err.original.dst);
    const where = via ? `[${address}]:${ports.dstPort}` : `${address}:${ports.dstPort}`;
    let e: UdpIcmpError;
    const info = { kind: err.kind, code: err.code, nextHopMtu: err.nextHopMtu };
    if (err.kind === 'dest-unreachable' && err.code === IcmpUnreachableCode.PORT) {
      e = new UdpIcmpError('CONN_REFUSED', `${where}: port unreachable (nothing listens there)`, address, ports.dstPort, info);
    } else if (err.kind === 'dest-unreachable' && err.code === IcmpUnreachableCode.FRAG_NEEDED) {
      e = new UdpIcmpError('HOST_UNREACHABLE', `${where}: datagram too big for the path (next-hop MTU ${err.nextHopMtu})`, address, ports.dstPort, info);
    } else if (err.kind === 'time-exceeded') {
      e = new UdpIcmpError('HOST_UNREACHABLE', `${where}: time exceeded (routing loop or TTL too small)`, address, ports.dstPort, info);
    } else {
      e = new UdpIcmpError('HOST_UNREACHABLE', `${where}: destination unreachable (ICMP code ${err.code})`, address, ports.dstPort, info);
    }
    if (s.icmpError(e)) this.stats.icmpErrors++;
    else this.stats.icmpUnmatched++;
  }

  // ---- used by UdpSocket ----

  /** @internal */
  sendFrom(srcPort: number, data: Uint8Array, port: number, address: string | number): void {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new VpnError('USAGE', `UDP destination port ${port} is out of range`);
    if (typeof address === 'string' && address.includes(':')) return this.sendFrom6(srcPort, data, port, address);
    let dst: number;
    if (typeof address === 'number') dst = address >>> 0;
    else {
      try {
        dst = parseIpv4Address(address);
      } catch {
        throw new VpnError('USAGE', `UDP destination ${JSON.stringify(address)} is not an IPv4 address (resolve names first)`);
      }
    }
    const max = this.maxPayload();
    if (data.length > max) throw new VpnError('USAGE', `UDP payload of ${data.length} bytes exceeds ${max} (link MTU ${this.ip.mtu()} minus headers)`);
    const src = this.ip.localAddress();
    if (src === 0) throw new VpnError('HOST_UNREACHABLE', 'the VPN link is down (no tunnel address)');
    const pseudo = { src, dst };
    this.stats.sent++;
    const fill = (out: Uint8Array, off: number): void => {
      out.set(data, off + UDP_HEADER_LENGTH);
      writeUdpHeader(srcPort, port, data.length, out, off, pseudo);
    };
    if (this.ip.sendIpWith) this.ip.sendIpWith(dst, IpProtocol.UDP, UDP_HEADER_LENGTH + data.length, fill);
    else {
      const buf = new Uint8Array(UDP_HEADER_LENGTH + data.length);
      fill(buf, 0);
      this.ip.sendIp(dst, IpProtocol.UDP, buf);
    }
  }

  private sendFrom6(srcPort: number, data: Uint8Array, port: number, address: string): void {
    const ip6 = this.ip6;
    if (!ip6) throw new VpnError('HOST_UNREACHABLE', `UDP to ${address}: this stack carries no IPv6`);
    let dst: number;
    try {
      dst = ip6.parseAddress!(address);
    } catch {
      throw new VpnError('USAGE', `UDP destination ${JSON.stringify(address)} is not an IPv6 address`);
    }
    const max = ip6.mtu() - IPV6_HEADER_LENGTH - UDP_HEADER_LENGTH;
    if (data.length > max) throw new VpnError('USAGE', `UDP payload of ${data.length} bytes exceeds ${max} over IPv6 (link MTU ${ip6.mtu()} minus headers)`);
    const src = ip6.localAddress();
    if (src === 0) throw new VpnError('HOST_UNREACHABLE', 'the VPN link has no IPv6 address');
    const pseudo = { src, dst, sum: ip6.addressSum!(src, dst) };
    this.stats.sent++;
    ip6.sendIpWith!(dst, IpProtocol.UDP, UDP_HEADER_LENGTH + data.length, (out, off) => {
      out.set(data, off + UDP_HEADER_LENGTH);
      writeUdpHeader(srcPort, port, data.length, out, off, pseudo);
    });
  }

  /** @internal */
  release(port: number, s: UdpSocket): void {
    if (this.sockets.get(port) === s) this.sockets.delete(port);
  }

  private pickEphemeral(): number {
    const span = this.ephMax - this.ephMin + 1;
    // Random start, then linear probe: random enough for DNS source ports, bounded work.
    let p = this.ephMin + Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      if (!this.sockets.has(p)) return p;
      p = p === this.ephMax ? this.ephMin : p + 1;
    }
    throw new VpnError('INTERNAL', `no free UDP port in ${this.ephMin}-${this.ephMax}`);
  }
}
