/**
 * An IKEv2 session (issue 13, PSK): the sans-I/O initiator (ike/initiator.ts) over UDP, then the ESP data path
 * (esp-path.ts) with the CHILD_SA it keyed.
 *
 * IKE_SA_INIT goes to the gateway's remote_port (500); the initiator then floats to port 4500, where every
 * further IKE message travels behind the non-ESP marker and ESP in UDP shares the socket (RFC 3948). The move
 * takes a new socket (a transport is connected to one port), which the gateway sees as our NAT mapping
 * changing, as a NAT would. With remote_port other than 500 the marker is used from the first message and
 * there is no move.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { groupName } from '../crypto/dh.js';
import { VpnError } from '../errors.js';
import type { LinkConfig } from '../link/link.js';
import { SessionBase } from '../session/base.js';
import type { CloseReason, RemoteEndpoint, SessionDetails, SessionInfo, SessionMetric, SessionStats } from '../session/types.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import { SystemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { IdType } from '../wire/ike-constants.js';
import { hostPort } from '../util/host-port.js';
import { classifyUdp4500, withNonEspMarker } from '../wire/esp.js';
import { EspPath, hex32, noTrafficStats } from './esp-path.js';
import { InboundSa, MIN_ESP_REPLAY_WINDOW, OutboundSa, innerMtu, type EspSelectors } from './esp-sa.js';
import type { RetransmitPolicy } from './ike/exchange.js';
import type { ChildSaSpec } from './ike/task-manager.js';
import { jittered, type LifetimePolicy } from '../crypto/lifetime.js';
import { addressBytes, selectorCidrs, selectorCidrs6, selectorsFromConfig, selectorsText } from './ike/identity.js';
import { IkeInitiator, type Established, type InitiatorEvent } from './ike/initiator.js';
import type { IkePlan } from './ike/plan.js';

const NAT_T_PORT = 4500;
/** How long close() waits for the answer to our DELETE. */
const GOODBYE_MS = 2000;
/** ICMP errors for our IKE_SA_INIT, with no answer at all, before the gateway counts as unreachable. */
const UNREACHABLE_AFTER = 3;

/** What an IKE session is once up (the protocol's own view; SessionInfo is the neutral one). */
export interface IkeConnectedInfo {
  connection: string;
  vip: string;
  spiOut: number;
  spiIn: number;
  suite: string;
  remote: RemoteEndpoint;
  ikeSpiI: string;
  ikeSpiR: string;
  proposal: string;
}

export interface IkeSessionOptions {
  plan: IkePlan;
  remote: RemoteEndpoint;
  createTransport: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  pathMtu?: number;
  clock?: Clock;
  logger?: Logger;
  retransmit?: RetransmitPolicy;
  /** Tests: random bytes for SPIs, nonces and IVs. */
  random?: (n: number) => Uint8Array;
}

export class IkeSession extends SessionBase<IkeConnectedInfo> {
  protected readonly log: Logger;
  private readonly plan: IkePlan;
  private readonly clock: Clock;
  private readonly mtu_: number;
  private transport: Transport | undefined;
  private transportGen = 0;
  /** Messages to send once the NAT-T socket is connected. */
  private queued: Uint8Array[] | undefined;
  private natT: boolean;
  private port: number;
  private address = '';
  private initiator: IkeInitiator | undefined;
  private timer: TimerHandle | undefined;
  private path: EspPath | undefined;
  private sa: Established | undefined;
  private answered = false;
  private refusals = 0;
  private sendErrors = 0;
  private goodbyeDone: (() => void) | undefined;
  /** IKE datagrams (fragments each) sent and received, for vpnproxy_ike_messages_total. */
  private ikeSent = 0;
  private ikeReceived = 0;
  private establishedAt: number | undefined;
  /** The CHILD_SAs of rekeys, by our inbound SPI, until removed. */
  private readonly childSas = new Map<number, { spec: ChildSaSpec; out: OutboundSa; in: InboundSa }>();
  /** The CHILD_SA we send with, and the IKE SA's current SPIs and proposal (both change with rekeys). */
  private child: ChildSaSpec | undefined;
  private ike: { spiI: string; spiR: string; proposal: string } | undefined;

  constructor(private readonly opts: IkeSessionOptions) {
    super();
    this.plan = opts.plan;
    this.clock = opts.clock ?? new SystemClock();
    this.log = (opts.logger ?? silentLogger).child('ike');
    this.mtu_ = opts.pathMtu ? Math.min(...opts.plan.esp.flatMap((o) => o.suites.map((s) => innerMtu(s, opts.pathMtu!)))) : opts.plan.initialMtu;
    this.port = opts.remote.port;
    this.natT = this.port !== 500;
  }

  protected get configuredMtu(): number {
    return this.mtu_;
  }

  protected async run(): Promise<void> {
    const r = this.opts.remote;
    const p = this.plan;
    try {
      // either family: the gateway may be reachable over IPv6 only (IKE and ESP-in-UDP work the same over both)
      this.address = isIP(r.host) ? r.host : (await lookup(r.host)).address;
    } catch (e) {
      this.fail('transport-error', new VpnError('DNS_ERROR', `cannot resolve the gateway ${r.host}: ${(e as Error).message}`));
      return;
    }
    if (this.state !== 'connecting') return;
    this.log.info(`IKEv2 to ${this.address !== r.host ? `${r.host} (${hostPort(this.address, this.port)})` : hostPort(this.address, this.port)}, connection ${p.connection.name}, ${p.pskName}`);
    if (!(await this.openTransport(this.port))) return;
    const local = p.localId ?? this.localAddressId();
    const v6 = { ipv6: p.vip6 !== undefined, ...(p.vip6 !== undefined ? { dynamicAddress6: p.vip6 } : {}) };
    const tsi = selectorsFromConfig(p.child.localTs, p.vip, v6);
    const tsr = selectorsFromConfig(p.child.remoteTs, this.address, { ipv6: v6.ipv6 });
    if (tsi.selectors.length === 0 || tsr.selectors.length === 0) {
      this.fail('protocol-error', new VpnError('PROFILE_UNSUPPORTED', `${p.child.where}: no traffic selectors left (${[...tsi.skipped, ...tsr.skipped].join(', ')} skipped); IPv6 ones travel only with :: in vips`));
      return;
    }
    this.initiator = new IkeInitiator({
      ike: p.ike,
      esp: p.esp,
      localId: local,
      remoteId: p.remoteId,
      psk: p.psk,
      localAuth: p.localAuth,
      remoteAuth: p.remoteAuth,
      remoteAddress: this.address,
      remotePort: this.port,
      tsi: tsi.selectors,
      tsr: tsr.selectors,
      vip: p.vip,
      ...(p.vip6 !== undefined ? { vip6: p.vip6 } : {}),
      retransmit: this.opts.retransmit,
      fragmentation: p.fragmentation,
      ikeRekeySeconds: p.connection.rekeyTime,
      ikeRandSeconds: p.connection.randTime,
      dpdDelaySeconds: p.connection.dpdDelay,
      dpdTimeoutSeconds: p.connection.dpdTimeout,
      inboundCount: () => (this.path?.packetsIn ?? 0) + this.ikeReceived,
      random: this.opts.random,
      logger: this.log,
    });
    this.apply(this.initiator.start(this.clock.now()));
  }

  private localAddressId() {
    const a = this.transport?.localAddress;
    if (a && isIP(a) === 6 && a !== '::') return { type: IdType.IPV6_ADDR, data: addressBytes(a) };
    const addr = a && isIP(a) === 4 && a !== '0.0.0.0' ? a : '0.0.0.0';
    return { type: IdType.IPV4_ADDR, data: addressBytes(addr) };
  }

  /** Opens a transport toward `port`; false (after failing the session) if it cannot. */
  private async openTransport(port: number): Promise<boolean> {
    const old = this.transport;
    const gen = ++this.transportGen;
    const t = this.opts.createTransport('udp', { host: this.address, port });
    this.transport = t;
    if (old) void old.close().catch(() => undefined);
    t.on('packet', (d) => {
      if (gen === this.transportGen) this.onDatagram(d);
    });
    t.on('error', (e) => {
      if (gen !== this.transportGen) return;
      if ((e as { fatal?: boolean }).fatal === false) this.onSoftError(e);
      else this.fail('transport-error', e instanceof VpnError ? e : new VpnError('TRANSPORT_ERROR', e.message));
    });
    t.on('close', () => {
      if (gen === this.transportGen && (this.state === 'connecting' || this.state === 'connected')) this.fail('transport-error', new VpnError('TRANSPORT_CLOSED', 'the UDP socket closed'));
    });
    try {
      await t.connect();
    } catch (e) {
      if (gen === this.transportGen) this.fail('transport-error', e instanceof VpnError ? e : new VpnError('TRANSPORT_ERROR', (e as Error).message));
      return false;
    }
    return gen === this.transportGen && (this.state === 'connecting' || this.state === 'connected' || this.state === 'closing');
  }

  private onSoftError(e: Error): void {
    this.sendErrors++;
    this.path?.countSendError();
    this.log.warn(`toward ${hostPort(this.address, this.port)}: ${e.message}`);
    if (this.state === 'connecting' && !this.answered && ++this.refusals >= UNREACHABLE_AFTER) {
      const code = e instanceof VpnError && (e.code === 'CONN_REFUSED' || e.code === 'HOST_UNREACHABLE') ? e.code : 'HOST_UNREACHABLE';
      this.fail('transport-error', new VpnError(code, `the gateway ${hostPort(this.address, this.port)} is unreachable: ${e.message} (${this.refusals} times, no IKE answer)`));
    }
  }

  private onDatagram(d: Buffer): void {
    if (this.state !== 'connecting' && this.state !== 'connected' && this.state !== 'closing') return;
    if (this.path) {
      this.path.receive(d);
      return;
    }
    if (!this.natT) {
      this.onIke(d);
      return;
    }
    const k = classifyUdp4500(d);
    if (k.kind === 'ike') this.onIke(k.message);
  }

  private onIke(message: Uint8Array): void {
    const i = this.initiator;
    if (!i) return;
    this.ikeReceived++;
    this.answered = true;
    this.apply(i.receive(message, this.clock.now()));
  }

  private apply(events: InitiatorEvent[]): void {
    for (const ev of events) {
      switch (ev.type) {
        case 'send':
          this.sendIke(ev.message);
          break;
        case 'float':
          if (!this.natT) this.float();
          break;
        case 'established':
          this.onEstablished(ev.sa);
          break;
        case 'child-added':
          this.onChildAdded(ev.child);
          break;
        case 'child-outbound': {
          const pair = this.childSas.get(ev.spiIn);
          if (pair && this.path) {
            this.path.useOutbound(pair.out, pair.in);
            this.child = pair.spec;
            this.log.info(`sending on CHILD_SA ${hex32(ev.spiIn)}_i ${hex32(pair.spec.spiOut)}_o now`);
          }
          break;
        }
        case 'child-removed':
          if (this.path?.removeInbound(ev.spiIn)) this.log.debug(`CHILD_SA ${hex32(ev.spiIn)}_i removed`);
          this.childSas.delete(ev.spiIn);
          break;
        case 'ike-rekeyed':
          this.ike = { spiI: ev.spiI, spiR: ev.spiR, proposal: ev.proposal };
          break;
        case 'ended':
          this.onEnded(ev.reason, ev.error);
          break;
      }
    }
    this.rearm();
  }

  private sendIke(m: Uint8Array): void {
    if (this.queued) {
      this.queued.push(m);
      return;
    }
    const t = this.transport;
    if (!t) return;
    this.ikeSent++;
    if (this.natT) t.send(withNonEspMarker(m), true);
    else t.send(m);
    this.path?.noteSent();
  }

  /** To port 4500: a new socket; what the initiator sends meanwhile waits for it. */
  private float(): void {
    this.natT = true;
    this.port = NAT_T_PORT;
    this.initiator?.setPeerPort(NAT_T_PORT);
    this.queued = [];
    this.log.debug(`moving to ${hostPort(this.address, NAT_T_PORT)} (NAT traversal, non-ESP marker)`);
    void this.openTransport(NAT_T_PORT).then((ok) => {
      const q = this.queued ?? [];
      this.queued = undefined;
      if (ok) for (const m of q) this.sendIke(m);
    });
  }

  private rearm(): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    const at = this.initiator?.deadline();
    if (at === undefined || this.state === 'closed') return;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      if (this.initiator) this.apply(this.initiator.onTimer(this.clock.now()));
    }, Math.max(0, at - this.clock.now()));
  }

  private onEstablished(sa: Established): void {
    if (this.state !== 'connecting' || !this.transport) return;
    const c = sa.child;
    const now = this.clock.now();
    const lifetime = this.childLifetime();
    const routes = selectorCidrs(c.tsr);
    const vip = sa.cp.vip!;
    // IPv6 only with an IPv6 virtual IP: without one, IPv6 selectors the gateway left in TSr carry nothing of ours
    const vip6 = sa.cp.vip6;
    const routes6 = vip6 ? selectorCidrs6(c.tsr) : [];
    let path: EspPath;
    try {
      const out = new OutboundSa({ spi: c.spiOut, suite: c.suite, encKey: c.keys.initiator.encKey, integKey: c.keys.initiator.integKey, esn: c.esn, lifetime, now });
      const inn = new InboundSa({
        spi: c.spiIn,
        suite: c.suite,
        encKey: c.keys.responder.encKey,
        integKey: c.keys.responder.integKey,
        esn: c.esn,
        replayWindow: Math.max(MIN_ESP_REPLAY_WINDOW, this.plan.child.replayWindow),
        lifetime,
        now,
        selectors: espSelectors(routes, routes6, vip, vip6),
      });
      path = new EspPath({
        out,
        in: inn,
        transport: this.transport,
        clock: this.clock,
        log: this.log,
        keepAliveSeconds: this.plan.keepAlive,
        deliver: (p) => this.receiver(p),
        onIke: (m) => this.onIke(m),
        onLifetime: (stage) => this.onLifetime(stage),
        onError: (err) => this.leave('protocol-error', err),
      });
    } catch (e) {
      this.leave('protocol-error', e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message));
      return;
    }
    this.path = path;
    this.sa = sa;
    this.establishedAt = now;
    this.child = { suite: c.suite, esn: c.esn, spiIn: c.spiIn, spiOut: c.spiOut, inbound: c.keys.responder, outbound: c.keys.initiator, tsi: c.tsi, tsr: c.tsr };
    this.ike = { spiI: sa.spiI, spiR: sa.spiR, proposal: sa.suite.text };
    const mtu = innerMtu(c.suite, this.opts.pathMtu ?? this.plan.connection.client?.mtu ?? 1500);
    const remote: RemoteEndpoint = { host: this.opts.remote.host, port: this.port, proto: 'udp' };
    const link: LinkConfig = {
      address: vip,
      netmask: '255.255.255.255',
      mtu,
      dns: [...sa.cp.dns],
      domains: [...sa.cp.domains],
      routes: routes.filter((r) => !r.endsWith('/0')),
      redirectGateway: routes.some((r) => r.endsWith('/0')),
      ...(vip6
        ? {
            address6: vip6,
            prefixLength6: sa.cp.prefix6 ?? 128,
            routes6: routes6.filter((r) => !r.endsWith('/0')),
            redirectGateway6: routes6.some((r) => r.endsWith('/0')),
            dns6: [...sa.cp.dns6],
          }
        : {}),
    };
    const esp = `${c.suite.name}${c.esn ? '-esn' : ''}`;
    const details: SessionDetails = {
      mode: 'ikev2',
      connection: this.plan.connection.name,
      ikeSpiI: sa.spiI,
      ikeSpiR: sa.spiR,
      proposal: sa.suite.text,
      dhGroup: groupName(sa.suite.dhGroup),
      auth: this.plan.authMethod,
      remoteId: sa.remoteId,
      vip,
      tsi: selectorsText(c.tsi),
      tsr: selectorsText(c.tsr),
      esp,
      spiOut: hex32(c.spiOut),
      spiIn: hex32(c.spiIn),
      esn: c.esn,
    };
    const neutral: SessionInfo = { protocol: 'ipsec', server: remote, link, cipher: c.suite.name, security: `IKEv2 ${this.plan.authMethod === 'psk' ? 'PSK' : this.plan.authMethod}, ${sa.suite.text}`, details };
    const info: IkeConnectedInfo = { connection: this.plan.connection.name, vip, spiOut: c.spiOut, spiIn: c.spiIn, suite: c.suite.name, remote, ikeSpiI: sa.spiI, ikeSpiR: sa.spiR, proposal: sa.suite.text };
    this.log.info(
      `up: ${vip}${vip6 ? ` ${vip6}/${sa.cp.prefix6 ?? 128}` : ''} via ${hostPort(this.address, this.port)}, routes ${[...routes, ...routes6].join(', ') || 'none'}, dns ${[...sa.cp.dns, ...sa.cp.dns6].join(', ') || 'none'}, mtu ${mtu}`,
    );
    this.markUp(info, link, neutral);
    path.start();
  }

  /** The soft lifetime rekeys the CHILD_SA (make-before-break); the hard one ends the session (reconnect). */
  private onLifetime(stage: 'soft' | 'hard'): void {
    const m = this.initiator?.manager;
    if (stage === 'soft' && m) {
      this.log.info('the CHILD_SA reached its soft lifetime (rekey_time/bytes/packets): rekeying it');
      this.apply(m.rekeyChild(this.clock.now()));
      return;
    }
    if (stage === 'hard') this.leave('protocol-error', new VpnError('PROTOCOL', 'the CHILD_SA reached its hard lifetime (life_time/bytes/packets) before a rekey completed; reconnecting'));
  }

  /** CHILD_SA lifetimes from the child's settings, the soft ones less up to rand_* (as strongSwan does). */
  private childLifetime(): LifetimePolicy {
    const life = this.plan.child.lifetime;
    const soft = (t: { rekey: number; rand: number }) => jittered(t.rekey > 0 ? t.rekey : undefined, t.rand);
    return {
      soft: { seconds: soft(life.time), bytes: soft(life.bytes), packets: soft(life.packets) },
      hard: { seconds: life.time.life, bytes: life.bytes.life, packets: life.packets.life },
    };
  }

  /** A rekey made a new CHILD_SA: its inbound SA takes packets from now on, its outbound one waits for the switch. */
  private onChildAdded(spec: ChildSaSpec): void {
    const path = this.path;
    if (!path || !this.sa) return;
    const now = this.clock.now();
    const lifetime = this.childLifetime();
    const routes = selectorCidrs(spec.tsr);
    const vip6 = this.sa.cp.vip6;
    const routes6 = vip6 ? selectorCidrs6(spec.tsr) : [];
    try {
      const out = new OutboundSa({ spi: spec.spiOut, suite: spec.suite, encKey: spec.outbound.encKey, integKey: spec.outbound.integKey, esn: spec.esn, lifetime, now });
      const inn = new InboundSa({
        spi: spec.spiIn,
        suite: spec.suite,
        encKey: spec.inbound.encKey,
        integKey: spec.inbound.integKey,
        esn: spec.esn,
        replayWindow: Math.max(MIN_ESP_REPLAY_WINDOW, this.plan.child.replayWindow),
        lifetime,
        now,
        selectors: espSelectors(routes, routes6, this.sa.cp.vip!, vip6),
      });
      this.childSas.set(spec.spiIn, { spec, out, in: inn });
      path.addInbound(inn);
    } catch (e) {
      this.leave('protocol-error', e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message));
    }
  }

  /** Sends a DELETE of the IKE SA (not waited for) and fails. */
  private leave(reason: CloseReason, err: VpnError): void {
    if (this.initiator) {
      const evs = this.initiator.close(this.clock.now()).filter((e) => e.type === 'send');
      for (const e of evs) if (e.type === 'send') this.sendIke(e.message);
    }
    this.fail(reason, err);
  }

  private onEnded(reason: CloseReason, error: VpnError | undefined): void {
    if (this.goodbyeDone) {
      this.goodbyeDone();
      return;
    }
    if (this.state === 'connecting' || this.state === 'connected') {
      this.fail(reason, error ?? new VpnError('PROTOCOL', `the IKE SA ended (${reason})`));
    }
  }

  send(packet: Uint8Array): void {
    if (this.state !== 'connected') return;
    this.path?.send(packet);
  }

  stats(): SessionStats {
    return this.path ? this.path.stats() : noTrafficStats();
  }

  statusDetails(): SessionDetails {
    if (!this.path) return { sendErrors: this.sendErrors };
    const c = this.child;
    const m = this.initiator?.manager?.stats;
    return {
      ...this.path.statusDetails(),
      ...(this.ike ? { ikeSpiI: this.ike.spiI, ikeSpiR: this.ike.spiR, proposal: this.ike.proposal } : {}),
      ...(c ? { esp: `${c.suite.name}${c.esn ? '-esn' : ''}`, spiOut: hex32(c.spiOut), spiIn: hex32(c.spiIn), tsi: selectorsText(c.tsi), tsr: selectorsText(c.tsr) } : {}),
      ...(m ? { childRekeys: m.childRekeys, ikeRekeys: m.ikeRekeys, dpdSent: m.dpdSent } : {}),
    };
  }

  metrics(): SessionMetric[] {
    const sa = this.sa;
    const out: SessionMetric[] = [
      {
        name: 'vpnproxy_ike_messages_total',
        help: 'IKE datagrams (each fragment counted) exchanged with the gateway, by direction.',
        type: 'counter',
        samples: [
          { labels: { direction: 'sent' }, value: this.ikeSent },
          { labels: { direction: 'received' }, value: this.ikeReceived },
        ],
      },
    ];
    const c = this.child;
    const ike = this.ike;
    if (!sa || !c || !ike) return out;
    const m = this.initiator?.manager?.stats;
    out.push(
      {
        name: 'vpnproxy_ike_sa_info',
        help: 'The IKE SA: SPIs, proposal chosen, key exchange group, authentication, gateway identity, virtual IP (always 1).',
        type: 'gauge',
        samples: [{ labels: { spi_i: ike.spiI, spi_r: ike.spiR, proposal: ike.proposal, dh_group: groupName(sa.suite.dhGroup), auth: this.plan.authMethod, remote_id: sa.remoteId, vip: sa.cp.vip ?? '' }, value: 1 }],
      },
      {
        name: 'vpnproxy_ike_sa_age_seconds',
        help: 'Seconds since the IKE connection was established (rekeys do not reset it).',
        type: 'gauge',
        samples: [{ value: Math.max(0, Math.floor((this.clock.now() - (this.establishedAt ?? this.clock.now())) / 1000)) }],
      },
      {
        name: 'vpnproxy_ike_child_sa_info',
        help: 'The CHILD_SA we send with: ESP suite, SPIs and traffic selectors (always 1).',
        type: 'gauge',
        samples: [{ labels: { esp: `${c.suite.name}${c.esn ? '-esn' : ''}`, spi_in: hex32(c.spiIn), spi_out: hex32(c.spiOut), tsi: selectorsText(c.tsi), tsr: selectorsText(c.tsr) }, value: 1 }],
      },
      {
        name: 'vpnproxy_ike_rekeys_total',
        help: 'Rekeys completed (ours and the gateway\'s), by SA.',
        type: 'counter',
        samples: [
          { labels: { sa: 'child' }, value: m?.childRekeys ?? 0 },
          { labels: { sa: 'ike' }, value: m?.ikeRekeys ?? 0 },
        ],
      },
      { name: 'vpnproxy_ike_peer_requests_total', help: "The gateway's requests answered (DPD, DELETE, CREATE_CHILD_SA).", type: 'counter', samples: [{ value: m?.peerRequests ?? 0 }] },
      { name: 'vpnproxy_ike_dpd_sent_total', help: 'Liveness checks (DPD) we sent after silence from the gateway.', type: 'counter', samples: [{ value: m?.dpdSent ?? 0 }] },
    );
    return out;
  }

  protected async goodbye(): Promise<void> {
    const i = this.initiator;
    if (!i) return;
    await new Promise<void>((resolve) => {
      const t = this.clock.setTimer(() => finish(), GOODBYE_MS);
      const finish = () => {
        this.clock.clearTimer(t);
        this.goodbyeDone = undefined;
        resolve();
      };
      this.goodbyeDone = finish;
      this.apply(i.close(this.clock.now()));
      if (i.state === 'ended') finish();
    });
  }

  protected async teardown(): Promise<void> {
    this.path?.stop();
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.transportGen++;
    const t = this.transport;
    this.transport = undefined;
    if (t) await t.close().catch(() => undefined);
  }
}

/** The inbound SA's checks: the gateway's side of TSr (IPv4 and IPv6 CIDRs) and our addresses. */
function espSelectors(routes: readonly string[], routes6: readonly string[], vip: string, vip6: string | undefined): EspSelectors {
  const remote = [...routes, ...routes6].map((r) => ({ address: r.slice(0, r.lastIndexOf('/')), prefix: Number(r.slice(r.lastIndexOf('/') + 1)) }));
  return vip6 ? { remote, local: vip, local6: vip6 } : { remote, local: vip };
}
