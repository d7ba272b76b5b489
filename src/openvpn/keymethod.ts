/**
 * Key-method-2 message (openvpn.md §3.2), the OCC options string (§3.3) and peer-info (§3.4).
 *
 * Layout, client → server:
 *   u32 0 | u8 2 | pre_master[48] @5 | random1[32] @53 | random2[32] @85 | options @117 | username | password | peer_info
 * server → client: the same without pre_master (random1 @5, random2 @37, options @69).
 * Strings: u16 length INCLUDING the trailing NUL, then the bytes; an empty/absent string is u16 0 and no bytes.
 */
import { randomBytes } from 'node:crypto';
import { VpnError, WireError } from '../errors.js';

export const KEY_METHOD_2 = 2;
/** Reader check in 2.6: (byte & KEY_METHOD_MASK) === 2; the high bits are flags. */
export const KEY_METHOD_MASK = 0x0f;
/** TLS_OPTIONS_LEN: the options string incl. its NUL must fit. */
export const TLS_OPTIONS_LEN = 512;

export const KM_OFFSETS = {
  client: { method: 4, preMaster: 5, random1: 53, random2: 85, options: 117 },
  server: { method: 4, random1: 5, random2: 37, options: 69 },
} as const;

export interface KeyMethod2Message {
  /** 48 bytes, client messages only. */
  preMaster?: Uint8Array;
  random1: Uint8Array;
  random2: Uint8Array;
  /** OCC options string (without NUL). */
  options: string;
  /** '' or undefined → empty string (u16 0). */
  username?: string;
  password?: string;
  /** Newline-terminated KEY=VALUE lines; '' → empty. */
  peerInfo?: string;
}

/** Fresh random key source for a client message. */
export function newClientKeySource(): { preMaster: Buffer; random1: Buffer; random2: Buffer } {
  const b = randomBytes(112);
  return { preMaster: b.subarray(0, 48), random1: b.subarray(48, 80), random2: b.subarray(80, 112) };
}

function encodedString(s: string | undefined, what: string): Buffer | null {
  if (s === undefined || s === '') return null;
  if (s.includes('\0')) throw new VpnError('INTERNAL', `key-method-2 ${what} must not contain NUL`);
  const b = Buffer.from(s, 'utf8');
  if (b.length + 1 > 0xffff) throw new VpnError('INTERNAL', `key-method-2 ${what} too long (${b.length} bytes)`);
  return b;
}

/**
 * Encodes a key-method-2 message. With `preMaster` (48 bytes) it is the client form, without it the
 * server form. Send the result as one TLS write on its own.
 */
export function encodeKeyMethod2(msg: KeyMethod2Message): Buffer {
  const isClient = msg.preMaster !== undefined;
  if (isClient && msg.preMaster!.length !== 48) throw new VpnError('INTERNAL', 'pre_master must be 48 bytes');
  if (msg.random1.length !== 32 || msg.random2.length !== 32) throw new VpnError('INTERNAL', 'randoms must be 32 bytes');
  const opts = encodedString(msg.options, 'options');
  if (opts !== null && opts.length + 1 > TLS_OPTIONS_LEN) {
    throw new VpnError('INTERNAL', `OCC options string too long (${opts.length + 1} > ${TLS_OPTIONS_LEN})`);
  }
  const strs = [opts, encodedString(msg.username, 'username'), encodedString(msg.password, 'password'), encodedString(msg.peerInfo, 'peer-info')];
  let len = 5 + (isClient ? 48 : 0) + 64;
  for (const s of strs) len += 2 + (s === null ? 0 : s.length + 1);
  const out = Buffer.alloc(len); // zeroed: gives the leading u32 0 and the NULs
  out[4] = KEY_METHOD_2;
  let off = 5;
  if (isClient) {
    out.set(msg.preMaster!, off);
    off += 48;
  }
  out.set(msg.random1, off);
  off += 32;
  out.set(msg.random2, off);
  off += 32;
  for (const s of strs) {
    if (s === null) {
      off += 2; // u16 0
    } else {
      out.writeUInt16BE(s.length + 1, off);
      s.copy(out, off + 2);
      off += 2 + s.length + 1;
    }
  }
  return out;
}

/** Client message: preMaster required. */
export function encodeClientKeyMethod2(msg: KeyMethod2Message & { preMaster: Uint8Array }): Buffer {
  return encodeKeyMethod2(msg);
}

export interface DecodedKeyMethod2 {
  message: KeyMethod2Message;
  /** Bytes of the key-method message. */
  consumed: number;
  /** What followed it in the same chunk (e.g. "PUSH_REPLY,...\0"), as a view. */
  rest: Buffer;
}

/** Reads one u16-length string; returns [value, next offset]. Value is cut at the first NUL (C semantics). */
function readString(buf: Buffer, off: number, field: string, max: number, required: boolean): [string, number] {
  if (off + 2 > buf.length) throw new WireError('key-method-2 message truncated', field, off);
  const len = buf.readUInt16BE(off);
  if (len === 0) {
    if (required) throw new WireError('key-method-2 required string is empty', field, off);
    return ['', off + 2];
  }
  if (len > max) throw new WireError(`key-method-2 string too long (${len} > ${max})`, field, off);
  if (off + 2 + len > buf.length) throw new WireError('key-method-2 string truncated', field, off);
  const raw = buf.subarray(off + 2, off + 2 + len);
  const nul = raw.indexOf(0);
  return [raw.toString('utf8', 0, nul < 0 ? len : nul), off + 2 + len];
}

export interface DecodeKeyMethod2Options {
  /** true: expect pre_master (decoding what a client sent). Default false (server message). */
  fromClient?: boolean;
  /** Cap for username/password/peer-info lengths (default 65535). */
  maxStringLength?: number;
}

/**
 * Decodes a key-method-2 message from the start of `buf` (throws WireError only).
 * The options string is required. Username, password and peer-info follow; a 2.6 server always sends
 * all three (empty = 00 00), but if the chunk ends right after the options string or between these
 * strings, the missing ones are taken as empty. Anything after the message is returned in `rest`
 * (the server's first control string, NUL-terminated, may arrive glued to it).
 */
export function decodeKeyMethod2(buf: Buffer, opts: DecodeKeyMethod2Options = {}): DecodedKeyMethod2 {
  const fromClient = opts.fromClient ?? false;
  const max = opts.maxStringLength ?? 0xffff;
  const fixed = 5 + (fromClient ? 48 : 0) + 64;
  if (buf.length < fixed) throw new WireError(`key-method-2 message too short (${buf.length} < ${fixed})`, 'header', 0);
  if (buf.readUInt32BE(0) !== 0) throw new WireError('key-method-2 message must start with 4 zero bytes', 'literal0', 0);
  if ((buf[4]! & KEY_METHOD_MASK) !== KEY_METHOD_2) {
    throw new WireError(`unsupported key method ${buf[4]! & KEY_METHOD_MASK}`, 'keyMethod', 4);
  }
  let off = 5;
  const message: KeyMethod2Message = { random1: Buffer.alloc(0), random2: Buffer.alloc(0), options: '' };
  if (fromClient) {
    message.preMaster = Buffer.from(buf.subarray(off, off + 48));
    off += 48;
  }
  message.random1 = Buffer.from(buf.subarray(off, off + 32));
  message.random2 = Buffer.from(buf.subarray(off + 32, off + 64));
  off += 64;
  [message.options, off] = readString(buf, off, 'options', TLS_OPTIONS_LEN, true);
  const tail: ['username' | 'password' | 'peerInfo', string][] = [
    ['username', 'username'],
    ['password', 'password'],
    ['peerInfo', 'peer_info'],
  ];
  for (const [key, field] of tail) {
    if (off === buf.length) break;
    let v: string;
    [v, off] = readString(buf, off, field, max, false);
    message[key] = v;
  }
  return { message, consumed: off, rest: buf.subarray(off) };
}

/** Server message (no pre_master), see decodeKeyMethod2. */
export function decodeServerKeyMethod2(buf: Buffer): DecodedKeyMethod2 {
  return decodeKeyMethod2(buf, { fromClient: false });
}

// ---------------------------------------------------------------------------------------------------
// OCC options string (§3.3)

export interface OccOptions {
  devType?: 'tun' | 'tap';
  /** Illustrative; 2.6 servers only compare it at verb 7. Default tunMtu + 21. */
  linkMtu?: number;
  tunMtu?: number;
  /** 'UDPv4' for UDP, 'TCPv4_CLIENT' for TCP (2.6 writes v4 in either address family). */
  proto?: 'UDPv4' | 'TCPv4_CLIENT' | 'UDPv6' | 'TCPv6_CLIENT';
  /** Any compression framing configured → ",comp-lzo". */
  compLzo?: boolean;
  /** Key direction when one is configured (tls-auth). */
  keyDirection?: 0 | 1;
  /** Only when `--cipher` is set and in data-ciphers ("poor man's NCP"); 'none' → "[null-cipher]". */
  cipher?: string;
  /** --auth digest (default 'SHA1'); 'none' → "[null-digest]". */
  auth?: string;
  /** Key size in bits (default 128: 2.6's BF-CBC fallback when no --cipher is given). */
  keysize?: number;
  tlsAuth?: boolean;
}

/** "V4,dev-type tun,link-mtu 1521,tun-mtu 1500,proto UDPv4,[comp-lzo,][keydir N,][cipher X,]auth SHA1,keysize 128,[tls-auth,]key-method 2,tls-client" */
export function buildOccOptionsString(o: OccOptions = {}): string {
  const tunMtu = o.tunMtu ?? 1500;
  const parts = ['V4', `dev-type ${o.devType ?? 'tun'}`, `link-mtu ${o.linkMtu ?? tunMtu + 21}`, `tun-mtu ${tunMtu}`, `proto ${o.proto ?? 'UDPv4'}`];
  if (o.compLzo) parts.push('comp-lzo');
  if (o.keyDirection !== undefined) parts.push(`keydir ${o.keyDirection}`);
  if (o.cipher !== undefined) parts.push(`cipher ${o.cipher.toLowerCase() === 'none' ? '[null-cipher]' : o.cipher}`);
  const auth = o.auth ?? 'SHA1';
  parts.push(`auth ${auth.toLowerCase() === 'none' ? '[null-digest]' : auth}`);
  parts.push(`keysize ${o.keysize ?? 128}`);
  if (o.tlsAuth) parts.push('tls-auth');
  parts.push('key-method 2', 'tls-client');
  return parts.join(',');
}

// ---------------------------------------------------------------------------------------------------
// peer-info (§3.4)

/** IV_PROTO bits (ssl.h). */
export const IV_PROTO = {
  /** Bit 0: reserved; old servers tested IV_PROTO >= 2. */
  RESERVED: 1,
  DATA_V2: 2,
  REQUEST_PUSH: 4,
  TLS_KEY_EXPORT: 8,
  AUTH_PENDING_KW: 16,
  /** p2p NCP: a pull client must NOT set it. */
  NCP_P2P: 32,
  DNS_OPTION: 64,
  CC_EXIT_NOTIFY: 128,
  AUTH_FAIL_TEMP: 256,
  DYN_TLS_CRYPT: 512,
  DATA_EPOCH: 1024,
  DNS_OPTION_V2: 2048,
  PUSH_UPDATE: 4096,
} as const;

/** What our first version announces: DATA_V2 | REQUEST_PUSH | TLS_KEY_EXPORT | AUTH_PENDING_KW = 30. */
export const DEFAULT_IV_PROTO = IV_PROTO.DATA_V2 | IV_PROTO.REQUEST_PUSH | IV_PROTO.TLS_KEY_EXPORT | IV_PROTO.AUTH_PENDING_KW;

export const DEFAULT_IV_CIPHERS = ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'] as const;

export interface PeerInfoOptions {
  /** IV_VER (default '2.6.14'). */
  version?: string;
  /** IV_PLAT (default 'linux'). */
  platform?: string;
  /** IV_TCPNL=1 (default true). */
  tcpNl?: boolean;
  /** IV_MTU (default 1600). */
  mtu?: number;
  /** IV_CIPHERS in preference order; IV_NCP=2 is added when AES-128-GCM and AES-256-GCM are both in it. */
  ciphers?: readonly string[];
  /** IV_PROTO bit set (default DEFAULT_IV_PROTO). */
  proto?: number;
  /** IV_LZO_STUB=1, IV_COMP_STUB=1, IV_COMP_STUBv2=1 (default true). */
  compStubs?: boolean;
  /** IV_GUI_VER, e.g. 'vpnproxy_0.1.0'. */
  guiVersion?: string;
  /** IV_SSO, e.g. 'webauth,crtext' (only when pending auth is implemented). */
  sso?: string;
  /** Extra lines (e.g. UV_* with push-peer-info), appended in order. */
  extra?: readonly (readonly [string, string])[];
}

/** Newline-terminated KEY=VALUE lines. Throws VpnError INTERNAL for values with newlines or bad keys. */
export function buildPeerInfo(o: PeerInfoOptions = {}): string {
  const lines: [string, string][] = [];
  const add = (k: string, v: string | number) => lines.push([k, String(v)]);
  add('IV_VER', o.version ?? '2.6.14');
  add('IV_PLAT', o.platform ?? 'linux');
  if (o.tcpNl ?? true) add('IV_TCPNL', 1);
  add('IV_MTU', o.mtu ?? 1600);
  const ciphers = o.ciphers ?? DEFAULT_IV_CIPHERS;
  const upper = ciphers.map((c) => c.toUpperCase());
  if (upper.includes('AES-128-GCM') && upper.includes('AES-256-GCM')) add('IV_NCP', 2);
  if (ciphers.length > 0) add('IV_CIPHERS', ciphers.join(':'));
  const proto = o.proto ?? DEFAULT_IV_PROTO;
  if (proto & IV_PROTO.NCP_P2P) throw new VpnError('INTERNAL', 'IV_PROTO_NCP_P2P must not be announced by a pull client');
  if (proto !== 0 && !(proto & IV_PROTO.DATA_V2)) throw new VpnError('INTERNAL', 'IV_PROTO bits require DATA_V2 (bit 1)');
  add('IV_PROTO', proto);
  if (o.compStubs ?? true) {
    add('IV_LZO_STUB', 1);
    add('IV_COMP_STUB', 1);
    add('IV_COMP_STUBv2', 1);
  }
  if (o.guiVersion !== undefined) add('IV_GUI_VER', o.guiVersion);
  if (o.sso !== undefined) add('IV_SSO', o.sso);
  for (const [k, v] of o.extra ?? []) add(k, v);
  let out = '';
  for (const [k, v] of lines) {
    if (!/^[A-Za-z0-9_]+$/.test(k)) throw new VpnError('INTERNAL', `bad peer-info key "${k}"`);
    if (/[\n\r\0]/.test(v)) throw new VpnError('INTERNAL', `peer-info value for ${k} contains a newline or NUL`);
    out += `${k}=${v}\n`;
  }
  return out;
}

/** Parses peer-info lines into a map (for tests and a fake server). Later duplicates win. */
export function parsePeerInfo(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of s.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return m;
}
