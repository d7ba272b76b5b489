/**
 * The data channel of OpenVPN's two TLS-less point-to-point modes (openvpn.md §7, §2.1):
 *
 *  - static key (`secret file [dir]` / `<secret>` + `key-direction`): no opcode byte, no peer-id, and the
 *    LONG-form packet id (id + net_time) inside the encrypted part:
 *      CBC:         [HMAC(IV || ct)] [IV:16] [CBC(packet_id:4 || net_time:4 || payload), PKCS#7]
 *      cipher none: [HMAC(packet_id || net_time || payload)] [packet_id:4] [net_time:4] [payload]
 *      (`auth none` drops the HMAC in either layout)
 *    Keys from the 256-byte static key sliced by direction: none → both ways keys[0]; 0 → send keys[0],
 *    receive keys[1]; 1 → the reverse. Only CBC (and `none`): 2.6 refuses AEAD with a static key
 *    ("Cipher 'AES-256-GCM' mode not supported"); BF-CBC, the default when `cipher` is absent, is not
 *    implemented (nor in OpenSSL 3 without the legacy provider).
 *  - plaintext p2p (neither TLS nor secret): the wire packet IS the framed payload: no packet id, no
 *    replay protection, nothing authenticated (checked against OpenVPN 2.6.14 with `--dev null`).
 *
 * Replay (packet_id.c, long form): a packet is accepted if its net_time is newer than the newest seen
 * (the peer restarted or wrapped: the window starts over), or equal and its id passes the usual sliding
 * window; an older net_time is rejected. Checked only after authentication.
 *
 * StaticKeyChannel mirrors DataChannelKey (encrypt/decrypt/framing/stats/overhead, DataChannelError with
 * the same drop reasons) so a session can drive either. Pings and OCC messages travel inside it like IP
 * packets; in these modes peers also exchange OCC_REQUEST/OCC_REPLY (occResponse answers a request).
 */
import { randomFillSync } from 'node:crypto';
import { VpnError } from '../errors.js';
import { cbcDecrypt, cbcEncryptInto, cbcPaddedLength, hmacInto, hmacVerify } from '../crypto/cbc-hmac.js';
import { ReplayWindow } from '../crypto/replay.js';
import { dataCipher, digest as digestByName, normalizeAuthName } from './algorithms.js';
import type { AuthName, CbcCipher, DataCipherName, Digest } from '../crypto/registry.js';
import {
  DataChannelError,
  IDENTITY_FRAMING,
  countDrop,
  newDataChannelStats,
  OCC_OP,
  buildOccMessage,
  occOpcode,
} from './datachannel.js';
import type { DataChannelDropReason, DataChannelStats, PayloadFraming } from './datachannel.js';
import { checkDataKeys, sliceKey2 } from './keys.js';
import type { KeyDirection, StaticKey } from './keyfile.js';

/** OpenVPN's `cipher` default, used in static-key mode when the profile has no `cipher` line. */
export const STATIC_DEFAULT_CIPHER = 'BF-CBC';
/** packet_id (4) + net_time (4). */
export const LONG_PACKET_ID_LENGTH = 8;
const IV_LENGTH = 16;

export type P2pMode = 'static-key' | 'p2p-plain';

export interface StaticKeyChannelOptions {
  mode: P2pMode;
  /** The `secret` key (required for static-key, ignored for p2p-plain). */
  key?: StaticKey;
  /** `secret file 0|1` / `key-direction`; undefined = bidirectional (both ways keys[0]). */
  direction?: KeyDirection;
  /** `cipher` as in the profile; undefined means OpenVPN's default BF-CBC, which is refused with a hint. */
  cipher?: string;
  /** `auth` (default SHA1). */
  auth?: string;
  /** Compression framing (default identity; see compress.ts framingFor). */
  framing?: PayloadFraming;
  /** Replay window in packets (default 64). */
  replayWindow?: number;
  /** Wall-clock seconds for net_time (default: Date.now()/1000). A Clock from util/clock.ts fits. */
  clock?: { unixSeconds(): number };
}

/** Long-form replay state (packet_id.c packet_id_test/packet_id_add, without the --replay-window time part). */
export class LongFormReplay {
  private readonly window: ReplayWindow;
  private time = 0;
  constructor(size = 64) {
    this.window = new ReplayWindow(size);
  }
  /** net_time of the newest accepted packet (0 before the first). */
  get currentTime(): number {
    return this.time;
  }
  get highestId(): number {
    return this.window.highest;
  }
  /** Tests and records (call only for authenticated packets). */
  accept(id: number, time: number): 'ok' | 'duplicate' | 'too-old' | 'invalid' | 'time-backtrack' {
    if (id === 0) return 'invalid';
    if (time < this.time) return 'time-backtrack';
    if (time > this.time) {
      this.window.reset();
      this.time = time;
    }
    return this.window.accept(id);
  }
}

function unsupported(message: string): VpnError {
  return new VpnError('PROFILE_UNSUPPORTED', message);
}

/** Data channel for `secret` (static key) and plaintext p2p modes. */
export class StaticKeyChannel {
  readonly mode: P2pMode;
  /** Always 0: these modes have no key ids (kept for symmetry with DataChannelKey). */
  readonly keyId = 0;
  readonly cipherName: DataCipherName;
  readonly authName: AuthName;
  readonly stats: DataChannelStats = newDataChannelStats();
  readonly replay: LongFormReplay;
  framing: PayloadFraming;

  private readonly cbc: CbcCipher | null;
  private readonly dig: Digest | null;
  private readonly hlen: number;
  private readonly encKey: Buffer;
  private readonly decKey: Buffer;
  private readonly encMac: Buffer;
  private readonly decMac: Buffer;
  private readonly clock: { unixSeconds(): number };
  private readonly pidScratch = Buffer.alloc(LONG_PACKET_ID_LENGTH);
  private sendId = 0;
  private sendTime = 0;

  constructor(opts: StaticKeyChannelOptions) {
    this.mode = opts.mode;
    this.framing = opts.framing ?? IDENTITY_FRAMING;
    this.replay = new LongFormReplay(opts.replayWindow ?? 64);
    this.clock = opts.clock ?? { unixSeconds: () => Math.floor(Date.now() / 1000) };
    if (opts.mode === 'p2p-plain') {
      this.cipherName = 'none';
      this.authName = 'none';
      this.cbc = null;
      this.dig = null;
      this.hlen = 0;
      this.encKey = this.decKey = this.encMac = this.decMac = Buffer.alloc(0);
      return;
    }
    if (opts.mode !== 'static-key') throw new VpnError('INTERNAL', `unknown p2p mode ${String(opts.mode)}`);
    if (!opts.key) throw new VpnError('PROFILE_UNSUPPORTED', 'static-key mode needs a `secret` key');
    const cipherText = opts.cipher ?? STATIC_DEFAULT_CIPHER;
    if (cipherText.trim().toUpperCase() === STATIC_DEFAULT_CIPHER) {
      throw unsupported(
        `static-key mode: cipher BF-CBC${opts.cipher === undefined ? " (OpenVPN's default when the profile has no `cipher` line)" : ''} is not supported (Blowfish is obsolete and absent from OpenSSL 3); put \`cipher AES-256-CBC\` in the configuration of both peers`,
      );
    }
    const c = dataCipher(cipherText); // PROFILE_UNSUPPORTED with the list for unknown names
    if (c.kind === 'aead') {
      throw unsupported(
        `static-key mode: ${c.name} cannot be used with a static key (OpenVPN 2.6 refuses AEAD ciphers without TLS: "Cipher '${c.name}' mode not supported"); use AES-256-CBC`,
      );
    }
    this.cipherName = c.name;
    this.cbc = c.kind === 'cbc' ? c : null;
    const auth = normalizeAuthName(opts.auth ?? 'SHA1');
    if (auth === undefined) digestByName(opts.auth ?? ''); // throws PROFILE_UNSUPPORTED with the list
    this.authName = auth ?? 'none';
    this.dig = this.authName === 'none' ? null : digestByName(this.authName);
    this.hlen = this.dig?.size ?? 0;
    const dir = opts.direction === 0 ? 'normal' : opts.direction === 1 ? 'inverse' : 'bidirectional';
    const keys = sliceKey2(opts.key.bytes, dir);
    checkDataKeys(keys, c.name, this.authName);
    this.encKey = keys.encryptCipher.subarray(0, c.keyLength);
    this.decKey = keys.decryptCipher.subarray(0, c.keyLength);
    this.encMac = keys.encryptHmac.subarray(0, this.hlen);
    this.decMac = keys.decryptHmac.subarray(0, this.hlen);
  }

  /** Last packet id sent (0 before the first). */
  get sendPacketId(): number {
    return this.sendId;
  }

  /** Static keys are never renegotiated (the long-form id wraps with a new net_time instead). */
  get wantsRenegotiation(): boolean {
    return false;
  }

  /** Largest number of bytes encrypt() adds to a payload. */
  get overhead(): number {
    const f = this.framing.overhead;
    if (this.mode === 'p2p-plain') return f;
    if (this.cbc !== null) return f + this.hlen + IV_LENGTH + LONG_PACKET_ID_LENGTH + 16;
    return f + this.hlen + LONG_PACKET_ID_LENGTH;
  }

  /** Frames and protects one payload (IP packet, PING_MAGIC or OCC message); returns the UDP/TCP payload. */
  encrypt(payload: Uint8Array): Buffer {
    const p = this.framing.frame(payload);
    if (p.length === 0) throw new VpnError('INTERNAL', 'data channel: refusing to send an empty payload');
    let out: Buffer;
    if (this.mode === 'p2p-plain') {
      out = Buffer.from(p);
    } else {
      // long form: the id may wrap; the time then moves on (packet_id_send_update)
      if (this.sendId >= 0xffffffff) {
        this.sendId = 0;
        this.sendTime = Math.max(this.clock.unixSeconds() >>> 0, this.sendTime + 1) >>> 0;
      } else if (this.sendTime === 0) {
        this.sendTime = this.clock.unixSeconds() >>> 0;
      }
      const pid = ++this.sendId;
      const hl = this.hlen;
      if (this.cbc !== null) {
        const ctLen = cbcPaddedLength(this.cbc, LONG_PACKET_ID_LENGTH + p.length);
        out = Buffer.allocUnsafe(hl + IV_LENGTH + ctLen);
        randomFillSync(out, hl, IV_LENGTH);
        this.pidScratch.writeUInt32BE(pid, 0);
        this.pidScratch.writeUInt32BE(this.sendTime, 4);
        cbcEncryptInto(this.cbc, this.encKey, out.subarray(hl, hl + IV_LENGTH), this.pidScratch, p, out, hl + IV_LENGTH);
      } else {
        out = Buffer.allocUnsafe(hl + LONG_PACKET_ID_LENGTH + p.length);
        out.writeUInt32BE(pid, hl);
        out.writeUInt32BE(this.sendTime, hl + 4);
        out.set(p, hl + LONG_PACKET_ID_LENGTH);
      }
      if (this.dig !== null) hmacInto(this.dig, this.encMac, out.subarray(hl), out, 0);
    }
    this.stats.packetsOut++;
    this.stats.bytesOut += out.length;
    return out;
  }

  /**
   * Verifies, decrypts, replay-checks and unframes one received packet. Returns the payload (maybe a ping
   * or an OCC message). Throws DataChannelError (reasons short/auth/decrypt/replay, counted in stats) or
   * the framing's WireError.
   */
  decrypt(wire: Buffer): Buffer {
    if (this.mode === 'p2p-plain') {
      if (wire.length === 0) throw this.drop('short', 'empty packet');
      this.stats.packetsIn++;
      this.stats.bytesIn += wire.length;
      return this.framing.unframe(wire);
    }
    const hl = this.hlen;
    let pt: Buffer;
    if (this.cbc !== null) {
      const ctLen = wire.length - hl - IV_LENGTH;
      if (ctLen < 16) throw this.drop('short', `static-key packet too short (${wire.length} bytes)`);
      if (this.dig !== null && !hmacVerify(this.dig, this.decMac, wire.subarray(hl), wire.subarray(0, hl))) {
        throw this.drop('auth', 'HMAC check failed (check the key, key-direction and --auth)');
      }
      if (ctLen % 16 !== 0) throw this.drop('decrypt', 'CBC ciphertext is not a whole number of blocks');
      const d = cbcDecrypt(this.cbc, this.decKey, wire.subarray(hl, hl + IV_LENGTH), wire.subarray(hl + IV_LENGTH));
      if (d === null) throw this.drop('decrypt', 'bad CBC padding (check the key, key-direction and --cipher)');
      if (d.length < LONG_PACKET_ID_LENGTH) throw this.drop('decrypt', 'plaintext has no packet id');
      pt = d;
    } else {
      if (wire.length < hl + LONG_PACKET_ID_LENGTH) throw this.drop('short', `static-key packet too short (${wire.length} bytes)`);
      if (this.dig !== null && !hmacVerify(this.dig, this.decMac, wire.subarray(hl), wire.subarray(0, hl))) {
        throw this.drop('auth', 'HMAC check failed (check the key, key-direction and --auth)');
      }
      pt = wire.subarray(hl);
    }
    const pid = pt.readUInt32BE(0);
    const time = pt.readUInt32BE(4);
    const verdict = this.replay.accept(pid, time);
    if (verdict !== 'ok') throw this.drop('replay', `packet id ${pid} (time ${time}) rejected: ${verdict}`);
    this.stats.packetsIn++;
    this.stats.bytesIn += wire.length;
    return this.framing.unframe(pt.subarray(LONG_PACKET_ID_LENGTH));
  }

  private drop(reason: DataChannelDropReason, message: string): DataChannelError {
    return countDrop(this.stats, reason, message);
  }
}

export interface P2pOccOptions {
  mode: P2pMode;
  devType?: 'tun' | 'null';
  tunMtu?: number;
  /** Informational; default tunMtu + this channel's overhead-ish constant. */
  linkMtu?: number;
  proto?: 'UDPv4' | 'TCPv4_CLIENT' | 'TCPv4_SERVER' | 'UDPv6';
  /** Any compression framing (compress.ts occHasCompLzo). */
  compLzo?: boolean;
  direction?: KeyDirection;
  cipher?: string;
  auth?: string;
}

/**
 * OCC options string of a p2p peer (options.c options_string), e.g. from OpenVPN 2.6.14:
 *   plain:  "V4,dev-type null,link-mtu 1500,tun-mtu 1500,proto UDPv4"
 *   static: "V4,dev-type null,link-mtu 1509,tun-mtu 1500,proto UDPv4,comp-lzo,cipher [null-cipher],auth [null-digest],keysize 0,secret"
 * Peers compare it only for warnings, so the link-mtu is approximate.
 */
export function p2pOccOptionsString(o: P2pOccOptions): string {
  const tunMtu = o.tunMtu ?? 1500;
  const parts = ['V4', `dev-type ${o.devType ?? 'tun'}`];
  if (o.mode === 'p2p-plain') {
    parts.push(`link-mtu ${o.linkMtu ?? tunMtu + (o.compLzo ? 1 : 0)}`, `tun-mtu ${tunMtu}`, `proto ${o.proto ?? 'UDPv4'}`);
    if (o.compLzo) parts.push('comp-lzo');
    return parts.join(',');
  }
  const cipher = o.cipher ?? STATIC_DEFAULT_CIPHER;
  const c = cipher.toLowerCase() === 'none' ? null : dataCipher(cipher);
  const auth = normalizeAuthName(o.auth ?? 'SHA1') ?? 'none';
  parts.push(`link-mtu ${o.linkMtu ?? tunMtu + 41}`, `tun-mtu ${tunMtu}`, `proto ${o.proto ?? 'UDPv4'}`);
  if (o.compLzo) parts.push('comp-lzo');
  if (o.direction !== undefined) parts.push(`keydir ${o.direction}`);
  parts.push(`cipher ${c === null ? '[null-cipher]' : c.name}`);
  parts.push(`auth ${auth === 'none' ? '[null-digest]' : auth}`);
  parts.push(`keysize ${c === null ? 0 : c.keyLength * 8}`, 'secret');
  return parts.join(',');
}

/**
 * If `payload` (already decrypted and unframed) is an OCC_REQUEST, the OCC_REPLY payload to send back
 * (pass it to encrypt()); otherwise null. OpenVPN p2p peers send OCC_REQUEST every 10 s (up to 12 times)
 * until they get a reply; a missing reply only produces a log note on their side.
 */
export function occResponse(payload: Uint8Array, optionsString: string): Buffer | null {
  if (occOpcode(payload) !== OCC_OP.REQUEST) return null;
  return buildOccMessage(OCC_OP.REPLY, Buffer.from(optionsString + '\0', 'latin1'));
}

/** The bits of a parsed profile this module needs (OpenVpnProfile fits). */
export interface P2pProfileLike {
  mode: 'tls-client' | P2pMode;
  secret?: { key: StaticKey; direction: KeyDirection };
  keyDirection?: KeyDirection;
  cipher?: string;
  auth: string;
  replayWindow?: { size: number };
}

/** StaticKeyChannel for a static-key or p2p-plain profile. Throws VpnError PROFILE_UNSUPPORTED otherwise. */
export function staticKeyChannelFromProfile(
  profile: P2pProfileLike,
  extra: { framing?: PayloadFraming; clock?: { unixSeconds(): number } } = {},
): StaticKeyChannel {
  if (profile.mode === 'tls-client') throw new VpnError('INTERNAL', 'staticKeyChannelFromProfile: a TLS profile has no static data channel');
  const opts: StaticKeyChannelOptions = {
    mode: profile.mode,
    auth: profile.auth,
    replayWindow: profile.replayWindow?.size ?? 64,
  };
  if (profile.secret) {
    opts.key = profile.secret.key;
    // `secret file N` wins; an inline <secret> takes the global key-direction
    opts.direction = profile.secret.direction ?? profile.keyDirection;
  }
  if (profile.cipher !== undefined) opts.cipher = profile.cipher;
  if (extra.framing) opts.framing = extra.framing;
  if (extra.clock) opts.clock = extra.clock;
  return new StaticKeyChannel(opts);
}
