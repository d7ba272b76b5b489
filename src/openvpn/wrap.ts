/**
 * Control-channel wrapping (reference §1.3, §2.2, §2.3, §2.5): none, tls-auth, tls-crypt, tls-crypt-v2.
 *
 * Sans-I/O: `wrap()` turns an encoded plain control packet (src/wire/openvpn.ts layout) into wire bytes,
 * `unwrap()` does the reverse and throws on anything it would not accept:
 *   - WireError           the packet is too short to hold the wrapping (or a malformed WKc trailer);
 *   - ControlUnwrapError  (VpnError code 'PROTOCOL', `reason` 'auth' | 'replay') bad HMAC or replayed id.
 * Callers count and drop; a bad packet never kills the session (an attacker can send garbage).
 *
 * Every wrap() takes a fresh replay packet id, so a retransmitted control packet gets a new id/time
 * (the reliability message id inside stays the same).
 *
 * Keys are raw bytes in the OpenVPN "key2" layout (256 bytes: cipher0[64] hmac0[64] cipher1[64]
 * hmac1[64]); parsing .ovpn / key files is someone else's job.
 */
import { createCipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { VpnError, WireError } from '../errors.js';
import { Opcode, SESSION_ID_LEN, opcodeOf } from '../wire/openvpn.js';
import { EARLY_NEG_START, PACKET_ID_LONG_LEN, PacketIdReceiver, PacketIdSender, type ReplayVerdict } from './packet-id.js';

export type WrapMode = 'none' | 'tls-auth' | 'tls-crypt' | 'tls-crypt-v2';
export type WrapRole = 'client' | 'server';

export interface ControlWrap {
  readonly mode: WrapMode;
  /** Bytes the wrapping adds to every packet (WKc not included; see overheadFor). */
  readonly overhead: number;
  /** Bytes added to a packet with this opcode (tls-crypt-v2 client: + WKc for opcodes 10 and 11). */
  overheadFor(opcode: number): number;
  /** Encoded plain control packet → wire bytes. */
  wrap(plain: Buffer, nowSec: number): Buffer;
  /** Wire bytes → plain layout (a new buffer). Throws WireError / ControlUnwrapError. */
  unwrap(wire: Buffer, nowSec: number): Buffer;
}

/** An authenticated-wrapping failure: counted and dropped by the caller. */
export class ControlUnwrapError extends VpnError {
  readonly reason: 'auth' | 'replay';
  readonly detail: string;
  constructor(reason: 'auth' | 'replay', detail: string) {
    super('PROTOCOL', `control packet ${reason === 'auth' ? 'authentication failed' : 'replay check failed'}: ${detail}`);
    this.name = 'ControlUnwrapError';
    this.reason = reason;
    this.detail = detail;
  }
}

export interface ReplayOptions {
  /** Receive backtrack in ids (default 64). */
  seqBacktrack?: number;
  /** Receive time backtrack in seconds (default 15). */
  timeBacktrack?: number;
}

export type ControlWrapConfig =
  | { mode: 'none' }
  | ({
      mode: 'tls-auth';
      /** key2 bytes: 256 (two keys), or 128 (one key; only without a direction). */
      key: Buffer;
      /** `key-direction` / the tls-auth file argument: 0 (server), 1 (client), undefined (bidirectional). */
      direction?: 0 | 1;
      /** The `--auth` digest (default SHA1): SHA1, SHA256, SHA384, SHA512, ... */
      digest?: string;
    } & ReplayOptions)
  | ({
      mode: 'tls-crypt';
      key: Buffer;
      /** Direction comes from the role (client INVERSE, server NORMAL); key-direction is ignored. */
      role?: WrapRole;
    } & ReplayOptions)
  | ({
      mode: 'tls-crypt-v2';
      /** Kc, the 256-byte client key from the tls-crypt-v2 client key file. */
      key: Buffer;
      /** WKc, sent as stored (client role; ignored for the server role). */
      wkc: Buffer;
      role?: WrapRole;
      /** Start the send counter at 0x0f000000 to announce early negotiation (default true, client role). */
      earlyNegotiation?: boolean;
    } & ReplayOptions);

export function createControlWrap(cfg: ControlWrapConfig): ControlWrap {
  switch (cfg.mode) {
    case 'none':
      return new NoneWrap();
    case 'tls-auth':
      return new TlsAuthWrap(cfg);
    case 'tls-crypt':
      return new TlsCryptWrap({ key: cfg.key, role: cfg.role ?? 'client', ...replayOpts(cfg) });
    case 'tls-crypt-v2':
      return new TlsCryptWrap({
        key: cfg.key,
        role: cfg.role ?? 'client',
        wkc: cfg.wkc,
        earlyNegotiation: cfg.earlyNegotiation ?? true,
        ...replayOpts(cfg),
      });
  }
}

function replayOpts(o: ReplayOptions): ReplayOptions {
  const r: ReplayOptions = {};
  if (o.seqBacktrack !== undefined) r.seqBacktrack = o.seqBacktrack;
  if (o.timeBacktrack !== undefined) r.timeBacktrack = o.timeBacktrack;
  return r;
}

/** Minimum plain packet: byte0 + session id. */
const PLAIN_HEADER = 1 + SESSION_ID_LEN;

function checkPlain(plain: Buffer): void {
  if (plain.length < PLAIN_HEADER + 1) throw new Error(`wrap: plain control packet too short (${plain.length} bytes)`);
}

function replayFail(v: ReplayVerdict, id: number, time: number): ControlUnwrapError {
  return new ControlUnwrapError('replay', `${v} (packet id ${id}, time ${time})`);
}

/** No wrapping (identity). */
export class NoneWrap implements ControlWrap {
  readonly mode = 'none' as const;
  readonly overhead = 0;
  overheadFor(): number {
    return 0;
  }
  wrap(plain: Buffer): Buffer {
    return plain;
  }
  unwrap(wire: Buffer): Buffer {
    return wire;
  }
}

// ---------------------------------------------------------------------------------------------------
// Key slicing (reference §2.1): key2 = keys[0].cipher F[0..64) keys[0].hmac F[64..128)
//                                      keys[1].cipher F[128..192) keys[1].hmac F[192..256)

function keySlice(key: Buffer, index: 0 | 1, part: 'cipher' | 'hmac', len: number): Buffer {
  const off = index * 128 + (part === 'hmac' ? 64 : 0);
  if (key.length < off + len) {
    throw new VpnError('PROFILE_SYNTAX', `static key too short: need ${off + len} bytes, have ${key.length}`);
  }
  return Buffer.from(key.subarray(off, off + len));
}

/** Send/receive HMAC keys for tls-auth: direction 1 sends keys[1], receives keys[0]; 0 the reverse; none keys[0]. */
export function tlsAuthKeys(key: Buffer, direction: 0 | 1 | undefined, hmacLen: number): { send: Buffer; recv: Buffer } {
  if (direction === undefined) {
    const k = keySlice(key, 0, 'hmac', hmacLen);
    return { send: k, recv: Buffer.from(k) };
  }
  const sendIdx = direction === 1 ? 1 : 0;
  const recvIdx = direction === 1 ? 0 : 1;
  return { send: keySlice(key, sendIdx, 'hmac', hmacLen), recv: keySlice(key, recvIdx, 'hmac', hmacLen) };
}

/** tls-crypt keys: client INVERSE (send keys[1], receive keys[0]), server NORMAL. AES-256 (32) + SHA256 (32). */
export function tlsCryptKeys(key: Buffer, role: WrapRole): { sendEnc: Buffer; sendMac: Buffer; recvEnc: Buffer; recvMac: Buffer } {
  const sendIdx = role === 'client' ? 1 : 0;
  const recvIdx = role === 'client' ? 0 : 1;
  return {
    sendEnc: keySlice(key, sendIdx, 'cipher', 32),
    sendMac: keySlice(key, sendIdx, 'hmac', 32),
    recvEnc: keySlice(key, recvIdx, 'cipher', 32),
    recvMac: keySlice(key, recvIdx, 'hmac', 32),
  };
}

/** Digest output size in bytes, or a PROFILE_UNSUPPORTED error for a name Node/OpenSSL does not know. */
export function digestLength(digest: string): number {
  try {
    return createHash(digest).digest().length;
  } catch {
    throw new VpnError('PROFILE_UNSUPPORTED', `unsupported --auth digest "${digest}" for tls-auth`);
  }
}

// ---------------------------------------------------------------------------------------------------
// tls-auth:  byte0 | sid | HMAC(H) | pid(4) | time(4) | rest
//            HMAC over pid | time | byte0 | sid | rest

export class TlsAuthWrap implements ControlWrap {
  readonly mode = 'tls-auth' as const;
  readonly overhead: number;
  readonly hmacLength: number;
  private readonly digest: string;
  private readonly sendKey: Buffer;
  private readonly recvKey: Buffer;
  private readonly sendId = new PacketIdSender();
  private readonly recvId: PacketIdReceiver;

  constructor(cfg: { key: Buffer; direction?: 0 | 1; digest?: string } & ReplayOptions) {
    this.digest = (cfg.digest ?? 'SHA1').toLowerCase();
    this.hmacLength = digestLength(this.digest);
    if (this.hmacLength > 64) throw new VpnError('PROFILE_UNSUPPORTED', `digest ${cfg.digest} is longer than 64 bytes`);
    const k = tlsAuthKeys(cfg.key, cfg.direction, this.hmacLength);
    this.sendKey = k.send;
    this.recvKey = k.recv;
    this.recvId = new PacketIdReceiver(cfg);
    this.overhead = this.hmacLength + PACKET_ID_LONG_LEN;
  }

  overheadFor(): number {
    return this.overhead;
  }

  wrap(plain: Buffer, nowSec: number): Buffer {
    checkPlain(plain);
    const H = this.hmacLength;
    const out = Buffer.allocUnsafe(plain.length + this.overhead);
    plain.copy(out, 0, 0, PLAIN_HEADER);
    const pidOff = PLAIN_HEADER + H;
    this.sendId.write(out, pidOff, nowSec);
    plain.copy(out, pidOff + PACKET_ID_LONG_LEN, PLAIN_HEADER);
    const mac = createHmac(this.digest, this.sendKey)
      .update(out.subarray(pidOff, pidOff + PACKET_ID_LONG_LEN))
      .update(out.subarray(0, PLAIN_HEADER))
      .update(out.subarray(pidOff + PACKET_ID_LONG_LEN))
      .digest();
    mac.copy(out, PLAIN_HEADER);
    return out;
  }

  unwrap(wire: Buffer, nowSec: number): Buffer {
    const H = this.hmacLength;
    const pidOff = PLAIN_HEADER + H;
    const restOff = pidOff + PACKET_ID_LONG_LEN;
    if (wire.length < restOff + 1) throw new WireError(`tls-auth packet too short (${wire.length} bytes)`, 'hmac', PLAIN_HEADER);
    const mac = createHmac(this.digest, this.recvKey)
      .update(wire.subarray(pidOff, restOff))
      .update(wire.subarray(0, PLAIN_HEADER))
      .update(wire.subarray(restOff))
      .digest();
    if (!timingSafeEqual(mac, wire.subarray(PLAIN_HEADER, pidOff))) {
      throw new ControlUnwrapError('auth', 'tls-auth HMAC mismatch (wrong key or key-direction?)');
    }
    const id = wire.readUInt32BE(pidOff);
    const time = wire.readUInt32BE(pidOff + 4);
    const v = this.recvId.check(id, time, nowSec);
    if (v !== 'ok') throw replayFail(v, id, time);
    const out = Buffer.allocUnsafe(wire.length - this.overhead);
    wire.copy(out, 0, 0, PLAIN_HEADER);
    wire.copy(out, PLAIN_HEADER, restOff);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------
// tls-crypt (and tls-crypt-v2 with Kc):
//   byte0 | sid | pid(4) | time(4) | tag(32) | AES-256-CTR(Ke, IV = tag[0..16), rest) [| WKc]
//   tag = HMAC-SHA256(Ka, byte0 | sid | pid | time | rest)

const TLS_CRYPT_HEADER = PLAIN_HEADER + PACKET_ID_LONG_LEN; // 17
const TLS_CRYPT_TAG = 32;
/** tls-crypt overhead over the plain layout. */
export const TLS_CRYPT_OVERHEAD = PACKET_ID_LONG_LEN + TLS_CRYPT_TAG; // 40
/** `TLS_CRYPT_V2_MAX_WKC_LEN`. */
export const TLS_CRYPT_V2_MAX_WKC_LEN = 1024;

function carriesWkc(opcode: number): boolean {
  return opcode === Opcode.P_CONTROL_HARD_RESET_CLIENT_V3 || opcode === Opcode.P_CONTROL_WKC_V1;
}

export class TlsCryptWrap implements ControlWrap {
  readonly mode: 'tls-crypt' | 'tls-crypt-v2';
  readonly overhead = TLS_CRYPT_OVERHEAD;
  readonly role: WrapRole;
  private readonly keys: ReturnType<typeof tlsCryptKeys>;
  private readonly wkc: Buffer | undefined;
  private readonly sendId: PacketIdSender;
  private readonly recvId: PacketIdReceiver;
  /** Server role, tls-crypt-v2: the WKc stripped from the last packet that carried one. */
  lastWkc: Buffer | undefined;

  constructor(cfg: { key: Buffer; role: WrapRole; wkc?: Buffer; earlyNegotiation?: boolean } & ReplayOptions) {
    this.role = cfg.role;
    this.mode = cfg.wkc !== undefined ? 'tls-crypt-v2' : 'tls-crypt';
    this.keys = tlsCryptKeys(cfg.key, cfg.role);
    if (cfg.wkc !== undefined && cfg.role === 'client') {
      if (cfg.wkc.length < 2 || cfg.wkc.length > TLS_CRYPT_V2_MAX_WKC_LEN) {
        throw new VpnError('PROFILE_SYNTAX', `tls-crypt-v2 wrapped client key has a bad length (${cfg.wkc.length})`);
      }
      this.wkc = Buffer.from(cfg.wkc);
    }
    const early = this.mode === 'tls-crypt-v2' && cfg.role === 'client' && cfg.earlyNegotiation !== false;
    this.sendId = new PacketIdSender(early ? EARLY_NEG_START : 0);
    this.recvId = new PacketIdReceiver(cfg);
  }

  overheadFor(opcode: number): number {
    return this.overhead + (this.wkc && carriesWkc(opcode) ? this.wkc.length : 0);
  }

  wrap(plain: Buffer, nowSec: number): Buffer {
    checkPlain(plain);
    const opcode = opcodeOf(plain[0]!);
    const wkc = this.wkc && carriesWkc(opcode) ? this.wkc : undefined;
    const bodyLen = plain.length - PLAIN_HEADER;
    const out = Buffer.allocUnsafe(TLS_CRYPT_HEADER + TLS_CRYPT_TAG + bodyLen + (wkc ? wkc.length : 0));
    plain.copy(out, 0, 0, PLAIN_HEADER);
    this.sendId.write(out, PLAIN_HEADER, nowSec);
    const body = plain.subarray(PLAIN_HEADER);
    const tag = createHmac('sha256', this.keys.sendMac).update(out.subarray(0, TLS_CRYPT_HEADER)).update(body).digest();
    tag.copy(out, TLS_CRYPT_HEADER);
    const c = createCipheriv('aes-256-ctr', this.keys.sendEnc, tag.subarray(0, 16));
    let o = TLS_CRYPT_HEADER + TLS_CRYPT_TAG;
    o += c.update(body).copy(out, o);
    o += c.final().copy(out, o);
    if (wkc) wkc.copy(out, o);
    return out;
  }

  unwrap(wire: Buffer, nowSec: number): Buffer {
    let w = wire;
    if (this.mode === 'tls-crypt-v2' && this.role === 'server' && w.length > 0 && carriesWkc(opcodeOf(w[0]!))) {
      // The WKc trailer ends with its own length (u16, counting itself).
      if (w.length < TLS_CRYPT_HEADER + TLS_CRYPT_TAG + 2) throw new WireError('tls-crypt-v2 packet too short', 'wkc', 0);
      const wkcLen = w.readUInt16BE(w.length - 2);
      if (wkcLen < 2 || wkcLen > TLS_CRYPT_V2_MAX_WKC_LEN || wkcLen > w.length - TLS_CRYPT_HEADER - TLS_CRYPT_TAG - 1) {
        throw new WireError(`bad WKc length ${wkcLen}`, 'wkc.len', w.length - 2);
      }
      this.lastWkc = Buffer.from(w.subarray(w.length - wkcLen));
      w = w.subarray(0, w.length - wkcLen);
    }
    if (w.length < TLS_CRYPT_HEADER + TLS_CRYPT_TAG + 1) {
      throw new WireError(`tls-crypt packet too short (${w.length} bytes)`, 'tag', TLS_CRYPT_HEADER);
    }
    const tagIn = w.subarray(TLS_CRYPT_HEADER, TLS_CRYPT_HEADER + TLS_CRYPT_TAG);
    const out = Buffer.allocUnsafe(w.length - TLS_CRYPT_OVERHEAD);
    w.copy(out, 0, 0, PLAIN_HEADER);
    const d = createCipheriv('aes-256-ctr', this.keys.recvEnc, tagIn.subarray(0, 16));
    let o = PLAIN_HEADER;
    o += d.update(w.subarray(TLS_CRYPT_HEADER + TLS_CRYPT_TAG)).copy(out, o);
    d.final().copy(out, o);
    const tag = createHmac('sha256', this.keys.recvMac)
      .update(w.subarray(0, TLS_CRYPT_HEADER))
      .update(out.subarray(PLAIN_HEADER))
      .digest();
    if (!timingSafeEqual(tag, tagIn)) {
      throw new ControlUnwrapError('auth', `${this.mode} HMAC mismatch (wrong key?)`);
    }
    const id = w.readUInt32BE(PLAIN_HEADER);
    const time = w.readUInt32BE(PLAIN_HEADER + 4);
    const v = this.recvId.check(id, time, nowSec);
    if (v !== 'ok') throw replayFail(v, id, time);
    return out;
  }
}
