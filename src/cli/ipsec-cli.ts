/**
 * The IPsec command's own part of the CLI: `vpnproxy ipsec swanctl.conf|PROFILE.sswan [--connection NAME]`, or
 * with no file `vpnproxy ipsec --server HOST[:PORT] (--psk-file F | --eap-user U --ca CA | --cert C --key K --ca CA)`
 * for the simplest IKEv2 connection. Credentials a profile cannot hold (a .sswan profile's EAP password or
 * PKCS#12 passphrase) come from --auth-user-pass FILE or VPNPROXY_USERNAME / VPNPROXY_PASSWORD, as for OpenVPN.
 * With src/cli/openvpn-cli.ts, the only files of src/cli/ that import a protocol's directory. The backend itself
 * (src/ipsec/backend.ts and the 40-odd modules behind it) is imported only when `vpnproxy ipsec` runs, so that
 * `vpnproxy openvpn` does not load it.
 */
import { VpnError } from '../errors.js';
import { parseProposalList } from '../ipsec/config.js';
import { parseServer, quickAuthMode, readPskFile, type QuickNames } from '../ipsec/quick.js';
import type { VpnBackend } from '../session/types.js';
import { readUserPassFile } from '../util/credentials.js';
import type { ProtocolCli } from './protocol-cli.js';

export interface IpsecFlags {
  connection?: string;
  /** A credentials file: EAP user name, then the password (or a PKCS#12 / key passphrase). */
  authUserPassFile?: string;
  /** Without a config file: the connection's settings. */
  server?: string;
  id?: string;
  remoteId?: string;
  pskFile?: string;
  eapUser?: string;
  ca?: string;
  cert?: string;
  key?: string;
  proposals?: string[];
  espProposals?: string[];
}

/** The flags that build a connection without a file (and so exclude one). */
const QUICK_FLAGS = ['server', 'id', 'remote-id', 'psk-file', 'eap-user', 'ca', 'cert', 'key', 'proposals', 'esp-proposals'] as const;

export const CLI_NAMES: QuickNames = {
  server: '--server',
  id: '--id',
  remoteId: '--remote-id',
  psk: '--psk-file',
  eapUser: '--eap-user',
  eapPassword: '--auth-user-pass FILE (second line) or VPNPROXY_PASSWORD',
  ca: '--ca',
  cert: '--cert',
  key: '--key',
  proposals: '--proposals',
  espProposals: '--esp-proposals',
};
const HOW_TO_GIVE = 'with --auth-user-pass FILE (user name, then password) or VPNPROXY_USERNAME / VPNPROXY_PASSWORD';

const usage = (msg: string) => new VpnError('USAGE', `${msg} (try --help)`);
const str = (v: unknown) => v as string | undefined;

function proposals(flag: string, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  const p = parseProposalList(v as string);
  if (!p) throw usage(`${flag}: ${JSON.stringify(v)} is not a list of proposals (comma-separated, each dash-separated algorithm keywords, e.g. aes128gcm16-prfsha256-ecp256)`);
  return p;
}

export const ipsecCli: ProtocolCli<IpsecFlags> = {
  name: 'ipsec',
  configName: 'swanctl.conf|P.sswan',
  summary: 'IPsec: IKEv2 or manual SAs, ESP in UDP, from swanctl.conf, .sswan or --server',
  configOptional: true,
  flags: {
    connection: { type: 'string' },
    'auth-user-pass': { type: 'string' },
    server: { type: 'string' },
    id: { type: 'string' },
    'remote-id': { type: 'string' },
    'psk-file': { type: 'string' },
    'eap-user': { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    proposals: { type: 'string' },
    'esp-proposals': { type: 'string' },
  },
  help: `  --connection NAME        which connection of the file to use (default: the only one)
  --auth-user-pass FILE    what a .sswan profile cannot hold: the EAP user name (first line, if the profile has
                           none) and password (second line), or the PKCS#12 passphrase (second line)
                           (also VPNPROXY_USERNAME / VPNPROXY_PASSWORD)
 Without a file, one IKEv2 connection (proposals and esp_proposals default, vips 0.0.0.0, remote_ts 0.0.0.0/0):
  --server HOST[:PORT]     the gateway (port default 500)
  --id ID                  our IKE identity (default: the EAP user, the certificate's subject, or our address)
  --remote-id ID           the gateway's identity (default: any with a PSK; the --server host with --ca)
  --psk-file FILE          authenticate both sides with the pre-shared key in FILE (one trailing newline
                           dropped; 0x… hex and 0s… base64 as in swanctl.conf)
  --eap-user NAME          EAP-MSCHAPv2 as NAME (the password from --auth-user-pass FILE or VPNPROXY_PASSWORD;
                           --auth-user-pass alone also gives the name); needs --ca
  --cert FILE, --key FILE  our certificate and private key (PEM or DER; an encrypted key's passphrase from
                           --auth-user-pass or VPNPROXY_PASSWORD); needs --ca
  --ca FILE                the CA the gateway's certificate must chain to
  --proposals LIST         IKE proposals, as swanctl.conf's proposals (default: default)
  --esp-proposals LIST     ESP proposals, as swanctl.conf's esp_proposals (default: default)
`,
  parseFlags(v, configPath) {
    const given = QUICK_FLAGS.filter((f) => v[f] !== undefined);
    if (configPath !== undefined && given.length > 0)
      throw usage(`${given.map((f) => `--${f}`).join(', ')} build a connection without a file: give either ${configPath} or --server and its flags, not both`);
    const flags: IpsecFlags = { connection: str(v.connection), authUserPassFile: str(v['auth-user-pass']) };
    if (configPath !== undefined) return flags;
    if (v.server === undefined) throw usage('vpnproxy ipsec takes a swanctl.conf or .sswan profile, or --server HOST with --psk-file, --eap-user or --cert/--key');
    if (v.connection !== undefined) throw usage('--connection chooses a connection of a configuration file; with --server there is only one');
    parseServer(v.server as string, '--server');
    const eapUser = str(v['eap-user']) ?? (flags.authUserPassFile !== undefined && v['psk-file'] === undefined && v.cert === undefined && v.key === undefined ? '(from --auth-user-pass)' : undefined);
    const mode = quickAuthMode({ psk: v['psk-file'], eapUser, ca: v.ca, cert: v.cert, key: v.key }, CLI_NAMES);
    if (mode === 'eap' && v['eap-user'] === '') throw usage('--eap-user: empty user name');
    return {
      ...flags,
      server: str(v.server),
      id: str(v.id),
      remoteId: str(v['remote-id']),
      pskFile: str(v['psk-file']),
      eapUser: str(v['eap-user']),
      ca: str(v.ca),
      cert: str(v.cert),
      key: str(v.key),
      proposals: proposals('--proposals', v.proposals),
      espProposals: proposals('--esp-proposals', v['esp-proposals']),
    };
  },
  async prepare(configPath, flags, log) {
    const { prepareIpsec } = await import('../ipsec/backend.js');
    const file = flags.authUserPassFile !== undefined ? await readUserPassFile(flags.authUserPassFile) : undefined;
    const common = { connection: flags.connection, username: file?.username, password: file?.password, names: CLI_NAMES, howToGive: HOW_TO_GIVE, logger: log };
    if (configPath !== undefined) {
      const { backend, warnings } = await prepareIpsec({ config: configPath, ...common });
      return { backend: backend as VpnBackend<unknown>, warnings };
    }
    const psk = flags.pskFile !== undefined ? await readPskFile(flags.pskFile) : undefined;
    const eapUser = flags.eapUser ?? (psk === undefined && flags.cert === undefined ? file?.username : undefined);
    const keyPassphrase = flags.cert !== undefined ? (file?.password ?? process.env.VPNPROXY_PASSWORD) : undefined;
    const { backend, warnings } = await prepareIpsec({
      ...common,
      server: flags.server,
      id: flags.id,
      remoteId: flags.remoteId,
      psk,
      eapUser,
      ca: flags.ca,
      cert: flags.cert,
      key: flags.key,
      keyPassphrase,
      proposals: flags.proposals,
      espProposals: flags.espProposals,
    });
    return { backend: backend as VpnBackend<unknown>, warnings };
  },
};
