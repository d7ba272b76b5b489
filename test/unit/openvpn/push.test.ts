import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  PushAccumulator,
  applyPullFilters,
  parsePushOptions,
  parseServerMessage,
  splitPushOptions,
  type ServerMessage,
} from '../../../src/openvpn/push.js';

// openvpn.md §0 ([local], stock 2.6.14 server) and §5.2 (AirVPN, openwrt/packages#28957)
const LOCAL =
  'PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500';
const AIRVPN =
  'PUSH_REPLY,comp-lzo no,redirect-gateway ipv6 def1 bypass-dhcp,dhcp-option DNS 10.20.106.1,dhcp-option DNS6 fde6:7a:7d20:106a::1,tun-ipv6,route-gateway 10.20.106.1,topology subnet,ping 10,ping-restart 60,ifconfig-ipv6 fde6:7a:7d20:106a::1086/64 fde6:7a:7d20:106a::1,ifconfig 10.20.106.136 255.255.255.0,peer-id 7,cipher CHACHA20-POLY1305,protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500';

function pushReply(m: ServerMessage): Extract<ServerMessage, { type: 'push-reply' }> {
  assert.equal(m.type, 'push-reply');
  return m as Extract<ServerMessage, { type: 'push-reply' }>;
}

describe('PUSH_REPLY', () => {
  test('the [local] 2.6.14 reply (with the trailing NUL)', () => {
    const m = pushReply(parseServerMessage(LOCAL + '\0'));
    assert.equal(m.continuation, 0);
    assert.equal(m.tokenUpdate, false);
    const o = m.options;
    assert.equal(o.routeGateway, '10.8.0.1');
    assert.equal(o.topology, 'subnet');
    assert.deepEqual(o.ifconfig, { local: '10.8.0.2', second: '255.255.255.0', netmask: '255.255.255.0' });
    assert.equal(o.ping, 10);
    assert.equal(o.pingRestart, 60);
    assert.equal(o.peerId, 0);
    assert.equal(o.cipher, 'AES-256-GCM');
    assert.deepEqual(o.protocolFlags, ['cc-exit', 'tls-ekm', 'dyn-tls-crypt']);
    assert.equal(o.tunMtu, 1500);
    assert.deepEqual(o.unknown, []);
    assert.deepEqual(o.errors, []);
    assert.equal(o.raw.length, 9);
  });

  test('the AirVPN reply', () => {
    const o = pushReply(parseServerMessage(AIRVPN)).options;
    assert.deepEqual(o.compression, { kind: 'comp-lzo', mode: 'no' });
    assert.deepEqual(o.redirectGateway, { flags: ['ipv6', 'def1', 'bypass-dhcp'] });
    assert.deepEqual(o.dns, ['10.20.106.1']);
    assert.deepEqual(o.dns6, ['fde6:7a:7d20:106a::1']);
    assert.deepEqual(o.ifconfig, { local: '10.20.106.136', second: '255.255.255.0', netmask: '255.255.255.0' });
    assert.deepEqual(o.ifconfigIpv6, { address: 'fde6:7a:7d20:106a::1086/64', remote: 'fde6:7a:7d20:106a::1' });
    assert.equal(o.peerId, 7);
    assert.equal(o.cipher, 'CHACHA20-POLY1305');
    assert.deepEqual(o.ignored, ['tun-ipv6']);
    assert.deepEqual(o.unknown, []);
  });

  test('ifconfig depends on topology (net30 default, p2p), even when topology comes later', () => {
    let o = parsePushOptions(['ifconfig 10.8.0.6 10.8.0.5']);
    assert.deepEqual(o.ifconfig, { local: '10.8.0.6', second: '10.8.0.5', netmask: '255.255.255.252', remote: '10.8.0.5' });
    o = parsePushOptions(['ifconfig 10.8.0.6 10.8.0.5', 'topology p2p']);
    assert.deepEqual(o.ifconfig, { local: '10.8.0.6', second: '10.8.0.5', netmask: '255.255.255.255', remote: '10.8.0.5' });
  });

  test('routes, dhcp-option domains, dns 2.6 format, misc', () => {
    const o = parsePushOptions(
      splitPushOptions(
        'route 10.0.0.0 255.0.0.0,route 192.168.5.0 255.255.255.0 10.8.0.1 5,route 172.16.0.1,route-ipv6 2001:db8::/32,dhcp-option DOMAIN corp.example,dhcp-option DOMAIN-SEARCH eng.example,dhcp-option WINS 10.0.0.9,dns server 1 address 10.0.0.53 [2001:db8::53]:5353,dns server 0 address 10.0.0.2:53 10.0.0.3,dns server 0 resolve-domains corp.example,dns search-domains a.example b.example,auth-token SESS_abc,auth-token-user Ym9i,key-derivation tls-ekm,explicit-exit-notify 3,inactive 600 1000,session-timeout 3600,ping-exit 120,compress stub-v2,echo hello,weird-thing 1',
      ),
    );
    assert.deepEqual(o.routes, [
      { network: '10.0.0.0', netmask: '255.0.0.0' },
      { network: '192.168.5.0', netmask: '255.255.255.0', gateway: '10.8.0.1', metric: 5 },
      { network: '172.16.0.1', netmask: '255.255.255.255' },
    ]);
    assert.deepEqual(o.routesIpv6, [{ network: '2001:db8::/32' }]);
    assert.equal(o.domain, 'corp.example');
    assert.deepEqual(o.searchDomains, ['eng.example', 'a.example', 'b.example']);
    assert.deepEqual(o.domains, ['corp.example', 'eng.example', 'a.example', 'b.example']);
    assert.deepEqual(o.dhcpOther, ['WINS 10.0.0.9']);
    assert.deepEqual(o.dnsServers.map((s) => s.priority), [0, 1]);
    assert.deepEqual(o.dnsServers[0]!.addresses, [{ host: '10.0.0.2', port: 53 }, { host: '10.0.0.3' }]);
    assert.deepEqual(o.dnsServers[0]!.resolveDomains, ['corp.example']);
    assert.deepEqual(o.dnsServers[1]!.addresses, [{ host: '10.0.0.53' }, { host: '2001:db8::53', port: 5353 }]);
    // `dns` servers take precedence over dhcp-option DNS, in priority order
    assert.deepEqual(o.dns, ['10.0.0.2', '10.0.0.3', '10.0.0.53']);
    assert.deepEqual(o.dns6, ['2001:db8::53']);
    assert.equal(o.authToken, 'SESS_abc');
    assert.equal(o.authTokenUser, 'bob');
    assert.equal(o.keyDerivation, 'tls-ekm');
    assert.equal(o.explicitExitNotify, 3);
    assert.deepEqual(o.inactive, { seconds: 600, bytes: 1000 });
    assert.equal(o.sessionTimeout, 3600);
    assert.equal(o.pingExit, 120);
    assert.deepEqual(o.compression, { kind: 'compress', algo: 'stub-v2' });
    assert.deepEqual(o.ignored, ['echo hello']);
    assert.deepEqual(o.unknown, ['weird-thing 1']);
    assert.equal(o.tokenOnly, false);
  });

  test('malformed known options are collected as errors, not thrown', () => {
    const o = parsePushOptions(['ping x', 'ifconfig 10.8.0.2', 'peer-id 99999999', 'route 10.0.0.0 notamask', 'dhcp-option DNS', 'topology star', 'dns server 1 address', 'route-gateway "10.8.0.1']);
    assert.equal(o.errors.length, 8, o.errors.join('\n'));
    assert.equal(o.ping, undefined);
    assert.equal(o.ifconfig, undefined);
  });

  test('bare PUSH_REPLY and non-comma suffix', () => {
    const m = pushReply(parseServerMessage('PUSH_REPLY'));
    assert.equal(m.options.raw.length, 0);
    assert.equal(parseServerMessage('PUSH_REPLYX').type, 'unknown');
  });

  test('push-continuation: parts are merged and yielded once complete', () => {
    const acc = new PushAccumulator();
    assert.equal(acc.add('PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,route 10.1.0.0 255.255.0.0,push-continuation 2'), undefined);
    assert.equal(acc.pending, true);
    assert.equal(acc.add('PUSH_REPLY,route 10.2.0.0 255.255.0.0,push-continuation 2'), undefined);
    assert.equal(acc.add('INFO,hello'), undefined, 'other messages do not disturb the accumulator');
    const done = acc.add(pushReply(parseServerMessage('PUSH_REPLY,ifconfig 10.8.0.2 255.255.255.0,peer-id 3,push-continuation 1')));
    assert.ok(done);
    assert.equal(acc.pending, false);
    assert.deepEqual(done.routes.map((r) => r.network), ['10.1.0.0', '10.2.0.0']);
    assert.equal(done.ifconfig?.netmask, '255.255.255.0', 'topology from the first part applies to ifconfig in the last');
    assert.equal(done.peerId, 3);
    assert.ok(!done.raw.some((r) => r.startsWith('push-continuation')));
    // A single reply without push-continuation is complete at once.
    assert.equal(acc.add(LOCAL)?.peerId, 0);
    // continuation value is reported per message
    assert.equal(pushReply(parseServerMessage('PUSH_REPLY,ping 1,push-continuation 2')).continuation, 2);
  });

  test('a standalone PUSH_REPLY,auth-token is a token update', () => {
    const m = pushReply(parseServerMessage('PUSH_REPLY,auth-token SESS_ID_xyz=='));
    assert.equal(m.tokenUpdate, true);
    assert.equal(m.options.authToken, 'SESS_ID_xyz==');
    assert.equal(pushReply(parseServerMessage('PUSH_REPLY,auth-token-user Ym9i,auth-token T')).tokenUpdate, true);
    assert.equal(pushReply(parseServerMessage(LOCAL + ',auth-token T')).tokenUpdate, false);
    assert.equal(pushReply(parseServerMessage('PUSH_REPLY,auth-token-user Ym9i')).tokenUpdate, false);
  });
});

describe('pull-filter', () => {
  const rules = [
    { action: 'accept', prefix: 'route 10.' },
    { action: 'ignore', prefix: 'route' },
    { action: 'ignore', prefix: 'dhcp-option DNS6' },
    { action: 'reject', prefix: 'redirect-gateway' },
  ] as const;
  test('first matching prefix wins, leading spaces skipped', () => {
    assert.equal(applyPullFilters('route 10.0.0.0 255.0.0.0', rules).action, 'accept');
    assert.equal(applyPullFilters('  route 192.168.0.0', rules).action, 'ignore');
    assert.equal(applyPullFilters('route-gateway 10.8.0.1', rules).action, 'ignore', 'plain prefix match, like OpenVPN');
    assert.equal(applyPullFilters('redirect-gateway def1', rules).action, 'reject');
    assert.equal(applyPullFilters('ping 10', rules).action, 'accept');
    assert.equal(applyPullFilters('ping 10', rules).rule, undefined);
  });
  test('applied while parsing; reject stops processing', () => {
    const o = parsePushOptions(['route 10.1.0.0 255.255.0.0', 'route 192.168.0.0 255.255.0.0', 'dhcp-option DNS6 ::1', 'dhcp-option DNS 1.1.1.1'], rules);
    assert.deepEqual(o.routes.map((r) => r.network), ['10.1.0.0']);
    assert.deepEqual(o.filtered, ['route 192.168.0.0 255.255.0.0', 'dhcp-option DNS6 ::1']);
    assert.deepEqual(o.dns, ['1.1.1.1']);
    const r = parsePushOptions(['ping 1', 'redirect-gateway def1', 'ping-restart 5'], rules);
    assert.equal(r.rejected?.option, 'redirect-gateway def1');
    assert.equal(r.ping, 1);
    assert.equal(r.pingRestart, undefined, 'nothing after the rejected option is applied');
    const acc = new PushAccumulator(rules);
    assert.equal(acc.add('PUSH_REPLY,redirect-gateway def1')?.rejected?.rule.action, 'reject');
  });
});

describe('server messages', () => {
  test('AUTH_FAILED variants', () => {
    assert.deepEqual(parseServerMessage('AUTH_FAILED'), { type: 'auth-failed', reason: '' });
    assert.deepEqual(parseServerMessage('AUTH_FAILED,bad password\0'), { type: 'auth-failed', reason: 'bad password' });
    assert.deepEqual(parseServerMessage('AUTH_FAILED,SESSION:token expired'), {
      type: 'auth-failed',
      reason: 'SESSION:token expired',
      session: { message: 'token expired' },
    });
    assert.deepEqual(parseServerMessage('AUTH_FAILED,TEMP[backoff 42,advance no]:try later'), {
      type: 'auth-failed',
      reason: 'TEMP[backoff 42,advance no]:try later',
      temp: { backoff: 42, advance: 'no', message: 'try later' },
    });
    assert.deepEqual((parseServerMessage('AUTH_FAILED,TEMP[advance remote]') as { temp?: unknown }).temp, { advance: 'remote', message: '' });
    assert.deepEqual((parseServerMessage('AUTH_FAILED,TEMP:busy') as { temp?: unknown }).temp, { message: 'busy' });
    const crv1 = parseServerMessage('AUTH_FAILED,CRV1:R,E:Om01u7Fh4LrGBS7uh0SWmzwabUiGiW6l:Y3Ix:Please enter token: PIN');
    assert.equal(crv1.type, 'auth-failed');
    assert.deepEqual((crv1 as { crv1?: unknown }).crv1, {
      flags: ['R', 'E'],
      echo: true,
      responseRequired: true,
      stateId: 'Om01u7Fh4LrGBS7uh0SWmzwabUiGiW6l',
      username: 'cr1',
      text: 'Please enter token: PIN',
    });
  });
  test('AUTH_PENDING', () => {
    assert.deepEqual(parseServerMessage('AUTH_PENDING'), { type: 'auth-pending', keywords: [] });
    assert.deepEqual(parseServerMessage('AUTH_PENDING,timeout 300'), { type: 'auth-pending', timeout: 300, keywords: ['timeout 300'] });
  });
  test('RESTART flags, HALT, EXIT, INFO, INFO_PRE', () => {
    assert.deepEqual(parseServerMessage('RESTART'), { type: 'restart', keepCredentials: false, advance: false, flags: '', message: '' });
    assert.deepEqual(parseServerMessage('RESTART,[PN]server maintenance'), {
      type: 'restart',
      keepCredentials: true,
      advance: true,
      flags: 'PN',
      message: 'server maintenance',
    });
    assert.deepEqual(parseServerMessage('RESTART,going down'), { type: 'restart', keepCredentials: false, advance: false, flags: '', message: 'going down' });
    assert.deepEqual(parseServerMessage('HALT,client disabled'), { type: 'halt', message: 'client disabled' });
    assert.deepEqual(parseServerMessage('HALT'), { type: 'halt', message: '' });
    assert.deepEqual(parseServerMessage('EXIT'), { type: 'exit' });
    assert.deepEqual(parseServerMessage('INFO,Welcome'), { type: 'info', text: 'Welcome' });
    assert.deepEqual(parseServerMessage('INFO_PRE,WEB_AUTH::https://sso.example/x?y=1'), {
      type: 'info-pre',
      text: 'WEB_AUTH::https://sso.example/x?y=1',
      webAuth: { flags: [], url: 'https://sso.example/x?y=1' },
    });
    assert.deepEqual(parseServerMessage('INFO_PRE,OPEN_URL:https://a.example'), { type: 'info-pre', text: 'OPEN_URL:https://a.example', openUrl: 'https://a.example' });
    assert.deepEqual(parseServerMessage('INFO_PRE,CR_TEXT:E,R:Enter PIN'), { type: 'info-pre', text: 'CR_TEXT:E,R:Enter PIN', crText: { flags: ['E', 'R'], text: 'Enter PIN' } });
    assert.deepEqual(parseServerMessage('RELAY'), { type: 'unknown', text: 'RELAY' });
    assert.deepEqual(parseServerMessage('PUSH_UPDATE,route 10.0.0.0,-dhcp-option'), { type: 'push-update', raw: ['route 10.0.0.0', '-dhcp-option'] });
  });
  test('property: never throws, push options never throw', () => {
    const prefixes = ['PUSH_REPLY,', 'AUTH_FAILED,', 'AUTH_FAILED,TEMP[', 'AUTH_FAILED,CRV1:', 'RESTART,[', 'HALT,', 'INFO_PRE,', 'AUTH_PENDING,', 'EXIT', ''];
    const parts = fc.array(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(...LOCAL.split(','), ...AIRVPN.split(','), 'push-continuation 2', 'dns server 1 address [::1]:x', '"', '\\', 'route a b c d e f')), { maxLength: 12 });
    fc.assert(
      fc.property(fc.constantFrom(...prefixes), parts, (p, ps) => {
        const m = parseServerMessage(p + ps.join(','));
        assert.ok(typeof m.type === 'string');
        const acc = new PushAccumulator([{ action: 'ignore', prefix: 'route' }]);
        acc.add(m);
        acc.add('PUSH_REPLY,' + ps.join(','));
      }),
      { numRuns: 2000 },
    );
  });
});
