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
import type { ReconnectingEvent } from './openvpn/client.js';
import { loadProfile, parseProfile } from './openvpn/profile.js';
import type { OpenVpnProfile, ParsedProfile, ProfileWarning } from './openvpn/profile-types.js';
import type { CloseReason, ConnectedInfo } from './openvpn/session.js';
import { AccessList } from './proxy/access.js';
import type { ProxyCredentials } from './proxy/auth.js';
import {
  LocalForward,
  RemoteForward,
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
import type { TransportOptions, Transport } from './transport/types.js';
import { VpnTunnel, type TunnelOptions, type TunnelState } from './tunnel.js';
import { silentLogger, type Logger } from './util/log.js';
import { VERSION } from './version.js';

/** A TCP connection through the tunnel: a `net.Socket`-like Duplex (remoteAddress, setNoDelay, setTimeout …). */
export type VpnSocket = TcpSocket;

/** How to reach the OpenVPN server. */
export interface OpenVpnConnectOptions {
  /**
   * The profile: a path to an .ovpn file (files it references are read relative to it), the text of a
   * profile (any string containing a newline; references relative to the current directory), or an
   * already parsed profile (`parseProfile(text).profile` or the whole ParsedProfile).
   */
  profile: string | OpenVpnProfile | ParsedProfile;
  /** For `auth-user-pass` profiles (default: the credentials inlined in the profile, if any). */
  username?: string;
  password?: string;
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
}

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
  openvpn: OpenVpnConnectOptions;
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
  /** Offer the TLS keying-material exporter to the server (default true). */
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
  connected: [ConnectedInfo];
  /** The tunnel went down and the client is reconnecting; connections through it fail until 'connected'. */
  reconnecting: [ReconnectingEvent];
  /** The VPN is closed for good: by `close()` (reason 'user') or a fatal error (e.g. AUTH_FAILED). */
  closed: [{ reason: CloseReason; error?: VpnError }];
}

interface Closable {
  close(): Promise<void> | void;
}

/**
 * A VPN connection. Create with `connect()`. Everything it hands out (sockets, the dispatcher, the agents,
 * proxies) goes through the tunnel; `close()` stops all of it.
 */
export class Vpn extends EventEmitter<VpnEvents> {
  /** The underlying tunnel (OpenVPN client, IP stack, TCP): for diagnostics and advanced use. */
  readonly tunnel: VpnTunnel;
  /** Warnings about the profile (directives that were ignored, and why). */
  readonly warnings: readonly ProfileWarning[];
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
  constructor(profile: OpenVpnProfile, warnings: readonly ProfileWarning[], opts: VpnConnectOptions) {
    super();
    this.opts = opts;
    this.warnings = warnings;
    this.log = opts.logger ?? silentLogger;
    const o = opts.openvpn;
    const aup = profile.authUserPass;
    const username = o.username ?? aup?.username;
    const password = o.password ?? aup?.password;
    this.tunnel = new VpnTunnel({
      profile,
      credentials: username !== undefined ? { username, password: password ?? '' } : undefined,
      passphrase: o.passphrase,
      tlsEkm: opts.tlsEkm,
      dns: opts.dns,
      pcap: opts.pcap,
      logger: opts.logger,
      tcp: opts.tcp,
      createTransport: opts.createTransport,
    });
    this.tunnel.on('connected', (i) => this.emit('connected', i));
    this.tunnel.on('reconnecting', (e) => this.emit('reconnecting', e));
    this.tunnel.on('closed', (e) => this.emit('closed', e));
    this.router = new Router({ vpn: this.tunnel.vpnSide, policy: opts.routing ?? 'follow', connectTimeoutMs: this.connectTimeout() });
  }

  /** @internal */
  async start(): Promise<void> {
    const timeoutMs = this.opts.timeoutMs ?? 60_000;
    const signal = this.opts.signal;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      if (timeoutMs > 0) {
        timer = setTimeout(() => reject(new VpnError('CONNECT_TIMEOUT', `the VPN did not come up within ${timeoutMs} ms`)), timeoutMs);
      }
      onAbort = () => reject(new VpnError('TRANSPORT_CLOSED', 'connecting the VPN was aborted'));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([this.tunnel.start(), stop]);
    } catch (e) {
      await this.tunnel.close().catch(() => undefined);
      throw e;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** 'connecting' | 'up' | 'reconnecting' | 'closed' (and 'idle' before start). */
  get state(): TunnelState {
    return this.tunnel.state;
  }

  /** What the server pushed for the current session (address, cipher …); undefined while down. */
  get info(): ConnectedInfo | undefined {
    return this.tunnel.info;
  }

  /** Our address inside the VPN (undefined while down). */
  get address(): string | undefined {
    return this.tunnel.info?.localIp;
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
  async httpProxy(opts: HttpProxyLibOptions = {}): Promise<HttpProxy> {
    this.assertOpen();
    const { allow, ...rest } = opts;
    const p = new HttpProxy({
      connectTimeoutMs: this.connectTimeout(),
      ...rest,
      port: opts.port ?? 8080,
      routing: this.router,
      access: new AccessList(allow),
      metrics: this.metrics,
      logger: this.log,
    });
    await p.listen();
    return this.own(p);
  }

  /** Start a SOCKS5 proxy (CONNECT by address or name, UDP ASSOCIATE) whose connections go through the VPN. */
  async socksProxy(opts: SocksProxyLibOptions = {}): Promise<Socks5Server> {
    this.assertOpen();
    const { allow, ...rest } = opts;
    const p = new Socks5Server({
      connectTimeoutMs: this.connectTimeout(),
      ...rest,
      port: opts.port ?? 1080,
      routing: this.router,
      access: new AccessList(allow),
      metrics: this.metrics,
      logger: this.log,
    });
    await p.listen();
    return this.own(p);
  }

  /**
   * A local port forward, as `ssh -L`: `"[BIND:]LPORT:HOST:PORT"` or a ForwardSpec. Each connection to
   * BIND:LPORT on this host is carried to HOST:PORT through the VPN.
   */
  async forward(spec: string | ForwardSpec, opts: ForwardLibOptions = {}): Promise<LocalForward> {
    this.assertOpen();
    const { allow, ...rest } = opts;
    const f = new LocalForward({
      connectTimeoutMs: this.connectTimeout(),
      ...rest,
      spec: typeof spec === 'string' ? parseForwardSpec(spec) : spec,
      routing: this.router,
      access: allow ? new AccessList(allow) : undefined,
      metrics: this.metrics,
      logger: this.log,
    });
    await f.listen();
    return this.own(f);
  }

  /**
   * A remote port forward, as `ssh -R`: `"RPORT:HOST:PORT"` or a RemoteForwardSpec. Listens on RPORT of our
   * VPN address; each connection is carried to HOST:PORT dialed from this host.
   */
  async remoteForward(spec: string | RemoteForwardSpec, opts: RemoteForwardLibOptions = {}): Promise<RemoteForward> {
    this.assertOpen();
    const f = new RemoteForward({
      connectTimeoutMs: this.connectTimeout(),
      ...opts,
      spec: typeof spec === 'string' ? parseRemoteForwardSpec(spec) : spec,
      listen: async (port, onConnection) => this.tunnel.listen(port, onConnection),
      metrics: this.metrics,
      logger: this.log,
    });
    await f.start();
    return this.own(f);
  }

  /** Start the status endpoint: /healthz, /status (JSON) and /metrics (Prometheus). */
  async statusServer(opts: StatusServerLibOptions = {}): Promise<StatusServer> {
    this.assertOpen();
    const { allow, ...rest } = opts;
    const s = new StatusServer({
      version: VERSION,
      ...rest,
      getStatus: () => this.tunnel.status(),
      metrics: this.metrics,
      access: new AccessList(allow),
      logger: this.log,
    });
    await s.listen();
    return this.own(s);
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

/** Load the profile given in any of its accepted forms. */
async function resolveProfile(p: OpenVpnConnectOptions['profile']): Promise<ParsedProfile> {
  if (typeof p === 'string') {
    if (p.includes('\n')) {
      const { readFileSync } = await import('node:fs');
      return parseProfile(p, { readFile: (abs) => readFileSync(abs, 'utf8'), readBinaryFile: (abs) => new Uint8Array(readFileSync(abs)) });
    }
    return loadProfile(p);
  }
  if ('profile' in p && 'warnings' in p) return p;
  return { profile: p, warnings: [] };
}

/**
 * Connect to a VPN and resolve once the tunnel is up. After that the client reconnects by itself when the
 * connection drops ('reconnecting' / 'connected' events) until `close()` or a fatal error ('closed').
 * Rejects with a VpnError: PROFILE_* (bad profile), AUTH_FAILED, TLS_*, CONNECT_TIMEOUT (not up within
 * `timeoutMs`), TRANSPORT_CLOSED (aborted) …
 */
export async function connect(options: VpnConnectOptions): Promise<Vpn> {
  if (!options?.openvpn?.profile) throw new VpnError('USAGE', 'connect() needs { openvpn: { profile } }');
  const { profile, warnings } = await resolveProfile(options.openvpn.profile);
  const log = options.logger ?? silentLogger;
  for (const w of warnings) log.warn(`profile ${w.file}: ${w.message}`);
  const vpn = new Vpn(profile, warnings, options);
  await vpn.start();
  return vpn;
}
