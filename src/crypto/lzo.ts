/**
 * LZO1X decompressor (the format liblzo's lzo1x_1 / lzo1x_1_15 / lzo1x_999 compressors emit, which
 * OpenVPN's `comp-lzo` / `compress lzo` use), written from the stream description in the Linux kernel's
 * Documentation/staging/lzo.rst. Receive-only: we never compress.
 *
 * The stream is a series of instructions. A `state` (0..4) remembers how many literals the previous
 * instruction copied (4 = "4 or more") and changes the meaning of the short instructions 0..15:
 *
 *   first byte 18..20        copy byte-17 (1..3) literals, state = that count
 *   first byte 21..255       copy byte-17 (4..238) literals, state = 4
 *                            (the kernel text says "18..21: 0..3 literals"; liblzo's output, checked against
 *                            the lzop vectors, is byte-17 literals)
 *   (a first byte 0..17 is an ordinary instruction with state 0)
 *   0000LLLL, state 0        literal run of 3 + L bytes (L = 0: 18 + 255*zeros + next non-zero byte), state 4
 *   0000DDSS, state 1..3     match len 2, distance (H << 2) + D + 1, one byte H follows
 *   0000DDSS, state 4        match len 3, distance (H << 2) + D + 2049, one byte H follows
 *   0001HLLL                 match len 2 + L (L = 0: 9 + ...), LE16 follows, distance 16384 + (H << 14) + (LE16 >> 2);
 *                            distance exactly 16384 = end of stream
 *   001LLLLL                 match len 2 + L (L = 0: 33 + ...), LE16 follows, distance (LE16 >> 2) + 1
 *   01LDDDSS                 match len 3 + L, one byte H follows, distance (H << 3) + D + 1
 *   1LLDDDSS                 match len 5 + L, one byte H follows, distance (H << 3) + D + 1
 * After a match, S (the low 2 bits of the instruction, or of the LE16's first byte) literals follow, and
 * state = S.
 *
 * Guarantees: never reads or writes out of bounds, output never exceeds `maxOutput`, time linear in input
 * + output, and malformed input (truncation, a distance before the output start, no end marker, bytes
 * after the end marker, the LZO-RLE extension) raises WireError (field 'lzo', offset = input position).
 */
import { WireError } from '../errors.js';

function fail(message: string, offset: number): never {
  throw new WireError(`LZO: ${message}`, 'lzo', offset);
}

/**
 * Decompresses one LZO1X stream into out[0..] (the whole of `out` is the output bound). Returns the number
 * of bytes written.
 */
export function lzoDecompressInto(src: Uint8Array, out: Uint8Array): number {
  const iend = src.length;
  const oend = out.length;
  let ip = 0;
  let op = 0;

  /** Reads the zero-extended length continuation: base + 255 per zero byte + the final non-zero byte. */
  const extLength = (base: number): number => {
    let len = base;
    for (;;) {
      if (ip >= iend) fail('truncated length', ip);
      const b = src[ip++]!;
      if (b !== 0) return len + b;
      len += 255;
      if (len > oend) fail(`output exceeds ${oend} bytes`, ip);
    }
  };
  const literals = (n: number): void => {
    if (n > iend - ip) fail(`literal run of ${n} bytes runs past the end of the input`, ip);
    if (n > oend - op) fail(`output exceeds ${oend} bytes`, ip);
    for (let i = 0; i < n; i++) out[op + i] = src[ip + i]!;
    ip += n;
    op += n;
  };
  const match = (dist: number, len: number, at: number): void => {
    if (dist > op) fail(`match distance ${dist} reaches before the start of the output (${op} bytes)`, at);
    if (len > oend - op) fail(`output exceeds ${oend} bytes`, at);
    let from = op - dist;
    if (dist >= len) {
      out.copyWithin(op, from, from + len);
      op += len;
    } else {
      const stop = op + len;
      while (op < stop) out[op++] = out[from++]!;
    }
  };
  const byte = (): number => {
    if (ip >= iend) fail('truncated instruction', ip);
    return src[ip++]!;
  };

  if (iend === 0) fail('empty input', 0);
  let state = 0;
  if (src[0]! > 17) {
    const t = src[0]! - 17;
    ip = 1;
    literals(t);
    state = t < 4 ? t : 4;
  }
  for (;;) {
    const at = ip;
    const inst = byte();
    let s: number;
    if (inst < 16) {
      if (state === 0) {
        const len = (inst === 0 ? extLength(15) : inst) + 3;
        literals(len);
        state = 4;
        continue;
      }
      const h = byte();
      if (state < 4) match((h << 2) + ((inst >>> 2) & 3) + 1, 2, at);
      else match((h << 2) + ((inst >>> 2) & 3) + 2049, 3, at);
      s = inst & 3;
    } else if (inst < 32) {
      const len = ((inst & 7) === 0 ? extLength(7) : inst & 7) + 2;
      const lo = byte();
      const hi = byte();
      const le = lo | (hi << 8);
      const dist = 16384 + ((inst & 8) << 11) + (le >>> 2);
      if (dist === 16384) {
        if (ip !== iend) fail(`${iend - ip} bytes after the end-of-stream marker`, ip);
        return op;
      }
      if (dist === 0xbfff) fail('LZO-RLE run (not LZO1X)', at);
      match(dist, len, at);
      s = lo & 3;
    } else if (inst < 64) {
      const len = ((inst & 31) === 0 ? extLength(31) : inst & 31) + 2;
      const lo = byte();
      const hi = byte();
      match(((lo | (hi << 8)) >>> 2) + 1, len, at);
      s = lo & 3;
    } else {
      const h = byte();
      const dist = (h << 3) + ((inst >>> 2) & 7) + 1;
      const len = inst < 128 ? 3 + ((inst >>> 5) & 1) : 5 + ((inst >>> 5) & 3);
      match(dist, len, at);
      s = inst & 3;
    }
    if (s > 0) literals(s);
    state = s;
  }
}

/** Decompresses one LZO1X stream; the result is at most `maxOutput` bytes (else WireError). */
export function lzoDecompress(src: Uint8Array, maxOutput: number): Buffer {
  const out = Buffer.allocUnsafe(maxOutput);
  const n = lzoDecompressInto(src, out);
  return out.subarray(0, n);
}
