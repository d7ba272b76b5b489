/**
 * `vpnproxy PROTOCOL CONFIG [options]`: the protocol loads its config into a backend, then, the same for every
 * protocol: bind the listeners (so that early clients wait for the tunnel instead of being refused), bring the
 * VpnTunnel up, print the ready line, and run until a signal (exit 0) or until the tunnel closes for good
 * (exit 1). With --ping it only pings and exits.
 */
import { VpnError } from '../errors.js';
import type { SessionInfo } from '../session/types.js';
import { VpnTunnel } from '../tunnel.js';
import type { Logger } from '../util/log.js';
import type { VpnCommand } from './args.js';
import { startListeners, type RunningListeners } from './listeners.js';
import { pingLoop } from './ping.js';
import { hostPort } from '../util/host-port.js';

const describeTunnel = (info: SessionInfo): string =>
  `via ${hostPort(info.server.host, info.server.port)}/${info.server.proto}: address ${info.link.address}, cipher ${info.cipher}${info.security ? `, ${info.security}` : ''}`;

/** Starts the tunnel; resolves undefined when `signal` aborted first, throws CONNECT_TIMEOUT or the VPN error. */
async function bringUp(tunnel: VpnTunnel, cmd: VpnCommand, signal: AbortSignal): Promise<SessionInfo | undefined> {
  try {
    return await tunnel.startWithin({ timeoutMs: cmd.connectTimeoutSec * 1000, signal });
  } catch (e) {
    if (signal.aborted) return undefined;
    throw e;
  }
}

/** Runs `vpnproxy PROTOCOL CONFIG ...`; returns the exit code (throws VpnError for the others). */
export async function runVpn(cmd: VpnCommand, log: Logger, signal: AbortSignal): Promise<number> {
  const { backend, warnings } = await cmd.protocol.prepare(cmd.configPath, cmd.protocolFlags, log);
  for (const w of warnings) log.warn(w);
  const tunnel = new VpnTunnel({ backend, dns: cmd.dns.length ? cmd.dns : undefined, pcap: cmd.pcap, logger: log });
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
