import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HELP, parseCommandLine, parseListenAddr, type VpnCommand } from '../../../src/cli/args.js';
import { exitCodeFor, VpnError } from '../../../src/errors.js';

const parse = (...a: string[]) => parseCommandLine(['openvpn', 'p.ovpn', ...a]) as VpnCommand;
const usageError = (f: () => unknown, re: RegExp) =>
  assert.throws(f, (e: unknown) => e instanceof VpnError && e.code === 'USAGE' && exitCodeFor(e) === 2 && re.test(e.message));

test('defaults follow the documented contract', () => {
  const c = parse();
  assert.deepEqual(c.httpProxy, { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(c.socksProxy, { host: '127.0.0.1', port: 1080 });
  assert.equal(c.status, undefined);
  assert.deepEqual(c.allow, ['127.0.0.0/8', '::1/128']);
  assert.equal(c.routePolicy, 'follow');
  assert.deepEqual(c.forwards, []);
  assert.equal(c.logLevel, 'info');
});

test('every contract option parses', () => {
  const c = parse(
    '--http-proxy', 'off', '--socks-proxy', '0.0.0.0:0', '--forward', '5000:intranet:80', '--forward', '0.0.0.0:5001:10.0.0.1:22',
    '--remote-forward', '8080:127.0.0.1:3000', '--proxy-auth', 'u:p:w', '--allow', '10.0.0.0/8', '--allow', '127.0.0.1',
    '--dns', '10.8.0.1', '--dns', '1.1.1.1', '--route-all', '--status', '9100', '--pcap', 'x.pcap', '--log-format', 'json',
  );
  assert.equal(c.httpProxy, undefined);
  assert.deepEqual(c.socksProxy, { host: '0.0.0.0', port: 0 });
  assert.deepEqual(c.forwards, [
    { bindHost: '127.0.0.1', bindPort: 5000, host: 'intranet', port: 80 },
    { bindHost: '0.0.0.0', bindPort: 5001, host: '10.0.0.1', port: 22 },
  ]);
  assert.deepEqual(c.remoteForwards, [{ remotePort: 8080, host: '127.0.0.1', port: 3000 }]);
  assert.deepEqual(c.proxyAuth, { username: 'u', password: 'p:w' });
  assert.deepEqual(c.allow, ['10.0.0.0/8', '127.0.0.1']);
  assert.deepEqual(c.dns, ['10.8.0.1', '1.1.1.1']);
  assert.equal(c.routePolicy, 'route-all');
  assert.deepEqual(c.status, { host: '127.0.0.1', port: 9100 });
  assert.equal(parse('--direct-unrouted').routePolicy, 'direct-unrouted');
});

test('listen addresses', () => {
  assert.deepEqual(parseListenAddr('--x', '[::1]:8080'), { host: '::1', port: 8080 });
  assert.deepEqual(parseListenAddr('--x', 'localhost:1'), { host: 'localhost', port: 1 });
  usageError(() => parseListenAddr('--x', 'example.com:80'), /not an IP address/);
  usageError(() => parseListenAddr('--x', '127.0.0.1:99999'), /not a port/);
  usageError(() => parseListenAddr('--x', ':80'), /expects HOST:PORT/);
});

test('bad input is a usage error (exit 2) with a useful message', () => {
  usageError(() => parse('--bogus'), /bogus/);
  usageError(() => parse('--route-all', '--direct-unrouted'), /exclude each other/);
  usageError(() => parse('--dns', 'resolver.example'), /--dns takes an IPv4/);
  usageError(() => parse('--allow', '10.0.0.0/33'), /--allow/);
  usageError(() => parse('--forward', '80:host'), /--forward expects/);
  usageError(() => parse('--forward', '8080:fd00:b:2::2:80'), /an IPv6 address goes in brackets/);
  assert.deepEqual(parse('--forward', '8080:[fd00:b:2::2]:80').forwards, [{ bindHost: '127.0.0.1', bindPort: 8080, host: 'fd00:b:2::2', port: 80 }]);
  usageError(() => parse('--remote-forward', '80:h:1', '--remote-forward', '80:h:2'), /given twice/);
  usageError(() => parse('--proxy-auth', 'nopassword'), /USER:PASS/);
  usageError(() => parseCommandLine(['openvpn']), /exactly one PROFILE/);
  usageError(() => parseCommandLine(['wireguard', 'x']), /unknown command/);
});

test('help and version', () => {
  assert.deepEqual(parseCommandLine(['--help']), { command: 'help' });
  assert.deepEqual(parseCommandLine([]), { command: 'help' });
  assert.deepEqual(parseCommandLine(['--version']), { command: 'version' });
  for (const flag of ['--http-proxy', '--socks-proxy', '--forward', '--remote-forward', '--proxy-auth', '--allow', '--auth-user-pass', '--dns', '--route-all', '--direct-unrouted', '--status', '--pcap', '--log-level', '--log-format']) {
    assert.ok(HELP.includes(flag), `HELP documents ${flag}`);
  }
});

test('one command word per protocol: common options once, each protocol its own few', () => {
  const o = parseCommandLine(['openvpn', 'p.ovpn', '--auth-user-pass', 'c.txt', '--no-tls-ekm', '--http-proxy', '9000']) as VpnCommand;
  assert.equal(o.protocol.name, 'openvpn');
  assert.equal(o.configPath, 'p.ovpn');
  assert.deepEqual(o.protocolFlags, { authUserPassFile: 'c.txt', tlsEkm: false, openUrl: false });
  assert.deepEqual(o.httpProxy, { host: '127.0.0.1', port: 9000 });
  const up = parseCommandLine(['openvpn', 'p.ovpn', '--upstream-proxy', 'socks5://u:p@10.0.0.1:1080']) as VpnCommand;
  assert.deepEqual(up.protocolFlags, { authUserPassFile: undefined, tlsEkm: true, openUrl: false, upstreamProxy: 'socks5://u:p@10.0.0.1:1080' });
  const tf = parseCommandLine(['openvpn', 'p.ovpn', '--otp', '123456', '--otp-command', 'pass otp vpn', '--open-url']) as VpnCommand;
  assert.deepEqual(tf.protocolFlags, { authUserPassFile: undefined, tlsEkm: true, openUrl: true, otp: '123456', otpCommand: 'pass otp vpn' });
  const i = parseCommandLine(['ipsec', 'swanctl.conf', '--connection', 'office', '--ping', '10.0.0.1']) as VpnCommand;
  assert.equal(i.protocol.name, 'ipsec');
  assert.deepEqual(i.protocolFlags, { connection: 'office', authUserPassFile: undefined });
  assert.equal(i.ping, '10.0.0.1');
  usageError(() => parseCommandLine(['ipsec', 'swanctl.conf', '--no-tls-ekm']), /no-tls-ekm/);
  usageError(() => parseCommandLine(['openvpn', 'p.ovpn', '--connection', 'x']), /connection/);
  usageError(() => parseCommandLine(['ipsec']), /takes a swanctl\.conf or \.sswan profile, or --server/);
  usageError(() => parseCommandLine(['ipsec', 'a.conf', 'b.conf']), /exactly one swanctl\.conf/);
  for (const s of ['vpnproxy openvpn PROFILE.ovpn', 'vpnproxy ipsec swanctl.conf', '--connection NAME', '--no-tls-ekm']) assert.ok(HELP.includes(s), `HELP shows ${s}`);
  assert.ok(HELP.indexOf('--http-proxy') < HELP.indexOf('--auth-user-pass'), 'common options first, then each protocol');
});
