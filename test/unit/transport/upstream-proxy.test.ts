import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VpnError } from '../../../src/errors.js';
import { createTransport, Socks5UdpTransport, type Transport, type UpstreamProxy } from '../../../src/transport/index.js';
import { fakeHttpProxy, fakeSocks5 } from './fake-proxies.js';
import { frame, frameReader, tcpServer, udpEchoServer } from './servers.js';

const until = (cond: () => boolean, ms = 3000) =>
  new Promise<void>((res, rej) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return res();
      if (Date.now() - t0 > ms) return rej(new Error('condition not met in time'));
      setTimeout(tick, 5);
    };
    tick();
  });

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<VpnError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof VpnError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return e;
  }
  return assert.fail(`expected rejection with ${code}`);
}

/** A framed echo server (OpenVPN TCP framing): every frame comes back. */
const framedEcho = () => tcpServer((s) => s.on('data', frameReader((f) => s.write(frame(f)))));

async function roundTrip(t: Transport, packets: Buffer[]): Promise<void> {
  const got: Buffer[] = [];
  t.on('packet', (p) => got.push(Buffer.from(p)));
  for (const p of packets) t.send(p);
  await until(() => got.length >= packets.length);
  assert.deepEqual(got.slice(-packets.length), packets);
}

const PKTS = [Buffer.from('hello'), Buffer.alloc(1400, 7), Buffer.from([0x38, 1, 2, 3])];

test('HTTP CONNECT without authentication; bytes sent right after the 200 head reach the transport', async () => {
  const echo = await framedEcho();
  const px = await fakeHttpProxy({ extra: frame(Buffer.from('early')) });
  const t = createTransport('tcp', { host: '127.0.0.1', port: echo.port, upstreamProxy: { type: 'http', host: '127.0.0.1', port: px.port, userAgent: 'vp-test', headers: [['X-A', '1']] } });
  const got: Buffer[] = [];
  t.on('packet', (p) => got.push(Buffer.from(p)));
  try {
    await t.connect();
    await until(() => got.length === 1);
    assert.equal(got[0]!.toString(), 'early');
    await roundTrip(t, PKTS);
    assert.match(px.log[0]!, new RegExp(`^CONNECT 127\\.0\\.0\\.1:${echo.port} HTTP/1\\.0\\r\\nHost: 127\\.0\\.0\\.1:${echo.port}\\r\\nUser-Agent: vp-test\\r\\nX-A: 1$`));
  } finally {
    await t.close();
    await px.stop();
    await echo.stop();
  }
});

test('HTTP CONNECT with Basic: sent with the first request when auth is basic; answered after a 407 when auto', async () => {
  const echo = await framedEcho();
  const px = await fakeHttpProxy({ user: 'alice', pass: 'pä:ss', scheme: 'basic' });
  try {
    for (const auth of ['basic', 'auto'] as const) {
      px.log.length = 0;
      const t = createTransport('tcp', { host: '127.0.0.1', port: echo.port, upstreamProxy: { type: 'http', host: '127.0.0.1', port: px.port, username: 'alice', password: 'pä:ss', auth } });
      try {
        await t.connect();
        await roundTrip(t, PKTS);
        assert.equal(px.log.length, auth === 'basic' ? 1 : 2, auth);
        assert.match(px.log.at(-1)!, /^Proxy-Authorization: Basic /m);
      } finally {
        await t.close();
      }
    }
  } finally {
    await px.stop();
    await echo.stop();
  }
});

test('HTTP CONNECT with Digest MD5 (qop auth, opaque) and SHA-256 (qop auth,auth-int)', async () => {
  const echo = await framedEcho();
  for (const scheme of ['digest-md5', 'digest-sha256'] as const) {
    const px = await fakeHttpProxy({ user: 'bob', pass: 's"e\\cret', scheme });
    const t = createTransport('tcp', { host: '127.0.0.1', port: echo.port, upstreamProxy: { type: 'http', host: '127.0.0.1', port: px.port, username: 'bob', password: 's"e\\cret' } });
    try {
      await t.connect();
      await roundTrip(t, PKTS);
      assert.equal(px.log.length, 2);
      assert.match(px.log[1]!, /^Proxy-Authorization: Digest username="bob", realm="lab proxy", nonce="[^"]+", uri="127\.0\.0\.1:\d+", algorithm=(MD5|SHA-256), response="[0-9a-f]+", qop=auth, nc=00000001, cnonce="[0-9a-f]+"/m);
      if (scheme === 'digest-md5') assert.match(px.log[1]!, /opaque="op1"/);
    } finally {
      await t.close();
      await px.stop();
    }
  }
  await echo.stop();
});

test('Digest with stale=true: the new nonce is answered once, then the refusal is final', async () => {
  let n = 0;
  const srv = await tcpServer((s) => {
    s.once('data', () => {
      n++;
      s.end(`HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Digest realm="r", nonce="n${n}", qop="auth"${n > 1 ? ', stale=true' : ''}\r\n\r\n`);
    });
  });
  try {
    await rejectsWith(
      createTransport('tcp', { host: '127.0.0.1', port: 9, upstreamProxy: { type: 'http', host: '127.0.0.1', port: srv.port, username: 'u', password: 'p' } }).connect(),
      'PROXY_AUTH_FAILED',
      /refused the credentials of user "u"/,
    );
    assert.equal(n, 3, 'no credentials, Digest, Digest with the fresh nonce');
  } finally {
    await srv.stop();
  }
});

test('407: one line naming the methods offered, PROXY_AUTH_FAILED, whether credentials are missing, wrong or unanswerable', async () => {
  const px = await fakeHttpProxy({ user: 'alice', pass: 'right', scheme: ['Basic realm="corp"', 'NTLM', 'Digest realm="corp", nonce="x", algorithm=MD5'] });
  const ntlm = await fakeHttpProxy({ user: 'alice', pass: 'right', scheme: ['NTLM', 'Negotiate'] });
  const base: UpstreamProxy = { type: 'http', host: '127.0.0.1', port: px.port };
  const dial = (p: UpstreamProxy) => createTransport('tcp', { host: '127.0.0.1', port: 9, upstreamProxy: p }).connect();
  try {
    await rejectsWith(dial(base), 'PROXY_AUTH_FAILED', /HTTP proxy 127\.0\.0\.1:\d+ requires authentication \(407 Proxy Authentication Required; it offers Basic realm "corp", NTLM, Digest \(MD5, realm "corp"\)\): give the proxy's user and password/);
    px.log.length = 0;
    await rejectsWith(dial({ ...base, username: 'alice', password: 'wrong' }), 'PROXY_AUTH_FAILED', /refused the credentials of user "alice" \(407 .*it offers Basic realm "corp"/);
    assert.equal(px.log.length, 3, 'no auth, then Digest, then Basic; no more');
    await rejectsWith(dial({ ...base, port: ntlm.port, username: 'alice', password: 'right' }), 'PROXY_AUTH_FAILED', /it offers NTLM, Negotiate\), and vpnproxy answers only Basic and Digest/);
    await rejectsWith(dial({ ...base, username: 'alice', password: 'right', auth: 'none' }), 'PROXY_AUTH_FAILED', /auth method none/);
    const basicOnly = await fakeHttpProxy({ user: 'a', pass: 'b', scheme: 'basic' });
    await rejectsWith(dial({ ...base, port: basicOnly.port, username: 'a', password: 'b', auth: 'auto-nct' }), 'PROXY_AUTH_FAILED', /only Digest is allowed here \('auto-nct'/);
    await basicOnly.stop();
    const tiny = await fakeHttpProxy({ user: 'a', pass: 'b', scheme: 'basic', wrongIs401: true });
    await rejectsWith(dial({ ...base, port: tiny.port, username: 'a', password: 'c', auth: 'basic' }), 'PROXY_AUTH_FAILED', /refused the credentials of user "a" \(401 Unauthorized; it offers Basic realm "lab proxy"\)/);
    await tiny.stop();
  } finally {
    await px.stop();
    await ntlm.stop();
  }
});

test('a refused CONNECT is PROXY_REFUSED with the status line; a proxy that is not there is CONN_REFUSED naming it', async () => {
  const px = await fakeHttpProxy({ refuse: '403 Forbidden' });
  try {
    await rejectsWith(
      createTransport('tcp', { host: '10.9.9.9', port: 1194, upstreamProxy: { type: 'http', host: '127.0.0.1', port: px.port } }).connect(),
      'PROXY_REFUSED',
      /the HTTP proxy 127\.0\.0\.1:\d+ refused to connect us to 10\.9\.9\.9:1194: 403 Forbidden/,
    );
  } finally {
    await px.stop();
  }
  await rejectsWith(createTransport('tcp', { host: 'x', port: 1, upstreamProxy: { type: 'http', host: '127.0.0.1', port: px.port } }).connect(), 'CONN_REFUSED', /^HTTP proxy 127\.0\.0\.1:\d+: connection refused/);
});

test('a proxy that never answers times out; close() during the handshake ends connect()', async () => {
  const silent = await tcpServer(() => {});
  try {
    await rejectsWith(
      createTransport('tcp', { host: 'x', port: 1, upstreamProxy: { type: 'http', host: '127.0.0.1', port: silent.port, handshakeTimeoutMs: 200 } }).connect(),
      'CONNECT_TIMEOUT',
      /did not send its answer to CONNECT within 200 ms/,
    );
    const t = createTransport('tcp', { host: 'x', port: 1, upstreamProxy: { type: 'socks5', host: '127.0.0.1', port: silent.port } });
    const p = t.connect();
    setTimeout(() => void t.close(), 50);
    await rejectsWith(p, 'TRANSPORT_CLOSED');
  } finally {
    await silent.stop();
  }
});

test('SOCKS5 CONNECT with and without user/password; a domain name target; wrong password and refusals', async () => {
  const echo = await framedEcho();
  const open = await fakeSocks5();
  const authed = await fakeSocks5({ user: 'carol', pass: 'pw' });
  const refusing = await fakeSocks5({ rep: 2 });
  try {
    for (const [px, creds, host] of [[open, {}, '127.0.0.1'], [authed, { username: 'carol', password: 'pw' }, 'localhost']] as const) {
      const t = createTransport('tcp', { host, port: echo.port, upstreamProxy: { type: 'socks5', host: '127.0.0.1', port: px.port, ...creds } });
      try {
        await t.connect();
        await roundTrip(t, PKTS);
      } finally {
        await t.close();
      }
    }
    assert.deepEqual(authed.log, ['auth carol', `CONNECT localhost:${echo.port}`]);
    const to = (port: number, extra: Partial<UpstreamProxy> = {}) =>
      createTransport('tcp', { host: '127.0.0.1', port: echo.port, upstreamProxy: { type: 'socks5', host: '127.0.0.1', port, ...extra } }).connect();
    await rejectsWith(to(authed.port, { username: 'carol', password: 'nope' }), 'PROXY_AUTH_FAILED', /SOCKS5 proxy 127\.0\.0\.1:\d+ refused the credentials of user "carol"/);
    await rejectsWith(to(authed.port), 'PROXY_AUTH_FAILED', /requires authentication/);
    await rejectsWith(to(refusing.port), 'PROXY_REFUSED', /refused to connect us to 127\.0\.0\.1:\d+: connection not allowed by ruleset/);
  } finally {
    await open.stop();
    await authed.stop();
    await refusing.stop();
    await echo.stop();
  }
});

test('SOCKS5 UDP ASSOCIATE: every datagram framed, relay 0.0.0.0 means the proxy address, the control connection ends it', async () => {
  const echo = await udpEchoServer();
  const px = await fakeSocks5({ user: 'u', pass: 'p', zeroRelay: true });
  const t = createTransport('udp', { host: '127.0.0.1', port: echo.port, upstreamProxy: { type: 'socks5', host: '127.0.0.1', port: px.port, username: 'u', password: 'p' } });
  assert.ok(t instanceof Socks5UdpTransport);
  try {
    await t.connect();
    assert.equal(t.relayAddress?.host, '127.0.0.1');
    await roundTrip(t, PKTS);
    // what reached the server is the payload alone
    assert.deepEqual(echo.received.slice(-3), PKTS);
    assert.equal(px.udpRelayed, 3);
    assert.deepEqual(px.log, ['auth u', 'UDP 0.0.0.0:0']);
    const errs: Error[] = [];
    let closed = false;
    t.on('error', (e) => errs.push(e));
    t.on('close', () => (closed = true));
    await px.stop(); // the proxy drops the control connection
    await until(() => closed);
    assert.match(errs[0]!.message, /closed the control connection of our UDP association/);
  } finally {
    await t.close();
    await echo.stop();
  }
});

test('an HTTP proxy for UDP is refused at creation', () => {
  assert.throws(() => createTransport('udp', { host: 'h', port: 1, upstreamProxy: { type: 'http', host: 'p', port: 3 } }), /cannot go through an HTTP proxy/);
});
