import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { S_BOXES, desEncrypt, desEncrypt7, expandDesKey } from '../../../src/crypto/des.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

test('classic known-answer vectors (8-byte keys)', () => {
  const vectors: [string, string, string][] = [
    // key, plaintext, ciphertext
    ['133457799BBCDFF1', '0123456789ABCDEF', '85E813540F0AB405'], // the textbook worked example
    ['0123456789ABCDEF', '4E6F772069732074', '3FA40E8A984D4815'], // "Now is t" (FIPS 81 examples)
    ['0E329232EA6D0D73', '8787878787878787', '0000000000000000'],
    // NBS SP 500-20 variable-plaintext and variable-key known-answer tests
    ['0101010101010101', '8000000000000000', '95F8A5E5DD31D900'],
    ['0101010101010101', '4000000000000000', 'DD7F121CA5015619'],
    ['8001010101010101', '0000000000000000', '95A8D72813DAA94D'],
    ['4001010101010101', '0000000000000000', '0EEC1487DD8C26D5'],
    // all-zero and all-one keys (weak keys), values from OpenSSL legacy DES-ECB
    ['0101010101010101', '0000000000000000', '8CA64DE9C1B123A7'],
    ['FEFEFEFEFEFEFEFE', 'FFFFFFFFFFFFFFFF', '7359B2163E4EDC58'],
  ];
  for (const [k, p, c] of vectors) assert.equal(hexOf(desEncrypt(hex(k), hex(p))), c, `key ${k}`);
});

test('parity bits of the 8-byte key are ignored', () => {
  const p = hex('0123456789ABCDEF');
  const k = hex('133457799BBCDFF1');
  const flipped = k.map((b) => b ^ 1);
  assert.deepEqual(desEncrypt(flipped, p), desEncrypt(k, p));
});

test('RFC 2759 §9.3 DES key generation (password "MyPw")', () => {
  assert.equal(hexOf(expandDesKey(hex('FC156AF7EDCD6C'))), 'FD0B5B5E7F6E34D9');
  assert.equal(hexOf(expandDesKey(hex('0EDDE3337D427F'))), '0E6E796737EA08FE');
});

test('RFC 2759 §9.2: the three DES blocks of the NT-Response', () => {
  // PasswordHash 44EBBA8D5312B8D611474411F56989AE zero-padded to 21 bytes, Challenge D02E4386BCE91226,
  // NT-Response 82309ECD8D708B5E A08FAA3981CD8354 4233114A3D85D6DF
  const z = hex('44EBBA8D5312B8D611474411F56989AE0000000000');
  const challenge = hex('D02E4386BCE91226');
  assert.equal(hexOf(desEncrypt7(z.subarray(0, 7), challenge)), '82309ECD8D708B5E');
  assert.equal(hexOf(desEncrypt7(z.subarray(7, 14), challenge)), 'A08FAA3981CD8354');
  assert.equal(hexOf(desEncrypt7(z.subarray(14, 21), challenge)), '4233114A3D85D6DF');
});

test('expandDesKey: odd parity, 7 key bits per byte, and desEncrypt7 == desEncrypt(expand)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 7, maxLength: 7 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), (k7, block) => {
      const k8 = expandDesKey(k7);
      for (const b of k8) {
        let ones = 0;
        for (let i = 0; i < 8; i++) ones += (b >> i) & 1;
        assert.equal(ones % 2, 1);
      }
      // the 56 non-parity bits, concatenated, are the 7-byte key again
      let bits = '';
      for (const b of k8) bits += (b >> 1).toString(2).padStart(7, '0');
      const back = Uint8Array.from(bits.match(/.{8}/g)!.map((s) => parseInt(s, 2)));
      assert.deepEqual(back, k7);
      assert.deepEqual(desEncrypt7(k7, block), desEncrypt(k8, block));
    }),
    { numRuns: 100 },
  );
});

test('each S-box row is a permutation of 0..15', () => {
  assert.equal(S_BOXES.length, 8);
  for (const box of S_BOXES) {
    assert.equal(box.length, 64);
    for (let row = 0; row < 4; row++) assert.deepEqual([...box.slice(row * 16, row * 16 + 16)].sort((a, b) => a - b), [...Array(16).keys()]);
  }
});

test('bad lengths are RangeErrors', () => {
  assert.throws(() => desEncrypt(new Uint8Array(7), new Uint8Array(8)), RangeError);
  assert.throws(() => desEncrypt(new Uint8Array(8), new Uint8Array(9)), RangeError);
  assert.throws(() => expandDesKey(new Uint8Array(8)), RangeError);
});

/** DES-ECB from the OpenSSL legacy provider in a child process, or null if unavailable. */
function legacyDes(cases: [Uint8Array, Uint8Array][]): string[] | null {
  const script =
    "const c=require('crypto');let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{" +
    "console.log(JSON.stringify(JSON.parse(s).map(([k,p])=>{const e=c.createCipheriv('des-ecb',Buffer.from(k,'hex'),null);" +
    "e.setAutoPadding(false);return e.update(Buffer.from(p,'hex')).toString('hex').toUpperCase()})))})";
  try {
    const out = execFileSync(process.execPath, ['--openssl-legacy-provider', '-e', script], {
      input: JSON.stringify(cases.map(([k, p]) => [hexOf(k), hexOf(p)])),
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    return JSON.parse(out.toString()) as string[];
  } catch {
    return null;
  }
}

test('agrees with OpenSSL legacy DES-ECB on random keys and blocks', (t) => {
  const block = fc.uint8Array({ minLength: 8, maxLength: 8 });
  const cases = fc.sample(fc.tuple(block, block), { numRuns: 300, seed: 463 });
  const expected = legacyDes(cases);
  if (!expected) {
    t.skip('node --openssl-legacy-provider has no DES here');
    return;
  }
  cases.forEach(([k, p], i) => assert.equal(hexOf(desEncrypt(k, p)), expected[i], `key ${hexOf(k)} block ${hexOf(p)}`));
});
