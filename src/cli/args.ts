import { parseArgs } from 'node:util';
import { VpnError } from '../errors.js';
import { parseLogLevel, type LogLevel } from '../util/log.js';

/** What `vpnproxy openvpn PROFILE [options]` was asked to do. */
export interface OpenVpnCommand {
  command: 'openvpn';
  profilePath: string;
  /** Ping this address through the tunnel and exit (like ping(8)). */
  ping?: string;
  count: number;
  /** Interval between echo requests, ms. */
  intervalMs: number;
  authUserPassFile?: string;
  /** Turn off the TLS keying-material exporter (use the TLS1-PRF key derivation). */
  tlsEkm: boolean;
  pcap?: string;
  logLevel: LogLevel;
  logFormat: 'text' | 'json';
  /** Seconds to wait for the tunnel to come up. */
  connectTimeoutSec: number;
}

export type Command = OpenVpnCommand | { command: 'help' } | { command: 'version' };

export const HELP = `vpnproxy — a userspace VPN client (OpenVPN) with no tun device and no root

Usage:
  vpnproxy openvpn PROFILE.ovpn [options]
  vpnproxy --help | --version

Options:
  --ping ADDR              ping ADDR through the tunnel like ping(8), then exit (0 only if replies came back)
  --count N                echo requests to send with --ping (default 4)
  --interval SEC           seconds between echo requests (default 1)
  --auth-user-pass FILE    credentials for profiles that need them: two lines, username then password
                           (also VPNPROXY_USERNAME / VPNPROXY_PASSWORD)
  --no-tls-ekm             do not offer the TLS keying-material exporter; derive data keys with the TLS1-PRF
  --connect-timeout SEC    give up if the tunnel is not up within SEC seconds (default 60)
  --pcap FILE              write the IP packets crossing the tunnel (both directions) to FILE (pcap, LINKTYPE_RAW)
  --log-level LEVEL        silent | error | warn | info | debug | trace (trace: one line per packet)
  --log-format FORMAT      text | json
  -h, --help               show this help
  --version                print the version

Exit codes: 0 success, 1 VPN failure (authentication, TLS, unreachable server, no ping replies), 2 usage or
profile error.
`;

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

export function parseCommandLine(argv: string[]): Command {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') return { command: 'help' };
  if (argv[0] === '--version' || argv[0] === '-v') return { command: 'version' };
  const [cmd, ...rest] = argv;
  if (cmd !== 'openvpn') throw usage(`unknown command "${cmd}"`);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        ping: { type: 'string' },
        count: { type: 'string' },
        interval: { type: 'string' },
        'auth-user-pass': { type: 'string' },
        'no-tls-ekm': { type: 'boolean' },
        'connect-timeout': { type: 'string' },
        pcap: { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) return { command: 'help' };
  if (parsed.positionals.length !== 1) throw usage('vpnproxy openvpn takes exactly one PROFILE.ovpn');
  const logLevel = v['log-level'] === undefined ? 'info' : parseLogLevel(v['log-level']);
  if (!logLevel) throw usage(`--log-level must be one of silent, error, warn, info, debug, trace`);
  const logFormat = v['log-format'] ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw usage('--log-format must be text or json');
  if (v.ping !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(v.ping)) throw usage(`--ping takes an IPv4 address, got "${v.ping}"`);
  return {
    command: 'openvpn',
    profilePath: parsed.positionals[0]!,
    ping: v.ping,
    count: positiveInt('--count', v.count, 4),
    intervalMs: Math.round(positiveNumber('--interval', v.interval, 1) * 1000),
    authUserPassFile: v['auth-user-pass'],
    tlsEkm: !v['no-tls-ekm'],
    pcap: v.pcap,
    logLevel,
    logFormat,
    connectTimeoutSec: positiveNumber('--connect-timeout', v['connect-timeout'], 60),
  };
}
