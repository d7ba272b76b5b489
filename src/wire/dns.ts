/**
 * DNS message codec (RFC 1035 §4, AAAA from RFC 3596, the EDNS0 OPT record from RFC 6891): header, questions,
 * resource records (A, AAAA, CNAME and SOA decoded; any other type kept as raw rdata), name compression on
 * input with loop protection, and builders for queries and (uncompressed) messages.
 *
 * Names are returned as dotted text without the trailing dot ("www.example.com", "" for the root); bytes that
 * are not printable ASCII, '.' and '\' inside a label are written as \DDD (as dig does). Comparing names is the
 * caller's business (case-insensitive, see dnsNameEquals).
 *
 * Loop protection: a compression pointer must point strictly before the start of the label run that led to it,
 * so every jump goes backwards and decoding always ends; the 255-byte name limit and a jump cap add to that.
 */
import { WireError } from '../errors.js';

export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
} as const;

export const DnsClass = { IN: 1 } as const;

export const DnsRcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export const DNS_HEADER_LENGTH = 12;
const MAX_NAME_WIRE = 255;
const MAX_JUMPS = 64;

export interface DnsHeader {
  id: number;
  /** true in responses. */
  qr: boolean;
  opcode: number;
  aa: boolean;
  /** Truncated: the answer did not fit; ask again over TCP. */
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

interface RecordBase {
  name: string;
  type: number;
  class: number;
  /** Seconds (the unsigned 32-bit field, top bit cleared as RFC 2181 §8 says). */
  ttl: number;
}

export type DnsRecord = RecordBase &
  (
    | { kind: 'A'; address: string }
    | { kind: 'AAAA'; address: string }
    | { kind: 'CNAME'; target: string }
    | { kind: 'SOA'; mname: string; rname: string; serial: number; minimum: number }
    | { kind: 'other'; rdata: Uint8Array }
  );

export interface DnsMessage {
  header: DnsHeader;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

// ---------------------------------------------------------------- decoding

/** Parse a whole DNS message. Throws WireError naming the field and offset. */
export function parseDnsMessage(b: Uint8Array): DnsMessage {
  const header = parseDnsHeader(b);
  let off = DNS_HEADER_LENGTH;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < header.qdcount; i++) {
    const n = readName(b, off, 'question.name');
    off = n.end;
    need(b, off, 4, 'question.type');
    questions.push({ name: n.name, type: u16(b, off), class: u16(b, off + 2) });
    off += 4;
  }
  const sections: DnsRecord[][] = [[], [], []];
  const counts = [header.ancount, header.nscount, header.arcount];
  const fields = ['answer', 'authority', 'additional'];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]!; i++) {
      const r = readRecord(b, off, fields[s]!);
      off = r.end;
      sections[s]!.push(r.record);
    }
  }
  return { header, questions, answers: sections[0]!, authorities: sections[1]!, additionals: sections[2]! };
}

export function parseDnsHeader(b: Uint8Array): DnsHeader {
  if (b.length < DNS_HEADER_LENGTH) throw new WireError(`DNS message too short: ${b.length} bytes`, 'length', 0);
  const f = u16(b, 2);
  return {
    id: u16(b, 0),
    qr: (f & 0x8000) !== 0,
    opcode: (f >> 11) & 0xf,
    aa: (f & 0x0400) !== 0,
    tc: (f & 0x0200) !== 0,
    rd: (f & 0x0100) !== 0,
    ra: (f & 0x0080) !== 0,
    ad: (f & 0x0020) !== 0,
    cd: (f & 0x0010) !== 0,
    rcode: f & 0xf,
    qdcount: u16(b, 4),
    ancount: u16(b, 6),
    nscount: u16(b, 8),
    arcount: u16(b, 10),
  };
}

function readRecord(b: Uint8Array, off: number, field: string): { record: DnsRecord; end: number } {
  const n = readName(b, off, `${field}.name`);
  let o = n.end;
  need(b, o, 10, `${field}.type`);
  const type = u16(b, o);
  const cls = u16(b, o + 2);
  const ttl = u32(b, o + 4) & 0x7fffffff;
  const rdlen = u16(b, o + 8);
  o += 10;
  need(b, o, rdlen, `${field}.rdata`);
  const end = o + rdlen;
  const base = { name: n.name, type, class: cls, ttl };
  switch (type) {
    case DnsType.A:
      if (rdlen !== 4) throw new WireError(`A record rdata of ${rdlen} bytes`, `${field}.rdlength`, o - 2);
      return { record: { ...base, kind: 'A', address: `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}` }, end };
    case DnsType.AAAA:
      if (rdlen !== 16) throw new WireError(`AAAA record rdata of ${rdlen} bytes`, `${field}.rdlength`, o - 2);
      return { record: { ...base, kind: 'AAAA', address: ipv6ToString(b.subarray(o, end)) }, end };
    case DnsType.CNAME: {
      const t = readName(b, o, `${field}.cname`, end);
      if (t.end !== end) throw new WireError('CNAME rdata length does not match its name', `${field}.rdlength`, o - 2);
      return { record: { ...base, kind: 'CNAME', target: t.name }, end };
    }
    case DnsType.SOA: {
      const m = readName(b, o, `${field}.soa.mname`, end);
      const r = readName(b, m.end, `${field}.soa.rname`, end);
      if (r.end + 20 !== end) throw new WireError('SOA rdata length does not match', `${field}.rdlength`, o - 2);
      return { record: { ...base, kind: 'SOA', mname: m.name, rname: r.name, serial: u32(b, r.end), minimum: u32(b, r.end + 16) }, end };
    }
    default:
      return { record: { ...base, kind: 'other', rdata: b.subarray(o, end) }, end };
  }
}

/**
 * Read a (possibly compressed) name at b[off]. `limit` bounds where the uncompressed part may run (the end of
 * the rdata it sits in). Returns the text and the offset just after the name's bytes at `off`.
 */
export function readName(b: Uint8Array, off: number, field = 'name', limit = b.length): { name: string; end: number } {
  let pos = off;
  let end = -1;
  let runStart = off;
  let jumps = 0;
  let wire = 1;
  let name = '';
  for (;;) {
    if (pos >= (end < 0 ? limit : b.length)) throw new WireError('DNS name runs past the end', field, pos);
    const l = b[pos]!;
    if (l === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = l & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= (end < 0 ? limit : b.length)) throw new WireError('DNS compression pointer cut short', field, pos);
      const ptr = ((l & 0x3f) << 8) | b[pos + 1]!;
      if (end < 0) end = pos + 2;
      if (ptr >= runStart) throw new WireError(`DNS compression pointer to ${ptr} does not point backwards`, field, pos);
      if (++jumps > MAX_JUMPS) throw new WireError('DNS name has too many compression pointers', field, pos);
      pos = ptr;
      runStart = ptr;
      continue;
    }
    if (kind !== 0) throw new WireError(`DNS label type 0x${kind.toString(16)} not supported`, field, pos);
    const labelEnd = pos + 1 + l;
    if (labelEnd > (end < 0 ? limit : b.length)) throw new WireError('DNS label runs past the end', field, pos);
    wire += l + 1;
    if (wire > MAX_NAME_WIRE) throw new WireError('DNS name longer than 255 bytes', field, pos);
    if (name.length) name += '.';
    for (let i = pos + 1; i < labelEnd; i++) {
      const c = b[i]!;
      if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) name += String.fromCharCode(c);
      else name += '\\' + String(c).padStart(3, '0');
    }
    pos = labelEnd;
  }
  return { name, end };
}

// ---------------------------------------------------------------- encoding

export interface DnsQueryInit {
  id: number;
  name: string;
  /** Default A. */
  type?: number;
  /** Recursion desired (default true). */
  rd?: boolean;
  /** Add an EDNS0 OPT record advertising this UDP payload size (e.g. 1232); none by default. */
  ednsUdpSize?: number;
}

/** A standard query with one question (class IN). */
export function buildDnsQuery(q: DnsQueryInit): Uint8Array {
  return buildDnsMessage({
    header: { id: q.id, rd: q.rd ?? true },
    questions: [{ name: q.name, type: q.type ?? DnsType.A, class: DnsClass.IN }],
    additionals: q.ednsUdpSize ? [{ name: '', type: DnsType.OPT, class: q.ednsUdpSize, ttl: 0, kind: 'other', rdata: new Uint8Array(0) }] : [],
  });
}

export interface DnsMessageInit {
  header: Partial<Omit<DnsHeader, 'qdcount' | 'ancount' | 'nscount' | 'arcount'>> & { id: number };
  questions?: DnsQuestion[];
  answers?: DnsRecord[];
  authorities?: DnsRecord[];
  additionals?: DnsRecord[];
}

/** Encode a message (names uncompressed). Throws WireError for a name that cannot be encoded. */
export function buildDnsMessage(m: DnsMessageInit): Uint8Array {
  const parts: Uint8Array[] = [];
  const h = m.header;
  const qs = m.questions ?? [];
  const an = m.answers ?? [];
  const ns = m.authorities ?? [];
  const ar = m.additionals ?? [];
  const hdr = new Uint8Array(DNS_HEADER_LENGTH);
  const flags =
    (h.qr ? 0x8000 : 0) |
    (((h.opcode ?? 0) & 0xf) << 11) |
    (h.aa ? 0x0400 : 0) |
    (h.tc ? 0x0200 : 0) |
    (h.rd ? 0x0100 : 0) |
    (h.ra ? 0x0080 : 0) |
    (h.ad ? 0x0020 : 0) |
    (h.cd ? 0x0010 : 0) |
    ((h.rcode ?? 0) & 0xf);
  put16(hdr, 0, h.id);
  put16(hdr, 2, flags);
  put16(hdr, 4, qs.length);
  put16(hdr, 6, an.length);
  put16(hdr, 8, ns.length);
  put16(hdr, 10, ar.length);
  parts.push(hdr);
  for (const q of qs) {
    parts.push(encodeName(q.name));
    const t = new Uint8Array(4);
    put16(t, 0, q.type);
    put16(t, 2, q.class);
    parts.push(t);
  }
  for (const r of [...an, ...ns, ...ar]) {
    parts.push(encodeName(r.name));
    const rdata = encodeRdata(r);
    const t = new Uint8Array(10);
    put16(t, 0, r.type);
    put16(t, 2, r.class);
    put32(t, 4, r.ttl);
    put16(t, 8, rdata.length);
    parts.push(t, rdata);
  }
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function encodeRdata(r: DnsRecord): Uint8Array {
  switch (r.kind) {
    case 'A': {
      const parts = r.address.split('.');
      const v = parts.map(Number);
      if (parts.length !== 4 || v.some((x) => !Number.isInteger(x) || x < 0 || x > 255))
        throw new WireError(`not an IPv4 address: ${r.address}`, 'rdata', 0);
      return Uint8Array.from(v);
    }
    case 'AAAA':
      return ipv6FromString(r.address);
    case 'CNAME':
      return encodeName(r.target);
    case 'SOA': {
      const a = encodeName(r.mname);
      const b = encodeName(r.rname);
      const out = new Uint8Array(a.length + b.length + 20);
      out.set(a, 0);
      out.set(b, a.length);
      put32(out, a.length + b.length, r.serial);
      put32(out, a.length + b.length + 16, r.minimum);
      return out;
    }
    default:
      return r.rdata;
  }
}

/**
 * Encode a dotted name ("www.example.com", a trailing dot allowed; "" or "." is the root). Labels are 1-63
 * bytes of printable ASCII; the whole name at most 255 bytes. Throws WireError (field "name").
 */
export function encodeName(name: string): Uint8Array {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n === '') return new Uint8Array([0]);
  const labels = n.split('.');
  let len = 1;
  for (const l of labels) len += l.length + 1;
  if (len > MAX_NAME_WIRE) throw new WireError(`DNS name longer than 255 bytes: ${name.slice(0, 40)}...`, 'name', 0);
  const out = new Uint8Array(len);
  let o = 0;
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) throw new WireError(`DNS label of ${l.length} bytes in ${JSON.stringify(name)}`, 'name', o);
    out[o++] = l.length;
    for (let i = 0; i < l.length; i++) {
      const c = l.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f) throw new WireError(`DNS name ${JSON.stringify(name)} has a character that is not printable ASCII`, 'name', o);
      out[o++] = c;
    }
  }
  out[o] = 0;
  return out;
}

/** Case-insensitive comparison of two names (ASCII case folding, RFC 4343), ignoring a trailing dot. */
export function dnsNameEquals(a: string, b: string): boolean {
  const x = a.endsWith('.') ? a.slice(0, -1) : a;
  const y = b.endsWith('.') ? b.slice(0, -1) : b;
  return x.length === y.length && x.toLowerCase() === y.toLowerCase();
}

/** Prefix a message with its 2-byte length, for DNS over TCP (RFC 1035 §4.2.2). */
export function frameDnsTcp(msg: Uint8Array): Uint8Array {
  if (msg.length > 0xffff) throw new WireError(`DNS message of ${msg.length} bytes is too long for TCP framing`, 'length', 0);
  const out = new Uint8Array(2 + msg.length);
  put16(out, 0, msg.length);
  out.set(msg, 2);
  return out;
}

// ---------------------------------------------------------------- helpers

function need(b: Uint8Array, off: number, n: number, field: string): void {
  if (off + n > b.length) throw new WireError(`DNS message ends inside ${field}`, field, Math.min(off, b.length));
}
function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** RFC 5952 text form of 16 bytes. */
export function ipv6ToString(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

function ipv6FromString(s: string): Uint8Array {
  const bad = () => new WireError(`not an IPv6 address: ${s}`, 'rdata', 0);
  const halves = s.split('::');
  if (halves.length > 2) throw bad();
  const parse = (p: string) => (p === '' ? [] : p.split(':').map((x) => (/^[0-9a-fA-F]{1,4}$/.test(x) ? parseInt(x, 16) : NaN)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...tail];
  if (groups.length !== 8 || groups.some((x) => Number.isNaN(x)) || (halves.length === 2 && fill < 1)) throw bad();
  const out = new Uint8Array(16);
  groups.forEach((x, i) => put16(out, i * 2, x));
  return out;
}
