/**
 * TcpStack: the TCP protocol handler of the userspace IP stack (protocol 6). Demultiplexes segments by
 * 4-tuple to connections, answers SYNs on listening ports, resets segments for unknown connections,
 * allocates ephemeral ports (never reusing a 4-tuple still in TIME_WAIT: those connections stay in the
 * table until 2*MSL passes), delivers ICMP errors, and drives every connection's timers from ONE clock
 * timer re-armed to the earliest deadline (a lazy min-heap, see timers.ts).
 */
import { VpnError } from '../../errors.js';
import type { Clock, TimerHandle } from '../../util/clock.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { finishChecksum, onesSum, pseudoHeaderSum } from '../../wire/checksum.js';
import { WireError } from '../../errors.js';
import { quotedPorts, type IcmpError } from '../../wire/icmp.js';
import { parseIpv4Address, readU32, type Ipv4Header } from '../../wire/ipv4.js';
import {
  TcpFlag,
  emptyTcpOptions,
  parseTcpOptionsInto,
  tcpAck,
  tcpDstPort,
  tcpFlags,
  tcpHeaderLen,
  tcpSeq,
  tcpSrcPort,
  tcpWindow,
  writeTcpHeader,
} from '../../wire/tcp.js';
import type { IpSender, ProtocolHandler } from '../types.js';
import type { CongestionAlgorithm } from './congestion.js';
import { TcpConnection, TcpState, type ConnHost, type InSegment, type TcpConfig } from './connection.js';
import { seqAdd } from './seq.js';
import { TcpSocket } from './socket.js';
import { newTcpStats, type TcpStats } from './stats.js';
import { DeadlineHeap } from './timers.js';

export interface TcpStackOptions {
  clock: Clock;
  logger?: Logger;
  /** Our MSS; default link MTU - 40 (IPv4) or - 60 (IPv6). */
  mss?: number;
  /** Receive buffer: initial size and auto-tuning bound (default 256 KiB and 6 MiB). */
  rcvBufInit?: number;
  rcvBufMax?: number;
  /** Send buffer limit per connection before write() backpressure (default 4 MiB). */
  sndBuf?: number;
  /** TIME_WAIT duration, 2*MSL (default 60 s as Linux). */
  timeWaitMs?: number;
  congestion?: CongestionAlgorithm;
  windowScaling?: boolean;
  sack?: boolean;
  timestamps?: boolean;
  initialWindow?: number;
  initialRtoMs?: number;
  minRtoMs?: number;
  maxRtoMs?: number;
  synRetries?: number;
  maxRetries?: number;
  delAckMs?: number;
  finWait2Ms?: number;
  keepAliveIdleMs?: number;
  keepAliveIntervalMs?: number;
  keepAliveProbes?: number;
  /** Default connect timeout when connect() gives none (default 30 s). */
  connectTimeoutMs?: number;
  /** Ephemeral port range (inclusive; default 49152-65535). */
  ephemeralPorts?: [number, number];
  /** Half-open (SYN_RECEIVED) connections per listener (default 1024). */
  synBacklog?: number;
  /** Out-of-order pieces kept per connection (default 2048). */
  oooMaxPieces?: number;
  /**
   * Run `fn` once the current batch of incoming packets is processed (e.g. `setImmediate`): then in-order data
   * reaches sockets in one chunk per batch instead of one per segment, and pure ACKs of established
   * connections are coalesced to one per batch (capped at 16 segments). Leave unset for step-by-step
   * behaviour (the simulated-clock tests); VpnTunnel sets it.
   */
  defer?: (fn: () => void) => void;
}

export interface TcpConnectOptions {
  /** An address literal of the IP layer's family (IPv4 dotted quad, or IPv6 on a stack over the IPv6 layer). */
  host: string;
  port: number;
  /** Give up with CONNECT_TIMEOUT after this long (default: the stack's connectTimeoutMs). */
  timeoutMs?: number;
  /** Disable Nagle (default true: proxied connections want low latency). */
  noDelay?: boolean;
  /** Bind to this local port (fails if the 4-tuple is in use, TIME_WAIT included). */
  localPort?: number;
  allowHalfOpen?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  writableHighWaterMark?: number;
  readableHighWaterMark?: number;
}

export interface TcpListenOptions {
  allowHalfOpen?: boolean;
  noDelay?: boolean;
}

export interface TcpListener {
  readonly port: number;
  close(): void;
}

interface Listener {
  port: number;
  onConnection: (s: TcpSocket) => void;
  opts: TcpListenOptions;
  pending: number;
  closed: boolean;
}

/** Key for (local port, remote port); the inner map is keyed by remote address. */
function portKey(lport: number, rport: number): number {
  return lport * 65536 + rport;
}

export class TcpStack implements ProtocolHandler {
  readonly stats: TcpStats = newTcpStats();
  /** Clock.setTimer calls made (for the no-churn check). */
  timerArms = 0;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly table = new Map<number, Map<number, TcpConnection>>();
  private readonly listeners = new Map<number, Listener>();
  private readonly pendingOf = new Map<TcpConnection, Listener>();
  private readonly acceptOpts = new Map<TcpConnection, TcpListenOptions>();
  private readonly heap = new DeadlineHeap<TcpConnection>();
  private timer: TimerHandle | undefined;
  private armedAt = Infinity;
  private inTimer = false;
  private readonly cfgByMss = new Map<number, TcpConfig>();
  private readonly base: Omit<TcpConfig, 'mss'>;
  private readonly host: ConnHost;
  private readonly seg: InSegment = { seq: 0, ack: 0, flags: 0, window: 0, payload: new Uint8Array(0), options: emptyTcpOptions() };
  private last: TcpConnection | undefined;
  private readonly onTimerCb = (): void => this.onTimer();
  private closedStack = false;
  /** 6 when running over the IPv6 layer (addresses are its handles). */
  readonly family: 4 | 6;
  private readonly addressSum: ((a: number, b: number) => number) | undefined;

  constructor(
    private readonly ip: IpSender,
    private readonly opts: TcpStackOptions,
  ) {
    this.clock = opts.clock;
    this.log = opts.logger ?? silentLogger;
    this.family = ip.family === 6 ? 6 : 4;
    this.addressSum = ip.addressSum ? (a, b) => ip.addressSum!(a, b) : undefined;
    this.base = {
      ipOverhead: this.family === 6 ? 60 : 40,
      minPathMtu: this.family === 6 ? 1280 : 68,
      windowScaling: opts.windowScaling ?? true,
      sack: opts.sack ?? true,
      timestamps: opts.timestamps ?? true,
      rcvBufInit: opts.rcvBufInit ?? 256 * 1024,
      rcvBufMax: opts.rcvBufMax ?? 6 * 1024 * 1024,
      sndBuf: opts.sndBuf ?? 4 * 1024 * 1024,
      initialRtoMs: opts.initialRtoMs ?? 1000,
      minRtoMs: opts.minRtoMs ?? 200,
      maxRtoMs: opts.maxRtoMs ?? 60_000,
      synRetries: opts.synRetries ?? 6,
      maxRetries: opts.maxRetries ?? 15,
      timeWaitMs: opts.timeWaitMs ?? 60_000,
      delAckMs: opts.delAckMs ?? 40,
      finWait2Ms: opts.finWait2Ms ?? 60_000,
      congestion: opts.congestion ?? 'cubic',
      initialWindow: opts.initialWindow ?? 10,
      keepAliveIdleMs: opts.keepAliveIdleMs ?? 7_200_000,
      keepAliveIntervalMs: opts.keepAliveIntervalMs ?? 75_000,
      keepAliveProbes: opts.keepAliveProbes ?? 9,
      oooMaxPieces: opts.oooMaxPieces ?? 2048,
    };
    const ipWith = this.ip.sendIpWith;
    this.host = {
      output: (c, segment) => this.ip.sendIp(c.remoteAddr, 6, segment),
      outputWith: ipWith ? (c, length, fill) => ipWith.call(this.ip, c.remoteAddr, 6, length, fill) : undefined,
      schedule: (c) => this.schedule(c),
      addressSum: this.addressSum,
      closed: (c) => this.onClosed(c),
      established: (c) => this.onEstablished(c),
      deferAck: opts.defer ? (c) => this.deferAck(c) : undefined,
    };
    this.defer = opts.defer;
  }

  now(): number {
    return this.clock.now();
  }

  /** See TcpStackOptions.defer; undefined = deliver and ACK at once. */
  readonly defer: ((fn: () => void) => void) | undefined;
  private readonly ackQueue = new Set<TcpConnection>();
  private ackFlushQueued = false;

  private deferAck(c: TcpConnection): void {
    this.ackQueue.add(c);
    if (this.ackFlushQueued) return;
    this.ackFlushQueued = true;
    this.defer!(() => {
      this.ackFlushQueued = false;
      const now = this.clock.now();
      for (const conn of this.ackQueue) conn.flushDeferredAck(now);
      this.ackQueue.clear();
    });
  }

  private config(): TcpConfig {
    const mss = Math.max(this.opts.mss ?? this.ip.mtu() - this.base.ipOverhead, 88);
    let c = this.cfgByMss.get(mss);
    if (!c) {
      c = { ...this.base, mss };
      this.cfgByMss.set(mss, c);
    }
    return c;
  }

  // ======================= API =======================

  connect(o: TcpConnectOptions): TcpSocket {
    if (this.closedStack) throw new VpnError('TRANSPORT_CLOSED', 'TCP stack is closed');
    let raddr: number;
    try {
      raddr = this.ip.parseAddress ? this.ip.parseAddress(o.host) : parseIpv4Address(o.host);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      throw new VpnError('USAGE', `TCP connect: host must be an IPv${this.family} literal, got ${JSON.stringify(o.host)}`);
    }
    if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new VpnError('USAGE', `TCP connect: bad port ${o.port}`);
    const laddr = this.ip.localAddress();
    const lport = o.localPort ?? this.ephemeralPort(raddr, o.port);
    const inUse = lport === 0 || this.lookup(raddr, o.port, lport) !== undefined;
    const conn = new TcpConnection(this.host, this.config(), this.stats, laddr, lport, raddr, o.port, false);
    const sock = new TcpSocket(conn, this, true, {
      allowHalfOpen: o.allowHalfOpen ?? false,
      ...(o.writableHighWaterMark !== undefined ? { writableHighWaterMark: o.writableHighWaterMark } : {}),
      ...(o.readableHighWaterMark !== undefined ? { readableHighWaterMark: o.readableHighWaterMark } : {}),
    });
    if (laddr === 0) {
      sock.onError(new VpnError('HOST_UNREACHABLE', 'TCP connect: the link is down (no local address)'));
      return sock;
    }
    if (inUse) {
      sock.onError(
        new VpnError('TRANSPORT_ERROR', lport === 0 ? 'TCP connect: no free ephemeral port' : `TCP connect: local port ${lport} is in use for that peer (TIME_WAIT or open)`),
      );
      return sock;
    }
    this.insert(conn);
    conn.setNoDelay(o.noDelay ?? true, this.clock.now());
    if (o.keepAlive) conn.setKeepAlive(true, o.keepAliveInitialDelay ?? 0, this.clock.now());
    conn.connect(this.clock.now(), o.timeoutMs ?? this.opts.connectTimeoutMs ?? 30_000);
    return sock;
  }

  listen(port: number, onConnection: (s: TcpSocket) => void, opts: TcpListenOptions = {}): TcpListener {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new VpnError('USAGE', `TCP listen: bad port ${port}`);
    if (this.listeners.has(port)) throw new VpnError('USAGE', `TCP listen: port ${port} already has a listener`);
    const l: Listener = { port, onConnection, opts, pending: 0, closed: false };
    this.listeners.set(port, l);
    return {
      port,
      close: () => {
        if (this.listeners.get(port) === l) this.listeners.delete(port);
        l.closed = true;
      },
    };
  }

  /** Reset every connection and stop the timer. */
  close(): void {
    this.closedStack = true;
    const now = this.clock.now();
    const all: TcpConnection[] = [];
    for (const m of this.table.values()) for (const c of m.values()) all.push(c);
    for (const c of all) {
      const ev = c.state === TcpState.TIME_WAIT ? undefined : c.events;
      c.events = undefined;
      c.reset(now);
      ev?.onError(new VpnError('TRANSPORT_CLOSED', 'TCP stack closed'));
    }
    this.listeners.clear();
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
    this.heap.clear();
  }

  /** Connections in the table (TIME_WAIT included). */
  get connectionCount(): number {
    return this.stats.connections;
  }

  // ======================= input =======================

  input(src: number, dst: number, payload: Uint8Array, _ip?: Ipv4Header): void {
    const stats = this.stats;
    stats.segmentsIn++;
    const len = payload.length;
    if (len < 20) {
      stats.badSegments++;
      return;
    }
    const asum = this.addressSum;
    if (finishChecksum(onesSum(payload, 0, len, (asum ? asum(src, dst) : pseudoHeaderSum(src, dst, 0, 0)) + 6 + len)) !== 0) {
      stats.badSegments++;
      return;
    }
    const hl = tcpHeaderLen(payload);
    if (hl < 20 || hl > len) {
      stats.badSegments++;
      return;
    }
    const seg = this.seg;
    const o = seg.options;
    o.mss = undefined;
    o.windowScale = undefined;
    o.sackPermitted = false;
    o.sack = undefined;
    o.timestamp = undefined;
    if (hl > 20) {
      try {
        parseTcpOptionsInto(payload, 20, hl, o);
      } catch {
        stats.badSegments++;
        return;
      }
    }
    seg.seq = tcpSeq(payload);
    seg.ack = tcpAck(payload);
    seg.flags = tcpFlags(payload);
    seg.window = tcpWindow(payload);
    seg.payload = payload.subarray(hl);
    const sport = tcpSrcPort(payload);
    const dport = tcpDstPort(payload);
    const now = this.clock.now();
    const conn = this.lookup(src, sport, dport);
    if (conn && conn.localAddr === dst) {
      conn.input(seg, now);
      return;
    }
    const f = seg.flags;
    if (f & TcpFlag.RST) return;
    const l = this.listeners.get(dport);
    if (l && (f & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.FIN)) === TcpFlag.SYN && !this.closedStack) {
      if (l.pending >= (this.opts.synBacklog ?? 1024)) return; // backlog full: drop, the peer retries
      const c = new TcpConnection(this.host, this.config(), stats, dst, dport, src, sport, true);
      l.pending++;
      this.pendingOf.set(c, l);
      this.insert(c);
      stats.passiveOpens++;
      c.acceptSyn(seg, now);
      return;
    }
    this.sendReset(src, dst, sport, dport, seg);
  }

  icmpError(err: IcmpError): void {
    if (err.original.protocol !== 6) return;
    const ports = quotedPorts(err);
    if (!ports) return;
    const conn = this.lookup(err.original.dst, ports.dstPort, ports.srcPort);
    if (!conn) return;
    const d = err.originalData;
    const seq = d.length >= 8 ? readU32(d, 4) : undefined;
    conn.icmpError(err.kind, err.code, err.nextHopMtu, seq, this.clock.now());
  }

  /** RFC 9293 3.10.7.1: reset for a segment that matches no connection. */
  private sendReset(src: number, dst: number, sport: number, dport: number, seg: InSegment): void {
    const f = seg.flags;
    let seq: number;
    let ack: number;
    let flags: number;
    if (f & TcpFlag.ACK) {
      seq = seg.ack;
      ack = 0;
      flags = TcpFlag.RST;
    } else {
      seq = 0;
      ack = seqAdd(seg.seq, seg.payload.length + (f & TcpFlag.SYN ? 1 : 0) + (f & TcpFlag.FIN ? 1 : 0));
      flags = TcpFlag.RST | TcpFlag.ACK;
    }
    const buf = new Uint8Array(20);
    writeTcpHeader({ srcPort: dport, dstPort: sport, seq, ack, flags, window: 0 }, 0, buf, 0, {
      src: dst,
      dst: src,
      sum: this.addressSum ? this.addressSum(dst, src) : undefined,
    });
    this.stats.rstsSent++;
    this.stats.segmentsOut++;
    this.ip.sendIp(src, 6, buf);
  }

  // ======================= table =======================

  private lookup(raddr: number, rport: number, lport: number): TcpConnection | undefined {
    const last = this.last;
    if (last && last.remoteAddr === raddr && last.remotePort === rport && last.localPort === lport && !last.isClosed()) return last;
    const c = this.table.get(portKey(lport, rport))?.get(raddr);
    if (c) this.last = c;
    return c;
  }

  private insert(c: TcpConnection): void {
    const k = portKey(c.localPort, c.remotePort);
    let m = this.table.get(k);
    if (!m) {
      m = new Map();
      this.table.set(k, m);
    }
    m.set(c.remoteAddr, c);
    this.stats.connections++;
  }

  private onClosed(c: TcpConnection): void {
    const k = portKey(c.localPort, c.remotePort);
    const m = this.table.get(k);
    if (m && m.get(c.remoteAddr) === c) {
      m.delete(c.remoteAddr);
      if (m.size === 0) this.table.delete(k);
      this.stats.connections--;
    }
    if (this.last === c) this.last = undefined;
    const l = this.pendingOf.get(c);
    if (l) {
      l.pending--;
      this.pendingOf.delete(c);
    }
  }

  private onEstablished(c: TcpConnection): void {
    const l = this.pendingOf.get(c);
    if (!l) return;
    l.pending--;
    this.pendingOf.delete(c);
    if (l.closed) {
      c.reset(this.clock.now());
      return;
    }
    const sock = new TcpSocket(c, this, false, { allowHalfOpen: l.opts.allowHalfOpen ?? false });
    c.setNoDelay(l.opts.noDelay ?? true, this.clock.now());
    try {
      l.onConnection(sock);
    } catch (e) {
      this.log.error('TCP listener callback threw', { port: l.port, error: String(e) });
      sock.destroy();
    }
  }

  private ephemeralPort(raddr: number, rport: number): number {
    const [lo, hi] = this.opts.ephemeralPorts ?? [49152, 65535];
    const n = hi - lo + 1;
    const start = Math.floor(Math.random() * n);
    for (let i = 0; i < n; i++) {
      const p = lo + ((start + i) % n);
      if (this.listeners.has(p)) continue;
      if (!this.table.get(portKey(p, rport))?.has(raddr)) return p;
    }
    return 0;
  }

  // ======================= the one timer =======================

  private schedule(c: TcpConnection): void {
    if (c.isClosed()) return;
    const d = c.nextDeadline();
    if (d < c.heapAt) {
      c.heapAt = d;
      this.heap.push(d, c);
      if (!this.inTimer && d < this.armedAt) this.arm(d);
    }
  }

  private arm(at: number): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.armedAt = at;
    this.timerArms++;
    this.timer = this.clock.setTimer(this.onTimerCb, Math.max(0, Math.ceil(at - this.clock.now())));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = this.clock.now();
    const heap = this.heap;
    this.inTimer = true;
    let guard = heap.size * 2 + 1024;
    try {
      while (heap.peekTime() <= now && guard-- > 0) {
        const t = heap.peekTime();
        const c = heap.peekItem()!;
        heap.pop();
        if (c.heapAt !== t) continue; // superseded entry
        c.heapAt = Infinity;
        if (c.isClosed()) continue;
        if (c.state === TcpState.CLOSED) continue;
        c.onTimer(now);
        this.schedule(c);
      }
    } finally {
      this.inTimer = false;
    }
    const top = heap.peekTime();
    if (top < Infinity) this.arm(top <= now ? now + 1 : top);
  }
}
