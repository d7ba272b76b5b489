/**
 * UDP over the IP layer: sockets bound to local ports (given, or ephemeral from 49152-65535), datagrams in and
 * out, a bounded receive queue per socket (counted drops when full), and ICMP errors about what a socket sent
 * surfaced on that socket as an 'error' event (port unreachable = CONN_REFUSED, other unreachables and time
 * exceeded = HOST_UNREACHABLE). A datagram for a port nobody bound gets an ICMP port unreachable back, as a
 * kernel would send.
 *
 * Delivery: received datagrams are copied into the socket's queue and emitted as 'message' on a microtask, in
 * batches; a paused socket keeps them queued until resume(), up to its limits.
 */
import { EventEmitter } from 'node:events';
import { VpnError } from '../errors.js';
import { IcmpUnreachableCode, quotedPorts, type IcmpError } from '../wire/icmp.js';
import { IPV4_MIN_HEADER, IpProtocol, ipv4ToString, parseIpv4Address, type Ipv4Header } from '../wire/ipv4.js';
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

  /** Largest payload one send() takes (link MTU minus IPv4 and UDP headers). */
  maxPayload(): number {
    return this.stack.maxPayload();
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
  deliver(payload: Uint8Array, src: number, srcPort: number): boolean {
    if (this.queue.length >= this.maxPackets || this.queuedBytes + payload.length > this.maxBytes) {
      this.stats.dropped++;
      return false;
    }
    this.stats.received++;
    this.queue.push({ data: payload.slice(), rinfo: { address: ipv4ToString(src), port: srcPort, size: payload.length } });
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
    if (s.deliver(d.payload, src, d.srcPort)) this.stats.delivered++;
    else this.stats.queueDrops++;
  }

  icmpError(err: IcmpError): void {
    const ports = quotedPorts(err);
    const s = ports ? this.sockets.get(ports.srcPort) : undefined;
    if (!ports || !s) {
      this.stats.icmpUnmatched++;
      return;
    }
    const address = ipv4ToString(err.original.dst);
    const where = `${address}:${ports.dstPort}`;
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
