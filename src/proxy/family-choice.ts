/**
 * Which of a name's addresses to dial, and by which route, when the tunnel carries IPv6 (issue 16). Happy
 * Eyeballs inside the tunnel (tunnel.ts) races A and AAAA only when the tunnel routes both; when it routes just
 * one family (say the AAAA address is in a pushed route-ipv6 and the A address is public), the name is dialed
 * at the routed address through the tunnel. The other address is tried directly from this host only when the
 * routed one failed and the policy is direct-unrouted: under the default policy a name the VPN routes must not
 * fall back to leaving this host. A name the tunnel routes in neither family goes direct as before (its IPv4
 * address first). Pure: the caller resolves and dials.
 */
import type { RouteName, RoutePolicy } from './router.js';

export interface FamilyAddresses {
  /** The name's first IPv4 address, if it has one. */
  a4?: string | undefined;
  /** Its first IPv6 address, if it has one. */
  a6?: string | undefined;
}

export interface Attempt {
  address: string;
  route: RouteName;
}

export type FamilyPlan =
  /** Both families go into the tunnel: hand the name to the tunnel's dialer (Happy Eyeballs there). */
  | { kind: 'tunnel' }
  /** Dial these in order, each after the previous one failed. */
  | { kind: 'attempts'; attempts: Attempt[] };

/**
 * `routeFor` is the Router's: 'vpn', 'direct', or undefined for an address that may go neither way (an IPv6
 * destination with no IPv6 in the tunnel and no --direct-unrouted).
 */
export function planFamilies(a: FamilyAddresses, routeFor: (ip: string) => RouteName | undefined, policy: RoutePolicy): FamilyPlan {
  const r4 = a.a4 === undefined ? undefined : routeFor(a.a4);
  const r6 = a.a6 === undefined ? undefined : routeFor(a.a6);
  if (r4 === 'vpn' && r6 === 'vpn') return { kind: 'tunnel' };
  const inside: Attempt[] = [];
  const outside: Attempt[] = [];
  // IPv4 first among direct addresses (what this host's own resolver order gave before IPv6 in the tunnel).
  for (const [address, route] of [
    [a.a4, r4],
    [a.a6, r6],
  ] as const) {
    if (address === undefined || route === undefined) continue;
    (route === 'vpn' ? inside : outside).push({ address, route });
  }
  if (inside.length === 0) return { kind: 'attempts', attempts: outside.slice(0, 1) };
  return { kind: 'attempts', attempts: policy === 'direct-unrouted' ? [...inside, ...outside] : inside };
}
