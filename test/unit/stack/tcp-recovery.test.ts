import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim } from './tcp-harness.js';
import { Sink, connectPair, payload, sha, writeAll } from './tcp-helpers.js';
import type { FaultOptions } from '../../../src/link/fault.js';

async function transfer(faults: FaultOptions, size: number, opts: { delayMs?: number; both?: boolean; maxMs?: number } = {}) {
  const sim = new Sim({ delayMs: opts.delayMs ?? 10, faults });
  const { client, server } = await connectPair(sim);
  // faults only after the handshake so every test starts from the same place
  const up = payload(size, 21);
  const down = payload(opts.both ? size : 1000, 22);
  const atServer = new Sink(server);
  const atClient = new Sink(client);
  writeAll(client, up);
  writeAll(server, down);
  const t = await sim.run(() => atServer.ended && atClient.ended, opts.maxMs ?? 300_000);
  assert.equal(atServer.bytes, up.length);
  assert.equal(atServer.digest, sha(up));
  assert.equal(atClient.digest, sha(down));
  return { sim, t, client, server };
}

test('1% random loss both ways: 5 MB each way byte-exact', async () => {
  const { sim, t } = await transfer({ drop: 0.01, seed: 3 }, 5 * 1024 * 1024, { both: true });
  assert.ok(sim.linkA.counters.out.dropped + sim.linkA.counters.in.dropped > 20);
  assert.ok(sim.a.stats.retransmits > 0);
  assert.ok(sim.a.stats.fastRecoveries > 0, 'losses are repaired by SACK recovery');
  assert.ok(t < 60_000, `took ${t} ms`);
});

test('5% loss: 2 MB byte-exact, mostly without RTOs', async () => {
  const { sim, t } = await transfer({ drop: 0.05, seed: 5 }, 2 * 1024 * 1024);
  assert.ok(sim.a.stats.fastRecoveries > 5);
  assert.ok(sim.a.stats.rtoExpirations < sim.a.stats.fastRecoveries, JSON.stringify(sim.a.stats));
  assert.ok(t < 120_000, `took ${t} ms`);
});

test('reordering and duplication: byte-exact and no congestion cut for mild reordering', async () => {
  const { sim } = await transfer({ reorder: 0.05, duplicate: 0.05, seed: 9 }, 3 * 1024 * 1024, { both: true });
  assert.ok(sim.linkA.counters.out.reordered > 10);
  assert.ok(sim.linkA.counters.out.duplicated > 10);
  assert.equal(sim.a.stats.rtoExpirations, 0);
  assert.ok(sim.b.stats.outOfOrderIn > 0);
  assert.ok(sim.b.stats.duplicateIn > 0);
  // reordering of one packet by ~one slot is not loss: RACK's reordering window absorbs it
  assert.ok(sim.a.stats.fastRecoveries <= 2, `fast recoveries: ${sim.a.stats.fastRecoveries}`);
});

test('burst loss of 10 consecutive segments is repaired by SACK recovery without an RTO crawl', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim);
  const data = payload(2 * 1024 * 1024, 33);
  const sink = new Sink(server);
  let dataSegs = 0;
  let dropped = 0;
  sim.filter = (dir, seg) => {
    if (dir !== 'AB' || seg.payload.length === 0) return true;
    dataSegs++;
    if (dataSegs > 300 && dropped < 10) {
      dropped++;
      return false;
    }
    return true;
  };
  writeAll(client, data);
  client.resume();
  server.end();
  const t = await sim.run(() => sink.ended, 60_000);
  assert.equal(dropped, 10);
  assert.equal(sink.digest, sha(data));
  assert.equal(sim.a.stats.rtoExpirations, 0, JSON.stringify(sim.a.stats));
  assert.equal(sim.a.stats.fastRecoveries, 1);
  assert.ok(sim.a.stats.retransmits >= 10 && sim.a.stats.retransmits <= 14, `retransmits ${sim.a.stats.retransmits}`);
  assert.ok(t < 2_000, `took ${t} ms`);
});

test('tail loss: the last segments lost are recovered by a tail-loss probe, not an RTO', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim);
  const data = payload(100_000, 34);
  const sink = new Sink(server);
  let n = 0;
  sim.filter = (dir, seg) => {
    if (dir === 'AB' && seg.payload.length > 0) {
      n++;
      if (n === 69 || n === 70) return false; // 100000 bytes = 70 segments of 1448: lose the last two
    }
    return true;
  };
  client.write(data);
  await sim.run(() => sink.bytes === data.length, 10_000);
  assert.ok(sim.a.stats.tailLossProbes >= 1, JSON.stringify(sim.a.stats));
  assert.equal(sim.a.stats.rtoExpirations, 0);
  assert.ok(sim.a.stats.retransmits <= 3);
});

test('retransmission timeout with exponential backoff, then recovery when the path heals', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim);
  const sink = new Sink(server);
  const times: number[] = [];
  sim.taps.push((dir, seg) => {
    if (dir === 'AB' && seg.payload.length > 0) times.push(sim.clock.now());
  });
  sim.blackhole.AB = true;
  client.write(Buffer.alloc(1000, 7));
  await sim.advance(3000);
  // first send, then TLP/RTO retransmissions at growing intervals
  assert.ok(times.length >= 4, `sends at ${times}`);
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  for (let i = 2; i < gaps.length; i++) assert.ok(gaps[i]! >= gaps[i - 1]! * 1.9, `gaps ${gaps}`);
  sim.blackhole.AB = false;
  await sim.run(() => sink.bytes === 1000, 10_000);
  assert.ok(sim.a.stats.rtoExpirations >= 3);
});

test('10% loss with reordering and duplication: 1 MB each way byte-exact', async () => {
  const { sim, t } = await transfer({ drop: 0.1, reorder: 0.05, duplicate: 0.05, seed: 13 }, 1024 * 1024, { both: true, maxMs: 600_000 });
  assert.ok(sim.linkA.counters.out.dropped > 50);
  assert.ok(t < 300_000, `took ${t} ms`);
});

test('NewReno without SACK or timestamps still recovers from loss (dupacks, partial ACKs)', async () => {
  const sim = new Sim({ delayMs: 10, faults: { drop: 0.02, seed: 17 }, stackA: { congestion: 'newreno', sack: false, timestamps: false } });
  const { client, server } = await connectPair(sim);
  const data = payload(1024 * 1024, 41);
  const sink = new Sink(server);
  writeAll(client, data);
  client.resume();
  server.end();
  await sim.run(() => sink.ended, 300_000);
  assert.equal(sink.digest, sha(data));
  assert.equal(client.connection.sackOk, false);
  assert.equal(client.connection.cc.name, 'newreno');
  assert.ok(sim.a.stats.fastRecoveries > 0);
});
