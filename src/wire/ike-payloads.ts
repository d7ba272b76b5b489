/**
 * IKEv2 payload bodies (RFC 7296 §3.3–§3.16, RFC 7383 §2.5, RFC 7427 §3): parse and build each body, i.e. the
 * bytes after the 4-byte generic payload header (see ike.ts for the chain). Every parser throws WireError on
 * malformed input, with offsets relative to the start of the body; builders throw WireError on values that do
 * not fit their fields. RESERVED fields are written as 0 and ignored on receipt, so parse→build gives back the
 * received bytes whenever the sender did the same. Parsed byte fields are views into the input.
 */
import { WireError } from '../errors.js';
import { TransformAttr, TsType } from './ike-constants.js';

// ---------------------------------------------------------------- helpers

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;

function need(b: Uint8Array, off: number, n: number, field: string): void {
  if (off + n > b.length) throw new WireError(`${field} needs ${n} bytes at ${off}, body has ${b.length}`, field, Math.min(off, b.length));
}

function checkUint(v: number, max: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new WireError(`${field} ${v} out of range 0..${max}`, field, 0);
}

/** Concatenate byte chunks (numbers are single bytes). */
function concat(parts: ReadonlyArray<Uint8Array | number>): Uint8Array {
  let n = 0;
  for (const p of parts) n += typeof p === 'number' ? 1 : p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    if (typeof p === 'number') out[o++] = p;
    else out.set(p, (o += p.length) - p.length);
  }
  return out;
}

const be16 = (v: number): Uint8Array => Uint8Array.of(v >> 8, v & 0xff);

/** Type byte + 3 RESERVED bytes + data: the layout of the ID, AUTH and CP bodies. */
function typeAnd3(b: Uint8Array, what: string): { type: number; data: Uint8Array } {
  need(b, 0, 4, `${what}.type`);
  return { type: b[0]!, data: b.subarray(4) };
}

// ---------------------------------------------------------------- SA (RFC 7296 §3.3)

/** TV attribute (AF bit set; a 2-byte value) or TLV attribute (AF clear; variable data), RFC 7296 §3.3.5. */
export type TransformAttribute = { type: number; value: number } | { type: number; data: Uint8Array };

export interface Transform {
  /** TransformType. */
  type: number;
  id: number;
  attributes: TransformAttribute[];
}

export interface Proposal {
  /** Proposal Num (the first is 1). */
  number: number;
  /** ProtocolId. */
  protocol: number;
  /** 0 bytes (IKE_SA_INIT), 4 (ESP/AH) or 8 (IKE SA rekey). */
  spi: Uint8Array;
  transforms: Transform[];
}

const MORE_PROPOSALS = 2;
const MORE_TRANSFORMS = 3;
const AF_BIT = 0x8000;

/** Parse an SA payload body: one or more proposals, 'last' fields 0 on the last entry and 2 (3 for transforms) before. */
export function parseSa(b: Uint8Array): Proposal[] {
  const out: Proposal[] = [];
  let off = 0;
  if (b.length === 0) throw new WireError('SA payload without proposals', 'sa.proposal', 0);
  for (;;) {
    need(b, off, 8, 'sa.proposal.length');
    const last = b[off]!;
    if (last !== 0 && last !== MORE_PROPOSALS) throw new WireError(`proposal 'last' field ${last}`, 'sa.proposal.last', off);
    const len = u16(b, off + 2);
    if (len < 8 || off + len > b.length) throw new WireError(`proposal length ${len}`, 'sa.proposal.length', off + 2);
    const spiSize = b[off + 6]!;
    if (spiSize !== 0 && spiSize !== 4 && spiSize !== 8) throw new WireError(`SPI size ${spiSize}`, 'sa.proposal.spiSize', off + 6);
    if (8 + spiSize > len) throw new WireError('proposal too short for its SPI', 'sa.proposal.length', off + 2);
    const end = off + len;
    const transforms = parseTransforms(b, off + 8 + spiSize, end, b[off + 7]!);
    out.push({ number: b[off + 4]!, protocol: b[off + 5]!, spi: b.subarray(off + 8, off + 8 + spiSize), transforms });
    off = end;
    if (last === 0) {
      if (off !== b.length) throw new WireError('bytes after the last proposal', 'sa.proposal.last', off);
      return out;
    }
    if (off === b.length) throw new WireError("proposal says 'more' but the SA payload ends", 'sa.proposal.last', off);
  }
}

function parseTransforms(b: Uint8Array, start: number, end: number, count: number): Transform[] {
  const out: Transform[] = [];
  let off = start;
  for (let i = 0; i < count; i++) {
    if (off + 8 > end) throw new WireError(`transform ${i + 1} of ${count} runs past the proposal`, 'sa.transform.length', off);
    const last = b[off]!;
    const want = i === count - 1 ? 0 : MORE_TRANSFORMS;
    if (last !== want) throw new WireError(`transform 'last' field ${last}, expected ${want}`, 'sa.transform.last', off);
    const len = u16(b, off + 2);
    if (len < 8 || off + len > end) throw new WireError(`transform length ${len}`, 'sa.transform.length', off + 2);
    out.push({ type: b[off + 4]!, id: u16(b, off + 6), attributes: parseAttributes(b, off + 8, off + len) });
    off += len;
  }
  if (off !== end) throw new WireError('proposal length does not match its transforms', 'sa.proposal.numTransforms', off);
  return out;
}

function parseAttributes(b: Uint8Array, start: number, end: number): TransformAttribute[] {
  const out: TransformAttribute[] = [];
  let off = start;
  while (off < end) {
    if (off + 4 > end) throw new WireError('transform attribute cut short', 'sa.attribute', off);
    const t = u16(b, off);
    if (t & AF_BIT) {
      out.push({ type: t & 0x7fff, value: u16(b, off + 2) });
      off += 4;
    } else {
      const len = u16(b, off + 2);
      if (off + 4 + len > end) throw new WireError(`attribute length ${len} runs past the transform`, 'sa.attribute.length', off + 2);
      out.push({ type: t, data: b.subarray(off + 4, off + 4 + len) });
      off += 4 + len;
    }
  }
  return out;
}

function buildAttribute(a: TransformAttribute): Uint8Array {
  checkUint(a.type, 0x7fff, 'sa.attribute.type');
  if ('value' in a) {
    checkUint(a.value, 0xffff, 'sa.attribute.value');
    return concat([be16(a.type | AF_BIT), be16(a.value)]);
  }
  checkUint(a.data.length, 0xffff, 'sa.attribute.length');
  return concat([be16(a.type), be16(a.data.length), a.data]);
}

function buildTransform(t: Transform, last: boolean): Uint8Array {
  checkUint(t.type, 0xff, 'sa.transform.type');
  checkUint(t.id, 0xffff, 'sa.transform.id');
  const attrs = concat(t.attributes.map(buildAttribute));
  const len = 8 + attrs.length;
  checkUint(len, 0xffff, 'sa.transform.length');
  return concat([last ? 0 : MORE_TRANSFORMS, 0, be16(len), t.type, 0, be16(t.id), attrs]);
}

/** Build an SA payload body from one or more proposals. */
export function buildSa(proposals: readonly Proposal[]): Uint8Array {
  if (proposals.length === 0) throw new WireError('SA payload without proposals', 'sa.proposal', 0);
  return concat(
    proposals.map((p, i) => {
      checkUint(p.number, 0xff, 'sa.proposal.number');
      checkUint(p.protocol, 0xff, 'sa.proposal.protocol');
      if (p.spi.length !== 0 && p.spi.length !== 4 && p.spi.length !== 8)
        throw new WireError(`SPI of ${p.spi.length} bytes`, 'sa.proposal.spiSize', 0);
      checkUint(p.transforms.length, 0xff, 'sa.proposal.numTransforms');
      const ts = concat(p.transforms.map((t, j) => buildTransform(t, j === p.transforms.length - 1)));
      const len = 8 + p.spi.length + ts.length;
      checkUint(len, 0xffff, 'sa.proposal.length');
      const last = i === proposals.length - 1 ? 0 : MORE_PROPOSALS;
      return concat([last, 0, be16(len), p.number, p.protocol, p.spi.length, p.transforms.length, p.spi, ts]);
    }),
  );
}

/** The Key Length attribute (bits) of a transform, if present (RFC 7296 §3.3.5). */
export function transformKeyLength(t: Transform): number | undefined {
  const a = t.attributes.find((x) => x.type === TransformAttr.KEY_LENGTH && 'value' in x);
  return a && 'value' in a ? a.value : undefined;
}

/** A Key Length attribute (TV) for a transform. */
export const keyLengthAttribute = (bits: number): TransformAttribute => ({ type: TransformAttr.KEY_LENGTH, value: bits });

// ---------------------------------------------------------------- KE, Nonce, ID, CERT, CERTREQ, AUTH, V

/** Key Exchange payload, RFC 7296 §3.4. */
export interface KePayload {
  group: number;
  data: Uint8Array;
}

export function parseKe(b: Uint8Array): KePayload {
  need(b, 0, 4, 'ke.group');
  return { group: u16(b, 0), data: b.subarray(4) };
}

export function buildKe(ke: KePayload): Uint8Array {
  checkUint(ke.group, 0xffff, 'ke.group');
  return concat([be16(ke.group), 0, 0, ke.data]);
}

export const NONCE_MIN = 16;
export const NONCE_MAX = 256;

/** Nonce payload, RFC 7296 §3.9: the body is the nonce, 16..256 bytes. */
export function parseNonce(b: Uint8Array): Uint8Array {
  if (b.length < NONCE_MIN || b.length > NONCE_MAX) throw new WireError(`nonce of ${b.length} bytes (16..256)`, 'nonce.length', 0);
  return b;
}

export function buildNonce(nonce: Uint8Array): Uint8Array {
  return Uint8Array.from(parseNonce(nonce));
}

/** Identification payload (IDi/IDr), RFC 7296 §3.5. The body is also the "RestOfIDPayload" of §2.15. */
export interface IdPayload {
  /** IdType. */
  type: number;
  data: Uint8Array;
}

export function parseId(b: Uint8Array): IdPayload {
  return typeAnd3(b, 'id');
}

export function buildId(id: IdPayload): Uint8Array {
  checkUint(id.type, 0xff, 'id.type');
  return concat([id.type, 0, 0, 0, id.data]);
}

/** Certificate (§3.6) and Certificate Request (§3.7) payloads: encoding + data. */
export interface CertPayload {
  /** CertEncoding. */
  encoding: number;
  data: Uint8Array;
}

export function parseCert(b: Uint8Array): CertPayload {
  need(b, 0, 1, 'cert.encoding');
  return { encoding: b[0]!, data: b.subarray(1) };
}

export function buildCert(c: CertPayload): Uint8Array {
  checkUint(c.encoding, 0xff, 'cert.encoding');
  return concat([c.encoding, c.data]);
}

export const [parseCertreq, buildCertreq] = [parseCert, buildCert];

/** The Certification Authority field of an X.509 CERTREQ: concatenated 20-byte SHA-1 hashes (RFC 7296 §3.7). */
export function certreqAuthorities(data: Uint8Array): Uint8Array[] {
  if (data.length % 20 !== 0) throw new WireError(`CA field of ${data.length} bytes is not a list of SHA-1 hashes`, 'certreq.authority', 1);
  const out: Uint8Array[] = [];
  for (let o = 0; o < data.length; o += 20) out.push(data.subarray(o, o + 20));
  return out;
}

/** Authentication payload, RFC 7296 §3.8. */
export interface AuthPayload {
  /** AuthMethod. */
  method: number;
  data: Uint8Array;
}

export function parseAuth(b: Uint8Array): AuthPayload {
  return { method: typeAnd3(b, 'auth').type, data: b.subarray(4) };
}

export function buildAuth(a: AuthPayload): Uint8Array {
  checkUint(a.method, 0xff, 'auth.method');
  return concat([a.method, 0, 0, 0, a.data]);
}

/** RFC 7427 §3 authentication data of method 14: the DER AlgorithmIdentifier and the signature value. */
export interface SignatureAuthData {
  algorithmId: Uint8Array;
  signature: Uint8Array;
}

/** Split method-14 authentication data: ASN.1 Length (1) | AlgorithmIdentifier (DER SEQUENCE) | Signature. */
export function parseSignatureAuthData(data: Uint8Array): SignatureAuthData {
  need(data, 0, 1, 'auth.asn1Length');
  const n = data[0]!;
  need(data, 1, n, 'auth.algorithmId');
  const alg = data.subarray(1, 1 + n);
  if (n < 2 || alg[0] !== 0x30) throw new WireError('AlgorithmIdentifier is not a DER SEQUENCE', 'auth.algorithmId', 1);
  const l = alg[1]!;
  const inner = l < 0x80 ? 2 + l : l === 0x81 && n >= 3 ? 3 + alg[2]! : -1;
  if (inner !== n) throw new WireError(`AlgorithmIdentifier DER length does not match ASN.1 Length ${n}`, 'auth.algorithmId', 2);
  return { algorithmId: alg, signature: data.subarray(1 + n) };
}

export function buildSignatureAuthData(s: SignatureAuthData): Uint8Array {
  checkUint(s.algorithmId.length, 0xff, 'auth.asn1Length');
  const out = concat([s.algorithmId.length, s.algorithmId, s.signature]);
  parseSignatureAuthData(out);
  return out;
}

/** Vendor ID payload, RFC 7296 §3.12: the body is the ID. */
export const parseVendor = (b: Uint8Array): Uint8Array => b;
export const buildVendor = (id: Uint8Array): Uint8Array => Uint8Array.from(id);

// ---------------------------------------------------------------- Notify, Delete

/** Notify payload, RFC 7296 §3.10. */
export interface NotifyPayload {
  /** ProtocolId of the SA the SPI names, 0 when there is none. */
  protocol: number;
  spi: Uint8Array;
  /** NotifyType. */
  type: number;
  data: Uint8Array;
}

export function parseNotify(b: Uint8Array): NotifyPayload {
  need(b, 0, 4, 'notify.type');
  const spiSize = b[1]!;
  need(b, 4, spiSize, 'notify.spiSize');
  return { protocol: b[0]!, spi: b.subarray(4, 4 + spiSize), type: u16(b, 2), data: b.subarray(4 + spiSize) };
}

export function buildNotify(n: NotifyPayload): Uint8Array {
  checkUint(n.protocol, 0xff, 'notify.protocol');
  checkUint(n.spi.length, 0xff, 'notify.spiSize');
  checkUint(n.type, 0xffff, 'notify.type');
  return concat([n.protocol, n.spi.length, be16(n.type), n.spi, n.data]);
}

/** SIGNATURE_HASH_ALGORITHMS notification data: a list of 2-byte hash IDs (RFC 7427 §4). */
export function parseHashAlgorithms(data: Uint8Array): number[] {
  if (data.length % 2) throw new WireError('odd-length hash algorithm list', 'notify.data', 0);
  const out: number[] = [];
  for (let o = 0; o < data.length; o += 2) out.push(u16(data, o));
  return out;
}

/** Delete payload, RFC 7296 §3.11. */
export interface DeletePayload {
  protocol: number;
  /** 0 for the IKE SA (then there are no SPIs), 4 for ESP/AH. */
  spiSize: number;
  spis: Uint8Array[];
}

export function parseDelete(b: Uint8Array): DeletePayload {
  need(b, 0, 4, 'delete.count');
  const spiSize = b[1]!;
  const count = u16(b, 2);
  if (spiSize === 0 && count !== 0) throw new WireError(`${count} SPIs of size 0`, 'delete.count', 2);
  if (b.length !== 4 + count * spiSize)
    throw new WireError(`${count} SPIs of ${spiSize} bytes do not fill ${b.length - 4} bytes`, 'delete.count', 2);
  const spis: Uint8Array[] = [];
  for (let i = 0; i < count; i++) spis.push(b.subarray(4 + i * spiSize, 4 + (i + 1) * spiSize));
  return { protocol: b[0]!, spiSize, spis };
}

export function buildDelete(d: DeletePayload): Uint8Array {
  checkUint(d.protocol, 0xff, 'delete.protocol');
  checkUint(d.spiSize, 0xff, 'delete.spiSize');
  checkUint(d.spis.length, d.spiSize === 0 ? 0 : 0xffff, 'delete.count');
  for (const s of d.spis) if (s.length !== d.spiSize) throw new WireError(`SPI of ${s.length} bytes, size says ${d.spiSize}`, 'delete.spi', 0);
  return concat([d.protocol, d.spiSize, be16(d.spis.length), ...d.spis]);
}

// ---------------------------------------------------------------- TS (RFC 7296 §3.13)

export interface TrafficSelector {
  /** TsType: 7 (IPv4, 4-byte addresses) or 8 (IPv6, 16-byte addresses). */
  type: number;
  /** IP protocol, 0 = any. */
  ipProtocol: number;
  startPort: number;
  endPort: number;
  startAddress: Uint8Array;
  endAddress: Uint8Array;
}

function tsAddressLength(type: number): number {
  return type === TsType.IPV4_ADDR_RANGE ? 4 : type === TsType.IPV6_ADDR_RANGE ? 16 : -1;
}

/** Parse a TSi/TSr body: Number of TSs (1) | RESERVED (3) | selectors. Other TS types than 7/8 are rejected. */
export function parseTs(b: Uint8Array): TrafficSelector[] {
  need(b, 0, 4, 'ts.count');
  const count = b[0]!;
  const out: TrafficSelector[] = [];
  let off = 4;
  for (let i = 0; i < count; i++) {
    need(b, off, 4, 'ts.selector');
    const type = b[off]!;
    const a = tsAddressLength(type);
    if (a < 0) throw new WireError(`unsupported TS type ${type}`, 'ts.type', off);
    const len = u16(b, off + 2);
    if (len !== 8 + 2 * a) throw new WireError(`TS length ${len} for type ${type}`, 'ts.length', off + 2);
    need(b, off, len, 'ts.length');
    out.push({
      type,
      ipProtocol: b[off + 1]!,
      startPort: u16(b, off + 4),
      endPort: u16(b, off + 6),
      startAddress: b.subarray(off + 8, off + 8 + a),
      endAddress: b.subarray(off + 8 + a, off + len),
    });
    off += len;
  }
  if (off !== b.length) throw new WireError('bytes after the last traffic selector', 'ts.count', off);
  return out;
}

export function buildTs(selectors: readonly TrafficSelector[]): Uint8Array {
  checkUint(selectors.length, 0xff, 'ts.count');
  const parts: Array<Uint8Array | number> = [selectors.length, 0, 0, 0];
  for (const s of selectors) {
    const a = tsAddressLength(s.type);
    if (a < 0) throw new WireError(`unsupported TS type ${s.type}`, 'ts.type', 0);
    if (s.startAddress.length !== a || s.endAddress.length !== a)
      throw new WireError(`TS type ${s.type} needs ${a}-byte addresses`, 'ts.address', 0);
    checkUint(s.ipProtocol, 0xff, 'ts.ipProtocol');
    checkUint(s.startPort, 0xffff, 'ts.startPort');
    checkUint(s.endPort, 0xffff, 'ts.endPort');
    parts.push(s.type, s.ipProtocol, be16(8 + 2 * a), be16(s.startPort), be16(s.endPort), s.startAddress, s.endAddress);
  }
  return concat(parts);
}

// ---------------------------------------------------------------- CP (RFC 7296 §3.15)

export interface CpAttribute {
  /** CpAttr (15 bits; the R bit is ignored on receipt and sent as 0). */
  type: number;
  /** Empty in a request for "any value". */
  value: Uint8Array;
}

export interface CpPayload {
  /** CpType. */
  type: number;
  attributes: CpAttribute[];
}

export function parseCp(b: Uint8Array): CpPayload {
  const { type } = typeAnd3(b, 'cp');
  const attributes: CpAttribute[] = [];
  let off = 4;
  while (off < b.length) {
    need(b, off, 4, 'cp.attribute');
    const len = u16(b, off + 2);
    need(b, off + 4, len, 'cp.attribute.length');
    attributes.push({ type: u16(b, off) & 0x7fff, value: b.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return { type, attributes };
}

export function buildCp(cp: CpPayload): Uint8Array {
  checkUint(cp.type, 0xff, 'cp.type');
  const parts: Array<Uint8Array | number> = [cp.type, 0, 0, 0];
  for (const a of cp.attributes) {
    checkUint(a.type, 0x7fff, 'cp.attribute.type');
    checkUint(a.value.length, 0xffff, 'cp.attribute.length');
    parts.push(be16(a.type), be16(a.value.length), a.value);
  }
  return concat(parts);
}

// ---------------------------------------------------------------- EAP, SKF

/**
 * EAP payload, RFC 7296 §3.16: the body is one EAP packet (RFC 3748 §4), returned as is after checking that its
 * Length field equals the body length and that a Request/Response (codes 1/2) has a Type byte.
 */
export function parseEap(b: Uint8Array): Uint8Array {
  need(b, 0, 4, 'eap.length');
  const len = u16(b, 2);
  if (len !== b.length) throw new WireError(`EAP length ${len} != payload ${b.length}`, 'eap.length', 2);
  if ((b[0] === 1 || b[0] === 2) && len < 5) throw new WireError('EAP Request/Response without a Type', 'eap.type', 4);
  return b;
}

export function buildEap(eap: Uint8Array): Uint8Array {
  return Uint8Array.from(parseEap(eap));
}

/** Encrypted Fragment payload body, RFC 7383 §2.5 (the generic header's Next Payload is IkePayload.innerNext). */
export interface SkfPayload {
  /** 1..totalFragments. */
  fragmentNumber: number;
  totalFragments: number;
  /** IV | encrypted data | padding | pad length | ICV, raw. */
  data: Uint8Array;
}

export function parseSkf(b: Uint8Array): SkfPayload {
  need(b, 0, 4, 'skf.fragmentNumber');
  const fragmentNumber = u16(b, 0);
  const totalFragments = u16(b, 2);
  if (fragmentNumber < 1) throw new WireError('fragment number 0', 'skf.fragmentNumber', 0);
  if (fragmentNumber > totalFragments)
    throw new WireError(`fragment ${fragmentNumber} of ${totalFragments}`, 'skf.totalFragments', 2);
  return { fragmentNumber, totalFragments, data: b.subarray(4) };
}

export function buildSkf(f: SkfPayload): Uint8Array {
  checkUint(f.totalFragments, 0xffff, 'skf.totalFragments');
  if (!Number.isInteger(f.fragmentNumber) || f.fragmentNumber < 1 || f.fragmentNumber > f.totalFragments)
    throw new WireError(`fragment ${f.fragmentNumber} of ${f.totalFragments}`, 'skf.fragmentNumber', 0);
  return concat([be16(f.fragmentNumber), be16(f.totalFragments), f.data]);
}
