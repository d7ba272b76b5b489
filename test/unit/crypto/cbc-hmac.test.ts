import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  cbcDecrypt,
  cbcEncryptInto,
  cbcHmacOpen,
  cbcHmacSeal,
  cbcPaddedLength,
  hmacInto,
  hmacVerify,
} from '../../../src/crypto/cbc-hmac.js';
import { cbcHmac, cbcCipher, digest } from '../../../src/crypto/registry.js';

const hex = (s: string) => Buffer.from(s, 'hex');

describe('CBC primitives', () => {
  test('AES-128-CBC NIST SP 800-38A F.2.1 (no padding)', () => {
    const c = cbcCipher('AES-128-CBC');
    const key = hex('2b7e151628aed2a6abf7158809cf4f3c');
    const iv = hex('000102030405060708090a0b0c0d0e0f');
    const p = hex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51');
    const out = Buffer.alloc(32);
    assert.equal(cbcEncryptInto(c, key, iv, null, p, out, 0, false), 32);
    assert.equal(out.toString('hex'), '7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2');
    assert.deepEqual(cbcDecrypt(c, key, iv, out, false), p);
  });

  test('PKCS#7: prefix + plaintext, padded length, padding checked on decrypt', () => {
    const c = cbcCipher('AES-256-CBC');
    const key = randomBytes(32);
    const iv = randomBytes(16);
    for (const n of [0, 1, 11, 12, 15, 16, 100]) {
      const pt = randomBytes(n);
      const prefix = Buffer.from([1, 2, 3, 4]);
      const len = cbcPaddedLength(c, 4 + n);
      assert.ok(len > 4 + n && len - (4 + n) <= 16 && len % 16 === 0);
      const out = Buffer.alloc(len);
      assert.equal(cbcEncryptInto(c, key, iv, prefix, pt, out, 0), len);
      // independent decryption with node's own PKCS#7 handling
      const d = createDecipheriv('aes-256-cbc', key, iv);
      assert.deepEqual(Buffer.concat([d.update(out), d.final()]), Buffer.concat([prefix, pt]));
      assert.deepEqual(cbcDecrypt(c, key, iv, out), Buffer.concat([prefix, pt]));
    }
  });

  test('bad padding and bad lengths give null', () => {
    const c = cbcCipher('AES-128-CBC');
    const key = randomBytes(16);
    const iv = Buffer.alloc(16);
    // encrypt a block ending in 0x05 0x04: not valid padding
    const block = Buffer.alloc(16, 0x05);
    block[14] = 0x04;
    const ct = Buffer.alloc(16);
    cbcEncryptInto(c, key, iv, null, block, ct, 0, false);
    assert.equal(cbcDecrypt(c, key, iv, ct), null);
    block.fill(0);
    cbcEncryptInto(c, key, iv, null, block, ct, 0, false);
    assert.equal(cbcDecrypt(c, key, iv, ct), null, 'pad byte 0');
    assert.equal(cbcDecrypt(c, key, iv, Buffer.alloc(0)), null);
    assert.equal(cbcDecrypt(c, key, iv, Buffer.alloc(17)), null);
  });
});

describe('HMAC helpers', () => {
  test('RFC 4231 test case 2 (HMAC-SHA256), full and truncated', () => {
    const d = digest('SHA256');
    const out = Buffer.alloc(34);
    hmacInto(d, Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'), out, 2);
    assert.equal(out.subarray(2).toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    assert.ok(hmacVerify(d, Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'), out.subarray(2, 18)));
    assert.ok(!hmacVerify(d, Buffer.from('Jeff'), Buffer.from('what do ya want for nothing?'), out.subarray(2)));
    assert.ok(!hmacVerify(d, Buffer.from('Jefe'), Buffer.from('x'), Buffer.alloc(0)));
    assert.ok(!hmacVerify(d, Buffer.from('Jefe'), Buffer.from('x'), Buffer.alloc(33)));
  });
});

describe('CBC + HMAC encrypt-then-MAC', () => {
  const combos: [string, string][] = [
    ['AES-128-CBC', 'SHA1'],
    ['AES-192-CBC', 'SHA256'],
    ['AES-256-CBC', 'SHA384'],
    ['AES-256-CBC', 'SHA512'],
  ];
  for (const [c, d] of combos) {
    test(`${c}/${d}: round trip in both layouts, MAC covers IV || CT`, () => {
      const suite = cbcHmac(c, d);
      const ek = randomBytes(suite.cipher.keyLength);
      const mk = randomBytes(suite.digest.size);
      const pt = randomBytes(77);
      const iv = randomBytes(16);
      const first = cbcHmacSeal(suite, ek, mk, pt, { iv, layout: 'mac-first' });
      const h = suite.digest.size;
      assert.equal(first.length, h + 16 + 80);
      assert.deepEqual(first.subarray(h, h + 16), iv);
      assert.deepEqual(first.subarray(0, h), createHmac(suite.digest.nodeName, mk).update(first.subarray(h)).digest());
      assert.deepEqual(cbcHmacOpen(suite, ek, mk, first, { layout: 'mac-first' }), pt);
      const last = cbcHmacSeal(suite, ek, mk, pt, { iv });
      assert.deepEqual(last.subarray(0, 16), iv);
      assert.deepEqual(last.subarray(16, 96), first.subarray(h + 16));
      assert.deepEqual(cbcHmacOpen(suite, ek, mk, last), pt);
    });
  }

  test('tamper anywhere is rejected (property)', () => {
    const suite = cbcHmac('AES-256-CBC', 'SHA256');
    const ek = randomBytes(32);
    const mk = randomBytes(32);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (pt, pos, x) => {
        const sealed = cbcHmacSeal(suite, ek, mk, pt, { macLength: 16 });
        assert.deepEqual(cbcHmacOpen(suite, ek, mk, sealed, { macLength: 16 }), Buffer.from(pt));
        const bad = Buffer.from(sealed);
        bad[pos % bad.length]! ^= x;
        assert.equal(cbcHmacOpen(suite, ek, mk, bad, { macLength: 16 }), null);
        assert.equal(cbcHmacOpen(suite, ek, mk, sealed.subarray(0, sealed.length - 1), { macLength: 16 }), null);
      }),
      { numRuns: 200 },
    );
  });

  test('random IVs differ between seals', () => {
    const suite = cbcHmac('AES-128-CBC', 'SHA1');
    const a = cbcHmacSeal(suite, Buffer.alloc(16, 1), Buffer.alloc(20, 2), Buffer.from('x'));
    const b = cbcHmacSeal(suite, Buffer.alloc(16, 1), Buffer.alloc(20, 2), Buffer.from('x'));
    assert.notDeepEqual(a.subarray(0, 16), b.subarray(0, 16));
  });
});
