import type { UpstreamProxy } from './upstream-proxy.js';

/**
 * A packet transport toward a VPN server: UDP (one packet per datagram) or TCP with a 16-bit big-endian
 * length prefix per packet (OpenVPN's framing). Packets, not bytes, cross this interface.
 */
export interface TransportEvents {
  /** One whole packet from the server. The buffer may be reused after the handler returns: copy to keep. */
  packet: (packet: Buffer) => void;
  /** A fatal transport error (a VpnError with code TRANSPORT_ERROR, CONN_REFUSED, ...). Followed by 'close'. */
  error: (err: Error) => void;
  /** The transport is closed (by us or the peer); no more packets. */
  close: () => void;
}

export interface Transport {
  readonly kind: 'udp' | 'tcp';
  /** Resolve when ready to send (UDP: socket bound and connected; TCP: connection established). */
  connect(): Promise<void>;
  /**
   * Send one packet. Never throws; failures surface as 'error'. With `owned`, the caller hands the buffer
   * over (it will never touch it again), so the transport need not copy it.
   */
  send(packet: Uint8Array, owned?: boolean): void;
  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this;
  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this;
  /** Close and release every handle; resolves once closed. Idempotent. */
  close(): Promise<void>;
  readonly localAddress?: string;
  readonly localPort?: number;
}

export interface TransportOptions {
  host: string;
  port: number;
  /** Connect timeout in ms (TCP connect, UDP bind). Default 10 000. */
  connectTimeoutMs?: number;
  /**
   * Only this address family (OpenVPN's `proto udp6` / `tcp4` …): a host name resolves to that family's
   * addresses only. Default: whatever the name resolves to first; a literal picks its own family.
   */
  family?: 4 | 6;
  /** Local address to bind (optional). */
  localAddress?: string;
  /** Reach host:port through this proxy (TCP: HTTP CONNECT or SOCKS5 CONNECT; UDP: SOCKS5 UDP ASSOCIATE). */
  upstreamProxy?: UpstreamProxy;
}
