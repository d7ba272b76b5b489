/**
 * `vpnproxy openvpn PROFILE [options]`: loads the profile, binds the listeners (so that early clients wait for
 * the tunnel instead of being refused), brings the VpnTunnel up, prints the ready line, and runs until a
 * signal (exit 0) or until the tunnel closes for good (exit 1). With --ping it only pings and exits.
 */
import { readFile } from 'node:fs/promises';
import { VpnError } from '../errors.js';
import { loadProfile } from '../openvpn/profile.js';
import type { OpenVpnProfile } from '../openvpn/profile-types.js';
import type { ConnectedInfo } from '../openvpn/session.js';
import { VpnTunnel } from '../tunnel.js';
import type { Logger } from '../util/log.js';
import type { OpenVpnCommand } from './args.js';
import { startListeners, type RunningListeners } from './listeners.js';
import { pingLoop } from './ping.js';

/** Credentials from the profile, --auth-user-pass FILE, or VPNPROXY_USERNAME / VPNPROXY_PASSWORD. */
export async function resolveCredentials(
  profile: OpenVpnProfile,
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ username: string; password: string } | undefined> {
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new VpnError('USAGE', `cannot read --auth-user-pass file ${file}: ${(e as Error).message}`);
    }
    const [username = '', password = ''] = text.split(/\r?\n/);
    if (!username) throw new VpnError('USAGE', `--auth-user-pass file ${file} has no username on its first line`);
    return { username, password };
  }
  const aup = profile.authUserPass;
  if (!aup) return undefined;
  const username = aup.username ?? env.VPNPROXY_USERNAME;
  const password = aup.password ?? env.VPNPROXY_PASSWORD;
  if (username === undefined || password === undefined) {
    throw new VpnError(
      'USAGE',
      `${profile.source}:${aup.line}: the profile needs a username and password (auth-user-pass): give --auth-user-pass FILE or set VPNPROXY_USERNAME and VPNPROXY_PASSWORD`,
    );
  }
  return { username, password };
}

const describeTunnel = (info: ConnectedInfo): string =>
  `via ${info.remote.host}:${info.remote.port}/${info.remote.proto}: address ${info.localIp}, cipher ${info.cipher}, ${info.tlsVersion}`;

/** Starts the tunnel; resolves undefined when `signal` aborted first, throws CONNECT_TIMEOUT or the VPN error. */
async function bringUp(tunnel: VpnTunnel, cmd: OpenVpnCommand, signal: AbortSignal): Promise<ConnectedInfo | undefined> {
  if (signal.aborted) return undefined;
  const onAbort = () => void tunnel.close();
  signal.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timeout = setTimeout(() => {
    timedOut = true;
    void tunnel.close();
  }, cmd.connectTimeoutSec * 1000);
  try {
    return await tunnel.start();
  } catch (e) {
    if (signal.aborted) return undefined;
    if (timedOut) {
      const last = tunnel.client.lastError ? `; last error: ${tunnel.client.lastError.message}` : '';
      throw new VpnError('CONNECT_TIMEOUT', `the tunnel was not up within ${cmd.connectTimeoutSec} s${last}`);
    }
    throw e;
  } finally {
    clearTimeout(timeout);
    signal.removeEventListener('abort', onAbort);
  }
}

/** Runs `vpnproxy openvpn PROFILE ...`; returns the exit code (throws VpnError for the others). */
export async function runOpenVpn(cmd: OpenVpnCommand, log: Logger, signal: AbortSignal): Promise<number> {
  const { profile, warnings } = await loadProfile(cmd.profilePath);
  for (const w of warnings) log.warn(`${w.file}:${w.message}`);
  const credentials = await resolveCredentials(profile, cmd.authUserPassFile);
  const tunnel = new VpnTunnel({
    profile,
    credentials,
    tlsEkm: cmd.tlsEkm && profile.tlsEkm,
    dns: cmd.dns.length ? cmd.dns : undefined,
    pcap: cmd.pcap,
    logger: log,
  });
  let listeners: RunningListeners | undefined;
  let closed: { reason: string; error?: VpnError } | undefined;
  tunnel.on('closed', (e) => (closed = e));
  try {
    if (!cmd.ping) listeners = await startListeners(cmd, tunnel, log);
    const info = await bringUp(tunnel, cmd, signal);
    if (!info) return 0;
    process.stderr.write(`vpnproxy: tunnel up ${describeTunnel(info)}\n`);
    if (cmd.ping) return await pingLoop(tunnel, cmd, signal);
    tunnel.on('connected', (i) => log.info(`tunnel up again ${describeTunnel(i)}`));
    await listeners!.startRemoteForwards();
    const what = listeners!.describe.length ? listeners!.describe.join(', ') : 'no listeners (all turned off)';
    process.stderr.write(`vpnproxy: ready: ${what}\n`);
    await new Promise<void>((resolve) => {
      if (signal.aborted || closed) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
      tunnel.once('closed', () => resolve());
    });
    if (!signal.aborted && closed) {
      const c = closed as { reason: string; error?: VpnError };
      throw c.error ?? new VpnError('TRANSPORT_CLOSED', `the tunnel closed (${c.reason})`);
    }
    return 0;
  } finally {
    const t0 = Date.now();
    await listeners?.close();
    log.debug('listeners closed', { ms: Date.now() - t0 });
    await tunnel.close();
    log.debug('tunnel closed', { ms: Date.now() - t0 });
  }
}
