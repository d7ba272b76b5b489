/**
 * The IPsec command's own part of the CLI: `vpnproxy ipsec swanctl.conf [--connection NAME]`. With
 * src/cli/openvpn-cli.ts, the only files of src/cli/ that import a protocol's directory.
 */
import { prepareIpsec } from '../ipsec/backend.js';
import type { VpnBackend } from '../session/types.js';
import type { ProtocolCli } from './protocol-cli.js';

export interface IpsecFlags {
  connection?: string;
}

export const ipsecCli: ProtocolCli<IpsecFlags> = {
  name: 'ipsec',
  configName: 'swanctl.conf',
  summary: 'IPsec: IKEv2 (PSK, certificates, EAP-MSCHAPv2) or manual SAs, ESP in UDP, from swanctl.conf',
  flags: {
    connection: { type: 'string' },
  },
  help: `  --connection NAME        which connection of the file to use (default: the only one)
`,
  parseFlags(v) {
    return { connection: v.connection as string | undefined };
  },
  async prepare(configPath, flags, log) {
    const { backend, warnings } = await prepareIpsec({ config: configPath, connection: flags.connection, logger: log });
    return { backend: backend as VpnBackend<unknown>, warnings };
  },
};
