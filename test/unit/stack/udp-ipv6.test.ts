/**
 * UDP over IPv6, stack to stack (issue 16): two IpStacks joined by a link pair, each with an IPv4 and an IPv6
 * address. The same UdpSocket talks to both families; IPv6 checksums are checked (and 0 refused); an ICMPv6
 * port unreachable reaches the socket; and the resolver asks a DNS server at an IPv6 address through the link.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLinkPair, type LinkConfig } from '../../../src/link/link.js';
import { IpStack } from '../../../src/stack/stack.js';
import type { RemoteInfo, UdpIcmpError } from '../../../src/stack/udp.js';
import { ManualClock } from '../../../src/util/clock.js';
import { DnsType, buildDnsMessage, parseDnsMessage, type DnsRecord } from '../../../src/wire/dns.js';
import { buildIcmpv6 } from '../../../src/wire/icmpv6.js';
import { buildIpv6, ipv6AddressSum, parseIpv6Address } from '../../../src/wire/ipv6.js';
import { buildUdp } from '../../../src/wire/udp.js';
import { PEER, US, linkConfig, settle } from './helpers.js';

const V6A = 'fd00:8::1000';
const V6B = 'fd00:8::1';

function pair(over: { a?: Partial<LinkConfig>; b?: Partial<LinkConfig>; dnsA?: string[] } = {}) {
  const clock = new ManualClock(0);
  const [la, lb] = createLinkPair(
    linkConfig(US, { address6: V6A, prefixLength6: 64, ...over.a }),
    linkConfig(PEER, { address6: V6B, prefixLength6: 64, ...over.b }),
  );
  const a = new IpStack(la, { clock, dns: over.dnsA ? { servers: over.dnsA, timeoutMs: 500, attempts: 1 } : undefined });
  const b = new IpStack(lb, { clock });
  return { clock, a, b };
}

test('one socket sends and receives over IPv6 and IPv4; replies go back to rinfo of either family', async () => {
  const { a, b } = pair();
  const server = b.udp.bind(7);
  server.on('message', (data, rinfo) => server.send(Uint8Array.from(data).reverse(), rinfo.port, rinfo.address));
  const serverSeen: string[] = [];
  server.on('message', (_d, r) => serverSeen.push(r.address));
  const client = a.udp.bind();
  assert.deepEqual(client.address6(), { address: V6A, port: client.localPort });
  const got: Array<[Uint8Array, RemoteInfo]> = [];
  client.on('message', (d, r) => got.push([d, r]));
  client.send(Uint8Array.of(1, 2, 3), 7, 'FD00:8:0::1'); // any spelling of the literal
  client.send(Uint8Array.of(4, 5), 7, PEER);
  await settle();
  assert.deepEqual(serverSeen, [V6A, US]);
  assert.deepEqual(got, [
    [Uint8Array.of(3, 2, 1), { address: V6B, port: 7, size: 3 }],
    [Uint8Array.of(5, 4), { address: PEER, port: 7, size: 2 }],
  ]);
  assert.equal(b.ip6.stats.delivered, 1);
  assert.equal(b.udp.stats.delivered, 2);
  assert.equal(client.maxPayload(), 1500 - 20 - 8);
  assert.throws(() => client.send(new Uint8Array(1500 - 40 - 8 + 1), 7, V6B), /exceeds 1452 over IPv6/);
});

test('IPv6 datagrams with a bad or zero checksum are dropped as malformed', async () => {
  const { a } = pair();
  const s = a.udp.bind(5353);
  let n = 0;
  s.on('message', () => n++);
  const src = parseIpv6Address(V6B);
  const dst = parseIpv6Address(V6A);
  const inject = (udp: Uint8Array) => a.ip6.input(buildIpv6({ src, dst, nextHeader: 17 }, udp));
  inject(buildUdp({ srcPort: 9, dstPort: 5353, payload: Uint8Array.of(1) })); // checksum 0: not allowed over IPv6
  const bad = buildUdp({ srcPort: 9, dstPort: 5353, payload: Uint8Array.of(1) }, { src: 0, dst: 0, sum: 12345 });
  inject(bad);
  await settle();
  assert.equal(n, 0);
  assert.equal(a.udp.stats.malformed, 2);
});

test('ICMPv6 port unreachable from the peer stack is an error event naming [address]:port', async () => {
  const { a } = pair();
  const client = a.udp.bind();
  const errors: UdpIcmpError[] = [];
  client.on('error', (e) => errors.push(e));
  // Nothing listens on port 9 of B, but B's IPv6 layer sends no port unreachable: inject one by hand.
  const sent: Uint8Array[] = [];
  const orig = a.link.send.bind(a.link);
  a.link.send = (p: Uint8Array) => {
    sent.push(p.slice());
    orig(p);
  };
  client.send(Uint8Array.of(1), 9, V6B);
  const src = parseIpv6Address(V6B);
  const dst = parseIpv6Address(V6A);
  const icmp = buildIcmpv6({ kind: 'dest-unreachable', code: 4, quoted: sent[0]! }, ipv6AddressSum(src, dst));
  a.ip6.input(buildIpv6({ src, dst, nextHeader: 58 }, icmp));
  await settle();
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'CONN_REFUSED');
  assert.equal(errors[0]!.address, V6B);
  assert.match(errors[0]!.message, /\[fd00:8::1\]:9: port unreachable/);
});

test('the resolver asks a DNS server at an IPv6 address over UDP over IPv6', async () => {
  const { a, b } = pair({ dnsA: ['fd00:8:0:0:0:0:0:1'] });
  const dns = b.udp.bind(53);
  const asked: string[] = [];
  dns.on('message', (data, rinfo) => {
    const q = parseDnsMessage(data);
    const qu = q.questions[0]!;
    asked.push(`${rinfo.address} ${qu.type === DnsType.AAAA ? 'AAAA' : 'A'}`);
    const answers: DnsRecord[] =
      qu.type === DnsType.AAAA
        ? [{ name: qu.name, type: DnsType.AAAA, class: 1, ttl: 60, kind: 'AAAA', address: '2001:db8::80' }]
        : [{ name: qu.name, type: DnsType.A, class: 1, ttl: 60, kind: 'A', address: '192.0.2.80' }];
    dns.send(buildDnsMessage({ header: { id: q.header.id, qr: true, rd: true, ra: true }, questions: q.questions, answers }), rinfo.port, rinfo.address);
  });
  assert.deepEqual(a.dns.servers(), [V6B]);
  assert.deepEqual(await a.resolve('web.lab.test'), ['192.0.2.80']);
  assert.equal(asked[0], `${V6A} A`);
  assert.equal(a.dns.stats.responses, 1);
});

test('IPv6 DNS servers are skipped while the tunnel has no IPv6 address; pushed dns6 are used after dns', () => {
  const { a } = pair({ a: { address6: undefined, dns: ['10.8.0.1'], dns6: ['fd00:8::1'] } });
  assert.deepEqual(a.dns.servers(), ['10.8.0.1']);
  const { a: a6 } = pair({ a: { dns: ['10.8.0.1'], dns6: ['fd00:8::1'] } });
  assert.deepEqual(a6.dns.servers(), ['10.8.0.1', 'fd00:8::1']);
});
