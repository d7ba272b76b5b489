import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from '../../../src/util/clock.js';
import { IpLayer, PacketTooBigError, type LinkChange } from '../../../src/stack/ip.js';
import type { ProtocolHandler } from '../../../src/stack/types.js';
import { buildIcmp, parseIcmp, quotedPorts, type IcmpError } from '../../../src/wire/icmp.js';
import { buildIpv4, parseIpv4, type Ipv4Header } from '../../../src/wire/ipv4.js';
import { buildUdp } from '../../../src/wire/udp.js';
import { FakePeer, PEER, PEER_N, US_N, icmpPacket, ip, linkConfig, udpPacket } from './helpers.js';

function setup(mtu = 1500) {
  const clock = new ManualClock();
  const peer = new FakePeer(linkConfig('10.8.0.2', { mtu }));
  const layer = new IpLayer(peer.link, { clock });
  return { clock, peer, layer };
}

class FakeHandler implements ProtocolHandler {
  readonly got: Array<{ src: number; dst: number; payload: Uint8Array; ip: Ipv4Header }> = [];
  readonly errors: IcmpError[] = [];
  input(src: number, dst: number, payload: Uint8Array, h: Ipv4Header): void {
    this.got.push({ src, dst, payload: payload.slice(), ip: h });
  }
  icmpError(err: IcmpError): void {
    this.errors.push(err);
  }
}

test('validation: each bad packet is dropped and counted under its reason', () => {
  const { peer, layer } = setup();
  const h = new FakeHandler();
  layer.registerProtocol(17, h);
  const good = udpPacket(1000, 2000, Uint8Array.of(1, 2, 3));
  peer.inject(good);
  assert.equal(h.got.length, 1);

  peer.inject(good.subarray(0, 12)); // shorter than a header
  const v6 = good.slice();
  v6[0] = 0x65;
  peer.inject(v6);
  const ihl = good.slice();
  ihl[0] = 0x44;
  peer.inject(ihl);
  const longer = good.slice();
  longer[3]! += 50; // total length beyond the bytes (checksum now wrong too: length is checked first)
  peer.inject(longer);
  const badSum = good.slice();
  badSum[10]! ^= 0xff;
  peer.inject(badSum);
  peer.inject(udpPacket(1000, 2000, Uint8Array.of(1), { ttl: 0 }));
  peer.inject(udpPacket(1000, 2000, Uint8Array.of(1), { dst: PEER_N }));
  peer.inject(ip(Uint8Array.of(1, 2, 3, 4), { protocol: 99 }));

  const d = layer.stats.drops;
  assert.deepEqual(
    { length: d.length, version: d.version, ihl: d.ihl, checksum: d.checksum, ttl: d.ttl, notForUs: d.notForUs, noProtocol: d.noProtocol },
    { length: 2, version: 1, ihl: 1, checksum: 1, ttl: 1, notForUs: 1, noProtocol: 1 },
  );
  assert.equal(layer.stats.received, 9);
  assert.equal(h.got.length, 1, 'nothing bad reached the handler');
  // The unknown protocol got an ICMP protocol-unreachable back, quoting the packet.
  const [back] = peer.take();
  assert.ok(back);
  const m = parseIcmp(back.payload);
  assert.ok(m.kind === 'dest-unreachable');
  assert.equal(m.code, 2);
  assert.equal(m.original.protocol, 99);
  assert.equal(back.dst, PEER_N);
});

test('what we send: DF set, our source, fresh ids, TTL 64, valid checksum; never larger than the MTU', () => {
  const { peer, layer } = setup(576);
  layer.sendIp(PEER_N, 17, new Uint8Array(10));
  layer.sendIp(PEER_N, 6, new Uint8Array(556), { tos: 0x10 });
  const [a, b] = peer.take();
  assert.ok(a && b);
  assert.equal(a.dontFragment, true);
  assert.equal(a.src, US_N);
  assert.equal(a.dst, PEER_N);
  assert.equal(a.ttl, 64);
  assert.equal(b.totalLength, 576);
  assert.equal(b.tos, 0x10);
  assert.equal(b.id, (a.id + 1) & 0xffff);
  assert.throws(() => layer.sendIp(PEER_N, 17, new Uint8Array(557)), (e: unknown) => e instanceof PacketTooBigError && e.mtu === 576 && e.size === 577);
  assert.equal(peer.sent.length, 0);
  layer.sendIp(PEER_N, 17, new Uint8Array(1), { dontFragment: false });
  assert.equal(peer.take()[0]!.dontFragment, false);
});

test('answers echo requests to our address with the same id, sequence and payload', () => {
  const { peer, layer } = setup();
  const payload = Uint8Array.from({ length: 56 }, (_, i) => i);
  peer.inject(icmpPacket({ kind: 'echo-request', id: 0x4242, seq: 7, payload }));
  const [r] = peer.take();
  assert.ok(r);
  assert.equal(r.dst, PEER_N);
  assert.equal(r.src, US_N);
  const m = parseIcmp(r.payload);
  assert.ok(m.kind === 'echo-reply');
  assert.equal(m.id, 0x4242);
  assert.equal(m.seq, 7);
  assert.deepEqual(m.payload, payload);
  assert.equal(layer.stats.icmp.echoRequestsAnswered, 1);
  // Not for us: no answer.
  peer.inject(icmpPacket({ kind: 'echo-request', id: 1, seq: 1, payload }, { dst: PEER_N }));
  assert.equal(peer.sent.length, 0);
});

test('ping: RTT on the injected clock, the reply TTL and size; timeout; ICMP error ends it early', async () => {
  const { clock, peer, layer } = setup();
  const p = layer.ping(PEER, { payloadSize: 32 });
  const [req] = peer.take();
  assert.ok(req);
  const m = parseIcmp(req.payload);
  assert.ok(m.kind === 'echo-request');
  assert.equal(m.payload.length, 32);
  assert.equal(req.dontFragment, true);
  clock.advance(15);
  // A reply with a wrong id is not ours.
  peer.inject(icmpPacket({ kind: 'echo-reply', id: (m.id + 1) & 0xffff, seq: m.seq, payload: m.payload }));
  peer.inject(icmpPacket({ kind: 'echo-reply', id: m.id, seq: m.seq, payload: m.payload }, { ttl: 61 }));
  const r = await p;
  assert.deepEqual(r, { from: PEER, seq: m.seq, bytes: 40, ttl: 61, rttMs: 15 });
  assert.equal(layer.stats.icmp.echoRepliesUnmatched, 1);

  const lost = layer.ping(PEER, { timeoutMs: 1000 });
  peer.take();
  clock.advance(999);
  let settled = false;
  void lost.then(() => (settled = true));
  await Promise.resolve();
  assert.equal(settled, false);
  clock.advance(1);
  assert.equal(await lost, undefined);
  assert.equal(clock.pendingTimers(), 0, 'no timer left behind');

  const refused = layer.ping('10.9.9.9', { timeoutMs: 5000 });
  const [req2] = peer.sent.splice(0);
  peer.inject(icmpPacket({ kind: 'dest-unreachable', code: 1, quoted: req2!.subarray(0, 28) }));
  assert.equal(await refused, undefined);
  assert.equal(layer.stats.icmp.errorsDelivered, 1);
  assert.equal(clock.pendingTimers(), 0);
});

test('ICMP errors reach the handler of the quoted protocol with its ports; frag-needed carries the next-hop MTU', () => {
  const { peer, layer } = setup();
  const tcp = new FakeHandler();
  layer.registerProtocol(6, tcp);
  // A TCP segment we "sent": ports 40000 -> 443.
  const seg = new Uint8Array(20);
  seg.set([0x9c, 0x40, 0x01, 0xbb]);
  const ours = buildIpv4({ src: US_N, dst: 0x01020304, protocol: 6, id: 9, dontFragment: true }, seg);
  peer.inject(icmpPacket({ kind: 'dest-unreachable', code: 3, quoted: ours.subarray(0, 28) }, { src: 0x01020304 }));
  peer.inject(icmpPacket({ kind: 'dest-unreachable', code: 4, nextHopMtu: 1400, quoted: ours.subarray(0, 28) }, { src: PEER_N }));
  peer.inject(icmpPacket({ kind: 'time-exceeded', code: 0, quoted: ours.subarray(0, 28) }, { src: PEER_N }));
  assert.equal(tcp.errors.length, 3);
  const [refused, fragNeeded, ttl] = tcp.errors;
  assert.deepEqual(quotedPorts(refused!), { srcPort: 40000, dstPort: 443 });
  assert.equal(refused!.code, 3);
  assert.equal(refused!.original.dst, 0x01020304);
  assert.equal(fragNeeded!.nextHopMtu, 1400);
  assert.equal(ttl!.kind, 'time-exceeded');
  // Quoting a datagram someone else sent, or a protocol with no handler: not delivered.
  const notOurs = buildIpv4({ src: 0x0a000063, dst: 0x01020304, protocol: 6 }, seg);
  peer.inject(icmpPacket({ kind: 'dest-unreachable', code: 3, quoted: notOurs.subarray(0, 28) }));
  const udpQuoted = buildIpv4({ src: US_N, dst: 0x01020304, protocol: 17 }, buildUdp({ srcPort: 1, dstPort: 2, payload: new Uint8Array(0) }));
  peer.inject(icmpPacket({ kind: 'dest-unreachable', code: 3, quoted: udpQuoted }));
  assert.equal(tcp.errors.length, 3);
  assert.equal(layer.stats.icmp.errorsUnmatched, 2);
  assert.equal(layer.stats.icmp.errorsDelivered, 3);
});

test('a fragmented echo request is reassembled and answered', () => {
  const { peer, layer } = setup();
  const payload = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  const icmp = buildIcmp({ kind: 'echo-request', id: 5, seq: 6, payload });
  const f1 = buildIpv4({ src: PEER_N, dst: US_N, protocol: 1, id: 77, moreFragments: true }, icmp.subarray(0, 504));
  const f2 = buildIpv4({ src: PEER_N, dst: US_N, protocol: 1, id: 77, fragmentOffset: 504 }, icmp.subarray(504));
  peer.inject(f2);
  assert.equal(peer.sent.length, 0);
  peer.inject(f1);
  const [r] = peer.take();
  const m = parseIcmp(r!.payload);
  assert.ok(m.kind === 'echo-reply');
  assert.deepEqual(m.payload, payload);
  assert.equal(layer.stats.reassembly.reassembled, 1);
});

test('reassembly times out on the injected clock (one timer)', () => {
  const { clock, peer, layer } = setup();
  const f1 = buildIpv4({ src: PEER_N, dst: US_N, protocol: 17, id: 1, moreFragments: true }, new Uint8Array(64));
  peer.inject(f1);
  assert.equal(clock.pendingTimers(), 1);
  clock.advance(29_999);
  assert.equal(layer.stats.reassembly.timeouts, 0);
  clock.advance(1);
  assert.equal(layer.stats.reassembly.timeouts, 1);
  assert.equal(clock.pendingTimers(), 0);
});

test('link down and address change', async () => {
  const { peer, layer } = setup();
  const seen: LinkChange[] = [];
  layer.onLinkChange((c) => seen.push(c));
  const h = new FakeHandler();
  layer.registerProtocol(17, h);
  const pending = layer.ping(PEER, { timeoutMs: 60_000 });
  peer.sent.length = 0;
  peer.config = undefined;
  layer.linkChanged();
  assert.equal(await pending, undefined, 'a pending ping ends when the link goes down');
  assert.equal(layer.localAddress(), 0);
  layer.sendIp(PEER_N, 17, new Uint8Array(4));
  assert.equal(layer.stats.sendLinkDown, 1);
  assert.equal(peer.sent.length, 0);
  peer.inject(udpPacket(1, 2, new Uint8Array(1)));
  assert.equal(layer.stats.drops.linkDown, 1);
  // Back with another address: packets to the old one are not for us, to the new one are.
  peer.config = linkConfig('10.8.0.9');
  peer.inject(udpPacket(1, 2, new Uint8Array(1)));
  assert.equal(layer.stats.drops.notForUs, 1);
  peer.inject(udpPacket(1, 2, new Uint8Array(1), { dst: 0x0a080009 }));
  assert.equal(h.got.length, 1);
  assert.deepEqual(seen, [{ up: false }, { up: true, address: 0x0a080009, mtu: 1500 }]);
  const again = layer.ping(PEER);
  const [req] = peer.take();
  assert.equal(req!.src, 0x0a080009, 'ping works again, from the new address');
  layer.close();
  assert.equal(await again, undefined);
});

test('a throwing handler is counted, not propagated', () => {
  const { peer, layer } = setup();
  layer.registerProtocol(17, { input: () => { throw new Error('bug'); } });
  peer.inject(udpPacket(1, 2, new Uint8Array(1)));
  assert.equal(layer.stats.drops.handlerError, 1);
  assert.throws(() => layer.registerProtocol(17, new FakeHandler()));
  assert.throws(() => layer.registerProtocol(1, new FakeHandler()));
});

test('property: random and mutated packets never throw out of input(), only move counters', () => {
  const { clock, peer, layer } = setup();
  layer.registerProtocol(17, new FakeHandler());
  layer.registerProtocol(6, new FakeHandler());
  const seeds = [
    udpPacket(53, 40000, Uint8Array.of(1, 2, 3, 4)),
    icmpPacket({ kind: 'echo-request', id: 1, seq: 1, payload: new Uint8Array(8) }),
    icmpPacket({ kind: 'dest-unreachable', code: 3, quoted: buildIpv4({ src: US_N, dst: PEER_N, protocol: 6 }, new Uint8Array(8)) }),
    buildIpv4({ src: PEER_N, dst: US_N, protocol: 17, id: 3, moreFragments: true }, new Uint8Array(16)),
    buildIpv4({ src: PEER_N, dst: US_N, protocol: 17, id: 3, fragmentOffset: 16 }, new Uint8Array(9)),
  ];
  const mutate = fc
    .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
    .map(([s, muts, cut]) => {
      const b = s.slice();
      for (const [i, v] of muts) b[i % b.length] = v;
      return b.subarray(0, Math.max(0, b.length - (cut % 4)));
    });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutate), (b) => {
      const before = layer.stats.received;
      layer.input(b);
      assert.equal(layer.stats.received, before + 1);
      clock.advance(100);
    }),
    { numRuns: 4000 },
  );
  assert.equal(layer.stats.drops.handlerError, 0);
});

test('quoted header of an ICMP error we send is the original one', () => {
  const { peer } = setup();
  const orig = udpPacket(1234, 9, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9));
  peer.inject(ip(orig.subarray(20), { protocol: 99, id: 4242 }));
  const [back] = peer.take();
  const m = parseIcmp(back!.payload);
  assert.ok(m.kind === 'dest-unreachable');
  const q = parseIpv4(m.quoted, { allowTruncated: true });
  assert.equal(q.id, 4242);
  assert.equal(q.totalLength, 20 + 17);
  assert.equal(m.originalData.length, 8);
});
