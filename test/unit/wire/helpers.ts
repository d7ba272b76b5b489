import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/** Run fn; anything thrown must be a WireError with a field name and a sane offset. */
export function onlyWireError(fn: () => unknown, inputLength: number): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof WireError)) throw new Error(`threw a non-WireError: ${String(e)}`);
    assert.ok(e.field.length > 0);
    assert.ok(e.offset >= 0 && e.offset <= inputLength + 60, `offset ${e.offset}`);
    assert.equal(e.code, 'WIRE');
  }
}

/** A valid packet with a few random byte mutations / truncation / extension. */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.uint8Array({ maxLength: 8 }),
    )
    .map(([v, muts, cut, extra]) => {
      let b = Uint8Array.from(v);
      for (const [pos, val] of muts) if (b.length) b[pos % b.length] = val;
      if (cut !== undefined && b.length) b = b.subarray(0, cut % (b.length + 1));
      if (extra.length) {
        const n = new Uint8Array(b.length + extra.length);
        n.set(b);
        n.set(extra, b.length);
        b = n;
      }
      return b;
    });
}

export const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u8 = fc.integer({ min: 0, max: 255 });
