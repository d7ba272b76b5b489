/**
 * The crypto registry's IPsec view: ESP suites by strongSwan proposal keyword and by IKEv2 transform IDs
 * (RFC 7296 §3.3.2, IANA "IKEv2 Parameters"), each linked to the registry's AeadAlgorithm / CbcCipher /
 * Digest objects so the SA code does not repeat algorithm facts. Manual SAs (swanctl `manual` section) look
 * suites up by keyword; IKEv2 will negotiate the same table by transform ID.
 *
 * Sizes: RFC 4106 (AES-GCM: key + 4-byte salt, 8-byte IV, ICV 8/12/16), RFC 7634 (ChaCha20-Poly1305: 32-byte
 * key + 4-byte salt, 8-byte IV, ICV 16), RFC 3602 (AES-CBC: 16-byte IV and block), RFC 2404 (HMAC-SHA1-96),
 * RFC 4868 (HMAC-SHA2-256-128 / 384-192 / 512-256), RFC 2410 (NULL encryption).
 */
import { VpnError } from '../errors.js';
import type { AeadAlgorithm } from './aead.js';
import type { CbcCipher, Digest } from './cbc-hmac.js';
import { AEADS, CBC_CIPHERS, DIGESTS, unsupported } from './registry.js';

/** IKEv2 transform type 1 (ENCR) IDs we implement. */
export const ENCR = Object.freeze({
  NULL: 11,
  AES_CBC: 12,
  AES_GCM_8: 18,
  AES_GCM_12: 19,
  AES_GCM_16: 20,
  CHACHA20_POLY1305: 28,
} as const);

/** IKEv2 transform type 3 (INTEG) IDs we implement (0 = NONE, for AEAD). */
export const INTEG = Object.freeze({
  NONE: 0,
  HMAC_SHA1_96: 2,
  HMAC_SHA2_256_128: 12,
  HMAC_SHA2_384_192: 13,
  HMAC_SHA2_512_256: 14,
} as const);

export interface EspSuite {
  /** strongSwan proposal keyword. */
  readonly name: string;
  readonly aead: boolean;
  readonly cipher: 'aes-gcm' | 'chacha20-poly1305' | 'aes-cbc' | 'null';
  /** Cipher key bytes, without the salt. */
  readonly encKeyBytes: number;
  /** Salt bytes appended to the cipher key in the key material (RFC 4106 / RFC 7634): 4 or 0. */
  readonly saltBytes: number;
  readonly integ: 'sha1' | 'sha256' | 'sha384' | 'sha512' | undefined;
  /** HMAC key bytes; 0 for AEAD suites. */
  readonly integKeyBytes: number;
  /** ICV (tag) bytes on the wire. */
  readonly icvBytes: number;
  /** Explicit IV bytes on the wire. */
  readonly ivBytes: number;
  /** The payload is padded to a multiple of this (at least 4). */
  readonly blockBytes: number;
  /** The registry's AEAD algorithm (AEAD suites only). */
  readonly aeadAlgorithm?: AeadAlgorithm;
  /** The registry's CBC cipher (AES-CBC suites only). */
  readonly cbc?: CbcCipher;
  /** The registry's digest behind the HMAC (non-AEAD suites only). */
  readonly digest?: Digest;
  /** IKEv2 ENCR transform ID. */
  readonly encrId: number;
  /** IKEv2 Key Length attribute in bits (AES only; undefined for ChaCha20-Poly1305 and NULL). */
  readonly keyBits: number | undefined;
  /** IKEv2 INTEG transform ID; undefined for AEAD suites (INTEG NONE). */
  readonly integId: number | undefined;
}

/** The IKEv2 transforms of an ESP proposal (the ESN transform is separate). */
export interface EspTransforms {
  /** ENCR transform ID. */
  readonly encr: number;
  /** Key Length attribute (bits); absent for ciphers that have none. */
  readonly keyBits?: number;
  /** INTEG transform ID; absent or 0 (NONE) for AEAD. */
  readonly integ?: number;
}

type IntegName = NonNullable<EspSuite['integ']>;

/** HMAC integrity transforms: the registry digest, the IANA ID and the truncated ICV length. */
const HMACS: Readonly<Record<IntegName, { digest: Digest; id: number; icv: number }>> = {
  sha1: { digest: DIGESTS.SHA1, id: INTEG.HMAC_SHA1_96, icv: 12 },
  sha256: { digest: DIGESTS.SHA256, id: INTEG.HMAC_SHA2_256_128, icv: 16 },
  sha384: { digest: DIGESTS.SHA384, id: INTEG.HMAC_SHA2_384_192, icv: 24 },
  sha512: { digest: DIGESTS.SHA512, id: INTEG.HMAC_SHA2_512_256, icv: 32 },
};

const GCM_BY_BITS: Readonly<Record<number, AeadAlgorithm>> = { 128: AEADS['AES-128-GCM'], 192: AEADS['AES-192-GCM'], 256: AEADS['AES-256-GCM'] };
const CBC_BY_BITS: Readonly<Record<number, CbcCipher>> = { 128: CBC_CIPHERS['AES-128-CBC'], 192: CBC_CIPHERS['AES-192-CBC'], 256: CBC_CIPHERS['AES-256-CBC'] };
const GCM_ID_BY_ICV: Readonly<Record<number, number>> = { 8: ENCR.AES_GCM_8, 12: ENCR.AES_GCM_12, 16: ENCR.AES_GCM_16 };

const gcm = (bits: 128 | 192 | 256, icv: 8 | 12 | 16): EspSuite => {
  const alg = GCM_BY_BITS[bits]!;
  return Object.freeze({
    name: `aes${bits}gcm${icv}`,
    aead: true,
    cipher: 'aes-gcm',
    encKeyBytes: alg.keyLength,
    saltBytes: 4,
    integ: undefined,
    integKeyBytes: 0,
    icvBytes: icv,
    ivBytes: 8,
    blockBytes: 4,
    aeadAlgorithm: alg,
    encrId: GCM_ID_BY_ICV[icv]!,
    keyBits: bits,
    integId: undefined,
  });
};

const chacha = (): EspSuite => {
  const alg = AEADS['CHACHA20-POLY1305'];
  return Object.freeze({
    name: 'chacha20poly1305',
    aead: true,
    cipher: 'chacha20-poly1305',
    encKeyBytes: alg.keyLength,
    saltBytes: 4,
    integ: undefined,
    integKeyBytes: 0,
    icvBytes: alg.tagLength,
    ivBytes: 8,
    blockBytes: 4,
    aeadAlgorithm: alg,
    encrId: ENCR.CHACHA20_POLY1305,
    keyBits: undefined,
    integId: undefined,
  });
};

const cbc = (bits: 128 | 192 | 256, integ: IntegName): EspSuite => {
  const c = CBC_BY_BITS[bits]!;
  const h = HMACS[integ];
  return Object.freeze({
    name: `aes${bits}-${integ}`,
    aead: false,
    cipher: 'aes-cbc',
    encKeyBytes: c.keyLength,
    saltBytes: 0,
    integ,
    integKeyBytes: h.digest.size,
    icvBytes: h.icv,
    ivBytes: c.ivLength,
    blockBytes: c.blockSize,
    cbc: c,
    digest: h.digest,
    encrId: ENCR.AES_CBC,
    keyBits: bits,
    integId: h.id,
  });
};

const nul = (integ: IntegName): EspSuite => {
  const h = HMACS[integ];
  return Object.freeze({
    name: `null-${integ}`,
    aead: false,
    cipher: 'null',
    encKeyBytes: 0,
    saltBytes: 0,
    integ,
    integKeyBytes: h.digest.size,
    icvBytes: h.icv,
    ivBytes: 0,
    blockBytes: 4,
    digest: h.digest,
    encrId: ENCR.NULL,
    keyBits: undefined,
    integId: h.id,
  });
};

/** strongSwan ESP keyword → algorithm and key/ICV sizes (HMAC-SHA1-96, SHA2-256-128, -384-192, -512-256). */
export const ESP_SUITES: Readonly<Record<string, EspSuite>> = Object.freeze({
  aes128gcm16: gcm(128, 16),
  aes192gcm16: gcm(192, 16),
  aes256gcm16: gcm(256, 16),
  aes128gcm12: gcm(128, 12),
  aes192gcm12: gcm(192, 12),
  aes256gcm12: gcm(256, 12),
  aes128gcm8: gcm(128, 8),
  aes192gcm8: gcm(192, 8),
  aes256gcm8: gcm(256, 8),
  chacha20poly1305: chacha(),
  'aes128-sha1': cbc(128, 'sha1'),
  'aes192-sha1': cbc(192, 'sha1'),
  'aes256-sha1': cbc(256, 'sha1'),
  'aes128-sha256': cbc(128, 'sha256'),
  'aes192-sha256': cbc(192, 'sha256'),
  'aes256-sha256': cbc(256, 'sha256'),
  'aes128-sha384': cbc(128, 'sha384'),
  'aes192-sha384': cbc(192, 'sha384'),
  'aes256-sha384': cbc(256, 'sha384'),
  'aes128-sha512': cbc(128, 'sha512'),
  'aes192-sha512': cbc(192, 'sha512'),
  'aes256-sha512': cbc(256, 'sha512'),
  'null-sha1': nul('sha1'),
  'null-sha256': nul('sha256'),
  'null-sha384': nul('sha384'),
  'null-sha512': nul('sha512'),
});

const SUITE_NAMES = Object.keys(ESP_SUITES);

/** strongSwan's alternative spellings of the same algorithms (proposal keyword tokens, after lower-casing). */
const TOKEN_ALIASES: Readonly<Record<string, string>> = {
  aes: 'aes128',
  aes128gcm128: 'aes128gcm16',
  aes192gcm128: 'aes192gcm16',
  aes256gcm128: 'aes256gcm16',
  aes128gcm96: 'aes128gcm12',
  aes192gcm96: 'aes192gcm12',
  aes256gcm96: 'aes256gcm12',
  aes128gcm64: 'aes128gcm8',
  aes192gcm64: 'aes192gcm8',
  aes256gcm64: 'aes256gcm8',
  sha: 'sha1',
  sha2_256: 'sha256',
  sha2_384: 'sha384',
  sha2_512: 'sha512',
};

/**
 * ESP suite by strongSwan proposal keyword (`aes128gcm16`, `aes256-sha256`, `chacha20poly1305`, `null-sha1`…),
 * case-insensitive, with strongSwan's aliases (`aes128gcm128`, `aes-sha2_256`…). An `-esn` / `-noesn` suffix is
 * stripped and reported as `esn` (undefined without one). Throws VpnError ALGORITHM_UNSUPPORTED listing the
 * supported keywords.
 */
export function espSuite(keyword: string): { suite: EspSuite; esn: boolean | undefined } {
  let kw = keyword.trim().toLowerCase();
  let esn: boolean | undefined;
  if (kw.endsWith('-noesn')) {
    esn = false;
    kw = kw.slice(0, -6);
  } else if (kw.endsWith('-esn')) {
    esn = true;
    kw = kw.slice(0, -4);
  }
  const canonical = kw
    .split('-')
    .map((t) => TOKEN_ALIASES[t] ?? t)
    .join('-');
  const suite = Object.prototype.hasOwnProperty.call(ESP_SUITES, canonical) ? ESP_SUITES[canonical] : undefined;
  if (!suite) throw unsupported('ESP algorithm', keyword, SUITE_NAMES.map((n) => `${n}[-esn]`));
  return { suite, esn };
}

const SUPPORTED_TRANSFORMS = [
  'ENCR_AES_CBC(12)/128,192,256 + INTEG 2,12,13,14',
  'ENCR_AES_GCM_8/12/16(18/19/20)/128,192,256',
  'ENCR_CHACHA20_POLY1305(28)',
  'ENCR_NULL(11) + INTEG 2,12,13,14',
];

const BY_TRANSFORMS = new Map<string, EspSuite>();
const transformKey = (encr: number, keyBits: number | undefined, integ: number | undefined) => `${encr}/${keyBits ?? '-'}/${integ ?? 0}`;
for (const s of Object.values(ESP_SUITES)) BY_TRANSFORMS.set(transformKey(s.encrId, s.keyBits, s.integId), s);

/**
 * ESP suite by IKEv2 transform IDs (what a peer's proposal holds). AEAD ciphers take no INTEG transform (or
 * INTEG NONE = 0); AES takes a Key Length attribute of 128/192/256 bits; ChaCha20-Poly1305 and NULL take none.
 * Throws VpnError ALGORITHM_UNSUPPORTED for any other combination.
 */
export function espSuiteByTransforms(t: EspTransforms): EspSuite {
  const integ = t.integ === INTEG.NONE ? undefined : t.integ;
  const s = BY_TRANSFORMS.get(transformKey(t.encr, t.keyBits, integ));
  if (!s) {
    const desc = `ENCR ${t.encr}${t.keyBits !== undefined ? `/${t.keyBits}` : ''}${integ !== undefined ? ` + INTEG ${integ}` : ''}`;
    throw unsupported('ESP transform combination', desc, SUPPORTED_TRANSFORMS);
  }
  return s;
}

/** The IKEv2 transforms that select `suite` (the reverse of espSuiteByTransforms). */
export function transformsOf(suite: EspSuite): EspTransforms {
  if (!Object.prototype.hasOwnProperty.call(ESP_SUITES, suite.name)) throw new VpnError('ALGORITHM_UNSUPPORTED', `unknown ESP suite "${suite.name}"`);
  const out: { encr: number; keyBits?: number; integ?: number } = { encr: suite.encrId };
  if (suite.keyBits !== undefined) out.keyBits = suite.keyBits;
  if (suite.integId !== undefined) out.integ = suite.integId;
  return out;
}
