/** Loopback fixtures for the proxy tests: origin servers, a name-mapping fake dialer, a capturing logger. */
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type OutgoingHttpHeaders } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { VpnError, type ErrorCode } from '../../../src/errors.js';
import { Logger } from '../../../src/util/log.js';
import { netDialer, type Dialer } from '../../../src/proxy/dialer.js';

export function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface Origin {
  server: Server;
  port: number;
  /** Every request the origin saw: method, url, raw headers, body sha256, body length. */
  seen: { method: string; url: string; rawHeaders: string[]; sha: string; length: number; remotePort: number }[];
  close(): Promise<void>;
}

/**
 * An origin HTTP server. Routes: /redirect → 302 Location /target; /big?n=BYTES → deterministic body
 * (chunked); /fixed?n=BYTES → with Content-Length; anything else echoes: JSON {method,url,sha,length,headers}
 * with X-Body-Sha256 header, or a 204 for /empty.
 */
export async function startOrigin(): Promise<Origin> {
  const seen: Origin['seen'] = [];
  const server = createServer((req, res) => {
    const h = createHash('sha256');
    let length = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      length += c.length;
    });
    req.on('end', () => {
      const sha = h.digest('hex');
      seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, sha, length, remotePort: req.socket.remotePort! });
      const u = new URL(req.url!, 'http://x');
      if (u.pathname === '/redirect') {
        res.writeHead(302, { Location: '/target', 'X-Origin': 'yes' });
        res.end('moved');
        return;
      }
      if (u.pathname === '/truncate') {
        res.writeHead(200, { 'Content-Length': 1000 });
        res.write('only ten b');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (u.pathname === '/empty') {
        res.writeHead(204);
        res.end();
        return;
      }
      if (u.pathname === '/big' || u.pathname === '/fixed') {
        const n = Number(u.searchParams.get('n') ?? '0');
        const body = pattern(n);
        const headers: OutgoingHttpHeaders = { 'X-Body-Sha256': sha256(body) };
        if (u.pathname === '/fixed') headers['Content-Length'] = n;
        res.writeHead(200, headers);
        // Write in 64 KiB pieces so the response is streamed.
        let off = 0;
        const write = () => {
          while (off < n) {
            const piece = body.subarray(off, Math.min(n, off + 65536));
            off += piece.length;
            if (!res.write(piece)) return void res.once('drain', write);
          }
          res.end();
        };
        write();
        return;
      }
      if (u.pathname === '/hop') {
        res.writeHead(200, {
          Connection: 'close, X-Private',
          'X-Private': 'secret',
          'Keep-Alive': 'timeout=5',
          'Proxy-Authenticate': 'Basic',
          'X-Public': 'ok',
        });
        res.end('hop');
        return;
      }
      const body = JSON.stringify({ method: req.method, url: req.url, sha, length, headers: req.rawHeaders });
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Body-Sha256': sha, 'Set-Cookie': ['a=1', 'b=2'] });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  // Upgrade: answers 101 and then echoes raw bytes (records the request line and headers it got).
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, sha: '', length: 0, remotePort: socket.remotePort! });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    if (head.length) socket.write(head);
    socket.pipe(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Deterministic bytes. */
export function pattern(n: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** A TCP echo server (echoes, then half-closes when the client half-closes). */
export async function startEcho(): Promise<{ server: NetServer; port: number; close(): Promise<void> }> {
  const socks = new Set<Socket>();
  const server = createNetServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port on which nothing listens (bound then closed). */
export async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A dialer that resolves names from a table (every name maps to an IPv4 or a failure code); connections then
 * go through netDialer to 127.0.0.1. `hang` names never connect (for timeouts). Records every call.
 */
export function fakeDialer(
  names: Record<string, string | ErrorCode>,
  opts: { hang?: string[] } = {},
): Dialer & { calls: string[] } {
  const inner = netDialer();
  const calls: string[] = [];
  const resolve = async (host: string): Promise<string[]> => {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return [host];
    const v = names[host];
    if (v === undefined) throw new VpnError('DNS_NXDOMAIN', `cannot resolve ${host}: no such name`);
    if (!/^\d/.test(v)) throw new VpnError(v as ErrorCode, `${host}: ${v}`);
    return [v];
  };
  return {
    calls,
    resolve: async (host) => {
      calls.push(`resolve ${host}`);
      return resolve(host);
    },
    async connect(host, port, o = {}) {
      calls.push(`connect ${host}:${port}`);
      if (opts.hang?.includes(host)) {
        return new Promise((_, reject) => {
          o.signal?.addEventListener('abort', () => reject(new VpnError('TRANSPORT_CLOSED', 'aborted')));
        });
      }
      const v = names[host];
      if (v !== undefined && !/^\d/.test(v)) throw new VpnError(v as ErrorCode, `${host}:${port}: ${v}`);
      const ip = (await resolve(host))[0]!;
      return inner.connect(ip, port, o);
    },
    bindUdp: () => inner.bindUdp(),
  };
}

export function captureLogger(level: 'info' | 'debug' = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger(level, 'json', { write: (l) => lines.push(l) }), lines };
}

export interface Fetched {
  status: number;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
  socketPort: number;
}

/** One request through an HTTP proxy (absolute-form), body optionally streamed in pieces (chunked). */
export function viaProxy(
  proxyPort: number,
  url: string,
  opts: {
    method?: string;
    headers?: OutgoingHttpHeaders;
    body?: Buffer;
    chunked?: boolean;
    agent?: import('node:http').Agent | false;
  } = {},
): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = { ...(opts.headers ?? {}) };
    if (opts.body && !opts.chunked) headers['Content-Length'] = opts.body.length;
    const req = request({
      host: '127.0.0.1',
      port: proxyPort,
      method: opts.method ?? 'GET',
      path: url,
      headers,
      agent: opts.agent ?? false,
      setHost: true,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          socketPort: req.socket?.localPort ?? 0,
        }),
      );
    });
    if (opts.body) {
      if (opts.chunked) {
        req.setHeader('Transfer-Encoding', 'chunked');
        let off = 0;
        const b = opts.body;
        const write = () => {
          while (off < b.length) {
            const piece = b.subarray(off, Math.min(b.length, off + 100_000));
            off += piece.length;
            if (!req.write(piece)) return void req.once('drain', write);
          }
          req.end();
        };
        write();
      } else req.end(opts.body);
    } else req.end();
  });
}

/** Raw bytes to a TCP port; resolves with everything received until the peer closes (or timeoutMs). */
export function rawExchange(port: number, data: Uint8Array | string, timeoutMs = 3000): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const t = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks));
    });
    s.write(data);
  });
}

/** Wait until pred() holds (polling), or fail after timeoutMs. */
export async function waitFor(pred: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
