import { EventEmitter } from 'node:events';
import { VpnError } from '../errors.js';
import type { Link, LinkConfig, PacketHandler } from '../link/link.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import { SystemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { OpenVpnProfile, ProfileRemote } from './profile-types.js';
import { OpenVpnSession, type CloseReason, type ConnectedInfo } from './session.js';
import { P2pSession } from './p2p-session.js';

export interface ReconnectingEvent {
  /** Why the previous attempt or session ended. */
  reason: CloseReason;
  error?: VpnError;
  /** 1 for the first retry after a failure, counting up until a session is established again. */
  attempt: number;
  /** How long we wait before the next attempt. */
  delayMs: number;
  /** The remote the next attempt goes to. */
  next: { host: string; port: number; proto: 'udp' | 'tcp' };
}

export interface ClientEvents {
  connecting: [{ remote: { host: string; port: number; proto: 'udp' | 'tcp' }; attempt: number }];
  connected: [ConnectedInfo];
  reconnecting: [ReconnectingEvent];
  info: [string];
  closed: [{ reason: CloseReason; error?: VpnError }];
}

export interface ClientOptions {
  profile: OpenVpnProfile;
  credentials?: { username: string; password: string };
  passphrase?: string;
  tlsEkm?: boolean;
  createTransport: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  clock?: Clock;
  logger?: Logger;
  /** Random source in [0, 1) for jitter and remote-random (tests make it deterministic). */
  random?: () => number;
}

/** Errors after which trying again cannot help: the user has to change something. */
function isFatal(reason: CloseReason, err: VpnError | undefined): boolean {
  if (reason === 'user' || reason === 'server-halt' || reason === 'auth-failed') return true;
  if (!err) return false;
  return ['TLS_VERIFY', 'PROFILE_SYNTAX', 'PROFILE_UNSUPPORTED', 'PROFILE_FILE', 'USAGE', 'NO_SHARED_CIPHER', 'SERVER_HALT', 'AUTH_FAILED'].includes(err.code);
}

/**
 * An OpenVPN connection that survives: it runs one OpenVpnSession at a time and, when a session ends for a
 * reason that a retry can cure (ping-restart, server RESTART/EXIT, transport error or reset, handshake
 * timeout), starts a new one after an exponential backoff with jitter, moving on to the next `remote`
 * (shuffled once with `remote-random`; hostnames are resolved again by each transport). `connect-retry`
 * sets the first delay and the cap, `connect-retry-max` how many rounds over the remotes to try.
 *
 * It is a Link whose identity does not change across reconnects: consumers keep the same object, and
 * packets flow again once the new session is up.
 */
export class OpenVpnClient extends EventEmitter<ClientEvents> implements Link {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly remotes: ProfileRemote[];
  private remoteIndex = 0;
  private session: OpenVpnSession | P2pSession | undefined;
  private receiver: PacketHandler = () => {};
  private attempt = 0;
  private failuresInRow = 0;
  private everConnected = false;
  private closing = false;
  private closedFinal = false;
  private retryTimer: TimerHandle | undefined;
  private firstWaiter: { resolve: (i: ConnectedInfo) => void; reject: (e: VpnError) => void } | undefined;
  /** Sessions established so far (1 after the first connect, +1 per reconnect). */
  sessionsEstablished = 0;
  /** Why the last attempt or session ended (for messages such as a connect timeout). */
  lastError: VpnError | undefined;
  /** The server's auth-token, carried from one session to the next so the password is not sent again. */
  private authToken: { token: string; user?: string } | undefined;

  constructor(private readonly opts: ClientOptions) {
    super();
    this.clock = opts.clock ?? new SystemClock();
    this.log = (opts.logger ?? silentLogger).child('client');
    this.random = opts.random ?? Math.random;
    this.remotes = [...opts.profile.remotes];
    if (this.remotes.length === 0) throw new VpnError('PROFILE_SYNTAX', `${opts.profile.source}: no 'remote' in the profile`);
    if (opts.profile.remoteRandom) {
      for (let i = this.remotes.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [this.remotes[i], this.remotes[j]] = [this.remotes[j]!, this.remotes[i]!];
      }
    }
  }

  // Link ---------------------------------------------------------------------------------------
  get config(): LinkConfig | undefined {
    return this.session?.config;
  }
  get mtu(): number {
    return this.session?.mtu ?? this.remotes[0]!.connection.tunMtu;
  }
  get connectedInfo(): ConnectedInfo | undefined {
    return this.session?.connectedInfo;
  }
  get current(): OpenVpnSession | P2pSession | undefined {
    return this.session;
  }
  onReceive(handler: PacketHandler): void {
    this.receiver = handler;
  }
  send(packet: Uint8Array): void {
    this.session?.send(packet);
  }

  // lifecycle ----------------------------------------------------------------------------------

  /** Connects (retrying as the profile says); resolves once the first session is up. */
  start(): Promise<ConnectedInfo> {
    const p = new Promise<ConnectedInfo>((resolve, reject) => {
      this.firstWaiter = { resolve, reject };
    });
    this.connectNext();
    return p;
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer) this.clock.clearTimer(this.retryTimer);
    this.retryTimer = undefined;
    const s = this.session;
    if (s) await s.close();
    this.finish('user');
  }

  private connectNext(): void {
    if (this.closing) return;
    const remote = this.remotes[this.remoteIndex % this.remotes.length]!;
    this.attempt++;
    const Session = this.opts.profile.mode === 'tls-client' ? OpenVpnSession : P2pSession;
    const session = new Session({
      profile: this.opts.profile,
      remote,
      credentials: this.opts.credentials,
      passphrase: this.opts.passphrase,
      authToken: this.authToken,
      tlsEkm: this.opts.tlsEkm,
      createTransport: this.opts.createTransport,
      clock: this.opts.clock,
      logger: this.opts.logger,
    });
    this.session = session;
    session.onReceive((p) => this.receiver(p));
    session.on('info', (t) => this.emit('info', t));
    session.on('closed', ({ reason, error }) => this.onSessionClosed(session, reason, error));
    this.emit('connecting', { remote: { host: remote.host, port: remote.port, proto: remote.proto }, attempt: this.attempt });
    session.start().then(
      (info) => {
        if (session !== this.session) return;
        this.everConnected = true;
        this.failuresInRow = 0;
        this.attempt = 0;
        this.sessionsEstablished++;
        this.emit('connected', info);
        this.firstWaiter?.resolve(info);
        this.firstWaiter = undefined;
      },
      () => {
        // Reported through 'closed'.
      },
    );
  }

  private onSessionClosed(session: OpenVpnSession | P2pSession, reason: CloseReason, error: VpnError | undefined): void {
    if (session !== this.session || this.closing) return;
    this.lastError = error;
    const wasUp = session.connectedInfo !== undefined;
    if (session instanceof OpenVpnSession) {
      if (reason === 'auth-failed' && session.usedAuthToken) {
        // The token expired or the server forgot it: forget it and log in with the real credentials again.
        this.log.info('the server refused our auth-token; reconnecting with the username and password');
        this.authToken = undefined;
        this.retry(reason, error, true);
        return;
      }
      this.authToken = session.authTokenState ?? this.authToken;
    }
    if (isFatal(reason, error)) {
      this.finish(reason, error);
      return;
    }
    this.failuresInRow++;
    const p = this.opts.profile;
    const max = p.connectRetryMax;
    if (max !== undefined && this.failuresInRow >= max * this.remotes.length) {
      this.finish(reason, new VpnError(error?.code ?? 'TRANSPORT_ERROR', `giving up after ${this.failuresInRow} attempts (connect-retry-max ${max}): ${error?.message ?? reason}`));
      return;
    }
    this.retry(reason, error, wasUp);
  }

  private retry(reason: CloseReason, error: VpnError | undefined, wasUp: boolean): void {
    // After a working session dropped, try the same server again first; after a failed attempt, move on.
    if (!wasUp) this.remoteIndex++;
    const remote = this.remotes[this.remoteIndex % this.remotes.length]!;
    const { seconds, maxSeconds } = remote.connection.connectRetry;
    const rounds = Math.floor((this.failuresInRow - 1) / this.remotes.length);
    const base = wasUp ? 0 : Math.min(maxSeconds, seconds * 2 ** rounds) * 1000;
    // Jitter of ±25 % so that many clients restarted by one server event do not return in step.
    const delayMs = wasUp ? Math.round(250 + this.random() * 750) : Math.round(base * (0.75 + this.random() * 0.5));
    const ev: ReconnectingEvent = {
      reason,
      error,
      attempt: this.attempt,
      delayMs,
      next: { host: remote.host, port: remote.port, proto: remote.proto },
    };
    this.log.warn(`${error?.message ?? reason}; reconnecting to ${remote.host}:${remote.port}/${remote.proto} in ${(delayMs / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this.emit('reconnecting', ev);
    this.retryTimer = this.clock.setTimer(() => {
      this.retryTimer = undefined;
      this.connectNext();
    }, delayMs);
  }

  private finish(reason: CloseReason, error?: VpnError): void {
    if (this.closedFinal) return;
    this.closedFinal = true;
    if (this.firstWaiter) {
      this.firstWaiter.reject(error ?? new VpnError('TRANSPORT_CLOSED', `closed before the tunnel was up (${reason})`));
      this.firstWaiter = undefined;
    }
    this.emit('closed', { reason, error });
  }

  /** True once a session has been up at least once. */
  get wasConnected(): boolean {
    return this.everConnected;
  }
}
