/**
 * From what a user gives (a profile in any form, credentials from options, a file or the environment) to an
 * OpenVpnBackend: the one place the CLI and the library both go through, so credentials are resolved the
 * same way by both.
 */
import { readFileSync } from 'node:fs';
import { readUserPassFile } from '../util/credentials.js';
import { VpnError } from '../errors.js';
import { createTransport as defaultTransport } from '../transport/index.js';
import type { Transport, TransportOptions } from '../transport/types.js';
import { parseUpstreamProxyUrl, redactUrl, type UpstreamProxy } from '../transport/upstream-proxy.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { OpenVpnBackend } from './backend.js';
import type { ChallengePrompt, OtpSource } from './challenge.js';
import type { AuthPendingEvent } from './session.js';
import { commandOtp } from '../util/otp-sources.js';
import { loadProfile, parseProfile } from './profile.js';
import type { OpenVpnProfile, ParsedProfile, ProfileRemote, ProfileWarning } from './profile-types.js';
import { hostPort } from '../util/host-port.js';

export interface OpenVpnSetup {
  /**
   * The profile: a path to an .ovpn file (files it references are read relative to it), the text of a
   * profile (any string containing a newline; references relative to the current directory), or an
   * already parsed profile (`parseProfile(text).profile` or the whole ParsedProfile).
   */
  profile: string | OpenVpnProfile | ParsedProfile;
  /** For `auth-user-pass` profiles (default: the profile's own, then VPNPROXY_USERNAME / VPNPROXY_PASSWORD). */
  username?: string;
  password?: string;
  /** A file with the username on its first line and the password on the second (the CLI's --auth-user-pass). */
  credentialsFile?: string;
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
  /**
   * Reach the server through this proxy instead of the profile's http-proxy / socks-proxy lines:
   * `http://user:pass@host:3128` or `socks5://user:pass@host:1080` (the CLI's --upstream-proxy). Without
   * user and password in the URL, VPNPROXY_PROXY_USERNAME / VPNPROXY_PROXY_PASSWORD are used.
   * HTTPS_PROXY / ALL_PROXY are never read.
   */
  upstreamProxy?: string;
  /** Offer the TLS keying-material exporter (default: the profile's setting). */
  tlsEkm?: boolean;
  /**
   * The two-factor response for `static-challenge` and the server's CRV1 challenges: a fixed code (the CLI's
   * --otp), or a function asked each time with the challenge (its text and whether to echo). Without it:
   * `otpCommand`, then VPNPROXY_OTP, then `otpPrompt`.
   */
  otp?: string | ((prompt: ChallengePrompt) => Promise<string> | string);
  /** A shell command that prints the response (the CLI's --otp-command), run for each challenge. */
  otpCommand?: string;
  /** The last resort when nothing else gives a response (the CLI's terminal prompt). */
  otpPrompt?: OtpSource;
  /** What the error says when a response is needed and no way to give one was set. */
  otpHint?: string;
  /** The server asks for a web sign-in: its URL and timeout (AUTH_PENDING). */
  onAuthPending?: (e: AuthPendingEvent) => void;
  env?: NodeJS.ProcessEnv;
  createTransport?: (kind: 'udp' | 'tcp', opts: TransportOptions) => Transport;
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
}

/** Load the profile given in any of its accepted forms. */
export async function resolveProfile(p: OpenVpnSetup['profile']): Promise<ParsedProfile> {
  if (typeof p === 'string') {
    if (p.includes('\n')) return parseProfile(p, { readFile: (abs) => readFileSync(abs, 'utf8'), readBinaryFile: (abs) => new Uint8Array(readFileSync(abs)) });
    return loadProfile(p);
  }
  if ('profile' in p && 'warnings' in p) return p;
  return { profile: p, warnings: [] };
}

/**
 * Credentials, first found wins: a credentials file, the given username/password, the profile's own
 * (inline or its auth-user-pass file), VPNPROXY_USERNAME / VPNPROXY_PASSWORD. A profile that needs them and
 * gets none is a USAGE error naming the ways to give them; a profile that does not gets undefined unless a
 * username was given.
 */
export async function resolveCredentials(
  profile: OpenVpnProfile,
  given: { username?: string; password?: string; file?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ username: string; password: string } | undefined> {
  if (given.file) return readUserPassFile(given.file);
  const env = given.env ?? process.env;
  const aup = profile.authUserPass;
  const username = given.username ?? aup?.username ?? (aup ? env.VPNPROXY_USERNAME : undefined);
  const password = given.password ?? aup?.password ?? (aup ? env.VPNPROXY_PASSWORD : undefined);
  if (!aup) return username !== undefined ? { username, password: password ?? '' } : undefined;
  if (username === undefined || password === undefined) {
    throw new VpnError(
      'USAGE',
      `${profile.source}:${aup.line}: the profile needs a username and password (auth-user-pass): give --auth-user-pass FILE or set VPNPROXY_USERNAME and VPNPROXY_PASSWORD (library: openvpn.username / openvpn.password)`,
    );
  }
  return { username, password };
}

/**
 * The proxy each remote is reached through: the override URL for every remote, else the remote's own
 * http-proxy / socks-proxy with its credentials (the auth file or inline block, then
 * VPNPROXY_PROXY_USERNAME / VPNPROXY_PROXY_PASSWORD). Checked here, before any connection: an HTTP proxy
 * for a UDP remote and a profile that asks for proxy credentials nobody gave are USAGE errors.
 */
export function resolveUpstreamProxies(
  profile: OpenVpnProfile,
  override: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): (remote: ProfileRemote) => UpstreamProxy | undefined {
  const envCreds = env.VPNPROXY_PROXY_USERNAME ? { username: env.VPNPROXY_PROXY_USERNAME, password: env.VPNPROXY_PROXY_PASSWORD ?? '' } : undefined;
  if (override !== undefined) {
    const p = parseUpstreamProxyUrl(override);
    if (p.username === undefined && envCreds) Object.assign(p, envCreds);
    for (const r of profile.remotes) {
      if (p.type === 'http' && r.proto === 'udp') {
        throw new VpnError(
          'USAGE',
          `--upstream-proxy ${redactUrl(override)}: an HTTP proxy carries only TCP, but the remote ${hostPort(r.host, r.port)} (${profile.source}:${r.line}) is UDP: use a TCP profile (proto tcp-client) or a socks5:// proxy`,
        );
      }
    }
    return () => p;
  }
  const byRemote = new Map<ProfileRemote, UpstreamProxy>();
  for (const r of profile.remotes) {
    const pp = r.connection.proxy;
    if (!pp) continue;
    const creds = pp.credentials
      ? { username: pp.credentials.username, password: pp.credentials.password ?? envCreds?.password }
      : envCreds;
    if (pp.wantsCredentials && (!creds || creds.password === undefined)) {
      throw new VpnError(
        'USAGE',
        `${profile.source}:${pp.line}: the ${pp.type === 'http' ? 'http-proxy' : 'socks-proxy'} needs a username and password: put them in its auth file, or set VPNPROXY_PROXY_USERNAME and VPNPROXY_PROXY_PASSWORD, or give --upstream-proxy URL (library: openvpn.upstreamProxy)`,
      );
    }
    const up: UpstreamProxy = { type: pp.type, host: pp.host, port: pp.port };
    if (creds) {
      up.username = creds.username;
      up.password = creds.password ?? '';
    }
    if (pp.type === 'http') {
      up.auth = pp.auth;
      if (pp.httpVersion) up.httpVersion = pp.httpVersion;
      if (pp.userAgent !== undefined) up.userAgent = pp.userAgent;
      if (pp.headers.length) up.headers = pp.headers;
    }
    if (pp.timeout !== undefined) up.handshakeTimeoutMs = pp.timeout * 1000;
    byRemote.set(r, up);
  }
  return (r) => byRemote.get(r);
}

/**
 * Where two-factor responses come from, first found wins: `otp` (a code or a function), `otpCommand`,
 * VPNPROXY_OTP, `otpPrompt`. `interactive` is true when each call can give a new answer (a function, a
 * command, a prompt), which `auth-retry interact` needs.
 */
export function resolveOtpSource(o: Pick<OpenVpnSetup, 'otp' | 'otpCommand' | 'otpPrompt' | 'env'>): { source?: OtpSource; interactive: boolean } {
  const env = o.env ?? process.env;
  if (typeof o.otp === 'string') {
    const code = o.otp;
    return { source: async () => code, interactive: false };
  }
  if (typeof o.otp === 'function') {
    const f = o.otp;
    return {
      source: async (p) => {
        const v = await f(p);
        if (typeof v !== 'string') throw new VpnError('USAGE', 'the otp callback did not return a string');
        return v;
      },
      interactive: true,
    };
  }
  if (o.otpCommand) return { source: commandOtp(o.otpCommand, { env }), interactive: true };
  const fromEnv = env.VPNPROXY_OTP;
  if (fromEnv !== undefined && fromEnv !== '') return { source: async () => fromEnv, interactive: false };
  if (o.otpPrompt) return { source: o.otpPrompt, interactive: true };
  return { interactive: false };
}

/** The profile loaded, credentials resolved, and the backend ready for a VpnTunnel. */
export async function prepareOpenVpn(o: OpenVpnSetup): Promise<{ backend: OpenVpnBackend; profile: OpenVpnProfile; warnings: ProfileWarning[] }> {
  const { profile, warnings } = await resolveProfile(o.profile);
  const credentials = await resolveCredentials(profile, { username: o.username, password: o.password, file: o.credentialsFile, env: o.env });
  const upstreamProxy = resolveUpstreamProxies(profile, o.upstreamProxy, o.env);
  const otp = resolveOtpSource(o);
  if (profile.staticChallenge && credentials && !otp.source) {
    throw new VpnError(
      'USAGE',
      `${profile.source}: the profile's static-challenge "${profile.staticChallenge.text}" needs a response: ${o.otpHint ?? 'give openvpn.otp (a code or a function returning one)'}`,
    );
  }
  const backend = new OpenVpnBackend({
    profile,
    credentials,
    upstreamProxy,
    passphrase: o.passphrase,
    tlsEkm: o.tlsEkm === undefined ? undefined : o.tlsEkm && profile.tlsEkm,
    createTransport: o.createTransport ?? defaultTransport,
    clock: o.clock,
    logger: o.logger,
    random: o.random,
    otp: otp.source,
    otpInteractive: otp.interactive,
    otpHint: o.otpHint,
    onAuthPending: o.onAuthPending,
  });
  return { backend, profile, warnings };
}
