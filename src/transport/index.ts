/** Transports toward the VPN server: UDP datagrams or length-framed TCP. */
import { VpnError } from '../errors.js';
import { Socks5UdpTransport } from './socks5-udp.js';
import { TcpTransport, type TcpTransportOptions } from './tcp.js';
import type { Transport } from './types.js';
import { UdpTransport, type UdpTransportOptions } from './udp.js';
import { hostPort } from '../util/host-port.js';

export type { Transport, TransportEvents, TransportOptions } from './types.js';
export { UdpTransport, type UdpTransportOptions } from './udp.js';
export { TcpTransport, TcpFrameDecoder, DEFAULT_MAX_PACKET_SIZE, type TcpTransportOptions } from './tcp.js';
export { TransportError, mapSocketError, type ErrorContext } from './common.js';
export { Socks5UdpTransport } from './socks5-udp.js';
export { dialUpstream } from './proxy-dial.js';
export { parseUpstreamProxyUrl, redactUrl, describeProxy, type UpstreamProxy, type HttpProxyAuth } from './upstream-proxy.js';

export type TransportKind = 'udp' | 'tcp';

/** Create (not connect) a transport of the given kind. */
export function createTransport(kind: TransportKind, options: UdpTransportOptions & TcpTransportOptions): Transport {
  const proxy = options.upstreamProxy;
  if (kind === 'udp' && proxy) {
    if (proxy.type !== 'socks5') {
      throw new VpnError('USAGE', `UDP to ${hostPort(options.host, options.port)} cannot go through an HTTP proxy (CONNECT carries only TCP): use TCP or a SOCKS5 proxy`);
    }
    return new Socks5UdpTransport(options, proxy);
  }
  return kind === 'udp' ? new UdpTransport(options) : new TcpTransport(options);
}
