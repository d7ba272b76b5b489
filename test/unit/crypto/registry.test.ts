import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { VpnError } from '../../../src/errors.js';
import {
  aead,
  cbcHmac,
  cipherKeyLength,
  dataCipher,
  digest,
  digestSize,
  normalizeAuthName,
  normalizeCipherName,
  prf,
} from '../../../src/crypto/registry.js';

describe('crypto registry', () => {
  test('AEAD lookups, case-insensitive, with key lengths', () => {
    assert.equal(aead('aes-256-gcm').keyLength, 32);
    assert.equal(aead('AES-128-GCM').keyLength, 16);
    assert.equal(aead('AES-192-GCM').nodeName, 'aes-192-gcm');
    const cc = aead('chacha20-poly1305');
    assert.equal(cc.name, 'CHACHA20-POLY1305');
    assert.equal(cc.keyLength, 32);
    assert.equal(cc.nonceLength, 12);
    assert.equal(cc.tagLength, 16);
    assert.strictEqual(aead('AES-256-GCM'), aead('aes-256-gcm'));
  });

  test('unknown names throw VpnError ALGORITHM_UNSUPPORTED listing what is supported', () => {
    assert.throws(() => aead('BF-CBC'), (e: unknown) => e instanceof VpnError && e.code === 'ALGORITHM_UNSUPPORTED' && /AES-256-GCM/.test(e.message));
    assert.throws(() => aead('AES-256-CBC'), VpnError);
    assert.throws(() => cbcHmac('AES-256-GCM', 'SHA1'), VpnError);
    assert.throws(() => cbcHmac('AES-256-CBC', 'MD5'), VpnError);
    assert.throws(() => digest('none'), VpnError);
    assert.throws(() => dataCipher('DES-CBC'), VpnError);
  });

  test('CBC+HMAC suites are cached and carry sizes', () => {
    const s = cbcHmac('aes-256-cbc', 'sha512');
    assert.strictEqual(s, cbcHmac('AES-256-CBC', 'SHA512'));
    assert.equal(s.cipher.keyLength, 32);
    assert.equal(s.cipher.ivLength, 16);
    assert.equal(s.digest.size, 64);
  });

  test('digest sizes and cipher key lengths', () => {
    assert.equal(digestSize('SHA1'), 20);
    assert.equal(digestSize('sha-256'), 32);
    assert.equal(digestSize('SHA384'), 48);
    assert.equal(digestSize('SHA512'), 64);
    assert.equal(digestSize('none'), 0);
    assert.equal(digestSize('[null-digest]'), 0);
    assert.equal(cipherKeyLength('AES-128-CBC'), 16);
    assert.equal(cipherKeyLength('AES-192-CBC'), 24);
    assert.equal(cipherKeyLength('none'), 0);
    assert.equal(dataCipher('[null-cipher]').kind, 'none');
    assert.equal(dataCipher('AES-128-CBC').kind, 'cbc');
    assert.equal(dataCipher('AES-128-GCM').kind, 'aead');
  });

  test('name normalisation', () => {
    assert.equal(normalizeCipherName(' aes-128-gcm '), 'AES-128-GCM');
    assert.equal(normalizeCipherName('bf-cbc'), undefined);
    assert.equal(normalizeAuthName('SHA-1'), 'SHA1');
    assert.equal(normalizeAuthName('md5'), undefined);
  });

  test('prf lookup', () => {
    assert.equal(prf('TLS12-PRF-SHA256')(Buffer.alloc(4), Buffer.alloc(4), 10).length, 10);
    assert.throws(() => prf('nope' as 'TLS1-PRF'), VpnError);
  });
});
