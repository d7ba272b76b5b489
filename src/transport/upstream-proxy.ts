/**
 * Reaching a VPN server through an upstream proxy (an office's HTTP proxy or a SOCKS5 server): what a proxy
 * is (UpstreamProxy), the `--upstream-proxy` URL form, the bounded reader the handshakes share, and
 * dialUpstream(), which hands back a TCP socket already connected through the proxy to the target. Nothing
 * here knows OpenVPN: the TCP transport takes its socket from dialUpstream and the SOCKS5 UDP transport
 * keeps its association here, so IPsec can use the same paths.
 */
import net from 'node:net';
import { VpnError, type ErrorCode } from '../errors.js';
import { TransportError, mapSocketError } from './common.js';
import { hostPort } from '../util/host-port.js';

export type HttpProxyAuth =
  /** Never send credentials; a 407 is an error naming what the proxy offers. */
  | 'none'
  /** Send Basic credentials with the first CONNECT (OpenVPN's default when an auth file is given). */
  | 'basic'
  /** Wait for the proxy's Digest challenge and answer it. */
  | 'digest'
  /** Send nothing first; answer the strongest challenge of a 407 (Digest SHA-256, Digest MD5, Basic). */
  | 'auto'
  /** Like auto, but never Basic (no cleartext password on the wire). */
  | 'auto-nct';

export interface UpstreamProxy {
  type: 'http' | 'socks5';
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** HTTP only; default 'auto' (answer a 407 when credentials are known). */
  auth?: HttpProxyAuth;
  /** HTTP only: the request line's version, default 1.0 (as OpenVPN). */
  httpVersion?: '1.0' | '1.1';
  /** HTTP only: a User-Agent header. */
  userAgent?: string;
  /** HTTP only: extra request headers, in order. */
  headers?: ReadonlyArray<readonly [string, string]>;
  /** How long the proxy may take to answer each step of its handshake (ms, default 10 000). */
  handshakeTimeoutMs?: number;
}

export interface DialTarget {
  host: string;
  port: number;
}

export interface DialOptions {
  /** Limit for the TCP connection to the proxy itself (ms, default 10 000). */
  connectTimeoutMs?: number;
  localAddress?: string;
  signal?: AbortSignal;
}

/** A proxy error: fatal to the transport, with a stable code. */
export function proxyError(code: ErrorCode, message: string, cause?: unknown): TransportError {
  return new TransportError(code, message, { fatal: true, cause });
}

export { hostPort };

/**
 * `http://user:pass@host:3128` or `socks5://user:pass@host:1080` (also `socks5h://`; user and password
 * percent-decoded; default ports 3128 / 1080). Anything else is a USAGE error naming the accepted forms.
 */
export function parseUpstreamProxyUrl(text: string): UpstreamProxy {
  const bad = (why: string) =>
    new VpnError('USAGE', `upstream proxy ${JSON.stringify(redactUrl(text))}: ${why} (expected http://[user:pass@]host:port or socks5://[user:pass@]host:port)`);
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw bad('not a URL');
  }
  const scheme = u.protocol.replace(/:$/, '').toLowerCase();
  const type = scheme === 'http' ? 'http' : scheme === 'socks5' || scheme === 'socks5h' ? 'socks5' : undefined;
  if (!type) throw bad(`scheme ${scheme}: is not supported`);
  if (!u.hostname) throw bad('no host');
  if ((u.pathname !== '' && u.pathname !== '/') || u.search || u.hash) throw bad('a path, query or fragment is not allowed');
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port ? Number(u.port) : type === 'http' ? 3128 : 1080;
  const out: UpstreamProxy = { type, host, port };
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(u.username);
    password = decodeURIComponent(u.password);
  } catch {
    throw bad('bad percent-encoding in the user or password');
  }
  if (username) {
    out.username = username;
    out.password = password;
  }
  if (type === 'socks5' && username && (Buffer.byteLength(username) > 255 || Buffer.byteLength(password) > 255)) {
    throw bad('SOCKS5 user names and passwords are at most 255 bytes');
  }
  return out;
}

/** The URL with its password replaced by `***`, for messages. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z0-9+.-]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

/** `http proxy 10.0.0.1:3128` / `SOCKS5 proxy …`, for messages. */
export function describeProxy(p: UpstreamProxy): string {
  return `${p.type === 'http' ? 'HTTP' : 'SOCKS5'} proxy ${hostPort(p.host, p.port)}`;
}

/**
 * Buffers what a proxy sends during its handshake and hands it to parsers one step at a time. A parser
 * returns undefined while it needs more bytes, or the value and how many bytes it used; it throws on bytes
 * that cannot be right. Every step has a deadline, and at most maxBytes may wait unparsed.
 */
export class HandshakeReader {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private ended = false;

  constructor(
    private readonly sock: net.Socket,
    private readonly what: string,
    private readonly maxBytes: number,
    private readonly timeoutMs: number,
  ) {
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('close', this.onEnd);
    sock.on('error', this.onError);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.wake?.();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake?.();
  };
  private readonly onError = (err: Error): void => {
    this.failure ??= err;
    this.wake?.();
  };

  async next<T>(parse: (b: Buffer) => { value: T; used: number } | undefined, step: string, signal?: AbortSignal): Promise<T> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const r = this.buf.length ? parse(this.buf) : undefined;
      if (r) {
        this.buf = this.buf.subarray(r.used);
        return r.value;
      }
      if (this.buf.length > this.maxBytes) throw proxyError('PROXY_PROTOCOL', `the ${this.what} sent more than ${this.maxBytes} bytes without a complete ${step}`);
      if (this.failure) throw this.failure;
      if (this.ended) throw proxyError('PROXY_PROTOCOL', `the ${this.what} closed the connection before its ${step}${this.buf.length ? ` (${this.buf.length} bytes of it came)` : ''}`);
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : proxyError('TRANSPORT_CLOSED', 'aborted');
      const left = deadline - Date.now();
      if (left <= 0) throw proxyError('CONNECT_TIMEOUT', `the ${this.what} did not send its ${step} within ${this.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const onAbort = () => done();
        signal?.addEventListener('abort', onAbort, { once: true });
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }
        this.wake = () => {
          this.wake = undefined;
          done();
        };
      });
      this.wake = undefined;
    }
  }

  /**
   * Stop listening; the bytes that came after the handshake belong to the caller. The socket is left
   * paused so nothing is lost before the caller's own 'data' listener is on: it calls resume().
   */
  release(): Buffer {
    this.sock.pause();
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onEnd);
    this.sock.off('close', this.onEnd);
    this.sock.off('error', this.onError);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}

/** A TCP connection to the proxy itself, with the proxy named in errors. */
export function connectToProxy(p: UpstreamProxy, o: DialOptions): Promise<net.Socket> {
  const timeoutMs = o.connectTimeoutMs ?? 10_000;
  return new Promise<net.Socket>((resolve, reject) => {
    const sock = net.connect({ host: p.host, port: p.port, noDelay: true, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.off('connect', onConnect);
      sock.off('error', onError);
      o.signal?.removeEventListener('abort', onAbort);
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(sock);
    };
    const onConnect = () => finish();
    const onError = (e: Error) => {
      const m = mapSocketError(e, { proto: 'tcp', host: p.host, port: p.port, phase: 'connect', fatal: true });
      finish(new TransportError(m.code, `${describeProxy(p)}: ${m.message}`, { fatal: true, errno: m.errno, cause: e }));
    };
    const onAbort = () => finish(o.signal!.reason instanceof Error ? o.signal!.reason : proxyError('TRANSPORT_CLOSED', 'aborted'));
    const timer = setTimeout(
      () => finish(proxyError('CONNECT_TIMEOUT', `TCP connect to the ${describeProxy(p)} timed out after ${timeoutMs} ms: proxy down or blocked?`)),
      timeoutMs,
    );
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('connect', onConnect);
    sock.once('error', onError);
  });
}
