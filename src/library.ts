/**
 * vpnproxy as a Node library: one call brings the VPN up, and everything else goes through it.
 *
 * ```ts
 * import { connect } from 'vpnproxy';
 *
 * const vpn = await connect({ openvpn: { profile: './office.ovpn', username: 'me', password: 'secret' } });
 * const res = await fetch('http://intranet.example/', { dispatcher: vpn.dispatcher });
 * const sock = await vpn.connect({ host: 'db.internal', port: 5432 });   // a net.Socket-like Duplex
 * console.log(await vpn.lookup('db.internal'), await vpn.ping('10.8.0.1'));
 * http.get('http://intranet.example/', { agent: vpn.agent.http }, ...);
 * await vpn.httpProxy({ port: 8080 });                                   // proxies for other programs
 * vpn.on('reconnecting', (e) => console.warn('VPN down:', e.reason));
 * await vpn.close();
 * ```
 *
 * Nothing here touches the host's network configuration: no tun device, no routes, no root. Only the
 * connections made through this object (its sockets, dispatcher, agents and proxies) use the VPN.
 */
import { EventEmitter } from 'node:events';
import { Agent as HttpAgent, type AgentOptions as HttpAgentOptions } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions, type TLSSocket } from 'node:tls';
import { Agent as UndiciAgent, type Dispatcher } from 'undici';
import { VpnError } from './errors.js';
// The backend table: the only imports from a protocol's directory.
import { prepareIpsec, type IpsecSetup } from './ipsec/backend.js';
import { prepareOpenVpn, type OpenVpnSetup } from './openvpn/setup.js';
import { AccessList } from './proxy/access.js';
import type { ProxyCredentials } from './proxy/auth.js';
import {
  LocalForward,
  RemoteForward,
  normalizeForwardSpec,
  parseForwardSpec,
  parseRemoteForwardSpec,
  type ForwardSpec,
  type LocalForwardOptions,
  type RemoteForwardOptions,
  type RemoteForwardSpec,
} from './proxy/forward.js';
import { asAgentSocket } from './proxy/http-common.js';
import { HttpProxy, type HttpProxyOptions } from './proxy/http-proxy.js';
import { ProxyMetrics } from './proxy/metrics.js';
import { Router, type RoutePolicy } from './proxy/router.js';
import { Socks5Server, type Socks5Options } from './proxy/socks5.js';
import { StatusServer, type StatusServerOptions, type TunnelStatus } from './proxy/status.js';
import type { LookupResult } from './stack/dns.js';
import type { EchoReply } from './stack/ip.js';
import type { TcpSocket } from './stack/tcp/socket.js';
import type { UdpSocket } from './stack/udp.js';
import type { ReconnectingEvent } from './session/reconnect.js';
import type { SessionClosed, SessionInfo, VpnBackend } from './session/types.js';
import type { TransportOptions, Transport } from './transport/types.js';
import { VpnTunnel, type TunnelOptions, type TunnelState } from './tunnel.js';
import { silentLogger, type Logger } from './util/log.js';
import { VERSION } from './version.js';

/** A TCP connection through the tunnel: a `net.Socket`-like Duplex (remoteAddress, setNoDelay, setTimeout …). */
export type VpnSocket = TcpSocket;

/** How to reach the OpenVPN server: the profile (path, text or parsed) and, if it needs them, credentials. */
export type OpenVpnConnectOptions = Pick<OpenVpnSetup, 'profile' | 'username' | 'password' | 'passphrase' | 'upstreamProxy' | 'otp' | 'otpCommand' | 'onAuthPending'>;

/** A web sign-in the server waits for (OpenVPN AUTH_PENDING): the page to open and the server's timeout in s. */
export interface AuthPendingInfo {
  url?: string;
  timeout?: number;
}

/**
 * How to reach the IPsec gateway: a swanctl.conf or .sswan profile (or a parsed one) and which connection,
 * with the EAP password / PKCS#12 passphrase a .sswan profile cannot hold (`password`, `username`); or, with no
 * file, `server` and one way to authenticate: `psk`, `eapUser` + `eapPassword` + `ca`, or `cert` + `key` + `ca`.
 */
export type IpsecConnectOptions = Pick<
  IpsecSetup,
  'config' | 'connection' | 'username' | 'password' | 'server' | 'id' | 'remoteId' | 'psk' | 'eapUser' | 'eapPassword' | 'ca' | 'cert' | 'key' | 'keyPassphrase' | 'proposals' | 'espProposals'
>;

/** A warning about the configuration (a directive that was ignored, and why). */
export interface ConfigWarning {
  file: string;
  line?: number;
  message: string;
}

interface Prepared {
  backend: VpnBackend<unknown>;
  warnings: ConfigWarning[];
  /** Connects the backend's callbacks to the Vpn's events once it exists. */
  attach?: (vpn: Vpn) => void;
}

/**
 * The backend table: one entry per protocol, keyed by its option in VpnConnectOptions. A new protocol adds
 * its options type to VpnConnectOptions and one line here.
 */
const BACKENDS = {
  openvpn: async (o: VpnConnectOptions): Promise<Prepared> => {
    let vpn: Vpn | undefined;
    const user = o.openvpn!.onAuthPending;
    const r = await prepareOpenVpn({
      ...o.openvpn!,
      tlsEkm: o.tlsEkm,
      createTransport: o.createTransport,
      logger: o.logger,
      onAuthPending: (e) => {
        user?.(e);
        vpn?.emit('auth-pending', { ...(e.url !== undefined ? { url: e.url } : {}), ...(e.timeout !== undefined ? { timeout: e.timeout } : {}) });
      },
    });
    return { backend: r.backend as VpnBackend<unknown>, warnings: r.warnings, attach: (v) => (vpn = v) };
  },
  ipsec: async (o: VpnConnectOptions): Promise<Prepared> => {
    const r = await prepareIpsec({ ...o.ipsec!, createTransport: o.createTransport, logger: o.logger });
    return { backend: r.backend as VpnBackend<unknown>, warnings: r.warnings.map((message) => ({ file: o.ipsec!.config?.toString() ?? 'ipsec', message })) };
  },
} satisfies Record<string, (o: VpnConnectOptions) => Promise<Prepared>>;
type Protocol = keyof typeof BACKENDS;

/** TLS settings for HTTPS through `vpn.dispatcher` and `vpn.agent.https`. */
export interface VpnTlsOptions {
  /** Trusted CAs (default: Node's bundled roots). */
  ca?: TlsConnectionOptions['ca'];
  /** Client certificate and key, for servers that ask for one. */
  cert?: TlsConnectionOptions['cert'];
  key?: TlsConnectionOptions['key'];
  /** Verify the server certificate (default true). */
  rejectUnauthorized?: boolean;
}

export interface VpnConnectOptions {
  /** Connect with OpenVPN (exactly one protocol's options must be given). */
  openvpn?: OpenVpnConnectOptions;
  /** Connect with IPsec (IKEv2 or manual SAs; ESP in UDP). */
  ipsec?: IpsecConnectOptions;
  /** DNS servers (IPv4) to use through the tunnel instead of the ones the server pushed. */
  dns?: string[];
  /** Where log lines go (default: nowhere). */
  logger?: Logger;
  /** Give up the first connection after this long (ms, default 60 000; 0 = keep trying). Later drops reconnect on their own. */
  timeoutMs?: number;
  /** Abort the first connection attempt. */
  signal?: AbortSignal;
  /** TLS defaults for `dispatcher` and `agent.https`. */
  tls?: VpnTlsOptions;
  /**
   * Which destinations the proxies and forwards started from this object send through the VPN:
   * 'follow' (default: the VPN's routes and redirect-gateway, the rest directly), 'route-all' or
   * 'direct-unrouted' (as the CLI flags). `vpn.connect`, `dispatcher` and `agent` always use the VPN.
   */
  routing?: RoutePolicy;
  /** Default connect timeout for `connect`, `dispatcher`, `agent` and the proxies (ms, default 10 000). */
  connectTimeoutMs?: number;
  /** Write the tunnel's IP packets to this pcap file (for Wireshark). */
  pcap?: string;
  /** TCP tuning (buffer sizes, congestion control, timeouts). */
  tcp?: TunnelOptions['tcp'];
  /** OpenVPN: offer the TLS keying-material exporter to the server (default true). */
  tlsEkm?: boolean;
  /** Replace the transport (tests). */
  createTransport?: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
}

/** Options of `vpn.connect()`. */
export interface VpnTcpConnectOptions {
  /** A name (resolved through the tunnel's DNS) or an IPv4 literal. */
  host: string;
  port: number;
  /** Give up with CONNECT_TIMEOUT after this long (ms, default: `connectTimeoutMs`). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Listener options shared by the proxies started from the library. */
export interface ListenerOptions {
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Port (0 = any free port; see `.address()` of the result). */
  port?: number;
  /** Clients allowed to connect, as CIDRs (default loopback only). */
  allow?: readonly string[];
  /** Require these credentials (HTTP Proxy-Authorization Basic / SOCKS5 username-password). */
  auth?: ProxyCredentials;
}

export type HttpProxyLibOptions = ListenerOptions & Omit<HttpProxyOptions, 'routing' | 'host' | 'port' | 'auth' | 'access' | 'metrics' | 'logger'>;
export type SocksProxyLibOptions = ListenerOptions & Omit<Socks5Options, 'routing' | 'host' | 'port' | 'auth' | 'access' | 'metrics' | 'logger'>;
export type ForwardLibOptions = Omit<LocalForwardOptions, 'spec' | 'routing' | 'metrics' | 'logger' | 'access'> & { allow?: readonly string[] };
export type RemoteForwardLibOptions = Omit<RemoteForwardOptions, 'spec' | 'listen' | 'metrics' | 'logger'>;
export type StatusServerLibOptions = Omit<StatusServerOptions, 'getStatus' | 'metrics' | 'logger' | 'access'> & { allow?: readonly string[] };

/** Events of a Vpn. */
export interface VpnEvents {
  /** The tunnel is up (again): after a reconnect the address may differ. */
  connected: [SessionInfo];
  /** The tunnel went down and the client is reconnecting; connections through it fail until 'connected'. */
  reconnecting: [ReconnectingEvent];
  /** The VPN is closed for good: by `close()` (reason 'user') or a fatal error (e.g. AUTH_FAILED). */
  closed: [SessionClosed];
  /**
   * The server waits for a web sign-in (OpenVPN AUTH_PENDING with a URL). During connect() the listener is
   * not attached yet: give `openvpn.onAuthPending` for the first connection.
   */
  'auth-pending': [AuthPendingInfo];
}

interface Closable {
  close(): Promise<void> | void;
}

/**
 * A VPN connection. Create with `connect()`. Everything it hands out (sockets, the dispatcher, the agents,
 * proxies) goes through the tunnel; `close()` stops all of it.
 */
export class Vpn extends EventEmitter<VpnEvents> {
  /** The underlying tunnel (reconnecting session, IP stack, TCP): for diagnostics and advanced use. */
  readonly tunnel: VpnTunnel;
  /** Warnings about the configuration (directives that were ignored, and why). */
  readonly warnings: readonly ConfigWarning[];
  /** Counters shared by the proxies and forwards started from this object (and /metrics). */
  readonly metrics = new ProxyMetrics();
  private readonly log: Logger;
  private readonly opts: VpnConnectOptions;
  private readonly router: Router;
  private readonly owned = new Set<Closable>();
  private dispatcherValue: UndiciAgent | undefined;
  private agentValue: { http: HttpAgent; https: HttpsAgent } | undefined;
  private closing: Promise<void> | undefined;

  /** @internal use `connect()` */
  constructor(backend: VpnBackend<unknown>, warnings: readonly ConfigWarning[], opts: VpnConnectOptions) {
    super();
    this.opts = opts;
    this.warnings = warnings;
    this.log = opts.logger ?? silentLogger;
    this.tunnel = new VpnTunnel({ backend, dns: opts.dns, pcap: opts.pcap, logger: opts.logger, tcp: opts.tcp });
    this.tunnel.on('connected', (i) => this.emit('connected', i));
    this.tunnel.on('reconnecting', (e) => this.emit('reconnecting', e));
    this.tunnel.on('closed', (e) => this.emit('closed', e));
    this.router = new Router({ vpn: this.tunnel.vpnSide, policy: opts.routing ?? 'follow', connectTimeoutMs: this.connectTimeout() });
  }

  /** @internal */
  async start(): Promise<void> {
    await this.tunnel.startWithin({ timeoutMs: this.opts.timeoutMs ?? 60_000, signal: this.opts.signal });
  }

  /** 'connecting' | 'up' | 'reconnecting' | 'closed' (and 'idle' before start). */
  get state(): TunnelState {
    return this.tunnel.state;
  }

  /** The current session (protocol, server, address, routes, cipher, protocol details); undefined while down. */
  get info(): SessionInfo | undefined {
    return this.tunnel.info;
  }

  /** Our address inside the VPN (undefined while down). */
  get address(): string | undefined {
    return this.tunnel.info?.link.address;
  }

  /**
   * A TCP connection through the tunnel, resolved once established. Rejects with a VpnError:
   * DNS_NXDOMAIN (and other DNS_* codes), CONN_REFUSED, HOST_UNREACHABLE, CONNECT_TIMEOUT, TRANSPORT_CLOSED
   * (tunnel down or aborted).
   */
  connect(o: VpnTcpConnectOptions): Promise<VpnSocket> {
    return this.tunnel.connect({ ...o, timeoutMs: o.timeoutMs ?? this.connectTimeout() });
  }

  /** IPv4 addresses of a name through the tunnel's DNS (search domains applied; literals returned as they are). */
  lookup(name: string): Promise<string[]> {
    return this.tunnel.lookup(name);
  }

  /** Like lookup, with details: the name that matched after search domains, CNAME target, TTL, server. */
  lookupDetails(name: string): Promise<LookupResult> {
    return this.tunnel.stack.lookup(name);
  }

  /** A UDP socket on our VPN address (dgram-like: `send(data, port, address)`, 'message' events, `close()`). */
  udp(port?: number): UdpSocket {
    return this.tunnel.udp(port);
  }

  /** One ICMP echo through the tunnel: the reply (with its round-trip time), or undefined on timeout. */
  ping(ip: string, opts?: { timeoutMs?: number; payloadSize?: number }): Promise<EchoReply | undefined> {
    return this.tunnel.ping(ip, opts);
  }

  /** Accept TCP connections on our VPN address (what a remote forward uses). */
  listen(port: number, onConnection: (socket: VpnSocket) => void): { port: number; close(): void } {
    return this.tunnel.listen(port, onConnection);
  }

  /** A snapshot for monitoring: state, server, address, cipher, reconnects, bytes and packets. */
  status(): TunnelStatus {
    return this.tunnel.status();
  }

  /**
   * An undici Dispatcher that opens its connections through the tunnel, for Node's global `fetch`
   * (`fetch(url, { dispatcher: vpn.dispatcher })`) and undici's own APIs. HTTPS runs TLS over the
   * tunnel connection with the `tls` defaults. Connections are pooled per origin (keep-alive).
   */
  get dispatcher(): Dispatcher {
    this.assertOpen();
    this.dispatcherValue ??= new UndiciAgent({ connect: (o, cb) => this.undiciConnect(o, cb), connectTimeout: this.connectTimeout() });
    return this.dispatcherValue;
  }

  /**
   * An `http.Agent` and an `https.Agent` whose connections go through the tunnel, for `http.request`,
   * `https.get` and libraries that take an agent (axios, got, node-fetch …). Keep-alive is on.
   */
  get agent(): { http: HttpAgent; https: HttpsAgent } {
    this.assertOpen();
    this.agentValue ??= { http: this.makeHttpAgent(), https: this.makeHttpsAgent() };
    return this.agentValue;
  }

  /** Start an HTTP proxy (CONNECT and absolute-form requests) whose connections go through the VPN. */
  httpProxy(opts: HttpProxyLibOptions = {}): Promise<HttpProxy> {
    const { allow, ...rest } = opts;
    return this.launch(() => new HttpProxy({ ...this.shared(allow), ...rest, port: opts.port ?? 8080, routing: this.router }));
  }

  /** Start a SOCKS5 proxy (CONNECT by address or name, UDP ASSOCIATE) whose connections go through the VPN. */
  socksProxy(opts: SocksProxyLibOptions = {}): Promise<Socks5Server> {
    const { allow, ...rest } = opts;
    return this.launch(() => new Socks5Server({ ...this.shared(allow), ...rest, port: opts.port ?? 1080, routing: this.router }));
  }

  /**
   * A local port forward, as `ssh -L`: `"[BIND:]LPORT:HOST:PORT"` or a ForwardSpec. Each connection to
   * BIND:LPORT on this host is carried to HOST:PORT through the VPN.
   */
  forward(spec: string | ForwardSpec, opts: ForwardLibOptions = {}): Promise<LocalForward> {
    const { allow, ...rest } = opts;
    const parsed = typeof spec === 'string' ? parseForwardSpec(spec) : normalizeForwardSpec(spec);
    // A forward accepts whoever can reach its bind address unless `allow` narrows it.
    return this.launch(() => new LocalForward({ ...this.shared(allow), access: allow ? new AccessList(allow) : undefined, ...rest, spec: parsed, routing: this.router }));
  }

  /**
   * A remote port forward, as `ssh -R`: `"RPORT:HOST:PORT"` or a RemoteForwardSpec. Listens on RPORT of our
   * VPN address; each connection is carried to HOST:PORT dialed from this host.
   */
  remoteForward(spec: string | RemoteForwardSpec, opts: RemoteForwardLibOptions = {}): Promise<RemoteForward> {
    const { access: _none, ...shared } = this.shared(undefined);
    const parsed = typeof spec === 'string' ? parseRemoteForwardSpec(spec) : normalizeForwardSpec(spec);
    return this.launch(
      () => new RemoteForward({ ...shared, ...opts, spec: parsed, listen: async (port, onConnection) => this.tunnel.listen(port, onConnection) }),
      (f) => f.start(),
    );
  }

  /** Start the status endpoint: /healthz, /status (JSON) and /metrics (Prometheus). */
  statusServer(opts: StatusServerLibOptions = {}): Promise<StatusServer> {
    const { allow, ...rest } = opts;
    const { connectTimeoutMs: _unused, ...shared } = this.shared(allow);
    return this.launch(() => new StatusServer({ version: VERSION, ...shared, ...rest, getStatus: () => this.tunnel.status() }));
  }

  /**
   * Stop everything: proxies and forwards started here, the dispatcher and agents (their connections are
   * destroyed), every tunnel socket, then the VPN itself (the server is told we leave). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const owned = [...this.owned];
      this.owned.clear();
      await Promise.all(owned.map((c) => Promise.resolve(c.close()).catch(() => undefined)));
      await this.dispatcherValue?.destroy().catch(() => undefined);
      this.agentValue?.http.destroy();
      this.agentValue?.https.destroy();
      await this.tunnel.close();
    })();
    return this.closing;
  }

  // ---- internals ----

  private connectTimeout(): number {
    return this.opts.connectTimeoutMs ?? 10_000;
  }

  private assertOpen(): void {
    if (this.closing) throw new VpnError('TRANSPORT_CLOSED', 'this VPN connection is closed');
  }

  private own<T extends Closable>(c: T): T {
    this.owned.add(c);
    return c;
  }

  /** What every proxy, forward and status endpoint started from here shares. */
  private shared(allow: readonly string[] | undefined) {
    return { connectTimeoutMs: this.connectTimeout(), access: new AccessList(allow), metrics: this.metrics, logger: this.log };
  }

  /** Makes a listener, starts it (listen() by default) and owns it, so close() stops it. */
  private async launch<T extends Closable & { listen?(): Promise<unknown> }>(make: () => T, start: (c: T) => Promise<unknown> = (c) => c.listen!()): Promise<T> {
    this.assertOpen();
    const c = make();
    await start(c);
    return this.own(c);
  }

  /** Dial through the tunnel, then TLS over it when asked; calls back with a ready socket. */
  private dialMaybeTls(
    host: string,
    port: number,
    tls: TlsConnectionOptions | undefined,
    cb: (err: Error | null, s?: Duplex) => void,
  ): void {
    this.connect({ host, port }).then(
      (sock) => {
        asAgentSocket(sock);
        if (!tls) {
          cb(null, sock);
          return;
        }
        // `host` is what the certificate is checked against (an IP literal against IP SANs); SNI only for names.
        const t: TLSSocket = tlsConnect({ ...tls, host, socket: sock as unknown as Socket });
        const onError = (err: Error) => {
          sock.destroy();
          cb(err);
        };
        t.once('error', onError);
        t.once('secureConnect', () => {
          t.removeListener('error', onError);
          cb(null, t);
        });
      },
      (err: Error) => cb(err),
    );
  }

  private undiciConnect(o: { hostname: string; protocol: string; port: string; servername?: string }, cb: (...args: [null, Socket | TLSSocket] | [Error, null]) => void): void {
    const https = o.protocol === 'https:';
    const port = Number(o.port) || (https ? 443 : 80);
    const host = o.hostname.startsWith('[') ? o.hostname.slice(1, -1) : o.hostname;
    const servername = o.servername ?? (isIP(host) ? undefined : host);
    const tls = https ? { ...this.opts.tls, servername, ALPNProtocols: ['http/1.1'] } : undefined;
    this.dialMaybeTls(host, port, tls, (err, s) => {
      if (err || !s) cb(err ?? new VpnError('INTERNAL', 'no socket'), null);
      else cb(null, s as Socket);
    });
  }

  private makeHttpAgent(): HttpAgent {
    const dial = (host: string, port: number, cb: (err: Error | null, s?: Duplex) => void) => this.dialMaybeTls(host, port, undefined, cb);
    class TunnelHttpAgent extends HttpAgent {
      // http.Agent takes an asynchronous createConnection through its callback.
      override createConnection(options: { host?: string | null; port?: number | string | null }, cb: (err: Error | null, s?: Duplex) => void): Duplex | undefined {
        dial(String(options.host ?? 'localhost'), Number(options.port ?? 80), cb);
        return undefined;
      }
    }
    const opts: HttpAgentOptions = { keepAlive: true };
    return new TunnelHttpAgent(opts);
  }

  private makeHttpsAgent(): HttpsAgent {
    const dial = (host: string, port: number, tls: TlsConnectionOptions, cb: (err: Error | null, s?: Duplex) => void) => this.dialMaybeTls(host, port, tls, cb);
    class TunnelHttpsAgent extends HttpsAgent {
      override createConnection(options: TlsConnectionOptions & { host?: string | null; port?: number | string | null }, cb: (err: Error | null, s?: Duplex) => void): Duplex | undefined {
        const host = String(options.host ?? 'localhost');
        // The agent's own options (our tls defaults) are merged into `options` by http.Agent.createSocket.
        const { host: _h, port: _p, ...tls } = options;
        dial(host, Number(options.port ?? 443), { ...tls, servername: options.servername ?? (isIP(host) ? undefined : host) }, cb);
        return undefined;
      }
    }
    const opts: HttpsAgentOptions = { keepAlive: true, ...this.opts.tls };
    return new TunnelHttpsAgent(opts);
  }
}


/**
 * Connect to a VPN and resolve once the tunnel is up. After that the client reconnects by itself when the
 * connection drops ('reconnecting' / 'connected' events) until `close()` or a fatal error ('closed').
 * Rejects with a VpnError: PROFILE_* (bad profile), AUTH_FAILED, TLS_*, CONNECT_TIMEOUT (not up within
 * `timeoutMs`), TRANSPORT_CLOSED (aborted) …
 */
export async function connect(options: VpnConnectOptions): Promise<Vpn> {
  const chosen = (Object.keys(BACKENDS) as Protocol[]).filter((k) => options?.[k] !== undefined);
  if (chosen.length !== 1) {
    const keys = Object.keys(BACKENDS).map((k) => `{ ${k}: … }`).join(' or ');
    throw new VpnError('USAGE', chosen.length ? `connect() takes one protocol, got ${chosen.join(' and ')}` : `connect() needs ${keys}`);
  }
  if (chosen[0] === 'openvpn' && !options.openvpn?.profile) throw new VpnError('USAGE', 'connect() needs { openvpn: { profile } }');
  if (chosen[0] === 'ipsec' && !options.ipsec?.config && !options.ipsec?.server) throw new VpnError('USAGE', 'connect() needs { ipsec: { config } } or { ipsec: { server, … } }');
  const prepared: Prepared = await BACKENDS[chosen[0]!](options);
  const { backend, warnings } = prepared;
  const log = options.logger ?? silentLogger;
  for (const w of warnings) log.warn(`${w.file}: ${w.message}`);
  const vpn = new Vpn(backend, warnings, options);
  prepared.attach?.(vpn);
  await vpn.start();
  return vpn;
}
