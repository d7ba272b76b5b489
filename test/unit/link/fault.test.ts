import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withFaults, mulberry32, type FaultOptions } from '../../../src/link/fault.js';
import { createLinkPair, type Link, type LinkConfig } from '../../../src/link/link.js';
import { ManualClock } from '../../../src/util/clock.js';

const cfg: LinkConfig = { address: '10.8.0.2', netmask: '255.255.255.0', mtu: 1500, dns: [], domains: [], routes: [], redirectGateway: false };

function run(opts: FaultOptions, n: number) {
  const [a, b] = createLinkPair(cfg, cfg);
  const f = withFaults(a, opts);
  const got: number[] = [];
  const raw: Uint8Array[] = [];
  b.onReceive((p) => {
    raw.push(p);
    got.push(p[0]! | (p[1]! << 8));
  });
  f.onReceive(() => {});
  for (let i = 0; i < n; i++) f.send(Uint8Array.of(i & 0xff, i >> 8, 0xaa, 0xbb));
  return { f, got, raw, b };
}

test('mulberry32 is deterministic per seed and uniform enough', () => {
  const r1 = mulberry32(42);
  const r2 = mulberry32(42);
  const r3 = mulberry32(43);
  const a = Array.from({ length: 5 }, r1);
  assert.deepEqual(a, Array.from({ length: 5 }, r2));
  assert.notDeepEqual(a, Array.from({ length: 5 }, r3));
  const r = mulberry32(7);
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
});

test('no faults: everything passes in order', async () => {
  const { f, got } = run({}, 100);
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
  assert.equal(f.counters.out.delivered, 100);
});

test('drop rate is close to the probability and counted; same seed, same result', () => {
  const r1 = run({ drop: 0.3, seed: 5 }, 2000);
  const r2 = run({ drop: 0.3, seed: 5 }, 2000);
  const r3 = run({ drop: 0.3, seed: 6 }, 2000);
  assert.deepEqual(r1.got, r2.got);
  assert.notDeepEqual(r1.got, r3.got);
  const d = r1.f.counters.out.dropped;
  assert.ok(d > 500 && d < 700, `dropped ${d}`);
  assert.equal(r1.got.length, 2000 - d);
  assert.equal(r1.f.counters.out.packets, 2000);
});

test('duplicate delivers a copy twice', () => {
  const { f, got, raw } = run({ duplicate: 1 }, 3);
  assert.deepEqual(got, [0, 0, 1, 1, 2, 2]);
  assert.notEqual(raw[0], raw[1], 'duplicate is a separate copy');
  assert.equal(f.counters.out.duplicated, 3);
  assert.equal(f.counters.out.delivered, 6);
});

test('corrupt flips exactly one bit in a copy; the sender buffer is untouched', () => {
  const [a, b] = createLinkPair(cfg, cfg);
  const f = withFaults(a, { corrupt: 1, seed: 3 });
  const got: Uint8Array[] = [];
  b.onReceive((p) => got.push(p));
  const orig = new Uint8Array(64).fill(0x55);
  for (let i = 0; i < 50; i++) f.send(orig);
  assert.deepEqual(orig, new Uint8Array(64).fill(0x55));
  for (const p of got) {
    let bits = 0;
    for (let i = 0; i < p.length; i++) {
      let x = p[i]! ^ 0x55;
      while (x) {
        bits += x & 1;
        x >>= 1;
      }
    }
    assert.equal(bits, 1);
  }
  assert.equal(f.counters.out.corrupted, 50);
});

test('reorder without a clock: held packet released after the next one, or on a microtask', async () => {
  const { f, got } = run({ reorder: 1 }, 4);
  // 0 held; 1 passes then releases 0; 2 held; 3 passes then releases 2
  assert.deepEqual(got, [1, 0, 3, 2]);
  assert.equal(f.counters.out.reordered, 2);
  const last = run({ reorder: 1 }, 1);
  assert.deepEqual(last.got, []);
  await Promise.resolve();
  assert.deepEqual(last.got, [0], 'released on a microtask');
});

test('reorder with a ManualClock: released after reorderDelayMs; flush releases at once', () => {
  const clock = new ManualClock();
  const { f, got } = run({ reorder: 1, clock, reorderDelayMs: 10 }, 1);
  assert.deepEqual(got, []);
  clock.advance(9);
  assert.deepEqual(got, []);
  clock.advance(1);
  assert.deepEqual(got, [0]);
  f.send(Uint8Array.of(7, 0));
  assert.deepEqual(got, [0]);
  f.flush();
  assert.deepEqual(got, [0, 7]);
  assert.equal(clock.pendingTimers(), 0);
});

test('direction, setFaults for an outage, inbound counters', () => {
  const [a, b] = createLinkPair(cfg, cfg);
  const f: ReturnType<typeof withFaults> & Link = withFaults(a, { drop: 1, direction: 'in' });
  const inbound: Uint8Array[] = [];
  const outbound: Uint8Array[] = [];
  f.onReceive((p) => inbound.push(p));
  b.onReceive((p) => outbound.push(p));
  f.send(new Uint8Array(4));
  b.send(new Uint8Array(4));
  assert.equal(outbound.length, 1);
  assert.equal(inbound.length, 0);
  assert.equal(f.counters.in.dropped, 1);
  f.setFaults({ drop: 0 });
  b.send(new Uint8Array(4));
  assert.equal(inbound.length, 1);
  f.setFaults({ drop: 1, direction: 'both' });
  f.send(new Uint8Array(4));
  assert.equal(outbound.length, 1);
  assert.equal(f.counters.out.dropped, 1);
  assert.throws(() => f.setFaults({ drop: 1.5 }), RangeError);
  assert.equal(f.mtu, 1500);
});
