/**
 * IKEv2 message codec (RFC 7296 §3.1 header, §3.2 generic payload header): the 28-byte header, the payload chain
 * as a list of { type, critical, body }, and whole-message parse/build. No state and no crypto: the Encrypted
 * payload SK (§3.14) and the Encrypted Fragment SKF (RFC 7383 §2.5) are kept as raw bodies; once decrypted, their
 * plaintext is parsed with parseInnerPayloads. Payload bodies are decoded in ike-payloads.ts (decodePayload picks
 * the right one by type).
 *
 * SPIs are 8-byte Uint8Arrays. Parsed SPIs and bodies are views into the input (copy them to keep them).
 * Parsing then building a well-formed message gives back the same bytes (RESERVED bits, which RFC 7296 says to
 * send as 0 and ignore on receipt, are not kept).
 */
import { WireError } from '../errors.js';
import { IkeFlags, PayloadType, authMethodName, notifyName, payloadName } from './ike-constants.js';
import {
  type AuthPayload,
  type CertPayload,
  type CpPayload,
  type DeletePayload,
  type IdPayload,
  type KePayload,
  type NotifyPayload,
  type Proposal,
  type SkfPayload,
  type TrafficSelector,
  parseAuth,
  parseCert,
  parseCp,
  parseDelete,
  parseEap,
  parseId,
  parseKe,
  parseNonce,
  parseNotify,
  parseSa,
  parseSkf,
  parseTs,
  parseVendor,
} from './ike-payloads.js';

export const IKE_HEADER_LENGTH = 28;
export const GENERIC_PAYLOAD_HEADER_LENGTH = 4;
/** Major version 2, minor version 0 (RFC 7296 §3.1). */
export const IKE_VERSION = 0x20;
export const IKE_SPI_LENGTH = 8;
const CRITICAL_BIT = 0x80;
const MAX_PAYLOAD_BODY = 0xffff - GENERIC_PAYLOAD_HEADER_LENGTH;

/** The IKE header, RFC 7296 §3.1. */
export interface IkeHeader {
  /** IKE SA Initiator's SPI (8 bytes). */
  spiI: Uint8Array;
  /** IKE SA Responder's SPI (8 bytes; zero in the first IKE_SA_INIT request). */
  spiR: Uint8Array;
  /** Type of the first payload (0 = none). */
  nextPayload: number;
  /** The version byte: major version in the high nibble (always 2 here), minor in the low one. */
  version: number;
  exchange: number;
  /** I (0x08), V (0x10), R (0x20); see IkeFlags. */
  flags: number;
  messageId: number;
  /** Length of the whole message including the header. */
  length: number;
}

/** The header fields a builder needs (next payload and length are computed). */
export interface IkeHeaderFields {
  spiI: Uint8Array;
  spiR: Uint8Array;
  exchange: number;
  flags: number;
  messageId: number;
  /** Defaults to IKE_VERSION (0x20). */
  version?: number;
}

/** One payload of a chain (RFC 7296 §3.2) with its body (everything after the 4-byte generic header). */
export interface IkePayload {
  type: number;
  /** The C bit. */
  critical: boolean;
  body: Uint8Array;
  /**
   * SK and SKF only: the generic header's Next Payload, which names the first payload inside the encrypted
   * data (RFC 7296 §3.14; for SKF, RFC 7383 §2.5, it is 0 in all but the first fragment).
   */
  innerNext?: number;
}

export interface IkeMessage {
  header: IkeHeader;
  payloads: IkePayload[];
}

// ---------------------------------------------------------------- decoding

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/**
 * Parse the 28-byte IKE header at the start of `b` (RFC 7296 §3.1). Rejects a major version other than 2
 * (field 'version') and a Length below 28; does not compare Length with the buffer (parseIkeMessage does).
 */
export function parseIkeHeader(b: Uint8Array): IkeHeader {
  if (b.length < IKE_HEADER_LENGTH) throw new WireError(`IKE message too short: ${b.length} bytes`, 'length', 0);
  const version = b[17]!;
  if (version >> 4 !== 2) throw new WireError(`IKE major version ${version >> 4}, expected 2`, 'version', 17);
  const length = u32(b, 24);
  if (length < IKE_HEADER_LENGTH) throw new WireError(`IKE length ${length} < 28`, 'length', 24);
  return {
    spiI: b.subarray(0, 8),
    spiR: b.subarray(8, 16),
    nextPayload: b[16]!,
    version,
    exchange: b[18]!,
    flags: b[19]!,
    messageId: u32(b, 20),
    length,
  };
}

/** Parse a whole IKE message (header + payload chain). The Length field must equal the buffer's length. */
export function parseIkeMessage(b: Uint8Array): IkeMessage {
  const header = parseIkeHeader(b);
  if (header.length > b.length) throw new WireError(`IKE length ${header.length} > buffer ${b.length}`, 'length', 24);
  if (header.length < b.length) throw new WireError(`IKE length ${header.length} < buffer ${b.length}`, 'length', 24);
  return { header, payloads: readChain(b, header.nextPayload, IKE_HEADER_LENGTH, b.length, true) };
}

/**
 * Parse a payload chain in b[start, end) whose first payload has type `first` (0 = empty chain). The chain must
 * fill the range exactly. SK/SKF end the chain and must be the last bytes; offsets in errors are into `b`.
 */
export function parsePayloadChain(b: Uint8Array, first: number, start = 0, end = b.length): IkePayload[] {
  if (start < 0 || end > b.length || start > end) throw new WireError('payload chain range outside the buffer', 'payload', 0);
  return readChain(b, first, start, end, true);
}

/**
 * Parse the plaintext of a decrypted SK payload (or of reassembled SKF fragments, RFC 7383 §2.6): a chain that
 * starts with `first` (the SK payload's innerNext). A nested SK or SKF is rejected.
 */
export function parseInnerPayloads(plain: Uint8Array, first: number): IkePayload[] {
  return readChain(plain, first, 0, plain.length, false);
}

function readChain(b: Uint8Array, first: number, start: number, end: number, allowEncrypted: boolean): IkePayload[] {
  const out: IkePayload[] = [];
  let next = first;
  let off = start;
  while (next !== PayloadType.NONE) {
    const type = next;
    if (off + GENERIC_PAYLOAD_HEADER_LENGTH > end)
      throw new WireError(`${payloadName(type)} payload header runs past the end`, 'payload.length', off);
    next = b[off]!;
    const critical = (b[off + 1]! & CRITICAL_BIT) !== 0;
    const len = u16(b, off + 2);
    if (len < GENERIC_PAYLOAD_HEADER_LENGTH)
      throw new WireError(`${payloadName(type)} payload length ${len} < 4`, 'payload.length', off + 2);
    if (off + len > end)
      throw new WireError(`${payloadName(type)} payload length ${len} runs past the end`, 'payload.length', off + 2);
    const body = b.subarray(off + GENERIC_PAYLOAD_HEADER_LENGTH, off + len);
    off += len;
    if (type === PayloadType.SK || type === PayloadType.SKF) {
      if (!allowEncrypted) throw new WireError(`${payloadName(type)} payload inside encrypted data`, 'payload.type', off - len);
      // RFC 7296 §3.14: SK MUST be the last payload; its Next Payload names the first inner payload.
      if (off !== end) throw new WireError(`bytes after the ${payloadName(type)} payload`, 'payload.next', off);
      out.push({ type, critical, body, innerNext: next });
      return out;
    }
    out.push({ type, critical, body });
  }
  if (off !== end) throw new WireError(`${end - off} bytes after the last payload`, 'payload.next', off);
  return out;
}

// ---------------------------------------------------------------- encoding

function checkByte(v: number, field: string, off: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new WireError(`${field} ${v} is not a byte`, field, off);
}

/** Bytes the chain will take, validating each payload and that SK/SKF (if any) is last. */
function chainLength(payloads: readonly IkePayload[], allowEncrypted: boolean): number {
  let total = 0;
  payloads.forEach((p, i) => {
    checkByte(p.type, 'payload.type', total);
    if (p.body.length > MAX_PAYLOAD_BODY)
      throw new WireError(`${payloadName(p.type)} body of ${p.body.length} bytes does not fit`, 'payload.length', total);
    if (p.type === PayloadType.SK || p.type === PayloadType.SKF) {
      if (!allowEncrypted) throw new WireError(`${payloadName(p.type)} payload inside encrypted data`, 'payload.type', total);
      if (i !== payloads.length - 1) throw new WireError(`${payloadName(p.type)} must be the last payload`, 'payload.next', total);
      checkByte(p.innerNext ?? 0, 'payload.innerNext', total);
    }
    total += GENERIC_PAYLOAD_HEADER_LENGTH + p.body.length;
  });
  return total;
}

/** Write a validated chain at out[off]; returns the end offset. */
function writeChain(payloads: readonly IkePayload[], out: Uint8Array, off: number): number {
  payloads.forEach((p, i) => {
    const encrypted = p.type === PayloadType.SK || p.type === PayloadType.SKF;
    const next = encrypted ? (p.innerNext ?? 0) : (payloads[i + 1]?.type ?? PayloadType.NONE);
    const len = GENERIC_PAYLOAD_HEADER_LENGTH + p.body.length;
    out[off] = next;
    out[off + 1] = p.critical ? CRITICAL_BIT : 0;
    out[off + 2] = len >> 8;
    out[off + 3] = len & 0xff;
    out.set(p.body, off + GENERIC_PAYLOAD_HEADER_LENGTH);
    off += len;
  });
  return off;
}

/** Type of the first payload of a chain, for the header's (or SK's) Next Payload field. */
export function firstPayloadType(payloads: readonly IkePayload[]): number {
  return payloads[0]?.type ?? PayloadType.NONE;
}

/**
 * Encode a payload chain (each Next Payload set from the following entry). SK/SKF may only be last and write
 * their innerNext instead. The chain's own first type is firstPayloadType(payloads).
 */
export function buildPayloadChain(payloads: readonly IkePayload[]): Uint8Array {
  const out = new Uint8Array(chainLength(payloads, true));
  writeChain(payloads, out, 0);
  return out;
}

/**
 * Encode the plaintext of an SK payload (before padding and encryption): `first` goes into the SK payload's
 * innerNext. SK/SKF are not allowed inside.
 */
export function buildInnerPayloads(payloads: readonly IkePayload[]): { first: number; bytes: Uint8Array } {
  const out = new Uint8Array(chainLength(payloads, false));
  writeChain(payloads, out, 0);
  return { first: firstPayloadType(payloads), bytes: out };
}

/** Write the 28-byte header at out[off] with the given first payload type and total length. */
export function writeIkeHeader(h: IkeHeaderFields, nextPayload: number, length: number, out: Uint8Array, off = 0): void {
  if (h.spiI.length !== IKE_SPI_LENGTH) throw new WireError(`initiator SPI of ${h.spiI.length} bytes`, 'spiI', off);
  if (h.spiR.length !== IKE_SPI_LENGTH) throw new WireError(`responder SPI of ${h.spiR.length} bytes`, 'spiR', off + 8);
  const version = h.version ?? IKE_VERSION;
  checkByte(version, 'version', off + 17);
  if (version >> 4 !== 2) throw new WireError(`IKE major version ${version >> 4}, expected 2`, 'version', off + 17);
  checkByte(nextPayload, 'nextPayload', off + 16);
  checkByte(h.exchange, 'exchange', off + 18);
  checkByte(h.flags, 'flags', off + 19);
  if (!Number.isInteger(h.messageId) || h.messageId < 0 || h.messageId > 0xffffffff)
    throw new WireError(`message ID ${h.messageId} is not a uint32`, 'messageId', off + 20);
  if (!Number.isInteger(length) || length < IKE_HEADER_LENGTH || length > 0xffffffff)
    throw new WireError(`IKE length ${length} out of range`, 'length', off + 24);
  if (off < 0 || off + IKE_HEADER_LENGTH > out.length) throw new WireError('output buffer too small for IKE header', 'length', 0);
  out.set(h.spiI, off);
  out.set(h.spiR, off + 8);
  out[off + 16] = nextPayload;
  out[off + 17] = version;
  out[off + 18] = h.exchange;
  out[off + 19] = h.flags;
  writeU32(out, off + 20, h.messageId);
  writeU32(out, off + 24, length);
}

function writeU32(out: Uint8Array, o: number, v: number): void {
  out[o] = v >>> 24;
  out[o + 1] = (v >>> 16) & 0xff;
  out[o + 2] = (v >>> 8) & 0xff;
  out[o + 3] = v & 0xff;
}

/**
 * Encode a whole message: header (Next Payload and Length computed) + payload chain. An SK/SKF payload must be
 * last; with SK last, its body (IV | ciphertext | ICV) starts at result.length - body.length, so a caller can
 * build with a zero ICV, then compute the AAD/ICV over the returned bytes and fill it in place.
 */
export function buildIkeMessage(m: { header: IkeHeaderFields; payloads: readonly IkePayload[] }): Uint8Array {
  const length = IKE_HEADER_LENGTH + chainLength(m.payloads, true);
  const out = new Uint8Array(length);
  writeIkeHeader(m.header, firstPayloadType(m.payloads), length, out, 0);
  writeChain(m.payloads, out, IKE_HEADER_LENGTH);
  return out;
}

// ---------------------------------------------------------------- small helpers

/** R flag: the message is a response (RFC 7296 §3.1). */
export function isResponse(h: { flags: number }): boolean {
  return (h.flags & IkeFlags.RESPONSE) !== 0;
}

/** I flag: sent by the original initiator of the IKE SA (RFC 7296 §3.1). */
export function isFromInitiator(h: { flags: number }): boolean {
  return (h.flags & IkeFlags.INITIATOR) !== 0;
}

/** The payloads of a given type, in order. */
export function payloadsOfType(payloads: readonly IkePayload[], type: number): IkePayload[] {
  return payloads.filter((p) => p.type === type);
}

// ---------------------------------------------------------------- dispatch and log text

export type DecodedPayload =
  | { kind: 'SA'; proposals: Proposal[] }
  | { kind: 'KE'; ke: KePayload }
  | { kind: 'ID'; initiator: boolean; id: IdPayload }
  | { kind: 'CERT' | 'CERTREQ'; cert: CertPayload }
  | { kind: 'AUTH'; auth: AuthPayload }
  | { kind: 'NONCE'; nonce: Uint8Array }
  | { kind: 'NOTIFY'; notify: NotifyPayload }
  | { kind: 'DELETE'; del: DeletePayload }
  | { kind: 'VENDOR'; vendorId: Uint8Array }
  | { kind: 'TS'; initiator: boolean; selectors: TrafficSelector[] }
  | { kind: 'CP'; cp: CpPayload }
  | { kind: 'EAP'; eap: Uint8Array }
  | { kind: 'SK'; innerNext: number; data: Uint8Array }
  | { kind: 'SKF'; innerNext: number; skf: SkfPayload }
  | { kind: 'UNKNOWN'; type: number; critical: boolean; body: Uint8Array };

/** Decode a payload of the chain by its type (an unknown type is returned as is, with its critical bit). */
export function decodePayload(p: IkePayload): DecodedPayload {
  const b = p.body;
  switch (p.type) {
    case PayloadType.SA: return { kind: 'SA', proposals: parseSa(b) };
    case PayloadType.KE: return { kind: 'KE', ke: parseKe(b) };
    case PayloadType.IDi: return { kind: 'ID', initiator: true, id: parseId(b) };
    case PayloadType.IDr: return { kind: 'ID', initiator: false, id: parseId(b) };
    case PayloadType.CERT: return { kind: 'CERT', cert: parseCert(b) };
    case PayloadType.CERTREQ: return { kind: 'CERTREQ', cert: parseCert(b) };
    case PayloadType.AUTH: return { kind: 'AUTH', auth: parseAuth(b) };
    case PayloadType.NONCE: return { kind: 'NONCE', nonce: parseNonce(b) };
    case PayloadType.NOTIFY: return { kind: 'NOTIFY', notify: parseNotify(b) };
    case PayloadType.DELETE: return { kind: 'DELETE', del: parseDelete(b) };
    case PayloadType.VENDOR: return { kind: 'VENDOR', vendorId: parseVendor(b) };
    case PayloadType.TSi: return { kind: 'TS', initiator: true, selectors: parseTs(b) };
    case PayloadType.TSr: return { kind: 'TS', initiator: false, selectors: parseTs(b) };
    case PayloadType.CP: return { kind: 'CP', cp: parseCp(b) };
    case PayloadType.EAP: return { kind: 'EAP', eap: parseEap(b) };
    case PayloadType.SK: return { kind: 'SK', innerNext: p.innerNext ?? 0, data: b };
    case PayloadType.SKF: return { kind: 'SKF', innerNext: p.innerNext ?? 0, skf: parseSkf(b) };
    default: return { kind: 'UNKNOWN', type: p.type, critical: p.critical, body: b };
  }
}

/** A one-line summary for logs, e.g. "SA KE NONCE N(COOKIE) SKF(1/2)"; never throws. */
export function describePayloads(payloads: readonly IkePayload[]): string {
  return payloads
    .map((p) => {
      try {
        const d = decodePayload(p);
        if (d.kind === 'NOTIFY') return `N(${notifyName(d.notify.type)})`;
        if (d.kind === 'SKF') return `SKF(${d.skf.fragmentNumber}/${d.skf.totalFragments})`;
        if (d.kind === 'AUTH') return `AUTH(${authMethodName(d.auth.method)})`;
      } catch {
        return `${payloadName(p.type)}(malformed)`;
      }
      return payloadName(p.type);
    })
    .join(' ');
}
