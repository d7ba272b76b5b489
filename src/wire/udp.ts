/**
 * UDP codec (RFC 768) with the IPv4 or IPv6 pseudo-header checksum. A received checksum of 0 means "none".
 */
import { WireError } from '../errors.js';
import { finishChecksum, onesSum, pseudoSum } from './checksum.js';
import { IpProtocol } from './ipv4.js';

export const UDP_HEADER_LENGTH = 8;

/**
 * IPv4 source and destination (uint32) for the pseudo-header; or, for IPv6, `sum` = ipv6AddressSum(src, dst)
 * (then src and dst are not read).
 */
export interface PseudoHeader {
  src: number;
  dst: number;
  sum?: number | undefined;
}

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  /** Length field (header + payload). */
  length: number;
  /** Checksum field as found (0 = not computed by the sender). */
  checksum: number;
  /** View into the input. */
  payload: Uint8Array;
}

/**
 * Parse a UDP datagram (the IPv4 payload). With `pseudo`, a non-zero checksum is verified.
 * Bytes beyond the length field are ignored.
 */
export function parseUdp(bytes: Uint8Array, pseudo?: PseudoHeader): UdpDatagram {
  const len = bytes.length;
  if (len < UDP_HEADER_LENGTH) throw new WireError(`UDP datagram too short: ${len} bytes`, 'length', 0);
  const length = (bytes[4]! << 8) | bytes[5]!;
  if (length < UDP_HEADER_LENGTH) throw new WireError(`UDP length ${length} < 8`, 'length', 4);
  if (length > len) throw new WireError(`UDP length ${length} > buffer ${len}`, 'length', 4);
  const checksum = (bytes[6]! << 8) | bytes[7]!;
  if (pseudo && checksum !== 0) {
    const s = onesSum(bytes, 0, length, pseudoSum(pseudo, IpProtocol.UDP, length));
    if (finishChecksum(s) !== 0) throw new WireError('UDP checksum mismatch', 'checksum', 6);
  }
  return {
    srcPort: (bytes[0]! << 8) | bytes[1]!,
    dstPort: (bytes[2]! << 8) | bytes[3]!,
    length,
    checksum,
    payload: bytes.subarray(UDP_HEADER_LENGTH, length),
  };
}

/**
 * Write a UDP header at out[offset] for a payload of payloadLength bytes ALREADY in place at
 * out[offset + 8]. With `pseudo` the checksum is computed (0 is sent as 0xffff), else it is 0.
 */
export function writeUdpHeader(
  srcPort: number,
  dstPort: number,
  payloadLength: number,
  out: Uint8Array,
  offset: number,
  pseudo?: PseudoHeader,
): number {
  const length = UDP_HEADER_LENGTH + payloadLength;
  if (length > 0xffff) throw new WireError(`UDP length ${length} > 65535`, 'length', offset + 4);
  if (offset + length > out.length) throw new WireError('output buffer too small for UDP datagram', 'length', offset);
  const o = offset;
  out[o] = (srcPort >> 8) & 0xff;
  out[o + 1] = srcPort & 0xff;
  out[o + 2] = (dstPort >> 8) & 0xff;
  out[o + 3] = dstPort & 0xff;
  out[o + 4] = length >> 8;
  out[o + 5] = length & 0xff;
  out[o + 6] = 0;
  out[o + 7] = 0;
  if (pseudo) {
    let c = finishChecksum(onesSum(out, o, o + length, pseudoSum(pseudo, IpProtocol.UDP, length)));
    if (c === 0) c = 0xffff;
    out[o + 6] = c >> 8;
    out[o + 7] = c & 0xff;
  }
  return length;
}

/** Copy the payload in and write the header; returns the datagram length. */
export function writeUdp(
  d: { srcPort: number; dstPort: number; payload: Uint8Array },
  out: Uint8Array,
  offset = 0,
  pseudo?: PseudoHeader,
): number {
  if (offset + UDP_HEADER_LENGTH + d.payload.length > out.length)
    throw new WireError('output buffer too small for UDP datagram', 'length', offset);
  out.set(d.payload, offset + UDP_HEADER_LENGTH);
  return writeUdpHeader(d.srcPort, d.dstPort, d.payload.length, out, offset, pseudo);
}

export function buildUdp(d: { srcPort: number; dstPort: number; payload: Uint8Array }, pseudo?: PseudoHeader): Uint8Array {
  const out = new Uint8Array(UDP_HEADER_LENGTH + d.payload.length);
  writeUdp(d, out, 0, pseudo);
  return out;
}

export function udpSrcPort(b: Uint8Array, off = 0): number {
  return (b[off]! << 8) | b[off + 1]!;
}
export function udpDstPort(b: Uint8Array, off = 0): number {
  return (b[off + 2]! << 8) | b[off + 3]!;
}
