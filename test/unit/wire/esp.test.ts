import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import {
  ESP_HEADER_LENGTH,
  buildNatKeepalive,
  classifyUdp4500,
  parseEspHeader,
  withNonEspMarker,
  writeEspHeader,
} from '../../../src/wire/esp.js';
import { hex, mutated, onlyWireError, u32 } from './helpers.js';

/** The IKE_AUTH request captured in the lab (ipsec.md §3.1): UDP payload = marker || IKE header … */
const IKE_HDR = hex('eaa9eb96fea4e6cd a86f6530ba574f5e 2e 20 23 08 00000001 00000140');

describe('classifyUdp4500 (RFC 3948)', () => {
  test('a single 0xFF byte is a NAT-keepalive; any other single byte is malformed', () => {
    assert.deepEqual(classifyUdp4500(Uint8Array.of(0xff)), { kind: 'keepalive' });
    assert.deepEqual(classifyUdp4500(buildNatKeepalive()), { kind: 'keepalive' });
    for (const b of [0x00, 0x01, 0xfe]) assert.equal(classifyUdp4500(Uint8Array.of(b)).kind, 'malformed');
  });

  test('the non-ESP marker introduces an IKE message, returned without the marker', () => {
    const ike = new Uint8Array(40);
    ike.set(IKE_HDR, 0);
    const d = withNonEspMarker(ike);
    assert.equal(d.length, 44);
    assert.deepEqual([...d.subarray(0, 4)], [0, 0, 0, 0]);
    const c = classifyUdp4500(d);
    assert.equal(c.kind, 'ike');
    assert.ok(c.kind === 'ike' && Buffer.from(c.message).equals(Buffer.from(ike)));
  });

  test('a marker followed by less than an IKE header is malformed', () => {
    assert.equal(classifyUdp4500(new Uint8Array(4 + 27)).kind, 'malformed');
    assert.equal(classifyUdp4500(new Uint8Array(4)).kind, 'malformed');
    assert.equal(classifyUdp4500(new Uint8Array(4 + 28)).kind, 'ike');
  });

  test('anything else of 8 bytes or more is ESP; shorter is malformed', () => {
    assert.deepEqual(classifyUdp4500(hex('c1000001 00000001')), { kind: 'esp' });
    assert.deepEqual(classifyUdp4500(hex('00000001 00000000 ffff')), { kind: 'esp' });
    for (const n of [0, 2, 3, 5, 7]) {
      const b = new Uint8Array(n).fill(0x11);
      assert.equal(classifyUdp4500(b).kind, 'malformed', `${n} bytes`);
    }
    assert.equal(classifyUdp4500(new Uint8Array(0)).kind, 'malformed');
  });

  test('fuzz: never throws, and agrees with the rules', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 40 }).map((b) => withNonEspMarker(b))), (b) => {
        const c = classifyUdp4500(b);
        if (b.length === 1 && b[0] === 0xff) assert.equal(c.kind, 'keepalive');
        else if (b.length >= 32 && b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0) assert.equal(c.kind, 'ike');
        else if (b.length >= 8 && !(b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0)) assert.equal(c.kind, 'esp');
        else assert.equal(c.kind, 'malformed');
        if (c.kind === 'ike') assert.equal(c.message.length, b.length - 4);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ESP header (RFC 4303 §2.1, §2.2)', () => {
  test('parse reads SPI and sequence number big-endian', () => {
    assert.deepEqual(parseEspHeader(hex('c1000001 0000002a deadbeef')), { spi: 0xc1000001, seq: 42 });
    assert.deepEqual(parseEspHeader(hex('ff ffffffff fffffffe'), 1), { spi: 0xffffffff, seq: 0xfffffffe });
  });

  test('fewer than 8 bytes throw WireError', () => {
    for (const n of [0, 1, 7]) {
      assert.throws(() => parseEspHeader(new Uint8Array(n)), (e: unknown) => e instanceof WireError && e.field === 'length');
    }
    assert.throws(() => parseEspHeader(new Uint8Array(9), 2), WireError);
  });

  test('write then parse round-trips', () => {
    fc.assert(
      fc.property(u32, u32, fc.nat({ max: 8 }), (spi, seq, off) => {
        const b = new Uint8Array(off + ESP_HEADER_LENGTH + 3);
        assert.equal(writeEspHeader(b, off, { spi, seq }), off + 8);
        assert.deepEqual(parseEspHeader(b, off), { spi, seq });
      }),
    );
  });

  test('write rejects values that are not uint32 and a buffer without room', () => {
    const b = new Uint8Array(8);
    assert.throws(() => writeEspHeader(b, 0, { spi: -1, seq: 1 }), RangeError);
    assert.throws(() => writeEspHeader(b, 0, { spi: 2 ** 32, seq: 1 }), RangeError);
    assert.throws(() => writeEspHeader(b, 0, { spi: 1, seq: 1.5 }), RangeError);
    assert.throws(() => writeEspHeader(b, 1, { spi: 1, seq: 1 }), RangeError);
  });

  test('fuzz: parseEspHeader throws only WireError, on random and mutated input', () => {
    const valid = fc.tuple(u32, u32, fc.uint8Array({ maxLength: 32 })).map(([spi, seq, rest]) => {
      const b = new Uint8Array(8 + rest.length);
      writeEspHeader(b, 0, { spi, seq });
      b.set(rest, 8);
      return b;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 16 }), mutated(valid)), fc.nat({ max: 12 }), (b, off) => {
        onlyWireError(() => parseEspHeader(b, off), b.length);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('keepalive and marker builders', () => {
  test('buildNatKeepalive returns a fresh 0xFF each time', () => {
    const a = buildNatKeepalive();
    const b = buildNatKeepalive();
    assert.deepEqual([...a], [0xff]);
    assert.notEqual(a, b);
  });

  test('withNonEspMarker prepends four zero bytes and copies the message', () => {
    const ike = hex('0102030405');
    const d = withNonEspMarker(ike);
    assert.equal(Buffer.from(d).toString('hex'), '000000000102030405');
    ike[0] = 9;
    assert.equal(d[4], 1);
  });
});
