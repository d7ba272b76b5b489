import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { lzoDecompress, lzoDecompressInto } from '../../../src/crypto/lzo.js';
import { WireError } from '../../../src/errors.js';
import { cliVectors, matchesPlain, plainLength } from './compress-vectors.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Decompresses into a window of a larger sentinel-filled buffer and checks nothing outside was touched. */
function guarded(src: Uint8Array, max: number): Buffer {
  const big = Buffer.alloc(max + 64, 0x5a);
  const view = big.subarray(32, 32 + max);
  let n: number;
  try {
    n = lzoDecompressInto(src, view);
  } finally {
    for (let i = 0; i < 32; i++) assert.equal(big[i], 0x5a, 'wrote before the output window');
    for (let i = 32 + max; i < big.length; i++) assert.equal(big[i], 0x5a, 'wrote past the output window');
  }
  assert.ok(n >= 0 && n <= max);
  return Buffer.from(view.subarray(0, n));
}

describe('LZO1X decompressor', () => {
  const vectors = cliVectors('lzo');
  test('fixture has LZO1X-1, LZO1X-1(15) and LZO1X-999 streams', () => {
    assert.ok(vectors.length >= 25);
    for (const m of ['method 1', 'method 2', 'method 3']) assert.ok(vectors.some((v) => v.tool.endsWith(m)), m);
  });
  for (const v of vectors) {
    test(`${v.tool}: ${v.name}`, () => {
      const src = Buffer.from(v.compressed, 'hex');
      const n = plainLength(v);
      const out = guarded(src, n + 100);
      assert.ok(matchesPlain(v, out), 'output differs from the original');
      assert.throws(() => lzoDecompress(src, n - 1), WireError);
      // every strict prefix is refused (no end marker), never mis-decoded
      for (const cut of [1, 2, 3, Math.floor(src.length / 2)]) {
        if (cut < src.length) assert.throws(() => lzoDecompress(src.subarray(0, src.length - cut), n + 100), WireError);
      }
    });
  }

  test('hand-made streams', () => {
    assert.equal(lzoDecompress(hex('11 0000'), 10).length, 0); // empty stream = end marker only
    assert.equal(lzoDecompress(hex('12 61 11 0000'), 10).toString(), 'a'); // 1 literal, end
    assert.equal(lzoDecompress(hex('15 61626364 11 0000'), 10).toString(), 'abcd'); // 21-17 = 4 literals (state 4)
    // 'abcd', then 01LDDDSS: len 3+1=4, distance (0<<3)+3+1 = 4 -> 'abcd' again, S=0, end
    assert.equal(lzoDecompress(hex('15 61626364 6c 00 11 0000'), 20).toString(), 'abcdabcd');
    // 1 literal 'a' (state 1), then 0000DDSS state 1..3: len 2, distance 1, S=2 -> 2 literals 'bc', end
    assert.equal(lzoDecompress(hex('12 61 02 00 6263 11 0000'), 20).toString(), 'aaabc');
    // state 0 long literal run: first byte 0x00 is an instruction with state 0; 0x00 0x00 0x05 = 3+15+255+5 = 278
    const lits = Buffer.alloc(278, 0x42);
    assert.deepEqual(lzoDecompress(Buffer.concat([hex('00 00 05'), lits, hex('11 0000')]), 300), lits);
    // 001LLLLL: 'x' then len 2+30=32 at distance 1 (overlap), S=0, end
    assert.equal(lzoDecompress(hex('12 78 3e 0000 11 0000'), 64).toString(), 'x'.repeat(33));
  });

  test('malformed streams raise WireError', () => {
    const bad: [string, RegExp][] = [
      ['', /empty input/],
      ['12 61', /truncated instruction/],
      ['11 0000 00', /after the end-of-stream marker/],
      ['16 6162', /past the end/], // 22-17 = 5 literals announced,
      ['12 61 6c 00 11 0000', /before the start/],
      ['12 61 3e 00', /truncated instruction/],
      ['00 00 00', /truncated length/],
      ['15 61626364 19 ff ff', /LZO-RLE|before the start/],
    ];
    for (const [h, re] of bad) {
      assert.throws(() => lzoDecompress(hex(h), 1000), (e: unknown) => e instanceof WireError && re.test(e.message), h);
    }
    assert.throws(() => lzoDecompress(hex('12 78 3e 0000 11 0000'), 32), /exceeds 32 bytes/);
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

  test('property: mutated real streams only ever raise WireError and stay in bounds', () => {
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

  test('a zero-length-extension bomb is refused quickly', () => {
    // 0x00 then 100k zero bytes: a literal length that grows by 255 per byte; must stop at the bound
    const src = Buffer.concat([hex('00'), Buffer.alloc(100_000)]);
    const t0 = performance.now();
    assert.throws(() => lzoDecompress(src, 2048), /exceeds 2048 bytes/);
    assert.ok(performance.now() - t0 < 200);
  });
});
