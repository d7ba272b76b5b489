import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { md4 } from '../../../src/crypto/md4.js';

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const md4Hex = (s: string | Uint8Array): string => hexOf(md4(typeof s === 'string' ? Buffer.from(s, 'latin1') : s));

test('RFC 1320 §A.5 test suite', () => {
  const suite: [string, string][] = [
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
    ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ];
  for (const [input, digest] of suite) assert.equal(md4Hex(input), digest, JSON.stringify(input));
});

test('long input: one million "a" (value from OpenSSL 3 legacy-provider MD4)', () => {
  assert.equal(md4Hex(new Uint8Array(1_000_000).fill(0x61)), 'bbce80cc6bb65e5c6745e30d4eeca9a4');
});

test('input views: a subarray hashes like a copy; input is not modified', () => {
  const big = Uint8Array.from({ length: 200 }, (_, i) => i);
  const view = big.subarray(17, 150);
  const before = Uint8Array.from(big);
  assert.equal(hexOf(md4(view)), hexOf(md4(Uint8Array.from(view))));
  assert.deepEqual(big, before);
  assert.equal(md4(view).length, 16);
});

/** Hash many inputs with Node's own MD4 from the OpenSSL legacy provider in a child process, or null if unavailable. */
function legacyMd4(inputs: Uint8Array[]): string[] | null {
  const script =
    "const c=require('crypto');let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{" +
    "console.log(JSON.stringify(JSON.parse(s).map(h=>c.createHash('md4').update(Buffer.from(h,'hex')).digest('hex'))))})";
  try {
    const out = execFileSync(process.execPath, ['--openssl-legacy-provider', '-e', script], {
      input: JSON.stringify(inputs.map(hexOf)),
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    return JSON.parse(out.toString()) as string[];
  } catch {
    return null;
  }
}

test('agrees with OpenSSL legacy MD4 around every padding boundary and on random inputs', (t) => {
  const inputs: Uint8Array[] = [];
  for (let n = 0; n <= 200; n++) inputs.push(Uint8Array.from({ length: n }, (_, i) => (i * 131 + n) & 0xff));
  inputs.push(...fc.sample(fc.uint8Array({ maxLength: 3000 }), { numRuns: 200, seed: 1320 }));
  const expected = legacyMd4(inputs);
  if (!expected) {
    t.skip('node --openssl-legacy-provider has no MD4 here');
    return;
  }
  inputs.forEach((b, i) => assert.equal(hexOf(md4(b)), expected[i], `length ${b.length}`));
});
