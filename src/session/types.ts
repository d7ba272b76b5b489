/**
 * The protocol-neutral VPN session contract. A protocol (OpenVPN, IPsec) plugs into the product by
 * providing a VpnBackend: it makes one VpnSession per attempt toward a remote, and says which failures
 * no retry can cure. Everything above (the reconnect loop, VpnTunnel, the proxies, status, CLI and the
 * library) speaks only these types.
 */
import type { VpnError } from '../errors.js';
import type { Link, LinkConfig } from '../link/link.js';

/** Where a session goes: the VPN server or gateway. */
export interface RemoteEndpoint {
  host: string;
  port: number;
  proto: 'udp' | 'tcp';
}

/**
 * Why a session (or the whole tunnel) ended. The names are part of the library's public events, so they
 * stay as they were; each protocol maps its own causes onto them:
 * - 'user': close() was called;
 * - 'auth-failed': the server refused our credentials (OpenVPN AUTH_FAILED, IKE AUTHENTICATION_FAILED);
 * - 'tls-error': the TLS handshake of the control channel failed (OpenVPN);
 * - 'handshake-timeout': no session within the protocol's handshake time (hand-window, IKE retransmits);
 * - 'push-timeout': the server never sent the tunnel configuration (OpenVPN PUSH_REPLY, IKE CP reply);
 * - 'ping-restart': the keepalive timed out (OpenVPN ping-restart, IKE DPD);
 * - 'server-restart' / 'server-halt' / 'server-exit': the server told us it restarts, wants us gone for
 *   good, or leaves (OpenVPN RESTART/HALT/EXIT, an IKE DELETE of our SA);
 * - 'transport-error': the socket failed or the connection was reset;
 * - 'protocol-error': the peer broke the protocol or negotiated something we cannot do.
 */
export type CloseReason =
  | 'user'
  | 'auth-failed'
  | 'tls-error'
  | 'handshake-timeout'
  | 'push-timeout'
  | 'ping-restart'
  | 'server-restart'
  | 'server-halt'
  | 'server-exit'
  | 'transport-error'
  | 'protocol-error';

export interface SessionClosed {
  reason: CloseReason;
  error?: VpnError;
}

/** Protocol-specific facts about a session, shown as they are in /status and the CLI banner. */
export type SessionDetails = Readonly<Record<string, string | number | boolean | undefined>>;

/** One metric family a protocol reports (Prometheus text: a counter or gauge with labelled samples). */
export interface SessionMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly samples: readonly { readonly labels?: Readonly<Record<string, string>>; readonly value: number }[];
}

/** What a session is once it is up, in words every protocol has. */
export interface SessionInfo {
  /** 'openvpn', 'ipsec', … (the backend's name). */
  protocol: string;
  server: RemoteEndpoint;
  /** Our address, routes, DNS and MTU inside the tunnel. */
  link: LinkConfig;
  /** The data cipher as the protocol names it ('AES-256-GCM', 'aes128gcm16', …). */
  cipher: string;
  /** A one-line summary of how the session is secured, for the CLI banner ('TLSv1.3', 'IKEv2 PSK', …). */
  security?: string;
  details: SessionDetails;
}

/** Traffic counters every protocol keeps, plus its own drop reasons. */
export interface SessionStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** All packets dropped (bad authentication, replays, unknown keys, …). */
  dropped: number;
  /** The same drops by reason ('replayed', 'bad-icv', 'control', …), for /metrics. */
  drops?: Readonly<Record<string, number>>;
}

/** One attempt toward one remote: a Link once it is up. */
export interface VpnSession extends Link {
  /** Connects; resolves once packets can flow, rejects with a VpnError (also reported by 'closed'). */
  start(): Promise<unknown>;
  /** Leaves politely (tells the server when the protocol can) and releases everything. Idempotent. */
  close(): Promise<void>;
  /** Set once the session is up. */
  readonly sessionInfo: SessionInfo | undefined;
  stats(): SessionStats;
  /** Facts that change while the session runs (sequence numbers, lifetime left), merged into /status. */
  statusDetails?(): SessionDetails;
  /** While the server waits for a sign-in elsewhere (OpenVPN AUTH_PENDING): its URL and timeout, for /status. */
  authPendingStatus?(): { url?: string; timeout?: number; since: number } | undefined;
  /** The protocol's own metric families for /metrics (names `vpnproxy_<protocol part>_…`), read at scrape time. */
  metrics?(): readonly SessionMetric[];
  /** Subscribes the owner (the reconnect loop) to the end of the session and to notable messages. */
  watch(watcher: SessionWatcher): void;
}

export interface SessionWatcher {
  closed(e: SessionClosed): void;
  info?(text: string): void;
}

/** How long to wait between attempts toward a remote. */
export interface RetryDelays {
  /** First delay after a failed attempt, seconds (doubled per round over all remotes). */
  seconds: number;
  /** The cap, seconds. */
  maxSeconds: number;
}

/** Ends a failed attempt's cycle: what the reconnect loop should do next. */
export interface AttemptOutcome<Carry> {
  /** State for the next attempt (e.g. OpenVPN's auth-token). */
  carry: Carry | undefined;
  /** Try again at once on the same remote, whatever the reason (e.g. a refused auth-token). */
  retryAtOnce?: boolean;
}

/**
 * A VPN protocol as the reconnect loop sees it. `Carry` is whatever one session hands to the next.
 */
export interface VpnBackend<Carry = unknown> {
  readonly protocol: string;
  /** The remotes in the order to try them (already shuffled when the configuration says so); at least one. */
  readonly remotes: readonly RemoteEndpoint[];
  /** MTU to report before the first session is up. */
  readonly initialMtu: number;
  /** How many rounds over all remotes to try before giving up (undefined = forever). */
  readonly maxRounds?: number;
  retryDelays(remoteIndex: number): RetryDelays;
  createSession(remoteIndex: number, carry: Carry | undefined): VpnSession;
  /**
   * True when trying again cannot help: the user has to change something. `everUp`: a session of this
   * backend was up before (a server that is restarting may refuse for a moment what it accepted then).
   */
  isFatal(reason: CloseReason, error: VpnError | undefined, everUp?: boolean): boolean;
  /** Called when a session ended (before isFatal): what to carry into the next attempt. */
  afterSession?(session: VpnSession, closed: SessionClosed, carry: Carry | undefined): AttemptOutcome<Carry>;
}
