/** One entry point for "a TCP connection to the target through this proxy", whatever its kind. */
import type net from 'node:net';
import { httpConnect } from './http-connect.js';
import { socks5Connect } from './socks5.js';
import type { DialOptions, DialTarget, UpstreamProxy } from './upstream-proxy.js';

/**
 * A TCP connection to `target` through the proxy: the socket (no listeners of ours left on it, paused:
 * attach 'data' and 'error' listeners, then resume()) and any bytes the target already sent after the
 * proxy's answer.
 */
export function dialUpstream(p: UpstreamProxy, target: DialTarget, o: DialOptions = {}): Promise<{ socket: net.Socket; head: Buffer }> {
  return p.type === 'http' ? httpConnect(p, target, o) : socks5Connect(p, target, o);
}
