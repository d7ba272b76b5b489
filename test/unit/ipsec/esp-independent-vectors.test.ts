/**
 * ESP packets made by an implementation we did not write — the Linux kernel's XFRM ESP, in tunnel mode with
 * ESP-in-UDP encapsulation — opened byte-exact by our InboundSa, and the kernel's verdict on packets our
 * OutboundSa sealed. The fixture comes from test/lab/xfrm-esp-vectors.ts (run it as root to regenerate): each
 * datagram's expected inner packet is the one the receiving kernel decrypted it to, captured on its veth.
 *
 * Extended Sequence Numbers (RFC 4303 §2.2.1, §3.3.2.1; `esnSuites`): the kernel's states started with their
 * replay counters at 0xfffffffd (high half 0), so its datagrams cross 2^32 with only the low halves on the wire;
 * each packet's 64-bit number is the one the sender's kernel state (oseq-hi/oseq) gave it. An ESN InboundSa
 * started at the same point (`lastSeq`) must open them all, and the kernel must have taken what our ESN
 * OutboundSa sealed across the wrap.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { espSuite } from '../../../src/crypto/ipsec-algorithms.js';
import { InboundSa, OutboundSa, type EspDrop } from '../../../src/ipsec/esp-sa.js';

interface FixtureSa {
  direction: 'a-to-b' | 'b-to-a';
  src: string;
  dst: string;
  spi: string;
  suite: string;
  encKey: string;
  integKey: string;
}
interface FixtureSuite {
  suite: string;
  sas: FixtureSa[];
  packets: { sa: FixtureSa['direction']; what: string; udp: string; inner: string }[];
  ours: { sa: FixtureSa['direction']; lastSeq: number; inner: string; udp: string; kernelDecrypted: string | null };
  kernelAcceptedOurs: boolean;
  kernelReplyToOurs: { sa: FixtureSa['direction']; udp: string; inner: string } | null;
}
type EsnSaName = 'a-to-b' | 'b-to-a' | 'ours';
interface EsnCounters {
  ns: 'a' | 'b';
  sa: EsnSaName;
  seqHi: number;
  seq: number;
  oseqHi: number;
  oseq: number;
}
interface EsnSuite {
  suite: string;
  startSeq: number;
  sas: (Omit<FixtureSa, 'direction'> & { direction: EsnSaName })[];
  kernelCounters: { before: EsnCounters[]; after: EsnCounters[] };
  packets: { sa: 'a-to-b' | 'b-to-a'; seq: number; what: string; udp: string; inner: string }[];
  ours: { sa: 'ours'; lastSeq: number; packets: { seq: number; inner: string; udp: string; kernelDecrypted: string | null }[] };
  kernelAcceptedOurs: boolean;
  kernelRepliesToOurs: ({ sa: 'b-to-a'; seq: number; udp: string; inner: string } | null)[];
}
interface Fixture {
  kernel: string;
  replayWindow: number;
  suites: FixtureSuite[];
  esnSuites: EsnSuite[];
  skipped: { suite: string; reason: string }[];
}

const FIXTURE = JSON.parse(readFileSync(new URL('../../fixtures/esp/linux-xfrm.json', import.meta.url), 'utf8')) as Fixture;
const SUITES = ['aes128gcm16', 'aes256gcm16', 'chacha20poly1305', 'aes128-sha1', 'aes256-sha256', 'aes256-sha512'];
const hex = (s: string) => Buffer.from(s, 'hex');

function saOf(s: FixtureSuite, direction: FixtureSa['direction']): FixtureSa {
  const sa = s.sas.find((x) => x.direction === direction);
  assert.ok(sa, `${s.suite}: no ${direction} SA in the fixture`);
  return sa;
}
function params(s: FixtureSuite, direction: FixtureSa['direction']) {
  const sa = saOf(s, direction);
  const { suite, esn } = espSuite(sa.suite);
  return { spi: Number(sa.spi), suite, esn: esn ?? false, encKey: hex(sa.encKey), integKey: hex(sa.integKey) };
}
function inbound(s: FixtureSuite, direction: FixtureSa['direction']): InboundSa {
  return new InboundSa({ ...params(s, direction), replayWindow: FIXTURE.replayWindow });
}
function opened(r: { packet: Uint8Array } | { drop: EspDrop }, what: string): Buffer {
  assert.ok('packet' in r, `${what}: dropped as ${'drop' in r ? r.drop : ''}`);
  return Buffer.from(r.packet);
}
const dropOf = (r: { packet: Uint8Array } | { drop: EspDrop }) => ('drop' in r ? r.drop : 'accepted');

test('the fixture holds every suite of the issue, or says why the kernel refused one', () => {
  assert.match(FIXTURE.kernel, /\S/);
  for (const name of SUITES) {
    const have = FIXTURE.suites.some((s) => s.suite === name);
    const skipped = FIXTURE.skipped.find((s) => s.suite === name);
    assert.ok(have || skipped, `${name} neither captured nor skipped`);
    if (skipped) assert.match(skipped.reason, /\S/);
  }
  // the kernel's legacy (non-ESN) window is 32 bits; ours must be configured inside our range too
  assert.ok(FIXTURE.replayWindow >= 32 && FIXTURE.replayWindow <= 4096);
});

for (const s of FIXTURE.suites) {
  describe(`Linux XFRM ESP ${s.suite}`, () => {
    for (const direction of ['a-to-b', 'b-to-a'] as const) {
      const packets = s.packets.filter((p) => p.sa === direction);

      test(`${direction}: every kernel datagram opens to exactly the inner packet the kernel decrypted it to`, () => {
        assert.ok(packets.length >= 5, `only ${packets.length} ${direction} packets`);
        const sa = inbound(s, direction);
        for (const p of packets) {
          const got = opened(sa.open(hex(p.udp)), p.what);
          assert.equal(got.toString('hex'), p.inner, p.what);
        }
        assert.equal(Object.values(sa.drops).reduce((a, b) => a + b, 0), 0);
        assert.equal(sa.highestSeq, hex(packets.at(-1)!.udp).readUInt32BE(4));
      });

      test(`${direction}: a replay of the first datagram is dropped as 'replayed'`, () => {
        const sa = inbound(s, direction);
        const first = hex(packets[0]!.udp);
        opened(sa.open(first), packets[0]!.what);
        assert.equal(dropOf(sa.open(first)), 'replayed');
        for (const p of packets.slice(1)) opened(sa.open(hex(p.udp)), p.what);
        assert.equal(dropOf(sa.open(first)), 'replayed');
        assert.equal(sa.drops.replayed, 2);
      });

      test(`${direction}: one flipped bit in the ciphertext or the ICV is dropped as 'bad-icv'`, () => {
        const sa = inbound(s, direction);
        const good = hex(packets[0]!.udp);
        for (const at of [8 + Math.floor((good.length - 8) / 2), good.length - 1, 8]) {
          const bad = Buffer.from(good);
          bad[at]! ^= 0x01;
          assert.equal(dropOf(sa.open(bad)), 'bad-icv', `bit 0 of byte ${at}`);
        }
        assert.equal(sa.drops['bad-icv'], 3);
        // the forgeries did not move the window: the genuine datagram still opens
        assert.equal(opened(sa.open(good), packets[0]!.what).toString('hex'), packets[0]!.inner);
      });
    }

    test('the kernel accepted what our OutboundSa sealed under its inbound keys, and its reply opens', () => {
      assert.equal(s.kernelAcceptedOurs, true, 'the generator saw the kernel refuse or ignore our packet');
      const ours = s.ours;
      // the kernel decrypted our datagram to exactly our inner packet
      assert.equal(ours.kernelDecrypted, ours.inner);
      // what was sent is what our OutboundSa makes: byte-exact for AEAD (IV = sequence number), structurally for CBC (random IV)
      const p = params(s, ours.sa);
      const resealed = Buffer.from(new OutboundSa({ ...p, lastSeq: ours.lastSeq }).seal(hex(ours.inner)));
      const sent = hex(ours.udp);
      if (p.suite.aead) assert.equal(resealed.toString('hex'), ours.udp);
      else {
        assert.equal(resealed.length, sent.length);
        assert.ok(resealed.subarray(0, 8).equals(sent.subarray(0, 8)), 'SPI and sequence number');
      }
      assert.equal(sent.readUInt32BE(4), ours.lastSeq + 1);
      // after the kernel's own packets, our InboundSa takes it too
      const sa = inbound(s, ours.sa);
      for (const k of s.packets.filter((x) => x.sa === ours.sa)) opened(sa.open(hex(k.udp)), k.what);
      assert.equal(opened(sa.open(sent), 'ours').toString('hex'), ours.inner);

      // the kernel's answer: an echo reply to our request (same identifier, sequence and data), which we open
      const reply = s.kernelReplyToOurs;
      assert.ok(reply);
      const back = opened(inbound(s, reply.sa).open(hex(reply.udp)), 'reply to ours');
      assert.equal(back.toString('hex'), reply.inner);
      const req = hex(ours.inner);
      const ihl = (req[0]! & 15) * 4;
      const rihl = (back[0]! & 15) * 4;
      assert.equal(back[9], 1);
      assert.equal(back[rihl], 0, 'ICMP echo reply');
      assert.ok(back.subarray(12, 16).equals(req.subarray(16, 20)) && back.subarray(16, 20).equals(req.subarray(12, 16)), 'addresses swapped');
      assert.ok(back.subarray(rihl + 4).equals(req.subarray(ihl + 4)), 'identifier, sequence and data echoed');
    });
  });
}

// ---- Extended Sequence Numbers across 2^32 ----

const TWO_32 = 2 ** 32;
const ESN_REQUIRED = ['aes128gcm16-esn', 'aes256-sha256-esn'];
const ESN_OPTIONAL = ['aes128-sha1-esn'];

function esnParams(s: EsnSuite, direction: EsnSaName) {
  const sa = s.sas.find((x) => x.direction === direction);
  assert.ok(sa, `${s.suite}: no ${direction} SA in the fixture`);
  const { suite, esn } = espSuite(sa.suite);
  assert.equal(esn, true, `${sa.suite} names an ESN suite`);
  return { spi: Number(sa.spi), suite, esn: true, encKey: hex(sa.encKey), integKey: hex(sa.integKey) };
}
/** An ESN InboundSa whose window is where the kernel's state started (or `lastSeq`). */
function esnInbound(s: EsnSuite, direction: EsnSaName, lastSeq = s.startSeq): InboundSa {
  return new InboundSa({ ...esnParams(s, direction), replayWindow: FIXTURE.replayWindow, lastSeq });
}
const counter = (s: EsnSuite, when: 'before' | 'after', ns: 'a' | 'b', sa: EsnSaName) => {
  const c = s.kernelCounters[when].find((x) => x.ns === ns && x.sa === sa);
  assert.ok(c, `${s.suite}: no ${when} counters of ${sa} in ${ns}`);
  return { in: c.seqHi * TWO_32 + c.seq, out: c.oseqHi * TWO_32 + c.oseq };
};

test('the fixture holds kernel ESN packets for aes128gcm16 and aes256-sha256 (aes128-sha1 too, or says why not)', () => {
  for (const name of [...ESN_REQUIRED, ...ESN_OPTIONAL]) {
    const have = (FIXTURE.esnSuites ?? []).some((s) => s.suite === name);
    const skipped = FIXTURE.skipped.find((s) => s.suite === name);
    if (ESN_REQUIRED.includes(name)) assert.ok(have, `${name} not captured${skipped ? `: ${skipped.reason}` : ''}`);
    else assert.ok(have || (skipped && /\S/.test(skipped.reason)), `${name} neither captured nor skipped`);
  }
});

for (const s of FIXTURE.esnSuites ?? []) {
  describe(`Linux XFRM ESP ${s.suite} across 2^32`, () => {
    test("the kernel's datagrams carry the low halves of 64-bit numbers from just below 2^32 to above it", () => {
      assert.ok(s.startSeq < TWO_32 - 1 && s.startSeq > TWO_32 - FIXTURE.replayWindow, 'the kernel states start just below the wrap');
      for (const [direction, sender, receiver] of [['a-to-b', 'a', 'b'], ['b-to-a', 'b', 'a']] as const) {
        const packets = s.packets.filter((p) => p.sa === direction);
        assert.ok(packets.length >= 5, `only ${packets.length} ${direction} packets`);
        assert.deepEqual(packets.map((p) => p.seq), packets.map((_, k) => s.startSeq + 1 + k), `${direction}: one after another from the start`);
        assert.ok(packets.some((p) => p.seq === TWO_32 - 1) && packets.some((p) => p.seq === TWO_32), `${direction}: 2^32-1 then 2^32`);
        for (const p of packets) assert.equal(hex(p.udp).readUInt32BE(4), p.seq % TWO_32, `${direction} 0x${p.seq.toString(16)}: the low half on the wire`);
        // the kernel's own counters: the sender's oseq-hi/oseq and the receiver's seq-hi/seq end at the last packet
        assert.equal(counter(s, 'before', sender, direction).out, s.startSeq);
        assert.equal(counter(s, 'after', sender, direction).out, packets.at(-1)!.seq);
        assert.equal(counter(s, 'after', receiver, direction).in, packets.at(-1)!.seq);
      }
    });

    for (const direction of ['a-to-b', 'b-to-a'] as const) {
      const packets = s.packets.filter((p) => p.sa === direction);

      test(`${direction}: an ESN InboundSa started where the kernel's state was opens every datagram to exactly its inner packet`, () => {
        const sa = esnInbound(s, direction);
        for (const p of packets) {
          const got = opened(sa.open(hex(p.udp)), `0x${p.seq.toString(16)} ${p.what}`);
          assert.equal(got.toString('hex'), p.inner, `0x${p.seq.toString(16)} ${p.what}`);
        }
        assert.equal(Object.values(sa.drops).reduce((a, b) => a + b, 0), 0);
        assert.equal(sa.highestSeq, packets.at(-1)!.seq);
        // every one of them again, either side of the wrap, is a replay
        for (const p of packets) assert.equal(dropOf(sa.open(hex(p.udp))), 'replayed', `0x${p.seq.toString(16)} again`);
      });

      test(`${direction}: the high half is authenticated: a receiver one subspace off drops them all as 'bad-icv'`, () => {
        const later = esnInbound(s, direction, s.startSeq + TWO_32);
        for (const p of packets) assert.equal(dropOf(later.open(hex(p.udp))), 'bad-icv', `0x${p.seq.toString(16)} as 0x${(p.seq + TWO_32).toString(16)}`);
        // a fresh receiver (high half 0, nothing seen) cannot place 0xfffffffe above its first subspace
        const fresh = new InboundSa({ ...esnParams(s, direction), replayWindow: FIXTURE.replayWindow });
        assert.equal(dropOf(fresh.open(hex(packets[0]!.udp))), 'too-old');
      });
    }

    test('the kernel accepted what our ESN OutboundSa sealed across the wrap, and its replies open', () => {
      assert.equal(s.kernelAcceptedOurs, true, 'the generator saw the kernel refuse or ignore our packets');
      const ours = s.ours;
      const p = esnParams(s, 'ours');
      const out = new OutboundSa({ ...p, lastSeq: ours.lastSeq });
      assert.deepEqual(ours.packets.map((x) => x.seq), ours.packets.map((_, k) => ours.lastSeq + 1 + k));
      assert.ok(ours.packets.some((x) => x.seq < TWO_32) && ours.packets.some((x) => x.seq >= TWO_32), 'ours cross 2^32');
      for (const x of ours.packets) {
        const what = `ours 0x${x.seq.toString(16)}`;
        // the kernel decrypted it to exactly our inner packet
        assert.equal(x.kernelDecrypted, x.inner, what);
        const sent = hex(x.udp);
        const resealed = Buffer.from(out.seal(hex(x.inner)));
        assert.equal(sent.readUInt32BE(4), x.seq % TWO_32, `${what}: low half on the wire`);
        // byte-exact for AEAD (IV = the 64-bit number), structurally for CBC (random IV)
        if (p.suite.aead) {
          assert.equal(resealed.toString('hex'), x.udp, what);
          assert.equal(sent.readUInt32BE(8) * TWO_32 + sent.readUInt32BE(12), x.seq, `${what}: the explicit IV`);
        } else {
          assert.equal(resealed.length, sent.length, what);
          assert.ok(resealed.subarray(0, 8).equals(sent.subarray(0, 8)), `${what}: SPI and sequence number`);
        }
      }
      assert.equal(out.seq, ours.packets.at(-1)!.seq);
      // the kernel's receiving state ended on our last number (high half 1), and our own InboundSa takes them too
      assert.equal(counter(s, 'after', 'b', 'ours').in, ours.packets.at(-1)!.seq);
      const mine = esnInbound(s, 'ours');
      for (const x of ours.packets) assert.equal(opened(mine.open(hex(x.udp)), 'ours').toString('hex'), x.inner);

      // the kernel's answers: an echo reply to each request, among its b-to-a datagrams, which we open
      assert.equal(s.kernelRepliesToOurs.length, ours.packets.length);
      const back = esnInbound(s, 'b-to-a');
      const openedBack = new Map(s.packets.filter((k) => k.sa === 'b-to-a').map((k) => [k.seq, opened(back.open(hex(k.udp)), k.what)]));
      s.kernelRepliesToOurs.forEach((r, k) => {
        assert.ok(r, `no reply to ours ${k}`);
        const got = openedBack.get(r.seq);
        assert.ok(got, `reply 0x${r.seq.toString(16)} is a kernel b-to-a datagram`);
        assert.equal(got.toString('hex'), r.inner);
        const req = hex(ours.packets[k]!.inner);
        const ihl = (req[0]! & 15) * 4;
        const rihl = (got[0]! & 15) * 4;
        assert.equal(got[9], 1);
        assert.equal(got[rihl], 0, 'ICMP echo reply');
        assert.ok(got.subarray(12, 16).equals(req.subarray(16, 20)) && got.subarray(16, 20).equals(req.subarray(12, 16)), 'addresses swapped');
        assert.ok(got.subarray(rihl + 4).equals(req.subarray(ihl + 4)), 'identifier, sequence and data echoed');
      });
    });
  });
}
