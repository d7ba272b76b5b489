/**
 * The OpenVPN command's own part of the CLI: `vpnproxy openvpn PROFILE.ovpn`, --auth-user-pass,
 * --upstream-proxy and --no-tls-ekm. The only file of src/cli/ that imports from src/openvpn/.
 */
import { prepareOpenVpn } from '../openvpn/setup.js';
import type { VpnBackend } from '../session/types.js';
import type { ProtocolCli } from './protocol-cli.js';

export interface OpenVpnFlags {
  authUserPassFile?: string;
  /** --upstream-proxy URL: replaces the profile's http-proxy / socks-proxy. */
  upstreamProxy?: string;
  /** Offer the TLS keying-material exporter (off with --no-tls-ekm: TLS1-PRF key derivation). */
  tlsEkm: boolean;
}

export const openVpnCli: ProtocolCli<OpenVpnFlags> = {
  name: 'openvpn',
  configName: 'PROFILE.ovpn',
  summary: 'OpenVPN 2.x over UDP or TCP (TLS or static key), from an .ovpn profile',
  flags: {
    'auth-user-pass': { type: 'string' },
    'no-tls-ekm': { type: 'boolean' },
    'upstream-proxy': { type: 'string' },
  },
  help: `  --auth-user-pass FILE    credentials for profiles that need them: two lines, username then password
                           (also VPNPROXY_USERNAME / VPNPROXY_PASSWORD)
  --upstream-proxy URL     reach the server through this proxy instead of the profile's http-proxy /
                           socks-proxy: http://[USER:PASS@]HOST:PORT (TCP profiles) or
                           socks5://[USER:PASS@]HOST:PORT (UDP and TCP); without USER:PASS in the URL,
                           VPNPROXY_PROXY_USERNAME / VPNPROXY_PROXY_PASSWORD (HTTPS_PROXY is not read)
  --no-tls-ekm             do not offer the TLS keying-material exporter; derive data keys with the TLS1-PRF
`,
  parseFlags(v) {
    const upstreamProxy = v['upstream-proxy'] as string | undefined;
    return { authUserPassFile: v['auth-user-pass'] as string | undefined, tlsEkm: !v['no-tls-ekm'], ...(upstreamProxy !== undefined ? { upstreamProxy } : {}) };
  },
  async prepare(configPath, flags, log) {
    const { backend, warnings } = await prepareOpenVpn({ profile: configPath!, credentialsFile: flags.authUserPassFile, upstreamProxy: flags.upstreamProxy, tlsEkm: flags.tlsEkm, logger: log });
    return { backend: backend as VpnBackend<unknown>, warnings: warnings.map((w) => `${w.file}:${w.message}`) };
  },
};
