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
  test('64-bit ids (ESN): past 2^32, windows up to 4096, the model holds far from zero', () => {
    const w = new ReplayWindow(4096, { esn: true });
    assert.equal(w.size, 4096);
    const base = 0x1_0000_0000 * 7; // seventh 2^32 subspace
    assert.equal(w.accept(base + 10), 'ok');
    assert.equal(w.accept(base + 10), 'duplicate');
    assert.equal(w.accept(base + 10 - 4095), 'ok', 'inside a 4096 window');
    assert.equal(w.accept(base + 10 - 4096), 'too-old');
    assert.equal(w.accept(0x1_0000_0000), 'too-old');
    assert.equal(w.accept(2 ** 53), 'invalid', 'beyond exact integers');
    assert.equal(new ReplayWindow(64).accept(0x1_0000_0000), 'invalid', 'a 32-bit window refuses 64-bit ids');
  });

  test('ESN high-bit inference (RFC 4303 Appendix A2.2), across a wrap of the low half', () => {
    const w = new ReplayWindow(128, { esn: true });
    assert.equal(w.inferEsn(5), 5, 'empty window: subspace 0');
    w.accept(0xffff_fff0);
    assert.equal(w.inferEsn(0xffff_fff5), 0xffff_fff5, 'ahead in the same subspace');
    assert.equal(w.inferEsn(0xffff_ff90), 0xffff_ff90, 'behind, inside the window');
    assert.equal(w.inferEsn(3), 0x1_0000_0003, 'low half wrapped: next subspace');
    assert.equal(w.accept(w.inferEsn(3)), 'ok');
    // now the window straddles the boundary: top = 2^32 + 3, bottom = 2^32 + 3 - 127
    assert.equal(w.inferEsn(0xffff_fff8), 0xffff_fff8, 'late packet from the previous subspace');
    assert.equal(w.accept(w.inferEsn(0xffff_fff8)), 'ok');
    assert.equal(w.accept(w.inferEsn(0xffff_fff0)), 'duplicate');
    assert.equal(w.inferEsn(10), 0x1_0000_000a, 'ahead after the wrap');
    // outside the window the RFC's rule reads a value as ahead (the ICV, computed over the guessed high
    // bits, then decides): never as a late packet of the previous subspace
    assert.equal(w.inferEsn(0x8000_0000), 0x1_8000_0000, 'outside the window: read as ahead');
    const fresh = new ReplayWindow(64, { esn: true });
    fresh.accept(20);
    assert.equal(fresh.inferEsn(0xffff_fff0), 0, 'before the first subspace: no valid id');
    assert.equal(fresh.accept(fresh.inferEsn(0xffff_fff0)), 'invalid');
  });

  test('ESN inference agrees with the true sequence number for any in-window neighbour (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 2 ** 40 }), fc.integer({ min: -127, max: 1 << 20 }), (top, delta) => {
        const w = new ReplayWindow(128, { esn: true });
        w.accept(top);
        const seq = top + delta;
        assert.equal(w.inferEsn(seq % 0x1_0000_0000), seq);
      }),
      { numRuns: 500 },
    );
  });
});
