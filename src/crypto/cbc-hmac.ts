/**
 * CBC encryption + HMAC (encrypt-then-MAC) helpers over node:crypto.
 *
 * Low-level pieces (cbcEncryptInto, cbcDecrypt, hmacInto, hmacVerify) let a caller build its own
 * wire layout without Buffer.concat: OpenVPN puts [HMAC][IV][CT] (MAC over IV || CT, PKCS#7 padding),
 * ESP puts [IV][CT][ICV] with its own padding and a truncated ICV. cbcHmacSeal/cbcHmacOpen are
 * convenience one-shots for either layout.
 */
import { createCipheriv, createDecipheriv, createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';

export type CbcCipherName = 'AES-128-CBC' | 'AES-192-CBC' | 'AES-256-CBC';
export type DigestName = 'SHA1' | 'SHA256' | 'SHA384' | 'SHA512';

export interface CbcCipher {
  readonly kind: 'cbc';
  readonly name: CbcCipherName;
  readonly nodeName: 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc';
  readonly keyLength: number;
  readonly ivLength: number;
  readonly blockSize: number;
}

export interface Digest {
  readonly name: DigestName;
  readonly nodeName: 'sha1' | 'sha256' | 'sha384' | 'sha512';
  /** Output size in bytes (also OpenVPN's HMAC key length). */
  readonly size: number;
}

export interface CbcHmacSuite {
  readonly cipher: CbcCipher;
  readonly digest: Digest;
}

/** Length of the PKCS#7-padded ciphertext for `plaintextLength` bytes (always adds 1..blockSize bytes). */
export function cbcPaddedLength(cipher: CbcCipher, plaintextLength: number): number {
  return (Math.floor(plaintextLength / cipher.blockSize) + 1) * cipher.blockSize;
}

/**
 * CBC-encrypts prefix || plaintext with PKCS#7 padding (or none: then the total must be a whole number
 * of blocks) into out[offset..]. Returns the number of bytes written. `prefix` lets OpenVPN put the
 * packet id in front of the payload without a copy.
 */
export function cbcEncryptInto(
  cipher: CbcCipher,
  key: Uint8Array,
  iv: Uint8Array,
  prefix: Uint8Array | null,
  plaintext: Uint8Array,
  out: Uint8Array,
  offset: number,
  pkcs7 = true,
): number {
  const c = createCipheriv(cipher.nodeName, key, iv);
  if (!pkcs7) c.setAutoPadding(false);
  let off = offset;
  if (prefix !== null && prefix.length > 0) {
    const a = c.update(prefix);
    out.set(a, off);
    off += a.length;
  }
  const b = c.update(plaintext);
  out.set(b, off);
  off += b.length;
  const f = c.final();
  out.set(f, off);
  off += f.length;
  return off - offset;
}

/**
 * CBC-decrypts. With pkcs7 the padding is checked (every pad byte equal to the pad length) and removed;
 * the result is a view into one fresh buffer. Returns null for a bad length or bad padding.
 * Call this only after the MAC has been verified (encrypt-then-MAC), so padding errors leak nothing.
 */
export function cbcDecrypt(
  cipher: CbcCipher,
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  pkcs7 = true,
): Buffer | null {
  const bs = cipher.blockSize;
  if (ciphertext.length === 0 || ciphertext.length % bs !== 0) return null;
  const d = createDecipheriv(cipher.nodeName, key, iv);
  d.setAutoPadding(false);
  const pt = d.update(ciphertext); // whole blocks: everything comes out of update(), final() is empty
  d.final();
  if (!pkcs7) return pt;
  const pad = pt[pt.length - 1]!;
  if (pad < 1 || pad > bs) return null;
  for (let i = pt.length - pad; i < pt.length - 1; i++) if (pt[i] !== pad) return null;
  return pt.subarray(0, pt.length - pad);
}

/** HMAC(key, data) written to out[offset..offset+length) (length < digest size truncates, e.g. ESP ICVs). */
export function hmacInto(
  digest: Digest,
  key: Uint8Array,
  data: Uint8Array,
  out: Uint8Array,
  offset: number,
  length = digest.size,
): void {
  const mac = createHmac(digest.nodeName, key).update(data).digest();
  out.set(length === mac.length ? mac : mac.subarray(0, length), offset);
}

/** Constant-time check of a (possibly truncated) HMAC tag over `data`. */
export function hmacVerify(digest: Digest, key: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean {
  if (tag.length === 0 || tag.length > digest.size) return false;
  const mac = createHmac(digest.nodeName, key).update(data).digest();
  return timingSafeEqual(tag.length === mac.length ? mac : mac.subarray(0, tag.length), tag);
}

export interface CbcHmacSealOptions {
  /** Fixed IV (tests, vectors). Default: random. */
  iv?: Uint8Array;
  /** 'mac-first' = [MAC][IV][CT] (OpenVPN); 'mac-last' = [IV][CT][MAC] (ESP). Default 'mac-last'. */
  layout?: 'mac-first' | 'mac-last';
  /** Truncated MAC length (default: the full digest size). */
  macLength?: number;
}

function layoutOffsets(suite: CbcHmacSuite, ctLen: number, macLen: number, layout: 'mac-first' | 'mac-last') {
  const ivLen = suite.cipher.ivLength;
  return layout === 'mac-first'
    ? { mac: 0, iv: macLen, ct: macLen + ivLen, covered: [macLen, macLen + ivLen + ctLen] as const }
    : { mac: ivLen + ctLen, iv: 0, ct: ivLen, covered: [0, ivLen + ctLen] as const };
}

/** Encrypt-then-MAC one-shot: PKCS#7, MAC = HMAC(macKey, IV || CT). Returns one buffer in the chosen layout. */
export function cbcHmacSeal(
  suite: CbcHmacSuite,
  encKey: Uint8Array,
  macKey: Uint8Array,
  plaintext: Uint8Array,
  opts: CbcHmacSealOptions = {},
): Buffer {
  const { cipher, digest } = suite;
  if (encKey.length !== cipher.keyLength) throw new RangeError(`${cipher.name}: key must be ${cipher.keyLength} bytes`);
  const macLen = opts.macLength ?? digest.size;
  if (macLen < 1 || macLen > digest.size) throw new RangeError(`bad MAC length ${macLen}`);
  const ctLen = cbcPaddedLength(cipher, plaintext.length);
  const o = layoutOffsets(suite, ctLen, macLen, opts.layout ?? 'mac-last');
  const out = Buffer.allocUnsafe(macLen + cipher.ivLength + ctLen);
  if (opts.iv) {
    if (opts.iv.length !== cipher.ivLength) throw new RangeError(`IV must be ${cipher.ivLength} bytes`);
    out.set(opts.iv, o.iv);
  } else randomFillSync(out, o.iv, cipher.ivLength);
  cbcEncryptInto(cipher, encKey, out.subarray(o.iv, o.iv + cipher.ivLength), null, plaintext, out, o.ct);
  hmacInto(digest, macKey, out.subarray(o.covered[0], o.covered[1]), out, o.mac, macLen);
  return out;
}

/** Verifies the MAC (constant time), then decrypts. Returns null on any failure (short, MAC, padding). */
export function cbcHmacOpen(
  suite: CbcHmacSuite,
  encKey: Uint8Array,
  macKey: Uint8Array,
  sealed: Uint8Array,
  opts: Omit<CbcHmacSealOptions, 'iv'> = {},
): Buffer | null {
  const { cipher, digest } = suite;
  const macLen = opts.macLength ?? digest.size;
  const ctLen = sealed.length - macLen - cipher.ivLength;
  if (ctLen < cipher.blockSize || ctLen % cipher.blockSize !== 0) return null;
  const o = layoutOffsets(suite, ctLen, macLen, opts.layout ?? 'mac-last');
  if (!hmacVerify(digest, macKey, sealed.subarray(o.covered[0], o.covered[1]), sealed.subarray(o.mac, o.mac + macLen))) {
    return null;
  }
  return cbcDecrypt(cipher, encKey, sealed.subarray(o.iv, o.iv + cipher.ivLength), sealed.subarray(o.ct, o.ct + ctLen));
}
