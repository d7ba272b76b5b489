/**
 * DES single-block encryption (FIPS 46-3), encryption direction only.
 *
 * Needed only for MS-CHAPv2's ChallengeResponse (RFC 2759 §8.5), which encrypts one 8-byte block
 * under three keys made from the NT password hash. Node 20's OpenSSL 3 keeps DES in the legacy
 * provider, which is not loaded by default. DES is broken; do not use it for anything else.
 *
 * Written for clarity, not speed: every permutation is a table lookup over an array of bits, with
 * the tables as printed in FIPS 46-3 (bit 1 is the most significant bit of the first byte).
 */

// FIPS 46-3, "Initial Permutation IP".
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
  62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
  57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
  61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

// FIPS 46-3, "Inverse Initial Permutation IP^-1".
const IP_INV = [
  40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
  38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
  36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
  34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];

// FIPS 46-3, "E BIT-SELECTION TABLE" (32 -> 48 bits).
const E = [
  32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9,
  8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
  16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25,
  24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];

// FIPS 46-3, permutation P applied to the S-box outputs.
const P = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
  2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

// FIPS 46-3, "Permuted Choice 1" (64 -> 56 bits: C0 is the first 28, D0 the last 28).
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
  10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
  14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

// FIPS 46-3, "Permuted Choice 2" (56 -> 48 bits).
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
  23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
  41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
  44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

// FIPS 46-3, left shifts of C and D before each of the 16 iterations.
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

// FIPS 46-3, S-boxes S1..S8: 4 rows of 16, row chosen by the outer bits, column by the inner four.
export const S_BOXES: readonly (readonly number[])[] = [
  [
    14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
    0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
    4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
    15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
  ],
  [
    15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
    3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
    0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
    13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
  ],
  [
    10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
    13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
    13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
    1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
  ],
  [
    7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
    13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
    10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
    3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
  ],
  [
    2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
    14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
    4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
    11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
  ],
  [
    12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
    10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
    9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
    4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
  ],
  [
    4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
    13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
    1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
    6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
  ],
  [
    13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
    1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
    7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
    2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
  ],
];

type Bits = number[];

/** Bytes to bits, most significant bit of byte 0 first (FIPS bit 1). */
function toBits(bytes: Uint8Array): Bits {
  const bits: Bits = [];
  for (const byte of bytes) for (let i = 7; i >= 0; i--) bits.push((byte >> i) & 1);
  return bits;
}

function fromBits(bits: Bits): Uint8Array {
  const out = new Uint8Array(bits.length >> 3);
  for (let i = 0; i < bits.length; i++) out[i >> 3]! |= bits[i]! << (7 - (i & 7));
  return out;
}

/** Output bit i is input bit table[i] (tables are 1-based as in FIPS 46-3). */
const permute = (bits: Bits, table: readonly number[]): Bits => table.map((n) => bits[n - 1]!);

const rotateLeft = (half: Bits, n: number): Bits => half.slice(n).concat(half.slice(0, n));

/** FIPS 46-3 key schedule KS: the sixteen 48-bit subkeys K1..K16. Parity bits (8, 16, ..., 64) are ignored. */
function keySchedule(key8: Uint8Array): Bits[] {
  const cd = permute(toBits(key8), PC1);
  let c = cd.slice(0, 28);
  let d = cd.slice(28);
  const keys: Bits[] = [];
  for (const s of SHIFTS) {
    c = rotateLeft(c, s);
    d = rotateLeft(d, s);
    keys.push(permute(c.concat(d), PC2));
  }
  return keys;
}

/** The cipher function f(R, K): expand, XOR with the subkey, S-boxes, permute P. */
function f(r: Bits, k: Bits): Bits {
  const x = permute(r, E).map((bit, i) => bit ^ k[i]!);
  const out: Bits = [];
  for (let box = 0; box < 8; box++) {
    const b = x.slice(box * 6, box * 6 + 6);
    const row = (b[0]! << 1) | b[5]!;
    const col = (b[1]! << 3) | (b[2]! << 2) | (b[3]! << 1) | b[4]!;
    const v = S_BOXES[box]![row * 16 + col]!;
    out.push((v >> 3) & 1, (v >> 2) & 1, (v >> 1) & 1, v & 1);
  }
  return permute(out, P);
}

/** DES-encrypt one 8-byte block under an 8-byte key (the low bit of each key byte, parity, is ignored). */
export function desEncrypt(key8: Uint8Array, block8: Uint8Array): Uint8Array {
  if (key8.length !== 8) throw new RangeError(`DES: key must be 8 bytes, got ${key8.length}`);
  if (block8.length !== 8) throw new RangeError(`DES: block must be 8 bytes, got ${block8.length}`);
  const keys = keySchedule(key8);
  const lr = permute(toBits(block8), IP);
  let l = lr.slice(0, 32);
  let r = lr.slice(32);
  for (const k of keys) {
    const fr = f(r, k);
    const next = l.map((bit, i) => bit ^ fr[i]!);
    l = r;
    r = next;
  }
  // The preoutput block is R16 L16 (the halves are not swapped back after the last iteration).
  return fromBits(permute(r.concat(l), IP_INV));
}

/**
 * Spread a 56-bit key (7 bytes) over 8 bytes, 7 key bits in the top of each byte, and set the low
 * bit of each byte to odd parity. This is how RFC 2759 §8.6 (DesEncrypt) feeds a 7-byte key to DES.
 */
export function expandDesKey(key7: Uint8Array): Uint8Array {
  if (key7.length !== 7) throw new RangeError(`DES: 56-bit key must be 7 bytes, got ${key7.length}`);
  const bits = toBits(key7);
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) {
    let byte = 0;
    let ones = 0;
    for (let j = 0; j < 7; j++) {
      const bit = bits[i * 7 + j]!;
      byte |= bit << (7 - j);
      ones += bit;
    }
    out[i] = byte | (ones % 2 === 0 ? 1 : 0);
  }
  return out;
}

/** DES-encrypt one 8-byte block under a 7-byte (56-bit) key, as MS-CHAP does (RFC 2759 §8.6). */
export function desEncrypt7(key7: Uint8Array, block8: Uint8Array): Uint8Array {
  return desEncrypt(expandDesKey(key7), block8);
}
