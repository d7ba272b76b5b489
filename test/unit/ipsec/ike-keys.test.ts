import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { prf, prfPlus, prfOutputLength, prfPlusMaxLength, PRF_PLUS_MAX_BLOCKS, type PrfHash } from '../../../src/crypto/prf-plus.js';
import {
  AEAD_SALT_LENGTH,
  KEY_PAD,
  deriveChildKeys,
  deriveIkeKeys,
  deriveRekeyedIkeKeys,
  expandIkeKeys,
  natDetectionHash,
  pskAuth,
  signedOctets,
} from '../../../src/ipsec/ike-keys.js';
import { createKeyExchange, keyExchangeLength } from '../../../src/crypto/dh.js';
import { VpnError } from '../../../src/errors.js';

const h = (s: string): Buffer => Buffer.from(s, 'hex');

interface Kat {
  inputs: Record<
    'psk_ascii' | 'g_ir' | 'Ni' | 'Nr' | 'SPIi' | 'SPIr' | 'IKE_SA_INIT_request' | 'IKE_SA_INIT_response' | 'IDi_body' | 'IDr_body',
    string
  >;
  outputs: Record<'SKEYSEED' | 'SK_d' | 'SK_ai' | 'SK_ar' | 'SK_ei' | 'SK_er' | 'SK_pi' | 'SK_pr' | 'AUTH_i' | 'AUTH_r', string> & {
    child_keymat_aes128gcm: { encr_i_key_plus_salt: string; encr_r_key_plus_salt: string };
  };
}
const kat = JSON.parse(
  readFileSync(new URL('../../fixtures/ike/kat-ikev2-psk-modp2048.json', import.meta.url), 'utf8'),
) as Kat;
const I = kat.inputs;
const O = kat.outputs;

/** Minimal IKE message walk for the test: payload type -> bodies (without generic headers). */
function payloads(msg: Buffer): Array<{ type: number; body: Buffer }> {
  const out: Array<{ type: number; body: Buffer }> = [];
  let next = msg[16];
  let off = 28;
  assert.equal(msg.readUInt32BE(24), msg.length, 'IKE header length');
  while (next !== 0) {
    const len = msg.readUInt16BE(off + 2);
    out.push({ type: next, body: msg.subarray(off + 4, off + len) });
    next = msg[off];
    off += len;
  }
  assert.equal(off, msg.length);
  return out;
}

// IKE aes128-sha256-modp2048: PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128 (32-byte key), AES-CBC-128
const IKE_LENGTHS = { encKey: 16, integKey: 32, prfKey: 32 };

function katIkeKeys() {
  return deriveIkeKeys({
    prf: 'sha256',
    nonceI: h(I.Ni),
    nonceR: h(I.Nr),
    sharedSecret: h(I.g_ir),
    spiI: h(I.SPIi),
    spiR: h(I.SPIr),
    lengths: IKE_LENGTHS,
  });
}

describe('KAT: strongSwan 5.9.8 IKEv2 PSK, MODP-2048, aes128-sha256, ESP aes128gcm16', () => {
  test('inputs are consistent with the captured IKE_SA_INIT messages', () => {
    const req = payloads(h(I.IKE_SA_INIT_request));
    const res = payloads(h(I.IKE_SA_INIT_response));
    const nonceOf = (p: typeof req) => p.find((x) => x.type === 40)!.body.toString('hex');
    const keOf = (p: typeof req) => p.find((x) => x.type === 34)!.body;
    assert.equal(nonceOf(req), I.Ni);
    assert.equal(nonceOf(res), I.Nr);
    assert.equal(h(I.IKE_SA_INIT_request).subarray(0, 8).toString('hex'), I.SPIi);
    assert.equal(h(I.IKE_SA_INIT_response).subarray(8, 16).toString('hex'), I.SPIr);
    for (const ke of [keOf(req), keOf(res)]) {
      assert.equal(ke.readUInt16BE(0), 14);
      assert.equal(ke.length - 4, keyExchangeLength(14));
      // both public values pass our peer validation
      assert.equal(createKeyExchange(14).computeSecret(ke.subarray(4)).length, 256);
    }
    assert.equal(h(I.g_ir).length, 256);
  });

  test('SKEYSEED and all seven SK_* keys', () => {
    const k = katIkeKeys();
    assert.equal(k.skeyseed.toString('hex'), O.SKEYSEED);
    assert.equal(k.skD.toString('hex'), O.SK_d);
    assert.equal(k.skAi.toString('hex'), O.SK_ai);
    assert.equal(k.skAr.toString('hex'), O.SK_ar);
    assert.equal(k.skEi.toString('hex'), O.SK_ei);
    assert.equal(k.skEr.toString('hex'), O.SK_er);
    assert.equal(k.skPi.toString('hex'), O.SK_pi);
    assert.equal(k.skPr.toString('hex'), O.SK_pr);
  });

  test('prfKey defaults to the PRF output length', () => {
    const k = deriveIkeKeys({
      prf: 'sha256',
      nonceI: h(I.Ni),
      nonceR: h(I.Nr),
      sharedSecret: h(I.g_ir),
      spiI: h(I.SPIi),
      spiR: h(I.SPIr),
      lengths: { encKey: 16, integKey: 32 },
    });
    assert.equal(k.skPr.toString('hex'), O.SK_pr);
  });

  test('AUTH of the initiator: prf(prf(PSK, pad), request | Nr | prf(SK_pi, IDi\'))', () => {
    const k = katIkeKeys();
    const octets = signedOctets({
      message: h(I.IKE_SA_INIT_request),
      nonce: h(I.Nr),
      prf: 'sha256',
      skP: k.skPi,
      idPayloadBody: h(I.IDi_body),
    });
    assert.equal(octets.length, 464 + 32 + 32); // ipsec.md §4.7.2: 528 bytes
    assert.equal(pskAuth({ prf: 'sha256', psk: I.psk_ascii, signedOctets: octets }).toString('hex'), O.AUTH_i);
    assert.equal(
      pskAuth({ prf: 'sha256', psk: Buffer.from(I.psk_ascii, 'ascii'), signedOctets: octets }).toString('hex'),
      O.AUTH_i,
    );
  });

  test('AUTH of the responder: prf(prf(PSK, pad), response | Ni | prf(SK_pr, IDr\'))', () => {
    const k = katIkeKeys();
    const octets = signedOctets({
      message: h(I.IKE_SA_INIT_response),
      nonce: h(I.Ni),
      prf: 'sha256',
      skP: k.skPr,
      idPayloadBody: h(I.IDr_body),
    });
    assert.equal(octets.length, h(I.IKE_SA_INIT_response).length + 32 + 32);
    assert.equal(pskAuth({ prf: 'sha256', psk: I.psk_ascii, signedOctets: octets }).toString('hex'), O.AUTH_r);
  });

  test('first CHILD_SA KEYMAT for AES-GCM-16-128 (key + 4-byte salt, no integrity key)', () => {
    const k = katIkeKeys();
    const c = deriveChildKeys({
      prf: 'sha256',
      skD: k.skD,
      nonceI: h(I.Ni),
      nonceR: h(I.Nr),
      encKeyLen: 16 + AEAD_SALT_LENGTH,
      integKeyLen: 0,
    });
    assert.equal(c.initiator.encKey.toString('hex'), O.child_keymat_aes128gcm.encr_i_key_plus_salt);
    assert.equal(c.responder.encKey.toString('hex'), O.child_keymat_aes128gcm.encr_r_key_plus_salt);
    assert.equal(c.initiator.integKey.length, 0);
    assert.equal(c.responder.integKey.length, 0);
  });

  test('NAT_DETECTION_DESTINATION_IP of the request = SHA-1(SPIi | 0^8 | 172.31.250.1 | 500)', () => {
    const notify = payloads(h(I.IKE_SA_INIT_request))
      .filter((p) => p.type === 41)
      .map((p) => ({ type: p.body.readUInt16BE(2), data: p.body.subarray(4 + p.body[1]) }));
    const dst = notify.find((n) => n.type === 16389)!;
    const got = natDetectionHash(h(I.SPIi), Buffer.alloc(8), Buffer.of(172, 31, 250, 1), 500);
    assert.deepEqual(got, dst.data);
  });
});

describe('prf and prf+ (RFC 7296 §2.13)', () => {
  const ALGS: PrfHash[] = ['sha1', 'sha256', 'sha384', 'sha512'];

  test('prf is HMAC (RFC 4231 test case 2)', () => {
    assert.equal(
      prf('sha256', Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?')).toString('hex'),
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    assert.deepEqual(
      prf('sha256', Buffer.from('Jefe'), [Buffer.from('what do ya '), Buffer.from('want for nothing?')]),
      prf('sha256', Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?')),
    );
    for (const a of ALGS) assert.equal(prf(a, Buffer.alloc(3), Buffer.alloc(0)).length, prfOutputLength(a));
    assert.deepEqual(ALGS.map(prfOutputLength), [20, 32, 48, 64]);
  });

  test('unknown hash name is rejected', () => {
    assert.throws(
      () => prf('md5' as PrfHash, Buffer.alloc(1), Buffer.alloc(1)),
      (e: unknown) => e instanceof VpnError && e.code === 'ALGORITHM_UNSUPPORTED',
    );
  });

  /** Straight from the RFC text, block by block. */
  function reference(alg: PrfHash, key: Buffer, seed: Buffer, length: number): Buffer {
    const blocks: Buffer[] = [];
    let t = Buffer.alloc(0);
    for (let n = 1; Buffer.concat(blocks).length < length; n++) {
      t = createHmac(alg, key).update(Buffer.concat([t, seed, Buffer.of(n)])).digest();
      blocks.push(t);
    }
    return Buffer.concat(blocks).subarray(0, length);
  }

  test('T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02)', () => {
    const key = Buffer.from('key');
    const seed = Buffer.from('seed');
    const t1 = createHmac('sha256', key).update(Buffer.concat([seed, Buffer.of(1)])).digest();
    const t2 = createHmac('sha256', key).update(Buffer.concat([t1, seed, Buffer.of(2)])).digest();
    assert.deepEqual(prfPlus('sha256', key, seed, 32), t1);
    assert.deepEqual(prfPlus('sha256', key, seed, 64), Buffer.concat([t1, t2]));
    assert.deepEqual(prfPlus('sha256', key, seed, 40), Buffer.concat([t1, t2.subarray(0, 8)]));
  });

  test('matches the reference and is prefix-consistent (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALGS),
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 0, max: 600 }),
        (alg, key, seed, a, b) => {
          const k = Buffer.from(key);
          const s = Buffer.from(seed);
          const long = prfPlus(alg, k, s, Math.max(a, b));
          assert.deepEqual(long, reference(alg, k, s, Math.max(a, b)));
          assert.deepEqual(prfPlus(alg, k, s, Math.min(a, b)), long.subarray(0, Math.min(a, b)));
        },
      ),
      { numRuns: 100 },
    );
  });

  test('length 0 gives an empty buffer', () => {
    for (const a of ALGS) assert.equal(prfPlus(a, Buffer.alloc(4), Buffer.alloc(4), 0).length, 0);
  });

  test('255 blocks is the limit (counter 0xff); one byte more is an error', () => {
    for (const a of ALGS) {
      const max = prfOutputLength(a) * PRF_PLUS_MAX_BLOCKS;
      assert.equal(prfPlusMaxLength(a), max);
      const key = Buffer.from('k');
      const seed = Buffer.from('s');
      const out = prfPlus(a, key, seed, max);
      assert.equal(out.length, max);
      assert.deepEqual(out, reference(a, key, seed, max));
      assert.throws(() => prfPlus(a, key, seed, max + 1), RangeError);
    }
    assert.throws(() => prfPlus('sha256', Buffer.alloc(1), Buffer.alloc(1), -1), RangeError);
    assert.throws(() => prfPlus('sha256', Buffer.alloc(1), Buffer.alloc(1), 1.5), RangeError);
  });
});

describe('IKE and CHILD key layout', () => {
  const nonceI = Buffer.alloc(32, 0x11);
  const nonceR = Buffer.alloc(32, 0x22);
  const spiI = Buffer.alloc(8, 0x33);
  const spiR = Buffer.alloc(8, 0x44);
  const g = Buffer.alloc(32, 0x55);

  test('SK_* are consecutive slices of prf+ in the order d, ai, ar, ei, er, pi, pr', () => {
    for (const [alg, lengths] of [
      ['sha256', { encKey: 16, integKey: 32, prfKey: 32 }],
      ['sha384', { encKey: 36, integKey: 0, prfKey: 48 }], // ChaCha20-Poly1305: 32 + 4 salt
      ['sha512', { encKey: 20, integKey: 0, prfKey: 64 }], // AES-GCM-128: 16 + 4 salt
      ['sha1', { encKey: 24, integKey: 20, prfKey: 20 }],
    ] as const) {
      const k = deriveIkeKeys({ prf: alg, nonceI, nonceR, sharedSecret: g, spiI, spiR, lengths });
      assert.deepEqual(k.skeyseed, prf(alg, Buffer.concat([nonceI, nonceR]), g));
      const total = 3 * lengths.prfKey + 2 * lengths.integKey + 2 * lengths.encKey;
      const km = prfPlus(alg, k.skeyseed, Buffer.concat([nonceI, nonceR, spiI, spiR]), total);
      const joined = Buffer.concat([k.skD, k.skAi, k.skAr, k.skEi, k.skEr, k.skPi, k.skPr]);
      assert.deepEqual(joined, km);
      assert.equal(k.skAi.length, lengths.integKey);
      assert.equal(k.skEr.length, lengths.encKey);
      assert.equal(k.skPr.length, lengths.prfKey);
    }
  });

  test('rekeyed IKE SA: SKEYSEED = prf(SK_d(old), g^ir | Ni | Nr)', () => {
    const old = katIkeKeys();
    const lengths = { encKey: 16, integKey: 32, prfKey: 32 };
    const k = deriveRekeyedIkeKeys({ prf: 'sha256', oldSkD: old.skD, nonceI, nonceR, sharedSecret: g, spiI, spiR, lengths });
    const skeyseed = createHmac('sha256', old.skD).update(Buffer.concat([g, nonceI, nonceR])).digest();
    assert.deepEqual(k.skeyseed, skeyseed);
    assert.deepEqual(k, expandIkeKeys('sha256', skeyseed, nonceI, nonceR, spiI, spiR, lengths));
    // the old SA's PRF may differ from the new one
    const mixed = deriveRekeyedIkeKeys({
      prf: 'sha256',
      oldPrf: 'sha512',
      oldSkD: old.skD,
      nonceI,
      nonceR,
      sharedSecret: g,
      spiI,
      spiR,
      lengths,
    });
    assert.deepEqual(mixed.skeyseed, createHmac('sha512', old.skD).update(Buffer.concat([g, nonceI, nonceR])).digest());
  });

  test('CHILD KEYMAT order: encr i->r, integ i->r, encr r->i, integ r->i; PFS prepends g^ir', () => {
    const skD = Buffer.alloc(32, 0x66);
    const c = deriveChildKeys({ prf: 'sha256', skD, nonceI, nonceR, encKeyLen: 16, integKeyLen: 32 });
    const km = prfPlus('sha256', skD, Buffer.concat([nonceI, nonceR]), 96);
    assert.deepEqual(Buffer.concat([c.initiator.encKey, c.initiator.integKey, c.responder.encKey, c.responder.integKey]), km);
    assert.deepEqual(c.initiator.encKey, km.subarray(0, 16));
    assert.deepEqual(c.initiator.integKey, km.subarray(16, 48));
    assert.deepEqual(c.responder.encKey, km.subarray(48, 64));
    assert.deepEqual(c.responder.integKey, km.subarray(64, 96));
    const pfs = deriveChildKeys({ prf: 'sha256', skD, nonceI, nonceR, sharedSecret: g, encKeyLen: 36, integKeyLen: 0 });
    assert.deepEqual(
      Buffer.concat([pfs.initiator.encKey, pfs.responder.encKey]),
      prfPlus('sha256', skD, Buffer.concat([g, nonceI, nonceR]), 72),
    );
  });

  test('bad SPI or key lengths are programming errors', () => {
    const lengths = { encKey: 16, integKey: 32 };
    assert.throws(() => deriveIkeKeys({ prf: 'sha256', nonceI, nonceR, sharedSecret: g, spiI: Buffer.alloc(4), spiR, lengths }), RangeError);
    assert.throws(
      () => deriveIkeKeys({ prf: 'sha256', nonceI, nonceR, sharedSecret: g, spiI, spiR, lengths: { encKey: -1, integKey: 0 } }),
      RangeError,
    );
    assert.throws(
      () => deriveChildKeys({ prf: 'sha1', skD: g, nonceI, nonceR, encKeyLen: 3000, integKeyLen: 0 }),
      RangeError, // 6000 bytes > 255 * 20
    );
  });
});

describe('PSK AUTH and NAT-D', () => {
  test('the key pad is the 17 ASCII bytes "Key Pad for IKEv2"', () => {
    assert.equal(KEY_PAD.length, 17);
    assert.deepEqual(KEY_PAD, Buffer.from([0x4b, 0x65, 0x79, 0x20, 0x50, 0x61, 0x64, 0x20, 0x66, 0x6f, 0x72, 0x20, 0x49, 0x4b, 0x45, 0x76, 0x32]));
  });

  test('pskAuth = prf(prf(PSK, pad), octets); signedOctets concatenates message | nonce | prf(SK_p, ID)', () => {
    const octets = signedOctets({
      message: Buffer.from('msg'),
      nonce: Buffer.from('nonce'),
      prf: 'sha1',
      skP: Buffer.from('skp'),
      idPayloadBody: Buffer.from('id'),
    });
    assert.deepEqual(
      octets,
      Buffer.concat([Buffer.from('msgnonce'), createHmac('sha1', 'skp').update('id').digest()]),
    );
    const inner = createHmac('sha1', 'secret').update('Key Pad for IKEv2').digest();
    assert.deepEqual(pskAuth({ prf: 'sha1', psk: 'secret', signedOctets: octets }), createHmac('sha1', inner).update(octets).digest());
  });

  test('NAT-D: IPv4 and IPv6, port in network order, input checks', () => {
    const spiI = Buffer.alloc(8, 1);
    const spiR = Buffer.alloc(8, 2);
    const v6 = Buffer.alloc(16, 0xfe);
    const expected = (ip: Buffer, port: number): Buffer => {
      const pb = Buffer.alloc(2);
      pb.writeUInt16BE(port);
      return createHash('sha1').update(Buffer.concat([spiI, spiR, ip, pb])).digest();
    };
    assert.deepEqual(natDetectionHash(spiI, spiR, v6, 4500), expected(v6, 4500));
    assert.deepEqual(natDetectionHash(spiI, spiR, Buffer.of(10, 0, 0, 1), 65535), expected(Buffer.of(10, 0, 0, 1), 65535));
    assert.equal(natDetectionHash(spiI, spiR, v6, 0).length, 20);
    assert.throws(() => natDetectionHash(spiI, spiR, Buffer.alloc(5), 500), RangeError);
    assert.throws(() => natDetectionHash(spiI, spiR, Buffer.alloc(4), 65536), RangeError);
    assert.throws(() => natDetectionHash(spiI, Buffer.alloc(0), Buffer.alloc(4), 500), RangeError);
  });
});
