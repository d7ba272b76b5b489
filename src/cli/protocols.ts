/** The protocols the CLI knows: one entry each (the command word is the protocol's name). */
import { ipsecCli } from './ipsec-cli.js';
import { openVpnCli } from './openvpn-cli.js';
import type { ProtocolCli } from './protocol-cli.js';

export const PROTOCOLS: readonly ProtocolCli<unknown>[] = [openVpnCli as ProtocolCli<unknown>, ipsecCli as ProtocolCli<unknown>];
