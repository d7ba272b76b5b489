/**
 * The IKEv2 PRF and prf+ (RFC 7296 §2.13; ipsec.md §4.5).
 *
 * Only the HMAC PRFs (PRF_HMAC_SHA1 = 2, PRF_HMAC_SHA2_256/384/512 = 5/6/7, RFC 2104 / RFC 4868) are
 * implemented; the algorithm is named by its node:crypto hash name. The fixed-key PRFs (AES-XCBC,
 * AES-CMAC) are not supported.
 *
 *   prf+(K, S) = T1 | T2 | T3 | ...
 *   T1 = prf(K, S | 0x01)
 *   Tn = prf(K, T(n-1) | S | n)     n is one octet, so at most 255 blocks
 */
import { createHmac } from 'node:crypto';
import { VpnError } from '../errors.js';

/** Hash behind an HMAC PRF, in node:crypto spelling. */
export type PrfHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const OUTPUT_LENGTH: Readonly<Record<PrfHash, number>> = Object.freeze({ sha1: 20, sha256: 32, sha384: 48, sha512: 64 });

/** prf+ counts its blocks in one octet (RFC 7296 §2.13). */
export const PRF_PLUS_MAX_BLOCKS = 255;

function checkAlg(alg: string): asserts alg is PrfHash {
  if (!Object.prototype.hasOwnProperty.call(OUTPUT_LENGTH, alg)) {
    throw new VpnError('ALGORITHM_UNSUPPORTED', `unsupported PRF hash ${alg}; supported: ${Object.keys(OUTPUT_LENGTH).join(', ')}`);
  }
}

/** True for the hash names prf/prfPlus accept. */
export function isPrfHash(alg: string): alg is PrfHash {
  return Object.prototype.hasOwnProperty.call(OUTPUT_LENGTH, alg);
}

/** Output (and preferred key) length of the PRF in bytes: 20, 32, 48 or 64. */
export function prfOutputLength(alg: PrfHash): number {
  checkAlg(alg);
  return OUTPUT_LENGTH[alg];
}

/** prf(key, data) = HMAC-<alg>(key, data). `data` may be given as pieces, which are concatenated. */
export function prf(alg: PrfHash, key: Uint8Array, data: Uint8Array | readonly Uint8Array[]): Buffer {
  checkAlg(alg);
  const h = createHmac(alg, key);
  if (data instanceof Uint8Array) h.update(data);
  else for (const d of data) h.update(d);
  return h.digest();
}

/** Largest `length` prfPlus accepts for `alg` (255 blocks). */
export function prfPlusMaxLength(alg: PrfHash): number {
  return prfOutputLength(alg) * PRF_PLUS_MAX_BLOCKS;
}

/**
 * The first `length` bytes of prf+(key, seed). Throws RangeError when `length` is negative, not an
 * integer, or needs more than 255 blocks.
 */
export function prfPlus(alg: PrfHash, key: Uint8Array, seed: Uint8Array, length: number): Buffer {
  const hashLen = prfOutputLength(alg);
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`prf+: bad length ${length}`);
  const blocks = Math.ceil(length / hashLen);
  if (blocks > PRF_PLUS_MAX_BLOCKS) {
    throw new RangeError(`prf+: ${length} bytes needs ${blocks} blocks of ${hashLen}, more than ${PRF_PLUS_MAX_BLOCKS}`);
  }
  const out = Buffer.alloc(length);
  const counter = Buffer.alloc(1);
  let prev: Buffer | undefined;
  for (let n = 1; n <= blocks; n++) {
    const h = createHmac(alg, key);
    if (prev) h.update(prev);
    h.update(seed);
    counter[0] = n;
    h.update(counter);
    prev = h.digest();
    prev.copy(out, (n - 1) * hashLen, 0, Math.min(hashLen, length - (n - 1) * hashLen));
  }
  return out;
}
