/**
 * vpnproxy as a library. The OpenVPN client is a Link: IP packets in and out of the tunnel, with the
 * configuration the server pushed. Higher layers (the IP stack, proxies, `connect()`) build on it.
 */
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
