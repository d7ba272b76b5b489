/**
 * The listeners of `vpnproxy PROTOCOL`: HTTP proxy, SOCKS5, local and remote forwards and the status endpoint,
 * all on one VpnTunnel, sharing one ProxyMetrics (so /metrics and /status count every front-end) and one
 * --allow list.
 *
 * Routing: the proxies use a Router with the --route-all / --direct-unrouted policy (default follow). Local
 * forwards use a second Router with policy 'route-all' on the same tunnel: `--forward` is documented as a
 * forward *into the VPN*, so a destination outside the VPN's routes must not silently leave this host directly
 * (that would be a leak under --direct-unrouted or the default policy); it still gets the Router's readiness
 * wait, connect timeout and VPN-DNS resolution. Remote forwards listen on the tunnel's TCP stack and dial their
 * local destination directly.
 */
import type { AddressInfo } from 'node:net';
import { VpnError } from '../errors.js';
import { AccessList } from '../proxy/access.js';
import type { DialedSocket } from '../proxy/dialer.js';
import { LocalForward, RemoteForward } from '../proxy/forward.js';
import { HttpProxy } from '../proxy/http-proxy.js';
import { ProxyMetrics } from '../proxy/metrics.js';
import { Router } from '../proxy/router.js';
import { Socks5Server } from '../proxy/socks5.js';
import { StatusServer } from '../proxy/status.js';
import type { VpnTunnel } from '../tunnel.js';
import type { Logger } from '../util/log.js';
import { VERSION } from '../version.js';
import type { ListenAddr, VpnCommand } from './args.js';

export interface RunningListeners {
  /** One entry per listener, e.g. "http-proxy 127.0.0.1:8080" (real bound ports). */
  readonly describe: string[];
  readonly metrics: ProxyMetrics;
  /** Starts the --remote-forward listeners on the tunnel address (call once the tunnel is up). */
  startRemoteForwards(): Promise<void>;
  close(): Promise<void>;
}

const hp = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const bound = (a: AddressInfo): string => hp(a.address, a.port);

async function listenOr(what: string, want: ListenAddr | { host: string; port: number }, f: () => Promise<AddressInfo>): Promise<AddressInfo> {
  try {
    return await f();
  } catch (e) {
    throw new VpnError('USAGE', `cannot listen on ${hp(want.host, want.port)} for ${what}: ${(e as Error).message}`);
  }
}

/** Creates and binds every local listener of `cmd` (remote forwards wait for startRemoteForwards()). */
export async function startListeners(cmd: VpnCommand, tunnel: VpnTunnel, log: Logger): Promise<RunningListeners> {
  const metrics = new ProxyMetrics();
  const access = new AccessList(cmd.allow);
  const readyTimeoutMs = Math.round(cmd.readyTimeoutSec * 1000);
  const routing = new Router({ vpn: tunnel.vpnSide, policy: cmd.routePolicy });
  const intoVpn = new Router({ vpn: tunnel.vpnSide, policy: 'route-all' });
  const closers: (() => Promise<void>)[] = [];
  const describe: string[] = [];
  const remote: { r: RemoteForward; spec: VpnCommand['remoteForwards'][number] }[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
  };
  try {
    if (cmd.httpProxy) {
      const p = new HttpProxy({ routing, ...cmd.httpProxy, auth: cmd.proxyAuth, access, logger: log, metrics, readyTimeoutMs });
      const a = await listenOr('--http-proxy', cmd.httpProxy, () => p.listen());
      closers.push(() => p.close());
      describe.push(`http-proxy ${bound(a)}`);
    }
    if (cmd.socksProxy) {
      const p = new Socks5Server({ routing, ...cmd.socksProxy, auth: cmd.proxyAuth, access, logger: log, metrics, readyTimeoutMs });
      const a = await listenOr('--socks-proxy', cmd.socksProxy, () => p.listen());
      closers.push(() => p.close());
      describe.push(`socks5 ${bound(a)}`);
    }
    for (const spec of cmd.forwards) {
      const f = new LocalForward({ spec, routing: intoVpn, logger: log, metrics, readyTimeoutMs });
      const a = await listenOr('--forward', { host: spec.bindHost, port: spec.bindPort }, () => f.listen());
      closers.push(() => f.close());
      describe.push(`forward ${bound(a)}->${hp(spec.host, spec.port)}`);
    }
    for (const spec of cmd.remoteForwards) {
      const r = new RemoteForward({
        spec,
        listen: async (port, onConnection) => tunnel.listen(port, (s) => onConnection(s as unknown as DialedSocket)),
        logger: log,
        metrics,
      });
      remote.push({ r, spec });
      closers.push(() => r.close());
    }
    if (cmd.status) {
      const s = new StatusServer({ getStatus: () => tunnel.status(), metrics, ...cmd.status, access, logger: log, version: VERSION });
      const a = await listenOr('--status', cmd.status, () => s.listen());
      closers.push(() => s.close());
      describe.push(`status ${bound(a)}`);
    }
  } catch (e) {
    await close();
    throw e;
  }
  let remoteStarted = false;
  return {
    describe,
    metrics,
    async startRemoteForwards() {
      if (remoteStarted) return;
      remoteStarted = true;
      const addr = tunnel.info?.link.address ?? 'vpn';
      for (const { r, spec } of remote) {
        const { remotePort, host, port } = spec;
        try {
          await r.start();
        } catch (e) {
          throw new VpnError('USAGE', `cannot listen on port ${remotePort} of the tunnel address for --remote-forward: ${(e as Error).message}`);
        }
        describe.push(`remote-forward ${hp(addr, remotePort)}->${hp(host, port)}`);
      }
    },
    close,
  };
}
