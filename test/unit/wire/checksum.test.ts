import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  finishChecksum,
  foldSum,
  internetChecksum,
  onesSum,
  pseudoHeaderSum,
  updateChecksum,
} from '../../../src/wire/checksum.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

test('RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', () => {
  const b = hex('0001 f203 f4f5 f6f7');
  assert.equal(foldSum(onesSum(b, 0, b.length)), 0xddf2);
  assert.equal(internetChecksum(b), 0x220d);
});

test('IPv4 header example (Wikipedia): checksum b861, and 0 over the header that carries it', () => {
  const h = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
  assert.equal(internetChecksum(h), 0xb861);
  h[10] = 0xb8;
  h[11] = 0x61;
  assert.equal(internetChecksum(h), 0);
});

test('odd length pads the last byte with zero', () => {
  assert.equal(internetChecksum(hex('01')), ~0x0100 & 0xffff);
  assert.equal(internetChecksum(hex('0102 03')), ~(0x0102 + 0x0300) & 0xffff);
});

test('accumulating even ranges equals one pass; sub-range respects start/end', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(150), (bytes, cut) => {
      const c = Math.min(cut * 2, bytes.length - (bytes.length % 2));
      const whole = internetChecksum(bytes);
      const parts = finishChecksum(onesSum(bytes, c, bytes.length, onesSum(bytes, 0, c)));
      assert.equal(parts, whole);
      const padded = new Uint8Array(bytes.length + 6);
      padded.set(bytes, 3);
      assert.equal(internetChecksum(padded, 3, 3 + bytes.length), whole);
    }),
  );
});

test('pseudo-header sum matches summing the 12 pseudo-header bytes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffff }), (src, dst, proto, len) => {
      const b = new Uint8Array(12);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, src);
      dv.setUint32(4, dst);
      b[9] = proto;
      dv.setUint16(10, len);
      assert.equal(foldSum(pseudoHeaderSum(src, dst, proto, len)), foldSum(onesSum(b, 0, 12)));
    }),
  );
});

test('RFC 1624 incremental update equals recomputation', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 2, maxLength: 64 }).filter((b) => b.length % 2 === 0), fc.nat(), fc.integer({ min: 0, max: 0xffff }), (bytes, wi, nw) => {
      const i = (wi % (bytes.length / 2)) * 2;
      const before = internetChecksum(bytes);
      const old = (bytes[i]! << 8) | bytes[i + 1]!;
      bytes[i] = nw >> 8;
      bytes[i + 1] = nw & 0xff;
      const after = internetChecksum(bytes);
      const inc = updateChecksum(before, old, nw);
      // 0x0000 and 0xffff are the same value in one's complement; RFC 1624 yields the canonical one
      assert.equal(foldSum(inc) % 0xffff, foldSum(after) % 0xffff);
    }),
  );
});

test('property: matches a naive 16-bit reference for any range, alignment and length', () => {
  const naive = (b: Uint8Array, start: number, end: number) => {
    let sum = 0;
    for (let i = start; i < end; i += 2) sum += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    return ~sum & 0xffff;
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1600 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const s = a % (bytes.length + 1);
      const e = s + (b % (bytes.length - s + 1));
      assert.equal(internetChecksum(bytes, s, e), naive(bytes, s, e));
      // a view at an odd byteOffset into a bigger buffer
      const big = new Uint8Array(bytes.length + 3);
      big.set(bytes, 3);
      const view = big.subarray(3);
      assert.equal(internetChecksum(view, s, e), naive(bytes, s, e));
    }),
    { numRuns: 500 },
  );
});
