import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplayWindow } from '../../../src/crypto/replay.js';

describe('ReplayWindow', () => {
  test('in-order ids are accepted, 0 is invalid', () => {
    const w = new ReplayWindow();
    assert.equal(w.size, 64);
    assert.equal(w.accept(0), 'invalid');
    for (let i = 1; i <= 1000; i++) assert.equal(w.accept(i), 'ok');
    assert.equal(w.highest, 1000);
  });

  test('duplicates are rejected, check() does not record', () => {
    const w = new ReplayWindow();
    assert.equal(w.check(5), 'ok');
    assert.equal(w.check(5), 'ok');
    assert.equal(w.accept(5), 'ok');
    assert.equal(w.accept(5), 'duplicate');
    assert.equal(w.check(5), 'duplicate');
    assert.equal(w.accept(3), 'ok'); // below highest, inside the window, not seen
    assert.equal(w.accept(3), 'duplicate');
  });

  test('out of order within the window, too old outside', () => {
    const w = new ReplayWindow(64);
    assert.equal(w.accept(100), 'ok');
    assert.equal(w.accept(37), 'ok'); // 100 - 37 = 63 < 64
    assert.equal(w.accept(36), 'too-old'); // 64 behind
    assert.equal(w.accept(99), 'ok');
    assert.equal(w.accept(99), 'duplicate');
    assert.equal(w.accept(101), 'ok');
    assert.equal(w.accept(37), 'too-old'); // slid out
    assert.equal(w.accept(38), 'ok');
  });

  test('bits of ids that slid out do not leak into new ids (ring reuse)', () => {
    const w = new ReplayWindow(64);
    for (let i = 1; i <= 64; i++) w.accept(i);
    // 65..128 reuse the same ring positions as 1..64
    assert.equal(w.accept(70), 'ok');
    for (let i = 65; i < 70; i++) assert.equal(w.check(i), 'ok', `id ${i}`);
    assert.equal(w.check(6), 'too-old');
    assert.equal(w.check(7), 'duplicate'); // 70 - 7 = 63: inside, seen
  });

  test('a large jump clears the window', () => {
    const w = new ReplayWindow(64);
    for (let i = 1; i <= 10; i++) w.accept(i);
    assert.equal(w.accept(1_000_000), 'ok');
    assert.equal(w.check(999_999), 'ok');
    assert.equal(w.check(1_000_000 - 63), 'ok');
    assert.equal(w.check(1_000_000 - 64), 'too-old');
    assert.equal(w.check(1_000_000), 'duplicate');
  });

  test('32-bit edge: 0xFFFFFFFF accepted once, no wrap to small ids, out-of-range invalid', () => {
    const w = new ReplayWindow();
    assert.equal(w.accept(0xfffffff0), 'ok');
    assert.equal(w.accept(0xffffffff), 'ok');
    assert.equal(w.accept(0xffffffff), 'duplicate');
    assert.equal(w.accept(0xfffffffe), 'ok');
    assert.equal(w.accept(1), 'too-old');
    assert.equal(w.accept(0x100000000), 'invalid');
    assert.equal(w.accept(-1), 'invalid');
    assert.equal(w.accept(1.5), 'invalid');
    assert.equal(w.accept(Number.NaN), 'invalid');
  });

  test('configurable size (rounded up to 32) and reset', () => {
    const w = new ReplayWindow(100);
    assert.equal(w.size, 128);
    w.accept(200);
    assert.equal(w.accept(73), 'ok');
    assert.equal(w.accept(72), 'too-old');
    w.reset();
    assert.equal(w.highest, 0);
    assert.equal(w.accept(72), 'ok');
    assert.throws(() => new ReplayWindow(0), RangeError);
  });

  test('matches a reference set model (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 300 }), fc.constantFrom(32, 64, 96), (ids, size) => {
        const w = new ReplayWindow(size);
        const seen = new Set<number>();
        let top = 0;
        for (const id of ids) {
          const expected = id > top ? 'ok' : top - id >= size ? 'too-old' : seen.has(id) ? 'duplicate' : 'ok';
          assert.equal(w.accept(id), expected);
          if (expected === 'ok') {
            seen.add(id);
            top = Math.max(top, id);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
