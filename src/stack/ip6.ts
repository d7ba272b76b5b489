/**
 * The IPv6 layer of the userspace stack, on the same Link as the IPv4 layer (which hands it every packet whose
 * version nibble is 6). Our address is the link config's address6; without one the layer is down. It validates
 * what comes in (drops counted by reason), answers echo requests to our address, runs an echo client for ping,
 * hands TCP/UDP to the handler registered for the protocol, and turns ICMPv6 errors about what we sent into the
 * IcmpError shape the transports already understand (Packet Too Big becomes "fragmentation needed" with the MTU,
 * never below 1280). On the way out it writes the fixed header; like the IPv4 layer it never fragments.
 *
 * Addresses handed to the transports are handles from Ipv6Addresses (see types.ts). Fragments addressed to us are
 * reassembled (reassembly6.ts, RFC 8200 §4.5 with RFC 5722 and RFC 6946) and the whole packet is then handled
 * like any other; one timer on the injected clock expires datagrams that never complete (60 s).
 */
import { VpnError, WireError } from '../errors.js';
import type { Link } from '../link/link.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { packetSlab } from '../util/slab.js';
import type { IcmpError } from '../wire/icmp.js';
import { ICMPV6_HEADER_LENGTH, Icmpv6UnreachableCode, parseIcmpv6, writeIcmpv6, type Icmpv6Error } from '../wire/icmpv6.js';
import type { Ipv4Header } from '../wire/ipv4.js';
import { IPV6_HEADER_LENGTH, IPV6_MIN_MTU, Ipv6NextHeader, parseIpv6, parseIpv6Address, writeIpv6Header, type Ipv6Packet } from '../wire/ipv6.js';
import { Ipv6Addresses } from './addr6.js';
import { PacketTooBigError, type EchoReply, type PingOptions } from './ip.js';
import type { ReassemblyLimits } from './reassembly.js';
import { Reassembler6, type Reassembly6Stats } from './reassembly6.js';
import type { IpSender, IpSendOptions, ProtocolHandler } from './types.js';

export interface Ip6LayerOptions {
  clock: Clock;
  logger?: Logger;
  /** Hop limit of what we send (default 64). */
  hopLimit?: number;
  /** Most peer addresses remembered (default 65536). */
  maxAddresses?: number;
  /** Fragment reassembly limits (defaults: 16 datagrams, 256 KiB, 60 s). */
  reassembly?: ReassemblyLimits;
}

/** What a transport registers with the IPv6 layer. */
export interface Protocol6Handler {
  input(src: number, dst: number, payload: Uint8Array): void;
  icmpError?(err: IcmpError): void;
}

export interface Ip6Stats {
  received: number;
  delivered: number;
  sent: number;
  sendLinkDown: number;
  drops: {
    /** Did not parse (short, bad lengths, bad extension headers). */
    malformed: number;
    notForUs: number;
    linkDown: number;
    noProtocol: number;
    /** Fragments the reassembler refused (invalid, overlapping, duplicate; see reassembly for each reason). */
    fragment: number;
    /** The address table was full. */
    addressTable: number;
    handlerError: number;
  };
  /** Fragment reassembly: fragments, datagrams reassembled, atomic fragments, and drops by reason. */
  reassembly: Reassembly6Stats;
  icmp: {
    echoRequestsAnswered: number;
    echoRequestsSent: number;
    echoRepliesReceived: number;
    echoRepliesUnmatched: number;
    errorsReceived: number;
    errorsDelivered: number;
    errorsUnmatched: number;
    packetTooBig: number;
    malformed: number;
    otherTypes: number;
  };
}

interface PendingPing {
  sentAt: number;
  timer: TimerHandle;
  resolve: (r: EchoReply | undefined) => void;
}

export class Ip6Layer implements IpSender {
  readonly family = 6 as const;
  readonly stats: Ip6Stats = {
    received: 0,
    delivered: 0,
    sent: 0,
    sendLinkDown: 0,
    drops: { malformed: 0, notForUs: 0, linkDown: 0, noProtocol: 0, fragment: 0, addressTable: 0, handlerError: 0 },
    icmp: {
      echoRequestsAnswered: 0,
      echoRequestsSent: 0,
      echoRepliesReceived: 0,
      echoRepliesUnmatched: 0,
      errorsReceived: 0,
      errorsDelivered: 0,
      errorsUnmatched: 0,
      packetTooBig: 0,
      malformed: 0,
      otherTypes: 0,
    },
    reassembly: undefined as unknown as Reassembly6Stats,
  };
  readonly addresses: Ipv6Addresses;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly hopLimit: number;
  private readonly handlers = new Map<number, Protocol6Handler>();
  private readonly pings = new Map<number, PendingPing>();
  private readonly echoId = (Math.random() * 0x10000) & 0xffff;
  private echoSeq = 0;
  private cachedAddrText: string | undefined;
  private local = 0;
  private localBytes: Uint8Array | undefined;
  private closed = false;
  private readonly reassembler: Reassembler6;
  private reassemblyTimer: TimerHandle | undefined;
  private reassemblyTimerAt = Infinity;

  constructor(
    private readonly link: Link,
    opts: Ip6LayerOptions,
  ) {
    this.clock = opts.clock;
    this.log = (opts.logger ?? silentLogger).child('ip6');
    this.hopLimit = opts.hopLimit ?? 64;
    this.addresses = new Ipv6Addresses(opts.maxAddresses);
    this.reassembler = new Reassembler6(opts.reassembly);
    this.stats.reassembly = this.reassembler.stats;
    this.checkLink();
  }

  // ---- IpSender ----

  localAddress(): number {
    this.checkLink();
    return this.local;
  }

  mtu(): number {
    return this.link.config?.mtu ?? this.link.mtu;
  }

  addressSum(a: number, b: number): number {
    return this.addresses.pairSum(a, b);
  }

  parseAddress(text: string): number {
    const h = this.addresses.intern(parseIpv6Address(text));
    if (h === 0) throw new WireError('IPv6 address table full', 'address', 0);
    return h;
  }

  addressText(addr: number): string {
    return this.addresses.text(addr);
  }

  sendIp(dst: number, protocol: number, payload: Uint8Array, opts?: IpSendOptions): void {
    this.sendIpWith(dst, protocol, payload.length, (out, off) => out.set(payload, off), opts);
  }

  sendIpWith(dst: number, protocol: number, length: number, fill: (out: Uint8Array, offset: number) => void, opts?: IpSendOptions): void {
    const src = this.localAddress();
    if (src === 0) {
      this.stats.sendLinkDown++;
      return;
    }
    const total = IPV6_HEADER_LENGTH + length;
    const mtu = this.mtu();
    if (total > mtu) throw new PacketTooBigError(total, mtu);
    const out = packetSlab.bytes(total);
    writeIpv6Header(
      { src: this.localBytes!, dst: this.addresses.bytes(dst), nextHeader: protocol, hopLimit: opts?.ttl ?? this.hopLimit, trafficClass: opts?.tos ?? 0 },
      length,
      out,
      0,
    );
    fill(out, IPV6_HEADER_LENGTH);
    this.stats.sent++;
    this.link.send(out);
  }

  // ---- protocols ----

  registerProtocol(protocol: number, handler: Protocol6Handler | ProtocolHandler): void {
    if (protocol === Ipv6NextHeader.ICMPV6) throw new VpnError('INTERNAL', 'ICMPv6 is handled by the IPv6 layer itself');
    if (this.handlers.has(protocol)) throw new VpnError('INTERNAL', `a handler for IPv6 next header ${protocol} is already registered`);
    this.handlers.set(protocol, handler as Protocol6Handler);
  }

  linkChanged(): void {
    this.checkLink();
  }

  // ---- input ----

  /** One IPv6 packet from the link. Never throws. */
  input(packet: Uint8Array): void {
    this.stats.received++;
    const d = this.stats.drops;
    let ip: Ipv6Packet;
    try {
      ip = parseIpv6(packet);
    } catch {
      d.malformed++;
      return;
    }
    const local = this.localAddress();
    if (local === 0) {
      d.linkDown++;
      return;
    }
    const lb = this.localBytes!;
    for (let i = 0; i < 16; i++)
      if (ip.dst[i] !== lb[i]) {
        d.notForUs++;
        return;
      }
    if (ip.fragment) {
      const whole = this.reassemble(ip);
      if (!whole) return;
      ip = whole;
    }
    const src = this.addresses.intern(ip.src);
    if (src === 0) {
      d.addressTable++;
      return;
    }
    try {
      if (ip.protocol === Ipv6NextHeader.ICMPV6) {
        this.stats.delivered++;
        this.icmpInput(src, ip.hopLimit, ip.payload);
        return;
      }
      const h = this.handlers.get(ip.protocol);
      if (!h) {
        d.noProtocol++;
        return;
      }
      this.stats.delivered++;
      h.input(src, local, ip.payload);
    } catch (e) {
      d.handlerError++;
      this.log.error('IPv6 protocol handler threw', { protocol: ip.protocol, error: e instanceof Error ? e.message : String(e) });
    }
  }

  /** A fragment for us: the whole packet, parsed, once its datagram is complete; undefined until then or if refused. */
  private reassemble(ip: Ipv6Packet): Ipv6Packet | undefined {
    const r = this.reassembler.stats;
    const before = r.duplicates + r.overlaps + r.invalid;
    const whole = this.reassembler.input(ip, this.clock.now());
    if (r.duplicates + r.overlaps + r.invalid !== before) this.stats.drops.fragment++;
    this.armReassembly();
    if (!whole) return undefined;
    let p: Ipv6Packet;
    try {
      p = parseIpv6(whole);
    } catch {
      this.stats.drops.malformed++;
      return undefined;
    }
    if (p.fragment) {
      // A fragment header inside the fragmentable part: nothing legitimate sends that.
      this.stats.drops.malformed++;
      return undefined;
    }
    return p;
  }

  /** Keep the one reassembly timer at the oldest datagram's deadline. */
  private armReassembly(): void {
    const at = this.closed ? Infinity : (this.reassembler.nextDeadline() ?? Infinity);
    if (at === this.reassemblyTimerAt) return;
    if (this.reassemblyTimer) this.clock.clearTimer(this.reassemblyTimer);
    this.reassemblyTimer = undefined;
    this.reassemblyTimerAt = at;
    if (at === Infinity) return;
    this.reassemblyTimer = this.clock.setTimer(
      () => {
        this.reassemblyTimer = undefined;
        this.reassemblyTimerAt = Infinity;
        this.reassembler.expire(this.clock.now());
        this.armReassembly();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  private icmpInput(src: number, hopLimit: number, bytes: Uint8Array): void {
    const s = this.stats.icmp;
    let msg;
    try {
      msg = parseIcmpv6(bytes, this.addresses.pairSum(src, this.local));
    } catch {
      s.malformed++;
      return;
    }
    switch (msg.kind) {
      case 'echo-request': {
        const len = ICMPV6_HEADER_LENGTH + msg.payload.length;
        if (IPV6_HEADER_LENGTH + len > this.mtu()) return;
        const m = { kind: 'echo-reply' as const, id: msg.id, seq: msg.seq, payload: msg.payload };
        const sum = this.addresses.pairSum(this.local, src);
        this.sendIpWith(src, Ipv6NextHeader.ICMPV6, len, (out, off) => void writeIcmpv6(m, sum, out, off));
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
        this.clock.clearTimer(w.timer);
        s.echoRepliesReceived++;
        w.resolve({ from: this.addresses.text(src), seq: msg.seq, bytes: len(msg.payload), ttl: hopLimit, rttMs: this.clock.now() - w.sentAt });
        return;
      }
      case 'other':
        s.otherTypes++;
        return;
      default:
        s.errorsReceived++;
        this.icmpErrorInput(msg);
    }
  }

  private icmpErrorInput(err: Icmpv6Error): void {
    const s = this.stats.icmp;
    const lb = this.localBytes!;
    for (let i = 0; i < 16; i++)
      if (err.original.src[i] !== lb[i]) {
        s.errorsUnmatched++;
        return;
      }
    const proto = err.original.protocol;
    if (err.kind === 'packet-too-big') s.packetTooBig++;
    if (proto === Ipv6NextHeader.ICMPV6) {
      const d = err.originalData;
      if (err.kind === 'dest-unreachable' && d.length >= 8 && d[0] === 128 && ((d[4]! << 8) | d[5]!) === this.echoId) {
        const seq = (d[6]! << 8) | d[7]!;
        const w = this.pings.get(seq);
        if (w) {
          this.pings.delete(seq);
          this.clock.clearTimer(w.timer);
          w.resolve(undefined);
          s.errorsDelivered++;
          return;
        }
      }
      s.errorsUnmatched++;
      return;
    }
    const h = this.handlers.get(proto);
    const dst = this.addresses.find(err.original.dst);
    if (!h?.icmpError || dst === 0) {
      s.errorsUnmatched++;
      return;
    }
    s.errorsDelivered++;
    h.icmpError(this.asIcmpError(err, dst));
  }

  /** The IPv4-shaped IcmpError the transports take: addresses as handles, codes mapped to their IPv4 meaning. */
  private asIcmpError(err: Icmpv6Error, dst: number): IcmpError {
    let kind: IcmpError['kind'] = 'dest-unreachable';
    let code = 1; // host unreachable
    let nextHopMtu = 0;
    if (err.kind === 'packet-too-big') {
      code = 4;
      nextHopMtu = Math.max(err.value, IPV6_MIN_MTU);
    } else if (err.kind === 'time-exceeded') kind = 'time-exceeded';
    else if (err.kind === 'dest-unreachable' && err.code === Icmpv6UnreachableCode.PORT) code = 3;
    else if (err.kind === 'dest-unreachable' && err.code === Icmpv6UnreachableCode.ADMIN_PROHIBITED) code = 13;
    else if (err.kind === 'parameter-problem') code = 2; // next header unrecognised or bad header: as protocol unreachable
    const o = err.original;
    const original: Ipv4Header = {
      tos: o.trafficClass,
      headerLength: o.headerLength,
      totalLength: IPV6_HEADER_LENGTH + o.payloadLength,
      id: o.fragment?.id ?? 0,
      dontFragment: true,
      moreFragments: o.fragment?.moreFragments ?? false,
      fragmentOffset: o.fragment?.offset ?? 0,
      ttl: o.hopLimit,
      protocol: o.protocol,
      checksum: 0,
      src: this.local,
      dst,
      options: new Uint8Array(0),
    };
    return { kind, code, nextHopMtu, quoted: err.quoted, original, originalData: err.originalData };
  }

  // ---- ping ----

  /** One ICMPv6 echo request; the reply, or undefined on timeout, an ICMPv6 error for it, or link down. */
  ping(dst: string, opts: PingOptions = {}): Promise<EchoReply | undefined> {
    const addr = this.parseAddress(dst);
    const size = opts.payloadSize ?? 56;
    const seq = (opts.seq ?? ++this.echoSeq) & 0xffff;
    if (this.localAddress() === 0 || this.closed) return Promise.resolve(undefined);
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = (i + 0x10) & 0xff;
    const prev = this.pings.get(seq);
    if (prev) {
      this.pings.delete(seq);
      this.clock.clearTimer(prev.timer);
      prev.resolve(undefined);
    }
    let resolve!: (r: EchoReply | undefined) => void;
    const done = new Promise<EchoReply | undefined>((r) => (resolve = r));
    const timer = this.clock.setTimer(() => {
      if (this.pings.get(seq)?.resolve !== resolve) return;
      this.pings.delete(seq);
      resolve(undefined);
    }, opts.timeoutMs ?? 2000);
    this.pings.set(seq, { sentAt: this.clock.now(), timer, resolve });
    const m = { kind: 'echo-request' as const, id: this.echoId, seq, payload };
    const sum = this.addresses.pairSum(this.local, addr);
    try {
      this.sendIpWith(addr, Ipv6NextHeader.ICMPV6, ICMPV6_HEADER_LENGTH + size, (out, off) => void writeIcmpv6(m, sum, out, off), { ttl: opts.ttl });
    } catch (e) {
      this.pings.delete(seq);
      this.clock.clearTimer(timer);
      return Promise.reject(e);
    }
    this.stats.icmp.echoRequestsSent++;
    return done;
  }

  close(): void {
    this.closed = true;
    this.failPings();
    this.reassembler.clear();
    this.armReassembly();
  }

  // ---- internals ----

  private checkLink(): void {
    const text = this.link.config?.address6;
    if (text === this.cachedAddrText) return;
    this.cachedAddrText = text;
    let h = 0;
    let bytes: Uint8Array | undefined;
    if (text !== undefined) {
      try {
        bytes = parseIpv6Address(text);
        h = this.addresses.intern(bytes);
      } catch {
        this.log.warn('link address6 is not an IPv6 address; IPv6 is down', { address: text });
      }
    }
    if (h === this.local) return;
    this.local = h;
    this.reassembler.clear();
    this.armReassembly();
    this.localBytes = h ? this.addresses.bytes(h) : undefined;
    if (h === 0) {
      this.failPings();
      if (text !== undefined) this.log.info('IPv6 down');
    } else this.log.info('IPv6 up', { address: this.addresses.text(h), mtu: this.mtu() });
  }

  private failPings(): void {
    const all = [...this.pings.values()];
    this.pings.clear();
    for (const w of all) {
      this.clock.clearTimer(w.timer);
      w.resolve(undefined);
    }
  }
}

function len(payload: Uint8Array): number {
  return payload.length + ICMPV6_HEADER_LENGTH;
}
