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
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { OpenVpnBackend } from './backend.js';
import { loadProfile, parseProfile } from './profile.js';
import type { OpenVpnProfile, ParsedProfile, ProfileWarning } from './profile-types.js';

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
  /** Offer the TLS keying-material exporter (default: the profile's setting). */
  tlsEkm?: boolean;
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

/** The profile loaded, credentials resolved, and the backend ready for a VpnTunnel. */
export async function prepareOpenVpn(o: OpenVpnSetup): Promise<{ backend: OpenVpnBackend; profile: OpenVpnProfile; warnings: ProfileWarning[] }> {
  const { profile, warnings } = await resolveProfile(o.profile);
  const credentials = await resolveCredentials(profile, { username: o.username, password: o.password, file: o.credentialsFile, env: o.env });
  const backend = new OpenVpnBackend({
    profile,
    credentials,
    passphrase: o.passphrase,
    tlsEkm: o.tlsEkm === undefined ? undefined : o.tlsEkm && profile.tlsEkm,
    createTransport: o.createTransport ?? defaultTransport,
    clock: o.clock,
    logger: o.logger,
    random: o.random,
  });
  return { backend, profile, warnings };
}
