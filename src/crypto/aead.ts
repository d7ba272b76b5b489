/**
 * AEAD seal/open helpers over node:crypto (AES-GCM and ChaCha20-Poly1305) with explicit nonce, AAD
 * and tag placement, shared by the OpenVPN data channel and (later) ESP.
 *
 * Node offers no way to reuse a cipher context or to write into a caller's buffer, so one
 * createCipheriv per packet plus one output buffer from update() is the minimum; the *Into variants
 * copy that output and the tag straight into the caller's wire buffer (no Buffer.concat).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { CipherGCMTypes, CipherChaCha20Poly1305Types } from 'node:crypto';

export type AeadName = 'AES-128-GCM' | 'AES-192-GCM' | 'AES-256-GCM' | 'CHACHA20-POLY1305';

/** Static description of an AEAD algorithm (instances live in registry.ts). */
export interface AeadAlgorithm {
  readonly kind: 'aead';
  readonly name: AeadName;
  /** node:crypto algorithm name. */
  readonly nodeName: CipherGCMTypes | CipherChaCha20Poly1305Types;
  readonly keyLength: number;
  /** Nonce (IV) length in bytes: 12 for all of these. */
  readonly nonceLength: number;
  /** Default (full) tag length in bytes: 16. */
  readonly tagLength: number;
  /** Tag lengths the algorithm accepts (GCM allows truncation, e.g. ESP ICV 8/12). */
  readonly tagLengths: readonly number[];
}

function checkArgs(alg: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, tagLength: number): void {
  if (key.length !== alg.keyLength) throw new RangeError(`${alg.name}: key must be ${alg.keyLength} bytes, got ${key.length}`);
  if (nonce.length !== alg.nonceLength) throw new RangeError(`${alg.name}: nonce must be ${alg.nonceLength} bytes, got ${nonce.length}`);
  if (!alg.tagLengths.includes(tagLength)) throw new RangeError(`${alg.name}: unsupported tag length ${tagLength}`);
}

/**
 * Encrypts `plaintext` and writes the ciphertext at out[ctOffset..] and the tag at
 * out[tagOffset..tagOffset+tagLength). The regions may be anywhere in `out` but must not overlap.
 * Returns the ciphertext length (= plaintext length). No argument checks beyond what OpenSSL does:
 * use aeadSeal for a checked one-shot call.
 */
export function aeadSealInto(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array | null,
  plaintext: Uint8Array,
  out: Uint8Array,
  ctOffset: number,
  tagOffset: number,
  tagLength = alg.tagLength,
): number {
  // The overloads of createCipheriv are keyed on literal algorithm unions; the cast picks the AEAD one.
  const c = createCipheriv(alg.nodeName as CipherGCMTypes, key, nonce, { authTagLength: tagLength });
  if (aad !== null && aad.length > 0) c.setAAD(aad);
  const ct = c.update(plaintext);
  const fin = c.final(); // stream ciphers: always empty
  out.set(ct, ctOffset);
  if (fin.length > 0) out.set(fin, ctOffset + ct.length);
  out.set(c.getAuthTag(), tagOffset);
  return ct.length + fin.length;
}

/**
 * Verifies and decrypts. `tag` is the received tag (its length selects the tag length).
 * Returns the plaintext (a fresh buffer) or null when authentication fails. Never throws for bad data.
 */
export function aeadOpenRaw(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array | null,
  ciphertext: Uint8Array,
  tag: Uint8Array,
): Buffer | null {
  const d = createDecipheriv(alg.nodeName as CipherGCMTypes, key, nonce, { authTagLength: tag.length });
  d.setAuthTag(tag);
  if (aad !== null && aad.length > 0) d.setAAD(aad);
  const pt = d.update(ciphertext);
  try {
    d.final();
  } catch {
    return null;
  }
  return pt;
}

/** Checked one-shot seal: returns fresh ciphertext and tag buffers. */
export function aeadSeal(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array | null = null,
  tagLength = alg.tagLength,
): { ciphertext: Buffer; tag: Buffer } {
  checkArgs(alg, key, nonce, tagLength);
  const buf = Buffer.allocUnsafe(plaintext.length + tagLength);
  aeadSealInto(alg, key, nonce, aad, plaintext, buf, 0, plaintext.length, tagLength);
  return { ciphertext: buf.subarray(0, plaintext.length), tag: buf.subarray(plaintext.length) };
}

/** Checked one-shot open: plaintext, or null when the tag does not verify. Throws RangeError on bad key/nonce/tag sizes. */
export function aeadOpen(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array | null = null,
): Buffer | null {
  checkArgs(alg, key, nonce, tag.length);
  return aeadOpenRaw(alg, key, nonce, aad, ciphertext, tag);
}
