/**
 * The lab's DNS server: Debian's dnsmasq in the web namespace, on port 53 of the web host's addresses (the
 * OpenVPN server pushes `dhcp-option DNS <web>` and `dhcp-option DOMAIN lab.test`). Authoritative-style for
 * lab.test only (no upstream, no /etc/hosts):
 *
 *   web.lab.test  A  <web>          (and anything under it, e.g. www.web.lab.test)
 *   ipsec.lab.test A <webIpsec>
 *   v6.lab.test   AAAA <web6> only (A queries: NOERROR, no data)
 *   ipsec6.lab.test AAAA <webIpsec6> only (the web host behind strongSwan, for IPsec tunnels with IPv6)
 *   dual.lab.test A <web> and AAAA <web6> (for Happy Eyeballs)
 *   big.lab.test  A  × BIG_RECORDS  (10.B.9.1 … : too large for a 512-byte UDP answer, and also for dnsmasq's
 *                                    EDNS limit of 1232 bytes, so it comes back truncated (TC) over UDP and
 *                                    complete over TCP: for resolvers' TCP-fallback tests)
 *   other *.lab.test → NXDOMAIN; names outside lab.test → REFUSED (nothing is forwarded anywhere).
 *
 * dnsmasq answers on UDP and TCP, on the web host's IPv4 addresses and on its IPv6 ones (web6, webIpsec6).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabAddresses } from './topology.js';

export const LAB_DOMAIN = 'lab.test';
export const WEB_NAME = 'web.lab.test';
export const IPSEC_WEB_NAME = 'ipsec.lab.test';
export const BIG_NAME = 'big.lab.test';
export const V6_NAME = 'v6.lab.test';
export const DUAL_NAME = 'dual.lab.test';
export const IPSEC_V6_NAME = 'ipsec6.lab.test';
export const BIG_RECORDS = 100;

/** The addresses big.lab.test resolves to, in the order of the hosts file. */
export function bigAddresses(addr: LabAddresses): string[] {
  return Array.from({ length: BIG_RECORDS }, (_, i) => `10.${addr.octet}.9.${i + 1}`);
}

/** Writes dnsmasq's hosts file into `dir`; returns the dnsmasq command line (arguments). */
export async function dnsmasqArgs(dir: string, addr: LabAddresses): Promise<string[]> {
  const hosts = join(dir, 'dns-hosts');
  await writeFile(hosts, bigAddresses(addr).map((a) => `${a} ${BIG_NAME}\n`).join(''));
  return [
    '--no-daemon', // foreground, no pid file, no user change, logs to stderr
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--log-facility=-',
    '--log-queries',
    '--port=53',
    `--listen-address=${addr.web}`,
    `--listen-address=${addr.webIpsec}`,
    `--listen-address=${addr.web6}`,
    `--listen-address=${addr.webIpsec6}`,
    '--bind-interfaces',
    `--domain=${LAB_DOMAIN}`,
    `--local=/${LAB_DOMAIN}/`,
    `--address=/${WEB_NAME}/${addr.web}`,
    `--address=/${IPSEC_WEB_NAME}/${addr.webIpsec}`,
    `--addn-hosts=${hosts}`,
    `--host-record=${V6_NAME},${addr.web6}`,
    `--host-record=${DUAL_NAME},${addr.web},${addr.web6}`,
    `--host-record=${IPSEC_V6_NAME},${addr.webIpsec6}`,
  ];
}
