import { isIPv4, isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';
import { VpnError } from '../errors.js';
import { AccessList, LOOPBACK_ONLY } from '../proxy/access.js';
import { parseCredentials, type ProxyCredentials } from '../proxy/auth.js';
import { parseForwardSpec, parseRemoteForwardSpec, type ForwardSpec, type RemoteForwardSpec } from '../proxy/forward.js';
import type { RoutePolicy } from '../proxy/router.js';
import { parseLogLevel, type LogLevel } from '../util/log.js';
import type { FlagSpec, ProtocolCli } from './protocol-cli.js';
import { PROTOCOLS } from './protocols.js';

/** A local listen address. */
export interface ListenAddr {
  host: string;
  port: number;
}

/** What `vpnproxy PROTOCOL CONFIG [options]` was asked to do: the common options, plus the protocol's own. */
export interface VpnCommand<P = unknown> {
  command: 'run';
  /** The protocol (its command word) and its own parsed flags. */
  protocol: ProtocolCli<P>;
  protocolFlags: P;
  /** The protocol's config file (.ovpn profile, swanctl.conf …); undefined when its flags stand in for one. */
  configPath?: string;
  /** Ping this address through the tunnel and exit (like ping(8)); no listeners are started. */
  ping?: string;
  count: number;
  /** Interval between echo requests, ms. */
  intervalMs: number;
  /** HTTP proxy listener; undefined = off. */
  httpProxy?: ListenAddr;
  /** SOCKS5 listener; undefined = off. */
  socksProxy?: ListenAddr;
  forwards: ForwardSpec[];
  remoteForwards: RemoteForwardSpec[];
  proxyAuth?: ProxyCredentials;
  /** CIDRs allowed to use the proxies and the status endpoint (validated). */
  allow: string[];
  /** Resolvers used instead of the pushed ones. */
  dns: string[];
  routePolicy: RoutePolicy;
  /** Status endpoint (/healthz, /status, /metrics); undefined = off. */
  status?: ListenAddr;
  pcap?: string;
  logLevel: LogLevel;
  logFormat: 'text' | 'json';
  /** Seconds to wait for the tunnel to come up the first time. */
  connectTimeoutSec: number;
  /** Seconds a proxy client waits for a tunnel that is down before it gets 503 / SOCKS 0x03. */
  readyTimeoutSec: number;
}

export type Command = VpnCommand | { command: 'help' } | { command: 'version' };

const usageLines = (protocols: readonly ProtocolCli<unknown>[]) =>
  protocols.map((p) => `  vpnproxy ${p.name} ${p.configName} [options]`.padEnd(44) + ` ${p.summary}`).join('\n');
const protocolSections = (protocols: readonly ProtocolCli<unknown>[]) =>
  protocols.map((p) => `${p.name} (vpnproxy ${p.name} ${p.configName}):\n${p.help}`).join('\n');

export function helpText(protocols: readonly ProtocolCli<unknown>[] = PROTOCOLS): string {
  return `vpnproxy — a userspace VPN client (${protocols.map((p) => p.name).join(', ')}) with no tun device and no root,
exposed as local HTTP and SOCKS5 proxies and port forwards

Usage:
${usageLines(protocols)}
  vpnproxy --help | --version

The options below are common to every protocol; each protocol adds a few of its own (at the end).

Listeners (started at once; until the tunnel is up, clients wait up to --ready-timeout, then get 503 / SOCKS
"network unreachable"; one line on stderr says when everything is ready):
  --http-proxy ADDR        HTTP proxy (CONNECT and plain HTTP, every method) (default 127.0.0.1:8080; "off")
  --socks-proxy ADDR       SOCKS5 proxy (CONNECT, UDP ASSOCIATE; names resolved through the VPN)
                           (default 127.0.0.1:1080; "off")
  --forward [BIND:]LPORT:HOST:PORT
                           listen on BIND:LPORT (BIND default 127.0.0.1) and connect each client to HOST:PORT
                           through the VPN, like ssh -L (repeatable; HOST is resolved by the VPN's DNS;
                           IPv6 addresses in brackets: 8080:[fd00::1]:80, [::1]:8080:HOST:PORT)
  --remote-forward RPORT:HOST:PORT
                           listen on port RPORT of our VPN address and connect each client to HOST:PORT from
                           this host, like ssh -R (repeatable)
  --status ADDR            HTTP endpoint: /healthz (200 while the tunnel is up, 503 otherwise), /status (JSON),
                           /metrics (Prometheus text) (default: off)
  ADDR is HOST:PORT, [IPv6]:PORT or PORT (on 127.0.0.1); port 0 picks a free port.

Access:
  --proxy-auth USER:PASS   require these credentials on both proxies (HTTP Basic Proxy-Authorization, SOCKS5
                           username/password)
  --allow CIDR             clients allowed to use the proxies and the status endpoint (repeatable; default
                           loopback only: 127.0.0.0/8, ::1). Forwards accept whoever can reach their BIND address.

VPN:
  --dns IP                 resolver to use instead of the pushed ones (repeatable); queried through the tunnel
  --route-all              send every destination through the VPN
  --direct-unrouted        send only destinations inside the VPN's routes through it, the rest directly from this
                           host, even if the server pushes redirect-gateway
                           (default: follow the VPN's routes and redirect-gateway, the rest directly)
  --connect-timeout SEC    give up if the tunnel is not up within SEC seconds at start (default 60)
  --ready-timeout SEC      how long a proxy client waits for a tunnel that is down (default 15)
  --ping ADDR              only ping ADDR (IPv4 or IPv6) through the tunnel like ping(8), then exit (0 only if replies came back)
  --count N                echo requests to send with --ping (default 4)
  --interval SEC           seconds between echo requests (default 1)

Output:
  --pcap FILE              write the IP packets crossing the tunnel (both directions) to FILE (pcap, LINKTYPE_RAW)
  --log-level LEVEL        silent | error | warn | info | debug | trace (default info: one line per proxied
                           connection; trace: one line per packet)
  --log-format FORMAT      text | json
  -h, --help               show this help
  --version                print the version

Ctrl-C or SIGTERM closes the tunnel (the server is told) and exits within two seconds.
Exit codes: 0 clean stop (or --ping with replies), 1 VPN failure (authentication, TLS, unreachable server, tunnel
closed by the server, no ping replies), 2 usage, profile or listen-address error.

${protocolSections(protocols)}`;
}

export const HELP = helpText();

/** The options every protocol's command takes. */
const COMMON_FLAGS: Readonly<Record<string, FlagSpec>> = {
  'http-proxy': { type: 'string' },
  'socks-proxy': { type: 'string' },
  forward: { type: 'string', multiple: true },
  'remote-forward': { type: 'string', multiple: true },
  'proxy-auth': { type: 'string' },
  allow: { type: 'string', multiple: true },
  dns: { type: 'string', multiple: true },
  'route-all': { type: 'boolean' },
  'direct-unrouted': { type: 'boolean' },
  status: { type: 'string' },
  ping: { type: 'string' },
  count: { type: 'string' },
  interval: { type: 'string' },
  'connect-timeout': { type: 'string' },
  'ready-timeout': { type: 'string' },
  pcap: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

function usage(msg: string): VpnError {
  return new VpnError('USAGE', `${msg} (try --help)`);
}

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw usage(`${name} takes a positive whole number, got "${v}"`);
  return n;
}

function positiveNumber(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw usage(`${name} takes a positive number, got "${v}"`);
  return n;
}

/** "HOST:PORT", "[V6]:PORT", "PORT" (on 127.0.0.1) or "off" (undefined). Throws VpnError USAGE. */
export function parseListenAddr(flag: string, s: string): ListenAddr | undefined {
  if (s === 'off') return undefined;
  let host = '127.0.0.1';
  let port: string;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (v6) {
    host = v6[1]!;
    port = v6[2]!;
  } else if (/^\d+$/.test(s)) port = s;
  else {
    const i = s.lastIndexOf(':');
    if (i <= 0) throw usage(`${flag} expects HOST:PORT, [IPv6]:PORT, PORT or "off", got ${JSON.stringify(s)}`);
    host = s.slice(0, i);
    port = s.slice(i + 1);
  }
  if (!isIPv4(host) && !isIPv6(host) && host !== 'localhost') throw usage(`${flag}: ${JSON.stringify(host)} is not an IP address`);
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw usage(`${flag}: ${JSON.stringify(port)} is not a port number`);
  return { host, port: Number(port) };
}

interface CommonValues {
  [flag: string]: string | boolean | string[] | undefined;
  'http-proxy'?: string;
  'socks-proxy'?: string;
  forward?: string[];
  'remote-forward'?: string[];
  'proxy-auth'?: string;
  allow?: string[];
  dns?: string[];
  'route-all'?: boolean;
  'direct-unrouted'?: boolean;
  status?: string;
  ping?: string;
  count?: string;
  interval?: string;
  'connect-timeout'?: string;
  'ready-timeout'?: string;
  pcap?: string;
  'log-level'?: string;
  'log-format'?: string;
  help?: boolean;
}

export function parseCommandLine(argv: string[], protocols: readonly ProtocolCli<unknown>[] = PROTOCOLS): Command {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') return { command: 'help' };
  if (argv[0] === '--version' || argv[0] === '-v') return { command: 'version' };
  const [cmd, ...rest] = argv;
  const protocol = protocols.find((p) => p.name === cmd);
  if (!protocol) throw usage(`unknown command "${cmd}" (protocols: ${protocols.map((p) => p.name).join(', ')})`);
  for (const f of Object.keys(protocol.flags)) if (f in COMMON_FLAGS) throw new VpnError('INTERNAL', `${protocol.name} redefines the common flag --${f}`);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { ...COMMON_FLAGS, ...protocol.flags } });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const v = parsed.values as CommonValues;
  if (v.help) return { command: 'help' };
  if (parsed.positionals.length > 1 || (parsed.positionals.length === 0 && !protocol.configOptional)) throw usage(`vpnproxy ${protocol.name} takes exactly one ${protocol.configName}`);
  const configPath = parsed.positionals[0];
  const protocolFlags = protocol.parseFlags(v, configPath);
  const logLevel = v['log-level'] === undefined ? 'info' : parseLogLevel(v['log-level']);
  if (!logLevel) throw usage(`--log-level must be one of silent, error, warn, info, debug, trace`);
  const logFormat = v['log-format'] ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw usage('--log-format must be text or json');
  if (v.ping !== undefined && !isIPv4(v.ping) && !isIPv6(v.ping)) throw usage(`--ping takes an IPv4 or IPv6 address, got "${v.ping}"`);
  if (v['route-all'] && v['direct-unrouted']) throw usage('--route-all and --direct-unrouted exclude each other');
  const dns = v.dns ?? [];
  for (const d of dns) if (!isIPv4(d) && !isIPv6(d)) throw usage(`--dns takes an IPv4 or IPv6 address, got "${d}"`);
  const allow = v.allow ?? [...LOOPBACK_ONLY];
  new AccessList(allow); // validates (VpnError USAGE)
  const forwards = (v.forward ?? []).map(parseForwardSpec);
  const remoteForwards = (v['remote-forward'] ?? []).map(parseRemoteForwardSpec);
  const seen = new Set<number>();
  for (const r of remoteForwards) {
    if (seen.has(r.remotePort)) throw usage(`--remote-forward port ${r.remotePort} given twice`);
    seen.add(r.remotePort);
  }
  return {
    command: 'run',
    protocol,
    protocolFlags,
    configPath,
    ping: v.ping,
    count: positiveInt('--count', v.count, 4),
    intervalMs: Math.round(positiveNumber('--interval', v.interval, 1) * 1000),
    httpProxy: parseListenAddr('--http-proxy', v['http-proxy'] ?? '127.0.0.1:8080'),
    socksProxy: parseListenAddr('--socks-proxy', v['socks-proxy'] ?? '127.0.0.1:1080'),
    forwards,
    remoteForwards,
    proxyAuth: v['proxy-auth'] === undefined ? undefined : parseCredentials(v['proxy-auth']),
    allow,
    dns,
    routePolicy: v['route-all'] ? 'route-all' : v['direct-unrouted'] ? 'direct-unrouted' : 'follow',
    status: v.status === undefined ? undefined : parseListenAddr('--status', v.status),
    pcap: v.pcap,
    logLevel,
    logFormat,
    connectTimeoutSec: positiveNumber('--connect-timeout', v['connect-timeout'], 60),
    readyTimeoutSec: positiveNumber('--ready-timeout', v['ready-timeout'], 15),
  };
}
