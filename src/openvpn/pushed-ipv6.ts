/**
 * The IPv6 half of a PUSH_REPLY as ConnectedInfo fields: `ifconfig-ipv6 addr/bits [remote]`, `route-ipv6`,
 * `redirect-gateway ipv6` and the IPv6 DNS servers (`dhcp-option DNS6` or 2.6 `dns server`). `tun-ipv6` is
 * obsolete since OpenVPN 2.4 and needs nothing. A malformed address leaves the tunnel IPv4-only (warned).
 */
import { WireError } from '../errors.js';
import { ipv6ToString, parseIpv6Address, parseIpv6Cidr } from '../wire/ipv6.js';
import type { ConnectedInfo } from './connected-info.js';
import type { PushedOptions } from './push.js';

export type PushedIpv6 = Pick<ConnectedInfo, 'address6' | 'prefixLength6' | 'gateway6' | 'routes6' | 'redirectGateway6' | 'dns6'>;

export function ipv6Of(o: PushedOptions, routeNopull: boolean, warn: (m: string) => void): PushedIpv6 {
  const ifc = o.ifconfigIpv6;
  if (!ifc) return {};
  let address6: string;
  let prefixLength6: number;
  let gateway6: string | undefined;
  try {
    const c = parseIpv6Cidr(ifc.address.includes('/') ? ifc.address : `${ifc.address}/64`);
    address6 = ipv6ToString(c.prefix);
    prefixLength6 = c.length;
    if (ifc.remote !== undefined) gateway6 = ipv6ToString(parseIpv6Address(ifc.remote));
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    warn(`ignoring pushed ifconfig-ipv6 ${JSON.stringify(ifc.address)}: ${e.message}`);
    return {};
  }
  const routes6: string[] = [];
  if (!routeNopull)
    for (const r of o.routesIpv6) {
      try {
        const c = parseIpv6Cidr(r.network);
        routes6.push(`${ipv6ToString(c.prefix)}/${c.length}`);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        warn(`ignoring pushed route-ipv6 ${JSON.stringify(r.network)}`);
      }
    }
  const dns6 = o.dns6.filter((d) => {
    try {
      parseIpv6Address(d);
      return true;
    } catch {
      return false;
    }
  });
  return {
    address6,
    prefixLength6,
    ...(gateway6 !== undefined ? { gateway6 } : {}),
    routes6,
    redirectGateway6: o.redirectGateway?.flags.includes('ipv6') ?? false,
    dns6,
  };
}
