import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildIcmp } from '../../../src/wire/icmp.js';
import { buildIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';
import { summarizePacket } from '../../../src/wire/summary.js';
import { buildIcmpv6 } from '../../../src/wire/icmpv6.js';
import { buildIpv6, ipv6AddressSum, parseIpv6Address } from '../../../src/wire/ipv6.js';
import { buildTcp } from '../../../src/wire/tcp.js';
import { buildUdp } from '../../../src/wire/udp.js';
import { mutated } from './helpers.js';

const A = parseIpv4Address('10.8.0.2');
const B = parseIpv4Address('10.8.0.1');
const C = parseIpv4Address('1.2.3.4');
import { samplePackets } from './samples.js';

test('one-line summaries of ICMP, TCP, UDP', () => {
  const p = samplePackets();
  assert.equal(summarizePacket(p.echoRequest!), 'ICMP 10.8.0.2 > 10.8.0.1 echo-request id=1 seq=3 len=84');
  assert.equal(summarizePacket(p.echoReply!), 'ICMP 10.8.0.1 > 10.8.0.2 echo-reply id=1 seq=3 len=84');
  assert.equal(
    summarizePacket(p.syn!),
    'TCP 10.8.0.2:40000 > 1.2.3.4:80 [S] seq=1000 ack=0 win=64240 len=0 mss=1360,sackOK,ts=1/0,wscale=7',
  );
  assert.equal(summarizePacket(p.udp!), 'UDP 10.8.0.2:5353 > 10.8.0.1:53 len=33');
});

test('ICMP errors, fragments, other protocols and bad checksums', () => {
  const p = samplePackets();
  const fragNeeded = buildIpv4({ src: C, dst: A, protocol: 1 }, buildIcmp({ kind: 'dest-unreachable', code: 4, nextHopMtu: 1400, quoted: p.syn!.subarray(0, 28) }));
  assert.equal(summarizePacket(fragNeeded), 'ICMP 1.2.3.4 > 10.8.0.2 dest-unreachable code=4 mtu=1400 for proto=6 10.8.0.2:40000 > 1.2.3.4:80 len=56');
  assert.equal(
    summarizePacket(buildIpv4({ src: A, dst: B, protocol: 17, id: 9, moreFragments: true }, new Uint8Array(16))),
    'IPv4 10.8.0.2 > 10.8.0.1 proto=17 frag id=9 off=0 MF len=36',
  );
  assert.equal(summarizePacket(buildIpv4({ src: A, dst: B, protocol: 47 }, new Uint8Array(4))), 'IPv4 10.8.0.2 > 10.8.0.1 proto=47 len=24');
  const bad = Uint8Array.from(p.udp!);
  bad[bad.length - 1] ^= 0xff;
  assert.match(summarizePacket(bad), /^UDP .* bad-cksum$/);
  const badIp = Uint8Array.from(p.syn!);
  badIp[8] = 1;
  assert.match(summarizePacket(badIp), / bad-ip-cksum$/);
});

test('IPv6: TCP, UDP and ICMPv6 (echo and Packet Too Big), checksums over the IPv6 pseudo-header', () => {
  const a = parseIpv6Address('fd00:8::1000');
  const w = parseIpv6Address('2001:db8:80::80');
  const sum = ipv6AddressSum(a, w);
  const syn = buildIpv6({ src: a, dst: w, nextHeader: 6 }, buildTcp({ srcPort: 40000, dstPort: 80, seq: 1, flags: 2, window: 64800, options: { mss: 1440 } }, { src: 0, dst: 0, sum }));
  assert.equal(summarizePacket(syn), 'TCP6 [fd00:8::1000]:40000 > [2001:db8:80::80]:80 [S] seq=1 ack=0 win=64800 len=0 mss=1440');
  const udp = buildIpv6({ src: a, dst: w, nextHeader: 17 }, buildUdp({ srcPort: 5353, dstPort: 53, payload: new Uint8Array(5) }, { src: 0, dst: 0, sum }));
  assert.equal(summarizePacket(udp), 'UDP6 [fd00:8::1000]:5353 > [2001:db8:80::80]:53 len=5');
  const echo = buildIpv6({ src: a, dst: w, nextHeader: 58 }, buildIcmpv6({ kind: 'echo-request', id: 1, seq: 3, payload: new Uint8Array(56) }, sum));
  assert.equal(summarizePacket(echo), 'ICMP6 fd00:8::1000 > 2001:db8:80::80 echo-request id=1 seq=3 len=104');
  const ptb = buildIpv6({ src: w, dst: a, nextHeader: 58 }, buildIcmpv6({ kind: 'packet-too-big', code: 0, value: 1280, quoted: syn }, ipv6AddressSum(w, a)));
  assert.equal(summarizePacket(ptb), 'ICMP6 2001:db8:80::80 > fd00:8::1000 packet-too-big code=0 mtu=1280 for next=6 fd00:8::1000 > 2001:db8:80::80 len=' + ptb.length);
  const bad = Uint8Array.from(udp);
  bad[bad.length - 1] ^= 0xff;
  assert.match(summarizePacket(bad), /^UDP6 .* bad-cksum$/);
});

test('garbage: "invalid: <reason> len=N"', () => {
  assert.equal(summarizePacket(new Uint8Array(3)), 'invalid: IPv4 packet too short: 3 bytes (field length at offset 0) len=3');
  assert.match(summarizePacket(Uint8Array.from([0x60, ...new Array(39).fill(0)])), /^invalid: IPv6 jumbograms are not supported .* len=40$/);
  const p = samplePackets();
  assert.match(summarizePacket(p.syn!.subarray(0, 30)), /^invalid: .* len=30$/);
});

test('property: never throws, always one line', () => {
  const s = samplePackets();
  const valid = fc.constantFrom(...Object.values(s));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated(valid)), (b) => {
      const line = summarizePacket(b);
      assert.equal(typeof line, 'string');
      assert.ok(!line.includes('\n'));
      assert.ok(line.endsWith(`len=${b.length}`) || /len=\d+/.test(line));
    }),
    { numRuns: 2000 },
  );
});
