/**
 * The SK payload (RFC 7296 §3.14, RFC 5282, RFC 7634): seal/open round trips for every IKE cipher we negotiate,
 * the wire layout checked against node:crypto directly (AEAD nonce = salt | IV, AAD = everything before the
 * IV; CBC ICV over header … ciphertext), minimal padding, empty SK (DPD), and any change to header, IV,
 * ciphertext or ICV rejected (null, never an exception); parsing random bodies only ever throws WireError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import { IkeExchange, IkeFlags, PayloadType } from '../../../src/wire/ike-constants.js';
import { IKE_HEADER_LENGTH, parseIkeMessage, type IkeHeaderFields, type IkePayload } from '../../../src/wire/ike.js';
import { buildNotify } from '../../../src/wire/ike-payloads.js';
import { parseIkeProposals, type IkeEncr, type IkeInteg } from '../../../src/ipsec/ike/proposals.js';
import { openMessage, sealMessage, skBodyLength, type SkAlgorithms, type SkKeys } from '../../../src/ipsec/ike/sk.js';

const header: IkeHeaderFields = { spiI: Buffer.from('0102030405060708', 'hex'), spiR: Buffer.from('1112131415161718', 'hex'), exchange: IkeExchange.IKE_AUTH, flags: IkeFlags.INITIATOR, messageId: 1 };

function algs(keyword: string): SkAlgorithms {
  const o = parseIkeProposals([keyword])[0]!;
  return { encr: o.encrs[0]!, integ: o.integs[0] };
}
const keysFor = (a: SkAlgorithms): SkKeys => ({ encKey: randomBytes(a.encr.keyBytes), integKey: randomBytes(a.integ?.keyBytes ?? 0) });

const SUITES = [
  'aes128gcm16-prfsha256-ecp256',
  'aes256gcm16-prfsha256-x25519',
  'aes128gcm8-prfsha256-ecp256',
  'aes192gcm12-prfsha384-ecp384',
  'chacha20poly1305-prfsha256-x25519',
  'aes128-sha256-modp2048',
  'aes256-sha384-ecp384',
  'aes192-sha1-modp2048',
  'aes256-sha512-modp3072',
];

const notifyPayload = (type: number, data = new Uint8Array(0)): IkePayload => ({ type: PayloadType.NOTIFY, critical: false, body: buildNotify({ protocol: 0, spi: new Uint8Array(0), type, data }) });
const inner: IkePayload[] = [
  { type: PayloadType.IDi, critical: false, body: Buffer.from('02000000636c69656e742e6c6162', 'hex') },
  notifyPayload(16384),
  { type: PayloadType.AUTH, critical: false, body: Buffer.concat([Buffer.from('02000000', 'hex'), randomBytes(32)]) },
];

for (const kw of SUITES) {
  test(`${kw}: seal/open round trip, lengths, tampering rejected`, () => {
    const a = algs(kw);
    const k = keysFor(a);
    const m = sealMessage(header, inner, a, k);
    const parsed = parseIkeMessage(m);
    assert.equal(parsed.header.length, m.length);
    assert.equal(parsed.header.nextPayload, PayloadType.SK);
    const sk = parsed.payloads[0]!;
    assert.equal(sk.innerNext, PayloadType.IDi);
    const innerLen = inner.reduce((n, p) => n + 4 + p.body.length, 0);
    assert.equal(sk.body.length, skBodyLength(a, innerLen));
    const back = openMessage(m, parsed, a, k);
    assert.ok(back);
    assert.deepEqual(back.map((p) => [p.type, Buffer.from(p.body).toString('hex')]), inner.map((p) => [p.type, Buffer.from(p.body).toString('hex')]));
    // every region is covered: header, SK generic header, IV, ciphertext, ICV
    for (const off of [0, 20, IKE_HEADER_LENGTH + 1, IKE_HEADER_LENGTH + 4, IKE_HEADER_LENGTH + 10, m.length - 20, m.length - 1]) {
      const t = Uint8Array.from(m);
      t[off]! ^= 0x01;
      let r: IkePayload[] | null;
      try {
        r = openMessage(t, parseIkeMessage(t), a, k);
      } catch (e) {
        assert.ok(e instanceof WireError, `offset ${off}: only WireError (${String(e)})`);
        continue; // a flipped length byte makes the message unparsable, which is also a rejection
      }
      assert.equal(r, null, `a flipped bit at ${off} is rejected`);
    }
    // the wrong direction's keys do not open it
    assert.equal(openMessage(m, parsed, a, keysFor(a)), null);
  });
}

test('AEAD layout: nonce = salt | 8-byte IV, AAD = IKE header and SK header, no padding', () => {
  const a = algs('aes128gcm16-prfsha256-ecp256');
  const k = keysFor(a);
  const iv = Buffer.from('0000000000000007', 'hex');
  const m = Buffer.from(sealMessage(header, inner, a, k, { iv }));
  const bodyOff = IKE_HEADER_LENGTH + 4;
  assert.deepEqual(m.subarray(bodyOff, bodyOff + 8), iv);
  const d = createDecipheriv('aes-128-gcm', k.encKey.subarray(0, 16), Buffer.concat([k.encKey.subarray(16), iv]), { authTagLength: 16 });
  d.setAAD(m.subarray(0, bodyOff));
  d.setAuthTag(m.subarray(m.length - 16));
  const plain = Buffer.concat([d.update(m.subarray(bodyOff + 8, m.length - 16)), d.final()]);
  assert.equal(plain[plain.length - 1], 0, 'Pad Length 0');
  assert.equal(plain.length, inner.reduce((n, p) => n + 4 + p.body.length, 0) + 1);
});

test('CBC layout: random 16-byte IV, ICV = truncated HMAC over header … ciphertext, minimal padding', () => {
  const a = algs('aes128-sha256-modp2048');
  const k = keysFor(a);
  const m = Buffer.from(sealMessage(header, inner, a, k));
  const bodyOff = IKE_HEADER_LENGTH + 4;
  const icv = m.subarray(m.length - 16);
  assert.deepEqual(icv, createHmac('sha256', k.integKey).update(m.subarray(0, m.length - 16)).digest().subarray(0, 16));
  const d = createDecipheriv('aes-128-cbc', k.encKey, m.subarray(bodyOff, bodyOff + 16));
  d.setAutoPadding(false);
  const plain = Buffer.concat([d.update(m.subarray(bodyOff + 16, m.length - 16)), d.final()]);
  const innerLen = inner.reduce((n, p) => n + 4 + p.body.length, 0);
  assert.equal(plain[plain.length - 1], plain.length - innerLen - 1);
  assert.ok(plain[plain.length - 1]! < 16, 'minimal padding');
});

test('a message sealed by hand with node:crypto (CBC, odd padding) opens: the receiver accepts any padding', () => {
  const a = algs('aes256-sha384-ecp384');
  const k = keysFor(a);
  // one empty-payload chain (DPD) with 31 bytes of padding: Pad Length 31, two blocks
  const plain = Buffer.alloc(32, 0xab);
  plain[31] = 31;
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', k.encKey, iv);
  c.setAutoPadding(false);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  const bodyLen = 16 + ct.length + 24;
  const msg = Buffer.alloc(IKE_HEADER_LENGTH + 4 + bodyLen);
  Buffer.from(header.spiI).copy(msg, 0);
  Buffer.from(header.spiR).copy(msg, 8);
  msg[16] = PayloadType.SK;
  msg[17] = 0x20;
  msg[18] = IkeExchange.INFORMATIONAL;
  msg[19] = IkeFlags.RESPONSE;
  msg.writeUInt32BE(5, 20);
  msg.writeUInt32BE(msg.length, 24);
  msg[28] = 0; // no inner payload
  msg.writeUInt16BE(4 + bodyLen, 30);
  iv.copy(msg, 32);
  ct.copy(msg, 48);
  createHmac('sha384', k.integKey).update(msg.subarray(0, msg.length - 24)).digest().copy(msg, msg.length - 24, 0, 24);
  assert.deepEqual(openMessage(msg, parseIkeMessage(msg), a, k), []);
});

test('empty SK (DPD) round trip for AEAD and CBC', () => {
  for (const kw of ['aes256gcm16-prfsha256-x25519', 'aes128-sha1-modp2048']) {
    const a = algs(kw);
    const k = keysFor(a);
    const m = sealMessage({ ...header, exchange: IkeExchange.INFORMATIONAL }, [], a, k);
    const parsed = parseIkeMessage(m);
    assert.equal(parsed.payloads[0]!.innerNext, 0);
    assert.deepEqual(openMessage(m, parsed, a, k), []);
  }
});

test('property: random inner chains round-trip; random SK bodies never open and only throw WireError', () => {
  const suites = SUITES.map(algs);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: suites.length - 1 }), fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 5 }), (i, bodies) => {
      const a = suites[i]!;
      const k = keysFor(a);
      const chain = bodies.map((b) => ({ type: PayloadType.VENDOR, critical: false, body: b }));
      const m = sealMessage(header, chain, a, k);
      const back = openMessage(m, parseIkeMessage(m), a, k)!;
      assert.deepEqual(back.map((p) => Buffer.from(p.body).toString('hex')), bodies.map((b) => Buffer.from(b).toString('hex')));
    }),
    { numRuns: 150 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: suites.length - 1 }), fc.uint8Array({ minLength: 0, maxLength: 200 }), (i, body) => {
      const a = suites[i]!;
      const msg = Buffer.alloc(IKE_HEADER_LENGTH + 4 + body.length);
      Buffer.from(header.spiI).copy(msg, 0);
      msg[16] = PayloadType.SK;
      msg[17] = 0x20;
      msg.writeUInt32BE(msg.length, 24);
      msg.writeUInt16BE(4 + body.length, 30);
      Buffer.from(body).copy(msg, 32);
      try {
        assert.equal(openMessage(msg, parseIkeMessage(msg), a, keysFor(a)), null);
      } catch (e) {
        assert.ok(e instanceof WireError, String(e));
      }
    }),
    { numRuns: 300 },
  );
});

test('wrong key sizes are programming errors (RangeError), not silent failures', () => {
  const a = algs('aes128gcm16-prfsha256-ecp256');
  assert.throws(() => sealMessage(header, [], a, { encKey: randomBytes(16), integKey: new Uint8Array(0) }), RangeError);
  const enc: IkeEncr = a.encr;
  assert.equal(enc.keyBytes, 20, 'AES-GCM-128 SK_e = 16-byte key + 4-byte salt');
  const cbc = algs('aes256-sha512-modp2048');
  const integ: IkeInteg = cbc.integ!;
  assert.equal(integ.keyBytes, 64);
  assert.equal(integ.icvBytes, 32);
});
