/**
 * The lab's "web" host: an HTTP test server plus TCP and UDP echo, run inside the web namespace with
 * `node --import tsx test/lab/webhost.ts [--http-port 80] [--echo-port 7]`. Prints one line
 * `webhost ready http=PORT echo=PORT` when listening. Endpoints (all bodies deterministic, see detbytes.ts):
 *
 * - `GET|HEAD /bytes/N[?seed=S][&nohash=1]`: N bytes of detBytes(N, S); header `x-sha256` (hex) unless nohash. Streamed.
 * - `POST /upload`: consumes the body, answers JSON `{ "bytes": n, "sha256": hex }`.
 * - `POST /echo`: streams the request body back.
 * - `GET /trickle?bytes=N&interval=MS[&chunk=C][&seed=S]`: C (default 1) bytes every MS ms, content-length N.
 * - `GET /reset?after=N[&delay=MS]`: announces N+1000000 bytes, sends N, waits MS (default 200) so they leave
 *   the kernel, then resets the connection (RST).
 * - `GET /delay?ms=N`: answers "ok" after N ms.
 * - `GET /ip`: JSON `{ remoteAddress, remotePort, localAddress, localPort }` as the server saw the connection.
 * - `GET /healthz`: "ok".
 * - `GET /page`: an HTML page with sub-resources (`/page/style.css`, `/page/app.js`, three SVG images and a PNG),
 *   for browsers: rendered, it shows a yellow background, coloured squares and a purple box the script fills in.
 *
 * With `--https-port P --tls-cert FILE --tls-key FILE` the same endpoints are also served over HTTPS on P.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
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

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A 96×96 RGB PNG of diagonal orange/teal stripes. */
function stripesPng(): Buffer {
  const w = 96;
  const h = 96;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) {
      const on = Math.floor((x + y) / 12) % 2 === 0;
      raw.set(on ? [255, 140, 0] : [0, 128, 128], row + 1 + x * 3);
    }
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const square = (color: string): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="${color}"/><circle cx="48" cy="48" r="30" fill="white"/></svg>\n`;

/** The /page document and its sub-resources: path → [content-type, body]. */
const PAGE: Record<string, [string, string | Buffer]> = {
  '/page': [
    'text/html; charset=utf-8',
    `<!doctype html>
<html><head><meta charset="utf-8"><title>vpnproxy lab page</title>
<link rel="stylesheet" href="/page/style.css">
<script src="/page/app.js"></script>
</head><body>
<h1>vpnproxy lab page</h1>
<p class="imgs"><img src="/page/red.svg" alt="red"><img src="/page/green.svg" alt="green"><img src="/page/blue.svg" alt="blue"><img src="/page/stripes.png" alt="stripes"></p>
<div id="js">the script did not run</div>
</body></html>
`,
  ],
  '/page/style.css': [
    'text/css',
    `body { background: #f4e04d; font-family: sans-serif; margin: 24px; }
h1 { color: #1a237e; }
img { width: 96px; height: 96px; margin-right: 12px; }
#js { margin-top: 16px; padding: 16px; width: 420px; color: white; background: #555; }
#js.ran { background: #7b1fa2; }
`,
  ],
  '/page/app.js': [
    'application/javascript',
    `document.addEventListener('DOMContentLoaded', function () {
  var d = document.getElementById('js');
  d.textContent = 'the script ran through the proxy';
  d.className = 'ran';
});
`,
  ],
  '/page/red.svg': ['image/svg+xml', square('#d32f2f')],
  '/page/green.svg': ['image/svg+xml', square('#388e3c')],
  '/page/blue.svg': ['image/svg+xml', square('#1976d2')],
  '/page/stripes.png': ['image/png', stripesPng()],
};

function handle(req: IncomingMessage, res: ServerResponse): void {
  const u = new URL(req.url ?? '/', 'http://web.lab');
  const page = PAGE[u.pathname];
  if (page && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, { 'content-type': page[0], 'content-length': Buffer.byteLength(page[1]), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : page[1]);
    return;
  }
  const seed = u.searchParams.get('seed') ?? DEFAULT_SEED;
  const bytesMatch = /^\/bytes\/(\d+)$/.exec(u.pathname);
  if ((req.method === 'GET' || req.method === 'HEAD') && bytesMatch) {
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
    if (req.method === 'HEAD') res.end();
    else pipeline(Readable.from(detChunks(n, seed)), res, () => undefined);
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

function safeHandle(req: IncomingMessage, res: ServerResponse): void {
  try {
    handle(req, res);
  } catch (e) {
    if (!res.headersSent) text(res, 400, `${(e as Error).message}\n`);
    else res.destroy();
  }
}

export interface WebHostTls {
  port: number;
  /** PEM file paths. */
  cert: string;
  key: string;
}

/**
 * Starts the HTTP server (and HTTPS, with `tls`) and the echo services; resolves with their ports once
 * listening.
 */
export async function startWebHost(
  httpPort = 80,
  echoPort = 7,
  host = '0.0.0.0',
  tls?: WebHostTls,
): Promise<{ http: number; https?: number; echo: number; close(): void }> {
  const http = createServer(safeHandle);
  http.requestTimeout = 0;
  http.headersTimeout = 60_000;
  http.keepAliveTimeout = 30_000;
  const https = tls ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, safeHandle) : undefined;
  if (https) {
    https.requestTimeout = 0;
    https.headersTimeout = 60_000;
    https.keepAliveTimeout = 30_000;
  }
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
    https ? new Promise<void>((r) => https.listen(tls!.port, host, r)) : undefined,
  ]);
  // The same HTTP endpoints on IPv6 when the host has it (a second server: the first stays IPv4-only, so its
  // remote addresses keep their dotted form).
  let http6: ReturnType<typeof createServer> | undefined;
  if (host === '0.0.0.0') {
    http6 = createServer(safeHandle);
    http6.requestTimeout = 0;
    http6.headersTimeout = 60_000;
    http6.keepAliveTimeout = 30_000;
    const h6 = http6;
    const listening = await new Promise<boolean>((r) => {
      h6.once('error', () => r(false));
      h6.listen({ port: http.address() && typeof http.address() === 'object' ? (http.address() as { port: number }).port : httpPort, host: '::', ipv6Only: true }, () => r(true));
    });
    if (!listening) http6 = undefined;
  }
  const sa = https?.address();
  const a = http.address();
  const e = tcpEcho.address();
  // UDP echo on the same port number as the TCP echo (also when echoPort is 0).
  await new Promise<void>((r) => udpEcho.bind(typeof e === 'object' && e ? e.port : echoPort, host, r));
  return {
    http: typeof a === 'object' && a ? a.port : httpPort,
    https: sa && typeof sa === 'object' ? sa.port : undefined,
    echo: typeof e === 'object' && e ? e.port : echoPort,
    close() {
      http.closeAllConnections();
      http.close();
      http6?.closeAllConnections();
      http6?.close();
      https?.closeAllConnections();
      https?.close();
      tcpEcho.close();
      udpEcho.close();
    },
  };
}

function argStr(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function arg(name: string, dflt: number): number {
  const v = argStr(name);
  return v === undefined ? dflt : Number(v);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const cert = argStr('--tls-cert');
  const key = argStr('--tls-key');
  const tls = cert && key ? { port: arg('--https-port', 443), cert, key } : undefined;
  const ports = await startWebHost(arg('--http-port', 80), arg('--echo-port', 7), '0.0.0.0', tls);
  process.stdout.write(`webhost ready http=${ports.http} echo=${ports.echo}${ports.https ? ` https=${ports.https}` : ''}\n`);
  const bye = (): void => {
    ports.close();
    process.exit(0);
  };
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}
