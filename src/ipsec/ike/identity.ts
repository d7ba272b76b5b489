/**
 * IKE identities, pre-shared key lookup and traffic selectors, as strongSwan reads them from swanctl.conf.
 *
 * Identities (strongSwan's identification_create_from_string): `%any` = none; a type prefix (`fqdn:`,
 * `email:`/`rfc822:`/`userfqdn:`, `keyid:`, `ipv4:`, `ipv6:`); `@#hex` = KEY_ID; `@name` = FQDN `name`; an IP
 * literal = ID_IPV4_ADDR / ID_IPV6_ADDR; anything with `@` = RFC822 address; anything else = FQDN (even
 * `alice`). Anything with `=` is a distinguished name (ID_DER_ASN1_DN).
 *
 * PSK lookup (strongSwan's shared-key matching): a secret whose ids are listed matches when one of them is
 * our id or the peer's; a secret without ids matches anything; the best match wins (both ids over one, an
 * exact id over `%any`), the first one among equals.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { VpnError } from '../../errors.js';
import { IdType, TsType, idTypeName } from '../../wire/ike-constants.js';
import type { IdPayload, TrafficSelector as WireTs } from '../../wire/ike-payloads.js';
import { parseIpv4Address } from '../../wire/ipv4.js';
import { ipv6ToString, parseIpv6Address } from '../../wire/ipv6.js';
import type { IkeSecret, TrafficSelector as ConfigTs } from '../config.js';

const text = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

function ipv6Bytes(s: string): Uint8Array {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function ipv4Bytes(s: string): Uint8Array {
  const n = parseIpv4Address(s);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** An IPv4 or IPv6 literal as its 4 or 16 bytes (for NAT-D hashes and ID payloads). */
export function addressBytes(s: string): Uint8Array {
  if (isIPv4(s)) return ipv4Bytes(s);
  if (isIPv6(s)) return ipv6Bytes(s);
  throw new RangeError(`'${s}' is not an IP address`);
}

/** An identity string as an ID payload body; undefined for `%any` (and empty). */
export function parseIdentity(s: string, where?: string): IdPayload | undefined {
  const id = s.trim();
  if (id === '' || id === '%any' || id === '%any6') return undefined;
  const prefixed = /^([a-z0-9]+):(.*)$/i.exec(id);
  if (prefixed && !isIPv6(id)) {
    const [, kind, rest] = prefixed as unknown as [string, string, string];
    switch (kind.toLowerCase()) {
      case 'fqdn':
      case 'dns':
        return { type: IdType.FQDN, data: text(rest) };
      case 'email':
      case 'rfc822':
      case 'userfqdn':
        return { type: IdType.RFC822_ADDR, data: text(rest) };
      case 'keyid':
        return { type: IdType.KEY_ID, data: rest.startsWith('#') ? hexId(rest.slice(1), id, where) : text(rest) };
      case 'ipv4':
        if (isIPv4(rest)) return { type: IdType.IPV4_ADDR, data: ipv4Bytes(rest) };
        break;
      case 'ipv6':
        if (isIPv6(rest)) return { type: IdType.IPV6_ADDR, data: ipv6Bytes(rest) };
        break;
    }
  }
  if (id.includes('=')) return { type: IdType.DER_ASN1_DN, data: dnFromText(id, where) };
  if (id.startsWith('@#')) return { type: IdType.KEY_ID, data: hexId(id.slice(2), id, where) };
  if (id.startsWith('@')) return { type: IdType.FQDN, data: text(id.slice(1)) };
  if (isIPv4(id)) return { type: IdType.IPV4_ADDR, data: ipv4Bytes(id) };
  if (isIPv6(id)) return { type: IdType.IPV6_ADDR, data: ipv6Bytes(id) };
  if (id.includes('@')) return { type: IdType.RFC822_ADDR, data: text(id) };
  return { type: IdType.FQDN, data: text(id) };
}

function hexId(h: string, id: string, where?: string): Uint8Array {
  const clean = h.replace(/:/g, '');
  if (clean.length === 0 || clean.length % 2 || !/^[0-9a-f]+$/i.test(clean)) throw new VpnError('PROFILE_SYNTAX', `${where ? `${where}: ` : ''}identity '${id}': expected hex bytes after #`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

/** An ID payload as text for logs and messages ('fqdn:server.lab', 'ipv4:10.0.0.1'). */
export function identityText(id: IdPayload): string {
  const d = Buffer.from(id.data);
  switch (id.type) {
    case IdType.FQDN:
    case IdType.RFC822_ADDR:
      return d.toString('utf8');
    case IdType.IPV4_ADDR:
      return d.length === 4 ? [...d].join('.') : `ipv4:0x${d.toString('hex')}`;
    case IdType.KEY_ID:
      return `@#${d.toString('hex')}`;
    case IdType.DER_ASN1_DN:
      try {
        return dnToText(d);
      } catch {
        return `dn:0x${d.toString('hex')}`;
      }
    default:
      return `${idTypeName(id.type).toLowerCase()}:0x${d.toString('hex')}`;
  }
}

export function sameIdentity(a: IdPayload, b: IdPayload): boolean {
  if (a.type === IdType.DER_ASN1_DN && b.type === IdType.DER_ASN1_DN) {
    try {
      return dnToText(a.data).toLowerCase() === dnToText(b.data).toLowerCase();
    } catch {
      // compare the bytes
    }
  }
  return a.type === b.type && Buffer.from(a.data).equals(Buffer.from(b.data));
}

// ---------------------------------------------------------------- distinguished names

const DN_OIDS: [string, string][] = [
  ['C', '550406'],
  ['ST', '550408'],
  ['L', '550407'],
  ['O', '55040a'],
  ['OU', '55040b'],
  ['CN', '550403'],
  ['SN', '550405'],
  ['E', '2a864886f70d010901'],
];
const DN_ALIASES: Record<string, string> = { EMAILADDRESS: 'E', SERIALNUMBER: 'SN', S: 'ST' };

function derLen(n: number): number[] {
  return n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
}
const derTlv = (tag: number, body: Uint8Array) => Buffer.concat([Buffer.from([tag, ...derLen(body.length)]), body]);

/** 'C=CH, O=lab, CN=server' (or '/'-separated) as the DER of an X.501 Name (ID_DER_ASN1_DN). */
export function dnFromText(dn: string, where?: string): Uint8Array {
  const rdns: Buffer[] = [];
  for (const part of dn.split(/,|\/(?=\s*[A-Za-z]+\s*=)/).map((x) => x.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    const key0 = part.slice(0, i).trim().toUpperCase();
    const key = DN_ALIASES[key0] ?? key0;
    const oid = DN_OIDS.find(([k]) => k === key)?.[1];
    if (i < 1 || !oid) throw new VpnError('PROFILE_SYNTAX', `${where ? `${where}: ` : ''}identity '${dn}': unknown attribute '${part.slice(0, Math.max(i, 0))}' in a distinguished name (C, ST, L, O, OU, CN, SN, E)`);
    const value = Buffer.from(part.slice(i + 1).trim(), 'utf8');
    const tag = key === 'C' ? 0x13 : key === 'E' ? 0x16 : 0x0c;
    rdns.push(derTlv(0x31, derTlv(0x30, Buffer.concat([derTlv(0x06, Buffer.from(oid, 'hex')), derTlv(tag, value)]))));
  }
  return new Uint8Array(derTlv(0x30, Buffer.concat(rdns)));
}

/** The DER of a Name as text ('C=CH, O=lab, CN=server'). */
export function dnToText(der: Uint8Array): string {
  const b = Buffer.from(der);
  const read = (o: number) => {
    let l = b[o + 1]!;
    let c = o + 2;
    if (l & 0x80) {
      const n = l & 0x7f;
      l = 0;
      for (let k = 0; k < n; k++) l = l * 256 + b[c + k]!;
      c += n;
    }
    if (c + l > b.length) throw new VpnError('WIRE', 'truncated DN');
    return { tag: b[o]!, c, end: c + l };
  };
  const seq = read(0);
  if (seq.tag !== 0x30) throw new VpnError('WIRE', 'a DN is not a SEQUENCE');
  const out: string[] = [];
  for (let o = seq.c; o < seq.end; ) {
    const set = read(o);
    for (let q = set.c; q < set.end; ) {
      const atv = read(q);
      const oid = read(atv.c);
      const val = read(oid.end);
      const hexOid = b.subarray(oid.c, oid.end).toString('hex');
      const name = DN_OIDS.find(([, h]) => h === hexOid)?.[0] ?? hexOid;
      out.push(`${name}=${b.subarray(val.c, val.end).toString('utf8')}`);
      q = atv.end;
    }
    o = set.end;
  }
  return out.join(', ');
}

const MATCH_PERFECT = 20;
const MATCH_ANY = 1;

function ownerMatch(ids: readonly string[], who: IdPayload | undefined): number {
  if (ids.length === 0) return MATCH_ANY;
  let best = 0;
  for (const s of ids) {
    let id: IdPayload | undefined;
    try {
      id = parseIdentity(s);
    } catch {
      continue; // a DN in a secret: never ours today
    }
    if (id === undefined) best = Math.max(best, MATCH_ANY);
    else if (who && sameIdentity(id, who)) best = MATCH_PERFECT;
  }
  return best;
}

/** The IKE secret for our identity and the peer's (either may be unknown), by strongSwan's rules. */
export function findPsk(secrets: readonly IkeSecret[], local: IdPayload | undefined, remote: IdPayload | undefined): IkeSecret | undefined {
  let best: IkeSecret | undefined;
  let bestScore = 0;
  for (const s of secrets) {
    const me = ownerMatch(s.ids, local);
    const other = ownerMatch(s.ids, remote);
    if (me === 0 && other === 0) continue;
    const score = me + other;
    if (score > bestScore) {
      best = s;
      bestScore = score;
    }
  }
  return best;
}

// ---------------------------------------------------------------- traffic selectors

const u32 = (b: Uint8Array) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
const be32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const dotted = (n: number) => `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;

export const ANY_IPV4_TS: WireTs = Object.freeze({ type: TsType.IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: be32(0), endAddress: be32(0xffffffff) });

const ALL_ONES_128 = (1n << 128n) - 1n;
const big128 = (b: Uint8Array) => b.reduce((n, x) => (n << 8n) | BigInt(x), 0n);
const bytes128 = (n: bigint) => Uint8Array.from({ length: 16 }, (_, i) => Number((n >> BigInt(8 * (15 - i))) & 0xffn));

export const ANY_IPV6_TS: WireTs = Object.freeze({ type: TsType.IPV6_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: bytes128(0n), endAddress: bytes128(ALL_ONES_128) });

/**
 * A child's configured selectors (local_ts / remote_ts) as TS payload entries. IPv6 ones (TS_IPV6_ADDR_RANGE)
 * only with `ipv6` (the tunnel asks for an IPv6 address), else they are named in `skipped`. `dynamic` stands
 * for `dynamicAddress` (the gateway's address on the remote side; on our side the virtual IP we ask for, i.e.
 * anything until it is assigned) and, on our side with `dynamicAddress6`, for the IPv6 virtual IP too.
 */
export function selectorsFromConfig(
  ts: readonly ConfigTs[],
  dynamicAddress: string | undefined,
  opts: { ipv6?: boolean; dynamicAddress6?: string } = {},
): { selectors: WireTs[]; skipped: string[] } {
  const selectors: WireTs[] = [];
  const skipped: string[] = [];
  for (const t of ts) {
    const ports = t.ports === 'opaque' ? { startPort: 0xffff, endPort: 0 } : t.ports ? { startPort: t.ports.from, endPort: t.ports.to } : { startPort: 0, endPort: 0xffff };
    const base = { type: TsType.IPV4_ADDR_RANGE, ipProtocol: t.protocol ?? 0, ...ports };
    const base6 = { ...base, type: TsType.IPV6_ADDR_RANGE };
    if (t.kind === 'dynamic') {
      if (dynamicAddress === undefined || dynamicAddress === '0.0.0.0') selectors.push({ ...base, startAddress: be32(0), endAddress: be32(0xffffffff) });
      else selectors.push({ ...base, startAddress: ipv4Bytes(dynamicAddress), endAddress: ipv4Bytes(dynamicAddress) });
      const d6 = opts.dynamicAddress6;
      if (d6 === '::') selectors.push({ ...base6, startAddress: bytes128(0n), endAddress: bytes128(ALL_ONES_128) });
      else if (d6 !== undefined) selectors.push({ ...base6, startAddress: parseIpv6Address(d6), endAddress: parseIpv6Address(d6) });
    } else if (t.family === 6) {
      if (!opts.ipv6) skipped.push(t.raw);
      else if (t.kind === 'subnet') {
        const host = ALL_ONES_128 >> BigInt(t.prefix!);
        const start = big128(parseIpv6Address(t.address!)) & (ALL_ONES_128 ^ host);
        selectors.push({ ...base6, startAddress: bytes128(start), endAddress: bytes128(start | host) });
      } else selectors.push({ ...base6, startAddress: parseIpv6Address(t.from!), endAddress: parseIpv6Address(t.to!) });
    } else if (t.family !== 4) {
      skipped.push(t.raw);
    } else if (t.kind === 'subnet') {
      const mask = t.prefix === 0 ? 0 : (0xffffffff << (32 - t.prefix!)) >>> 0;
      const start = (parseIpv4Address(t.address!) & mask) >>> 0;
      selectors.push({ ...base, startAddress: be32(start), endAddress: be32((start | ~mask) >>> 0) });
    } else {
      selectors.push({ ...base, startAddress: ipv4Bytes(t.from!), endAddress: ipv4Bytes(t.to!) });
    }
  }
  return { selectors, skipped };
}

/** The smallest list of CIDRs covering the IPv6 address range [from, to] (16-byte addresses). */
export function rangeToCidrs6(from: Uint8Array, to: Uint8Array): string[] {
  const out: string[] = [];
  let a = big128(from);
  const end = big128(to);
  while (a <= end) {
    let size = 128;
    while (size > 0) {
      const block = 1n << BigInt(129 - size);
      if (a % block !== 0n || a + block - 1n > end) break;
      size--;
    }
    out.push(`${ipv6ToString(bytes128(a))}/${size}`);
    a += 1n << BigInt(128 - size);
    if (out.length >= 256) break; // a pathological range: enough routes
  }
  return out;
}

/** The IPv6 address ranges of TS payload entries as CIDRs. */
export function selectorCidrs6(ts: readonly WireTs[]): string[] {
  const out: string[] = [];
  for (const t of ts) if (t.type === TsType.IPV6_ADDR_RANGE && t.startAddress.length === 16 && t.endAddress.length === 16) out.push(...rangeToCidrs6(t.startAddress, t.endAddress));
  return [...new Set(out)];
}

/** The smallest list of CIDRs covering the IPv4 address range [from, to]. */
export function rangeToCidrs(from: number, to: number): string[] {
  const out: string[] = [];
  let a = from;
  while (a <= to) {
    let size = 32;
    while (size > 0) {
      const block = 2 ** (33 - size);
      if (a % block !== 0 || a + block - 1 > to) break;
      size--;
    }
    out.push(`${dotted(a)}/${size}`);
    a += 2 ** (32 - size);
  }
  return out;
}

/** The IPv4 address ranges of TS payload entries as CIDRs (protocol and ports are not routes). */
export function selectorCidrs(ts: readonly WireTs[]): string[] {
  const out: string[] = [];
  for (const t of ts) if (t.type === TsType.IPV4_ADDR_RANGE) out.push(...rangeToCidrs(u32(t.startAddress), u32(t.endAddress)));
  return [...new Set(out)];
}

/** TS entries as text ('10.1.5.0/24', '10.1.6.1/32[udp/53]'). */
export function selectorsText(ts: readonly WireTs[]): string {
  return ts
    .map((t) => {
      const c = t.type === TsType.IPV4_ADDR_RANGE ? rangeToCidrs(u32(t.startAddress), u32(t.endAddress)).join('+') : rangeToCidrs6(t.startAddress, t.endAddress).join('+');
      const ports = t.startPort === 0 && t.endPort === 0xffff ? '' : t.startPort === t.endPort ? `${t.startPort}` : `${t.startPort}-${t.endPort}`;
      return t.ipProtocol || ports ? `${c}[${t.ipProtocol || 'any'}${ports ? `/${ports}` : ''}]` : c;
    })
    .join(', ');
}
