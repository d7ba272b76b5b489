import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { seqAdd, seqDiff, seqGt, seqLt, seqInRange } from '../../../src/stack/tcp/seq.js';
import { Cubic, NewReno } from '../../../src/stack/tcp/congestion.js';
import { Reassembly } from '../../../src/stack/tcp/reassembly.js';
import { SendBuffer } from '../../../src/stack/tcp/send-buffer.js';
import { Scoreboard, SegFlag } from '../../../src/stack/tcp/sack.js';
import { DeadlineHeap } from '../../../src/stack/tcp/timers.js';
import { wscaleFor } from '../../../src/stack/tcp/connection.js';

test('sequence arithmetic wraps at 2^32', () => {
  assert.ok(seqLt(0xfffffff0, 0x10));
  assert.ok(seqGt(0x10, 0xfffffff0));
  assert.equal(seqDiff(0x10, 0xfffffff0), 0x20);
  assert.equal(seqAdd(0xffffffff, 2), 1);
  assert.ok(seqInRange(0, 0xffffff00, 0x100));
  assert.ok(!seqInRange(0x100, 0xffffff00, 0x100));
});

test('window scale is the smallest shift that fits the buffer in 16 bits', () => {
  assert.equal(wscaleFor(65535), 0);
  assert.equal(wscaleFor(256 * 1024), 3);
  assert.equal(wscaleFor(6 * 1024 * 1024), 7);
  assert.equal(wscaleFor(2 ** 40), 14);
});

test('CUBIC: multiplicative decrease by 0.7, concave regrowth towards W_max, slow start below ssthresh', () => {
  const mss = 1000;
  const c = new Cubic(mss, 10);
  assert.equal(c.cwnd, 10_000);
  c.onAck(1000, 0, 10, true);
  assert.equal(c.cwnd, 11_000); // slow start
  c.cwnd = 100_000;
  c.onLoss(0, 100_000);
  assert.equal(c.cwnd, 70_000);
  assert.equal(c.ssthresh, 70_000);
  // K = cbrt((100 - 70) / 0.4) ~= 4.2 s: after ~4.2 s of ACKs cwnd is back near 100 segments, not far above
  let t = 0;
  while (t < 4200) {
    c.onAck(mss * 10, t, 50, true);
    t += 50;
  }
  assert.ok(c.cwnd > 90_000 && c.cwnd < 110_000, `cwnd ${c.cwnd}`);
  // no growth when application-limited
  const before = c.cwnd;
  c.onAck(mss * 10, t + 50, 50, false);
  assert.equal(c.cwnd, before);
  c.onRto(t, 100_000);
  assert.equal(c.cwnd, mss);
});

test('NewReno: halves on loss, one MSS per window in congestion avoidance', () => {
  const r = new NewReno(1000, 10);
  r.cwnd = 20_000;
  r.onLoss(0, 20_000);
  assert.equal(r.cwnd, 10_000);
  for (let i = 0; i < 10; i++) r.onAck(1000, 0, 10, true);
  assert.equal(r.cwnd, 11_000);
});

test('reassembly: overlapping pieces are trimmed, duplicates rejected, in-order pop, SACK blocks most recent first', () => {
  const q = new Reassembly(100, 1 << 20);
  const d = (s: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (s + i) & 0xff);
  assert.ok(q.insert(200, d(200, 100)));
  assert.ok(q.insert(400, d(400, 100)));
  assert.ok(!q.insert(220, d(220, 50))); // inside an existing piece
  assert.ok(q.insert(150, d(150, 300))); // overlaps both: only the gaps are added
  assert.equal(q.bytes, 350);
  const blocks = q.sackBlocks(3, []);
  assert.deepEqual(blocks, [{ left: 150, right: 500 }]);
  assert.ok(q.insert(600, d(600, 10)));
  assert.deepEqual(q.sackBlocks(3, [])[0], { left: 600, right: 610 });
  assert.equal(q.pop(100), undefined);
  const out: number[] = [];
  let next = 150;
  for (let p = q.pop(next); p; p = q.pop(next)) {
    for (const b of p) out.push(b);
    next += p.length;
  }
  assert.equal(next, 500);
  assert.deepEqual(out, Array.from({ length: 350 }, (_, i) => (150 + i) & 0xff));
});

test('reassembly property: any arrival order reassembles the original bytes; limits are respected', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 1, max: 300 })), { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (pieces, base) => {
        const src = Uint8Array.from({ length: 2400 }, (_, i) => (i * 7) & 0xff);
        const q = new Reassembly(1000, 1 << 20);
        const covered = new Uint8Array(2400);
        for (const [off, n] of pieces) {
          q.insert((base + 1 + off) >>> 0, src.subarray(1 + off, 1 + off + n));
          covered.fill(1, 1 + off, 1 + off + n);
        }
        // deliver from base + 1
        let next = (base + 1) >>> 0;
        const got: number[] = [];
        for (let p = q.pop(next); p; p = q.pop(next)) {
          for (const b of p) got.push(b);
          next = (next + p.length) >>> 0;
        }
        let expect = 0;
        while (covered[1 + expect]) expect++;
        assert.equal(got.length, expect);
        for (let i = 0; i < got.length; i++) assert.equal(got[i], src[1 + i]);
      },
    ),
    { numRuns: 300 },
  );
  const q = new Reassembly(2, 1000);
  assert.ok(q.insert(10, new Uint8Array(10)));
  assert.ok(q.insert(30, new Uint8Array(10)));
  assert.ok(!q.insert(50, new Uint8Array(10)), 'piece limit');
});

test('send buffer: coalesces small writes, reads across chunks, consumes from the front', () => {
  const b = new SendBuffer();
  const all: number[] = [];
  for (let i = 0; i < 100; i++) {
    const c = Uint8Array.from({ length: (i % 7) * 500 + 1 }, (_, j) => (i + j) & 0xff);
    b.append(c);
    all.push(...c);
  }
  assert.equal(b.length, all.length);
  const out = new Uint8Array(5000);
  b.copyOut(1234, 5000, out, 0);
  assert.deepEqual([...out], all.slice(1234, 6234));
  b.consume(3000);
  b.copyOut(0, 5000, out, 0);
  assert.deepEqual([...out], all.slice(3000, 8000));
  assert.throws(() => b.copyOut(b.length - 10, 20, out, 0), RangeError);
});

test('scoreboard: SACK marks whole segments, pipe = flight - sacked - lost, cumulative ACK clears counters', () => {
  const sb = new Scoreboard();
  for (let i = 0; i < 10; i++) sb.push(1000 + i * 100, 100, false, 0);
  const delivered: number[] = [];
  assert.equal(sb.sack(1300, 1550, (r) => delivered.push(r.seq)), 200); // 1300, 1400 (1500 only half)
  assert.deepEqual(delivered, [1300, 1400]);
  sb.markLost(sb.at(0));
  assert.equal(sb.pipe(1000), 1000 - 200 - 100);
  assert.equal(sb.nextLost()!.seq, 1000);
  sb.markRetransmitted(sb.at(0));
  assert.equal(sb.pipe(1000), 800);
  assert.equal(sb.nextLost(), undefined);
  sb.ackTo(1450, () => {});
  assert.equal(sb.count, 6);
  assert.equal(sb.first()!.seq, 1450); // the SACKed 1400 segment, trimmed by the partial ACK
  assert.equal(sb.first()!.len, 50);
  assert.equal(sb.sackedOut, 50);
  assert.equal(sb.lostOut + sb.retransOut, 0);
  sb.markAllLost();
  assert.equal(sb.lostOut, 500);
  assert.equal(sb.first()!.flags, SegFlag.SACKED);
  assert.equal(sb.at(1).flags, SegFlag.LOST);
});

test('deadline heap pops in time order', () => {
  const h = new DeadlineHeap<number>();
  const times = [50, 10, 30, 20, 40, 10, 5];
  times.forEach((t, i) => h.push(t, i));
  const got: number[] = [];
  while (h.size) {
    got.push(h.peekTime());
    h.pop();
  }
  assert.deepEqual(got, [...times].sort((a, b) => a - b));
  assert.equal(h.peekTime(), Infinity);
});
