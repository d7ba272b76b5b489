/**
 * The one crypto registry (architecture.md §5): every cipher, digest and PRF is described once here and
 * looked up by the OpenVPN data channel and by ESP/IKE. Unknown names throw a VpnError with the
 * protocol-neutral code ALGORITHM_UNSUPPORTED that lists what is supported (a protocol layer may rethrow
 * it in its own vocabulary, e.g. OpenVPN's PROFILE_UNSUPPORTED).
 *
 * Names here follow OpenVPN/OpenSSL spelling ('AES-256-GCM', 'CHACHA20-POLY1305', 'AES-256-CBC', 'SHA256');
 * lookups are case-insensitive and accept 'SHA-256'-style digest spellings. IPsec looks the same
 * algorithms up by strongSwan keyword and IANA transform ID in ipsec-algorithms.ts.
 */
import { VpnError } from '../errors.js';
import type { AeadAlgorithm, AeadName } from './aead.js';
import type { CbcCipher, CbcCipherName, CbcHmacSuite, Digest, DigestName } from './cbc-hmac.js';
import { tls1Prf, tls12PrfSha256 } from './prf.js';

export type { AeadAlgorithm, AeadName } from './aead.js';
export type { CbcCipher, CbcCipherName, CbcHmacSuite, Digest, DigestName } from './cbc-hmac.js';
export { ReplayWindow, DEFAULT_REPLAY_WINDOW } from './replay.js';
export type { ReplayVerdict } from './replay.js';

/** Data-channel cipher names (OpenVPN `cipher` / `data-ciphers` values we implement). */
export type DataCipherName = AeadName | CbcCipherName | 'none';
/** `--auth` values we implement. */
export type AuthName = DigestName | 'none';

/** The `cipher none` pseudo-cipher (no encryption; an HMAC may still be used). */
export interface NoneCipher {
  readonly kind: 'none';
  readonly name: 'none';
  readonly keyLength: 0;
}
export type DataCipher = AeadAlgorithm | CbcCipher | NoneCipher;

const aeadAlg = (name: AeadName, nodeName: AeadAlgorithm['nodeName'], keyLength: number, gcm: boolean): AeadAlgorithm =>
  Object.freeze({
    kind: 'aead',
    name,
    nodeName,
    keyLength,
    nonceLength: 12,
    tagLength: 16,
    tagLengths: Object.freeze(gcm ? [8, 12, 16] : [16]),
  });

export const AEADS: Readonly<Record<AeadName, AeadAlgorithm>> = Object.freeze({
  'AES-128-GCM': aeadAlg('AES-128-GCM', 'aes-128-gcm', 16, true),
  'AES-192-GCM': aeadAlg('AES-192-GCM', 'aes-192-gcm', 24, true),
  'AES-256-GCM': aeadAlg('AES-256-GCM', 'aes-256-gcm', 32, true),
  'CHACHA20-POLY1305': aeadAlg('CHACHA20-POLY1305', 'chacha20-poly1305', 32, false),
});

const cbc = (name: CbcCipherName, nodeName: CbcCipher['nodeName'], keyLength: number): CbcCipher =>
  Object.freeze({ kind: 'cbc', name, nodeName, keyLength, ivLength: 16, blockSize: 16 });

export const CBC_CIPHERS: Readonly<Record<CbcCipherName, CbcCipher>> = Object.freeze({
  'AES-128-CBC': cbc('AES-128-CBC', 'aes-128-cbc', 16),
  'AES-192-CBC': cbc('AES-192-CBC', 'aes-192-cbc', 24),
  'AES-256-CBC': cbc('AES-256-CBC', 'aes-256-cbc', 32),
});

export const DIGESTS: Readonly<Record<DigestName, Digest>> = Object.freeze({
  SHA1: Object.freeze({ name: 'SHA1', nodeName: 'sha1', size: 20 }),
  SHA256: Object.freeze({ name: 'SHA256', nodeName: 'sha256', size: 32 }),
  SHA384: Object.freeze({ name: 'SHA384', nodeName: 'sha384', size: 48 }),
  SHA512: Object.freeze({ name: 'SHA512', nodeName: 'sha512', size: 64 }),
});

export const NONE_CIPHER: NoneCipher = Object.freeze({ kind: 'none', name: 'none', keyLength: 0 });

export function unsupported(what: string, name: string, known: readonly string[]): VpnError {
  return new VpnError('ALGORITHM_UNSUPPORTED', `unsupported ${what} "${name}"; supported: ${known.join(', ')}`);
}

const CIPHER_NAMES: readonly DataCipherName[] = [
  ...(Object.keys(AEADS) as AeadName[]),
  ...(Object.keys(CBC_CIPHERS) as CbcCipherName[]),
  'none',
];
const DIGEST_NAMES = Object.keys(DIGESTS) as DigestName[];

/** Canonical spelling of a data cipher name, or undefined. Case-insensitive; '[null-cipher]' = 'none'. */
export function normalizeCipherName(name: string): DataCipherName | undefined {
  const up = name.trim().toUpperCase();
  if (up === 'NONE' || up === '[NULL-CIPHER]') return 'none';
  return CIPHER_NAMES.find((n) => n === up);
}

/** Canonical spelling of a digest name, or undefined. Accepts 'sha256', 'SHA-256', '[null-digest]'. */
export function normalizeAuthName(name: string): AuthName | undefined {
  const up = name.trim().toUpperCase().replace(/^SHA-/, 'SHA');
  if (up === 'NONE' || up === '[NULL-DIGEST]') return 'none';
  return DIGEST_NAMES.find((n) => n === up);
}

export function isAeadName(name: string): name is AeadName {
  return Object.prototype.hasOwnProperty.call(AEADS, name);
}

/** AEAD algorithm by name. Throws VpnError ALGORITHM_UNSUPPORTED. */
export function aead(name: string): AeadAlgorithm {
  const n = normalizeCipherName(name);
  if (n === undefined || !isAeadName(n)) throw unsupported('AEAD cipher', name, Object.keys(AEADS));
  return AEADS[n];
}

/** CBC cipher by name. Throws VpnError ALGORITHM_UNSUPPORTED. */
export function cbcCipher(name: string): CbcCipher {
  const n = normalizeCipherName(name);
  if (n === undefined || !(n in CBC_CIPHERS)) throw unsupported('CBC cipher', name, Object.keys(CBC_CIPHERS));
  return CBC_CIPHERS[n as CbcCipherName];
}

/** Digest by name ('none' is not a digest: use digestSize for that). Throws VpnError ALGORITHM_UNSUPPORTED. */
export function digest(name: string): Digest {
  const n = normalizeAuthName(name);
  if (n === undefined || n === 'none') throw unsupported('digest', name, DIGEST_NAMES);
  return DIGESTS[n];
}

/** Any data-channel cipher (AEAD, CBC or none). Throws VpnError ALGORITHM_UNSUPPORTED. */
export function dataCipher(name: string): DataCipher {
  const n = normalizeCipherName(name);
  if (n === undefined) throw unsupported('cipher', name, CIPHER_NAMES);
  if (n === 'none') return NONE_CIPHER;
  return isAeadName(n) ? AEADS[n] : CBC_CIPHERS[n];
}

const suites = new Map<string, CbcHmacSuite>();

/** CBC + HMAC suite (encrypt-then-MAC). Throws VpnError ALGORITHM_UNSUPPORTED. */
export function cbcHmac(cipherName: string, digestName: string): CbcHmacSuite {
  const c = cbcCipher(cipherName);
  const d = digest(digestName);
  const k = `${c.name}/${d.name}`;
  let s = suites.get(k);
  if (!s) {
    s = Object.freeze({ cipher: c, digest: d });
    suites.set(k, s);
  }
  return s;
}

/** Digest output size in bytes (= OpenVPN HMAC key length); 'none' → 0. */
export function digestSize(name: string): number {
  const n = normalizeAuthName(name);
  if (n === undefined) throw unsupported('digest', name, [...DIGEST_NAMES, 'none']);
  return n === 'none' ? 0 : DIGESTS[n].size;
}

/** Cipher key length in bytes; 'none' → 0. */
export function cipherKeyLength(name: string): number {
  return dataCipher(name).keyLength;
}

/** A PRF: (secret, seed incl. label, output length) → bytes. */
export type PrfFunction = (secret: Uint8Array, seed: Uint8Array, length: number) => Buffer;
export type PrfName = 'TLS1-PRF' | 'TLS12-PRF-SHA256';

/** PRF by name: 'TLS1-PRF' (P_MD5 ⊕ P_SHA1, OpenVPN key-method 2) or 'TLS12-PRF-SHA256'. */
export function prf(name: PrfName): PrfFunction {
  switch (name) {
    case 'TLS1-PRF':
      return tls1Prf;
    case 'TLS12-PRF-SHA256':
      return tls12PrfSha256;
    default:
      throw unsupported('PRF', String(name), ['TLS1-PRF', 'TLS12-PRF-SHA256']);
  }
}
