/**
 * ESP in UDP with manual SAs (issue 12): one UDP socket toward the gateway's port 4500, one outbound and one
 * inbound SA from the configuration, NAT keepalives when idle. There is no handshake: the session is up once
 * the socket is, and stays up until it is closed, the socket fails, or a key reaches its hard lifetime
 * (manual keys cannot be renewed, so that is final).
 *
 * The data path itself (sealing, opening, the 4500 demultiplexing, counters, keepalives, lifetimes) is
 * esp-path.ts, shared with the IKEv2 session; IKE behind the non-ESP marker is counted as a drop here (there
 * is no IKE with manual keys).
 */
import { VpnError } from '../errors.js';
import type { LinkConfig } from '../link/link.js';
import { SessionBase } from '../session/base.js';
import type { RemoteEndpoint, SessionDetails, SessionInfo, SessionStats } from '../session/types.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import { SystemClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { ManualConnection, ManualSa } from './config.js';
import { EspPath, hex32, noTrafficStats } from './esp-path.js';
import { InboundSa, OutboundSa, innerMtu } from './esp-sa.js';
import { hostPort } from '../util/host-port.js';

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
  private path: EspPath | undefined;
  /** Send errors reported before the path exists. */
  private earlySendErrors = 0;

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
    this.log.info(`ESP in UDP to ${hostPort(r.host, r.port)} (manual SAs, out ${hex32(this.conn.out.spi)} ${this.conn.out.suite.name}, in ${hex32(this.conn.in.spi)})`);
    const t = this.opts.createTransport('udp', { host: r.host, port: r.port });
    this.transport = t;
    t.on('packet', (p) => {
      if (this.state === 'connected') this.path?.receive(p);
    });
    t.on('error', (e) => {
      // An ICMP error (port or host unreachable) or a failed send: reported, never fatal by itself; the
      // gateway may come back. A fatal transport error ends the session.
      if ((e as { fatal?: boolean }).fatal === false) {
        if (this.path) this.path.countSendError();
        else this.earlySendErrors++;
        this.log.warn(`toward ${hostPort(r.host, r.port)}: ${e.message}`);
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
    let out: OutboundSa;
    let inn: InboundSa;
    try {
      out = new OutboundSa(saParams(this.conn.out, now));
      inn = new InboundSa({
        ...saParams(this.conn.in, now),
        selectors: { remote: this.conn.remoteTs.map((c) => ({ address: c.address, prefix: c.prefix })), local: this.conn.vip },
      });
    } catch (e) {
      this.fail('protocol-error', e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message));
      return;
    }
    const path = new EspPath({
      out,
      in: inn,
      transport: t,
      clock: this.clock,
      log: this.log,
      keepAliveSeconds: this.conn.keepAlive,
      deliver: (p) => this.receiver(p),
      onLifetime: (stage) => this.onLifetime(stage),
      onError: (err) => this.fail('protocol-error', err),
    });
    for (let i = 0; i < this.earlySendErrors; i++) path.countSendError();
    this.path = path;
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
    this.log.info(`up: ${this.conn.vip} via ${hostPort(r.host, r.port)}, routes ${routes.join(', ') || 'none'}, mtu ${this.mtu_}`);
    this.markUp(info, link, neutral);
    path.start();
  }

  send(packet: Uint8Array): void {
    if (this.state !== 'connected') return;
    this.path?.send(packet);
  }

  /** Manual keys cannot be renewed: warn at the soft limit, stop at the hard one. */
  private onLifetime(stage: 'soft' | 'hard'): void {
    if (stage === 'hard') {
      this.fail('protocol-error', new VpnError('SA_EXPIRED', `a manual SA of ${this.conn.name} reached its hard lifetime; manual keys cannot be renewed, configure new ones`));
      return;
    }
    this.log.warn(`a manual SA of ${this.conn.name} reached its soft lifetime (rekey_*); manual keys cannot be renewed, replace them before life_* runs out`);
  }

  stats(): SessionStats {
    return this.path ? this.path.stats() : noTrafficStats();
  }

  statusDetails(): SessionDetails {
    return this.path ? this.path.statusDetails() : { sendErrors: this.earlySendErrors };
  }

  protected async goodbye(): Promise<void> {
    // Manual SAs have no way to tell the gateway we leave.
  }

  protected async teardown(): Promise<void> {
    this.path?.stop();
    const t = this.transport;
    this.transport = undefined;
    if (t) await t.close().catch(() => undefined);
  }
}
