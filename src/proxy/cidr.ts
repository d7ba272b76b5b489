/** IPv4 address and CIDR helpers shared by the router (VPN routes) and the access list (--allow). */
import { isIPv4 } from 'node:net';

/** Dotted quad to uint32, or undefined when not an IPv4 literal. */
export function ipv4ToInt(s: string): number | undefined {
  if (!isIPv4(s)) return undefined;
  const p = s.split('.');
  return ((+p[0]! << 24) | (+p[1]! << 16) | (+p[2]! << 8) | +p[3]!) >>> 0;
}

export interface Ipv4Cidr {
  network: number;
  mask: number;
  prefix: number;
}

function maskFor(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Netmask (dotted quad) to prefix length, or undefined if not contiguous. */
export function netmaskToPrefix(mask: string): number | undefined {
  const m = ipv4ToInt(mask);
  if (m === undefined) return undefined;
  let prefix = 0;
  while (prefix < 32 && (m & (0x80000000 >>> prefix)) !== 0) prefix++;
  return maskFor(prefix) === m ? prefix : undefined;
}

/**
 * Parse "a.b.c.d/len", "a.b.c.d" (a /32), or "a.b.c.d mask" / "a.b.c.d/mask" (dotted netmask, as OpenVPN pushes
 * routes). Returns undefined for anything else.
 */
export function parseIpv4Cidr(s: string): Ipv4Cidr | undefined {
  const parts = s.trim().split(/[/\s]+/);
  if (parts.length > 2) return undefined;
  const addr = ipv4ToInt(parts[0]!);
  if (addr === undefined) return undefined;
  let prefix = 32;
  if (parts.length === 2) {
    const p = parts[1]!;
    if (/^\d{1,2}$/.test(p)) prefix = Number(p);
    else {
      const fromMask = netmaskToPrefix(p);
      if (fromMask === undefined) return undefined;
      prefix = fromMask;
    }
    if (prefix > 32) return undefined;
  }
  const mask = maskFor(prefix);
  return { network: (addr & mask) >>> 0, mask, prefix };
}

export function cidrContains(c: Ipv4Cidr, addr: number): boolean {
  return ((addr & c.mask) >>> 0) === c.network;
}
