/**
 * The clients under test: ours (`node dist/cli/main.js openvpn PROFILE` or `ipsec SWANCTL.CONF`, with only
 * `--http-proxy 127.0.0.1:0`, a child process in the root namespace) and the native ones in the lab's nat
 * namespace: the stock openvpn client, and strongSwan's charon with kernel-libipsec.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Lab } from '../test/lab/index.js';
import { comm, runCmd, sleep, track } from './proc.js';
import { parseReadyLine } from './ready-line.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/cli/main.js');

/** Throws unless dist/cli/main.js exists and has --http-proxy (run `npm run build`). */
export async function checkCli(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm run bench does)`);
  const r = await runCmd(process.execPath, [CLI, '--help'], 15_000);
  if (!/--http-proxy/.test(r.stdout + r.stderr)) throw new Error(`${CLI} has no --http-proxy: rebuild (npm run build)`);
}

export interface OursClient {
  pid: number;
  /** http://127.0.0.1:PORT */
  proxyUrl: string;
  /** http://127.0.0.1:PORT of its --status endpoint, when started with one. */
  statusUrl?: string;
  /** performance.now() at spawn and when the ready line arrived. */
  spawnedAt: number;
  readyAt: number;
  /** Last lines of its stderr. */
  log(): string;
  /** SIGTERM, then SIGKILL after graceMs. Resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts our CLI (`protocol` = e.g. ['openvpn', PROFILE] or ['ipsec', SWANCTL_CONF]) with only the HTTP proxy
 * (ephemeral port; --log-level warn, so no line per proxied connection) and waits for its ready line.
 */
export async function startOurs(o: { protocol: string[]; nodeArgs?: string[]; timeoutMs?: number; status?: boolean }): Promise<OursClient> {
  const args = [...(o.nodeArgs ?? []), CLI, ...o.protocol, '--http-proxy', '127.0.0.1:0', '--socks-proxy', 'off', '--log-level', 'warn',
    ...(o.status ? ['--status', '127.0.0.1:0'] : [])];
  const spawnedAt = performance.now();
  const child = track(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  const lines: string[] = [];
  let partial = '';
  let exited = false;
  const exitP = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  const ready = new Promise<{ url: string; status?: string; at: number }>((resolve, reject) => {
    const onText = (d: string): void => {
      partial += d;
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        lines.push(line);
        if (lines.length > 300) lines.shift();
        const info = parseReadyLine(line);
        const hp = info?.listeners['http-proxy'];
        const st = info?.listeners.status;
        if (hp) resolve({ url: `http://${hp.host}:${hp.port}`, ...(st ? { status: `http://${st.host}:${st.port}` } : {}), at: performance.now() });
      }
    };
    child.stderr!.setEncoding('utf8').on('data', onText);
    child.stdout!.setEncoding('utf8').on('data', onText);
    child.once('exit', (code, sig) => reject(new Error(`our client exited (${sig ?? code}) before it was ready:\n${lines.slice(-20).join('\n')}`)));
  });
  const timeoutMs = o.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const stop = async (graceMs = 5000): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exitP;
    clearTimeout(t);
  };
  try {
    const r = await Promise.race([
      ready,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`our client not ready after ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`)), timeoutMs);
      }),
    ]);
    return { pid: child.pid!, proxyUrl: r.url, ...(r.status ? { statusUrl: r.status } : {}), spawnedAt, readyAt: r.at, log: () => lines.join('\n'), stop };
  } catch (e) {
    await stop(1000);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** GETs `url` through an HTTP proxy (absolute form); resolves with performance.now() at the response's first byte. */
export function firstByteThroughProxy(proxyUrl: string, url: string, timeoutMs = 30_000): Promise<number> {
  const p = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: p.hostname, port: Number(p.port), method: 'GET', path: url, headers: { host: new URL(url).host, connection: 'close' }, timeout: timeoutMs });
    req.once('response', (res) => {
      const at = performance.now();
      res.resume();
      if (res.statusCode !== 200) reject(new Error(`first request: status ${res.statusCode}`));
      else res.once('end', () => resolve(at));
    });
    req.once('timeout', () => req.destroy(new Error(`first request timed out after ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

export interface NativeProc {
  pid: number;
  ns: string;
  spawnedAt: number;
  /** When the tunnel was up: openvpn's "Initialization Sequence Completed" (log polled every 5 ms), charon's CHILD_SA. */
  upAt: number;
  stop(): Promise<void>;
}

/**
 * Starts the stock openvpn client in the nat namespace with a profile for the lab's first server, its remote
 * at `port` on srv's nat-side address (default: the server itself; a relay's port for the lossy path).
 */
export async function startNative(lab: Lab, name: string, port?: number, timeoutMs = 30_000): Promise<NativeProc> {
  const s = lab.openvpn!;
  const profile = await s.clientProfile({ name: `${name}.ovpn`, remote: { host: lab.addr.srvNatSide, port: port ?? s.port } });
  const logFile = join(lab.dir, `${name}.log`);
  const spawnedAt = performance.now();
  const d = lab.spawn('nat', name, 'openvpn', ['--cd', lab.dir, '--config', profile]);
  const deadline = spawnedAt + timeoutMs;
  for (;;) {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    if (text.includes('Initialization Sequence Completed')) break;
    if (!d.running) throw new Error(`native client ${name} ${d.status}:\n${text.slice(-2000)}`);
    if (performance.now() > deadline) {
      await d.stop(1000);
      throw new Error(`native client ${name} not up after ${timeoutMs} ms:\n${text.slice(-2000)}`);
    }
    await sleep(5);
  }
  const upAt = performance.now();
  // `ip netns exec` execs openvpn, so the daemon's pid is the client's.
  const c = comm(d.pid);
  if (c !== 'openvpn') throw new Error(`native client pid ${d.pid} is "${c}", not openvpn`);
  return { pid: d.pid, ns: lab.ns.nat, spawnedAt, upAt, stop: () => d.stop(3000) };
}

/**
 * Starts strongSwan's own client (charon, kernel-libipsec, kernel TCP) in the nat namespace against the lab's
 * responder, at `port` on ike's nat-side address (default 500; a relay's port for the lossy path, which makes
 * charon speak 4500-style IKE from the start). Resolves once its CHILD_SA is up (`swanctl --initiate` returned).
 */
export async function startNativeIpsec(lab: Lab, name: string, id: string, port?: number): Promise<NativeProc> {
  const c = await lab.startStrongSwanClient(name, { id, ...(port ? { remotePort: port } : {}) });
  const cm = comm(c.pid);
  if (cm !== 'charon') {
    await c.stop(1000);
    throw new Error(`strongSwan client pid ${c.pid} is "${cm}", not charon`);
  }
  return { pid: c.pid, ns: lab.ns.nat, spawnedAt: c.spawnedAt, upAt: c.upAt, stop: () => c.stop(3000) };
}

/** Our user-space TCP stack's segments sent and retransmitted so far, from its /metrics. */
export async function oursTcpCounters(statusUrl: string): Promise<{ out: number; retrans: number }> {
  const text = await (await fetch(`${statusUrl}/metrics`)).text();
  const get = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { out: get('vpnproxy_tcp_segments_out_total'), retrans: get('vpnproxy_tcp_retransmits_total') };
}

/** The kernel's TCP segments sent and retransmitted in namespace `ns` (nstat, absolute counters). */
export async function kernelTcpCounters(ns: string): Promise<{ out: number; retrans: number }> {
  const r = await runCmd('nstat', ['-az', 'TcpOutSegs', 'TcpRetransSegs'], 10_000, ns);
  const get = (name: string): number => Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(r.stdout)?.[1] ?? NaN);
  return { out: get('TcpOutSegs'), retrans: get('TcpRetransSegs') };
}
