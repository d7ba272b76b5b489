/**
 * IPv6 fragment reassembly (issue 16): the Reassembler6 core rules (RFC 8200 §4.5, RFC 5722 overlaps, RFC 6946
 * atomic fragments, 60 s, caps), then the IPv6 layer handing reassembled packets to UDP and ICMPv6, fragments made
 * by scapy's fragment6(), a property (any cut, any order, duplicates: the original comes back) and a fuzz.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { createLinkPair } from '../../../src/link/link.js';
import { Reassembler6 } from '../../../src/stack/reassembly6.js';
import { IpStack } from '../../../src/stack/stack.js';
import { ManualClock } from '../../../src/util/clock.js';
import { buildIcmpv6 } from '../../../src/wire/icmpv6.js';
import { IPV6_HEADER_LENGTH, ipv6AddressSum, parseIpv6, parseIpv6Address, type Ipv6Packet } from '../../../src/wire/ipv6.js';
import { buildUdp } from '../../../src/wire/udp.js';
import { PEER, US, linkConfig, settle } from './helpers.js';

const V6US = 'fd00:8::1000';
const V6PEER = 'fd00:b:2::2';
const SRC = parseIpv6Address(V6PEER);
const DST = parseIpv6Address(V6US);
const data = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

/** One IPv6 packet with a fragment header (and `unfrag` bytes of destination options before it). */
function frag6(o: { id: number; offset: number; more: boolean; data: Uint8Array; nh?: number; unfrag?: number; src?: Uint8Array }): Uint8Array {
  const unfrag = o.unfrag ?? 0;
  const plen = unfrag + 8 + o.data.length;
  const out = new Uint8Array(IPV6_HEADER_LENGTH + plen);
  out[0] = 0x60;
  out[4] = plen >> 8;
  out[5] = plen & 0xff;
  out[6] = unfrag ? 60 : 44;
  out[7] = 64;
  out.set(o.src ?? SRC, 8);
  out.set(DST, 24);
  let off = IPV6_HEADER_LENGTH;
  if (unfrag) {
    out[off] = 44;
    out[off + 1] = unfrag / 8 - 1;
    out[off + 2] = 1; // PadN filling the rest
    out[off + 3] = unfrag - 4;
    off += unfrag;
  }
  out[off] = o.nh ?? 17;
  const fo = o.offset | (o.more ? 1 : 0);
  out[off + 2] = fo >> 8;
  out[off + 3] = fo & 0xff;
  out[off + 4] = (o.id >>> 24) & 0xff;
  out[off + 5] = (o.id >> 16) & 0xff;
  out[off + 6] = (o.id >> 8) & 0xff;
  out[off + 7] = o.id & 0xff;
  out.set(o.data, off + 8);
  return out;
}

/** Fragments of `payload` cut at the given offsets (multiples of 8), parsed. */
function cut(payload: Uint8Array, cuts: number[], id = 1, extra: { unfrag?: number; src?: Uint8Array; nh?: number } = {}): Ipv6Packet[] {
  const bounds = [0, ...cuts, payload.length];
  const out: Ipv6Packet[] = [];
  for (let i = 0; i + 1 < bounds.length; i++)
    out.push(parseIpv6(frag6({ id, offset: bounds[i]!, more: i + 2 < bounds.length, data: payload.subarray(bounds[i]!, bounds[i + 1]!), ...extra })));
  return out;
}

test('in order: the last fragment completes the datagram, rebuilt without the fragment header', () => {
  const r = new Reassembler6();
  const p = data(3000);
  const fs = cut(p, [1232, 2464]);
  assert.equal(r.input(fs[0]!, 0), undefined);
  assert.equal(r.input(fs[1]!, 1), undefined);
  const whole = r.input(fs[2]!, 2);
  assert.ok(whole);
  const ip = parseIpv6(whole);
  assert.equal(ip.fragment, undefined);
  assert.equal(ip.protocol, 17);
  assert.equal(ip.nextHeader, 17);
  assert.equal(ip.payloadLength, 3000);
  assert.equal(ip.hopLimit, 64);
  assert.deepEqual(ip.src, SRC);
  assert.deepEqual(ip.payload, p);
  assert.equal(r.size, 0);
  assert.equal(r.bufferedBytes, 0);
  assert.equal(r.stats.reassembled, 1);
});

test('out of order, last fragment first: completes on the missing middle', () => {
  const r = new Reassembler6();
  const p = data(5000, 3);
  const fs = cut(p, [1000, 2000, 4000]);
  assert.equal(r.input(fs[3]!, 0), undefined);
  assert.equal(r.input(fs[0]!, 0), undefined);
  assert.equal(r.input(fs[2]!, 0), undefined);
  const whole = r.input(fs[1]!, 0);
  assert.deepEqual(parseIpv6(whole!).payload, p);
});

test('an exact duplicate is ignored and counted; the datagram still completes (RFC 8200 §4.5)', () => {
  const r = new Reassembler6();
  const p = data(2000);
  const fs = cut(p, [1000]);
  r.input(fs[0]!, 0);
  assert.equal(r.input(fs[0]!, 0), undefined);
  assert.equal(r.stats.duplicates, 1);
  assert.deepEqual(parseIpv6(r.input(fs[1]!, 0)!).payload, p);
});

test('any overlap drops the whole datagram, later fragments included (RFC 5722)', () => {
  const r = new Reassembler6();
  const p = data(3000);
  const a = cut(p, [1496]);
  const overlapping = parseIpv6(frag6({ id: 1, offset: 1488, more: true, data: p.subarray(1488, 2000) }));
  assert.equal(r.input(a[0]!, 0), undefined);
  assert.equal(r.input(overlapping, 0), undefined);
  assert.equal(r.stats.overlaps, 1);
  assert.equal(r.size, 0);
  assert.equal(r.input(a[1]!, 0), undefined, 'the rest alone is not a datagram');
  assert.equal(r.stats.reassembled, 0);
});

test('datagrams are keyed by (src, dst, id): the same id from another source is another datagram', () => {
  const r = new Reassembler6();
  const other = parseIpv6Address('fd00:b:2::3');
  const p = data(2000);
  const q = data(2000, 9);
  const a = cut(p, [1000], 5);
  const b = cut(q, [1000], 5, { src: other });
  r.input(a[0]!, 0);
  r.input(b[0]!, 0);
  assert.equal(r.size, 2);
  assert.deepEqual(parseIpv6(r.input(b[1]!, 0)!).payload, q);
  assert.deepEqual(parseIpv6(r.input(a[1]!, 0)!).payload, p);
});

test('60 s after its first fragment an incomplete datagram is dropped as a timeout', () => {
  const r = new Reassembler6();
  const fs = cut(data(2000), [1000]);
  r.input(fs[0]!, 1000);
  assert.equal(r.nextDeadline(), 61_000);
  r.expire(60_999);
  assert.equal(r.size, 1);
  r.expire(61_000);
  assert.equal(r.size, 0);
  assert.equal(r.stats.timeouts, 1);
  assert.equal(r.nextDeadline(), undefined);
  assert.equal(r.input(fs[1]!, 61_001), undefined, 'the late half starts a new datagram');
});

test('caps: past maxDatagrams the oldest is evicted; past maxBytes too; a fragment larger than maxBytes is refused', () => {
  const r = new Reassembler6({ maxDatagrams: 2, maxBytes: 4096 });
  const halves = [1, 2, 3].map((id) => cut(data(2000, id), [1000], id));
  r.input(halves[0]![0]!, 0);
  r.input(halves[1]![0]!, 1);
  r.input(halves[2]![0]!, 2); // evicts id 1
  assert.equal(r.size, 2);
  assert.equal(r.stats.evicted, 1);
  assert.equal(r.input(halves[0]![1]!, 3), undefined);
  assert.ok(r.input(halves[2]![1]!, 3));
  const big = new Reassembler6({ maxBytes: 2048 });
  big.input(cut(data(3000), [1200], 7)[0]!, 0);
  big.input(cut(data(3000), [1200], 8)[0]!, 0); // 2400 bytes would be over: id 7 goes
  assert.equal(big.stats.evicted, 1);
  assert.ok(big.bufferedBytes <= 2048);
  assert.equal(big.input(cut(data(4000), [2400], 9)[0]!, 0), undefined);
  assert.equal(big.stats.invalid, 1);
});

test('invalid: a non-final fragment not a multiple of 8, and a datagram past 65535 bytes (unfragmentable headers count)', () => {
  const r = new Reassembler6();
  r.input(parseIpv6(frag6({ id: 1, offset: 0, more: true, data: data(1001) })), 0);
  assert.equal(r.stats.invalid, 1);
  // 65535 - 8 bytes of destination options leaves 65527 for the fragmentable part
  const lastOk = parseIpv6(frag6({ id: 2, offset: 65520, more: false, data: data(7), unfrag: 8 }));
  r.input(lastOk, 0);
  assert.equal(r.stats.invalid, 1);
  const tooFar = parseIpv6(frag6({ id: 3, offset: 65520, more: false, data: data(8), unfrag: 8 }));
  r.input(tooFar, 0);
  assert.equal(r.stats.invalid, 2);
});

test('an atomic fragment (offset 0, M clear) is a whole packet at once and leaves a datagram with its id alone (RFC 6946)', () => {
  const r = new Reassembler6();
  const p = data(3000);
  const fs = cut(p, [1496], 42);
  r.input(fs[0]!, 0);
  const atomic = r.input(parseIpv6(frag6({ id: 42, offset: 0, more: false, data: data(100, 1) })), 0);
  assert.deepEqual(parseIpv6(atomic!).payload, data(100, 1));
  assert.equal(r.stats.atomic, 1);
  assert.equal(r.size, 1);
  assert.deepEqual(parseIpv6(r.input(fs[1]!, 0)!).payload, p);
});

// ---- the IPv6 layer ----

function stack() {
  const clock = new ManualClock(0);
  const [la] = createLinkPair(linkConfig(US, { address6: V6US, prefixLength6: 64 }), linkConfig(PEER, { address6: 'fd00:8::1', prefixLength6: 64 }));
  const sent: Uint8Array[] = [];
  const orig = la.send.bind(la);
  la.send = (p: Uint8Array) => {
    sent.push(p.slice());
    orig(p);
  };
  return { clock, a: new IpStack(la, { clock }), sent };
}

test('the IPv6 layer hands a reassembled UDP datagram to the socket and counts it', async () => {
  const { a } = stack();
  const s = a.udp.bind(40000);
  const got: Uint8Array[] = [];
  s.on('message', (d, r) => {
    assert.equal(r.address, V6PEER);
    got.push(Uint8Array.from(d));
  });
  const body = data(4000, 5);
  const udp = buildUdp({ srcPort: 53, dstPort: 40000, payload: body }, { src: 0, dst: 0, sum: ipv6AddressSum(SRC, DST) });
  const fs = [0, 1448, 2896].map((o, i, all) => frag6({ id: 9, offset: o, more: i < 2, data: udp.subarray(o, all[i + 1] ?? udp.length) }));
  a.ip6.input(fs[2]!);
  a.ip6.input(fs[0]!);
  a.ip6.input(fs[1]!);
  await settle();
  assert.deepEqual(got, [body]);
  assert.equal(a.ip6.stats.reassembly.reassembled, 1);
  assert.equal(a.ip6.stats.drops.fragment, 0);
  assert.equal(a.ip6.stats.delivered, 1);
});

test('the IPv6 layer answers a fragmented echo request, and its timer drops an incomplete datagram after 60 s', async () => {
  const { a, clock, sent } = stack();
  const icmp = buildIcmpv6({ kind: 'echo-request', id: 7, seq: 1, payload: data(592) }, ipv6AddressSum(SRC, DST));
  a.ip6.input(frag6({ id: 1, offset: 0, more: true, nh: 58, data: icmp.subarray(0, 304) }));
  a.ip6.input(frag6({ id: 1, offset: 304, more: false, nh: 58, data: icmp.subarray(304) }));
  assert.equal(a.ip6.stats.icmp.echoRequestsAnswered, 1);
  const reply = parseIpv6(sent[sent.length - 1]!);
  assert.equal(reply.protocol, 58);
  assert.equal(reply.payload.length, 600);
  a.ip6.input(frag6({ id: 2, offset: 0, more: true, data: data(1000) }));
  assert.equal(a.ip6.stats.reassembly.fragments, 3);
  clock.advance(59_999);
  assert.equal(a.ip6.stats.reassembly.timeouts, 0);
  clock.advance(1);
  assert.equal(a.ip6.stats.reassembly.timeouts, 1);
  a.close();
});

test('an overlapping fragment is counted as a fragment drop by the IPv6 layer', () => {
  const { a } = stack();
  a.ip6.input(frag6({ id: 3, offset: 0, more: true, data: data(1000) }));
  a.ip6.input(frag6({ id: 3, offset: 992, more: false, data: data(100) }));
  assert.equal(a.ip6.stats.reassembly.overlaps, 1);
  assert.equal(a.ip6.stats.drops.fragment, 1);
});

test('scapy fragment6() fragments reassemble to the UDP datagram scapy built, in any order', async () => {
  const fx = JSON.parse(readFileSync(new URL('../../fixtures/ipv6/scapy-fragment6.json', import.meta.url), 'utf8')) as {
    cases: Array<{ name: string; fragments: string[]; udp: string }>;
  };
  for (const c of fx.cases) {
    const frags = c.fragments.map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
    const want = Uint8Array.from(Buffer.from(c.udp, 'hex'));
    for (const order of [frags, [...frags].reverse()]) {
      const { a } = stack();
      const port = (want[2]! << 8) | want[3]!;
      const s = a.udp.bind(port);
      const got: Uint8Array[] = [];
      s.on('message', (d) => got.push(Uint8Array.from(d)));
      for (const f of order) a.ip6.input(f);
      await settle();
      assert.deepEqual(got, [want.subarray(8)], c.name);
      assert.equal(a.ip6.stats.reassembly.reassembled, 1, c.name);
      a.close();
    }
  }
});

// ---- properties ----

test('property: any 8-aligned cut, shuffled, with duplicates, reassembles to the original payload', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 9000 }),
      fc.array(fc.integer({ min: 1, max: 1124 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 3 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (payload, cutUnits, shuffle, dups, id) => {
        const cuts = [...new Set(cutUnits.map((u) => u * 8).filter((c) => c < payload.length))].sort((x, y) => x - y);
        const fs = cut(payload, cuts, id);
        if (fs.length === 1) return; // an atomic fragment: covered above
        for (const d of dups) fs.push(fs[d % fs.length]!);
        for (let i = fs.length - 1; i > 0; i--) {
          const j = (shuffle[i % Math.max(1, shuffle.length)] ?? 0) % (i + 1);
          [fs[i], fs[j]] = [fs[j]!, fs[i]!];
        }
        // The expected deliveries, modelled independently: an exact duplicate of a piece already held is ignored,
        // and a completed datagram is forgotten, so duplicates arriving after it start a new one, which completes
        // again only if they happen to hold every piece (a duplicated whole datagram is delivered twice, as IP may).
        let expected = 0;
        let held = new Set<number>();
        for (const f of fs) {
          held.add(f.fragment!.offset);
          if (held.size === cuts.length + 1) {
            expected++;
            held = new Set();
          }
        }
        const r = new Reassembler6();
        const outs = fs.map((f) => r.input(f, 0)).filter((x) => x !== undefined);
        assert.ok(expected >= 1);
        assert.equal(outs.length, expected);
        for (const o of outs) assert.deepEqual(parseIpv6(o).payload, payload);
        // duplicates after the last completion start a new datagram that never completes
        assert.ok(r.size <= 1);
      },
    ),
    { numRuns: 300 },
  );
});

test('fuzz: random bytes and random fragment headers never throw, and memory stays within the caps', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 200 }).map((b) => ({ raw: b })),
          fc.record({ id: fc.integer({ min: 0, max: 3 }), offset: fc.integer({ min: 0, max: 8191 }).map((u) => u * 8), more: fc.boolean(), len: fc.integer({ min: 0, max: 3000 }) }),
        ),
        { maxLength: 40 },
      ),
      (items) => {
        const { a, clock } = stack();
        for (const it of items) {
          if ('raw' in it) {
            const b = it.raw;
            if (b.length > 0) b[0] = 0x60 | (b[0]! & 0x0f);
            a.ip6.input(b);
          } else a.ip6.input(frag6({ id: it.id, offset: it.offset, more: it.more, data: data(it.len) }));
          clock.advance(1000);
        }
        assert.ok(a.ip6.stats.reassembly.fragments <= items.length);
        const r = new Reassembler6({ maxDatagrams: 2, maxBytes: 5000 });
        for (const it of items) {
          if ('raw' in it) continue;
          r.input(parseIpv6(frag6({ id: it.id, offset: it.offset, more: it.more, data: data(it.len) })), 0);
          assert.ok(r.bufferedBytes <= 5000 && r.size <= 2);
        }
        a.close();
      },
    ),
    { numRuns: 200 },
  );
});
