import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import { internetChecksum } from '../../../src/wire/checksum.js';
import { buildIcmp, parseIcmp, quotedPorts, type IcmpMessage } from '../../../src/wire/icmp.js';
import { buildIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';
import { buildUdp } from '../../../src/wire/udp.js';
import { hex, mutated, onlyWireError, u16, u32, u8 } from './helpers.js';

// An echo request: type 8, id 0x1234, seq 1, payload "abcd"; checksum computed by hand:
// 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364 = 0xdefb -> ~ = 0x2104 (checked with an independent Python sum)
const ECHO_REQ = '0800 2104 1234 0001 6162 6364';

test('echo request vector: parse and build agree with the hand-computed checksum', () => {
  const m = parseIcmp(hex(ECHO_REQ));
  assert.equal(m.kind, 'echo-request');
  if (m.kind !== 'echo-request') return;
  assert.equal(m.id, 0x1234);
  assert.equal(m.seq, 1);
  assert.deepEqual(m.payload, hex('61626364'));
  assert.deepEqual(buildIcmp({ kind: 'echo-request', id: 0x1234, seq: 1, payload: hex('61626364') }), hex(ECHO_REQ));
  const reply = buildIcmp({ kind: 'echo-reply', id: 0x1234, seq: 1, payload: hex('61626364') });
  assert.equal(reply[0], 0);
  assert.equal(internetChecksum(reply), 0);
});

test('bad checksum is rejected unless verification is off', () => {
  const b = hex(ECHO_REQ);
  b[9] ^= 1;
  assert.throws(() => parseIcmp(b), (e: unknown) => e instanceof WireError && e.field === 'checksum' && e.offset === 2);
  assert.equal(parseIcmp(b, { verifyChecksum: false }).kind, 'echo-request');
  assert.throws(() => parseIcmp(hex('0800 0000 0000')), (e: unknown) => e instanceof WireError && e.field === 'length');
});

function originalUdp(): Uint8Array {
  const src = parseIpv4Address('10.8.0.2');
  const dst = parseIpv4Address('10.8.0.1');
  const udp = buildUdp({ srcPort: 40000, dstPort: 53, payload: new Uint8Array(100) }, { src, dst });
  return buildIpv4({ src, dst, protocol: 17, id: 7 }, udp);
}

test('frag-needed: next-hop MTU, quoted header and first 8 bytes', () => {
  const orig = originalUdp();
  const quoted = orig.subarray(0, 28); // header + 8 bytes, as RFC 792 requires at minimum
  const msg = buildIcmp({ kind: 'dest-unreachable', code: 4, nextHopMtu: 1400, quoted });
  const m = parseIcmp(msg);
  assert.equal(m.kind, 'dest-unreachable');
  if (m.kind !== 'dest-unreachable') return;
  assert.equal(m.code, 4);
  assert.equal(m.nextHopMtu, 1400);
  assert.equal(m.original.protocol, 17);
  assert.equal(m.original.id, 7);
  assert.equal(m.original.totalLength, 128, 'total length of the original, larger than what is quoted');
  assert.equal(m.originalData.length, 8);
  assert.deepEqual(quotedPorts(m), { srcPort: 40000, dstPort: 53 });
});

test('port unreachable has mtu 0; time exceeded parses; garbage quote is a WireError on original.*', () => {
  const quoted = originalUdp().subarray(0, 28);
  const pu = parseIcmp(buildIcmp({ kind: 'dest-unreachable', code: 3, quoted }));
  assert.equal(pu.kind === 'dest-unreachable' && pu.nextHopMtu, 0);
  const te = parseIcmp(buildIcmp({ kind: 'time-exceeded', code: 0, quoted }));
  assert.equal(te.kind, 'time-exceeded');
  assert.throws(
    () => parseIcmp(buildIcmp({ kind: 'dest-unreachable', code: 1, quoted: hex('6500') })),
    (e: unknown) => e instanceof WireError && e.field.startsWith('original.') && e.offset >= 8,
  );
});

test('unknown types are kept raw', () => {
  const m = parseIcmp(buildIcmp({ kind: 'other', type: 13, code: 0, rest: 0xdeadbeef, data: hex('0102') }));
  assert.deepEqual({ ...m }, { kind: 'other', type: 13, code: 0, rest: 0xdeadbeef, data: hex('0102') });
});

const quotedArb = fc
  .tuple(u32, u32, u8, u16, fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.nat(40))
  .map(([src, dst, protocol, id, payload, cut]) => {
    const p = buildIpv4({ src, dst, protocol, id }, payload);
    return p.subarray(0, 20 + Math.min(cut, payload.length));
  });

const msgArb: fc.Arbitrary<IcmpMessage> = fc.oneof(
  fc.record({ kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const), id: u16, seq: u16, payload: fc.uint8Array({ maxLength: 64 }) }),
  fc.tuple(fc.constantFrom('dest-unreachable' as const, 'time-exceeded' as const), u8, u16, quotedArb).map(([kind, code, mtu, quoted]) => {
    const m = parseIcmp(buildIcmp({ kind, code, nextHopMtu: mtu, quoted }));
    return m;
  }),
  fc.record({ kind: fc.constant('other' as const), type: u8.filter((t) => ![0, 3, 8, 11].includes(t)), code: u8, rest: u32, data: fc.uint8Array({ maxLength: 32 }) }),
);

test('property: parse(build(m)) == m', () => {
  fc.assert(
    fc.property(msgArb, (m) => {
      const again = parseIcmp(buildIcmp(m));
      assert.deepEqual({ ...again }, { ...m });
    }),
  );
});

test('property: random and mutated bytes only throw WireError', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutated(msgArb.map(buildIcmp))), fc.boolean(), (b, v) => {
      onlyWireError(() => parseIcmp(b, { verifyChecksum: v }), b.length);
    }),
    { numRuns: 2000 },
  );
});
