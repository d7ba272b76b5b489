/**
 * The seam between the proxy front-ends and whatever carries their connections: the userspace TCP/IP stack
 * over the VPN, or this host's own sockets ("direct" routes, and tests). Proxies only ever see a Dialer (or a
 * Router, which picks one of two Dialers per destination).
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { VpnError } from '../errors.js';

/** A connected byte stream, net.Socket-like: the optional members are used when present. */
export type DialedSocket = Duplex & {
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
  setNoDelay?(noDelay?: boolean): unknown;
};

export interface DialOptions {
  /** Give up (CONNECT_TIMEOUT) after this many ms. */
  timeoutMs?: number;
  /** Abort the attempt (rejects with TRANSPORT_CLOSED); a socket that arrives later is destroyed. */
  signal?: AbortSignal;
}

export interface UdpPeer {
  address: string;
  port: number;
}

/** A UDP socket bound to an ephemeral port, able to reach any IPv4 address:port. */
export interface UdpLike {
  /** Send one datagram to an IPv4 or IPv6 literal. Never throws for a full queue: drops instead. */
  send(data: Uint8Array, port: number, address: string): void;
  /** Register the receiver of datagrams (one receiver; a later call replaces it). */
  onMessage(handler: (data: Uint8Array, from: UdpPeer) => void): void;
  close(): void;
}

export interface Dialer {
  /**
   * Open a TCP connection to host:port (host = name or IPv4 literal; names resolve through the VPN's DNS for
   * the VPN dialer). Rejects with a VpnError: DNS_NXDOMAIN, CONN_REFUSED, HOST_UNREACHABLE, CONNECT_TIMEOUT
   * (TRANSPORT_CLOSED when aborted or when the tunnel is down).
   */
  connect(host: string, port: number, opts?: DialOptions): Promise<DialedSocket>;
  /** Resolve a name to IPv4 addresses (an IPv4 literal resolves to itself). Rejects DNS_NXDOMAIN. */
  resolve(host: string): Promise<string[]>;
  /** Optional: a name's IPv6 addresses (AAAA; the VPN dialer asks the VPN's DNS). Rejects DNS_NODATA / DNS_NXDOMAIN. */
  resolve6?(host: string): Promise<string[]>;
  /** A UDP socket (for SOCKS5 UDP ASSOCIATE). */
  bindUdp(): Promise<UdpLike>;
}

/** Map a Node socket/DNS error to the VpnError the Dialer contract promises. */
export function mapNetError(err: unknown, host: string, port?: number): VpnError {
  if (err instanceof VpnError) return err;
  const e = err as NodeJS.ErrnoException;
  const where = port === undefined ? host : `${host}:${port}`;
  switch (e?.code) {
    case 'ENOTFOUND':
    case 'ENODATA':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
      return new VpnError('DNS_NXDOMAIN', `cannot resolve ${host}: no such name`, { cause: err });
    case 'ECONNREFUSED':
      return new VpnError('CONN_REFUSED', `connection refused by ${where}`, { cause: err });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      return new VpnError('HOST_UNREACHABLE', `${where} is unreachable (${e.code})`, { cause: err });
    case 'ETIMEDOUT':
      return new VpnError('CONNECT_TIMEOUT', `connecting to ${where} timed out`, { cause: err });
    case 'ABORT_ERR':
      return new VpnError('TRANSPORT_CLOSED', `connecting to ${where} was aborted`, { cause: err });
    default:
      return new VpnError('TRANSPORT_ERROR', `connecting to ${where} failed: ${e?.message ?? String(err)}`, {
        cause: err,
      });
  }
}

/** True for a network-unreachable failure (SOCKS5 reply 0x03) rather than a host-unreachable one. */
export function isNetworkUnreachable(err: unknown): boolean {
  if (!(err instanceof VpnError)) return false;
  const cause = err.cause as NodeJS.ErrnoException | undefined;
  return err.code === 'TRANSPORT_CLOSED' || cause?.code === 'ENETUNREACH' || cause?.code === 'ENETDOWN';
}

export interface NetDialerOptions {
  /** Default connect timeout when the caller gives none (ms, default 10 000). */
  timeoutMs?: number;
  /** Local address to bind UDP sockets to (default 0.0.0.0). */
  udpBindAddress?: string;
  /** Name resolution (default: the system resolver, IPv4 only). */
  lookup?: (host: string) => Promise<string[]>;
}

async function systemLookup(host: string): Promise<string[]> {
  const r = await dnsPromises.lookup(host, { family: 4, all: true });
  return r.map((a) => a.address);
}

/** The direct dialer: this host's own sockets and resolver. */
export function netDialer(options: NetDialerOptions = {}): Dialer {
  const lookup = options.lookup ?? systemLookup;
  const defaultTimeout = options.timeoutMs ?? 10_000;
  const resolve = async (host: string): Promise<string[]> => {
    if (isIP(host)) return [host];
    let addrs: string[];
    try {
      addrs = await lookup(host);
    } catch (err) {
      throw mapNetError(err, host);
    }
    if (addrs.length === 0) throw new VpnError('DNS_NXDOMAIN', `cannot resolve ${host}: no IPv4 address`);
    return addrs;
  };
  return {
    resolve,
    connect(host, port, opts = {}) {
      return new Promise<DialedSocket>((resolvePromise, reject) => {
        const timeoutMs = opts.timeoutMs ?? defaultTimeout;
        let sock: Socket | undefined;
        let settled = false;
        const finish = (err?: VpnError) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          sock?.removeListener('error', onError);
          if (err) {
            sock?.destroy();
            reject(err);
          } else resolvePromise(sock!);
        };
        const onError = (err: Error) => finish(mapNetError(err, host, port));
        const onAbort = () => finish(new VpnError('TRANSPORT_CLOSED', `connecting to ${host}:${port} was aborted`));
        // One deadline for resolution and connection together.
        const timer = setTimeout(
          () => finish(new VpnError('CONNECT_TIMEOUT', `connecting to ${host}:${port} timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
        if (opts.signal?.aborted) return onAbort();
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        resolve(host).then(
          (addrs) => {
            if (settled) return;
            sock = netConnect({ host: addrs[0]!, port, allowHalfOpen: true, noDelay: true });
            sock.once('connect', () => finish());
            sock.on('error', onError);
          },
          (err: unknown) => finish(mapNetError(err, host, port)),
        );
      });
    },
    async bindUdp() {
      const v4 = dgramUdp(await bindDgram('udp4', options.udpBindAddress ?? '0.0.0.0'));
      // IPv6 destinations get a udp6 socket of their own, opened on first use (most associations never need it).
      return dualUdp(v4, async () => dgramUdp(await bindDgram('udp6', '::')));
    },
  };
}

async function bindDgram(type: 'udp4' | 'udp6', address: string): Promise<DgramSocket> {
  const sock: DgramSocket = createSocket({ type, ipv6Only: type === 'udp6' });
  await new Promise<void>((res, rej) => {
    sock.once('error', rej);
    sock.bind(0, address, () => {
      sock.removeListener('error', rej);
      res();
    });
  });
  return sock;
}

/** One UdpLike over an IPv4 one and an IPv6 one opened when an IPv6 literal is first sent to. */
function dualUdp(v4: UdpLike, open6: () => Promise<UdpLike>): UdpLike {
  let handler: (data: Uint8Array, from: UdpPeer) => void = () => {};
  let v6: Promise<UdpLike | undefined> | undefined;
  let closed = false;
  v4.onMessage((d, f) => handler(d, f));
  return {
    send(data, port, address) {
      if (closed) return;
      if (!address.includes(':')) return v4.send(data, port, address);
      v6 ??= open6().then(
        (u) => {
          if (closed) {
            u.close();
            return undefined;
          }
          u.onMessage((d, f) => handler(d, f));
          return u;
        },
        () => undefined,
      );
      void v6.then((u) => u?.send(data, port, address));
    },
    onMessage(h) {
      handler = h;
    },
    close() {
      if (closed) return;
      closed = true;
      v4.close();
      void v6?.then((u) => u?.close());
    },
  };
}

/** Wrap a bound dgram socket as a UdpLike. */
export function dgramUdp(sock: DgramSocket): UdpLike {
  let handler: (data: Uint8Array, from: UdpPeer) => void = () => {};
  let closed = false;
  sock.on('message', (msg, rinfo) => handler(msg, { address: rinfo.address, port: rinfo.port }));
  sock.on('error', () => {
    /* per-datagram errors (ICMP unreachable etc.) are not fatal for a datagram socket */
  });
  return {
    send(data, port, address) {
      if (closed) return;
      try {
        sock.send(data, port, address);
      } catch {
        /* dropped */
      }
    },
    onMessage(h) {
      handler = h;
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        sock.close();
      } catch {
        /* already closed */
      }
    },
  };
}
