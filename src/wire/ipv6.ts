/**
 * IPv6 header codec (RFC 8200) and IPv6 address text (RFC 4291 §2.2 in, RFC 5952 out). Addresses are
 * 16-byte Uint8Arrays. parseIpv6 validates the fixed header, then walks the extension headers it knows
 * (hop-by-hop, routing, destination options, AH) by their length fields to the upper-layer header; a fragment
 * header ends the walk and is reported, the bytes after it being fragment data.
 */
import { WireError } from '../errors.js';
import { onesSum } from './checksum.js';

export const IPV6_HEADER_LENGTH = 40;
/** The smallest MTU every IPv6 link must carry (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;

export const Ipv6NextHeader = {
  HOP_BY_HOP: 0,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DEST_OPTS: 60,
} as const;

export interface Ipv6Fragment {
  /** Fragment offset in bytes (a multiple of 8). */
  offset: number;
  moreFragments: boolean;
  id: number;
}

export interface Ipv6Packet {
  trafficClass: number;
  flowLabel: number;
  /** Payload length field (extension headers included). */
  payloadLength: number;
  /** Next header field of the fixed header. */
  nextHeader: number;
  hopLimit: number;
  /** Views into the input. */
  src: Uint8Array;
  dst: Uint8Array;
  /** Upper-layer protocol after the extension headers (the fragment header's next header for a fragment; 59 for none). */
  protocol: number;
  /** Offset of `payload` in the packet (40 + extension headers). */
  headerLength: number;
  /** Present when a fragment header was found; payload then is the fragment data. */
  fragment: Ipv6Fragment | undefined;
  /** The upper-layer bytes (a view), trailing link padding excluded. */
  payload: Uint8Array;
}

export interface Ipv6ParseOptions {
  /** Accept a payload length larger than the buffer (the datagram quoted inside an ICMPv6 error). */
  allowTruncated?: boolean;
}

/** Parse and validate an IPv6 packet. Throws WireError naming the field and offset. */
export function parseIpv6(bytes: Uint8Array, opts?: Ipv6ParseOptions): Ipv6Packet {
  const len = bytes.length;
  if (len < IPV6_HEADER_LENGTH) throw new WireError(`IPv6 packet too short: ${len} bytes`, 'length', 0);
  const version = bytes[0]! >> 4;
  if (version !== 6) throw new WireError(`not IPv6: version ${version}`, 'version', 0);
  const payloadLength = (bytes[4]! << 8) | bytes[5]!;
  const nextHeader = bytes[6]!;
  if (payloadLength === 0 && nextHeader === Ipv6NextHeader.HOP_BY_HOP)
    throw new WireError('IPv6 jumbograms are not supported', 'payloadLength', 4);
  if (IPV6_HEADER_LENGTH + payloadLength > len && !opts?.allowTruncated)
    throw new WireError(`IPv6 payload length ${payloadLength} > buffer ${len - IPV6_HEADER_LENGTH}`, 'payloadLength', 4);
  const end = Math.min(IPV6_HEADER_LENGTH + payloadLength, len);
  let proto = nextHeader;
  let off = IPV6_HEADER_LENGTH;
  let fragment: Ipv6Fragment | undefined;
  for (let n = 0; ; n++) {
    if (proto === Ipv6NextHeader.HOP_BY_HOP && n !== 0)
      throw new WireError('IPv6 hop-by-hop options not first', 'nextHeader', off);
    if (proto === Ipv6NextHeader.HOP_BY_HOP || proto === Ipv6NextHeader.ROUTING || proto === Ipv6NextHeader.DEST_OPTS || proto === Ipv6NextHeader.AH) {
      if (off + 8 > end) throw new WireError(`IPv6 extension header ${proto} truncated`, 'extension', off);
      const ehLen = proto === Ipv6NextHeader.AH ? (bytes[off + 1]! + 2) * 4 : (bytes[off + 1]! + 1) * 8;
      if (off + ehLen > end) throw new WireError(`IPv6 extension header ${proto} length ${ehLen} runs past the packet`, 'extension', off + 1);
      proto = bytes[off]!;
      off += ehLen;
      continue;
    }
    if (proto === Ipv6NextHeader.FRAGMENT) {
      if (off + 8 > end) throw new WireError('IPv6 fragment header truncated', 'fragment', off);
      const fo = (bytes[off + 2]! << 8) | bytes[off + 3]!;
      fragment = {
        offset: fo & 0xfff8,
        moreFragments: (fo & 1) !== 0,
        id: ((bytes[off + 4]! << 24) | (bytes[off + 5]! << 16) | (bytes[off + 6]! << 8) | bytes[off + 7]!) >>> 0,
      };
      proto = bytes[off]!;
      off += 8;
    }
    break;
  }
  return {
    trafficClass: ((bytes[0]! & 0x0f) << 4) | (bytes[1]! >> 4),
    flowLabel: ((bytes[1]! & 0x0f) << 16) | (bytes[2]! << 8) | bytes[3]!,
    payloadLength,
    nextHeader,
    hopLimit: bytes[7]!,
    src: bytes.subarray(8, 24),
    dst: bytes.subarray(24, 40),
    protocol: proto,
    headerLength: off,
    fragment,
    payload: bytes.subarray(off, end),
  };
}

export interface Ipv6HeaderInit {
  src: Uint8Array;
  dst: Uint8Array;
  /** Next header (the upper-layer protocol: no extension headers are written). */
  nextHeader: number;
  /** Default 64. */
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
}

/** Write the 40-byte fixed header at out[offset] for payloadLength bytes that follow it. Returns 40. */
export function writeIpv6Header(h: Ipv6HeaderInit, payloadLength: number, out: Uint8Array, offset = 0): number {
  if (payloadLength > 0xffff || payloadLength < 0) throw new WireError(`IPv6 payload length ${payloadLength} invalid`, 'payloadLength', 4);
  if (offset + IPV6_HEADER_LENGTH > out.length) throw new WireError('output buffer too small for IPv6 header', 'length', offset);
  if (h.src.length !== 16 || h.dst.length !== 16) throw new WireError('IPv6 address must be 16 bytes', 'address', 8);
  const tc = (h.trafficClass ?? 0) & 0xff;
  const fl = (h.flowLabel ?? 0) & 0xfffff;
  const o = offset;
  out[o] = 0x60 | (tc >> 4);
  out[o + 1] = ((tc & 0x0f) << 4) | (fl >> 16);
  out[o + 2] = (fl >> 8) & 0xff;
  out[o + 3] = fl & 0xff;
  out[o + 4] = payloadLength >> 8;
  out[o + 5] = payloadLength & 0xff;
  out[o + 6] = h.nextHeader & 0xff;
  out[o + 7] = (h.hopLimit ?? 64) & 0xff;
  out.set(h.src, o + 8);
  out.set(h.dst, o + 24);
  return IPV6_HEADER_LENGTH;
}

/** Allocate a whole packet: header + a copy of payload. */
export function buildIpv6(h: Ipv6HeaderInit, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(IPV6_HEADER_LENGTH + payload.length);
  writeIpv6Header(h, payload.length, out, 0);
  out.set(payload, IPV6_HEADER_LENGTH);
  return out;
}

/** Unfolded sum of the address part of the IPv6 pseudo-header (RFC 8200 §8.1); add protocol and length to it. */
export function ipv6AddressSum(src: Uint8Array, dst: Uint8Array): number {
  return onesSum(dst, 0, 16, onesSum(src, 0, 16, 0));
}

// ---- addresses ----

/** "2001:db8::1" -> 16 bytes. Accepts an embedded dotted quad at the end; no zone index. Throws WireError. */
export function parseIpv6Address(s: string): Uint8Array {
  const bad = (): WireError => new WireError(`not an IPv6 address: ${JSON.stringify(s)}`, 'address', 0);
  if (s.length < 2 || s.length > 45) throw bad();
  const out = new Uint8Array(16);
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) throw bad();
  const headText = dbl === -1 ? s : s.slice(0, dbl);
  const tailText = dbl === -1 ? '' : s.slice(dbl + 2);
  const words = (text: string, allowV4: boolean): number[] => {
    if (text === '') return [];
    const parts = text.split(':');
    const w: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (allowV4 && i === parts.length - 1 && p.includes('.')) {
        const q = p.split('.');
        if (q.length !== 4) throw bad();
        const b = q.map((x) => {
          if (!/^(0|[1-9][0-9]{0,2})$/.test(x) || Number(x) > 255) throw bad();
          return Number(x);
        });
        w.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) throw bad();
      w.push(parseInt(p, 16));
    }
    return w;
  };
  const head = words(headText, dbl === -1);
  const tail = words(tailText, true);
  if (dbl === -1 ? head.length !== 8 : head.length + tail.length > 7) throw bad();
  for (let i = 0; i < head.length; i++) {
    out[2 * i] = head[i]! >> 8;
    out[2 * i + 1] = head[i]! & 0xff;
  }
  const t0 = 8 - tail.length;
  for (let i = 0; i < tail.length; i++) {
    out[2 * (t0 + i)] = tail[i]! >> 8;
    out[2 * (t0 + i) + 1] = tail[i]! & 0xff;
  }
  return out;
}

/** 16 bytes -> RFC 5952 text: lower case, no leading zeros, the longest run (>= 2) of zero words as "::". */
export function ipv6ToString(a: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((a[2 * i]! << 8) | a[2 * i + 1]!);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexw = (x: number[]): string => x.map((v) => v.toString(16)).join(':');
  if (bestAt === -1) return hexw(w);
  return `${hexw(w.slice(0, bestAt))}::${hexw(w.slice(bestAt + bestLen))}`;
}

/** True when text parses as an IPv6 address. */
export function isIpv6Address(s: string): boolean {
  try {
    parseIpv6Address(s);
    return true;
  } catch {
    return false;
  }
}

/** Byte-wise equality of two addresses. */
export function ipv6Equal(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** "2001:db8::/32" -> { prefix, length }; a bare address is a /128. Throws WireError. */
export function parseIpv6Cidr(s: string): { prefix: Uint8Array; length: number } {
  const slash = s.indexOf('/');
  const prefix = parseIpv6Address(slash === -1 ? s : s.slice(0, slash));
  const lenText = slash === -1 ? '128' : s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > 128)
    throw new WireError(`bad IPv6 prefix length in ${JSON.stringify(s)}`, 'prefixLength', 0);
  return { prefix, length: Number(lenText) };
}

/** True when addr lies in prefix/length. */
export function ipv6InPrefix(addr: Uint8Array, prefix: Uint8Array, length: number): boolean {
  const whole = length >> 3;
  for (let i = 0; i < whole; i++) if (addr[i] !== prefix[i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[whole]! & mask) === (prefix[whole]! & mask);
}
