/**
 * The skeleton every protocol's session shares: the lifecycle states, the connect waiter, the receiver of
 * IP packets, and one shutdown path (fail → teardown → 'closed'), so a protocol writes only what is its own:
 * run() (get to "up"), goodbye() (tell the peer we leave) and teardown() (release sockets and keys).
 *
 * `Up` is the protocol's own connected information (what start() resolves with); sessionInfo is the
 * neutral view of it.
 */
import { EventEmitter } from 'node:events';
import { VpnError } from '../errors.js';
import type { LinkConfig, PacketHandler } from '../link/link.js';
import type { Logger } from '../util/log.js';
import type { CloseReason, SessionInfo, SessionStats, SessionWatcher, VpnSession } from './types.js';

export type SessionState = 'idle' | 'connecting' | 'connected' | 'closing' | 'closed';

export interface SessionBaseEvents<Up> {
  connected: [Up];
  info: [string];
  closed: [{ reason: CloseReason; error?: VpnError }];
}

// The subclasses add events of their own; the base emits only its three, through this untyped view.
type AnyEmitter = { emit(event: string, ...args: unknown[]): boolean; on(event: string, fn: (...args: never[]) => void): unknown };

export abstract class SessionBase<Up, Events extends Record<keyof Events, unknown[]> & SessionBaseEvents<Up> = SessionBaseEvents<Up>>
  extends EventEmitter<Events>
  implements VpnSession
{
  protected state: SessionState = 'idle';
  protected receiver: PacketHandler = () => {};
  protected abstract readonly log: Logger;
  private upState: { info: Up; link: LinkConfig; neutral: SessionInfo } | undefined;
  private connectWaiter: { resolve: (i: Up) => void; reject: (e: VpnError) => void } | undefined;
  private closeWaiters: (() => void)[] = [];

  /** Gets the session up: calls markUp() when packets can flow, fail() when it cannot. */
  protected abstract run(): Promise<void> | void;
  /** Tells the peer we leave (best effort, bounded); called by close() on a session that was up. */
  protected abstract goodbye(): Promise<void>;
  /** Releases timers, keys and the transport. */
  protected abstract teardown(): Promise<void>;
  abstract send(packet: Uint8Array): void;
  abstract stats(): SessionStats;
  /** MTU before the session is up (the configured one). */
  protected abstract get configuredMtu(): number;

  get config(): LinkConfig | undefined {
    return this.upState?.link;
  }
  get mtu(): number {
    return this.upState?.link.mtu ?? this.configuredMtu;
  }
  /** The protocol's own connected information, once up. */
  get connectedInfo(): Up | undefined {
    return this.upState?.info;
  }
  get sessionInfo(): SessionInfo | undefined {
    return this.upState?.neutral;
  }
  onReceive(handler: PacketHandler): void {
    this.receiver = handler;
  }
  watch(w: SessionWatcher): void {
    const self = this as unknown as AnyEmitter;
    self.on('closed', (e: { reason: CloseReason; error?: VpnError }) => w.closed(e));
    if (w.info) self.on('info', w.info);
  }

  /** Connects; resolves with the protocol's connected information once data can flow, rejects with a VpnError. */
  start(): Promise<Up> {
    if (this.state !== 'idle') return Promise.reject(new VpnError('INTERNAL', 'session already started'));
    this.state = 'connecting';
    const p = new Promise<Up>((resolve, reject) => {
      this.connectWaiter = { resolve, reject };
    });
    void this.run();
    return p;
  }

  /** Leaves (telling the peer when the protocol can) and releases everything. Idempotent. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'closing') return new Promise((r) => this.closeWaiters.push(r));
    const wasUp = this.state === 'connected';
    this.state = 'closing';
    if (wasUp) {
      try {
        await this.goodbye();
      } catch (e) {
        this.log.debug(`exit notification not sent: ${(e as Error).message}`);
      }
    }
    await this.terminate('user');
  }

  /** The session is up: data can flow. */
  protected markUp(info: Up, link: LinkConfig, neutral: SessionInfo): void {
    this.upState = { info, link, neutral };
    this.state = 'connected';
    this.connectWaiter?.resolve(info);
    this.connectWaiter = undefined;
    (this as unknown as AnyEmitter).emit('connected', info);
  }

  /** The session cannot go on: tear it down and report why (once). */
  protected fail(reason: CloseReason, err: VpnError): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    this.log.debug(`session ends: ${err.message}`, { code: err.code });
    void this.terminate(reason, err);
  }

  private async terminate(reason: CloseReason, err?: VpnError): Promise<void> {
    await this.teardown().catch(() => undefined);
    this.state = 'closed';
    if (this.connectWaiter) {
      this.connectWaiter.reject(err ?? new VpnError('TRANSPORT_CLOSED', `session closed before it was up (${reason})`));
      this.connectWaiter = undefined;
    }
    (this as unknown as AnyEmitter).emit('closed', { reason, error: err });
    for (const w of this.closeWaiters.splice(0)) w();
  }
}
