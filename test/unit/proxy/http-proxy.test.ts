import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { VpnError } from '../../../src/errors.js';
import type { Dialer } from '../../../src/proxy/dialer.js';
import fc from 'fast-check';
import { HttpProxy } from '../../../src/proxy/http-proxy.js';
import { fixedRoute } from '../../../src/proxy/router.js';
import { netDialer } from '../../../src/proxy/dialer.js';
import { AccessList } from '../../../src/proxy/access.js';
import {
  captureLogger,
  closedPort,
  fakeDialer,
  pattern,
  rawExchange,
  sha256,
  startEcho,
  startOrigin,
  viaProxy,
  waitFor,
  type Origin,
} from './helpers.js';

function curl(args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { encoding: 'buffer', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() });
    });
  });
}

describe('HTTP proxy', () => {
  let origin: Origin;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let proxy: HttpProxy;
  let port: number;
  let up = true;
  const cap = captureLogger();
  const dialer = fakeDialer(
    { 'web.vpn': '127.0.0.1', 'refused.vpn': 'CONN_REFUSED', 'unreach.vpn': 'HOST_UNREACHABLE' },
    { hang: ['slow.vpn'] },
  );

  before(async () => {
    origin = await startOrigin();
    echo = await startEcho();
    proxy = new HttpProxy({
      routing: fixedRoute(dialer, 'vpn', () => up),
      port: 0,
      logger: cap.logger,
      connectTimeoutMs: 300,
      headersTimeoutMs: 400,
    });
    port = (await proxy.listen()).port;
  });
  after(async () => {
    await proxy.close();
    await origin.close();
    await echo.close();
  });

  const base = () => `http://web.vpn:${origin.port}`;

  test('every method, fixed-length and chunked bodies, byte-exact both ways', async () => {
    const body = pattern(300_000, 3);
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND', 'GET']) {
      for (const chunked of [false, true]) {
        const r = await viaProxy(port, `${base()}/echo?m=${method}`, { method, body, chunked });
        assert.equal(r.status, 200, `${method} chunked=${chunked}`);
        const j = JSON.parse(r.body.toString()) as { method: string; sha: string; length: number; headers: string[] };
        assert.equal(j.method, method);
        assert.equal(j.length, body.length);
        assert.equal(j.sha, sha256(body), `${method} chunked=${chunked} body reached origin intact`);
        const names = j.headers.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
        if (chunked) assert.ok(names.includes('transfer-encoding') && !names.includes('content-length'));
        else assert.ok(names.includes('content-length') && !names.includes('transfer-encoding'));
        assert.equal(r.headers['x-body-sha256'], sha256(body));
      }
    }
    const head = await viaProxy(port, `${base()}/echo`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    const empty = await viaProxy(port, `${base()}/empty`, { method: 'POST' });
    assert.equal(empty.status, 204);
  });

  test('large bodies stream both ways (8 MB up chunked, 8 MB down chunked and fixed)', async () => {
    const big = pattern(8 * 1024 * 1024, 11);
    const r = await viaProxy(port, `${base()}/echo`, { method: 'POST', body: big, chunked: true });
    assert.equal(JSON.parse(r.body.toString()).sha, sha256(big));
    for (const path of ['big', 'fixed']) {
      const d = await viaProxy(port, `${base()}/${path}?n=${8 * 1024 * 1024}`);
      assert.equal(d.body.length, 8 * 1024 * 1024);
      assert.equal(sha256(d.body), d.headers['x-body-sha256']);
      if (path === 'fixed') assert.equal(d.headers['content-length'], String(8 * 1024 * 1024));
    }
  });

  test('keep-alive on both sides: one client connection, one upstream connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const before = origin.seen.length;
    const a = await viaProxy(port, `${base()}/echo?1`, { agent });
    const b = await viaProxy(port, `${base()}/echo?2`, { agent, method: 'POST', body: Buffer.from('x') });
    const c = await viaProxy(port, `${base()}/echo?3`, { agent });
    agent.destroy();
    assert.equal(a.socketPort, b.socketPort);
    assert.equal(b.socketPort, c.socketPort);
    const seen = origin.seen.slice(before);
    assert.equal(seen.length, 3);
    assert.equal(new Set(seen.map((s) => s.remotePort)).size, 1, 'upstream connection reused');
  });

  test('hop-by-hop headers are removed both ways; end-to-end ones kept; Host from the URL', async () => {
    const r = await viaProxy(port, `${base()}/echo`, {
      headers: {
        Connection: 'keep-alive, X-Hop',
        'X-Hop': 'drop me',
        'Keep-Alive': 'timeout=9',
        'Proxy-Connection': 'keep-alive',
        'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
        TE: 'trailers',
        Upgrade: 'foo',
        'X-Keep': 'kept',
        Host: 'wrong.example',
      },
    });
    const raw = (JSON.parse(r.body.toString()) as { headers: string[] }).headers;
    const got = new Map<string, string>();
    for (let i = 0; i < raw.length; i += 2) got.set(raw[i]!.toLowerCase(), raw[i + 1]!);
    for (const h of ['x-hop', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade'])
      assert.ok(!got.has(h), `${h} must not reach the origin`);
    assert.notEqual(got.get('keep-alive'), 'timeout=9');
    assert.equal(got.get('x-keep'), 'kept');
    assert.equal(got.get('host'), `web.vpn:${origin.port}`);
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2'], 'repeated response headers survive');

    const h = await viaProxy(port, `${base()}/hop`);
    assert.equal(h.headers['x-public'], 'ok');
    assert.equal(h.headers['x-private'], undefined);
    assert.equal(h.headers['proxy-authenticate'], undefined);
    assert.equal(h.headers['keep-alive'] === 'timeout=5', false);
  });

  test('a truncated upstream body reaches the client as an incomplete message, not a short complete one', async () => {
    const err = await viaProxy(port, `${base()}/truncate`).then(
      (r) => `completed with ${r.body.length} bytes`,
      (e: NodeJS.ErrnoException) => e.code ?? e.message,
    );
    assert.match(err, /ECONNRESET|aborted/);
    const r = await viaProxy(port, `${base()}/echo`);
    assert.equal(r.status, 200, 'next request fine');
  });

  test('redirects pass through untouched', async () => {
    const r = await viaProxy(port, `${base()}/redirect`);
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/target');
    assert.equal(r.headers['x-origin'], 'yes');
    assert.equal(r.body.toString(), 'moved');
  });

  test('failures: exact status and one-line reason', async () => {
    const cases: [string, number, RegExp][] = [
      [`http://nx.vpn:${origin.port}/`, 502, /^name not resolvable: nx\.vpn/],
      [`http://refused.vpn:${origin.port}/`, 502, /^connection refused by refused\.vpn:\d+$/],
      [`http://unreach.vpn:81/`, 502, /^host unreachable: unreach\.vpn:81$/],
      [`http://slow.vpn:81/`, 504, /^connect timeout: slow\.vpn:81$/],
      [`ftp://web.vpn/x`, 400, /^malformed request: unsupported scheme ftp:/],
      [`/origin-form`, 400, /^malformed request: not a proxy request/],
    ];
    for (const [url, status, re] of cases) {
      const r = await viaProxy(port, url);
      assert.equal(r.status, status, url);
      const text = r.body.toString();
      assert.ok(text.endsWith('\n') && text.indexOf('\n') === text.length - 1, 'one line');
      assert.match(text.trim(), re);
    }
    // A real refused connection through the real net dialer.
    const p2 = new HttpProxy({ routing: fixedRoute(netDialer(), 'direct'), port: 0 });
    const pp = (await p2.listen()).port;
    const dead = await closedPort();
    const r = await viaProxy(pp, `http://127.0.0.1:${dead}/`);
    assert.equal(r.status, 502);
    assert.equal(r.body.toString(), `connection refused by 127.0.0.1:${dead}\n`);
    await p2.close();
  });

  test('503 while the tunnel is down; waits up to readyTimeoutMs when configured', async () => {
    up = false;
    try {
      const r = await viaProxy(port, `${base()}/echo`);
      assert.equal(r.status, 503);
      assert.equal(r.body.toString(), 'VPN tunnel is not up\n');
      const raw = await rawExchange(port, `CONNECT web.vpn:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.match(raw.toString(), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    } finally {
      up = true;
    }
    let up2 = false;
    const waiting = new HttpProxy({ routing: fixedRoute(dialer, 'vpn', () => up2), port: 0, readyTimeoutMs: 2000 });
    const wp = (await waiting.listen()).port;
    setTimeout(() => (up2 = true), 200);
    const r = await viaProxy(wp, `${base()}/echo`);
    assert.equal(r.status, 200);
    await waiting.close();
  });

  test('CONNECT tunnel relays both ways and respects half-close', async () => {
    const s = connect(port, '127.0.0.1');
    s.write(`CONNECT web.vpn:${echo.port} HTTP/1.1\r\nHost: web.vpn:${echo.port}\r\n\r\n`);
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    await waitFor(() => Buffer.concat(chunks).includes('\r\n\r\n'), 3000, 'CONNECT reply');
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200 Connection Established\r\n\r\n$/);
    chunks.length = 0;
    const payload = pattern(500_000, 5);
    s.end(payload); // half-close after sending: the echo must still come back in full
    await new Promise<void>((r) => s.once('end', () => r()));
    assert.equal(sha256(Buffer.concat(chunks)), sha256(payload));
    s.destroy();
    // Failures on CONNECT are raw responses.
    const nx = await rawExchange(port, `CONNECT nx.vpn:443 HTTP/1.1\r\nHost: nx.vpn:443\r\n\r\n`);
    assert.match(nx.toString(), /^HTTP\/1\.1 502 Bad Gateway\r\n[\s\S]*\r\n\r\nname not resolvable: nx\.vpn/);
    const bad = await rawExchange(port, `CONNECT nonsense HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(bad.toString(), /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*malformed request: CONNECT target/);
    const slow = await rawExchange(port, `CONNECT slow.vpn:443 HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(slow.toString(), /^HTTP\/1\.1 504 Gateway Timeout\r\n[\s\S]*connect timeout: slow\.vpn:443\n$/);
  });

  test('Upgrade requests are tunnelled (101 then raw bytes both ways)', async () => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.write(
      `GET ${base()}/ws?x=1 HTTP/1.1\r\nHost: web.vpn\r\nConnection: Upgrade\r\nUpgrade: echo\r\nProxy-Authorization: Basic eDp5\r\nX-App: 1\r\n\r\n`,
    );
    await waitFor(() => Buffer.concat(chunks).includes('\r\n\r\n'), 3000, '101');
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    chunks.length = 0;
    s.write('hello over upgrade');
    await waitFor(() => Buffer.concat(chunks).toString() === 'hello over upgrade', 3000, 'echo');
    s.destroy();
    const seen = origin.seen.find((x) => x.url === '/ws?x=1')!;
    assert.ok(seen, 'origin saw the upgrade in origin-form');
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
    assert.ok(names.includes('upgrade') && names.includes('x-app'));
    assert.ok(!names.includes('proxy-authorization'));
  });

  test('each proxied request and tunnel is logged at info with client, destination, route, bytes, duration', async () => {
    cap.lines.length = 0;
    await viaProxy(port, `${base()}/echo`, { method: 'PUT', body: Buffer.alloc(1234, 1) });
    await waitFor(() => cap.lines.some((l) => l.includes('"method":"PUT"')), 2000, 'log line');
    const line = JSON.parse(cap.lines.find((l) => l.includes('"method":"PUT"'))!) as Record<string, unknown>;
    assert.equal(line.level, 'info');
    assert.equal(line.component, 'http-proxy');
    assert.match(String(line.client), /^127\.0\.0\.1:\d+$/);
    assert.equal(line.dest, `web.vpn:${origin.port}`);
    assert.equal(line.route, 'vpn');
    assert.equal(line.status, 200);
    assert.equal(line.bytes_up, 1234);
    assert.ok(Number(line.bytes_down) > 0);
    assert.equal(typeof line.duration_ms, 'number');
  });

  test('curl: GET, POST file, HEAD and CONNECT (-p) through the proxy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpnproxy-curl-'));
    try {
      const body = pattern(2 * 1024 * 1024, 9);
      writeFileSync(join(dir, 'body'), body);
      const proxyUrl = `http://127.0.0.1:${port}`;
      const get = await curl(['-sS', '-x', proxyUrl, `${base()}/fixed?n=100000`]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(sha256(get.stdout), sha256(pattern(100000)));
      const post = await curl(['-sS', '-x', proxyUrl, '--data-binary', `@${join(dir, 'body')}`, `${base()}/echo`]);
      assert.equal(post.code, 0, post.stderr);
      assert.equal(JSON.parse(post.stdout.toString()).sha, sha256(body));
      const head = await curl(['-sS', '-I', '-x', proxyUrl, `${base()}/echo`]);
      assert.match(head.stdout.toString(), /^HTTP\/1\.1 200 OK/);
      const tunnel = await curl(['-sS', '-p', '-x', proxyUrl, `${base()}/fixed?n=5000`]);
      assert.equal(tunnel.code, 0, tunnel.stderr);
      assert.equal(sha256(tunnel.stdout), sha256(pattern(5000)));
      const redirect = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-x', proxyUrl, `${base()}/redirect`]);
      assert.equal(redirect.stdout.toString(), `302 http://web.vpn:${origin.port}/target`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad input: malformed request line, oversize headers, slowloris; the proxy keeps serving', async () => {
    const bad = await rawExchange(port, 'GARBAGE\r\n\r\n');
    assert.match(bad.toString(), /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*malformed request: HPE_/);
    const big = await rawExchange(port, `GET ${base()}/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(big.toString(), /^HTTP\/1\.1 431 /);
    // Slowloris: partial headers, never finished. Meanwhile a good request succeeds; the slow one gets 408.
    const t0 = Date.now();
    const slow = rawExchange(port, `GET ${base()}/ HTTP/1.1\r\nHost: x\r\nX-Slow: `, 5000);
    const good = await viaProxy(port, `${base()}/echo`);
    assert.equal(good.status, 200);
    const slowReply = await slow;
    assert.match(slowReply.toString(), /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - t0 < 4000, 'slow client cut off by headersTimeout');
  });

  test('fuzz: random bytes into the listener never break it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 300 }),
          fc.string({ maxLength: 200 }).map((s) => Buffer.from(`GET http://web.vpn:${origin.port}/${s} HTTP/1.1\r\n${s}\r\n\r\n`)),
          fc.string({ maxLength: 100 }).map((s) => Buffer.from(`CONNECT ${s} HTTP/1.1\r\n\r\n`)),
        ),
        async (bytes) => {
          const reply = await rawExchange(port, bytes, 1500);
          // Either nothing (still waiting for more input when we gave up) or an HTTP response.
          if (reply.length > 0) assert.match(reply.toString('latin1'), /^HTTP\/1\.1 \d{3} /);
        },
      ),
      { numRuns: 60 },
    );
    const r = await viaProxy(port, `${base()}/echo`);
    assert.equal(r.status, 200);
  });
});

describe('HTTP proxy auth and --allow', () => {
  let origin: Origin;
  before(async () => {
    origin = await startOrigin();
  });
  after(async () => origin.close());

  test('407 with Proxy-Authenticate without or with wrong credentials; right ones pass (request and CONNECT)', async () => {
    const proxy = new HttpProxy({
      routing: fixedRoute(fakeDialer({ 'web.vpn': '127.0.0.1' })),
      port: 0,
      auth: { username: 'alice', password: 's3cr:et' },
    });
    const denied: unknown[] = [];
    proxy.on('denied', (d) => denied.push(d));
    const port = (await proxy.listen()).port;
    const url = `http://web.vpn:${origin.port}/echo`;
    const none = await viaProxy(port, url);
    assert.equal(none.status, 407);
    assert.match(String(none.headers['proxy-authenticate']), /^Basic realm="vpnproxy"/);
    assert.equal(none.body.toString(), 'proxy authentication required\n');
    const wrong = await viaProxy(port, url, {
      headers: { 'Proxy-Authorization': 'Basic ' + Buffer.from('alice:nope').toString('base64') },
    });
    assert.equal(wrong.status, 407);
    const good = await viaProxy(port, url, {
      headers: { 'Proxy-Authorization': 'Basic ' + Buffer.from('alice:s3cr:et').toString('base64') },
    });
    assert.equal(good.status, 200);
    const connectNoAuth = await rawExchange(port, `CONNECT web.vpn:${origin.port} HTTP/1.1\r\n\r\n`);
    assert.match(connectNoAuth.toString(), /^HTTP\/1\.1 407 Proxy Authentication Required\r\n[\s\S]*Proxy-Authenticate: Basic/);
    const ok = await curl(['-sS', '-p', '-x', `http://alice:s3cr%3Aet@127.0.0.1:${port}`, `${url}`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(denied.length, 3);
    await proxy.close();
  });

  test('a client outside --allow gets 403 and a close', async () => {
    const proxy = new HttpProxy({
      routing: fixedRoute(fakeDialer({ 'web.vpn': '127.0.0.1' })),
      port: 0,
      access: new AccessList(['10.0.0.0/8']),
    });
    const port = (await proxy.listen()).port;
    const seenBefore = origin.seen.length;
    const r = await rawExchange(port, `GET http://web.vpn:${origin.port}/ HTTP/1.1\r\n\r\n`);
    assert.match(r.toString(), /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*not allowed to use this proxy \(--allow\)\n$/);
    assert.equal(proxy.metrics.summary().denied, 1);
    assert.equal(origin.seen.length, seenBefore);
    await proxy.close();
  });
});

/**
 * A kept-alive upstream connection reset by the server while the tunnel is up: the tunnel's TCP reports the RST
 * as TRANSPORT_CLOSED with an ECONNRESET cause, which used to be answered 503 "VPN tunnel is not up".
 */
test('a reused upstream connection reset before the response: GET retried once on a fresh connection, POST with a body gets 502 naming the reset (never 503 while up)', async () => {
  // Answers the first request of each connection (keep-alive) and resets the connection on the second.
  const perConn: number[] = [];
  const origin = createTcpServer((s: Socket) => {
    const idx = perConn.push(0) - 1;
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      if (!d.toString('latin1').includes(' HTTP/1.1\r\n')) return;
      if (++perConn[idx]! >= 2) {
        s.resetAndDestroy();
        return;
      }
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n');
    });
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const originPort = (origin.address() as { port: number }).port;
  // The tunnel dialer's sockets, as the stack reports a RST.
  const inner = netDialer();
  const tunnelLike: Dialer = {
    ...inner,
    async connect(host, port, o) {
      const s = await inner.connect(host, port, o);
      const emit = s.emit.bind(s) as (ev: string | symbol, ...a: unknown[]) => boolean;
      (s as { emit: typeof emit }).emit = (ev, ...a) => {
        const e = a[0] as NodeJS.ErrnoException | undefined;
        if (ev === 'error' && e?.code === 'ECONNRESET')
          return emit('error', new VpnError('TRANSPORT_CLOSED', 'connection reset by peer (ECONNRESET)', { cause: e }));
        return emit(ev, ...a);
      };
      return s;
    },
  };
  const proxy = new HttpProxy({ routing: fixedRoute(tunnelLike), port: 0 });
  const port = (await proxy.listen()).port;
  const url = `http://127.0.0.1:${originPort}/x`;
  try {
    assert.equal((await viaProxy(port, url)).status, 200);
    const again = await viaProxy(port, url);
    assert.equal(again.status, 200, `reused connection reset: ${again.body.toString()}`);
    assert.equal(again.body.toString(), 'ok\n');
    assert.deepEqual(perConn, [2, 1], 'reset on the reused connection, answered on a fresh one');
    assert.equal((await viaProxy(port, url)).status, 200); // a new pooled connection
    const post = await viaProxy(port, url, { method: 'POST', body: Buffer.from('payload') });
    assert.equal(post.status, 502);
    assert.match(post.body.toString(), /^upstream 127\.0\.0\.1:\d+ reset the connection before responding \(a kept-alive connection; not retried/);
    assert.equal(perConn.length, 3, 'the POST was not sent again');
  } finally {
    await proxy.close();
    origin.close();
  }
});
