/**
 * Which address of a name to dial when the tunnel routes only one of its families (issue 16): the routed one,
 * through the tunnel; the other directly only as a fallback under --direct-unrouted. Then the Router doing it
 * with the tunnel dialer's A and AAAA answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { VpnError } from '../../../src/errors.js';
import { planFamilies } from '../../../src/proxy/family-choice.js';
import type { Dialer } from '../../../src/proxy/dialer.js';
import { Router, type RouteName, type RoutePolicy, type VpnRouteConfig } from '../../../src/proxy/router.js';

const A_IN = '192.0.2.80';
const A_OUT = '198.51.100.7';
const AAAA_IN = '2001:db8:80::80';
const AAAA_OUT = '2606:4700::1111';
const routes: Record<string, RouteName | undefined> = { [A_IN]: 'vpn', [A_OUT]: 'direct', [AAAA_IN]: 'vpn', [AAAA_OUT]: 'direct' };
const routeFor = (ip: string) => routes[ip];

test('planFamilies: both families routed in -> the tunnel dialer (Happy Eyeballs there)', () => {
  assert.deepEqual(planFamilies({ a4: A_IN, a6: AAAA_IN }, routeFor, 'follow'), { kind: 'tunnel' });
});

test('planFamilies: only the AAAA address routed in -> IPv6 through the tunnel; the A address directly only under direct-unrouted', () => {
  assert.deepEqual(planFamilies({ a4: A_OUT, a6: AAAA_IN }, routeFor, 'follow'), { kind: 'attempts', attempts: [{ address: AAAA_IN, route: 'vpn' }] });
  assert.deepEqual(planFamilies({ a4: A_OUT, a6: AAAA_IN }, routeFor, 'direct-unrouted'), {
    kind: 'attempts',
    attempts: [
      { address: AAAA_IN, route: 'vpn' },
      { address: A_OUT, route: 'direct' },
    ],
  });
});

test('planFamilies: only the A address routed in -> IPv4 through the tunnel, the AAAA address never through it', () => {
  assert.deepEqual(planFamilies({ a4: A_IN, a6: AAAA_OUT }, routeFor, 'follow'), { kind: 'attempts', attempts: [{ address: A_IN, route: 'vpn' }] });
  assert.deepEqual(planFamilies({ a4: A_IN, a6: AAAA_OUT }, routeFor, 'direct-unrouted').kind === 'attempts' && true, true);
  // an IPv6 address that may go neither way is left out
  assert.deepEqual(planFamilies({ a4: A_IN, a6: 'fd00::1' }, routeFor, 'follow'), { kind: 'attempts', attempts: [{ address: A_IN, route: 'vpn' }] });
});

test('planFamilies: routed in neither family -> directly, the IPv4 address (as before), else the IPv6 one', () => {
  assert.deepEqual(planFamilies({ a4: A_OUT, a6: AAAA_OUT }, routeFor, 'follow'), { kind: 'attempts', attempts: [{ address: A_OUT, route: 'direct' }] });
  assert.deepEqual(planFamilies({ a6: AAAA_OUT }, routeFor, 'follow'), { kind: 'attempts', attempts: [{ address: AAAA_OUT, route: 'direct' }] });
  assert.deepEqual(planFamilies({ a4: A_IN }, routeFor, 'follow'), { kind: 'attempts', attempts: [{ address: A_IN, route: 'vpn' }] });
});

test('property: when any address is routed in, the first attempt goes through the tunnel, and a direct one follows only under direct-unrouted', () => {
  const addr4 = fc.option(fc.constantFrom(A_IN, A_OUT), { nil: undefined });
  const addr6 = fc.option(fc.constantFrom(AAAA_IN, AAAA_OUT, 'fd00::1'), { nil: undefined });
  const policy = fc.constantFrom<RoutePolicy>('follow', 'direct-unrouted', 'route-all');
  fc.assert(
    fc.property(addr4, addr6, policy, (a4, a6, p) => {
      const plan = planFamilies({ a4, a6 }, routeFor, p);
      const anyIn = [a4, a6].some((a) => a !== undefined && routes[a] === 'vpn');
      if (plan.kind === 'tunnel') return assert.ok(routes[a4!] === 'vpn' && routes[a6!] === 'vpn');
      if (anyIn) {
        assert.equal(plan.attempts[0]!.route, 'vpn');
        if (p !== 'direct-unrouted') assert.ok(plan.attempts.every((x) => x.route === 'vpn'));
      } else assert.ok(plan.attempts.length <= 1);
      for (const x of plan.attempts) assert.equal(routes[x.address], x.route);
    }),
  );
});

// ---- the Router ----

function recorder(name: string, fail: string[] = []): Dialer & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async connect(host, port) {
      calls.push(`${name} ${host}:${port}`);
      if (fail.includes(host)) throw new VpnError('CONN_REFUSED', `connection refused by ${host}`);
      return new PassThrough();
    },
    resolve: async () => [A_OUT],
    resolve6: async () => [AAAA_IN],
    async bindUdp() {
      throw new Error('unused');
    },
  };
}

const cfg: VpnRouteConfig = {
  address: '10.8.0.2',
  netmask: '255.255.255.0',
  routes: ['192.0.2.0/24'],
  redirectGateway: false,
  dns: ['10.8.0.1'],
  address6: 'fd00:8::1000',
  prefixLength6: 64,
  routes6: ['2001:db8:80::/64'],
  redirectGateway6: false,
};

test('Router: a name whose A address is public and AAAA is routed in is dialed at the AAAA address through the tunnel, never directly', async () => {
  const vpn = recorder('vpn');
  const direct = recorder('direct');
  const router = new Router({ vpn: { dialer: vpn, config: () => cfg }, direct });
  const d = await router.dial('dual.example', 80);
  assert.deepEqual([d.route, d.address], ['vpn', AAAA_IN]);
  assert.deepEqual([vpn.calls, direct.calls], [[`vpn ${AAAA_IN}:80`], []]);
  // The tunnel attempt fails: no direct fallback under the default policy.
  const vpnDown = recorder('vpn', [AAAA_IN]);
  const direct2 = recorder('direct');
  const r2 = new Router({ vpn: { dialer: vpnDown, config: () => cfg }, direct: direct2 });
  await assert.rejects(r2.dial('dual.example', 80), (e: unknown) => e instanceof VpnError && e.code === 'CONN_REFUSED');
  assert.deepEqual(direct2.calls, []);
  // Under --direct-unrouted the public A address is the fallback, from this host.
  const direct3 = recorder('direct');
  const r3 = new Router({ vpn: { dialer: recorder('vpn', [AAAA_IN]), config: () => cfg }, direct: direct3, policy: 'direct-unrouted' });
  const d3 = await r3.dial('dual.example', 80);
  assert.deepEqual([d3.route, d3.address], ['direct', A_OUT]);
  assert.deepEqual(direct3.calls, [`direct ${A_OUT}:80`]);
});

test('Router: both families routed in -> the name goes to the tunnel dialer; AAAA only (no A) routed in -> by address', async () => {
  const vpn = recorder('vpn');
  vpn.resolve = async () => [A_IN];
  const router = new Router({ vpn: { dialer: vpn, config: () => cfg }, direct: recorder('direct') });
  assert.deepEqual((await router.dial('dual.example', 80)).address, 'dual.example');
  const v6only = recorder('vpn');
  v6only.resolve = async () => {
    throw new VpnError('DNS_NODATA', 'no A');
  };
  const r2 = new Router({ vpn: { dialer: v6only, config: () => cfg }, direct: recorder('direct') });
  assert.deepEqual((await r2.dial('v6.example', 80)).address, AAAA_IN);
  const none = recorder('vpn');
  none.resolve = async () => {
    throw new VpnError('DNS_NXDOMAIN', 'no such name');
  };
  none.resolve6 = none.resolve;
  const r3 = new Router({ vpn: { dialer: none, config: () => cfg }, direct: recorder('direct') });
  await assert.rejects(r3.dial('nx.example', 80), (e: unknown) => e instanceof VpnError && e.code === 'DNS_NXDOMAIN');
});
