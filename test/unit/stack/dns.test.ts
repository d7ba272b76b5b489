import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLinkPair, type Link } from '../../../src/link/link.js';
import { DnsError, Resolver, type ResolverOptions } from '../../../src/stack/dns.js';
import { IpLayer } from '../../../src/stack/ip.js';
import { UdpStack } from '../../../src/stack/udp.js';
import { ManualClock } from '../../../src/util/clock.js';
import { DnsRcode, DnsType, buildDnsMessage, parseDnsMessage, type DnsMessage, type DnsRecord } from '../../../src/wire/dns.js';
import { buildIcmp } from '../../../src/wire/icmp.js';
import { buildIpv4, ipv4ToString, parseIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';
import { buildUdp, parseUdp } from '../../../src/wire/udp.js';
import { US, linkConfig, settle } from './helpers.js';

type Behaviour = 'answer' | 'silent' | 'servfail' | 'unreachable' | 'truncate';
interface ZoneEntry {
  a?: string[];
  aaaa?: string[];
  cname?: string;
  /** Answer with the CNAME only (the chain continues in another query). */
  cnameOnly?: boolean;
  ttl?: number;
}

/** DNS servers on the far side of a link pair, any number of addresses, each with a behaviour. */
class FakeDns {
  readonly queries: Array<{ server: string; msg: DnsMessage; srcPort: number }> = [];
  readonly behaviour = new Map<string, Behaviour>();
  readonly zone = new Map<string, ZoneEntry>();
  constructor(private readonly link: Link) {
    link.onReceive((p) => this.onPacket(p));
  }
  private onPacket(p: Uint8Array): void {
    const ip = parseIpv4(p);
    if (ip.protocol !== 17) return;
    const u = parseUdp(ip.payload, { src: ip.src, dst: ip.dst });
    if (u.dstPort !== 53) return;
    const server = ipv4ToString(ip.dst);
    const msg = parseDnsMessage(u.payload);
    this.queries.push({ server, msg, srcPort: u.srcPort });
    const b = this.behaviour.get(server) ?? 'silent';
    if (b === 'silent') return;
    if (b === 'unreachable') {
      const icmp = buildIcmp({ kind: 'dest-unreachable', code: 3, quoted: p.subarray(0, ip.headerLength + 8) });
      this.link.send(buildIpv4({ src: ip.dst, dst: ip.src, protocol: 1 }, icmp));
      return;
    }
    const q = msg.questions[0]!;
    const reply = (over: Partial<DnsMessage['header']>, answers: DnsRecord[] = [], authorities: DnsRecord[] = []) => {
      const bytes = buildDnsMessage({
        header: { id: msg.header.id, qr: true, rd: true, ra: true, ...over },
        questions: msg.questions,
        answers,
        authorities,
      });
      const udp = buildUdp({ srcPort: 53, dstPort: u.srcPort, payload: bytes }, { src: ip.dst, dst: ip.src });
      this.link.send(buildIpv4({ src: ip.dst, dst: ip.src, protocol: 17 }, udp));
    };
    if (b === 'servfail') return reply({ rcode: DnsRcode.SERVFAIL });
    if (b === 'truncate') {
      const e = this.zone.get(q.name.toLowerCase());
      return reply({ tc: true }, (e?.a ?? []).map((a): DnsRecord => ({ name: q.name, type: 1, class: 1, ttl: 60, kind: 'A', address: a })));
    }
    const answers: DnsRecord[] = [];
    let name = q.name.toLowerCase();
    for (let hop = 0; hop < 10; hop++) {
      const e = this.zone.get(name);
      if (!e) {
        if (hop === 0) {
          const soa: DnsRecord = { name: 'lab.test', type: 6, class: 1, ttl: 600, kind: 'SOA', mname: 'ns.lab.test', rname: 'root.lab.test', serial: 1, minimum: 60 };
          return reply({ rcode: DnsRcode.NXDOMAIN, aa: true }, [], [soa]);
        }
        break;
      }
      if (e.cname) {
        answers.push({ name, type: DnsType.CNAME, class: 1, ttl: e.ttl ?? 300, kind: 'CNAME', target: e.cname });
        if (e.cnameOnly) break;
        name = e.cname;
        continue;
      }
      if (q.type === DnsType.AAAA) for (const a of e.aaaa ?? []) answers.push({ name, type: DnsType.AAAA, class: 1, ttl: e.ttl ?? 300, kind: 'AAAA', address: a });
      else for (const a of e.a ?? []) answers.push({ name, type: DnsType.A, class: 1, ttl: e.ttl ?? 300, kind: 'A', address: a });
      break;
    }
    reply({ aa: true }, answers);
  }
}

function setup(opts: Partial<ResolverOptions> = {}, cfg: { dns?: string[]; domains?: string[] } = {}) {
  const clock = new ManualClock();
  const [a, b] = createLinkPair(linkConfig(US, { dns: cfg.dns ?? ['10.8.0.1'], domains: cfg.domains ?? [] }), linkConfig('10.8.0.1'));
  const ip = new IpLayer(a, { clock });
  const udp = new UdpStack(ip);
  ip.registerProtocol(17, udp);
  const resolver = new Resolver(udp, () => a.config, { clock, ...opts });
  const dns = new FakeDns(b);
  dns.behaviour.set('10.8.0.1', 'answer');
  dns.zone.set('web.lab.test', { a: ['10.8.0.1'], ttl: 120 });
  dns.zone.set('www.lab.test', { cname: 'web.lab.test', ttl: 300 });
  dns.zone.set('multi.lab.test', { a: ['10.8.0.21', '10.8.0.22'] });
  dns.zone.set('empty.lab.test', {});
  dns.zone.set('v6.lab.test', { aaaa: ['fd00:102:2::2'], ttl: 60 });
  dns.zone.set('dual.lab.test', { a: ['10.8.0.30'], aaaa: ['2001:db8::30'], ttl: 60 });
  return { clock, resolver, dns, udp, ip };
}

/** Let the event loop and the manual clock run (in steps) until p settles. */
async function drive<T>(p: Promise<T>, clock: ManualClock, stepMs = 100, maxMs = 60_000): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let t = 0; t <= maxMs && !done; t += stepMs) {
    await settle();
    if (!done) clock.advance(stepMs);
  }
  return p;
}

const rejectsWith = async (p: Promise<unknown>, code: string, re?: RegExp): Promise<DnsError> => {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DnsError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail('did not reject');
};

test('A lookup over UDP through the link: query with RD and EDNS from a random port, answer with TTL', async () => {
  const { clock, resolver, dns } = setup();
  const r = await drive(resolver.lookup('web.lab.test'), clock);
  assert.deepEqual(r.addresses, ['10.8.0.1']);
  assert.equal(r.ttl, 120);
  assert.equal(r.fromCache, false);
  assert.equal(r.server, '10.8.0.1');
  assert.equal(dns.queries.length, 1);
  const q = dns.queries[0]!;
  assert.equal(q.msg.header.rd, true);
  assert.equal(q.msg.questions[0]!.type, DnsType.A);
  assert.equal(q.msg.additionals[0]!.type, DnsType.OPT);
  assert.ok(q.srcPort >= 49152);
  assert.deepEqual(await drive(resolver.resolve('multi.lab.test'), clock), ['10.8.0.21', '10.8.0.22']);
  assert.notEqual(dns.queries[1]!.msg.header.id === q.msg.header.id && dns.queries[1]!.srcPort === q.srcPort, true);
});

test('CNAME chains: inside one answer, and continued by a second query', async () => {
  const { clock, resolver, dns } = setup();
  const r = await drive(resolver.lookup('WWW.lab.test'), clock);
  assert.deepEqual(r.addresses, ['10.8.0.1']);
  assert.equal(r.canonicalName, 'web.lab.test');
  assert.equal(r.ttl, 120, 'the smallest TTL along the chain');
  assert.equal(dns.queries.length, 1);
  dns.zone.set('alias.lab.test', { cname: 'www.lab.test', cnameOnly: true, ttl: 30 });
  const r2 = await drive(resolver.lookup('alias.lab.test'), clock);
  assert.deepEqual(r2.addresses, ['10.8.0.1']);
  assert.equal(r2.ttl, 30);
  assert.deepEqual(
    dns.queries.slice(1).map((q) => q.msg.questions[0]!.name),
    ['alias.lab.test', 'www.lab.test'],
  );
  // A loop of CNAMEs ends with an error, not a hang.
  dns.zone.set('l1.lab.test', { cname: 'l2.lab.test', cnameOnly: true });
  dns.zone.set('l2.lab.test', { cname: 'l1.lab.test', cnameOnly: true });
  await rejectsWith(drive(resolver.resolve('l1.lab.test'), clock), 'DNS_ERROR', /CNAME chain/);
});

test('NXDOMAIN is DNS_NXDOMAIN and is cached from the SOA; a name without A is DNS_NODATA', async () => {
  const { clock, resolver, dns } = setup();
  const e = await rejectsWith(drive(resolver.resolve('nope.lab.test'), clock), 'DNS_NXDOMAIN', /nope\.lab\.test does not exist/);
  assert.equal(e.rcode, DnsRcode.NXDOMAIN);
  assert.deepEqual(e.servers, ['10.8.0.1:53']);
  await rejectsWith(drive(resolver.resolve('nope.lab.test'), clock), 'DNS_NXDOMAIN');
  assert.equal(dns.queries.length, 1, 'the negative answer came from the cache');
  clock.advance(61_000);
  await rejectsWith(drive(resolver.resolve('nope.lab.test'), clock), 'DNS_NXDOMAIN');
  assert.equal(dns.queries.length, 2, 'after the SOA minimum (60 s) it asks again');
  await rejectsWith(drive(resolver.resolve('empty.lab.test'), clock), 'DNS_NODATA', /no IPv4 address/);
});

test('a silent server times out, the next one answers', async () => {
  const { clock, resolver, dns } = setup({ servers: ['10.8.0.53', '10.8.0.1'], timeoutMs: 1500 });
  const t0 = clock.now();
  const r = await drive(resolver.lookup('web.lab.test'), clock, 50);
  assert.deepEqual(r.addresses, ['10.8.0.1']);
  assert.equal(r.server, '10.8.0.1');
  assert.ok(clock.now() - t0 >= 1500 && clock.now() - t0 < 1700, `${clock.now() - t0}`);
  assert.deepEqual(dns.queries.map((q) => q.server), ['10.8.0.53', '10.8.0.1']);
  assert.equal(resolver.stats.timeouts, 1);
});

test('no answer anywhere: DNS_TIMEOUT naming the servers, after attempts x servers x timeout', async () => {
  const { clock, resolver, dns } = setup({ servers: ['10.8.0.53', '10.8.0.54'], timeoutMs: 1000, attempts: 2 });
  const t0 = clock.now();
  const e = await rejectsWith(drive(resolver.resolve('web.lab.test'), clock, 50), 'DNS_TIMEOUT', /10\.8\.0\.53:53, 10\.8\.0\.54:53/);
  assert.deepEqual(e.servers, ['10.8.0.53:53', '10.8.0.54:53']);
  assert.equal(dns.queries.length, 4);
  assert.ok(clock.now() - t0 >= 4000 && clock.now() - t0 < 4200);
  assert.equal(clock.pendingTimers(), 0, 'no timers left');
});

test('port unreachable and SERVFAIL move on to the next server at once', async () => {
  const { clock, resolver, dns } = setup({ servers: ['10.8.0.60', '10.8.0.61', '10.8.0.1'] });
  dns.behaviour.set('10.8.0.60', 'unreachable');
  dns.behaviour.set('10.8.0.61', 'servfail');
  const t0 = clock.now();
  assert.deepEqual(await drive(resolver.resolve('web.lab.test'), clock, 10), ['10.8.0.1']);
  assert.ok(clock.now() - t0 < 50, 'no timeout was waited for');
  assert.equal(resolver.stats.unreachable, 1);
  assert.equal(resolver.stats.serverErrors, 1);
  // With only broken servers: DNS_ERROR that says why.
  const r2 = setup({ servers: ['10.8.0.60', '10.8.0.61'] });
  r2.dns.behaviour.set('10.8.0.60', 'unreachable');
  r2.dns.behaviour.set('10.8.0.61', 'servfail');
  await rejectsWith(drive(r2.resolver.resolve('web.lab.test'), r2.clock, 10), 'DNS_ERROR', /port unreachable.*SERVFAIL/);
});

test('cache: a hit sends nothing; expiry asks again; bounded size; concurrent lookups share a query', async () => {
  const { clock, resolver, dns } = setup({ cacheEntries: 2 });
  await drive(resolver.resolve('web.lab.test'), clock, 1);
  const hit = await drive(resolver.lookup('web.lab.test'), clock, 1);
  assert.equal(hit.fromCache, true);
  assert.equal(dns.queries.length, 1);
  assert.ok(hit.ttl <= 120 && hit.ttl > 100);
  clock.advance(121_000);
  const again = await drive(resolver.lookup('web.lab.test'), clock, 1);
  assert.equal(again.fromCache, false);
  assert.equal(dns.queries.length, 2);
  await drive(resolver.resolve('multi.lab.test'), clock, 1);
  await drive(resolver.resolve('www.lab.test'), clock, 1);
  assert.equal(resolver.cacheSize, 2);
  assert.equal(resolver.stats.cacheHits, 1);
  const n = dns.queries.length;
  resolver.clearCache();
  const [x, y] = await drive(Promise.all([resolver.resolve('web.lab.test'), resolver.resolve('WEB.lab.test')]), clock, 1);
  assert.deepEqual(x, y);
  assert.equal(dns.queries.length, n + 1, 'one query for both');
});

test('search domains from the link config, ndots, and absolute names', async () => {
  const { clock, resolver, dns } = setup({}, { domains: ['other.test', 'lab.test'] });
  assert.deepEqual(await drive(resolver.resolve('web'), clock, 1), ['10.8.0.1']);
  assert.deepEqual(dns.queries.map((q) => q.msg.questions[0]!.name), ['web.other.test', 'web.lab.test']);
  dns.queries.length = 0;
  // A name with a dot is tried as is first.
  const r = await drive(resolver.lookup('web.lab'), clock, 1).catch((e) => e);
  assert.ok(r instanceof DnsError);
  assert.deepEqual(dns.queries.map((q) => q.msg.questions[0]!.name), ['web.lab', 'web.lab.other.test', 'web.lab.lab.test']);
  dns.queries.length = 0;
  // A trailing dot means exactly that name.
  await rejectsWith(drive(resolver.resolve('web.'), clock, 1), 'DNS_NXDOMAIN', /tried web$|tried web\)/);
  assert.deepEqual(dns.queries.map((q) => q.msg.questions[0]!.name), ['web']);
  // Overrides win over the pushed list.
  const o = setup({ searchDomains: ['lab.test'] }, { domains: ['other.test'] });
  assert.deepEqual(await drive(o.resolver.resolve('www'), o.clock, 1), ['10.8.0.1']);
  assert.deepEqual(o.dns.queries.map((q) => q.msg.questions[0]!.name), ['www.lab.test']);
});

test('IPv4 literals and localhost never leave the machine; bad names are refused', async () => {
  const { resolver, dns } = setup();
  assert.deepEqual(await resolver.resolve('192.0.2.7'), ['192.0.2.7']);
  assert.deepEqual(await resolver.resolve('localhost'), ['127.0.0.1']);
  assert.deepEqual(await resolver.resolve('LocalHost.'), ['127.0.0.1']);
  assert.deepEqual(await resolver.resolve('db.localhost'), ['127.0.0.1']);
  assert.equal(dns.queries.length, 0);
  await rejectsWith(resolver.resolve('::1'), 'DNS_ERROR', /not a host name/);
  await rejectsWith(resolver.resolve('a..b'), 'DNS_ERROR');
  await rejectsWith(resolver.resolve(''), 'DNS_ERROR');
  await rejectsWith(resolver.resolve('x'.repeat(70) + '.com'), 'DNS_ERROR', /not a valid DNS name/);
});

test('answers that do not match the query (wrong port, wrong id, wrong question) are ignored', async () => {
  const { clock, resolver, dns, ip } = setup({ timeoutMs: 1000, attempts: 1 });
  dns.behaviour.set('10.8.0.1', 'silent');
  const p = resolver.resolve('web.lab.test');
  await settle();
  const q = dns.queries[0]!;
  const send = (srcPort: number, id: number, name: string) => {
    const bytes = buildDnsMessage({
      header: { id, qr: true },
      questions: [{ name, type: 1, class: 1 }],
      answers: [{ name, type: 1, class: 1, ttl: 60, kind: 'A', address: '6.6.6.6' }],
    });
    const src = parseIpv4Address('10.8.0.1');
    const dst = parseIpv4Address(US);
    ip.input(buildIpv4({ src, dst, protocol: 17 }, buildUdp({ srcPort, dstPort: q.srcPort, payload: bytes }, { src, dst })));
  };
  send(5353, q.msg.header.id, 'web.lab.test');
  send(53, (q.msg.header.id + 1) & 0xffff, 'web.lab.test');
  send(53, q.msg.header.id, 'evil.lab.test');
  await settle();
  assert.equal(resolver.stats.mismatched, 3);
  send(53, q.msg.header.id, 'web.lab.test');
  assert.deepEqual(await drive(p, clock), ['6.6.6.6']);
});

test('truncation: retried over the TCP hook when given; without one, an error that says so', async () => {
  const calls: string[] = [];
  const { clock, resolver, dns } = setup({
    tcp: async (server, port, query) => {
      calls.push(`${server}:${port}`);
      const q = parseDnsMessage(query);
      return buildDnsMessage({
        header: { id: q.header.id, qr: true },
        questions: q.questions,
        answers: [{ name: q.questions[0]!.name, type: 1, class: 1, ttl: 60, kind: 'A', address: '10.8.0.99' }],
      });
    },
  });
  dns.behaviour.set('10.8.0.1', 'truncate');
  assert.deepEqual(await drive(resolver.resolve('big.lab.test'), clock, 1), ['10.8.0.99']);
  assert.deepEqual(calls, ['10.8.0.1:53']);
  assert.equal(resolver.stats.truncated, 1);
  // A truncated answer that still holds addresses is used (not cached) when there is no TCP.
  const p = setup();
  p.dns.behaviour.set('10.8.0.1', 'truncate');
  p.dns.zone.set('big.lab.test', { a: ['10.8.0.50'] });
  assert.deepEqual(await drive(p.resolver.resolve('big.lab.test'), p.clock, 1), ['10.8.0.50']);
  assert.equal(p.resolver.cacheSize, 0);
  const n = setup();
  n.dns.behaviour.set('10.8.0.1', 'truncate');
  await rejectsWith(drive(n.resolver.resolve('big.lab.test'), n.clock, 1), 'DNS_ERROR', /truncated and no TCP fallback/);
});

test('no DNS server: an error that says what to do, or the fallback when one is given', async () => {
  const { resolver } = setup({}, { dns: [] });
  await rejectsWith(resolver.resolve('web.lab.test'), 'DNS_ERROR', /pushed no DNS server.*--dns/);
  const f = setup({ fallback: async (n) => (n === 'web.lab.test' ? ['203.0.113.5'] : []) }, { dns: ['fd00::1'] });
  assert.deepEqual(await f.resolver.resolve('web.lab.test'), ['203.0.113.5']);
});

test('AAAA: resolve6 asks for AAAA and caches it apart from A; a name with only AAAA is DNS_NODATA for A', async () => {
  const { clock, resolver, dns } = setup();
  assert.deepEqual(await drive(resolver.resolve6('v6.lab.test'), clock), ['fd00:102:2::2']);
  assert.equal(dns.queries.at(-1)!.msg.questions[0]!.type, DnsType.AAAA);
  await rejectsWith(drive(resolver.resolve('v6.lab.test'), clock), 'DNS_NODATA', /no IPv4 address/);
  assert.deepEqual(await drive(resolver.resolve('dual.lab.test'), clock), ['10.8.0.30']);
  assert.deepEqual(await drive(resolver.resolve6('dual.lab.test'), clock), ['2001:db8::30']);
  const sent = dns.queries.length;
  assert.deepEqual(await drive(resolver.resolve6('dual.lab.test'), clock), ['2001:db8::30']);
  assert.deepEqual(await drive(resolver.resolve('dual.lab.test'), clock), ['10.8.0.30']);
  assert.equal(dns.queries.length, sent, 'both families answered from the cache');
  await rejectsWith(drive(resolver.resolve6('web.lab.test'), clock), 'DNS_NODATA', /no IPv6 address/);
});
