/**
 * Proxy credentials (--proxy-auth USER:PASS): HTTP Proxy-Authorization Basic and SOCKS5 username/password
 * (RFC 1929). Comparisons are constant-time: both sides are hashed to fixed-length digests first, so neither
 * the content nor the length of the secret leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { VpnError } from '../errors.js';

export interface ProxyCredentials {
  username: string;
  password: string;
}

/** Parse "USER:PASS" (the password may contain ':'). Throws VpnError USAGE. */
export function parseCredentials(s: string): ProxyCredentials {
  const i = s.indexOf(':');
  if (i <= 0) throw new VpnError('USAGE', `--proxy-auth expects USER:PASS, got ${JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s)}`);
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

function digest(b: Uint8Array | string): Buffer {
  return createHash('sha256').update(b).digest();
}

/** Constant-time equality of two byte strings of any length. */
export function safeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Both fields compared, always both (no early exit on a wrong user name). */
export function checkCredentials(
  expected: ProxyCredentials,
  username: Uint8Array | string,
  password: Uint8Array | string,
): boolean {
  const u = safeEqual(expected.username, username);
  const p = safeEqual(expected.password, password);
  return u && p;
}

/** Decode a "Basic base64(user:pass)" header value; undefined when absent or malformed. */
export function parseBasicAuth(header: string | undefined): { username: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** Check a Proxy-Authorization header against the credentials; true when no credentials are configured. */
export function checkProxyAuthorization(expected: ProxyCredentials | undefined, header: string | undefined): boolean {
  if (!expected) return true;
  const got = parseBasicAuth(header);
  // Compare against empty strings when absent so the time spent does not depend on the header being there.
  return checkCredentials(expected, got?.username ?? '', got?.password ?? '') && got !== undefined;
}
