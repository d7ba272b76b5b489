/**
 * ESP in UDP with manual SAs (issue 12): one UDP socket toward the gateway's port 4500, one outbound and one
 * inbound SA from the configuration, NAT keepalives when idle. There is no handshake: the session is up once
 * the socket is, and stays up until it is closed, the socket fails, or a key reaches its hard lifetime
 * (manual keys cannot be renewed, so that is final).
 *
 * The datagrams on port 4500 are ESP (tunnel mode, IPv4 inside), the 1-byte NAT keepalive, or IKE behind the
 * non-ESP marker (ignored here: there is no IKE with manual keys).
 */
import { VpnError } from '../errors.js';
import type { LinkConfig } from '../link/link.js';
import { SessionBase } from '../session/base.js';
import type { RemoteEndpoint, SessionDetails, SessionInfo, SessionStats } from '../session/types.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import { SystemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { buildNatKeepalive, classifyUdp4500, parseEspHeader } from '../wire/esp.js';
import { summarizePacket } from '../wire/summary.js';
import type { ManualConnection, ManualSa } from './config.js';
import { InboundSa, OutboundSa, innerMtu, type EspDrop } from './esp-sa.js';

/** What an ESP session is once up (the protocol's own view; SessionInfo is the neutral one). */
export interface EspConnectedInfo {
  connection: string;
  vip: string;
  spiOut: number;
  spiIn: number;
  suite: string;
  remote: RemoteEndpoint;
}

export interface EspSessionOptions {
  connection: ManualConnection;
  remote: RemoteEndpoint;
  createTransport: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  /** The path MTU toward the gateway (default 1500): the inner MTU is what fits after ESP, UDP and IPv4. */
  pathMtu?: number;
  clock?: Clock;
  logger?: Logger;
}

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

function saParams(sa: ManualSa, now: number) {
  const l = sa.lifetime;
  return {
    spi: sa.spi,
    suite: sa.suite,
    encKey: sa.encKey,
    integKey: sa.integKey,
    esn: sa.esn,
    replayWindow: sa.replayWindow,
    lifetime: {
      soft: { seconds: l.rekeyTime, bytes: l.rekeyBytes, packets: l.rekeyPackets },
      hard: { seconds: l.lifeTime, bytes: l.lifeBytes, packets: l.lifePackets },
    },
    now,
  };
}

export class ManualEspSession extends SessionBase<EspConnectedInfo> {
  protected readonly log: Logger;
  private readonly conn: ManualConnection;
  private readonly remote: RemoteEndpoint;
  private readonly clock: Clock;
  private readonly mtu_: number;
  private transport: Transport | undefined;
  private out: OutboundSa | undefined;
  private in: InboundSa | undefined;
  private timer: TimerHandle | undefined;
  private lastSentAt = 0;
  private softWarned = false;
  private readonly counts = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, keepalivesSent: 0, unknownSpi: 0, malformed: 0, ike: 0, sendErrors: 0 };

  constructor(private readonly opts: EspSessionOptions) {
    super();
    this.conn = opts.connection;
    this.remote = opts.remote;
    this.clock = opts.clock ?? new SystemClock();
    this.log = (opts.logger ?? silentLogger).child('esp');
    this.mtu_ = innerMtu(this.conn.out.suite, opts.pathMtu ?? 1500);
  }

  protected get configuredMtu(): number {
    return this.mtu_;
  }

  protected async run(): Promise<void> {
    const r = this.remote;
    this.log.info(`ESP in UDP to ${r.host}:${r.port} (manual SAs, out ${hex32(this.conn.out.spi)} ${this.conn.out.suite.name}, in ${hex32(this.conn.in.spi)})`);
    const t = this.opts.createTransport('udp', { host: r.host, port: r.port });
    this.transport = t;
    t.on('packet', (p) => this.onDatagram(p));
    t.on('error', (e) => {
      // An ICMP error (port or host unreachable) or a failed send: reported, never fatal by itself; the
      // gateway may come back. A fatal transport error ends the session.
      if ((e as { fatal?: boolean }).fatal === false) {
        this.counts.sendErrors++;
        this.log.warn(`toward ${r.host}:${r.port}: ${e.message}`);
        return;
      }
      this.fail('transport-error', e instanceof VpnError ? e : new VpnError('TRANSPORT_ERROR', e.message));
    });
    t.on('close', () => {
      if (this.state === 'connecting' || this.state === 'connected') this.fail('transport-error', new VpnError('TRANSPORT_CLOSED', 'the UDP socket closed'));
    });
    try {
      await t.connect();
    } catch (e) {
      this.fail('transport-error', e instanceof VpnError ? e : new VpnError('TRANSPORT_ERROR', (e as Error).message));
      return;
    }
    if (this.state !== 'connecting') return;
    const now = this.clock.now();
    try {
      this.out = new OutboundSa(saParams(this.conn.out, now));
      this.in = new InboundSa({
        ...saParams(this.conn.in, now),
        selectors: { remote: this.conn.remoteTs.map((c) => ({ address: c.address, prefix: c.prefix })), local: this.conn.vip },
      });
    } catch (e) {
      this.fail('protocol-error', e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message));
      return;
    }
    this.lastSentAt = now;
    const info: EspConnectedInfo = {
      connection: this.conn.name,
      vip: this.conn.vip,
      spiOut: this.conn.out.spi,
      spiIn: this.conn.in.spi,
      suite: this.conn.out.suite.name,
      remote: { ...r },
    };
    const routes = this.conn.remoteTs.map((c) => `${c.address}/${c.prefix}`);
    const link: LinkConfig = {
      address: this.conn.vip,
      netmask: '255.255.255.255',
      mtu: this.mtu_,
      dns: [...this.conn.dns],
      domains: [],
      routes: routes.filter((c) => !c.endsWith('/0')),
      redirectGateway: routes.some((c) => c.endsWith('/0')),
    };
    const neutral: SessionInfo = {
      protocol: 'ipsec',
      server: { ...r },
      link,
      cipher: this.conn.out.suite.name,
      security: 'ESP in UDP, manual keys',
      details: { mode: 'manual', connection: this.conn.name, spiOut: hex32(this.conn.out.spi), spiIn: hex32(this.conn.in.spi), esn: this.conn.out.esn },
    };
    this.log.info(`up: ${this.conn.vip} via ${r.host}:${r.port}, routes ${routes.join(', ') || 'none'}, mtu ${this.mtu_}`);
    this.markUp(info, link, neutral);
    this.rearm();
  }

  send(packet: Uint8Array): void {
    const out = this.out;
    if (this.state !== 'connected' || !out || !this.transport) return;
    let esp: Uint8Array;
    try {
      esp = out.seal(packet);
    } catch (e) {
      this.fail('protocol-error', e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message));
      return;
    }
    if (this.log.enabled('trace')) this.log.trace(`esp out spi=${hex32(out.spi)} seq=${out.seq} len=${esp.length} ${summarizePacket(packet)}`);
    this.transport.send(esp, true);
    this.counts.packetsOut++;
    this.counts.bytesOut += packet.length;
    this.lastSentAt = this.clock.now();
    this.checkLifetime();
  }

  private onDatagram(d: Buffer): void {
    if (this.state !== 'connected' || !this.in) return;
    const kind = classifyUdp4500(d);
    if (kind.kind === 'keepalive') return;
    if (kind.kind === 'ike') {
      this.counts.ike++;
      return;
    }
    if (kind.kind !== 'esp') {
      this.counts.malformed++;
      return;
    }
    const { spi, seq } = parseEspHeader(d);
    if (spi !== this.in.spi) {
      this.counts.unknownSpi++;
      if (this.log.enabled('debug')) this.log.debug(`ESP packet for unknown SPI ${hex32(spi)} dropped`);
      return;
    }
    const r = this.in.open(d);
    if ('drop' in r) {
      if (this.log.enabled('debug')) this.log.debug(`ESP packet seq ${seq} dropped: ${r.drop}`);
      return;
    }
    if (this.log.enabled('trace')) this.log.trace(`esp in  spi=${hex32(spi)} seq=${seq} len=${d.length} ${summarizePacket(r.packet)}`);
    this.counts.packetsIn++;
    this.counts.bytesIn += r.packet.length;
    this.checkLifetime();
    this.receiver(r.packet);
  }

  /** Manual keys cannot be renewed: warn at the soft limit, stop at the hard one. */
  private checkLifetime(): void {
    const now = this.clock.now();
    const stages = [this.out!.lifetime.stageAt(now), this.in!.lifetime.stageAt(now)];
    if (stages.includes('hard')) {
      this.fail('protocol-error', new VpnError('SA_EXPIRED', `a manual SA of ${this.conn.name} reached its hard lifetime; manual keys cannot be renewed, configure new ones`));
      return;
    }
    if (stages.includes('soft') && !this.softWarned) {
      this.softWarned = true;
      this.log.warn(`a manual SA of ${this.conn.name} reached its soft lifetime (rekey_*); manual keys cannot be renewed, replace them before life_* runs out`);
    }
  }

  stats(): SessionStats {
    const c = this.counts;
    const d = this.in?.drops;
    const drops: Record<string, number> = { 'unknown-spi': c.unknownSpi, malformed: c.malformed, ike: c.ike };
    if (d) for (const [k, v] of Object.entries(d) as [EspDrop, number][]) drops[k] = (drops[k] ?? 0) + v;
    const dropped = Object.entries(drops).reduce((a, [k, v]) => (k === 'dummy' ? a : a + v), 0);
    return { packetsIn: c.packetsIn, packetsOut: c.packetsOut, bytesIn: c.bytesIn, bytesOut: c.bytesOut, dropped, drops };
  }

  statusDetails(): SessionDetails {
    const now = this.clock.now();
    const left = this.out?.lifetime.remaining(now).hard;
    return {
      seqOut: this.out?.seq,
      seqInHighest: this.in?.highestSeq,
      keepalivesSent: this.counts.keepalivesSent,
      sendErrors: this.counts.sendErrors,
      lifetimeSecondsLeft: left?.seconds === undefined ? undefined : Math.floor(left.seconds),
      lifetimeBytesLeft: left?.bytes,
      lifetimePacketsLeft: left?.packets,
    };
  }

  // NAT keepalives (RFC 3948 §2.3) when nothing was sent for keep_alive seconds, and the time lifetimes.
  private rearm(): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    if (this.state !== 'connected') return;
    const now = this.clock.now();
    let at = Infinity;
    if (this.conn.keepAlive > 0) at = this.lastSentAt + this.conn.keepAlive * 1000;
    for (const l of [this.out!.lifetime, this.in!.lifetime]) at = Math.min(at, l.nextDeadline(now) ?? Infinity);
    if (at === Infinity) return;
    this.timer = this.clock.setTimer(() => this.onTimer(), Math.max(0, at - now));
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.state !== 'connected') return;
    const now = this.clock.now();
    if (this.conn.keepAlive > 0 && now >= this.lastSentAt + this.conn.keepAlive * 1000) {
      this.transport?.send(buildNatKeepalive());
      this.counts.keepalivesSent++;
      this.lastSentAt = now;
    }
    this.checkLifetime();
    this.rearm();
  }

  protected async goodbye(): Promise<void> {
    // Manual SAs have no way to tell the gateway we leave.
  }

  protected async teardown(): Promise<void> {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    const t = this.transport;
    this.transport = undefined;
    if (t) await t.close().catch(() => undefined);
  }
}
