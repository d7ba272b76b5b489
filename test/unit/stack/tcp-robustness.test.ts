import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { Sim, A, B, ADDR_B } from './tcp-harness.js';
import { Sink, connectPair, payload, sha, writeAll } from './tcp-helpers.js';
import { finishChecksum, onesSum, pseudoHeaderSum } from '../../../src/wire/checksum.js';
import { buildTcp, TcpFlag } from '../../../src/wire/tcp.js';
import { parseIpv4, buildIpv4, IpProtocol } from '../../../src/wire/ipv4.js';
import type { Clock, TimerHandle } from '../../../src/util/clock.js';
import type { TcpSocket } from '../../../src/stack/tcp/socket.js';

class CountingClock implements Clock {
  setTimers = 0;
  constructor(private readonly inner: Clock) {}
  now(): number {
    return this.inner.now();
  }
  unixSeconds(): number {
    return this.inner.unixSeconds();
  }
  setTimer(fn: () => void, ms: number): TimerHandle {
    this.setTimers++;
    return this.inner.setTimer(fn, ms);
  }
  clearTimer(h: TimerHandle): void {
    this.inner.clearTimer(h);
  }
}

test('no per-segment timers: Clock.setTimer calls stay far below the segment count in a lossy bulk transfer', async () => {
  const sim0 = new Sim();
  const ca = new CountingClock(sim0.clock);
  const cb = new CountingClock(sim0.clock);
  const sim = new Sim({ delayMs: 10, faults: { drop: 0.01, seed: 21 }, stackA: { clock: ca }, stackB: { clock: cb } });
  // the sim's clock must drive both: rebuild the counting clocks on this sim's clock
  (ca as unknown as { inner: Clock }).inner = sim.clock;
  (cb as unknown as { inner: Clock }).inner = sim.clock;
  const { client, server } = await connectPair(sim);
  const up = payload(5 * 1024 * 1024, 1);
  const down = payload(5 * 1024 * 1024, 2);
  const s1 = new Sink(server);
  const s2 = new Sink(client);
  ca.setTimers = cb.setTimers = 0;
  writeAll(client, up);
  writeAll(server, down);
  await sim.run(() => s1.ended && s2.ended, 300_000);
  assert.equal(s1.digest, sha(up));
  assert.equal(s2.digest, sha(down));
  const segs = sim.a.stats.segmentsOut + sim.b.stats.segmentsOut;
  const timers = ca.setTimers + cb.setTimers;
  assert.ok(segs > 7000);
  assert.ok(timers * 10 < segs, `${timers} setTimer calls for ${segs} segments`);
});

function fixChecksum(seg: Uint8Array, src: number, dst: number): Uint8Array {
  if (seg.length < 20) return seg;
  seg[16] = 0;
  seg[17] = 0;
  const c = finishChecksum(onesSum(seg, 0, seg.length, pseudoHeaderSum(src, dst, 6, seg.length)));
  seg[16] = c >> 8;
  seg[17] = c & 0xff;
  return seg;
}

test('property: random and mutated segments into a listening stack with live connections never throw or hang', async () => {
  const sim = new Sim({ stepMs: 25 });
  const { client, server } = await connectPair(sim, 80);
  client.resume();
  server.resume();
  client.on('error', () => {});
  server.on('error', () => {});
  const accepted: TcpSocket[] = [];
  sim.b.listen(81, (s) => {
    accepted.push(s);
    s.on('error', () => {});
    s.resume();
  });
  // capture real segments A -> B as mutation seeds
  const seeds: Uint8Array[] = [];
  sim.taps.push((dir, seg) => {
    void seg;
    void dir;
  });
  sim.filter = (dir, _seg, pkt) => {
    if (dir === 'AB' && seeds.length < 50) seeds.push(parseIpv4(pkt).payload.slice());
    return true;
  };
  client.write(payload(20_000, 5));
  await sim.advance(100);
  assert.ok(seeds.length > 3);
  const hdr = parseIpv4(buildIpv4({ src: A, dst: B, protocol: IpProtocol.TCP }, new Uint8Array(20)));
  const live = { sport: client.localPort, seq: client.connection.sndNxt, ack: client.connection.rcvNxt };

  const structured = fc
    .record({
      dport: fc.constantFrom(80, 81, 82),
      sport: fc.constantFrom(live.sport, 1234, 5555),
      seqDelta: fc.oneof(fc.integer({ min: -70000, max: 70000 }), fc.integer({ min: 0, max: 0xffffffff })),
      ackDelta: fc.oneof(fc.integer({ min: -70000, max: 70000 }), fc.integer({ min: 0, max: 0xffffffff })),
      flags: fc.integer({ min: 0, max: 255 }),
      window: fc.integer({ min: 0, max: 0xffff }),
      mss: fc.option(fc.integer({ min: 0, max: 0xffff })),
      ws: fc.option(fc.integer({ min: 0, max: 255 })),
      sack: fc.option(fc.array(fc.record({ left: fc.integer({ min: 0, max: 0xffffffff }), right: fc.integer({ min: 0, max: 0xffffffff }) }), { minLength: 1, maxLength: 3 })),
      ts: fc.option(fc.record({ value: fc.integer({ min: 0, max: 0xffffffff }), echo: fc.integer({ min: 0, max: 0xffffffff }) })),
      data: fc.uint8Array({ maxLength: 1500 }),
    })
    .map((r) => {
      const options = {
        ...(r.mss !== null && r.flags & TcpFlag.SYN ? { mss: r.mss } : {}),
        ...(r.ws !== null && r.flags & TcpFlag.SYN ? { windowScale: r.ws } : {}),
        ...(r.sack !== null && r.ts === null ? { sack: r.sack } : {}),
        ...(r.ts !== null ? { timestamp: r.ts } : {}),
      };
      return buildTcp(
        {
          srcPort: r.sport,
          dstPort: r.dport,
          seq: (live.seq + r.seqDelta) >>> 0,
          ack: (live.ack + r.ackDelta) >>> 0,
          flags: r.flags,
          window: r.window,
          options,
          payload: r.data,
        },
        { src: A, dst: B },
      );
    });
  const mutated = fc
    .record({ i: fc.nat(), edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fix: fc.boolean() })
    .map(({ i, edits, fix }) => {
      const s = seeds[i % seeds.length]!.slice();
      for (const [pos, v] of edits) s[pos % s.length] = v;
      return fix ? fixChecksum(s, A, B) : s;
    });
  const random = fc.uint8Array({ maxLength: 80 }).map((b) => fixChecksum(b, A, B));

  fc.assert(
    fc.property(fc.array(fc.oneof(structured, mutated, random), { maxLength: 30 }), (segs) => {
      for (const s of segs) sim.b.input(A, B, s, hdr);
    }),
    { numRuns: 400 },
  );
  // timers still run and terminate; connections time out or stay consistent
  await sim.advance(200_000);
  assert.ok(sim.b.stats.connections >= 0);
  assert.ok(sim.b.stats.badSegments > 0);
  assert.ok(sim.clock.pendingTimers() < 50, `pending timers ${sim.clock.pendingTimers()}`);
});

test('1000 idle connections cost kilobytes each, not megabytes', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const sim = new Sim({ delayMs: 1 });
  const servers: TcpSocket[] = [];
  sim.b.listen(80, (s) => servers.push(s));
  // warm up code paths so JIT and pools are not counted
  const warm = sim.a.connect({ host: ADDR_B, port: 80 });
  await sim.run(() => servers.length === 1, 1000);
  warm.write('x');
  await sim.advance(50);
  gc();
  const before = process.memoryUsage().heapUsed;
  const clients: TcpSocket[] = [];
  let connected = 0;
  for (let i = 0; i < 1000; i++) {
    const c = sim.a.connect({ host: ADDR_B, port: 80 });
    c.on('connect', () => connected++);
    clients.push(c);
  }
  await sim.run(() => connected === 1000 && servers.length === 1001, 10_000);
  await sim.advance(100);
  gc();
  const after = process.memoryUsage().heapUsed;
  const perPair = (after - before) / 1000;
  assert.equal(sim.a.stats.connections, 1001);
  // both ends (two connections, two sockets) per pair
  assert.ok(perPair < 24 * 1024, `${Math.round(perPair)} bytes per connection pair`);
  console.log(`# idle connection pair: ${Math.round(perPair)} bytes of heap`);
  for (const c of clients) c.destroy();
});

test('ICMP frag-needed lowers the path MSS and the transfer continues with smaller segments', async () => {
  const sim = new Sim({ delayMs: 5 });
  const { client, server } = await connectPair(sim);
  const sink = new Sink(server);
  let big = 0;
  let small = 0;
  let lowered = false;
  sim.taps.push((dir, seg) => {
    if (dir !== 'AB' || !seg.payload.length) return;
    if (lowered) {
      if (seg.payload.length > 1000 - 40 - 12) big++;
      else small++;
    }
  });
  const data = payload(500_000, 77);
  writeAll(client, data);
  server.end();
  await sim.advance(12);
  const { buildIcmp, parseIcmp } = await import('../../../src/wire/icmp.js');
  // quote a segment of ours: build one with the live sequence number
  const c = client.connection;
  const quotedTcp = buildTcp({ srcPort: client.localPort, dstPort: 80, seq: c.sndUna, flags: TcpFlag.ACK, window: 0 });
  const quoted = buildIpv4({ src: A, dst: B, protocol: IpProtocol.TCP }, quotedTcp).subarray(0, 28);
  const err = parseIcmp(buildIcmp({ kind: 'dest-unreachable', code: 4, nextHopMtu: 1000, quoted }));
  lowered = true;
  sim.a.icmpError(err as never);
  assert.equal(c.mssBase(), 960);
  await sim.run(() => sink.ended, 30_000);
  assert.equal(sink.digest, sha(data));
  assert.equal(big, 0);
  assert.ok(small > 100);
});
