/**
 * IKE fragmentation (RFC 7383, fragments.ts): split + reassemble round trips for AEAD and CBC+HMAC suites at
 * many sizes and limits, every fragment within the limit, the SKF layout (numbers, Next Payload only in the
 * first, AAD/ICV covering the fragment numbers), out-of-order and duplicate fragments, a tampered fragment
 * dropped without poisoning reassembly, Total Fragments rising (restart) and falling (ignored), the 255 cap,
 * Requests/PeerRequests keeping every datagram for retransmission, and the reassembler only ever returning
 * null or throwing WireError on arbitrary input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import { PeerRequests, Requests } from '../../../src/ipsec/ike/exchange.js';
import { DEFAULT_FRAGMENT_DATAGRAM, FragmentReassembler, IPV4_UDP_MARKER_OVERHEAD, MAX_FRAGMENTS, ikeMessageLimit, openFragment, sealFragments } from '../../../src/ipsec/ike/fragments.js';
import { parseIkeProposals } from '../../../src/ipsec/ike/proposals.js';
import { sealEncrypted, sealMessage, skBodyLength, type SkAlgorithms, type SkKeys } from '../../../src/ipsec/ike/sk.js';
import { ManualClock } from '../../../src/util/clock.js';
import { IkeExchange, IkeFlags, PayloadType } from '../../../src/wire/ike-constants.js';
import { IKE_HEADER_LENGTH, buildInnerPayloads, parseIkeMessage, type IkeHeaderFields, type IkePayload } from '../../../src/wire/ike.js';

const header: IkeHeaderFields = { spiI: Buffer.from('0102030405060708', 'hex'), spiR: Buffer.from('1112131415161718', 'hex'), exchange: IkeExchange.IKE_AUTH, flags: IkeFlags.RESPONSE, messageId: 1 };

function algs(keyword: string): SkAlgorithms {
  const o = parseIkeProposals([keyword])[0]!;
  return { encr: o.encrs[0]!, integ: o.integs[0] };
}
const keysFor = (a: SkAlgorithms): SkKeys => ({ encKey: randomBytes(a.encr.keyBytes), integKey: randomBytes(a.integ?.keyBytes ?? 0) });

const SUITES = ['aes128gcm16-prfsha256-ecp256', 'chacha20poly1305-prfsha256-x25519', 'aes128-sha256-modp2048', 'aes256-sha384-ecp384', 'aes192-sha1-modp2048'];

/** A certificate-sized inner chain: IDr, two big CERTs, AUTH, CP-ish filler. */
function bigInner(certBytes = 1400): IkePayload[] {
  const p = (type: number, body: Uint8Array): IkePayload => ({ type, critical: false, body });
  return [
    p(PayloadType.IDr, Buffer.from('02000000736572766572', 'hex')),
    p(PayloadType.CERT, Buffer.concat([Buffer.of(4), randomBytes(certBytes)])),
    p(PayloadType.CERT, Buffer.concat([Buffer.of(4), randomBytes(certBytes - 100)])),
    p(PayloadType.AUTH, Buffer.concat([Buffer.from('0e000000', 'hex'), randomBytes(512)])),
    p(PayloadType.SA, randomBytes(40)),
  ];
}
const same = (a: IkePayload[], b: IkePayload[]) => assert.deepEqual(a.map((x) => [x.type, Buffer.from(x.body).toString('hex')]), b.map((x) => [x.type, Buffer.from(x.body).toString('hex')]));

function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

test('the default limit: a 1280-byte IPv4 datagram holds IKE messages of 1248 bytes after IP, UDP and the marker', () => {
  assert.equal(DEFAULT_FRAGMENT_DATAGRAM, 1280);
  assert.equal(IPV4_UDP_MARKER_OVERHEAD, 32);
  assert.equal(ikeMessageLimit(), 1248);
});

for (const kw of SUITES) {
  test(`${kw}: split + reassemble round trip; every datagram within 1280 bytes; the SKF layout`, () => {
    const a = algs(kw);
    const k = keysFor(a);
    const inner = bigInner();
    const innerLen = buildInnerPayloads(inner).bytes.length;
    const frags = sealFragments(header, inner, a, k, ikeMessageLimit());
    assert.ok(frags.length >= 3, `${frags.length} fragments for ${innerLen} bytes`);
    const r = new FragmentReassembler(a, k);
    frags.forEach((f, idx) => {
      assert.ok(f.length + IPV4_UDP_MARKER_OVERHEAD <= 1280, `fragment ${idx + 1}: ${f.length} bytes`);
      const m = parseIkeMessage(f);
      assert.equal(m.header.nextPayload, PayloadType.SKF);
      assert.equal(m.header.messageId, 1, 'every fragment carries the message ID');
      assert.equal(m.header.exchange, IkeExchange.IKE_AUTH);
      assert.equal(m.payloads.length, 1);
      const skf = m.payloads[0]!;
      assert.equal(skf.type, PayloadType.SKF);
      assert.equal(skf.innerNext, idx === 0 ? PayloadType.IDr : 0, 'Next Payload only in the first fragment');
      assert.equal((skf.body[0]! << 8) | skf.body[1]!, idx + 1);
      assert.equal((skf.body[2]! << 8) | skf.body[3]!, frags.length);
    });
    // all but the last are filled up to (nearly) the limit: at most one cipher block short
    for (const f of frags.slice(0, -1)) assert.ok(f.length > ikeMessageLimit() - 16, `${f.length}`);
    let done;
    for (const f of frags) done = r.add(f);
    assert.ok(done && done.done);
    same(done.inner, inner);
    assert.equal(done.length, IKE_HEADER_LENGTH + 4 + skBodyLength(a, innerLen), 'the size as one SK message');
    if (a.encr.aead) assert.equal(done.length, sealMessage(header, inner, a, k).length);
    assert.equal(done.header.messageId, 1);
  });
}

test('property: any inner size and limit round-trips, each fragment within the limit (AEAD and CBC)', () => {
  const suites = ['aes128gcm16-prfsha256-ecp256', 'aes128-sha256-modp2048'].map(algs);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 120, max: 1500 }), (i, size, limit) => {
      const a = suites[i]!;
      const k = keysFor(a);
      const inner: IkePayload[] = [{ type: PayloadType.CERT, critical: false, body: randomBytes(size) }];
      const frags = sealFragments(header, inner, a, k, limit);
      for (const f of frags) assert.ok(f.length <= limit, `${f.length} > ${limit}`);
      const r = new FragmentReassembler(a, k);
      const outs = shuffle(frags).map((f) => r.add(f));
      const done = outs.find((o) => o?.done);
      assert.ok(done && done.done);
      same(done.inner, inner);
      assert.equal(outs.filter((o) => o?.done).length, 1);
    }),
    { numRuns: 150 },
  );
});

test('out of order and duplicates: the message completes once, duplicates are dropped', () => {
  const a = algs('aes128gcm16-prfsha256-ecp256');
  const k = keysFor(a);
  const inner = bigInner();
  const frags = sealFragments(header, inner, a, k, 600);
  assert.ok(frags.length >= 5);
  const r = new FragmentReassembler(a, k);
  const order = [...frags].reverse();
  const outs = [];
  for (const f of order.slice(0, -1)) {
    outs.push(r.add(f));
    assert.equal(r.add(f), null, 'a duplicate is dropped');
  }
  assert.ok(outs.every((o) => o && !o.done));
  assert.equal(r.pending, frags.length - 1);
  const last = r.add(order[order.length - 1]!);
  assert.ok(last?.done);
  same(last.inner, inner);
  assert.equal(r.pending, 0);
});

test('a tampered fragment (numbers, ciphertext, ICV, header) is dropped and does not poison reassembly', () => {
  for (const kw of ['aes128gcm16-prfsha256-ecp256', 'aes128-sha256-modp2048']) {
    const a = algs(kw);
    const k = keysFor(a);
    const inner = bigInner();
    const frags = sealFragments(header, inner, a, k, 700);
    const r = new FragmentReassembler(a, k);
    for (const f of frags.slice(0, -1)) assert.ok(r.add(f));
    const last = frags[frags.length - 1]!;
    // byte 32..35 are Fragment Number / Total Fragments: covered by the AAD/ICV
    for (const off of [0, 20, 33, 35, 40, last.length - 20, last.length - 1]) {
      const bad = Uint8Array.from(last);
      if (off === 33) bad[off] = 1; // claim to be fragment 1
      else if (off === 35) bad[off] = bad[off]! + 1; // claim one more fragment
      else bad[off] = bad[off]! ^ 0x01;
      let out;
      try {
        out = r.add(bad);
      } catch (e) {
        assert.ok(e instanceof WireError, String(e));
        out = null;
      }
      assert.equal(out, null, `${kw}: tampered byte ${off}`);
    }
    // a fragment sealed with other keys is dropped as well
    const foreign = sealFragments(header, inner, a, keysFor(a), 700);
    assert.equal(r.add(foreign[frags.length - 1]!), null);
    assert.equal(r.pending, frags.length - 1, 'nothing of the tampered fragments was kept');
    const done = r.add(last);
    assert.ok(done?.done, `${kw}: the genuine fragment still completes the message`);
    same(done.inner, inner);
  }
});

test('Total Fragments rising restarts reassembly; falling is ignored', () => {
  const a = algs('aes256-sha384-ecp384');
  const k = keysFor(a);
  const inner = bigInner();
  const coarse = sealFragments(header, inner, a, k, 1248); // e.g. 3 fragments
  const fine = sealFragments(header, inner, a, k, 500); // more, smaller ones
  assert.ok(fine.length > coarse.length);
  const r = new FragmentReassembler(a, k);
  assert.ok(r.add(coarse[0]!) && r.add(coarse[1]!));
  assert.equal(r.pending, 2);
  // the sender re-fragmented smaller: what was collected is thrown away
  const first = r.add(fine[1]!);
  assert.ok(first && !first.done && first.total === fine.length);
  assert.equal(r.pending, 1);
  // a late fragment of the old, coarser split is dropped
  assert.equal(r.add(coarse[2]!), null);
  assert.equal(r.pending, 1);
  let done;
  for (const f of fine) done = r.add(f) ?? done;
  assert.ok(done?.done);
  same(done.inner, inner);
});

test('a fragment of another message ID starts over; a non-SKF message is not a fragment', () => {
  const a = algs('aes128gcm16-prfsha256-ecp256');
  const k = keysFor(a);
  const inner = bigInner();
  const one = sealFragments(header, inner, a, k, 700);
  const two = sealFragments({ ...header, messageId: 2 }, inner, a, k, 700);
  const r = new FragmentReassembler(a, k);
  r.add(one[0]!);
  r.add(one[1]!);
  r.add(two[0]!);
  assert.equal(r.pending, 1);
  const plainSk = sealEncrypted(header, { type: PayloadType.SK, innerNext: 0, prefix: new Uint8Array(0) }, new Uint8Array(0), a, k);
  assert.equal(r.add(plainSk), null);
});

test(`cap: more than ${MAX_FRAGMENTS} fragments are neither sent nor accepted`, () => {
  const a = algs('aes128gcm16-prfsha256-ecp256');
  const k = keysFor(a);
  // a limit that leaves 100 bytes of data per fragment: 25,600 bytes need 257 fragments
  const limit = IKE_HEADER_LENGTH + 8 + 8 + 101 + 16;
  const big: IkePayload[] = [{ type: PayloadType.CERT, critical: false, body: randomBytes(25_600) }];
  assert.throws(() => sealFragments(header, big, a, k, limit), /fragments \(at most 255\)/);
  const ok = sealFragments(header, [{ type: PayloadType.CERT, critical: false, body: randomBytes(25_000) }], a, k, limit);
  assert.ok(ok.length <= 255 && ok.length > 240);
  // a correctly sealed fragment claiming 256 in total is dropped
  const prefix = Uint8Array.of(0, 1, 1, 0);
  const m = sealEncrypted(header, { type: PayloadType.SKF, innerNext: PayloadType.CERT, prefix }, randomBytes(50), a, k);
  assert.equal(openFragment(m, parseIkeMessage(m), a, k)?.total, 256);
  assert.equal(new FragmentReassembler(a, k).add(m), null);
});

test('Requests: a fragmented request is retransmitted as all its fragments, on the simulated clock', () => {
  const clock = new ManualClock(0);
  const q = new Requests({ initialMs: 1000, factor: 2, maxIntervalMs: 16_000, retransmits: 2 });
  const frags = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)];
  q.start(IkeExchange.IKE_AUTH, frags, clock.now());
  assert.equal(q.onTimer(500), undefined);
  clock.advance(1000);
  const r1 = q.onTimer(clock.now());
  assert.ok(r1 && 'resend' in r1);
  assert.deepEqual(r1.resend, frags);
  clock.advance(2000);
  const r2 = q.onTimer(clock.now());
  assert.ok(r2 && 'resend' in r2 && r2.resend.length === 3);
  clock.advance(4000);
  const r3 = q.onTimer(clock.now());
  assert.ok(r3 && 'timeout' in r3);
  assert.match(r3.timeout.message, /after 3 transmissions/);
});

test('PeerRequests: the cached response keeps every fragment', () => {
  const p = new PeerRequests();
  assert.equal(p.classify(0), 'new');
  const frags = [Uint8Array.of(1), Uint8Array.of(2)];
  p.answered(0, frags);
  assert.equal(p.classify(0), 'retransmit');
  assert.deepEqual(p.cachedResponse(), frags);
  assert.equal(p.classify(1), 'new');
});

test('property: the reassembler only returns null or throws WireError on arbitrary and mutated input', () => {
  const suites = ['aes128gcm16-prfsha256-ecp256', 'aes128-sha256-modp2048'].map(algs);
  const keys = suites.map(keysFor);
  const seeds = suites.map((a, i) => sealFragments(header, bigInner(300), a, keys[i]!, 300));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 }), fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.boolean(), fc.nat(), (i, junk, mutate, pick) => {
      const a = suites[i]!;
      const r = new FragmentReassembler(a, keys[i]!);
      let input: Uint8Array;
      if (mutate) {
        const base = seeds[i]![pick % seeds[i]!.length]!;
        input = Uint8Array.from(base);
        for (let j = 0; j < Math.min(8, junk.length); j++) input[(junk[j]! * 7 + j * 131) % input.length] = junk[junk.length - 1 - j]!;
        if (junk.length === 0) input = input.subarray(0, pick % input.length);
      } else {
        // a plausible header with SKF first, then junk
        const b = new Uint8Array(IKE_HEADER_LENGTH + junk.length);
        b.set(header.spiI, 0);
        b[16] = PayloadType.SKF;
        b[17] = 0x20;
        b[18] = IkeExchange.IKE_AUTH;
        new DataView(b.buffer).setUint32(24, b.length);
        b.set(junk, IKE_HEADER_LENGTH);
        input = b;
      }
      try {
        const out = r.add(input);
        // a mutation that happens to change nothing relevant may still verify
        if (out !== null) assert.ok(typeof out.done === 'boolean');
      } catch (e) {
        assert.ok(e instanceof WireError, String(e));
      }
    }),
    { numRuns: 500 },
  );
});
