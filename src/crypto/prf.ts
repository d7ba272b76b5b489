/**
 * TLS 1.0/1.1 PRF (RFC 2246 §5, RFC 4346 §5) and the generic P_hash it is built from.
 *
 * OpenVPN's "TLS1-PRF" key derivation (openvpn.md §3.5) uses PRF = P_MD5(S1) ⊕ P_SHA1(S2), where S1 is
 * the first ceil(n/2) bytes of the secret and S2 the last ceil(n/2) bytes (the middle byte is shared
 * when the length is odd). Node has no TLS1-PRF, so P_hash is written with createHmac. MD5 must be
 * available (it is in Node's default OpenSSL 3 provider, not under FIPS).
 */
import { createHmac } from 'node:crypto';

/** Digest names accepted by pHash (node:crypto spelling). */
export type PHashDigest = 'md5' | 'sha1' | 'sha256' | 'sha384' | 'sha512';

/**
 * P_hash(secret, seed) truncated to `length` bytes:
 *   A(0) = seed, A(i) = HMAC(secret, A(i-1)), output = HMAC(secret, A(1) || seed) || HMAC(secret, A(2) || seed) ...
 * P_SHA256 is the TLS 1.2 PRF (label || seed passed as `seed`).
 */
export function pHash(digest: PHashDigest, secret: Uint8Array, seed: Uint8Array, length: number): Buffer {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`pHash: bad length ${length}`);
  const out = Buffer.allocUnsafe(length);
  let a: Buffer = createHmac(digest, secret).update(seed).digest();
  let off = 0;
  while (off < length) {
    const block = createHmac(digest, secret).update(a).update(seed).digest();
    off += block.copy(out, off, 0, Math.min(block.length, length - off));
    if (off < length) a = createHmac(digest, secret).update(a).digest();
  }
  return out;
}

/** TLS 1.0/1.1 PRF: P_MD5(S1, seed) XOR P_SHA1(S2, seed), `length` bytes. `seed` includes the label. */
export function tls1Prf(secret: Uint8Array, seed: Uint8Array, length: number): Buffer {
  const half = Math.ceil(secret.length / 2);
  const s1 = secret.subarray(0, half);
  const s2 = secret.subarray(secret.length - half);
  const out = pHash('md5', s1, seed, length);
  const sha = pHash('sha1', s2, seed, length);
  for (let i = 0; i < length; i++) out[i] ^= sha[i];
  return out;
}

/** TLS 1.2 PRF with SHA-256 (RFC 5246 §5): P_SHA256(secret, label || seed). */
export function tls12PrfSha256(secret: Uint8Array, seed: Uint8Array, length: number): Buffer {
  return pHash('sha256', secret, seed, length);
}
