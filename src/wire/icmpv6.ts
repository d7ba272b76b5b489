/**
 * ICMPv6 codec (RFC 4443): echo request/reply, destination unreachable, packet too big, time exceeded and
 * parameter problem (errors carry the quoted original IPv6 packet, parsed leniently); anything else (neighbour
 * discovery, MLD) kept raw. The checksum covers the IPv6 pseudo-header (next header 58), so parse and write
 * take the address part of it: ipv6AddressSum(src, dst) from ipv6.ts.
 */
import { WireError } from '../errors.js';
import { finishChecksum, onesSum } from './checksum.js';
import { Ipv6NextHeader, parseIpv6, type Ipv6Packet } from './ipv6.js';
import { writeIcmpMessage } from './icmp.js';

export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
} as const;

export const Icmpv6UnreachableCode = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS: 3,
  PORT: 4,
  SOURCE_POLICY: 5,
  REJECT_ROUTE: 6,
} as const;

export const ICMPV6_HEADER_LENGTH = 8;

export interface Icmpv6Echo {
  kind: 'echo-request' | 'echo-reply';
  id: number;
  seq: number;
  payload: Uint8Array;
}

export interface Icmpv6Error {
  kind: 'dest-unreachable' | 'packet-too-big' | 'time-exceeded' | 'parameter-problem';
  code: number;
  /** MTU for packet-too-big, pointer for parameter-problem, 0 otherwise. */
  value: number;
  /** Everything after the 8-byte header: as much of the original packet as fit. */
  quoted: Uint8Array;
  /** The quoted packet, parsed with allowTruncated (payload = the quoted upper-layer bytes). */
  original: Omit<Ipv6Packet, 'payload'>;
  originalData: Uint8Array;
}

export interface Icmpv6Other {
  kind: 'other';
  type: number;
  code: number;
  rest: number;
  data: Uint8Array;
}

export type Icmpv6Message = Icmpv6Echo | Icmpv6Error | Icmpv6Other;

const ERROR_KIND: Record<number, Icmpv6Error['kind']> = {
  [Icmpv6Type.DEST_UNREACHABLE]: 'dest-unreachable',
  [Icmpv6Type.PACKET_TOO_BIG]: 'packet-too-big',
  [Icmpv6Type.TIME_EXCEEDED]: 'time-exceeded',
  [Icmpv6Type.PARAMETER_PROBLEM]: 'parameter-problem',
};

/**
 * Parse an ICMPv6 message (the upper-layer bytes of an IPv6 packet). With addressSum (ipv6AddressSum of the
 * packet's src and dst) the checksum is verified. Throws WireError.
 */
export function parseIcmpv6(bytes: Uint8Array, addressSum?: number): Icmpv6Message {
  const len = bytes.length;
  if (len < ICMPV6_HEADER_LENGTH) throw new WireError(`ICMPv6 message too short: ${len} bytes`, 'length', 0);
  if (addressSum !== undefined && finishChecksum(onesSum(bytes, 0, len, addressSum + Ipv6NextHeader.ICMPV6 + len)) !== 0)
    throw new WireError('ICMPv6 checksum mismatch', 'checksum', 2);
  const type = bytes[0]!;
  const code = bytes[1]!;
  const rest = ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0;
  if (type === Icmpv6Type.ECHO_REQUEST || type === Icmpv6Type.ECHO_REPLY)
    return {
      kind: type === Icmpv6Type.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
      id: rest >>> 16,
      seq: rest & 0xffff,
      payload: bytes.subarray(ICMPV6_HEADER_LENGTH),
    };
  const kind = ERROR_KIND[type];
  if (kind === undefined) return { kind: 'other', type, code, rest, data: bytes.subarray(ICMPV6_HEADER_LENGTH) };
  const quoted = bytes.subarray(ICMPV6_HEADER_LENGTH);
  let orig;
  try {
    orig = parseIpv6(quoted, { allowTruncated: true });
  } catch (e) {
    if (e instanceof WireError) throw new WireError(`ICMPv6 quoted packet: ${e.message}`, `original.${e.field}`, ICMPV6_HEADER_LENGTH + e.offset);
    throw e;
  }
  const { payload, ...original } = orig;
  return {
    kind,
    code,
    value: kind === 'packet-too-big' || kind === 'parameter-problem' ? rest : 0,
    quoted,
    original,
    originalData: payload,
  };
}

export type Icmpv6MessageInit =
  | Icmpv6Echo
  | { kind: Icmpv6Error['kind']; code: number; value?: number; quoted: Uint8Array }
  | Icmpv6Other;

function bodyOf(m: Icmpv6MessageInit): Uint8Array {
  if (m.kind === 'echo-request' || m.kind === 'echo-reply') return m.payload;
  if (m.kind === 'other') return m.data;
  return (m as { quoted: Uint8Array }).quoted;
}

export function icmpv6MessageLength(m: Icmpv6MessageInit): number {
  return ICMPV6_HEADER_LENGTH + bodyOf(m).length;
}

/** Write the message at out[offset] with its checksum over the pseudo-header (addressSum = ipv6AddressSum). */
export function writeIcmpv6(m: Icmpv6MessageInit, addressSum: number, out: Uint8Array, offset = 0): number {
  const body = bodyOf(m);
  const n = ICMPV6_HEADER_LENGTH + body.length;
  if (offset + n > out.length) throw new WireError('output buffer too small for ICMPv6 message', 'length', offset);
  let type: number;
  let code: number;
  let rest: number;
  switch (m.kind) {
    case 'echo-request':
    case 'echo-reply':
      type = m.kind === 'echo-request' ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY;
      code = 0;
      rest = (((m.id & 0xffff) << 16) | (m.seq & 0xffff)) >>> 0;
      break;
    case 'other':
      type = m.type;
      code = m.code;
      rest = m.rest >>> 0;
      break;
    default:
      type =
        m.kind === 'dest-unreachable'
          ? Icmpv6Type.DEST_UNREACHABLE
          : m.kind === 'packet-too-big'
            ? Icmpv6Type.PACKET_TOO_BIG
            : m.kind === 'time-exceeded'
              ? Icmpv6Type.TIME_EXCEEDED
              : Icmpv6Type.PARAMETER_PROBLEM;
      code = m.code;
      rest = (m.value ?? 0) >>> 0;
  }
  writeIcmpMessage(out, offset, type, code, rest, body, addressSum + Ipv6NextHeader.ICMPV6 + n);
  return n;
}

export function buildIcmpv6(m: Icmpv6MessageInit, addressSum: number): Uint8Array {
  const out = new Uint8Array(icmpv6MessageLength(m));
  writeIcmpv6(m, addressSum, out, 0);
  return out;
}
