/**
 * MD4 message digest (RFC 1320), written from the RFC's description.
 *
 * Needed only for the MS-CHAPv2 NT password hash (RFC 2759 §8.3): Node 20's OpenSSL 3 keeps MD4 in
 * the legacy provider, which is not loaded by default. MD4 is broken as a general-purpose hash; do
 * not use it for anything else.
 */

const rotl = (x: number, s: number): number => ((x << s) | (x >>> (32 - s))) >>> 0;

// RFC 1320 §3.4: auxiliary functions and round constants.
const F = (x: number, y: number, z: number): number => (x & y) | (~x & z);
const G = (x: number, y: number, z: number): number => (x & y) | (x & z) | (y & z);
const H = (x: number, y: number, z: number): number => x ^ y ^ z;
const ROUND2_K = 0x5a827999;
const ROUND3_K = 0x6ed9eba1;

// Word order of each round and the shift amounts (they repeat every four operations).
const ORDER1 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const ORDER2 = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
const ORDER3 = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
const SHIFT1 = [3, 7, 11, 19];
const SHIFT2 = [3, 5, 9, 13];
const SHIFT3 = [3, 9, 11, 15];

/** MD4 digest (16 bytes) of `data`. */
export function md4(data: Uint8Array): Uint8Array {
  // RFC 1320 §3.1–3.2: append 0x80, zero-pad to 56 mod 64, then the bit length as 64-bit little-endian.
  const len = data.length;
  const padded = new Uint8Array((((len + 8) >> 6) + 1) << 6);
  padded.set(data);
  padded[len] = 0x80;
  const view = new DataView(padded.buffer);
  const bitLen = len * 8;
  view.setUint32(padded.length - 8, bitLen >>> 0, true);
  view.setUint32(padded.length - 4, Math.floor(bitLen / 0x100000000) >>> 0, true);

  // RFC 1320 §3.3: initial state.
  let a = 0x67452301;
  let b = 0xefcdab89;
  let c = 0x98badcfe;
  let d = 0x10325476;

  const x = new Uint32Array(16);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) x[i] = view.getUint32(off + 4 * i, true);
    const aa = a;
    const bb = b;
    const cc = c;
    const dd = d;

    // Each round: 16 operations of the form  a = (a + f(b,c,d) + X[k] + K) <<< s,
    // with (a,b,c,d) rotating one position to the right after each operation.
    const round = (f: (x: number, y: number, z: number) => number, order: number[], shifts: number[], k: number): void => {
      for (let i = 0; i < 16; i++) {
        const t = rotl((a + f(b, c, d) + x[order[i]!]! + k) >>> 0, shifts[i & 3]!);
        a = d;
        d = c;
        c = b;
        b = t;
      }
    };
    round(F, ORDER1, SHIFT1, 0);
    round(G, ORDER2, SHIFT2, ROUND2_K);
    round(H, ORDER3, SHIFT3, ROUND3_K);

    a = (a + aa) >>> 0;
    b = (b + bb) >>> 0;
    c = (c + cc) >>> 0;
    d = (d + dd) >>> 0;
  }

  // RFC 1320 §3.5: output a, b, c, d, low-order byte first.
  const out = new Uint8Array(16);
  const ov = new DataView(out.buffer);
  ov.setUint32(0, a, true);
  ov.setUint32(4, b, true);
  ov.setUint32(8, c, true);
  ov.setUint32(12, d, true);
  return out;
}
