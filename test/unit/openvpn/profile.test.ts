import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VpnError, type ErrorCode } from '../../../src/errors.js';
import { loadProfile, parseProfile } from '../../../src/openvpn/profile.js';

const FIXDIR = fileURLToPath(new URL('../../fixtures/profiles/', import.meta.url));
const fixture = (name: string) => readFileSync(join(FIXDIR, name), 'utf8');
const CA = readFileSync(join(FIXDIR, 'keys/ca.crt'), 'utf8');
const TA = readFileSync(join(FIXDIR, 'keys/ta.key'), 'utf8');

/** A minimal valid client profile; `extra` starts at line 5. */
function client(extra: string): string {
  return `client\ndev tun\nremote vpn.example.net\nauth-user-pass\n${extra}<ca>\n${CA}</ca>\n`;
}

function rejects(fn: () => unknown, code: ErrorCode, re: RegExp): VpnError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VpnError, `expected VpnError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, re);
  return caught;
}

describe('provider-style profiles', () => {
  test('NordVPN style (UTF-8 BOM, CRLF, tls-auth + key-direction 1, AES-256-CBC, SHA512)', () => {
    const { profile: p, warnings } = parseProfile(fixture('nordvpn-style.ovpn'), { path: 'nordvpn-style.ovpn' });
    assert.deepEqual(warnings, []);
    assert.equal(p.mode, 'tls-client');
    assert.equal(p.pull, true);
    assert.equal(p.remotes.length, 1);
    const r = p.remotes[0]!;
    assert.deepEqual({ host: r.host, port: r.port, proto: r.proto, family: r.family }, { host: '203.0.113.10', port: 1194, proto: 'udp', family: 'any' });
    assert.equal(r.connection.tlsWrap?.kind, 'tls-auth');
    assert.equal(r.connection.tlsWrap?.kind === 'tls-auth' && r.connection.tlsWrap.direction, 1);
    assert.equal(r.connection.tunMtu, 1500);
    assert.equal(r.connection.tunMtuExtra, 32);
    assert.deepEqual(r.connection.mssfix, { value: 1450, explicit: true });
    assert.equal(p.auth, 'SHA512');
    assert.equal(p.cipher, 'AES-256-CBC');
    assert.deepEqual(p.verifyX509Name, { name: 'CN=us1234.nordvpn.com', type: 'subject' });
    assert.equal(p.remoteCertTls, 'server');
    assert.equal(p.renegSec, 0);
    assert.equal(p.ping, 15);
    assert.equal(p.pingRestart, 0);
    assert.deepEqual(p.compression, { kind: 'comp-lzo', mode: 'no' });
    assert.equal(p.authUserPass?.source, 'prompt');
    assert.equal(p.remoteRandom, true);
    assert.ok(p.ca?.startsWith('-----BEGIN CERTIFICATE-----\n'), 'CRLF removed from the inline PEM');
    assert.ok(!p.ca?.includes('\r'));
    assert.equal(p.keyDirection, 1);
    assert.deepEqual(p.dataCiphers.map((c) => c.name), ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305']);
    assert.equal(p.dataCiphersExplicit, false);
    assert.ok(p.ignored.some((i) => i.name === 'ping-timer-rem'));
  });

  test('Surfshark style (hostname remote, commented-out comp-lzo)', () => {
    const { profile: p } = parseProfile(fixture('surfshark-style.ovpn'));
    assert.equal(p.remotes[0]!.host, 'us-nyc.prod.surfshark.com');
    assert.equal(p.compression, undefined);
    assert.equal(p.remotes[0]!.connection.tlsWrap?.kind, 'tls-auth');
  });

  test('ProtonVPN style (several remotes, tls-crypt, optional cipher, scripts, pull-filter)', () => {
    const { profile: p, warnings } = parseProfile(fixture('protonvpn-style.ovpn'), { path: 'proton.ovpn' });
    assert.deepEqual(p.remotes.map((r) => `${r.host}:${r.port}/${r.proto}`), [
      '185.159.157.1:80/udp',
      '185.159.157.1:51820/udp',
      '185.159.157.1:4569/udp',
      '185.159.157.1:1194/udp',
      '185.159.157.1:5060/udp',
    ]);
    assert.equal(p.remotes[2]!.connection.tlsWrap?.kind, 'tls-crypt');
    assert.deepEqual(p.dataCiphers, [
      { name: 'AES-256-GCM', optional: false },
      { name: 'AES-128-GCM', optional: false },
      { name: 'CHACHA20-POLY1305', optional: true },
    ]);
    assert.equal(p.dataCiphersExplicit, true);
    assert.deepEqual(p.remotes[0]!.connection.mssfix, { value: 0, explicit: true });
    assert.deepEqual(p.pullFilters, [
      { action: 'ignore', prefix: 'dhcp-option DNS6' },
      { action: 'ignore', prefix: 'ifconfig-ipv6' },
      { action: 'ignore', prefix: 'route-ipv6' },
    ]);
    assert.equal(p.setenv['CLIENT_CERT'], '0');
    // one warning per program directive, with its line
    assert.deepEqual(
      warnings.map((w) => w.message),
      [
        "line 42: 'script-security' would run a program; ignored (vpnproxy never runs scripts)",
        "line 43: 'up' would run a program; ignored (vpnproxy never runs scripts)",
        "line 44: 'down' would run a program; ignored (vpnproxy never runs scripts)",
      ],
    );
    assert.equal(warnings[0]!.file, 'proton.ovpn');
  });

  test('AirVPN style (indented inline blocks, cert/key, setenv opt, ignore-unknown-option)', () => {
    const { profile: p, warnings } = parseProfile(fixture('airvpn-style.ovpn'));
    assert.deepEqual(warnings, [], 'setenv opt and ignore-unknown-option keep unknown directives silent');
    assert.equal(p.remotes[0]!.port, 443);
    assert.equal(p.remotes[0]!.connection.explicitExitNotify, 5);
    const w = p.remotes[0]!.connection.tlsWrap;
    assert.ok(w?.kind === 'tls-auth' && w.direction === 1);
    assert.ok(p.ca?.startsWith('-----BEGIN CERTIFICATE-----'), 'indentation removed');
    assert.ok(p.cert?.includes('-----BEGIN CERTIFICATE-----'));
    assert.ok(p.key?.includes('PRIVATE KEY-----'));
    assert.equal(p.authUserPass, undefined);
    assert.equal(p.authNocache, true);
    assert.equal(p.pushPeerInfo, true);
    assert.equal(p.setenv['UV_IPV6'], 'yes');
    assert.equal(p.dataCiphersFallback, 'AES-256-CBC');
    assert.equal(p.dataCiphers.length, 7);
    assert.ok(p.ignored.some((i) => i.name === 'block-outside-dns'));
    assert.ok(p.ignored.some((i) => i.name === 'totally-new-thing'));
  });
});

describe('files referenced relative to the profile', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vpnproxy-profile-'));
    mkdirSync(join(dir, 'sub'));
    cpSync(join(FIXDIR, 'keys'), join(dir, 'sub', 'keys'), { recursive: true });
    cpSync(join(FIXDIR, 'connections.ovpn'), join(dir, 'sub', 'connections.ovpn'));
    cpSync(join(FIXDIR, 'creds.txt'), join(dir, 'sub', 'creds.txt'));
    cpSync(join(FIXDIR, 'unsupported-fragment.ovpn'), join(dir, 'sub', 'unsupported-fragment.ovpn'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('<connection> blocks with per-connection options, file references, credentials file', async () => {
    const { profile: p, warnings } = await loadProfile(join(dir, 'sub', 'connections.ovpn'));
    assert.deepEqual(warnings, []);
    assert.equal(p.remotes.length, 3);
    const [a, b, c] = p.remotes as [typeof p.remotes[0], typeof p.remotes[0], typeof p.remotes[0]];
    // block 1: defaults from before the blocks
    assert.deepEqual([a.host, a.port, a.proto, a.family], ['vpn1.example.net', 1194, 'udp', 'any']);
    assert.equal(a.connection.tunMtu, 1400);
    assert.equal(a.connection.explicitExitNotify, 2);
    assert.deepEqual(a.connection.connectRetry, { seconds: 2, maxSeconds: 30 });
    assert.equal(a.connection.connectTimeout, 120);
    assert.equal(a.connection.tlsWrap?.kind, 'tls-crypt-v2');
    // block 2: its own port/proto/mtu
    assert.deepEqual([b.host, b.port, b.proto], ['vpn2.example.net', 443, 'tcp']);
    assert.equal(b.connection.tunMtu, 1300);
    assert.deepEqual(b.connection.mssfix, { value: 1200, flag: 'mtu', explicit: true });
    assert.equal(b.connection.connectTimeout, 10);
    assert.equal(b.connection.explicitExitNotify, 0);
    // block 3: --remote with quotes, proto tcp4, its own tls-auth replaces the global tls-crypt-v2
    assert.deepEqual([c.host, c.port, c.proto, c.family], ['vpn3.example.net', 8443, 'tcp', 'ipv4']);
    assert.ok(c.connection.tlsWrap?.kind === 'tls-auth' && c.connection.tlsWrap.direction === 1);
    assert.equal(c.line, 27);
    // files
    assert.ok(p.ca?.includes('BEGIN CERTIFICATE'));
    assert.ok(p.cert?.includes('BEGIN CERTIFICATE'));
    assert.ok(p.key?.includes('PRIVATE KEY'));
    assert.deepEqual(
      { source: p.authUserPass?.source, username: p.authUserPass?.username, password: p.authUserPass?.password, path: p.authUserPass?.path },
      { source: 'file', username: 'alice', password: 's3cr3t pass', path: join(dir, 'sub', 'creds.txt') },
    );
  });

  test('an unsupported wire-affecting directive fails with file:line', async () => {
    const path = join(dir, 'sub', 'unsupported-fragment.ovpn');
    await assert.rejects(loadProfile(path), (e: unknown) => {
      assert.ok(e instanceof VpnError);
      assert.equal(e.code, 'PROFILE_UNSUPPORTED');
      assert.equal(
        e.message,
        `${path}:21: 'fragment' is not supported (it changes the packet format); remove it or ask the server admin for a config without it`,
      );
      return true;
    });
  });

  test('missing referenced file → PROFILE_FILE with line and resolved path', async () => {
    const path = join(dir, 'sub', 'missing.ovpn');
    writeFileSync(path, 'client\ndev tun\nremote a\n\nca nothere/ca.crt\n');
    await assert.rejects(loadProfile(path), (e: unknown) =>
      e instanceof VpnError && e.code === 'PROFILE_FILE' && e.message === `${path}:5: cannot read 'ca' file ${join(dir, 'sub', 'nothere', 'ca.crt')}: no such file`,
    );
    await assert.rejects(loadProfile(join(dir, 'nope.ovpn')), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_FILE');
  });

  test('auth-user-pass file with only a username: password to be prompted', async () => {
    writeFileSync(join(dir, 'sub', 'user-only.txt'), 'bob\n');
    const path = join(dir, 'sub', 'u.ovpn');
    writeFileSync(path, client('auth-user-pass user-only.txt\n').replace(/<ca>[^]*<\/ca>/, 'ca keys/ca.crt'));
    const { profile } = await loadProfile(path);
    assert.equal(profile.authUserPass?.username, 'bob');
    assert.equal(profile.authUserPass?.password, undefined);
  });
});

describe('syntax details', () => {
  test('inline blocks with odd whitespace and a trailing word after the close tag', () => {
    const text = `client\nremote a\nauth-user-pass\n   <ca>   \n${CA}   </ca> trailing\n<tls-auth>\n${TA}\t</tls-auth>\nkey-direction 0\n`;
    const { profile } = parseProfile(text);
    assert.ok(profile.ca?.startsWith('-----BEGIN CERTIFICATE-----'));
    const w = profile.remotes[0]!.connection.tlsWrap;
    assert.ok(w?.kind === 'tls-auth' && w.direction === 0);
  });
  test('inline <auth-user-pass>, --prefixed directives, quotes', () => {
    const { profile } = parseProfile(client('--auth-user-pass\n<auth-user-pass>\nuser@example.com\np@ss word\n</auth-user-pass>\nverify-x509-name "Example Server" name\nstatic-challenge "Enter OTP" 1\n'));
    assert.deepEqual([profile.authUserPass?.source, profile.authUserPass?.username, profile.authUserPass?.password], ['inline', 'user@example.com', 'p@ss word']);
    assert.deepEqual(profile.verifyX509Name, { name: 'Example Server', type: 'name' });
    assert.deepEqual(profile.staticChallenge, { text: 'Enter OTP', echo: true, format: 'scrv1' });
  });
  test('unknown directives warn once per name', () => {
    const { warnings, profile } = parseProfile(client('foo 1\nbar\nfoo 2\n'), { path: 'p.ovpn' });
    assert.deepEqual(warnings.map((w) => w.message), ["line 5: unknown directive 'foo' ignored", "line 6: unknown directive 'bar' ignored"]);
    assert.equal(warnings[0]!.directive, 'foo');
    assert.equal(profile.ignored.filter((i) => i.name === 'foo').length, 2);
  });
  test('keepalive, timers, replay-window, tls versions, compression, remote-cert-ku, peer-fingerprint', () => {
    const fp = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0').toUpperCase()).join(':');
    const { profile: p } = parseProfile(
      client(
        `keepalive 10 60\nhand-window 30\ntran-window 100\ntls-timeout 3\nreneg-bytes 1000000000000\nreplay-window 128 30\ntls-version-min 1.2 or-highest\ntls-version-max 1.3\ncompress stub-v2\nremote-cert-ku a0 88\nremote-cert-eku "TLS Web Server Authentication"\npeer-fingerprint ${fp}\n<peer-fingerprint>\n# second\n${fp.toLowerCase()}\n</peer-fingerprint>\nauth-retry nointeract\nconnect-retry-max 5\nresolv-retry 30\nexplicit-exit-notify\n`,
      ),
    );
    assert.equal(p.ping, 10);
    assert.equal(p.pingRestart, 60);
    assert.equal(p.handWindow, 30);
    assert.equal(p.tranWindow, 100);
    assert.equal(p.tlsTimeout, 3);
    assert.equal(p.renegBytes, 1e12);
    assert.deepEqual(p.replayWindow, { size: 128, seconds: 30 });
    assert.equal(p.tlsVersionMin, '1.2');
    assert.equal(p.tlsVersionMinOrHighest, true);
    assert.equal(p.tlsVersionMax, '1.3');
    assert.deepEqual(p.compression, { kind: 'compress', algo: 'stub-v2' });
    assert.deepEqual(p.remoteCertKu, [0xa0, 0x88]);
    assert.equal(p.remoteCertEku, 'TLS Web Server Authentication');
    assert.deepEqual(p.peerFingerprints, [fp.toLowerCase(), fp.toLowerCase()]);
    assert.equal(p.authRetry, 'nointeract');
    assert.equal(p.connectRetryMax, 5);
    assert.equal(p.resolvRetry, 30);
    assert.equal(p.remotes[0]!.connection.explicitExitNotify, 1);
  });
  test('remote with port and proto; global port/proto apply to remotes without them, wherever they appear', () => {
    const { profile: p } = parseProfile(client('remote b 443 tcp\nremote c 53 udp6\nport 1195\nproto tcp-client\n'));
    assert.deepEqual(p.remotes.map((r) => `${r.host}:${r.port}/${r.proto}/${r.family}`), ['vpn.example.net:1195/tcp/any', 'b:443/tcp/any', 'c:53/udp/ipv6']);
  });
  test('IPv6 server addresses: a literal as written or in brackets, with udp6/tcp6-client', () => {
    const { profile: p } = parseProfile(client('remote fd00:101:1::2 1194 udp6\nremote [2001:DB8::1] 443 tcp6-client\nremote fd00::9\n'));
    assert.deepEqual(p.remotes.slice(1).map((r) => `${r.host} ${r.port}/${r.proto}/${r.family}`), ['fd00:101:1::2 1194/udp/ipv6', '2001:DB8::1 443/tcp/ipv6', 'fd00::9 1194/udp/any']);
  });
  test('connection-level options after the <connection> blocks are warned about', () => {
    const { warnings, profile } = parseProfile(client('<connection>\nremote x\n</connection>\ntun-mtu 1400\n'));
    assert.equal(profile.remotes.length, 1, "top-level 'remote' ignored with blocks present");
    assert.equal(profile.remotes[0]!.connection.tunMtu, 1500);
    assert.ok(warnings.some((w) => /'tun-mtu' after the <connection> blocks/.test(w.message)));
    assert.ok(warnings.some((w) => /line 3: 'remote' outside the <connection> blocks is ignored/.test(w.message)));
  });
  test('static key mode', () => {
    const { profile: p } = parseProfile(`dev tun\nremote 10.0.0.1\nifconfig 10.8.0.2 10.8.0.1\ncipher AES-256-CBC\nkey-direction 1\n<secret>\n${TA}</secret>\n`);
    assert.equal(p.mode, 'static-key');
    assert.equal(p.secret?.direction, 1);
    assert.equal(p.secret?.key.bytes.length, 256);
    assert.deepEqual(p.ifconfig, { local: '10.8.0.2', remote: '10.8.0.1' });
    assert.equal(p.remotes[0]!.connection.tlsWrap, undefined);
  });
});

describe('errors', () => {
  const cases: [string, string, ErrorCode, RegExp][] = [
    ['unterminated quote', 'verify-x509-name "abc\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: no closing quotation/],
    ['unclosed inline block', '<tls-auth>\nabc\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: inline block <tls-auth> is not closed/],
    ['missing argument', 'cipher\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: 'cipher' needs 1 argument/],
    ['bad number', 'tun-mtu 15OO\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: 'tun-mtu': bad number "15OO"/],
    ['bad proto', 'proto sctp\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: 'proto': bad protocol "sctp"/],
    ['bad static key in a block', '<tls-auth>\n-----BEGIN OpenVPN Static key V1-----\nabcd\n-----END OpenVPN Static key V1-----\n</tls-auth>\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: static key has 2 bytes/],
    ['bad backslash', 'cd c:\\openvpn\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: bad backslash/],
    ['tls-auth + tls-crypt', `<tls-auth>\n${TA}</tls-auth>\n<tls-crypt>\n${TA}</tls-crypt>\n`, 'PROFILE_SYNTAX', /mutually exclusive/],
    ['option not allowed in a connection block', '<connection>\nremote x\ncipher AES-256-GCM\n</connection>\n', 'PROFILE_SYNTAX', /^p\.ovpn:7: 'cipher' is not allowed inside a <connection> block/],
    ['connection block without remote', '<connection>\nproto tcp\n</connection>\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: each <connection> block must contain a 'remote'/],
    ['dev tap', 'dev tap0\n', 'PROFILE_UNSUPPORTED', /^p\.ovpn:5: 'dev tap0' is not supported \(layer-2/],
    ['http-proxy over UDP', 'http-proxy 127.0.0.1 3128\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: 'http-proxy' needs 'proto tcp-client'/],
    ['http-proxy NTLM in a connection block', '<connection>\nremote x\nproto tcp\nhttp-proxy proxy 8080 auto ntlm\n</connection>\n', 'PROFILE_UNSUPPORTED', /^p\.ovpn:8: 'http-proxy … ntlm' is not supported \(NTLM/],
    ['tls-server', 'tls-server\n', 'PROFILE_UNSUPPORTED', /'tls-server' is not supported \(it is a server directive\)/],
    ['mode server', 'mode server\n', 'PROFILE_UNSUPPORTED', /'mode server' is not supported/],
    ['proto tcp-server', 'proto tcp-server\n', 'PROFILE_UNSUPPORTED', /'proto tcp-server' is not supported/],
    ['key-method 1', 'key-method 1\n', 'PROFILE_UNSUPPORTED', /'key-method 1' is not supported/],
    ['capath', 'capath /etc/ssl/certs\n', 'PROFILE_UNSUPPORTED', /'capath' is not supported/],
    ['fragment via setenv opt', 'setenv opt fragment 1300\n', 'PROFILE_UNSUPPORTED', /^p\.ovpn:5: 'fragment' is not supported/],
    ['IPv4 literal with udp6', 'remote 192.0.2.7 1194 udp6\n', 'PROFILE_SYNTAX', /^p\.ovpn:5: 'remote 192\.0\.2\.7' is an IPv4 address but 'proto udp6' allows only IPv6/],
    ['IPv6 literal with proto tcp4', 'proto tcp4\nremote fd00::2\n', 'PROFILE_SYNTAX', /^p\.ovpn:6: 'remote fd00::2' is an IPv6 address but 'proto tcp4' allows only IPv4/],
    ['no inline file access', 'ca /etc/ca.crt\n', 'PROFILE_FILE', /^p\.ovpn:5: 'ca' refers to file \/etc\/ca\.crt/],
  ];
  for (const [name, extra, code, re] of cases) {
    test(name, () => {
      rejects(() => parseProfile(client(extra), { path: 'p.ovpn' }), code, re);
    });
  }
  test('semantic checks: no remote, no ca, tls-client without pull, no credentials', () => {
    rejects(() => parseProfile('client\nauth-user-pass\n'), 'PROFILE_SYNTAX', /no 'remote' directive/);
    rejects(() => parseProfile('client\nremote a\nauth-user-pass\n'), 'PROFILE_SYNTAX', /no 'ca'/);
    rejects(() => parseProfile(`tls-client\nremote a\nauth-user-pass\n<ca>\n${CA}</ca>\n`), 'PROFILE_UNSUPPORTED', /'tls-client' without 'pull'/);
    rejects(() => parseProfile(`client\nremote a\n<ca>\n${CA}</ca>\n`), 'PROFILE_SYNTAX', /no client credentials/);
    rejects(() => parseProfile('remote a\n'), 'PROFILE_SYNTAX', /needs 'ifconfig/);
  });
});
