import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { VpnError } from '../../../src/errors.js';
import { AEADS, CBC_CIPHERS, DIGESTS } from '../../../src/crypto/registry.js';
import { ENCR, ESP_SUITES, INTEG, espSuite, espSuiteByTransforms, transformsOf, type EspSuite } from '../../../src/crypto/ipsec-algorithms.js';
import { ESP_SUITES as CONFIG_ESP_SUITES } from '../../../src/ipsec/config.js';
import { InboundSa, espOpenRaw, espSealRaw } from '../../../src/ipsec/esp-sa.js';

const unsupported = (e: unknown) => e instanceof VpnError && e.code === 'ALGORITHM_UNSUPPORTED';
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const rep = (byte: number, n: number) => Buffer.alloc(n, byte);
const ascii = (s: string) => Buffer.from(s, 'latin1');

describe('ESP suites: the registry view', () => {
  test('config.ts re-exports the same table', () => {
    assert.equal(CONFIG_ESP_SUITES, ESP_SUITES);
  });

  test('every suite links to the registry objects and agrees with their sizes', () => {
    for (const [kw, s] of Object.entries(ESP_SUITES)) {
      assert.equal(s.name, kw);
      assert.ok(Object.isFrozen(s));
      if (s.aead) {
        const a = s.aeadAlgorithm!;
        assert.ok(Object.values(AEADS).includes(a), kw);
        assert.equal(s.encKeyBytes, a.keyLength);
        assert.ok(a.tagLengths.includes(s.icvBytes), kw);
        assert.equal(s.saltBytes, 4);
        assert.equal(s.ivBytes, 8);
        assert.equal(s.blockBytes, 4);
        assert.equal(s.cbc, undefined);
        assert.equal(s.digest, undefined);
        assert.equal(s.integKeyBytes, 0);
      } else {
        const d = s.digest!;
        assert.ok(Object.values(DIGESTS).includes(d), kw);
        assert.equal(s.integKeyBytes, d.size);
        assert.equal(s.integ, d.nodeName);
        assert.equal(s.icvBytes, d.name === 'SHA1' ? 12 : d.size / 2); // RFC 2404, RFC 4868 §2.3
        assert.equal(s.aeadAlgorithm, undefined);
        if (s.cipher === 'aes-cbc') {
          assert.ok(Object.values(CBC_CIPHERS).includes(s.cbc!), kw);
          assert.equal(s.encKeyBytes, s.cbc!.keyLength);
          assert.equal(s.ivBytes, 16);
          assert.equal(s.blockBytes, 16);
        } else {
          assert.equal(s.cipher, 'null');
          assert.equal(s.cbc, undefined);
          assert.equal(s.encKeyBytes + s.ivBytes, 0);
        }
      }
    }
    assert.equal(ESP_SUITES['aes256gcm16']!.aeadAlgorithm, AEADS['AES-256-GCM']);
    assert.equal(ESP_SUITES['chacha20poly1305']!.aeadAlgorithm, AEADS['CHACHA20-POLY1305']);
    assert.equal(ESP_SUITES['aes192-sha384']!.cbc, CBC_CIPHERS['AES-192-CBC']);
    assert.equal(ESP_SUITES['aes192-sha384']!.digest, DIGESTS.SHA384);
  });
});

describe('espSuite (strongSwan keywords)', () => {
  test('case-insensitive, with the -esn / -noesn suffix reported', () => {
    assert.deepEqual(espSuite('aes128gcm16'), { suite: ESP_SUITES['aes128gcm16'], esn: undefined });
    assert.deepEqual(espSuite(' AES256-SHA256-ESN '), { suite: ESP_SUITES['aes256-sha256'], esn: true });
    assert.deepEqual(espSuite('chacha20poly1305-noesn'), { suite: ESP_SUITES['chacha20poly1305'], esn: false });
    for (const kw of Object.keys(ESP_SUITES)) assert.equal(espSuite(kw.toUpperCase()).suite, ESP_SUITES[kw]);
  });

  test("strongSwan's aliases", () => {
    assert.equal(espSuite('aes128gcm128').suite.name, 'aes128gcm16');
    assert.equal(espSuite('aes256gcm96').suite.name, 'aes256gcm12');
    assert.equal(espSuite('aes192gcm64-esn').suite.name, 'aes192gcm8');
    assert.equal(espSuite('aes-sha2_256').suite.name, 'aes128-sha256');
    assert.equal(espSuite('aes256-sha').suite.name, 'aes256-sha1');
    assert.equal(espSuite('null-sha2_512').suite.name, 'null-sha512');
  });

  test('unknown keywords throw ALGORITHM_UNSUPPORTED listing the supported ones', () => {
    for (const kw of ['3des-sha1', 'aes128ccm16', 'aes128', 'aes128-md5', '', '-esn', 'aes128gcm16-esn-esn', 'constructor', '__proto__']) {
      assert.throws(
        () => espSuite(kw),
        (e: unknown) => unsupported(e) && (e as Error).message.includes('aes128gcm16') && (e as Error).message.includes('null-sha1'),
        kw,
      );
    }
  });
});

describe('IKEv2 transform IDs (RFC 7296 §3.3.2, RFC 4106 §8.4, RFC 7634 §4)', () => {
  test('the IDs of the constants', () => {
    assert.deepEqual({ ...ENCR }, { NULL: 11, AES_CBC: 12, AES_GCM_8: 18, AES_GCM_12: 19, AES_GCM_16: 20, CHACHA20_POLY1305: 28 });
    assert.deepEqual({ ...INTEG }, { NONE: 0, HMAC_SHA1_96: 2, HMAC_SHA2_256_128: 12, HMAC_SHA2_384_192: 13, HMAC_SHA2_512_256: 14 });
  });

  test('known transforms select the suite', () => {
    const s = (t: Parameters<typeof espSuiteByTransforms>[0]) => espSuiteByTransforms(t).name;
    assert.equal(s({ encr: 20, keyBits: 128 }), 'aes128gcm16');
    assert.equal(s({ encr: 20, keyBits: 256, integ: 0 }), 'aes256gcm16');
    assert.equal(s({ encr: 19, keyBits: 192 }), 'aes192gcm12');
    assert.equal(s({ encr: 18, keyBits: 128 }), 'aes128gcm8');
    assert.equal(s({ encr: 28 }), 'chacha20poly1305');
    assert.equal(s({ encr: 12, keyBits: 128, integ: 2 }), 'aes128-sha1');
    assert.equal(s({ encr: 12, keyBits: 256, integ: 12 }), 'aes256-sha256');
    assert.equal(s({ encr: 12, keyBits: 192, integ: 13 }), 'aes192-sha384');
    assert.equal(s({ encr: 12, keyBits: 256, integ: 14 }), 'aes256-sha512');
    assert.equal(s({ encr: 11, integ: 12 }), 'null-sha256');
  });

  test('transformsOf is the reverse, for every suite', () => {
    for (const suite of Object.values(ESP_SUITES)) {
      const t = transformsOf(suite);
      assert.equal(espSuiteByTransforms(t), suite, suite.name);
      assert.equal(t.keyBits === undefined, suite.cipher === 'chacha20-poly1305' || suite.cipher === 'null', suite.name);
      assert.equal(t.integ === undefined, suite.aead, suite.name);
    }
    assert.deepEqual(transformsOf(ESP_SUITES['aes128-sha256']!), { encr: 12, keyBits: 128, integ: 12 });
    assert.deepEqual(transformsOf(ESP_SUITES['chacha20poly1305']!), { encr: 28 });
    assert.throws(() => transformsOf({ ...ESP_SUITES['aes128gcm16']!, name: 'x' } as EspSuite), unsupported);
  });

  test('other combinations throw ALGORITHM_UNSUPPORTED', () => {
    for (const t of [
      { encr: 3 }, // 3DES
      { encr: 13, keyBits: 128 }, // AES-CTR
      { encr: 20 }, // GCM without a key length
      { encr: 20, keyBits: 512 },
      { encr: 20, keyBits: 128, integ: 12 }, // AEAD with an INTEG transform
      { encr: 12, keyBits: 128 }, // CBC without integrity
      { encr: 12, keyBits: 128, integ: 1 }, // HMAC-MD5-96
      { encr: 12, integ: 12 }, // CBC without a key length
      { encr: 28, keyBits: 256 }, // RFC 7634 §4: no Key Length attribute
      { encr: 11 }, // NULL without integrity
      { encr: 11, keyBits: 128, integ: 12 },
    ]) {
      assert.throws(() => espSuiteByTransforms(t), (e: unknown) => unsupported(e) && (e as Error).message.includes('ENCR_AES_GCM'), JSON.stringify(t));
    }
  });
});

/**
 * HMAC truncation through the SA's integrity path: each vector's data is laid out as an ESP packet with NULL
 * encryption (SPI = data[0..4), seq = data[4..8), the rest as payload), so the ICV the SA computes over
 * SPI || seq || payload is the vector's truncated HMAC.
 */
interface MacVector {
  name: string;
  suite: string;
  key: Buffer;
  data: Buffer;
  icv: string;
}

const JEFE = (n: number) => ascii('Jefe'.repeat(n / 4));
const MAC_VECTORS: MacVector[] = [
  // RFC 2404 §3 (the cases with 20-byte keys, which HMAC-SHA1-96 in ESP requires)
  { name: 'RFC 2404 case 1', suite: 'null-sha1', key: rep(0x0b, 20), data: ascii('Hi There'), icv: 'b617318655057264e28bc0b6' },
  { name: 'RFC 2404 case 3', suite: 'null-sha1', key: rep(0xaa, 20), data: rep(0xdd, 50), icv: '125d7342b9ac11cd91a39af4' },
  { name: 'RFC 2404 case 5', suite: 'null-sha1', key: rep(0x0c, 20), data: ascii('Test With Truncation'), icv: '4c1a03424b55e07fe7f27be1' },
  // RFC 4868 §2.7.2.1
  { name: 'AUTH256-1', suite: 'null-sha256', key: rep(0x0b, 32), data: ascii('Hi There'), icv: '198a607eb44bfbc69903a0f1cf2bbdc5' },
  { name: 'AUTH256-2', suite: 'null-sha256', key: JEFE(32), data: ascii('what do ya want for nothing?'), icv: '167f928588c5cc2eef8e3093caa0e87c' },
  { name: 'AUTH256-3', suite: 'null-sha256', key: rep(0xaa, 32), data: rep(0xdd, 50), icv: 'cdcb1220d1ecccea91e53aba3092f962' },
  { name: 'AUTH256-4', suite: 'null-sha256', key: hex('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20'), data: rep(0xcd, 50), icv: '372efcf9b40b35c2115b1346903d2ef4' },
  // RFC 4868 §2.7.2.2
  { name: 'AUTH384-1', suite: 'null-sha384', key: rep(0x0b, 48), data: ascii('Hi There'), icv: 'b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973' },
  { name: 'AUTH384-2', suite: 'null-sha384', key: JEFE(48), data: ascii('what do ya want for nothing?'), icv: '2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d' },
  { name: 'AUTH384-3', suite: 'null-sha384', key: rep(0xaa, 48), data: rep(0xdd, 50), icv: '809f439be00274321d4a538652164b53554a508184a0c316' },
  {
    name: 'AUTH384-4',
    suite: 'null-sha384',
    key: hex('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20 0a0b0c0d0e0f10111213141516171819'),
    data: rep(0xcd, 50),
    icv: '5b540085c6e6358096532b2493609ed1cb298f774f87bb5c',
  },
  // RFC 4868 §2.7.2.3 (AUTH512-4 is left out: its printed value is known to be wrong)
  { name: 'AUTH512-1', suite: 'null-sha512', key: rep(0x0b, 64), data: ascii('Hi There'), icv: '637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8' },
  { name: 'AUTH512-2', suite: 'null-sha512', key: JEFE(64), data: ascii('what do ya want for nothing?'), icv: 'cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454' },
  { name: 'AUTH512-3', suite: 'null-sha512', key: rep(0xaa, 64), data: rep(0xdd, 50), icv: '2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8' },
];

describe('HMAC ICVs through the SA integrity path (RFC 2404, RFC 4868 §2.7.2)', () => {
  for (const v of MAC_VECTORS) {
    test(v.name, () => {
      const suite = ESP_SUITES[v.suite]!;
      const spi = v.data.readUInt32BE(0);
      const seq = v.data.readUInt32BE(4);
      const payload = v.data.subarray(8);
      const p = { suite, encKey: new Uint8Array(0), integKey: v.key };
      const esp = Buffer.from(espSealRaw({ ...p, spi, seq }, payload));
      assert.equal(esp.length, v.data.length + suite.icvBytes);
      assert.ok(esp.subarray(0, v.data.length).equals(v.data));
      assert.equal(esp.subarray(v.data.length).toString('hex'), v.icv);
      assert.ok(Buffer.from(espOpenRaw(p, esp)!).equals(payload));
      const bad = Buffer.from(esp);
      bad[bad.length - 1]! ^= 1;
      assert.equal(espOpenRaw(p, bad), null);

      // the inbound SA: the ICV verifies (the payload is no valid ESP trailer, so it drops for that reason)
      if (payload.length >= 2 && spi >= 1) {
        const sa = new InboundSa({ spi, suite, encKey: new Uint8Array(0), integKey: v.key });
        assert.deepEqual(sa.open(bad), { drop: 'bad-icv' });
        assert.equal(sa.highestSeq, 0, 'a packet failing its ICV leaves the window alone');
        assert.deepEqual(sa.open(esp), { drop: 'bad-padding' });
        assert.equal(sa.highestSeq, seq, 'the authentic packet was recorded');
        assert.deepEqual(sa.open(esp), { drop: 'replayed' });
      }
    });
  }
});
