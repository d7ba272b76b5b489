/** IPv6 destinations through the Router (issue 16): routes6 / redirect-gateway ipv6, and the no-leak rule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Router, type VpnRouteConfig } from '../../../src/proxy/router.js';
import type { Dialer } from '../../../src/proxy/dialer.js';
import { isNetworkUnreachable } from '../../../src/proxy/dialer.js';
import { failureResponse } from '../../../src/proxy/http-common.js';
import { VpnError } from '../../../src/errors.js';

function recorder(name: string): Dialer & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async connect(host, port) {
      calls.push(`${name} ${host}:${port}`);
      return new PassThrough();
    },
    async resolve(host) {
      throw new VpnError('DNS_NXDOMAIN', `no ${host}`);
    },
    async bindUdp() {
      throw new Error('unused');
    },
  };
}

const v4only: VpnRouteConfig = { address: '10.8.0.2', netmask: '255.255.255.0', routes: [], redirectGateway: true, dns: [] };
const dual: VpnRouteConfig = { ...v4only, redirectGateway: false, address6: 'fd00:8::1000', prefixLength6: 64, routes6: ['2001:db8:80::/64'], redirectGateway6: false };

function setup(cfg: VpnRouteConfig, policy?: 'follow' | 'route-all' | 'direct-unrouted') {
  const vpn = recorder('vpn');
  const direct = recorder('direct');
  return { vpn, direct, router: new Router({ vpn: { dialer: vpn, config: () => cfg }, direct, policy }) };
}

test('with IPv6 in the tunnel: pushed routes and our prefix go in, the rest follows redirect-gateway ipv6', async () => {
  const { vpn, direct, router } = setup(dual);
  assert.equal(router.routeFor('2001:db8:80::80'), 'vpn');
  assert.equal(router.routeFor('fd00:8::1'), 'vpn', 'our own prefix');
  assert.equal(router.routeFor('2606:4700::1111'), 'direct');
  const d = await router.dial('2001:db8:80::80', 8080);
  assert.deepEqual([d.route, d.address], ['vpn', '2001:db8:80::80']);
  assert.deepEqual(vpn.calls, ['vpn 2001:db8:80::80:8080']);
  assert.deepEqual(direct.calls, []);
  const all = setup({ ...dual, redirectGateway6: true });
  assert.equal(all.router.routeFor('2606:4700::1111'), 'vpn');
  assert.equal((await all.router.dial('2606:4700::1111', 443)).route, 'vpn');
  assert.deepEqual(all.direct.calls, [], 'redirect-gateway ipv6: never direct');
  assert.equal(setup(dual, 'route-all').router.routeFor('2606:4700::1111'), 'vpn');
  assert.equal(setup({ ...dual, redirectGateway6: true }, 'direct-unrouted').router.routeFor('2606:4700::1111'), 'direct');
});

test('without IPv6 in the tunnel an IPv6 destination is refused (network unreachable, a reason for HTTP), never dialed directly', async () => {
  for (const cfg of [v4only, { ...v4only, redirectGateway: false }]) {
    for (const policy of ['follow', 'route-all'] as const) {
      const { vpn, direct, router } = setup(cfg, policy);
      assert.equal(router.routeFor('2001:db8:80::80'), undefined);
      const err = await router.dial('2001:db8:80::80', 80).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof VpnError && err.code === 'HOST_UNREACHABLE');
      assert.ok(isNetworkUnreachable(err), 'SOCKS5 reply 0x03');
      const r = failureResponse(err, '2001:db8:80::80', 80);
      assert.equal(r.status, 502);
      assert.match(r.reason, /VPN carries no IPv6.*--direct-unrouted/);
      assert.deepEqual([...vpn.calls, ...direct.calls], []);
    }
  }
  const { direct, router } = setup(v4only, 'direct-unrouted');
  assert.equal((await router.dial('2001:db8:80::80', 80)).route, 'direct');
  assert.deepEqual(direct.calls, ['direct 2001:db8:80::80:80']);
});

test('a name whose IPv4 address goes into a dual-stack tunnel is handed to the tunnel dialer by name (it races A and AAAA)', async () => {
  const cfg: VpnRouteConfig = { ...dual, dns: ['10.8.0.1'], routes: ['192.0.2.0/24'] };
  const { vpn, direct, router } = setup(cfg);
  vpn.resolve = async () => ['192.0.2.80'];
  const d = await router.dial('dual.example', 80);
  assert.deepEqual([d.route, d.address], ['vpn', 'dual.example']);
  assert.deepEqual(vpn.calls, ['vpn dual.example:80']);
  // Without IPv6 in the tunnel the router dials the A address itself, as before.
  const v4 = setup({ ...cfg, address6: undefined });
  v4.vpn.resolve = async () => ['192.0.2.80'];
  assert.equal((await v4.router.dial('dual.example', 80)).address, '192.0.2.80');
  assert.deepEqual(v4.vpn.calls, ['vpn 192.0.2.80:80']);
  // An A address routed outside the tunnel is dialed directly, by address.
  const out = setup(cfg);
  out.vpn.resolve = async () => ['198.51.100.7'];
  assert.equal((await out.router.dial('dual.example', 80)).route, 'direct');
  assert.deepEqual([out.vpn.calls, out.direct.calls], [[], ['direct 198.51.100.7:80']]);
  assert.deepEqual(direct.calls, []);
});
