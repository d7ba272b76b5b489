/**
 * An IKE connection of swanctl.conf checked and resolved once, before any packet: what this client supports
 * today (IKEv2 with a pre-shared key on both sides, one CHILD_SA), the proposals parsed, the identities and the
 * pre-shared key found in `secrets`. Unsupported settings that change behaviour are PROFILE_UNSUPPORTED with
 * the file:line of the connection; harmless ones become warnings.
 */
import { isIP } from 'node:net';
import { innerMtu } from '../esp-sa.js';
import { VpnError } from '../../errors.js';
import type { ChildConfig, IkeConnection, IpsecConfig } from '../config.js';
import type { IdPayload } from '../../wire/ike-payloads.js';
import { findPsk, identityText, parseIdentity } from './identity.js';
import { parseEspProposals, parseIkeProposals, type EspOffer, type IkeOffer } from './proposals.js';

export interface IkePlan {
  readonly connection: IkeConnection;
  readonly child: ChildConfig;
  readonly ike: readonly IkeOffer[];
  readonly esp: readonly EspOffer[];
  /** undefined: our address as seen by the socket (strongSwan's default). */
  readonly localId?: IdPayload;
  readonly remoteId?: IdPayload;
  readonly psk: Uint8Array;
  /** Which secret it came from, for logs ('ike-lab'). */
  readonly pskName: string;
  /** The virtual IP to ask for ('0.0.0.0' = any). */
  readonly vip: string;
  /** NAT keepalive interval, seconds. */
  readonly keepAlive: number;
  /** The smallest inner MTU over the offered ESP suites for a 1500-byte path (the MTU before we are up). */
  readonly initialMtu: number;
}

const unsupported = (where: string, msg: string) => new VpnError('PROFILE_UNSUPPORTED', `${where}: ${msg}`);

/** Checks and resolves `conn` for the IKEv2 initiator; `warnings` gets file:line remarks. */
export function planIke(config: IpsecConfig, conn: IkeConnection, warnings: string[]): IkePlan {
  const where = conn.where;
  const at = (key: string) => conn.locations[key] ?? where;
  if (conn.local.length !== 1) throw unsupported(where, `connection ${conn.name} has ${conn.local.length} local authentication rounds; only one (auth = psk) is supported yet`);
  if (conn.remote.length !== 1) throw unsupported(where, `connection ${conn.name} has ${conn.remote.length} remote authentication rounds; only one (auth = psk) is supported yet`);
  const local = conn.local[0]!;
  const remote = conn.remote[0]!;
  const notYet = (side: string, r: typeof local) =>
    r.auth === 'eap'
      ? `${side}.auth = ${r.authRaw}: EAP authentication is not supported yet; only psk works for now`
      : `${side}.auth = ${r.authRaw}: ${side === 'local' ? 'certificate (public key) authentication of this client' : "checking the gateway's certificate"} is not supported yet; only psk works for now`;
  if (local.auth !== 'psk') throw unsupported(local.where, notYet('local', local));
  if (remote.auth !== 'psk') throw unsupported(remote.where, notYet('remote', remote));
  if (conn.localPort !== undefined && conn.localPort !== 0) throw unsupported(at('local_port'), 'local_port is not supported (the client always uses an ephemeral port)');
  for (const a of conn.remoteAddrs) {
    if (a.startsWith('%') || a.includes('/') || a.includes('-')) throw new VpnError('PROFILE_SYNTAX', `${at('remote_addrs')}: remote_addrs = ${a}: an initiator needs the gateway's address or host name`);
    if (isIP(a) === 6) throw unsupported(at('remote_addrs'), `remote_addrs = ${a}: IPv6 gateways are not supported yet`);
  }
  const children = [...conn.children.values()];
  if (children.length === 0) throw unsupported(where, `connection ${conn.name} has no children { } section; a CHILD_SA is what carries the traffic (childless IKE SAs are not supported)`);
  const child = children[0]!;
  if (children.length > 1) warnings.push(`${children[1]!.where}: children.${children[1]!.name} ignored: only the first CHILD_SA (${child.name}) is set up`);

  const ike = parseIkeProposals(conn.proposals, at('proposals'));
  const esp = parseEspProposals(child.espProposals, child.where);
  const localId = parseIdentity(local.id ?? '', local.where);
  const remoteId = parseIdentity(remote.id ?? '', remote.where);
  const secret = findPsk(config.secrets.ike, localId, remoteId);
  if (!secret) {
    const ids = [localId && identityText(localId), remoteId && identityText(remoteId)].filter(Boolean).join(' and ');
    throw new VpnError('PROFILE_SYNTAX', `${where}: no pre-shared key for connection ${conn.name}${ids ? ` (identities ${ids})` : ''}: add an ike section with its ids and secret to secrets { }`);
  }
  const vip4 = conn.vips.find((v) => isIP(v) === 4);
  if (conn.vips.length === 0) warnings.push(`${where}: connection ${conn.name} sets no vips; requesting a virtual IP anyway (this client needs an address inside the tunnel)`);
  else if (!vip4) warnings.push(`${at('vips')}: vips = ${conn.vips.join(', ')}: only IPv4 virtual IPs are supported; requesting any IPv4 address`);
  if (conn.fragmentation === 'force') warnings.push(`${at('fragmentation')}: fragmentation = force ignored: IKE fragmentation is not supported yet`);
  if (conn.dpdDelay > 0) warnings.push(`${at('dpd_delay')}: dpd_delay ignored: this client answers the gateway's liveness checks but sends none of its own yet`);
  const ts = [...child.localTs, ...child.remoteTs].filter((t) => t.kind !== 'dynamic' && t.family === 6);
  if (ts.length > 0) warnings.push(`${child.where}: IPv6 traffic selectors ignored (${ts.map((t) => t.raw).join(', ')}): the tunnel carries IPv4 only`);
  const keepAlive = conn.client?.natKeepalive ?? 20;
  const initialMtu = Math.min(...esp.flatMap((o) => o.suites.map((s) => innerMtu(s, conn.client?.mtu ?? 1500))));
  return { connection: conn, child, ike, esp, localId, remoteId, psk: secret.secret, pskName: secret.name, vip: vip4 ?? '0.0.0.0', keepAlive, initialMtu };
}
