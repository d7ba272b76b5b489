import { isIPv6 } from 'node:net';

/** `host:port`, with an IPv6 literal in brackets (`[fd00::1]:1194`), as URLs and most tools write it. */
export function hostPort(host: string, port: number | string): string {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`;
}
