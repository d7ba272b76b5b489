/**
 * What an OpenVPN session is once it is up (ConnectedInfo, OpenVPN's own vocabulary), its counters, and
 * the one place both session kinds (TLS and p2p) turn that into the Link configuration and the neutral
 * SessionInfo / SessionStats the tunnel shows.
 */
import type { LinkConfig } from '../link/link.js';
import type { SessionInfo, SessionStats } from '../session/types.js';

export type { CloseReason } from '../session/types.js';

/** What the server gave us once the tunnel is up (the `connected` event). */
export interface ConnectedInfo {
  localIp: string;
  netmask: string;
  gateway?: string;
  routes: string[];
  redirectGateway: boolean;
  /** `ifconfig-ipv6 addr/bits [remote]`: our IPv6 address and prefix length, and the peer. */
  address6?: string;
  prefixLength6?: number;
  gateway6?: string;
  /** `route-ipv6` networks (CIDR). */
  routes6?: string[];
  /** `redirect-gateway ipv6`. */
  redirectGateway6?: boolean;
  /** `dhcp-option DNS6` / `dns server` IPv6 addresses. */
  dns6?: string[];
  dns: string[];
  domains: string[];
  mtu: number;
  cipher: string;
  peerId?: number;
  /** How the data keys were made: TLS exporter, OpenVPN's TLS1-PRF, or a pre-shared `secret` (none for plaintext). */
  keyDerivation: 'tls-ekm' | 'tls1-prf' | 'static-key';
  tlsVersion?: string;
  tlsCipher?: string;
  remote: { host: string; port: number; proto: 'udp' | 'tcp' };
}

export interface SessionCounters {
  controlDropped: number;
  dataDroppedBeforeUp: number;
  dataDropped: number;
  pingsSent: number;
  pingsReceived: number;
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
}

export function newCounters(): SessionCounters {
  return {
    controlDropped: 0,
    dataDroppedBeforeUp: 0,
    dataDropped: 0,
    pingsSent: 0,
    pingsReceived: 0,
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
}

export function linkConfigOf(info: ConnectedInfo): LinkConfig {
  return {
    address: info.localIp,
    netmask: info.netmask,
    gateway: info.gateway,
    mtu: info.mtu,
    dns: info.dns,
    domains: info.domains,
    routes: info.routes,
    redirectGateway: info.redirectGateway,
    ...(info.address6 !== undefined
      ? {
          address6: info.address6,
          prefixLength6: info.prefixLength6 ?? 64,
          gateway6: info.gateway6,
          routes6: info.routes6 ?? [],
          redirectGateway6: info.redirectGateway6 ?? false,
          dns6: info.dns6 ?? [],
        }
      : {}),
  };
}

export function sessionInfoOf(info: ConnectedInfo): SessionInfo {
  const security = info.keyDerivation === 'static-key' ? (info.cipher === 'none' ? 'plaintext p2p' : 'static key') : (info.tlsVersion ?? 'TLS');
  return {
    protocol: 'openvpn',
    server: { ...info.remote },
    link: linkConfigOf(info),
    cipher: info.cipher,
    security,
    details: {
      keyDerivation: info.keyDerivation,
      tlsVersion: info.tlsVersion,
      tlsCipher: info.tlsCipher,
      peerId: info.peerId,
    },
  };
}

export function statsOf(c: SessionCounters): SessionStats {
  return {
    packetsIn: c.packetsIn,
    packetsOut: c.packetsOut,
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
    dropped: c.dataDropped + c.controlDropped,
    drops: { data: c.dataDropped, control: c.controlDropped, 'before-up': c.dataDroppedBeforeUp },
  };
}
