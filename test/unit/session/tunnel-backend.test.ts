/**
 * VpnTunnel over a second, in-memory protocol: connect, traffic through the HTTP proxy, a dropped session,
 * reconnect with backoff and remote rotation on the simulated clock, a proxy client waiting through the
 * outage, and close. Nothing above the backend changes for a protocol that is not OpenVPN.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpProxy } from '../../../src/proxy/http-proxy.js';
import { Router } from '../../../src/proxy/router.js';
import type { ReconnectingEvent } from '../../../src/session/reconnect.js';
import { VpnTunnel } from '../../../src/tunnel.js';
import { ManualClock } from '../../../src/util/clock.js';
import { LoopbackBackend, SERVER_IP, pattern } from './loopback-backend.js';

/** GET http://SERVER_IP/N through the proxy; resolves with status and body. */
function viaProxy(port: number, n: number): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `http://${SERVER_IP}/${n}`, headers: { host: SERVER_IP } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const until = async (what: string, cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

test('a second, in-memory protocol runs through VpnTunnel and the HTTP proxy unchanged', async () => {
  const clock = new ManualClock(0);
  // The simulated clock moves while traffic flows (TCP's timers), and stands still while we check backoff.
  let pumping = true;
  const pump = setInterval(() => pumping && clock.advance(2), 1);
  const backend = new LoopbackBackend(clock);
  const tunnel = new VpnTunnel({ backend, clock, random: () => 0.5 });
  const events: string[] = [];
  const reconnects: ReconnectingEvent[] = [];
  tunnel.on('connected', (i) => events.push(`connected ${i.protocol} ${i.server.host} attempt=${i.details.attempt}`));
  tunnel.on('reconnecting', (e) => (reconnects.push(e), events.push(`reconnecting ${e.reason} -> ${e.next.host} in ${e.delayMs}`)));
  tunnel.on('closed', (e) => events.push(`closed ${e.reason}`));
  const proxy = new HttpProxy({ routing: new Router({ vpn: tunnel.vpnSide, policy: 'route-all', connectTimeoutMs: 5000 }), port: 0, readyTimeoutMs: 10_000 });
  await proxy.listen();
  const port = (proxy.address() as AddressInfo).port;
  try {
    // connect
    const info = await tunnel.start();
    assert.equal(info.protocol, 'loopback');
    assert.equal(info.link.address, '10.99.0.2');
    assert.equal(tunnel.state, 'up');

    // traffic through the HTTP proxy, byte-exact
    const r1 = await viaProxy(port, 300_000);
    assert.equal(r1.status, 200);
    assert.ok(r1.body.equals(pattern(300_000)), 'body byte-exact through the proxy');
    const st = tunnel.status();
    assert.equal(st.protocol, 'loopback');
    assert.equal(st.server, 'loop-a:1/udp');
    assert.ok((st.packetsIn ?? 0) > 100 && (st.bytesIn ?? 0) > 300_000, 'status counts the traffic');
    assert.deepEqual(st.details, { attempt: 1, carried: undefined });
    assert.deepEqual(st.dropReasons, { simulated: 0 });

    // a dropped session; the next two attempts fail: backoff with jitter and rotation over the remotes
    pumping = false;
    backend.failNext = ['handshake-timeout', 'handshake-timeout'];
    backend.current.drop();
    await until('reconnecting', () => reconnects.length === 1);
    assert.equal(tunnel.state, 'reconnecting');
    assert.equal(reconnects[0]!.reason, 'ping-restart');
    assert.equal(reconnects[0]!.delayMs, 625, 'a working session dropped: retry soon (250 + 0.5 * 750 ms), same remote');
    assert.equal(reconnects[0]!.next.host, 'loop-a');
    // a proxy client arriving during the outage waits for the tunnel instead of failing
    const waiting = viaProxy(port, 1000);
    clock.advance(624);
    assert.equal(backend.sessions.length, 1, 'no attempt before the delay is over');
    clock.advance(1);
    await until('first failed attempt', () => reconnects.length === 2);
    assert.equal(backend.sessions.length, 2);
    assert.equal(reconnects[1]!.reason, 'handshake-timeout');
    assert.equal(reconnects[1]!.delayMs, 2000, 'connect-retry 2 s (jitter factor 1.0 at random 0.5)');
    assert.equal(reconnects[1]!.next.host, 'loop-b', 'a failed attempt moves on to the next remote');
    clock.advance(2000);
    await until('second failed attempt', () => reconnects.length === 3);
    assert.equal(reconnects[2]!.delayMs, 4000, 'doubled after a round over both remotes');
    assert.equal(reconnects[2]!.next.host, 'loop-a');
    clock.advance(3999);
    assert.equal(backend.sessions.length, 3);
    clock.advance(1);
    await until('up again', () => tunnel.state === 'up');
    pumping = true;
    assert.equal(backend.sessions.length, 4);
    assert.equal(backend.current.carried, 3, 'what each session hands on reaches the next attempt');
    const r2 = await waiting;
    assert.equal(r2.status, 200);
    assert.ok(r2.body.equals(pattern(1000)), 'the waiting client got through once the tunnel was back');
    assert.equal(tunnel.status().reconnects, 1);

    // close: the session says goodbye, the tunnel reports 'user'
    const last = backend.current;
    await tunnel.close();
    assert.equal(last.goodbyes, 1);
    assert.equal(tunnel.state, 'closed');
    assert.deepEqual(events, [
      'connected loopback loop-a attempt=1',
      'reconnecting ping-restart -> loop-a in 625',
      'reconnecting handshake-timeout -> loop-b in 2000',
      'reconnecting handshake-timeout -> loop-a in 4000',
      'connected loopback loop-a attempt=4',
      'closed user',
    ]);
  } finally {
    clearInterval(pump);
    await proxy.close();
    await tunnel.close();
    backend.gateway.close();
  }
});
