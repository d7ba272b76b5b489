/**
 * Property tests of every parser of bytes an upstream proxy sends (and of the URL a user types): any input
 * gives a value or a clean VpnError, never another exception, never a read past the buffer, and each runs
 * in time linear in its input. A hostile proxy fed through the real dialers ends the handshake with a
 * clean error or a timeout, never a hang.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VpnError } from '../../../src/errors.js';
import { MAX_HEAD_BYTES, describeChallenges, digestAuthorization, digestSupported, parseChallenges, parseResponseHead } from '../../../src/transport/http-connect.js';
import { decodeUdpDatagram, encodeAddress, encodeUdpDatagram, parseAddress, parseMethodReply, parseReply, parseUserPassReply } from '../../../src/transport/socks5.js';
import { dialUpstream } from '../../../src/transport/proxy-dial.js';
import { parseUpstreamProxyUrl } from '../../../src/transport/upstream-proxy.js';
import { tcpServer } from './servers.js';

function clean<T>(fn: () => T): T | VpnError {
  try {
    return fn();
  } catch (e) {
    assert.ok(e instanceof VpnError, `not a VpnError: ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'one-line message');
    return e;
  }
}

const httpSnippets = ['HTTP/1.1 ', 'HTTP/1.0 200 OK', '407', ' Proxy Authentication Required', '\r\n', '\n', '\r\n\r\n', 'Proxy-Authenticate: ', 'Digest ', 'Basic realm="x"', 'nonce="', '"', ',', '=', ' ', '\t', ': ', '\0', '\xff'];
const httpish = fc.array(fc.oneof(fc.constantFrom(...httpSnippets), fc.string({ maxLength: 8 })), { maxLength: 40 }).map((a) => Buffer.from(a.join(''), 'latin1'));
const anyBytes = fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u));

test('parseResponseHead: a head, undefined (incomplete) or PROXY_PROTOCOL; never beyond its limit', () => {
  fc.assert(
    fc.property(fc.oneof(httpish, anyBytes), fc.integer({ min: 16, max: 4096 }), (buf, max) => {
      const r = clean(() => parseResponseHead(buf, max));
      if (r instanceof VpnError) assert.equal(r.code, 'PROXY_PROTOCOL');
      else if (r) {
        assert.ok(r.length <= buf.length && r.length <= max + 2);
        assert.ok(r.status >= 100 && r.status <= 999);
      } else assert.ok(buf.length < max);
    }),
    { numRuns: 3000 },
  );
  // a head that never ends is refused at the limit, not buffered forever
  const big = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n'), Buffer.alloc(MAX_HEAD_BYTES, 0x61)]);
  assert.equal((clean(() => parseResponseHead(big)) as VpnError).code, 'PROXY_PROTOCOL');
  assert.deepEqual(parseResponseHead(Buffer.from('HTTP/1.1 200 Connection established\r\nA: b\r\n c\r\n\r\nrest')), {
    version: '1.1', status: 200, reason: 'Connection established', headers: [['a', 'b c']], length: 49,
  });
});

test('parseChallenges never throws; what it finds can be described and, for Digest, answered or refused cleanly', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(httpish.map((b) => b.toString('latin1')), fc.string({ maxLength: 200 })), { maxLength: 3 }), (values) => {
      const chs = parseChallenges(values);
      describeChallenges(chs);
      for (const ch of chs) {
        assert.match(ch.scheme, /^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
        if (ch.scheme === 'digest') {
          const r = clean(() => digestAuthorization(ch, { username: 'u', password: 'p' }, 'CONNECT', 'h:1', 'c'));
          assert.equal(r instanceof VpnError, !digestSupported(ch));
        }
      }
    }),
    { numRuns: 3000 },
  );
  assert.deepEqual(parseChallenges(['Negotiate abc==, Digest realm="a\\"b", nonce=n1, qop="auth,auth-int", Basic realm=x']), [
    { scheme: 'negotiate', params: {} },
    { scheme: 'digest', params: { realm: 'a"b', nonce: 'n1', qop: 'auth,auth-int' } },
    { scheme: 'basic', params: { realm: 'x' } },
  ].map((c) => ({ ...c, params: Object.assign(Object.create(null), c.params) })));
  // linear: a long run of commas and quotes is quick
  const t0 = Date.now();
  parseChallenges([',"'.repeat(8000), 'a '.repeat(8000), 'x=,'.repeat(8000)]);
  assert.ok(Date.now() - t0 < 2000);
});

test('SOCKS5 reply parsers: a value, undefined (incomplete) or PROXY_PROTOCOL; never past the buffer', () => {
  fc.assert(
    fc.property(anyBytes, (buf) => {
      for (const f of [parseMethodReply, parseUserPassReply, parseReply]) {
        const r = clean(() => f(buf));
        if (r instanceof VpnError) assert.equal(r.code, 'PROXY_PROTOCOL');
        else if (r) assert.ok(r.used <= buf.length);
      }
      const a = clean(() => parseAddress(buf, 0));
      if (a && !(a instanceof VpnError)) assert.ok(a.end <= buf.length);
      const d = clean(() => decodeUdpDatagram(buf));
      if (d instanceof VpnError) assert.equal(d.code, 'PROXY_PROTOCOL');
    }),
    { numRuns: 5000 },
  );
  // every prefix of a valid reply is incomplete, the whole is parsed
  const reply = Buffer.concat([Buffer.from([5, 0, 0]), encodeAddress('relay.example', 4000)]);
  for (let i = 0; i < reply.length; i++) assert.equal(parseReply(reply.subarray(0, i)), undefined);
  assert.deepEqual(parseReply(reply), { value: { rep: 0, bound: { host: 'relay.example', port: 4000 } }, used: reply.length });
});

test('SOCKS5 UDP datagrams round-trip for IPv4, IPv6 and names', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
      fc.integer({ min: 1, max: 65535 }),
      fc.uint8Array({ maxLength: 300 }),
      (host, port, payload) => {
        const d = decodeUdpDatagram(encodeUdpDatagram({ host, port }, payload));
        assert.equal(d.from.port, port);
        assert.deepEqual(new Uint8Array(d.payload), payload);
        if (host.includes(':')) assert.equal(new URL(`http://[${d.from.host}]/`).hostname, new URL(`http://[${host}]/`).hostname);
        else assert.equal(d.from.host, host);
      },
    ),
    { numRuns: 1000 },
  );
});

test('parseUpstreamProxyUrl: a proxy or a USAGE error for any string', () => {
  fc.assert(
    fc.property(fc.oneof(fc.webUrl({ withQueryParameters: true }), fc.string({ maxLength: 80 }), fc.constantFrom('http://', 'socks5://u:p@', 'http://[::1]:0', 'socks5h://%zz@h')), (s) => {
      const r = clean(() => parseUpstreamProxyUrl(s));
      if (r instanceof VpnError) assert.equal(r.code, 'USAGE');
      else assert.ok(r.port >= 0 && r.port <= 65535 && r.host.length > 0);
    }),
    { numRuns: 2000 },
  );
});

test('a hostile proxy through the real dialers: random answers end in a clean error, never a hang', async () => {
  let answer = Buffer.alloc(0);
  const srv = await tcpServer((s) => {
    s.once('data', () => {
      s.write(answer);
      if (answer.length % 2) s.end();
    });
  });
  try {
    await fc.assert(
      fc.asyncProperty(fc.oneof(httpish, anyBytes), fc.constantFrom('http', 'socks5'), async (bytes, type) => {
        answer = bytes;
        try {
          const { socket } = await dialUpstream({ type: type as 'http' | 'socks5', host: '127.0.0.1', port: srv.port, username: 'u', password: 'p', handshakeTimeoutMs: 150 }, { host: '10.1.2.3', port: 1194 });
          socket.destroy();
        } catch (e) {
          assert.ok(e instanceof VpnError, String(e));
          assert.ok(['PROXY_PROTOCOL', 'PROXY_AUTH_FAILED', 'PROXY_REFUSED', 'CONNECT_TIMEOUT', 'TRANSPORT_CLOSED', 'CONN_REFUSED'].includes(e.code), `${e.code}: ${e.message}`);
        }
      }),
      { numRuns: 60 },
    );
  } finally {
    await srv.stop();
  }
});
