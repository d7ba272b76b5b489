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
import { OpenVpnSession, type AuthPendingEvent } from './session.js';
import { cleanResponse, crv1Password, staticChallengePassword, type ChallengePrompt, type Crv1Challenge, type OtpSource } from './challenge.js';

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
  /** Answers the static-challenge and CRV1 challenges (terminal, --otp, VPNPROXY_OTP, --otp-command, callback). */
  otp?: OtpSource;
  /** True when `otp` asks a person each time (a terminal or a callback): `auth-retry interact` asks again. */
  otpInteractive?: boolean;
  /** How to give a response, for the error when `otp` is missing (the CLI names its flags). */
  otpHint?: string;
  /** The server asks for a web sign-in (AUTH_PENDING with a URL). */
  onAuthPending?: (e: AuthPendingEvent) => void;
}

/** Challenges answered in a row without a working session before we stop (a server that asks forever). */
const MAX_CHALLENGES_IN_ROW = 5;

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
  /** The static-challenge password (SCRV1 or concat), kept for reconnects as OpenVPN keeps it. */
  private staticPassword: string | undefined;
  /** A CRV1 challenge the next attempt answers. */
  private challenge: Crv1Challenge | undefined;
  /** CRV1 challenges answered since the last working session (a server that asks forever is not looped). */
  private answeredChallenges = 0;

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
      resolveCredentials: () => this.credentialsForAttempt(),
      onAuthPending: o.onAuthPending,
      answerChallenge: (p) => this.ask(p),
      passphrase: o.passphrase,
      authToken: token,
      tlsEkm: o.tlsEkm,
      createTransport: o.createTransport,
      clock: o.clock,
      logger: o.logger,
    });
  }

  /**
   * The credentials of the next attempt: the answer to the server's CRV1 challenge when one is waiting,
   * else the password with the static-challenge response (asked once and kept), else the plain ones.
   */
  async credentialsForAttempt(): Promise<{ username: string; password: string } | undefined> {
    const o = this.opts;
    const base = o.credentials;
    const ch = this.challenge;
    if (ch) {
      this.challenge = undefined;
      const response = await this.ask({ kind: 'crv1', text: ch.text, echo: ch.echo });
      return { username: ch.username || base?.username || '', password: crv1Password(ch.stateId, response) };
    }
    const sc = o.profile.staticChallenge;
    if (!sc || !base) return base;
    if (this.staticPassword === undefined) {
      const response = await this.ask({ kind: 'static', text: sc.text, echo: sc.echo });
      this.staticPassword = staticChallengePassword(base.password, response, sc.format);
    }
    return { username: base.username, password: this.staticPassword };
  }

  private async ask(prompt: ChallengePrompt): Promise<string> {
    const what = prompt.kind === 'static' ? `the profile's static-challenge "${prompt.text}"` : `the server's challenge "${prompt.text}"`;
    if (!this.opts.otp) {
      throw new VpnError('USAGE', `${what} needs a response: ${this.opts.otpHint ?? 'give it with the otp option (a function returning the code)'}`);
    }
    const raw = await this.opts.otp(prompt);
    return cleanResponse(raw, what);
  }

  isFatal(reason: CloseReason, err: VpnError | undefined): boolean {
    if (reason === 'auth-failed' && err?.code === 'AUTH_FAILED') {
      // auth-retry: none ends here; nointeract tries again with the same credentials; interact asks the
      // two-factor code again, which only makes sense when a person answers (not a fixed --otp).
      const retry = this.opts.profile.authRetry;
      if (retry === 'nointeract') return false;
      if (retry === 'interact' && this.opts.otpInteractive && this.opts.profile.staticChallenge) return false;
    }
    return isFatalOpenVpn(reason, err);
  }

  afterSession(session: unknown, closed: { reason: CloseReason }, token: AuthToken | undefined): { carry: AuthToken | undefined; retryAtOnce?: boolean } {
    if (!(session instanceof OpenVpnSession)) return { carry: token };
    if (closed.reason === 'auth-failed' && session.crv1Challenge) {
      // OpenVPN's dynamic challenge: answer it on a new connection with CRV1::state_id::response.
      this.answeredChallenges++;
      if (this.answeredChallenges > MAX_CHALLENGES_IN_ROW) {
        this.log.warn(`the server asked ${MAX_CHALLENGES_IN_ROW} challenges in a row; giving up`);
        return { carry: undefined };
      }
      this.challenge = session.crv1Challenge;
      this.log.info('answering the server\'s challenge on a new connection');
      return { carry: undefined, retryAtOnce: true };
    }
    if (closed.reason === 'auth-failed') this.staticPassword = undefined;
    if (session.connectedInfo !== undefined) this.answeredChallenges = 0;
    if (closed.reason === 'auth-failed' && session.usedAuthToken) {
      // The token expired or the server forgot it: forget it and log in with the real credentials again.
      this.log.info('the server refused our auth-token; reconnecting with the username and password');
      return { carry: undefined, retryAtOnce: true };
    }
    return { carry: session.authTokenState ?? token };
  }
}
