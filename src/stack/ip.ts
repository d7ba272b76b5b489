/**
 * The IPv4 layer of the userspace stack, on one Link: validates what comes out of the tunnel (every drop
 * counted by reason), reassembles fragments, answers pings to our address, runs an echo client, hands datagrams
 * to the ProtocolHandler registered for their protocol and ICMP errors to the handler whose datagram they quote.
 * On the way out it builds the header (DF set by default, a fresh IP id) and refuses anything larger than the
 * link MTU: we never fragment, callers size their datagrams (TCP from its MSS, UDP users from mtu()).
 *
 * One timer (on the injected clock) serves the reassembly timeout and the ping timeouts.
 * The Link has no up/down events, so its config is looked at on every packet and call: a missing config means
 * down (pings fail, sends are dropped and counted), a new address clears the reassembly state; listeners
 * registered with onLinkChange() hear about both. Call linkChanged() to make the check at once.
 */
import { VpnError, WireError } from '../errors.js';
import type { Link } from '../link/link.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { IcmpType, IcmpUnreachableCode, writeIcmp, parseIcmp, ICMP_HEADER_LENGTH, type IcmpError } from '../wire/icmp.js';
import {
  IPV4_MIN_HEADER,
  IpProtocol,
  ipv4ToString,
  parseIpv4,
  parseIpv4Address,
  writeIpv4Header,
  type Ipv4Header,
} from '../wire/ipv4.js';
import { Reassembler, type ReassemblyLimits, type ReassemblyStats } from './reassembly.js';
import type { IpSender, IpSendOptions, ProtocolHandler } from './types.js';
import { packetSlab } from '../util/slab.js';

export interface IpLayerOptions {
  clock: Clock;
  logger?: Logger;
  reassembly?: ReassemblyLimits;
  /** TTL of what we send (default 64). */
  ttl?: number;
  /** ICMP errors we may generate (port/protocol unreachable) per second (default 20). */
  icmpErrorsPerSecond?: number;
}

/** Received packets dropped, by reason. */
export interface IpDropCounters {
  /** Shorter than a header, or total length not matching the bytes. */
  length: number;
  version: number;
  ihl: number;
  checksum: number;
  /** TTL 0 on arrival. */
  ttl: number;
  /** Destination is not our address. */
  notForUs: number;
  /** The link had no address (down). */
  linkDown: number;
  /** No handler for the protocol. */
  noProtocol: number;
  /** Fragments that did not (yet) make a datagram are not drops; these are fragments the reassembler refused. */
  fragment: number;
  /** A handler threw (a bug, logged). */
  handlerError: number;
}

export interface IcmpStats {
  echoRequestsAnswered: number;
  echoRequestsSent: number;
  echoRepliesReceived: number;
  /** Echo replies no ping waited for (late, or not ours). */
  echoRepliesUnmatched: number;
  /** Dest-unreachable / time-exceeded received. */
  errorsReceived: number;
  /** ... handed to the protocol handler of the quoted datagram (or to a waiting ping). */
  errorsDelivered: number;
  /** ... for which no handler was found, or that quote a datagram we did not send. */
  errorsUnmatched: number;
  /** ICMP errors we sent (port / protocol unreachable). */
  errorsSent: number;
  errorsRateLimited: number;
  /** ICMP messages that did not parse (short, bad checksum, bad quoted header). */
  malformed: number;
  /** ICMP types we do not handle. */
  otherTypes: number;
}

export interface IpStats {
  /** Packets received from the link. */
  received: number;
  /** Datagrams handed to a protocol (ICMP included). */
  delivered: number;
  /** Packets sent into the link. */
  sent: number;
  /** Packets not sent because the link was down. */
  sendLinkDown: number;
  drops: IpDropCounters;
  icmp: IcmpStats;
  reassembly: ReassemblyStats;
}

export interface PingOptions {
  /** ICMP payload bytes (default 56, as ping(8)). */
  payloadSize?: number;
  /** Default 2000 ms. */
  timeoutMs?: number;
  /** Sequence number (default: a per-layer counter). */
  seq?: number;
  ttl?: number;
}

export interface EchoReply {
  /** Who replied, dotted quad. */
  from: string;
  seq: number;
  /** ICMP payload plus the 8-byte ICMP header, as ping(8) counts. */
  bytes: number;
  /** TTL of the reply. */
  ttl: number;
  rttMs: number;
}

/** Thrown by sendIp for a packet larger than the link MTU: the caller must size what it sends. */
export class PacketTooBigError extends VpnError {
  constructor(
    readonly size: number,
    readonly mtu: number,
  ) {
    super('INTERNAL', `IPv4 packet of ${size} bytes exceeds the link MTU of ${mtu} bytes (we never fragment: size the datagram to fit)`);
    this.name = 'PacketTooBigError';
  }
}

export type LinkChange = { up: false } | { up: true; address: number; mtu: number };

interface PendingPing {
  seq: number;
  sentAt: number;
  deadline: number;
  resolve: (r: EchoReply | undefined) => void;
}

export class IpLayer implements IpSender {
  readonly stats: IpStats = {
    received: 0,
    delivered: 0,
    sent: 0,
    sendLinkDown: 0,
    drops: { length: 0, version: 0, ihl: 0, checksum: 0, ttl: 0, notForUs: 0, linkDown: 0, noProtocol: 0, fragment: 0, handlerError: 0 },
    icmp: {
      echoRequestsAnswered: 0,
      echoRequestsSent: 0,
      echoRepliesReceived: 0,
      echoRepliesUnmatched: 0,
      errorsReceived: 0,
      errorsDelivered: 0,
      errorsUnmatched: 0,
      errorsSent: 0,
      errorsRateLimited: 0,
      malformed: 0,
      otherTypes: 0,
    },
    reassembly: undefined as unknown as ReassemblyStats,
  };
  readonly clock: Clock;
  private readonly log: Logger;
  private readonly reassembler: Reassembler;
  private readonly handlers = new Map<number, ProtocolHandler>();
  private readonly defaultTtl: number;
  private ipId = (Math.random() * 0x10000) & 0xffff;
  private readonly echoId = (Math.random() * 0x10000) & 0xffff;
  private echoSeq = 0;
  private readonly pings = new Map<number, PendingPing>();
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private cachedAddrText: string | undefined;
  private local = 0;
  private readonly linkListeners: Array<(c: LinkChange) => void> = [];
  private readonly icmpErrorsPerSecond: number;
  private icmpTokens: number;
  private icmpRefillAt = 0;
  private closed = false;
  private ipv6Input: ((packet: Uint8Array) => void) | undefined;

  constructor(
    private readonly link: Link,
    opts: IpLayerOptions,
  ) {
    this.clock = opts.clock;
    this.log = (opts.logger ?? silentLogger).child('ip');
    this.reassembler = new Reassembler(opts.reassembly);
    this.stats.reassembly = this.reassembler.stats;
    this.defaultTtl = opts.ttl ?? 64;
    this.icmpErrorsPerSecond = opts.icmpErrorsPerSecond ?? 20;
    this.icmpTokens = this.icmpErrorsPerSecond;
    this.checkLink();
    link.onReceive((p) => this.input(p));
  }

  // ---- IpSender ----

  localAddress(): number {
    this.checkLink();
    return this.local;
  }

  mtu(): number {
    return this.link.config?.mtu ?? this.link.mtu;
  }

  /**
   * Send payload in one IPv4 packet from our address. Drops (and counts) when the link is down; throws
   * PacketTooBigError when header + payload exceed the link MTU.
   */
  sendIp(dst: number, protocol: number, payload: Uint8Array, opts?: IpSendOptions): void {
    this.sendIpWith(dst, protocol, payload.length, (out, off) => out.set(payload, off), opts);
  }

  /**
   * Like sendIp, but the caller writes the payload (length bytes) straight into the packet buffer at out[offset]:
   * one allocation and no copy per packet (for TCP segments and UDP datagrams built in place).
   */
  sendIpWith(dst: number, protocol: number, length: number, fill: (out: Uint8Array, offset: number) => void, opts?: IpSendOptions): void {
    const src = this.localAddress();
    if (src === 0) {
      this.stats.sendLinkDown++;
      return;
    }
    const total = IPV4_MIN_HEADER + length;
    const mtu = this.mtu();
    if (total > mtu) throw new PacketTooBigError(total, mtu);
    const out = packetSlab.bytes(total);
    writeIpv4Header(
      {
        src,
        dst: dst >>> 0,
        protocol,
        ttl: opts?.ttl ?? this.defaultTtl,
        tos: opts?.tos ?? 0,
        id: this.nextId(),
        dontFragment: opts?.dontFragment ?? true,
      },
      length,
      out,
      0,
    );
    fill(out, IPV4_MIN_HEADER);
    this.stats.sent++;
    this.link.send(out);
  }

  // ---- protocols ----

  /** Register the handler for an IP protocol number (6 = TCP, 17 = UDP). ICMP (1) is ours. */
  registerProtocol(protocol: number, handler: ProtocolHandler): void {
    if (protocol === IpProtocol.ICMP) throw new VpnError('INTERNAL', 'ICMP is handled by the IP layer itself');
    if (this.handlers.has(protocol)) throw new VpnError('INTERNAL', `a handler for IP protocol ${protocol} is already registered`);
    this.handlers.set(protocol, handler);
  }

  unregisterProtocol(protocol: number): void {
    this.handlers.delete(protocol);
  }

  /** Hear when the link goes down, comes up, or changes address. */
  onLinkChange(listener: (c: LinkChange) => void): void {
    this.linkListeners.push(listener);
  }

  /** Look at the link's config now (call when the VPN says it reconnected or went down). */
  linkChanged(): void {
    this.checkLink();
  }

  // ---- input ----

  /** Hand packets whose version nibble is 6 to the IPv6 layer (ip6.ts) instead of dropping them. */
  setIpv6Input(fn: ((packet: Uint8Array) => void) | undefined): void {
    this.ipv6Input = fn;
  }

  /** One packet from the link. Never throws: bad packets are dropped and counted. */
  input(packet: Uint8Array): void {
    if (packet.length > 0 && packet[0]! >> 4 === 6 && this.ipv6Input) {
      this.ipv6Input(packet);
      return;
    }
    this.stats.received++;
    let ip;
    try {
      ip = parseIpv4(packet);
    } catch (e) {
      this.countParseDrop(e);
      return;
    }
    const d = this.stats.drops;
    if (ip.ttl === 0) {
      d.ttl++;
      return;
    }
    const local = this.localAddress();
    if (local === 0) {
      d.linkDown++;
      return;
    }
    if (ip.dst !== local) {
      d.notForUs++;
      return;
    }
    let header: Ipv4Header = ip;
    let payload = ip.payload;
    if (ip.moreFragments || ip.fragmentOffset !== 0) {
      const before = this.countReassemblyRefusals();
      const whole = this.reassembler.input(ip, this.clock.now());
      if (this.countReassemblyRefusals() !== before) d.fragment++;
      this.arm();
      if (!whole) return;
      header = whole.header;
      payload = whole.payload;
    }
    try {
      this.dispatch(header, payload);
    } catch (e) {
      d.handlerError++;
      this.log.error('protocol handler threw', { protocol: header.protocol, error: e instanceof Error ? e.message : String(e) });
    }
  }

  private countReassemblyRefusals(): number {
    const r = this.reassembler.stats;
    return r.duplicates + r.overlaps + r.invalid;
  }

  private countParseDrop(e: unknown): void {
    const d = this.stats.drops;
    const field = e instanceof WireError ? e.field : '';
    switch (field) {
      case 'version':
        d.version++;
        break;
      case 'ihl':
        d.ihl++;
        break;
      case 'checksum':
        d.checksum++;
        break;
      default:
        d.length++;
    }
  }

  private dispatch(ip: Ipv4Header, payload: Uint8Array): void {
    if (ip.protocol === IpProtocol.ICMP) {
      this.stats.delivered++;
      this.icmpInput(ip, payload);
      return;
    }
    const h = this.handlers.get(ip.protocol);
    if (!h) {
      this.stats.drops.noProtocol++;
      this.sendUnreachable(IcmpUnreachableCode.PROTOCOL, ip, payload);
      return;
    }
    this.stats.delivered++;
    h.input(ip.src, ip.dst, payload, ip);
  }

  // ---- ICMP ----

  private icmpInput(ip: Ipv4Header, payload: Uint8Array): void {
    const s = this.stats.icmp;
    let msg;
    try {
      msg = parseIcmp(payload);
    } catch {
      s.malformed++;
      return;
    }
    switch (msg.kind) {
      case 'echo-request': {
        const len = ICMP_HEADER_LENGTH + msg.payload.length;
        if (IPV4_MIN_HEADER + len > this.mtu()) return; // reassembled jumbo ping: we do not fragment replies
        const m = { kind: 'echo-reply' as const, id: msg.id, seq: msg.seq, payload: msg.payload };
        this.sendIpWith(ip.src, IpProtocol.ICMP, len, (out, off) => void writeIcmp(m, out, off));
        s.echoRequestsAnswered++;
        return;
      }
      case 'echo-reply': {
        const w = msg.id === this.echoId ? this.pings.get(msg.seq) : undefined;
        if (!w) {
          s.echoRepliesUnmatched++;
          return;
        }
        this.pings.delete(msg.seq);
        s.echoRepliesReceived++;
        w.resolve({ from: ipv4ToString(ip.src), seq: msg.seq, bytes: msg.payload.length + ICMP_HEADER_LENGTH, ttl: ip.ttl, rttMs: this.clock.now() - w.sentAt });
        this.arm();
        return;
      }
      case 'dest-unreachable':
      case 'time-exceeded':
        s.errorsReceived++;
        this.icmpErrorInput(msg);
        return;
      default:
        s.otherTypes++;
    }
  }

  private icmpErrorInput(err: IcmpError): void {
    const s = this.stats.icmp;
    if (err.original.src !== this.local) {
      s.errorsUnmatched++;
      return;
    }
    const proto = err.original.protocol;
    if (proto === IpProtocol.ICMP) {
      // One of our echo requests: fail that ping now rather than at its timeout.
      const d = err.originalData;
      if (err.original.fragmentOffset === 0 && d.length >= 8 && d[0] === IcmpType.ECHO_REQUEST && ((d[4]! << 8) | d[5]!) === this.echoId) {
        const seq = (d[6]! << 8) | d[7]!;
        const w = this.pings.get(seq);
        if (w) {
          this.pings.delete(seq);
          w.resolve(undefined);
          s.errorsDelivered++;
          this.arm();
          return;
        }
      }
      s.errorsUnmatched++;
      return;
    }
    const h = this.handlers.get(proto);
    if (!h?.icmpError) {
      s.errorsUnmatched++;
      return;
    }
    s.errorsDelivered++;
    h.icmpError(err);
  }

  /**
   * Send an ICMP destination-unreachable about a datagram we received (code PORT from UDP, PROTOCOL from here),
   * quoting its header and first 8 payload bytes. Rate-limited; never about ICMP errors or non-first fragments.
   */
  sendUnreachable(code: number, ip: Ipv4Header, payload: Uint8Array): void {
    const local = this.localAddress();
    if (local === 0 || ip.dst !== local || ip.fragmentOffset !== 0) return;
    if (ip.protocol === IpProtocol.ICMP) return;
    const now = this.clock.now();
    if (now >= this.icmpRefillAt) {
      this.icmpTokens = this.icmpErrorsPerSecond;
      this.icmpRefillAt = now + 1000;
    }
    if (this.icmpTokens <= 0) {
      this.stats.icmp.errorsRateLimited++;
      return;
    }
    this.icmpTokens--;
    const q = Math.min(8, payload.length);
    const quoted = new Uint8Array(ip.headerLength + q);
    writeIpv4Header(
      {
        src: ip.src,
        dst: ip.dst,
        protocol: ip.protocol,
        ttl: ip.ttl,
        tos: ip.tos,
        id: ip.id,
        dontFragment: ip.dontFragment,
        options: ip.options.length ? ip.options : undefined,
      },
      payload.length,
      quoted,
      0,
    );
    quoted.set(payload.subarray(0, q), ip.headerLength);
    const m = { kind: 'dest-unreachable' as const, code, quoted };
    this.sendIpWith(ip.src, IpProtocol.ICMP, ICMP_HEADER_LENGTH + quoted.length, (out, off) => void writeIcmp(m, out, off));
    this.stats.icmp.errorsSent++;
  }

  /**
   * Send one echo request; resolves with the reply, or undefined after the timeout, when an ICMP error comes
   * back for it, or when the link goes down. Rejects only if the request cannot be sent (too big for the MTU).
   */
  ping(dst: string | number, opts: PingOptions = {}): Promise<EchoReply | undefined> {
    const addr = typeof dst === 'number' ? dst >>> 0 : parseIpv4Address(dst);
    const size = opts.payloadSize ?? 56;
    const seq = (opts.seq ?? ++this.echoSeq) & 0xffff;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = (i + 0x10) & 0xff;
    if (this.localAddress() === 0 || this.closed) return Promise.resolve(undefined);
    const prev = this.pings.get(seq);
    if (prev) {
      this.pings.delete(seq);
      prev.resolve(undefined);
    }
    const m = { kind: 'echo-request' as const, id: this.echoId, seq, payload };
    const now = this.clock.now();
    let resolve!: (r: EchoReply | undefined) => void;
    const done = new Promise<EchoReply | undefined>((r) => (resolve = r));
    // Registered before sending: on a synchronous link the reply can arrive inside sendIpWith.
    this.pings.set(seq, { seq, sentAt: now, deadline: now + (opts.timeoutMs ?? 2000), resolve });
    try {
      this.sendIpWith(addr, IpProtocol.ICMP, ICMP_HEADER_LENGTH + size, (out, off) => void writeIcmp(m, out, off), { ttl: opts.ttl });
    } catch (e) {
      this.pings.delete(seq);
      return Promise.reject(e);
    }
    this.stats.icmp.echoRequestsSent++;
    this.arm();
    return done;
  }

  /** Stop: pending pings resolve undefined, the timer is cleared, packets from the link are ignored. */
  close(): void {
    this.closed = true;
    this.failPings();
    this.reassembler.clear();
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    this.link.onReceive(() => {});
  }

  // ---- internals ----

  private nextId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  private checkLink(): void {
    const cfg = this.link.config;
    const text = cfg?.address;
    if (text === this.cachedAddrText) return;
    this.cachedAddrText = text;
    let addr = 0;
    if (text !== undefined) {
      try {
        addr = parseIpv4Address(text);
      } catch {
        this.log.warn('link address is not an IPv4 address; treating the link as down', { address: text });
      }
    }
    if (addr === this.local) return;
    const wasUp = this.local !== 0;
    this.local = addr;
    this.reassembler.clear();
    if (addr === 0) {
      this.failPings();
      this.log.info('link down');
      this.notify({ up: false });
    } else {
      this.log.info(wasUp ? 'link address changed' : 'link up', { address: ipv4ToString(addr), mtu: this.mtu() });
      this.notify({ up: true, address: addr, mtu: this.mtu() });
    }
  }

  private notify(c: LinkChange): void {
    for (const l of this.linkListeners) {
      try {
        l(c);
      } catch (e) {
        this.log.error('link change listener threw', { error: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  private failPings(): void {
    const all = [...this.pings.values()];
    this.pings.clear();
    for (const w of all) w.resolve(undefined);
  }

  /** Re-arm the one timer to the earliest deadline (reassembly or a ping). */
  private arm(): void {
    if (this.closed) return;
    let at = this.reassembler.nextDeadline() ?? Infinity;
    for (const w of this.pings.values()) if (w.deadline < at) at = w.deadline;
    if (at === this.timerAt) return;
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = this.clock.setTimer(() => this.onTimer(), Math.max(0, at - this.clock.now()));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    this.reassembler.expire(now);
    for (const [seq, w] of this.pings) {
      if (w.deadline <= now) {
        this.pings.delete(seq);
        w.resolve(undefined);
      }
    }
    this.arm();
  }
}
