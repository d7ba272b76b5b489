/**
 * An IKE connection of swanctl.conf checked and resolved once, before any packet: what this client supports
 * today (IKEv2 with a pre-shared key, certificates or EAP-MSCHAPv2 after a gateway certificate, one CHILD_SA),
 * the proposals parsed, the identities, certificates, private key, CAs and secrets found. Unsupported settings
 * that change behaviour are PROFILE_UNSUPPORTED with the file:line of the connection; harmless ones warnings.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import type { KeyObject, X509Certificate } from 'node:crypto';
import { innerMtu } from '../esp-sa.js';
import { VpnError } from '../../errors.js';
import type { AuthRound, CertSource, ChildConfig, IkeConnection, IpsecConfig, PrivateKeySecret } from '../config.js';
import { IdType } from '../../wire/ike-constants.js';
import { certsFromBytes, keyMatchesCert, loadPrivateKey, oneLine, parseCertificate, subjectDer } from './certs.js';
import type { LocalAuth, RemoteAuth } from './types.js';
import { readPkcs12 } from './pkcs12.js';
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
  /** The pre-shared key when either side uses auth = psk (else empty). */
  readonly psk: Uint8Array;
  /** Which secret it came from, for logs ('ike-lab'), or how we authenticate ('certificate …', 'EAP …'). */
  readonly pskName: string;
  readonly localAuth: LocalAuth;
  readonly remoteAuth: RemoteAuth;
  /** 'psk', 'pubkey', 'eap-mschapv2' (for /status). */
  readonly authMethod: string;
  /** The virtual IP to ask for ('0.0.0.0' = any). */
  readonly vip: string;
  /** The IPv6 virtual IP to ask for ('::' = any), when the connection's vips name one; IPv6 selectors travel only then. */
  readonly vip6?: string;
  /** NAT keepalive interval, seconds. */
  readonly keepAlive: number;
  /** The smallest inner MTU over the offered ESP suites for a 1500-byte path (the MTU before we are up). */
  readonly initialMtu: number;
  /** IKE fragmentation (RFC 7383): fragmentation = force counts as yes (force is about IKEv1). */
  readonly fragmentation: 'yes' | 'accept' | 'no';
}

const unsupported = (where: string, msg: string) => new VpnError('PROFILE_UNSUPPORTED', `${where}: ${msg}`);

/** Checks and resolves `conn` for the IKEv2 initiator; `warnings` gets file:line remarks. */
export function planIke(config: IpsecConfig, conn: IkeConnection, warnings: string[]): IkePlan {
  const where = conn.where;
  const at = (key: string) => conn.locations[key] ?? where;
  if (conn.local.length !== 1) throw unsupported(where, `connection ${conn.name} has ${conn.local.length} local authentication rounds; only one is supported yet (a certificate, a PSK or EAP)`);
  if (conn.remote.length !== 1) throw unsupported(where, `connection ${conn.name} has ${conn.remote.length} remote authentication rounds; only one is supported yet`);
  const local = conn.local[0]!;
  const remote = conn.remote[0]!;
  if (local.auth === 'eap' && local.eapMethod !== undefined && local.eapMethod !== 'mschapv2') throw unsupported(local.where, `local.auth = ${local.authRaw}: only EAP-MSCHAPv2 is supported`);
  if (remote.auth === 'eap') throw unsupported(remote.where, `remote.auth = ${remote.authRaw}: EAP-only authentication of the gateway (RFC 5998) is not supported; use remote.auth = pubkey with its CA`);
  if (local.auth === 'eap' && remote.auth !== 'pubkey') throw unsupported(remote.where, `remote.auth = ${remote.authRaw}: EAP authentication is not supported yet with a gateway that authenticates by pre-shared key; with local.auth = ${local.authRaw} the gateway must authenticate with a certificate (remote.auth = pubkey)`);
  if (conn.localPort !== undefined && conn.localPort !== 0) throw unsupported(at('local_port'), 'local_port is not supported (the client always uses an ephemeral port)');
  for (const a of conn.remoteAddrs) {
    if (a.startsWith('%') || a.includes('/') || a.includes('-')) throw new VpnError('PROFILE_SYNTAX', `${at('remote_addrs')}: remote_addrs = ${a}: an initiator needs the gateway's address or host name`);
  }
  const children = [...conn.children.values()];
  if (children.length === 0) throw unsupported(where, `connection ${conn.name} has no children { } section; a CHILD_SA is what carries the traffic (childless IKE SAs are not supported)`);
  const child = children[0]!;
  if (children.length > 1) warnings.push(`${children[1]!.where}: children.${children[1]!.name} ignored: only the first CHILD_SA (${child.name}) is set up`);

  const ike = parseIkeProposals(conn.proposals, at('proposals'));
  const esp = parseEspProposals(child.espProposals, child.where);
  const remoteId = parseIdentity(remote.id ?? '', remote.where);
  let localId = parseIdentity(local.id ?? '', local.where);
  let psk: Uint8Array = new Uint8Array(0);
  let pskName = '';
  let localAuth: LocalAuth = { kind: 'psk' };
  let remoteAuth: RemoteAuth = { kind: 'psk' };
  if (local.auth === 'pubkey') {
    const p12 = config.secrets.privateKeys.find((k) => k.type === 'pkcs12');
    let certs: Uint8Array[];
    let ee: X509Certificate;
    let key: KeyObject;
    if (local.certs.length === 0 && p12) ({ certs, ee, key } = pkcs12Identity(p12, local.where));
    else {
      certs = local.certs.flatMap((c) => readCerts(c, local.where));
      if (certs.length === 0) throw new VpnError('PROFILE_SYNTAX', `${local.where}: local.auth = ${local.authRaw} needs our certificate (local.certs = FILE, in x509/)`);
      ee = parseCertificate(certs[0]!, `${local.where}: ${sourceName(local.certs[0]!)}`);
      key = findPrivateKey(config, ee, local.where);
    }
    localAuth = { kind: 'pubkey', certs, key };
    localId ??= { type: IdType.DER_ASN1_DN, data: new Uint8Array(subjectDer(ee)) };
    pskName = `certificate '${oneLine(ee.subject)}'`;
  } else if (local.auth === 'eap') {
    const identity = local.eapId ?? local.id;
    if (!identity) throw new VpnError('PROFILE_SYNTAX', `${local.where}: local.auth = ${local.authRaw} needs local.eap_id (or local.id): the EAP user name`);
    const s = config.secrets.eap.find((e) => e.ids.includes(identity)) ?? config.secrets.eap.find((e) => e.ids.length === 0);
    if (!s) throw new VpnError('PROFILE_SYNTAX', `${where}: no EAP password for '${identity}': add an eap section with id = ${identity} and its secret to secrets { }`);
    localAuth = { kind: 'eap', identity, password: s.secret };
    pskName = `EAP-MSCHAPv2 as '${identity}' (secrets.${s.name})`;
  }
  if (remote.auth === 'pubkey') {
    const cas = caCertificates(config, remote);
    if (cas.length === 0) throw unsupported(remote.where, `remote.auth = ${remote.authRaw} without a CA certificate: checking the gateway's certificate needs its CA (remote.cacerts = FILE, or a file in x509ca/)`);
    remoteAuth = { kind: 'pubkey', cas };
  }
  if (local.auth === 'psk' || remote.auth === 'psk') {
    const secret = findPsk(config.secrets.ike, localId, remoteId);
    if (!secret) {
      const ids = [localId && identityText(localId), remoteId && identityText(remoteId)].filter(Boolean).join(' and ');
      throw new VpnError('PROFILE_SYNTAX', `${where}: no pre-shared key for connection ${conn.name}${ids ? ` (identities ${ids})` : ''}: add an ike section with its ids and secret to secrets { }`);
    }
    psk = secret.secret;
    if (local.auth === 'psk') pskName = `PSK from secrets.${secret.name}`;
  }
  const authMethod = local.auth === 'eap' ? 'eap-mschapv2' : local.auth;
  const vip4 = conn.vips.find((v) => isIP(v) === 4);
  const vip6 = conn.vips.find((v) => isIP(v) === 6);
  if (conn.vips.length === 0) warnings.push(`${where}: connection ${conn.name} sets no vips; requesting a virtual IP anyway (this client needs an address inside the tunnel)`);
  else if (!vip4) warnings.push(`${at('vips')}: vips = ${conn.vips.join(', ')}: this client needs an IPv4 address inside the tunnel too; requesting any IPv4 address`);
  if (conn.fragmentation === 'force') warnings.push(`${at('fragmentation')}: fragmentation = force acts as yes with IKEv2: fragments are sent only to a gateway that announced IKEV2_FRAGMENTATION_SUPPORTED, and only for messages that would exceed 1280 bytes`);
  const fragmentation = conn.fragmentation === 'force' ? 'yes' : conn.fragmentation;
  const ts = [...child.localTs, ...child.remoteTs].filter((t) => t.kind !== 'dynamic' && t.family === 6);
  if (ts.length > 0 && !vip6) warnings.push(`${child.where}: IPv6 traffic selectors ignored (${ts.map((t) => t.raw).join(', ')}): add :: to vips to ask for an IPv6 address and carry IPv6`);
  const keepAlive = conn.client?.natKeepalive ?? 20;
  const initialMtu = Math.min(...esp.flatMap((o) => o.suites.map((s) => innerMtu(s, conn.client?.mtu ?? 1500))));
  return { connection: conn, child, ike, esp, localId, remoteId, psk, pskName, localAuth, remoteAuth, authMethod, vip: vip4 ?? '0.0.0.0', ...(vip6 ? { vip6 } : {}), keepAlive, initialMtu, fragmentation };
}

const sourceName = (c: CertSource) => ('file' in c ? c.file : c.label);

function readSource(c: CertSource, where: string): Uint8Array {
  if (!('file' in c)) return c.data;
  try {
    return readFileSync(c.file);
  } catch (e) {
    throw new VpnError('PROFILE_FILE', `${where}: cannot read ${c.file}: ${(e as Error).message}`);
  }
}

function readCerts(c: CertSource, where: string): Uint8Array[] {
  const der = certsFromBytes(readSource(c, where));
  if (der.length === 0) throw new VpnError('PROFILE_FILE', `${where}: ${sourceName(c)} holds no certificate`);
  return der.map((d) => new Uint8Array(d));
}

function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .map((f) => join(dir, f))
      .filter((f) => statSync(f).isFile())
      .sort();
  } catch {
    return [];
  }
}

/** The CAs to check the gateway against: remote.cacerts, authorities' cacert, and every file in x509ca/. */
function caCertificates(config: IpsecConfig, remote: AuthRound): X509Certificate[] {
  const out: X509Certificate[] = [];
  const add = (bytes: Uint8Array, what: string) => {
    for (const d of certsFromBytes(bytes)) out.push(parseCertificate(d, what));
  };
  for (const c of remote.cacerts) add(readSource(c, remote.where), `${remote.where}: ${sourceName(c)}`);
  for (const a of config.authorities.values()) if (a.cacert) add(readSource({ file: a.cacert }, a.where), `${a.where}: ${a.cacert}`);
  if (remote.cacerts.length === 0)
    for (const f of filesIn(config.dirs.x509ca)) {
      try {
        add(readFileSync(f), f);
      } catch {
        // not a certificate: strongSwan skips it too
      }
    }
  const seen = new Set<string>();
  return out.filter((c) => !seen.has(c.fingerprint256) && seen.add(c.fingerprint256));
}

/** Our private key: a secrets.private… entry or a file of private/, rsa/, ecdsa/, pkcs8/ whose key fits the certificate. */
function findPrivateKey(config: IpsecConfig, cert: X509Certificate, where: string) {
  const candidates: { bytes: Uint8Array; passphrase?: string; what: string }[] = [];
  for (const k of config.secrets.privateKeys) {
    if (k.type === 'pkcs12') continue;
    const bytes = k.data ?? (k.file ? readSource({ file: k.file }, k.where) : undefined);
    if (bytes) candidates.push({ bytes, passphrase: k.passphrase, what: `${k.where}: ${k.file ?? k.name}` });
  }
  const d = config.dirs;
  for (const dir of [d.private, d.rsa, d.ecdsa, d.pkcs8]) for (const f of filesIn(dir)) candidates.push({ bytes: readFileSync(f), what: f });
  for (const c of candidates) {
    let key;
    try {
      key = loadPrivateKey(c.bytes, c.passphrase, c.what);
    } catch {
      continue;
    }
    if (keyMatchesCert(key, cert)) return key;
  }
  throw new VpnError('PROFILE_SYNTAX', `${where}: no private key for our certificate '${oneLine(cert.subject)}' (put it in private/ or list it in secrets { private-NAME { file = … } })`);
}

/**
 * Our certificate and key from a PKCS#12 container (a .sswan profile's local.p12, or secrets.pkcs12…): the
 * certificate whose public key is the container's key first, then the container's other certificates that are
 * not self-signed (intermediates), for the gateway to build the chain.
 */
function pkcs12Identity(p12: PrivateKeySecret, where: string): { certs: Uint8Array[]; ee: X509Certificate; key: KeyObject } {
  const what = `${p12.where}: ${p12.file ?? p12.name}`;
  const bytes = p12.data ?? readSource({ file: p12.file! }, p12.where);
  const { certs, keys } = readPkcs12(bytes, p12.passphrase ?? '', what);
  const parsed = certs.map((c) => ({ der: c, x: parseCertificate(c, what) }));
  for (const key of keys) {
    const ee = parsed.find((c) => keyMatchesCert(key, c.x));
    if (!ee) continue;
    const others = parsed.filter((c) => c !== ee && c.x.subject !== c.x.issuer).map((c) => c.der);
    return { certs: [ee.der, ...others], ee: ee.x, key };
  }
  throw new VpnError('PROFILE_FILE', `${what}: the PKCS#12 container holds ${keys.length === 0 ? 'no private key' : certs.length === 0 ? 'no certificate' : 'no certificate for its private key'} (it must hold our certificate and its key)`);
}
