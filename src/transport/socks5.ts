/**
 * SOCKS5 client side (RFC 1928) with username/password authentication (RFC 1929): CONNECT for TCP and UDP
 * ASSOCIATE for datagrams, whose every datagram carries the RFC 1928 §7 request header. The parsers read
 * untrusted bytes: each returns undefined while incomplete and throws PROXY_PROTOCOL on anything that
 * cannot be right; none reads past its buffer.
 */
import net from 'node:net';
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

export const SOCKS_VERSION = 5;
export const METHOD_NONE = 0x00;
export const METHOD_USERPASS = 0x02;
export const METHOD_UNACCEPTABLE = 0xff;
export const CMD_CONNECT = 0x01;
export const CMD_UDP_ASSOCIATE = 0x03;
export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

const REPLIES: Record<number, string> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

const bad = (why: string) => new VpnError('PROXY_PROTOCOL', `malformed SOCKS5 answer: ${why}`);

export interface SocksAddress {
  host: string;
  port: number;
}

/** The greeting: version, then the methods we offer (user/password only when we have credentials). */
export function encodeGreeting(withUserPass: boolean): Buffer {
  return withUserPass ? Buffer.from([SOCKS_VERSION, 2, METHOD_NONE, METHOD_USERPASS]) : Buffer.from([SOCKS_VERSION, 1, METHOD_NONE]);
}

/** The server's method choice (2 bytes). */
export function parseMethodReply(b: Buffer): { value: number; used: number } | undefined {
  if (b.length >= 1 && b[0] !== SOCKS_VERSION) throw bad(`version ${b[0]} in the method reply (is it a SOCKS5 server?)`);
  if (b.length < 2) return undefined;
  return { value: b[1]!, used: 2 };
}

/** RFC 1929 request: version 1, user, password (1..255 bytes each; an empty password is allowed). */
export function encodeUserPass(username: string, password: string): Buffer {
  const u = Buffer.from(username, 'utf8');
  const p = Buffer.from(password, 'utf8');
  if (u.length < 1 || u.length > 255 || p.length > 255) throw new VpnError('USAGE', 'SOCKS5 user names are 1..255 bytes and passwords at most 255 bytes');
  return Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]);
}

/** RFC 1929 reply: version 1 (some servers send 5), status 0 = success. */
export function parseUserPassReply(b: Buffer): { value: number; used: number } | undefined {
  if (b.length >= 1 && b[0] !== 1 && b[0] !== SOCKS_VERSION) throw bad(`version ${b[0]} in the authentication reply`);
  if (b.length < 2) return undefined;
  return { value: b[1]!, used: 2 };
}

/** ATYP + address + port. */
export function encodeAddress(host: string, port: number): Buffer {
  const v = net.isIP(host);
  const portBuf = Buffer.from([port >> 8, port & 0xff]);
  if (v === 4) return Buffer.concat([Buffer.from([ATYP_IPV4]), Buffer.from(host.split('.').map(Number)), portBuf]);
  if (v === 6) return Buffer.concat([Buffer.from([ATYP_IPV6]), ipv6Bytes(host), portBuf]);
  const name = Buffer.from(host, 'utf8');
  if (name.length < 1 || name.length > 255) throw new VpnError('USAGE', `a host name for SOCKS5 must be 1..255 bytes: ${JSON.stringify(host.slice(0, 40))}`);
  return Buffer.concat([Buffer.from([ATYP_DOMAIN, name.length]), name, portBuf]);
}

function ipv6Bytes(host: string): Buffer {
  const out = Buffer.alloc(16);
  let s = host.split('%')[0]!;
  let tail4: number[] = [];
  const m = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    tail4 = m[1]!.split('.').map(Number);
    s = s.slice(0, -m[1]!.length) + '0:0';
  }
  const [head, rest] = s.split('::');
  const h = head ? head.split(':') : [];
  const r = rest !== undefined ? (rest ? rest.split(':') : []) : [];
  const groups = rest !== undefined ? [...h, ...Array<string>(8 - h.length - r.length).fill('0'), ...r] : h;
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail4.length) Buffer.from(tail4).copy(out, 12);
  return out;
}

/** ATYP + address + port starting at `off`: the address and where it ends, or undefined when incomplete. */
export function parseAddress(b: Buffer, off: number): { addr: SocksAddress; end: number } | undefined {
  if (b.length <= off) return undefined;
  const atyp = b[off]!;
  if (atyp === ATYP_IPV4) {
    if (b.length < off + 7) return undefined;
    return { addr: { host: Array.from(b.subarray(off + 1, off + 5)).join('.'), port: b.readUInt16BE(off + 5) }, end: off + 7 };
  }
  if (atyp === ATYP_IPV6) {
    if (b.length < off + 19) return undefined;
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(off + 1 + i * 2).toString(16));
    const host = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1); // canonical form
    return { addr: { host, port: b.readUInt16BE(off + 17) }, end: off + 19 };
  }
  if (atyp === ATYP_DOMAIN) {
    if (b.length < off + 2) return undefined;
    const n = b[off + 1]!;
    if (n === 0) throw bad('an empty domain name');
    if (b.length < off + 2 + n + 2) return undefined;
    return { addr: { host: b.subarray(off + 2, off + 2 + n).toString('latin1'), port: b.readUInt16BE(off + 2 + n) }, end: off + 4 + n };
  }
  throw bad(`unknown address type ${atyp}`);
}

/** CONNECT or UDP ASSOCIATE request. */
export function encodeRequest(cmd: number, host: string, port: number): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, cmd, 0]), encodeAddress(host, port)]);
}

/** The reply to a request: the reply code and the bound address. */
export function parseReply(b: Buffer): { value: { rep: number; bound: SocksAddress }; used: number } | undefined {
  if (b.length >= 1 && b[0] !== SOCKS_VERSION) throw bad(`version ${b[0]} in the reply`);
  if (b.length < 4) return undefined;
  const a = parseAddress(b, 3);
  if (!a) return undefined;
  return { value: { rep: b[1]!, bound: a.addr }, used: a.end };
}

export function replyText(rep: number): string {
  return REPLIES[rep] ?? `reply code ${rep}`;
}

/** One datagram for the relay: RSV RSV FRAG=0 + destination + payload (RFC 1928 §7). */
export function encodeUdpDatagram(dest: SocksAddress, payload: Uint8Array): Buffer {
  const a = encodeAddress(dest.host, dest.port);
  const out = Buffer.allocUnsafe(3 + a.length + payload.length);
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  a.copy(out, 3);
  out.set(payload, 3 + a.length);
  return out;
}

/** A datagram from the relay: its source and the payload (a view). Fragments (FRAG ≠ 0) are refused. */
export function decodeUdpDatagram(b: Buffer): { from: SocksAddress; payload: Buffer } {
  if (b.length < 4) throw bad(`a ${b.length}-byte UDP datagram is shorter than its header`);
  if (b[2] !== 0) throw bad(`a fragmented UDP datagram (FRAG ${b[2]}) is not supported`);
  const a = parseAddress(b, 3);
  if (!a) throw bad('a UDP datagram ends inside its header');
  return { from: a.addr, payload: b.subarray(a.end) };
}

const MAX_REPLY = 600;

/**
 * Greeting, authentication and one request on a connection to the proxy; resolves with the reply's bound
 * address. The reader is left attached (the caller releases it).
 */
async function negotiate(sock: net.Socket, reader: HandshakeReader, p: UpstreamProxy, cmd: number, target: SocksAddress, signal?: AbortSignal): Promise<SocksAddress> {
  const where = describeProxy(p);
  const haveCreds = p.username !== undefined && p.username !== '';
  sock.write(encodeGreeting(haveCreds));
  const method = await reader.next(parseMethodReply, 'method choice', signal);
  if (method === METHOD_UNACCEPTABLE || (method === METHOD_USERPASS && !haveCreds) || (method !== METHOD_NONE && method !== METHOD_USERPASS)) {
    if (!haveCreds && (method === METHOD_UNACCEPTABLE || method === METHOD_USERPASS)) {
      throw proxyError(
        'PROXY_AUTH_FAILED',
        `the ${where} requires authentication (it accepts none of: no authentication): give the proxy's user and password (socks-proxy auth file, --upstream-proxy socks5://USER:PASS@HOST:PORT, or VPNPROXY_PROXY_USERNAME and VPNPROXY_PROXY_PASSWORD)`,
      );
    }
    throw proxyError(
      'PROXY_AUTH_FAILED',
      method === METHOD_UNACCEPTABLE
        ? `the ${where} accepts none of our authentication methods (no authentication, username/password)`
        : `the ${where} chose authentication method ${method}, which we did not offer`,
    );
  }
  if (method === METHOD_USERPASS) {
    sock.write(encodeUserPass(p.username!, p.password ?? ''));
    const status = await reader.next(parseUserPassReply, 'authentication reply', signal);
    if (status !== 0) throw proxyError('PROXY_AUTH_FAILED', `the ${where} refused the credentials of user ${JSON.stringify(p.username)} (RFC 1929 status ${status})`);
  }
  sock.write(encodeRequest(cmd, target.host, target.port));
  const { rep, bound } = await reader.next(parseReply, cmd === CMD_CONNECT ? 'reply to CONNECT' : 'reply to UDP ASSOCIATE', signal);
  if (rep !== 0) {
    const what = cmd === CMD_CONNECT ? `connect us to ${hostPort(target.host, target.port)}` : 'set up a UDP association';
    throw proxyError('PROXY_REFUSED', `the ${where} refused to ${what}: ${replyText(rep)}`);
  }
  return bound;
}

async function handshake<T>(p: UpstreamProxy, o: DialOptions, body: (sock: net.Socket, reader: HandshakeReader) => Promise<T>): Promise<T> {
  const sock = await connectToProxy(p, o);
  const reader = new HandshakeReader(sock, describeProxy(p), MAX_REPLY, p.handshakeTimeoutMs ?? 10_000);
  try {
    return await body(sock, reader);
  } catch (e) {
    reader.release();
    sock.destroy();
    if (e instanceof VpnError && !(e as { fatal?: boolean }).fatal) throw proxyError(e.code, `${describeProxy(p)}: ${e.message}`, e);
    throw e;
  }
}

/** A TCP connection to target through the SOCKS5 proxy p. */
export function socks5Connect(p: UpstreamProxy, target: DialTarget, o: DialOptions = {}): Promise<{ socket: net.Socket; head: Buffer }> {
  return handshake(p, o, async (sock, reader) => {
    await negotiate(sock, reader, p, CMD_CONNECT, target, o.signal);
    return { socket: sock, head: Buffer.from(reader.release()) };
  });
}

/**
 * A UDP association: the control connection (which must stay open as long as the association is used) and
 * the relay's address, where 0.0.0.0 / :: (RFC 1928: "use the server's address") is replaced by the
 * address we reached the proxy at.
 */
export function socks5UdpAssociate(p: UpstreamProxy, o: DialOptions = {}): Promise<{ control: net.Socket; relay: SocksAddress }> {
  return handshake(p, o, async (sock, reader) => {
    const v6 = net.isIPv6(sock.remoteAddress ?? '');
    const bound = await negotiate(sock, reader, p, CMD_UDP_ASSOCIATE, { host: v6 ? '::' : '0.0.0.0', port: 0 }, o.signal);
    reader.release();
    let host = bound.host;
    if (host === '0.0.0.0' || host === '::') host = sock.remoteAddress!;
    if (bound.port === 0) throw proxyError('PROXY_PROTOCOL', `the ${describeProxy(p)} gave UDP relay port 0`);
    return { control: sock, relay: { host, port: bound.port } };
  });
}
