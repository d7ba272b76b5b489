import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Reassembler } from '../../../src/stack/reassembly.js';
import { buildIpv4, parseIpv4, type Ipv4Packet } from '../../../src/wire/ipv4.js';

const SRC = 0x0a080001;
const DST = 0x0a080002;
const data = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

/** Fragments of `payload` cut at the given offsets (multiples of 8). */
function fragments(payload: Uint8Array, cuts: number[], id = 1, opts: { protocol?: number; src?: number } = {}): Ipv4Packet[] {
  const bounds = [0, ...cuts, payload.length];
  const out: Ipv4Packet[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const a = bounds[i]!;
    const b = bounds[i + 1]!;
    const more = i + 2 < bounds.length;
    out.push(parseIpv4(buildIpv4({ src: opts.src ?? SRC, dst: DST, protocol: opts.protocol ?? 17, id, fragmentOffset: a, moreFragments: more, ttl: 50 }, payload.subarray(a, b))));
  }
  return out;
}

test('in order: the last fragment completes the datagram, header taken from the first', () => {
  const r = new Reassembler();
  const p = data(3000);
  const fs = fragments(p, [1480, 2960]);
  assert.equal(r.input(fs[0]!, 0), undefined);
  assert.equal(r.input(fs[1]!, 1), undefined);
  const whole = r.input(fs[2]!, 2);
  assert.ok(whole);
  assert.deepEqual(whole.payload, p);
  assert.equal(whole.header.totalLength, 20 + 3000);
  assert.equal(whole.header.moreFragments, false);
  assert.equal(whole.header.fragmentOffset, 0);
  assert.equal(whole.header.ttl, 50);
  assert.equal(r.size, 0);
  assert.equal(r.bufferedBytes, 0);
  assert.equal(r.stats.reassembled, 1);
});

test('out of order (every permutation of 4 fragments)', () => {
  const p = data(100, 3);
  const fs = fragments(p, [24, 48, 80]);
  const perms = (xs: number[]): number[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((r) => [x, ...r])));
  for (const order of perms([0, 1, 2, 3])) {
    const r = new Reassembler();
    let whole;
    order.forEach((k, n) => {
      const out = r.input(fs[k]!, n);
      if (n < 3) assert.equal(out, undefined, `order ${order} step ${n}`);
      else whole = out;
    });
    assert.ok(whole, `order ${order}`);
    assert.deepEqual((whole as { payload: Uint8Array }).payload, p);
  }
});

test('an exact duplicate is ignored and counted; the datagram still completes', () => {
  const r = new Reassembler();
  const p = data(40);
  const fs = fragments(p, [16]);
  r.input(fs[0]!, 0);
  r.input(fs[0]!, 0);
  assert.equal(r.stats.duplicates, 1);
  assert.deepEqual(r.input(fs[1]!, 0)?.payload, p);
});

test('overlapping fragments drop the whole datagram', () => {
  const r = new Reassembler();
  const p = data(64);
  const a = fragments(p, [32]);
  // A second cut that overlaps the first fragment: offset 24 with 40 bytes.
  const evil = parseIpv4(buildIpv4({ src: SRC, dst: DST, protocol: 17, id: 1, fragmentOffset: 24 }, data(40, 9)));
  r.input(a[0]!, 0);
  assert.equal(r.input(evil, 0), undefined);
  assert.equal(r.stats.overlaps, 1);
  assert.equal(r.size, 0);
  // The rest of the original no longer completes anything.
  assert.equal(r.input(a[1]!, 0), undefined);
  assert.equal(r.size, 1);
});

test('datagrams with other ids, protocols or sources are kept apart', () => {
  const r = new Reassembler();
  const p1 = data(48, 1);
  const p2 = data(48, 2);
  const p3 = data(48, 3);
  const a = fragments(p1, [24], 5);
  const b = fragments(p2, [24], 5, { protocol: 1 });
  const c = fragments(p3, [24], 5, { src: SRC + 1 });
  r.input(a[0]!, 0);
  r.input(b[0]!, 0);
  r.input(c[0]!, 0);
  assert.equal(r.size, 3);
  assert.deepEqual(r.input(b[1]!, 0)?.payload, p2);
  assert.deepEqual(r.input(c[1]!, 0)?.payload, p3);
  assert.deepEqual(r.input(a[1]!, 0)?.payload, p1);
});

test('too many datagrams in flight: the oldest is evicted', () => {
  const r = new Reassembler({ maxDatagrams: 2 });
  const ps = [data(32, 1), data(32, 2), data(32, 3)];
  const fs = ps.map((p, i) => fragments(p, [16], 100 + i));
  r.input(fs[0]![0]!, 0);
  r.input(fs[1]![0]!, 1);
  r.input(fs[2]![0]!, 2);
  assert.equal(r.size, 2);
  assert.equal(r.stats.evicted, 1);
  assert.equal(r.input(fs[0]![1]!, 3), undefined, 'the evicted one cannot complete');
  assert.deepEqual(r.input(fs[2]![1]!, 4)?.payload, ps[2]);
});

test('byte limit: buffering stays under maxBytes', () => {
  const r = new Reassembler({ maxBytes: 2000 });
  for (let i = 0; i < 10; i++) {
    r.input(fragments(data(2000), [800], 200 + i)[0]!, i);
    assert.ok(r.bufferedBytes <= 2000, `${r.bufferedBytes}`);
  }
  assert.ok(r.stats.evicted >= 8);
  // A fragment larger than the whole budget is refused outright.
  const big = fragments(data(4000), [2400], 999)[0]!;
  assert.equal(r.input(big, 20), undefined);
  assert.equal(r.stats.invalid, 1);
});

test('timeout: incomplete datagrams expire after 30 s from their first fragment', () => {
  const r = new Reassembler();
  const fs = fragments(data(64), [32]);
  r.input(fs[0]!, 1000);
  assert.equal(r.nextDeadline(), 31_000);
  r.expire(30_999);
  assert.equal(r.size, 1);
  r.expire(31_000);
  assert.equal(r.size, 0);
  assert.equal(r.stats.timeouts, 1);
  assert.equal(r.nextDeadline(), undefined);
  // A late fragment starts a new, incomplete datagram.
  assert.equal(r.input(fs[1]!, 31_001), undefined);
  // Input itself expires stale entries too.
  r.input(fs[0]!, 70_000);
  assert.equal(r.stats.timeouts, 2);
});

test('malformed fragments: unaligned middle, beyond 65535, conflicting ends', () => {
  const r = new Reassembler();
  const odd = parseIpv4(buildIpv4({ src: SRC, dst: DST, protocol: 17, id: 1, moreFragments: true }, data(13)));
  assert.equal(r.input(odd, 0), undefined);
  const huge = parseIpv4(buildIpv4({ src: SRC, dst: DST, protocol: 17, id: 2, fragmentOffset: 65528 }, data(16)));
  assert.equal(r.input(huge, 0), undefined);
  assert.equal(r.stats.invalid, 2);
  // Two different last fragments.
  const last1 = parseIpv4(buildIpv4({ src: SRC, dst: DST, protocol: 17, id: 3, fragmentOffset: 16 }, data(8)));
  const last2 = parseIpv4(buildIpv4({ src: SRC, dst: DST, protocol: 17, id: 3, fragmentOffset: 32 }, data(8)));
  r.input(last1, 0);
  r.input(last2, 0);
  assert.equal(r.stats.invalid, 3);
  assert.equal(r.size, 0);
});

test('property: any shuffle of any cut reassembles exactly; buffers are released', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 9, max: 3000 }),
      fc.array(fc.integer({ min: 1, max: 374 }), { maxLength: 8 }),
      fc.integer(),
      fc.boolean(),
      (len, cutsRaw, seed, dup) => {
        const p = data(len, seed & 0xff);
        const cuts = [...new Set(cutsRaw.map((c) => c * 8).filter((c) => c < len))].sort((a, b) => a - b);
        if (cuts.length === 0) cuts.push(8);
        const fs = fragments(p, cuts, seed & 0xffff);
        const order = fs.map((_, i) => i).sort((a, b) => ((a * 31 + seed) % 7) - ((b * 31 + seed) % 7));
        if (dup) order.splice(1, 0, order[0]!);
        const r = new Reassembler();
        let whole;
        for (const k of order) {
          const out = r.input(fs[k]!, 0);
          if (out) whole = out;
        }
        assert.ok(whole);
        assert.deepEqual(whole.payload, p);
        assert.equal(r.bufferedBytes, 0);
      },
    ),
    { numRuns: 300 },
  );
});
