import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { lz4DecompressBlock, lz4DecompressInto } from '../../../src/crypto/lz4.js';
import { WireError } from '../../../src/errors.js';
import { cliVectors, matchesPlain, plainLength } from './compress-vectors.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Decompresses into a window of a larger sentinel-filled buffer and checks nothing outside was touched. */
function guarded(src: Uint8Array, max: number): Buffer {
  const big = Buffer.alloc(max + 64, 0xa5);
  const view = big.subarray(32, 32 + max);
  let n: number;
  try {
    n = lz4DecompressInto(src, view);
  } finally {
    for (let i = 0; i < 32; i++) assert.equal(big[i], 0xa5, 'wrote before the output window');
    for (let i = 32 + max; i < big.length; i++) assert.equal(big[i], 0xa5, 'wrote past the output window');
  }
  assert.ok(n >= 0 && n <= max);
  return Buffer.from(view.subarray(0, n));
}

describe('LZ4 block decompressor', () => {
  const vectors = cliVectors('lz4');
  test('fixture has vectors from both lz4 levels', () => {
    assert.ok(vectors.length >= 16);
    assert.ok(vectors.some((v) => v.tool.endsWith('-9')) && vectors.some((v) => v.tool.endsWith('-1')));
  });
  for (const v of vectors) {
    test(`${v.tool}: ${v.name}`, () => {
      const src = Buffer.from(v.compressed, 'hex');
      const n = plainLength(v);
      const out = guarded(src, Math.max(n, 1));
      assert.ok(matchesPlain(v, out), 'output differs from the original');
      // an exact bound works; one byte less is refused
      if (n > 0) assert.throws(() => lz4DecompressBlock(src, n - 1), WireError);
    });
  }

  test('hand-made blocks', () => {
    assert.equal(lz4DecompressBlock(hex('00'), 10).length, 0);
    assert.equal(lz4DecompressBlock(hex('10 61'), 10).toString(), 'a');
    // 'a' then match offset 1 length 4+2 (overlapping copy), then 'b'
    assert.equal(lz4DecompressBlock(hex('12 61 0100 10 62'), 64).toString(), 'aaaaaaab');
    // 'abc' then offset 3 length 4+15+3=22, then 'z'
    assert.equal(lz4DecompressBlock(hex('3f 616263 0300 03 10 7a'), 64).toString(), 'abc'.repeat(9).slice(0, 25) + 'z');
    // literal length extension: 15 + 255 + 1 = 271 literals
    const lits = Buffer.alloc(271, 0x41);
    assert.deepEqual(lz4DecompressBlock(Buffer.concat([hex('f0 ff 01'), lits]), 300), lits);
  });

  test('malformed blocks raise WireError', () => {
    const bad: [string, RegExp][] = [
      ['', /empty block/],
      ['20 61', /past the end/],
      ['10 61 0000 10 62', /offset 0/],
      ['10 61 0200 10 62', /before the start/],
      ['10 61 01', /truncated match offset/],
      ['10 61 0100', /ends with a match/],
      ['f0', /truncated literal length/],
      ['f0 ff', /truncated literal length/],
      ['1f 61 0100', /truncated match length/],
    ];
    for (const [h, re] of bad) {
      assert.throws(() => lz4DecompressBlock(hex(h), 1000), (e: unknown) => e instanceof WireError && re.test(e.message), h);
    }
    // output bound: a 6-byte result does not fit in 5
    assert.throws(() => lz4DecompressBlock(hex('12 61 0100 00'), 5), /exceeds 5 bytes/);
  });

  test('property: random input only ever raises WireError and stays in bounds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 0, max: 3000 }), (src, max) => {
        try {
          guarded(src, max);
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
        }
      }),
      { numRuns: 1500 },
    );
  });

  test('property: mutated real blocks only ever raise WireError and stay in bounds', () => {
    const srcs = vectors.map((v) => Buffer.from(v.compressed, 'hex'));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: srcs.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (which, edits, cut) => {
          const src = Buffer.from(srcs[which]!);
          for (const [pos, val] of edits) src[pos % src.length] = val;
          const trimmed = cut % 3 === 0 ? src.subarray(0, cut % (src.length + 1)) : src;
          try {
            guarded(trimmed, 2048);
          } catch (e) {
            if (!(e instanceof WireError)) throw e;
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('property: generated valid blocks decompress to what was encoded', () => {
    // Build a block from random sequences (literal runs and in-range matches) while tracking the expected output.
    const seq = fc.array(
      fc.record({ lits: fc.uint8Array({ maxLength: 300 }), off: fc.nat(), mlen: fc.integer({ min: 4, max: 600 }) }),
      { maxLength: 8 },
    );
    fc.assert(
      fc.property(seq, fc.uint8Array({ maxLength: 40 }), (seqs, lastLits) => {
        const parts: number[] = [];
        const expect: number[] = [];
        const lenExt = (n: number) => {
          while (n >= 255) {
            parts.push(255);
            n -= 255;
          }
          parts.push(n);
        };
        for (const s of seqs) {
          const outLen = expect.length + s.lits.length;
          if (outLen === 0) continue; // no match possible without history
          const off = 1 + (s.off % Math.min(outLen, 65535));
          const ml = s.mlen - 4;
          parts.push((Math.min(s.lits.length, 15) << 4) | Math.min(ml, 15));
          if (s.lits.length >= 15) lenExt(s.lits.length - 15);
          parts.push(...s.lits);
          expect.push(...s.lits);
          parts.push(off & 255, off >> 8);
          if (ml >= 15) lenExt(ml - 15);
          for (let i = 0; i < s.mlen; i++) expect.push(expect[expect.length - off]!);
        }
        parts.push(Math.min(lastLits.length, 15) << 4);
        if (lastLits.length >= 15) lenExt(lastLits.length - 15);
        parts.push(...lastLits);
        expect.push(...lastLits);
        const out = guarded(Uint8Array.from(parts), expect.length + 5);
        assert.deepEqual([...out], expect);
      }),
      { numRuns: 400 },
    );
  });
});
