/**
 * IPsec as a VpnBackend. Today: a `manual` connection of the configuration (ESP in UDP with fixed keys,
 * one ManualEspSession per attempt over the connection's remote_addrs). IKEv2 connections come next and
 * plug in here.
 */
import { VpnError } from '../errors.js';
import type { CloseReason, RemoteEndpoint, VpnBackend } from '../session/types.js';
import { createTransport as defaultTransport } from '../transport/index.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { findConnection, loadIpsecConfig, type IpsecConfig, type ManualConnection } from './config.js';
import { ManualEspSession } from './esp-session.js';
import { innerMtu } from './esp-sa.js';

export interface IpsecBackendOptions {
  connection: ManualConnection;
  createTransport?: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  pathMtu?: number;
  clock?: Clock;
  logger?: Logger;
}

const FATAL_CODES = ['PROFILE_SYNTAX', 'PROFILE_UNSUPPORTED', 'PROFILE_FILE', 'ALGORITHM_UNSUPPORTED', 'USAGE', 'SA_EXPIRED', 'AUTH_FAILED'];

export class IpsecBackend implements VpnBackend<undefined> {
  readonly protocol = 'ipsec';
  readonly remotes: readonly RemoteEndpoint[];
  readonly initialMtu: number;

  constructor(private readonly opts: IpsecBackendOptions) {
    const c = opts.connection;
    this.remotes = c.remoteAddrs.map((host) => ({ host, port: c.remotePort, proto: 'udp' as const }));
    this.initialMtu = innerMtu(c.out.suite, opts.pathMtu ?? 1500);
  }

  retryDelays(): { seconds: number; maxSeconds: number } {
    return { seconds: 5, maxSeconds: 300 };
  }

  createSession(index: number): ManualEspSession {
    const o = this.opts;
    return new ManualEspSession({
      connection: o.connection,
      remote: this.remotes[index]!,
      createTransport: o.createTransport ?? defaultTransport,
      pathMtu: o.pathMtu,
      clock: o.clock,
      logger: o.logger,
    });
  }

  isFatal(reason: CloseReason, err: VpnError | undefined): boolean {
    if (reason === 'user' || reason === 'auth-failed') return true;
    return err !== undefined && FATAL_CODES.includes(err.code);
  }
}

export interface IpsecSetup {
  /** swanctl.conf (with a `manual` section) or a .sswan profile. */
  config: string | IpsecConfig;
  /** Which connection (default: the only one). */
  connection?: string;
  createTransport?: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  clock?: Clock;
  logger?: Logger;
}

/** The configuration loaded, the connection chosen, and the backend ready for a VpnTunnel. */
export async function prepareIpsec(o: IpsecSetup): Promise<{ backend: IpsecBackend; warnings: string[] }> {
  const config = typeof o.config === 'string' ? await loadIpsecConfig(o.config) : o.config;
  const conn = findConnection(config, o.connection);
  if (conn.kind !== 'manual') {
    throw new VpnError('PROFILE_UNSUPPORTED', `${conn.where}: connection ${conn.name} needs IKEv2, which vpnproxy does not speak yet; only manual SAs (a 'manual' section) work for now`);
  }
  if (conn.localPort !== 0) throw new VpnError('PROFILE_UNSUPPORTED', `${conn.where}: local_port is not supported (the client always uses an ephemeral port)`);
  return { backend: new IpsecBackend({ connection: conn, createTransport: o.createTransport, clock: o.clock, logger: o.logger }), warnings: [...config.warnings] };
}
