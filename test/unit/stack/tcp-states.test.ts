import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, A, B, ADDR_A, ADDR_B } from './tcp-harness.js';
import { Sink, connectPair, payload, sha, writeAll } from './tcp-helpers.js';
import { TcpFlag, buildTcp } from '../../../src/wire/tcp.js';
import { buildIpv4, IpProtocol } from '../../../src/wire/ipv4.js';
import { buildIcmp, parseIcmp, type IcmpError } from '../../../src/wire/icmp.js';
import type { TcpSocket } from '../../../src/stack/tcp/socket.js';
import type { VpnError } from '../../../src/errors.js';

function errorOf(s: TcpSocket): { err: VpnError | undefined; at: number; closed: boolean } {
  const r = { err: undefined as VpnError | undefined, at: -1, closed: false };
  s.on('error', (e: VpnError) => {
    r.err = e;
  });
  s.on('close', () => (r.closed = true));
  return r;
}

/** Segment from B to A's client socket, as raw IPv4. */
function fromB(client: TcpSocket, f: { seq: number; ack?: number; flags: number; window?: number; payload?: Uint8Array }): Uint8Array {
  const tcp = buildTcp(
    { srcPort: client.remotePort, dstPort: client.localPort, seq: f.seq, ack: f.ack ?? 0, flags: f.flags, window: f.window ?? 1000, ...(f.payload ? { payload: f.payload } : {}) },
    { src: B, dst: A },
  );
  return buildIpv4({ src: B, dst: A, protocol: IpProtocol.TCP }, tcp);
}

test('connect to a closed port fails at once with CONN_REFUSED', async () => {
  const sim = new Sim({ delayMs: 5 });
  const s = sim.a.connect({ host: ADDR_B, port: 81 });
  const r = errorOf(s);
  const t = await sim.run(() => r.closed, 5_000);
  assert.equal(r.err?.code, 'CONN_REFUSED');
  assert.ok(t <= 12, `took ${t} ms`);
  assert.equal(sim.b.stats.rstsSent, 1);
  assert.equal(sim.a.stats.connections, 0);
});

test('SYN retransmission timeline (1 s doubling) then CONNECT_TIMEOUT', async () => {
  const sim = new Sim({ delayMs: 5, stackA: { synRetries: 3 } });
  sim.blackhole.AB = true;
  const syns: number[] = [];
  sim.taps.push((dir, seg) => {
    if (dir === 'AB' && seg.flags & TcpFlag.SYN) syns.push(sim.clock.now());
  });
  const s = sim.a.connect({ host: ADDR_B, port: 80, timeoutMs: 100_000 });
  const r = errorOf(s);
  const t = await sim.run(() => r.closed, 60_000);
  assert.deepEqual(syns, [0, 1000, 3000, 7000]);
  assert.equal(r.err?.code, 'CONNECT_TIMEOUT');
  assert.ok(t >= 15_000 && t <= 15_010, `failed at ${t}`);
  // and the connect timeout bounds the total
  const s2 = sim.a.connect({ host: ADDR_B, port: 80, timeoutMs: 2_500 });
  const r2 = errorOf(s2);
  const t2 = await sim.run(() => r2.closed, 60_000);
  assert.equal(r2.err?.code, 'CONNECT_TIMEOUT');
  assert.ok(t2 >= 2_500 && t2 <= 2_510, `failed at ${t2}`);
});

test('ICMP port unreachable fails a connect with CONN_REFUSED, host unreachable with HOST_UNREACHABLE', async () => {
  for (const [code, want] of [
    [3, 'CONN_REFUSED'],
    [1, 'HOST_UNREACHABLE'],
  ] as const) {
    const sim = new Sim();
    let syn: Uint8Array | undefined;
    sim.filter = (dir, _seg, pkt) => {
      if (dir === 'AB') syn = pkt;
      return false;
    };
    const s = sim.a.connect({ host: ADDR_B, port: 80 });
    const r = errorOf(s);
    await sim.advance(1);
    assert.ok(syn);
    const icmp = parseIcmp(buildIcmp({ kind: 'dest-unreachable', code, quoted: syn.subarray(0, 28) })) as IcmpError;
    sim.a.icmpError(icmp);
    await sim.run(() => r.closed, 100);
    assert.equal(r.err?.code, want);
  }
});

test('RST from the peer: TRANSPORT_CLOSED (ECONNRESET) on the other side', async () => {
  const sim = new Sim();
  const { client, server } = await connectPair(sim);
  const r = errorOf(client);
  server.resetAndDestroy();
  await sim.run(() => r.closed, 1000);
  assert.equal(r.err?.code, 'TRANSPORT_CLOSED');
  assert.match(r.err!.message, /reset/);
  assert.equal((r.err!.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET', 'the proxies tell a reset from a tunnel that is down by it');
  assert.equal(sim.a.stats.connections, 0);
  assert.equal(sim.b.stats.connections, 0);
});

test('RFC 5961: an in-window RST that is not exact gets a challenge ACK; the exact one resets', async () => {
  const sim = new Sim();
  const { client } = await connectPair(sim);
  const c = client.connection;
  const r = errorOf(client);
  const acks: Array<{ seq: number; ack: number }> = [];
  sim.taps.push((dir, seg) => {
    if (dir === 'AB' && seg.flags === TcpFlag.ACK) acks.push({ seq: seg.seq, ack: seg.ack });
  });
  sim.inject('A', fromB(client, { seq: (c.rcvNxt + 100) >>> 0, flags: TcpFlag.RST }));
  await sim.advance(20);
  assert.equal(c.stateName, 'ESTABLISHED');
  assert.equal(sim.a.stats.challengeAcks, 1);
  assert.deepEqual(acks, [{ seq: c.sndNxt, ack: c.rcvNxt }]);
  // out of window: silently dropped
  sim.inject('A', fromB(client, { seq: (c.rcvNxt + 10_000_000) >>> 0, flags: TcpFlag.RST }));
  await sim.advance(20);
  assert.equal(acks.length, 1);
  // a SYN on an established connection: challenge ACK too
  sim.inject('A', fromB(client, { seq: c.rcvNxt, flags: TcpFlag.SYN }));
  await sim.advance(20);
  assert.equal(sim.a.stats.challengeAcks, 2);
  assert.equal(c.stateName, 'ESTABLISHED');
  sim.inject('A', fromB(client, { seq: c.rcvNxt, flags: TcpFlag.RST }));
  await sim.run(() => r.closed, 100);
  assert.equal(r.err?.code, 'TRANSPORT_CLOSED');
});

test('half-close: client ends first, server keeps sending, then ends (FIN_WAIT_2 / CLOSE_WAIT)', async () => {
  const sim = new Sim();
  const { client, server } = await connectPair(sim, 80, { allowHalfOpen: true });
  const atServer = new Sink(server);
  const atClient = new Sink(client);
  client.end(Buffer.from('request'));
  await sim.run(() => atServer.ended, 1000);
  await sim.advance(20);
  assert.equal(client.connection.stateName, 'FIN_WAIT_2');
  assert.equal(server.connection.stateName, 'CLOSE_WAIT');
  const reply = payload(300_000, 3);
  writeAll(server, reply);
  await sim.run(() => atClient.ended, 5000);
  assert.equal(atClient.digest, sha(reply));
  assert.equal(atServer.bytes, 7);
  await sim.run(() => atClient.closed && atServer.closed, 1000);
  await sim.advance(20);
  assert.equal(client.connection.stateName, 'TIME_WAIT');
  assert.equal(server.connection.stateName, 'CLOSED');
});

test('half-close: server ends first; client answers after the FIN', async () => {
  const sim = new Sim();
  const { client, server } = await connectPair(sim, 80, { allowHalfOpen: true });
  const atServer = new Sink(server);
  const atClient = new Sink(client);
  server.end(Buffer.from('banner'));
  await sim.run(() => atClient.ended, 1000);
  await sim.advance(20);
  assert.equal(server.connection.stateName, 'FIN_WAIT_2');
  assert.equal(client.connection.stateName, 'CLOSE_WAIT');
  client.end(Buffer.from('late reply'));
  await sim.run(() => atServer.ended, 1000);
  assert.equal(atServer.bytes, 10);
  await sim.advance(50);
  assert.equal(server.connection.stateName, 'TIME_WAIT');
  assert.equal(client.connection.stateName, 'CLOSED');
});

test('without allowHalfOpen the socket ends its side when the peer FIN arrives (net default)', async () => {
  const sim = new Sim();
  const { client, server } = await connectPair(sim);
  const atServer = new Sink(server);
  const atClient = new Sink(client);
  client.end();
  await sim.run(() => atServer.closed && atClient.closed, 1000);
  assert.ok(atServer.ended && atClient.ended);
  assert.equal(client.connection.stateName, 'TIME_WAIT');
});

test('simultaneous close: both FIN_WAIT_1 -> CLOSING -> TIME_WAIT', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim, 80, { allowHalfOpen: true });
  const seen: string[] = [];
  sim.taps.push((dir, seg) => {
    if (seg.flags & TcpFlag.FIN) seen.push(dir);
  });
  client.resume();
  server.resume();
  client.end();
  server.end();
  await sim.advance(5);
  assert.equal(client.connection.stateName, 'FIN_WAIT_1');
  assert.equal(server.connection.stateName, 'FIN_WAIT_1');
  await sim.advance(10);
  assert.equal(client.connection.stateName, 'CLOSING');
  assert.equal(server.connection.stateName, 'CLOSING');
  await sim.advance(20);
  assert.equal(client.connection.stateName, 'TIME_WAIT');
  assert.equal(server.connection.stateName, 'TIME_WAIT');
  assert.deepEqual(seen.sort(), ['AB', 'BA']);
  assert.equal(sim.a.stats.timeWait, 1);
  assert.equal(sim.b.stats.timeWait, 1);
});

test('simultaneous open: both sides SYN_SENT -> SYN_RECEIVED -> ESTABLISHED and exchange data', async () => {
  const sim = new Sim({ delayMs: 10 });
  const ca = sim.a.connect({ host: ADDR_B, port: 5000, localPort: 6000 });
  const cb = sim.b.connect({ host: ADDR_A, port: 6000, localPort: 5000 });
  let n = 0;
  ca.on('connect', () => n++);
  cb.on('connect', () => n++);
  await sim.run(() => n === 2, 5000);
  assert.equal(ca.connection.stateName, 'ESTABLISHED');
  const sink = new Sink(cb);
  ca.end(Buffer.from('hi there'));
  await sim.run(() => sink.ended, 1000);
  assert.equal(sink.bytes, 8);
});

test('TIME_WAIT blocks reuse of the 4-tuple until 2*MSL has passed', async () => {
  const sim = new Sim({ stackA: { timeWaitMs: 2000 } });
  sim.b.listen(80, (s) => {
    s.resume();
  });
  const c1 = sim.a.connect({ host: ADDR_B, port: 80, localPort: 40000 });
  const r1 = errorOf(c1);
  c1.resume();
  c1.on('connect', () => c1.end());
  await sim.run(() => r1.closed, 1000);
  assert.equal(sim.a.stats.timeWait, 1);
  const c2 = sim.a.connect({ host: ADDR_B, port: 80, localPort: 40000 });
  const r2 = errorOf(c2);
  await sim.run(() => r2.closed, 100);
  assert.equal(r2.err?.code, 'TRANSPORT_ERROR');
  assert.match(r2.err!.message, /in use/);
  // the ephemeral allocator skips it as well
  const sim2ports: number[] = [];
  void sim2ports;
  await sim.advance(2100);
  assert.equal(sim.a.stats.timeWait, 0);
  const c3 = sim.a.connect({ host: ADDR_B, port: 80, localPort: 40000 });
  let ok = false;
  c3.on('connect', () => (ok = true));
  await sim.run(() => ok, 1000);
});

test('ephemeral ports in TIME_WAIT are not handed out again', async () => {
  const sim = new Sim({ stackA: { ephemeralPorts: [40000, 40000], timeWaitMs: 5000 } });
  sim.b.listen(80, (s) => s.resume());
  const c1 = sim.a.connect({ host: ADDR_B, port: 80 });
  const r1 = errorOf(c1);
  c1.resume();
  c1.on('connect', () => c1.end());
  await sim.run(() => r1.closed, 1000);
  assert.equal(c1.localPort, 40000);
  const c2 = sim.a.connect({ host: ADDR_B, port: 80 });
  const r2 = errorOf(c2);
  await sim.run(() => r2.closed, 100);
  assert.equal(r2.err?.code, 'TRANSPORT_ERROR');
  assert.match(r2.err!.message, /no free ephemeral port/);
});

test('zero window: persist probes while the reader is paused, transfer resumes when it reads', async () => {
  const sim = new Sim({ delayMs: 5, stackA: { sndBuf: 128 * 1024 } });
  const { client, server } = await connectPair(sim);
  server.pause();
  const data = payload(1024 * 1024, 4);
  let drained = 0;
  let blocked = false;
  client.on('drain', () => drained++);
  for (let i = 0; i < data.length; i += 16384) if (!client.write(data.subarray(i, i + 16384))) blocked = true;
  assert.ok(blocked, 'write() returned false under backpressure');
  await sim.advance(3000);
  const c = client.connection;
  assert.equal(c.sndWnd, 0);
  assert.ok(sim.a.stats.zeroWindowProbes >= 2, `probes ${sim.a.stats.zeroWindowProbes}`);
  assert.equal(sim.a.stats.rtoExpirations, 0);
  assert.ok(server.readableLength >= 200 * 1024, `${server.readableLength} buffered`);
  assert.equal(drained, 0);
  const sink = new Sink(server);
  server.resume();
  await sim.run(() => drained > 0, 10_000);
  client.end();
  await sim.run(() => sink.ended, 10_000);
  assert.equal(sink.digest, sha(data));
});

test('a paused reader: no data is lost and bytes arrive exactly (window closes and reopens)', async () => {
  const sim = new Sim({ delayMs: 5 });
  const { client, server } = await connectPair(sim);
  const data = payload(2 * 1024 * 1024, 6);
  const chunks: Buffer[] = [];
  let ended = false;
  server.on('end', () => (ended = true));
  server.pause();
  writeAll(client, data);
  // read in bursts
  const readSome = () => {
    let b: Buffer | null;
    let n = 0;
    while (n < 100_000 && (b = server.read()) !== null) {
      chunks.push(b);
      n += b.length;
    }
  };
  for (let i = 0; i < 400 && !ended; i++) {
    await sim.advance(20);
    readSome();
  }
  await sim.run(() => {
    readSome();
    return ended;
  }, 30_000);
  assert.equal(sha(Buffer.concat(chunks)), sha(data));
});

test('no segment ever exceeds the peer MSS (smaller than ours), with SACK blocks and timestamps', async () => {
  const sim = new Sim({ mtuA: 1500, mtuB: 1000, faults: { drop: 0.02, seed: 8 } });
  let maxAB = 0;
  let maxBA = 0;
  sim.taps.push((dir, seg) => {
    const optLen = seg.headerLength - 20;
    if (dir === 'AB') maxAB = Math.max(maxAB, seg.payload.length + optLen);
    else maxBA = Math.max(maxBA, seg.payload.length + optLen);
  });
  const { client, server } = await connectPair(sim);
  const up = payload(1024 * 1024, 9);
  const down = payload(1024 * 1024, 10);
  const s1 = new Sink(server);
  const s2 = new Sink(client);
  writeAll(client, up);
  writeAll(server, down);
  await sim.run(() => s1.ended && s2.ended, 120_000);
  assert.equal(s1.digest, sha(up));
  assert.equal(s2.digest, sha(down));
  assert.ok(maxAB <= 960 && maxAB >= 900, `A->B largest payload+options ${maxAB}`);
  assert.ok(maxBA <= 960, `B->A ${maxBA}`);
});

test('keepalive: probes after the idle time, answered; an unanswered series kills the connection', async () => {
  const sim = new Sim({ stackA: { keepAliveIntervalMs: 500, keepAliveProbes: 3 } });
  const { client } = await connectPair(sim);
  const r = errorOf(client);
  client.setKeepAlive(true, 1000);
  await sim.advance(3500);
  assert.ok(sim.a.stats.keepAliveProbes >= 3, `probes ${sim.a.stats.keepAliveProbes}`);
  assert.equal(client.connection.stateName, 'ESTABLISHED');
  const before = sim.a.stats.keepAliveProbes;
  sim.blackhole.BA = true;
  await sim.run(() => r.closed, 10_000);
  assert.equal(r.err?.code, 'TRANSPORT_CLOSED');
  assert.match(r.err!.message, /keepalive/);
  assert.ok(sim.a.stats.keepAliveProbes - before >= 3);
});

test("setTimeout: 'timeout' after the idle time, not before", async () => {
  const sim = new Sim();
  const { client, server } = await connectPair(sim);
  let fired = -1;
  const t0 = sim.clock.now();
  client.setTimeout(500, () => (fired = sim.clock.now() - t0));
  await sim.advance(300);
  server.write('x');
  client.resume();
  await sim.advance(300);
  assert.equal(fired, -1);
  await sim.advance(600);
  assert.ok(fired >= 800 && fired <= 820, `fired at ${fired}`);
});

test('large bandwidth-delay product: window scaling lets more than 64 KB fly', async () => {
  const sim = new Sim({ delayMs: 50 });
  const { client, server } = await connectPair(sim);
  let maxFlight = 0;
  sim.taps.push((dir) => {
    if (dir === 'AB') maxFlight = Math.max(maxFlight, client.connection.flightSize);
  });
  const data = payload(8 * 1024 * 1024, 12);
  const sink = new Sink(server);
  writeAll(client, data);
  server.end();
  const t = await sim.run(() => sink.ended, 60_000);
  assert.equal(sink.digest, sha(data));
  assert.ok(maxFlight > 1024 * 1024, `max flight ${maxFlight}`);
  assert.ok(sim.b.stats.maxAdvertisedWindow > 1024 * 1024, `max window ${sim.b.stats.maxAdvertisedWindow}`);
  // a 64 KB window would need 8 MB / 64 KB * 100 ms = 12.8 s
  assert.ok(t < 2_000, `took ${t} ms`);
});

test('destroy() with unread data resets; destroy() after reading closes gracefully', async () => {
  const sim = new Sim();
  const { client, server } = await connectPair(sim);
  const r = errorOf(client);
  client.write('unread');
  await sim.advance(20);
  server.destroy();
  await sim.run(() => r.closed, 500);
  assert.equal(r.err?.code, 'TRANSPORT_CLOSED');
  const p2 = await connectPair(sim, 81);
  const sink = new Sink(p2.client);
  p2.server.resume();
  p2.client.write('read');
  await sim.advance(20);
  p2.server.destroy();
  await sim.run(() => sink.closed, 500);
  assert.equal(sink.error, undefined);
  assert.ok(sink.ended);
});
