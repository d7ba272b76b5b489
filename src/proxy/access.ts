/**
 * Which clients may use the proxies (--allow CIDR, repeatable). Default: loopback only (127.0.0.0/8 and ::1).
 * IPv4-mapped IPv6 peers (::ffff:a.b.c.d, as a dual-stack listener reports them) are checked as IPv4.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { VpnError } from '../errors.js';

export const LOOPBACK_ONLY: readonly string[] = ['127.0.0.0/8', '::1/128'];

export class AccessList {
  private readonly list = new BlockList();
  readonly cidrs: readonly string[];

  /** Throws VpnError USAGE for a malformed CIDR. */
  constructor(cidrs: readonly string[] = LOOPBACK_ONLY) {
    this.cidrs = [...cidrs];
    for (const c of cidrs) {
      const [addr, lenStr, ...rest] = c.trim().split('/');
      const v4 = isIPv4(addr ?? '');
      const v6 = !v4 && isIPv6(addr ?? '');
      const max = v4 ? 32 : 128;
      const len = lenStr === undefined ? max : /^\d{1,3}$/.test(lenStr) ? Number(lenStr) : NaN;
      if ((!v4 && !v6) || rest.length > 0 || !(len >= 0 && len <= max)) {
        throw new VpnError('USAGE', `--allow expects an IPv4 or IPv6 CIDR such as 192.168.1.0/24, got ${JSON.stringify(c)}`);
      }
      this.list.addSubnet(addr!, len, v4 ? 'ipv4' : 'ipv6');
    }
  }

  /** May a client at this address (as reported by socket.remoteAddress) use the proxies? */
  allows(address: string | undefined): boolean {
    if (!address) return false;
    let a = address;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
    if (mapped) a = mapped[1]!;
    if (isIPv4(a)) return this.list.check(a, 'ipv4');
    if (isIPv6(a)) return this.list.check(a, 'ipv6');
    return false;
  }
}
