/**
 * The lab's network: five namespaces joined by veth pairs, addressed from the run's slot (B = 100 + slot).
 *
 *   root ns (test process, our client)
 *     10.B.1.1 ── 10.B.1.2  srv  (OpenVPN servers; ip_forward=1)
 *                            10.B.2.1 ── 10.B.2.2  web  (HTTP :80, echo :7 tcp+udp, iperf3 :5201)
 *                            10.B.3.1 ── 10.B.3.2  nat  (stock openvpn client, the native baseline)
 *     10.B.4.1 ── 10.B.4.2  ike  (strongSwan charon; ip_forward=1)
 *                            10.B.5.1 ── 10.B.5.2  web  (same host, its IPsec-side address)
 *                            10.B.11.1 ── 10.B.11.2 nat (same host; the stock strongSwan client, the
 *                                                        IPsec baseline of the benchmark)
 *     10.B.8.1 ── 10.B.8.2  esp  (scapy ESP-in-UDP gateway, manual SAs; ip_forward=1; TUN 10.B.7.1/24)
 *                            10.B.10.1 ── 10.B.10.2 web (same host; esp routes 10.B.5.0/24 through it)
 *
 * IPv6 runs on the srv–web link: srv fd00:B:2::1, web fd00:B:2::2, web routing fd00:8::/32 (the OpenVPN
 * servers' server-ipv6 pools) back via srv; and on the ike–web link: ike fd00:B:5::1, web fd00:B:5::2, web
 * routing fd00:B:6::/120 (strongSwan's IPv6 pool) back via ike. The gateways are also reachable over IPv6 from
 * the root namespace (the outer transport over IPv6): root fd00:B:1::1 ── srv fd00:B:1::2 and
 * root fd00:B:4::1 ── ike fd00:B:4::2 (only these connected /64s; nothing is routed beyond them).
 *
 * The root namespace gets `unreachable 10.B.0.0/16` so that nothing but the connected /24s (to srv, ike, esp)
 * can be reached from it (no leaks to a default route); `web` routes replies to the OpenVPN client subnets
 * (10.8.0.0/16) via srv, to the IPsec pool (10.B.6.0/24) via ike and to the manual-SA ESP pool (10.B.7.0/24)
 * via esp; `nat` has only its connected /24s, so `web` is reachable from there only through a tunnel.
 */
import { run } from './exec.js';
import { namePrefix, slotOctet } from './state.js';

export type HostName = 'srv' | 'web' | 'nat' | 'ike' | 'esp';
export const HOSTS: readonly HostName[] = ['srv', 'web', 'nat', 'ike', 'esp'];

/** Every address of a lab, derived from its slot. */
export interface LabAddresses {
  /** Second octet (100 + slot). */
  octet: number;
  /** Root end of the root–srv link. */
  rootToSrv: string;
  /** srv's address as seen from the root namespace: our client's `remote`. */
  srv: string;
  /** srv's address on the web link (the web host's gateway). */
  srvWebSide: string;
  /** The web host's address behind the OpenVPN server (reachable only through an OpenVPN tunnel). */
  web: string;
  /** The web host's network behind OpenVPN, CIDR (pushed as a route). */
  webNet: string;
  /** srv's address as seen from nat: the native client's `remote`. */
  srvNatSide: string;
  nat: string;
  /** Root end of the root–ike link. */
  rootToIke: string;
  /** charon's address as seen from the root namespace. */
  ike: string;
  ikeWebSide: string;
  /** charon's address as seen from nat (the stock strongSwan client's `remote_addrs`, for the benchmark). */
  ikeNatSide: string;
  /** nat's end of the nat–ike link. */
  natToIke: string;
  /** The web host's address behind strongSwan (reachable only through IPsec). */
  webIpsec: string;
  /** CIDR behind strongSwan (the responder's local_ts). */
  webIpsecNet: string;
  /** Virtual IP pool of the IPsec responder, CIDR. */
  ipsecPool: string;
  /** Range routed back from web to srv; OpenVPN server n uses 10.8.n.0/24. */
  openvpnClients: string;
  /** Root end of the root–esp link. */
  rootToEsp: string;
  /** The scapy ESP gateway's address as seen from the root namespace (UDP 4500). */
  esp: string;
  /** esp's address on its link to the web host. */
  espWebSide: string;
  /** The web host's address on the esp link (esp's next hop to webIpsec). */
  webEspSide: string;
  /** Client virtual IPs of the manual-SA ESP gateway, CIDR (routed back from web via esp). */
  espPool: string;
  /** The ESP gateway's own address inside espPool (its TUN device). */
  espTun: string;
  /** Default client VIP for the ESP gateway. */
  espClientVip: string;
  /** srv's IPv6 address on the web link. */
  srvWebSide6: string;
  /** The web host's IPv6 address behind the OpenVPN server (reachable only through an OpenVPN tunnel with IPv6). */
  web6: string;
  /** The srv–web IPv6 network, CIDR (pushed as route-ipv6 by servers with `ipv6`). */
  webNet6: string;
  /** IPv6 range routed back from web to srv; OpenVPN server n uses fd00:8:n::/64 (server-ipv6). */
  openvpnClients6: string;
  /** ike's IPv6 address on the web link. */
  ikeWebSide6: string;
  /** The web host's IPv6 address behind strongSwan (reachable only through IPsec with IPv6). */
  webIpsec6: string;
  /** The ike–web IPv6 network, CIDR (local_ts of a responder with ipv6). */
  webIpsecNet6: string;
  /** IPv6 virtual IP pool of a strongSwan responder with ipv6, CIDR. */
  ipsecPool6: string;
  /** Root end of the root–srv link, IPv6. */
  rootToSrv6: string;
  /** srv's IPv6 address as seen from the root namespace: an OpenVPN `remote` over IPv6. */
  srv6: string;
  /** Root end of the root–ike link, IPv6. */
  rootToIke6: string;
  /** charon's IPv6 address as seen from the root namespace: IKE and ESP-in-UDP over IPv6. */
  ike6: string;
}

export function labAddresses(slot: number): LabAddresses {
  const b = slotOctet(slot);
  return {
    octet: b,
    rootToSrv: `10.${b}.1.1`,
    srv: `10.${b}.1.2`,
    srvWebSide: `10.${b}.2.1`,
    web: `10.${b}.2.2`,
    webNet: `10.${b}.2.0/24`,
    srvNatSide: `10.${b}.3.1`,
    nat: `10.${b}.3.2`,
    rootToIke: `10.${b}.4.1`,
    ike: `10.${b}.4.2`,
    ikeWebSide: `10.${b}.5.1`,
    ikeNatSide: `10.${b}.11.1`,
    natToIke: `10.${b}.11.2`,
    webIpsec: `10.${b}.5.2`,
    webIpsecNet: `10.${b}.5.0/24`,
    ipsecPool: `10.${b}.6.0/24`,
    openvpnClients: '10.8.0.0/16',
    rootToEsp: `10.${b}.8.1`,
    esp: `10.${b}.8.2`,
    espWebSide: `10.${b}.10.1`,
    webEspSide: `10.${b}.10.2`,
    espPool: `10.${b}.7.0/24`,
    espTun: `10.${b}.7.1`,
    espClientVip: `10.${b}.7.2`,
    srvWebSide6: `fd00:${b}:2::1`,
    web6: `fd00:${b}:2::2`,
    webNet6: `fd00:${b}:2::/64`,
    openvpnClients6: 'fd00:8::/32',
    ikeWebSide6: `fd00:${b}:5::1`,
    webIpsec6: `fd00:${b}:5::2`,
    webIpsecNet6: `fd00:${b}:5::/64`,
    ipsecPool6: `fd00:${b}:6::/120`,
    rootToSrv6: `fd00:${b}:1::1`,
    srv6: `fd00:${b}:1::2`,
    rootToIke6: `fd00:${b}:4::1`,
    ike6: `fd00:${b}:4::2`,
  };
}

/** Namespace names of a run. */
export function nsNames(runId: string): Record<HostName, string> {
  const p = namePrefix(runId);
  return { srv: `${p}-srv`, web: `${p}-web`, nat: `${p}-nat`, ike: `${p}-ike`, esp: `${p}-esp` };
}

const ip = (...args: string[]) => run('ip', args, { timeoutMs: 10_000 });

/** One veth pair; `a`/`b` undefined means the root namespace. */
async function link(
  a: string | undefined,
  aName: string,
  aAddr: string,
  b: string,
  bName: string,
  bAddr: string,
): Promise<void> {
  const aNs = a ? ['netns', a] : [];
  await ip('link', 'add', aName, ...aNs, 'type', 'veth', 'peer', 'name', bName, 'netns', b);
  const inA = a ? ['-n', a] : [];
  await Promise.all([
    ip(...inA, 'addr', 'add', `${aAddr}/24`, 'dev', aName).then(() => ip(...inA, 'link', 'set', aName, 'up')),
    ip('-n', b, 'addr', 'add', `${bAddr}/24`, 'dev', bName).then(() => ip('-n', b, 'link', 'set', bName, 'up')),
  ]);
}

/** Builds the namespaces, links, routes and sysctls. Throws LabError on any failure (the caller tears down). */
export async function buildTopology(runId: string, slot: number): Promise<void> {
  const a = labAddresses(slot);
  const ns = nsNames(runId);
  const p = namePrefix(runId);
  const b = a.octet;
  for (const h of HOSTS) await ip('netns', 'add', ns[h]);
  await Promise.all(HOSTS.map((h) => ip('-n', ns[h], 'link', 'set', 'lo', 'up')));
  // Guard first, so that the connected /24s added next are more specific than it.
  await ip('route', 'replace', 'unreachable', `10.${b}.0.0/16`);
  await Promise.all([
    link(undefined, `${p}-rs`, a.rootToSrv, ns.srv, `${p}-sr`, a.srv),
    link(ns.srv, `${p}-sw`, a.srvWebSide, ns.web, `${p}-ws`, a.web),
    link(ns.srv, `${p}-sn`, a.srvNatSide, ns.nat, `${p}-ns`, a.nat),
    link(undefined, `${p}-ri`, a.rootToIke, ns.ike, `${p}-ir`, a.ike),
    link(ns.ike, `${p}-iw`, a.ikeWebSide, ns.web, `${p}-wi`, a.webIpsec),
    link(ns.ike, `${p}-in`, a.ikeNatSide, ns.nat, `${p}-ni`, a.natToIke),
    link(undefined, `${p}-re`, a.rootToEsp, ns.esp, `${p}-er`, a.esp),
    link(ns.esp, `${p}-ew`, a.espWebSide, ns.web, `${p}-we`, a.webEspSide),
  ]);
  await Promise.all([
    ip('-n', ns.web, 'route', 'add', a.openvpnClients, 'via', a.srvWebSide),
    ip('-n', ns.web, 'route', 'add', a.ipsecPool, 'via', a.ikeWebSide),
    ip('-n', ns.web, 'route', 'add', a.espPool, 'via', a.espWebSide),
    ip('-n', ns.esp, 'route', 'add', a.webIpsecNet, 'via', a.webEspSide),
    run('ip', ['netns', 'exec', ns.esp, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']),
    run('ip', ['netns', 'exec', ns.srv, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']),
    run('ip', ['netns', 'exec', ns.ike, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']),
  ]);
  // IPv6 on the gateways' links (nodad: usable at once), srv forwarding it for OpenVPN's server-ipv6 clients.
  await Promise.all([
    run('ip', ['netns', 'exec', ns.srv, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0', 'net.ipv6.conf.all.forwarding=1']),
    run('ip', ['netns', 'exec', ns.web, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0']),
    run('ip', ['netns', 'exec', ns.ike, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0', 'net.ipv6.conf.all.forwarding=1']),
  ]);
  // the sysctl above reaches links that already exist only through `all`; set each link's own too
  await Promise.all([
    run('ip', ['netns', 'exec', ns.ike, 'sysctl', '-qw', `net.ipv6.conf.${p}-iw.disable_ipv6=0`]),
    run('ip', ['netns', 'exec', ns.web, 'sysctl', '-qw', `net.ipv6.conf.${p}-wi.disable_ipv6=0`]),
    run('ip', ['netns', 'exec', ns.srv, 'sysctl', '-qw', `net.ipv6.conf.${p}-sr.disable_ipv6=0`]),
    run('ip', ['netns', 'exec', ns.ike, 'sysctl', '-qw', `net.ipv6.conf.${p}-ir.disable_ipv6=0`]),
    run('sysctl', ['-qw', `net.ipv6.conf.${p}-rs.disable_ipv6=0`, `net.ipv6.conf.${p}-ri.disable_ipv6=0`]),
  ]);
  await Promise.all([
    ip('-n', ns.srv, 'addr', 'add', `${a.srvWebSide6}/64`, 'dev', `${p}-sw`, 'nodad'),
    ip('-n', ns.web, 'addr', 'add', `${a.web6}/64`, 'dev', `${p}-ws`, 'nodad'),
    ip('-n', ns.ike, 'addr', 'add', `${a.ikeWebSide6}/64`, 'dev', `${p}-iw`, 'nodad'),
    ip('-n', ns.web, 'addr', 'add', `${a.webIpsec6}/64`, 'dev', `${p}-wi`, 'nodad'),
    ip('addr', 'add', `${a.rootToSrv6}/64`, 'dev', `${p}-rs`, 'nodad'),
    ip('-n', ns.srv, 'addr', 'add', `${a.srv6}/64`, 'dev', `${p}-sr`, 'nodad'),
    ip('addr', 'add', `${a.rootToIke6}/64`, 'dev', `${p}-ri`, 'nodad'),
    ip('-n', ns.ike, 'addr', 'add', `${a.ike6}/64`, 'dev', `${p}-ir`, 'nodad'),
  ]);
  await Promise.all([
    ip('-n', ns.web, 'route', 'add', a.openvpnClients6, 'via', a.srvWebSide6),
    ip('-n', ns.web, 'route', 'add', a.ipsecPool6, 'via', a.ikeWebSide6),
  ]);
}

/** Checks that a namespace exists. */
export async function nsExists(name: string): Promise<boolean> {
  const r = await run('ip', ['netns', 'list'], { allowFail: true });
  return r.stdout.split('\n').some((l) => l.split(' ')[0] === name);
}

