/**
 * IPsec configuration: swanctl.conf as strongSwan's `swanctl` reads it (connections, secrets,
 * authorities, with the x509/, x509ca/, private/ … layout beside the file), plus our own `manual`
 * section for ESP security associations keyed by hand (issue 12). `.sswan` profiles are read by
 * sswan.ts into the same model.
 *
 * Policy, as for OpenVPN profiles:
 * - settings we implement become typed fields with strongSwan's documented defaults;
 * - settings that do not matter to a userspace client (kernel policy details, updown scripts, pools of
 *   a responder…) are listed in `config.warnings` (`file:line: … ignored: why`);
 * - settings we know but cannot honour without changing what the user asked for (IKEv1, AH, transport
 *   mode, IPComp, PKCS#11 tokens…) throw VpnError('PROFILE_UNSUPPORTED');
 * - unknown settings and malformed values throw VpnError('PROFILE_SYNTAX'); unreadable files
 *   VpnError('PROFILE_FILE'). Every message is one line, `file:line: what is wrong`.
 *
 * Referenced files (certificates, keys) are resolved to absolute paths here but not read; secrets
 * (PSKs, EAP passwords) are decoded (`0x` hex, `0s` base64, else the string itself).
 */
import { readFile } from 'node:fs/promises';
import { isIP, isIPv4 } from 'node:net';
import nodePath from 'node:path';
import { ESP_SUITES, type EspSuite } from '../crypto/ipsec-algorithms.js';
import { VpnError } from '../errors.js';
import { oneLine, parseSettings, type IncludeReader, type SettingsSection, type SettingsValue } from './settings.js';
import { fileErrorText } from '../util/fs-error.js';

// ====================================================================================================
// ESP suites for manual SAs: the crypto registry's IPsec view (re-exported for the importers of this module)
// ====================================================================================================

export { ESP_SUITES, type EspSuite };

/** EAP methods our IKEv2 client implements (strongSwan's names, as in `auth = eap-NAME`). */
export const SUPPORTED_EAP_METHODS: readonly string[] = ['mschapv2'];
/** EAP methods strongSwan knows; those not in SUPPORTED_EAP_METHODS are PROFILE_UNSUPPORTED. */
const KNOWN_EAP_METHODS = new Set(['md5', 'gtc', 'otp', 'mschapv2', 'tls', 'ttls', 'peap', 'tnc', 'ptls', 'sim', 'aka', "aka'", 'identity', 'radius', 'dynamic']);
const PUBKEY_WORDS = new Set(['pubkey', 'rsa', 'rsa/pss', 'ecdsa', 'ed25519', 'ed448', 'bliss']);

// ====================================================================================================
// Model
// ====================================================================================================

/** Where the credential directories are (swanctl's layout beside the configuration file). */
export interface SwanctlDirs {
  readonly base: string;
  readonly x509: string;
  readonly x509ca: string;
  readonly private: string;
  readonly rsa: string;
  readonly ecdsa: string;
  readonly pkcs8: string;
  readonly pkcs12: string;
}

/** A certificate: a file (absolute path) or, from a .sswan profile, the bytes themselves (DER or PEM). */
export type CertSource = { readonly file: string } | { readonly data: Uint8Array; readonly label: string };

export type AuthMethod = 'pubkey' | 'psk' | 'eap';

/** One authentication round (`local`, `local-2`, `remote`, …), sorted by `round` then by position. */
export interface AuthRound {
  readonly section: string;
  readonly where: string;
  readonly round: number;
  readonly auth: AuthMethod;
  /** The `auth` value as written (e.g. `pubkey-sha256`, `eap-mschapv2`). */
  readonly authRaw: string;
  /** For `eap-METHOD`: METHOD (e.g. 'mschapv2'); undefined for plain `eap` (whatever the server asks). */
  readonly eapMethod?: string;
  /** Signature/trust-chain constraints after the method (`rsa/pss`, `sha256`, `ike:pubkey-sha384` …). */
  readonly constraints: readonly string[];
  /** IKE identity; undefined = strongSwan's default (local: certificate subject or address; remote: %any). */
  readonly id?: string;
  readonly eapId?: string;
  readonly aaaId?: string;
  readonly caId?: string;
  readonly certs: readonly CertSource[];
  readonly cacerts: readonly CertSource[];
  readonly revocation: 'strict' | 'ifuri' | 'relaxed';
}

export interface TrafficSelector {
  readonly raw: string;
  readonly kind: 'dynamic' | 'subnet' | 'range';
  readonly family?: 4 | 6;
  /** subnet: the address as written and its prefix length. */
  readonly address?: string;
  readonly prefix?: number;
  /** range: first and last address. */
  readonly from?: string;
  readonly to?: string;
  /** IP protocol number; undefined = any. */
  readonly protocol?: number;
  readonly ports?: { readonly from: number; readonly to: number } | 'opaque';
}

/** rekey (soft), life (hard) and rand (jitter subtracted from rekey); 0 = disabled. */
export interface LifetimeTriple {
  readonly rekey: number;
  readonly life: number;
  readonly rand: number;
}

export interface ChildConfig {
  readonly name: string;
  readonly where: string;
  readonly localTs: readonly TrafficSelector[];
  readonly remoteTs: readonly TrafficSelector[];
  readonly espProposals: readonly string[];
  readonly mode: 'tunnel';
  readonly lifetime: { readonly time: LifetimeTriple; readonly bytes: LifetimeTriple; readonly packets: LifetimeTriple };
  readonly startAction: 'none' | 'start' | 'trap';
  readonly dpdAction: 'none' | 'clear' | 'trap' | 'restart' | 'start';
  readonly closeAction: 'none' | 'clear' | 'trap' | 'restart' | 'start';
  readonly replayWindow: number;
  readonly inactivity: number;
  readonly tfcPadding: number | 'mtu';
}

/** Client-side options only a .sswan profile can express. */
export interface ClientExtras {
  readonly sswan?: { readonly uuid: string; readonly type: string; readonly name: string };
  readonly mtu?: number;
  readonly natKeepalive?: number;
  readonly dnsServers?: readonly string[];
  readonly excludedSubnets?: readonly TrafficSelector[];
  readonly blockIpv4?: boolean;
  readonly blockIpv6?: boolean;
  readonly revocationSources?: { readonly crl: boolean; readonly ocsp: boolean };
}

export interface IkeConnection {
  readonly kind: 'ike';
  readonly name: string;
  readonly where: string;
  /** 2, or 0 (strongSwan: initiate with IKEv2). */
  readonly version: 0 | 2;
  readonly localAddrs: readonly string[];
  readonly remoteAddrs: readonly string[];
  /** Only when configured; otherwise an ephemeral port. */
  readonly localPort?: number;
  readonly remotePort: number;
  readonly proposals: readonly string[];
  readonly vips: readonly string[];
  readonly encap: boolean;
  readonly mobike: boolean;
  readonly fragmentation: 'yes' | 'accept' | 'force' | 'no';
  readonly childless: 'allow' | 'prefer' | 'force' | 'never';
  readonly sendCertreq: boolean;
  readonly sendCert: 'always' | 'never' | 'ifasked';
  readonly keyingtries: number;
  readonly unique: 'never' | 'no' | 'keep' | 'replace';
  /** Seconds. */
  readonly dpdDelay: number;
  readonly dpdTimeout: number;
  readonly rekeyTime: number;
  readonly reauthTime: number;
  readonly overTime: number;
  readonly randTime: number;
  readonly local: readonly AuthRound[];
  readonly remote: readonly AuthRound[];
  readonly children: ReadonlyMap<string, ChildConfig>;
  readonly client?: ClientExtras;
  /** `file:line` of each setting given for this connection (key → where), for later error messages. */
  readonly locations: Readonly<Record<string, string>>;
}

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
}

/** Lifetimes of a manual SA; 0 = none. Seconds, bytes, packets. */
export interface ManualLifetime {
  readonly rekeyTime: number;
  readonly lifeTime: number;
  readonly rekeyBytes: number;
  readonly lifeBytes: number;
  readonly rekeyPackets: number;
  readonly lifePackets: number;
}

export interface ManualSa {
  readonly where: string;
  readonly spi: number;
  readonly suite: EspSuite;
  readonly esn: boolean;
  /** Cipher key followed by the salt (AES-GCM, ChaCha20-Poly1305); empty for NULL. */
  readonly encKey: Uint8Array;
  /** HMAC key; empty for AEAD suites. */
  readonly integKey: Uint8Array;
  /** Inbound anti-replay window (32..4096); meaningless for `out`. */
  readonly replayWindow: number;
  readonly lifetime: ManualLifetime;
}

export interface ManualConnection {
  readonly kind: 'manual';
  readonly name: string;
  readonly where: string;
  readonly remoteAddrs: readonly string[];
  readonly remotePort: number;
  /** 0 = ephemeral. */
  readonly localPort: number;
  readonly vip: string;
  readonly localTs: readonly Cidr[];
  readonly remoteTs: readonly Cidr[];
  readonly dns: readonly string[];
  /** NAT keepalive interval, seconds; 0 = off. */
  readonly keepAlive: number;
  readonly out: ManualSa;
  readonly in: ManualSa;
}

export interface IkeSecret {
  readonly name: string;
  readonly where: string;
  readonly ids: readonly string[];
  readonly secret: Uint8Array;
}
export interface EapSecret {
  readonly name: string;
  readonly where: string;
  readonly ids: readonly string[];
  readonly secret: string;
}
export interface NtlmSecret {
  readonly name: string;
  readonly where: string;
  readonly ids: readonly string[];
  /** MD4(UTF-16LE(password)), 16 bytes. */
  readonly hash: Uint8Array;
}
export interface PrivateKeySecret {
  readonly name: string;
  readonly where: string;
  readonly type: 'private' | 'rsa' | 'ecdsa' | 'pkcs8' | 'pkcs12';
  /** Absolute path (relative names are taken from the type's directory), or the bytes from a .sswan. */
  readonly file?: string;
  readonly data?: Uint8Array;
  readonly passphrase?: string;
}

export interface IpsecSecrets {
  readonly ike: readonly IkeSecret[];
  readonly eap: readonly EapSecret[];
  readonly ntlm: readonly NtlmSecret[];
  readonly privateKeys: readonly PrivateKeySecret[];
}

export interface Authority {
  readonly name: string;
  readonly where: string;
  readonly cacert?: string;
  readonly crlUris: readonly string[];
  readonly ocspUris: readonly string[];
  readonly certUriBase?: string;
}

export interface IpsecConfig {
  /** The configuration file as given. */
  readonly file: string;
  readonly dirs: SwanctlDirs;
  readonly connections: ReadonlyMap<string, IkeConnection>;
  readonly manual: ReadonlyMap<string, ManualConnection>;
  readonly secrets: IpsecSecrets;
  readonly authorities: ReadonlyMap<string, Authority>;
  /** `file:line: …` remarks about ignored settings. */
  readonly warnings: readonly string[];
}

export interface IpsecConfigOptions {
  /** Directory holding x509/, x509ca/, private/ …; default: the configuration file's directory. */
  baseDir?: string;
}

// ====================================================================================================
// Value syntax
// ====================================================================================================

const INT_RE = /^(?:0x[0-9a-f]+|\d+)$/i;

function toInt(s: string): number {
  return /^0x/i.test(s) ? parseInt(s.slice(2), 16) : parseInt(s, 10);
}

/** strongSwan time: `30`, `30s`, `5m`, `1h`, `1d` (case-insensitive) → seconds; undefined if malformed. */
export function parseTimeValue(text: string): number | undefined {
  const m = /^(0x[0-9a-f]+|\d+) *([smhd]?)$/i.exec(text.trim());
  if (!m) return undefined;
  const n = toInt(m[1]!) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** strongSwan volume: `500`, `500k`, `10M`, `1G` (×1024, case-insensitive); undefined if malformed. */
export function parseSizeValue(text: string): number | undefined {
  const m = /^(0x[0-9a-f]+|\d+) *([kmg]?)$/i.exec(text.trim());
  if (!m) return undefined;
  const n = toInt(m[1]!) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** strongSwan booleans (yes/no, true/false, on/off, enabled/disabled, 1/0). */
export function parseBoolValue(text: string): boolean | undefined {
  const s = text.trim().toLowerCase();
  if (['yes', 'true', 'on', 'enabled', '1'].includes(s)) return true;
  if (['no', 'false', 'off', 'disabled', '0'].includes(s)) return false;
  return undefined;
}

/** Comma-separated list, blanks around items removed, empty items dropped. */
export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

const PROPOSAL_RE = /^[a-z0-9_]+(?:-[a-z0-9_]+)*$/;

/** `aes128-sha256-modp2048, aes256gcm16-prfsha256-x25519` → lower-cased proposals; undefined if malformed. */
export function parseProposalList(text: string): string[] | undefined {
  const items = text.split(',').map((s) => s.trim().toLowerCase());
  if (items.some((s) => !PROPOSAL_RE.test(s))) return undefined;
  return items;
}

const PROTOCOLS: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132, udplite: 136 };
const SERVICES: Record<string, number> = {
  ftp: 21, ssh: 22, telnet: 23, smtp: 25, domain: 53, dns: 53, bootps: 67, bootpc: 68, http: 80, pop3: 110, ntp: 123, imap: 143,
  snmp: 161, ldap: 389, https: 443, isakmp: 500, submission: 587, ldaps: 636, imaps: 993, pop3s: 995, 'ipsec-nat-t': 4500,
};

function prefixOk(prefix: string, family: 4 | 6): number | undefined {
  if (!/^\d{1,3}$/.test(prefix)) return undefined;
  const n = Number(prefix);
  return n <= (family === 4 ? 32 : 128) ? n : undefined;
}

/** `10.0.0.0/8` (or a single address) → {address, prefix, family}; undefined if malformed. */
export function parseCidr(text: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const [addr, prefix, extra] = text.trim().split('/');
  if (addr === undefined || extra !== undefined) return undefined;
  const v = isIP(addr);
  if (v !== 4 && v !== 6) return undefined;
  const family = v;
  if (prefix === undefined) return { address: addr, prefix: family === 4 ? 32 : 128, family };
  const p = prefixOk(prefix, family);
  return p === undefined ? undefined : { address: addr, prefix: p, family };
}

function parsePort(s: string): number | undefined {
  if (/^\d{1,5}$/.test(s)) {
    const n = Number(s);
    return n <= 65535 ? n : undefined;
  }
  return SERVICES[s.toLowerCase()];
}

/**
 * A swanctl traffic selector: `dynamic`, a CIDR subnet, a single address or an `a-b` range, followed by
 * an optional `[proto/port]` (numbers, common names, port ranges `a-b`, `opaque`). Undefined if malformed.
 */
export function parseTrafficSelector(text: string): TrafficSelector | undefined {
  const raw = text.trim();
  const m = /^([^[\]]*)(?:\[([^[\]]*)\])?$/.exec(raw);
  if (!m) return undefined;
  const net = m[1]!.trim();
  let protocol: number | undefined;
  let ports: TrafficSelector['ports'];
  if (m[2] !== undefined) {
    const [proto, port, extra] = m[2].split('/');
    if (extra !== undefined) return undefined;
    if (proto !== undefined && proto !== '' && proto.toLowerCase() !== 'any') {
      if (/^\d{1,3}$/.test(proto) && Number(proto) <= 255) protocol = Number(proto);
      else protocol = PROTOCOLS[proto.toLowerCase()];
      if (protocol === undefined) return undefined;
      if (protocol === 0) protocol = undefined;
    }
    if (port !== undefined && port !== '' && port !== '%any') {
      if (port === 'opaque') ports = 'opaque';
      else {
        const [a, b, more] = port.split('-');
        if (more !== undefined) return undefined;
        const from = parsePort(a!);
        const to = b === undefined ? from : parsePort(b);
        if (from === undefined || to === undefined || to < from) return undefined;
        ports = { from, to };
      }
    }
  }
  const extra = { ...(protocol !== undefined ? { protocol } : {}), ...(ports !== undefined ? { ports } : {}) };
  if (net === 'dynamic') return { raw, kind: 'dynamic', ...extra };
  if (net.includes('-')) {
    const [from, to, more] = net.split('-').map((s) => s.trim());
    if (more !== undefined || !from || !to) return undefined;
    const f = isIP(from);
    if ((f !== 4 && f !== 6) || isIP(to) !== f) return undefined;
    return { raw, kind: 'range', family: f, from, to, ...extra };
  }
  const c = parseCidr(net);
  if (!c) return undefined;
  return { raw, kind: 'subnet', family: c.family, address: c.address, prefix: c.prefix, ...extra };
}

/** Hex key material: optional `0x`, colons between bytes allowed. Undefined if malformed. */
export function parseHexKey(text: string): Uint8Array | undefined {
  let s = text.trim();
  if (/^0x/i.test(s)) s = s.slice(2);
  s = s.replace(/:/g, '');
  if (s.length === 0 || s.length % 2 !== 0 || !/^[0-9a-f]+$/i.test(s)) return undefined;
  return new Uint8Array(Buffer.from(s, 'hex'));
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** strongSwan secret encoding: `0x` hex (colons allowed), `0s` base64, else the UTF-8 string. */
export function decodeSecret(text: string): Uint8Array | undefined {
  if (/^0x/i.test(text)) return parseHexKey(text);
  if (text.startsWith('0s')) {
    const b = text.slice(2).replace(/\s+/g, '');
    if (b.length === 0 || b.length % 4 !== 0 || !BASE64_RE.test(b)) return undefined;
    return new Uint8Array(Buffer.from(b, 'base64'));
  }
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

// ====================================================================================================
// Defaults
// ====================================================================================================

export const IKE_REKEY_TIME_DEFAULT = 4 * 3600;
export const CHILD_REKEY_TIME_DEFAULT = 3600;
export const IKE_PORT_DEFAULT = 500;
export const MANUAL_PORT_DEFAULT = 4500;
export const MANUAL_REPLAY_WINDOW_DEFAULT = 128;
export const MANUAL_KEEPALIVE_DEFAULT = 20;

/** swanctl's IKE lifetime defaults (rekey 4h unless reauth is set; over 10% of the longer; rand ≤ over). */
export function ikeLifetimes(t: { rekey?: number; reauth?: number; over?: number; rand?: number }): {
  rekeyTime: number;
  reauthTime: number;
  overTime: number;
  randTime: number;
} {
  let rekey = t.rekey;
  let reauth = t.reauth;
  if (rekey === undefined && reauth === undefined) {
    rekey = IKE_REKEY_TIME_DEFAULT;
    reauth = 0;
  }
  rekey ??= 0;
  reauth ??= 0;
  const over = t.over ?? Math.floor(Math.max(rekey, reauth) / 10);
  let rand = t.rand;
  if (rand === undefined) {
    const base = rekey && reauth ? Math.min(rekey, reauth) : Math.max(rekey, reauth);
    rand = Math.min(over, Math.floor(base / 2));
  }
  return { rekeyTime: rekey, reauthTime: reauth, overTime: over, randTime: rand };
}

/** swanctl's CHILD_SA lifetime defaults: rekey (default given, or life/1.1), life = rekey + 10%, rand = life − rekey. */
export function childLifetime(t: { rekey?: number; life?: number; rand?: number }, rekeyDefault: number): LifetimeTriple {
  const rekey = t.rekey ?? (t.life !== undefined ? Math.floor(t.life / 1.1) : rekeyDefault);
  const life = t.life ?? Math.floor((rekey * 110) / 100);
  const rand = t.rand ?? life - Math.min(life, rekey);
  return { rekey, life, rand };
}

export function defaultChild(name: string, where: string): ChildConfig {
  return {
    name,
    where,
    localTs: [{ raw: 'dynamic', kind: 'dynamic' }],
    remoteTs: [{ raw: 'dynamic', kind: 'dynamic' }],
    espProposals: ['default'],
    mode: 'tunnel',
    lifetime: { time: childLifetime({}, CHILD_REKEY_TIME_DEFAULT), bytes: childLifetime({}, 0), packets: childLifetime({}, 0) },
    startAction: 'none',
    dpdAction: 'clear',
    closeAction: 'none',
    replayWindow: 32,
    inactivity: 0,
    tfcPadding: 0,
  };
}

export function defaultAuthRound(section: string, where: string, round = 0): AuthRound {
  return { section, where, round, auth: 'pubkey', authRaw: 'pubkey', constraints: [], certs: [], cacerts: [], revocation: 'relaxed' };
}

export function defaultIkeConnection(name: string, where: string): IkeConnection {
  return {
    kind: 'ike',
    name,
    where,
    version: 0,
    localAddrs: ['%any'],
    remoteAddrs: ['%any'],
    remotePort: IKE_PORT_DEFAULT,
    proposals: ['default'],
    vips: [],
    encap: false,
    mobike: true,
    fragmentation: 'yes',
    childless: 'allow',
    sendCertreq: true,
    sendCert: 'ifasked',
    keyingtries: 1,
    unique: 'no',
    dpdDelay: 0,
    dpdTimeout: 0,
    ...ikeLifetimes({}),
    local: [defaultAuthRound('local', where)],
    remote: [defaultAuthRound('remote', where)],
    children: new Map(),
    locations: {},
  };
}

export function swanctlDirs(base: string): SwanctlDirs {
  const j = (d: string) => nodePath.join(base, d);
  return { base, x509: j('x509'), x509ca: j('x509ca'), private: j('private'), rsa: j('rsa'), ecdsa: j('ecdsa'), pkcs8: j('pkcs8'), pkcs12: j('pkcs12') };
}

// ====================================================================================================
// Reading the tree
// ====================================================================================================

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
interface Located {
  readonly file: string;
  readonly line: number;
}

class Ctx {
  readonly warnings: string[];
  constructor(
    readonly dirs: SwanctlDirs,
    warnings: string[],
  ) {
    this.warnings = warnings;
  }
  where(n: Located): string {
    return `${n.file}:${n.line}`;
  }
  syntax(n: Located, msg: string): VpnError {
    return new VpnError('PROFILE_SYNTAX', oneLine(`${this.where(n)}: ${msg}`));
  }
  unsupported(n: Located, msg: string): VpnError {
    return new VpnError('PROFILE_UNSUPPORTED', oneLine(`${this.where(n)}: ${msg}`));
  }
  warn(n: Located, msg: string): void {
    this.warnings.push(oneLine(`${this.where(n)}: ${msg}`));
  }

  // ----- typed values; `key` is the dotted path used in messages -----
  int(v: SettingsValue, key: string, min: number, max: number): number {
    const s = v.value.trim();
    const n = INT_RE.test(s) ? toInt(s) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw this.syntax(v, `${key} = ${v.value}: expected an integer from ${min} to ${max}`);
    return n;
  }
  bool(v: SettingsValue, key: string): boolean {
    const b = parseBoolValue(v.value);
    if (b === undefined) throw this.syntax(v, `${key} = ${v.value}: expected yes or no`);
    return b;
  }
  time(v: SettingsValue, key: string): number {
    const t = parseTimeValue(v.value);
    if (t === undefined) throw this.syntax(v, `${key} = ${v.value}: expected a time such as 30s, 5m, 1h, 1d or plain seconds`);
    return t;
  }
  size(v: SettingsValue, key: string): number {
    const t = parseSizeValue(v.value);
    if (t === undefined) throw this.syntax(v, `${key} = ${v.value}: expected a number, optionally with k, M or G (×1024)`);
    return t;
  }
  choice<T extends string>(v: SettingsValue, key: string, allowed: readonly T[]): T {
    const s = v.value.trim().toLowerCase();
    if (!(allowed as readonly string[]).includes(s)) throw this.syntax(v, `${key} = ${v.value}: expected one of ${allowed.join(', ')}`);
    return s as T;
  }
  proposals(v: SettingsValue, key: string): string[] {
    const p = parseProposalList(v.value);
    if (!p) throw this.syntax(v, `${key} = ${v.value}: expected comma-separated proposals of dash-separated algorithm keywords (or 'default')`);
    return p;
  }
  selectors(v: SettingsValue, key: string): TrafficSelector[] {
    const out: TrafficSelector[] = [];
    for (const item of parseList(v.value)) {
      const ts = parseTrafficSelector(item);
      if (!ts) throw this.syntax(v, `${key}: '${item}' is not a traffic selector (CIDR subnet, address, range a-b or 'dynamic', optionally [proto/port])`);
      out.push(ts);
    }
    if (out.length === 0) throw this.syntax(v, `${key} is empty`);
    return out;
  }
  path(v: SettingsValue, key: string, dir: string): string[] {
    const out = parseList(v.value).map((p) => (nodePath.isAbsolute(p) ? p : nodePath.join(dir, p)));
    if (out.length === 0) throw this.syntax(v, `${key} is empty`);
    return out;
  }
}

type KeyHandler = (v: SettingsValue, key: string) => void;

/**
 * Dispatch each non-empty key of `sec` to its handler; a key without a handler is an error.
 * (Empty assignments clear a setting in strongSwan, so they are skipped: the default applies.)
 */
function eachKey(ctx: Ctx, sec: SettingsSection, path: string, handlers: Record<string, KeyHandler>, other?: (v: SettingsValue, key: string) => boolean): void {
  for (const [key, v] of sec.keys) {
    if (v.value === '') continue;
    const h = Object.prototype.hasOwnProperty.call(handlers, key) ? handlers[key] : undefined;
    if (h) h(v, `${path}.${key}`);
    else if (!other || !other(v, key)) throw ctx.syntax(v, `${path}.${key}: unknown setting`);
  }
}

function ignore(ctx: Ctx, why: string): KeyHandler {
  return (v, key) => ctx.warn(v, `${key} ignored: ${why}`);
}
function unsupported(ctx: Ctx, why: string): KeyHandler {
  return (v, key) => {
    throw ctx.unsupported(v, `${key}: ${why}`);
  };
}
/** Unsupported when the setting is enabled, fine (no-op) when disabled. */
function unsupportedIfYes(ctx: Ctx, why: string): KeyHandler {
  return (v, key) => {
    if (ctx.bool(v, key)) throw ctx.unsupported(v, `${key} = ${v.value}: ${why}`);
  };
}

function sectionLoc(sec: SettingsSection): Located {
  return { file: sec.file, line: sec.line };
}

// ----- connections -----

const KERNEL = 'only meaningful for the kernel IPsec stack, which a userspace client does not use';

function parseAuthValue(ctx: Ctx, v: SettingsValue, key: string): { auth: AuthMethod; eapMethod?: string; constraints: string[] } {
  const raw = v.value.trim();
  const s = raw.toLowerCase();
  if (s === 'psk') return { auth: 'psk', constraints: [] };
  if (s === 'eap' || s.startsWith('eap-')) {
    const rest = s.slice(4);
    const colon = rest.indexOf(':');
    const method = colon >= 0 ? rest.slice(0, colon) : rest;
    const constraints = colon >= 0 ? [rest.slice(colon + 1)] : [];
    if (method === '') return { auth: 'eap', constraints };
    if (/^\d+(-\d+)?$/.test(method)) throw ctx.unsupported(v, `${key} = ${raw}: numeric/vendor EAP types are not supported`);
    if (!KNOWN_EAP_METHODS.has(method)) throw ctx.syntax(v, `${key} = ${raw}: unknown EAP method '${method}'`);
    if (!SUPPORTED_EAP_METHODS.includes(method)) {
      throw ctx.unsupported(v, `${key} = ${raw}: EAP-${method.toUpperCase()} is not supported (supported: ${SUPPORTED_EAP_METHODS.map((m) => 'eap-' + m).join(', ')} or plain eap)`);
    }
    return { auth: 'eap', eapMethod: method, constraints };
  }
  if (s.startsWith('xauth')) throw ctx.unsupported(v, `${key} = ${raw}: XAuth belongs to IKEv1, which is not supported`);
  if (s.startsWith('ike:')) {
    const first = s.slice(4).split('-')[0]!;
    if (!PUBKEY_WORDS.has(first)) throw ctx.syntax(v, `${key} = ${raw}: expected a public key signature scheme after 'ike:'`);
    return { auth: 'pubkey', constraints: [s] };
  }
  const parts = s.split('-');
  if (PUBKEY_WORDS.has(parts[0]!)) {
    if (parts.some((p) => !/^[a-z0-9/_]+$/.test(p))) throw ctx.syntax(v, `${key} = ${raw}: malformed public key constraints`);
    return { auth: 'pubkey', constraints: parts[0] === 'pubkey' ? parts.slice(1) : parts };
  }
  throw ctx.syntax(v, `${key} = ${raw}: unknown authentication method (expected pubkey, psk, eap or eap-METHOD)`);
}

function parseAuthRound(ctx: Ctx, sec: SettingsSection, path: string, side: 'local' | 'remote', position: number): AuthRound & { position: number } {
  const r: Mutable<AuthRound> & { position: number } = { ...defaultAuthRound(sec.name, ctx.where(sec)), position };
  const handlers: Record<string, KeyHandler> = {
    round: (v, key) => (r.round = ctx.int(v, key, 0, 0xffffffff)),
    auth: (v, key) => {
      const a = parseAuthValue(ctx, v, key);
      r.auth = a.auth;
      r.authRaw = v.value.trim();
      r.constraints = a.constraints;
      if (a.eapMethod !== undefined) r.eapMethod = a.eapMethod;
      else delete r.eapMethod;
    },
    id: (v) => (r.id = v.value),
    eap_id: (v) => (r.eapId = v.value),
    aaa_id: (v) => (r.aaaId = v.value),
    ca_id: (v) => (r.caId = v.value),
    xauth_id: ignore(ctx, 'XAuth belongs to IKEv1'),
    certs: (v, key) => (r.certs = ctx.path(v, key, ctx.dirs.x509).map((file) => ({ file }))),
    cacerts: (v, key) => (r.cacerts = ctx.path(v, key, ctx.dirs.x509ca).map((file) => ({ file }))),
    pubkeys: unsupported(ctx, 'raw public keys are not supported; use certificates'),
    revocation: (v, key) => (r.revocation = ctx.choice(v, key, ['strict', 'ifuri', 'relaxed'] as const)),
  };
  if (side === 'remote') {
    handlers.groups = unsupported(ctx, 'authorization groups cannot be checked by this client');
    handlers.cert_policy = unsupported(ctx, 'certificate policy constraints cannot be checked by this client');
  }
  eachKey(ctx, sec, path, handlers);
  for (const sub of sec.sections.values()) {
    if (/^(ca)?cert/.test(sub.name)) throw ctx.unsupported(sub, `${path}.${sub.name}: certificates on tokens (PKCS#11) are not supported; list files in certs/cacerts`);
    throw ctx.syntax(sub, `${path}.${sub.name}: unknown section`);
  }
  return r;
}

function parseChild(ctx: Ctx, sec: SettingsSection, path: string): ChildConfig {
  const c: Mutable<ChildConfig> = defaultChild(sec.name, ctx.where(sec));
  const t: Record<string, number> = {};
  const setT = (name: string, parse: 'time' | 'size') => (v: SettingsValue, key: string) => (t[name] = parse === 'time' ? ctx.time(v, key) : ctx.size(v, key));
  eachKey(ctx, sec, path, {
    ah_proposals: unsupported(ctx, 'AH is not supported (ESP only)'),
    esp_proposals: (v, key) => (c.espProposals = ctx.proposals(v, key)),
    sha256_96: unsupportedIfYes(ctx, 'truncating HMAC-SHA256 to 96 bits is not supported'),
    local_ts: (v, key) => (c.localTs = ctx.selectors(v, key)),
    remote_ts: (v, key) => (c.remoteTs = ctx.selectors(v, key)),
    rekey_time: setT('rekey_time', 'time'),
    life_time: setT('life_time', 'time'),
    rand_time: setT('rand_time', 'time'),
    rekey_bytes: setT('rekey_bytes', 'size'),
    life_bytes: setT('life_bytes', 'size'),
    rand_bytes: setT('rand_bytes', 'size'),
    rekey_packets: setT('rekey_packets', 'size'),
    life_packets: setT('life_packets', 'size'),
    rand_packets: setT('rand_packets', 'size'),
    updown: ignore(ctx, 'scripts are never run'),
    hostaccess: ignore(ctx, 'only used by updown scripts'),
    mode: (v, key) => {
      const m = ctx.choice(v, key, ['tunnel', 'transport', 'transport_proxy', 'beet', 'pass', 'drop'] as const);
      if (m !== 'tunnel') throw ctx.unsupported(v, `${key} = ${v.value}: only tunnel mode is supported`);
    },
    policies: ignore(ctx, KERNEL),
    policies_fwd_out: ignore(ctx, KERNEL),
    dpd_action: (v, key) => (c.dpdAction = ctx.choice(v, key, ['none', 'clear', 'trap', 'restart', 'start'] as const)),
    close_action: (v, key) => (c.closeAction = ctx.choice(v, key, ['none', 'clear', 'trap', 'restart', 'start'] as const)),
    start_action: (v, key) => {
      const a = ctx.choice(v, key, ['none', 'start', 'trap', 'trap|start', 'start|trap'] as const);
      if (a.includes('trap')) ctx.warn(v, `${key} = ${v.value}: trap policies are not supported; the tunnel is started on connect`);
      c.startAction = a === 'none' ? 'none' : a === 'trap' ? 'trap' : 'start';
    },
    ipcomp: unsupportedIfYes(ctx, 'IPComp is not supported'),
    inactivity: (v, key) => (c.inactivity = ctx.time(v, key)),
    reqid: ignore(ctx, KERNEL),
    priority: ignore(ctx, KERNEL),
    interface: ignore(ctx, KERNEL),
    mark_in: ignore(ctx, KERNEL),
    mark_in_sa: ignore(ctx, KERNEL),
    mark_out: ignore(ctx, KERNEL),
    set_mark_in: ignore(ctx, KERNEL),
    set_mark_out: ignore(ctx, KERNEL),
    label: ignore(ctx, KERNEL),
    label_mode: ignore(ctx, KERNEL),
    if_id_in: ignore(ctx, KERNEL),
    if_id_out: ignore(ctx, KERNEL),
    per_cpu_sas: ignore(ctx, KERNEL),
    hw_offload: ignore(ctx, KERNEL),
    copy_df: ignore(ctx, KERNEL),
    copy_ecn: ignore(ctx, KERNEL),
    copy_dscp: ignore(ctx, KERNEL),
    tfc_padding: (v, key) => (c.tfcPadding = v.value.trim().toLowerCase() === 'mtu' ? 'mtu' : ctx.int(v, key, 0, 65535)),
    replay_window: (v, key) => (c.replayWindow = ctx.int(v, key, 0, 4096)),
  });
  for (const sub of sec.sections.values()) throw ctx.syntax(sub, `${path}.${sub.name}: unknown section`);
  c.lifetime = {
    time: childLifetime({ rekey: t.rekey_time, life: t.life_time, rand: t.rand_time }, CHILD_REKEY_TIME_DEFAULT),
    bytes: childLifetime({ rekey: t.rekey_bytes, life: t.life_bytes, rand: t.rand_bytes }, 0),
    packets: childLifetime({ rekey: t.rekey_packets, life: t.life_packets, rand: t.rand_packets }, 0),
  };
  return c;
}

function parseConnection(ctx: Ctx, sec: SettingsSection): IkeConnection {
  const path = `connections.${sec.name}`;
  const c: Mutable<IkeConnection> = defaultIkeConnection(sec.name, ctx.where(sec));
  const locations: Record<string, string> = {};
  const times: { rekey?: number; reauth?: number; over?: number; rand?: number } = {};
  const addrs = (v: SettingsValue, key: string): string[] => {
    const l = parseList(v.value);
    if (l.length === 0) throw ctx.syntax(v, `${key} is empty`);
    for (const a of l) if (/\s/.test(a)) throw ctx.syntax(v, `${key}: '${a}' is not an address or host name`);
    return l;
  };
  eachKey(
    ctx,
    sec,
    path,
    {
      version: (v, key) => {
        const s = v.value.trim();
        if (s === '1') throw ctx.unsupported(v, `${key} = 1: IKEv1 is not supported (use version = 2)`);
        if (s !== '0' && s !== '2') throw ctx.syntax(v, `${key} = ${v.value}: expected 0 or 2`);
        c.version = s === '2' ? 2 : 0;
      },
      local_addrs: (v, key) => (c.localAddrs = addrs(v, key)),
      remote_addrs: (v, key) => (c.remoteAddrs = addrs(v, key)),
      local_port: (v, key) => (c.localPort = ctx.int(v, key, 0, 65535)),
      remote_port: (v, key) => (c.remotePort = ctx.int(v, key, 1, 65535)),
      proposals: (v, key) => (c.proposals = ctx.proposals(v, key)),
      vips: (v, key) => {
        const l = parseList(v.value);
        for (const a of l) if (!isIP(a)) throw ctx.syntax(v, `${key}: '${a}' is not an IP address (use 0.0.0.0 or :: to request any)`);
        c.vips = l;
      },
      aggressive: unsupportedIfYes(ctx, 'Aggressive Mode belongs to IKEv1, which is not supported'),
      pull: (v, key) => {
        if (!ctx.bool(v, key)) throw ctx.unsupported(v, `${key} = ${v.value}: push mode belongs to IKEv1, which is not supported`);
      },
      dscp: ignore(ctx, 'DSCP marking of IKE packets is not supported'),
      encap: (v, key) => (c.encap = ctx.bool(v, key)),
      mobike: (v, key) => (c.mobike = ctx.bool(v, key)),
      dpd_delay: (v, key) => (c.dpdDelay = ctx.time(v, key)),
      dpd_timeout: (v, key) => (c.dpdTimeout = ctx.time(v, key)),
      fragmentation: (v, key) => (c.fragmentation = ctx.choice(v, key, ['yes', 'accept', 'force', 'no'] as const)),
      childless: (v, key) => (c.childless = ctx.choice(v, key, ['allow', 'prefer', 'force', 'never'] as const)),
      send_certreq: (v, key) => (c.sendCertreq = ctx.bool(v, key)),
      send_cert: (v, key) => (c.sendCert = ctx.choice(v, key, ['always', 'never', 'ifasked'] as const)),
      ppk_id: ignore(ctx, 'post-quantum preshared keys (RFC 8784) are not supported'),
      ppk_required: unsupportedIfYes(ctx, 'post-quantum preshared keys (RFC 8784) are not supported'),
      keyingtries: (v, key) => (c.keyingtries = ctx.int(v, key, 0, 0x7fffffff)),
      unique: (v, key) => (c.unique = ctx.choice(v, key, ['never', 'no', 'keep', 'replace'] as const)),
      rekey_time: (v, key) => (times.rekey = ctx.time(v, key)),
      reauth_time: (v, key) => (times.reauth = ctx.time(v, key)),
      over_time: (v, key) => (times.over = ctx.time(v, key)),
      rand_time: (v, key) => (times.rand = ctx.time(v, key)),
      pools: ignore(ctx, 'address pools are assigned by a responder'),
      if_id_in: ignore(ctx, KERNEL),
      if_id_out: ignore(ctx, KERNEL),
      mediation: unsupportedIfYes(ctx, 'IKEv2 mediation is not supported'),
      mediated_by: unsupported(ctx, 'IKEv2 mediation is not supported'),
      mediation_peer: unsupported(ctx, 'IKEv2 mediation is not supported'),
    },
  );
  for (const [k, v] of sec.keys) if (v.value !== '') locations[k] = ctx.where(v);
  Object.assign(c, ikeLifetimes(times));

  const local: (AuthRound & { position: number })[] = [];
  const remote: (AuthRound & { position: number })[] = [];
  const children = new Map<string, ChildConfig>();
  let pos = 0;
  for (const sub of sec.sections.values()) {
    const lower = sub.name.toLowerCase();
    if (lower.startsWith('local')) local.push(parseAuthRound(ctx, sub, `${path}.${sub.name}`, 'local', pos++));
    else if (lower.startsWith('remote')) remote.push(parseAuthRound(ctx, sub, `${path}.${sub.name}`, 'remote', pos++));
    else if (sub.name === 'children') {
      for (const [k, v] of sub.keys) if (v.value !== '') throw ctx.syntax(v, `${path}.children.${k}: unknown setting (children holds one section per CHILD_SA)`);
      for (const child of sub.sections.values()) children.set(child.name, parseChild(ctx, child, `${path}.children.${child.name}`));
    } else throw ctx.syntax(sub, `${path}.${sub.name}: unknown section`);
  }
  const order = (a: { round: number; position: number }, b: { round: number; position: number }) => a.round - b.round || a.position - b.position;
  const strip = ({ position: _p, ...r }: AuthRound & { position: number }): AuthRound => r;
  if (local.length > 0) c.local = local.sort(order).map(strip);
  if (remote.length > 0) c.remote = remote.sort(order).map(strip);
  c.children = children;
  c.locations = locations;
  return c;
}

// ----- secrets -----

function idsOf(ctx: Ctx, sec: SettingsSection, path: string, extra: Record<string, KeyHandler>): string[] {
  const ids: string[] = [];
  eachKey(ctx, sec, path, extra, (v, key) => {
    if (!key.toLowerCase().startsWith('id')) return false;
    ids.push(v.value);
    return true;
  });
  for (const sub of sec.sections.values()) throw ctx.syntax(sub, `${path}.${sub.name}: unknown section`);
  return ids;
}

function parseSecrets(ctx: Ctx, sec: SettingsSection): IpsecSecrets {
  const ike: IkeSecret[] = [];
  const eap: EapSecret[] = [];
  const ntlm: NtlmSecret[] = [];
  const privateKeys: PrivateKeySecret[] = [];
  for (const [k, v] of sec.keys) if (v.value !== '') throw ctx.syntax(v, `secrets.${k}: unknown setting (secrets holds sections such as ike-NAME, eap-NAME, private-NAME)`);
  for (const s of sec.sections.values()) {
    const path = `secrets.${s.name}`;
    const where = ctx.where(s);
    let secretV: SettingsValue | undefined;
    const needSecret = (): SettingsValue => {
      if (!secretV) throw ctx.syntax(s, `${path}: missing secret = ...`);
      return secretV;
    };
    const decode = (v: SettingsValue, key: string): Uint8Array => {
      const b = decodeSecret(v.value);
      if (!b || b.length === 0) throw ctx.syntax(v, `${key}: malformed ${v.value.startsWith('0s') ? 'base64 (0s…)' : 'hex (0x…)'} value`);
      return b;
    };
    const secretHandler: KeyHandler = (v) => (secretV = v);
    const type = ['ike', 'eap', 'xauth', 'ntlm', 'private', 'rsa', 'ecdsa', 'pkcs8', 'pkcs12', 'token', 'ppk'].find((p) => s.name.toLowerCase().startsWith(p));
    switch (type) {
      case 'ike': {
        const ids = idsOf(ctx, s, path, { secret: secretHandler });
        const v = needSecret();
        ike.push({ name: s.name, where, ids, secret: decode(v, `${path}.secret`) });
        break;
      }
      case 'eap':
      case 'xauth': {
        const ids = idsOf(ctx, s, path, { secret: secretHandler });
        const v = needSecret();
        const raw = v.value;
        const secret = /^0x/i.test(raw) || raw.startsWith('0s') ? Buffer.from(decode(v, `${path}.secret`)).toString('utf8') : raw;
        eap.push({ name: s.name, where, ids, secret });
        break;
      }
      case 'ntlm': {
        const ids = idsOf(ctx, s, path, { secret: secretHandler });
        const v = needSecret();
        if (!/^0x/i.test(v.value) && !v.value.startsWith('0s')) throw ctx.syntax(v, `${path}.secret: an NTLM secret is the 16-byte NT hash, written 0x… or 0s…`);
        const hash = decode(v, `${path}.secret`);
        if (hash.length !== 16) throw ctx.syntax(v, `${path}.secret: an NT hash has 16 bytes, got ${hash.length}`);
        ntlm.push({ name: s.name, where, ids, hash });
        break;
      }
      case 'private':
      case 'rsa':
      case 'ecdsa':
      case 'pkcs8':
      case 'pkcs12': {
        let file: string | undefined;
        let passphrase: string | undefined;
        eachKey(ctx, s, path, {
          file: (v, key) => (file = ctx.path(v, key, ctx.dirs[type])[0]),
          secret: (v, key) => (passphrase = /^0x/i.test(v.value) || v.value.startsWith('0s') ? Buffer.from(decode(v, key)).toString('utf8') : v.value),
        });
        for (const sub of s.sections.values()) throw ctx.syntax(sub, `${path}.${sub.name}: unknown section`);
        if (file === undefined) throw ctx.syntax(s, `${path}: missing file = ...`);
        privateKeys.push({ name: s.name, where, type, file, ...(passphrase !== undefined ? { passphrase } : {}) });
        break;
      }
      case 'token':
        throw ctx.unsupported(s, `${path}: private keys on tokens (PKCS#11) are not supported`);
      case 'ppk':
        ctx.warn(s, `${path} ignored: post-quantum preshared keys (RFC 8784) are not supported`);
        break;
      default:
        throw ctx.syntax(s, `${path}: unknown kind of secret (section names start with ike, eap, xauth, ntlm, private, rsa, ecdsa, pkcs8 or pkcs12)`);
    }
  }
  return { ike, eap, ntlm, privateKeys };
}

function parseAuthorities(ctx: Ctx, sec: SettingsSection): Map<string, Authority> {
  const out = new Map<string, Authority>();
  for (const [k, v] of sec.keys) if (v.value !== '') throw ctx.syntax(v, `authorities.${k}: unknown setting`);
  for (const s of sec.sections.values()) {
    const path = `authorities.${s.name}`;
    const a: Mutable<Authority> = { name: s.name, where: ctx.where(s), crlUris: [], ocspUris: [] };
    const token = unsupported(ctx, 'CA certificates on tokens (PKCS#11) are not supported');
    eachKey(ctx, s, path, {
      cacert: (v, key) => (a.cacert = ctx.path(v, key, ctx.dirs.x509ca)[0]),
      file: (v, key) => (a.cacert = ctx.path(v, key, ctx.dirs.x509ca)[0]),
      crl_uris: (v) => (a.crlUris = parseList(v.value)),
      ocsp_uris: (v) => (a.ocspUris = parseList(v.value)),
      cert_uri_base: (v) => (a.certUriBase = v.value),
      handle: token,
      slot: token,
      module: token,
    });
    for (const sub of s.sections.values()) throw ctx.syntax(sub, `${path}.${sub.name}: unknown section`);
    out.set(s.name, a);
  }
  return out;
}

// ----- manual SAs -----

interface ManualLifeDraft {
  rekeyTime?: number;
  lifeTime?: number;
  rekeyBytes?: number;
  lifeBytes?: number;
  rekeyPackets?: number;
  lifePackets?: number;
}

function lifetimeHandlers(ctx: Ctx, d: ManualLifeDraft): Record<string, KeyHandler> {
  return {
    rekey_time: (v, key) => (d.rekeyTime = ctx.time(v, key)),
    life_time: (v, key) => (d.lifeTime = ctx.time(v, key)),
    rekey_bytes: (v, key) => (d.rekeyBytes = ctx.size(v, key)),
    life_bytes: (v, key) => (d.lifeBytes = ctx.size(v, key)),
    rekey_packets: (v, key) => (d.rekeyPackets = ctx.size(v, key)),
    life_packets: (v, key) => (d.lifePackets = ctx.size(v, key)),
  };
}

function cidrList(ctx: Ctx, v: SettingsValue, key: string): Cidr[] {
  const out: Cidr[] = [];
  for (const item of parseList(v.value)) {
    const c = parseCidr(item);
    if (!c) throw ctx.syntax(v, `${key}: '${item}' is not an IPv4 subnet (a.b.c.d/n)`);
    if (c.family !== 4) throw ctx.unsupported(v, `${key}: '${item}': manual SAs carry IPv4 only`);
    out.push({ address: c.address, prefix: c.prefix });
  }
  if (out.length === 0) throw ctx.syntax(v, `${key} is empty`);
  return out;
}

function parseManualSa(ctx: Ctx, sec: SettingsSection, path: string, dir: 'out' | 'in', defaults: ManualLifeDraft): ManualSa {
  let spi: number | undefined;
  let espV: SettingsValue | undefined;
  let encV: SettingsValue | undefined;
  let integV: SettingsValue | undefined;
  let esnV: SettingsValue | undefined;
  let replayWindow = MANUAL_REPLAY_WINDOW_DEFAULT;
  const life: ManualLifeDraft = { ...defaults };
  eachKey(ctx, sec, path, {
    spi: (v, key) => {
      const s = v.value.trim();
      const n = INT_RE.test(s) ? toInt(s) : NaN;
      if (!Number.isSafeInteger(n)) throw ctx.syntax(v, `${key} = ${v.value}: expected a number (0x… hex or decimal)`);
      if (n === 0) throw ctx.syntax(v, `${key} = ${v.value}: SPI 0 is reserved`);
      if (n < 256) throw ctx.syntax(v, `${key} = ${v.value}: SPIs 1 to 255 are reserved (use 256 or more)`);
      if (n > 0xffffffff) throw ctx.syntax(v, `${key} = ${v.value}: an SPI has 32 bits (at most 0xffffffff)`);
      spi = n;
    },
    esp: (v) => (espV = v),
    enc_key: (v) => (encV = v),
    integ_key: (v) => (integV = v),
    esn: (v) => (esnV = v),
    replay_window: (v, key) => {
      if (dir === 'out') {
        ctx.warn(v, `${key} ignored: the replay window applies to inbound SAs`);
        return;
      }
      replayWindow = ctx.int(v, key, 32, 4096);
    },
    ...lifetimeHandlers(ctx, life),
  });
  for (const sub of sec.sections.values()) throw ctx.syntax(sub, `${path}.${sub.name}: unknown section`);
  const loc = sectionLoc(sec);
  if (spi === undefined) throw ctx.syntax(loc, `${path}: missing spi = ...`);
  if (!espV) throw ctx.syntax(loc, `${path}: missing esp = ... (e.g. aes128gcm16, aes256-sha256)`);

  let kw = espV.value.trim().toLowerCase();
  let esnFromKw: boolean | undefined;
  if (kw.endsWith('-noesn')) {
    esnFromKw = false;
    kw = kw.slice(0, -6);
  } else if (kw.endsWith('-esn')) {
    esnFromKw = true;
    kw = kw.slice(0, -4);
  }
  const suite = Object.prototype.hasOwnProperty.call(ESP_SUITES, kw) ? ESP_SUITES[kw] : undefined;
  if (!suite) throw ctx.syntax(espV, `${path}.esp = ${espV.value}: unknown ESP algorithm (one of ${Object.keys(ESP_SUITES).join(', ')}, optionally with -esn)`);
  let esn = esnFromKw ?? false;
  if (esnV) {
    const b = ctx.bool(esnV, `${path}.esn`);
    if (esnFromKw !== undefined && b !== esnFromKw) throw ctx.syntax(esnV, `${path}.esn = ${esnV.value} contradicts esp = ${espV.value}`);
    esn = b;
  }

  const key = (v: SettingsValue, name: string): Uint8Array => {
    const k = parseHexKey(v.value);
    if (!k) throw ctx.syntax(v, `${path}.${name}: expected hex bytes (0x optional, colons allowed)`);
    return k;
  };
  let encKey: Uint8Array = new Uint8Array(0);
  const encLen = suite.encKeyBytes + suite.saltBytes;
  if (suite.cipher === 'null') {
    if (encV) throw ctx.syntax(encV, `${path}.enc_key: ${suite.name} has no encryption key`);
  } else {
    if (!encV) throw ctx.syntax(loc, `${path}: missing enc_key = 0x… (${encLen} bytes for ${suite.name})`);
    encKey = key(encV, 'enc_key');
    if (encKey.length !== encLen) {
      const what = suite.saltBytes ? `${suite.encKeyBytes}-byte key + ${suite.saltBytes}-byte salt` : `${suite.encKeyBytes}-byte key`;
      throw ctx.syntax(encV, `${path}.enc_key: ${suite.name} needs ${encLen} bytes (${what}), got ${encKey.length}`);
    }
  }
  let integKey: Uint8Array = new Uint8Array(0);
  if (suite.aead) {
    if (integV) throw ctx.syntax(integV, `${path}.integ_key: ${suite.name} is an AEAD algorithm and takes no integ_key`);
  } else {
    if (!integV) throw ctx.syntax(loc, `${path}: missing integ_key = 0x… (${suite.integKeyBytes} bytes for ${suite.name})`);
    integKey = key(integV, 'integ_key');
    if (integKey.length !== suite.integKeyBytes) {
      throw ctx.syntax(integV, `${path}.integ_key: ${suite.name} needs ${suite.integKeyBytes} bytes (HMAC-${suite.integ!.toUpperCase()} key), got ${integKey.length}`);
    }
  }
  const lifetime: ManualLifetime = {
    rekeyTime: life.rekeyTime ?? 0,
    lifeTime: life.lifeTime ?? 0,
    rekeyBytes: life.rekeyBytes ?? 0,
    lifeBytes: life.lifeBytes ?? 0,
    rekeyPackets: life.rekeyPackets ?? 0,
    lifePackets: life.lifePackets ?? 0,
  };
  for (const [soft, hard, name] of [
    [lifetime.rekeyTime, lifetime.lifeTime, 'time'],
    [lifetime.rekeyBytes, lifetime.lifeBytes, 'bytes'],
    [lifetime.rekeyPackets, lifetime.lifePackets, 'packets'],
  ] as const) {
    if (soft && hard && soft >= hard) throw ctx.syntax(loc, `${path}: rekey_${name} (${soft}) must be below life_${name} (${hard})`);
  }
  return { where: ctx.where(sec), spi, suite, esn, encKey, integKey, replayWindow, lifetime };
}

function parseManual(ctx: Ctx, sec: SettingsSection): ManualConnection {
  const path = `manual.${sec.name}`;
  let remoteAddrs: string[] | undefined;
  let remotePort = MANUAL_PORT_DEFAULT;
  let localPort = 0;
  let vip: string | undefined;
  let localTs: Cidr[] | undefined;
  let remoteTs: Cidr[] | undefined;
  let dns: string[] = [];
  let keepAlive = MANUAL_KEEPALIVE_DEFAULT;
  const life: ManualLifeDraft = {};
  eachKey(ctx, sec, path, {
    remote_addrs: (v, key) => {
      const l = parseList(v.value);
      for (const a of l) {
        if (a.startsWith('%') || a.includes('/') || /\s/.test(a)) throw ctx.syntax(v, `${key}: '${a}' is not a gateway address or host name`);
      }
      if (l.length === 0) throw ctx.syntax(v, `${key} is empty`);
      remoteAddrs = l;
    },
    remote_port: (v, key) => (remotePort = ctx.int(v, key, 1, 65535)),
    local_port: (v, key) => (localPort = ctx.int(v, key, 0, 65535)),
    vip: (v, key) => {
      const a = v.value.trim();
      if (isIP(a) === 6) throw ctx.unsupported(v, `${key} = ${a}: manual SAs carry IPv4 only`);
      if (!isIPv4(a)) throw ctx.syntax(v, `${key} = ${v.value}: expected our IPv4 address inside the tunnel`);
      vip = a;
    },
    local_ts: (v, key) => (localTs = cidrList(ctx, v, key)),
    remote_ts: (v, key) => (remoteTs = cidrList(ctx, v, key)),
    dns: (v, key) => {
      const l = parseList(v.value);
      for (const a of l) if (!isIP(a)) throw ctx.syntax(v, `${key}: '${a}' is not an IP address`);
      dns = l;
    },
    keep_alive: (v, key) => (keepAlive = ctx.time(v, key)),
    ...lifetimeHandlers(ctx, life),
  });
  const blocks: { out?: SettingsSection; in?: SettingsSection } = {};
  for (const sub of sec.sections.values()) {
    if (sub.name === 'out' || sub.name === 'in') blocks[sub.name] = sub;
    else throw ctx.syntax(sub, `${path}.${sub.name}: unknown section (expected out and in)`);
  }
  const loc = sectionLoc(sec);
  if (!remoteAddrs) throw ctx.syntax(loc, `${path}: missing remote_addrs = ... (the gateway)`);
  if (vip === undefined) throw ctx.syntax(loc, `${path}: missing vip = ... (our address inside the tunnel)`);
  if (!remoteTs) throw ctx.syntax(loc, `${path}: missing remote_ts = ... (the subnets behind the gateway)`);
  if (!blocks.out) throw ctx.syntax(loc, `${path}: missing out { ... } block (the outbound SA)`);
  if (!blocks.in) throw ctx.syntax(loc, `${path}: missing in { ... } block (the inbound SA)`);
  const out = parseManualSa(ctx, blocks.out, `${path}.out`, 'out', life);
  const inn = parseManualSa(ctx, blocks.in, `${path}.in`, 'in', life);
  return {
    kind: 'manual',
    name: sec.name,
    where: ctx.where(sec),
    remoteAddrs,
    remotePort,
    localPort,
    vip,
    localTs: localTs ?? [{ address: vip, prefix: 32 }],
    remoteTs,
    dns,
    keepAlive,
    out,
    in: inn,
  };
}

// ----- the whole file -----

function buildConfig(root: SettingsSection, file: string, warnings: string[], opts: IpsecConfigOptions): IpsecConfig {
  const dirs = swanctlDirs(opts.baseDir ? nodePath.resolve(opts.baseDir) : nodePath.dirname(nodePath.resolve(file)));
  const ctx = new Ctx(dirs, warnings);
  const connections = new Map<string, IkeConnection>();
  const manual = new Map<string, ManualConnection>();
  let secrets: IpsecSecrets = { ike: [], eap: [], ntlm: [], privateKeys: [] };
  let authorities = new Map<string, Authority>();
  for (const [k, v] of root.keys) ctx.warn(v, `${k} ignored: settings outside a section are not read by swanctl`);
  for (const sec of root.sections.values()) {
    switch (sec.name) {
      case 'connections':
        for (const [k, v] of sec.keys) if (v.value !== '') throw ctx.syntax(v, `connections.${k}: unknown setting (connections holds one section per connection)`);
        for (const conn of sec.sections.values()) connections.set(conn.name, parseConnection(ctx, conn));
        break;
      case 'manual':
        for (const [k, v] of sec.keys) if (v.value !== '') throw ctx.syntax(v, `manual.${k}: unknown setting (manual holds one section per connection)`);
        for (const conn of sec.sections.values()) manual.set(conn.name, parseManual(ctx, conn));
        break;
      case 'secrets':
        secrets = parseSecrets(ctx, sec);
        break;
      case 'authorities':
        authorities = parseAuthorities(ctx, sec);
        break;
      case 'pools':
        ctx.warn(sec, 'pools ignored: address pools are assigned by a responder');
        break;
      default:
        ctx.warn(sec, `section '${sec.name}' ignored: swanctl.conf has connections, secrets, authorities, pools (and our manual)`);
    }
  }
  for (const name of manual.keys()) {
    if (connections.has(name)) {
      const m = manual.get(name)!;
      throw new VpnError('PROFILE_SYNTAX', oneLine(`${m.where}: manual.${name}: a connection of the same name exists in connections (names must be unique)`));
    }
  }
  return { file, dirs, connections, manual, secrets, authorities, warnings };
}


/**
 * Parse swanctl.conf text (pure apart from `include`, which goes through `readInclude`, by default the
 * file system). Throws VpnError PROFILE_SYNTAX / PROFILE_UNSUPPORTED / PROFILE_FILE only.
 */
export function parseIpsecConfig(text: string, file: string, readInclude?: IncludeReader, opts: IpsecConfigOptions = {}): IpsecConfig {
  const warnings: string[] = [];
  try {
    const root = parseSettings(text, file, { ...(readInclude ? { readInclude } : {}), warnings });
    return buildConfig(root, file, warnings, opts);
  } catch (err) {
    if (err instanceof VpnError) throw err;
    throw new VpnError('PROFILE_SYNTAX', `${file}:1: cannot parse configuration (internal error: ${fileErrorText(err)})`, { cause: err });
  }
}

/** Read a swanctl.conf (and its includes), or a `.sswan` profile (by extension or a leading `{`). */
export async function loadIpsecConfig(path: string, opts: IpsecConfigOptions = {}): Promise<IpsecConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new VpnError('PROFILE_FILE', `cannot read IPsec configuration ${nodePath.resolve(path)}: ${fileErrorText(err)}`, { cause: err });
  }
  if (path.toLowerCase().endsWith('.sswan') || /^\uFEFF?\s*\{\s*"/.test(text)) {
    const { parseSswan } = await import('./sswan.js');
    return parseSswan(text, path);
  }
  return parseIpsecConfig(text, path, undefined, opts);
}

/**
 * The connection to use: `name` looked up among manual SAs and IKE connections (a .sswan profile's
 * connection also by its uuid); without a name, the only one there is. Errors list the names there are.
 */
export function findConnection(config: IpsecConfig, name?: string): IkeConnection | ManualConnection {
  const names = [...config.manual.keys(), ...config.connections.keys()];
  if (name !== undefined) {
    const c = config.manual.get(name) ?? config.connections.get(name) ?? [...config.connections.values()].find((k) => k.client?.sswan?.uuid === name.toLowerCase());
    if (c) return c;
    const list = names.length > 0 ? `it has ${names.join(', ')}` : 'it has none';
    throw new VpnError('USAGE', oneLine(`${config.file}: no connection named '${name}' (${list})`));
  }
  if (names.length === 1) return (config.manual.get(names[0]!) ?? config.connections.get(names[0]!))!;
  if (names.length === 0) throw new VpnError('PROFILE_SYNTAX', `${config.file}: no connections (neither connections { … } nor manual { … } defines one)`);
  throw new VpnError('USAGE', oneLine(`${config.file}: ${names.length} connections (${names.join(', ')}); choose one with --connection NAME`));
}
