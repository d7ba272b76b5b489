import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildIcmpv6, parseIcmpv6 } from '../../../src/wire/icmpv6.js';
import { buildIpv6, ipv6AddressSum, parseIpv6, parseIpv6Address } from '../../../src/wire/ipv6.js';
import { hex, mutated, onlyWireError } from './helpers.js';

// Echo request id 0x1234 seq 1 "abcd", 2001:db8::1 -> 2001:db8::2, built by scapy 2.5: checksum 4d48.
const ECHO =
  '60000000000c3a40 20010db8000000000000000000000001 20010db8000000000000000000000002 80004d481234000161626364';

test('echo request vector: parse, verify and rebuild byte for byte', () => {
  const ip = parseIpv6(hex(ECHO));
  assert.equal(ip.protocol, 58);
  const sum = ipv6AddressSum(ip.src, ip.dst);
  const m = parseIcmpv6(ip.payload, sum);
  assert.deepEqual({ ...m, payload: undefined }, { kind: 'echo-request', id: 0x1234, seq: 1, payload: undefined });
  assert.deepEqual(buildIcmpv6(m, sum), ip.payload);
  const bad = Uint8Array.from(ip.payload);
  bad[9] ^= 0x40;
  assert.throws(() => parseIcmpv6(bad, sum), /checksum/);
  // the same message between other addresses has another checksum
  assert.throws(() => parseIcmpv6(ip.payload, ipv6AddressSum(ip.dst, parseIpv6Address('2001:db8::3'))), /checksum/);
});

test('packet too big (RFC 4443 §3.2) quotes our packet and carries the MTU', () => {
  const us = parseIpv6Address('fd00::2');
  const router = parseIpv6Address('fd00::1');
  const far = parseIpv6Address('2001:db8::80');
  const tcp = new Uint8Array(1400);
  tcp.set([0xc3, 0x50, 0x00, 0x50, 0, 0, 0, 7]);
  const ours = buildIpv6({ src: us, dst: far, nextHeader: 6 }, tcp);
  const quoted = ours.subarray(0, 1232); // as much as fits in 1280
  const sum = ipv6AddressSum(router, us);
  const msg = buildIcmpv6({ kind: 'packet-too-big', code: 0, value: 1280, quoted }, sum);
  assert.deepEqual(Array.from(msg.subarray(0, 2)), [2, 0]);
  assert.deepEqual(Array.from(msg.subarray(4, 8)), [0, 0, 5, 0]);
  const m = parseIcmpv6(msg, sum);
  assert.equal(m.kind, 'packet-too-big');
  if (m.kind !== 'packet-too-big') return;
  assert.equal(m.value, 1280);
  assert.equal(m.original.protocol, 6);
  assert.deepEqual(m.original.dst, far);
  assert.equal(m.originalData.length, 1232 - 40);
  assert.equal((m.originalData[0]! << 8) | m.originalData[1]!, 50000);
});

test('dest unreachable, time exceeded, parameter problem and other types', () => {
  const sum = 12345;
  const quoted = buildIpv6({ src: new Uint8Array(16), dst: new Uint8Array(16), nextHeader: 17 }, new Uint8Array(8));
  for (const [kind, type] of [['dest-unreachable', 1], ['time-exceeded', 3], ['parameter-problem', 4]] as const) {
    const b = buildIcmpv6({ kind, code: 4, value: kind === 'parameter-problem' ? 6 : 0, quoted }, sum);
    assert.equal(b[0], type);
    const m = parseIcmpv6(b, sum);
    assert.equal(m.kind, kind);
    if (m.kind === kind) assert.equal(m.code, 4);
  }
  const ns = buildIcmpv6({ kind: 'other', type: 135, code: 0, rest: 0, data: new Uint8Array(16) }, sum);
  const m = parseIcmpv6(ns, sum);
  assert.equal(m.kind, 'other');
});

test('property: random and mutated messages only ever throw WireError', () => {
  const quoted = buildIpv6({ src: new Uint8Array(16), dst: new Uint8Array(16), nextHeader: 6 }, new Uint8Array(20));
  const valid = fc.oneof(
    fc.constant(parseIpv6(hex(ECHO)).payload),
    fc.constantFrom(1, 2, 3, 4).map((t) => {
      const b = buildIcmpv6({ kind: 'dest-unreachable', code: 0, quoted }, 0);
      b[0] = t;
      return b;
    }),
  );
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 100 }), mutated(valid)), fc.option(fc.nat(), { nil: undefined }), (b, s) => {
      onlyWireError(() => parseIcmpv6(b, s), b.length);
    }),
    { numRuns: 3000 },
  );
});
