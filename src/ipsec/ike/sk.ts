/**
 * The Encrypted and Authenticated payload SK (RFC 7296 §3.14; AEAD ciphers per RFC 5282 and RFC 7634).
 *
 *   CBC + HMAC:  IV (16, random) | E(inner | padding | Pad Length) | ICV
 *                ICV = trunc(HMAC(SK_a, IKE header … last ciphertext byte)), lengths already final.
 *   AEAD:        IV (8) | E(inner | padding | Pad Length) | tag
 *                nonce = salt (last 4 bytes of SK_e) | IV; AAD = IKE header … SK generic header (all
 *                bytes before the IV).
 *
 * Padding: CBC pads to the 16-byte block with random bytes, AEAD sends none (Pad Length 0); on receipt any
 * padding is accepted (RFC 7296 §3.14). SK is always the last payload, so its body ends the message.
 *
 * Which keys: the original initiator seals with SK_ei/SK_ai and opens with SK_er/SK_ar; the caller passes
 * one direction's keys.
 *
 * sealEncrypted/openEncrypted do the same for any encrypted payload whose body may start with bytes before the
 * IV: the Encrypted Fragment payload SKF (RFC 7383 §2.5) puts Fragment Number and Total Fragments there, inside
 * the AAD/ICV (fragments.ts).
 */
import { randomBytes } from 'node:crypto';
import { aeadOpenRaw, aeadSealInto } from '../../crypto/aead.js';
import { cbcDecrypt, cbcEncryptInto, hmacInto, hmacVerify } from '../../crypto/cbc-hmac.js';
import { WireError } from '../../errors.js';
import { PayloadType } from '../../wire/ike-constants.js';
import { buildIkeMessage, buildInnerPayloads, parseInnerPayloads, type IkeHeaderFields, type IkeMessage, type IkePayload } from '../../wire/ike.js';
import type { IkeEncr, IkeInteg } from './proposals.js';

const AEAD_IV = 8;
const SALT = 4;

/** The IKE SA's cipher: encryption, and integrity unless the cipher is an AEAD. */
export interface SkAlgorithms {
  readonly encr: IkeEncr;
  readonly integ?: IkeInteg;
}

/** One direction's keys: SK_e* (cipher key, plus the salt for AEAD) and SK_a* (empty for AEAD). */
export interface SkKeys {
  readonly encKey: Uint8Array;
  readonly integKey: Uint8Array;
}

export interface SealOptions {
  /** Fixed IV (tests); default random. */
  iv?: Uint8Array;
  /** Unencrypted payloads before SK (rare; none in IKE_AUTH or INFORMATIONAL). */
  clear?: readonly IkePayload[];
  /** Source of random bytes (IV and CBC padding). */
  random?: (n: number) => Uint8Array;
}

function ivLength(a: SkAlgorithms): number {
  return a.encr.aead ? AEAD_IV : a.encr.cbc!.ivLength;
}

function icvLength(a: SkAlgorithms): number {
  return a.encr.aead ? a.encr.tagBytes : a.integ!.icvBytes;
}

function check(a: SkAlgorithms, k: SkKeys): void {
  if (k.encKey.length !== a.encr.keyBytes) throw new RangeError(`${a.encr.name}: SK_e must be ${a.encr.keyBytes} bytes, got ${k.encKey.length}`);
  if (!a.encr.aead) {
    if (!a.integ) throw new RangeError(`${a.encr.name} needs an integrity algorithm`);
    if (k.integKey.length !== a.integ.keyBytes) throw new RangeError(`${a.integ.name}: SK_a must be ${a.integ.keyBytes} bytes, got ${k.integKey.length}`);
  }
}

/** Bytes the SK payload body takes for `innerLength` bytes of inner payloads (IV, padded ciphertext, ICV). */
export function skBodyLength(a: SkAlgorithms, innerLength: number): number {
  const block = a.encr.aead ? 1 : a.encr.cbc!.blockSize;
  return ivLength(a) + Math.ceil((innerLength + 1) / block) * block + icvLength(a);
}

/**
 * A whole IKE message whose last payload is SK holding `inner` (the header's Next Payload, lengths and the
 * SK payload's Next Payload are filled in), encrypted and integrity-protected with `keys`.
 */
export function sealMessage(header: IkeHeaderFields, inner: readonly IkePayload[], a: SkAlgorithms, keys: SkKeys, o: SealOptions = {}): Uint8Array {
  const { first, bytes } = buildInnerPayloads(inner);
  return sealEncrypted(header, { type: PayloadType.SK, innerNext: first, prefix: new Uint8Array(0) }, bytes, a, keys, o);
}

/** Which encrypted payload to build: SK, or SKF with its Fragment Number and Total Fragments as `prefix`. */
export interface EncryptedPayloadShape {
  readonly type: number;
  /** The generic header's Next Payload (the first inner payload's type; 0 in SKF fragments after the first). */
  readonly innerNext: number;
  /** Body bytes before the IV (4 for SKF: Fragment Number | Total Fragments); covered by the AAD/ICV. */
  readonly prefix: Uint8Array;
}

/**
 * A whole IKE message whose last payload is an encrypted payload (SK or SKF, `shape`) holding the plaintext
 * `plain` (inner payload bytes, or a piece of them for SKF): padded, encrypted and integrity-protected so that
 * the AAD/ICV covers everything from the IKE header to the end of the ciphertext, the prefix included.
 */
export function sealEncrypted(header: IkeHeaderFields, shape: EncryptedPayloadShape, plainIn: Uint8Array, a: SkAlgorithms, keys: SkKeys, o: SealOptions = {}): Uint8Array {
  check(a, keys);
  const random = o.random ?? randomBytes;
  const ivLen = ivLength(a);
  const icvLen = icvLength(a);
  const encLen = skBodyLength(a, plainIn.length);
  const plainLen = encLen - ivLen - icvLen;
  const padLen = plainLen - plainIn.length - 1;
  const bodyLen = shape.prefix.length + encLen;
  const msg = buildIkeMessage({ header, payloads: [...(o.clear ?? []), { type: shape.type, critical: false, body: new Uint8Array(bodyLen), innerNext: shape.innerNext }] });
  const bodyOff = msg.length - bodyLen;
  msg.set(shape.prefix, bodyOff);
  const ivOff = bodyOff + shape.prefix.length;
  const iv = o.iv ?? random(ivLen);
  if (iv.length !== ivLen) throw new RangeError(`SK IV must be ${ivLen} bytes`);
  msg.set(iv, ivOff);
  const plain = new Uint8Array(plainLen);
  plain.set(plainIn, 0);
  if (padLen > 0) plain.set(random(padLen), plainIn.length);
  plain[plainLen - 1] = padLen;
  const ctOff = ivOff + ivLen;
  if (a.encr.aead) {
    const alg = a.encr.aead;
    const nonce = new Uint8Array(SALT + AEAD_IV);
    nonce.set(keys.encKey.subarray(alg.keyLength, alg.keyLength + SALT), 0);
    nonce.set(iv, SALT);
    aeadSealInto(alg, keys.encKey.subarray(0, alg.keyLength), nonce, msg.subarray(0, ivOff), plain, msg, ctOff, ctOff + plainLen, icvLen);
  } else {
    cbcEncryptInto(a.encr.cbc!, keys.encKey, iv, null, plain, msg, ctOff, false);
    hmacInto(a.integ!.digest, keys.integKey, msg.subarray(0, ctOff + plainLen), msg, ctOff + plainLen, icvLen);
  }
  return msg;
}

/**
 * Verifies and decrypts the SK payload of a parsed message (`raw` is the same message as bytes). Returns the
 * inner payloads, or null when there is no SK payload or its ICV/tag does not verify (drop the message
 * silently, RFC 7296 §2.21.3). Throws WireError when an authenticated plaintext is malformed.
 */
export function openMessage(raw: Uint8Array, msg: IkeMessage, a: SkAlgorithms, keys: SkKeys): IkePayload[] | null {
  const sk = msg.payloads[msg.payloads.length - 1];
  if (!sk || sk.type !== PayloadType.SK) return null;
  const plain = openEncrypted(raw, sk.body.length, 0, a, keys);
  if (!plain) return null;
  return parseInnerPayloads(plain, sk.innerNext ?? 0);
}

/**
 * Verifies and decrypts the encrypted payload that ends `raw` (its body is the last `bodyLength` bytes; the
 * first `prefixLength` of them precede the IV, e.g. SKF's fragment numbers). Returns the plaintext without
 * padding, or null when the ICV/tag does not verify or the ciphertext has an impossible length. Throws
 * WireError when the authenticated Pad Length is impossible.
 */
export function openEncrypted(raw: Uint8Array, bodyLength: number, prefixLength: number, a: SkAlgorithms, keys: SkKeys): Uint8Array | null {
  check(a, keys);
  const ivOff = raw.length - bodyLength + prefixLength;
  const ivLen = ivLength(a);
  const icvLen = icvLength(a);
  const ctLen = raw.length - ivOff - ivLen - icvLen;
  const iv = raw.subarray(ivOff, ivOff + ivLen);
  const ct = raw.subarray(ivOff + ivLen, ivOff + ivLen + ctLen);
  let plain: Uint8Array | null;
  if (a.encr.aead) {
    if (ctLen < 1) return null;
    const alg = a.encr.aead;
    const nonce = new Uint8Array(SALT + AEAD_IV);
    nonce.set(keys.encKey.subarray(alg.keyLength, alg.keyLength + SALT), 0);
    nonce.set(iv, SALT);
    plain = aeadOpenRaw(alg, keys.encKey.subarray(0, alg.keyLength), nonce, raw.subarray(0, ivOff), ct, raw.subarray(raw.length - icvLen));
  } else {
    const cbc = a.encr.cbc!;
    if (ctLen < cbc.blockSize || ctLen % cbc.blockSize !== 0) return null;
    if (!hmacVerify(a.integ!.digest, keys.integKey, raw.subarray(0, raw.length - icvLen), raw.subarray(raw.length - icvLen))) return null;
    plain = cbcDecrypt(cbc, keys.encKey, iv, ct, false);
  }
  if (!plain) return null;
  const padLen = plain[plain.length - 1]!;
  if (padLen + 1 > plain.length) throw new WireError(`SK Pad Length ${padLen} exceeds the ${plain.length}-byte plaintext`, 'sk.padLength', plain.length - 1);
  return plain.subarray(0, plain.length - 1 - padLen);
}

/** The most plaintext bytes an encrypted payload body of at most `bodyBytes` bytes (IV, padded ciphertext, ICV) holds. */
export function maxPlainInBody(a: SkAlgorithms, bodyBytes: number): number {
  const block = a.encr.aead ? 1 : a.encr.cbc!.blockSize;
  const room = bodyBytes - ivLength(a) - icvLength(a);
  return Math.floor(room / block) * block - 1;
}
