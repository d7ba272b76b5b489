/**
 * HTTP CONNECT through a proxy (RFC 9110 §9.3.6), with Basic (RFC 7617) and Digest (RFC 7616: MD5 and
 * SHA-256, their -sess variants, qop=auth) proxy authentication. The response head is read from untrusted
 * bytes: it is bounded (MAX_HEAD_BYTES, MAX_HEADERS), and anything malformed is a PROXY_PROTOCOL error.
 *
 * Flow: CONNECT (with Basic at once when the configuration says so); on 407 pick the strongest challenge we
 * can answer and have not tried, and send CONNECT again on a new connection; a second refusal of the same
 * method, or nothing left to try, is PROXY_AUTH_FAILED naming what the proxy offered (a 401 with
 * WWW-Authenticate, as tinyproxy sends for wrong credentials, is taken the same way). Any other non-2xx
 * status is PROXY_REFUSED with the proxy's status line.
 */
import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import { VpnError } from '../errors.js';
import {
  HandshakeReader,
  connectToProxy,
  describeProxy,
  hostPort,
  proxyError,
  type DialOptions,
  type DialTarget,
  type UpstreamProxy,
} from './upstream-proxy.js';

export const MAX_HEAD_BYTES = 16 * 1024;
export const MAX_HEADERS = 100;

export interface HttpResponseHead {
  version: string;
  status: number;
  reason: string;
  /** Header names in lower case, values trimmed, in order (folded lines joined). */
  headers: Array<[string, string]>;
  /** Bytes of the head including the blank line. */
  length: number;
}

const bad = (why: string) => new VpnError('PROXY_PROTOCOL', `malformed HTTP answer from the proxy: ${why}`);

/**
 * The response head at the start of `buf`, or undefined while it is incomplete. Throws PROXY_PROTOCOL
 * when it cannot be an HTTP/1.x response or is longer than maxBytes.
 */
export function parseResponseHead(buf: Buffer, maxBytes = MAX_HEAD_BYTES): HttpResponseHead | undefined {
  // The head ends at the first empty line (CRLF CRLF, or bare LF LF from sloppy proxies).
  let end = -1;
  let bodyAt = -1;
  const limit = Math.min(buf.length, maxBytes);
  for (let i = 0; i < limit; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) {
      end = i;
      bodyAt = i + 2;
      break;
    }
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) {
      end = i;
      bodyAt = i + 3;
      break;
    }
  }
  if (end < 0) {
    if (buf.length >= maxBytes) throw bad(`no end of the header within ${maxBytes} bytes`);
    // Fail early when the first bytes cannot start an HTTP response.
    const start = buf.subarray(0, 5).toString('latin1');
    if (!'HTTP/'.startsWith(start)) throw bad(`it does not start with HTTP/ (${JSON.stringify(start)})`);
    return undefined;
  }
  const text = buf.subarray(0, end).toString('latin1');
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const m = /^HTTP\/(1\.[01]) ([1-9][0-9]{2})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/.exec(lines[0]!);
  if (!m) throw bad(`bad status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
  const headers: Array<[string, string]> = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith(' ') || l.startsWith('\t')) {
      const last = headers[headers.length - 1];
      if (!last) throw bad('a continuation line before any header');
      last[1] = `${last[1]} ${l.trim()}`.trim();
      continue;
    }
    const c = l.indexOf(':');
    if (c <= 0 || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(l.slice(0, c))) throw bad(`bad header line ${JSON.stringify(l.slice(0, 80))}`);
    if (headers.length >= MAX_HEADERS) throw bad(`more than ${MAX_HEADERS} header lines`);
    headers.push([l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()]);
  }
  return { version: m[1]!, status: Number(m[2]), reason: m[3] ?? '', headers, length: bodyAt };
}

export interface AuthChallenge {
  /** Lower case: basic, digest, ntlm, negotiate, ... */
  scheme: string;
  /** Parameter names in lower case. */
  params: Record<string, string>;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * The challenges of Proxy-Authenticate header values (RFC 9110 §11.6.1: several challenges may share one
 * header, separated by commas). Lenient (a token68 is skipped, an unterminated quoted string ends at the
 * end), never throws, linear in the input.
 */
export function parseChallenges(values: readonly string[]): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  for (const s of values) {
    let i = 0;
    const n = s.length;
    const ws = () => {
      while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
    };
    const token = () => {
      const st = i;
      while (i < n && TCHAR.test(s[i]!)) i++;
      return s.slice(st, i);
    };
    const value = () => {
      if (s[i] !== '"') {
        const st = i;
        while (i < n && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
        return s.slice(st, i);
      }
      i++;
      let v = '';
      while (i < n && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < n) i++;
        v += s[i];
        i++;
      }
      i++;
      return v;
    };
    while (i < n) {
      while (i < n && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) i++;
      const scheme = token();
      if (!scheme) {
        if (i < n) i++; // not a token: skip a character so the loop always advances
        continue;
      }
      const ch: AuthChallenge = { scheme: scheme.toLowerCase(), params: Object.create(null) as Record<string, string> };
      out.push(ch);
      let first = true;
      for (;;) {
        const save = i;
        let comma = false;
        while (i < n && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) {
          if (s[i] === ',') comma = true;
          i++;
        }
        const name = token();
        if (!name) {
          // token68 (e.g. `Negotiate abc+/=`) or junk: skip to the next comma
          if (i < n && !comma && first) {
            while (i < n && s[i] !== ',') i++;
            first = false;
            continue;
          }
          if (i >= n) break;
          i = save;
          break;
        }
        ws();
        if (s[i] === '=') {
          i++;
          if (first && (i >= n || s[i] === '=' || s[i] === ',' || s[i] === ' ')) {
            // token68 ending in '=' padding (`Negotiate abc==`): not a parameter
            while (i < n && s[i] !== ',') i++;
            first = false;
            continue;
          }
          ws();
          ch.params[name.toLowerCase()] = value();
          first = false;
          continue;
        }
        if (first && !comma) {
          // token68 made only of token characters
          first = false;
          continue;
        }
        i = save; // a new challenge starts here
        break;
      }
    }
  }
  return out;
}

export interface Credentials {
  username: string;
  password: string;
}

export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

const DIGEST_ALGS: Record<string, 'md5' | 'sha256'> = { MD5: 'md5', 'MD5-SESS': 'md5', 'SHA-256': 'sha256', 'SHA-256-SESS': 'sha256' };

/** Whether we can answer this Digest challenge (known algorithm, a nonce, qop absent or offering auth). */
export function digestSupported(ch: AuthChallenge): boolean {
  if (ch.scheme !== 'digest' || !ch.params.nonce) return false;
  const alg = (ch.params.algorithm ?? 'MD5').toUpperCase();
  if (!Object.hasOwn(DIGEST_ALGS, alg)) return false;
  if (ch.params.qop !== undefined && !qopList(ch).includes('auth')) return false;
  return true;
}

function qopList(ch: AuthChallenge): string[] {
  return (ch.params.qop ?? '').split(',').map((q) => q.trim().toLowerCase());
}

const quote = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** The Authorization value answering a Digest challenge (RFC 7616 §3.4). */
export function digestAuthorization(ch: AuthChallenge, c: Credentials, method: string, uri: string, cnonce: string, nc = 1): string {
  if (!digestSupported(ch)) throw new VpnError('PROXY_AUTH_FAILED', `cannot answer the proxy's Digest challenge (algorithm ${ch.params.algorithm ?? 'MD5'}, qop ${ch.params.qop ?? '-'})`);
  const algName = (ch.params.algorithm ?? 'MD5').toUpperCase();
  const alg = DIGEST_ALGS[algName]!;
  const H = (s: string) => createHash(alg).update(s, 'utf8').digest('hex');
  const realm = ch.params.realm ?? '';
  const nonce = ch.params.nonce!;
  const useQop = ch.params.qop !== undefined;
  const ncHex = nc.toString(16).padStart(8, '0');
  let ha1 = H(`${c.username}:${realm}:${c.password}`);
  if (algName.endsWith('-SESS')) ha1 = H(`${ha1}:${nonce}:${cnonce}`);
  const ha2 = H(`${method}:${uri}`);
  const response = useQop ? H(`${ha1}:${nonce}:${ncHex}:${cnonce}:auth:${ha2}`) : H(`${ha1}:${nonce}:${ha2}`);
  const userhash = (ch.params.userhash ?? '').toLowerCase() === 'true';
  const parts = [
    `username=${quote(userhash ? H(`${c.username}:${realm}`) : c.username)}`,
    `realm=${quote(realm)}`,
    `nonce=${quote(nonce)}`,
    `uri=${quote(uri)}`,
    `algorithm=${ch.params.algorithm ?? 'MD5'}`,
    `response=${quote(response)}`,
  ];
  if (useQop) parts.push('qop=auth', `nc=${ncHex}`, `cnonce=${quote(cnonce)}`);
  if (ch.params.opaque !== undefined) parts.push(`opaque=${quote(ch.params.opaque)}`);
  if (userhash) parts.push('userhash=true');
  return `Digest ${parts.join(', ')}`;
}

/** What a proxy offered, for messages: `Basic realm="x", Digest (SHA-256, MD5)`. */
export function describeChallenges(chs: readonly AuthChallenge[]): string {
  if (chs.length === 0) return 'no authentication method at all (no Proxy-Authenticate header)';
  const out: string[] = [];
  for (const ch of chs) {
    const name = ch.scheme === 'ntlm' ? 'NTLM' : ch.scheme.charAt(0).toUpperCase() + ch.scheme.slice(1);
    if (ch.scheme === 'digest') out.push(`Digest (${ch.params.algorithm ?? 'MD5'}${ch.params.realm !== undefined ? `, realm ${JSON.stringify(ch.params.realm.slice(0, 60))}` : ''})`);
    else out.push(ch.params.realm !== undefined ? `${name} realm ${JSON.stringify(ch.params.realm.slice(0, 60))}` : name);
  }
  return out.join(', ');
}

/** The request we send; header values must not carry CR or LF (checked where they are configured). */
export function buildConnectRequest(p: UpstreamProxy, target: DialTarget, authorization?: string): string {
  const hp = hostPort(target.host, target.port);
  const lines = [`CONNECT ${hp} HTTP/${p.httpVersion ?? '1.0'}`, `Host: ${hp}`];
  if (p.userAgent) lines.push(`User-Agent: ${p.userAgent}`);
  for (const [k, v] of p.headers ?? []) lines.push(v ? `${k}: ${v}` : k);
  if (authorization) lines.push(`Proxy-Authorization: ${authorization}`);
  for (const l of lines) if (/[\r\n\0]/.test(l)) throw new VpnError('USAGE', 'an HTTP proxy header may not contain CR, LF or NUL');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

type Method = 'basic' | 'digest-sha256' | 'digest-md5';

/** The strongest challenge allowed by the configuration that we did not try yet. */
function choose(chs: readonly AuthChallenge[], p: UpstreamProxy, tried: ReadonlySet<Method>): { method: Method; ch: AuthChallenge } | undefined {
  const mode = p.auth ?? 'auto';
  if (mode === 'none') return undefined;
  const digests = chs.filter(digestSupported);
  const sha = digests.find((c) => (c.params.algorithm ?? '').toUpperCase().startsWith('SHA-256'));
  const md5 = digests.find((c) => !(c.params.algorithm ?? '').toUpperCase().startsWith('SHA-256'));
  if (sha && !tried.has('digest-sha256')) return { method: 'digest-sha256', ch: sha };
  if (md5 && !tried.has('digest-md5')) return { method: 'digest-md5', ch: md5 };
  if (mode === 'digest' || mode === 'auto-nct') return undefined;
  const basic = chs.find((c) => c.scheme === 'basic');
  if (basic && !tried.has('basic')) return { method: 'basic', ch: basic };
  return undefined;
}

const CRED_HINT =
  "give the proxy's user and password: an http-proxy auth file or <http-proxy-user-pass> block, --upstream-proxy http://USER:PASS@HOST:PORT, or VPNPROXY_PROXY_USERNAME and VPNPROXY_PROXY_PASSWORD";

/** CONNECT to target through the HTTP proxy p. */
export async function httpConnect(p: UpstreamProxy, target: DialTarget, o: DialOptions = {}): Promise<{ socket: net.Socket; head: Buffer }> {
  const creds: Credentials | undefined = p.username !== undefined ? { username: p.username, password: p.password ?? '' } : undefined;
  const tried = new Set<Method>();
  let staleRetried = false;
  let authorization: string | undefined;
  if ((p.auth ?? 'auto') === 'basic' && creds) {
    authorization = basicAuthorization(creds);
    tried.add('basic');
  }
  const where = describeProxy(p);
  const uri = hostPort(target.host, target.port);
  for (;;) {
    const request = buildConnectRequest(p, target, authorization);
    const sock = await connectToProxy(p, o);
    let head: HttpResponseHead;
    try {
      const reader = new HandshakeReader(sock, where, MAX_HEAD_BYTES, p.handshakeTimeoutMs ?? 10_000);
      sock.write(request);
      head = await reader.next(
        (b) => {
          const h = parseResponseHead(b);
          return h && { value: h, used: h.length };
        },
        'answer to CONNECT',
        o.signal,
      );
      if (head.status >= 200 && head.status < 300) return { socket: sock, head: Buffer.from(reader.release()) };
      reader.release();
    } catch (e) {
      sock.destroy();
      if (e instanceof VpnError && e.code === 'PROXY_PROTOCOL' && !(e as { fatal?: boolean }).fatal) throw proxyError('PROXY_PROTOCOL', `${where}: ${e.message}`, e);
      throw e;
    }
    sock.destroy();
    const status = `${head.status}${head.reason ? ` ${head.reason}` : ''}`;
    // 407 is the proxy asking for credentials; some proxies (tinyproxy) answer wrong ones with 401 and
    // WWW-Authenticate instead. Before CONNECT succeeds no origin server is involved, so both mean the proxy.
    if (head.status !== 407 && head.status !== 401) {
      throw proxyError('PROXY_REFUSED', `the ${where} refused to connect us to ${uri}: ${status}${head.status === 403 ? ' (the proxy does not allow this destination or port)' : ''}`);
    }
    const named = (h: string) => head.headers.filter(([k]) => k === h).map(([, v]) => v);
    const chs = parseChallenges(named('proxy-authenticate').length ? named('proxy-authenticate') : named('www-authenticate'));
    const offered = describeChallenges(chs);
    if (!creds) throw proxyError('PROXY_AUTH_FAILED', `the ${where} requires authentication (${status}; it offers ${offered}): ${CRED_HINT}`);
    let next = choose(chs, p, tried);
    // stale=true (RFC 7616 §3.3): our answer was right but its nonce expired; answer the new nonce once.
    const stale = chs.find((c) => digestSupported(c) && (c.params.stale ?? '').toLowerCase() === 'true');
    if (!next && stale && !staleRetried) {
      staleRetried = true;
      next = { method: (stale.params.algorithm ?? '').toUpperCase().startsWith('SHA-256') ? 'digest-sha256' : 'digest-md5', ch: stale };
    }
    if (!next) {
      if (tried.size > 0) {
        throw proxyError('PROXY_AUTH_FAILED', `the ${where} refused the credentials of user ${JSON.stringify(creds.username)} (${status}; it offers ${offered})`);
      }
      const why =
        (p.auth ?? 'auto') === 'none'
          ? "the profile's http-proxy says auth method none"
          : p.auth === 'auto-nct' || p.auth === 'digest'
            ? `only Digest is allowed here ('${p.auth}': no cleartext password)`
            : 'vpnproxy answers only Basic and Digest (MD5, SHA-256)';
      throw proxyError('PROXY_AUTH_FAILED', `the ${where} requires authentication (${status}; it offers ${offered}), and ${why}`);
    }
    tried.add(next.method);
    authorization =
      next.method === 'basic' ? basicAuthorization(creds) : digestAuthorization(next.ch, creds, 'CONNECT', uri, randomBytes(12).toString('hex'));
  }
}
