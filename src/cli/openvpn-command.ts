import { readFile } from 'node:fs/promises';
import { VpnError } from '../errors.js';
import type { Link } from '../link/link.js';
import { PcapWriter, withPcap } from '../link/pcap.js';
import { withTrace } from '../link/trace.js';
import { loadProfile } from '../openvpn/profile.js';
import type { OpenVpnProfile } from '../openvpn/profile-types.js';
import { OpenVpnClient } from '../openvpn/client.js';
import { IpStack } from '../stack/stack.js';
import { createTransport } from '../transport/index.js';
import { SystemClock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { OpenVpnCommand } from './args.js';

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

/** Runs `vpnproxy openvpn PROFILE ...`; returns the exit code. */
export async function runOpenVpn(cmd: OpenVpnCommand, log: Logger, signal: AbortSignal): Promise<number> {
  const { profile, warnings } = await loadProfile(cmd.profilePath);
  for (const w of warnings) log.warn(`${w.file}:${w.message}`);
  const credentials = await resolveCredentials(profile, cmd.authUserPassFile);
  const session = new OpenVpnClient({
    profile,
    credentials,
    tlsEkm: cmd.tlsEkm && profile.tlsEkm,
    createTransport,
    logger: log,
  });
  let link: Link = session;
  let pcap: PcapWriter | undefined;
  if (cmd.pcap) {
    pcap = PcapWriter.open(cmd.pcap);
    link = withPcap(link, pcap);
  }
  if (log.enabled('trace')) link = withTrace(link, log.child('packet'));

  const onAbort = () => void session.close();
  signal.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timeout = setTimeout(() => {
    timedOut = true;
    void session.close();
  }, cmd.connectTimeoutSec * 1000);
  let closedError: VpnError | undefined;
  session.on('closed', ({ error }) => {
    closedError = error;
  });
  try {
    let info;
    try {
      info = await session.start();
    } catch (e) {
      if (signal.aborted) return 0;
      if (timedOut) {
        const last = session.lastError ? `; last error: ${session.lastError.message}` : '';
        throw new VpnError('CONNECT_TIMEOUT', `the tunnel was not up within ${cmd.connectTimeoutSec} s${last}`);
      }
      throw e;
    } finally {
      clearTimeout(timeout);
    }
    process.stderr.write(
      `vpnproxy: tunnel up via ${info.remote.host}:${info.remote.port}/${info.remote.proto}: address ${info.localIp}, cipher ${info.cipher}, ${info.tlsVersion}\n`,
    );
    if (cmd.ping) return await pingLoop(link, cmd, signal, log);
    // Without a job to do, stay up until interrupted (the proxies arrive with the product-surface work).
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
      session.once('closed', () => resolve());
    });
    if (closedError && !signal.aborted) throw closedError;
    return 0;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await session.close();
    await pcap?.close();
  }
}

async function pingLoop(link: Link, cmd: OpenVpnCommand, signal: AbortSignal, log: Logger): Promise<number> {
  const target = cmd.ping!;
  const stack = new IpStack(link, { clock: new SystemClock(), logger: log });
  const out = process.stdout;
  out.write(`PING ${target} 56(84) bytes of data.\n`);
  const rtts: number[] = [];
  let sent = 0;
  const started = performance.now();
  for (let seq = 1; seq <= cmd.count && !signal.aborted; seq++) {
    const t0 = performance.now();
    sent++;
    const reply = await stack.ping(target, { seq, timeoutMs: Math.max(2000, cmd.intervalMs) });
    if (reply) {
      rtts.push(reply.rttMs);
      out.write(`${reply.bytes} bytes from ${reply.from}: icmp_seq=${reply.seq} ttl=${reply.ttl} time=${reply.rttMs.toFixed(2)} ms\n`);
    }
    const wait = cmd.intervalMs - (performance.now() - t0);
    if (seq < cmd.count && wait > 0 && !signal.aborted) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
  }
  stack.close();
  const received = rtts.length;
  const loss = sent === 0 ? 0 : Math.round(((sent - received) / sent) * 100);
  out.write(`\n--- ${target} ping statistics ---\n`);
  out.write(`${sent} packets transmitted, ${received} received, ${loss}% packet loss, time ${Math.round(performance.now() - started)}ms\n`);
  if (received > 0) {
    const min = Math.min(...rtts);
    const max = Math.max(...rtts);
    const avg = rtts.reduce((a, b) => a + b, 0) / received;
    const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / received);
    out.write(`rtt min/avg/max/mdev = ${min.toFixed(3)}/${avg.toFixed(3)}/${max.toFixed(3)}/${mdev.toFixed(3)} ms\n`);
  }
  return received > 0 ? 0 : 1;
}
