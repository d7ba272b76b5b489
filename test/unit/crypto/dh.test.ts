import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { getDiffieHellman } from 'node:crypto';
import fc from 'fast-check';
import {
  createKeyExchange,
  groupName,
  isSupportedGroup,
  keyExchangeLength,
  modpPrime,
  sharedSecretLength,
  SUPPORTED_GROUPS,
  type KeyExchangeGroup,
} from '../../../src/crypto/dh.js';
import { VpnError } from '../../../src/errors.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const toBig = (b: Uint8Array): bigint => BigInt('0x' + Buffer.from(b).toString('hex'));
const toBytes = (n: bigint, len: number): Buffer => Buffer.from(n.toString(16).padStart(len * 2, '0'), 'hex');

const isProtocolError = (err: unknown): boolean => err instanceof VpnError && err.code === 'PROTOCOL';

const EXPECTED: Record<KeyExchangeGroup, [ke: number, secret: number, name: string]> = {
  14: [256, 256, 'MODP-2048'],
  15: [384, 384, 'MODP-3072'],
  16: [512, 512, 'MODP-4096'],
  19: [64, 32, 'ECP-256'],
  20: [96, 48, 'ECP-384'],
  21: [132, 66, 'ECP-521'],
  31: [32, 32, 'Curve25519'],
};

describe('group table', () => {
  test('supported groups and lengths (ipsec.md §5.1)', () => {
    assert.deepEqual([...SUPPORTED_GROUPS], [14, 15, 16, 19, 20, 21, 31]);
    for (const g of SUPPORTED_GROUPS) {
      assert.equal(isSupportedGroup(g), true);
      assert.equal(keyExchangeLength(g), EXPECTED[g][0], `KE length of ${g}`);
      assert.equal(sharedSecretLength(g), EXPECTED[g][1], `secret length of ${g}`);
      assert.equal(groupName(g), EXPECTED[g][2]);
    }
  });

  test('unsupported group numbers', () => {
    for (const g of [0, 1, 2, 5, 13, 17, 18, 22, 30, 32, -14, 14.5, NaN]) {
      assert.equal(isSupportedGroup(g), false, String(g));
      assert.throws(() => createKeyExchange(g), isProtocolError);
      assert.throws(() => keyExchangeLength(g), isProtocolError);
    }
    assert.throws(() => createKeyExchange(2), /supported: 14 \(MODP-2048\)/);
  });
});

describe('key agreement with random keys', () => {
  for (const g of SUPPORTED_GROUPS) {
    test(`group ${g} (${EXPECTED[g][2]}): both sides agree, lengths exact`, () => {
      const runs = g <= 16 ? 3 : 10;
      for (let i = 0; i < runs; i++) {
        const a = createKeyExchange(g);
        const b = createKeyExchange(g);
        assert.equal(a.group, g);
        assert.equal(a.publicValue.length, EXPECTED[g][0]);
        assert.equal(b.publicValue.length, EXPECTED[g][0]);
        assert.notDeepEqual(Buffer.from(a.publicValue), Buffer.from(b.publicValue));
        const sa = a.computeSecret(b.publicValue);
        const sb = b.computeSecret(a.publicValue);
        assert.equal(sa.length, EXPECTED[g][1]);
        assert.deepEqual(Buffer.from(sa), Buffer.from(sb));
      }
    });
  }
});

describe('MODP (RFC 3526)', () => {
  const builtin: Record<14 | 15 | 16, string> = { 14: 'modp14', 15: 'modp15', 16: 'modp16' };
  for (const g of [14, 15, 16] as const) {
    test(`group ${g} prime is the RFC 3526 prime`, () => {
      const p = modpPrime(g);
      assert.equal(p.length * 8, g === 14 ? 2048 : g === 15 ? 3072 : 4096);
      // node:crypto's own copy of the RFC 3526 group
      assert.deepEqual(p, getDiffieHellman(builtin[g]).getPrime());
      // p = 2^N - 2^(N-64) - 1 + 2^64 * {...}: top and bottom 64 bits are all ones
      assert.equal(p.subarray(0, 8).toString('hex'), 'ff'.repeat(8));
      assert.equal(p.subarray(-8).toString('hex'), 'ff'.repeat(8));
      assert.equal(p.subarray(8, 16).toString('hex'), 'c90fdaa22168c234'); // pi's binary expansion
    });
  }

  test('public value and secret are left-padded to the prime length', () => {
    // x = 1: g^x = 2, a one-byte number that must travel as 256 bytes
    const one = createKeyExchange(14, { privateKey: Uint8Array.of(1) });
    assert.deepEqual(Buffer.from(one.publicValue), toBytes(2n, 256));
    // with x = 1 the secret is the peer value itself: 3 -> 00..03
    assert.deepEqual(Buffer.from(one.computeSecret(toBytes(3n, 256))), toBytes(3n, 256));
    const b = createKeyExchange(14);
    assert.deepEqual(Buffer.from(b.computeSecret(one.publicValue)), Buffer.from(b.publicValue));
    assert.deepEqual(Buffer.from(one.computeSecret(b.publicValue)), Buffer.from(b.publicValue));
  });

  test('fixed private value: g^x mod p', () => {
    const x = 0x1234567890abcdefn;
    const p = toBig(modpPrime(14));
    let r = 1n;
    let base = 2n;
    for (let e = x; e > 0n; e >>= 1n) {
      if (e & 1n) r = (r * base) % p;
      base = (base * base) % p;
    }
    const kx = createKeyExchange(14, { privateKey: toBytes(x, 8) });
    assert.deepEqual(Buffer.from(kx.publicValue), toBytes(r, 256));
  });

  for (const g of [14, 15, 16] as const) {
    test(`group ${g}: bad peer values rejected with VpnError PROTOCOL`, () => {
      const len = EXPECTED[g][0];
      const p = toBig(modpPrime(g));
      const kx = createKeyExchange(g);
      for (const y of [0n, 1n, p - 1n, p, p + 1n, 2n ** BigInt(len * 8) - 1n]) {
        assert.throws(() => kx.computeSecret(toBytes(y, len)), isProtocolError, `y = ${y === p ? 'p' : y}`);
      }
      assert.throws(() => kx.computeSecret(toBytes(2n, len - 1)), isProtocolError); // short
      assert.throws(() => kx.computeSecret(toBytes(2n, len + 1)), isProtocolError); // long (even if padded)
      assert.throws(() => kx.computeSecret(new Uint8Array(0)), isProtocolError);
      // the extreme values just inside the range are accepted
      assert.equal(kx.computeSecret(toBytes(2n, len)).length, len);
      assert.equal(kx.computeSecret(toBytes(p - 2n, len)).length, len);
    });
  }

  test('random peer values: a padded secret or a VpnError, nothing else', () => {
    const kx = createKeyExchange(14);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 256, maxLength: 256 }), (y) => {
        try {
          assert.equal(kx.computeSecret(y).length, 256);
        } catch (err) {
          assert.ok(isProtocolError(err), String(err));
        }
      }),
      { numRuns: 50 },
    );
  });
});

describe('ECP (RFC 5903)', () => {
  // RFC 5903 §8.1, 256-bit random ECP group
  const i = hex('C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433');
  const gix = hex('DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180');
  const giy = hex('5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3');
  const r = hex('C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53');
  const grx = hex('D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63');
  const gry = hex('56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB');
  const girx = hex('D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE');

  test('RFC 5903 §8.1 ECP-256 vector: KE data = x || y, secret = x', () => {
    const ini = createKeyExchange(19, { privateKey: i });
    const res = createKeyExchange(19, { privateKey: r });
    assert.deepEqual(Buffer.from(ini.publicValue), Buffer.concat([gix, giy]));
    assert.deepEqual(Buffer.from(res.publicValue), Buffer.concat([grx, gry]));
    assert.deepEqual(Buffer.from(ini.computeSecret(res.publicValue)), girx);
    assert.deepEqual(Buffer.from(res.computeSecret(ini.publicValue)), girx);
  });

  for (const g of [19, 20, 21] as const) {
    test(`group ${g}: bad peer points rejected with VpnError PROTOCOL`, () => {
      const len = EXPECTED[g][0];
      const size = len / 2;
      const kx = createKeyExchange(g);
      const good = Buffer.from(createKeyExchange(g).publicValue);
      // off the curve: y + 1
      const off = Buffer.from(good);
      off[len - 1] ^= 0x01;
      assert.throws(() => kx.computeSecret(off), isProtocolError);
      // all zero (0, 0) is not on the curve (b != 0); all ones exceeds the field
      assert.throws(() => kx.computeSecret(new Uint8Array(len)), isProtocolError);
      assert.throws(() => kx.computeSecret(new Uint8Array(len).fill(0xff)), isProtocolError);
      // with the 0x04 prefix (65/97/133 bytes), or compressed, or truncated
      assert.throws(() => kx.computeSecret(Buffer.concat([Buffer.of(4), good])), isProtocolError);
      assert.throws(() => kx.computeSecret(Buffer.concat([Buffer.of(2), good.subarray(0, size)])), isProtocolError);
      assert.throws(() => kx.computeSecret(good.subarray(0, len - 1)), isProtocolError);
      assert.throws(() => kx.computeSecret(good.subarray(0, size)), isProtocolError);
      // the good point still works
      assert.equal(kx.computeSecret(good).length, size);
    });
  }

  test('P-521: coordinates >= p rejected even when their residue mod p is on the curve', () => {
    // 66-byte coordinates hold 528 bits, so x + p and y + p (p = 2^521 - 1) still fit
    const p = 2n ** 521n - 1n;
    const kx = createKeyExchange(21);
    const pub = Buffer.from(createKeyExchange(21).publicValue);
    const x = toBig(pub.subarray(0, 66));
    const y = toBig(pub.subarray(66));
    assert.throws(() => kx.computeSecret(Buffer.concat([toBytes(x + p, 66), toBytes(y, 66)])), isProtocolError);
    assert.throws(() => kx.computeSecret(Buffer.concat([toBytes(x, 66), toBytes(y + p, 66)])), isProtocolError);
    assert.equal(kx.computeSecret(pub).length, 66);
  });

  test('random peer bytes: never accepted silently as a wrong-length secret', () => {
    const kx = createKeyExchange(19);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (y) => {
        try {
          assert.equal(kx.computeSecret(y).length, 32);
        } catch (err) {
          assert.ok(isProtocolError(err), String(err));
        }
      }),
      { numRuns: 100 },
    );
  });

  test('fixed private value must fit the field', () => {
    assert.throws(() => createKeyExchange(19, { privateKey: new Uint8Array(33).fill(1) }), RangeError);
  });
});

describe('Curve25519 (RFC 8031, RFC 7748)', () => {
  test('RFC 7748 §6.1 vector', () => {
    const a = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const aPub = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    const b = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const bPub = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const k = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
    const alice = createKeyExchange(31, { privateKey: a });
    const bob = createKeyExchange(31, { privateKey: b });
    assert.deepEqual(Buffer.from(alice.publicValue), aPub);
    assert.deepEqual(Buffer.from(bob.publicValue), bPub);
    assert.deepEqual(Buffer.from(alice.computeSecret(bPub)), k);
    assert.deepEqual(Buffer.from(bob.computeSecret(aPub)), k);
  });

  test('low-order peer values (all-zero secret) and bad lengths rejected', () => {
    const kx = createKeyExchange(31);
    const p = 2n ** 255n - 19n;
    const le = (n: bigint): Buffer => toBytes(n, 32).reverse();
    // u = 0, 1, p-1 (order 1/4/2 points), p, p+1 (non-canonical 0 and 1): all give a zero secret
    for (const u of [0n, 1n, p - 1n, p, p + 1n]) {
      assert.throws(() => kx.computeSecret(le(u)), isProtocolError, `u = ${u}`);
    }
    // RFC 7748 §6.1-era list: order-8 point 0xe0eb7a7c...
    assert.throws(
      () => kx.computeSecret(hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800')),
      isProtocolError,
    );
    assert.throws(() => kx.computeSecret(new Uint8Array(31)), isProtocolError);
    assert.throws(() => kx.computeSecret(new Uint8Array(33).fill(9)), isProtocolError);
    assert.throws(() => createKeyExchange(31, { privateKey: new Uint8Array(31) }), RangeError);
  });

  test('random peer values: 32-byte non-zero secret or VpnError', () => {
    const kx = createKeyExchange(31);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (u) => {
        try {
          const s = kx.computeSecret(u);
          assert.equal(s.length, 32);
          assert.ok(s.some((x) => x !== 0));
        } catch (err) {
          assert.ok(isProtocolError(err), String(err));
        }
      }),
      { numRuns: 100 },
    );
  });
});
