import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import {
  buildIpv4,
  ipv4Dst,
  ipv4HeaderLen,
  ipv4IsFragment,
  ipv4Protocol,
  ipv4Src,
  ipv4ToString,
  ipv4TotalLength,
  parseIpv4,
  parseIpv4Address,
  writeIpv4Header,
  type Ipv4HeaderInit,
} from '../../../src/wire/ipv4.js';
import { hex, mutated, onlyWireError, u16, u32, u8 } from './helpers.js';

// The classic example header (Wikipedia "IPv4 header checksum"): checksum b1e6.
const CLASSIC = '4500 003c 1c46 4000 4006 b1e6 ac10 0a63 ac10 0a0c';

test('parses the classic example header', () => {
  const b = new Uint8Array(0x3c);
  b.set(hex(CLASSIC));
  const p = parseIpv4(b);
  assert.equal(p.headerLength, 20);
  assert.equal(p.totalLength, 60);
  assert.equal(p.id, 0x1c46);
  assert.equal(p.dontFragment, true);
  assert.equal(p.moreFragments, false);
  assert.equal(p.fragmentOffset, 0);
  assert.equal(p.ttl, 64);
  assert.equal(p.protocol, 6);
  assert.equal(p.checksum, 0xb1e6);
  assert.equal(ipv4ToString(p.src), '172.16.10.99');
  assert.equal(ipv4ToString(p.dst), '172.16.10.12');
  assert.equal(p.payload.length, 40);
  assert.equal(p.payload.buffer, b.buffer, 'payload is a view, not a copy');
  assert.equal(p.payload.byteOffset, b.byteOffset + 20);
});

test('writing the same header reproduces the example bytes including checksum b1e6', () => {
  const out = new Uint8Array(20);
  const hl = writeIpv4Header(
    { src: parseIpv4Address('172.16.10.99'), dst: parseIpv4Address('172.16.10.12'), protocol: 6, ttl: 64, id: 0x1c46, dontFragment: true },
    40,
    out,
  );
  assert.equal(hl, 20);
  assert.deepEqual(out, hex(CLASSIC));
});

test('validation errors name the field and offset', () => {
  const good = new Uint8Array(60);
  good.set(hex(CLASSIC));
  const cases: Array<[string, (b: Uint8Array) => Uint8Array, string, number]> = [
    ['short', (b) => b.subarray(0, 19), 'length', 0],
    ['version 6', (b) => ((b[0] = 0x65), b), 'version', 0],
    ['ihl 4', (b) => ((b[0] = 0x44), b), 'ihl', 0],
    ['total > buffer', (b) => b.subarray(0, 59), 'totalLength', 2],
    ['total < ihl', (b) => ((b[3] = 10), b), 'totalLength', 2],
    ['bad checksum', (b) => ((b[8] = 63), b), 'checksum', 10],
    ['ihl past end', (b) => ((b[0] = 0x4f), b.subarray(0, 40)), 'ihl', 0],
  ];
  for (const [name, mut, field, offset] of cases) {
    const b = mut(Uint8Array.from(good));
    assert.throws(
      () => parseIpv4(b),
      (e: unknown) => e instanceof WireError && e.field === field && e.offset === offset,
      name,
    );
  }
  // checksum check can be disabled; truncation allowed on request
  const b = Uint8Array.from(good);
  b[8] = 63;
  assert.equal(parseIpv4(b, { verifyChecksum: false }).ttl, 63);
  assert.equal(parseIpv4(good.subarray(0, 28), { allowTruncated: true }).payload.length, 8);
});

test('options are skipped but counted in the header length; trailing padding is not payload', () => {
  const pkt = buildIpv4({ src: 1, dst: 2, protocol: 17, options: hex('94040000') /* router alert */ }, hex('aabbcc'));
  const padded = new Uint8Array(pkt.length + 5);
  padded.set(pkt);
  const p = parseIpv4(padded);
  assert.equal(p.headerLength, 24);
  assert.deepEqual(p.options, hex('94040000'));
  assert.deepEqual(p.payload, hex('aabbcc'));
  assert.equal(ipv4HeaderLen(padded), 24);
  assert.equal(ipv4TotalLength(padded), 27);
  assert.equal(ipv4Protocol(padded), 17);
  assert.equal(ipv4Src(padded), 1);
  assert.equal(ipv4Dst(padded), 2);
});

test('fragment fields', () => {
  const pkt = buildIpv4({ src: 1, dst: 2, protocol: 1, moreFragments: true, fragmentOffset: 1480 }, new Uint8Array(8));
  const p = parseIpv4(pkt);
  assert.equal(p.moreFragments, true);
  assert.equal(p.dontFragment, false);
  assert.equal(p.fragmentOffset, 1480);
  assert.equal(ipv4IsFragment(pkt), true);
  assert.equal(ipv4IsFragment(buildIpv4({ src: 1, dst: 2, protocol: 1, dontFragment: true }, new Uint8Array(0))), false);
  assert.throws(() => buildIpv4({ src: 1, dst: 2, protocol: 1, fragmentOffset: 3 }, new Uint8Array(0)), WireError);
});

test('address helpers', () => {
  assert.equal(parseIpv4Address('10.8.0.1'), 0x0a080001);
  assert.equal(parseIpv4Address('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4ToString(0xffffffff), '255.255.255.255');
  assert.equal(ipv4ToString(0), '0.0.0.0');
  for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', 'a.b.c.d', '1.2.3.4.5', '', '1..3.4', ' 1.2.3.4'])
    assert.throws(() => parseIpv4Address(bad), WireError, bad);
  fc.assert(fc.property(u32, (a) => parseIpv4Address(ipv4ToString(a)) === a));
});

const headerArb: fc.Arbitrary<Required<Omit<Ipv4HeaderInit, 'options'>> & { options: Uint8Array }> = fc.record({
  src: u32,
  dst: u32,
  protocol: u8,
  ttl: u8,
  tos: u8,
  id: u16,
  dontFragment: fc.boolean(),
  moreFragments: fc.boolean(),
  fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((n) => n * 8),
  options: fc.integer({ min: 0, max: 10 }).chain((n) => fc.uint8Array({ minLength: n * 4, maxLength: n * 4 })),
});

test('property: parse(build(h, payload)) returns h and payload', () => {
  fc.assert(
    fc.property(headerArb, fc.uint8Array({ maxLength: 200 }), (h, payload) => {
      const pkt = buildIpv4(h, payload);
      const p = parseIpv4(pkt);
      const { checksum, headerLength, totalLength, payload: pl, options, ...fields } = p;
      const { options: hopts, ...hfields } = h;
      assert.deepEqual(fields, hfields);
      assert.deepEqual(options, hopts);
      assert.deepEqual(pl, payload);
      assert.equal(headerLength, 20 + hopts.length);
      assert.equal(totalLength, pkt.length);
      assert.equal(checksum, (pkt[10]! << 8) | pkt[11]!);
    }),
  );
});

test('property: random and mutated bytes only ever throw WireError', () => {
  const valid = fc.tuple(headerArb, fc.uint8Array({ maxLength: 64 })).map(([h, p]) => buildIpv4(h, p));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 100 }), mutated(valid)), fc.boolean(), fc.boolean(), (b, v, t) => {
      onlyWireError(() => {
        const p = parseIpv4(b, { verifyChecksum: v, allowTruncated: t });
        assert.ok(p.headerLength >= 20 && p.headerLength <= b.length);
        assert.ok(p.payload.length <= b.length - p.headerLength);
      }, b.length);
    }),
    { numRuns: 2000 },
  );
});
