/**
 * The OpenVPN command's own part of the CLI: `vpnproxy openvpn PROFILE.ovpn`, --auth-user-pass,
 * --upstream-proxy, --no-tls-ekm, the two-factor flags (--otp, --otp-command) and --open-url. The only file
 * of src/cli/ that imports from src/openvpn/; the backend (src/openvpn/setup.ts and the modules behind it) only
 * when `vpnproxy openvpn` runs, so that `vpnproxy ipsec` does not load it.
 */
import { spawn } from 'node:child_process';
import type { AuthPendingEvent } from '../openvpn/session.js';
import type { VpnBackend } from '../session/types.js';
import type { Logger } from '../util/log.js';
import { terminalOtp } from '../util/otp-sources.js';
import type { ProtocolCli } from './protocol-cli.js';

export interface OpenVpnFlags {
  authUserPassFile?: string;
  /** --upstream-proxy URL: replaces the profile's http-proxy / socks-proxy. */
  upstreamProxy?: string;
  /** Offer the TLS keying-material exporter (off with --no-tls-ekm: TLS1-PRF key derivation). */
  tlsEkm: boolean;
  /** --otp CODE: the static-challenge / CRV1 response. */
  otp?: string;
  /** --otp-command CMD: prints the response. */
  otpCommand?: string;
  /** --open-url: open the web sign-in URL with the system's opener. */
  openUrl: boolean;
}

const OTP_HINT = 'give --otp CODE, set VPNPROXY_OTP, give --otp-command CMD that prints it, or run vpnproxy on a terminal to be asked';

export const openVpnCli: ProtocolCli<OpenVpnFlags> = {
  name: 'openvpn',
  configName: 'PROFILE.ovpn',
  summary: 'OpenVPN 2.x over UDP or TCP (TLS or static key), from an .ovpn profile',
  flags: {
    'auth-user-pass': { type: 'string' },
    'no-tls-ekm': { type: 'boolean' },
    'upstream-proxy': { type: 'string' },
    otp: { type: 'string' },
    'otp-command': { type: 'string' },
    'open-url': { type: 'boolean' },
  },
  help: `  --auth-user-pass FILE    credentials for profiles that need them: two lines, username then password
                           (also VPNPROXY_USERNAME / VPNPROXY_PASSWORD)
  --otp CODE               the two-factor code for a static-challenge profile or the server's challenge
                           (also VPNPROXY_OTP); on a terminal vpnproxy asks for it instead
  --otp-command CMD        run CMD (with /bin/sh) for each challenge and use the first line it prints, e.g. a
                           password manager; the challenge text is in $VPNPROXY_CHALLENGE
  --open-url               open the server's web sign-in page with the system's opener (xdg-open / open /
                           start); without it the URL is only printed
  --upstream-proxy URL     reach the server through this proxy instead of the profile's http-proxy /
                           socks-proxy: http://[USER:PASS@]HOST:PORT (TCP profiles) or
                           socks5://[USER:PASS@]HOST:PORT (UDP and TCP); without USER:PASS in the URL,
                           VPNPROXY_PROXY_USERNAME / VPNPROXY_PROXY_PASSWORD (HTTPS_PROXY is not read)
  --no-tls-ekm             do not offer the TLS keying-material exporter; derive data keys with the TLS1-PRF
`,
  parseFlags(v) {
    const upstreamProxy = v['upstream-proxy'] as string | undefined;
    const otp = v.otp as string | undefined;
    const otpCommand = v['otp-command'] as string | undefined;
    return {
      authUserPassFile: v['auth-user-pass'] as string | undefined,
      tlsEkm: !v['no-tls-ekm'],
      openUrl: v['open-url'] === true,
      ...(upstreamProxy !== undefined ? { upstreamProxy } : {}),
      ...(otp !== undefined ? { otp } : {}),
      ...(otpCommand !== undefined ? { otpCommand } : {}),
    };
  },
  async prepare(configPath, flags, log) {
    const { prepareOpenVpn } = await import('../openvpn/setup.js');
    const { backend, warnings } = await prepareOpenVpn({
      profile: configPath!,
      credentialsFile: flags.authUserPassFile,
      upstreamProxy: flags.upstreamProxy,
      tlsEkm: flags.tlsEkm,
      logger: log,
      otp: flags.otp,
      otpCommand: flags.otpCommand,
      otpPrompt: process.stdin.isTTY ? terminalOtp() : undefined,
      otpHint: OTP_HINT,
      onAuthPending: (e) => announceSignIn(e, flags.openUrl, log),
    });
    return { backend: backend as VpnBackend<unknown>, warnings: warnings.map((w) => `${w.file}:${w.message}`) };
  },
};

/** Prints the sign-in URL on the terminal and, with --open-url, hands it to the system's opener. */
function announceSignIn(e: AuthPendingEvent, open: boolean, log: Logger): void {
  if (!e.url) return;
  const wait = e.timeout !== undefined ? ` (the server waits ${e.timeout} s)` : '';
  process.stderr.write(`vpnproxy: sign in to the VPN at ${e.url}${wait}\n`);
  if (open) openUrl(e.url, log);
}

function openUrl(url: string, log: Logger): void {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', (err) => log.warn(`cannot open the sign-in page with ${cmd}: ${err.message}`));
    child.unref();
  } catch (err) {
    log.warn(`cannot open the sign-in page with ${cmd}: ${(err as Error).message}`);
  }
}
