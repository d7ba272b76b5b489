/**
 * OpenVpnClient: an OpenVPN connection that survives, in OpenVPN's own vocabulary (its `connected` event
 * and start() give ConnectedInfo). It is the protocol-neutral ReconnectingLink over the OpenVPN backend;
 * the product (VpnTunnel) uses those two directly, this class serves code and tests that speak OpenVPN.
 */
import { EventEmitter } from 'node:events';
import type { Link, LinkConfig, PacketHandler } from '../link/link.js';
import { ReconnectingLink, type ReconnectingEvent, type ReconnectingLinkEvents } from '../session/reconnect.js';
import type { VpnError } from '../errors.js';
import { OpenVpnBackend, type AuthToken, type OpenVpnBackendOptions } from './backend.js';
import type { CloseReason, ConnectedInfo } from './connected-info.js';
import type { OpenVpnSession } from './session.js';
import type { P2pSession } from './p2p-session.js';

export type { ReconnectingEvent } from '../session/reconnect.js';
export type ClientOptions = OpenVpnBackendOptions;

export interface ClientEvents {
  connecting: ReconnectingLinkEvents['connecting'];
  connected: [ConnectedInfo];
  reconnecting: [ReconnectingEvent];
  info: [string];
  closed: [{ reason: CloseReason; error?: VpnError }];
}

export class OpenVpnClient extends EventEmitter<ClientEvents> implements Link {
  readonly link: ReconnectingLink<AuthToken>;

  constructor(opts: ClientOptions) {
    super();
    this.link = new ReconnectingLink(new OpenVpnBackend(opts), { clock: opts.clock, logger: opts.logger, random: opts.random });
    this.link.on('connecting', (e) => this.emit('connecting', e));
    this.link.on('connected', () => this.emit('connected', this.connectedInfo!));
    this.link.on('reconnecting', (e) => this.emit('reconnecting', e));
    this.link.on('info', (t) => this.emit('info', t));
    this.link.on('closed', (e) => this.emit('closed', e));
  }

  get config(): LinkConfig | undefined {
    return this.link.config;
  }
  get mtu(): number {
    return this.link.mtu;
  }
  onReceive(handler: PacketHandler): void {
    this.link.onReceive(handler);
  }
  send(packet: Uint8Array): void {
    this.link.send(packet);
  }
  get current(): OpenVpnSession | P2pSession | undefined {
    return this.link.current as OpenVpnSession | P2pSession | undefined;
  }
  get connectedInfo(): ConnectedInfo | undefined {
    return this.current?.connectedInfo;
  }
  get sessionsEstablished(): number {
    return this.link.sessionsEstablished;
  }
  get lastError(): VpnError | undefined {
    return this.link.lastError;
  }
  get wasConnected(): boolean {
    return this.link.wasConnected;
  }

  /** Connects (retrying as the profile says); resolves once the first session is up. */
  async start(): Promise<ConnectedInfo> {
    await this.link.start();
    return this.connectedInfo!;
  }

  close(): Promise<void> {
    return this.link.close();
  }
}
