/**
 * vpnproxy as a library.
 *
 *   import { connect } from 'vpnproxy';
 *   const vpn = await connect({ openvpn: { profile: 'office.ovpn', username, password } });
 *   await fetch('http://intranet/', { dispatcher: vpn.dispatcher });
 *
 * `connect()` / `Vpn` (library.ts) is the main entry. Below it: VpnTunnel (a protocol's backend under the
 * reconnect loop, the IP stack and TCP), the protocol-neutral session contract (session/types.ts) a new
 * protocol implements, the OpenVPN pieces, the proxy front-ends, and the codecs.
 */
export {
  connect,
  Vpn,
  type VpnConnectOptions,
  type OpenVpnConnectOptions,
  type VpnTlsOptions,
  type VpnTcpConnectOptions,
  type VpnSocket,
  type VpnEvents,
  type ListenerOptions,
  type HttpProxyLibOptions,
  type SocksProxyLibOptions,
  type ForwardLibOptions,
  type RemoteForwardLibOptions,
  type StatusServerLibOptions,
  type ConfigWarning,
} from './library.js';
export { ReconnectingLink, type ReconnectingLinkEvents } from './session/reconnect.js';
export { SessionBase } from './session/base.js';
export type {
  VpnBackend,
  VpnSession,
  SessionInfo,
  SessionStats,
  SessionClosed,
  SessionDetails,
  RemoteEndpoint,
} from './session/types.js';
export { OpenVpnBackend, type OpenVpnBackendOptions } from './openvpn/backend.js';
export { VpnTunnel, type TunnelOptions, type TunnelEvents, type TunnelState } from './tunnel.js';
export { HttpProxy, type HttpProxyOptions } from './proxy/http-proxy.js';
export { Socks5Server, type Socks5Options } from './proxy/socks5.js';
export { LocalForward, RemoteForward, parseForwardSpec, parseRemoteForwardSpec, type ForwardSpec, type RemoteForwardSpec } from './proxy/forward.js';
export { StatusServer, type TunnelStatus, type StatusDocument } from './proxy/status.js';
export { Router, netDialer, type RoutePolicy, type Dialer, type Routing } from './proxy/index.js';
export type { ProxyCredentials } from './proxy/auth.js';
export { DnsError, type LookupResult } from './stack/dns.js';
export type { EchoReply as PingReply } from './stack/ip.js';
export type { TcpSocket } from './stack/tcp/socket.js';
export type { UdpSocket } from './stack/udp.js';
export { VpnError, WireError, exitCodeFor, type ErrorCode } from './errors.js';
export type { Link, LinkConfig, PacketHandler } from './link/link.js';
export { PcapWriter, withPcap } from './link/pcap.js';
export { withTrace } from './link/trace.js';
export { loadProfile, parseProfile } from './openvpn/profile.js';
export type { OpenVpnProfile, ProfileWarning } from './openvpn/profile-types.js';
export { OpenVpnClient, type ClientOptions, type ReconnectingEvent } from './openvpn/client.js';
export { OpenVpnSession, type ConnectedInfo, type CloseReason, type SessionOptions } from './openvpn/session.js';
export { IcmpEcho, type EchoReply } from './stack/icmp-echo.js';
export { createTransport } from './transport/index.js';
export { Logger, type LogLevel } from './util/log.js';
export { VERSION } from './version.js';
