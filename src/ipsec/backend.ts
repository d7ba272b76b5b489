/**
 * IPsec as a VpnBackend: a `manual` connection of the configuration (ESP in UDP with fixed keys, one
 * ManualEspSession per attempt) or an IKEv2 connection (one IkeSession per attempt: the initiator with a
 * pre-shared key, then ESP in UDP with the CHILD_SA it negotiated), over the connection's remote_addrs.
 */
import { VpnError } from '../errors.js';
import type { CloseReason, RemoteEndpoint, VpnBackend, VpnSession } from '../session/types.js';
import { createTransport as defaultTransport } from '../transport/index.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { findConnection, loadIpsecConfig, type IkeConnection, type IpsecConfig, type ManualConnection } from './config.js';
import { ManualEspSession } from './esp-session.js';
import { innerMtu } from './esp-sa.js';
import { IkeSession } from './ike-session.js';
import type { RetransmitPolicy } from './ike/exchange.js';
import { planIke, type IkePlan } from './ike/plan.js';
import { LIBRARY_NAMES, quickIpsecConfig, supplyCredentials, type IpsecQuickSettings, type QuickNames } from './quick.js';

export interface IpsecBackendOptions {
  connection: ManualConnection | IkeConnection;
  /** Required for an IKE connection: the checked plan (prepareIpsec makes it). */
  ike?: IkePlan;
  createTransport?: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  pathMtu?: number;
  clock?: Clock;
  logger?: Logger;
  /** IKE retransmission schedule (default after 1, 2, 4, 8, 8, 8 s, giving up 39 s after the first send). */
  retransmit?: RetransmitPolicy;
}

const RETRY_AFTER_UP = ['NO_SHARED_CIPHER', 'TS_UNACCEPTABLE'];
const FATAL_CODES = ['PROFILE_SYNTAX', 'PROFILE_UNSUPPORTED', 'PROFILE_FILE', 'ALGORITHM_UNSUPPORTED', 'USAGE', 'SA_EXPIRED', 'AUTH_FAILED', 'NO_SHARED_CIPHER', 'TS_UNACCEPTABLE'];

export class IpsecBackend implements VpnBackend<undefined> {
  readonly protocol = 'ipsec';
  readonly remotes: readonly RemoteEndpoint[];
  readonly initialMtu: number;

  constructor(private readonly opts: IpsecBackendOptions) {
    const c = opts.connection;
    this.remotes = c.remoteAddrs.map((host) => ({ host, port: c.remotePort, proto: 'udp' as const }));
    if (c.kind === 'manual') this.initialMtu = innerMtu(c.out.suite, opts.pathMtu ?? 1500);
    else {
      if (!opts.ike) throw new VpnError('INTERNAL', `IKE connection ${c.name} without a plan (use prepareIpsec)`);
      this.initialMtu = opts.ike.initialMtu;
    }
  }

  retryDelays(): { seconds: number; maxSeconds: number } {
    return { seconds: 5, maxSeconds: 300 };
  }

  createSession(index: number): VpnSession {
    const o = this.opts;
    const common = { remote: this.remotes[index]!, createTransport: o.createTransport ?? defaultTransport, pathMtu: o.pathMtu, clock: o.clock, logger: o.logger };
    if (o.connection.kind === 'manual') return new ManualEspSession({ connection: o.connection, ...common });
    return new IkeSession({ plan: o.ike!, retransmit: o.retransmit, ...common });
  }

  isFatal(reason: CloseReason, err: VpnError | undefined, everUp = false): boolean {
    if (reason === 'user' || reason === 'auth-failed') return true;
    // A gateway that is starting up answers NO_PROPOSAL_CHOSEN until its connections are loaded: after a
    // working session, a refused proposal or selector is worth another try (with backoff), not the end.
    if (everUp && err !== undefined && RETRY_AFTER_UP.includes(err.code)) return false;
    return err !== undefined && FATAL_CODES.includes(err.code);
  }
}

export interface IpsecSetup extends Partial<IpsecQuickSettings> {
  /** swanctl.conf (a `connections` or `manual` section) or a .sswan profile; or none, with `server` and its settings. */
  config?: string | IpsecConfig;
  /** Which connection (default: the only one). */
  connection?: string;
  /**
   * What a profile cannot hold: the EAP user name (if it names none) and password, or the PKCS#12 passphrase
   * of a .sswan profile (default: VPNPROXY_USERNAME / VPNPROXY_PASSWORD from `env`).
   */
  username?: string;
  password?: string;
  env?: NodeJS.ProcessEnv;
  /** How messages name the settings and where to give credentials (the CLI's flags; default the library's options). */
  names?: QuickNames;
  howToGive?: string;
  createTransport?: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  clock?: Clock;
  logger?: Logger;
  retransmit?: RetransmitPolicy;
}

/** The configuration loaded, the connection chosen, and the backend ready for a VpnTunnel. */
export async function prepareIpsec(o: IpsecSetup): Promise<{ backend: IpsecBackend; warnings: string[] }> {
  const names = o.names ?? LIBRARY_NAMES;
  const env = o.env ?? process.env;
  let config: IpsecConfig;
  if (o.server !== undefined) {
    if (o.config !== undefined) throw new VpnError('USAGE', `${names.server} builds the connection itself: give either a configuration file or ${names.server} and its settings, not both`);
    config = quickIpsecConfig({ ...o, server: o.server, eapPassword: o.eapPassword ?? (o.eapUser !== undefined ? o.password ?? env.VPNPROXY_PASSWORD : undefined) }, names, o.names ? 'command line' : 'connect() options');
  } else {
    if (o.config === undefined) throw new VpnError('USAGE', `IPsec needs a configuration (swanctl.conf or .sswan) or ${names.server}`);
    const given = (Object.keys(names) as (keyof QuickNames)[]).filter((k) => k !== 'server' && k !== 'eapPassword' && o[k] !== undefined);
    if (given.length > 0) throw new VpnError('USAGE', `${given.map((k) => names[k]).join(', ')} only go with ${names.server} (no configuration file); ${typeof o.config === 'string' ? o.config : 'the configuration'} has its own`);
    config = typeof o.config === 'string' ? await loadIpsecConfig(o.config) : o.config;
  }
  let conn = findConnection(config, o.connection);
  if (conn.kind === 'ike') {
    const howToGive = o.howToGive ?? 'as ipsec.username / ipsec.password, or VPNPROXY_USERNAME / VPNPROXY_PASSWORD';
    ({ config, conn } = supplyCredentials(config, conn, { username: o.username ?? env.VPNPROXY_USERNAME, password: o.password ?? env.VPNPROXY_PASSWORD, howToGive }));
  }
  const warnings = [...config.warnings];
  const common = { createTransport: o.createTransport, clock: o.clock, logger: o.logger };
  if (conn.kind === 'manual') {
    if (conn.localPort !== 0) throw new VpnError('PROFILE_UNSUPPORTED', `${conn.where}: local_port is not supported (the client always uses an ephemeral port)`);
    return { backend: new IpsecBackend({ connection: conn, ...common }), warnings };
  }
  const ike = planIke(config, conn, warnings);
  return { backend: new IpsecBackend({ connection: conn, ike, retransmit: o.retransmit, ...common }), warnings };
}
