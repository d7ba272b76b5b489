/**
 * Server → client control-channel messages (openvpn.md §5.2-5.3): PUSH_REPLY options, push-continuation,
 * AUTH_FAILED variants, AUTH_PENDING, RESTART, HALT, INFO/INFO_PRE, EXIT; and pull-filter rules.
 *
 * Nothing here throws on server input: malformed options are collected in `PushedOptions.errors` (OpenVPN
 * logs "Options error" and carries on), unknown ones in `unknown`.
 */
import type { PullFilterRule } from './profile-types.js';
import { tokenizeLine } from './tokenize.js';

export type { PullFilterRule };

export type Topology = 'net30' | 'p2p' | 'subnet';

export interface PushedRoute {
  /** Network (IPv4 literal or a keyword such as `vpn_gateway`/`net_gateway`/`remote_host`, or a hostname). */
  network: string;
  /** Default 255.255.255.255. */
  netmask: string;
  /** Gateway as pushed (IP or keyword); undefined = the VPN gateway (route-gateway). */
  gateway?: string;
  metric?: number;
}

export interface PushedRouteIpv6 {
  /** `addr/bits`. */
  network: string;
  gateway?: string;
  metric?: number;
}

/** One resolver from the 2.6 `dns server <priority> ...` options. */
export interface PushedDnsServer {
  priority: number;
  addresses: { host: string; port?: number }[];
  resolveDomains: string[];
  excludeDomains: string[];
  dnssec?: string;
  transport?: string;
  sni?: string;
}

export type PushedCompression =
  | { kind: 'comp-lzo'; mode: 'yes' | 'no' | 'adaptive' }
  | { kind: 'compress'; algo: string };

export interface PushedOptions {
  /** `ifconfig a b`: a = our tunnel IPv4 address; b = netmask (topology subnet) or the peer (net30/p2p). */
  ifconfig?: {
    local: string;
    /** The second word as pushed. */
    second: string;
    /** Resolved with `topology`: subnet → second; net30 → 255.255.255.252; p2p → 255.255.255.255. */
    netmask: string;
    /** net30/p2p: the remote end (second word). */
    remote?: string;
  };
  /** `ifconfig-ipv6 addr/bits remote`. */
  ifconfigIpv6?: { address: string; remote?: string };
  /** `topology` (undefined = not pushed; OpenVPN 2.6 then assumes net30). */
  topology?: Topology;
  /** `route-gateway ip|dhcp`. */
  routeGateway?: string;
  routes: PushedRoute[];
  routesIpv6: PushedRouteIpv6[];
  /** `redirect-gateway flags...` (def1, bypass-dhcp, ipv6, !ipv4, ...). */
  redirectGateway?: { flags: string[] };
  redirectPrivate?: { flags: string[] };
  /**
   * IPv4 DNS servers to use: from 2.6 `dns server` options when any were pushed (they take precedence,
   * ordered by priority, ports dropped), otherwise from `dhcp-option DNS`.
   */
  dns: string[];
  /** IPv6 DNS servers, chosen the same way (`dhcp-option DNS6` otherwise). */
  dns6: string[];
  /** Exactly the `dhcp-option DNS` values. */
  dhcpDns: string[];
  /** Exactly the `dhcp-option DNS6` values. */
  dhcpDns6: string[];
  /** `dhcp-option DOMAIN d` (last one). */
  domain?: string;
  /** `dhcp-option DOMAIN-SEARCH d` values and `dns search-domains` values. */
  searchDomains: string[];
  /** domain (if any) followed by searchDomains: the list to try for short names. */
  domains: string[];
  /** Other `dhcp-option` kinds (WINS, NTP, NBT, ...), as `KIND value`. */
  dhcpOther: string[];
  /** 2.6 `dns server` entries, by priority. */
  dnsServers: PushedDnsServer[];
  tunMtu?: number;
  peerId?: number;
  cipher?: string;
  /** `auth` (pushed only by some servers for CBC). */
  auth?: string;
  ping?: number;
  pingRestart?: number;
  pingExit?: number;
  /** `inactive n [bytes]`. */
  inactive?: { seconds: number; bytes: number };
  sessionTimeout?: number;
  explicitExitNotify?: number;
  authToken?: string;
  /** `auth-token-user` decoded from base64. */
  authTokenUser?: string;
  /** `key-derivation tls-ekm`. */
  keyDerivation?: string;
  /** `protocol-flags` words (cc-exit, tls-ekm, dyn-tls-crypt, aead-epoch ...), in order. */
  protocolFlags: string[];
  compression?: PushedCompression;
  /** Options we recognise and deliberately ignore (echo, block-outside-dns, ...), as pushed. */
  ignored: string[];
  /** Options we do not know, as pushed. */
  unknown: string[];
  /** Problems with known options (bad number, missing argument), e.g. `ping: bad number "x"`. */
  errors: string[];
  /** Options dropped by `pull-filter ignore`. */
  filtered: string[];
  /** Set when a `pull-filter reject` rule matched: the session must restart; parsing stopped there. */
  rejected?: { option: string; rule: PullFilterRule };
  /** The option strings this set was built from (after continuation merging, before filtering). */
  raw: string[];
  /** Every option is `auth-token`/`auth-token-user` (a token refresh after renegotiation, §5.2). */
  tokenOnly: boolean;
}

export type ServerMessage =
  | {
      type: 'push-reply';
      /** This message's options on their own (a continuation part is not complete; use PushAccumulator). */
      options: PushedOptions;
      /** 2 = more parts follow, 1 = last part, 0 = no push-continuation option. */
      continuation: 0 | 1 | 2;
      /** True for a standalone `PUSH_REPLY,auth-token ...` (a token update, not a new configuration). */
      tokenUpdate: boolean;
    }
  | { type: 'push-update'; raw: string[] }
  | {
      type: 'auth-failed';
      /** Text after `AUTH_FAILED,` ('' when none). */
      reason: string;
      /** `TEMP[backoff n,advance no|addr|remote]:msg` */
      temp?: { backoff?: number; advance?: 'no' | 'addr' | 'remote'; message: string };
      /** `SESSION:msg`: the auth-token/session expired; reconnect with real credentials. */
      session?: { message: string };
      /** `CRV1:flags:state_id:b64 username:text`: dynamic challenge. */
      crv1?: { flags: string[]; echo: boolean; responseRequired: boolean; stateId: string; username: string; text: string };
    }
  | { type: 'auth-pending'; timeout?: number; keywords: string[] }
  | {
      type: 'restart';
      /** `P`: keep the cached credentials. */
      keepCredentials: boolean;
      /** `N`: advance to the next remote. */
      advance: boolean;
      /** The flag letters between the brackets, e.g. 'PN'. */
      flags: string;
      /** Text after the flags. */
      message: string;
    }
  | { type: 'halt'; message: string }
  | {
      type: 'info-pre';
      text: string;
      webAuth?: { flags: string[]; url: string };
      openUrl?: string;
      crText?: { flags: string[]; text: string };
    }
  | { type: 'info'; text: string }
  | { type: 'exit' }
  | { type: 'unknown'; text: string };

// ------------------------------------------------------------------------------------------------
// pull-filter

export type PullFilterDecision = { action: 'accept' | 'ignore' | 'reject'; rule?: PullFilterRule };

/**
 * OpenVPN's apply_pull_filter: leading whitespace of the option is skipped, then the first rule whose
 * text is a prefix of the option decides. No match → accept.
 */
export function applyPullFilters(option: string, rules: readonly PullFilterRule[]): PullFilterDecision {
  const o = option.replace(/^[ \t\n\v\f\r]+/, '');
  for (const rule of rules) {
    if (o.startsWith(rule.prefix)) return { action: rule.action, rule };
  }
  return { action: 'accept' };
}

// ------------------------------------------------------------------------------------------------
// PUSH_REPLY options

/** Strip a trailing NUL and CR/LF as OpenVPN does before dispatch. */
function clean(msg: string): string {
  let end = msg.length;
  while (end > 0) {
    const c = msg.charCodeAt(end - 1);
    if (c === 0 || c === 10 || c === 13) end--;
    else break;
  }
  return msg.slice(0, end);
}

/** The options of a `PUSH_REPLY,...` message, split on commas (not quote-aware, like OpenVPN). */
export function splitPushOptions(body: string): string[] {
  if (body === '') return [];
  return body.split(',').filter((o) => o.replace(/[ \t\n\v\f\r]+/g, '') !== '');
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIpv4(s: string): boolean {
  return IPV4_RE.test(s);
}

const PUSH_IGNORED: ReadonlySet<string> = new Set([
  'echo', 'setenv', 'setenv-safe', 'register-dns', 'block-outside-dns', 'route-metric', 'socket-flags', 'sndbuf',
  'rcvbuf', 'tun-ipv6', 'dhcp-pre-release', 'dhcp-renew', 'dhcp-release', 'persist-key', 'persist-tun',
  'block-ipv6', 'route-delay', 'ip-win32', 'client-nat', 'tap-sleep', 'route-ipv6-gateway', 'mute', 'verb',
  'dhcp-option-ipv6', 'ifconfig-ipv6-remote', 'redirect-ipv6', 'tun-mtu-extra', 'mssfix', 'link-mtu',
  'reneg-sec', 'comp-noadapt', 'auth-retry', 'push-peer-info', 'up', 'down', 'route-up', 'route-pre-down',
]);

function emptyOptions(): PushedOptions {
  return {
    routes: [],
    routesIpv6: [],
    dns: [],
    dns6: [],
    dhcpDns: [],
    dhcpDns6: [],
    searchDomains: [],
    domains: [],
    dhcpOther: [],
    dnsServers: [],
    protocolFlags: [],
    ignored: [],
    unknown: [],
    errors: [],
    filtered: [],
    raw: [],
    tokenOnly: false,
  };
}

function num(s: string | undefined, max = 0x7fffffff): number | undefined {
  if (s === undefined || !/^\d{1,10}$/.test(s)) return undefined;
  const v = Number(s);
  return v <= max ? v : undefined;
}

function parseDnsAddress(s: string): { host: string; port?: number } | undefined {
  let host = s;
  let port: number | undefined;
  const br = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
  if (br) {
    host = br[1]!;
    if (br[2] !== undefined) port = Number(br[2]);
  } else if ((s.match(/:/g) ?? []).length === 1) {
    const i = s.indexOf(':');
    host = s.slice(0, i);
    const p = s.slice(i + 1);
    if (!/^\d{1,5}$/.test(p)) return undefined;
    port = Number(p);
  }
  if (host === '' || (port !== undefined && (port < 1 || port > 65535))) return undefined;
  return port === undefined ? { host } : { host, port };
}

/** Apply one tokenized pushed option to `o`. Returns an error text for a malformed known option. */
function applyOption(o: PushedOptions, words: string[], text: string, dnsMap: Map<number, PushedDnsServer>): string | undefined {
  const name = words[0]!;
  const a = words.slice(1);
  const need = (n: number): string | undefined => (a.length < n ? `${name}: needs ${n} argument${n > 1 ? 's' : ''}` : undefined);
  const setNum = (key: 'tunMtu' | 'peerId' | 'ping' | 'pingRestart' | 'pingExit' | 'sessionTimeout', max?: number): string | undefined => {
    const e = need(1);
    if (e) return e;
    const v = num(a[0], max);
    if (v === undefined) return `${name}: bad number ${JSON.stringify(a[0])}`;
    o[key] = v;
    return undefined;
  };
  switch (name) {
    case 'ifconfig': {
      const e = need(2);
      if (e) return e;
      if (!isIpv4(a[0]!) || !isIpv4(a[1]!)) return `ifconfig: bad address ${JSON.stringify(a.join(' '))}`;
      o.ifconfig = { local: a[0]!, second: a[1]!, netmask: a[1]! };
      return undefined;
    }
    case 'ifconfig-ipv6': {
      const e = need(1);
      if (e) return e;
      o.ifconfigIpv6 = a[1] !== undefined ? { address: a[0]!, remote: a[1] } : { address: a[0]! };
      return undefined;
    }
    case 'topology': {
      const e = need(1);
      if (e) return e;
      if (a[0] !== 'net30' && a[0] !== 'p2p' && a[0] !== 'subnet') return `topology: unknown ${JSON.stringify(a[0])}`;
      o.topology = a[0];
      return undefined;
    }
    case 'route-gateway': {
      const e = need(1);
      if (e) return e;
      o.routeGateway = a[0]!;
      return undefined;
    }
    case 'route': {
      const e = need(1);
      if (e) return e;
      const r: PushedRoute = { network: a[0]!, netmask: a[1] ?? '255.255.255.255' };
      if (a[1] !== undefined && a[1] !== 'default' && !isIpv4(a[1])) return `route: bad netmask ${JSON.stringify(a[1])}`;
      if (a[1] === 'default') r.netmask = '255.255.255.255';
      if (a[2] !== undefined && a[2] !== 'default') r.gateway = a[2];
      if (a[3] !== undefined && a[3] !== 'default') {
        const m = num(a[3]);
        if (m === undefined) return `route: bad metric ${JSON.stringify(a[3])}`;
        r.metric = m;
      }
      o.routes.push(r);
      return undefined;
    }
    case 'route-ipv6': {
      const e = need(1);
      if (e) return e;
      const r: PushedRouteIpv6 = { network: a[0]! };
      if (a[1] !== undefined && a[1] !== 'default') r.gateway = a[1];
      if (a[2] !== undefined && a[2] !== 'default') {
        const m = num(a[2]);
        if (m === undefined) return `route-ipv6: bad metric ${JSON.stringify(a[2])}`;
        r.metric = m;
      }
      o.routesIpv6.push(r);
      return undefined;
    }
    case 'redirect-gateway':
      o.redirectGateway = { flags: a };
      return undefined;
    case 'redirect-private':
      o.redirectPrivate = { flags: a };
      return undefined;
    case 'dhcp-option': {
      const e = need(1);
      if (e) return e;
      const kind = a[0]!.toUpperCase();
      const v = a[1];
      if (kind === 'DNS' || kind === 'DNS6' || kind === 'DOMAIN' || kind === 'DOMAIN-SEARCH' || kind === 'ADAPTER-DOMAIN-SUFFIX') {
        if (v === undefined) return `dhcp-option ${kind}: needs a value`;
        if (kind === 'DNS') {
          // OpenVPN accepts an IPv6 address in `dhcp-option DNS` as DNS6.
          if (isIpv4(v)) o.dhcpDns.push(v);
          else if (v.includes(':')) o.dhcpDns6.push(v);
          else return `dhcp-option DNS: bad address ${JSON.stringify(v)}`;
        } else if (kind === 'DNS6') o.dhcpDns6.push(v);
        else if (kind === 'DOMAIN' || kind === 'ADAPTER-DOMAIN-SUFFIX') o.domain = v;
        else o.searchDomains.push(v);
        return undefined;
      }
      o.dhcpOther.push(a.join(' '));
      return undefined;
    }
    case 'dns': {
      const e = need(1);
      if (e) return e;
      if (a[0] === 'search-domains') {
        o.searchDomains.push(...a.slice(1));
        return undefined;
      }
      if (a[0] !== 'server') return `dns: unknown sub-option ${JSON.stringify(a[0])}`;
      if (a.length < 4) return 'dns server: needs a priority, a keyword and a value';
      if (!/^-?\d{1,3}$/.test(a[1]!)) return `dns server: bad priority ${JSON.stringify(a[1])}`;
      const prio = Number(a[1]);
      let s = dnsMap.get(prio);
      if (!s) {
        s = { priority: prio, addresses: [], resolveDomains: [], excludeDomains: [] };
        dnsMap.set(prio, s);
      }
      const vals = a.slice(3);
      switch (a[2]) {
        case 'address':
          for (const v of vals) {
            const addr = parseDnsAddress(v);
            if (!addr) return `dns server ${prio} address: bad address ${JSON.stringify(v)}`;
            s.addresses.push(addr);
          }
          return undefined;
        case 'resolve-domains':
          s.resolveDomains.push(...vals);
          return undefined;
        case 'exclude-domains':
          s.excludeDomains.push(...vals);
          return undefined;
        case 'dnssec':
          s.dnssec = vals[0];
          return undefined;
        case 'transport':
          s.transport = vals[0];
          return undefined;
        case 'sni':
          s.sni = vals[0];
          return undefined;
        default:
          return `dns server ${prio}: unknown keyword ${JSON.stringify(a[2])}`;
      }
    }
    case 'tun-mtu':
      return setNum('tunMtu', 65535);
    case 'peer-id':
      return setNum('peerId', 0xffffff);
    case 'ping':
      return setNum('ping');
    case 'ping-restart':
      return setNum('pingRestart');
    case 'ping-exit':
      return setNum('pingExit');
    case 'session-timeout':
      return setNum('sessionTimeout');
    case 'inactive': {
      const e = need(1);
      if (e) return e;
      const s = num(a[0]);
      const b = a[1] === undefined ? 0 : a[1] !== undefined && /^\d{1,19}$/.test(a[1]) ? Number(a[1]) : undefined;
      if (s === undefined || b === undefined) return `inactive: bad number ${JSON.stringify(a.join(' '))}`;
      o.inactive = { seconds: s, bytes: b };
      return undefined;
    }
    case 'explicit-exit-notify': {
      if (a[0] === undefined) {
        o.explicitExitNotify = 1;
        return undefined;
      }
      const v = num(a[0]);
      if (v === undefined) return `explicit-exit-notify: bad number ${JSON.stringify(a[0])}`;
      o.explicitExitNotify = v;
      return undefined;
    }
    case 'cipher': {
      const e = need(1);
      if (e) return e;
      o.cipher = a[0]!.toLowerCase() === 'none' ? 'none' : a[0]!.toUpperCase();
      return undefined;
    }
    case 'auth': {
      const e = need(1);
      if (e) return e;
      o.auth = a[0]!.toLowerCase() === 'none' ? 'none' : a[0]!.toUpperCase();
      return undefined;
    }
    case 'auth-token': {
      const e = need(1);
      if (e) return e;
      o.authToken = a[0]!;
      return undefined;
    }
    case 'auth-token-user': {
      const e = need(1);
      if (e) return e;
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(a[0]!)) return 'auth-token-user: not base64';
      o.authTokenUser = Buffer.from(a[0]!, 'base64').toString('utf8');
      return undefined;
    }
    case 'key-derivation': {
      const e = need(1);
      if (e) return e;
      o.keyDerivation = a[0]!;
      return undefined;
    }
    case 'protocol-flags':
      for (const f of a) if (!o.protocolFlags.includes(f)) o.protocolFlags.push(f);
      return undefined;
    case 'comp-lzo': {
      const m = a[0] ?? 'adaptive';
      if (m !== 'yes' && m !== 'no' && m !== 'adaptive') return `comp-lzo: unknown mode ${JSON.stringify(m)}`;
      o.compression = { kind: 'comp-lzo', mode: m };
      return undefined;
    }
    case 'compress':
      o.compression = { kind: 'compress', algo: a[0] ?? 'stub' };
      return undefined;
    case 'push-continuation':
      return undefined; // handled by the caller
    default:
      if (PUSH_IGNORED.has(name)) o.ignored.push(text);
      else o.unknown.push(text);
      return undefined;
  }
}

function finish(o: PushedOptions, dnsMap: Map<number, PushedDnsServer>): PushedOptions {
  if (o.ifconfig) {
    const t = o.topology ?? 'net30';
    if (t === 'subnet') o.ifconfig = { local: o.ifconfig.local, second: o.ifconfig.second, netmask: o.ifconfig.second };
    else
      o.ifconfig = {
        local: o.ifconfig.local,
        second: o.ifconfig.second,
        netmask: t === 'net30' ? '255.255.255.252' : '255.255.255.255',
        remote: o.ifconfig.second,
      };
  }
  o.dnsServers = [...dnsMap.values()].sort((x, y) => x.priority - y.priority);
  if (o.dnsServers.length > 0) {
    const all = o.dnsServers.flatMap((s) => s.addresses.map((x) => x.host));
    o.dns = all.filter(isIpv4);
    o.dns6 = all.filter((h) => h.includes(':'));
  } else {
    o.dns = [...o.dhcpDns];
    o.dns6 = [...o.dhcpDns6];
  }
  o.domains = o.domain !== undefined ? [o.domain, ...o.searchDomains.filter((d) => d !== o.domain)] : [...o.searchDomains];
  const names = o.raw.map((r) => r.replace(/^[ \t\n\v\f\r]+/, '').split(/[ \t\n\v\f\r]/)[0]);
  o.tokenOnly = names.length > 0 && names.includes('auth-token') && names.every((n) => n === 'auth-token' || n === 'auth-token-user');
  return o;
}

/**
 * Build PushedOptions from option strings (the comma-separated parts of one or more PUSH_REPLY messages),
 * applying pull-filter rules first, as OpenVPN does. Never throws.
 */
export function parsePushOptions(options: readonly string[], pullFilters: readonly PullFilterRule[] = []): PushedOptions {
  const o = emptyOptions();
  const dnsMap = new Map<number, PushedDnsServer>();
  o.raw = options.filter((t) => t.replace(/^[ \t\n\v\f\r]+/, '') !== '');
  for (const text of o.raw) {
    const d = applyPullFilters(text, pullFilters);
    if (d.action === 'reject') {
      o.rejected = { option: text, rule: d.rule! };
      break;
    }
    if (d.action === 'ignore') {
      o.filtered.push(text);
      continue;
    }
    const tok = tokenizeLine(text);
    if (!tok.ok) {
      o.errors.push(`${JSON.stringify(text)}: ${tok.error}`);
      continue;
    }
    if (tok.words.length === 0) continue;
    const err = applyOption(o, tok.words, text, dnsMap);
    if (err) o.errors.push(err);
  }
  return finish(o, dnsMap);
}

/** The push-continuation value of one message's option list: 2 = more follows, 1 = last, 0 = absent. */
function continuationOf(options: readonly string[]): 0 | 1 | 2 {
  let c: 0 | 1 | 2 = 0;
  for (const opt of options) {
    const tok = tokenizeLine(opt);
    if (tok.ok && tok.words[0] === 'push-continuation') {
      c = tok.words[1] === '2' ? 2 : 1;
    }
  }
  return c;
}

// ------------------------------------------------------------------------------------------------
// Whole messages

function parseAuthFailed(reason: string): ServerMessage {
  const m: Extract<ServerMessage, { type: 'auth-failed' }> = { type: 'auth-failed', reason };
  if (reason.startsWith('TEMP')) {
    // TEMP[backoff 42,advance no]:message  (flags optional)
    const rest = reason.slice(4);
    const temp: NonNullable<typeof m.temp> = { message: '' };
    let after = rest;
    const close = rest.indexOf(']');
    if (rest.startsWith('[') && close >= 0) {
      for (const flag of rest.slice(1, close).split(',')) {
        const f = flag.trim();
        const bo = /^backoff (\d{1,9})$/.exec(f);
        if (bo) temp.backoff = Number(bo[1]);
        else if (f === 'advance no' || f === 'advance addr' || f === 'advance remote') temp.advance = f.slice(8) as 'no' | 'addr' | 'remote';
      }
      after = rest.slice(close + 1);
    }
    temp.message = after.startsWith(':') ? after.slice(1) : '';
    m.temp = temp;
  } else if (reason.startsWith('SESSION:')) {
    m.session = { message: reason.slice('SESSION:'.length) };
  } else if (reason.startsWith('CRV1:')) {
    // CRV1:<flags>:<state_id>:<base64 username>:<challenge text (may contain ':')>
    const parts = reason.slice(5).split(':');
    if (parts.length >= 4) {
      const flags = parts[0]!.split(',').filter((f) => f !== '');
      let username = '';
      if (/^[A-Za-z0-9+/]*={0,2}$/.test(parts[2]!)) username = Buffer.from(parts[2]!, 'base64').toString('utf8');
      m.crv1 = {
        flags,
        echo: flags.includes('E'),
        responseRequired: flags.includes('R'),
        stateId: parts[1]!,
        username,
        text: parts.slice(3).join(':'),
      };
    }
  }
  return m;
}

function parseInfoPre(text: string): ServerMessage {
  const m: Extract<ServerMessage, { type: 'info-pre' }> = { type: 'info-pre', text };
  if (text.startsWith('WEB_AUTH:')) {
    const rest = text.slice(9);
    const i = rest.indexOf(':');
    if (i >= 0) m.webAuth = { flags: rest.slice(0, i).split(',').filter((f) => f !== ''), url: rest.slice(i + 1) };
  } else if (text.startsWith('OPEN_URL:')) {
    m.openUrl = text.slice(9);
  } else if (text.startsWith('CR_TEXT:')) {
    const rest = text.slice(8);
    const i = rest.indexOf(':');
    if (i >= 0) m.crText = { flags: rest.slice(0, i).split(',').filter((f) => f !== ''), text: rest.slice(i + 1) };
  }
  return m;
}

/** Text after `PREFIX,` or '' (for RESTART/HALT/INFO, which use the same shape). */
function afterComma(msg: string, prefix: string): string {
  return msg.length > prefix.length && msg[prefix.length] === ',' ? msg.slice(prefix.length + 1) : '';
}

/**
 * Classify one control-channel message from the server (trailing NUL/CR/LF ignored). Dispatch by prefix in
 * OpenVPN's order (forward.c). Never throws.
 */
export function parseServerMessage(msg: string, pullFilters: readonly PullFilterRule[] = []): ServerMessage {
  const s = clean(msg);
  if (s.startsWith('AUTH_FAILED')) return parseAuthFailed(afterComma(s, 'AUTH_FAILED'));
  if (s.startsWith('PUSH_REPLY')) {
    if (s.length > 10 && s[10] !== ',') return { type: 'unknown', text: s };
    const raw = splitPushOptions(s.slice(11));
    const options = parsePushOptions(raw, pullFilters);
    const continuation = continuationOf(raw);
    return { type: 'push-reply', options, continuation, tokenUpdate: options.tokenOnly && continuation === 0 };
  }
  if (s.startsWith('PUSH_UPDATE')) return { type: 'push-update', raw: splitPushOptions(afterComma(s, 'PUSH_UPDATE')) };
  if (s.startsWith('RESTART')) {
    const m = afterComma(s, 'RESTART');
    let flags = '';
    let message = m;
    if (m.startsWith('[')) {
      const close = m.indexOf(']');
      flags = close >= 0 ? m.slice(1, close) : m.slice(1);
      message = close >= 0 ? m.slice(close + 1) : '';
    }
    return { type: 'restart', keepCredentials: flags.includes('P'), advance: flags.includes('N'), flags, message };
  }
  if (s.startsWith('HALT')) return { type: 'halt', message: afterComma(s, 'HALT') };
  if (s.startsWith('INFO_PRE')) return parseInfoPre(afterComma(s, 'INFO_PRE'));
  if (s.startsWith('INFO')) return { type: 'info', text: afterComma(s, 'INFO') };
  if (s.startsWith('AUTH_PENDING')) {
    const keywords = s.length > 12 && s[12] === ',' ? s.slice(13).split(',').filter((k) => k !== '') : [];
    let timeout: number | undefined;
    for (const k of keywords) {
      const t = /^timeout (\d{1,9})/.exec(k.trim());
      if (t) timeout = Number(t[1]);
    }
    return timeout === undefined ? { type: 'auth-pending', keywords } : { type: 'auth-pending', timeout, keywords };
  }
  if (s === 'EXIT' || s.startsWith('EXIT,')) return { type: 'exit' };
  return { type: 'unknown', text: s };
}

/**
 * Collects `push-continuation` parts. `add` returns the merged options once a part without
 * `push-continuation 2` arrives, undefined while more parts are expected. Pull filters are applied to the
 * merged list (a `reject` shows up as `rejected`).
 */
export class PushAccumulator {
  private parts: string[] = [];
  private collecting = false;
  constructor(private readonly pullFilters: readonly PullFilterRule[] = []) {}

  /** Accepts a raw message string or a parsed `push-reply` message. Other message types are ignored (undefined). */
  add(msg: string | ServerMessage): PushedOptions | undefined {
    const m = typeof msg === 'string' ? parseServerMessage(msg) : msg;
    if (m.type !== 'push-reply') return undefined;
    const raw = m.options.raw.filter((r) => !/^[ \t]*push-continuation([ \t]|$)/.test(r));
    this.parts.push(...raw);
    if (m.continuation === 2) {
      this.collecting = true;
      return undefined;
    }
    const all = this.parts;
    this.parts = [];
    this.collecting = false;
    return parsePushOptions(all, this.pullFilters);
  }

  /** True while continuation parts are outstanding. */
  get pending(): boolean {
    return this.collecting;
  }

  /** Drop collected parts (e.g. on restart). */
  reset(): void {
    this.parts = [];
    this.collecting = false;
  }
}
