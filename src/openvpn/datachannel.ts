/**
 * OpenVPN data-channel crypto for one key state (openvpn.md §4): P_DATA_V1/P_DATA_V2 framing, AEAD
 * (§4.2), CBC+HMAC (§4.3) and `cipher none` (§4.4), packet ids from 1, the replay window (checked
 * after authentication, §4.6), plus the ping/OCC magic payloads (§4.7) and a pluggable compression
 * framing hook (§4.8, identity by default).
 *
 * Wire layouts ([hdr] is 1 byte for V1, 4 bytes = op|kid|peer-id for V2):
 *   AEAD:          [hdr] [packet_id:4] [tag:16] [ciphertext]       nonce = packet_id || implicit_iv[8]
 *                  AD = hdr(4) || packet_id for V2, packet_id only for V1
 *   CBC + HMAC:    [hdr] [HMAC(IV || ct)] [IV:16] [CBC(packet_id:4 || payload), PKCS#7]
 *   none + auth:   [hdr] [HMAC(packet_id || payload)] [packet_id:4] [payload]
 *   none, no auth: [hdr] [packet_id:4] [payload]
 *
 * Per packet: encrypt allocates the exact-size wire buffer once (plus what node:crypto itself allocates);
 * decrypt returns node's plaintext buffer (AEAD/CBC) or a view into the wire buffer (`none`).
 */
import { randomFillSync } from 'node:crypto';
import { VpnError } from '../errors.js';
import { aeadOpenRaw, aeadSealInto } from '../crypto/aead.js';
import { cbcDecrypt, cbcEncryptInto, cbcPaddedLength, hmacInto, hmacVerify } from '../crypto/cbc-hmac.js';
import { ReplayWindow } from '../crypto/replay.js';
import { dataCipher, digest as digestByName, normalizeAuthName } from './algorithms.js';
import type { AeadAlgorithm, CbcCipher, DataCipherName, AuthName, Digest } from '../crypto/registry.js';
import { checkDataKeys } from './keys.js';
import type { DataKeys } from './keys.js';
import { packetSlab } from '../util/slab.js';

export const P_DATA_V1 = 6;
export const P_DATA_V2 = 9;
/** "peer-id undefined" in a DATA_V2 header. */
export const PEER_ID_UNDEF = 0xffffff;
/** The send side should renegotiate once its packet id reaches this (PACKET_ID_WRAP_TRIGGER). */
export const PACKET_ID_WRAP_TRIGGER = 0xff000000;
export const AEAD_TAG_LENGTH = 16;
export const PACKET_ID_LENGTH = 4;
const IMPLICIT_IV_LENGTH = 8;

/** 16-byte keepalive payload (ping.c). */
export const PING_MAGIC: Buffer = Buffer.from('2a187bf3641eb4cb07ed2d0a981fc748', 'hex');
/** 16-byte OCC prefix (occ.c); an opcode byte follows. */
export const OCC_MAGIC: Buffer = Buffer.from('287f346bd4ef7a812d56b8d3afc5459c', 'hex');
export const OCC_OP = {
  REQUEST: 0,
  REPLY: 1,
  MTU_LOAD_REQUEST: 2,
  MTU_LOAD: 3,
  MTU_REQUEST: 4,
  MTU_REPLY: 5,
  EXIT: 6,
} as const;

/** True if the (unframed) payload is exactly the ping magic. */
export function isPing(payload: Uint8Array): boolean {
  if (payload.length !== 16) return false;
  for (let i = 0; i < 16; i++) if (payload[i] !== PING_MAGIC[i]) return false;
  return true;
}

/** OCC opcode if the payload starts with the OCC magic and an opcode byte, else -1. */
export function occOpcode(payload: Uint8Array): number {
  if (payload.length < 17) return -1;
  for (let i = 0; i < 16; i++) if (payload[i] !== OCC_MAGIC[i]) return -1;
  return payload[16]!;
}

export function isOccExit(payload: Uint8Array): boolean {
  return occOpcode(payload) === OCC_OP.EXIT;
}

/** OCC message payload: magic || opcode (|| data). */
export function buildOccMessage(opcode: number, data?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(17 + (data?.length ?? 0));
  OCC_MAGIC.copy(out, 0);
  out[16] = opcode;
  if (data) out.set(data, 17);
  return out;
}

/** Opcode (byte0 >> 3) of a wire packet, or -1 if empty. */
export function packetOpcode(wire: Uint8Array): number {
  return wire.length === 0 ? -1 : wire[0]! >>> 3;
}

/** key_id of a P_DATA_V1/V2 packet (for picking the key state), or -1 if it is not one. */
export function dataPacketKeyId(wire: Uint8Array): number {
  if (wire.length === 0) return -1;
  const op = wire[0]! >>> 3;
  return op === P_DATA_V1 || op === P_DATA_V2 ? wire[0]! & 7 : -1;
}

/**
 * Compression framing hook (§4.8), applied inside the encryption: frame() on send (to IP packets,
 * pings and OCC alike), unframe() on receive. Return the input itself when nothing changes.
 * unframe() may throw a VpnError/WireError for a framing it does not accept.
 */
export interface PayloadFraming {
  readonly name: string;
  /** Most bytes frame() adds (for MTU/MSS arithmetic). */
  readonly overhead: number;
  frame(payload: Uint8Array): Uint8Array;
  unframe(payload: Buffer): Buffer;
}

export const IDENTITY_FRAMING: PayloadFraming = Object.freeze({
  name: 'none',
  overhead: 0,
  frame: (p: Uint8Array) => p,
  unframe: (p: Buffer) => p,
});

export type DataChannelDropReason = 'short' | 'opcode' | 'key-id' | 'auth' | 'decrypt' | 'replay';

/** Why a received data packet was dropped. Code 'WIRE': count and drop, never fatal. */
export class DataChannelError extends VpnError {
  readonly reason: DataChannelDropReason;
  constructor(reason: DataChannelDropReason, message: string) {
    super('WIRE', message);
    this.name = 'DataChannelError';
    this.reason = reason;
  }
}

export interface DataChannelStats {
  packetsOut: number;
  /** Wire bytes sent (headers included). */
  bytesOut: number;
  packetsIn: number;
  /** Wire bytes of accepted packets. */
  bytesIn: number;
  dropShort: number;
  dropOpcode: number;
  dropKeyId: number;
  dropAuth: number;
  dropDecrypt: number;
  dropReplay: number;
}

export interface DataChannelKeyOptions {
  /** key_id 0..7 of this key state. */
  keyId: number;
  /** Negotiated/pushed data cipher: AES-128/192/256-GCM, CHACHA20-POLY1305, AES-128/192/256-CBC, none. */
  cipher: DataCipherName | string;
  /** --auth digest for CBC and `none` (default 'SHA1'); ignored for AEAD. */
  auth?: AuthName | string;
  /** The four key slices (keys.ts sliceKey2 / dataKeysFromKey2). All-zero used parts are rejected. */
  keys: DataKeys;
  /** Pushed peer-id (0..0xFFFFFF): when set, packets are sent as P_DATA_V2, else P_DATA_V1. */
  peerId?: number;
  /** Replay window size (default 64). */
  replayWindow?: number;
  /** Compression framing (default identity). */
  framing?: PayloadFraming;
}

// Shared pool of random bytes for CBC IVs (refilled from the CSPRNG), so a packet costs no syscall.
const IV_POOL = Buffer.allocUnsafe(4096);
let ivPoolPos = IV_POOL.length;
function takeIv(out: Buffer, off: number): void {
  if (ivPoolPos + 16 > IV_POOL.length) {
    randomFillSync(IV_POOL);
    ivPoolPos = 0;
  }
  IV_POOL.copy(out, off, ivPoolPos, ivPoolPos + 16);
  IV_POOL.fill(0, ivPoolPos, ivPoolPos + 16); // never hand out the same bytes twice
  ivPoolPos += 16;
}

/** Data-channel crypto for one key state (one key_id). */
export class DataChannelKey {
  readonly keyId: number;
  readonly cipherName: DataCipherName;
  /** Digest used for CBC / none, or 'none'. 'none' for AEAD. */
  readonly authName: AuthName;
  readonly peerId: number | undefined;
  readonly stats: DataChannelStats = newDataChannelStats();
  readonly replay: ReplayWindow;
  framing: PayloadFraming;

  private readonly kind: 'aead' | 'cbc' | 'none';
  private readonly aeadAlg: AeadAlgorithm | null;
  private readonly cbc: CbcCipher | null;
  private readonly dig: Digest | null;
  private readonly hlen: number;
  private readonly encKey: Buffer;
  private readonly decKey: Buffer;
  private readonly encMac: Buffer;
  private readonly decMac: Buffer;
  /** packet_id(4) || implicit IV(8); the first 4 bytes are rewritten per packet. */
  private readonly encNonce: Buffer;
  private readonly decNonce: Buffer;
  private readonly scratchPid = Buffer.alloc(4);
  private readonly hdrLen: number;
  private readonly hdr: number;
  private sendId = 0;

  constructor(opts: DataChannelKeyOptions) {
    if (!Number.isInteger(opts.keyId) || opts.keyId < 0 || opts.keyId > 7) throw new VpnError('INTERNAL', `bad key_id ${opts.keyId}`);
    if (opts.peerId !== undefined && (!Number.isInteger(opts.peerId) || opts.peerId < 0 || opts.peerId > 0xffffff)) {
      throw new VpnError('PROTOCOL', `bad peer-id ${opts.peerId}`);
    }
    this.keyId = opts.keyId;
    this.peerId = opts.peerId;
    const c = dataCipher(opts.cipher);
    this.cipherName = c.name;
    this.kind = c.kind;
    this.aeadAlg = c.kind === 'aead' ? c : null;
    this.cbc = c.kind === 'cbc' ? c : null;
    const auth = c.kind === 'aead' ? 'none' : normalizeAuthName(opts.auth ?? 'SHA1');
    if (auth === undefined) digestByName(opts.auth ?? ''); // throws PROFILE_UNSUPPORTED with the list
    this.authName = auth ?? 'none';
    this.dig = this.authName === 'none' ? null : digestByName(this.authName);
    this.hlen = this.dig?.size ?? 0;
    checkDataKeys(opts.keys, c.name, this.authName);
    const k = opts.keys;
    this.encKey = Buffer.from(k.encryptCipher.subarray(0, c.keyLength));
    this.decKey = Buffer.from(k.decryptCipher.subarray(0, c.keyLength));
    this.encMac = Buffer.from(k.encryptHmac.subarray(0, this.hlen));
    this.decMac = Buffer.from(k.decryptHmac.subarray(0, this.hlen));
    this.encNonce = Buffer.alloc(12);
    this.decNonce = Buffer.alloc(12);
    if (c.kind === 'aead') {
      k.encryptHmac.copy(this.encNonce, 4, 0, IMPLICIT_IV_LENGTH);
      k.decryptHmac.copy(this.decNonce, 4, 0, IMPLICIT_IV_LENGTH);
    }
    this.replay = new ReplayWindow(opts.replayWindow ?? 64);
    this.framing = opts.framing ?? IDENTITY_FRAMING;
    if (opts.peerId !== undefined) {
      this.hdrLen = 4;
      this.hdr = (((P_DATA_V2 << 3) | this.keyId) * 0x1000000 + opts.peerId) >>> 0;
    } else {
      this.hdrLen = 1;
      this.hdr = (P_DATA_V1 << 3) | this.keyId;
    }
  }

  /** Last packet id sent (0 before the first packet). */
  get sendPacketId(): number {
    return this.sendId;
  }

  /** True once the send packet id reached PACKET_ID_WRAP_TRIGGER: start a renegotiation. */
  get wantsRenegotiation(): boolean {
    return this.sendId >= PACKET_ID_WRAP_TRIGGER;
  }

  /** Largest number of bytes encrypt() adds to a payload (header, crypto, padding, framing). */
  get overhead(): number {
    const base = this.hdrLen + this.framing.overhead;
    switch (this.kind) {
      case 'aead':
        return base + PACKET_ID_LENGTH + AEAD_TAG_LENGTH;
      case 'cbc':
        return base + this.hlen + 16 + PACKET_ID_LENGTH + 16;
      default:
        return base + this.hlen + PACKET_ID_LENGTH;
    }
  }

  /**
   * Frames, encrypts and authenticates one payload (IP packet, PING_MAGIC or an OCC message) and
   * returns the whole wire packet with its header. Throws VpnError PROTOCOL when the packet-id space
   * is exhausted (renegotiate before that: wantsRenegotiation) and INTERNAL for an empty payload.
   */
  encrypt(payload: Uint8Array): Buffer {
    const p = this.framing.frame(payload);
    if (p.length === 0) throw new VpnError('INTERNAL', 'data channel: refusing to send an empty payload');
    if (this.sendId >= 0xffffffff) throw new VpnError('PROTOCOL', 'data channel packet id exhausted; a new key is needed');
    const pid = ++this.sendId;
    const hl = this.hdrLen;
    let out: Buffer;
    switch (this.kind) {
      case 'aead': {
        out = packetSlab.buffer(hl + PACKET_ID_LENGTH + AEAD_TAG_LENGTH + p.length);
        this.writeHeader(out);
        out.writeUInt32BE(pid, hl);
        this.encNonce.writeUInt32BE(pid, 0);
        const aad = hl === 4 ? out.subarray(0, 8) : out.subarray(1, 5);
        aeadSealInto(this.aeadAlg!, this.encKey, this.encNonce, aad, p, out, hl + 4 + AEAD_TAG_LENGTH, hl + 4);
        break;
      }
      case 'cbc': {
        const cbc = this.cbc!;
        const ivOff = hl + this.hlen;
        const ctLen = cbcPaddedLength(cbc, PACKET_ID_LENGTH + p.length);
        out = packetSlab.buffer(ivOff + 16 + ctLen);
        this.writeHeader(out);
        takeIv(out, ivOff);
        this.scratchPid.writeUInt32BE(pid, 0);
        cbcEncryptInto(cbc, this.encKey, out.subarray(ivOff, ivOff + 16), this.scratchPid, p, out, ivOff + 16);
        hmacInto(this.dig!, this.encMac, out.subarray(ivOff), out, hl);
        break;
      }
      default: {
        const pidOff = hl + this.hlen;
        out = packetSlab.buffer(pidOff + PACKET_ID_LENGTH + p.length);
        this.writeHeader(out);
        out.writeUInt32BE(pid, pidOff);
        out.set(p, pidOff + PACKET_ID_LENGTH);
        if (this.dig !== null) hmacInto(this.dig, this.encMac, out.subarray(pidOff), out, hl);
      }
    }
    this.stats.packetsOut++;
    this.stats.bytesOut += out.length;
    return out;
  }

  /**
   * Verifies, decrypts, replay-checks and unframes one received P_DATA_V1/V2 packet (either version
   * is accepted; the peer-id is not checked). Returns the payload, which may be empty, a ping or an
   * OCC message (see isPing/occOpcode). Throws DataChannelError (reason short/opcode/key-id/auth/
   * decrypt/replay; also counted in stats) or whatever the framing's unframe() throws.
   */
  decrypt(wire: Buffer): Buffer {
    if (wire.length === 0) throw this.drop('short', 'empty packet');
    const b0 = wire[0]!;
    const op = b0 >>> 3;
    let hl: number;
    if (op === P_DATA_V2) hl = 4;
    else if (op === P_DATA_V1) hl = 1;
    else throw this.drop('opcode', `not a data packet (opcode ${op})`);
    if ((b0 & 7) !== this.keyId) throw this.drop('key-id', `key_id ${b0 & 7} does not match this key state (${this.keyId})`);
    let pid: number;
    let payload: Buffer;
    switch (this.kind) {
      case 'aead': {
        if (wire.length < hl + PACKET_ID_LENGTH + AEAD_TAG_LENGTH + 1) throw this.drop('short', `AEAD data packet too short (${wire.length} bytes)`);
        pid = wire.readUInt32BE(hl);
        this.decNonce.writeUInt32BE(pid, 0);
        const tagOff = hl + PACKET_ID_LENGTH;
        const ctOff = tagOff + AEAD_TAG_LENGTH;
        const aad = hl === 4 ? wire.subarray(0, 8) : wire.subarray(1, 5);
        const pt = aeadOpenRaw(this.aeadAlg!, this.decKey, this.decNonce, aad, wire.subarray(ctOff), wire.subarray(tagOff, ctOff));
        if (pt === null) throw this.drop('auth', `AEAD authentication failed (packet id ${pid})`);
        payload = pt;
        break;
      }
      case 'cbc': {
        const ivOff = hl + this.hlen;
        const ctLen = wire.length - ivOff - 16;
        if (ctLen < 16) throw this.drop('short', `CBC data packet too short (${wire.length} bytes)`);
        // HMAC first (as openvpn_decrypt_v1): a wrong --auth then reports 'auth', not a length error
        if (!hmacVerify(this.dig!, this.decMac, wire.subarray(ivOff), wire.subarray(hl, ivOff))) {
          throw this.drop('auth', 'HMAC check failed (check --auth)');
        }
        if (ctLen % 16 !== 0) throw this.drop('decrypt', 'CBC ciphertext is not a whole number of blocks');
        const pt = cbcDecrypt(this.cbc!, this.decKey, wire.subarray(ivOff, ivOff + 16), wire.subarray(ivOff + 16));
        if (pt === null) throw this.drop('decrypt', 'bad CBC padding');
        if (pt.length < PACKET_ID_LENGTH) throw this.drop('decrypt', 'CBC plaintext has no packet id');
        pid = pt.readUInt32BE(0);
        payload = pt.subarray(PACKET_ID_LENGTH);
        break;
      }
      default: {
        const pidOff = hl + this.hlen;
        if (wire.length < pidOff + PACKET_ID_LENGTH) throw this.drop('short', `data packet too short (${wire.length} bytes)`);
        if (this.dig !== null && !hmacVerify(this.dig, this.decMac, wire.subarray(pidOff), wire.subarray(hl, pidOff))) {
          throw this.drop('auth', 'HMAC check failed (check --auth)');
        }
        pid = wire.readUInt32BE(pidOff);
        payload = wire.subarray(pidOff + PACKET_ID_LENGTH);
      }
    }
    const verdict = this.replay.accept(pid);
    if (verdict !== 'ok') throw this.drop('replay', `packet id ${pid} rejected: ${verdict}`);
    this.stats.packetsIn++;
    this.stats.bytesIn += wire.length;
    return this.framing.unframe(payload);
  }

  private writeHeader(out: Buffer): void {
    if (this.hdrLen === 4) out.writeUInt32BE(this.hdr, 0);
    else out[0] = this.hdr;
  }

  private drop(reason: DataChannelDropReason, message: string): DataChannelError {
    return countDrop(this.stats, reason, message);
  }
}

const DROP_COUNTER = {
  short: 'dropShort',
  opcode: 'dropOpcode',
  'key-id': 'dropKeyId',
  auth: 'dropAuth',
  decrypt: 'dropDecrypt',
  replay: 'dropReplay',
} as const satisfies Record<DataChannelDropReason, keyof DataChannelStats>;

/** Zeroed counters for a data channel. */
export function newDataChannelStats(): DataChannelStats {
  return { packetsOut: 0, bytesOut: 0, packetsIn: 0, bytesIn: 0, dropShort: 0, dropOpcode: 0, dropKeyId: 0, dropAuth: 0, dropDecrypt: 0, dropReplay: 0 };
}

/** Counts a dropped packet under its reason and returns the error for the caller to throw. */
export function countDrop(stats: DataChannelStats, reason: DataChannelDropReason, message: string): DataChannelError {
  stats[DROP_COUNTER[reason]]++;
  return new DataChannelError(reason, message);
}
