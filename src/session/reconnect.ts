/**
 * The reconnect loop, for any protocol: a Link that survives. It runs one VpnSession at a time from a
 * VpnBackend and, when a session ends for a reason a retry can cure, starts a new one after an exponential
 * backoff with jitter, moving on to the next remote after a failed attempt (and staying on the same one
 * after a working session dropped). What one session hands to the next (e.g. OpenVPN's auth-token) is the
 * backend's business (afterSession).
 *
 * Its identity does not change across reconnects: consumers keep the same object, and packets flow again
 * once the new session is up. Time and randomness are injectable (tests run on a simulated clock).
 */
import { EventEmitter } from 'node:events';
import { VpnError } from '../errors.js';
import type { Link, LinkConfig, PacketHandler } from '../link/link.js';
import { SystemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { CloseReason, RemoteEndpoint, SessionClosed, SessionInfo, VpnBackend, VpnSession } from './types.js';
import { hostPort } from '../util/host-port.js';

export interface ReconnectingEvent {
  /** Why the previous attempt or session ended. */
  reason: CloseReason;
  error?: VpnError;
  /** 1 for the first retry after a failure, counting up until a session is established again. */
  attempt: number;
  /** How long we wait before the next attempt. */
  delayMs: number;
  /** The remote the next attempt goes to. */
  next: RemoteEndpoint;
}

export interface ReconnectingLinkEvents {
  connecting: [{ remote: RemoteEndpoint; attempt: number }];
  connected: [SessionInfo];
  reconnecting: [ReconnectingEvent];
  info: [string];
  closed: [SessionClosed];
}

export interface ReconnectingLinkOptions {
  clock?: Clock;
  logger?: Logger;
  /** Random source in [0, 1) for the jitter (tests make it deterministic). */
  random?: () => number;
}

export class ReconnectingLink<Carry = unknown> extends EventEmitter<ReconnectingLinkEvents> implements Link {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly remotes: readonly RemoteEndpoint[];
  private remoteIndex = 0;
  private session: VpnSession | undefined;
  private carry: Carry | undefined;
  private receiver: PacketHandler = () => {};
  private attempt = 0;
  private failuresInRow = 0;
  private everConnected = false;
  private closing = false;
  private closedFinal = false;
  private retryTimer: TimerHandle | undefined;
  private firstWaiter: { resolve: (i: SessionInfo) => void; reject: (e: VpnError) => void } | undefined;
  /** Sessions established so far (1 after the first connect, +1 per reconnect). */
  sessionsEstablished = 0;
  /** Why the last attempt or session ended (for messages such as a connect timeout). */
  lastError: VpnError | undefined;

  constructor(
    readonly backend: VpnBackend<Carry>,
    opts: ReconnectingLinkOptions = {},
  ) {
    super();
    this.clock = opts.clock ?? new SystemClock();
    this.log = (opts.logger ?? silentLogger).child('reconnect');
    this.random = opts.random ?? Math.random;
    this.remotes = backend.remotes;
    if (this.remotes.length === 0) throw new VpnError('USAGE', `no ${backend.protocol} server to connect to`);
  }

  // Link ---------------------------------------------------------------------------------------
  get config(): LinkConfig | undefined {
    return this.session?.config;
  }
  get mtu(): number {
    return this.session?.config?.mtu ?? this.session?.mtu ?? this.backend.initialMtu;
  }
  onReceive(handler: PacketHandler): void {
    this.receiver = handler;
  }
  send(packet: Uint8Array): void {
    this.session?.send(packet);
  }

  /** The session of the current attempt (undefined before start and after close). */
  get current(): VpnSession | undefined {
    return this.session;
  }
  get sessionInfo(): SessionInfo | undefined {
    return this.session?.sessionInfo;
  }
  /** True once a session has been up at least once. */
  get wasConnected(): boolean {
    return this.everConnected;
  }

  // lifecycle ----------------------------------------------------------------------------------

  /** Connects (retrying as the backend says); resolves once the first session is up. */
  start(): Promise<SessionInfo> {
    const p = new Promise<SessionInfo>((resolve, reject) => {
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
    const index = this.remoteIndex % this.remotes.length;
    const remote = this.remotes[index]!;
    this.attempt++;
    let session: VpnSession;
    try {
      session = this.backend.createSession(index, this.carry);
    } catch (e) {
      const err = e instanceof VpnError ? e : new VpnError('INTERNAL', (e as Error).message);
      this.lastError = err;
      this.finish('protocol-error', err);
      return;
    }
    this.session = session;
    session.onReceive((p) => this.receiver(p));
    session.watch({ closed: (c) => this.onSessionClosed(session, c), info: (t) => this.emit('info', t) });
    this.emit('connecting', { remote, attempt: this.attempt });
    session.start().then(
      () => {
        if (session !== this.session || this.closing) return;
        const info = session.sessionInfo;
        if (!info) return;
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

  private onSessionClosed(session: VpnSession, closed: SessionClosed): void {
    if (session !== this.session || this.closing) return;
    const { reason, error } = closed;
    this.lastError = error;
    const wasUp = session.sessionInfo !== undefined;
    if (this.backend.afterSession) {
      const outcome = this.backend.afterSession(session, closed, this.carry);
      this.carry = outcome.carry;
      if (outcome.retryAtOnce) {
        this.retry(reason, error, true);
        return;
      }
    }
    if (this.backend.isFatal(reason, error, this.sessionsEstablished > 0)) {
      this.finish(reason, error);
      return;
    }
    this.failuresInRow++;
    const max = this.backend.maxRounds;
    if (max !== undefined && this.failuresInRow >= max * this.remotes.length) {
      this.finish(reason, new VpnError(error?.code ?? 'TRANSPORT_ERROR', `giving up after ${this.failuresInRow} attempts (connect-retry-max ${max}): ${error?.message ?? reason}`));
      return;
    }
    this.retry(reason, error, wasUp);
  }

  /** The delay before the next attempt: quick after a working session dropped, else backoff ±25 %. */
  private delayFor(wasUp: boolean, index: number): number {
    if (wasUp) return Math.round(250 + this.random() * 750);
    const { seconds, maxSeconds } = this.backend.retryDelays(index);
    const rounds = Math.floor((this.failuresInRow - 1) / this.remotes.length);
    const base = Math.min(maxSeconds, seconds * 2 ** rounds) * 1000;
    // Jitter of ±25 % so that many clients restarted by one server event do not return in step.
    return Math.round(base * (0.75 + this.random() * 0.5));
  }

  private retry(reason: CloseReason, error: VpnError | undefined, wasUp: boolean): void {
    // After a working session dropped, try the same server again first; after a failed attempt, move on.
    if (!wasUp) this.remoteIndex++;
    const index = this.remoteIndex % this.remotes.length;
    const remote = this.remotes[index]!;
    const delayMs = this.delayFor(wasUp, index);
    const ev: ReconnectingEvent = { reason, error, attempt: this.attempt, delayMs, next: { ...remote } };
    this.log.warn(`${error?.message ?? reason}; reconnecting to ${hostPort(remote.host, remote.port)}/${remote.proto} in ${(delayMs / 1000).toFixed(1)} s (attempt ${this.attempt})`);
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
}
