import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { aeadOpen, aeadSeal, aeadSealInto, aeadOpenRaw } from '../../../src/crypto/aead.js';
import { aead } from '../../../src/crypto/registry.js';

const hex = (s: string) => Buffer.from(s.replace(/[\s:]/g, ''), 'hex');

// "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega, test cases 4 (AES-128) and 16 (AES-256)
const GCM_P = hex(
  'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
);
const GCM_A = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
const GCM_IV = hex('cafebabefacedbaddecaf888');
const GCM_CASES = [
  {
    name: 'AES-128-GCM',
    key: hex('feffe9928665731c6d6a8f9467308308'),
    c: hex('42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091'),
    t: hex('5bc94fbc3221a5db94fae95ae7121a47'),
  },
  {
    name: 'AES-256-GCM',
    key: hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308'),
    c: hex('522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662'),
    t: hex('76fc6ece0f4e1768cddf8853bb2d551b'),
  },
];

// RFC 8439 §2.8.2
const CC_KEY = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
const CC_NONCE = hex('070000004041424344454647');
const CC_AAD = hex('50515253c0c1c2c3c4c5c6c7');
const CC_P = Buffer.from(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
const CC_C = hex(`
  d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2 a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6
  3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b 1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36
  92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58 fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc
  3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b 61 16`);
const CC_T = hex('1a:e1:0b:59:4f:09:e2:6a:7e:90:2e:cb:d0:60:06:91');

describe('AES-GCM (GCM spec test cases 4 and 16)', () => {
  for (const tc of GCM_CASES) {
    test(`${tc.name} seal and open`, () => {
      const alg = aead(tc.name);
      const { ciphertext, tag } = aeadSeal(alg, tc.key, GCM_IV, GCM_P, GCM_A);
      assert.deepEqual(ciphertext, tc.c);
      assert.deepEqual(tag, tc.t);
      assert.deepEqual(aeadOpen(alg, tc.key, GCM_IV, tc.c, tc.t, GCM_A), GCM_P);
    });
    test(`${tc.name} rejects a flipped bit in ciphertext, tag or AAD`, () => {
      const alg = aead(tc.name);
      const c = Buffer.from(tc.c);
      c[5]! ^= 1;
      assert.equal(aeadOpen(alg, tc.key, GCM_IV, c, tc.t, GCM_A), null);
      const t = Buffer.from(tc.t);
      t[15]! ^= 0x80;
      assert.equal(aeadOpen(alg, tc.key, GCM_IV, tc.c, t, GCM_A), null);
      const a = Buffer.from(GCM_A);
      a[0]! ^= 1;
      assert.equal(aeadOpen(alg, tc.key, GCM_IV, tc.c, tc.t, a), null);
      assert.equal(aeadOpen(alg, tc.key, GCM_IV, tc.c, tc.t, null), null);
    });
  }
  test('truncated 12-byte tag (ESP ICV) is the prefix of the full tag', () => {
    const alg = aead('AES-128-GCM');
    const { tag } = aeadSeal(alg, GCM_CASES[0]!.key, GCM_IV, GCM_P, GCM_A, 12);
    assert.deepEqual(tag, GCM_CASES[0]!.t.subarray(0, 12));
    assert.deepEqual(aeadOpen(alg, GCM_CASES[0]!.key, GCM_IV, GCM_CASES[0]!.c, tag, GCM_A), GCM_P);
  });
});

describe('CHACHA20-POLY1305 (RFC 8439 §2.8.2)', () => {
  const alg = aead('CHACHA20-POLY1305');
  test('seal matches the RFC vector', () => {
    const { ciphertext, tag } = aeadSeal(alg, CC_KEY, CC_NONCE, CC_P, CC_AAD);
    assert.deepEqual(ciphertext, CC_C);
    assert.deepEqual(tag, CC_T);
  });
  test('open verifies and rejects tampering', () => {
    assert.deepEqual(aeadOpen(alg, CC_KEY, CC_NONCE, CC_C, CC_T, CC_AAD), CC_P);
    const c = Buffer.from(CC_C);
    c[c.length - 1]! ^= 1;
    assert.equal(aeadOpen(alg, CC_KEY, CC_NONCE, c, CC_T, CC_AAD), null);
  });
  test('only a 16-byte tag is accepted', () => {
    assert.throws(() => aeadSeal(alg, CC_KEY, CC_NONCE, CC_P, CC_AAD, 12), RangeError);
  });
});

describe('aeadSealInto / aeadOpenRaw', () => {
  test('writes ciphertext and tag at the given offsets (tag before ciphertext)', () => {
    const tc = GCM_CASES[1]!;
    const alg = aead(tc.name);
    const out = Buffer.alloc(3 + 16 + GCM_P.length, 0xee);
    const n = aeadSealInto(alg, tc.key, GCM_IV, GCM_A, GCM_P, out, 19, 3);
    assert.equal(n, GCM_P.length);
    assert.deepEqual(out.subarray(0, 3), Buffer.from([0xee, 0xee, 0xee]));
    assert.deepEqual(out.subarray(3, 19), tc.t);
    assert.deepEqual(out.subarray(19), tc.c);
    assert.deepEqual(aeadOpenRaw(alg, tc.key, GCM_IV, GCM_A, out.subarray(19), out.subarray(3, 19)), GCM_P);
  });
  test('checked helpers reject wrong key and nonce sizes', () => {
    const alg = aead('AES-256-GCM');
    assert.throws(() => aeadSeal(alg, Buffer.alloc(16), GCM_IV, GCM_P), RangeError);
    assert.throws(() => aeadSeal(alg, Buffer.alloc(32), Buffer.alloc(8), GCM_P), RangeError);
  });
  test('empty plaintext round trip', () => {
    const alg = aead('AES-128-GCM');
    const { ciphertext, tag } = aeadSeal(alg, Buffer.alloc(16, 1), GCM_IV, Buffer.alloc(0), GCM_A);
    assert.equal(ciphertext.length, 0);
    assert.deepEqual(aeadOpen(alg, Buffer.alloc(16, 1), GCM_IV, ciphertext, tag, GCM_A), Buffer.alloc(0));
  });
});
