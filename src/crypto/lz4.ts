/**
 * LZ4 *block* decompressor (no frame format), written from the block format description
 * (lz4 doc/lz4_Block_format.md). Used for OpenVPN `compress lz4` / `lz4-v2` payloads that a server may
 * send; we never compress.
 *
 * A block is a series of sequences:
 *   token (1 byte: literal length in the high nibble, match length - 4 in the low nibble)
 *   [literal length continuation: while 15 / 255 ... add the bytes]  literals
 *   offset (2 bytes little-endian, 1..65535, back from the current output position)
 *   [match length continuation]
 * The last sequence has literals only: the block ends right after its literals.
 *
 * Guarantees: never reads or writes out of bounds, output never exceeds `maxOutput`, runs in time linear in
 * input + output, and every malformed input raises WireError (field 'lz4', offset = input position).
 */
import { WireError } from '../errors.js';

function fail(message: string, offset: number): never {
  throw new WireError(`LZ4: ${message}`, 'lz4', offset);
}

/**
 * Decompresses one LZ4 block into out[0..] (the whole of `out` is the output bound). Returns the number of
 * bytes written.
 */
export function lz4DecompressInto(src: Uint8Array, out: Uint8Array): number {
  const iend = src.length;
  const oend = out.length;
  if (iend === 0) fail('empty block', 0);
  let ip = 0;
  let op = 0;
  for (;;) {
    const tokenAt = ip;
    const token = src[ip++]!;
    // literals
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= iend) fail('truncated literal length', ip);
        b = src[ip++]!;
        lit += b;
        if (lit > oend) fail(`output exceeds ${oend} bytes`, ip);
      } while (b === 255);
    }
    if (lit > iend - ip) fail(`literal run of ${lit} bytes runs past the end of the input`, ip);
    if (lit > oend - op) fail(`output exceeds ${oend} bytes`, ip);
    if (lit > 0) {
      out.set(src.subarray(ip, ip + lit), op);
      ip += lit;
      op += lit;
    }
    if (ip === iend) return op; // last sequence: literals only
    // match
    if (iend - ip < 2) fail('truncated match offset', ip);
    const offset = src[ip]! | (src[ip + 1]! << 8);
    if (offset === 0) fail('match offset 0', ip);
    if (offset > op) fail(`match offset ${offset} reaches before the start of the output (${op} bytes)`, ip);
    ip += 2;
    let ml = token & 15;
    if (ml === 15) {
      let b: number;
      do {
        if (ip >= iend) fail('truncated match length', ip);
        b = src[ip++]!;
        ml += b;
        if (ml > oend) fail(`output exceeds ${oend} bytes`, ip);
      } while (b === 255);
    }
    ml += 4;
    if (ml > oend - op) fail(`output exceeds ${oend} bytes`, tokenAt);
    let from = op - offset;
    if (offset >= ml) {
      out.copyWithin(op, from, from + ml);
      op += ml;
    } else {
      // overlapping copy (run-length style): byte by byte
      const stop = op + ml;
      while (op < stop) out[op++] = out[from++]!;
    }
    if (ip >= iend) fail('block ends with a match (the last sequence must be literals only)', ip);
  }
}

/** Decompresses one LZ4 block; the result is at most `maxOutput` bytes (else WireError). */
export function lz4DecompressBlock(src: Uint8Array, maxOutput: number): Buffer {
  const out = Buffer.allocUnsafe(maxOutput);
  const n = lz4DecompressInto(src, out);
  return out.subarray(0, n);
}
