import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { VpnError } from '../../../src/errors.js';
import {
  checkDataKeys,
  dataKeysFromKey2,
  deriveKey2Prf,
  EKM_LABEL,
  key2FromEkm,
  openvpnMasterSecret,
  sliceKey2,
} from '../../../src/openvpn/keys.js';
import { hex, seq, OPENVPN_KEY2, OPENVPN_MASTER } from '../crypto/openvpn-prf-vectors.js';

const client = { preMaster: seq(0x00, 48), random1: seq(0x40, 32), random2: seq(0xa0, 32) };
const server = { random1: seq(0x80, 32), random2: seq(0xc0, 32) };
const CSID = hex('0102030405060708');
const SSID = hex('f1f2f3f4f5f6f7f8');

describe('key2 derivation', () => {
  test('master secret and key2 match the openssl-computed vectors', () => {
    assert.deepEqual(openvpnMasterSecret(client, server), OPENVPN_MASTER);
    assert.deepEqual(deriveKey2Prf(client, server, CSID, SSID), OPENVPN_KEY2);
  });

  test('client values come before server values, session ids matter', () => {
    const swapped = deriveKey2Prf(client, server, SSID, CSID);
    assert.notDeepEqual(swapped, OPENVPN_KEY2);
    const otherRandom = deriveKey2Prf({ ...client, random2: seq(0xc0, 32) }, { ...server, random2: seq(0xa0, 32) }, CSID, SSID);
    assert.notDeepEqual(otherRandom, OPENVPN_KEY2);
  });

  test('wrong input sizes are refused', () => {
    assert.throws(() => deriveKey2Prf({ ...client, preMaster: seq(0, 47) }, server, CSID, SSID), VpnError);
    assert.throws(() => deriveKey2Prf(client, server, CSID.subarray(0, 7), SSID), VpnError);
  });

  test('EKM: 256 bytes copied, other sizes refused', () => {
    assert.equal(EKM_LABEL, 'EXPORTER-OpenVPN-datakeys');
    const ekm = seq(1, 256);
    const k = key2FromEkm(ekm);
    assert.deepEqual(k, ekm);
    ekm[0] = 99;
    assert.equal(k[0], 1);
    assert.throws(() => key2FromEkm(seq(0, 255)), VpnError);
  });
});

describe('slicing', () => {
  const key2 = seq(0, 256);
  test('client (normal): encrypt K[0..], hmac K[64..], decrypt K[128..], hmac K[192..]', () => {
    const k = sliceKey2(key2);
    assert.deepEqual(k.encryptCipher, seq(0, 64));
    assert.deepEqual(k.encryptHmac, seq(64, 64));
    assert.deepEqual(k.decryptCipher, seq(128, 64));
    assert.deepEqual(k.decryptHmac, seq(192, 64));
  });
  test('server (inverse) mirrors the client; bidirectional uses keys[0] both ways', () => {
    const s = sliceKey2(key2, 'inverse');
    assert.deepEqual(s.encryptCipher, seq(128, 64));
    assert.deepEqual(s.decryptHmac, seq(64, 64));
    const b = sliceKey2(key2, 'bidirectional');
    assert.deepEqual(b.encryptCipher, b.decryptCipher);
    assert.deepEqual(b.encryptHmac, seq(64, 64));
    assert.deepEqual(b.decryptHmac, seq(64, 64));
  });
  test('slices are copies', () => {
    const src = seq(0, 256);
    const k = sliceKey2(src);
    src.fill(0);
    assert.equal(k.decryptHmac[0], 192);
  });
});

describe('all-zero key rejection', () => {
  test('an all-zero cipher key is rejected', () => {
    const k2 = seq(1, 256);
    k2.fill(0, 128, 128 + 32);
    assert.throws(() => dataKeysFromKey2(k2, 'AES-256-GCM', 'SHA1'), (e: unknown) => e instanceof VpnError && e.code === 'PROTOCOL');
    // only the used part counts: AES-128 uses 16 of the 32 zero bytes, still zero → rejected
    assert.throws(() => dataKeysFromKey2(k2, 'AES-128-GCM', 'SHA1'), VpnError);
  });
  test('zero bytes beyond the used length are fine', () => {
    const k2 = seq(1, 256);
    k2.fill(0, 16, 64); // encrypt cipher bytes 16..63 zero
    assert.doesNotThrow(() => dataKeysFromKey2(k2, 'AES-128-GCM', 'SHA1'));
    // AES-256 uses 32 bytes: 16 of them are zero, the rest are not, so the key is not all-zero
    assert.doesNotThrow(() => dataKeysFromKey2(k2, 'AES-256-GCM', 'SHA1'));
  });
  test('HMAC keys are checked for CBC and none+auth, not for AEAD', () => {
    const k2 = seq(1, 256);
    k2.fill(0, 64, 128);
    assert.throws(() => dataKeysFromKey2(k2, 'AES-256-CBC', 'SHA256'), VpnError);
    assert.throws(() => dataKeysFromKey2(k2, 'none', 'SHA1'), VpnError);
    assert.doesNotThrow(() => dataKeysFromKey2(k2, 'none', 'none'));
    // AEAD: the implicit IV comes from this slice, but 2.6 does not check it (no digest)
    assert.doesNotThrow(() => checkDataKeys(sliceKey2(k2), 'AES-256-GCM', 'SHA1'));
  });
});
