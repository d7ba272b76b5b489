/**
 * OpenVPN as a VpnBackend: the remotes of a profile (shuffled once with `remote-random`), their
 * connect-retry delays, one OpenVpnSession (TLS) or P2pSession (static key, plaintext) per attempt, which
 * failures are final, and the auth-token carried from one session to the next.
 */
import { VpnError } from '../errors.js';
import type { CloseReason, RemoteEndpoint, VpnBackend } from '../session/types.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import type { UpstreamProxy } from '../transport/upstream-proxy.js';
import type { Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { P2pSession } from './p2p-session.js';
import type { OpenVpnProfile, ProfileRemote } from './profile-types.js';
import { OpenVpnSession } from './session.js';

export interface OpenVpnBackendOptions {
  profile: OpenVpnProfile;
  credentials?: { username: string; password: string };
  passphrase?: string;
  tlsEkm?: boolean;
  createTransport: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  /** The proxy a remote is reached through, if any (see resolveUpstreamProxies). */
  upstreamProxy?: (remote: ProfileRemote) => UpstreamProxy | undefined;
  clock?: Clock;
  logger?: Logger;
  /** Random source in [0, 1) for remote-random (tests make it deterministic). */
  random?: () => number;
}

/** What one OpenVPN session hands to the next: the server's auth-token, so the password is not sent again. */
export type AuthToken = { token: string; user?: string };

const FATAL_CODES = ['PROXY_AUTH_FAILED', 'TLS_VERIFY', 'PROFILE_SYNTAX', 'PROFILE_UNSUPPORTED', 'PROFILE_FILE', 'ALGORITHM_UNSUPPORTED', 'USAGE', 'NO_SHARED_CIPHER', 'SERVER_HALT', 'AUTH_FAILED'];

/** Errors after which trying again cannot help: the user has to change something. */
export function isFatalOpenVpn(reason: CloseReason, err: VpnError | undefined): boolean {
  if (reason === 'user' || reason === 'server-halt' || reason === 'auth-failed') return true;
  return err !== undefined && FATAL_CODES.includes(err.code);
}

export class OpenVpnBackend implements VpnBackend<AuthToken> {
  readonly protocol = 'openvpn';
  readonly remotes: readonly RemoteEndpoint[];
  readonly initialMtu: number;
  readonly maxRounds: number | undefined;
  private readonly profileRemotes: ProfileRemote[];
  private readonly log: Logger;

  constructor(private readonly opts: OpenVpnBackendOptions) {
    const p = opts.profile;
    this.log = (opts.logger ?? silentLogger).child('client');
    const remotes = [...p.remotes];
    if (remotes.length === 0) throw new VpnError('PROFILE_SYNTAX', `${p.source}: no 'remote' in the profile`);
    if (p.remoteRandom) {
      const random = opts.random ?? Math.random;
      for (let i = remotes.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [remotes[i], remotes[j]] = [remotes[j]!, remotes[i]!];
      }
    }
    this.profileRemotes = remotes;
    this.remotes = remotes.map((r) => ({ host: r.host, port: r.port, proto: r.proto }));
    this.initialMtu = remotes[0]!.connection.tunMtu;
    this.maxRounds = p.connectRetryMax;
  }

  retryDelays(index: number): { seconds: number; maxSeconds: number } {
    return this.profileRemotes[index]!.connection.connectRetry;
  }

  createSession(index: number, token: AuthToken | undefined): OpenVpnSession | P2pSession {
    const o = this.opts;
    const Session = o.profile.mode === 'tls-client' ? OpenVpnSession : P2pSession;
    const remote = this.profileRemotes[index]!;
    return new Session({
      profile: o.profile,
      remote,
      upstreamProxy: o.upstreamProxy?.(remote),
      credentials: o.credentials,
      passphrase: o.passphrase,
      authToken: token,
      tlsEkm: o.tlsEkm,
      createTransport: o.createTransport,
      clock: o.clock,
      logger: o.logger,
    });
  }

  isFatal(reason: CloseReason, err: VpnError | undefined): boolean {
    return isFatalOpenVpn(reason, err);
  }

  afterSession(session: unknown, closed: { reason: CloseReason }, token: AuthToken | undefined): { carry: AuthToken | undefined; retryAtOnce?: boolean } {
    if (!(session instanceof OpenVpnSession)) return { carry: token };
    if (closed.reason === 'auth-failed' && session.usedAuthToken) {
      // The token expired or the server forgot it: forget it and log in with the real credentials again.
      this.log.info('the server refused our auth-token; reconnecting with the username and password');
      return { carry: undefined, retryAtOnce: true };
    }
    return { carry: session.authTokenState ?? token };
  }
}
