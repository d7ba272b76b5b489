import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import { parseIpv4Address } from '../../../src/wire/ipv4.js';
import { buildUdp, parseUdp, udpDstPort, udpSrcPort, writeUdpHeader } from '../../../src/wire/udp.js';
import { hex, mutated, onlyWireError, u16, u32 } from './helpers.js';

const src = parseIpv4Address('10.8.0.2');
const dst = parseIpv4Address('10.8.0.1');

// DNS-ish datagram 10.8.0.2:1024 -> 10.8.0.1:53 payload "hi". Checksum by hand:
// pseudo 0a08+0002+0a08+0001+0011+000a = 0x142e; header 0400+0035+000a = 0x043f; payload 0x6869
// total 0x80d6 -> ~ = 0x7f29 (checked with an independent Python sum)
const VEC = '0400 0035 000a 7f29 6869';

test('vector: build and parse with pseudo-header checksum', () => {
  assert.deepEqual(buildUdp({ srcPort: 1024, dstPort: 53, payload: hex('6869') }, { src, dst }), hex(VEC));
  const d = parseUdp(hex(VEC), { src, dst });
  assert.equal(d.srcPort, 1024);
  assert.equal(d.dstPort, 53);
  assert.equal(d.length, 10);
  assert.deepEqual(d.payload, hex('6869'));
  assert.equal(udpSrcPort(hex(VEC)), 1024);
  assert.equal(udpDstPort(hex(VEC)), 53);
});

test('checksum: mismatch rejected, 0 means none, wrong pseudo-header rejected', () => {
  const b = hex(VEC);
  assert.throws(() => parseUdp(b, { src: dst, dst: src + 1 }), (e: unknown) => e instanceof WireError && e.field === 'checksum');
  b[9] ^= 0x10;
  assert.throws(() => parseUdp(b, { src, dst }), WireError);
  b[6] = 0;
  b[7] = 0;
  assert.deepEqual(parseUdp(b, { src, dst }).payload, hex('6879'));
  assert.equal(buildUdp({ srcPort: 1, dstPort: 2, payload: hex('00') })[6], 0, 'no pseudo -> checksum 0');
});

test('a computed checksum of 0 is sent as ffff', () => {
  // find a payload whose checksum comes out 0 by solving for the last word
  const out = new Uint8Array(10);
  out.set(hex('0000'), 8);
  writeUdpHeader(1, 2, 2, out, 0, { src: 0, dst: 0 });
  const c = (out[6]! << 8) | out[7]!;
  // adding c to the payload word makes the sum 0xffff -> checksum 0
  const fixed = new Uint8Array(10);
  fixed.set([c >> 8, c & 0xff], 8);
  writeUdpHeader(1, 2, 2, fixed, 0, { src: 0, dst: 0 });
  assert.equal((fixed[6]! << 8) | fixed[7]!, 0xffff);
  assert.deepEqual(parseUdp(fixed, { src: 0, dst: 0 }).payload, fixed.subarray(8));
});

test('length field validation; trailing bytes ignored', () => {
  assert.throws(() => parseUdp(hex('0001 0002 0007 0000')), (e: unknown) => e instanceof WireError && e.field === 'length' && e.offset === 4);
  assert.throws(() => parseUdp(hex('0001 0002 0010 0000')), (e: unknown) => e instanceof WireError && e.offset === 4);
  assert.deepEqual(parseUdp(hex('0001 0002 0009 0000 aa bb')).payload, hex('aa'));
});

const dgArb = fc.record({ srcPort: u16, dstPort: u16, payload: fc.uint8Array({ maxLength: 300 }) });

test('property: parse(build(d)) == d (with and without checksum)', () => {
  fc.assert(
    fc.property(dgArb, u32, u32, fc.boolean(), (d, s, t, withSum) => {
      const pseudo = { src: s, dst: t };
      const b = buildUdp(d, withSum ? pseudo : undefined);
      const p = parseUdp(b, pseudo);
      assert.deepEqual({ srcPort: p.srcPort, dstPort: p.dstPort, payload: p.payload }, { ...d });
      assert.equal(p.length, b.length);
      assert.equal(p.checksum === 0, !withSum);
    }),
  );
});

test('property: random and mutated bytes only throw WireError', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), mutated(dgArb.map((d) => buildUdp(d, { src, dst })))), (b) => {
      onlyWireError(() => parseUdp(b, { src, dst }), b.length);
    }),
    { numRuns: 1000 },
  );
});
