import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import { finishChecksum, onesSum } from '../../../src/wire/checksum.js';
import {
  buildIpv6,
  ipv6AddressSum,
  ipv6InPrefix,
  ipv6ToString,
  parseIpv6,
  parseIpv6Address,
  parseIpv6Cidr,
  writeIpv6Header,
} from '../../../src/wire/ipv6.js';
import { buildTcp, parseTcp } from '../../../src/wire/tcp.js';
import { buildUdp, parseUdp } from '../../../src/wire/udp.js';
import { hex, mutated, onlyWireError, u8 } from './helpers.js';

// Reference packets built by an independent implementation (scapy 2.5).
const TCP_SYN =
  '6000000000140640 20010db8000000000000000000000001 20010db8000000000000000000000002 9c40005000000001000000005002ffffb7dc0000';
// Hop-by-hop (PadN), then a fragment header (offset 0, M=1, id abcdef01), then UDP 53 -> 5353 "hi".
const HBH_FRAG_UDP =
  '60000000001a0001 fe800000000000000000000000000001 ff020000000000000000000000000001 2c00010400000000 11000001abcdef01 003514e9000a84cd6869';

test('parses a TCP SYN over IPv6 and its checksum verifies over the IPv6 pseudo-header', () => {
  const p = parseIpv6(hex(TCP_SYN));
  assert.equal(p.payloadLength, 20);
  assert.equal(p.nextHeader, 6);
  assert.equal(p.protocol, 6);
  assert.equal(p.hopLimit, 64);
  assert.equal(p.headerLength, 40);
  assert.equal(ipv6ToString(p.src), '2001:db8::1');
  assert.equal(ipv6ToString(p.dst), '2001:db8::2');
  assert.equal(p.fragment, undefined);
  const sum = ipv6AddressSum(p.src, p.dst);
  const seg = parseTcp(p.payload, { src: 0, dst: 0, sum });
  assert.equal(seg.srcPort, 40000);
  assert.equal(seg.checksum, 0xb7dc);
  // and writing the same segment reproduces the reference checksum
  const again = buildTcp({ srcPort: 40000, dstPort: 80, seq: 1, flags: 2, window: 0xffff }, { src: 0, dst: 0, sum });
  assert.deepEqual(again, p.payload);
  const hdr = new Uint8Array(40);
  writeIpv6Header({ src: p.src, dst: p.dst, nextHeader: 6, hopLimit: 64 }, 20, hdr);
  assert.deepEqual(hdr, hex(TCP_SYN).subarray(0, 40));
});

test('walks hop-by-hop to the fragment header and reports it; UDP checksum over the pseudo-header', () => {
  const p = parseIpv6(hex(HBH_FRAG_UDP));
  assert.equal(p.nextHeader, 0);
  assert.equal(p.protocol, 17);
  assert.equal(p.headerLength, 56);
  assert.deepEqual(p.fragment, { offset: 0, moreFragments: true, id: 0xabcdef01 });
  const u = parseUdp(p.payload, { src: 0, dst: 0, sum: ipv6AddressSum(p.src, p.dst) });
  assert.equal(u.srcPort, 53);
  assert.equal(Buffer.from(u.payload).toString(), 'hi');
  const bad = hex(HBH_FRAG_UDP);
  bad[bad.length - 1] ^= 1;
  assert.throws(() => parseUdp(parseIpv6(bad).payload, { src: 0, dst: 0, sum: ipv6AddressSum(p.src, p.dst) }), /checksum/);
});

test('a UDP datagram built for IPv6 sums to zero with its pseudo-header', () => {
  const src = parseIpv6Address('fd00::2');
  const dst = parseIpv6Address('fd00:1::53');
  const sum = ipv6AddressSum(src, dst);
  const d = buildUdp({ srcPort: 1000, dstPort: 53, payload: new Uint8Array([1, 2, 3]) }, { src: 0, dst: 0, sum });
  assert.equal(finishChecksum(onesSum(d, 0, d.length, sum + 17 + d.length)), 0);
});

test('validation errors name the field', () => {
  const good = hex(TCP_SYN);
  const cases: Array<[string, (b: Uint8Array) => Uint8Array, string]> = [
    ['short', (b) => b.subarray(0, 39), 'length'],
    ['version 4', (b) => ((b[0] = 0x45), b), 'version'],
    ['payload length too big', (b) => ((b[5] = 0x30), b), 'payloadLength'],
    ['jumbo', (b) => ((b[4] = 0), (b[5] = 0), (b[6] = 0), b), 'payloadLength'],
    ['extension runs past', (b) => ((b[6] = 60), (b[41] = 9), b), 'extension'],
  ];
  for (const [name, f, field] of cases) {
    assert.throws(
      () => parseIpv6(f(Uint8Array.from(good))),
      (e: unknown) => e instanceof WireError && e.field === field,
      name,
    );
  }
  const dup = hex(HBH_FRAG_UDP);
  dup[40] = 0; // a second hop-by-hop header
  assert.throws(() => parseIpv6(dup), (e: unknown) => e instanceof WireError && e.field === 'nextHeader');
});

test('address text: RFC 4291 forms in, RFC 5952 out', () => {
  const cases: Array<[string, string]> = [
    ['2001:DB8:0:0:8:800:200C:417A', '2001:db8::8:800:200c:417a'],
    ['FF01:0:0:0:0:0:0:101', 'ff01::101'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero word is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of equal runs
    ['::ffff:192.0.2.128', '::ffff:c000:280'],
    ['fe80::', 'fe80::'],
  ];
  for (const [i, o] of cases) assert.equal(ipv6ToString(parseIpv6Address(i)), o, i);
  for (const bad of ['', ':', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::', '::1.2.3', '1:2:3:4:5:6:7::8:9', '10.0.0.1', '::1%eth0'])
    assert.throws(() => parseIpv6Address(bad), WireError, bad);
});

test('property: text round trip', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 8 }), (a, at, n) => {
      for (let i = at; i < Math.min(8, at + n); i++) a[2 * i] = a[2 * i + 1] = 0; // make zero runs common
      assert.deepEqual(parseIpv6Address(ipv6ToString(a)), a);
    }),
    { numRuns: 2000 },
  );
});

test('prefixes', () => {
  const { prefix, length } = parseIpv6Cidr('2001:db8:80::/41');
  assert.equal(length, 41);
  assert.ok(ipv6InPrefix(parseIpv6Address('2001:db8:80::1'), prefix, length));
  assert.ok(ipv6InPrefix(parseIpv6Address('2001:db8:ff::1'), prefix, length));
  assert.ok(!ipv6InPrefix(parseIpv6Address('2001:db8:100::1'), prefix, length));
  assert.ok(ipv6InPrefix(parseIpv6Address('1::'), parseIpv6Address('::'), 0));
  assert.equal(parseIpv6Cidr('::1').length, 128);
  assert.throws(() => parseIpv6Cidr('::/129'), WireError);
});

const headerArb = fc.record({
  src: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  dst: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  nextHeader: fc.constantFrom(6, 17, 58, 59, 0, 43, 44, 60, 51),
  hopLimit: u8,
  trafficClass: u8,
  flowLabel: fc.integer({ min: 0, max: 0xfffff }),
});

test('property: write then parse gives the fields back', () => {
  fc.assert(
    fc.property(headerArb, fc.uint8Array({ maxLength: 100 }), (h, payload) => {
      const b = buildIpv6({ ...h, nextHeader: 17 }, payload);
      const p = parseIpv6(b);
      assert.equal(p.trafficClass, h.trafficClass);
      assert.equal(p.flowLabel, h.flowLabel);
      assert.equal(p.hopLimit, h.hopLimit);
      assert.deepEqual(p.src, h.src);
      assert.deepEqual(p.dst, h.dst);
      assert.deepEqual(p.payload, payload);
    }),
  );
});

test('property: random and mutated bytes only ever throw WireError', () => {
  const valid = fc.tuple(headerArb, fc.uint8Array({ maxLength: 80 })).map(([h, p]) => buildIpv6(h, p));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated(valid), mutated(fc.constant(hex(HBH_FRAG_UDP)))), fc.boolean(), (b, t) => {
      onlyWireError(() => {
        const p = parseIpv6(b, { allowTruncated: t });
        assert.ok(p.headerLength >= 40 && p.headerLength <= b.length);
        assert.ok(p.payload.length <= b.length - p.headerLength);
      }, b.length);
    }),
    { numRuns: 3000 },
  );
  fc.assert(fc.property(fc.string({ maxLength: 50 }), (s) => onlyWireError(() => parseIpv6Address(s), s.length)));
});
