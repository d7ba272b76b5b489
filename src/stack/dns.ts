/**
 * A stub resolver that asks DNS servers through the tunnel (over our UdpStack), like the libc resolver would:
 *
 * - servers: the ones given (--dns) or else the ones the VPN pushed (IPv4 ones, then the pushed IPv6 ones);
 *   an IPv6 server is asked over UDP over IPv6 and only while the tunnel has an IPv6 address;
 * - search domains (given, or pushed) applied with resolv.conf's ndots rule; a trailing dot means "absolute";
 * - A lookups, following CNAME chains inside an answer and across further queries (at most 8 hops);
 * - per query a fresh random source port and a random id; answers must come from the server's address and
 *   port 53 and repeat our question, anything else is ignored and counted;
 * - timeouts and retries: `attempts` rounds over all servers, `timeoutMs` per try; a port unreachable or a
 *   SERVFAIL/REFUSED moves on to the next server at once;
 * - truncated answers: retried over TCP through the `tcp` hook when one is given (VpnTunnel wires it to its
 *   TcpStack, see dns-tcp.ts); without it the truncated answer is used if it holds addresses, else DNS_ERROR;
 * - a bounded cache honouring TTLs (capped), negative answers cached per RFC 2308 from the SOA, concurrent
 *   lookups of one name share one query;
 * - IPv4 literals come back as they are and `localhost` / `*.localhost` are 127.0.0.1 (RFC 6761): never sent;
 * - no silent fallback to the host's resolver: when there is no server, `fallback` is used only if given
 *   (and said once in the log), otherwise DNS_ERROR.
 *
 * Errors are DnsError (a VpnError) with code DNS_NXDOMAIN, DNS_NODATA, DNS_TIMEOUT (naming the servers tried)
 * or DNS_ERROR.
 */
import { randomInt } from 'node:crypto';
import { VpnError, type ErrorCode } from '../errors.js';
import type { LinkConfig } from '../link/link.js';
import type { Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { DnsClass, DnsRcode, DnsType, buildDnsQuery, dnsNameEquals, parseDnsMessage, type DnsMessage } from '../wire/dns.js';
import { parseIpv4Address } from '../wire/ipv4.js';
import { isIpv6Address, ipv6ToString, parseIpv6Address } from '../wire/ipv6.js';
import type { UdpStack } from './udp.js';

/** Sends one DNS query over TCP (the 2-byte framing is the hook's job) and returns the response message. */
export type DnsTcpQuery = (server: string, port: number, query: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;

export interface ResolverOptions {
  clock: Clock;
  logger?: Logger;
  /** Servers to use instead of the pushed ones (dotted quads). */
  servers?: string[];
  /** Search domains to use instead of the pushed ones. */
  searchDomains?: string[];
  /** Server port (default 53). */
  port?: number;
  /** Per try (default 2000 ms). */
  timeoutMs?: number;
  /** Rounds over all servers (default 2). */
  attempts?: number;
  /** Names with fewer dots than this try the search list first (default 1). */
  ndots?: number;
  /** Cache entries (default 512); 0 disables the cache. */
  cacheEntries?: number;
  /** Upper bound on a positive TTL (default 3600 s) and on a negative one (default 300 s). */
  maxTtlSec?: number;
  maxNegativeTtlSec?: number;
  /** EDNS0 UDP payload size to advertise (default 1232; 0 = no EDNS, answers stay within 512 bytes). */
  ednsUdpSize?: number;
  /** DNS over TCP for truncated answers. */
  tcp?: DnsTcpQuery;
  /** Used when there is no DNS server at all (e.g. the host resolver, when the user chose so). */
  fallback?: (name: string) => Promise<string[]>;
}

export interface LookupResult {
  /** The name whose addresses these are, after search domains ("host.lab.test"). */
  name: string;
  /** The end of the CNAME chain (equal to name without CNAMEs). */
  canonicalName: string;
  addresses: string[];
  /** Seconds the answer stays valid (remaining, when from the cache). */
  ttl: number;
  fromCache: boolean;
  /** The server that answered, when one did. */
  server?: string;
}

export interface ResolverStats {
  lookups: number;
  cacheHits: number;
  queriesSent: number;
  responses: number;
  timeouts: number;
  /** Responses not matching an outstanding query (address, port, id, question) or not parsing. */
  mismatched: number;
  truncated: number;
  tcpFallbacks: number;
  serverErrors: number;
  unreachable: number;
}

export class DnsError extends VpnError {
  constructor(
    code: ErrorCode,
    message: string,
    /** The name asked for. */
    readonly query: string,
    /** The servers tried ("10.8.0.1:53"). */
    readonly servers: string[] = [],
    /** The DNS response code, if a server gave one. */
    readonly rcode?: number,
  ) {
    super(code, message);
    this.name = 'DnsError';
  }
}

type Outcome =
  | { kind: 'answer'; msg: DnsMessage; server: string }
  | { kind: 'timeout' }
  | { kind: 'unreachable'; message: string }
  | { kind: 'bad'; message: string };

type CacheEntry =
  | { ok: true; addresses: string[]; canonical: string; expiresAt: number; server?: string }
  | { ok: false; code: 'DNS_NXDOMAIN' | 'DNS_NODATA'; canonical: string; expiresAt: number };

const MAX_CNAME_HOPS = 8;
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

export class Resolver {
  readonly stats: ResolverStats = {
    lookups: 0,
    cacheHits: 0,
    queriesSent: 0,
    responses: 0,
    timeouts: 0,
    mismatched: 0,
    truncated: 0,
    tcpFallbacks: 0,
    serverErrors: 0,
    unreachable: 0,
  };
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<CacheEntry>>();
  private readonly opts: ResolverOptions;
  private saidNoServers = false;
  private closed = false;

  constructor(
    private readonly udp: UdpStack,
    private readonly config: () => LinkConfig | undefined,
    opts: ResolverOptions,
  ) {
    this.opts = opts;
    this.clock = opts.clock;
    this.log = (opts.logger ?? silentLogger).child('dns');
  }

  /** The IPv4 addresses of name. Rejects with DnsError. */
  async resolve(name: string): Promise<string[]> {
    return (await this.lookup(name)).addresses;
  }

  /** The IPv6 addresses of name (AAAA records). Rejects with DnsError (DNS_NODATA when it has none). */
  async resolve6(name: string): Promise<string[]> {
    return (await this.lookup(name, 'AAAA')).addresses;
  }

  /** Resolve with details (the name that matched, CNAME target, TTL, cache, server); A records unless asked for AAAA. */
  async lookup(input: string, type: 'A' | 'AAAA' = 'A'): Promise<LookupResult> {
    this.stats.lookups++;
    const name = input.trim();
    if (isIpv4Literal(name)) return { name, canonicalName: name, addresses: [name], ttl: 0, fromCache: false };
    const bare = name.endsWith('.') ? name.slice(0, -1) : name;
    const lower = bare.toLowerCase();
    if (lower === 'localhost' || lower.endsWith('.localhost'))
      return { name: bare, canonicalName: bare, addresses: ['127.0.0.1'], ttl: 0, fromCache: false };
    if (bare === '' || name.includes(':') || name.includes('..') || /\s/.test(name))
      throw new DnsError('DNS_ERROR', `${JSON.stringify(input)} is not a host name`, input);
    if (this.closed) throw new DnsError('DNS_ERROR', 'the resolver is closed', name);

    const servers = this.servers();
    if (servers.length === 0) {
      if (this.opts.fallback) {
        if (!this.saidNoServers) this.log.warn('the VPN pushed no DNS server and none was given: using the fallback resolver');
        this.saidNoServers = true;
        const addresses = await this.opts.fallback(bare);
        return { name: bare, canonicalName: bare, addresses, ttl: 0, fromCache: false };
      }
      if (!this.saidNoServers) this.log.warn('the VPN pushed no DNS server and none was given (use --dns)');
      this.saidNoServers = true;
      throw new DnsError('DNS_ERROR', `cannot resolve ${bare}: the VPN pushed no DNS server and none was given (--dns ADDRESS)`, bare);
    }

    const candidates = this.candidates(name);
    let negative: { code: 'DNS_NXDOMAIN' | 'DNS_NODATA' } | undefined;
    for (const fqdn of candidates) {
      const e = await this.resolveFqdn(fqdn, servers, type);
      if (e.entry.ok) {
        return {
          name: fqdn,
          canonicalName: e.entry.canonical,
          addresses: e.entry.addresses.slice(),
          ttl: Math.max(0, Math.ceil((e.entry.expiresAt - this.clock.now()) / 1000)),
          fromCache: e.fromCache,
          server: e.entry.server,
        };
      }
      if (!negative || e.entry.code === 'DNS_NODATA') negative = { code: e.entry.code };
    }
    const tried = candidates.join(', ');
    if (negative?.code === 'DNS_NODATA')
      throw new DnsError('DNS_NODATA', `${bare} has no ${type === 'AAAA' ? 'IPv6' : 'IPv4'} address (tried ${tried})`, bare, servers.map((s) => this.label(s)));
    throw new DnsError('DNS_NXDOMAIN', `${bare} does not exist (NXDOMAIN; tried ${tried})`, bare, servers.map((s) => this.label(s)), DnsRcode.NXDOMAIN);
  }

  clearCache(): void {
    this.cache.clear();
  }

  /** Cached names (for tests and stats). */
  get cacheSize(): number {
    return this.cache.size;
  }

  close(): void {
    this.closed = true;
    this.cache.clear();
  }

  /** The servers in use now (dotted quads, and IPv6 literals in canonical text while the tunnel has IPv6). */
  servers(): string[] {
    const c = this.config();
    const list = this.opts.servers && this.opts.servers.length ? this.opts.servers : [...(c?.dns ?? []), ...(c?.dns6 ?? [])];
    const v6 = this.udp.localAddress6() !== undefined;
    const out: string[] = [];
    for (const s of list) {
      if (isIpv4Literal(s)) out.push(s);
      else if (v6 && isIpv6Address(s)) out.push(ipv6ToString(parseIpv6Address(s)));
    }
    return out;
  }

  searchDomains(): string[] {
    const list = this.opts.searchDomains ?? this.config()?.domains ?? [];
    return list.map((d) => (d.endsWith('.') ? d.slice(0, -1) : d)).filter((d) => d.length > 0);
  }

  // ---- internals ----

  private candidates(name: string): string[] {
    if (name.endsWith('.')) return [name.slice(0, -1)];
    const dots = name.split('.').length - 1;
    const searched = this.searchDomains().map((d) => `${name}.${d}`);
    return dots >= (this.opts.ndots ?? 1) ? [name, ...searched] : [...searched, name];
  }

  private async resolveFqdn(fqdn: string, servers: string[], type: 'A' | 'AAAA'): Promise<{ entry: CacheEntry; fromCache: boolean }> {
    const key = type === 'A' ? fqdn.toLowerCase() : `aaaa ${fqdn.toLowerCase()}`;
    const hit = this.cache.get(key);
    if (hit) {
      if (hit.expiresAt > this.clock.now()) {
        this.cache.delete(key);
        this.cache.set(key, hit); // LRU order
        this.stats.cacheHits++;
        return { entry: hit, fromCache: true };
      }
      this.cache.delete(key);
    }
    let p = this.inflight.get(key);
    if (!p) {
      p = this.chase(fqdn, servers, type).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return { entry: await p, fromCache: false };
  }

  /** Query fqdn, following CNAMEs; returns a (cached) positive or negative entry, throws DnsError otherwise. */
  private async chase(fqdn: string, servers: string[], type: 'A' | 'AAAA'): Promise<CacheEntry> {
    let qname = fqdn;
    let ttl = this.opts.maxTtlSec ?? 3600;
    let hops = 0;
    for (;;) {
      const { msg, server } = await this.exchange(qname, servers, fqdn, type);
      const rcode = msg.header.rcode;
      if (rcode === DnsRcode.NXDOMAIN || rcode === DnsRcode.NOERROR) {
        // Walk the chain inside this answer.
        let cur = qname;
        const addresses: string[] = [];
        for (let guard = 0; guard <= MAX_CNAME_HOPS; guard++) {
          for (const r of msg.answers) if ((r.kind === 'A' || r.kind === 'AAAA') && r.kind === type && r.class === DnsClass.IN && dnsNameEquals(r.name, cur)) {
            addresses.push(r.address);
            ttl = Math.min(ttl, r.ttl);
          }
          if (addresses.length) break;
          const c = msg.answers.find((r) => r.kind === 'CNAME' && dnsNameEquals(r.name, cur));
          if (!c || c.kind !== 'CNAME') break;
          ttl = Math.min(ttl, c.ttl);
          cur = c.target;
          if (++hops > MAX_CNAME_HOPS) throw new DnsError('DNS_ERROR', `${fqdn}: CNAME chain longer than ${MAX_CNAME_HOPS}`, fqdn);
        }
        if (addresses.length) {
          // A truncated answer (no TCP to complete it) is used but not cached.
          return this.store(key(fqdn, type), { ok: true, addresses, canonical: cur, expiresAt: this.clock.now() + ttl * 1000, server }, msg.header.tc ? 0 : ttl);
        }
        if (rcode === DnsRcode.NOERROR && !dnsNameEquals(cur, qname)) {
          qname = cur; // the chain leaves this answer: ask for its end
          continue;
        }
        const neg = this.negativeTtl(msg);
        const code = rcode === DnsRcode.NXDOMAIN ? 'DNS_NXDOMAIN' : 'DNS_NODATA';
        return this.store(key(fqdn, type), { ok: false, code, canonical: cur, expiresAt: this.clock.now() + neg * 1000 }, neg);
      }
      throw new DnsError('DNS_ERROR', `${fqdn}: server ${this.label(server)} answered ${RCODE_NAMES[rcode] ?? `rcode ${rcode}`}`, fqdn, [this.label(server)], rcode);
    }
  }

  private negativeTtl(msg: DnsMessage): number {
    const soa = msg.authorities.find((r) => r.kind === 'SOA');
    if (!soa || soa.kind !== 'SOA') return 0;
    return Math.min(soa.ttl, soa.minimum, this.opts.maxNegativeTtlSec ?? 300);
  }

  private store(key: string, e: CacheEntry, ttl: number): CacheEntry {
    const max = this.opts.cacheEntries ?? 512;
    if (ttl > 0 && max > 0) {
      const k = key.toLowerCase();
      this.cache.delete(k);
      while (this.cache.size >= max) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(k, e);
    }
    return e;
  }

  /** Ask the servers in turn until one gives a usable answer. */
  private async exchange(qname: string, servers: string[], forName: string, type: 'A' | 'AAAA'): Promise<{ msg: DnsMessage; server: string }> {
    const attempts = Math.max(1, this.opts.attempts ?? 2);
    const timeoutMs = this.opts.timeoutMs ?? 2000;
    const dead = new Set<string>();
    const problems: string[] = [];
    let lastRcode: number | undefined;
    let allTimeouts = true;
    for (let round = 0; round < attempts; round++) {
      for (const server of servers) {
        if (dead.has(server)) continue;
        if (this.closed) throw new DnsError('DNS_ERROR', 'the resolver is closed', forName);
        const o = await this.queryUdp(server, qname, timeoutMs, type);
        if (o.kind === 'timeout') {
          this.stats.timeouts++;
          continue;
        }
        allTimeouts = false;
        if (o.kind === 'unreachable' || o.kind === 'bad') {
          dead.add(server);
          problems.push(`${this.label(server)}: ${o.message}`);
          continue;
        }
        let msg = o.msg;
        if (msg.header.tc) {
          this.stats.truncated++;
          if (this.opts.tcp) {
            try {
              this.stats.tcpFallbacks++;
              const bytes = await this.opts.tcp(server, this.port(), this.query(qname, 0, false, type), timeoutMs);
              msg = parseDnsMessage(bytes);
            } catch (e) {
              problems.push(`${this.label(server)}: truncated, and TCP failed: ${e instanceof Error ? e.message : String(e)}`);
              continue;
            }
          } else if (!msg.answers.some((r) => r.kind === type || r.kind === 'CNAME')) {
            problems.push(`${this.label(server)}: answer truncated and no TCP fallback`);
            dead.add(server);
            continue;
          }
        }
        const rc = msg.header.rcode;
        if (rc !== DnsRcode.NOERROR && rc !== DnsRcode.NXDOMAIN) {
          this.stats.serverErrors++;
          lastRcode = rc;
          dead.add(server);
          problems.push(`${this.label(server)}: ${RCODE_NAMES[rc] ?? `rcode ${rc}`}`);
          continue;
        }
        return { msg, server };
      }
    }
    const labels = servers.map((s) => this.label(s));
    if (allTimeouts)
      throw new DnsError(
        'DNS_TIMEOUT',
        `no answer for ${qname} from ${labels.join(', ')} (${attempts} ${attempts === 1 ? 'try' : 'tries'} of ${timeoutMs} ms each)`,
        forName,
        labels,
      );
    throw new DnsError('DNS_ERROR', `cannot resolve ${qname}: ${problems.join('; ') || 'no server answered'}`, forName, labels, lastRcode);
  }

  private port(): number {
    return this.opts.port ?? 53;
  }

  private label(server: string): string {
    return server.includes(':') ? `[${server}]:${this.port()}` : `${server}:${this.port()}`;
  }

  private query(qname: string, id: number, edns: boolean, type: 'A' | 'AAAA'): Uint8Array {
    const size = this.opts.ednsUdpSize ?? 1232;
    return buildDnsQuery({ id, name: qname, type: DnsType[type], ednsUdpSize: edns && size > 0 ? size : undefined });
  }

  /** One UDP try: a fresh socket (random port) and id; resolves with the matching answer or why there is none. */
  private queryUdp(server: string, qname: string, timeoutMs: number, type: 'A' | 'AAAA'): Promise<Outcome> {
    const id = randomInt(0, 0x10000);
    let bytes: Uint8Array;
    try {
      bytes = this.query(qname, id, true, type);
    } catch (e) {
      return Promise.reject(new DnsError('DNS_ERROR', `${JSON.stringify(qname)} is not a valid DNS name: ${(e as Error).message}`, qname));
    }
    const sock = this.udp.bind();
    const port = this.port();
    const serverAddr = server.includes(':') ? server : parseIpv4Address(server);
    return new Promise<Outcome>((resolve, reject) => {
      let done = false;
      const finish = (o: Outcome) => {
        if (done) return;
        done = true;
        this.clock.clearTimer(timer);
        sock.close();
        resolve(o);
      };
      const timer = this.clock.setTimer(() => finish({ kind: 'timeout' }), timeoutMs);
      sock.on('message', (data, rinfo) => {
        if (rinfo.address !== server || rinfo.port !== port) {
          this.stats.mismatched++;
          return;
        }
        let msg: DnsMessage;
        try {
          msg = parseDnsMessage(data);
        } catch {
          this.stats.mismatched++;
          return;
        }
        const q = msg.questions[0];
        if (!msg.header.qr || msg.header.id !== id || msg.questions.length !== 1 || !q || !dnsNameEquals(q.name, qname) || q.type !== DnsType[type]) {
          // A FORMERR may come without the question; accept it when the id matches.
          if (!(msg.header.qr && msg.header.id === id && msg.questions.length === 0 && msg.header.rcode !== DnsRcode.NOERROR)) {
            this.stats.mismatched++;
            return;
          }
        }
        this.stats.responses++;
        finish({ kind: 'answer', msg, server });
      });
      sock.on('error', (err) => {
        if (err.address !== server || err.port !== port) return;
        this.stats.unreachable++;
        finish({ kind: 'unreachable', message: err.message });
      });
      try {
        sock.send(bytes, port, serverAddr);
        this.stats.queriesSent++;
      } catch (e) {
        done = true;
        this.clock.clearTimer(timer);
        sock.close();
        reject(new DnsError('DNS_ERROR', `cannot send a DNS query to ${this.label(server)}: ${(e as Error).message}`, qname, [this.label(server)]));
      }
    });
  }
}

/** Cache key: A answers under the bare name (as before), AAAA answers apart. */
function key(fqdn: string, type: 'A' | 'AAAA'): string {
  return type === 'A' ? fqdn : `aaaa ${fqdn}`;
}

function isIpv4Literal(s: string): boolean {
  try {
    parseIpv4Address(s);
    return true;
  } catch {
    return false;
  }
}
