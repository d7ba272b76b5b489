/**
 * OpenVPN key files (openvpn.md §2.1, §2.5):
 *
 * - "OpenVPN Static key V1": used by `secret`, `tls-auth` and `tls-crypt`. Only hex digits between the
 *   BEGIN and END lines count (whitespace is skipped, anything else is an error, text outside is ignored);
 *   256 bytes = two `{ cipher[64], hmac[64] }` keys (the "key2" layout).
 * - "OpenVPN tls-crypt-v2 client key": base64 of Kc (256 bytes, key2 layout) followed by WKc (the
 *   server-wrapped client key, sent to the server as-is; its last two bytes are its own length).
 *
 * Errors are VpnError('PROFILE_SYNTAX') naming `where` (file:line of the block or file reference).
 */
import { VpnError } from '../errors.js';

export const STATIC_KEY_BYTES = 256;
/** `MAX_CIPHER_KEY_LENGTH` / `MAX_HMAC_KEY_LENGTH`: each half of a key2 entry is 64 bytes. */
export const KEY_SLOT_BYTES = 64;
/** `TLS_CRYPT_V2_MAX_WKC_LEN`. */
export const TLS_CRYPT_V2_MAX_WKC_LEN = 1024;
/** Tag (32) + encrypted Kc (256) + length (2); metadata comes on top. */
export const TLS_CRYPT_V2_MIN_WKC_LEN = 32 + 256 + 2;

const STATIC_HEAD = '-----BEGIN OpenVPN Static key V1-----';
const STATIC_FOOT = '-----END OpenVPN Static key V1-----';
const V2_HEAD = '-----BEGIN OpenVPN tls-crypt-v2 client key-----';
const V2_FOOT = '-----END OpenVPN tls-crypt-v2 client key-----';

export type KeyIndex = 0 | 1;
export type KeyPart = 'cipher' | 'hmac';
/** `key-direction`: 0 = NORMAL, 1 = INVERSE, undefined = BIDIRECTIONAL. */
export type KeyDirection = 0 | 1 | undefined;

/** Byte offset of `keys[index].part` in the 256-byte key2 block. */
export function key2Offset(index: KeyIndex, part: KeyPart): number {
  return index * 128 + (part === 'hmac' ? KEY_SLOT_BYTES : 0);
}

/** The 256 bytes of a static key (or Kc) with the key2 slicing helpers. */
export class StaticKey {
  /** Exactly 256 bytes. */
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    if (bytes.length !== STATIC_KEY_BYTES) throw new VpnError('INTERNAL', `static key must be 256 bytes, got ${bytes.length}`);
    this.bytes = bytes;
  }
  /** First `length` bytes (≤ 64) of `keys[index].part`. Returns a view (no copy). */
  slice(index: KeyIndex, part: KeyPart, length: number): Uint8Array {
    if (!Number.isInteger(length) || length < 0 || length > KEY_SLOT_BYTES) {
      throw new VpnError('INTERNAL', `key slice length ${length} out of range 0..64`);
    }
    const off = key2Offset(index, part);
    return this.bytes.subarray(off, off + length);
  }
  /**
   * Which key2 entry to use for sending and for receiving under a key direction (§2.1):
   * none → both 0; 0 (NORMAL) → send 0 / receive 1; 1 (INVERSE) → send 1 / receive 0.
   * tls-crypt(-v2) clients always use direction 1.
   */
  static directionIndexes(direction: KeyDirection): { send: KeyIndex; receive: KeyIndex } {
    if (direction === 0) return { send: 0, receive: 1 };
    if (direction === 1) return { send: 1, receive: 0 };
    return { send: 0, receive: 0 };
  }
  /** The send/receive slices for a direction, first `cipherLen` / `hmacLen` bytes of each. */
  directional(direction: KeyDirection, cipherLen: number, hmacLen: number): {
    sendCipher: Uint8Array;
    sendHmac: Uint8Array;
    receiveCipher: Uint8Array;
    receiveHmac: Uint8Array;
  } {
    const { send, receive } = StaticKey.directionIndexes(direction);
    return {
      sendCipher: this.slice(send, 'cipher', cipherLen),
      sendHmac: this.slice(send, 'hmac', hmacLen),
      receiveCipher: this.slice(receive, 'cipher', cipherLen),
      receiveHmac: this.slice(receive, 'hmac', hmacLen),
    };
  }
}

/** tls-crypt-v2 client key: Kc (used exactly like a tls-crypt key, client = direction 1) and opaque WKc. */
export interface TlsCryptV2ClientKey {
  kc: StaticKey;
  /** Sent verbatim after the HARD_RESET_CLIENT_V3 / P_CONTROL_WKC_V1 packet. */
  wkc: Uint8Array;
}

function syntax(where: string, msg: string): VpnError {
  return new VpnError('PROFILE_SYNTAX', `${where}: ${msg}`);
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/**
 * Parse an "OpenVPN Static key V1" block. Leading/trailing whitespace around the BEGIN/END lines is
 * tolerated (inline blocks are often indented); inside, hex digits count and whitespace is skipped.
 * Requires exactly 256 bytes of key material (extra hex after 256 bytes is ignored, as OpenVPN does).
 * @param where e.g. `profile.ovpn:42` for messages.
 */
export function parseStaticKey(text: string, where = 'static key'): StaticKey {
  const lines = text.split('\n').map((l) => l.trim());
  const head = lines.indexOf(STATIC_HEAD);
  if (head < 0) {
    throw syntax(where, `no '${STATIC_HEAD}' line: not an OpenVPN static key (generate one with 'openvpn --genkey secret')`);
  }
  let foot = -1;
  for (let i = head + 1; i < lines.length; i++) {
    if (lines[i]!.startsWith('-')) {
      foot = i;
      break;
    }
  }
  if (foot < 0 || lines[foot] !== STATIC_FOOT) throw syntax(where, `static key: '${STATIC_FOOT}' line not found`);
  const out = new Uint8Array(STATIC_KEY_BYTES);
  let count = 0;
  let hi = -1;
  for (let i = head + 1; i < foot && count < STATIC_KEY_BYTES; i++) {
    const l = lines[i]!;
    for (let j = 0; j < l.length && count < STATIC_KEY_BYTES; j++) {
      const c = l.charCodeAt(j);
      if (isHex(c)) {
        const v = parseInt(l[j]!, 16);
        if (hi < 0) hi = v;
        else {
          out[count++] = (hi << 4) | v;
          hi = -1;
        }
      } else if (c === 32 || c === 9 || c === 13 || c === 11 || c === 12) {
        // whitespace inside the key is ignored
      } else {
        throw syntax(where, `static key: unexpected character ${JSON.stringify(l[j])} in key data (line ${i - head} of the key)`);
      }
    }
  }
  if (count !== STATIC_KEY_BYTES) {
    throw syntax(where, `static key has ${count} bytes of key material, expected ${STATIC_KEY_BYTES}`);
  }
  return new StaticKey(out);
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Parse an "OpenVPN tls-crypt-v2 client key" PEM block into Kc and WKc, checking WKc's length trailer. */
export function parseTlsCryptV2ClientKey(text: string, where = 'tls-crypt-v2 key'): TlsCryptV2ClientKey {
  const lines = text.split('\n').map((l) => l.trim());
  const head = lines.indexOf(V2_HEAD);
  if (head < 0) {
    if (lines.includes('-----BEGIN OpenVPN tls-crypt-v2 server key-----')) {
      throw syntax(where, 'this is the tls-crypt-v2 *server* key; the client needs its own client key (openvpn --tls-crypt-v2 server.key --genkey tls-crypt-v2-client client.key)');
    }
    throw syntax(where, `no '${V2_HEAD}' line: not a tls-crypt-v2 client key`);
  }
  const foot = lines.indexOf(V2_FOOT, head + 1);
  if (foot < 0) throw syntax(where, `tls-crypt-v2 client key: '${V2_FOOT}' line not found`);
  const b64 = lines.slice(head + 1, foot).join('').replace(/[\s]/g, '');
  if (!B64_RE.test(b64) || b64.length % 4 !== 0) throw syntax(where, 'tls-crypt-v2 client key: invalid base64');
  const raw = new Uint8Array(Buffer.from(b64, 'base64'));
  if (raw.length < STATIC_KEY_BYTES + TLS_CRYPT_V2_MIN_WKC_LEN) {
    throw syntax(where, `tls-crypt-v2 client key is ${raw.length} bytes, too short (need 256 bytes Kc + at least ${TLS_CRYPT_V2_MIN_WKC_LEN} bytes WKc)`);
  }
  const wkc = raw.slice(STATIC_KEY_BYTES);
  if (wkc.length > TLS_CRYPT_V2_MAX_WKC_LEN) {
    throw syntax(where, `tls-crypt-v2 client key: wrapped key is ${wkc.length} bytes, more than ${TLS_CRYPT_V2_MAX_WKC_LEN}`);
  }
  const trailer = (wkc[wkc.length - 2]! << 8) | wkc[wkc.length - 1]!;
  if (trailer !== wkc.length) {
    throw syntax(where, `tls-crypt-v2 client key: wrapped key length field says ${trailer} but the wrapped key is ${wkc.length} bytes (corrupt key)`);
  }
  return { kc: new StaticKey(raw.slice(0, STATIC_KEY_BYTES)), wkc };
}

/** Render 256 bytes as an "OpenVPN Static key V1" file (16 lines of 32 hex digits), e.g. for tests. */
export function formatStaticKey(bytes: Uint8Array): string {
  if (bytes.length !== STATIC_KEY_BYTES) throw new VpnError('INTERNAL', 'static key must be 256 bytes');
  const hex = Buffer.from(bytes).toString('hex');
  const rows: string[] = ['#', '# 2048 bit OpenVPN static key', '#', STATIC_HEAD];
  for (let i = 0; i < hex.length; i += 32) rows.push(hex.slice(i, i + 32));
  rows.push(STATIC_FOOT, '');
  return rows.join('\n');
}

/** Render Kc || WKc as a tls-crypt-v2 client key file (64-column base64), e.g. for tests. */
export function formatTlsCryptV2ClientKey(key: TlsCryptV2ClientKey): string {
  const b64 = Buffer.concat([Buffer.from(key.kc.bytes), Buffer.from(key.wkc)]).toString('base64');
  const rows = [V2_HEAD];
  for (let i = 0; i < b64.length; i += 64) rows.push(b64.slice(i, i + 64));
  rows.push(V2_FOOT, '');
  return rows.join('\n');
}
