import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Router, type VpnRouteConfig } from '../../../src/proxy/router.js';
import { netDialer, type Dialer, type UdpLike } from '../../../src/proxy/dialer.js';
import { VpnError } from '../../../src/errors.js';
import { parseIpv4Cidr, netmaskToPrefix } from '../../../src/proxy/cidr.js';
import { closedPort, startEcho } from './helpers.js';
import { PassThrough } from 'node:stream';

/** A dialer that records what it was asked and returns dummy sockets. */
function recorder(name: string, names: Record<string, string> = {}): Dialer & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async connect(host, port) {
      calls.push(`${name} connect ${host}:${port}`);
      return new PassThrough();
    },
    async resolve(host) {
      calls.push(`${name} resolve ${host}`);
      const a = names[host];
      if (!a) throw new VpnError('DNS_NXDOMAIN', `no ${host}`);
      return [a];
    },
    async bindUdp(): Promise<UdpLike> {
      calls.push(`${name} bindUdp`);
      let h: (d: Uint8Array, f: { address: string; port: number }) => void = () => {};
      return {
        send: (d, port, address) => {
          calls.push(`${name} udp ${address}:${port}`);
          h(d, { address, port });
        },
        onMessage: (x) => (h = x),
        close: () => calls.push(`${name} udp close`),
      };
    },
  };
}

const baseCfg: VpnRouteConfig = {
  address: '10.8.0.2',
  netmask: '255.255.255.0',
  routes: ['192.168.50.0/24', '172.16.0.0 255.240.0.0'],
  redirectGateway: false,
  dns: ['10.8.0.1'],
};

function setup(cfg: VpnRouteConfig | undefined, policy?: 'follow' | 'route-all' | 'direct-unrouted') {
  const vpn = recorder('vpn', { 'intra.corp': '192.168.50.7', 'www.example': '93.184.216.34' });
  const direct = recorder('direct', { 'www.example': '93.184.216.34' });
  let current = cfg;
  const router = new Router({ vpn: { dialer: vpn, config: () => current }, direct, policy });
  return { vpn, direct, router, set: (c: VpnRouteConfig | undefined) => (current = c) };
}

describe('Router', () => {
  test('cidr helpers', () => {
    assert.deepEqual(parseIpv4Cidr('10.1.2.3/8'), { network: 0x0a000000, mask: 0xff000000, prefix: 8 });
    assert.equal(parseIpv4Cidr('172.16.0.0 255.240.0.0')?.prefix, 12);
    assert.equal(parseIpv4Cidr('1.2.3.4')?.prefix, 32);
    assert.equal(parseIpv4Cidr('1.2.3.4/33'), undefined);
    assert.equal(parseIpv4Cidr('1.2.3/8'), undefined);
    assert.equal(netmaskToPrefix('255.255.0.255'), undefined);
    assert.equal(netmaskToPrefix('0.0.0.0'), 0);
  });

  test("'follow': routes, tunnel subnet and gateway via VPN, the rest direct; names resolved by VPN DNS first", async () => {
    const { vpn, direct, router } = setup(baseCfg);
    assert.equal(router.routeFor('192.168.50.9'), 'vpn');
    assert.equal(router.routeFor('172.20.1.1'), 'vpn', 'dotted-netmask route');
    assert.equal(router.routeFor('10.8.0.77'), 'vpn', 'tunnel subnet');
    assert.equal(router.routeFor('8.8.8.8'), 'direct');
    const a = await router.dial('intra.corp', 443);
    assert.deepEqual([a.route, a.address], ['vpn', '192.168.50.7']);
    const b = await router.dial('www.example', 80);
    assert.deepEqual([b.route, b.address], ['direct', '93.184.216.34']);
    assert.deepEqual(vpn.calls, ['vpn resolve intra.corp', 'vpn connect 192.168.50.7:443', 'vpn resolve www.example']);
    assert.deepEqual(direct.calls, ['direct connect 93.184.216.34:80'], 'no lookup leaked to the local resolver');
    await assert.rejects(router.dial('nx.corp', 80), (e: unknown) => e instanceof VpnError && e.code === 'DNS_NXDOMAIN');
  });

  test("'follow' with redirect-gateway, and 'route-all': everything via VPN, names handed to the VPN dialer", async () => {
    for (const [cfg, policy] of [
      [{ ...baseCfg, redirectGateway: true }, 'follow'],
      [baseCfg, 'route-all'],
    ] as const) {
      const { vpn, direct, router } = setup(cfg, policy);
      assert.equal(router.routeFor('8.8.8.8'), 'vpn');
      const d = await router.dial('www.example', 80);
      assert.equal(d.route, 'vpn');
      assert.deepEqual(vpn.calls, ['vpn connect www.example:80']);
      assert.deepEqual(direct.calls, []);
    }
  });

  test("'direct-unrouted' ignores redirect-gateway for unrouted destinations", () => {
    const { router } = setup({ ...baseCfg, redirectGateway: true }, 'direct-unrouted');
    assert.equal(router.routeFor('8.8.8.8'), 'direct');
    assert.equal(router.routeFor('192.168.50.1'), 'vpn');
  });

  test('no VPN DNS: names resolve locally (nothing else to ask), then route by address', async () => {
    const { vpn, direct, router } = setup({ ...baseCfg, dns: [] });
    const d = await router.dial('www.example', 80);
    assert.equal(d.route, 'direct');
    assert.deepEqual(vpn.calls, []);
    assert.deepEqual(direct.calls, ['direct resolve www.example', 'direct connect 93.184.216.34:80']);
  });

  test('tunnel down: not up, dial rejects TRANSPORT_CLOSED, waitUp resolves when it comes up', async () => {
    const { router, set } = setup(undefined);
    assert.equal(router.isUp(), false);
    assert.equal(router.routeFor('1.2.3.4'), undefined);
    await assert.rejects(router.dial('1.2.3.4', 80), (e: unknown) => e instanceof VpnError && e.code === 'TRANSPORT_CLOSED');
    assert.equal(await router.waitUp(50), false);
    setTimeout(() => set(baseCfg), 60);
    assert.equal(await router.waitUp(2000), true);
  });

  test('connect timeout enforced by the router even when the dialer never settles; abort works', async () => {
    const never: Dialer = {
      connect: () => new Promise(() => {}),
      resolve: async (h) => [h],
      bindUdp: () => Promise.reject(new Error('no')),
    };
    const router = new Router({ vpn: { dialer: never, config: () => baseCfg }, policy: 'route-all', connectTimeoutMs: 80 });
    const t0 = Date.now();
    await assert.rejects(router.dial('1.2.3.4', 80), (e: unknown) => e instanceof VpnError && e.code === 'CONNECT_TIMEOUT');
    assert.ok(Date.now() - t0 < 1000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(router.dial('1.2.3.4', 80, { signal: ac.signal, timeoutMs: 5000 }), (e: unknown) => e instanceof VpnError && e.code === 'TRANSPORT_CLOSED');
  });

  test('routed UDP: each datagram goes out the side its destination routes to', async () => {
    const { vpn, direct, router } = setup(baseCfg);
    const u = await router.bindUdp();
    const got: string[] = [];
    u.onMessage((_d, f) => got.push(`${f.address}:${f.port}`));
    u.send(Buffer.from('a'), 53, '192.168.50.1');
    u.send(Buffer.from('b'), 53, '8.8.8.8');
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(vpn.calls.includes('vpn udp 192.168.50.1:53'));
    assert.ok(direct.calls.includes('direct udp 8.8.8.8:53'));
    assert.deepEqual(got.sort(), ['192.168.50.1:53', '8.8.8.8:53']);
    u.close();
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(vpn.calls.includes('vpn udp close') && direct.calls.includes('direct udp close'));
  });
});

describe('netDialer', () => {
  test('connects, maps refused / NXDOMAIN / timeout to VpnError codes', async () => {
    const echo = await startEcho();
    const d = netDialer({ lookup: async (h) => (h === 'echo.test' ? ['127.0.0.1'] : Promise.reject(Object.assign(new Error('nx'), { code: 'ENOTFOUND' }))) });
    const s = await d.connect('echo.test', echo.port);
    s.destroy();
    const dead = await closedPort();
    await assert.rejects(d.connect('127.0.0.1', dead), (e: unknown) => e instanceof VpnError && e.code === 'CONN_REFUSED');
    await assert.rejects(d.connect('nx.test', 80), (e: unknown) => e instanceof VpnError && e.code === 'DNS_NXDOMAIN');
    assert.deepEqual(await d.resolve('1.2.3.4'), ['1.2.3.4']);
    // A resolver that never answers: the one deadline covers resolution too.
    const stuck = netDialer({ lookup: () => new Promise(() => {}) });
    await assert.rejects(stuck.connect('stuck.test', 80, { timeoutMs: 60 }), (e: unknown) => e instanceof VpnError && e.code === 'CONNECT_TIMEOUT');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(stuck.connect('stuck.test', 80, { signal: ac.signal }), (e: unknown) => e instanceof VpnError && e.code === 'TRANSPORT_CLOSED');
    // UDP: a datagram to a loopback echo comes back through onMessage.
    const { createSocket } = await import('node:dgram');
    const peer = createSocket('udp4');
    peer.on('message', (m, r) => peer.send(m, r.port, r.address));
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
    const u = await d.bindUdp();
    const got = new Promise<string>((r) => u.onMessage((data, from) => r(`${Buffer.from(data).toString()} ${from.address}`)));
    u.send(Buffer.from('ping'), (peer.address() as { port: number }).port, '127.0.0.1');
    assert.equal(await got, 'ping 127.0.0.1');
    u.close();
    peer.close();
    await echo.close();
  });
});
