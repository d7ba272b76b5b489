import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { VpnError } from '../../../src/errors.js';
import { ESP_SUITES, type EspSuite } from '../../../src/crypto/ipsec-algorithms.js';
import { InboundSa, OutboundSa, espOpenRaw, espOverhead, espSealRaw, innerMtu, type EspDrop, type EspSaParams } from '../../../src/ipsec/esp-sa.js';
import { buildIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';
import { buildIpv6, parseIpv6Address } from '../../../src/wire/ipv6.js';
import { mutated } from '../wire/helpers.js';

const FIX = new URL('../../fixtures/esp/', import.meta.url);
const hex = (s: string) => Buffer.from(s, 'hex');
const TWO_32 = 2 ** 32;
const LOCAL = '10.203.0.9';
const REMOTE_NET = { address: '10.200.0.0', prefix: 24 };
const SELECTORS = { remote: [REMOTE_NET], local: LOCAL };
const EMPTY = new Uint8Array(0);

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 17 + 5) & 0xff));
function keys(suite: EspSuite, seed = 1): Pick<EspSaParams, 'encKey' | 'integKey'> {
  return { encKey: bytes(suite.encKeyBytes + suite.saltBytes, seed), integKey: bytes(suite.integKeyBytes, seed + 100) };
}
function pair(suite: EspSuite, opts: { esn?: boolean; lastSeq?: number; replayWindow?: number; selectors?: boolean } = {}) {
  const base = { spi: 0xc1000001, suite, ...keys(suite), esn: opts.esn ?? false };
  const out = new OutboundSa({ ...base, lastSeq: opts.lastSeq ?? 0 });
  const inn = new InboundSa({ ...base, replayWindow: opts.replayWindow, selectors: opts.selectors === false ? undefined : SELECTORS });
  return { out, inn, base };
}
/** An inner IPv4/UDP-ish packet from behind the gateway to us. */
function inner(payloadLength: number, src = '10.200.0.7', dst = LOCAL): Buffer {
  return Buffer.from(buildIpv4({ src: parseIpv4Address(src), dst: parseIpv4Address(dst), protocol: 17, id: payloadLength }, randomBytes(payloadLength)));
}
const opened = (r: { packet: Uint8Array } | { drop: EspDrop }): Buffer => {
  assert.ok('packet' in r, `dropped: ${'drop' in r ? r.drop : ''}`);
  return Buffer.from(r.packet);
};
const ALL = Object.values(ESP_SUITES);
const SAMPLE = ['aes128gcm16', 'aes256gcm8', 'chacha20poly1305', 'aes128-sha1', 'aes256-sha512', 'null-sha256'].map((n) => ESP_SUITES[n]!);

interface GcmCase {
  case: number;
  keyBits: number;
  key: string;
  salt: string;
  spi: string;
  seqHigh: string | null;
  seq: string;
  iv: string;
  plaintext: string;
  packet: string;
}

describe('draft-mcgrew-gcm-test-01 AES-GCM ESP test cases', () => {
  const cases = (JSON.parse(readFileSync(new URL('draft-mcgrew-gcm-test-01.json', FIX), 'utf8')) as { cases: GcmCase[] }).cases;
  assert.equal(cases.length, 14);
  for (const c of cases) {
    const esn = c.seqHigh !== null;
    test(`case ${c.case}: AES-${c.keyBits}, SPI ${c.spi}, ${esn ? `ESN ${c.seqHigh}${c.seq}` : `seq ${c.seq}`}`, () => {
      const suite = ESP_SUITES[`aes${c.keyBits}gcm16`]!;
      const p = { suite, encKey: hex(c.key + c.salt), integKey: EMPTY, ...(esn ? { seqHigh: parseInt(c.seqHigh!, 16) } : {}) };
      const sealed = espSealRaw({ ...p, spi: parseInt(c.spi, 16), seq: parseInt(c.seq, 16), iv: hex(c.iv) }, hex(c.plaintext));
      assert.equal(Buffer.from(sealed).toString('hex'), c.packet);
      assert.equal(Buffer.from(espOpenRaw(p, hex(c.packet))!).toString('hex'), c.plaintext);
      // the AAD layout is authenticated: 12 bytes (SPI | seq-high | seq-low) with ESN, 8 without
      const other = esn ? { suite, encKey: p.encKey, integKey: EMPTY } : { ...p, seqHigh: 0 };
      assert.equal(espOpenRaw(other, hex(c.packet)), null);
      if (!esn && c.spi !== '00000000') {
        // the inbound SA authenticates it too; the draft's trailers carry Next Header 1, which tunnel mode drops
        const sa = new InboundSa({ spi: parseInt(c.spi, 16), suite, encKey: p.encKey, integKey: EMPTY });
        assert.deepEqual(sa.open(hex(c.packet)), { drop: 'bad-next-header' });
        assert.equal(sa.highestSeq, parseInt(c.seq, 16));
      }
    });
  }
});

describe('RFC 7634 Appendix A (ChaCha20-Poly1305 ESP example)', () => {
  const v = JSON.parse(readFileSync(new URL('rfc7634-appendix-a.json', FIX), 'utf8')) as Record<string, string>;
  const suite = ESP_SUITES['chacha20poly1305']!;
  const encKey = hex(v.key! + v.salt!);
  test('the packet byte-exact from the plaintext, and back', () => {
    const sealed = espSealRaw({ suite, encKey, integKey: EMPTY, spi: 0x01020304, seq: 5, iv: hex(v.iv!) }, hex(v.plaintext!));
    assert.equal(Buffer.from(sealed).toString('hex'), v.packet);
    assert.equal(Buffer.from(espOpenRaw({ suite, encKey, integKey: EMPTY }, hex(v.packet!))!).toString('hex'), v.plaintext);
  });
  test('InboundSa returns the inner ICMP packet byte-exact (selectors 198.51.100.0/24 → 192.0.2.5)', () => {
    const sa = new InboundSa({ spi: 0x01020304, suite, encKey, integKey: EMPTY, selectors: { remote: [{ address: '198.51.100.0', prefix: 24 }], local: '192.0.2.5' } });
    assert.equal(opened(sa.open(hex(v.packet!))).toString('hex'), v.inner);
    assert.equal(sa.highestSeq, 5);
    assert.deepEqual(sa.open(hex(v.packet!)), { drop: 'replayed' });
  });
  test('OutboundSa builds the same plaintext (padding 01 02, Pad Length 2, Next Header 4), IV = the sequence number', () => {
    const out = new OutboundSa({ spi: 0x01020304, suite, encKey, integKey: EMPTY, lastSeq: 4 });
    const esp = Buffer.from(out.seal(hex(v.inner!)));
    assert.equal(esp.subarray(0, 16).toString('hex'), '01020304' + '00000005' + '0000000000000005');
    assert.equal(Buffer.from(espOpenRaw({ suite, encKey, integKey: EMPTY }, esp)!).toString('hex'), v.plaintext);
    assert.equal(esp.length, v.packet!.length / 2);
  });
});

describe('seal → open round trips', () => {
  for (const suite of ALL) {
    for (const esn of [false, true]) {
      test(`${suite.name}${esn ? ' with ESN' : ''}`, () => {
        const { out, inn } = pair(suite, { esn });
        for (const n of [0, 1, 2, 3, 13, 14, 15, 16, 100, 1380]) {
          const p = inner(n);
          const esp = out.seal(p);
          assert.equal(esp.length, p.length + out.overhead(p.length));
          assert.equal((esp.length - 8 - suite.ivBytes - suite.icvBytes) % suite.blockBytes, 0);
          assert.ok(opened(inn.open(esp)).equals(p));
        }
        assert.equal(out.seq, 10);
        assert.equal(inn.highestSeq, 10);
        assert.equal(out.lifetime.packets, 10);
        assert.equal(inn.lifetime.packets, 10);
        assert.equal(inn.lifetime.bytes, out.lifetime.bytes);
        assert.ok(Object.values(inn.drops).every((d) => d === 0));
      });
    }
  }

  for (const suite of SAMPLE) {
    test(`${suite.name} with ESN across the 2^32 boundary, in and out of order`, () => {
      const { inn, base } = pair(suite, { esn: true });
      // bring the receiver to 2^31, then cross 2^32 (the high half is never on the wire)
      assert.ok(opened(inn.open(new OutboundSa({ ...base, lastSeq: 2 ** 31 - 1 }).seal(inner(10)))));
      const out = new OutboundSa({ ...base, lastSeq: TWO_32 - 4 });
      const pkts = Array.from({ length: 8 }, () => inner(20));
      const esps = pkts.map((p) => Buffer.from(out.seal(p)));
      assert.deepEqual(esps.map((e) => e.readUInt32BE(4)), [0xfffffffd, 0xfffffffe, 0xffffffff, 0, 1, 2, 3, 4]);
      for (const i of [0, 3, 1, 4, 2, 6, 5, 7]) assert.ok(opened(inn.open(esps[i]!)).equals(pkts[i]!), `packet ${i}`);
      assert.equal(inn.highestSeq, TWO_32 + 4);
      assert.deepEqual(inn.open(esps[3]!), { drop: 'replayed' });
      // a receiver that infers another high half fails the ICV: the high bits are authenticated
      const fresh = new InboundSa({ ...base });
      assert.deepEqual(fresh.open(esps[4]!), { drop: 'bad-icv' });
    });
  }

  test('ESN with CBC: the high half is appended to the ICV input, not sent (RFC 4303 §3.3.2.1)', () => {
    const suite = ESP_SUITES['aes128-sha256']!;
    const { base } = pair(suite, { esn: true });
    const esp = Buffer.from(new OutboundSa({ ...base, lastSeq: 5 * TWO_32 + 6 }).seal(inner(33)));
    assert.equal(esp.readUInt32BE(4), 7);
    const icvOff = esp.length - 16;
    const hi = Buffer.alloc(4);
    hi.writeUInt32BE(5);
    const mac = createHmac('sha256', base.integKey).update(esp.subarray(0, icvOff)).update(hi).digest();
    assert.ok(mac.subarray(0, 16).equals(esp.subarray(icvOff)));
    assert.ok(espOpenRaw({ suite, ...keys(suite), seqHigh: 5 }, esp));
    assert.equal(espOpenRaw({ suite, ...keys(suite), seqHigh: 4 }, esp), null);
  });
});

describe('sequence numbers and IVs', () => {
  test('start at 1, the AEAD IV is the 64-bit sequence number, CBC IVs are random', () => {
    const g = pair(ESP_SUITES['aes256gcm16']!);
    assert.equal(g.out.seq, 0);
    const a = Buffer.from(g.out.seal(inner(5)));
    assert.equal(g.out.seq, 1);
    assert.equal(a.subarray(0, 16).toString('hex'), 'c1000001' + '00000001' + '0000000000000001');
    const c = pair(ESP_SUITES['aes128-sha1']!);
    const p = inner(5);
    const x = Buffer.from(c.out.seal(p));
    const y = Buffer.from(c.out.seal(p));
    assert.notDeepEqual(x.subarray(8, 24), y.subarray(8, 24));
  });

  test('never wraps: seal throws VpnError PROTOCOL once 2^32-1 is used (no ESN)', () => {
    const { out, inn } = pair(ESP_SUITES['aes128gcm16']!, { lastSeq: 0xfffffffe });
    const last = out.seal(inner(1));
    assert.equal(Buffer.from(last).readUInt32BE(4), 0xffffffff);
    assert.throws(() => out.seal(inner(1)), (e: unknown) => e instanceof VpnError && e.code === 'PROTOCOL' && /used up/.test(e.message));
    assert.throws(() => out.seal(inner(1)), VpnError);
    assert.equal(out.seq, 0xffffffff);
    assert.equal(out.lifetime.packets, 1);
    assert.ok(opened(inn.open(last)));
  });

  test('with ESN the counter goes on past 2^32-1', () => {
    const { out } = pair(ESP_SUITES['aes128gcm16']!, { esn: true, lastSeq: 0xffffffff });
    const e = Buffer.from(out.seal(inner(1)));
    assert.equal(e.readUInt32BE(4), 0);
    assert.equal(e.subarray(8, 16).toString('hex'), '0000000100000000');
    assert.equal(out.seq, TWO_32);
    assert.throws(() => new OutboundSa({ ...pair(ESP_SUITES['aes128gcm16']!).base, esn: true, lastSeq: Number.MAX_SAFE_INTEGER }).seal(inner(1)), VpnError);
  });

  test('InboundSa lastSeq starts the window at a given sequence number, fixing the ESN high half', () => {
    for (const suite of [ESP_SUITES['aes128gcm16']!, ESP_SUITES['aes256-sha256']!]) {
      const { base } = pair(suite, { esn: true });
      const out = new OutboundSa({ ...base, lastSeq: 0xfffffffd });
      const pkts = Array.from({ length: 4 }, () => inner(12));
      const esps = pkts.map((p) => Buffer.from(out.seal(p)));
      assert.deepEqual(esps.map((e) => e.readUInt32BE(4)), [0xfffffffe, 0xffffffff, 0, 1]);
      // a fresh ESN receiver puts 0xfffffffe below its first subspace; one started at 0xfffffffd takes them all
      assert.deepEqual(new InboundSa({ ...base }).open(esps[0]!), { drop: 'too-old' });
      const inn = new InboundSa({ ...base, replayWindow: 32, lastSeq: 0xfffffffd });
      assert.equal(inn.highestSeq, 0xfffffffd);
      esps.forEach((e, i) => assert.ok(opened(inn.open(e)).equals(pkts[i]!), `${suite.name} packet ${i}`));
      assert.equal(inn.highestSeq, TWO_32 + 1);
      assert.deepEqual(inn.open(esps[1]!), { drop: 'replayed' });
      // lastSeq itself counts as received; one subspace later, the inferred high half fails the ICV
      assert.deepEqual(new InboundSa({ ...base, lastSeq: 0xfffffffe }).open(esps[0]!), { drop: 'replayed' });
      assert.deepEqual(new InboundSa({ ...base, lastSeq: TWO_32 + 0xfffffffd }).open(esps[2]!), { drop: 'bad-icv' });
    }
    const k = { spi: 0xc1000001, suite: ESP_SUITES['aes128gcm16']!, ...keys(ESP_SUITES['aes128gcm16']!) };
    // without ESN: 32 bits, and the default (0) leaves the window empty
    const plain = new InboundSa({ ...k, lastSeq: 10 });
    assert.equal(plain.highestSeq, 10);
    assert.deepEqual(plain.open(new OutboundSa({ ...k, lastSeq: 9 }).seal(inner(3))), { drop: 'replayed' });
    assert.ok(opened(plain.open(new OutboundSa({ ...k, lastSeq: 10 }).seal(inner(3)))));
    assert.equal(new InboundSa({ ...k }).highestSeq, 0);
    for (const bad of [-1, 1.5, TWO_32]) assert.throws(() => new InboundSa({ ...k, lastSeq: bad }), RangeError);
    assert.throws(() => new InboundSa({ ...k, esn: true, lastSeq: Number.MAX_SAFE_INTEGER + 1 }), RangeError);
  });
});

describe('anti-replay (RFC 4303 §3.4.3)', () => {
  const suite = ESP_SUITES['aes128gcm16']!;
  const sealAll = (out: OutboundSa, n: number) => Array.from({ length: n }, () => out.seal(inner(8)));

  test('duplicates, too old, far ahead', () => {
    const { out, inn } = pair(suite, { replayWindow: 32 });
    const e = sealAll(out, 200);
    assert.ok(opened(inn.open(e[99]!))); // seq 100
    assert.deepEqual(inn.open(e[99]!), { drop: 'replayed' });
    assert.deepEqual(inn.open(e[67]!), { drop: 'too-old' }); // seq 68: 32 behind
    assert.ok(opened(inn.open(e[68]!))); // seq 69: 31 behind, inside
    const far = new OutboundSa({ ...pair(suite).base, lastSeq: 1_000_000 }).seal(inner(8));
    assert.ok(opened(inn.open(far)));
    assert.equal(inn.highestSeq, 1_000_001);
    assert.deepEqual(inn.open(e[199]!), { drop: 'too-old' });
    assert.equal(inn.drops.replayed, 1);
    assert.equal(inn.drops['too-old'], 2);
  });

  test('reordering inside the window is accepted once', () => {
    const { out, inn } = pair(suite);
    const e = sealAll(out, 128);
    const order = [...e.keys()].sort((a, b) => ((a * 73) % 128) - ((b * 73) % 128));
    for (const i of order) assert.ok(opened(inn.open(e[i]!)), `seq ${i + 1}`);
    for (const i of order) assert.deepEqual(inn.open(e[i]!), { drop: 'replayed' });
    assert.equal(inn.drops.replayed, 128);
  });

  test('the default window is 128; its size is 32..4096', () => {
    const { out, inn } = pair(suite);
    const e = sealAll(out, 200);
    assert.ok(opened(inn.open(e[199]!)));
    assert.ok(opened(inn.open(e[72]!))); // 127 behind
    assert.deepEqual(inn.open(e[71]!), { drop: 'too-old' });
    for (const w of [31, 4097, 64.5]) assert.throws(() => pair(suite, { replayWindow: w }), RangeError);
    assert.doesNotThrow(() => pair(suite, { replayWindow: 4096 }));
  });

  test('checked before the ICV: a replayed copy with a broken ICV is "replayed"', () => {
    const { out, inn } = pair(suite);
    const e = Buffer.from(out.seal(inner(8)));
    assert.ok(opened(inn.open(e)));
    e[e.length - 1]! ^= 0x80;
    assert.deepEqual(inn.open(e), { drop: 'replayed' });
  });

  test('recorded only after the ICV: a forged packet with a new sequence number moves nothing', () => {
    for (const s of SAMPLE) {
      const { out, inn } = pair(s);
      const e = sealAll(out, 3).map((x) => Buffer.from(x));
      assert.ok(opened(inn.open(e[0]!)));
      const forged = Buffer.from(e[2]!);
      forged.writeUInt32BE(0x7fffffff, 4); // far ahead: would slide the whole window
      assert.deepEqual(inn.open(forged), { drop: 'bad-icv' }, s.name);
      const tampered = Buffer.from(e[1]!);
      tampered[tampered.length - 20]! ^= 1;
      assert.deepEqual(inn.open(tampered), { drop: 'bad-icv' }, s.name);
      assert.equal(inn.highestSeq, 1);
      assert.ok(opened(inn.open(e[1]!)), s.name);
      assert.ok(opened(inn.open(e[2]!)), s.name);
      assert.equal(inn.drops['bad-icv'], 2);
    }
  });
});

describe('trailer, inner packet and selectors', () => {
  const spi = 0xc1000001;
  /** A packet with a valid ICV around an arbitrary plaintext (the sender's half of an SA, without its checks). */
  const forge = (suite: EspSuite, plaintext: Uint8Array, seq = 1) => espSealRaw({ suite, ...keys(suite), spi, seq }, plaintext);
  const trailer = (pad: number[], nh: number) => Buffer.from([...pad, pad.length, nh]);
  const open1 = (suite: EspSuite, esp: Uint8Array, selectors = true) => new InboundSa({ spi, suite, ...keys(suite), selectors: selectors ? SELECTORS : undefined }).open(esp);
  const GCM = ESP_SUITES['aes128gcm16']!;
  const NUL = ESP_SUITES['null-sha1']!;
  const CBC = ESP_SUITES['aes192-sha256']!;
  const p = inner(20); // 40 bytes: 2 of padding to the 4-byte boundary

  test('valid hand-built trailers open (zero padding when already aligned)', () => {
    for (const s of [GCM, NUL]) {
      assert.ok(opened(open1(s, forge(s, Buffer.concat([p, trailer([1, 2], 4)])))).equals(p));
      assert.ok(opened(open1(s, forge(s, Buffer.concat([p, trailer([1, 2, 3, 4, 5, 6], 4)])))).equals(p), 'more padding than needed');
    }
    const q = inner(22);
    assert.ok(opened(open1(GCM, forge(GCM, Buffer.concat([q, trailer([], 4)])))).equals(q));
  });

  test('padding must be 1, 2, 3… (RFC 4303 §2.4)', () => {
    for (const s of [GCM, NUL]) {
      assert.deepEqual(open1(s, forge(s, Buffer.concat([p, trailer([1, 3], 4)]))), { drop: 'bad-padding' });
      assert.deepEqual(open1(s, forge(s, Buffer.concat([p, trailer([0, 0], 4)]))), { drop: 'bad-padding' });
      assert.deepEqual(open1(s, forge(s, Buffer.from([7, 4]))), { drop: 'bad-padding' }, 'Pad Length beyond the payload');
    }
    // CBC: 28 + 18 + 2 = 48 bytes, whole blocks, with the last two pad bytes swapped
    const full = Buffer.concat([inner(8), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 17]), Buffer.from([18, 4])]);
    assert.equal(full.length, 48);
    assert.deepEqual(open1(CBC, forge(CBC, full)), { drop: 'bad-padding' });
    full[44] = 17;
    full[45] = 18;
    assert.ok(opened(open1(CBC, forge(CBC, full))));
    assert.throws(() => forge(CBC, full.subarray(0, 47)), RangeError, 'not whole blocks');
  });

  test('next header 59 is a dummy packet, dropped; other than 4 and 41 is bad-next-header', () => {
    assert.deepEqual(open1(GCM, forge(GCM, Buffer.concat([randomBytes(30), trailer([1, 2, 3, 4], 59)]))), { drop: 'dummy' });
    assert.deepEqual(open1(GCM, forge(GCM, Buffer.from([1, 2, 2, 59]))), { drop: 'dummy' });
    assert.deepEqual(open1(GCM, forge(GCM, Buffer.concat([p, trailer([1, 2], 6)]))), { drop: 'bad-next-header' });
    assert.deepEqual(open1(GCM, forge(GCM, Buffer.concat([p, trailer([1, 2], 41)]))), { drop: 'malformed' }, 'an IPv4 packet labelled IPv6');
  });

  test('TFC padding after the inner packet is trimmed to its Total Length (RFC 4303 §2.7)', () => {
    for (const s of [GCM, NUL, CBC]) {
      const body = Buffer.concat([p, Buffer.alloc(s === CBC ? 32 : 200)]);
      const padLen = (s.blockBytes - ((body.length + 2) % s.blockBytes)) % s.blockBytes;
      const plain = Buffer.concat([body, trailer(Array.from({ length: padLen }, (_, i) => i + 1), 4)]);
      assert.ok(opened(open1(s, forge(s, plain))).equals(p), s.name);
    }
  });

  test('the inner packet must be IPv4 that fits', () => {
    const v6 = Buffer.from(p);
    v6[0] = 0x60;
    assert.deepEqual(open1(GCM, forge(GCM, Buffer.concat([v6, trailer([1, 2], 4)]))), { drop: 'malformed' });
    assert.deepEqual(open1(GCM, forge(GCM, Buffer.concat([p.subarray(0, 36), trailer([1, 2], 4)]))), { drop: 'malformed' }, 'Total Length beyond the payload');
    assert.deepEqual(open1(GCM, forge(GCM, Buffer.concat([Buffer.alloc(10, 0x45), trailer([], 4)]))), { drop: 'malformed' });
  });

  test('the inner source must lie in the remote selectors and the destination be our address', () => {
    const sender = pair(GCM).out;
    const seal = (pkt: Buffer) => sender.seal(pkt);
    assert.ok(opened(open1(GCM, seal(inner(4, '10.200.0.255')))));
    assert.deepEqual(open1(GCM, seal(inner(4, '10.200.1.1'))), { drop: 'outside-selector' });
    assert.deepEqual(open1(GCM, seal(inner(4, '10.200.0.1', '10.203.0.10'))), { drop: 'not-for-us' });
    assert.ok(opened(open1(GCM, seal(inner(4, '10.200.1.1')), false)), 'no selectors: anything goes');
    const any = new InboundSa({ spi, suite: GCM, ...keys(GCM), selectors: { remote: [{ address: '0.0.0.0', prefix: 0 }], local: LOCAL } });
    assert.ok(opened(any.open(seal(inner(4, '198.51.100.1')))));
    const two = new InboundSa({ spi, suite: GCM, ...keys(GCM), selectors: { remote: [{ address: '192.0.2.0', prefix: 25 }, REMOTE_NET], local: LOCAL } });
    assert.ok(opened(two.open(seal(inner(4, '10.200.0.3')))));
    assert.deepEqual(two.open(seal(inner(4, '192.0.2.200'))), { drop: 'outside-selector' });
  });

  describe('IPv6 inner packets (next header 41)', () => {
    const LOCAL6 = 'fd00:6::2';
    const SEL6 = { remote: [REMOTE_NET, { address: 'fd00:10::', prefix: 64 }], local: LOCAL, local6: LOCAL6 };
    const inner6 = (n: number, src = 'fd00:10::7', dst = LOCAL6) =>
      Buffer.from(buildIpv6({ src: parseIpv6Address(src), dst: parseIpv6Address(dst), nextHeader: 17 }, randomBytes(n)));
    const in6 = (suite: EspSuite, selectors: typeof SEL6 | undefined = SEL6) => new InboundSa({ spi, suite, ...keys(suite), selectors });

    test('seal labels an IPv6 packet 41 and an IPv4 packet 4; both open byte-exact on one SA', () => {
      for (const s of [GCM, NUL, CBC, ESP_SUITES['chacha20poly1305']!]) {
        const out = new OutboundSa({ spi, suite: s, ...keys(s) });
        const inn = in6(s);
        for (const n of [0, 1, 13, 1400]) {
          const q = inner6(n);
          const esp = out.seal(q);
          const plain = espOpenRaw({ suite: s, ...keys(s) }, esp)!;
          assert.equal(plain[plain.length - 1], 41, `${s.name}: next header`);
          assert.ok(opened(inn.open(esp)).equals(q), `${s.name} ${n}`);
          const v4 = inner(n);
          const esp4 = out.seal(v4);
          const plain4 = espOpenRaw({ suite: s, ...keys(s) }, esp4)!;
          assert.equal(plain4[plain4.length - 1], 4);
          assert.ok(opened(inn.open(esp4)).equals(v4));
        }
      }
    });

    test('TFC padding is trimmed to 40 + Payload Length', () => {
      const q = inner6(21);
      const body = Buffer.concat([q, Buffer.alloc(100)]);
      const padLen = (4 - ((body.length + 2) % 4)) % 4;
      const plain = Buffer.concat([body, trailer(Array.from({ length: padLen }, (_, i) => i + 1), 41)]);
      assert.ok(opened(in6(GCM).open(forge(GCM, plain))).equals(q));
    });

    test('a wrong next header or a packet that does not fit is dropped and counted', () => {
      const sa = in6(GCM);
      const q = inner6(22); // 62 bytes: no padding needed
      assert.deepEqual(sa.open(forge(GCM, Buffer.concat([q, trailer([], 4)]), 1)), { drop: 'malformed' }, 'IPv6 labelled IPv4');
      assert.deepEqual(sa.open(forge(GCM, Buffer.concat([q, trailer([], 17)]), 2)), { drop: 'bad-next-header' });
      assert.deepEqual(sa.open(forge(GCM, Buffer.concat([q.subarray(0, 58), trailer([], 41)]), 3)), { drop: 'malformed' }, 'Payload Length beyond the payload');
      assert.deepEqual(sa.open(forge(GCM, Buffer.concat([Buffer.alloc(34, 0x60), trailer([], 41)]), 4)), { drop: 'malformed' }, 'shorter than a header');
      assert.equal(sa.drops['bad-next-header'], 1);
      assert.equal(sa.drops.malformed, 3);
      assert.ok(opened(sa.open(forge(GCM, Buffer.concat([q, trailer([], 41)]), 5))).equals(q));
    });

    test('the inner IPv6 source must lie in an IPv6 remote selector and the destination be our IPv6 address', () => {
      const out = new OutboundSa({ spi, suite: GCM, ...keys(GCM) });
      const sa = in6(GCM);
      assert.ok(opened(sa.open(out.seal(inner6(4, 'fd00:10::ffff:1')))));
      assert.deepEqual(sa.open(out.seal(inner6(4, 'fd00:11::1'))), { drop: 'outside-selector' });
      assert.deepEqual(sa.open(out.seal(inner6(4, 'fd00:10::1', 'fd00:6::3'))), { drop: 'not-for-us' });
      const v4only = in6(GCM, { remote: [REMOTE_NET], local: LOCAL } as typeof SEL6);
      assert.deepEqual(v4only.open(out.seal(inner6(4))), { drop: 'outside-selector' }, 'no IPv6 selector: no IPv6 source is allowed');
      const noLocal6 = in6(GCM, { remote: [{ address: '::', prefix: 0 }], local: LOCAL } as typeof SEL6);
      assert.deepEqual(noLocal6.open(out.seal(inner6(4))), { drop: 'not-for-us' }, 'no IPv6 address of ours');
      const any = in6(GCM, { remote: [{ address: '::', prefix: 0 }], local: LOCAL, local6: LOCAL6 });
      assert.ok(opened(any.open(out.seal(inner6(4, '2001:db8::1')))));
      assert.deepEqual(any.open(out.seal(inner(4, '10.200.0.1'))), { drop: 'outside-selector' }, '::/0 does not admit IPv4');
      assert.ok(opened(new InboundSa({ spi, suite: GCM, ...keys(GCM) }).open(out.seal(inner6(4, '2001:db8::1', '2001:db8::2')))), 'no selectors: anything goes');
      assert.throws(() => new InboundSa({ spi, suite: GCM, ...keys(GCM), selectors: { remote: [{ address: '::', prefix: 129 }], local: LOCAL } }), RangeError);
      assert.throws(() => new InboundSa({ spi, suite: GCM, ...keys(GCM), selectors: { ...SEL6, local6: 'nope' } }), RangeError);
    });
  });

  test('short, misaligned, wrong-SPI and zero-sequence packets, each counted', () => {
    const sa = new InboundSa({ spi, suite: CBC, ...keys(CBC) });
    const good = Buffer.from(pair(CBC).out.seal(inner(20)));
    assert.deepEqual(sa.open(good.subarray(0, 7)), { drop: 'malformed' });
    assert.deepEqual(sa.open(good.subarray(0, good.length - 1)), { drop: 'malformed' });
    assert.deepEqual(sa.open(good.subarray(0, 8 + 16 + 16)), { drop: 'malformed' }, 'no ciphertext block');
    const other = Buffer.from(good);
    other.writeUInt32BE(0xc1000002, 0);
    assert.deepEqual(sa.open(other), { drop: 'unknown-spi' });
    assert.deepEqual(sa.open(forge(CBC, Buffer.alloc(16, 1), 0)), { drop: 'malformed' });
    assert.ok(opened(sa.open(good)));
    assert.deepEqual(sa.drops, {
      malformed: 4, 'unknown-spi': 1, replayed: 0, 'too-old': 0, 'bad-icv': 0, 'bad-padding': 0, 'bad-next-header': 0, dummy: 0, 'outside-selector': 0, 'not-for-us': 0,
    });
  });

  test('bad parameters are refused at construction', () => {
    const k = keys(GCM);
    assert.throws(() => new OutboundSa({ spi: 0, suite: GCM, ...k }), RangeError);
    assert.throws(() => new InboundSa({ spi: 2 ** 32, suite: GCM, ...k }), RangeError);
    assert.throws(() => new OutboundSa({ spi, suite: GCM, encKey: bytes(16, 1), integKey: EMPTY }), /20 bytes/);
    assert.throws(() => new InboundSa({ spi, suite: CBC, encKey: bytes(24, 1), integKey: bytes(20, 1) }), /32 bytes/);
    assert.throws(() => new InboundSa({ spi, suite: GCM, ...k, selectors: { remote: [{ address: '10.0.0.0', prefix: 33 }], local: LOCAL } }), RangeError);
    assert.throws(() => new InboundSa({ spi, suite: GCM, ...k, selectors: { remote: [REMOTE_NET], local: 'nope' } }), RangeError);
    assert.throws(() => new OutboundSa({ spi, suite: GCM, ...k, lastSeq: 2 ** 32 }), RangeError);
  });
});

describe('overhead and MTU', () => {
  test('innerMtu is the largest inner packet whose datagram fits the path MTU', () => {
    for (const suite of ALL) {
      for (const mtu of [576, 1280, 1500, 9000]) {
        const m = innerMtu(suite, mtu);
        assert.ok(28 + m + espOverhead(suite, m) <= mtu, `${suite.name} ${mtu}`);
        assert.ok(28 + m + 1 + espOverhead(suite, m + 1) > mtu, `${suite.name} ${mtu}: one more byte does not fit`);
        for (const n of [m - 1, m - 7, m - 15]) assert.ok(28 + n + espOverhead(suite, n) <= mtu);
      }
    }
    assert.equal(innerMtu(ESP_SUITES['aes128gcm16']!, 1500), 1438);
    assert.equal(innerMtu(ESP_SUITES['aes256-sha256']!, 1500), 1422);
    assert.equal(innerMtu(ESP_SUITES['aes128-sha1']!, 1500), 1422);
    assert.equal(innerMtu(ESP_SUITES['chacha20poly1305']!, 1500), 1438);
    assert.equal(innerMtu(ESP_SUITES['aes128gcm16']!, 20), 0);
  });

  test('overhead matches the sealed length (ipsec.md §2.1: a 60-byte SYN is 96 bytes in GCM-16, 104 in CBC-SHA256)', () => {
    assert.equal(60 + pair(ESP_SUITES['aes128gcm16']!).out.overhead(60), 96);
    assert.equal(60 + pair(ESP_SUITES['aes128-sha256']!).out.overhead(60), 104);
    const { out } = pair(ESP_SUITES['aes128-sha256']!);
    assert.equal(out.seal(inner(40)).length, 104);
  });
});

describe('lifetimes', () => {
  test('both halves count packets and inner bytes; stages follow the policy', () => {
    const suite = ESP_SUITES['aes128gcm16']!;
    const lifetime = { soft: { packets: 2 }, hard: { packets: 3, seconds: 60 } };
    const base = { spi: 0x1000, suite, ...keys(suite), lifetime, now: 1000 };
    const out = new OutboundSa(base);
    const inn = new InboundSa(base);
    for (let i = 0; i < 3; i++) opened(inn.open(out.seal(inner(80)))); // 100-byte packets
    assert.equal(out.lifetime.bytes, 300);
    assert.equal(inn.lifetime.bytes, 300);
    assert.equal(out.lifetime.stageAt(1000), 'hard');
    assert.equal(new OutboundSa(base).lifetime.stageAt(1000 + 59_000), 'fresh');
    assert.equal(new OutboundSa(base).lifetime.stageAt(1000 + 60_000), 'hard');
    assert.ok('drop' in inn.open(Buffer.alloc(40)));
    assert.equal(inn.lifetime.packets, 3, 'drops are not counted');
  });
});

describe('property: InboundSa.open only ever drops bad input, never throws', () => {
  for (const suite of SAMPLE) {
    test(`${suite.name}: random datagrams`, () => {
      const sa = new InboundSa({ spi: 0xc1000001, suite, ...keys(suite), esn: suite.aead, selectors: SELECTORS });
      const spiPrefixed = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.concat([hex('c1000001'), b]));
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), spiPrefixed), (b) => {
          const r = sa.open(b);
          assert.ok('drop' in r);
        }),
        { numRuns: 300 },
      );
      const total = Object.values(sa.drops).reduce((a, b) => a + b, 0);
      assert.ok(total >= 300);
    });

    test(`${suite.name}: mutated valid packets drop unless unchanged`, () => {
      const { base } = pair(suite);
      const valid = fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 1000 })).map(([n, seq]) => {
        const p = inner(n);
        return Buffer.from(new OutboundSa({ ...base, lastSeq: seq - 1 }).seal(p));
      });
      const cases = valid.chain((orig) => mutated(fc.constant(orig)).map((m) => [orig, m] as const));
      fc.assert(
        fc.property(cases, ([orig, m]) => {
          const sa = new InboundSa({ ...base, selectors: SELECTORS });
          const r = sa.open(m);
          if (Buffer.from(m).equals(orig)) assert.ok('packet' in r);
          else assert.ok('drop' in r, 'a changed packet never opens');
        }),
        { numRuns: 150 },
      );
    });
  }
});
