import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Slab } from '../../../src/util/slab.js';

test('slab: zero-filled, disjoint, 8-byte aligned views; big requests get their own buffer', () => {
  const s = new Slab(1024);
  const a = s.bytes(100);
  const b = s.buffer(50);
  assert.ok(Buffer.isBuffer(b));
  assert.ok(a.every((x) => x === 0) && b.every((x) => x === 0));
  assert.equal(a.buffer, b.buffer);
  assert.equal(b.byteOffset, 104);
  a.fill(1);
  assert.ok(b.every((x) => x === 0), 'writing one view leaves the next untouched');
  const big = s.bytes(257);
  assert.notEqual(big.buffer, a.buffer);
  assert.equal(big.byteOffset, 0);
  // exhausting the slab starts a fresh one; old views stay valid
  const views = Array.from({ length: 20 }, () => s.bytes(200));
  views.forEach((v, i) => v.fill(i + 1));
  views.forEach((v, i) => assert.ok(v.every((x) => x === i + 1)));
  assert.ok(a.every((x) => x === 1));
});

test('slab: any sequence of allocations yields non-overlapping zeroed views of the right length', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 700 }), { maxLength: 60 }), (sizes) => {
      const s = new Slab(2048);
      const views = sizes.map((n, i) => (i % 2 ? s.buffer(n) : s.bytes(n)));
      views.forEach((v, i) => {
        assert.equal(v.length, sizes[i]);
        assert.ok(v.every((x) => x === 0));
        v.fill((i % 255) + 1);
      });
      views.forEach((v, i) => assert.ok(v.every((x) => x === (i % 255) + 1)));
    }),
  );
});
