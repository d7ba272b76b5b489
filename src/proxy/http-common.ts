/**
 * HTTP proxy helpers: hop-by-hop header filtering (RFC 9110 §7.6.1), raw error responses for sockets that
 * left the HTTP parser (CONNECT, clientError), dial-failure to status mapping, authority parsing, and a
 * shim that gives a generic Duplex the few net.Socket methods http.Agent calls.
 */
import type { Duplex } from 'node:stream';
import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import { isIPv6 } from 'node:net';
import { VpnError } from '../errors.js';

/** Always hop-by-hop, whatever Connection says. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Header names listed in Connection (and the non-standard Proxy-Connection) are hop-by-hop too. */
export function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name !== 'connection' && name !== 'proxy-connection') continue;
    for (const t of rawHeaders[i + 1]!.split(',')) {
      const tok = t.trim().toLowerCase();
      if (tok) out.add(tok);
    }
  }
  return out;
}

/**
 * End-to-end headers from rawHeaders (original case and order kept; repeated names become arrays),
 * without hop-by-hop headers and without the names in `drop` (lower case).
 */
export function endToEndHeaders(rawHeaders: readonly string[], drop: readonly string[] = []): OutgoingHttpHeaders {
  const listed = connectionTokens(rawHeaders);
  const out: OutgoingHttpHeaders = {};
  const caseOf = new Map<string, string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || drop.includes(lower)) continue;
    const value = rawHeaders[i + 1]!;
    const key = caseOf.get(lower);
    if (key === undefined) {
      caseOf.set(lower, name);
      out[name] = value;
    } else {
      const prev = out[key];
      out[key] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    }
  }
  return out;
}

export function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 400);
}

/** Status and one-line reason for a failure to reach the destination. */
export function failureResponse(err: unknown, host: string, port: number): { status: number; reason: string } {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (err instanceof VpnError) {
    switch (err.code) {
      case 'DNS_NXDOMAIN':
        return { status: 502, reason: `name not resolvable: ${host} (${oneLine(err.message)})` };
      case 'CONN_REFUSED':
        return { status: 502, reason: `connection refused by ${where}` };
      case 'HOST_UNREACHABLE':
        if ((err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENETUNREACH') return { status: 502, reason: oneLine(err.message) };
        return { status: 502, reason: `host unreachable: ${where}` };
      case 'CONNECT_TIMEOUT':
        return { status: 504, reason: `connect timeout: ${where}` };
      case 'TRANSPORT_CLOSED':
        return { status: 503, reason: 'VPN tunnel is not up' };
      default:
        return { status: 502, reason: `cannot connect to ${where}: ${oneLine(err.message)}` };
    }
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
  return { status: 502, reason: `upstream ${where} failed: ${code}` };
}

/**
 * The upstream connection was reset or broken: a net.Socket's ECONNRESET / EPIPE, or the tunnel stack's
 * TRANSPORT_CLOSED whose cause is ECONNRESET (a RST from the peer). Not "the tunnel is down".
 */
export function isConnectionReset(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNRESET' || code === 'EPIPE') return true;
  const cause = (err as { cause?: NodeJS.ErrnoException } | undefined)?.cause;
  return err instanceof VpnError && (cause?.code === 'ECONNRESET' || cause?.code === 'EPIPE');
}

/** A complete response written straight to a socket, then the socket is ended (and destroyed soon after). */
export function writeRawResponse(
  socket: Duplex,
  status: number,
  reason: string,
  extraHeaders: Record<string, string> = {},
): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = oneLine(reason) + '\n';
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
  head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(extraHeaders)) head += `${k}: ${v}\r\n`;
  socket.end(head + '\r\n' + body);
  // Do not wait forever for a peer that never reads or never closes.
  const t = setTimeout(() => socket.destroy(), 2000);
  t.unref?.();
  socket.once('close', () => clearTimeout(t));
}

/** Parse a CONNECT authority "host:port" / "[v6]:port"; undefined when malformed. */
export function parseAuthority(s: string): { host: string; port: number; ipv6: boolean } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/?#@[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) return undefined;
    return { host: m[1], port, ipv6: true };
  }
  return { host: m[2]!, port, ipv6: false };
}

type SocketShim = {
  setKeepAlive?: (...a: unknown[]) => unknown;
  setNoDelay?: (...a: unknown[]) => unknown;
  setTimeout?: (...a: unknown[]) => unknown;
  ref?: () => unknown;
  unref?: () => unknown;
};

/** Give a generic Duplex the net.Socket methods that http.Agent / ClientRequest call (as no-ops when absent). */
export function asAgentSocket<T extends Duplex>(s: T): T {
  const o = s as T & SocketShim;
  if (typeof o.setKeepAlive !== 'function') o.setKeepAlive = () => o;
  if (typeof o.setNoDelay !== 'function') o.setNoDelay = () => o;
  if (typeof o.ref !== 'function') o.ref = () => o;
  if (typeof o.unref !== 'function') o.unref = () => o;
  if (typeof o.setTimeout !== 'function') {
    // Idle timeout emulation: emit 'timeout' after ms without data either way (what net.Socket does).
    let timer: NodeJS.Timeout | undefined;
    let ms = 0;
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = ms > 0 ? setTimeout(() => o.emit('timeout'), ms) : undefined;
      timer?.unref?.();
    };
    o.on('data', arm);
    o.once('close', () => timer && clearTimeout(timer));
    o.setTimeout = (...a: unknown[]) => {
      ms = typeof a[0] === 'number' ? a[0] : 0;
      arm();
      return o;
    };
  }
  return s;
}
