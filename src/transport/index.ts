/** Transports toward the VPN server: UDP datagrams or length-framed TCP. */
import { TcpTransport, type TcpTransportOptions } from './tcp.js';
import type { Transport } from './types.js';
import { UdpTransport, type UdpTransportOptions } from './udp.js';

export type { Transport, TransportEvents, TransportOptions } from './types.js';
export { UdpTransport, type UdpTransportOptions } from './udp.js';
export { TcpTransport, TcpFrameDecoder, DEFAULT_MAX_PACKET_SIZE, type TcpTransportOptions } from './tcp.js';
export { TransportError, mapSocketError, type ErrorContext } from './common.js';

export type TransportKind = 'udp' | 'tcp';

/** Create (not connect) a transport of the given kind. */
export function createTransport(kind: TransportKind, options: UdpTransportOptions & TcpTransportOptions): Transport {
  return kind === 'udp' ? new UdpTransport(options) : new TcpTransport(options);
}
