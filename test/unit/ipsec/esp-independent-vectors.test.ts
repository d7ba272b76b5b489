/**
 * ESP packets made by an implementation we did not write — the Linux kernel's XFRM ESP, in tunnel mode with
 * ESP-in-UDP encapsulation — opened byte-exact by our InboundSa, and the kernel's verdict on packets our
 * OutboundSa sealed. The fixture comes from test/lab/xfrm-esp-vectors.ts (run it as root to regenerate): each
 * datagram's expected inner packet is the one the receiving kernel decrypted it to, captured on its veth.
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
interface Fixture {
  kernel: string;
  replayWindow: number;
  suites: FixtureSuite[];
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
