/**
 * Stack to stack in process through the seeded fault injector (issue 5, "Must show"): 50 MB each way at the
 * same time, byte-exact (sha256), at 0%, 2% and 10% loss with reordering and duplication. Simulated clock,
 * 1 ms one-way delay; the wall time and the simulated rate are printed as diagnostics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim } from './tcp-harness.js';
import { Sink, connectPair, payload, sha, writeAll } from './tcp-helpers.js';
import type { FaultOptions } from '../../../src/link/fault.js';

const MB50 = 50 * 1024 * 1024;

async function bulk(faults: FaultOptions, t: { diagnostic(s: string): void }) {
  const sim = new Sim({ delayMs: 1, faults });
  const { client, server } = await connectPair(sim);
  const up = payload(MB50, 51);
  const down = payload(MB50, 52);
  const atServer = new Sink(server);
  const atClient = new Sink(client);
  const wall = Date.now();
  writeAll(client, up);
  writeAll(server, down);
  const simMs = await sim.run(() => atServer.ended && atClient.ended, 3_600_000);
  assert.equal(atServer.bytes, up.length);
  assert.equal(atServer.digest, sha(up));
  assert.equal(atClient.bytes, down.length);
  assert.equal(atClient.digest, sha(down));
  const c = sim.linkA.counters;
  t.diagnostic(
    `${JSON.stringify(faults)}: ${simMs} ms simulated (${((2 * MB50) / 1e6 / (simMs / 1000)).toFixed(1)} MB/s both ways), ${Date.now() - wall} ms wall; ` +
      `dropped ${c.out.dropped + c.in.dropped}, reordered ${c.out.reordered + c.in.reordered}, duplicated ${c.out.duplicated + c.in.duplicated}; ` +
      `A retransmits ${sim.a.stats.retransmits}, RTOs ${sim.a.stats.rtoExpirations}; B retransmits ${sim.b.stats.retransmits}, RTOs ${sim.b.stats.rtoExpirations}`,
  );
  return { sim, simMs };
}

test('50 MB each way at once, no faults: byte-exact', async (t) => {
  const { sim } = await bulk({ seed: 1 }, t);
  assert.equal(sim.a.stats.retransmits, 0);
  assert.equal(sim.b.stats.retransmits, 0);
});

test('50 MB each way at 2% loss with reordering and duplication: byte-exact, repaired mostly without RTOs', async (t) => {
  const { sim } = await bulk({ drop: 0.02, reorder: 0.02, duplicate: 0.01, seed: 2 }, t);
  const c = sim.linkA.counters;
  assert.ok(c.out.dropped > 100 && c.in.dropped > 100, 'losses both ways');
  assert.ok(c.out.reordered > 100 && c.out.duplicated > 100);
  for (const s of [sim.a.stats, sim.b.stats]) {
    assert.ok(s.fastRecoveries > 0);
    assert.ok(s.rtoExpirations < s.fastRecoveries / 4, JSON.stringify(s));
  }
});

test('50 MB each way at 10% loss with reordering and duplication: byte-exact', async (t) => {
  const { sim } = await bulk({ drop: 0.1, reorder: 0.05, duplicate: 0.05, seed: 10 }, t);
  assert.ok(sim.linkA.counters.out.dropped > 1000);
});
