/**
 * `.sswan` VPN profiles, the JSON files strongSwan's Android (and Apple) clients import and providers
 * hand out (format documented at docs.strongswan.org, "VPN Profile Import for the Android VPN Client"):
 *
 *   uuid, name, type (ikev2-eap | ikev2-cert | ikev2-cert-eap | ikev2-eap-tls | ikev2-byod-eap),
 *   remote { addr, port, id, cert (base64 of a DER/PEM CA or server certificate), certreq,
 *            revocation { crl, ocsp, strict } },
 *   local { id, eap_id, p12 (base64 PKCS#12), rsa-pss },
 *   ike-proposal, esp-proposal, dns-servers, mtu, nat-keepalive,
 *   split-tunneling { subnets, excluded, block-ipv4, block-ipv6 }, apps, excluded-apps.
 *
 * There is no PSK type (the app deliberately has none). The server always authenticates with a
 * certificate. A profile becomes an IpsecConfig with one IKE connection named after the profile,
 * requesting an IPv4 and an IPv6 virtual IP and tunnelling everything (or the split-tunneling subnets),
 * as the app does. The PKCS#12 container goes to `secrets.privateKeys` (type pkcs12, with `data`); its
 * passphrase and the EAP password are not part of the format and come from the user.
 *
 * Errors are VpnError PROFILE_SYNTAX / PROFILE_UNSUPPORTED with `file:line` (the line of the key).
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import nodePath from 'node:path';
import { VpnError } from '../errors.js';
import { oneLine } from './settings.js';
import {
  defaultAuthRound,
  defaultChild,
  defaultIkeConnection,
  parseProposalList,
  parseTrafficSelector,
  SUPPORTED_EAP_METHODS,
  swanctlDirs,
  type AuthRound,
  type ChildConfig,
  type ClientExtras,
  type IkeConnection,
  type IpsecConfig,
  type PrivateKeySecret,
  type TrafficSelector,
} from './config.js';

// ====================================================================================================
// A small JSON reader that remembers lines
// ====================================================================================================

export type JsonNode =
  | { readonly type: 'object'; readonly line: number; readonly props: Map<string, { readonly keyLine: number; readonly node: JsonNode }> }
  | { readonly type: 'array'; readonly line: number; readonly items: JsonNode[] }
  | { readonly type: 'string'; readonly line: number; readonly value: string }
  | { readonly type: 'number'; readonly line: number; readonly value: number }
  | { readonly type: 'boolean'; readonly line: number; readonly value: boolean }
  | { readonly type: 'null'; readonly line: number };

const MAX_JSON_DEPTH = 64;

class JsonReader {
  pos = 0;
  line = 1;
  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    if (text.charCodeAt(0) === 0xfeff) this.pos = 1;
  }
  err(msg: string, line = this.line): VpnError {
    return new VpnError('PROFILE_SYNTAX', oneLine(`${this.file}:${line}: invalid JSON: ${msg}`));
  }
  ws(): void {
    for (;;) {
      const c = this.text.charAt(this.pos);
      if (c === '\n') this.line++;
      else if (c !== ' ' && c !== '\t' && c !== '\r') return;
      this.pos++;
    }
  }
  found(): string {
    const c = this.text.charAt(this.pos);
    return c === '' ? 'end of file' : c === '\n' ? 'end of line' : `'${c}'`;
  }
  document(): JsonNode {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.pos < this.text.length) throw this.err(`unexpected ${this.found()} after the end of the document`);
    return v;
  }
  value(depth: number): JsonNode {
    if (depth > MAX_JSON_DEPTH) throw this.err(`nested more than ${MAX_JSON_DEPTH} deep`);
    const line = this.line;
    const c = this.text.charAt(this.pos);
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return { type: 'string', line, value: this.string() };
    for (const [word, node] of [
      ['true', { type: 'boolean', line, value: true }],
      ['false', { type: 'boolean', line, value: false }],
      ['null', { type: 'null', line }],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return node;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.pos, this.pos + 64));
    if (m) {
      this.pos += m[0].length;
      return { type: 'number', line, value: Number(m[0]) };
    }
    throw this.err(`expected a value, found ${this.found()}`);
  }
  object(depth: number): JsonNode {
    const line = this.line;
    this.pos++;
    const props = new Map<string, { keyLine: number; node: JsonNode }>();
    this.ws();
    if (this.text.charAt(this.pos) === '}') {
      this.pos++;
      return { type: 'object', line, props };
    }
    for (;;) {
      this.ws();
      if (this.text.charAt(this.pos) !== '"') throw this.err(`expected a "key", found ${this.found()}`);
      const keyLine = this.line;
      const key = this.string();
      if (props.has(key)) throw this.err(`key "${key}" appears twice in one object`, keyLine);
      this.ws();
      if (this.text.charAt(this.pos) !== ':') throw this.err(`expected ':' after "${key}", found ${this.found()}`);
      this.pos++;
      this.ws();
      props.set(key, { keyLine, node: this.value(depth + 1) });
      this.ws();
      const c = this.text.charAt(this.pos++);
      if (c === '}') return { type: 'object', line, props };
      if (c !== ',') {
        this.pos--;
        throw this.err(`expected ',' or '}', found ${this.found()}`);
      }
    }
  }
  array(depth: number): JsonNode {
    const line = this.line;
    this.pos++;
    const items: JsonNode[] = [];
    this.ws();
    if (this.text.charAt(this.pos) === ']') {
      this.pos++;
      return { type: 'array', line, items };
    }
    for (;;) {
      this.ws();
      items.push(this.value(depth + 1));
      this.ws();
      const c = this.text.charAt(this.pos++);
      if (c === ']') return { type: 'array', line, items };
      if (c !== ',') {
        this.pos--;
        throw this.err(`expected ',' or ']', found ${this.found()}`);
      }
    }
  }
  string(): string {
    const line = this.line;
    this.pos++;
    let s = '';
    for (;;) {
      const c = this.text.charAt(this.pos++);
      if (c === '') throw this.err('unterminated string', line);
      if (c === '"') return s;
      if (c === '\n' || c < ' ') throw this.err('control character inside a string', this.line);
      if (c !== '\\') {
        s += c;
        continue;
      }
      const e = this.text.charAt(this.pos++);
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e in simple) s += simple[e];
      else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos, this.pos + 4))) {
        s += String.fromCharCode(parseInt(this.text.slice(this.pos, this.pos + 4), 16));
        this.pos += 4;
      } else throw this.err(`bad escape \\${e} in a string`);
    }
  }
}

/** Parse JSON text keeping line numbers; throws VpnError PROFILE_SYNTAX `file:line: invalid JSON: …`. */
export function parseJsonWithLines(text: string, file: string): JsonNode {
  return new JsonReader(text, file).document();
}

// ====================================================================================================
// The profile
// ====================================================================================================

export const SSWAN_TYPES = ['ikev2-eap', 'ikev2-cert', 'ikev2-cert-eap', 'ikev2-eap-tls', 'ikev2-byod-eap'] as const;
export type SswanType = (typeof SSWAN_TYPES)[number];

/** The app's limits (values outside are ignored by the app; we warn and ignore them too). */
const MTU_MIN = 1280;
const MTU_MAX = 1500;
const NAT_KEEPALIVE_MIN = 10;
const NAT_KEEPALIVE_MAX = 120;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Obj = Extract<JsonNode, { type: 'object' }>;
type Prop = { readonly keyLine: number; readonly node: JsonNode };

class Sswan {
  readonly warnings: string[] = [];
  constructor(readonly file: string) {}
  syntax(line: number, msg: string): VpnError {
    return new VpnError('PROFILE_SYNTAX', oneLine(`${this.file}:${line}: ${msg}`));
  }
  unsupported(line: number, msg: string): VpnError {
    return new VpnError('PROFILE_UNSUPPORTED', oneLine(`${this.file}:${line}: ${msg}`));
  }
  warn(line: number, msg: string): void {
    this.warnings.push(oneLine(`${this.file}:${line}: ${msg}`));
  }
  /** Allow only `known` keys; others are warned about (the app ignores unknown keys). */
  keys(o: Obj, path: string, known: readonly string[]): void {
    for (const [k, p] of o.props) if (!known.includes(k)) this.warn(p.keyLine, `${path}${k} ignored: not a .sswan setting`);
  }
  obj(o: Obj, key: string, path: string): Obj | undefined {
    const p = o.props.get(key);
    if (!p || p.node.type === 'null') return undefined;
    if (p.node.type !== 'object') throw this.syntax(p.keyLine, `${path}${key}: expected an object`);
    return p.node;
  }
  str(o: Obj, key: string, path: string, required: boolean, line = o.line): { value: string; line: number } | undefined {
    const p = o.props.get(key);
    if (!p || p.node.type === 'null' || (p.node.type === 'string' && p.node.value.trim() === '')) {
      if (required) throw this.syntax(p?.keyLine ?? line, `${path}${key}: missing (required)`);
      return undefined;
    }
    if (p.node.type !== 'string') throw this.syntax(p.keyLine, `${path}${key}: expected a string`);
    return { value: p.node.value.trim(), line: p.keyLine };
  }
  bool(o: Obj, key: string, path: string): { value: boolean; line: number } | undefined {
    const p = o.props.get(key);
    if (!p || p.node.type === 'null') return undefined;
    if (p.node.type === 'boolean') return { value: p.node.value, line: p.keyLine };
    // the app's optBoolean also takes the strings "true"/"false"
    if (p.node.type === 'string' && /^(true|false)$/i.test(p.node.value)) return { value: p.node.value.toLowerCase() === 'true', line: p.keyLine };
    throw this.syntax(p.keyLine, `${path}${key}: expected true or false`);
  }
  int(o: Obj, key: string, path: string): { value: number; line: number } | undefined {
    const p = o.props.get(key);
    if (!p || p.node.type === 'null') return undefined;
    let n = NaN;
    if (p.node.type === 'number') n = p.node.value;
    else if (p.node.type === 'string' && /^\d+$/.test(p.node.value.trim())) n = Number(p.node.value.trim());
    if (!Number.isSafeInteger(n)) throw this.syntax(p.keyLine, `${path}${key}: expected an integer`);
    return { value: n, line: p.keyLine };
  }
  /** An array of strings, or one string with blank-separated items (as the app takes them). */
  list(o: Obj, key: string, path: string): { items: string[]; line: number } | undefined {
    const p: Prop | undefined = o.props.get(key);
    if (!p || p.node.type === 'null') return undefined;
    if (p.node.type === 'string') return { items: p.node.value.split(/\s+/).filter((s) => s !== ''), line: p.keyLine };
    if (p.node.type !== 'array') throw this.syntax(p.keyLine, `${path}${key}: expected an array of strings`);
    const items: string[] = [];
    for (const it of p.node.items) {
      if (it.type !== 'string') throw this.syntax(it.line, `${path}${key}: expected an array of strings`);
      items.push(it.value);
    }
    return { items, line: p.keyLine };
  }
  base64(o: Obj, key: string, path: string): { data: Uint8Array; line: number } | undefined {
    const s = this.str(o, key, path, false);
    if (!s) return undefined;
    const b = s.value.replace(/\s+/g, '');
    // Android's Base64.DEFAULT also accepts the URL-safe alphabet and missing padding
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(b) || b.length % 4 === 1) throw this.syntax(s.line, `${path}${key}: not valid base64`);
    return { data: new Uint8Array(Buffer.from(b.replace(/-/g, '+').replace(/_/g, '/'), 'base64')), line: s.line };
  }
  subnets(o: Obj, key: string, path: string): TrafficSelector[] | undefined {
    const l = this.list(o, key, path);
    if (!l) return undefined;
    // "192.168.1.1 - 192.168.1.10" in an array element is one range (the app removes the blanks)
    const p = o.props.get(key)!;
    const items = p.node.type === 'array' ? l.items.map((s) => s.replace(/\s+/g, '')) : l.items;
    const out: TrafficSelector[] = [];
    for (const item of items) {
      const ts = item.includes('[') ? undefined : parseTrafficSelector(item);
      if (!ts || ts.kind === 'dynamic') throw this.syntax(l.line, `${path}${key}: '${item}' is not a subnet, address or address range`);
      out.push(ts);
    }
    return out.length > 0 ? out : undefined;
  }
}

function authRound(section: string, where: string, round: number, auth: AuthRound['auth'], extra: Partial<AuthRound> = {}): AuthRound {
  return { ...defaultAuthRound(section, where, round), auth, authRaw: auth, ...extra };
}

/**
 * Turn `.sswan` JSON text into an IpsecConfig holding one IKE connection (named after the profile).
 * Throws VpnError PROFILE_SYNTAX / PROFILE_UNSUPPORTED with file:line only.
 */
export function parseSswan(text: string, file: string): IpsecConfig {
  try {
    return buildSswan(text, file);
  } catch (err) {
    if (err instanceof VpnError) throw err;
    throw new VpnError('PROFILE_SYNTAX', `${file}:1: cannot parse profile (internal error: ${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}

function buildSswan(text: string, file: string): IpsecConfig {
  const s = new Sswan(file);
  const doc = parseJsonWithLines(text, file);
  if (doc.type !== 'object') throw s.syntax(doc.line, 'a .sswan profile is a JSON object');
  s.keys(doc, '', ['uuid', 'name', 'type', 'remote', 'local', 'ike-proposal', 'esp-proposal', 'dns-servers', 'mtu', 'nat-keepalive', 'split-tunneling', 'apps', 'excluded-apps', 'proxy']);

  const uuid = s.str(doc, 'uuid', '', true)!;
  if (!UUID_RE.test(uuid.value)) throw s.syntax(uuid.line, `uuid: '${uuid.value}' is not a UUID (RFC 4122, e.g. from uuidgen)`);
  const name = s.str(doc, 'name', '', true)!;
  const typeV = s.str(doc, 'type', '', true)!;
  const type = typeV.value.toLowerCase();
  if (type === 'ikev2-psk') throw s.unsupported(typeV.line, `type: ikev2-psk is not a .sswan type (the strongSwan app has no PSK profiles); use a swanctl.conf with secrets { ike… }`);
  if (!(SSWAN_TYPES as readonly string[]).includes(type)) throw s.syntax(typeV.line, `type: '${typeV.value}' is not one of ${SSWAN_TYPES.join(', ')}`);
  if (type === 'ikev2-byod-eap') throw s.unsupported(typeV.line, 'type: ikev2-byod-eap (EAP with TNC health checks) is not supported');
  if (type === 'ikev2-eap-tls' && !SUPPORTED_EAP_METHODS.includes('tls')) throw s.unsupported(typeV.line, 'type: ikev2-eap-tls (EAP-TLS) is not supported; use ikev2-cert');
  const where = `${file}:${doc.line}`;
  const conn = { ...defaultIkeConnection(name.value, where) } as { -readonly [K in keyof IkeConnection]: IkeConnection[K] };
  conn.version = 2;
  conn.vips = ['0.0.0.0', '::'];
  const locations: Record<string, string> = {};
  const privateKeys: PrivateKeySecret[] = [];
  const extras: { -readonly [K in keyof ClientExtras]: ClientExtras[K] } = { sswan: { uuid: uuid.value.toLowerCase(), type, name: name.value } };

  // ----- remote -----
  const remoteP = doc.props.get('remote');
  const remote = s.obj(doc, 'remote', '');
  if (!remote) throw s.syntax(remoteP?.keyLine ?? doc.line, 'remote: missing (required, with remote.addr)');
  s.keys(remote, 'remote.', ['addr', 'port', 'id', 'cert', 'certreq', 'revocation']);
  const addr = s.str(remote, 'addr', 'remote.', true)!;
  if (/[\s,]/.test(addr.value)) throw s.syntax(addr.line, `remote.addr: '${addr.value}' is not a host name or address`);
  conn.remoteAddrs = [addr.value];
  locations['remote_addrs'] = `${file}:${addr.line}`;
  const port = s.int(remote, 'port', 'remote.');
  if (port) {
    if (port.value < 1 || port.value > 65535) throw s.syntax(port.line, `remote.port: ${port.value} is not a port (1-65535)`);
    conn.remotePort = port.value;
    locations['remote_port'] = `${file}:${port.line}`;
  }
  const remoteId = s.str(remote, 'id', 'remote.', false);
  const cert = s.base64(remote, 'cert', 'remote.');
  const certreq = s.bool(remote, 'certreq', 'remote.');
  if (certreq) conn.sendCertreq = certreq.value;
  let revocation: AuthRound['revocation'] = 'relaxed';
  const rev = s.obj(remote, 'revocation', 'remote.');
  if (rev) {
    s.keys(rev, 'remote.revocation.', ['crl', 'ocsp', 'strict']);
    const crl = s.bool(rev, 'crl', 'remote.revocation.');
    const ocsp = s.bool(rev, 'ocsp', 'remote.revocation.');
    const strict = s.bool(rev, 'strict', 'remote.revocation.');
    if (strict?.value) revocation = 'strict';
    extras.revocationSources = { crl: crl?.value ?? true, ocsp: ocsp?.value ?? true };
  }
  const remoteLine = remoteP!.keyLine;
  conn.remote = [
    authRound('remote', `${file}:${remoteLine}`, 0, 'pubkey', {
      // the app checks the server identity against the gateway address when no id is given
      id: remoteId?.value ?? addr.value,
      revocation,
      // remote.cert is "the CA or server certificate" the app installs as trusted
      cacerts: cert ? [{ data: cert.data, label: `${file}:${cert.line} remote.cert` }] : [],
    }),
  ];

  // ----- local -----
  const userPass = type === 'ikev2-eap' || type === 'ikev2-cert-eap';
  const certAuth = type === 'ikev2-cert' || type === 'ikev2-cert-eap' || type === 'ikev2-eap-tls';
  const localP = doc.props.get('local');
  const local = s.obj(doc, 'local', '');
  let localId: string | undefined;
  let eapId: string | undefined;
  let rsaPss = false;
  if (local) {
    s.keys(local, 'local.', ['id', 'eap_id', 'p12', 'rsa-pss']);
    localId = s.str(local, 'id', 'local.', false)?.value;
    const e = s.str(local, 'eap_id', 'local.', false);
    if (e && !userPass) s.warn(e.line, `local.eap_id ignored: type ${type} uses no username`);
    else eapId = e?.value;
    const p12 = s.base64(local, 'p12', 'local.');
    if (p12) {
      if (!certAuth) s.warn(p12.line, `local.p12 ignored: type ${type} uses no client certificate`);
      else privateKeys.push({ name: 'local.p12', where: `${file}:${p12.line}`, type: 'pkcs12', data: p12.data });
    }
    const pss = s.bool(local, 'rsa-pss', 'local.');
    if (pss && !certAuth) s.warn(pss.line, `local.rsa-pss ignored: type ${type} uses no client certificate`);
    else rsaPss = pss?.value ?? false;
  }
  const lw = `${file}:${localP?.keyLine ?? doc.line}`;
  const pubkey = authRound('local', lw, 0, 'pubkey', { ...(localId !== undefined ? { id: localId } : {}), constraints: rsaPss ? ['rsa/pss'] : [], authRaw: rsaPss ? 'rsa/pss' : 'pubkey' });
  const eap = (section: string, round: number): AuthRound =>
    authRound(section, lw, round, 'eap', {
      // with EAP only, the app uses the username as IKE identity unless local.id is set
      ...(type === 'ikev2-eap' && (localId ?? eapId) !== undefined ? { id: (localId ?? eapId)! } : {}),
      ...(eapId !== undefined ? { eapId } : {}),
    });
  if (type === 'ikev2-eap') conn.local = [eap('local', 0)];
  else if (type === 'ikev2-cert') conn.local = [pubkey];
  else if (type === 'ikev2-cert-eap') conn.local = [pubkey, eap('local-eap', 1)];
  else conn.local = [authRound('local', lw, 0, 'eap', { authRaw: 'eap-tls', eapMethod: 'tls', ...(localId !== undefined ? { id: localId } : {}) })];

  // ----- proposals, options -----
  const child: { -readonly [K in keyof ChildConfig]: ChildConfig[K] } = { ...defaultChild('android', where) };
  child.localTs = [parseTrafficSelector('0.0.0.0/0')!, parseTrafficSelector('::/0')!];
  child.remoteTs = [parseTrafficSelector('0.0.0.0/0')!, parseTrafficSelector('::/0')!];
  for (const [key, set] of [
    ['ike-proposal', (p: string[]) => (conn.proposals = p)],
    ['esp-proposal', (p: string[]) => (child.espProposals = p)],
  ] as const) {
    const v = s.str(doc, key, '', false);
    if (!v) continue;
    const p = parseProposalList(v.value);
    if (!p) throw s.syntax(v.line, `${key}: '${v.value}' is not a proposal (dash-separated algorithm keywords)`);
    set(p);
    locations[key] = `${file}:${v.line}`;
  }
  const dns = s.list(doc, 'dns-servers', '');
  if (dns) {
    for (const a of dns.items) if (!isIP(a)) throw s.syntax(dns.line, `dns-servers: '${a}' is not an IP address`);
    if (dns.items.length > 0) extras.dnsServers = dns.items;
  }
  const mtu = s.int(doc, 'mtu', '');
  if (mtu) {
    if (mtu.value < MTU_MIN || mtu.value > MTU_MAX) s.warn(mtu.line, `mtu ${mtu.value} ignored: the app accepts ${MTU_MIN} to ${MTU_MAX}`);
    else extras.mtu = mtu.value;
  }
  const ka = s.int(doc, 'nat-keepalive', '');
  if (ka) {
    if (ka.value < NAT_KEEPALIVE_MIN || ka.value > NAT_KEEPALIVE_MAX) s.warn(ka.line, `nat-keepalive ${ka.value} ignored: the app accepts ${NAT_KEEPALIVE_MIN} to ${NAT_KEEPALIVE_MAX} seconds`);
    else extras.natKeepalive = ka.value;
  }
  const split = s.obj(doc, 'split-tunneling', '');
  if (split) {
    s.keys(split, 'split-tunneling.', ['subnets', 'excluded', 'block-ipv4', 'block-ipv6']);
    const inc = s.subnets(split, 'subnets', 'split-tunneling.');
    if (inc) child.remoteTs = inc;
    const exc = s.subnets(split, 'excluded', 'split-tunneling.');
    if (exc) extras.excludedSubnets = exc;
    const b4 = s.bool(split, 'block-ipv4', 'split-tunneling.');
    const b6 = s.bool(split, 'block-ipv6', 'split-tunneling.');
    if (b4?.value) extras.blockIpv4 = true;
    if (b6?.value) extras.blockIpv6 = true;
  }
  for (const key of ['apps', 'excluded-apps', 'proxy']) {
    const p = doc.props.get(key);
    if (p && p.node.type !== 'null') s.warn(p.keyLine, `${key} ignored: per-app VPN and proxy settings are for the Android app`);
  }

  conn.children = new Map([[child.name, child]]);
  conn.locations = locations;
  conn.client = extras;
  return {
    file,
    dirs: swanctlDirs(nodePath.dirname(nodePath.resolve(file))),
    connections: new Map([[conn.name, conn]]),
    manual: new Map(),
    secrets: { ike: [], eap: [], ntlm: [], privateKeys },
    authorities: new Map(),
    warnings: s.warnings,
  };
}

/** Read a `.sswan` file. */
export async function loadSswan(path: string): Promise<IpsecConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new VpnError('PROFILE_FILE', `cannot read profile ${nodePath.resolve(path)}: ${code === 'ENOENT' ? 'no such file' : String(err)}`, { cause: err });
  }
  return parseSswan(text, path);
}
