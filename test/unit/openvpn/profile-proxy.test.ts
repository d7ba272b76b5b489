import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VpnError, type ErrorCode } from '../../../src/errors.js';
import { parseProfile } from '../../../src/openvpn/profile.js';
import { resolveUpstreamProxies } from '../../../src/openvpn/setup.js';

const FIXDIR = fileURLToPath(new URL('../../fixtures/profiles/', import.meta.url));
const CA = readFileSync(join(FIXDIR, 'keys/ca.crt'), 'utf8');

/** A TCP client profile; `extra` starts at line 5. */
const client = (extra: string, proto = 'tcp-client') => `client\ndev tun\nremote vpn.example.net 443\nproto ${proto}\n${extra}<ca>\n${CA}</ca>\nauth-user-pass\n`;

const files: Record<string, string> = { '/p/proxy.txt': 'pxuser\npx pass\n', '/p/empty.txt': '', '/p/socks.txt': 'su\nsp\n' };
const parse = (text: string) => parseProfile(text, { path: '/p/p.ovpn', readFile: (abs) => {
  const t = files[abs];
  if (t === undefined) throw Object.assign(new Error(`ENOENT: ${abs}`), { code: 'ENOENT' });
  return t;
} }).profile;

function rejects(fn: () => unknown, code: ErrorCode, re: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VpnError, `expected VpnError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, re);
}

test('http-proxy with an auth file, options and a timeout: Basic by default, headers in order', () => {
  const p = parse(client('http-proxy proxy.corp 3128 proxy.txt\nhttp-proxy-option VERSION 1.1\nhttp-proxy-option AGENT Mozilla/5.0 (X11)\nhttp-proxy-option CUSTOM-HEADER X-Team blue\nhttp-proxy-option CUSTOM-HEADER X-Empty\nhttp-proxy-timeout 7\nhttp-proxy-retry\n'));
  const px = p.remotes[0]!.connection.proxy!;
  assert.deepEqual(px, {
    type: 'http',
    host: 'proxy.corp',
    port: 3128,
    line: 5,
    auth: 'basic',
    credentials: { username: 'pxuser', password: 'px pass', source: 'file', path: '/p/proxy.txt' },
    wantsCredentials: true,
    httpVersion: '1.1',
    userAgent: 'Mozilla/5.0 (X11)',
    headers: [['X-Team', 'blue'], ['X-Empty', '']],
    timeout: 7,
  });
});

test('http-proxy auto / auto-nct / explicit method, and the inline <http-proxy-user-pass> block', () => {
  assert.equal(parse(client('http-proxy p 8080 auto\n')).remotes[0]!.connection.proxy!.auth, 'auto');
  assert.equal(parse(client('http-proxy p 8080 auto-nct\n')).remotes[0]!.connection.proxy!.auth, 'auto-nct');
  assert.equal(parse(client('http-proxy p 8080 proxy.txt digest\n')).remotes[0]!.connection.proxy!.auth, 'digest');
  const none = parse(client('http-proxy p 8080\n')).remotes[0]!.connection.proxy!;
  assert.equal(none.auth, 'auto');
  assert.equal(none.wantsCredentials, false);
  assert.equal(none.credentials, undefined);
  const inl = parse(client('http-proxy p 8080\n<http-proxy-user-pass>\nu1\np1\n</http-proxy-user-pass>\n')).remotes[0]!.connection.proxy!;
  assert.deepEqual(inl.credentials, { username: 'u1', password: 'p1', source: 'inline' });
  assert.equal(inl.auth, 'basic');
  // the inline block may come before http-proxy too, and 'auto' keeps its meaning with it
  const inl2 = parse(client('<http-proxy-user-pass>\nu1\np1\n</http-proxy-user-pass>\nhttp-proxy p 8080 auto\n')).remotes[0]!.connection.proxy!;
  assert.equal(inl2.auth, 'auto');
  assert.equal(inl2.credentials?.username, 'u1');
});

test('socks-proxy over UDP and TCP, default port 1080, auth file; per <connection>', () => {
  const u = parse(client('socks-proxy 10.0.0.9\n', 'udp')).remotes[0]!;
  assert.equal(u.proto, 'udp');
  assert.deepEqual(u.connection.proxy, { type: 'socks5', host: '10.0.0.9', port: 1080, line: 5, auth: 'auto', wantsCredentials: false, headers: [] });
  const t = parse(client('socks-proxy s.corp 1081 socks.txt\n')).remotes[0]!.connection.proxy!;
  assert.deepEqual(t.credentials, { username: 'su', password: 'sp', source: 'file', path: '/p/socks.txt' });
  const ce = parse(`client\ndev tun\n<connection>\nremote a 1194 udp\nsocks-proxy s1 1080\n</connection>\n<connection>\nremote b 443 tcp\n</connection>\n<ca>\n${CA}</ca>\nauth-user-pass\n`).remotes;
  assert.equal(ce[0]!.connection.proxy?.host, 's1');
  assert.equal(ce[1]!.connection.proxy, undefined);
});

test('errors name file:line', () => {
  rejects(() => parse(client('http-proxy 127.0.0.1 3128\n', 'udp')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'http-proxy' needs 'proto tcp-client'.*remote at line 3 is UDP/);
  rejects(() => parse(client('http-proxy p\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'http-proxy' needs 2 arguments/);
  rejects(() => parse(client('http-proxy p 99999\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'http-proxy port': 99999 is out of range/);
  rejects(() => parse(client('http-proxy p 3128 missing.txt\n')), 'PROFILE_FILE', /^\/p\/p\.ovpn:5: cannot read 'http-proxy auth' file \/p\/missing\.txt/);
  rejects(() => parse(client('http-proxy p 3128 empty.txt\n')), 'PROFILE_FILE', /^\/p\/p\.ovpn:5: http-proxy auth file \/p\/empty\.txt is empty/);
  rejects(() => parse(client('http-proxy p 3128 proxy.txt kerberos\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'http-proxy auth-method': expected one of none\|basic\|digest/);
  rejects(() => parse(client('http-proxy p 3128\nsocks-proxy s 1080\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:6: 'socks-proxy' cannot be combined with 'http-proxy' \(line 5\)/);
  rejects(() => parse(client('http-proxy-option FOO bar\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'http-proxy-option': expected VERSION, AGENT or CUSTOM-HEADER/);
  rejects(() => parse(client('http-proxy-option VERSION 2.0\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'http-proxy-option VERSION': expected one of 1\.0\|1\.1/);
  rejects(() => parse(client('http-proxy-option CUSTOM-HEADER "a b" c\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'http-proxy-option CUSTOM-HEADER': bad header name/);
  rejects(() => parse(client('socks-proxy s 1080 auto\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'socks-proxy': 'auto' is only for http-proxy/);
  rejects(() => parse(client('<http-proxy-user-pass>\n</http-proxy-user-pass>\n')), 'PROFILE_SYNTAX', /^\/p\/p\.ovpn:5: 'http-proxy-user-pass' is empty/);
});

test('resolveUpstreamProxies: the profile proxy with its credentials, the environment, and the override URL', () => {
  const prof = parse(client('http-proxy proxy.corp 3128 proxy.txt\nhttp-proxy-option AGENT x\n'));
  const r = prof.remotes[0]!;
  assert.deepEqual(resolveUpstreamProxies(prof, undefined, {})(r), {
    type: 'http', host: 'proxy.corp', port: 3128, username: 'pxuser', password: 'px pass', auth: 'basic', userAgent: 'x',
  });
  // no credentials in the profile: the environment gives them
  const bare = parse(client('http-proxy proxy.corp 3128\n'));
  assert.deepEqual(resolveUpstreamProxies(bare, undefined, { VPNPROXY_PROXY_USERNAME: 'e', VPNPROXY_PROXY_PASSWORD: 'f' })(bare.remotes[0]!), {
    type: 'http', host: 'proxy.corp', port: 3128, username: 'e', password: 'f', auth: 'auto',
  });
  // HTTPS_PROXY / ALL_PROXY are never read
  assert.equal(resolveUpstreamProxies(parse(client('')), undefined, { HTTPS_PROXY: 'http://x:1', ALL_PROXY: 'socks5://y:2' })(parse(client('')).remotes[0]!), undefined);
  // the override replaces the profile's proxy
  assert.deepEqual(resolveUpstreamProxies(prof, 'socks5://a%40b:p%3Aw@[::1]:1081', {})(r), { type: 'socks5', host: '::1', port: 1081, username: 'a@b', password: 'p:w' });
  assert.deepEqual(resolveUpstreamProxies(prof, 'http://10.1.1.1', { VPNPROXY_PROXY_USERNAME: 'e', VPNPROXY_PROXY_PASSWORD: 'f' })(r), { type: 'http', host: '10.1.1.1', port: 3128, username: 'e', password: 'f' });
  rejects(() => resolveUpstreamProxies(parse(client('', 'udp')), 'http://u:secret@p:3128'), 'USAGE', /--upstream-proxy http:\/\/u:\*\*\*@p:3128: an HTTP proxy carries only TCP.*\/p\/p\.ovpn:3\) is UDP/);
  rejects(() => resolveUpstreamProxies(prof, 'https://p:1'), 'USAGE', /scheme https: is not supported/);
  rejects(() => resolveUpstreamProxies(prof, 'not a url'), 'USAGE', /not a URL/);
  // a profile asking for credentials nobody gives
  const auto = parse(client('http-proxy p 3128 auto\n'));
  rejects(() => resolveUpstreamProxies(auto, undefined, {}), 'USAGE', /^\/p\/p\.ovpn:5: the http-proxy needs a username and password/);
});

test('a proxy that refuses our credentials ends the connection for good; a refused CONNECT is retried like a refused connection', async () => {
  const { isFatalOpenVpn } = await import('../../../src/openvpn/backend.js');
  assert.equal(isFatalOpenVpn('transport-error', new VpnError('PROXY_AUTH_FAILED', 'x')), true);
  assert.equal(isFatalOpenVpn('transport-error', new VpnError('PROXY_REFUSED', 'x')), false);
});

test('prepareOpenVpn: the upstream proxy reaches the transport of each session (library option upstreamProxy)', async () => {
  const { prepareOpenVpn } = await import('../../../src/openvpn/setup.js');
  const { TransportError } = await import('../../../src/transport/index.js');
  const seen: unknown[] = [];
  const createTransport = (kind: 'udp' | 'tcp', opts: { upstreamProxy?: unknown }) => {
    seen.push({ kind, proxy: opts.upstreamProxy });
    return {
      kind,
      connect: () => Promise.reject(new TransportError('PROXY_AUTH_FAILED', 'no', { fatal: true })),
      send() {},
      on() {
        return this;
      },
      off() {
        return this;
      },
      close: () => Promise.resolve(),
    } as never;
  };
  const text = client('socks-proxy 10.0.0.9 1080\n', 'udp').replace('auth-user-pass\n', '');
  const withCert = text.replace('<ca>', 'auth-user-pass\n<ca>');
  for (const [upstreamProxy, want] of [
    [undefined, { type: 'socks5', host: '10.0.0.9', port: 1080 }],
    ['socks5://u:p@10.0.0.8:1081', { type: 'socks5', host: '10.0.0.8', port: 1081, username: 'u', password: 'p' }],
  ] as const) {
    seen.length = 0;
    const { backend } = await prepareOpenVpn({ profile: withCert, username: 'a', password: 'b', upstreamProxy, createTransport, env: {} });
    const session = backend.createSession(0, undefined);
    await session.start().catch(() => {});
    await session.close();
    assert.deepEqual(seen, [{ kind: 'udp', proxy: want }]);
  }
});
