import { VpnError } from '../errors.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import { describeProxy, type UpstreamProxy } from '../transport/upstream-proxy.js';
import type { Logger } from '../util/log.js';
import type { ProfileRemote } from './profile-types.js';
import { hostPort } from '../util/host-port.js';

/** What a session tells the transport wiring (OpenVpnSession and P2pSession share it). */
export interface RemoteTransportHooks {
  onPacket(packet: Buffer): void;
  /** The session is established: a non-fatal transport error (an ICMP error on UDP) is then only logged. */
  isUp(): boolean;
  /** The session still wants its transport (connecting or established). */
  isActive(): boolean;
  fail(err: VpnError): void;
  log: Logger;
  /** 'server' or 'peer', for messages. */
  peer: string;
  /** Reach the remote through this proxy (HTTP CONNECT or SOCKS5; the transport layer dials it). */
  upstreamProxy?: UpstreamProxy;
}

/** Any error as a VpnError (transport errors already are). */
export function asVpnError(e: unknown, code: 'TRANSPORT_ERROR' = 'TRANSPORT_ERROR'): VpnError {
  return e instanceof VpnError ? e : new VpnError(code, e instanceof Error ? e.message : String(e), { cause: e });
}

/**
 * Creates the transport to `remote` and routes its events to the session. An ICMP error on UDP (port
 * unreachable while the server restarts) does not end an established session — ping-restart decides — but
 * while connecting it means nobody listens there, so the attempt fails at once and the next one can start.
 */
export function createRemoteTransport(
  remote: ProfileRemote,
  create: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport,
  h: RemoteTransportHooks,
): Transport {
  const proxy = h.upstreamProxy;
  if (proxy) h.log.info(`reaching ${hostPort(remote.host, remote.port)} through the ${describeProxy(proxy)}${proxy.type === 'socks5' && remote.proto === 'udp' ? ' (UDP ASSOCIATE)' : ''}`);
  const t = create(remote.proto, {
    host: remote.host,
    port: remote.port,
    ...(remote.family === 'ipv6' ? { family: 6 as const } : remote.family === 'ipv4' ? { family: 4 as const } : {}),
    connectTimeoutMs: remote.connection.connectTimeout * 1000,
    ...(proxy ? { upstreamProxy: proxy } : {}),
  });
  t.on('packet', (p) => h.onPacket(p));
  t.on('error', (e) => {
    if ((e as { fatal?: boolean }).fatal === false && h.isUp()) {
      h.log.debug(`transport: ${e.message}`);
      return;
    }
    h.fail(asVpnError(e));
  });
  t.on('close', () => {
    if (h.isActive()) h.fail(new VpnError('TRANSPORT_CLOSED', `the ${h.peer} closed the ${remote.proto.toUpperCase()} connection`));
  });
  return t;
}
