/**
 * IKEv2 key derivation and PSK authentication data (RFC 7296 §2.14, §2.15, §2.17, §2.18, §2.23;
 * ipsec.md §4.5, §4.7.2, §4.7.6, §4.10.3, §3.2).
 *
 *   SKEYSEED = prf(Ni | Nr, g^ir)
 *   {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
 *   rekey:   SKEYSEED = prf(SK_d(old), g^ir(new) | Ni | Nr)
 *   CHILD:   KEYMAT = prf+(SK_d, [g^ir(new) |] Ni | Nr)
 *            = encr(i->r) | integ(i->r) | encr(r->i) | integ(r->i)
 *   AUTH (PSK) = prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>)
 *   NAT-D = SHA-1(SPIi | SPIr | IP | Port)
 *
 * Nonces are the Nonce payload *data* and SPIs the 8-byte header SPIs. Key lengths follow the
 * negotiated transforms: for an AEAD cipher (AES-GCM, ChaCha20-Poly1305) the integrity key length is 0
 * and the encryption key length includes the 4-byte salt (AES-GCM-128: 16+4 = 20, ChaCha20: 32+4 = 36).
 * Only HMAC PRFs are supported (the fixed-key AES-XCBC/CMAC PRFs would need truncated nonces).
 */
import { createHash } from 'node:crypto';
import { prf as hmacPrf, prfOutputLength, prfPlus, type PrfHash } from '../crypto/prf-plus.js';

export type { PrfHash } from '../crypto/prf-plus.js';

/** Salt bytes appended to the encryption key of AES-GCM / ChaCha20-Poly1305 (RFC 4106, RFC 5282, RFC 7634). */
export const AEAD_SALT_LENGTH = 4;

/** The 17-byte PSK pad of RFC 7296 §2.15 (no terminating NUL). */
export const KEY_PAD = Buffer.from('Key Pad for IKEv2', 'ascii');

/** Byte lengths of the IKE SA keys. */
export interface IkeKeyLengths {
  /** SK_ei / SK_er: cipher key length, plus AEAD_SALT_LENGTH for AEAD ciphers. */
  encKey: number;
  /** SK_ai / SK_ar: integrity key length; 0 for AEAD ciphers. */
  integKey: number;
  /** SK_d / SK_pi / SK_pr: the PRF's preferred key length (= its output length for HMAC). Default: that. */
  prfKey?: number;
}

/** The keys of an IKE SA. "i" always means the original initiator of *this* IKE SA. */
export interface IkeKeys {
  skeyseed: Buffer;
  skD: Buffer;
  skAi: Buffer;
  skAr: Buffer;
  skEi: Buffer;
  skEr: Buffer;
  skPi: Buffer;
  skPr: Buffer;
}

export interface DeriveIkeKeysParams {
  prf: PrfHash;
  nonceI: Uint8Array;
  nonceR: Uint8Array;
  /** g^ir, padded as dh.ts returns it. */
  sharedSecret: Uint8Array;
  spiI: Uint8Array;
  spiR: Uint8Array;
  lengths: IkeKeyLengths;
}

export interface DeriveRekeyedIkeKeysParams extends DeriveIkeKeysParams {
  /** SK_d of the IKE SA being rekeyed. */
  oldSkD: Uint8Array;
  /**
   * PRF of the old IKE SA, used for SKEYSEED (RFC 7296 §2.18). Default: `prf`. prf+ uses `prf`, the new
   * SA's PRF; strongSwan uses the old one for both, so propose the same PRF when rekeying.
   */
  oldPrf?: PrfHash;
}

function checkSpi(name: string, spi: Uint8Array): void {
  if (spi.length !== 8) throw new RangeError(`${name} must be 8 bytes, got ${spi.length}`);
}

function checkLen(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`bad ${name} length ${n}`);
}

/** {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr). */
export function expandIkeKeys(
  prf: PrfHash,
  skeyseed: Uint8Array,
  nonceI: Uint8Array,
  nonceR: Uint8Array,
  spiI: Uint8Array,
  spiR: Uint8Array,
  lengths: IkeKeyLengths,
): IkeKeys {
  checkSpi('SPIi', spiI);
  checkSpi('SPIr', spiR);
  const prfKey = lengths.prfKey ?? prfOutputLength(prf);
  const { encKey, integKey } = lengths;
  checkLen('prfKey', prfKey);
  checkLen('encKey', encKey);
  checkLen('integKey', integKey);
  const total = 3 * prfKey + 2 * integKey + 2 * encKey;
  const km = prfPlus(prf, skeyseed, Buffer.concat([nonceI, nonceR, spiI, spiR]), total);
  let off = 0;
  const take = (n: number): Buffer => {
    const b = Buffer.from(km.subarray(off, off + n));
    off += n;
    return b;
  };
  const skD = take(prfKey);
  const skAi = take(integKey);
  const skAr = take(integKey);
  const skEi = take(encKey);
  const skEr = take(encKey);
  const skPi = take(prfKey);
  const skPr = take(prfKey);
  km.fill(0);
  return { skeyseed: Buffer.from(skeyseed), skD, skAi, skAr, skEi, skEr, skPi, skPr };
}

/** Keys of a new IKE SA from IKE_SA_INIT (RFC 7296 §2.14): SKEYSEED = prf(Ni | Nr, g^ir). */
export function deriveIkeKeys(p: DeriveIkeKeysParams): IkeKeys {
  const skeyseed = hmacPrf(p.prf, Buffer.concat([p.nonceI, p.nonceR]), p.sharedSecret);
  return expandIkeKeys(p.prf, skeyseed, p.nonceI, p.nonceR, p.spiI, p.spiR, p.lengths);
}

/**
 * Keys of an IKE SA created by a CREATE_CHILD_SA rekey (RFC 7296 §2.18):
 * SKEYSEED = prf(SK_d(old), g^ir(new) | Ni | Nr). Ni/Nr are this exchange's nonces; SPIi is the new SPI
 * of whoever initiated the rekey, SPIr the other side's new SPI.
 */
export function deriveRekeyedIkeKeys(p: DeriveRekeyedIkeKeysParams): IkeKeys {
  const skeyseed = hmacPrf(p.oldPrf ?? p.prf, p.oldSkD, [p.sharedSecret, p.nonceI, p.nonceR]);
  return expandIkeKeys(p.prf, skeyseed, p.nonceI, p.nonceR, p.spiI, p.spiR, p.lengths);
}

/** One direction of a CHILD SA's keys. */
export interface ChildDirectionKeys {
  encKey: Buffer;
  integKey: Buffer;
}

/** CHILD SA keys; "initiator" = the initiator-to-responder direction of the exchange that made the SA. */
export interface ChildKeys {
  initiator: ChildDirectionKeys;
  responder: ChildDirectionKeys;
}

export interface DeriveChildKeysParams {
  prf: PrfHash;
  skD: Uint8Array;
  nonceI: Uint8Array;
  nonceR: Uint8Array;
  /** g^ir of a CREATE_CHILD_SA with PFS (a KE payload); omit for IKE_AUTH or no PFS. */
  sharedSecret?: Uint8Array;
  /** Per-direction encryption key bytes, including the 4-byte salt for AEAD. */
  encKeyLen: number;
  /** Per-direction integrity key bytes; 0 for AEAD. */
  integKeyLen: number;
}

/**
 * KEYMAT = prf+(SK_d, [g^ir(new) |] Ni | Nr) split as encr(i->r) | integ(i->r) | encr(r->i) | integ(r->i)
 * (RFC 7296 §2.17). Ni/Nr: for the first CHILD SA the IKE_SA_INIT nonces, otherwise the
 * CREATE_CHILD_SA nonces; "i" is the initiator of that exchange.
 */
export function deriveChildKeys(p: DeriveChildKeysParams): ChildKeys {
  checkLen('encKey', p.encKeyLen);
  checkLen('integKey', p.integKeyLen);
  const seed = Buffer.concat(p.sharedSecret ? [p.sharedSecret, p.nonceI, p.nonceR] : [p.nonceI, p.nonceR]);
  const km = prfPlus(p.prf, p.skD, seed, 2 * (p.encKeyLen + p.integKeyLen));
  let off = 0;
  const take = (n: number): Buffer => {
    const b = Buffer.from(km.subarray(off, off + n));
    off += n;
    return b;
  };
  const initiator = { encKey: take(p.encKeyLen), integKey: take(p.integKeyLen) };
  const responder = { encKey: take(p.encKeyLen), integKey: take(p.integKeyLen) };
  km.fill(0);
  return { initiator, responder };
}

export interface SignedOctetsParams {
  /** The IKE_SA_INIT message this side sent (initiator: the request; responder: the response), from the IKE header on, byte-exact. */
  message: Uint8Array;
  /** The *peer's* nonce data (initiator: Nr; responder: Ni). */
  nonce: Uint8Array;
  prf: PrfHash;
  /** SK_pi for the initiator's octets, SK_pr for the responder's. */
  skP: Uint8Array;
  /** ID payload body without the generic payload header: ID Type | RESERVED(3) | ID data. */
  idPayloadBody: Uint8Array;
}

/**
 * <SignedOctets> of RFC 7296 §2.15: RealMessage | NonceData(peer) | prf(SK_p, RestOfIDPayload).
 * The initiator's: IKE_SA_INIT request | Nr | prf(SK_pi, IDi'); the responder's: response | Ni | prf(SK_pr, IDr').
 */
export function signedOctets(p: SignedOctetsParams): Buffer {
  return Buffer.concat([p.message, p.nonce, hmacPrf(p.prf, p.skP, p.idPayloadBody)]);
}

export interface PskAuthParams {
  prf: PrfHash;
  /** The pre-shared key; a string is taken as UTF-8. With EAP this is the MSK (or SK_p* without an MSK). */
  psk: Uint8Array | string;
  signedOctets: Uint8Array;
}

/** AUTH data for auth method 2 (Shared Key MIC): prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>). */
export function pskAuth(p: PskAuthParams): Buffer {
  const psk = typeof p.psk === 'string' ? Buffer.from(p.psk, 'utf8') : p.psk;
  return hmacPrf(p.prf, hmacPrf(p.prf, psk, KEY_PAD), p.signedOctets);
}

/**
 * NAT_DETECTION_SOURCE_IP / _DESTINATION_IP data (RFC 7296 §2.23): SHA-1(SPIi | SPIr | IP | Port),
 * `ip` the raw 4- or 16-byte address, `port` in network order. In the IKE_SA_INIT request SPIr is 8 zero
 * bytes.
 */
export function natDetectionHash(spiI: Uint8Array, spiR: Uint8Array, ip: Uint8Array, port: number): Buffer {
  checkSpi('SPIi', spiI);
  checkSpi('SPIr', spiR);
  if (ip.length !== 4 && ip.length !== 16) throw new RangeError(`NAT-D: address must be 4 or 16 bytes, got ${ip.length}`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`NAT-D: bad port ${port}`);
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  return createHash('sha1').update(spiI).update(spiR).update(ip).update(portBytes).digest();
}
