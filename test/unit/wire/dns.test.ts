import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import {
  DnsRcode,
  DnsType,
  buildDnsMessage,
  buildDnsQuery,
  dnsNameEquals,
  encodeName,
  frameDnsTcp,
  ipv6ToString,
  parseDnsMessage,
  readName,
} from '../../../src/wire/dns.js';
import { hex, mutated, onlyWireError } from './helpers.js';

// Captured from dnsmasq 2.90 (--cname=www.lab.test,web.lab.test --local-ttl=300), query id 0x1234 for
// www.lab.test A: the answer's owner name is a pointer to the question (c00c), the A record's owner a pointer
// (c02a) to the CNAME target written out inside the CNAME rdata.
const CNAME_RESPONSE =
  '1234 8580 0001 0002 0000 0000 03777777036c616204746573740000010001' +
  'c00c 0005 0001 0000012c 000e 03776562036c6162047465737400' +
  'c02a 0001 0001 0000012c 0004 0a080001';
// Same server, nope.lab.test: NXDOMAIN, no records.
const NXDOMAIN_RESPONSE = '1234 8183 0001 0000 0000 0000 046e6f7065036c616204746573740000010001';

test('decodes a captured response with a CNAME and compressed names', () => {
  const m = parseDnsMessage(hex(CNAME_RESPONSE));
  assert.equal(m.header.id, 0x1234);
  assert.equal(m.header.qr, true);
  assert.equal(m.header.aa, true);
  assert.equal(m.header.rd, true);
  assert.equal(m.header.ra, true);
  assert.equal(m.header.tc, false);
  assert.equal(m.header.rcode, DnsRcode.NOERROR);
  assert.deepEqual(m.questions, [{ name: 'www.lab.test', type: DnsType.A, class: 1 }]);
  assert.equal(m.answers.length, 2);
  const [c, a] = m.answers;
  assert.deepEqual(c, { name: 'www.lab.test', type: 5, class: 1, ttl: 300, kind: 'CNAME', target: 'web.lab.test' });
  assert.deepEqual(a, { name: 'web.lab.test', type: 1, class: 1, ttl: 300, kind: 'A', address: '10.8.0.1' });
  assert.equal(m.authorities.length, 0);
});

test('decodes a captured NXDOMAIN', () => {
  const m = parseDnsMessage(hex(NXDOMAIN_RESPONSE));
  assert.equal(m.header.rcode, DnsRcode.NXDOMAIN);
  assert.equal(m.header.aa, false);
  assert.equal(m.header.ra, true);
  assert.deepEqual(m.questions, [{ name: 'nope.lab.test', type: 1, class: 1 }]);
  assert.equal(m.answers.length, 0);
});

test('builds a query byte for byte', () => {
  // The query that produced the captures above.
  assert.deepEqual(buildDnsQuery({ id: 0x1234, name: 'www.lab.test' }), hex('1234 0100 0001 0000 0000 0000 03777777036c616204746573740000010001'));
  // Trailing dot, no recursion, AAAA, EDNS0 OPT with a 1232-byte payload size.
  assert.deepEqual(
    buildDnsQuery({ id: 0xbeef, name: 'a.b.', type: DnsType.AAAA, rd: false, ednsUdpSize: 1232 }),
    hex('beef 0000 0001 0000 0000 0001 0161 0162 00 001c 0001' + '00 0029 04d0 00000000 0000'),
  );
});

test('build then parse round-trips records of every kind', () => {
  const bytes = buildDnsMessage({
    header: { id: 7, qr: true, rd: true, ra: true, rcode: 0 },
    questions: [{ name: 'x.example', type: 1, class: 1 }],
    answers: [
      { name: 'x.example', type: 5, class: 1, ttl: 60, kind: 'CNAME', target: 'y.example' },
      { name: 'y.example', type: 1, class: 1, ttl: 30, kind: 'A', address: '192.0.2.9' },
      { name: 'y.example', type: 28, class: 1, ttl: 30, kind: 'AAAA', address: '2001:db8::1' },
      { name: 'y.example', type: 16, class: 1, ttl: 30, kind: 'other', rdata: Uint8Array.from([3, 0x61, 0x62, 0x63]) },
    ],
    authorities: [{ name: 'example', type: 6, class: 1, ttl: 900, kind: 'SOA', mname: 'ns.example', rname: 'root.example', serial: 42, minimum: 120 }],
  });
  const m = parseDnsMessage(bytes);
  assert.equal(m.answers.length, 4);
  assert.equal(m.answers[2]!.kind === 'AAAA' && m.answers[2]!.address, '2001:db8::1');
  assert.deepEqual(m.answers[3]!.kind === 'other' && [...m.answers[3]!.rdata], [3, 0x61, 0x62, 0x63]);
  const soa = m.authorities[0]!;
  assert.ok(soa.kind === 'SOA');
  assert.equal(soa.minimum, 120);
  assert.equal(soa.serial, 42);
  assert.equal(soa.rname, 'root.example');
});

test('compression loops and forward pointers are refused', () => {
  const head = '0001 8180 0001 0000 0000 0000';
  // Question name is a pointer to itself.
  assert.throws(() => parseDnsMessage(hex(head + 'c00c 0001 0001')), (e: unknown) => e instanceof WireError && /backwards/.test(e.message));
  // Pointer forwards (to offset 14, after itself).
  assert.throws(() => parseDnsMessage(hex(head + 'c00e 00 0001 0001')), WireError);
  // Two names pointing at each other: label 'a' then pointer to the second name, which points back to the first.
  const b = hex(head + '0161 c011' + '00' + 'c00c');
  assert.throws(() => readName(b, 17), WireError);
  assert.throws(() => readName(b, 12), WireError);
  // A legitimate backward pointer chain works.
  const ok = hex(head + '0161 00' + '0162 c00c');
  assert.equal(readName(ok, 15).name, 'b.a');
  assert.equal(readName(ok, 15).end, 19);
});

test('names: label and total limits, escapes, comparison', () => {
  assert.throws(() => encodeName('a..b'), WireError);
  assert.throws(() => encodeName('x'.repeat(64) + '.com'), WireError);
  assert.throws(() => encodeName(Array(130).fill('ab').join('.')), WireError);
  assert.throws(() => encodeName('a b.com'), WireError);
  assert.deepEqual(encodeName('.'), Uint8Array.of(0));
  // 63-byte labels up to the 255-byte limit are fine.
  const max = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
  assert.equal(encodeName(max).length, 255);
  assert.throws(() => encodeName(max + 'd'), WireError);
  // Odd bytes in a received label are escaped.
  const m = hex('0000 8000 0001 0000 0000 0000 03 612e00 00 0001 0001');
  assert.equal(parseDnsMessage(m).questions[0]!.name, 'a\\046\\000');
  assert.ok(dnsNameEquals('WWW.Lab.Test.', 'www.lab.test'));
  assert.ok(!dnsNameEquals('www.lab.test', 'www.lab.tes'));
  assert.equal(ipv6ToString(hex('20010db8000000000000000000000001')), '2001:db8::1');
  assert.equal(ipv6ToString(hex('00000000000000000000000000000000')), '::');
  assert.equal(ipv6ToString(hex('20010db8000100000001000000000001')), '2001:db8:1:0:1::1');
  assert.deepEqual(frameDnsTcp(Uint8Array.of(1, 2, 3)), Uint8Array.of(0, 3, 1, 2, 3));
});

test('wrong rdata lengths are WireErrors', () => {
  const head = '0001 8180 0000 0001 0000 0000';
  assert.throws(() => parseDnsMessage(hex(head + '00 0001 0001 00000001 0003 0a0000')), (e: unknown) => e instanceof WireError && e.field === 'answer.rdlength');
  assert.throws(() => parseDnsMessage(hex(head + '00 001c 0001 00000001 0004 0a000001')), WireError);
  // CNAME whose name is shorter than its rdlength.
  assert.throws(() => parseDnsMessage(hex(head + '00 0005 0001 00000001 0004 0161 00 00')), WireError);
  // Counts promising more than there is.
  assert.throws(() => parseDnsMessage(hex('0001 8180 0000 0005 0000 0000')), WireError);
  // TTL with the top bit set reads as its low 31 bits.
  const m = parseDnsMessage(hex(head + '00 0001 0001 80000010 0004 0a000001'));
  assert.equal(m.answers[0]!.ttl, 16);
});

const validMessages = fc.constantFrom(hex(CNAME_RESPONSE), hex(NXDOMAIN_RESPONSE), buildDnsQuery({ id: 1, name: 'a.b.c', ednsUdpSize: 512 }));

test('fuzz: random bytes only ever raise WireError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (b) => onlyWireError(() => parseDnsMessage(b), b.length)),
    { numRuns: 3000 },
  );
});

test('fuzz: mutated real messages only ever raise WireError', () => {
  fc.assert(fc.property(mutated(validMessages), (b) => onlyWireError(() => parseDnsMessage(b), b.length)), { numRuns: 5000 });
});

test('fuzz: random header + pointer soup terminates', () => {
  // Bytes drawn mostly from pointer/label-ish values to provoke loops.
  const soup = fc.array(fc.constantFrom(0xc0, 0x0c, 0x0d, 0x0e, 0x01, 0x02, 0x00, 0x61, 0x3f), { minLength: 1, maxLength: 60 });
  fc.assert(
    fc.property(soup, (tail) => {
      const b = new Uint8Array(12 + tail.length);
      b.set(hex('0001 8180 0001 0001 0000 0000'));
      b.set(tail, 12);
      onlyWireError(() => parseDnsMessage(b), b.length);
    }),
    { numRuns: 5000 },
  );
});
