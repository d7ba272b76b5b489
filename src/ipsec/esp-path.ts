/**
 * The ESP data path of an IPsec session, shared by the manual-SA session (esp-session.ts) and the IKEv2
 * session (ike-session.ts): one OutboundSa/InboundSa pair over a UDP transport toward the gateway's port 4500
 * (RFC 3948), whoever keyed it.
 *
 *  - send(): seals an inner IPv4 or IPv6 packet and sends it, counting packets and bytes;
 *  - receive(): sorts a datagram from port 4500: ESP (opened, delivered, or dropped with a counted reason),
 *    NAT keepalive (ignored), IKE behind the non-ESP marker (handed to `onIke`, or counted as a drop when the
 *    owner has no IKE), anything else (malformed);
 *  - NAT keepalives (RFC 3948 §2.3, one 0xFF byte) after `keepAliveSeconds` without sending anything;
 *  - the SAs' lifetimes: the owner hears of the soft stage once and of the hard stage once (manual keys warn
 *    and stop; IKE would rekey);
 *  - stats() and statusDetails() in the neutral session vocabulary, trace lines per packet;
 *  - rekeying, make-before-break (RFC 7296 §2.8): addInbound() installs a new inbound SA beside the old one,
 *    useOutbound() moves sending (and the lifetime watch) to the new pair, removeInbound() retires an old
 *    inbound SA once its DELETE went or came; until then packets on every installed SPI are accepted.
 *
 * The path knows nothing about the session's state: the owner stops it (stop()) when the session ends.
 */
import { VpnError } from '../errors.js';
import type { PacketHandler } from '../link/link.js';
import type { SessionDetails, SessionStats } from '../session/types.js';
import type { Transport } from '../transport/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { buildNatKeepalive, classifyUdp4500, parseEspHeader } from '../wire/esp.js';
import { summarizePacket } from '../wire/summary.js';
import type { EspDrop, InboundSa, OutboundSa } from './esp-sa.js';

export const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

export interface EspPathOptions {
  out: OutboundSa;
  in: InboundSa;
  transport: Transport;
  clock: Clock;
  log: Logger;
  /** NAT keepalive interval, seconds; 0 = none. */
  keepAliveSeconds: number;
  /** Where decrypted inner packets go (asked per packet, so the owner may replace its receiver). */
  deliver: PacketHandler;
  /** IKE messages behind the non-ESP marker (the marker removed); without it they are counted as drops. */
  onIke?: (message: Uint8Array) => void;
  /** An SA reached its soft ('soft', reported once) or hard ('hard', reported once) lifetime. */
  onLifetime: (stage: 'soft' | 'hard') => void;
  /** The outbound SA cannot seal any more (sequence numbers used up). */
  onError: (err: VpnError) => void;
}

export class EspPath {
  private out_: OutboundSa;
  private in_: InboundSa;
  /** Every inbound SA whose packets are accepted (the current one and, during a rekey, old or new ones). */
  private readonly inbound = new Map<number, InboundSa>();
  /** Drops counted by inbound SAs already removed. */
  private readonly retiredDrops: Partial<Record<EspDrop, number>> = {};
  private readonly o: EspPathOptions;
  private timer: TimerHandle | undefined;
  private lastSentAt: number;
  private softReported = false;
  private hardReported = false;
  private stopped = false;
  private readonly counts = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, keepalivesSent: 0, unknownSpi: 0, malformed: 0, ike: 0, sendErrors: 0 };

  constructor(o: EspPathOptions) {
    this.o = o;
    this.out_ = o.out;
    this.in_ = o.in;
    this.inbound.set(o.in.spi, o.in);
    this.lastSentAt = o.clock.now();
  }

  /** The outbound SA in use. */
  get out(): OutboundSa {
    return this.out_;
  }

  /** The inbound SA paired with it (whose lifetime is watched with it). */
  get in(): InboundSa {
    return this.in_;
  }

  /** Packets opened and delivered so far (cheap; for liveness checks). */
  get packetsIn(): number {
    return this.counts.packetsIn;
  }

  /** SPIs of every inbound SA accepted now. */
  get inboundSpis(): number[] {
    return [...this.inbound.keys()];
  }

  /** Accepts packets on a new inbound SA from now on (before the peer may use it). */
  addInbound(sa: InboundSa): void {
    this.inbound.set(sa.spi, sa);
  }

  /**
   * Sends with `out` from now on and watches the lifetimes of `out` and `paired` (which is installed if it
   * was not); the soft and hard stages are reported afresh for the new pair.
   */
  useOutbound(out: OutboundSa, paired: InboundSa): void {
    this.addInbound(paired);
    this.out_ = out;
    this.in_ = paired;
    this.softReported = false;
    this.hardReported = false;
    this.rearm();
  }

  /** Stops accepting an inbound SA (its drops stay in the totals). The current pair's cannot be removed. */
  removeInbound(spi: number): boolean {
    const sa = this.inbound.get(spi);
    if (!sa || sa === this.in_) return false;
    this.inbound.delete(spi);
    for (const [k, v] of Object.entries(sa.drops) as [EspDrop, number][]) this.retiredDrops[k] = (this.retiredDrops[k] ?? 0) + v;
    return true;
  }

  /** Arms the keepalive and lifetime timer. */
  start(): void {
    this.stopped = false;
    this.lastSentAt = this.o.clock.now();
    this.rearm();
  }

  /** Stops the timer; send() and receive() do nothing afterwards. */
  stop(): void {
    this.stopped = true;
    if (this.timer) this.o.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  /** Something else (an IKE message) went out toward the gateway: no keepalive needed for a while. */
  noteSent(): void {
    this.lastSentAt = this.o.clock.now();
  }

  /** A non-fatal send error (ICMP unreachable…) reported by the transport. */
  countSendError(): void {
    this.counts.sendErrors++;
  }

  send(packet: Uint8Array): void {
    if (this.stopped) return;
    const out = this.out;
    let esp: Uint8Array;
    try {
      esp = out.seal(packet);
    } catch (e) {
      this.o.onError(e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message));
      return;
    }
    const log = this.o.log;
    if (log.enabled('trace')) log.trace(`esp out spi=${hex32(out.spi)} seq=${out.seq} len=${esp.length} ${summarizePacket(packet)}`);
    this.o.transport.send(esp, true);
    this.counts.packetsOut++;
    this.counts.bytesOut += packet.length;
    this.lastSentAt = this.o.clock.now();
    this.checkLifetime();
  }

  /** One UDP payload from the gateway's port 4500. */
  receive(d: Uint8Array): void {
    if (this.stopped) return;
    const kind = classifyUdp4500(d);
    if (kind.kind === 'keepalive') return;
    if (kind.kind === 'ike') {
      if (this.o.onIke) this.o.onIke(kind.message);
      else this.counts.ike++;
      return;
    }
    if (kind.kind !== 'esp') {
      this.counts.malformed++;
      return;
    }
    const log = this.o.log;
    const { spi, seq } = parseEspHeader(d);
    const sa = spi === this.in_.spi ? this.in_ : this.inbound.get(spi);
    if (!sa) {
      this.counts.unknownSpi++;
      if (log.enabled('debug')) log.debug(`ESP packet for unknown SPI ${hex32(spi)} dropped`);
      return;
    }
    const r = sa.open(d);
    if ('drop' in r) {
      if (log.enabled('debug')) log.debug(`ESP packet seq ${seq} dropped: ${r.drop}`);
      return;
    }
    if (log.enabled('trace')) log.trace(`esp in  spi=${hex32(spi)} seq=${seq} len=${d.length} ${summarizePacket(r.packet)}`);
    this.counts.packetsIn++;
    this.counts.bytesIn += r.packet.length;
    this.checkLifetime();
    if (!this.stopped) this.o.deliver(r.packet);
  }

  private checkLifetime(): void {
    if (this.hardReported) return;
    const now = this.o.clock.now();
    const stages = [this.out.lifetime.stageAt(now), this.in.lifetime.stageAt(now)];
    if (stages.includes('hard')) {
      this.hardReported = true;
      this.o.onLifetime('hard');
      return;
    }
    if (stages.includes('soft') && !this.softReported) {
      this.softReported = true;
      this.o.onLifetime('soft');
    }
  }

  stats(): SessionStats {
    const c = this.counts;
    const drops: Record<string, number> = { 'unknown-spi': c.unknownSpi, malformed: c.malformed };
    if (!this.o.onIke) drops.ike = c.ike;
    for (const [k, v] of Object.entries(this.retiredDrops) as [EspDrop, number][]) drops[k] = (drops[k] ?? 0) + v;
    for (const sa of this.inbound.values()) for (const [k, v] of Object.entries(sa.drops) as [EspDrop, number][]) drops[k] = (drops[k] ?? 0) + v;
    const dropped = Object.entries(drops).reduce((a, [k, v]) => (k === 'dummy' ? a : a + v), 0);
    return { packetsIn: c.packetsIn, packetsOut: c.packetsOut, bytesIn: c.bytesIn, bytesOut: c.bytesOut, dropped, drops };
  }

  statusDetails(): SessionDetails {
    const now = this.o.clock.now();
    const left = this.out.lifetime.remaining(now).hard;
    return {
      seqOut: this.out.seq,
      seqInHighest: this.in.highestSeq,
      keepalivesSent: this.counts.keepalivesSent,
      sendErrors: this.counts.sendErrors,
      lifetimeSecondsLeft: left?.seconds === undefined ? undefined : Math.floor(left.seconds),
      lifetimeBytesLeft: left?.bytes,
      lifetimePacketsLeft: left?.packets,
    };
  }

  // NAT keepalives when nothing was sent for keepAliveSeconds, and the time lifetimes.
  private rearm(): void {
    if (this.timer) this.o.clock.clearTimer(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    const clock = this.o.clock;
    const now = clock.now();
    let at = Infinity;
    if (this.o.keepAliveSeconds > 0) at = this.lastSentAt + this.o.keepAliveSeconds * 1000;
    if (!this.hardReported) for (const l of [this.out.lifetime, this.in.lifetime]) at = Math.min(at, l.nextDeadline(now) ?? Infinity);
    if (at === Infinity) return;
    this.timer = clock.setTimer(() => this.onTimer(), Math.max(0, at - now));
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.o.clock.now();
    const ka = this.o.keepAliveSeconds;
    if (ka > 0 && now >= this.lastSentAt + ka * 1000) {
      this.o.transport.send(buildNatKeepalive());
      this.counts.keepalivesSent++;
      this.lastSentAt = now;
    }
    this.checkLifetime();
    this.rearm();
  }
}

/** Stats of a session whose ESP path does not exist yet (before up). */
export function noTrafficStats(): SessionStats {
  return { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0, drops: {} };
}
