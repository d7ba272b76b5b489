import { VpnError } from '../errors.js';
import type { Link, LinkConfig, PacketHandler } from '../link/link.js';
import type { UpstreamProxy } from '../transport/upstream-proxy.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import { SystemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { KeyLifetime } from '../crypto/lifetime.js';
import { SessionBase } from '../session/base.js';
import type { SessionStats } from '../session/types.js';
import { linkConfigOf, newCounters, sessionInfoOf, statsOf, type CloseReason, type ConnectedInfo, type SessionCounters } from './connected-info.js';
import { silentLogger, type Logger } from '../util/log.js';
import { VERSION } from '../version.js';
import { Opcode, decodeControlPacket, encodeControlPacket, isDataOpcode, keyIdOf, opcodeName, opcodeOf } from '../wire/openvpn.js';
import { DataChannelKey, OCC_MAGIC, OCC_OP, PING_MAGIC, buildOccMessage, isOccExit, isPing } from './datachannel.js';
import { KeyState, newSessionId } from './key-state.js';
import { IV_PROTO, buildOccOptionsString, buildPeerInfo, decodeServerKeyMethod2, encodeClientKeyMethod2 } from './keymethod.js';
import { EKM_LABEL, EKM_LENGTH, dataKeysFromKey2, deriveKey2Prf, key2FromEkm } from './keys.js';
import type { OpenVpnProfile, ProfileRemote } from './profile-types.js';
import { PushAccumulator, parseServerMessage, type PushedOptions } from './push.js';
import { ipv6Of } from './pushed-ipv6.js';
import type { TlsSettings } from './tls-session.js';
import { createControlWrap, type ControlWrap } from './wrap.js';
import { asVpnError, createRemoteTransport } from './remote-transport.js';
import { compressionPeerInfo, framingFor, occHasCompLzo, type CompressionFraming } from './compress.js';
import { crResponseMessage, type ChallengePrompt, type Crv1Challenge } from './challenge.js';
import { hostPort } from '../util/host-port.js';

export type { CloseReason, ConnectedInfo, SessionCounters } from './connected-info.js';

export interface SessionEvents {
  connecting: [{ remote: { host: string; port: number; proto: 'udp' | 'tcp' } }];
  'tls-established': [{ protocol?: string; cipher?: string }];
  authenticated: [];
  connected: [ConnectedInfo];
  info: [string];
  closed: [{ reason: CloseReason; error?: VpnError }];
}

/** The server wants a sign-in elsewhere first (AUTH_PENDING, with the URL of INFO_PRE WEB_AUTH / OPEN_URL). */
export interface AuthPendingEvent {
  /** The sign-in page, when the server sent one. */
  url?: string;
  /** The server's timeout in seconds (AUTH_PENDING,timeout N), when it gave one. */
  timeout?: number;
  /** WEB_AUTH flags (e.g. 'hidden', 'external'); empty for OPEN_URL. */
  flags: string[];
}

/** What OpenVPN Connect announces in IV_SSO: web sign-in by URL, OPEN_URL, and CR_TEXT challenges. */
export const IV_SSO_METHODS = 'webauth,openurl,crtext';

export interface SessionOptions {
  profile: OpenVpnProfile;
  /** Which remote to use (default the profile's first). */
  remote?: ProfileRemote;
  /** Username/password for `auth-user-pass` profiles. */
  credentials?: { username: string; password: string };
  /**
   * Called once before connecting when no auth-token is carried: the credentials for this attempt (the
   * password with the static-challenge response, or the answer to a CRV1 challenge). Replaces `credentials`.
   */
  resolveCredentials?: () => Promise<{ username: string; password: string } | undefined>;
  /** The server asks for a web sign-in: called with its URL and timeout (AUTH_PENDING + INFO_PRE). */
  onAuthPending?: (e: AuthPendingEvent) => void;
  /** Answers a challenge sent during pending authentication (INFO_PRE,CR_TEXT); the answer goes back as CR_RESPONSE. */
  answerChallenge?: (p: ChallengePrompt) => Promise<string>;
  /** Private key passphrase (askpass). */
  passphrase?: string;
  /** An auth-token from an earlier session: sent instead of the password (the server re-checks it). */
  authToken?: { token: string; user?: string };
  /** Announce and use the TLS keying-material exporter when the server agrees (default profile.tlsEkm). */
  tlsEkm?: boolean;
  createTransport: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  /** Reach the remote through this proxy. */
  upstreamProxy?: UpstreamProxy;
  clock?: Clock;
  logger?: Logger;
}

const PUSH_REQUEST_INTERVAL_MS = 5000;
/** Seconds we wait past the server's AUTH_PENDING timeout for its own AUTH_FAILED before giving up ourselves. */
const AUTH_PENDING_GRACE_S = 5;
/** 2.6 caps piggy-backed ACKs at 4 without tls-auth/crypt and EKM (SoftEther workaround); we do the same. */
const MAX_ACKS_PER_PACKET = 4;

/**
 * One OpenVPN client connection to one remote in TLS mode: hard reset, TLS in P_CONTROL, key-method 2,
 * PUSH_REQUEST/PUSH_REPLY, data channel, keepalive and exit notification. It is the VPN side of a Link:
 * the IP stack sends IP packets with send() and receives them through onReceive().
 *
 * Reconnecting to the next remote after a failure is the connector's job, not this class's.
 */
export class OpenVpnSession extends SessionBase<ConnectedInfo, SessionEvents> implements Link {
  readonly counters: SessionCounters = newCounters();
  private readonly profile: OpenVpnProfile;
  private readonly remote: ProfileRemote;
  private readonly clock: Clock;
  protected readonly log: Logger;
  private readonly tlsEkm: boolean;
  private readonly wrap: ControlWrap;
  private readonly sessionId = newSessionId();
  private transport: Transport | undefined;
  /** The key state we send with (the newest active one, or the one being negotiated at first connect). */
  private key: KeyState | undefined;
  /** A renegotiation in progress (a new key_id not yet active). */
  private pending: KeyState | undefined;
  /** The previous key after a renegotiation: still decrypts until it expires (tran-window). */
  private lameDuck: { ks: KeyState; expiresAt: number } | undefined;
  /** The active key's lifetime (reneg-sec / reneg-bytes / reneg-pkts): its soft limit starts our renegotiation. */
  private keyLife: KeyLifetime | undefined;
  /** Pushed auth-token: the password for renegotiations instead of the user's. */
  private authToken: string | undefined;
  private authTokenUser: string | undefined;
  private useEkm = false;
  /** The compression framing in use since the push (undefined before). */
  framing: CompressionFraming | undefined;
  private cipher = '';
  /** Completed renegotiations. */
  renegotiations = 0;

  /** The auth-token the server gave us, if any (a reconnect sends it instead of the password). */
  get authTokenState(): { token: string; user?: string } | undefined {
    return this.authToken === undefined ? undefined : { token: this.authToken, user: this.authTokenUser };
  }

  /** True when the key exchange of the first key state sent a token instead of the user's password. */
  get usedAuthToken(): boolean {
    return this.sentToken;
  }
  private sentToken = false;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private flushScheduled = false;
  private readonly push: PushAccumulator;
  private pushed: PushedOptions | undefined;
  private pushRequestAt: number | undefined;
  private pushDeadline: number | undefined;
  private pingSec = 0;
  private pingRestartSec = 0;
  private lastSentAt = 0;
  private lastReceivedAt = 0;
  private ccExit = false;
  private startedAt = 0;
  /** This attempt's credentials (resolveCredentials' answer, else the options'). */
  private creds: { username: string; password: string } | undefined;
  /** The server's CRV1 challenge that ended this session, for the next attempt to answer. */
  crv1Challenge: Crv1Challenge | undefined;
  /** AUTH_PENDING: since when, the server's timeout, and the sign-in URL once it came. */
  authPending: { since: number; timeout?: number; url?: string; deadline: number } | undefined;

  constructor(private readonly opts: SessionOptions) {
    super();
    this.profile = opts.profile;
    const remote = opts.remote ?? opts.profile.remotes[0];
    if (!remote) throw new VpnError('PROFILE_SYNTAX', `${opts.profile.source}: no 'remote' in the profile`);
    this.remote = remote;
    this.clock = opts.clock ?? new SystemClock();
    this.log = (opts.logger ?? silentLogger).child('openvpn');
    this.tlsEkm = opts.tlsEkm ?? opts.profile.tlsEkm;
    this.wrap = makeWrap(remote, opts.profile.auth);
    this.push = new PushAccumulator(opts.profile.pullFilters);
    this.authToken = opts.authToken?.token;
    this.authTokenUser = opts.authToken?.user;
  }

  // ---------------------------------------------------------------------------------------------
  // Link

  protected get configuredMtu(): number {
    return this.remote.connection.tunMtu;
  }
  stats(): SessionStats {
    return statsOf(this.counters);
  }
  send(packet: Uint8Array): void {
    const data = this.key?.data;
    if (this.state !== 'connected' || !data || !this.transport) return;
    // encrypt() returns a fresh buffer that nothing else holds: hand it over without a copy.
    this.transport.send(data.encrypt(packet), true);
    this.lastSentAt = this.clock.now();
    this.counters.packetsOut++;
    this.counters.bytesOut += packet.length;
    if (this.keyLife?.count(1, packet.length) !== undefined) this.rearm();
  }

  // ---------------------------------------------------------------------------------------------
  // lifecycle

  // start() (in SessionBase) resolves with the pushed configuration once data can flow.
  protected async run(): Promise<void> {
    const r = this.remote;
    const where = { host: r.host, port: r.port, proto: r.proto };
    this.emit('connecting', { remote: where });
    this.log.info(`connecting to ${hostPort(r.host, r.port)} over ${r.proto.toUpperCase()}`);
    this.creds = this.opts.credentials;
    if (this.authToken === undefined && this.opts.resolveCredentials) {
      try {
        this.creds = await this.opts.resolveCredentials();
      } catch (e) {
        this.fail('auth-failed', asVpnError(e));
        return;
      }
      if (this.state !== 'connecting') return;
    }
    this.startedAt = this.clock.now();
    const t = createRemoteTransport(r, this.opts.createTransport, {
      onPacket: (p) => this.onWirePacket(p),
      isUp: () => this.state === 'connected',
      isActive: () => this.state === 'connecting' || this.state === 'connected',
      fail: (e) => this.fail('transport-error', e),
      log: this.log,
      peer: 'server',
      ...(this.opts.upstreamProxy ? { upstreamProxy: this.opts.upstreamProxy } : {}),
    });
    this.transport = t;
    try {
      await t.connect();
    } catch (e) {
      this.fail('transport-error', asVpnError(e));
      return;
    }
    if (this.state !== 'connecting') return;
    this.lastReceivedAt = this.clock.now();
    this.key = this.newKeyState(0);
    const resetOpcode = this.wrap.mode === 'tls-crypt-v2' ? Opcode.P_CONTROL_HARD_RESET_CLIENT_V3 : Opcode.P_CONTROL_HARD_RESET_CLIENT_V2;
    this.key.reliable.sendReset(resetOpcode);
    this.key.phase = 'pre-start';
    this.flush();
  }

  /**
   * On close (SessionBase): on UDP tell the server we leave (EXIT over the control channel when the server
   * speaks cc-exit, otherwise an OCC exit data packet); then teardown() closes the transport.
   */
  protected async goodbye(): Promise<void> {
    if (this.remote.proto !== 'udp' || !this.transport || !this.key?.data) return;
    if (this.ccExit) {
      const ks = this.key;
      await Promise.race([ks.tls.writeApp(Buffer.from('EXIT\0')), new Promise((r) => setTimeout(r, 500))]);
      await this.waitFor(() => ks.reliable.allAcked(), 1500);
    } else {
      const exit = buildOccMessage(OCC_OP.EXIT);
      for (let i = 0; i < 3; i++) this.transport.send(this.key.data.encrypt(exit));
    }
  }

  private async waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond() && Date.now() < deadline) {
      this.flush();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  protected async teardown(): Promise<void> {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.key?.destroy();
    this.pending?.destroy();
    this.lameDuck?.ks.destroy();
    this.pending = undefined;
    this.lameDuck = undefined;
    const t = this.transport;
    this.transport = undefined;
    if (t) await t.close().catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------
  // control channel

  private newKeyState(keyId: number, remoteSessionId?: Buffer): KeyState {
    const p = this.profile;
    const tls: TlsSettings = {
      ca: p.ca ?? '',
      cert: p.cert,
      key: p.key,
      passphrase: this.opts.passphrase ?? p.askpass?.passphrase,
      extraCerts: p.extraCerts,
      minVersion: tlsVersionName(p.tlsVersionMin),
      maxVersion: p.tlsVersionMax ? tlsVersionName(p.tlsVersionMax) : undefined,
      tlsCipher: p.tlsCipher,
      tlsCiphersuites: p.tlsCiphersuites,
      groups: p.tlsGroups,
      remoteCertTlsServer: p.remoteCertTls === 'server' || p.nsCertType === 'server',
      verifyX509Name: p.verifyX509Name,
      peerFingerprints: p.peerFingerprints,
    };
    const ks: KeyState = new KeyState(keyId, {
      localSessionId: this.sessionId,
      remoteSessionId,
      tls,
      tlsTimeoutMs: p.tlsTimeout * 1000,
      wrapOverhead: (op) => this.wrap.overheadFor(op),
      maxAcksPerPacket: MAX_ACKS_PER_PACKET,
      wkcCapable: this.wrap.mode === 'tls-crypt-v2',
      now: this.clock.now(),
      onCiphertext: (bytes) => {
        ks.reliable.queueData(bytes);
        this.scheduleFlush();
      },
    });
    ks.tls.on('secure', () => this.onTlsSecure(ks));
    ks.tls.on('data', (d) => this.onTlsData(ks, d));
    ks.tls.on('error', (e) => {
      if (ks === this.pending) {
        this.log.warn(`renegotiation of key_id ${ks.keyId} failed: ${e.message}`);
        this.pending = undefined;
        ks.destroy();
        return;
      }
      this.fail('tls-error', e);
    });
    return ks;
  }

  private onWirePacket(buf: Buffer): void {
    if (this.state !== 'connecting' && this.state !== 'connected' && this.state !== 'closing') return;
    if (buf.length < 1) return;
    const op = opcodeOf(buf[0]!);
    if (isDataOpcode(op)) {
      this.onDataPacket(buf);
      return;
    }
    const now = this.clock.now();
    let pkt;
    try {
      const plain = this.wrap.unwrap(buf, this.clock.unixSeconds());
      pkt = decodeControlPacket(plain);
    } catch (e) {
      this.counters.controlDropped++;
      this.log.debug(`control packet dropped: ${(e as Error).message}`);
      return;
    }
    if (this.log.enabled('trace')) {
      this.log.trace(`in  ${opcodeName(pkt.opcode)} kid=${pkt.keyId} mid=${pkt.messageId ?? '-'} acks=[${pkt.acks.join(',')}] len=${pkt.payload.length}`);
    }
    let ks = this.keyStateFor(pkt.keyId);
    if (!ks && pkt.opcode === Opcode.P_CONTROL_SOFT_RESET_V1 && this.state === 'connected' && this.key?.phase === 'active') {
      // The server starts a renegotiation: answer with our own soft reset on a fresh key state.
      this.log.info(`server started a renegotiation (key_id ${pkt.keyId})`);
      ks = this.startRenegotiation(pkt.keyId);
    }
    if (!ks) {
      this.counters.controlDropped++;
      this.log.debug(`control packet for unknown key_id ${pkt.keyId} dropped (${opcodeName(pkt.opcode)})`);
      return;
    }
    const res = ks.reliable.receive(pkt, now);
    if (!res.accepted) {
      this.counters.controlDropped++;
      this.log.debug(`control packet dropped by the reliability layer: ${res.dropReason}`);
      return;
    }
    this.lastReceivedAt = now;
    if (res.resetReceived) {
      const expected = ks.keyId === 0 ? Opcode.P_CONTROL_HARD_RESET_SERVER_V2 : Opcode.P_CONTROL_SOFT_RESET_V1;
      if (res.resetOpcode !== expected) {
        this.fail('protocol-error', new VpnError('PROTOCOL', `expected ${opcodeName(expected)} from the server, got ${opcodeName(res.resetOpcode ?? -1)}`));
        return;
      }
      if (res.earlyNegotiationError) {
        this.fail('protocol-error', new VpnError('PROTOCOL', `malformed early-negotiation data in the server reset: ${res.earlyNegotiationError.message}`));
        return;
      }
      if (ks.phase === 'pre-start') {
        ks.phase = 'start';
        this.log.debug(`server answered the reset (key_id ${ks.keyId}); starting TLS`);
        ks.tls.start();
      }
    }
    for (const d of res.delivered) ks.tls.feedCiphertext(d);
    this.flush();
  }

  private onTlsSecure(ks: KeyState): void {
    this.log.info(`TLS established${ks.keyId ? ` for key_id ${ks.keyId}` : ''}: ${ks.tls.protocol} ${ks.tls.cipherName}`);
    if (ks.keyId === 0) this.emit('tls-established', { protocol: ks.tls.protocol, cipher: ks.tls.cipherName });
    const p = this.profile;
    const creds =
      this.authToken !== undefined
        ? { username: this.authTokenUser ?? this.creds?.username ?? '', password: this.authToken }
        : this.creds;
    if (ks.keyId === 0 && this.authToken !== undefined) this.sentToken = true;
    const msg = encodeClientKeyMethod2({
      preMaster: ks.keySource.preMaster,
      random1: ks.keySource.random1,
      random2: ks.keySource.random2,
      options: buildOccOptionsString({
        tunMtu: this.remote.connection.tunMtu,
        proto: this.remote.proto === 'udp' ? 'UDPv4' : 'TCPv4_CLIENT',
        keyDirection: this.remote.connection.tlsWrap?.kind === 'tls-auth' ? this.remote.connection.tlsWrap.direction : undefined,
        tlsAuth: this.remote.connection.tlsWrap?.kind === 'tls-auth',
        auth: p.auth,
        compLzo: occHasCompLzo(p.compression),
      }),
      username: creds?.username,
      password: creds?.password,
      peerInfo: buildPeerInfo({
        ciphers: offeredCiphers(p),
        mtu: this.remote.connection.tunMtuMax,
        proto:
          IV_PROTO.DATA_V2 |
          IV_PROTO.REQUEST_PUSH |
          IV_PROTO.AUTH_PENDING_KW |
          IV_PROTO.CC_EXIT_NOTIFY |
          (this.tlsEkm ? IV_PROTO.TLS_KEY_EXPORT : 0),
        compStubs: false,
        guiVersion: `vpnproxy_${VERSION}`,
        sso: IV_SSO_METHODS,
        extra: [
          ...compressionPeerInfo(p.compression).map((l) => l.split('=') as [string, string]),
          ...(p.pushPeerInfo ? Object.entries(p.setenv).filter(([k]) => k.startsWith('UV_')) : []),
        ],
      }),
    });
    void ks.tls.writeApp(msg);
    ks.phase = 'sent-key';
  }

  private onTlsData(ks: KeyState, d: Buffer): void {
    ks.pendingPlain = ks.pendingPlain.length ? Buffer.concat([ks.pendingPlain, d]) : d;
    if (!ks.serverKeyMethod) {
      let km;
      try {
        km = decodeServerKeyMethod2(ks.pendingPlain);
      } catch (e) {
        if (ks.pendingPlain.length > 4096) {
          this.fail('protocol-error', new VpnError('PROTOCOL', `bad key-method message from the server: ${(e as Error).message}`));
        }
        return; // wait for more
      }
      ks.serverKeyMethod = km;
      ks.pendingPlain = Buffer.from(km.rest);
      ks.phase = 'got-key';
      if (ks === this.pending) {
        this.finishRenegotiation(ks);
      } else {
        this.log.debug('key exchange done; requesting the configuration');
        this.sendPushRequest();
      }
    }
    // Control strings: NUL-terminated ASCII.
    for (;;) {
      const nul = ks.pendingPlain.indexOf(0);
      if (nul < 0) break;
      const msg = ks.pendingPlain.toString('latin1', 0, nul).replace(/[\r\n]+$/, '');
      ks.pendingPlain = ks.pendingPlain.subarray(nul + 1);
      if (msg.length > 0) this.onControlMessage(ks, msg);
    }
  }

  private sendPushRequest(): void {
    if (!this.key) return;
    void this.key.tls.writeApp(Buffer.from('PUSH_REQUEST\0'));
    const now = this.clock.now();
    this.pushRequestAt = now + PUSH_REQUEST_INTERVAL_MS;
    if (this.pushDeadline === undefined) this.pushDeadline = now + this.profile.handWindow * 1000;
    this.rearm();
  }

  private onControlMessage(ks: KeyState, msg: string): void {
    if (/[^\x20-\x7e]/.test(msg)) {
      this.log.debug('control message with non-printable characters ignored');
      return;
    }
    const m = parseServerMessage(msg, this.profile.pullFilters);
    switch (m.type) {
      case 'push-reply': {
        if (this.state === 'connected') {
          if (m.options.authToken !== undefined) {
            this.authToken = m.options.authToken;
            if (m.options.authTokenUser !== undefined) this.authTokenUser = m.options.authTokenUser;
            this.log.debug('auth-token updated');
          }
          return;
        }
        const done = this.push.add(m);
        if (done) this.applyPush(ks, done);
        return;
      }
      case 'auth-failed':
        if (m.crv1) {
          this.crv1Challenge = m.crv1;
          this.log.info(`the server asks a challenge: ${m.crv1.text}`);
          this.fail('auth-failed', new VpnError('AUTH_FAILED', `the server asks a challenge (CRV1): ${m.crv1.text}`));
          return;
        }
        if (this.authPending) {
          const t = this.authPending.timeout;
          const within = t !== undefined ? ` within the server's timeout (${t} s)` : '';
          this.fail('auth-failed', new VpnError('AUTH_FAILED', `the web sign-in was not completed${within}: the server ended the session (AUTH_FAILED${m.reason ? `: ${m.reason}` : ''})`));
          return;
        }
        this.fail('auth-failed', new VpnError('AUTH_FAILED', `the server rejected the credentials: AUTH_FAILED${m.reason ? `: ${m.reason}` : ''}`));
        return;
      case 'auth-pending': {
        if (this.state !== 'connecting') return;
        this.log.info(`authentication pending${m.timeout ? ` (up to ${m.timeout} s)` : ''}`);
        const now = this.clock.now();
        // The server ends a pending sign-in itself with AUTH_FAILED at its timeout; ours is a few seconds later.
        const deadline = now + ((m.timeout ?? this.profile.handWindow) + AUTH_PENDING_GRACE_S) * 1000;
        this.authPending = { since: now, ...(m.timeout !== undefined ? { timeout: m.timeout } : {}), ...(this.authPending?.url ? { url: this.authPending.url } : {}), deadline };
        this.pushDeadline = Math.max(this.pushDeadline ?? 0, deadline);
        this.rearm();
        return;
      }
      case 'info-pre': {
        if (m.crText && this.state === 'connecting') {
          void this.answerCrText(ks, m.crText);
          return;
        }
        const url = m.webAuth?.url ?? m.openUrl;
        if (url === undefined || this.state !== 'connecting') {
          this.log.info(`server: ${m.text}`);
          return;
        }
        if (!/^https?:\/\/[^\s]+$/i.test(url)) {
          this.log.warn(`the server's sign-in URL is not an http(s) URL; ignored: ${url.slice(0, 200)}`);
          return;
        }
        const now = this.clock.now();
        const pend = this.authPending ?? { since: now, deadline: now + (this.profile.handWindow + AUTH_PENDING_GRACE_S) * 1000 };
        pend.url = url;
        this.authPending = pend;
        this.pushDeadline = Math.max(this.pushDeadline ?? 0, pend.deadline);
        this.rearm();
        this.log.info(`web sign-in required: ${url}`);
        this.opts.onAuthPending?.({ url, ...(pend.timeout !== undefined ? { timeout: pend.timeout } : {}), flags: m.webAuth?.flags ?? [] });
        return;
      }
      case 'restart':
        this.fail('server-restart', new VpnError('TRANSPORT_CLOSED', `the server asked us to reconnect${m.message ? `: ${m.message}` : ''}`));
        return;
      case 'halt':
        this.fail('server-halt', new VpnError('SERVER_HALT', `the server ended the session${m.message ? `: ${m.message}` : ''}`));
        return;
      case 'exit':
        this.fail('server-exit', new VpnError('TRANSPORT_CLOSED', 'the server is shutting down (EXIT)'));
        return;
      case 'info':
        this.log.info(`server: ${m.text}`);
        this.emit('info', m.text);
        return;
      default:
        this.log.debug(`control message ignored: ${msg.slice(0, 80)}`);
    }
  }

  private applyPush(ks: KeyState, o: PushedOptions): void {
    this.pushed = o;
    this.authPending = undefined;
    this.pushRequestAt = undefined;
    this.pushDeadline = undefined;
    this.emit('authenticated');
    const p = this.profile;
    const cipher = o.cipher ?? p.dataCiphersFallback ?? p.cipher;
    if (!cipher) {
      this.fail('protocol-error', new VpnError('NO_SHARED_CIPHER', 'the server pushed no data cipher and the profile has no data-ciphers-fallback'));
      return;
    }
    const flags = o.protocolFlags ?? [];
    const useEkm = this.tlsEkm && (o.keyDerivation === 'tls-ekm' || flags.includes('tls-ekm'));
    this.ccExit = flags.includes('cc-exit');
    let data: DataChannelKey;
    try {
      // Compression framing: the profile's, replaced by what the server pushed (we decompress, never compress).
      this.framing = framingFor(p.compression, o.compression, { maxDecompressed: Math.max(2048, (o.tunMtu ?? this.remote.connection.tunMtu) + 64) });
      const key2 = useEkm
        ? key2FromEkm(ks.tls.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL))
        : deriveKey2Prf(ks.keySource, ks.serverKeyMethod!.message, this.sessionId, ks.reliable.remoteSessionId!);
      data = new DataChannelKey({
        keyId: ks.keyId,
        cipher,
        auth: p.auth,
        keys: dataKeysFromKey2(key2, cipher, p.auth),
        peerId: o.peerId,
        replayWindow: p.replayWindow.size,
        framing: this.framing,
      });
      key2.fill(0);
    } catch (e) {
      const err = e instanceof VpnError ? e : new VpnError('PROTOCOL', String(e));
      this.fail('protocol-error', err.code === 'PROFILE_UNSUPPORTED' ? new VpnError('NO_SHARED_CIPHER', `the server chose data cipher ${cipher}, which vpnproxy does not support: ${err.message}`) : err);
      return;
    }
    ks.data = data;
    ks.phase = 'active';
    this.useEkm = useEkm;
    this.cipher = cipher;
    if (o.authToken !== undefined) this.authToken = o.authToken;
    if (o.authTokenUser !== undefined) this.authTokenUser = o.authTokenUser;
    this.scheduleRenegotiation();
    this.pingSec = o.ping ?? p.ping ?? 0;
    this.pingRestartSec = o.pingRestart ?? p.pingRestart ?? 0;
    const ifc = o.ifconfig;
    if (!ifc) {
      this.fail('protocol-error', new VpnError('PROTOCOL', 'the server pushed no ifconfig (no tunnel address)'));
      return;
    }
    const topology = o.topology ?? 'net30';
    const netmask = topology === 'subnet' ? ifc.second : '255.255.255.255';
    const gateway = o.routeGateway ?? (topology === 'subnet' ? undefined : ifc.second);
    const dns = [...(o.dns ?? [])];
    const domains = [...(o.domains ?? [])];
    const routes = p.routeNopull ? [] : (o.routes ?? []).map((r) => `${r.network}/${maskBits(r.netmask)}`);
    const mtu = o.tunMtu ?? this.remote.connection.tunMtu;
    const v6 = ipv6Of(o, p.routeNopull, (m) => this.log.warn(m));
    const info: ConnectedInfo = {
      localIp: ifc.local,
      netmask,
      gateway,
      routes,
      // `redirect-gateway !ipv4` (with ipv6) leaves IPv4 alone.
      redirectGateway: o.redirectGateway !== undefined && !o.redirectGateway.flags.includes('!ipv4'),
      ...v6,
      dns,
      domains,
      mtu,
      cipher: data.cipherName,
      peerId: o.peerId,
      keyDerivation: useEkm ? 'tls-ekm' : 'tls1-prf',
      tlsVersion: ks.tls.protocol,
      tlsCipher: ks.tls.cipherName,
      remote: { host: this.remote.host, port: this.remote.port, proto: this.remote.proto },
    };
    this.lastSentAt = this.clock.now();
    this.lastReceivedAt = this.clock.now();
    this.log.info(
      `connected: ${ifc.local}/${maskBits(netmask)}${v6.address6 ? ` ${v6.address6}/${v6.prefixLength6}` : ''} cipher ${data.cipherName} keys ${info.keyDerivation}${o.peerId !== undefined ? ` peer-id ${o.peerId}` : ''} mtu ${mtu}`,
    );
    this.markUp(info, linkConfigOf(info), sessionInfoOf(info));
    this.rearm();
  }

  // ---------------------------------------------------------------------------------------------
  // data channel

  private onDataPacket(buf: Buffer): void {
    if (this.state === 'connecting' || !this.key?.data) {
      this.counters.dataDroppedBeforeUp++;
      return;
    }
    const ks = this.keyStateFor(keyIdOf(buf[0]!));
    if (!ks?.data) {
      this.counters.dataDropped++;
      return;
    }
    let payload: Buffer;
    try {
      payload = ks.data.decrypt(buf);
    } catch (e) {
      this.counters.dataDropped++;
      if (this.log.enabled('debug')) this.log.debug(`data packet dropped: ${(e as Error).message}`);
      return;
    }
    this.lastReceivedAt = this.clock.now();
    if (payload.length === PING_MAGIC.length && isPing(payload)) {
      this.counters.pingsReceived++;
      return;
    }
    if (payload.length > OCC_MAGIC.length && isOccExit(payload)) {
      this.fail('server-exit', new VpnError('TRANSPORT_CLOSED', 'the server is shutting down (OCC exit)'));
      return;
    }
    if (payload.length >= OCC_MAGIC.length && payload.subarray(0, 16).equals(OCC_MAGIC)) return;
    this.counters.packetsIn++;
    this.counters.bytesIn += payload.length;
    if (this.keyLife?.count(1, payload.length) !== undefined) this.rearm();
    this.receiver(payload);
  }

  // ---------------------------------------------------------------------------------------------
  // sending control packets and the one timer

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const t = this.transport;
    if (!t) return;
    const now = this.clock.now();
    const nowSec = this.clock.unixSeconds();
    for (const ks of this.keyStates()) {
      for (const pkt of ks.reliable.poll(now)) {
        if (this.log.enabled('trace')) {
          this.log.trace(`out ${opcodeName(pkt.opcode)} kid=${pkt.keyId} mid=${pkt.messageId ?? '-'} acks=[${pkt.acks.join(',')}] len=${pkt.payload.length}`);
        }
        t.send(this.wrap.wrap(encodeControlPacket(pkt), nowSec));
        this.lastSentAt = now;
      }
    }
    this.rearm();
  }

  private keyStates(): KeyState[] {
    const out: KeyState[] = [];
    if (this.key) out.push(this.key);
    if (this.pending) out.push(this.pending);
    if (this.lameDuck) out.push(this.lameDuck.ks);
    return out;
  }

  private keyStateFor(keyId: number): KeyState | undefined {
    if (this.key?.keyId === keyId) return this.key;
    if (this.pending?.keyId === keyId) return this.pending;
    if (this.lameDuck?.ks.keyId === keyId) return this.lameDuck.ks;
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // renegotiation (soft reset): a new TLS session and new data keys under the next key_id; the old key
  // keeps decrypting as a lame duck so nothing in flight is lost.

  private scheduleRenegotiation(): void {
    const p = this.profile;
    // OpenVPN counts reneg-bytes / reneg-pkts over both directions of the key; reneg-sec 0 = never by time.
    const life = new KeyLifetime({ soft: { seconds: p.renegSec, bytes: p.renegBytes, packets: p.renegPkts } }, this.clock.now());
    this.keyLife = life.unlimited ? undefined : life;
  }

  private renegotiationDue(now: number): boolean {
    return this.keyLife !== undefined && this.keyLife.stageAt(now) !== 'fresh';
  }

  private renegotiationCause(): string {
    const p = this.profile;
    const l = this.keyLife!;
    if (p.renegBytes !== undefined && l.bytes >= p.renegBytes) return `reneg-bytes ${p.renegBytes}`;
    if (p.renegPkts !== undefined && l.packets >= p.renegPkts) return `reneg-pkts ${p.renegPkts}`;
    return `reneg-sec ${p.renegSec}`;
  }

  private nextKeyId(): number {
    const k = ((this.key?.keyId ?? 0) + 1) & 7;
    return k === 0 ? 1 : k;
  }

  private startRenegotiation(keyId: number): KeyState {
    this.pending?.destroy();
    const ks = this.newKeyState(keyId, this.key!.reliable.remoteSessionId);
    ks.reliable.sendReset(Opcode.P_CONTROL_SOFT_RESET_V1);
    ks.phase = 'pre-start';
    this.pending = ks;
    this.keyLife = undefined;
    return ks;
  }

  private finishRenegotiation(ks: KeyState): void {
    const p = this.profile;
    try {
      const key2 = this.useEkm
        ? key2FromEkm(ks.tls.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL))
        : deriveKey2Prf(ks.keySource, ks.serverKeyMethod!.message, this.sessionId, ks.reliable.remoteSessionId!);
      ks.data = new DataChannelKey({
        keyId: ks.keyId,
        cipher: this.cipher,
        auth: p.auth,
        keys: dataKeysFromKey2(key2, this.cipher, p.auth),
        peerId: this.pushed?.peerId,
        replayWindow: p.replayWindow.size,
        framing: this.framing,
      });
      key2.fill(0);
    } catch (e) {
      this.log.warn(`renegotiation failed, staying on key_id ${this.key?.keyId}: ${(e as Error).message}`);
      this.pending = undefined;
      ks.destroy();
      return;
    }
    ks.phase = 'active';
    const old = this.key!;
    this.lameDuck?.ks.destroy();
    this.lameDuck = { ks: old, expiresAt: this.clock.now() + p.tranWindow * 1000 };
    this.key = ks;
    this.pending = undefined;
    this.renegotiations++;
    this.log.info(`renegotiated: now key_id ${ks.keyId} (${ks.tls.protocol}); key_id ${old.keyId} kept for in-flight packets`);
    this.scheduleRenegotiation();
  }

  private rearm(): void {
    if (this.state === 'closed') return;
    const now = this.clock.now();
    let at = Infinity;
    for (const ks of this.keyStates()) {
      const rd = ks.reliable.nextDeadline();
      if (rd !== undefined) at = Math.min(at, rd);
    }
    if (this.keyLife !== undefined && !this.pending) at = Math.min(at, this.renegotiationDue(now) ? now : (this.keyLife.nextDeadline(now) ?? Infinity));
    if (this.pending) at = Math.min(at, this.pending.startedAt + this.profile.handWindow * 1000);
    if (this.lameDuck) at = Math.min(at, this.lameDuck.expiresAt);
    if (this.state === 'connecting') at = Math.min(at, this.handshakeDeadline());
    if (this.pushRequestAt !== undefined) at = Math.min(at, this.pushRequestAt);
    if (this.pushDeadline !== undefined) at = Math.min(at, this.pushDeadline);
    if (this.state === 'connected') {
      if (this.pingSec > 0) at = Math.min(at, this.lastSentAt + this.pingSec * 1000);
      if (this.pingRestartSec > 0) at = Math.min(at, this.lastReceivedAt + this.pingRestartSec * 1000);
    }
    if (at === Infinity) return;
    at = Math.max(at, now);
    if (this.timer && at >= this.timerAt) return;
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.onTimer();
    }, at - now);
  }

  private onTimer(): void {
    if (this.state === 'closed') return;
    const now = this.clock.now();
    if (this.state === 'connecting') {
      if (this.authPending && now >= this.authPending.deadline) {
        const t = this.authPending.timeout;
        this.fail(
          'auth-failed',
          new VpnError('AUTH_FAILED', `the sign-in was not completed within the server's timeout${t !== undefined ? ` (${t} s)` : ''}${this.authPending.url ? `: ${this.authPending.url}` : ''}`),
        );
        return;
      }
      if (!this.authPending && now >= this.startedAt + this.profile.handWindow * 1000) {
        const heard = this.key?.reliable.peerResetReceived;
        const hint = heard
          ? 'the TLS handshake or key exchange did not finish'
          : `no response from ${hostPort(this.remote.host, this.remote.port)}/${this.remote.proto} — check the address and port, and the tls-auth/tls-crypt key and key-direction`;
        this.fail('handshake-timeout', new VpnError('HANDSHAKE_TIMEOUT', `no session within hand-window (${this.profile.handWindow} s): ${hint}`));
        return;
      }
      if (this.pushDeadline !== undefined && now >= this.pushDeadline) {
        this.fail('push-timeout', new VpnError('PUSH_TIMEOUT', 'no reply from the server to PUSH_REQUEST'));
        return;
      }
      if (this.pushRequestAt !== undefined && now >= this.pushRequestAt) this.sendPushRequest();
    }
    if (this.state === 'connected') {
      if (this.pingRestartSec > 0 && now >= this.lastReceivedAt + this.pingRestartSec * 1000) {
        this.fail('ping-restart', new VpnError('PING_TIMEOUT', `nothing received from the server for ${this.pingRestartSec} s (ping-restart)`));
        return;
      }
      if (this.pingSec > 0 && now >= this.lastSentAt + this.pingSec * 1000) this.sendPing();
      if (this.renegotiationDue(now) && !this.pending) {
        this.log.info(`starting a renegotiation (${this.renegotiationCause()})`);
        this.startRenegotiation(this.nextKeyId());
      }
      if (this.pending && now >= this.pending.startedAt + this.profile.handWindow * 1000) {
        this.log.warn(`renegotiation of key_id ${this.pending.keyId} did not finish within hand-window; staying on key_id ${this.key?.keyId}`);
        this.pending.destroy();
        this.pending = undefined;
        this.scheduleRenegotiation();
      }
      if (this.lameDuck && now >= this.lameDuck.expiresAt) {
        this.lameDuck.ks.destroy();
        this.lameDuck = undefined;
      }
    }
    this.flush();
  }

  /** INFO_PRE,CR_TEXT:flags:text during pending authentication: ask, then send CR_RESPONSE on the same key. */
  private async answerCrText(ks: KeyState, cr: { flags: string[]; text: string }): Promise<void> {
    this.log.info(`the server asks: ${cr.text}`);
    const ask = this.opts.answerChallenge;
    if (!ask) {
      this.fail('auth-failed', new VpnError('USAGE', `the server asks "${cr.text}" and there is no way to answer it`));
      return;
    }
    let response: string;
    try {
      response = await ask({ kind: 'crtext', text: cr.text, echo: cr.flags.includes('E') });
    } catch (e) {
      this.fail('auth-failed', asVpnError(e));
      return;
    }
    if (this.state !== 'connecting' || ks !== this.key) return;
    void ks.tls.writeApp(Buffer.from(`${crResponseMessage(response)}\0`));
    this.scheduleFlush();
  }

  /** The pending sign-in for /status (wall-clock `since`), while the server waits for it. */
  authPendingStatus(): { url?: string; timeout?: number; since: number } | undefined {
    const p = this.authPending;
    if (!p || this.state !== 'connecting') return undefined;
    return { ...(p.url !== undefined ? { url: p.url } : {}), ...(p.timeout !== undefined ? { timeout: p.timeout } : {}), since: Date.now() - (this.clock.now() - p.since) };
  }

  /** hand-window from the start, or the end of a pending sign-in (whichever is later). */
  private handshakeDeadline(): number {
    const hw = this.startedAt + this.profile.handWindow * 1000;
    return this.authPending ? Math.max(hw, this.authPending.deadline) : hw;
  }

  private sendPing(): void {
    const data = this.key?.data;
    if (!data || !this.transport) return;
    this.transport.send(data.encrypt(PING_MAGIC));
    this.counters.pingsSent++;
    this.lastSentAt = this.clock.now();
  }
}

function makeWrap(remote: ProfileRemote, auth: string): ControlWrap {
  const w = remote.connection.tlsWrap;
  if (!w) return createControlWrap({ mode: 'none' });
  switch (w.kind) {
    case 'tls-auth':
      return createControlWrap({ mode: 'tls-auth', key: Buffer.from(w.key.bytes), direction: w.direction, digest: auth });
    case 'tls-crypt':
      return createControlWrap({ mode: 'tls-crypt', key: Buffer.from(w.key.bytes), role: 'client' });
    case 'tls-crypt-v2':
      return createControlWrap({ mode: 'tls-crypt-v2', key: Buffer.from(w.key.kc.bytes), wkc: Buffer.from(w.key.wkc), role: 'client' });
  }
}

function tlsVersionName(v: string): 'TLSv1.2' | 'TLSv1.3' | 'TLSv1.1' | 'TLSv1' {
  switch (v) {
    case '1.3':
      return 'TLSv1.3';
    case '1.1':
      return 'TLSv1.1';
    case '1.0':
      return 'TLSv1';
    default:
      return 'TLSv1.2';
  }
}

/**
 * IV_CIPHERS: the profile's data-ciphers, plus `cipher` when it is not among them (OpenVPN 2.5+ appends it
 * for compatibility with servers configured for that one cipher, as many provider profiles rely on).
 */
export function offeredCiphers(p: Pick<OpenVpnProfile, 'dataCiphers' | 'cipher'>): string[] {
  const norm = (n: string) => (n.toLowerCase() === 'none' ? 'none' : n.toUpperCase());
  const out = p.dataCiphers.map((c) => norm(c.name));
  if (p.cipher && !out.includes(norm(p.cipher)) && p.cipher.toUpperCase() !== 'BF-CBC') out.push(norm(p.cipher));
  return out;
}

function maskBits(mask: string): number {
  const parts = mask.split('.').map(Number);
  let n = 0;
  for (const p of parts) n = n * 256 + (p & 255);
  let bits = 0;
  for (let i = 31; i >= 0; i--) {
    if ((n >>> i) & 1) bits++;
    else break;
  }
  return bits;
}
