/**
 * TCP header codec (RFC 9293) with options: MSS, window scale and timestamps (RFC 7323), SACK-permitted
 * and SACK blocks (RFC 2018), NOP/EOL; unknown options are skipped by their length. The checksum uses the
 * IPv4 pseudo-header.
 *
 * parseTcp -> TcpSegment (plain object, payload is a view); writeTcpHeader/writeTcp emit into a caller's
 * buffer. The tcp* readers read single fields in place for the stack's hot paths.
 */
import { WireError } from '../errors.js';
import { finishChecksum, onesSum, pseudoSum } from './checksum.js';
import { IpProtocol, readU32, writeU32 } from './ipv4.js';
import type { PseudoHeader } from './udp.js';

export type { PseudoHeader } from './udp.js';

export const TCP_MIN_HEADER = 20;
export const TCP_MAX_HEADER = 60;
export const TCP_MAX_OPTIONS = 40;

export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMP: 8,
} as const;

/** A SACK block [left, right) in sequence space (uint32). */
export interface SackBlock {
  left: number;
  right: number;
}

export interface TcpTimestamp {
  /** TSval */
  value: number;
  /** TSecr */
  echo: number;
}

/** Options to write; absent fields are not emitted. */
export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  /** 1-4 blocks (at most 3 together with a timestamp). */
  sack?: SackBlock[];
  timestamp?: TcpTimestamp;
}

/** Parsed options: every key present (stable object shape), undefined when the option was absent. */
export interface ParsedTcpOptions {
  mss: number | undefined;
  windowScale: number | undefined;
  sackPermitted: boolean;
  sack: SackBlock[] | undefined;
  timestamp: TcpTimestamp | undefined;
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Data offset in bytes (20..60). */
  headerLength: number;
  /** Byte 13: CWR ECE URG ACK PSH RST SYN FIN (TcpFlag bits). */
  flags: number;
  /** Raw (unscaled) window field. */
  window: number;
  checksum: number;
  urgent: number;
  options: ParsedTcpOptions;
  /** View into the input. */
  payload: Uint8Array;
}

export interface TcpParseOptions {
  /** Skip option parsing (options come back empty); for paths that only need ports/flags. */
  skipOptions?: boolean;
}

export function emptyTcpOptions(): ParsedTcpOptions {
  return { mss: undefined, windowScale: undefined, sackPermitted: false, sack: undefined, timestamp: undefined };
}

/**
 * Parse a TCP segment (the whole IPv4 payload). With `pseudo` the checksum is verified.
 * Throws WireError on short input, a bad data offset, malformed options or a checksum mismatch.
 */
export function parseTcp(bytes: Uint8Array, pseudo?: PseudoHeader, opts?: TcpParseOptions): TcpSegment {
  const len = bytes.length;
  if (len < TCP_MIN_HEADER) throw new WireError(`TCP segment too short: ${len} bytes`, 'length', 0);
  const headerLength = (bytes[12]! >> 4) * 4;
  if (headerLength < TCP_MIN_HEADER) throw new WireError(`TCP data offset ${headerLength / 4} < 5`, 'dataOffset', 12);
  if (headerLength > len) throw new WireError(`TCP data offset ${headerLength} > segment ${len}`, 'dataOffset', 12);
  if (pseudo) {
    const s = onesSum(bytes, 0, len, pseudoSum(pseudo, IpProtocol.TCP, len));
    if (finishChecksum(s) !== 0) throw new WireError('TCP checksum mismatch', 'checksum', 16);
  }
  const options = emptyTcpOptions();
  if (!opts?.skipOptions && headerLength > TCP_MIN_HEADER) parseTcpOptionsInto(bytes, TCP_MIN_HEADER, headerLength, options);
  return {
    srcPort: (bytes[0]! << 8) | bytes[1]!,
    dstPort: (bytes[2]! << 8) | bytes[3]!,
    seq: readU32(bytes, 4),
    ack: readU32(bytes, 8),
    headerLength,
    flags: bytes[13]!,
    window: (bytes[14]! << 8) | bytes[15]!,
    checksum: (bytes[16]! << 8) | bytes[17]!,
    urgent: (bytes[18]! << 8) | bytes[19]!,
    options,
    payload: bytes.subarray(headerLength),
  };
}

/**
 * Parse the options area bytes[start, end) into `out` (fields are only set, never cleared: pass a fresh or
 * reset object). Unknown kinds are skipped by length; a known kind with the wrong length, a length < 2 or
 * one running past `end` throws WireError.
 */
export function parseTcpOptionsInto(bytes: Uint8Array, start: number, end: number, out: ParsedTcpOptions): ParsedTcpOptions {
  let i = start;
  while (i < end) {
    const kind = bytes[i]!;
    if (kind === TcpOptionKind.EOL) break;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) throw new WireError(`TCP option ${kind} has no length byte`, 'option.length', i + 1);
    const olen = bytes[i + 1]!;
    if (olen < 2) throw new WireError(`TCP option ${kind} length ${olen} < 2`, 'option.length', i + 1);
    if (i + olen > end) throw new WireError(`TCP option ${kind} length ${olen} runs past the header`, 'option.length', i + 1);
    switch (kind) {
      case TcpOptionKind.MSS:
        if (olen !== 4) throw new WireError(`TCP MSS option length ${olen} != 4`, 'option.mss', i + 1);
        out.mss = (bytes[i + 2]! << 8) | bytes[i + 3]!;
        break;
      case TcpOptionKind.WINDOW_SCALE:
        if (olen !== 3) throw new WireError(`TCP window scale option length ${olen} != 3`, 'option.windowScale', i + 1);
        out.windowScale = bytes[i + 2]!;
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (olen !== 2) throw new WireError(`TCP SACK-permitted option length ${olen} != 2`, 'option.sackPermitted', i + 1);
        out.sackPermitted = true;
        break;
      case TcpOptionKind.SACK: {
        if (olen < 10 || (olen - 2) % 8 !== 0) throw new WireError(`TCP SACK option length ${olen} invalid`, 'option.sack', i + 1);
        const blocks: SackBlock[] = [];
        for (let j = i + 2; j < i + olen; j += 8) blocks.push({ left: readU32(bytes, j), right: readU32(bytes, j + 4) });
        out.sack = blocks;
        break;
      }
      case TcpOptionKind.TIMESTAMP:
        if (olen !== 10) throw new WireError(`TCP timestamp option length ${olen} != 10`, 'option.timestamp', i + 1);
        out.timestamp = { value: readU32(bytes, i + 2), echo: readU32(bytes, i + 6) };
        break;
      default:
        break; // unknown: skipped by length
    }
    i += olen;
  }
  return out;
}

/** Bytes the options occupy when written (a multiple of 4). */
export function tcpOptionsLength(o: TcpOptions | undefined): number {
  if (!o) return 0;
  let n = 0;
  if (o.mss !== undefined) n += 4;
  if (o.sackPermitted || o.timestamp) n += o.timestamp ? 12 : 4;
  if (o.windowScale !== undefined) n += 4;
  if (o.sack && o.sack.length) n += 4 + 8 * o.sack.length;
  return n;
}

/**
 * Write options in the usual Linux layout, each group 4-byte aligned with NOPs:
 * MSS | SACK-perm+TS (or NOP NOP TS, or NOP NOP SACK-perm) | NOP WS | NOP NOP SACK.
 * Returns the number of bytes written. Throws WireError when they exceed 40 bytes or a value is out of range.
 */
export function writeTcpOptions(o: TcpOptions | undefined, out: Uint8Array, offset: number): number {
  const n = tcpOptionsLength(o);
  if (!o || n === 0) return 0;
  if (n > TCP_MAX_OPTIONS) throw new WireError(`TCP options need ${n} bytes > 40`, 'options', offset);
  if (offset + n > out.length) throw new WireError('output buffer too small for TCP options', 'options', offset);
  let i = offset;
  if (o.mss !== undefined) {
    if (o.mss < 0 || o.mss > 0xffff) throw new WireError(`TCP MSS ${o.mss} out of range`, 'option.mss', i);
    out[i] = TcpOptionKind.MSS;
    out[i + 1] = 4;
    out[i + 2] = o.mss >> 8;
    out[i + 3] = o.mss & 0xff;
    i += 4;
  }
  if (o.timestamp) {
    if (o.sackPermitted) {
      out[i] = TcpOptionKind.SACK_PERMITTED;
      out[i + 1] = 2;
    } else {
      out[i] = TcpOptionKind.NOP;
      out[i + 1] = TcpOptionKind.NOP;
    }
    out[i + 2] = TcpOptionKind.TIMESTAMP;
    out[i + 3] = 10;
    writeU32(out, i + 4, o.timestamp.value);
    writeU32(out, i + 8, o.timestamp.echo);
    i += 12;
  } else if (o.sackPermitted) {
    out[i] = TcpOptionKind.NOP;
    out[i + 1] = TcpOptionKind.NOP;
    out[i + 2] = TcpOptionKind.SACK_PERMITTED;
    out[i + 3] = 2;
    i += 4;
  }
  if (o.windowScale !== undefined) {
    if (o.windowScale < 0 || o.windowScale > 0xff)
      throw new WireError(`TCP window scale ${o.windowScale} out of range`, 'option.windowScale', i);
    out[i] = TcpOptionKind.NOP;
    out[i + 1] = TcpOptionKind.WINDOW_SCALE;
    out[i + 2] = 3;
    out[i + 3] = o.windowScale;
    i += 4;
  }
  if (o.sack && o.sack.length) {
    out[i] = TcpOptionKind.NOP;
    out[i + 1] = TcpOptionKind.NOP;
    out[i + 2] = TcpOptionKind.SACK;
    out[i + 3] = 2 + 8 * o.sack.length;
    i += 4;
    for (const b of o.sack) {
      writeU32(out, i, b.left);
      writeU32(out, i + 4, b.right);
      i += 8;
    }
  }
  return i - offset;
}

/** What writeTcpHeader needs. */
export interface TcpSegmentInit {
  srcPort: number;
  dstPort: number;
  seq: number;
  /** Default 0. */
  ack?: number;
  flags: number;
  window: number;
  urgent?: number;
  options?: TcpOptions;
}

export function tcpHeaderLength(seg: { options?: TcpOptions | undefined }): number {
  return TCP_MIN_HEADER + tcpOptionsLength(seg.options);
}

/**
 * Write a TCP header at out[offset] for a payload of payloadLength bytes ALREADY in place right after it
 * (at out[offset + tcpHeaderLength(seg)]). With `pseudo` the checksum is computed over header and payload,
 * otherwise it is left 0. Returns the header length.
 */
export function writeTcpHeader(
  seg: TcpSegmentInit,
  payloadLength: number,
  out: Uint8Array,
  offset: number,
  pseudo?: PseudoHeader,
): number {
  const o = offset;
  if (o + TCP_MIN_HEADER > out.length) throw new WireError('output buffer too small for TCP header', 'length', o);
  const hl = TCP_MIN_HEADER + writeTcpOptions(seg.options, out, o + TCP_MIN_HEADER);
  const total = hl + payloadLength;
  if (o + total > out.length) throw new WireError('output buffer too small for TCP segment', 'length', o);
  out[o] = (seg.srcPort >> 8) & 0xff;
  out[o + 1] = seg.srcPort & 0xff;
  out[o + 2] = (seg.dstPort >> 8) & 0xff;
  out[o + 3] = seg.dstPort & 0xff;
  writeU32(out, o + 4, seg.seq);
  writeU32(out, o + 8, seg.ack ?? 0);
  out[o + 12] = (hl >> 2) << 4;
  out[o + 13] = seg.flags & 0xff;
  out[o + 14] = (seg.window >> 8) & 0xff;
  out[o + 15] = seg.window & 0xff;
  out[o + 16] = 0;
  out[o + 17] = 0;
  const urg = seg.urgent ?? 0;
  out[o + 18] = (urg >> 8) & 0xff;
  out[o + 19] = urg & 0xff;
  if (pseudo) {
    const c = finishChecksum(onesSum(out, o, o + total, pseudoSum(pseudo, IpProtocol.TCP, total)));
    out[o + 16] = c >> 8;
    out[o + 17] = c & 0xff;
  }
  return hl;
}

/** Write header and a copy of the payload; returns the segment length. */
export function writeTcp(
  seg: TcpSegmentInit & { payload?: Uint8Array },
  out: Uint8Array,
  offset = 0,
  pseudo?: PseudoHeader,
): number {
  const hl = tcpHeaderLength(seg);
  const pl = seg.payload ? seg.payload.length : 0;
  if (offset + hl + pl > out.length) throw new WireError('output buffer too small for TCP segment', 'length', offset);
  if (seg.payload && pl) out.set(seg.payload, offset + hl);
  writeTcpHeader(seg, pl, out, offset, pseudo);
  return hl + pl;
}

export function buildTcp(seg: TcpSegmentInit & { payload?: Uint8Array }, pseudo?: PseudoHeader): Uint8Array {
  const out = new Uint8Array(tcpHeaderLength(seg) + (seg.payload ? seg.payload.length : 0));
  writeTcp(seg, out, 0, pseudo);
  return out;
}

/** Verify a segment's checksum in place (bytes = the whole TCP segment). */
export function tcpChecksumOk(bytes: Uint8Array, pseudo: PseudoHeader): boolean {
  const len = bytes.length;
  return finishChecksum(onesSum(bytes, 0, len, pseudoSum(pseudo, IpProtocol.TCP, len))) === 0;
}

// ---- hot-path readers (no validation) ----

export function tcpSrcPort(b: Uint8Array, off = 0): number {
  return (b[off]! << 8) | b[off + 1]!;
}
export function tcpDstPort(b: Uint8Array, off = 0): number {
  return (b[off + 2]! << 8) | b[off + 3]!;
}
export function tcpSeq(b: Uint8Array, off = 0): number {
  return readU32(b, off + 4);
}
export function tcpAck(b: Uint8Array, off = 0): number {
  return readU32(b, off + 8);
}
export function tcpHeaderLen(b: Uint8Array, off = 0): number {
  return (b[off + 12]! >> 4) * 4;
}
export function tcpFlags(b: Uint8Array, off = 0): number {
  return b[off + 13]!;
}
export function tcpWindow(b: Uint8Array, off = 0): number {
  return (b[off + 14]! << 8) | b[off + 15]!;
}

/** tcpdump-style flag string: F S R P . (ACK) U E W; "none" for 0. SYN+ACK -> "S.". */
export function tcpFlagsToString(flags: number): string {
  if ((flags & 0xff) === 0) return 'none';
  let s = '';
  if (flags & TcpFlag.FIN) s += 'F';
  if (flags & TcpFlag.SYN) s += 'S';
  if (flags & TcpFlag.RST) s += 'R';
  if (flags & TcpFlag.PSH) s += 'P';
  if (flags & TcpFlag.ACK) s += '.';
  if (flags & TcpFlag.URG) s += 'U';
  if (flags & TcpFlag.ECE) s += 'E';
  if (flags & TcpFlag.CWR) s += 'W';
  return s;
}
