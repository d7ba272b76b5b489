import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { LocalForward, RemoteForward, normalizeForwardSpec, parseForwardSpec, parseRemoteForwardSpec, type VpnListen } from '../../../src/proxy/forward.js';
import { Router, fixedRoute, type VpnRouteConfig } from '../../../src/proxy/router.js';
import type { Dialer } from '../../../src/proxy/dialer.js';
import { AccessList } from '../../../src/proxy/access.js';
import { ProxyMetrics } from '../../../src/proxy/metrics.js';
import { VpnError } from '../../../src/errors.js';
import { captureLogger, closedPort, fakeDialer, pattern, sha256, startEcho, waitFor } from './helpers.js';

/** Send `data` to port, half-close, collect everything until the peer closes. */
function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.end(data);
  });
}

describe('port forwards', () => {
  let echo: Awaited<ReturnType<typeof startEcho>>;
  before(async () => {
    echo = await startEcho();
  });
  after(async () => echo.close());

  test('parse -L and -R specs', () => {
    assert.deepEqual(parseForwardSpec('8000:web.vpn:80'), { bindHost: '127.0.0.1', bindPort: 8000, host: 'web.vpn', port: 80 });
    assert.deepEqual(parseForwardSpec('0.0.0.0:8000:10.8.0.1:80'), { bindHost: '0.0.0.0', bindPort: 8000, host: '10.8.0.1', port: 80 });
    assert.deepEqual(parseForwardSpec('[::1]:8000:h:22'), { bindHost: '::1', bindPort: 8000, host: 'h', port: 22 });
    assert.deepEqual(parseRemoteForwardSpec('2222:localhost:22'), { remotePort: 2222, host: 'localhost', port: 22 });
    for (const bad of ['', '80', 'a:b:c', '1:h:70000', 'x:1:h:2', '1:h:0', '1::2', '[::1:1:h:2'])
      assert.throws(() => parseForwardSpec(bad), (e: unknown) => e instanceof VpnError && e.code === 'USAGE', bad);
    for (const bad of ['1:h', '0:h:1', '1:h:2:3'])
      assert.throws(() => parseRemoteForwardSpec(bad), (e: unknown) => e instanceof VpnError && e.code === 'USAGE', bad);
  });

  test('parse [IPv6] destinations and bind addresses; malformed brackets and bare IPv6 are specific usage errors', () => {
    assert.deepEqual(parseForwardSpec('8080:[fd00:b:2::2]:80'), { bindHost: '127.0.0.1', bindPort: 8080, host: 'fd00:b:2::2', port: 80 });
    assert.deepEqual(parseForwardSpec('[::1]:8080:[fd00:b:2::2]:80'), { bindHost: '::1', bindPort: 8080, host: 'fd00:b:2::2', port: 80 });
    assert.deepEqual(parseForwardSpec('0.0.0.0:8080:[2001:db8::1]:443'), { bindHost: '0.0.0.0', bindPort: 8080, host: '2001:db8::1', port: 443 });
    assert.deepEqual(parseRemoteForwardSpec('2222:[::1]:22'), { remotePort: 2222, host: '::1', port: 22 });
    assert.deepEqual(normalizeForwardSpec({ bindHost: '127.0.0.1', bindPort: 1, host: '[fd00::1]', port: 2 }).host, 'fd00::1');
    assert.deepEqual(normalizeForwardSpec({ bindHost: '127.0.0.1', bindPort: 1, host: 'web.vpn', port: 2 }).host, 'web.vpn');
    const usage = (f: () => unknown, msg: RegExp, what: string) =>
      assert.throws(f, (e: unknown) => e instanceof VpnError && e.code === 'USAGE' && msg.test(e.message), what);
    usage(() => parseForwardSpec('8080:fd00:b:2::2:80'), /an IPv6 address goes in brackets, as in 8080:\[fd00::1\]:80/, 'bare IPv6');
    usage(() => parseForwardSpec('8080:[fd00::1:80'), /"\[" without its closing "\]"/, 'unclosed');
    usage(() => parseForwardSpec('8080:x[::1]:80'), /brackets go around a whole IPv6 address/, 'stray bracket');
    usage(() => parseForwardSpec('8080:[::1]x:80'), /"\]" must be followed by ":"/, 'text after ]');
    usage(() => parseForwardSpec('8080:[web.vpn]:80'), /destination \[web.vpn\] .* is not an IPv6 address/, 'name in brackets');
    usage(() => parseForwardSpec('8080:[fd00::zz]:80'), /is not an IPv6 address/, 'bad literal');
    usage(() => parseForwardSpec('8080:[fe80::1%eth0]:80'), /is not an IPv6 address/, 'zone index in the tunnel');
    usage(() => parseForwardSpec('[10.0.0.1]:8080:h:80'), /bind address "10.0.0.1" must be an IPv4 address, localhost or \[IPv6\]/, 'IPv4 in brackets');
    usage(() => parseForwardSpec('[8080]:h:80'), /ports are not written in brackets|bind address/, 'port in brackets');
    usage(() => parseForwardSpec('8080:[]:80'), /expects/, 'empty brackets');
    usage(() => parseRemoteForwardSpec('2222:::1:22'), /an IPv6 address goes in brackets, as in 2222:\[::1\]:22/, '-R bare IPv6');
    usage(() => normalizeForwardSpec({ bindHost: '127.0.0.1', bindPort: 1, host: '[web.vpn]', port: 2 }), /not an IPv6 address/, 'object form');
  });

  test('-L to an [IPv6] destination dials the literal through the tunnel (route-all), never directly; a tunnel without IPv6 refuses it', async () => {
    const recorder = (name: string, to: number): Dialer & { calls: string[] } => {
      const inner = fakeDialer({});
      const calls: string[] = [];
      return { ...inner, calls, connect: async (host, port, o) => (calls.push(`${name} ${host}:${port}`), inner.connect('127.0.0.1', to, o)) };
    };
    const vpn = recorder('vpn', echo.port);
    const direct = recorder('direct', echo.port);
    const cfg: VpnRouteConfig = { address: '10.8.0.2', netmask: '255.255.255.0', routes: [], redirectGateway: false, dns: [], address6: 'fd00:8::1000', prefixLength6: 64 };
    let current: VpnRouteConfig = cfg;
    const routing = new Router({ vpn: { dialer: vpn, config: () => current }, direct, policy: 'route-all' });
    const fwd = new LocalForward({ spec: parseForwardSpec('0:[fd00:b:2::2]:80'), routing });
    const failed: { reason: string }[] = [];
    fwd.on('failed', (f) => failed.push(f));
    const port = (await fwd.listen()).port;
    const data = pattern(256 * 1024, 3);
    const back = await roundTrip(port, data);
    assert.equal(sha256(back), sha256(data));
    assert.deepEqual(vpn.calls, ['vpn fd00:b:2::2:80']);
    current = { ...cfg, address6: undefined, prefixLength6: undefined };
    assert.equal((await roundTrip(port, Buffer.from('x'))).length, 0);
    await waitFor(() => failed.length === 1, 2000, 'failed');
    assert.equal(failed[0]!.reason, 'HOST_UNREACHABLE');
    assert.deepEqual(direct.calls, []);
    await fwd.close();
  });

  test('-L carries 10 MB both ways byte-exact through the routing and logs the connection', async () => {
    const cap = captureLogger();
    const metrics = new ProxyMetrics();
    const dialer = fakeDialer({ 'web.vpn': '127.0.0.1' });
    const fwd = new LocalForward({
      spec: { bindHost: '127.0.0.1', bindPort: 0, host: 'web.vpn', port: echo.port },
      routing: fixedRoute(dialer),
      logger: cap.logger,
      metrics,
    });
    const port = (await fwd.listen()).port;
    const data = pattern(10 * 1024 * 1024, 21);
    const back = await roundTrip(port, data);
    assert.equal(back.length, data.length);
    assert.equal(sha256(back), sha256(data));
    assert.ok(dialer.calls.includes(`connect web.vpn:${echo.port}`));
    await waitFor(() => cap.lines.length > 0, 2000, 'log');
    const line = JSON.parse(cap.lines[0]!) as Record<string, unknown>;
    assert.equal(line.component, 'forward');
    assert.equal(line.dest, `web.vpn:${echo.port}`);
    assert.equal(line.route, 'vpn');
    assert.equal(line.bytes_up, data.length);
    assert.equal(line.bytes_down, data.length);
    assert.deepEqual(
      { total: metrics.summary().total, active: metrics.summary().active, up: metrics.summary().bytesUp },
      { total: 1, active: 0, up: data.length },
    );
    await fwd.close();
  });

  test('-L: failed dial closes the client and emits failed; --allow drops outsiders', async () => {
    const dead = await closedPort();
    const fwd = new LocalForward({
      spec: { bindHost: '127.0.0.1', bindPort: 0, host: '127.0.0.1', port: dead },
      routing: fixedRoute(fakeDialer({})),
    });
    const failed: { reason: string }[] = [];
    fwd.on('failed', (f) => failed.push(f));
    const port = (await fwd.listen()).port;
    const back = await roundTrip(port, Buffer.from('x'));
    assert.equal(back.length, 0);
    await waitFor(() => failed.length === 1, 2000, 'failed event');
    assert.equal(failed[0]!.reason, 'CONN_REFUSED');
    await fwd.close();

    const guarded = new LocalForward({
      spec: { bindHost: '127.0.0.1', bindPort: 0, host: '127.0.0.1', port: echo.port },
      routing: fixedRoute(fakeDialer({})),
      access: new AccessList(['10.0.0.0/8']),
    });
    const gp = (await guarded.listen()).port;
    assert.equal((await roundTrip(gp, Buffer.from('hello'))).length, 0);
    assert.equal(guarded.metrics.summary().denied, 1);
    await guarded.close();
  });

  test('-R: connections accepted on the VPN side reach the local service (10 MB byte-exact)', async () => {
    // The "VPN side" listener is a loopback server standing in for the stack's listen().
    let vpnPort = 0;
    let requested = 0;
    const sockets = new Set<Socket>();
    const listen: VpnListen = async (port, onConnection) => {
      requested = port;
      const srv = createServer({ allowHalfOpen: true }, (s) => {
        sockets.add(s);
        onConnection(s);
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      vpnPort = (srv.address() as AddressInfo).port;
      return { close: () => new Promise<void>((r) => srv.close(() => r())) };
    };
    const cap = captureLogger();
    const rf = new RemoteForward({ spec: { remotePort: 2222, host: '127.0.0.1', port: echo.port }, listen, logger: cap.logger });
    await rf.start();
    assert.equal(requested, 2222);
    const data = pattern(10 * 1024 * 1024, 33);
    const back = await roundTrip(vpnPort, data);
    assert.equal(sha256(back), sha256(data));
    await waitFor(() => cap.lines.length > 0, 2000, 'log');
    const line = JSON.parse(cap.lines[0]!) as Record<string, unknown>;
    assert.equal(line.component, 'remote-forward');
    assert.equal(line.route, 'direct');
    assert.equal(line.dest, `127.0.0.1:${echo.port}`);
    assert.equal(line.bytes_down, data.length);

    // Local service down: the VPN-side connection is closed.
    const dead = await closedPort();
    const rf2 = new RemoteForward({ spec: { remotePort: 2223, host: '127.0.0.1', port: dead }, listen });
    await rf2.start();
    assert.equal((await roundTrip(vpnPort, Buffer.from('x'))).length, 0);
    await rf.close();
    await rf2.close();
  });
});
