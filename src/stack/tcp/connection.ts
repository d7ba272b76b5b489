/**
 * One TCP connection as a sans-I/O core (RFC 9293 state machine, RFC 7323 options, RFC 2018/6675 SACK,
 * RFC 6298 RTO, RFC 8985 RACK-TLP, RFC 5961 checks). Time comes in as `now` (ms); segments go out through
 * the host (the TcpStack), which also owns the one timer: after every entry point the connection asks the
 * host to schedule it at nextDeadline(). Application-facing events go to `events` (the TcpSocket).
 *
 * Sequence space: SND.UNA..SND.NXT is tracked per transmitted segment in the scoreboard; the send buffer
 * holds the data bytes from SND.UNA (the SYN and FIN occupy sequence numbers but no buffer bytes).
 */
import { randomBytes } from 'node:crypto';
import { VpnError, type ErrorCode } from '../../errors.js';
import { TcpFlag, tcpOptionsLength, writeTcpHeader, type ParsedTcpOptions, type SackBlock, type TcpOptions, type TcpSegmentInit } from '../../wire/tcp.js';
import type { PseudoHeader } from '../../wire/udp.js';
import { createCongestionControl, type CongestionAlgorithm, type CongestionControl } from './congestion.js';
import { Reassembly } from './reassembly.js';
import { Scoreboard, SegFlag, type SentSegment } from './sack.js';
import { SendBuffer } from './send-buffer.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt } from './seq.js';
import type { TcpStats } from './stats.js';

export const TcpState = {
  CLOSED: 0,
  SYN_SENT: 1,
  SYN_RECEIVED: 2,
  ESTABLISHED: 3,
  FIN_WAIT_1: 4,
  FIN_WAIT_2: 5,
  CLOSE_WAIT: 6,
  CLOSING: 7,
  LAST_ACK: 8,
  TIME_WAIT: 9,
} as const;
export type TcpStateValue = (typeof TcpState)[keyof typeof TcpState];
export const TCP_STATE_NAMES = [
  'CLOSED',
  'SYN_SENT',
  'SYN_RECEIVED',
  'ESTABLISHED',
  'FIN_WAIT_1',
  'FIN_WAIT_2',
  'CLOSE_WAIT',
  'CLOSING',
  'LAST_ACK',
  'TIME_WAIT',
] as const;

export interface TcpConfig {
  /** Our MSS (link MTU - ipOverhead). */
  mss: number;
  /** IP + TCP fixed headers: 40 over IPv4, 60 over IPv6 (a path MTU minus this is a path MSS). */
  ipOverhead: number;
  /** Smallest path MTU an ICMP error may lower us to (68 for IPv4, 1280 for IPv6). */
  minPathMtu: number;
  windowScaling: boolean;
  sack: boolean;
  timestamps: boolean;
  /** Receive buffer at the start and the auto-tuning bound (bytes). */
  rcvBufInit: number;
  rcvBufMax: number;
  /** Send buffer (bytes held unacknowledged + unsent) before write() applies backpressure. */
  sndBuf: number;
  initialRtoMs: number;
  minRtoMs: number;
  maxRtoMs: number;
  /** SYN retransmissions before CONNECT_TIMEOUT. */
  synRetries: number;
  /** Data retransmission timeouts in a row before the connection is dropped. */
  maxRetries: number;
  timeWaitMs: number;
  delAckMs: number;
  finWait2Ms: number;
  congestion: CongestionAlgorithm;
  initialWindow: number;
  keepAliveIdleMs: number;
  keepAliveIntervalMs: number;
  keepAliveProbes: number;
  oooMaxPieces: number;
}

/** A received segment as the stack hands it over (a reused object: do not keep it). */
export interface InSegment {
  seq: number;
  ack: number;
  flags: number;
  /** Raw window field. */
  window: number;
  payload: Uint8Array;
  options: ParsedTcpOptions;
}

export interface ConnHost {
  /** A complete TCP segment (checksum set) for the IP layer. */
  output(conn: TcpConnection, segment: Uint8Array): void;
  /**
   * Optional: have the IP layer allocate the packet and call `fill` to write the segment (`length` bytes)
   * straight into it at `offset` (saves a buffer and a copy per segment).
   */
  outputWith?(conn: TcpConnection, length: number, fill: (out: Uint8Array, offset: number) => void): void;
  /** Re-evaluate the connection's timer deadline. */
  schedule(conn: TcpConnection): void;
  /** IPv6: the pseudo-header's address sum for (local, remote); absent for IPv4. */
  addressSum?: ((a: number, b: number) => number) | undefined;
  /** The connection reached CLOSED: forget it. */
  closed(conn: TcpConnection): void;
  /** A passive open completed (SYN_RECEIVED -> ESTABLISHED). */
  established(conn: TcpConnection): void;
  /** When set, a pure ACK may wait until the current batch of packets is processed (flushDeferredAck). */
  deferAck?: (conn: TcpConnection) => void;
}

/** Most segments a coalesced ACK may cover before it goes out at once. */
const MAX_COALESCED_SEGMENTS = 16;

export interface ConnEvents {
  onConnect(): void;
  /** In-order data, a copy the receiver owns. */
  onData(data: Buffer): void;
  /** The peer's FIN. */
  onEnd(): void;
  /** Send-buffer space became available again. */
  onDrain(): void;
  /** The connection was aborted (reset, timeout, unreachable). */
  onError(err: VpnError): void;
  onTimeout(): void;
}

const INF = Infinity;
const DEFAULT_PEER_MSS = 536;
const TS_OPT_LEN = 12;
const MAX_WSCALE = 14;

function randomU32(): number {
  return randomBytes(4).readUInt32BE(0);
}

/** Window scale so that `buf` fits a 16-bit field. */
export function wscaleFor(buf: number): number {
  let s = 0;
  while (s < MAX_WSCALE && buf / 2 ** s > 0xffff) s++;
  return s;
}

export class TcpConnection {
  state: TcpStateValue = TcpState.CLOSED;
  events: ConnEvents | undefined;
  /** Set by the host: deadline at which the host's heap holds this connection (Infinity = none). */
  heapAt = INF;
  readonly passive: boolean;

  // ---- send side ----
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  maxSndWnd = 0;
  private sndWscale = 0;
  readonly sendBuf = new SendBuffer();
  private finQueued = false;
  private finSent = false;
  private finSeq = 0;
  readonly sb = new Scoreboard();
  /** Peer's MSS (from its SYN) and our path limit; data per segment is min(...) minus options. */
  peerMss = DEFAULT_PEER_MSS;
  private pathMss: number;
  nagle = false;
  private cwndLimited = false;
  private writableBlocked = false;

  // ---- receive side ----
  irs = 0;
  rcvNxt = 0;
  private rcvWscale = 0;
  /** Right edge of the window we last advertised (never moves left). */
  private rcvAdvRight = 0;
  rcvBuf: number;
  /** Bytes delivered to the application but not yet read by it (reported by the socket). */
  rcvUnread = 0;
  private rcvDelivered = 0;
  private tuneAt = 0;
  private tuneConsumed = 0;
  private rcvRttMs = 0;
  readonly ooo: Reassembly;
  private rcvFinPending = -1;
  private finReceived = false;
  private ackNow = false;
  private challengeWindowAt = -Infinity;
  private challengeCount = 0;
  private segsUnacked = 0;
  private dsack: SackBlock | undefined;

  // ---- options ----
  wsOk = false;
  sackOk = false;
  tsOk = false;
  private tsRecent = 0;
  private tsOffset = 0;
  private lastAckSent = 0;

  // ---- RTT / RTO ----
  srtt = 0;
  rttvar = 0;
  rto: number;
  minRtt = INF;
  private retries = 0;
  private synSentAt = 0;

  // ---- congestion / recovery ----
  cc: CongestionControl;
  inRecovery = false;
  /** Recovery entered by an RTO: the window slow-starts back (no crawl at one segment per RTT). */
  private rtoRecovery = false;
  private recoveryPoint = 0;
  private dupAcks = 0;
  private rackXmitTs = -1;
  private rackEndSeq = 0;
  private rackRtt = 0;
  private reoWndMult = 1;
  private tlpOutstanding = false;
  private deliveredInAck = 0;
  private karnSample = -1;

  // ---- timers (absolute ms, Infinity = off) ----
  private rtoAt = INF;
  private delackAt = INF;
  private persistAt = INF;
  private persistBackoff = 0;
  private rackAt = INF;
  private tlpAt = INF;
  private timeWaitAt = INF;
  private finWait2At = INF;
  private connectDeadline = INF;
  private keepAliveAt = INF;
  private keepAliveOn = false;
  private keepAliveIdle: number;
  private kaProbes = 0;
  private lastRecvAt = 0;
  private idleMs = 0;
  private idleAt = INF;
  private lastActivity = 0;

  // ---- output scratch (reused; stable shapes) ----
  private readonly txInit: TcpSegmentInit;
  private readonly txOpts: TcpOptions;
  private readonly txTs = { value: 0, echo: 0 };
  private readonly txSack: SackBlock[] = [];
  private readonly pseudo: PseudoHeader;
  private readonly onDeliveredCb: (r: SentSegment) => void;

  constructor(
    private readonly host: ConnHost,
    private readonly cfg: TcpConfig,
    private readonly stats: TcpStats,
    readonly localAddr: number,
    readonly localPort: number,
    readonly remoteAddr: number,
    readonly remotePort: number,
    passive: boolean,
  ) {
    this.passive = passive;
    this.pathMss = cfg.mss;
    this.rcvBuf = Math.min(cfg.rcvBufInit, cfg.rcvBufMax);
    this.rto = cfg.initialRtoMs;
    this.keepAliveIdle = cfg.keepAliveIdleMs;
    this.ooo = new Reassembly(cfg.oooMaxPieces, cfg.rcvBufMax);
    this.cc = createCongestionControl(cfg.congestion, cfg.mss, cfg.initialWindow);
    this.txOpts = { mss: undefined, windowScale: undefined, sackPermitted: false, sack: undefined, timestamp: undefined };
    this.txInit = { srcPort: localPort, dstPort: remotePort, seq: 0, ack: 0, flags: 0, window: 0, urgent: 0, options: this.txOpts };
    this.pseudo = { src: localAddr, dst: remoteAddr, sum: host.addressSum ? host.addressSum(localAddr, remoteAddr) : undefined };
    this.onDeliveredCb = (r) => this.onDelivered(r);
  }

  // ======================= public entry points =======================

  /** Active open: send SYN. */
  connect(now: number, timeoutMs: number): void {
    this.iss = randomU32();
    this.tsOffset = randomU32();
    this.sndUna = this.iss;
    this.sndNxt = seqAdd(this.iss, 1);
    this.state = TcpState.SYN_SENT;
    this.lastRecvAt = now;
    this.lastActivity = now;
    if (timeoutMs > 0) this.connectDeadline = now + timeoutMs;
    this.sendSyn(now);
    this.rtoAt = now + this.rto;
    this.stats.activeOpens++;
    this.flush(now);
  }

  /** Passive open from a SYN to a listening port. */
  acceptSyn(seg: InSegment, now: number): void {
    this.iss = randomU32();
    this.tsOffset = randomU32();
    this.sndUna = this.iss;
    this.sndNxt = seqAdd(this.iss, 1);
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.negotiate(seg.options, true);
    this.state = TcpState.SYN_RECEIVED;
    this.lastRecvAt = now;
    this.lastActivity = now;
    this.sendSyn(now);
    this.rtoAt = now + this.rto;
    this.flush(now);
  }

  /** Queue application data. Returns false when the send buffer is over its limit (backpressure). */
  send(data: Uint8Array, now: number): boolean {
    if (this.finQueued || this.state === TcpState.CLOSED || this.state >= TcpState.FIN_WAIT_1 && this.state !== TcpState.CLOSE_WAIT) {
      return true; // writes after end/close are the socket's problem; drop silently here
    }
    this.sendBuf.append(data);
    this.lastActivity = now;
    if (this.state >= TcpState.ESTABLISHED) this.flush(now);
    const ok = this.sendBuf.length < this.cfg.sndBuf;
    if (!ok) this.writableBlocked = true;
    return ok;
  }

  /** The application ended its side: FIN after the queued data. */
  shutdown(now: number): void {
    if (this.finQueued) return;
    switch (this.state) {
      case TcpState.SYN_SENT:
      case TcpState.SYN_RECEIVED:
        this.finQueued = true;
        return;
      case TcpState.ESTABLISHED:
        this.finQueued = true;
        this.state = TcpState.FIN_WAIT_1;
        break;
      case TcpState.CLOSE_WAIT:
        this.finQueued = true;
        this.state = TcpState.LAST_ACK;
        break;
      default:
        return;
    }
    this.flush(now);
  }

  /**
   * The socket went away (destroy). Like close(2): with unread received data the connection is reset;
   * otherwise it finishes gracefully in the background (orphaned), bounded by the FIN_WAIT_2 timeout.
   */
  close(now: number): void {
    this.events = undefined;
    switch (this.state) {
      case TcpState.CLOSED:
      case TcpState.TIME_WAIT:
        return;
      case TcpState.SYN_SENT:
        this.toClosed();
        return;
    }
    if (this.rcvUnread > 0 || !this.ooo.empty) {
      this.reset(now);
      return;
    }
    this.shutdown(now);
    if (this.state === TcpState.FIN_WAIT_2) this.finWait2At = now + this.cfg.finWait2Ms;
    this.flush(now);
  }

  /** Abort with a RST (resetAndDestroy, or stack shutdown). */
  reset(now: number): void {
    if (this.state === TcpState.CLOSED || this.state === TcpState.TIME_WAIT) {
      if (this.state === TcpState.TIME_WAIT) this.toClosed();
      return;
    }
    if (this.state !== TcpState.SYN_SENT) this.sendRst(this.sndNxt, now);
    this.events = undefined;
    this.toClosed();
  }

  /** The socket reports how much delivered data the application has not read yet. */
  appRead(unread: number, now: number): void {
    const before = this.rcvUnread;
    this.rcvUnread = unread;
    if (unread >= before || this.state < TcpState.ESTABLISHED || this.state === TcpState.CLOSED) return;
    const prevWin = seqDiff(this.rcvAdvRight, this.rcvNxt);
    const space = this.rcvBuf - unread;
    if (prevWin <= this.rcvBuf / 2 && space - prevWin >= 2 * this.mssBase()) {
      this.ackNow = true;
      this.flush(now);
    }
  }

  setNoDelay(noDelay: boolean, now: number): void {
    this.nagle = !noDelay;
    if (noDelay && this.state >= TcpState.ESTABLISHED) this.flush(now);
  }

  setKeepAlive(enable: boolean, idleMs: number, now: number): void {
    this.keepAliveOn = enable;
    if (idleMs > 0) this.keepAliveIdle = idleMs;
    this.kaProbes = 0;
    this.keepAliveAt = enable ? Math.max(now, this.lastRecvAt) + this.keepAliveIdle : INF;
    this.host.schedule(this);
  }

  /** socket.setTimeout: 'timeout' after ms without activity (0 disables). */
  setIdleTimeout(ms: number, now: number): void {
    this.idleMs = ms;
    this.lastActivity = now;
    this.idleAt = ms > 0 ? now + ms : INF;
    this.host.schedule(this);
  }

  /** ICMP error concerning this connection (quotedSeq: the sequence number in the quoted header). */
  icmpError(kind: 'dest-unreachable' | 'time-exceeded', code: number, nextHopMtu: number, quotedSeq: number | undefined, now: number): void {
    if (quotedSeq !== undefined && !seqInRange(quotedSeq, this.sndUna, seqAdd(this.sndNxt, 1))) return; // RFC 5927
    if (kind !== 'dest-unreachable') return; // time exceeded: soft error
    if (code === 4) {
      // fragmentation needed (RFC 1191): lower the path MSS and resend what was lost at the old size
      const overhead = this.cfg.ipOverhead;
      if (nextHopMtu >= this.cfg.minPathMtu && nextHopMtu - overhead < this.pathMss) {
        this.pathMss = Math.max(nextHopMtu - overhead, 88);
        this.cc.setMss(this.maxSeg());
        if (this.sb.count) {
          this.sb.markAllLost();
          this.flush(now);
        }
      }
      return;
    }
    const refused = code === 2 || code === 3;
    if (this.state === TcpState.SYN_SENT || (this.state === TcpState.SYN_RECEIVED && !this.passive)) {
      this.stats.connectFailures++;
      this.abort(refused ? 'CONN_REFUSED' : 'HOST_UNREACHABLE', refused ? 'connection refused (ICMP port unreachable)' : `host unreachable (ICMP code ${code})`);
      return;
    }
    if (refused && this.state >= TcpState.ESTABLISHED) this.abort('CONN_REFUSED', 'connection refused (ICMP port unreachable)');
    // net/host unreachable on an established connection: soft error (RFC 1122 4.2.3.9), keep retrying
  }

  nextDeadline(): number {
    let d = this.rtoAt;
    if (this.delackAt < d) d = this.delackAt;
    if (this.persistAt < d) d = this.persistAt;
    if (this.rackAt < d) d = this.rackAt;
    if (this.tlpAt < d) d = this.tlpAt;
    if (this.timeWaitAt < d) d = this.timeWaitAt;
    if (this.finWait2At < d) d = this.finWait2At;
    if (this.connectDeadline < d) d = this.connectDeadline;
    if (this.keepAliveAt < d) d = this.keepAliveAt;
    if (this.idleAt < d) d = this.idleAt;
    return d;
  }

  // ======================= timers =======================

  onTimer(now: number): void {
    if (this.state === TcpState.CLOSED) return;
    if (now >= this.timeWaitAt || now >= this.finWait2At) {
      this.toClosed();
      return;
    }
    if (now >= this.connectDeadline) {
      this.connectDeadline = INF;
      if (this.state === TcpState.SYN_SENT || (this.state === TcpState.SYN_RECEIVED && !this.passive)) {
        this.stats.connectFailures++;
        this.abort('CONNECT_TIMEOUT', `connect timed out after ${this.retries} SYN retransmissions`);
        return;
      }
    }
    if (now >= this.rtoAt) {
      this.onRto(now);
      if (this.isClosed()) return;
    }
    if (now >= this.rackAt) {
      this.rackAt = INF;
      if (this.detectLoss(now)) this.enterRecovery(now);
      if (this.inRecovery && this.tlpAt === INF) this.armTlp(now);
    }
    if (now >= this.tlpAt) this.onTlp(now);
    if (now >= this.persistAt) this.onPersist(now);
    if (now >= this.delackAt) {
      this.delackAt = INF;
      this.ackNow = true;
    }
    if (now >= this.keepAliveAt) {
      this.onKeepAlive(now);
      if (this.isClosed()) return;
    }
    if (now >= this.idleAt) {
      if (now >= this.lastActivity + this.idleMs) {
        this.idleAt = INF;
        this.events?.onTimeout();
      } else this.idleAt = this.lastActivity + this.idleMs;
    }
    this.flush(now);
  }

  private onRto(now: number): void {
    this.stats.rtoExpirations++;
    this.retries++;
    this.rto = Math.min(this.rto * 2, this.cfg.maxRtoMs);
    if (this.state === TcpState.SYN_SENT || this.state === TcpState.SYN_RECEIVED) {
      if (this.retries > this.cfg.synRetries) {
        if (this.state === TcpState.SYN_SENT || !this.passive) {
          this.stats.connectFailures++;
          this.abort('CONNECT_TIMEOUT', `no answer to SYN after ${this.retries} attempts`);
        } else this.toClosed();
        return;
      }
      this.stats.retransmits++;
      this.sendSyn(now);
      this.rtoAt = now + this.rto;
      return;
    }
    if (seqDiff(this.sndNxt, this.sndUna) <= 0) {
      this.rtoAt = INF;
      return;
    }
    if (this.retries > this.cfg.maxRetries) {
      this.abort('TRANSPORT_CLOSED', `connection timed out: no acknowledgment after ${this.retries - 1} retransmissions`);
      return;
    }
    if (this.retries === 1) this.cc.onRto(now, seqDiff(this.sndNxt, this.sndUna));
    else this.cc.cwnd = this.maxSeg();
    this.sb.markAllLost();
    this.inRecovery = true;
    this.rtoRecovery = true;
    this.recoveryPoint = this.sndNxt;
    this.dupAcks = 0;
    this.tlpAt = INF;
    this.tlpOutstanding = false;
    this.rtoAt = now + this.rto;
  }

  private onTlp(now: number): void {
    this.tlpAt = INF;
    if (this.rtoRecovery || this.tlpOutstanding || this.sb.count === 0) return;
    this.stats.tailLossProbes++;
    this.tlpOutstanding = true;
    // The probe resends the highest segment not yet SACKed; new data only when every segment is SACKed.
    // RFC 8985 prefers new data, but a receiver that defers its ACKs (Linux does until its application has
    // read; its delayed-ACK timer is 40 ms) holds the ACK of new data too, whereas it answers a duplicate at
    // once (D-SACK, quick-ack mode): through the lab's kernel peer, new-data probes left 40 ms stalls.
    // Probes also run in fast recovery (not after an RTO): there the highest unSACKed segment may be a lost
    // retransmission, which the probe repairs, or the probe's ACK lets RACK see it as lost; without this only
    // the RTO did (a lost retransmission plus a lost ACK stalled the sender for 200 ms behind the relay).
    let probe = this.sb.last()!;
    for (let i = this.sb.count - 1; i >= 0 && probe.flags & SegFlag.SACKED; i--) probe = this.sb.at(i);
    const unsent = this.unsentBytes();
    const wndAvail = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    if (!(probe.flags & SegFlag.SACKED)) this.retransmit(probe, now);
    else if (unsent > 0 && wndAvail > 0 && !this.inRecovery) this.sendNew(Math.min(unsent, this.maxSeg(), wndAvail), now);
    this.rtoAt = now + this.rto;
  }

  private onPersist(now: number): void {
    this.persistAt = INF;
    if (this.state < TcpState.ESTABLISHED || this.unsentBytes() <= 0 && !(this.finQueued && !this.finSent)) return;
    if (this.sndWnd > 0 || seqDiff(this.sndNxt, this.sndUna) > 0) return;
    this.stats.zeroWindowProbes++;
    this.sendProbe(now);
    this.persistBackoff++;
    this.persistAt = now + this.persistInterval();
  }

  private persistInterval(): number {
    const base = Math.max(this.rto, this.cfg.minRtoMs);
    return Math.min(base * 2 ** Math.min(this.persistBackoff, 16), this.cfg.maxRtoMs);
  }

  private onKeepAlive(now: number): void {
    this.keepAliveAt = INF;
    if (!this.keepAliveOn || this.state < TcpState.ESTABLISHED || this.state === TcpState.TIME_WAIT) return;
    const due = this.lastRecvAt + this.keepAliveIdle + this.kaProbes * this.cfg.keepAliveIntervalMs;
    if (now < due) {
      this.keepAliveAt = due;
      return;
    }
    if (seqDiff(this.sndNxt, this.sndUna) > 0) {
      // data outstanding: the retransmission timer watches the peer
      this.keepAliveAt = now + this.keepAliveIdle;
      return;
    }
    if (this.kaProbes >= this.cfg.keepAliveProbes) {
      this.abort('TRANSPORT_CLOSED', `connection timed out: ${this.kaProbes} keepalive probes unanswered`);
      return;
    }
    this.kaProbes++;
    this.stats.keepAliveProbes++;
    this.sendProbe(now);
    this.keepAliveAt = now + this.cfg.keepAliveIntervalMs;
  }

  // ======================= input =======================

  input(seg: InSegment, now: number): void {
    if (this.state === TcpState.CLOSED) return;
    if (this.state === TcpState.SYN_SENT) this.inputSynSent(seg, now);
    else this.inputSynchronized(seg, now);
    if (!this.isClosed()) this.flush(now);
  }

  private inputSynSent(seg: InSegment, now: number): void {
    const f = seg.flags;
    if (f & TcpFlag.ACK) {
      if (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt)) {
        if (!(f & TcpFlag.RST)) this.sendRstOnly(seg.ack, now);
        return;
      }
    }
    if (f & TcpFlag.RST) {
      if (f & TcpFlag.ACK) {
        this.stats.rstsReceived++;
        this.stats.connectFailures++;
        this.abort('CONN_REFUSED', 'connection refused (RST in answer to SYN)');
      }
      return;
    }
    if (!(f & TcpFlag.SYN)) return;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.rcvAdvRight = seqAdd(this.rcvNxt, Math.min(this.rcvBuf, 0xffff));
    this.lastRecvAt = now;
    this.negotiate(seg.options, false);
    if (f & TcpFlag.ACK) {
      this.sndUna = seg.ack;
      this.establish(seg, now);
      this.ackNow = true;
    } else {
      // simultaneous open
      this.state = TcpState.SYN_RECEIVED;
      this.sendSyn(now);
    }
  }

  private establish(seg: InSegment, now: number): void {
    this.state = this.finQueued ? TcpState.FIN_WAIT_1 : TcpState.ESTABLISHED;
    this.sndWnd = seg.window; // never scaled on a SYN (RFC 7323 2.2); scaled on the final ACK below
    if (!(seg.flags & TcpFlag.SYN)) this.sndWnd = seg.window << this.sndWscale;
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.connectDeadline = INF;
    this.rtoAt = INF;
    // RTT of the handshake (Karn: only without retransmission)
    if (this.retries === 0) this.rttSample(now - this.synSentAt);
    else this.rto = 3000; // RFC 6298 5.7
    this.retries = 0;
    this.cc = createCongestionControl(this.cfg.congestion, this.maxSeg(), this.cfg.initialWindow);
    this.tuneAt = now;
    if (this.keepAliveOn) this.keepAliveAt = now + this.keepAliveIdle;
    if (this.sndWnd > this.stats.maxPeerWindow) this.stats.maxPeerWindow = this.sndWnd;
    if (this.passive) this.host.established(this);
    else this.events?.onConnect();
  }

  private negotiate(o: ParsedTcpOptions, passive: boolean): void {
    this.peerMss = o.mss !== undefined && o.mss > 0 ? Math.max(o.mss, 64) : DEFAULT_PEER_MSS;
    this.wsOk = this.cfg.windowScaling && o.windowScale !== undefined;
    if (this.wsOk) {
      this.sndWscale = Math.min(o.windowScale!, MAX_WSCALE);
      this.rcvWscale = wscaleFor(this.cfg.rcvBufMax);
    } else {
      this.sndWscale = 0;
      this.rcvWscale = 0;
    }
    if (!this.wsOk) this.rcvBuf = Math.min(this.rcvBuf, 0xffff);
    this.sackOk = this.cfg.sack && o.sackPermitted;
    this.tsOk = this.cfg.timestamps && o.timestamp !== undefined;
    if (this.tsOk) this.tsRecent = o.timestamp!.value;
    void passive;
  }

  private inputSynchronized(seg: InSegment, now: number): void {
    const f = seg.flags;
    const rst = (f & TcpFlag.RST) !== 0;
    const syn = (f & TcpFlag.SYN) !== 0;
    let fin = (f & TcpFlag.FIN) !== 0;
    let seq = seg.seq;
    let payload = seg.payload;

    if (this.state === TcpState.SYN_RECEIVED && syn && !(f & TcpFlag.ACK) && seq === this.irs) {
      this.sendSyn(now); // our SYN-ACK was lost
      return;
    }
    const ts = seg.options.timestamp;
    // PAWS (RFC 7323 5.3)
    if (this.tsOk && ts && !rst && ((ts.value - this.tsRecent) | 0) < 0) {
      this.stats.pawsDrops++;
      this.ackNow = true;
      return;
    }
    // acceptability (RFC 9293 3.10.7.4)
    const wnd = Math.max(0, seqDiff(this.rcvAdvRight, this.rcvNxt));
    const segLen = payload.length + (syn ? 1 : 0) + (fin ? 1 : 0);
    let ok: boolean;
    if (segLen === 0) ok = wnd === 0 ? seq === this.rcvNxt : seqInRange(seq, this.rcvNxt, seqAdd(this.rcvNxt, wnd));
    else
      ok =
        wnd > 0 &&
        (seqInRange(seq, this.rcvNxt, seqAdd(this.rcvNxt, wnd)) || seqInRange(seqAdd(seq, segLen - 1), this.rcvNxt, seqAdd(this.rcvNxt, wnd)));
    if (!ok) {
      if (rst) return;
      // a window probe or zero-window data still carries a valid ACK and window: take them
      if (wnd === 0 && seq === this.rcvNxt && (f & TcpFlag.ACK) && this.state >= TcpState.ESTABLISHED) this.processAck(seg, now);
      if (this.state === TcpState.CLOSED) return;
      if (segLen > 0 && seqLe(seqAdd(seq, segLen), this.rcvNxt)) {
        this.stats.duplicateIn++;
        if (this.sackOk && payload.length > 0) this.dsack = { left: seq, right: seqAdd(seq, payload.length) };
      }
      if (this.state === TcpState.TIME_WAIT && fin) this.timeWaitAt = now + this.cfg.timeWaitMs;
      this.lastRecvAt = now;
      this.ackNow = true;
      return;
    }
    this.lastRecvAt = now;
    this.kaProbes = 0;
    if (rst) {
      // RFC 5961 3.2: only an exact match resets; anything else in the window gets a challenge ACK
      this.stats.rstsReceived++;
      if (seq === this.rcvNxt) this.onReset();
      else this.challengeAck();
      return;
    }
    if (syn) {
      // RFC 5961 4.2: SYN in a synchronized state
      this.challengeAck();
      return;
    }
    if (!(f & TcpFlag.ACK)) return;
    if (this.tsOk && ts && seqLe(seq, this.lastAckSent)) this.tsRecent = ts.value;

    if (this.state === TcpState.SYN_RECEIVED) {
      if (seqGt(seg.ack, this.sndUna) && seqLe(seg.ack, this.sndNxt)) {
        this.sndUna = seg.ack;
        this.establish(seg, now);
        if (this.isClosed()) return;
      } else {
        this.sendRstOnly(seg.ack, now);
        return;
      }
    } else if (!this.processAck(seg, now)) return;
    if ((this.state as TcpStateValue) === TcpState.CLOSED || this.state === TcpState.TIME_WAIT) {
      if (this.state === TcpState.TIME_WAIT && fin) {
        this.timeWaitAt = now + this.cfg.timeWaitMs;
        this.ackNow = true;
      }
      return;
    }

    // ---- segment text ----
    if (seqLt(seq, this.rcvNxt)) {
      const cut = seqDiff(this.rcvNxt, seq);
      if (cut >= payload.length) {
        if (cut > payload.length) fin = false; // the FIN was a duplicate too
        payload = payload.subarray(payload.length);
      } else payload = payload.subarray(cut);
      seq = this.rcvNxt;
    }
    const room = seqDiff(this.rcvAdvRight, seq);
    if (payload.length > room) {
      payload = payload.subarray(0, Math.max(0, room));
      fin = false;
    }
    if (payload.length > 0) {
      if (this.state === TcpState.ESTABLISHED || this.state === TcpState.FIN_WAIT_1 || this.state === TcpState.FIN_WAIT_2) {
        if (!this.events && this.finQueued) {
          // orphaned (closed by the application) and the peer still sends: reset, as close(2) does
          this.reset(now);
          return;
        }
        this.receiveData(seq, payload, now);
      }
      // CLOSE_WAIT, CLOSING, LAST_ACK: the peer already sent FIN; ignore
    }
    if (fin) {
      const finAt = seqAdd(seq, payload.length);
      if (finAt === this.rcvNxt) this.receiveFin(now);
      else if (seqGt(finAt, this.rcvNxt)) {
        this.rcvFinPending = finAt;
        this.ackNow = true;
      }
    }
  }

  /** RFC 5961 challenge ACK, rate-limited per connection (section 7): at most 100 per second. */
  private challengeAck(): void {
    const now = this.lastRecvAt;
    if (now - this.challengeWindowAt >= 1000) {
      this.challengeWindowAt = now;
      this.challengeCount = 0;
    }
    if (++this.challengeCount > 100) return;
    this.stats.challengeAcks++;
    this.ackNow = true;
  }

  private onReset(): void {
    switch (this.state) {
      case TcpState.SYN_RECEIVED:
        if (this.passive) this.toClosed();
        else this.abort('CONN_REFUSED', 'connection refused (RST)');
        return;
      case TcpState.ESTABLISHED:
      case TcpState.FIN_WAIT_1:
      case TcpState.FIN_WAIT_2:
      case TcpState.CLOSE_WAIT:
        this.abort('TRANSPORT_CLOSED', 'connection reset by peer (ECONNRESET)', 'ECONNRESET');
        return;
      case TcpState.TIME_WAIT:
        return; // RFC 1337
      default:
        this.toClosed();
    }
  }

  // ---- receive path ----

  private receiveData(seq: number, payload: Uint8Array, now: number): void {
    const len = payload.length;
    this.stats.bytesIn += len;
    this.lastActivity = now;
    if (seq === this.rcvNxt) {
      this.deliver(payload, true);
      if (!this.ooo.empty) {
        for (let d = this.ooo.pop(this.rcvNxt); d; d = this.ooo.pop(this.rcvNxt)) this.deliver(d, false);
        this.ackNow = true; // a hole was filled: tell the sender at once
      }
      if (this.rcvFinPending >= 0 && this.rcvFinPending === this.rcvNxt) {
        this.rcvFinPending = -1;
        this.receiveFin(now);
      }
      // delayed ACK: every second segment at once, otherwise after delAckMs
      if (++this.segsUnacked >= 2) this.ackNow = true;
      if (!this.ackNow && this.delackAt === INF) this.delackAt = now + this.cfg.delAckMs;
      this.autotune(now);
    } else {
      this.stats.outOfOrderIn++;
      if (!this.ooo.insert(seq, payload)) this.stats.duplicateIn++;
      this.ackNow = true;
    }
  }

  private deliver(data: Uint8Array, copy: boolean): void {
    const n = data.length;
    this.rcvNxt = seqAdd(this.rcvNxt, n);
    this.rcvDelivered += n;
    const ev = this.events;
    if (!ev) return;
    this.rcvUnread += n;
    ev.onData(copy ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, n));
  }

  private autotune(now: number): void {
    const rtt = this.srtt > 0 ? this.srtt : this.rcvRttMs > 0 ? this.rcvRttMs : 100;
    if (now - this.tuneAt < Math.max(rtt, 1)) return;
    const consumed = this.rcvDelivered - this.rcvUnread;
    const inRtt = consumed - this.tuneConsumed;
    this.tuneAt = now;
    this.tuneConsumed = consumed;
    if (inRtt * 2 > this.rcvBuf && this.rcvBuf < this.cfg.rcvBufMax && this.wsOk) {
      this.rcvBuf = Math.min(this.cfg.rcvBufMax, Math.max(this.rcvBuf * 2, inRtt * 2));
    }
  }

  private receiveFin(now: number): void {
    if (this.finReceived) return;
    this.finReceived = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.ackNow = true;
    switch (this.state) {
      case TcpState.SYN_RECEIVED:
      case TcpState.ESTABLISHED:
        this.state = TcpState.CLOSE_WAIT;
        break;
      case TcpState.FIN_WAIT_1:
        if (this.finSent && seqGt(this.sndUna, this.finSeq)) this.enterTimeWait(now);
        else this.state = TcpState.CLOSING;
        break;
      case TcpState.FIN_WAIT_2:
        this.enterTimeWait(now);
        break;
    }
    this.events?.onEnd();
  }

  private enterTimeWait(now: number): void {
    // send the ACK of the FIN before the buffers go
    this.state = TcpState.TIME_WAIT;
    this.sendAck(now);
    this.timeWaitAt = now + this.cfg.timeWaitMs;
    this.rtoAt = this.delackAt = this.persistAt = this.rackAt = this.tlpAt = this.finWait2At = this.keepAliveAt = this.idleAt = INF;
    this.sendBuf.clear();
    this.sb.clear();
    this.ooo.clear();
    this.stats.timeWait++;
  }

  // ---- ACK processing (send side) ----

  /** Returns false when the segment must be dropped. */
  private processAck(seg: InSegment, now: number): boolean {
    const ack = seg.ack;
    if (seqGt(ack, this.sndNxt)) {
      this.ackNow = true; // acks data we never sent
      return false;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      this.challengeAck(); // RFC 5961 5.2
      return false;
    }
    const flight0 = seqDiff(this.sndNxt, this.sndUna);
    const newAck = seqGt(ack, this.sndUna);
    this.deliveredInAck = 0;
    this.karnSample = -1;
    if (newAck) {
      let acked = seqDiff(ack, this.sndUna);
      this.sb.ackTo(ack, this.onDeliveredCb);
      let finAcked = false;
      if (this.finSent && seqGt(ack, this.finSeq)) {
        acked--;
        finAcked = true;
      }
      this.sendBuf.consume(acked);
      this.sndUna = ack;
      this.dupAcks = 0;
      this.retries = 0;
      this.tlpOutstanding = false;
      // RTT: timestamps give a sample on every ACK of new data; otherwise Karn's first-transmission sample
      const ts = seg.options.timestamp;
      if (this.tsOk && ts && ts.echo !== 0) {
        const s = ((this.tsNow(now) - ts.echo) | 0);
        if (s >= 0 && s < 600_000) this.rttSample(s);
      } else if (this.karnSample >= 0) this.rttSample(this.karnSample);
      if (finAcked) this.onFinAcked(now);
      if (this.state === TcpState.CLOSED || this.state === TcpState.TIME_WAIT) return true;
    } else if (
      ack === this.sndUna &&
      flight0 > 0 &&
      seg.payload.length === 0 &&
      !(seg.flags & (TcpFlag.SYN | TcpFlag.FIN)) &&
      (seg.window << this.sndWscale) === this.sndWnd
    ) {
      this.dupAcks++;
    }
    // SACK blocks
    const blocks = seg.options.sack;
    if (this.sackOk && blocks && this.sb.count > 0) this.processSack(blocks, ack);
    // window update (RFC 9293 SND.WL1/WL2 rule)
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      const w = seg.window << this.sndWscale;
      this.sndWnd = w;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (w > this.maxSndWnd) this.maxSndWnd = w;
      if (w > this.stats.maxPeerWindow) this.stats.maxPeerWindow = w;
      if (w > 0) {
        this.persistAt = INF;
        this.persistBackoff = 0;
      }
    }
    // loss detection
    if (this.sb.count > 0) {
      let lost = false;
      if (this.sackOk) {
        if (this.sb.sackedOut > 0 || this.rackAt !== INF) lost = this.detectLoss(now);
      }
      if (!this.sackOk || this.sb.sackedOut === 0) {
        // classic fast retransmit (RFC 5681) and NewReno partial ACKs (RFC 6582)
        if (this.dupAcks === 3 && !this.inRecovery) {
          this.sb.markLost(this.sb.first()!);
          lost = true;
        } else if (this.inRecovery && newAck && seqLt(ack, this.recoveryPoint) && !this.sackOk) {
          this.sb.markLost(this.sb.first()!);
        }
      }
      if (lost && !this.inRecovery) this.enterRecovery(now);
    }
    if (this.inRecovery && seqGe(this.sndUna, this.recoveryPoint)) {
      this.inRecovery = false;
      this.rtoRecovery = false;
    }
    if ((!this.inRecovery || this.rtoRecovery) && this.deliveredInAck > 0) {
      const limited = this.cwndLimited || flight0 + this.maxSeg() >= this.cc.cwnd;
      this.cc.onAck(this.deliveredInAck, now, this.minRtt === INF ? this.srtt : this.minRtt, limited);
    }
    // timers
    const flight = seqDiff(this.sndNxt, this.sndUna);
    if (flight <= 0) {
      this.rtoAt = INF;
      this.tlpAt = INF;
      this.rackAt = INF;
    } else if (newAck) {
      this.rtoAt = now + this.rto;
      this.armTlp(now);
    } else if (this.inRecovery) this.armTlp(now);
    if (this.writableBlocked && this.sendBuf.length < this.cfg.sndBuf) {
      this.writableBlocked = false;
      this.events?.onDrain();
    }
    return true;
  }

  private processSack(blocks: SackBlock[], ack: number): void {
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      if (!seqLt(b.left, b.right)) continue;
      if (i === 0 && (seqLe(b.right, ack) || (blocks.length > 1 && seqGe(b.left, blocks[1]!.left) && seqLe(b.right, blocks[1]!.right)))) {
        // D-SACK (RFC 2883): we retransmitted needlessly; widen the reordering window (RFC 8985 6.2)
        if (this.reoWndMult < 16) this.reoWndMult++;
        continue;
      }
      if (seqLe(b.right, this.sndUna) || seqGt(b.right, this.sndNxt)) continue;
      this.sb.sack(b.left, b.right, this.onDeliveredCb);
    }
  }

  /** A record was cumulatively acked or SACKed: RACK bookkeeping and delivered-bytes count. */
  private onDelivered(r: SentSegment): void {
    this.deliveredInAck += r.len;
    const now = this.lastRecvAt;
    const rtt = now - r.sentAt;
    if (r.xmits > 1 && rtt < this.minRtt) return; // ambiguous: may be the ACK of an earlier transmission
    if (r.xmits === 1) this.karnSample = rtt;
    const end = seqAdd(r.seq, r.len);
    if (r.sentAt > this.rackXmitTs || (r.sentAt === this.rackXmitTs && seqGt(end, this.rackEndSeq))) {
      this.rackXmitTs = r.sentAt;
      this.rackEndSeq = end;
      this.rackRtt = rtt;
    }
  }

  /** RACK (RFC 8985 6.2): a segment sent before the most recently delivered one is lost after rtt + reo_wnd. */
  private detectLoss(now: number): boolean {
    if (this.rackXmitTs < 0) return false;
    const base = this.minRtt === INF ? 0 : this.minRtt;
    const reoWnd = Math.max(1, Math.min((this.reoWndMult * base) / 4, this.srtt > 0 ? this.srtt : base));
    let next = INF;
    let lost = false;
    const sb = this.sb;
    const n = sb.count;
    for (let i = 0; i < n; i++) {
      const r = sb.at(i);
      if (seqGe(r.seq, this.rackEndSeq)) break;
      const fl = r.flags;
      if (fl & SegFlag.SACKED) continue;
      if ((fl & (SegFlag.LOST | SegFlag.RETRANS)) === SegFlag.LOST) continue;
      const end = seqAdd(r.seq, r.len);
      if (!(r.sentAt < this.rackXmitTs || (r.sentAt === this.rackXmitTs && seqLt(end, this.rackEndSeq)))) continue;
      const remaining = r.sentAt + this.rackRtt + reoWnd - now;
      if (remaining <= 0) {
        sb.markLost(r);
        lost = true;
      } else if (remaining < next) next = remaining;
    }
    this.rackAt = next === INF ? INF : now + next;
    return lost;
  }

  private enterRecovery(now: number): void {
    if (this.inRecovery) return;
    this.inRecovery = true;
    this.recoveryPoint = this.sndNxt;
    this.stats.fastRecoveries++;
    this.cc.onLoss(now, seqDiff(this.sndNxt, this.sndUna));
    this.tlpAt = INF;
    // the first lost segment goes out at once, whatever the pipe says (RFC 6675 5 step 3)
    const r = this.sb.nextLost();
    if (r) this.retransmit(r, now);
  }

  /** Arm the probe timeout (RFC 8985 7.2); also in fast recovery while no RACK timer is pending (see onTlp). */
  private armTlp(now: number): void {
    if (!this.sackOk || this.rtoRecovery || (this.inRecovery && this.rackAt !== INF) || this.tlpOutstanding || this.srtt === 0) {
      this.tlpAt = INF;
      return;
    }
    let pto = 2 * this.srtt + (this.sb.count === 1 ? this.cfg.delAckMs + 10 : 2);
    if (pto < 10) pto = 10;
    const at = now + pto;
    this.tlpAt = at < this.rtoAt ? at : INF;
  }

  private onFinAcked(now: number): void {
    switch (this.state) {
      case TcpState.FIN_WAIT_1:
        this.state = TcpState.FIN_WAIT_2;
        if (!this.events) this.finWait2At = now + this.cfg.finWait2Ms;
        break;
      case TcpState.CLOSING:
        this.enterTimeWait(now);
        break;
      case TcpState.LAST_ACK:
        this.toClosed();
        break;
    }
  }

  private rttSample(ms: number): void {
    const r = Math.max(ms, 0);
    if (r < this.minRtt) this.minRtt = r;
    if (this.srtt === 0) {
      this.srtt = Math.max(r, 0.001);
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = this.computeRto();
    this.rcvRttMs = this.srtt;
  }

  private computeRto(): number {
    if (this.srtt === 0) return this.cfg.initialRtoMs;
    return Math.min(Math.max(this.srtt + Math.max(1, 4 * this.rttvar), this.cfg.minRtoMs), this.cfg.maxRtoMs);
  }

  // ======================= output =======================

  /** Data bytes per segment before options other than timestamps. */
  mssBase(): number {
    return Math.min(this.peerMss, this.pathMss, this.cfg.mss);
  }
  /** Largest payload in a data segment (timestamps accounted for). */
  maxSeg(): number {
    return this.mssBase() - (this.tsOk ? TS_OPT_LEN : 0);
  }

  private unsentBytes(): number {
    if (this.finSent) return 0;
    return this.sendBuf.length - seqDiff(this.sndNxt, this.sndUna);
  }

  /** Send what the windows allow, then a pure ACK if one is owed; re-arm timers; ask to be scheduled. */
  private flush(now: number): void {
    if (this.state >= TcpState.ESTABLISHED && this.state !== TcpState.TIME_WAIT) this.output(now);
    if (this.ackNow && this.state !== TcpState.CLOSED && this.state !== TcpState.SYN_SENT) {
      // In bulk transfer, one ACK per batch of incoming packets (it acknowledges all of them, with current
      // SACK blocks) instead of one per two segments: every ACK costs an encryption and a UDP send.
      if (this.host.deferAck && this.state === TcpState.ESTABLISHED && this.segsUnacked < MAX_COALESCED_SEGMENTS) {
        this.host.deferAck(this);
      } else this.sendAck(now);
    }
    this.host.schedule(this);
  }

  /** The end of a batch: send the ACK that flush() deferred, unless data already carried it. */
  flushDeferredAck(now: number): void {
    if (this.ackNow && this.state !== TcpState.CLOSED && this.state !== TcpState.SYN_SENT && this.state !== TcpState.TIME_WAIT) this.sendAck(now);
    this.host.schedule(this);
  }

  private output(now: number): void {
    const sb = this.sb;
    // 1) retransmit segments marked lost, as the pipe allows
    if (sb.lostOut > 0) {
      for (let r = sb.nextLost(); r; r = sb.nextLost()) {
        const pipe = sb.pipe(seqDiff(this.sndNxt, this.sndUna));
        if (pipe + Math.min(r.len, this.maxSeg()) > this.cc.cwnd && pipe > 0) {
          this.cwndLimited = true;
          break;
        }
        this.retransmit(r, now);
      }
    }
    // 2) new data
    // data (and our FIN) go out until the FIN is sent, whatever the peer did meanwhile (CLOSING included)
    const canSend = !this.finSent && this.state >= TcpState.ESTABLISHED && this.state !== TcpState.TIME_WAIT;
    if (canSend) {
      const maxSeg = this.maxSeg();
      let sentNew = false;
      for (;;) {
        const unsent = this.unsentBytes();
        const wantFin = this.finQueued && !this.finSent;
        if (unsent <= 0 && !wantFin) {
          this.cwndLimited = false;
          break;
        }
        const flight = seqDiff(this.sndNxt, this.sndUna);
        const pipe = sb.pipe(flight);
        const cwndAvail = this.cc.cwnd - pipe;
        const wndAvail = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
        let len = unsent < maxSeg ? unsent : maxSeg;
        if (len > 0) {
          if (cwndAvail < len) {
            if (cwndAvail < maxSeg || cwndAvail <= 0) {
              this.cwndLimited = true;
              break;
            }
          }
          if (wndAvail < len) {
            // sender SWS avoidance (RFC 9293 3.8.6.2.1): partial segments only when worthwhile
            if (wndAvail <= 0 || (wndAvail < maxSeg && wndAvail < this.maxSndWnd / 2 && flight > 0)) {
              this.cwndLimited = false;
              break;
            }
            len = wndAvail;
          }
          if (len < maxSeg && len === unsent && this.nagle && flight > 0 && !wantFin) break; // Nagle
        } else if (cwndAvail <= 0 && flight > 0) {
          break; // FIN alone waits for room like data would
        }
        this.sendNew(len, now);
        sentNew = true;
        if (this.finSent) break;
      }
      if (sentNew) this.armTlp(now);
      // zero window with data waiting and nothing in flight: the persist timer probes
      if (this.persistAt === INF && this.sndWnd === 0 && seqDiff(this.sndNxt, this.sndUna) === 0 && (this.unsentBytes() > 0)) {
        this.persistAt = now + this.persistInterval();
      }
    }
  }

  private sendNew(len: number, now: number): void {
    const unsent = this.unsentBytes();
    const fin = this.finQueued && !this.finSent && len === unsent;
    const seq = this.sndNxt;
    let flags = TcpFlag.ACK;
    if (fin) flags |= TcpFlag.FIN;
    if (len > 0 && len === unsent) flags |= TcpFlag.PSH;
    this.emit(seq, flags, seqDiff(seq, this.sndUna), len, now);
    this.sb.push(seq, len + (fin ? 1 : 0), fin, now);
    this.sndNxt = seqAdd(seq, len + (fin ? 1 : 0));
    if (fin) {
      this.finSent = true;
      this.finSeq = seqAdd(seq, len);
    }
    this.stats.bytesOut += len;
    if (this.rtoAt === INF) this.rtoAt = now + this.rto;
  }

  private retransmit(r: SentSegment, now: number): void {
    let dataLen = r.len - (r.fin ? 1 : 0);
    const maxSeg = this.maxSeg();
    if (dataLen > maxSeg) {
      // the path MSS shrank (frag-needed): resend in pieces, each tracked on its own
      this.sb.split(r, maxSeg);
      dataLen = maxSeg;
    }
    this.emit(r.seq, TcpFlag.ACK | (r.fin && r.len - 1 === dataLen ? TcpFlag.FIN : 0), seqDiff(r.seq, this.sndUna), dataLen, now);
    r.sentAt = now;
    r.xmits++;
    this.sb.markRetransmitted(r);
    this.stats.retransmits++;
    if (this.rtoAt === INF) this.rtoAt = now + this.rto;
  }

  private tsNow(now: number): number {
    return (Math.floor(now) + this.tsOffset) >>> 0;
  }

  /** Window field for a non-SYN segment; moves the advertised right edge (never left). */
  private windowField(): number {
    let space = this.rcvBuf - this.rcvUnread;
    if (space < 0) space = 0;
    // receiver SWS avoidance: do not advertise tiny openings
    if (space < this.mssBase() && space < this.rcvBuf / 2) space = 0;
    let right = seqAdd(this.rcvNxt, space);
    if (seqLt(right, this.rcvAdvRight)) right = this.rcvAdvRight;
    const win = seqDiff(right, this.rcvNxt);
    const shift = this.rcvWscale;
    let raw = shift ? Math.ceil(win / (1 << shift)) : win;
    if (raw > 0xffff) raw = 0xffff;
    const adv = raw * (1 << shift);
    this.rcvAdvRight = seqAdd(this.rcvNxt, adv);
    if (adv > this.stats.maxAdvertisedWindow) this.stats.maxAdvertisedWindow = adv;
    return raw;
  }

  /** Build one segment (header + payload from the send buffer) into a fresh buffer and hand it over. */
  private emit(seq: number, flags: number, dataOff: number, dataLen: number, now: number): void {
    const o = this.txOpts;
    o.mss = undefined;
    o.windowScale = undefined;
    o.sackPermitted = false;
    if (this.tsOk) {
      this.txTs.value = this.tsNow(now);
      this.txTs.echo = this.tsRecent;
      o.timestamp = this.txTs;
    } else o.timestamp = undefined;
    o.sack = undefined;
    if (this.sackOk && (flags & TcpFlag.ACK) && (this.dsack || !this.ooo.empty)) {
      const max = this.tsOk ? 3 : 4;
      const blocks = this.ooo.sackBlocks(this.dsack ? max - 1 : max, this.txSack);
      if (this.dsack) blocks.unshift(this.dsack);
      if (blocks.length) o.sack = blocks;
      if (dataLen > 0) {
        // keep the segment within the peer's MSS: options eat into the payload
        const room = this.mssBase() - tcpOptionsLength(o);
        if (dataLen > room) {
          o.sack = undefined;
        }
      }
    }
    const hl = 20 + tcpOptionsLength(o);
    const init = this.txInit;
    init.seq = seq;
    init.flags = flags;
    if (flags & TcpFlag.ACK) {
      init.ack = this.rcvNxt;
      init.window = this.windowField();
      this.lastAckSent = this.rcvNxt;
      this.ackNow = false;
      this.delackAt = INF;
      this.segsUnacked = 0;
      this.dsack = undefined;
    } else {
      init.ack = 0;
      init.window = 0;
    }
    this.stats.segmentsOut++;
    if (this.host.outputWith) {
      this.fillArgs.dataOff = dataOff;
      this.fillArgs.dataLen = dataLen;
      this.fillArgs.hl = hl;
      this.host.outputWith(this, hl + dataLen, this.fillSegment);
      return;
    }
    const buf = new Uint8Array(hl + dataLen);
    if (dataLen > 0) this.sendBuf.copyOut(dataOff, dataLen, buf, hl);
    writeTcpHeader(init, dataLen, buf, 0, this.pseudo);
    this.host.output(this, buf);
  }

  /** emit()'s segment writer for host.outputWith (one bound function, no closure per segment). */
  private readonly fillArgs = { dataOff: 0, dataLen: 0, hl: 0 };
  private readonly fillSegment = (out: Uint8Array, off: number): void => {
    const a = this.fillArgs;
    if (a.dataLen > 0) this.sendBuf.copyOut(a.dataOff, a.dataLen, out, off + a.hl);
    writeTcpHeader(this.txInit, a.dataLen, out, off, this.pseudo);
  };

  private sendAck(now: number): void {
    this.emit(this.sndNxt, TcpFlag.ACK, 0, 0, now);
  }

  /** Zero-window / keepalive probe: an old sequence number the peer must answer with an ACK. */
  private sendProbe(now: number): void {
    this.emit(seqAdd(this.sndUna, -1), TcpFlag.ACK, 0, 0, now);
  }

  private sendSyn(now: number): void {
    const o = this.txOpts;
    const synAck = this.state === TcpState.SYN_RECEIVED;
    o.mss = Math.min(this.cfg.mss, 0xffff);
    o.sack = undefined;
    if (synAck) {
      o.windowScale = this.wsOk ? this.rcvWscale : undefined;
      o.sackPermitted = this.sackOk;
      o.timestamp = this.tsOk ? this.txTs : undefined;
    } else {
      o.windowScale = this.cfg.windowScaling ? wscaleFor(this.cfg.rcvBufMax) : undefined;
      o.sackPermitted = this.cfg.sack;
      o.timestamp = this.cfg.timestamps ? this.txTs : undefined;
    }
    this.txTs.value = this.tsNow(now);
    this.txTs.echo = synAck ? this.tsRecent : 0;
    const init = this.txInit;
    init.seq = this.iss;
    init.flags = TcpFlag.SYN | (synAck ? TcpFlag.ACK : 0);
    init.ack = synAck ? this.rcvNxt : 0;
    const win = Math.min(this.rcvBuf, 0xffff);
    init.window = win;
    if (synAck) {
      this.rcvAdvRight = seqAdd(this.rcvNxt, win);
      this.lastAckSent = this.rcvNxt;
    }
    const hl = 20 + tcpOptionsLength(o);
    const buf = new Uint8Array(hl);
    writeTcpHeader(init, 0, buf, 0, this.pseudo);
    if (this.retries === 0) this.synSentAt = now;
    this.stats.segmentsOut++;
    this.host.output(this, buf);
  }

  private sendRst(seq: number, now: number): void {
    this.stats.rstsSent++;
    const o = this.txOpts;
    o.mss = undefined;
    o.windowScale = undefined;
    o.sackPermitted = false;
    o.sack = undefined;
    o.timestamp = undefined;
    void now;
    const init = this.txInit;
    init.seq = seq;
    init.ack = this.rcvNxt;
    init.flags = TcpFlag.RST | TcpFlag.ACK;
    init.window = 0;
    const buf = new Uint8Array(20);
    writeTcpHeader(init, 0, buf, 0, this.pseudo);
    this.stats.segmentsOut++;
    this.host.output(this, buf);
  }

  /** RST without ACK (answer to an unacceptable ACK, RFC 9293). */
  private sendRstOnly(seq: number, now: number): void {
    this.sendRst(seq, now);
  }

  // ======================= teardown =======================

  /** `errno`, when given, is the cause's code (as net.Socket would report it), so callers can tell a reset apart. */
  private abort(code: ErrorCode, message: string, errno?: string): void {
    const ev = this.events;
    this.events = undefined;
    this.toClosed();
    ev?.onError(new VpnError(code, message, errno ? { cause: Object.assign(new Error(message), { code: errno }) } : undefined));
  }

  private toClosed(): void {
    if (this.state === TcpState.CLOSED) return;
    if (this.state === TcpState.TIME_WAIT) this.stats.timeWait--;
    this.state = TcpState.CLOSED;
    this.rtoAt = this.delackAt = this.persistAt = this.rackAt = this.tlpAt = INF;
    this.timeWaitAt = this.finWait2At = this.connectDeadline = this.keepAliveAt = this.idleAt = INF;
    this.sendBuf.clear();
    this.sb.clear();
    this.ooo.clear();
    this.host.closed(this);
  }

  isClosed(): boolean {
    return this.state === TcpState.CLOSED;
  }

  /** For tests and diagnostics. */
  get stateName(): string {
    return TCP_STATE_NAMES[this.state];
  }
  get flightSize(): number {
    return seqDiff(this.sndNxt, this.sndUna);
  }
}
