/**
 * OpenVPN 2.x packet codecs (no state, no time): the opcode/key-id byte, plain control packets (§1.3 of
 * the reference), the early-negotiation TLVs of HARD_RESET_SERVER_V2 (§2.5) and the two data-packet
 * headers. Control-channel wrapping (tls-auth / tls-crypt) lives in src/openvpn/wrap.ts and works on the
 * plain layout produced here. TCP length framing is the transport's job.
 *
 * Every decoder of untrusted bytes throws only WireError.
 */
import { WireError } from '../errors.js';

/** Opcodes (`ssl_pkt.h`). An `as const` object, not a const enum (tests run through esbuild). */
export const Opcode = {
  P_CONTROL_HARD_RESET_CLIENT_V1: 1,
  P_CONTROL_HARD_RESET_SERVER_V1: 2,
  P_CONTROL_SOFT_RESET_V1: 3,
  P_CONTROL_V1: 4,
  P_ACK_V1: 5,
  P_DATA_V1: 6,
  P_CONTROL_HARD_RESET_CLIENT_V2: 7,
  P_CONTROL_HARD_RESET_SERVER_V2: 8,
  P_DATA_V2: 9,
  P_CONTROL_HARD_RESET_CLIENT_V3: 10,
  P_CONTROL_WKC_V1: 11,
} as const;
export type OpcodeValue = (typeof Opcode)[keyof typeof Opcode];

export const OPCODE_SHIFT = 3;
export const KEY_ID_MASK = 0x07;
/** Session ids are 8 random bytes. */
export const SESSION_ID_LEN = 8;
/** At most 8 ACK ids in one packet (`RELIABLE_ACK_SIZE`). */
export const MAX_ACKS = 8;
/** ACKs piggy-backed on a non-ACK control packet (`CONTROL_SEND_ACK_MAX`). */
export const CONTROL_SEND_ACK_MAX = 4;

/** Early-negotiation TLV type and flag (`ssl_pkt.h`). */
export const TLV_TYPE_EARLY_NEG_FLAGS = 0x0001;
export const EARLY_NEG_FLAG_RESEND_WKC = 0x0001;

const OPCODE_NAMES: Record<number, string> = {};
for (const [name, value] of Object.entries(Opcode)) OPCODE_NAMES[value] = name;

/** Name of an opcode for logs ("P_CONTROL_V1"), or "opcode N" for unknown ones. */
export function opcodeName(op: number): string {
  return OPCODE_NAMES[op] ?? `opcode ${op}`;
}

/** `byte0 = opcode << 3 | keyId`. */
export function byte0(opcode: number, keyId: number): number {
  return ((opcode << OPCODE_SHIFT) | (keyId & KEY_ID_MASK)) & 0xff;
}
export function opcodeOf(b: number): number {
  return (b & 0xff) >>> OPCODE_SHIFT;
}
export function keyIdOf(b: number): number {
  return b & KEY_ID_MASK;
}

/** Control opcodes a 2.6 peer accepts (the V1 hard resets are obsolete and rejected). */
export function isControlOpcode(op: number): boolean {
  return (
    op === Opcode.P_CONTROL_SOFT_RESET_V1 ||
    op === Opcode.P_CONTROL_V1 ||
    op === Opcode.P_ACK_V1 ||
    op === Opcode.P_CONTROL_HARD_RESET_CLIENT_V2 ||
    op === Opcode.P_CONTROL_HARD_RESET_SERVER_V2 ||
    op === Opcode.P_CONTROL_HARD_RESET_CLIENT_V3 ||
    op === Opcode.P_CONTROL_WKC_V1
  );
}
export function isDataOpcode(op: number): boolean {
  return op === Opcode.P_DATA_V1 || op === Opcode.P_DATA_V2;
}
/** Hard and soft resets: the packets that start a key state (message id 0). */
export function isResetOpcode(op: number): boolean {
  return (
    op === Opcode.P_CONTROL_SOFT_RESET_V1 ||
    op === Opcode.P_CONTROL_HARD_RESET_CLIENT_V2 ||
    op === Opcode.P_CONTROL_HARD_RESET_SERVER_V2 ||
    op === Opcode.P_CONTROL_HARD_RESET_CLIENT_V3
  );
}
export function isHardResetOpcode(op: number): boolean {
  return (
    op === Opcode.P_CONTROL_HARD_RESET_CLIENT_V2 ||
    op === Opcode.P_CONTROL_HARD_RESET_SERVER_V2 ||
    op === Opcode.P_CONTROL_HARD_RESET_CLIENT_V3
  );
}

/** A control packet in the plain (unwrapped) layout. */
export interface ControlPacket {
  opcode: number;
  keyId: number;
  /** The sender's own session id (8 bytes). */
  sessionId: Buffer;
  /** ACKed message ids (uint32), at most 8. */
  acks: number[];
  /** The receiver's session id; on the wire only when acks.length > 0 (required then). */
  remoteSessionId?: Buffer;
  /** Reliability message id; absent for P_ACK_V1, required otherwise. */
  messageId?: number;
  /** TLS ciphertext (P_CONTROL_V1), early-negotiation TLVs (resets), empty otherwise. */
  payload: Buffer;
}

/** Bytes of the ACK block: n, 4*n ids, and the peer session id when n > 0. */
export function ackBlockLength(n: number): number {
  return 1 + 4 * n + (n > 0 ? SESSION_ID_LEN : 0);
}

/** Encoded size of a plain control packet. */
export function controlPacketLength(pkt: ControlPacket): number {
  return (
    1 +
    SESSION_ID_LEN +
    ackBlockLength(pkt.acks.length) +
    (pkt.opcode === Opcode.P_ACK_V1 ? 0 : 4) +
    (pkt.opcode === Opcode.P_ACK_V1 ? 0 : pkt.payload.length)
  );
}

/**
 * Writes a plain control packet at `out[offset..]`; returns the number of bytes written. Throws a plain
 * Error (a programming error, not a wire error) when the packet object is inconsistent.
 */
export function writeControlPacket(pkt: ControlPacket, out: Buffer, offset = 0): number {
  const n = pkt.acks.length;
  if (!isControlOpcode(pkt.opcode)) throw new Error(`writeControlPacket: ${opcodeName(pkt.opcode)} is not a control opcode`);
  if (pkt.sessionId.length !== SESSION_ID_LEN) throw new Error('writeControlPacket: sessionId must be 8 bytes');
  if (n > MAX_ACKS) throw new Error(`writeControlPacket: ${n} ACKs (max ${MAX_ACKS})`);
  if (n > 0 && (!pkt.remoteSessionId || pkt.remoteSessionId.length !== SESSION_ID_LEN)) {
    throw new Error('writeControlPacket: ACKs need an 8-byte remoteSessionId');
  }
  const isAck = pkt.opcode === Opcode.P_ACK_V1;
  if (!isAck && pkt.messageId === undefined) throw new Error(`writeControlPacket: ${opcodeName(pkt.opcode)} needs a messageId`);
  const len = controlPacketLength(pkt);
  if (offset + len > out.length) throw new Error('writeControlPacket: output buffer too small');
  let o = offset;
  out[o++] = byte0(pkt.opcode, pkt.keyId);
  pkt.sessionId.copy(out, o);
  o += SESSION_ID_LEN;
  out[o++] = n;
  for (let i = 0; i < n; i++) {
    out.writeUInt32BE(pkt.acks[i]! >>> 0, o);
    o += 4;
  }
  if (n > 0) {
    pkt.remoteSessionId!.copy(out, o);
    o += SESSION_ID_LEN;
  }
  if (!isAck) {
    out.writeUInt32BE(pkt.messageId! >>> 0, o);
    o += 4;
    pkt.payload.copy(out, o);
    o += pkt.payload.length;
  }
  return o - offset;
}

export function encodeControlPacket(pkt: ControlPacket): Buffer {
  const out = Buffer.allocUnsafe(controlPacketLength(pkt));
  writeControlPacket(pkt, out, 0);
  return out;
}

/**
 * Decodes a plain control packet. Validates the opcode (control opcodes of 2.6 only), the ACK count
 * (≤ 8) and every length. The returned buffers are views into `buf` (copy them if `buf` is reused).
 * Trailing bytes after a P_ACK_V1 are ignored, as OpenVPN does.
 */
export function decodeControlPacket(buf: Buffer): ControlPacket {
  if (buf.length < 1) throw new WireError('empty packet', 'opcode', 0);
  const opcode = opcodeOf(buf[0]!);
  const keyId = keyIdOf(buf[0]!);
  if (!isControlOpcode(opcode)) {
    throw new WireError(`${opcodeName(opcode)} is not a supported control opcode`, 'opcode', 0);
  }
  if (buf.length < 1 + SESSION_ID_LEN + 1) throw new WireError('control packet too short', 'sessionId', 1);
  const sessionId = buf.subarray(1, 1 + SESSION_ID_LEN);
  let o = 1 + SESSION_ID_LEN;
  const n = buf[o]!;
  if (n > MAX_ACKS) throw new WireError(`${n} ACKs (max ${MAX_ACKS})`, 'ackCount', o);
  o += 1;
  if (buf.length < o + ackBlockLength(n) - 1) throw new WireError('truncated ACK block', 'acks', o);
  const acks: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    acks[i] = buf.readUInt32BE(o);
    o += 4;
  }
  const pkt: ControlPacket = { opcode, keyId, sessionId, acks, payload: EMPTY };
  if (n > 0) {
    pkt.remoteSessionId = buf.subarray(o, o + SESSION_ID_LEN);
    o += SESSION_ID_LEN;
  }
  if (opcode === Opcode.P_ACK_V1) return pkt;
  if (buf.length < o + 4) throw new WireError('missing message id', 'messageId', o);
  pkt.messageId = buf.readUInt32BE(o);
  o += 4;
  pkt.payload = buf.subarray(o);
  return pkt;
}

const EMPTY = Buffer.alloc(0);

// ---------------------------------------------------------------------------------------------------
// Early negotiation TLVs (payload of HARD_RESET_SERVER_V2 from a 2.6+ server, §2.5)

export interface EarlyNegTlv {
  type: number;
  value: Buffer;
}
export interface EarlyNegotiation {
  /** The EARLY_NEG_FLAGS value (0 when absent). */
  flags: number;
  /** EARLY_NEG_FLAG_RESEND_WKC was set: the client must send P_CONTROL_WKC_V1 for message id 1. */
  resendWkc: boolean;
  /** Every TLV in order, unknown ones included. */
  tlvs: EarlyNegTlv[];
}

/**
 * Parses a reset payload as early-negotiation TLVs (type u16, len u16, value). Unknown types are skipped;
 * a short TLV or an EARLY_NEG_FLAGS whose length is not 2 is malformed, as in `parse_early_negotiation_tlvs`.
 * An empty payload gives flags 0.
 */
export function parseEarlyNegotiation(payload: Buffer): EarlyNegotiation {
  const tlvs: EarlyNegTlv[] = [];
  let flags = 0;
  let o = 0;
  while (o < payload.length) {
    if (payload.length - o < 4) throw new WireError('truncated TLV header', 'tlv', o);
    const type = payload.readUInt16BE(o);
    const len = payload.readUInt16BE(o + 2);
    if (payload.length - o - 4 < len) throw new WireError(`TLV length ${len} exceeds payload`, 'tlv.len', o + 2);
    const value = payload.subarray(o + 4, o + 4 + len);
    if (type === TLV_TYPE_EARLY_NEG_FLAGS) {
      if (len !== 2) throw new WireError(`EARLY_NEG_FLAGS length ${len} (want 2)`, 'tlv.len', o + 2);
      flags |= value.readUInt16BE(0);
    }
    tlvs.push({ type, value });
    o += 4 + len;
  }
  return { flags, resendWkc: (flags & EARLY_NEG_FLAG_RESEND_WKC) !== 0, tlvs };
}

/** Encodes the EARLY_NEG_FLAGS TLV (what a 2.6 server puts in its stateless reset). */
export function encodeEarlyNegFlags(flags: number): Buffer {
  const b = Buffer.allocUnsafe(6);
  b.writeUInt16BE(TLV_TYPE_EARLY_NEG_FLAGS, 0);
  b.writeUInt16BE(2, 2);
  b.writeUInt16BE(flags & 0xffff, 4);
  return b;
}

// ---------------------------------------------------------------------------------------------------
// Data packet headers (the data-channel crypto is elsewhere)

export const DATA_V1_HEADER_LEN = 1;
export const DATA_V2_HEADER_LEN = 4;
/** Peer id 0xFFFFFF means "no peer id assigned" (`MAX_PEER_ID`). */
export const PEER_ID_UNDEF = 0xffffff;

export interface DataHeader {
  opcode: typeof Opcode.P_DATA_V1 | typeof Opcode.P_DATA_V2;
  keyId: number;
  /** 24-bit peer id (P_DATA_V2 only). */
  peerId?: number;
  /** 1 for P_DATA_V1, 4 for P_DATA_V2: where the encrypted payload starts. */
  headerLength: number;
}

/** Reads the header of a data packet. Throws WireError for non-data opcodes or a short packet. */
export function readDataHeader(buf: Buffer, offset = 0): DataHeader {
  if (buf.length <= offset) throw new WireError('empty packet', 'opcode', offset);
  const b = buf[offset]!;
  const op = opcodeOf(b);
  if (op === Opcode.P_DATA_V1) return { opcode: Opcode.P_DATA_V1, keyId: keyIdOf(b), headerLength: DATA_V1_HEADER_LEN };
  if (op === Opcode.P_DATA_V2) {
    if (buf.length < offset + DATA_V2_HEADER_LEN) throw new WireError('P_DATA_V2 header truncated', 'peerId', offset + 1);
    return {
      opcode: Opcode.P_DATA_V2,
      keyId: keyIdOf(b),
      peerId: buf.readUIntBE(offset + 1, 3),
      headerLength: DATA_V2_HEADER_LEN,
    };
  }
  throw new WireError(`${opcodeName(op)} is not a data opcode`, 'opcode', offset);
}

/** Writes the 1-byte P_DATA_V1 header; returns 1. */
export function writeDataV1Header(out: Buffer, offset: number, keyId: number): number {
  out[offset] = byte0(Opcode.P_DATA_V1, keyId);
  return DATA_V1_HEADER_LEN;
}

/** Writes the 4-byte P_DATA_V2 header (byte0 ‖ 24-bit peer id); returns 4. */
export function writeDataV2Header(out: Buffer, offset: number, keyId: number, peerId: number): number {
  out[offset] = byte0(Opcode.P_DATA_V2, keyId);
  out.writeUIntBE(peerId & 0xffffff, offset + 1, 3);
  return DATA_V2_HEADER_LEN;
}

/** The 4-byte P_DATA_V2 header as one uint32 (it is also the AEAD associated data prefix). */
export function dataV2HeaderWord(keyId: number, peerId: number): number {
  return ((byte0(Opcode.P_DATA_V2, keyId) << 24) | (peerId & 0xffffff)) >>> 0;
}
