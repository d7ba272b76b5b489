/**
 * ICMPv4 codec (RFC 792, RFC 1191): echo request/reply, destination unreachable and time exceeded
 * (with the quoted original datagram), anything else kept raw.
 */
import { WireError } from '../errors.js';
import { finishChecksum, internetChecksum, onesSum } from './checksum.js';
import { parseIpv4, type Ipv4Header } from './ipv4.js';

export const IcmpType = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
} as const;

/** Destination-unreachable codes. */
export const IcmpUnreachableCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAG_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
  NET_PROHIBITED: 9,
  HOST_PROHIBITED: 10,
  ADMIN_PROHIBITED: 13,
} as const;

export const ICMP_HEADER_LENGTH = 8;

export interface IcmpEcho {
  kind: 'echo-request' | 'echo-reply';
  id: number;
  seq: number;
  /** View into the message. */
  payload: Uint8Array;
}

export interface IcmpError {
  kind: 'dest-unreachable' | 'time-exceeded';
  code: number;
  /** Next-hop MTU (RFC 1191) for dest-unreachable code 4 (frag needed); 0 otherwise. */
  nextHopMtu: number;
  /** Everything after the 8-byte ICMP header: the original IP header plus (at least) 8 bytes of its payload. */
  quoted: Uint8Array;
  /** The quoted header, parsed leniently (no checksum check, total length may exceed what is quoted). */
  original: Ipv4Header;
  /** The quoted bytes of the original payload (a view; usually the first 8 bytes). */
  originalData: Uint8Array;
}

export interface IcmpOther {
  kind: 'other';
  type: number;
  code: number;
  /** Bytes 4..7 of the header as a uint32. */
  rest: number;
  data: Uint8Array;
}

export type IcmpMessage = IcmpEcho | IcmpError | IcmpOther;

export interface IcmpParseOptions {
  /** Verify the ICMP checksum (default true). */
  verifyChecksum?: boolean;
}

/** Parse an ICMP message (the IPv4 payload). Throws WireError. */
export function parseIcmp(bytes: Uint8Array, opts?: IcmpParseOptions): IcmpMessage {
  const len = bytes.length;
  if (len < ICMP_HEADER_LENGTH) throw new WireError(`ICMP message too short: ${len} bytes`, 'length', 0);
  if (opts?.verifyChecksum !== false && internetChecksum(bytes, 0, len) !== 0)
    throw new WireError('ICMP checksum mismatch', 'checksum', 2);
  const type = bytes[0]!;
  const code = bytes[1]!;
  switch (type) {
    case IcmpType.ECHO_REQUEST:
    case IcmpType.ECHO_REPLY:
      return {
        kind: type === IcmpType.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
        id: (bytes[4]! << 8) | bytes[5]!,
        seq: (bytes[6]! << 8) | bytes[7]!,
        payload: bytes.subarray(ICMP_HEADER_LENGTH),
      };
    case IcmpType.DEST_UNREACHABLE:
    case IcmpType.TIME_EXCEEDED: {
      const quoted = bytes.subarray(ICMP_HEADER_LENGTH);
      let orig;
      try {
        orig = parseIpv4(quoted, { verifyChecksum: false, allowTruncated: true });
      } catch (e) {
        if (e instanceof WireError)
          throw new WireError(`ICMP quoted datagram: ${e.message}`, `original.${e.field}`, ICMP_HEADER_LENGTH + e.offset);
        throw e;
      }
      const { payload, ...original } = orig;
      return {
        kind: type === IcmpType.DEST_UNREACHABLE ? 'dest-unreachable' : 'time-exceeded',
        code,
        nextHopMtu: type === IcmpType.DEST_UNREACHABLE && code === IcmpUnreachableCode.FRAG_NEEDED ? (bytes[6]! << 8) | bytes[7]! : 0,
        quoted,
        original,
        originalData: payload,
      };
    }
    default:
      return {
        kind: 'other',
        type,
        code,
        rest: ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0,
        data: bytes.subarray(ICMP_HEADER_LENGTH),
      };
  }
}

/** What writeIcmp accepts: a parsed message, or for errors just code/mtu/quoted. */
export type IcmpMessageInit =
  | IcmpEcho
  | { kind: 'dest-unreachable' | 'time-exceeded'; code: number; nextHopMtu?: number; quoted: Uint8Array }
  | IcmpOther;

function bodyOf(m: IcmpMessageInit): Uint8Array {
  switch (m.kind) {
    case 'echo-request':
    case 'echo-reply':
      return m.payload;
    case 'dest-unreachable':
    case 'time-exceeded':
      return m.quoted;
    default:
      return m.data;
  }
}

export function icmpMessageLength(m: IcmpMessageInit): number {
  return ICMP_HEADER_LENGTH + bodyOf(m).length;
}

/** Write the message with its checksum at out[offset]; returns its length. */
export function writeIcmp(m: IcmpMessageInit, out: Uint8Array, offset = 0): number {
  const body = bodyOf(m);
  const n = ICMP_HEADER_LENGTH + body.length;
  if (offset + n > out.length) throw new WireError('output buffer too small for ICMP message', 'length', offset);
  const o = offset;
  let type: number, code: number, rest: number;
  switch (m.kind) {
    case 'echo-request':
    case 'echo-reply':
      type = m.kind === 'echo-request' ? IcmpType.ECHO_REQUEST : IcmpType.ECHO_REPLY;
      code = 0;
      rest = (((m.id & 0xffff) << 16) | (m.seq & 0xffff)) >>> 0;
      break;
    case 'dest-unreachable':
    case 'time-exceeded':
      type = m.kind === 'dest-unreachable' ? IcmpType.DEST_UNREACHABLE : IcmpType.TIME_EXCEEDED;
      code = m.code;
      rest = m.kind === 'dest-unreachable' ? (m.nextHopMtu ?? 0) & 0xffff : 0;
      break;
    default:
      type = m.type;
      code = m.code;
      rest = m.rest >>> 0;
  }
  writeIcmpMessage(out, o, type, code, rest, body, 0);
  return n;
}

/**
 * The header layout ICMP and ICMPv6 share (type, code, checksum, 32 bits of rest; RFC 792, RFC 4443 §2.1) and
 * the body after it, at out[o..]; the checksum starts from `initialSum` (0 for ICMP, the pseudo-header's sum for
 * ICMPv6). The caller has checked that it fits.
 */
export function writeIcmpMessage(out: Uint8Array, o: number, type: number, code: number, rest: number, body: Uint8Array, initialSum: number): void {
  const end = o + ICMP_HEADER_LENGTH + body.length;
  out[o] = type & 0xff;
  out[o + 1] = code & 0xff;
  out[o + 2] = 0;
  out[o + 3] = 0;
  out[o + 4] = (rest >>> 24) & 0xff;
  out[o + 5] = (rest >>> 16) & 0xff;
  out[o + 6] = (rest >>> 8) & 0xff;
  out[o + 7] = rest & 0xff;
  out.set(body, o + ICMP_HEADER_LENGTH);
  const c = finishChecksum(onesSum(out, o, end, initialSum));
  out[o + 2] = c >> 8;
  out[o + 3] = c & 0xff;
}

export function buildIcmp(m: IcmpMessageInit): Uint8Array {
  const out = new Uint8Array(icmpMessageLength(m));
  writeIcmp(m, out, 0);
  return out;
}

/** Ports of the quoted TCP/UDP datagram in an ICMP error, if quoted (first 4 bytes of originalData). */
export function quotedPorts(e: IcmpError): { srcPort: number; dstPort: number } | undefined {
  const d = e.originalData;
  if (e.original.fragmentOffset !== 0 || d.length < 4) return undefined;
  if (e.original.protocol !== 6 && e.original.protocol !== 17) return undefined;
  return { srcPort: (d[0]! << 8) | d[1]!, dstPort: (d[2]! << 8) | d[3]! };
}
