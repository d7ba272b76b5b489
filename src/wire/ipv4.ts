/**
 * IPv4 header codec (RFC 791). Addresses are uint32 (host order numbers, 10.8.0.1 = 0x0a080001).
 * parseIpv4 validates once and returns a plain object whose payload is a view (no copy); the ipv4*
 * field readers read straight from the bytes for hot paths that already know the packet is valid.
 */
import { WireError } from '../errors.js';
import { internetChecksum, onesSum, finishChecksum } from './checksum.js';

export const IPV4_MIN_HEADER = 20;
export const IPV4_MAX_HEADER = 60;

export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ESP: 50,
} as const;

export interface Ipv4Header {
  /** Type of service byte (DSCP << 2 | ECN). */
  tos: number;
  /** Header length in bytes (IHL * 4), options included. */
  headerLength: number;
  /** Total length field (header + payload). */
  totalLength: number;
  id: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  /** Header checksum as found in the packet. */
  checksum: number;
  src: number;
  dst: number;
  /** Options bytes (a view, possibly empty). Kept, never interpreted. */
  options: Uint8Array;
}

export interface Ipv4Packet extends Ipv4Header {
  /** bytes[headerLength, totalLength) as a view; trailing link padding is excluded. */
  payload: Uint8Array;
}

export interface Ipv4ParseOptions {
  /** Verify the header checksum (default true). */
  verifyChecksum?: boolean;
  /**
   * Accept a total length larger than the buffer and return the bytes that are there (default false).
   * For the original datagram quoted inside ICMP errors.
   */
  allowTruncated?: boolean;
}

/** Parse and validate an IPv4 packet. Throws WireError naming the field and offset. */
export function parseIpv4(bytes: Uint8Array, opts?: Ipv4ParseOptions): Ipv4Packet {
  const len = bytes.length;
  if (len < IPV4_MIN_HEADER) throw new WireError(`IPv4 packet too short: ${len} bytes`, 'length', 0);
  const b0 = bytes[0]!;
  const version = b0 >> 4;
  if (version !== 4) throw new WireError(`not IPv4: version ${version}`, 'version', 0);
  const headerLength = (b0 & 0x0f) * 4;
  if (headerLength < IPV4_MIN_HEADER) throw new WireError(`IPv4 IHL ${headerLength / 4} < 5`, 'ihl', 0);
  if (headerLength > len) throw new WireError(`IPv4 header length ${headerLength} > packet ${len}`, 'ihl', 0);
  const totalLength = (bytes[2]! << 8) | bytes[3]!;
  if (totalLength < headerLength)
    throw new WireError(`IPv4 total length ${totalLength} < header length ${headerLength}`, 'totalLength', 2);
  if (totalLength > len && !opts?.allowTruncated)
    throw new WireError(`IPv4 total length ${totalLength} > buffer ${len}`, 'totalLength', 2);
  if (opts?.verifyChecksum !== false && internetChecksum(bytes, 0, headerLength) !== 0)
    throw new WireError('IPv4 header checksum mismatch', 'checksum', 10);
  const ff = (bytes[6]! << 8) | bytes[7]!;
  return {
    tos: bytes[1]!,
    headerLength,
    totalLength,
    id: (bytes[4]! << 8) | bytes[5]!,
    dontFragment: (ff & 0x4000) !== 0,
    moreFragments: (ff & 0x2000) !== 0,
    fragmentOffset: (ff & 0x1fff) * 8,
    ttl: bytes[8]!,
    protocol: bytes[9]!,
    checksum: (bytes[10]! << 8) | bytes[11]!,
    src: readU32(bytes, 12),
    dst: readU32(bytes, 16),
    options: bytes.subarray(IPV4_MIN_HEADER, headerLength),
    payload: bytes.subarray(headerLength, Math.min(totalLength, len)),
  };
}

/** What writeIpv4Header needs; omitted fields take the usual defaults. */
export interface Ipv4HeaderInit {
  src: number;
  dst: number;
  protocol: number;
  /** Default 64. */
  ttl?: number;
  tos?: number;
  id?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** Bytes, multiple of 8. */
  fragmentOffset?: number;
  /** Length a multiple of 4, at most 40 bytes. */
  options?: Uint8Array;
}

/** Header length writeIpv4Header will produce for h. */
export function ipv4HeaderLength(h: Ipv4HeaderInit): number {
  return IPV4_MIN_HEADER + (h.options ? h.options.length : 0);
}

/**
 * Write an IPv4 header (with checksum) at out[offset] for a payload of payloadLength bytes that the caller
 * places (or has placed) right after it. Returns the header length.
 */
export function writeIpv4Header(h: Ipv4HeaderInit, payloadLength: number, out: Uint8Array, offset = 0): number {
  const optLen = h.options ? h.options.length : 0;
  if (optLen % 4 !== 0 || optLen > 40) throw new WireError(`IPv4 options length ${optLen} invalid`, 'options', 20);
  const hl = IPV4_MIN_HEADER + optLen;
  const total = hl + payloadLength;
  if (total > 0xffff) throw new WireError(`IPv4 total length ${total} > 65535`, 'totalLength', 2);
  if (offset + hl > out.length) throw new WireError('output buffer too small for IPv4 header', 'length', offset);
  const frag = h.fragmentOffset ?? 0;
  if (frag % 8 !== 0 || frag < 0 || frag > 0x1fff * 8)
    throw new WireError(`IPv4 fragment offset ${frag} invalid`, 'fragmentOffset', 6);
  const o = offset;
  out[o] = 0x40 | (hl >> 2);
  out[o + 1] = (h.tos ?? 0) & 0xff;
  out[o + 2] = total >> 8;
  out[o + 3] = total & 0xff;
  const id = h.id ?? 0;
  out[o + 4] = (id >> 8) & 0xff;
  out[o + 5] = id & 0xff;
  const ff = (h.dontFragment ? 0x4000 : 0) | (h.moreFragments ? 0x2000 : 0) | (frag >> 3);
  out[o + 6] = ff >> 8;
  out[o + 7] = ff & 0xff;
  out[o + 8] = (h.ttl ?? 64) & 0xff;
  out[o + 9] = h.protocol & 0xff;
  out[o + 10] = 0;
  out[o + 11] = 0;
  writeU32(out, o + 12, h.src);
  writeU32(out, o + 16, h.dst);
  if (h.options && optLen) out.set(h.options, o + 20);
  const c = finishChecksum(onesSum(out, o, o + hl));
  out[o + 10] = c >> 8;
  out[o + 11] = c & 0xff;
  return hl;
}

/** Allocate a whole packet: header + a copy of payload. */
export function buildIpv4(h: Ipv4HeaderInit, payload: Uint8Array): Uint8Array {
  const hl = ipv4HeaderLength(h);
  const out = new Uint8Array(hl + payload.length);
  writeIpv4Header(h, payload.length, out, 0);
  out.set(payload, hl);
  return out;
}

// ---- hot-path field readers (no validation: call on packets already known to be valid) ----

export function ipv4HeaderLen(b: Uint8Array, off = 0): number {
  return (b[off]! & 0x0f) * 4;
}
export function ipv4TotalLength(b: Uint8Array, off = 0): number {
  return (b[off + 2]! << 8) | b[off + 3]!;
}
export function ipv4Protocol(b: Uint8Array, off = 0): number {
  return b[off + 9]!;
}
export function ipv4Ttl(b: Uint8Array, off = 0): number {
  return b[off + 8]!;
}
export function ipv4Src(b: Uint8Array, off = 0): number {
  return readU32(b, off + 12);
}
export function ipv4Dst(b: Uint8Array, off = 0): number {
  return readU32(b, off + 16);
}
/** True for any fragment but the unfragmented datagram (MF set or offset > 0). */
export function ipv4IsFragment(b: Uint8Array, off = 0): boolean {
  return (((b[off + 6]! << 8) | b[off + 7]!) & 0x3fff) !== 0;
}

// ---- addresses ----

export function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** 0x0a080001 -> "10.8.0.1" */
export function ipv4ToString(addr: number): string {
  return `${(addr >>> 24) & 0xff}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** "10.8.0.1" -> 0x0a080001; throws WireError (field "address") for anything but a strict dotted quad. */
export function parseIpv4Address(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) throw new WireError(`not an IPv4 address: ${JSON.stringify(s)}`, 'address', 0);
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)
      throw new WireError(`not an IPv4 address: ${JSON.stringify(s)}`, 'address', 0);
    v = v * 256 + Number(p);
  }
  return v >>> 0;
}
