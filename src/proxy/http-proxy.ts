/**
 * HTTP proxy front-end: CONNECT tunnels, absolute-form requests for every method (bodies streamed both ways
 * with backpressure, chunked or fixed-length), Upgrade pass-through, keep-alive to the client and pooled
 * keep-alive connections upstream (one http.Agent whose sockets come from the Routing), hop-by-hop headers
 * removed per RFC 9110 §7.6.1, responses (redirects included) passed through untouched.
 *
 * Node's http module does the parsing; this file never parses HTTP itself. --allow is applied on
 * 'connection', before any request from a refused client is handled.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../util/log.js';
import { AccessList } from './access.js';
import { checkProxyAuthorization, type ProxyCredentials } from './auth.js';
import type { DialedSocket } from './dialer.js';
import {
  asAgentSocket,
  endToEndHeaders,
  failureResponse,
  isConnectionReset,
  oneLine,
  parseAuthority,
  writeRawResponse,
} from './http-common.js';
import { ProxyMetrics } from './metrics.js';
import { errorReason, hostPort, logConnection, relay, type ConnectionLogFields } from './relay.js';
import type { RouteName, Routing } from './router.js';
import { ListeningServer } from './listen.js';

export interface HttpProxyOptions {
  /** Where connections go (a Router, or fixedRoute(dialer)). */
  routing: Routing;
  /** Listen address (default 127.0.0.1) and port (default 8080; 0 = ephemeral). */
  host?: string;
  port?: number;
  /** Require Proxy-Authorization: Basic with these credentials (407 otherwise). */
  auth?: ProxyCredentials;
  /** Clients allowed to connect (default loopback only); others get 403 and a close. */
  access?: AccessList;
  logger?: Logger;
  metrics?: ProxyMetrics;
  /** Destination connect timeout, answered 504 (ms, default 10 000). */
  connectTimeoutMs?: number;
  /** While the tunnel is down, wait up to this long for it before answering 503 (ms, default 0). */
  readyTimeoutMs?: number;
  /** Time allowed for a client to send complete request headers, answered 408 (ms, default 20 000). */
  headersTimeoutMs?: number;
  /** Idle keep-alive time of client connections (ms, default 5 000). */
  keepAliveTimeoutMs?: number;
  /** Largest request header block, answered 431 (bytes, default 16 KiB). */
  maxHeaderSize?: number;
  /** Reuse upstream connections per host:port (default true). */
  upstreamKeepAlive?: boolean;
  /** Close CONNECT / Upgrade tunnels idle this long (ms, default 0 = never). */
  tunnelIdleTimeoutMs?: number;
}

/** Methods a proxy may send again after a failure before the response (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface DeniedEvent {
  client: string;
  reason: 'allow' | 'auth';
}

/**
 * Events:
 *  - 'proxied' (ConnectionLogFields): a CONNECT tunnel, Upgrade tunnel or absolute-form request finished
 *    (also logged at info);
 *  - 'denied' (DeniedEvent): a client refused by --allow (403) or proxy authentication (407);
 *  - 'listening' (AddressInfo).
 */
export class HttpProxy extends ListeningServer {
  private readonly opts: HttpProxyOptions;
  private readonly log: Logger;
  readonly metrics: ProxyMetrics;
  private readonly access: AccessList;
  private readonly refused = new WeakSet<object>();
  private readonly http: HttpServer;
  private readonly agent: Agent;
  /** For the one retry of a request whose pooled connection was reset: never a pooled socket. */
  private readonly freshAgent: Agent;
  private readonly routeOf = new WeakMap<object, RouteName>();

  constructor(opts: HttpProxyOptions) {
    super();
    this.opts = opts;
    this.log = (opts.logger ?? silentLogger).child('http-proxy');
    this.metrics = opts.metrics ?? new ProxyMetrics();
    this.access = opts.access ?? new AccessList();
    const headersTimeout = opts.headersTimeoutMs ?? 20_000;
    this.http = createServer({
      maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024,
      headersTimeout,
      requestTimeout: 0, // large uploads may take long; slow headers are caught by headersTimeout
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 5_000,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
    });
    this.http.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.http.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onConnect(req, socket, head));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));

    const self = this;
    class RoutedAgent extends Agent {
      // http.Agent accepts an asynchronous createConnection through its callback.
      override createConnection(
        options: { host?: string | null; port?: number | string | null },
        cb: (err: Error | null, s?: Duplex) => void,
      ): Duplex | undefined {
        const host = String(options.host ?? '');
        const port = Number(options.port ?? 80);
        self.opts.routing
          .dial(host, port, { timeoutMs: self.opts.connectTimeoutMs ?? 10_000 })
          .then(({ socket, route }) => {
            self.routeOf.set(socket, route);
            self.sockets.add(socket);
            socket.once('close', () => self.sockets.delete(socket));
            cb(null, asAgentSocket(socket));
          }, (err: Error) => cb(err));
        return undefined;
      }
    }
    const keepAlive = opts.upstreamKeepAlive ?? true;
    this.agent = new RoutedAgent({ keepAlive, maxFreeSockets: 16, scheduling: 'lifo', timeout: 30_000 });
    this.freshAgent = new RoutedAgent({ keepAlive: false, timeout: 30_000 });

    // The HTTP server listens itself (so that its header-timeout tracking runs); --allow is applied on
    // 'connection', after Node attached its parser: a refused socket gets a raw 403 and is marked so that
    // nothing it sends is ever handled.
    this.http.on('connection', (socket: Socket) => this.onSocket(socket));
    this.http.on('error', (err: Error) => this.log.error('listener error', { error: err.message }));
  }

  protected listenTarget(): { server: HttpServer; port: number; host: string } {
    return { server: this.http, port: this.opts.port ?? 8080, host: this.opts.host ?? '127.0.0.1' };
  }

  /** On close, the upstream connections and keep-alive clients go too. */
  protected override closing(): void {
    this.agent.destroy();
    this.freshAgent.destroy();
    this.http.closeAllConnections();
  }

  private onSocket(socket: Socket): void {
    const client = hostPort(socket.remoteAddress, socket.remotePort);
    if (!this.access.allows(socket.remoteAddress)) {
      this.metrics.denied('http', 'allow');
      this.emit('denied', { client, reason: 'allow' } satisfies DeniedEvent);
      this.log.info('client refused by --allow', { client });
      this.refused.add(socket);
      socket.on('error', () => {});
      writeRawResponse(socket, 403, `client ${socket.remoteAddress} is not allowed to use this proxy (--allow)`);
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** True (and the socket destroyed) when the socket belongs to a client refused by --allow. */
  private isRefused(socket: Duplex): boolean {
    if (!this.refused.has(socket)) return false;
    socket.destroy();
    return true;
  }

  private clientOf(req: IncomingMessage): string {
    return hostPort(req.socket.remoteAddress, req.socket.remotePort);
  }

  private authorized(req: IncomingMessage): boolean {
    if (checkProxyAuthorization(this.opts.auth, req.headers['proxy-authorization'])) return true;
    this.metrics.denied('http', 'auth');
    this.emit('denied', { client: this.clientOf(req), reason: 'auth' } satisfies DeniedEvent);
    return false;
  }

  private async ready(signal?: AbortSignal): Promise<boolean> {
    const r = this.opts.routing;
    return r.isUp() || r.waitUp(this.opts.readyTimeoutMs ?? 0, signal);
  }

  private done(f: ConnectionLogFields): void {
    logConnection(this.log, f);
    this.emit('proxied', f);
  }

  // ---- absolute-form requests ------------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.isRefused(req.socket)) return;
    try {
      void this.handleRequest(req, res).catch((err: Error) => this.internalError(res, err));
    } catch (err) {
      this.internalError(res, err as Error);
    }
  }

  private internalError(res: ServerResponse, err: Error): void {
    this.log.warn('request handling failed', { error: oneLine(err.message) });
    if (!res.headersSent) this.reply(res, 502, `proxy error: ${oneLine(err.message)}`, true);
    else res.destroy();
  }

  /** An error answer from the proxy itself; closes the connection when the request body was not read. */
  private reply(res: ServerResponse, status: number, reason: string, close: boolean, extra: OutgoingHttpHeaders = {}): void {
    if (res.headersSent || res.destroyed) return;
    const body = oneLine(reason) + '\n';
    const headers: OutgoingHttpHeaders = {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      ...extra,
    };
    if (close) headers['Connection'] = 'close';
    res.writeHead(status, headers);
    res.end(body);
  }

  private async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = this.clientOf(req);
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (!this.authorized(req)) {
      this.reply(res, 407, 'proxy authentication required', hasBody, {
        'Proxy-Authenticate': 'Basic realm="vpnproxy", charset="UTF-8"',
      });
      return;
    }
    const url = req.url ?? '';
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
      this.metrics.error('http', 'bad_request');
      this.reply(res, 400, 'malformed request: not a proxy request (expected absolute-form http://host/path)', hasBody);
      return;
    }
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      this.metrics.error('http', 'bad_request');
      this.reply(res, 400, 'malformed request: invalid URL', hasBody);
      return;
    }
    if (target.protocol !== 'http:') {
      this.metrics.error('http', 'bad_request');
      this.reply(res, 400, `malformed request: unsupported scheme ${target.protocol} (use CONNECT for https)`, hasBody);
      return;
    }
    if (target.username || target.password) {
      this.metrics.error('http', 'bad_request');
      this.reply(res, 400, 'malformed request: credentials in URL are not forwarded', hasBody);
      return;
    }
    const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
    const port = target.port ? Number(target.port) : 80;
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    if (!(await this.ready(abort.signal))) {
      this.metrics.error('http', 'not_up');
      this.reply(res, 503, 'VPN tunnel is not up', hasBody);
      return;
    }

    const headers = endToEndHeaders(req.rawHeaders, ['host', 'expect']);
    headers['Host'] = target.host;
    if (req.headers['transfer-encoding'] !== undefined) headers['Transfer-Encoding'] = 'chunked';

    const started = performance.now();
    const stats = { up: 0, down: 0, route: 'none' as string, status: 0, error: undefined as string | undefined };
    this.metrics.opened('http');
    req.on('data', (c: Uint8Array) => (stats.up += c.length));
    res.once('close', () => {
      const f: ConnectionLogFields = {
        proxy: 'http',
        client,
        dest: `${host}:${port}`,
        route: stats.route,
        method: req.method,
        status: stats.status || (res.headersSent ? res.statusCode : 0),
        up: stats.up,
        down: stats.down,
        durationMs: Math.round(performance.now() - started),
        error: stats.error ?? (res.writableFinished ? undefined : 'aborted'),
      };
      this.metrics.closed('http', stats.route, stats.up, stats.down);
      this.done(f);
    });

    const send = (attempt: number): void => {
      let upReq: ClientRequest;
      try {
        upReq = httpRequest({
          host,
          port,
          method: req.method,
          path: target.pathname + target.search,
          headers,
          agent: attempt === 0 ? this.agent : this.freshAgent,
        });
      } catch (err) {
        stats.error = errorReason(err);
        this.metrics.error('http', 'bad_request');
        this.reply(res, 400, `malformed request: ${oneLine((err as Error).message)}`, hasBody);
        return;
      }
      let responded = false;
      // 'socket' comes only once a connection exists: an error before it is a dial failure.
      let connected = false;
      upReq.on('socket', (s: Duplex) => {
        connected = true;
        const r = this.routeOf.get(s);
        if (r) stats.route = r;
      });
      upReq.on('response', (upRes: IncomingMessage) => {
        responded = true;
        stats.status = upRes.statusCode ?? 0;
        const outHeaders = endToEndHeaders(upRes.rawHeaders);
        try {
          res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, outHeaders);
        } catch (err) {
          stats.error = 'bad_response';
          upRes.destroy();
          this.reply(res, 502, `bad response from upstream: ${oneLine((err as Error).message)}`, true);
          return;
        }
        upRes.on('data', (c: Uint8Array) => (stats.down += c.length));
        upRes.pipe(res);
        upRes.once('aborted', () => res.destroy());
        upRes.once('error', () => res.destroy());
        upRes.once('close', () => {
          // Truncated upstream body: the client must see an incomplete message, not a short complete one.
          if (!upRes.complete) res.destroy();
        });
      });
      upReq.on('error', (err: Error) => {
        if (responded) {
          res.destroy();
          return;
        }
        const code = (err as NodeJS.ErrnoException).code;
        const reset = connected && isConnectionReset(err);
        // A kept-alive connection the server closed or reset while we reused it, before any response byte: an
        // idempotent request whose body we did not have to send is sent again, once, on a fresh connection
        // (RFC 9110 §9.2.2). The tunnel's stack reports a RST as TRANSPORT_CLOSED with an ECONNRESET cause.
        if (attempt === 0 && reset && upReq.reusedSocket && !hasBody && IDEMPOTENT.has(req.method ?? '')) {
          send(1);
          return;
        }
        stats.error = reset ? 'ECONNRESET' : errorReason(err);
        const { status, reason } = code?.startsWith('HPE_')
          ? { status: 502, reason: `bad response from upstream ${host}:${port}: ${code}` }
          : connected
            ? this.upstreamFailure(err, host, port, reset, upReq.reusedSocket)
            : failureResponse(err, host, port);
        this.metrics.error('http', stats.error);
        this.reply(res, status, reason, hasBody);
      });
      res.once('close', () => {
        if (!res.writableFinished) upReq.destroy();
      });
      if (hasBody && attempt === 0) req.pipe(upReq);
      else upReq.end();
    };
    send(0);
  }

  /**
   * An upstream connection that existed failed before its response. Only a tunnel that is really down is 503;
   * otherwise the upstream did it (502), and a reset says so.
   */
  private upstreamFailure(err: unknown, host: string, port: number, reset: boolean, reused: boolean): { status: number; reason: string } {
    if (!this.opts.routing.isUp()) return { status: 503, reason: 'VPN tunnel is not up' };
    const where = hostPort(host, port);
    if (reset) {
      const why = reused ? ' (a kept-alive connection; not retried: the request is not idempotent or had a body)' : '';
      return { status: 502, reason: `upstream ${where} reset the connection before responding${why}` };
    }
    return { status: 502, reason: `upstream ${where} failed before responding: ${oneLine((err as Error).message ?? String(err))}` };
  }

  // ---- CONNECT -----------------------------------------------------------------------------------------------

  private onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.isRefused(socket)) return;
    socket.pause(); // hold early client bytes until the tunnel is up
    socket.on('error', () => {});
    void this.handleConnect(req, socket, head).catch((err: Error) => {
      this.log.warn('CONNECT handling failed', { error: oneLine(err.message) });
      writeRawResponse(socket, 502, `proxy error: ${err.message}`);
    });
  }

  private async handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const client = this.clientOf(req);
    if (!this.authorized(req)) {
      writeRawResponse(socket, 407, 'proxy authentication required', {
        'Proxy-Authenticate': 'Basic realm="vpnproxy", charset="UTF-8"',
      });
      return;
    }
    const target = parseAuthority(req.url ?? '');
    if (!target) {
      this.metrics.error('http', 'bad_request');
      writeRawResponse(socket, 400, `malformed request: CONNECT target must be host:port, got ${JSON.stringify(req.url)}`);
      return;
    }
    await this.tunnel(client, socket, target.host, target.port, head, null);
  }

  /** Dial host:port and relay; `preamble` is written upstream first (Upgrade requests), else 200 goes to the client. */
  private async tunnel(
    client: string,
    socket: Duplex,
    host: string,
    port: number,
    head: Buffer,
    preamble: string | null,
  ): Promise<void> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    socket.once('close', onClose);
    if (!(await this.ready(abort.signal))) {
      this.metrics.error('http', 'not_up');
      writeRawResponse(socket, 503, 'VPN tunnel is not up');
      return;
    }
    let dialed: { socket: DialedSocket; route: RouteName };
    try {
      dialed = await this.opts.routing.dial(host, port, {
        timeoutMs: this.opts.connectTimeoutMs ?? 10_000,
        signal: abort.signal,
      });
    } catch (err) {
      const { status, reason } = failureResponse(err, host, port);
      this.metrics.error('http', errorReason(err));
      this.log.info(`connect to ${host}:${port} failed`, { client, status, reason });
      writeRawResponse(socket, status, reason);
      return;
    } finally {
      socket.removeListener('close', onClose);
    }
    const upstream = dialed.socket;
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    upstream.setNoDelay?.(true);
    this.sockets.add(upstream);
    this.metrics.opened('http');
    if (preamble === null) socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    else upstream.write(preamble);
    if (head.length > 0) upstream.write(head);
    relay(
      socket,
      upstream,
      (r) => {
        this.sockets.delete(upstream);
        const up = r.up + head.length;
        this.metrics.closed('http', dialed.route, up, r.down);
        this.done({
          proxy: 'http',
          client,
          dest: `${host}:${port}`,
          route: dialed.route,
          method: preamble === null ? 'CONNECT' : 'UPGRADE',
          up,
          down: r.down,
          durationMs: r.durationMs,
          error: r.error,
        });
      },
      { idleTimeoutMs: this.opts.tunnelIdleTimeoutMs ?? 0 },
    );
  }

  // ---- Upgrade (e.g. WebSocket over plain HTTP through the proxy) ---------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.isRefused(socket)) return;
    socket.pause();
    socket.on('error', () => {});
    void this.handleUpgrade(req, socket, head).catch((err: Error) => {
      writeRawResponse(socket, 502, `proxy error: ${err.message}`);
    });
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const client = this.clientOf(req);
    if (!this.authorized(req)) {
      writeRawResponse(socket, 407, 'proxy authentication required', {
        'Proxy-Authenticate': 'Basic realm="vpnproxy", charset="UTF-8"',
      });
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      writeRawResponse(socket, 400, 'malformed request: not a proxy request (expected absolute-form http://host/path)');
      return;
    }
    if (target.protocol !== 'http:') {
      writeRawResponse(socket, 400, `malformed request: unsupported target ${target.protocol}//${target.host}`);
      return;
    }
    const upgrade = req.headers['upgrade'];
    const headers = endToEndHeaders(req.rawHeaders, ['host']);
    let preamble = `${req.method} ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      for (const one of Array.isArray(v) ? v : [v]) preamble += `${k}: ${String(one)}\r\n`;
    }
    preamble += `Connection: Upgrade\r\nUpgrade: ${upgrade ?? ''}\r\n\r\n`;
    const upHost = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
    await this.tunnel(client, socket, upHost, target.port ? Number(target.port) : 80, head, preamble);
  }

  // ---- malformed input ------------------------------------------------------------------------------------------

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (this.isRefused(socket)) return;
    const code = err.code ?? 'ERROR';
    const msg = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (code === 'ECONNRESET' || !socket.writable || (msg && msg.headersSent)) {
      socket.destroy();
      return;
    }
    this.metrics.error('http', 'bad_request');
    this.log.debug('malformed request', { code });
    if (code === 'HPE_HEADER_OVERFLOW') writeRawResponse(socket, 431, 'request header fields too large');
    else if (code === 'ERR_HTTP_REQUEST_TIMEOUT') writeRawResponse(socket, 408, 'request headers not received in time');
    else writeRawResponse(socket, 400, `malformed request: ${code}`);
  }
}
