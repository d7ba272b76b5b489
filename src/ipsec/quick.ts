/**
 * IKEv2 without a configuration file: the simplest road-warrior connection from a handful of settings (the
 * CLI's `--server --id --remote-id --psk-file | --eap-user --ca | --cert --key --ca`, the library's
 * `ipsec: { server, … }`), built as an IpsecConfig with one IKE connection from the config model's own
 * defaults, as swanctl would read the equivalent file: proposals and esp_proposals `default`, vips 0.0.0.0,
 * one child with remote_ts 0.0.0.0/0. And the credentials a profile cannot hold (a .sswan profile has no EAP
 * password and no PKCS#12 passphrase) supplied by the user: `supplyCredentials`.
 */
import { readFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import nodePath from 'node:path';
import { VpnError } from '../errors.js';
import {
  decodeSecret,
  defaultAuthRound,
  defaultChild,
  defaultIkeConnection,
  parseProposalList,
  parseTrafficSelector,
  swanctlDirs,
  type AuthRound,
  type CertSource,
  type IkeConnection,
  type IpsecConfig,
  type PrivateKeySecret,
} from './config.js';

/** The settings of an IKEv2 connection given without a file. Exactly one way to authenticate: psk, eapUser or cert+key. */
export interface IpsecQuickSettings {
  /** The gateway: HOST or HOST:PORT (default port 500). */
  server: string;
  /** Our IKE identity (default: the EAP user name; with a certificate its subject; else our address). */
  id?: string;
  /** The gateway's identity (default: any with a PSK; with a CA the server's host name or address, which its certificate must name). */
  remoteId?: string;
  /** Pre-shared key: bytes, or text in strongSwan's encoding (`0x` hex, `0s` base64, else the string's UTF-8). */
  psk?: string | Uint8Array;
  /** EAP-MSCHAPv2 user name, and its password. */
  eapUser?: string;
  eapPassword?: string;
  /** CA certificate(s) the gateway's certificate must chain to: a file, or PEM/DER bytes. */
  ca?: string | Uint8Array;
  /** Our certificate and private key (files, or PEM/DER bytes), and the key's passphrase if it is encrypted. */
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  keyPassphrase?: string;
  /** IKE and ESP proposals (default: strongSwan's `default`). */
  proposals?: readonly string[];
  espProposals?: readonly string[];
}

/** How the messages name each setting: the CLI's flags or the library's option names. */
export type QuickNames = Readonly<Record<'server' | 'id' | 'remoteId' | 'psk' | 'eapUser' | 'eapPassword' | 'ca' | 'cert' | 'key' | 'proposals' | 'espProposals', string>>;

export const LIBRARY_NAMES: QuickNames = {
  server: 'ipsec.server',
  id: 'ipsec.id',
  remoteId: 'ipsec.remoteId',
  psk: 'ipsec.psk',
  eapUser: 'ipsec.eapUser',
  eapPassword: 'ipsec.eapPassword',
  ca: 'ipsec.ca',
  cert: 'ipsec.cert',
  key: 'ipsec.key',
  proposals: 'ipsec.proposals',
  espProposals: 'ipsec.espProposals',
};

const usage = (msg: string) => new VpnError('USAGE', msg);

/** HOST, HOST:PORT, an IPv6 address, [IPv6] or [IPv6]:PORT → host and port (default 500). Throws USAGE. */
export function parseServer(s: string, name: string): { host: string; port?: number } {
  if (isIPv6(s)) return { host: s }; // a bare IPv6 literal: its colons are not a port
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:\s[\]]+)(?::(\d+))?$/.exec(s);
  if (!m) throw usage(`${name} takes HOST or HOST:PORT, got ${JSON.stringify(s)}`);
  if (m[2] === undefined) return { host: m[1]! };
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw usage(`${name}: ${m[2]} is not a port (1-65535)`);
  return { host: m[1]!, port };
}

/** Which way of authenticating the settings ask for; USAGE errors for missing or conflicting pieces. */
export function quickAuthMode(o: Partial<Record<keyof IpsecQuickSettings, unknown>>, n: QuickNames): 'psk' | 'eap' | 'cert' {
  const modes = [o.psk !== undefined && n.psk, o.eapUser !== undefined && n.eapUser, (o.cert !== undefined || o.key !== undefined) && `${n.cert}/${n.key}`].filter((x): x is string => typeof x === 'string');
  if (modes.length === 0) throw usage(`${n.server} needs a way to authenticate: ${n.psk}, ${n.eapUser} (with ${n.ca}) or ${n.cert} and ${n.key} (with ${n.ca})`);
  if (modes.length > 1) throw usage(`${modes.join(' and ')} exclude each other: choose one way to authenticate`);
  if (o.psk !== undefined) {
    if (o.ca !== undefined) throw usage(`${n.ca} is for a gateway that authenticates with a certificate; with ${n.psk} both sides use the pre-shared key`);
    return 'psk';
  }
  const mode = o.eapUser !== undefined ? 'eap' : 'cert';
  if (mode === 'cert' && o.cert === undefined) throw usage(`${n.key} needs ${n.cert}: our certificate`);
  if (mode === 'cert' && o.key === undefined) throw usage(`${n.cert} needs ${n.key}: the certificate's private key`);
  if (o.ca === undefined) throw usage(`${mode === 'eap' ? n.eapUser : n.cert} needs ${n.ca}: the gateway's certificate must be checked against its CA`);
  return mode;
}

const source = (v: string | Uint8Array, label: string): CertSource => (typeof v === 'string' ? { file: nodePath.resolve(v) } : { data: v, label });

/**
 * The settings as an IpsecConfig with one IKE connection named `name`. `where` stands for the file:line of
 * a configuration in messages (e.g. 'command line'). Throws VpnError USAGE for missing or conflicting settings.
 */
export function quickIpsecConfig(o: IpsecQuickSettings, n: QuickNames = LIBRARY_NAMES, where = 'connect() options', name = 'vpnproxy'): IpsecConfig {
  const mode = quickAuthMode(o, n);
  const { host, port } = parseServer(o.server, n.server);
  const conn = { ...defaultIkeConnection(name, where) } as { -readonly [K in keyof IkeConnection]: IkeConnection[K] };
  conn.version = 2;
  conn.remoteAddrs = [host];
  if (port !== undefined) conn.remotePort = port;
  conn.vips = ['0.0.0.0'];
  for (const [k, list] of [
    ['proposals', o.proposals],
    ['espProposals', o.espProposals],
  ] as const) {
    if (list !== undefined && (list.length === 0 || !parseProposalList(list.join(',')))) throw usage(`${n[k]}: ${JSON.stringify(list.join(','))} is not a list of proposals (dash-separated algorithm keywords, e.g. aes128gcm16-prfsha256-ecp256)`);
  }
  if (o.proposals) conn.proposals = parseProposalList(o.proposals.join(','))!;
  const child = { ...defaultChild('net', where), remoteTs: [parseTrafficSelector('0.0.0.0/0')!] };
  if (o.espProposals) child.espProposals = parseProposalList(o.espProposals.join(','))!;
  conn.children = new Map([[child.name, child]]);

  const round = (side: 'local' | 'remote', extra: Partial<AuthRound>): AuthRound => ({ ...defaultAuthRound(side, where), ...extra });
  const ids = (...v: (string | undefined)[]) => v.filter((x): x is string => x !== undefined);
  const ike: { name: string; where: string; ids: string[]; secret: Uint8Array }[] = [];
  const eap: { name: string; where: string; ids: string[]; secret: string }[] = [];
  const privateKeys: PrivateKeySecret[] = [];
  if (mode === 'psk') {
    const secret = typeof o.psk === 'string' ? decodeSecret(o.psk) : o.psk!;
    if (!secret || secret.length === 0) throw usage(`${n.psk}: ${secret ? 'empty' : `malformed ${String(o.psk).startsWith('0s') ? 'base64 (0s…)' : 'hex (0x…)'}`} pre-shared key`);
    conn.local = [round('local', { auth: 'psk', authRaw: 'psk', ...(o.id !== undefined ? { id: o.id } : {}) })];
    conn.remote = [round('remote', { auth: 'psk', authRaw: 'psk', ...(o.remoteId !== undefined ? { id: o.remoteId } : {}) })];
    ike.push({ name: 'psk', where, ids: ids(o.id, o.remoteId), secret });
  } else {
    const remoteId = o.remoteId ?? host;
    conn.remote = [round('remote', { id: remoteId, cacerts: [source(o.ca!, `${n.ca}`)] })];
    if (mode === 'eap') {
      if (!o.eapUser) throw usage(`${n.eapUser}: empty user name`);
      if (o.eapPassword === undefined) throw usage(`${n.eapUser} ${o.eapUser}: no EAP password (${n.eapPassword})`);
      conn.local = [round('local', { auth: 'eap', authRaw: 'eap-mschapv2', eapMethod: 'mschapv2', id: o.id ?? o.eapUser, eapId: o.eapUser })];
      eap.push({ name: 'eap', where, ids: [o.eapUser], secret: o.eapPassword });
    } else {
      conn.local = [round('local', { certs: [source(o.cert!, n.cert)], ...(o.id !== undefined ? { id: o.id } : {}) })];
      const key = o.key!;
      privateKeys.push({
        name: n.key,
        where,
        type: 'private',
        ...(typeof key === 'string' ? { file: nodePath.resolve(key) } : { data: key }),
        ...(o.keyPassphrase !== undefined ? { passphrase: o.keyPassphrase } : {}),
      });
    }
  }
  return {
    file: where,
    // No directory: nothing is looked up in x509ca/ or private/ (everything is named by the settings).
    dirs: swanctlDirs(nodePath.join(nodePath.sep, 'nonexistent', 'vpnproxy-no-swanctl-dir')),
    connections: new Map([[conn.name, conn]]),
    manual: new Map(),
    secrets: { ike, eap, ntlm: [], privateKeys },
    authorities: new Map(),
    warnings: [],
  };
}

/** A pre-shared key file: its content without one trailing newline; `0x…` hex and `0s…` base64 decoded like a swanctl secret. */
export async function readPskFile(file: string, flag = '--psk-file'): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw usage(`cannot read ${flag} ${file}: ${(e as Error).message}`);
  }
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d && end < bytes.length) end--;
  const raw = bytes.subarray(0, end);
  if (raw.length === 0) throw usage(`${flag} ${file} is empty`);
  const text = raw.toString('latin1');
  if (/^0x/i.test(text) || text.startsWith('0s')) {
    const d = decodeSecret(text);
    if (!d || d.length === 0) throw usage(`${flag} ${file}: malformed ${text.startsWith('0s') ? 'base64 (0s…)' : 'hex (0x…)'} pre-shared key`);
    return d;
  }
  return new Uint8Array(raw);
}

/** Credentials given by the user for what a configuration lacks. */
export interface UserCredentials {
  /** EAP user name for a profile that names none. */
  username?: string;
  /** The EAP password, or the PKCS#12 passphrase. */
  password?: string;
  /** Where the user can give them, for the error when one is missing (e.g. 'with --auth-user-pass FILE or VPNPROXY_PASSWORD'). */
  howToGive: string;
}

/**
 * Fills in what `conn` needs and its configuration does not hold: the EAP user name (if none is set) and
 * password (if no eap secret matches the user), and a PKCS#12 container's passphrase. A .sswan profile never
 * holds these, so there a missing one is a USAGE error naming it; a swanctl.conf keeps its own errors (planIke).
 */
export function supplyCredentials(config: IpsecConfig, conn: IkeConnection, c: UserCredentials): { config: IpsecConfig; conn: IkeConnection } {
  // several rounds (ikev2-cert-eap) are not supported: planIke says so, better than asking for a password first
  if (conn.local.length !== 1) return { config, conn };
  const sswan = conn.client?.sswan !== undefined;
  const what = sswan ? `${config.file}: a .sswan profile holds no` : `${conn.where}:`;
  const eap = [...config.secrets.eap];
  const local = conn.local.map((r) => {
    if (r.auth !== 'eap' || (r.eapMethod !== undefined && r.eapMethod !== 'mschapv2')) return r;
    let round = r;
    if (round.eapId === undefined && round.id === undefined) {
      if (c.username === undefined) {
        if (!sswan) return r;
        throw usage(`${what} EAP user name (local.eap_id): give it ${c.howToGive}`);
      }
      round = { ...round, eapId: c.username, id: c.username };
    }
    const identity = (round.eapId ?? round.id)!;
    if (!eap.some((e) => e.ids.includes(identity) || e.ids.length === 0)) {
      if (c.password !== undefined) eap.push({ name: 'user', where: 'user credentials', ids: [identity], secret: c.password });
      else if (sswan) throw usage(`${what} EAP password: give the password of '${identity}' ${c.howToGive}`);
    }
    return round;
  });
  const privateKeys = config.secrets.privateKeys.map((k) => {
    if (k.type !== 'pkcs12' || k.passphrase !== undefined || conn.local[0]!.auth !== 'pubkey') return k;
    if (c.password === undefined) throw usage(`${what} passphrase for the PKCS#12 container (${k.name}): give it ${c.howToGive}`);
    return { ...k, passphrase: c.password };
  });
  const newConn: IkeConnection = { ...conn, local };
  const connections = new Map(config.connections);
  connections.set(conn.name, newConn);
  return { config: { ...config, connections, secrets: { ...config.secrets, eap, privateKeys } }, conn: newConn };
}
