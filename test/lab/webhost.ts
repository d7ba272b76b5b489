/**
 * The lab's "web" host: an HTTP test server plus TCP and UDP echo, run inside the web namespace with
 * `node --import tsx test/lab/webhost.ts [--http-port 80] [--echo-port 7]`. Prints one line
 * `webhost ready http=PORT echo=PORT` when listening. Endpoints (all bodies deterministic, see detbytes.ts):
 *
 * - `GET /bytes/N[?seed=S][&nohash=1]`: N bytes of detBytes(N, S); header `x-sha256` (hex) unless nohash. Streamed.
 * - `POST /upload`: consumes the body, answers JSON `{ "bytes": n, "sha256": hex }`.
 * - `POST /echo`: streams the request body back.
 * - `GET /trickle?bytes=N&interval=MS[&chunk=C][&seed=S]`: C (default 1) bytes every MS ms, content-length N.
 * - `GET /reset?after=N[&delay=MS]`: announces N+1000000 bytes, sends N, waits MS (default 200) so they leave
 *   the kernel, then resets the connection (RST).
 * - `GET /delay?ms=N`: answers "ok" after N ms.
 * - `GET /ip`: JSON `{ remoteAddress, remotePort, localAddress, localPort }` as the server saw the connection.
 * - `GET /healthz`: "ok".
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { createHash } from 'node:crypto';
import { Readable, pipeline } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { DEFAULT_SEED, detChunks, detSha256 } from './detbytes.js';

const MAX_BYTES = 16 * 1024 * 1024 * 1024;
const hashCache = new Map<string, string>();

function intParam(u: URL, name: string, dflt: number, max = MAX_BYTES): number {
  const v = u.searchParams.get(name);
  if (v === null) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new RangeError(`bad ${name}`);
  return n;
}

function text(res: ServerResponse, code: number, body: string, type = 'text/plain'): void {
  res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const u = new URL(req.url ?? '/', 'http://web.lab');
  const seed = u.searchParams.get('seed') ?? DEFAULT_SEED;
  const bytesMatch = /^\/bytes\/(\d+)$/.exec(u.pathname);
  if (req.method === 'GET' && bytesMatch) {
    const n = Number(bytesMatch[1]);
    if (!Number.isSafeInteger(n) || n > MAX_BYTES) return text(res, 400, 'bad length\n');
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'content-length': n };
    if (u.searchParams.get('nohash') !== '1') {
      const key = `${seed}\0${n}`;
      let h = hashCache.get(key);
      if (h === undefined) {
        h = detSha256(n, seed);
        hashCache.set(key, h);
      }
      headers['x-sha256'] = h;
    }
    res.writeHead(200, headers);
    pipeline(Readable.from(detChunks(n, seed)), res, () => undefined);
    return;
  }
  if (req.method === 'POST' && u.pathname === '/upload') {
    const h = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      h.update(c);
    });
    req.on('end', () => text(res, 200, `${JSON.stringify({ bytes, sha256: h.digest('hex') })}\n`, 'application/json'));
    return;
  }
  if (req.method === 'POST' && u.pathname === '/echo') {
    const len = req.headers['content-length'];
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...(len ? { 'content-length': len } : {}) });
    pipeline(req, res, () => undefined);
    return;
  }
  if (u.pathname === '/trickle') {
    const n = intParam(u, 'bytes', 100);
    const interval = intParam(u, 'interval', 100, 600_000);
    const chunk = Math.max(1, intParam(u, 'chunk', 1, 65536));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    const gen = detChunks(n, seed, chunk);
    const tick = (): void => {
      const next = gen.next();
      if (next.done) {
        res.end();
        return;
      }
      res.write(next.value);
      timer = setTimeout(tick, interval);
    };
    let timer = setTimeout(tick, 0);
    res.on('close', () => clearTimeout(timer));
    return;
  }
  if (u.pathname === '/reset') {
    const after = intParam(u, 'after', 0);
    const delay = intParam(u, 'delay', 200, 600_000);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': after + 1_000_000 });
    const body = Buffer.concat([...detChunks(after, seed)], after);
    res.write(body, () => setTimeout(() => req.socket.resetAndDestroy(), delay));
    return;
  }
  if (u.pathname === '/delay') {
    const ms = intParam(u, 'ms', 1000, 600_000);
    const t = setTimeout(() => text(res, 200, 'ok\n'), ms);
    res.on('close', () => clearTimeout(t));
    return;
  }
  if (u.pathname === '/ip') {
    const s = req.socket;
    return text(
      res,
      200,
      `${JSON.stringify({ remoteAddress: s.remoteAddress, remotePort: s.remotePort, localAddress: s.localAddress, localPort: s.localPort })}\n`,
      'application/json',
    );
  }
  if (u.pathname === '/healthz') return text(res, 200, 'ok\n');
  text(res, 404, 'not found\n');
}

/** Starts the HTTP server and the echo services; resolves with their ports once listening. */
export async function startWebHost(httpPort = 80, echoPort = 7, host = '0.0.0.0'): Promise<{ http: number; echo: number; close(): void }> {
  const http = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) text(res, 400, `${(e as Error).message}\n`);
      else res.destroy();
    }
  });
  http.requestTimeout = 0;
  http.headersTimeout = 60_000;
  http.keepAliveTimeout = 30_000;
  const tcpEcho = createTcpServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const udpEcho = createSocket('udp4');
  udpEcho.on('message', (msg, rinfo) => udpEcho.send(msg, rinfo.port, rinfo.address));
  udpEcho.on('error', () => undefined);
  await Promise.all([
    new Promise<void>((r) => http.listen(httpPort, host, r)),
    new Promise<void>((r) => tcpEcho.listen(echoPort, host, r)),
  ]);
  const a = http.address();
  const e = tcpEcho.address();
  // UDP echo on the same port number as the TCP echo (also when echoPort is 0).
  await new Promise<void>((r) => udpEcho.bind(typeof e === 'object' && e ? e.port : echoPort, host, r));
  return {
    http: typeof a === 'object' && a ? a.port : httpPort,
    echo: typeof e === 'object' && e ? e.port : echoPort,
    close() {
      http.closeAllConnections();
      http.close();
      tcpEcho.close();
      udpEcho.close();
    },
  };
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const ports = await startWebHost(arg('--http-port', 80), arg('--echo-port', 7));
  process.stdout.write(`webhost ready http=${ports.http} echo=${ports.echo}\n`);
  const bye = (): void => {
    ports.close();
    process.exit(0);
  };
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}
