/**
 * OpenVPN client profile (.ovpn) parser: the file syntax of OpenVPN's own config reader (see tokenize.ts),
 * inline `<name>…</name>` blocks, `<connection>` blocks, `setenv opt`, `ignore-unknown-option`, and the
 * directive policy of openvpn.md §6.2:
 *
 * - implemented directives become typed fields of OpenVpnProfile (profile-types.ts);
 * - recognised-but-irrelevant ones are listed in `profile.ignored`;
 * - unknown ones give one warning per name (`line 12: unknown directive 'foo' ignored`);
 * - directives that run programs are never run (one warning per name);
 * - directives that would change the wire format or need something we do not have throw
 *   VpnError('PROFILE_UNSUPPORTED') with file:line;
 * - malformed input throws PROFILE_SYNTAX (file:line), a missing referenced file PROFILE_FILE.
 *
 * Relative file references are resolved against the profile's directory.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import nodePath from 'node:path';
import { isIP, isIPv6 } from 'node:net';
import { VpnError } from '../errors.js';
import { parseStaticKey, parseTlsCryptV2ClientKey, type KeyDirection, type StaticKey, type TlsCryptV2ClientKey } from './keyfile.js';
import {
  CONNECTION_DIRECTIVES,
  IGNORED_DIRECTIVES,
  INLINE_DIRECTIVES,
  PROGRAM_DIRECTIVES,
  PUSH_ONLY_DIRECTIVES,
  UNSUPPORTED_DIRECTIVES,
  unsupportedMessage,
  type Unsupported,
} from './profile-directives.js';
import type {
  AddressFamily,
  CompressionSetting,
  ConnectionOptions,
  DataCipher,
  MssFix,
  OpenVpnProfile,
  ParsedProfile,
  ParseProfileOptions,
  ProfileProxy,
  ProfileRemote,
  ProfileWarning,
  PullFilterRule,
  TlsVersion,
  TlsWrap,
} from './profile-types.js';
import { splitConfigLines, stripDoubleDash, tokenizeLine } from './tokenize.js';
import { fileErrorText } from '../util/fs-error.js';

export type * from './profile-types.js';

export const DEFAULT_DATA_CIPHERS = 'AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305';
export const DEFAULT_PORT = 1194;

type Scope = 'global' | 'connection';

interface WrapDraft {
  keyDirection: KeyDirection;
  tlsAuth?: { key: StaticKey; line: number };
  tlsCrypt?: { key: StaticKey; line: number };
  tlsCryptV2?: { key: TlsCryptV2ClientKey; line: number };
}

interface CeDraft {
  proto: 'udp' | 'tcp';
  family: AddressFamily;
  remotePort: number;
  opts: Omit<ConnectionOptions, 'tlsWrap' | 'proxy'>;
  wrap: WrapDraft;
  remote?: { host: string; line: number };
  proxy?: ProxyDraft;
  httpOpts: HttpProxyOptionsDraft;
}

interface ProxyDraft {
  type: 'http' | 'socks5';
  host: string;
  port: number;
  line: number;
  /** The auth argument: undefined (none given), 'auto', 'auto-nct', 'stdin' or a resolved file path. */
  authArg?: string;
  method?: 'none' | 'basic' | 'digest';
  credentials?: { username: string; password?: string; source: 'file'; path: string };
}

interface HttpProxyOptionsDraft {
  version?: '1.0' | '1.1';
  agent?: string;
  headers: Array<[string, string]>;
  timeout?: number;
}

interface Inline {
  text: string;
  line: number;
}

interface TopRemote {
  host: string;
  port?: number;
  proto?: 'udp' | 'tcp';
  family?: AddressFamily;
  line: number;
}

function defaultCe(): CeDraft {
  return {
    proto: 'udp',
    family: 'any',
    remotePort: DEFAULT_PORT,
    opts: {
      tunMtu: 1500,
      tunMtuMax: 1600,
      mssfix: { value: 1492, flag: 'mtu', explicit: false },
      explicitExitNotify: 0,
      connectRetry: { seconds: 1, maxSeconds: 300 },
      connectTimeout: 120,
    },
    wrap: { keyDirection: undefined },
    httpOpts: { headers: [] },
  };
}

function cloneCe(ce: CeDraft): CeDraft {
  return {
    proto: ce.proto,
    family: ce.family,
    remotePort: ce.remotePort,
    opts: { ...ce.opts, mssfix: { ...ce.opts.mssfix }, connectRetry: { ...ce.opts.connectRetry } },
    wrap: { keyDirection: undefined },
    ...(ce.proxy ? { proxy: ce.proxy } : {}),
    httpOpts: { ...ce.httpOpts, headers: [...ce.httpOpts.headers] },
  };
}

const PROTOS: Record<string, { proto: 'udp' | 'tcp'; family: AddressFamily } | 'server'> = {
  udp: { proto: 'udp', family: 'any' },
  tcp: { proto: 'tcp', family: 'any' },
  'tcp-client': { proto: 'tcp', family: 'any' },
  udp4: { proto: 'udp', family: 'ipv4' },
  tcp4: { proto: 'tcp', family: 'ipv4' },
  'tcp4-client': { proto: 'tcp', family: 'ipv4' },
  udp6: { proto: 'udp', family: 'ipv6' },
  tcp6: { proto: 'tcp', family: 'ipv6' },
  'tcp6-client': { proto: 'tcp', family: 'ipv6' },
  'tcp-server': 'server',
  'tcp4-server': 'server',
  'tcp6-server': 'server',
};

const TLS_VERSIONS: readonly string[] = ['1.0', '1.1', '1.2', '1.3'];
const COMPRESS_ALGOS: readonly string[] = ['stub', 'stub-v2', 'lzo', 'lz4', 'lz4-v2', 'migrate'];
const FINGERPRINT_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){31}$/;

/** Upper-case a cipher/digest name, keeping `none` lower-case. */
function algName(s: string): string {
  return s.toLowerCase() === 'none' ? 'none' : s.toUpperCase();
}

class ProfileParser {
  private readonly file: string;
  private readonly dir: string;
  private readonly warnings: ProfileWarning[] = [];
  private readonly warnedNames = new Set<string>();
  private readonly ignoreUnknown = new Set<string>();
  private forwardCompatible = false;

  private readonly globalCe = defaultCe();
  private readonly globalWrap: WrapDraft = { keyDirection: undefined };
  private readonly topRemotes: TopRemote[] = [];
  private readonly connections: { ce: CeDraft; line: number }[] = [];
  private tlsClient = false;
  private secretLine = 0;
  private secretKey?: StaticKey;
  private httpProxyUserPass?: { username: string; password?: string; source: 'file' | 'inline'; path?: string };
  readonly p: OpenVpnProfile;

  constructor(private readonly opts: ParseProfileOptions) {
    this.file = opts.path ?? '<profile>';
    this.dir = opts.path ? nodePath.dirname(nodePath.resolve(opts.path)) : process.cwd();
    this.p = {
      source: this.file,
      mode: 'p2p-plain',
      pull: false,
      dev: 'tun',
      devType: 'tun',
      remotes: [],
      remoteRandom: false,
      resolvRetry: 'infinite',
      tlsVersionMin: '1.2',
      tlsVersionMinOrHighest: false,
      keyDirection: undefined,
      auth: 'SHA1',
      dataCiphers: parseCipherList(DEFAULT_DATA_CIPHERS),
      dataCiphersExplicit: false,
      replayWindow: { size: 64, seconds: 15 },
      tlsEkm: true,
      authNocache: false,
      authRetry: 'none',
      renegSec: 3600,
      handWindow: 60,
      tranWindow: 3600,
      tlsTimeout: 2,
      pullFilters: [],
      routeNopull: false,
      setenv: {},
      pushPeerInfo: false,
      ignored: [],
    };
  }

  // ---------- errors and warnings ----------

  private where(line: number): string {
    return line > 0 ? `${this.file}:${line}` : this.file;
  }
  syntax(line: number, msg: string): VpnError {
    return new VpnError('PROFILE_SYNTAX', `${this.where(line)}: ${msg}`);
  }
  private unsupported(line: number, directive: string, u: Unsupported): VpnError {
    return new VpnError('PROFILE_UNSUPPORTED', unsupportedMessage(this.file, line, directive, u));
  }
  private warn(line: number, directive: string | undefined, msg: string, onceKey?: string): void {
    if (onceKey !== undefined) {
      if (this.warnedNames.has(onceKey)) return;
      this.warnedNames.add(onceKey);
    }
    this.warnings.push({ file: this.file, line, directive, message: line > 0 ? `line ${line}: ${msg}` : msg });
  }

  // ---------- argument helpers ----------

  private need(name: string, args: string[], n: number, line: number): void {
    if (args.length < n) {
      throw this.syntax(line, `'${name}' needs ${n} argument${n === 1 ? '' : 's'}, got ${args.length}`);
    }
  }
  private atMost(name: string, args: string[], n: number, line: number): void {
    if (args.length > n) {
      this.warn(line, name, `extra argument(s) to '${name}' ignored: ${args.slice(n).join(' ')}`);
    }
  }
  private int(name: string, s: string | undefined, line: number, min = 0, max = 0x7fffffff): number {
    if (s === undefined || !/^\d{1,10}$/.test(s)) {
      throw this.syntax(line, `'${name}': bad number ${JSON.stringify(s ?? '')}`);
    }
    const v = Number(s);
    if (v < min || v > max) throw this.syntax(line, `'${name}': ${v} is out of range ${min}..${max}`);
    return v;
  }
  private oneOf<T extends string>(name: string, s: string, allowed: readonly T[], line: number): T {
    if (!(allowed as readonly string[]).includes(s)) {
      throw this.syntax(line, `'${name}': expected one of ${allowed.join('|')}, got ${JSON.stringify(s)}`);
    }
    return s as T;
  }
  private keyDirection(name: string, s: string, line: number): 0 | 1 {
    if (s === '0') return 0;
    if (s === '1') return 1;
    throw this.syntax(line, `'${name}': key direction must be 0 or 1, got ${JSON.stringify(s)}`);
  }

  resolvePath(ref: string): string {
    return nodePath.resolve(this.dir, ref);
  }

  /** Text of a file argument or inline block. */
  private fileText(name: string, args: string[], inline: Inline | undefined, line: number): { text: string; where: string } {
    if (inline) return { text: inline.text, where: this.where(inline.line) };
    this.need(name, args, 1, line);
    const abs = this.resolvePath(args[0]!);
    const read = this.opts.readFile;
    if (!read) {
      throw new VpnError('PROFILE_FILE', `${this.where(line)}: '${name}' refers to file ${abs}, but no file access was given (inline the file as <${name}>…</${name}>)`);
    }
    try {
      return { text: read(abs), where: `${abs} (from ${this.where(line)})` };
    } catch (err) {
      throw new VpnError('PROFILE_FILE', `${this.where(line)}: cannot read '${name}' file ${abs}: ${fileErrorText(err)}`, { cause: err });
    }
  }

  private fileBytes(name: string, ref: string, line: number): Uint8Array {
    const abs = this.resolvePath(ref);
    try {
      if (this.opts.readBinaryFile) return this.opts.readBinaryFile(abs);
      if (this.opts.readFile) {
        throw new Error('binary file access was not given (loadProfile provides it)');
      }
      throw new Error('no file access was given');
    } catch (err) {
      throw new VpnError('PROFILE_FILE', `${this.where(line)}: cannot read '${name}' file ${abs}: ${fileErrorText(err)}`, { cause: err });
    }
  }

  private pem(name: string, args: string[], inline: Inline | undefined, line: number): string {
    const { text, where } = this.fileText(name, args, inline, line);
    if (!text.includes('-----BEGIN ')) {
      throw new VpnError('PROFILE_SYNTAX', `${where}: '${name}' is not PEM (no '-----BEGIN' line)`);
    }
    // Trim every line: indented inline blocks are common in hand-edited files, and PEM readers want
    // '-----BEGIN' at the start of a line.
    return normalizeNewlines(text)
      .split('\n')
      .map((l) => l.trim())
      .join('\n');
  }

  // ---------- reading lines ----------

  parseText(text: string): void {
    this.parseLines(splitConfigLines(text), 1, 'global', this.globalCe);
  }

  private parseLines(lines: string[], firstLine: number, scope: Scope, ce: CeDraft): void {
    for (let i = 0; i < lines.length; i++) {
      const lineNo = firstLine + i;
      const tok = tokenizeLine(lines[i]!);
      if (!tok.ok) throw this.syntax(lineNo, tok.error);
      const words = tok.words;
      if (words.length === 0) continue;
      words[0] = stripDoubleDash(words[0]!);
      const w0 = words[0]!;
      let inline: Inline | undefined;
      let name = w0;
      let args = words.slice(1);
      if (words.length === 1 && w0.length >= 2 && w0.startsWith('<') && w0.endsWith('>')) {
        name = w0.slice(1, -1);
        const close = `</${name}>`;
        let j = i + 1;
        while (j < lines.length && !lines[j]!.replace(/^[ \t\n\v\f\r]+/, '').startsWith(close)) j++;
        if (j >= lines.length) {
          throw this.syntax(lineNo, `inline block <${name}> is not closed (no ${close} line)`);
        }
        const body = lines.slice(i + 1, j);
        inline = { text: body.length ? body.join('\n') + '\n' : '', line: lineNo };
        args = [];
        if (name === 'connection') {
          this.connectionBlock(body, lineNo, scope);
          i = j;
          continue;
        }
        i = j;
      } else if (name.startsWith('<') && name.endsWith('>') && name.length >= 2) {
        throw this.syntax(lineNo, `inline block tag ${name} must be alone on its line`);
      }
      this.directive(name, args, lineNo, inline, scope, ce, false);
    }
  }

  private connectionBlock(body: string[], line: number, scope: Scope): void {
    if (scope !== 'global') throw this.syntax(line, '<connection> blocks cannot be nested');
    const ce = cloneCe(this.globalCe);
    this.parseLines(body, line + 1, 'connection', ce);
    if (!ce.remote) throw this.syntax(line, "each <connection> block must contain a 'remote' directive");
    this.connections.push({ ce, line });
  }

  // ---------- the directives ----------

  private directive(name: string, args: string[], line: number, inline: Inline | undefined, scope: Scope, ce: CeDraft, optional: boolean): void {
    const p = this.p;
    if (inline && !INLINE_DIRECTIVES.has(name)) {
      if (!this.isKnown(name)) {
        this.unknown(name, line, optional);
        return;
      }
      throw this.syntax(line, `'${name}' cannot be given as an inline <${name}> block`);
    }
    if (scope === 'connection' && !CONNECTION_DIRECTIVES.has(name)) {
      if (!this.isKnown(name)) {
        this.unknown(name, line, optional);
        return;
      }
      throw this.syntax(line, `'${name}' is not allowed inside a <connection> block (only per-connection options such as remote, proto, port, tls-auth, tun-mtu, mssfix)`);
    }
    if (scope === 'global' && this.connections.length > 0 && CONNECTION_DIRECTIVES.has(name) && !GLOBAL_EVEN_AFTER_BLOCKS.has(name)) {
      this.warn(line, name, `'${name}' after the <connection> blocks does not apply to them (move it before the first <connection>)`);
    }
    const unsup = UNSUPPORTED_DIRECTIVES.get(name);
    if (unsup) throw this.unsupported(line, name, unsup);
    if (PROGRAM_DIRECTIVES.has(name)) {
      this.warn(line, name, `'${name}' would run a program; ignored (vpnproxy never runs scripts)`, `program:${name}`);
      p.ignored.push({ name, line });
      return;
    }
    if (PUSH_ONLY_DIRECTIVES.has(name)) {
      this.warn(line, name, `'${name}' is only meaningful when pushed by the server; ignored`, `push:${name}`);
      p.ignored.push({ name, line });
      return;
    }
    const isCe = scope === 'connection';
    const target = isCe ? ce : this.globalCe;
    const wrap = isCe ? ce.wrap : this.globalWrap;

    switch (name) {
      // ---- mode ----
      case 'client':
        this.atMost(name, args, 0, line);
        this.tlsClient = true;
        p.pull = true;
        return;
      case 'pull':
        this.atMost(name, args, 0, line);
        p.pull = true;
        return;
      case 'tls-client':
        this.atMost(name, args, 0, line);
        this.tlsClient = true;
        return;
      case 'mode':
        this.need(name, args, 1, line);
        if (args[0] === 'p2p') return;
        if (args[0] === 'server') throw this.unsupported(line, 'mode server', { reason: 'it is a server directive', advice: 'use the client profile your provider gives you' });
        throw this.syntax(line, `'mode': expected p2p or server, got ${JSON.stringify(args[0])}`);
      case 'key-method':
        this.need(name, args, 1, line);
        if (args[0] !== '2') throw this.unsupported(line, `key-method ${args[0]}`, { reason: 'only key-method 2 exists in OpenVPN 2.4+' });
        return;
      case 'dev': {
        this.need(name, args, 1, line);
        this.atMost(name, args, 1, line);
        p.dev = args[0]!;
        if (args[0]!.startsWith('tap')) throw this.unsupported(line, `dev ${args[0]}`, { reason: 'layer-2 (tap) tunnels are not supported, only tun', advice: 'use a tun profile (dev tun)' });
        return;
      }
      case 'dev-type': {
        this.need(name, args, 1, line);
        const t = args[0]!;
        if (t === 'tap') throw this.unsupported(line, 'dev-type tap', { reason: 'layer-2 (tap) tunnels are not supported, only tun', advice: 'use a tun profile (dev-type tun)' });
        p.devType = this.oneOf(name, t, ['tun', 'null'] as const, line);
        this.devTypeExplicit = true;
        return;
      }

      // ---- servers ----
      case 'remote': {
        this.need(name, args, 1, line);
        this.atMost(name, args, 3, line);
        const host = args[0]!;
        const port = args[1] !== undefined ? this.int('remote port', args[1], line, 1, 65535) : undefined;
        let pr: { proto: 'udp' | 'tcp'; family: AddressFamily } | undefined;
        if (args[2] !== undefined) pr = this.proto(args[2], line, 'remote');
        if (isCe) {
          ce.remote = { host, line };
          if (port !== undefined) ce.remotePort = port;
          if (pr) {
            ce.proto = pr.proto;
            if (pr.family !== 'any') ce.family = pr.family;
          }
        } else {
          this.topRemotes.push({ host, port, proto: pr?.proto, family: pr?.family, line });
        }
        return;
      }
      case 'proto': {
        this.need(name, args, 1, line);
        this.atMost(name, args, 1, line);
        const pr = this.proto(args[0]!, line, 'proto');
        target.proto = pr.proto;
        target.family = pr.family;
        return;
      }
      case 'port':
      case 'rport':
        this.need(name, args, 1, line);
        target.remotePort = this.int(name, args[0], line, 1, 65535);
        return;
      case 'remote-random':
        p.remoteRandom = true;
        return;
      case 'resolv-retry':
        this.need(name, args, 1, line);
        p.resolvRetry = args[0] === 'infinite' ? 'infinite' : this.int(name, args[0], line);
        return;
      case 'connect-retry': {
        this.need(name, args, 1, line);
        const s = Math.min(this.int(name, args[0], line), 0xffff);
        const max = args[1] !== undefined ? Math.max(this.int(name, args[1], line), s) : Math.max(target.opts.connectRetry.maxSeconds, s);
        target.opts.connectRetry = { seconds: s, maxSeconds: max };
        return;
      }
      case 'connect-retry-max':
        this.need(name, args, 1, line);
        p.connectRetryMax = this.int(name, args[0], line);
        return;
      case 'connect-timeout':
      case 'server-poll-timeout':
        this.need(name, args, 1, line);
        target.opts.connectTimeout = this.int(name, args[0], line);
        return;
      case 'http-proxy-user-pass': {
        const { text } = this.fileText(name, args, inline, line);
        const [u, pw] = firstLines(text, 2);
        if (!u) throw this.syntax(inline?.line ?? line, `'${name}' is empty (expected the proxy's username on the first line, the password on the second)`);
        this.httpProxyUserPass = inline
          ? { username: u, password: pw, source: 'inline' }
          : { username: u, password: pw, source: 'file', path: this.resolvePath(args[0]!) };
        return;
      }
      case 'http-proxy':
      case 'socks-proxy': {
        const http = name === 'http-proxy';
        this.need(name, args, http ? 2 : 1, line);
        this.atMost(name, args, http ? 4 : 3, line);
        const other = target.proxy;
        if (other && other.type !== (http ? 'http' : 'socks5')) {
          throw this.syntax(line, `'${name}' cannot be combined with '${other.type === 'http' ? 'http-proxy' : 'socks-proxy'}' (line ${other.line}): keep one`);
        }
        const host = args[0]!;
        if (!/^[A-Za-z0-9.:_-]{1,255}$/.test(host)) throw this.syntax(line, `'${name}': bad proxy host ${JSON.stringify(host.slice(0, 80))}`);
        const port = args[1] !== undefined ? this.int(`${name} port`, args[1], line, 1, 65535) : http ? 8080 : 1080;
        const draft: ProxyDraft = { type: http ? 'http' : 'socks5', host, port, line };
        const authArg = args[2];
        if (authArg !== undefined) {
          if (authArg === 'auto' || authArg === 'auto-nct') {
            if (!http) throw this.syntax(line, `'socks-proxy': '${authArg}' is only for http-proxy (give an auth file with the username and password)`);
            draft.authArg = authArg;
          } else if (authArg === 'stdin') {
            draft.authArg = 'stdin';
          } else {
            const { text } = this.fileText(`${name} auth`, [authArg], undefined, line);
            const abs = this.resolvePath(authArg);
            const [u, pw] = firstLines(text, 2);
            if (!u) throw new VpnError('PROFILE_FILE', `${this.where(line)}: ${name} auth file ${abs} is empty (expected username and password lines)`);
            draft.authArg = abs;
            draft.credentials = { username: u, password: pw, source: 'file', path: abs };
          }
        }
        if (args[3] !== undefined) {
          if (!http) throw this.syntax(line, "'socks-proxy' takes at most HOST PORT AUTHFILE");
          const m = args[3].toLowerCase();
          if (m === 'ntlm' || m === 'ntlm2') {
            throw this.unsupported(line, `http-proxy … ${args[3]}`, { reason: 'NTLM proxy authentication is not implemented', advice: "use 'auto' (Basic or Digest) if the proxy offers them" });
          }
          draft.method = this.oneOf('http-proxy auth-method', m, ['none', 'basic', 'digest'] as const, line);
        }
        target.proxy = draft;
        return;
      }
      case 'http-proxy-option': {
        this.need(name, args, 1, line);
        const opt = args[0]!.toUpperCase();
        const noCrLf = (v: string) => {
          if (/[\r\n\0]/.test(v)) throw this.syntax(line, `'${name}': a header may not contain CR, LF or NUL`);
          return v;
        };
        if (opt === 'VERSION') {
          this.need(name, args, 2, line);
          target.httpOpts.version = this.oneOf('http-proxy-option VERSION', args[1]!, ['1.0', '1.1'] as const, line);
        } else if (opt === 'AGENT') {
          this.need(name, args, 2, line);
          target.httpOpts.agent = noCrLf(args.slice(1).join(' '));
        } else if (opt === 'CUSTOM-HEADER') {
          this.need(name, args, 2, line);
          if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:?$/.test(args[1]!)) throw this.syntax(line, `'${name} CUSTOM-HEADER': bad header name ${JSON.stringify(args[1]!.slice(0, 60))}`);
          target.httpOpts.headers.push([args[1]!.replace(/:$/, ''), noCrLf(args.slice(2).join(' '))]);
        } else if (opt === 'EXT1' || opt === 'EXT2') {
          this.warn(line, name, `'${name} ${opt}' is ignored (use CUSTOM-HEADER)`);
        } else {
          throw this.syntax(line, `'${name}': expected VERSION, AGENT or CUSTOM-HEADER, got ${JSON.stringify(args[0])}`);
        }
        return;
      }
      case 'http-proxy-timeout':
        this.need(name, args, 1, line);
        target.httpOpts.timeout = this.int(name, args[0], line, 1, 3600);
        return;
      case 'http-proxy-retry':
        p.ignored.push({ name, line }); // OpenVPN 2.4+ always retries; kept for old profiles
        return;

      // ---- certificates and keys ----
      case 'ca':
        p.ca = this.pem(name, args, inline, line);
        return;
      case 'cert':
        p.cert = this.pem(name, args, inline, line);
        return;
      case 'key':
        p.key = this.pem(name, args, inline, line);
        return;
      case 'extra-certs':
        p.extraCerts = this.pem(name, args, inline, line);
        return;
      case 'crl-verify':
        if (!inline && args[1] === 'dir') {
          throw this.unsupported(line, 'crl-verify … dir', { reason: 'a directory of revoked serial numbers cannot be used', advice: 'give a CRL file instead' });
        }
        p.crlVerify = this.pem(name, args, inline, line);
        return;
      case 'pkcs12': {
        if (inline) {
          const b64 = inline.text.replace(/\s+/g, '');
          if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length === 0) throw this.syntax(inline.line, '<pkcs12> must contain base64 data');
          p.pkcs12 = new Uint8Array(Buffer.from(b64, 'base64'));
        } else {
          this.need(name, args, 1, line);
          p.pkcs12 = this.fileBytes(name, args[0]!, line);
        }
        return;
      }
      case 'askpass': {
        if (args.length === 0) {
          p.askpass = { source: 'prompt' };
          return;
        }
        const { text } = this.fileText(name, args, undefined, line);
        p.askpass = { source: 'file', path: this.resolvePath(args[0]!), passphrase: firstLines(text, 1)[0] ?? '' };
        return;
      }
      case 'dh':
        p.ignored.push({ name, line });
        return;

      // ---- control channel protection ----
      case 'tls-auth': {
        const { text, where } = this.fileText(name, args, inline, line);
        const key = parseStaticKey(text, where);
        wrap.tlsAuth = { key, line };
        if (isCe) wrap.keyDirection = undefined; // OpenVPN resets the connection's direction here
        if (!inline && args[1] !== undefined) wrap.keyDirection = this.keyDirection(name, args[1], line);
        if (!inline) this.atMost(name, args, 2, line);
        return;
      }
      case 'key-direction':
        this.need(name, args, 1, line);
        wrap.keyDirection = this.keyDirection(name, args[0]!, line);
        if (!isCe) p.keyDirection = wrap.keyDirection;
        return;
      case 'tls-crypt': {
        const { text, where } = this.fileText(name, args, inline, line);
        wrap.tlsCrypt = { key: parseStaticKey(text, where), line };
        return;
      }
      case 'tls-crypt-v2': {
        const { text, where } = this.fileText(name, args, inline, line);
        wrap.tlsCryptV2 = { key: parseTlsCryptV2ClientKey(text, where), line };
        const extra = inline ? args[0] : args[1];
        if (extra !== undefined && extra !== 'force-cookie' && extra !== 'allow-noncookie') {
          throw this.syntax(line, `'tls-crypt-v2': unsupported argument ${JSON.stringify(extra)}`);
        }
        return;
      }
      case 'secret': {
        const { text, where } = this.fileText(name, args, inline, line);
        this.secretKey = parseStaticKey(text, where);
        this.secretLine = line;
        if (!inline && args[1] !== undefined) {
          this.globalWrap.keyDirection = this.keyDirection(name, args[1], line);
          p.keyDirection = this.globalWrap.keyDirection;
        }
        return;
      }

      // ---- verification ----
      case 'remote-cert-tls':
        this.need(name, args, 1, line);
        p.remoteCertTls = this.oneOf(name, args[0]!, ['server', 'client'] as const, line);
        return;
      case 'ns-cert-type':
        this.need(name, args, 1, line);
        p.nsCertType = this.oneOf(name, args[0]!, ['server', 'client'] as const, line);
        return;
      case 'verify-x509-name': {
        this.need(name, args, 1, line);
        if (args[0] === '') throw this.syntax(line, "'verify-x509-name': empty name");
        const type = args[1] === undefined ? 'subject' : this.oneOf(name, args[1], ['subject', 'name', 'name-prefix'] as const, line);
        p.verifyX509Name = { name: args[0]!, type };
        return;
      }
      case 'remote-cert-ku':
        p.remoteCertKu = args.map((a) => {
          if (!/^[0-9a-fA-F]{1,4}$/.test(a)) throw this.syntax(line, `'remote-cert-ku': bad hex value ${JSON.stringify(a)}`);
          return parseInt(a, 16);
        });
        return;
      case 'remote-cert-eku':
        this.need(name, args, 1, line);
        p.remoteCertEku = args[0]!;
        return;
      case 'peer-fingerprint': {
        const list = inline ? fingerprintLines(inline.text) : (this.need(name, args, 1, line), [args[0]!]);
        const where = inline ? inline.line : line;
        for (const f of list) {
          if (!FINGERPRINT_RE.test(f)) throw this.syntax(where, `'peer-fingerprint': ${JSON.stringify(f)} is not a SHA-256 fingerprint (32 colon-separated hex bytes)`);
        }
        p.peerFingerprints = [...(p.peerFingerprints ?? []), ...list.map((f) => f.toLowerCase())];
        return;
      }
      case 'verify-hash': {
        const list = inline ? fingerprintLines(inline.text) : (this.need(name, args, 1, line), [args[0]!]);
        const algo = algName((inline ? args[0] : args[1]) ?? 'SHA1');
        p.verifyHash = { hashes: list.map((h) => h.toLowerCase()), algo };
        return;
      }
      case 'tls-version-min':
        this.need(name, args, 1, line);
        p.tlsVersionMin = this.oneOf(name, args[0]!, TLS_VERSIONS as readonly TlsVersion[], line);
        if (args[1] !== undefined) {
          if (args[1] !== 'or-highest') throw this.syntax(line, `'tls-version-min': unexpected ${JSON.stringify(args[1])}`);
          p.tlsVersionMinOrHighest = true;
        }
        return;
      case 'tls-version-max':
        this.need(name, args, 1, line);
        p.tlsVersionMax = this.oneOf(name, args[0]!, TLS_VERSIONS as readonly TlsVersion[], line);
        return;
      case 'tls-cipher':
        this.need(name, args, 1, line);
        p.tlsCipher = args[0]!;
        return;
      case 'tls-ciphersuites':
        this.need(name, args, 1, line);
        p.tlsCiphersuites = args[0]!;
        return;
      case 'tls-groups':
        this.need(name, args, 1, line);
        p.tlsGroups = args[0]!;
        return;
      case 'tls-cert-profile':
        this.need(name, args, 1, line);
        p.tlsCertProfile = this.oneOf(name, args[0]!, ['legacy', 'preferred', 'suiteb', 'insecure'] as const, line);
        return;

      // ---- data channel ----
      case 'auth':
        this.need(name, args, 1, line);
        p.auth = algName(args[0]!);
        return;
      case 'cipher':
        this.need(name, args, 1, line);
        p.cipher = algName(args[0]!);
        return;
      case 'data-ciphers':
      case 'ncp-ciphers': {
        this.need(name, args, 1, line);
        const list = parseCipherList(args[0]!);
        if (list.length === 0) throw this.syntax(line, `'${name}': empty cipher list`);
        p.dataCiphers = list;
        p.dataCiphersExplicit = true;
        return;
      }
      case 'data-ciphers-fallback':
        this.need(name, args, 1, line);
        p.dataCiphersFallback = algName(args[0]!);
        return;
      case 'comp-lzo': {
        const mode = args[0] === undefined ? 'adaptive' : this.oneOf(name, args[0], ['yes', 'no', 'adaptive'] as const, line);
        p.compression = { kind: 'comp-lzo', mode };
        return;
      }
      case 'compress': {
        const algo = args[0] === undefined ? 'stub' : args[0];
        p.compression = {
          kind: 'compress',
          algo: this.oneOf(name, algo, COMPRESS_ALGOS as readonly Extract<CompressionSetting, { kind: 'compress' }>['algo'][], line),
        };
        return;
      }
      case 'allow-compression':
        this.need(name, args, 1, line);
        p.allowCompression = this.oneOf(name, args[0]!, ['no', 'asym', 'yes'] as const, line);
        return;
      case 'replay-window': {
        this.need(name, args, 1, line);
        const size = this.int(name, args[0], line, 0, 65536);
        const seconds = args[1] !== undefined ? this.int(name, args[1], line) : 15;
        p.replayWindow = { size, seconds };
        return;
      }

      // ---- MTU ----
      case 'tun-mtu':
        this.need(name, args, 1, line);
        target.opts.tunMtu = this.int(name, args[0], line, 68, 65535);
        return;
      case 'tun-mtu-extra':
        this.need(name, args, 1, line);
        target.opts.tunMtuExtra = this.int(name, args[0], line, 0, 65535);
        return;
      case 'tun-mtu-max':
      case 'tun-max-mtu':
        this.need(name, args, 1, line);
        target.opts.tunMtuMax = this.int(name, args[0], line, 68, 65535);
        return;
      case 'link-mtu':
        this.need(name, args, 1, line);
        target.opts.linkMtu = this.int(name, args[0], line, 100, 65535);
        return;
      case 'mssfix': {
        let m: MssFix;
        if (args.length === 0) m = { value: 1492, flag: 'mtu', explicit: true };
        else {
          m = { value: this.int(name, args[0], line, 0, 65535), explicit: true };
          if (args[1] !== undefined) m.flag = this.oneOf(name, args[1], ['mtu', 'fixed'] as const, line);
        }
        target.opts.mssfix = m;
        return;
      }
      case 'max-packet-size':
        this.need(name, args, 1, line);
        target.opts.maxPacketSize = this.int(name, args[0], line, 154, 65535);
        return;
      case 'explicit-exit-notify':
        target.opts.explicitExitNotify = args[0] === undefined ? 1 : this.int(name, args[0], line, 0, 1000);
        return;

      // ---- auth ----
      case 'auth-user-pass': {
        if (inline) {
          const [u, pw] = firstLines(inline.text, 2);
          if (!u) throw this.syntax(inline.line, '<auth-user-pass> is empty (expected the username on the first line, the password on the second)');
          p.authUserPass = { source: 'inline', username: u, password: pw, line };
        } else if (args.length === 0) {
          p.authUserPass = { source: 'prompt', line };
        } else {
          const { text } = this.fileText(name, args, undefined, line);
          const abs = this.resolvePath(args[0]!);
          const [u, pw] = firstLines(text, 2);
          if (!u) throw new VpnError('PROFILE_FILE', `${this.where(line)}: auth-user-pass file ${abs} is empty (expected username and password lines)`);
          p.authUserPass = { source: 'file', path: abs, username: u, password: pw, line };
        }
        return;
      }
      case 'auth-nocache':
        p.authNocache = true;
        return;
      case 'auth-retry':
        this.need(name, args, 1, line);
        p.authRetry = this.oneOf(name, args[0]!, ['none', 'nointeract', 'interact'] as const, line);
        return;
      case 'static-challenge': {
        this.need(name, args, 2, line);
        const echo = this.oneOf(name, args[1]!, ['0', '1'] as const, line) === '1';
        const format = args[2] === undefined ? 'scrv1' : this.oneOf(name, args[2], ['scrv1', 'concat'] as const, line);
        p.staticChallenge = { text: args[0]!, echo, format };
        return;
      }

      // ---- timers ----
      case 'reneg-sec':
        this.need(name, args, 1, line);
        p.renegSec = this.int(name, args[0], line);
        return;
      case 'reneg-bytes':
        this.need(name, args, 1, line);
        p.renegBytes = this.bigCount(name, args[0]!, line);
        return;
      case 'reneg-pkts':
        this.need(name, args, 1, line);
        p.renegPkts = this.bigCount(name, args[0]!, line);
        return;
      case 'hand-window':
        this.need(name, args, 1, line);
        p.handWindow = this.int(name, args[0], line);
        return;
      case 'tran-window':
        this.need(name, args, 1, line);
        p.tranWindow = this.int(name, args[0], line);
        return;
      case 'tls-timeout':
        this.need(name, args, 1, line);
        p.tlsTimeout = this.int(name, args[0], line);
        return;
      case 'ping':
        this.need(name, args, 1, line);
        p.ping = this.int(name, args[0], line);
        return;
      case 'ping-restart':
        this.need(name, args, 1, line);
        p.pingRestart = this.int(name, args[0], line);
        return;
      case 'ping-exit':
        this.need(name, args, 1, line);
        p.pingExit = this.int(name, args[0], line);
        return;
      case 'keepalive':
        this.need(name, args, 2, line);
        p.ping = this.int(name, args[0], line);
        p.pingRestart = this.int(name, args[1], line);
        return;
      case 'inactive':
        this.need(name, args, 1, line);
        p.inactive = { seconds: this.int(name, args[0], line), bytes: args[1] !== undefined ? this.bigCount(name, args[1], line) : 0 };
        return;
      case 'session-timeout':
        this.need(name, args, 1, line);
        p.sessionTimeout = this.int(name, args[0], line);
        return;

      // ---- pull ----
      case 'pull-filter': {
        this.need(name, args, 2, line);
        const action = this.oneOf(name, args[0]!, ['accept', 'ignore', 'reject'] as const, line);
        p.pullFilters.push({ action, prefix: args[1]! });
        return;
      }
      case 'route-nopull':
        p.routeNopull = true;
        return;
      case 'ifconfig':
        this.need(name, args, 2, line);
        p.ifconfig = { local: args[0]!, remote: args[1]! };
        this.ifconfigLine = line;
        return;

      // ---- meta ----
      case 'setenv': {
        this.need(name, args, 1, line);
        if (args[0] === 'opt') {
          if (args.length < 2) throw this.syntax(line, "'setenv opt' needs a directive");
          this.directive(stripDoubleDash(args[1]!), args.slice(2), line, undefined, scope, ce, true);
          return;
        }
        if (args[0] === 'FORWARD_COMPATIBLE' && args[1] === '1') this.forwardCompatible = true;
        p.setenv[args[0]!] = args[1] ?? '';
        return;
      }
      case 'ignore-unknown-option':
        this.need(name, args, 1, line);
        for (const a of args) this.ignoreUnknown.add(a);
        return;
      case 'push-peer-info':
        p.pushPeerInfo = true;
        return;
      case 'compat-mode':
        this.need(name, args, 1, line);
        if (!/^\d+\.\d+(\.\d+)?$/.test(args[0]!)) throw this.syntax(line, `'compat-mode': bad version ${JSON.stringify(args[0])}`);
        p.compatMode = args[0]!;
        return;
      case 'config':
        throw this.unsupported(line, 'config', { reason: 'including other config files is not supported', advice: 'paste the included file into the profile' });
      case 'connection':
        throw this.syntax(line, "'connection' must be written as a <connection> … </connection> block");
    }

    if (IGNORED_DIRECTIVES.has(name)) {
      p.ignored.push({ name, line });
      return;
    }
    this.unknown(name, line, optional);
  }

  private devTypeExplicit = false;
  private ifconfigLine = 0;

  private isKnown(name: string): boolean {
    return (
      KNOWN_HANDLED.has(name) ||
      IGNORED_DIRECTIVES.has(name) ||
      PROGRAM_DIRECTIVES.has(name) ||
      PUSH_ONLY_DIRECTIVES.has(name) ||
      UNSUPPORTED_DIRECTIVES.has(name)
    );
  }

  private unknown(name: string, line: number, optional: boolean): void {
    this.p.ignored.push({ name, line });
    if (optional || this.ignoreUnknown.has(name)) return; // `setenv opt` / ignore-unknown-option: silent
    this.warn(line, name, `unknown directive '${name}' ignored`, `unknown:${name}`);
  }

  private bigCount(name: string, s: string, line: number): number {
    if (!/^\d{1,19}$/.test(s)) throw this.syntax(line, `'${name}': bad number ${JSON.stringify(s)}`);
    return Number(s);
  }

  private proto(s: string, line: number, name: string): { proto: 'udp' | 'tcp'; family: AddressFamily } {
    const pr = Object.hasOwn(PROTOS, s) ? PROTOS[s] : undefined;
    if (pr === undefined) {
      throw this.syntax(line, `'${name}': bad protocol ${JSON.stringify(s)} (expected udp, tcp, tcp-client, udp4, tcp4, udp6, tcp6)`);
    }
    if (pr === 'server') {
      throw this.unsupported(line, `proto ${s}`, { reason: 'it makes OpenVPN wait for connections as a server', advice: "use 'proto tcp' (or tcp-client)" });
    }
    return pr;
  }

  // ---------- finishing ----------

  finish(): ParsedProfile {
    const p = this.p;
    // dev-type from the dev name when not given.
    if (!this.devTypeExplicit) {
      if (p.dev.startsWith('tun')) p.devType = 'tun';
      else if (p.dev === 'null') p.devType = 'null';
      else this.warn(0, 'dev', `cannot tell the device type of 'dev ${p.dev}'; assuming tun`);
    }
    // mode
    if (this.secretKey && this.tlsClient) {
      throw this.syntax(this.secretLine, "'secret' (static key mode) cannot be combined with 'client'/'tls-client'");
    }
    if (this.secretKey) {
      p.mode = 'static-key';
      p.secret = { key: this.secretKey, direction: this.globalWrap.keyDirection, line: this.secretLine };
    } else if (this.tlsClient) {
      p.mode = 'tls-client';
    } else {
      p.mode = 'p2p-plain';
    }
    if (p.mode === 'tls-client' && !p.pull) {
      throw new VpnError(
        'PROFILE_UNSUPPORTED',
        `${this.file}: 'tls-client' without 'pull' (point-to-point TLS mode) is not supported; use 'client' so the server pushes the tunnel settings`,
      );
    }
    if (p.mode !== 'tls-client' && p.pull) {
      throw this.syntax(0, "'pull' needs TLS mode: add 'client' (or 'tls-client')");
    }

    // remotes
    const remotes: ProfileRemote[] = [];
    if (this.connections.length > 0) {
      for (const r of this.topRemotes) {
        this.warn(r.line, 'remote', "'remote' outside the <connection> blocks is ignored because <connection> blocks are present");
      }
      for (const { ce } of this.connections) remotes.push(this.makeRemote(ce, ce.remote!.host, ce.remote!.line, undefined));
    } else {
      for (const r of this.topRemotes) remotes.push(this.makeRemote(this.globalCe, r.host, r.line, r));
    }
    if (remotes.length === 0) {
      throw this.syntax(0, "no 'remote' directive: the profile does not say which server to connect to (add 'remote <host> [port] [udp|tcp]')");
    }
    p.remotes = remotes;

    // mode-specific requirements
    if (p.mode === 'tls-client') {
      if (!p.ca && !p.peerFingerprints && !p.pkcs12) {
        throw this.syntax(0, "no 'ca' (or 'peer-fingerprint'): the server's certificate cannot be verified; add the CA certificate as <ca>…</ca>");
      }
      if (p.cert && !p.key && !p.pkcs12) throw this.syntax(0, "'cert' is given without 'key'");
      if (p.key && !p.cert && !p.pkcs12) throw this.syntax(0, "'key' is given without 'cert'");
      if (!p.cert && !p.pkcs12 && !p.authUserPass) {
        throw this.syntax(0, "no client credentials: give 'cert' and 'key' (or 'pkcs12') and/or 'auth-user-pass'");
      }
      if (p.ifconfig) {
        this.warn(this.ifconfigLine, 'ifconfig', "'ifconfig' is ignored in client (pull) mode: the server pushes the address");
        p.ifconfig = undefined;
      }
    } else {
      if (!p.ifconfig) {
        throw this.syntax(0, `${p.mode === 'static-key' ? 'static key' : 'plaintext point-to-point'} mode needs 'ifconfig <local-ip> <remote-ip>' for the tunnel address`);
      }
      if (p.mode === 'static-key' && remotes.some((r) => r.connection.tlsWrap)) {
        throw this.syntax(this.secretLine, "'secret' cannot be combined with tls-auth/tls-crypt/tls-crypt-v2");
      }
    }
    return { profile: p, warnings: this.warnings };
  }

  private makeRemote(ce: CeDraft, host: string, line: number, top: TopRemote | undefined): ProfileRemote {
    const wrapSrc = hasWrap(ce.wrap) ? ce.wrap : this.globalWrap;
    let tlsWrap: TlsWrap | undefined;
    const n = (wrapSrc.tlsAuth ? 1 : 0) + (wrapSrc.tlsCrypt ? 1 : 0) + (wrapSrc.tlsCryptV2 ? 1 : 0);
    if (n > 1) {
      const l = Math.max(wrapSrc.tlsAuth?.line ?? 0, wrapSrc.tlsCrypt?.line ?? 0, wrapSrc.tlsCryptV2?.line ?? 0);
      throw this.syntax(l, 'tls-auth, tls-crypt and tls-crypt-v2 are mutually exclusive: keep only the one the server uses');
    }
    if (wrapSrc.tlsAuth) tlsWrap = { kind: 'tls-auth', key: wrapSrc.tlsAuth.key, direction: wrapSrc.keyDirection, line: wrapSrc.tlsAuth.line };
    else if (wrapSrc.tlsCrypt) tlsWrap = { kind: 'tls-crypt', key: wrapSrc.tlsCrypt.key, line: wrapSrc.tlsCrypt.line };
    else if (wrapSrc.tlsCryptV2) tlsWrap = { kind: 'tls-crypt-v2', key: wrapSrc.tlsCryptV2.key, line: wrapSrc.tlsCryptV2.line };
    const family = top?.family !== undefined && top.family !== 'any' ? top.family : ce.family;
    const proto = top?.proto ?? ce.proto;
    // `remote [fd00::1]` as URLs write it: OpenVPN wants the bare address, the brackets add nothing
    const bracketed = /^\[([^\]]+)\]$/.exec(host);
    if (bracketed && isIPv6(bracketed[1]!)) host = bracketed[1]!;
    const literal = isIP(host);
    if ((family === 'ipv6' && literal === 4) || (family === 'ipv4' && literal === 6)) {
      throw this.syntax(
        line,
        `'remote ${host}' is an IPv${literal} address but 'proto ${proto}${family === 'ipv6' ? '6' : '4'}' allows only IPv${literal === 4 ? 6 : 4}: use 'proto ${proto}' (either family) or an IPv${literal === 4 ? 6 : 4} address`,
      );
    }
    const proxy = ce.proxy ? this.makeProxy(ce) : undefined;
    if (proxy?.type === 'http' && proto !== 'tcp') {
      throw this.syntax(
        proxy.line,
        `'http-proxy' needs 'proto tcp-client': an HTTP proxy carries only TCP, and the remote at line ${line} is UDP (add 'proto tcp-client', or use 'socks-proxy' for UDP)`,
      );
    }
    return {
      host,
      port: top?.port ?? ce.remotePort,
      proto,
      family,
      line,
      connection: {
        ...ce.opts,
        mssfix: { ...ce.opts.mssfix },
        connectRetry: { ...ce.opts.connectRetry },
        ...(tlsWrap ? { tlsWrap } : {}),
        ...(proxy ? { proxy } : {}),
      },
    };
  }

  private makeProxy(ce: CeDraft): ProfileProxy {
    const d = ce.proxy!;
    const inline = this.httpProxyUserPass;
    const credentials = d.credentials ?? (d.type === 'http' && (d.authArg === undefined || d.authArg === 'auto' || d.authArg === 'auto-nct') ? inline : undefined);
    let auth: ProfileProxy['auth'] = 'auto';
    if (d.type === 'http') {
      if (d.method) auth = d.method;
      else if (d.authArg === 'auto' || d.authArg === 'auto-nct') auth = d.authArg;
      else if (credentials || d.authArg !== undefined) auth = 'basic';
    }
    const o = ce.httpOpts;
    return {
      type: d.type,
      host: d.host,
      port: d.port,
      line: d.line,
      auth,
      ...(credentials ? { credentials: { ...credentials } } : {}),
      wantsCredentials: d.authArg !== undefined || credentials !== undefined,
      ...(d.type === 'http' && o.version ? { httpVersion: o.version } : {}),
      ...(d.type === 'http' && o.agent !== undefined ? { userAgent: o.agent } : {}),
      headers: d.type === 'http' ? o.headers.map(([k, v]) => [k, v] as [string, string]) : [],
      ...(d.type === 'http' && o.timeout !== undefined ? { timeout: o.timeout } : {}),
    };
  }
}

/**
 * Connection-level names that still reach <connection> blocks when written after them: OpenVPN stores the
 * global tls-auth/tls-crypt/key-direction apart and applies them to blocks that set none; remotes are handled
 * in finish().
 */
const GLOBAL_EVEN_AFTER_BLOCKS: ReadonlySet<string> = new Set(['remote', 'connect-retry-max', 'tls-auth', 'tls-crypt', 'tls-crypt-v2', 'key-direction']);

/** Every directive name the switch above handles (for "known" checks before the switch runs). */
const KNOWN_HANDLED: ReadonlySet<string> = new Set([
  'client', 'pull', 'tls-client', 'mode', 'key-method', 'dev', 'dev-type', 'remote', 'proto', 'port', 'rport',
  'remote-random', 'resolv-retry', 'connect-retry', 'connect-retry-max', 'connect-timeout', 'server-poll-timeout',
  'http-proxy-user-pass', 'http-proxy', 'socks-proxy', 'http-proxy-option', 'http-proxy-timeout', 'http-proxy-retry', 'ca', 'cert', 'key', 'extra-certs', 'crl-verify', 'pkcs12', 'askpass', 'dh', 'tls-auth',
  'key-direction', 'tls-crypt', 'tls-crypt-v2', 'secret', 'remote-cert-tls', 'ns-cert-type', 'verify-x509-name',
  'remote-cert-ku', 'remote-cert-eku', 'peer-fingerprint', 'verify-hash', 'tls-version-min', 'tls-version-max',
  'tls-cipher', 'tls-ciphersuites', 'tls-groups', 'tls-cert-profile', 'auth', 'cipher', 'data-ciphers',
  'ncp-ciphers', 'data-ciphers-fallback', 'comp-lzo', 'compress', 'allow-compression', 'replay-window', 'tun-mtu',
  'tun-mtu-extra', 'tun-mtu-max', 'tun-max-mtu', 'link-mtu', 'mssfix', 'max-packet-size', 'explicit-exit-notify',
  'auth-user-pass', 'auth-nocache', 'auth-retry', 'static-challenge', 'reneg-sec', 'reneg-bytes', 'reneg-pkts',
  'hand-window', 'tran-window', 'tls-timeout', 'ping', 'ping-restart', 'ping-exit', 'keepalive', 'inactive',
  'session-timeout', 'pull-filter', 'route-nopull', 'ifconfig', 'setenv', 'ignore-unknown-option', 'push-peer-info',
  'compat-mode', 'config', 'connection',
]);

function hasWrap(w: WrapDraft): boolean {
  return !!(w.tlsAuth || w.tlsCrypt || w.tlsCryptV2);
}


function normalizeNewlines(s: string): string {
  return s.replace(/\r\n?/g, '\n');
}

/**
 * The first n lines of a credentials-style file, without line endings; a line that is only the empty
 * remainder after the final newline counts as absent.
 */
function firstLines(text: string, n: number): (string | undefined)[] {
  const lines = normalizeNewlines(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const out: (string | undefined)[] = [];
  for (let i = 0; i < n; i++) out.push(i < lines.length ? lines[i] : undefined);
  if (out[0] === '') out[0] = undefined;
  return out;
}

function fingerprintLines(text: string): string[] {
  return normalizeNewlines(text)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
}

/** `AES-256-GCM:?CHACHA20-POLY1305` → [{AES-256-GCM}, {CHACHA20-POLY1305, optional}]. */
export function parseCipherList(s: string): DataCipher[] {
  const out: DataCipher[] = [];
  for (const raw of s.split(':')) {
    if (raw === '' || raw === '?') continue;
    const optional = raw.startsWith('?');
    out.push({ name: algName(optional ? raw.slice(1) : raw), optional });
  }
  return out;
}

/**
 * Parse a profile. Throws VpnError PROFILE_SYNTAX / PROFILE_UNSUPPORTED / PROFILE_FILE (never anything else
 * for any input text, provided readFile only throws).
 */
export function parseProfile(text: string, opts: ParseProfileOptions = {}): ParsedProfile {
  const parser = new ProfileParser(opts);
  try {
    parser.parseText(text);
    return parser.finish();
  } catch (err) {
    if (err instanceof VpnError) throw err;
    throw new VpnError('PROFILE_SYNTAX', `${opts.path ?? '<profile>'}: cannot parse profile: ${fileErrorText(err)}`, { cause: err });
  }
}

/** Read a profile file and every file it references (relative to the profile's directory). */
export async function loadProfile(path: string): Promise<ParsedProfile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new VpnError('PROFILE_FILE', `cannot read profile ${nodePath.resolve(path)}: ${fileErrorText(err)}`, { cause: err });
  }
  return parseProfile(text, {
    path,
    readFile: (abs) => readFileSync(abs, 'utf8'),
    readBinaryFile: (abs) => new Uint8Array(readFileSync(abs)),
  });
}
