/** The CLI's start-up contract: one stderr line `vpnproxy: ready: http-proxy 127.0.0.1:41234, ...`. Pure. */

export interface ReadyInfo {
  /** Front-end name (http-proxy, socks-proxy, status, ...) → host and port. */
  listeners: Record<string, { host: string; port: number }>;
}

/** Parses one line; undefined if it is not a ready line. IPv6 hosts may be bracketed. */
export function parseReadyLine(line: string): ReadyInfo | undefined {
  const m = /vpnproxy: ready:\s*(.*)$/.exec(line);
  if (!m) return undefined;
  const listeners: ReadyInfo['listeners'] = {};
  for (const part of m[1]!.split(',')) {
    const p = /^\s*([a-z][a-z0-9-]*)\s+\[?([0-9a-fA-F.:]+?|[a-zA-Z0-9.-]+)\]?:(\d{1,5})\s*$/.exec(part);
    if (p) listeners[p[1]!] = { host: p[2]!, port: Number(p[3]) };
  }
  return { listeners };
}
