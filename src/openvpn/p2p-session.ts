import { VpnError } from '../errors.js';
import { SessionBase } from '../session/base.js';
import type { SessionStats } from '../session/types.js';
import type { Transport } from '../transport/types.js';
import { SystemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { framingFor, occHasCompLzo } from './compress.js';
import { OCC_MAGIC, OCC_OP, PING_MAGIC, buildOccMessage, isOccExit, isPing, occOpcode } from './datachannel.js';
import type { OpenVpnProfile, ProfileRemote } from './profile-types.js';
import type { SessionEvents, SessionOptions } from './session.js';
import { linkConfigOf, newCounters, sessionInfoOf, statsOf, type ConnectedInfo, type SessionCounters } from './connected-info.js';
import { occResponse, p2pOccOptionsString, staticKeyChannelFromProfile, type StaticKeyChannel } from './static-key.js';
import { asVpnError, createRemoteTransport } from './remote-transport.js';
import { hostPort } from '../util/host-port.js';

/** How often we ask a silent peer for its OCC string while waiting for it to show up. */
const PROBE_INTERVAL_MS = 1000;

/**
 * OpenVPN without TLS: static-key mode (`secret`) and the plaintext peer-to-peer mode. There is no
 * handshake and nothing is pushed: the addresses come from the profile's `ifconfig`. The session counts
 * as up once the peer proves it is there (any packet that authenticates, e.g. its answer to our OCC
 * request). Same surface as OpenVpnSession, so OpenVpnClient can run either.
 */
export class P2pSession extends SessionBase<ConnectedInfo, SessionEvents> {
  readonly counters: SessionCounters = newCounters();
  renegotiations = 0;
  private readonly profile: OpenVpnProfile;
  private readonly remote: ProfileRemote;
  private readonly clock: Clock;
  protected readonly log: Logger;
  private readonly channel: StaticKeyChannel;
  private readonly occString: string;
  private transport: Transport | undefined;
  private timer: TimerHandle | undefined;
  private startedAt = 0;
  private lastSentAt = 0;
  private lastReceivedAt = 0;
  private nextProbeAt = 0;

  constructor(private readonly opts: SessionOptions) {
    super();
    this.profile = opts.profile;
    const remote = opts.remote ?? opts.profile.remotes[0];
    if (!remote) throw new VpnError('PROFILE_SYNTAX', `${opts.profile.source}: no 'remote' in the profile`);
    if (!opts.profile.ifconfig) throw new VpnError('PROFILE_SYNTAX', `${opts.profile.source}: a ${opts.profile.mode} profile needs 'ifconfig LOCAL REMOTE'`);
    this.remote = remote;
    this.clock = opts.clock ?? new SystemClock();
    this.log = (opts.logger ?? silentLogger).child('openvpn-p2p');
    const framing = framingFor(opts.profile.compression);
    this.channel = staticKeyChannelFromProfile(opts.profile, { framing, clock: this.clock });
    this.occString = p2pOccOptionsString({
      mode: opts.profile.mode === 'static-key' ? 'static-key' : 'p2p-plain',
      tunMtu: remote.connection.tunMtu,
      proto: remote.proto === 'udp' ? 'UDPv4' : 'TCPv4_CLIENT',
      compLzo: occHasCompLzo(opts.profile.compression),
      direction: opts.profile.secret?.direction ?? opts.profile.keyDirection,
      cipher: opts.profile.cipher,
      auth: opts.profile.auth,
    });
  }

  protected get configuredMtu(): number {
    return this.remote.connection.tunMtu;
  }
  stats(): SessionStats {
    return statsOf(this.counters);
  }
  send(packet: Uint8Array): void {
    if (this.state !== 'connected' || !this.transport) return;
    this.transmit(packet);
    this.counters.packetsOut++;
    this.counters.bytesOut += packet.length;
  }

  protected async run(): Promise<void> {
    const r = this.remote;
    this.emit('connecting', { remote: { host: r.host, port: r.port, proto: r.proto } });
    this.log.info(`connecting to ${hostPort(r.host, r.port)}/${r.proto} (${this.profile.mode === 'static-key' ? 'static key' : 'plaintext, no encryption'})`);
    const t = createRemoteTransport(r, this.opts.createTransport, {
      onPacket: (p) => this.onWirePacket(p),
      isUp: () => this.state === 'connected',
      isActive: () => this.state === 'connecting' || this.state === 'connected',
      fail: (e) => this.fail('transport-error', e),
      log: this.log,
      peer: 'peer',
      ...(this.opts.upstreamProxy ? { upstreamProxy: this.opts.upstreamProxy } : {}),
    });
    this.transport = t;
    try {
      await t.connect();
    } catch (e) {
      this.fail('transport-error', asVpnError(e));
      return;
    }
    this.startedAt = this.clock.now();
    this.probe();
  }

  /** Ask the peer for its OCC options string: its answer shows that it is there and shares our key. */
  private probe(): void {
    this.transmit(buildOccMessage(OCC_OP.REQUEST));
    this.nextProbeAt = this.clock.now() + PROBE_INTERVAL_MS;
    this.rearm();
  }

  private transmit(payload: Uint8Array): void {
    if (!this.transport) return;
    this.transport.send(this.channel.encrypt(payload));
    this.lastSentAt = this.clock.now();
  }

  private onWirePacket(buf: Buffer): void {
    if (this.state !== 'connecting' && this.state !== 'connected') return;
    let payload: Buffer;
    try {
      payload = this.channel.decrypt(buf);
    } catch (e) {
      this.counters.dataDropped++;
      if (this.log.enabled('debug')) this.log.debug(`packet dropped: ${(e as Error).message}`);
      return;
    }
    this.lastReceivedAt = this.clock.now();
    if (this.state === 'connecting') this.up();
    if (payload.length === PING_MAGIC.length && isPing(payload)) {
      this.counters.pingsReceived++;
      return;
    }
    if (payload.length >= OCC_MAGIC.length + 1 && occOpcode(payload) >= 0) {
      if (isOccExit(payload)) {
        this.fail('server-exit', new VpnError('TRANSPORT_CLOSED', 'the peer is shutting down (OCC exit)'));
        return;
      }
      const reply = occResponse(payload, this.occString);
      if (reply) this.transmit(reply);
      return;
    }
    this.counters.packetsIn++;
    this.counters.bytesIn += payload.length;
    this.receiver(payload);
  }

  private up(): void {
    const ifc = this.profile.ifconfig!;
    const r = this.remote;
    const info: ConnectedInfo = {
      localIp: ifc.local,
      netmask: '255.255.255.255',
      gateway: ifc.remote,
      routes: [`${ifc.remote}/32`],
      redirectGateway: false,
      dns: [],
      domains: [],
      mtu: r.connection.tunMtu,
      cipher: this.channel.cipherName,
      keyDerivation: 'static-key',
      remote: { host: r.host, port: r.port, proto: r.proto },
    };
    this.log.info(`connected: ${ifc.local} <-> ${ifc.remote} (${info.cipher})`);
    this.markUp(info, linkConfigOf(info), sessionInfoOf(info));
    this.rearm();
  }

  protected async goodbye(): Promise<void> {
    if (this.remote.proto !== 'udp') return;
    const exit = buildOccMessage(OCC_OP.EXIT);
    for (let i = 0; i < 3; i++) this.transmit(exit);
  }

  protected async teardown(): Promise<void> {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    const t = this.transport;
    this.transport = undefined;
    if (t) await t.close().catch(() => undefined);
  }

  private rearm(): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    if (this.state !== 'connecting' && this.state !== 'connected') return;
    const p = this.profile;
    const now = this.clock.now();
    let at = Infinity;
    if (this.state === 'connecting') {
      at = Math.min(this.nextProbeAt, this.startedAt + p.handWindow * 1000);
    } else {
      if (p.ping) at = Math.min(at, this.lastSentAt + p.ping * 1000);
      if (p.pingRestart) at = Math.min(at, this.lastReceivedAt + p.pingRestart * 1000);
    }
    if (at === Infinity) return;
    this.timer = this.clock.setTimer(() => this.onTimer(), Math.max(0, at - now));
  }

  private onTimer(): void {
    this.timer = undefined;
    const p = this.profile;
    const now = this.clock.now();
    if (this.state === 'connecting') {
      if (now >= this.startedAt + p.handWindow * 1000) {
        this.fail(
          'handshake-timeout',
          new VpnError(
            'HANDSHAKE_TIMEOUT',
            `no answer from the peer ${hostPort(this.remote.host, this.remote.port)}/${this.remote.proto} within ${p.handWindow} s — check the address, the secret and its key direction, cipher and auth`,
          ),
        );
        return;
      }
      if (now >= this.nextProbeAt) this.probe();
      else this.rearm();
      return;
    }
    if (this.state !== 'connected') return;
    if (p.pingRestart && now >= this.lastReceivedAt + p.pingRestart * 1000) {
      this.fail('ping-restart', new VpnError('PING_TIMEOUT', `nothing received from the peer for ${p.pingRestart} s (ping-restart)`));
      return;
    }
    if (p.ping && now >= this.lastSentAt + p.ping * 1000) {
      this.transmit(PING_MAGIC);
      this.counters.pingsSent++;
    }
    this.rearm();
  }
}
