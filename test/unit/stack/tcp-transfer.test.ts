import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, ADDR_A, ADDR_B } from './tcp-harness.js';
import { Sink, connectPair, payload, sha, writeAll } from './tcp-helpers.js';
import { TcpFlag } from '../../../src/wire/tcp.js';

test('handshake negotiates MSS (min of both), window scale, SACK and timestamps', async () => {
  const sim = new Sim({ mtuA: 1500, mtuB: 1400 });
  const syns: Array<{ dir: string; flags: number; mss?: number; ws?: number; sack: boolean; ts: boolean }> = [];
  sim.taps.push((dir, seg) => {
    if (seg.flags & TcpFlag.SYN)
      syns.push({ dir, flags: seg.flags, mss: seg.options.mss, ws: seg.options.windowScale, sack: seg.options.sackPermitted, ts: !!seg.options.timestamp });
  });
  const { client, server } = await connectPair(sim);
  assert.equal(syns.length, 2);
  assert.deepEqual(syns[0], { dir: 'AB', flags: TcpFlag.SYN, mss: 1460, ws: 7, sack: true, ts: true });
  assert.deepEqual(syns[1], { dir: 'BA', flags: TcpFlag.SYN | TcpFlag.ACK, mss: 1360, ws: 7, sack: true, ts: true });
  const c = client.connection;
  const s = server.connection;
  assert.equal(c.stateName, 'ESTABLISHED');
  assert.equal(s.stateName, 'ESTABLISHED');
  assert.equal(c.mssBase(), 1360);
  assert.equal(s.mssBase(), 1360);
  assert.ok(c.wsOk && c.sackOk && c.tsOk && s.wsOk && s.sackOk && s.tsOk);
  assert.equal(client.remoteAddress, ADDR_B);
  assert.equal(server.remoteAddress, ADDR_A);
  assert.equal(server.localPort, 80);
  assert.ok(client.localPort >= 49152);
});

test('options are only used when both sides offer them', async () => {
  const sim = new Sim({ stackB: { sack: false, timestamps: false, windowScaling: false } });
  const { client } = await connectPair(sim);
  const c = client.connection;
  assert.equal(c.sackOk, false);
  assert.equal(c.tsOk, false);
  assert.equal(c.wsOk, false);
  assert.equal(c.maxSeg(), 1460);
});

test('5 MB each way at once, byte-exact (sha256)', async () => {
  const sim = new Sim({ delayMs: 5 });
  const { client, server } = await connectPair(sim);
  const up = payload(5 * 1024 * 1024, 11);
  const down = payload(5 * 1024 * 1024, 12);
  const atServer = new Sink(server);
  const atClient = new Sink(client);
  writeAll(client, up);
  writeAll(server, down);
  const t = await sim.run(() => atServer.ended && atClient.ended, 60_000);
  assert.equal(atServer.bytes, up.length);
  assert.equal(atServer.digest, sha(up));
  assert.equal(atClient.digest, sha(down));
  await sim.run(() => atServer.closed && atClient.closed, 5_000);
  assert.equal(sim.a.stats.retransmits, 0);
  // 10 MB in 10 ms RTT: it must not have crawled
  assert.ok(t < 5_000, `took ${t} ms simulated`);
});
