import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildIcmp } from '../../../src/wire/icmp.js';
import { buildIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';
import { summarizePacket } from '../../../src/wire/summary.js';
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

test('garbage: "invalid: <reason> len=N"', () => {
  assert.equal(summarizePacket(new Uint8Array(3)), 'invalid: IPv4 packet too short: 3 bytes (field length at offset 0) len=3');
  assert.match(summarizePacket(Uint8Array.from([0x60, ...new Array(39).fill(0)])), /^invalid: not IPv4: version 6 .* len=40$/);
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
