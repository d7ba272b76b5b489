import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkConfigOf, type ConnectedInfo } from '../../../src/openvpn/connected-info.js';
import { parsePushOptions, splitPushOptions } from '../../../src/openvpn/push.js';
import { ipv6Of } from '../../../src/openvpn/pushed-ipv6.js';

// What an OpenVPN 2.6 server with `server-ipv6 fd00:8::/64` and `push "redirect-gateway ipv6 !ipv4"` pushes.
const REPLY =
  'route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,redirect-gateway ipv6 !ipv4,' +
  'route-ipv6 2001:db8:80::/64,route-ipv6 2000::/3,tun-ipv6,dhcp-option DNS6 fd00:8::1,' +
  'ifconfig-ipv6 fd00:8:0:0::1000/64 fd00:8::1,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM';

function info(o: ReturnType<typeof parsePushOptions>, nopull = false): ConnectedInfo {
  const warnings: string[] = [];
  const v6 = ipv6Of(o, nopull, (m) => warnings.push(m));
  return {
    localIp: '10.8.0.2',
    netmask: '255.255.255.0',
    routes: [],
    redirectGateway: false,
    dns: [],
    domains: [],
    mtu: 1500,
    cipher: 'AES-256-GCM',
    keyDerivation: 'tls-ekm',
    remote: { host: 'x', port: 1194, proto: 'udp' },
    ...v6,
  };
}

test('ifconfig-ipv6, route-ipv6, redirect-gateway ipv6 and DNS6 become the IPv6 link config', () => {
  const o = parsePushOptions(splitPushOptions(REPLY));
  const cfg = linkConfigOf(info(o));
  assert.equal(cfg.address6, 'fd00:8::1000');
  assert.equal(cfg.prefixLength6, 64);
  assert.equal(cfg.gateway6, 'fd00:8::1');
  assert.deepEqual(cfg.routes6, ['2001:db8:80::/64', '2000::/3']);
  assert.equal(cfg.redirectGateway6, true);
  assert.deepEqual(cfg.dns6, ['fd00:8::1']);
});

test('no ifconfig-ipv6: no IPv6 fields at all; a bad one is ignored with a warning', () => {
  const none = linkConfigOf(info(parsePushOptions(splitPushOptions('ifconfig 10.8.0.2 255.255.255.0,route-ipv6 2000::/3'))));
  assert.equal(none.address6, undefined);
  assert.equal('routes6' in none, false);
  const warnings: string[] = [];
  assert.deepEqual(ipv6Of(parsePushOptions(splitPushOptions('ifconfig-ipv6 fd00::zz/64')), false, (m) => warnings.push(m)), {});
  assert.equal(warnings.length, 1);
});

test('route-nopull drops the pushed IPv6 routes but keeps the address', () => {
  const v6 = ipv6Of(parsePushOptions(splitPushOptions(REPLY)), true, () => {});
  assert.equal(v6.address6, 'fd00:8::1000');
  assert.deepEqual(v6.routes6, []);
});

test('pull-filter can refuse the IPv6 options', () => {
  const o = parsePushOptions(splitPushOptions(REPLY), [{ action: 'ignore', prefix: 'ifconfig-ipv6' }]);
  assert.deepEqual(ipv6Of(o, false, () => {}), {});
});
