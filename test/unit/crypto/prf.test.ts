import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { pHash, tls1Prf, tls12PrfSha256 } from '../../../src/crypto/prf.js';
import { prf } from '../../../src/crypto/registry.js';

import { hex, seq, PRE_MASTER, MASTER_SEED, EXPANSION_SEED, OPENVPN_MASTER, OPENVPN_KEY2 } from './openvpn-prf-vectors.js';

describe('TLS1-PRF', () => {
  test('OpenVPN master secret seed (openssl kdf vector)', () => {
    assert.equal(MASTER_SEED.toString('hex').slice(0, 42), Buffer.from('OpenVPN master secret').toString('hex'));
    assert.deepEqual(tls1Prf(PRE_MASTER, MASTER_SEED, 48), OPENVPN_MASTER);
  });

  test('OpenVPN key expansion seed, 256 bytes (openssl kdf vector)', () => {
    const key2 = tls1Prf(OPENVPN_MASTER, EXPANSION_SEED, 256);
    assert.equal(key2.length, 256);
    assert.deepEqual(key2, OPENVPN_KEY2);
  });

  test('odd-length secret shares the middle byte (openssl kdf vector)', () => {
    // openssl kdf -keylen 100 -kdfopt digest:MD5-SHA1 -kdfopt hexsecret:0102..23 (29 bytes) -kdfopt seed:'test label' TLS1-PRF
    const secret = hex('0102030405060708090a0b0c0d0e0f1011121314151617181920212223');
    const expected = hex(
      'cadda126013e4c7b4de18e588f9804372b5cbed99aa6e514333569687d5b2df92601c480dbadb9ba0777ff075648c9b9' +
        '09aa69ee18c76b2d62d3f9790b948cc16aaf9b7aaef57eeb2260c7b4b6794e3506c15b883f7f72e05ffa24837130c3f3' +
        '691f1fae',
    );
    assert.deepEqual(tls1Prf(secret, Buffer.from('test label'), 100), expected);
  });

  test('prefix property: shorter outputs are prefixes of longer ones', () => {
    const a = tls1Prf(PRE_MASTER, MASTER_SEED, 13);
    assert.deepEqual(a, OPENVPN_MASTER.subarray(0, 13));
    assert.equal(tls1Prf(PRE_MASTER, MASTER_SEED, 0).length, 0);
  });

  test('registry prf("TLS1-PRF") is this function', () => {
    assert.deepEqual(prf('TLS1-PRF')(PRE_MASTER, MASTER_SEED, 48), OPENVPN_MASTER);
  });
});

describe('P_hash', () => {
  test('P_SHA256 = TLS 1.2 PRF known vector (also checked with openssl kdf digest:SHA256)', () => {
    const out = tls12PrfSha256(
      hex('9bbe436ba940f017b17652849a71db35'),
      Buffer.concat([Buffer.from('test label'), hex('a0ba9f936cda311827a6f796ffd5198c')]),
      100,
    );
    assert.equal(
      out.toString('hex'),
      'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af' +
        '0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701' +
        '87347b66',
    );
  });

  test('first block is HMAC(secret, HMAC(secret, seed) || seed)', () => {
    const secret = Buffer.from('k');
    const seed = Buffer.from('seed');
    const a1 = createHmac('sha1', secret).update(seed).digest();
    const b1 = createHmac('sha1', secret).update(a1).update(seed).digest();
    assert.deepEqual(pHash('sha1', secret, seed, 20), b1);
  });

  test('rejects a negative length', () => {
    assert.throws(() => pHash('sha1', Buffer.alloc(1), Buffer.alloc(1), -1), RangeError);
  });
});
