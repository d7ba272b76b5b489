import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VpnError } from '../../../src/errors.js';
import { createLinkPair } from '../../../src/link/link.js';
import { IpLayer } from '../../../src/stack/ip.js';
import { UdpIcmpError, UdpStack, type RemoteInfo } from '../../../src/stack/udp.js';
import { ManualClock } from '../../../src/util/clock.js';
import { parseIcmp } from '../../../src/wire/icmp.js';
import { parseIpv4 } from '../../../src/wire/ipv4.js';
import { parseUdp } from '../../../src/wire/udp.js';
import { FakePeer, PEER, PEER_N, US, icmpPacket, linkConfig, settle, udpPacket } from './helpers.js';

function pair(opts: { queuePackets?: number; mtu?: number } = {}) {
  const clock = new ManualClock();
  const [a, b] = createLinkPair(linkConfig(US, { mtu: opts.mtu ?? 1500 }), linkConfig(PEER, { mtu: opts.mtu ?? 1500 }));
  const ipA = new IpLayer(a, { clock });
  const ipB = new IpLayer(b, { clock });
  const udpA = new UdpStack(ipA, { queuePackets: opts.queuePackets });
  const udpB = new UdpStack(ipB, { queuePackets: opts.queuePackets });
  ipA.registerProtocol(17, udpA);
  ipB.registerProtocol(17, udpB);
  return { clock, ipA, ipB, udpA, udpB };
}

test('send and receive between two stacks; ephemeral source port; reply to rinfo', async () => {
  const { udpA, udpB } = pair();
  const server = udpB.bind(7);
  server.on('message', (data, rinfo) => server.send(Uint8Array.from(data).reverse(), rinfo.port, rinfo.address));
  const client = udpA.bind();
  assert.ok(client.localPort >= 49152 && client.localPort <= 65535);
  assert.deepEqual(client.address(), { address: US, port: client.localPort });
  const got: Array<[Uint8Array, RemoteInfo]> = [];
  client.on('message', (d, r) => got.push([d, r]));
  client.send(Uint8Array.of(1, 2, 3), 7, PEER);
  client.send(new Uint8Array(0), 7, PEER_N);
  await settle();
  assert.deepEqual(got, [
    [Uint8Array.of(3, 2, 1), { address: PEER, port: 7, size: 3 }],
    [new Uint8Array(0), { address: PEER, port: 7, size: 0 }],
  ]);
  assert.equal(client.stats.sent, 2);
  assert.equal(client.stats.received, 2);
  assert.equal(server.stats.received, 2);
});

test('checksum is computed on send and checked on receive', () => {
  const clock = new ManualClock();
  const peer = new FakePeer();
  const ip = new IpLayer(peer.link, { clock });
  const udp = new UdpStack(ip);
  ip.registerProtocol(17, udp);
  const s = udp.bind(5000);
  s.send(Uint8Array.of(9, 9), 53, PEER);
  const [p] = peer.take();
  const d = parseUdp(p!.payload, { src: p!.src, dst: p!.dst }); // throws on a bad checksum
  assert.notEqual(d.checksum, 0);
  assert.equal(d.srcPort, 5000);
  const bad = udpPacket(53, 5000, Uint8Array.of(1, 2, 3, 4));
  bad[bad.length - 1]! ^= 0x55;
  peer.inject(bad);
  assert.equal(udp.stats.malformed, 1);
  assert.equal(s.stats.received, 0);
});

test('receive queue limit: a paused socket keeps N datagrams and counts the rest as drops', async () => {
  const { udpA, udpB } = pair({ queuePackets: 3 });
  const server = udpB.bind(9);
  server.pause();
  const c = udpA.bind();
  for (let i = 0; i < 5; i++) c.send(Uint8Array.of(i), 9, PEER);
  await settle();
  assert.equal(server.queued, 3);
  assert.equal(server.stats.dropped, 2);
  assert.equal(udpB.stats.queueDrops, 2);
  const got: number[] = [];
  server.on('message', (d) => got.push(d[0]!));
  server.resume();
  await settle();
  assert.deepEqual(got, [0, 1, 2], 'the first three, in order');
  assert.equal(server.queued, 0);
});

test('port unreachable: the sender socket gets CONN_REFUSED naming the destination', async () => {
  const { udpA, ipB, udpB } = pair();
  const c = udpA.bind();
  const errors: UdpIcmpError[] = [];
  c.on('error', (e) => errors.push(e));
  c.send(Uint8Array.of(1), 4444, PEER);
  assert.equal(udpB.stats.noPort, 1);
  assert.equal(ipB.stats.icmp.errorsSent, 1);
  await settle();
  assert.equal(errors.length, 1);
  const e = errors[0]!;
  assert.ok(e instanceof UdpIcmpError);
  assert.equal(e.code, 'CONN_REFUSED');
  assert.equal(e.address, PEER);
  assert.equal(e.port, 4444);
  assert.match(e.message, /10\.8\.0\.1:4444: port unreachable/);
  assert.equal(udpA.stats.icmpErrors, 1);
  // A socket without an 'error' listener does not crash the process; the error is counted as unmatched.
  const quiet = udpA.bind();
  quiet.send(Uint8Array.of(1), 4444, PEER);
  assert.equal(udpA.stats.icmpUnmatched, 1);
});

test('frag-needed and host unreachable surface as HOST_UNREACHABLE with the next-hop MTU', () => {
  const clock = new ManualClock();
  const peer = new FakePeer();
  const ip = new IpLayer(peer.link, { clock });
  const udp = new UdpStack(ip);
  ip.registerProtocol(17, udp);
  const s = udp.bind(40000);
  const errors: UdpIcmpError[] = [];
  s.on('error', (e) => errors.push(e));
  s.send(new Uint8Array(100), 5000, '192.0.2.1');
  const sent = peer.sent.splice(0)[0]!;
  peer.inject(buildErr(4, 1280, sent));
  peer.inject(buildErr(1, 0, sent));
  assert.equal(errors.length, 2);
  assert.equal(errors[0]!.code, 'HOST_UNREACHABLE');
  assert.equal(errors[0]!.icmp.nextHopMtu, 1280);
  assert.match(errors[0]!.message, /next-hop MTU 1280/);
  assert.equal(errors[1]!.icmp.code, 1);
  assert.equal(errors[1]!.address, '192.0.2.1');
});

function buildErr(code: number, mtu: number, sent: Uint8Array): Uint8Array {
  return icmpPacket({ kind: 'dest-unreachable', code, nextHopMtu: mtu, quoted: sent.subarray(0, 28) });
}

test('send errors: too big, bad address, closed, link down; bind conflicts', () => {
  const clock = new ManualClock();
  const peer = new FakePeer(linkConfig(US, { mtu: 576 }));
  const ip = new IpLayer(peer.link, { clock });
  const udp = new UdpStack(ip);
  ip.registerProtocol(17, udp);
  const s = udp.bind(1000);
  assert.equal(s.maxPayload(), 548);
  s.send(new Uint8Array(548), 1, PEER);
  assert.equal(parseIpv4(peer.sent[0]!).totalLength, 576);
  assert.throws(() => s.send(new Uint8Array(549), 1, PEER), (e: unknown) => e instanceof VpnError && e.code === 'USAGE' && /549/.test(e.message));
  assert.throws(() => s.send(new Uint8Array(1), 1, 'example.com'), (e: unknown) => e instanceof VpnError && /resolve names first/.test(e.message));
  assert.throws(() => s.send(new Uint8Array(1), 0, PEER), VpnError);
  assert.throws(() => udp.bind(1000), (e: unknown) => e instanceof VpnError && /already bound/.test(e.message));
  peer.config = undefined;
  assert.throws(() => s.send(new Uint8Array(1), 1, PEER), (e: unknown) => e instanceof VpnError && e.code === 'HOST_UNREACHABLE');
  s.close();
  assert.throws(() => s.send(new Uint8Array(1), 1, PEER), (e: unknown) => e instanceof VpnError && e.code === 'TRANSPORT_CLOSED');
  // The port is free again.
  assert.equal(udp.bind(1000).localPort, 1000);
});

test('closed socket: datagrams to its port get port unreachable; ephemeral ports do not collide', async () => {
  const clock = new ManualClock();
  const peer = new FakePeer();
  const ip = new IpLayer(peer.link, { clock });
  const udp = new UdpStack(ip, { ephemeralMin: 60000, ephemeralMax: 60003 });
  ip.registerProtocol(17, udp);
  const socks = [udp.bind(), udp.bind(), udp.bind(), udp.bind()];
  assert.deepEqual(new Set(socks.map((s) => s.localPort)).size, 4);
  assert.throws(() => udp.bind(), VpnError);
  const s = socks[0]!;
  let closed = false;
  s.on('close', () => (closed = true));
  s.close();
  await settle();
  assert.equal(closed, true);
  peer.inject(udpPacket(53, s.localPort, Uint8Array.of(1)));
  const [back] = peer.take();
  const m = parseIcmp(back!.payload);
  assert.ok(m.kind === 'dest-unreachable' && m.code === 3);
  assert.equal(back!.dst, PEER_N);
  assert.equal(udp.bind().localPort, s.localPort);
});
