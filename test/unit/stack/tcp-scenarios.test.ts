/**
 * Scenario tests in the smoltcp style on the simulated clock: put a connection in a given state, send it a
 * given segment at time t, and check what comes out and when. Fills the gaps of tcp-states/tcp-recovery:
 * an RST arriving in every state (RFC 9293 3.10.7 with RFC 5961's exact-sequence rule and RFC 1337 for
 * TIME_WAIT), the fast-retransmit timeline after a single loss, and the net.Socket-style close events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, A, B, ADDR_B } from './tcp-harness.js';
import { Sink, connectPair, payload, sha } from './tcp-helpers.js';
import { TcpFlag, buildTcp, type TcpSegment } from '../../../src/wire/tcp.js';
import { buildIpv4, IpProtocol } from '../../../src/wire/ipv4.js';
import type { TcpSocket } from '../../../src/stack/tcp/socket.js';
import type { VpnError } from '../../../src/errors.js';

/** A raw segment from B (the far end of `s`, an A-side socket) to A. */
function toA(s: TcpSocket, f: { seq: number; ack?: number; flags: number }): Uint8Array {
  const tcp = buildTcp({ srcPort: s.remotePort, dstPort: s.localPort, seq: f.seq, ack: f.ack ?? 0, flags: f.flags, window: 1000 }, { src: B, dst: A });
  return buildIpv4({ src: B, dst: A, protocol: IpProtocol.TCP }, tcp);
}

/** A raw segment from A (the near end of `s`, an A-side socket) to B. */
function toB(s: TcpSocket, f: { seq: number; ack?: number; flags: number }): Uint8Array {
  const tcp = buildTcp({ srcPort: s.localPort, dstPort: s.remotePort, seq: f.seq, ack: f.ack ?? 0, flags: f.flags, window: 1000 }, { src: A, dst: B });
  return buildIpv4({ src: A, dst: B, protocol: IpProtocol.TCP }, tcp);
}

function watch(s: TcpSocket): { err?: VpnError; closed: boolean; hadError?: boolean } {
  const r: { err?: VpnError; closed: boolean; hadError?: boolean } = { closed: false };
  s.on('error', (e: VpnError) => (r.err = e));
  s.on('close', (hadError: boolean) => {
    r.closed = true;
    r.hadError = hadError;
  });
  return r;
}

/** Sends an exact RST to A's side of `client` and checks how the state ends. */
async function rstTo(sim: Sim, client: TcpSocket, expect: { state: string; error?: string }): Promise<void> {
  const c = client.connection;
  assert.equal(c.stateName, expect.state, 'reached the state under test');
  const r = watch(client);
  const before = sim.a.stats.connections;
  sim.inject('A', toA(client, { seq: c.rcvNxt, flags: TcpFlag.RST }));
  await sim.advance(15);
  if (expect.state === 'TIME_WAIT') {
    // RFC 1337: a RST does not end TIME_WAIT early (no assassination)
    assert.equal(c.stateName, 'TIME_WAIT');
    assert.equal(sim.a.stats.connections, before);
    return;
  }
  assert.equal(c.stateName, 'CLOSED', `${expect.state} + RST -> CLOSED`);
  assert.equal(sim.a.stats.connections, before - 1, 'removed from the table');
  if (expect.error) {
    await sim.run(() => r.closed, 100);
    assert.equal(r.err?.code, expect.error);
    assert.equal(r.hadError, true);
  } else assert.equal(r.err, undefined, `no error in ${expect.state}: ${r.err?.message}`);
  assert.equal(sim.a.stats.rstsSent, 0, 'an RST is never answered with an RST');
}

test('RST in SYN_SENT (acking our SYN): CONN_REFUSED at once', async () => {
  const sim = new Sim({ delayMs: 10 });
  sim.blackhole.AB = true; // the SYN never arrives: the peer's answer is ours to script
  const s = sim.a.connect({ host: ADDR_B, port: 80 });
  const r = watch(s);
  await sim.advance(1);
  assert.equal(s.connection.stateName, 'SYN_SENT');
  // an RST whose ACK does not ack our SYN is ignored (RFC 9293 3.10.7.3)
  sim.inject('A', toA(s, { seq: 0, ack: (s.connection.sndNxt + 5) >>> 0, flags: TcpFlag.RST | TcpFlag.ACK }));
  await sim.advance(15);
  assert.equal(s.connection.stateName, 'SYN_SENT');
  sim.inject('A', toA(s, { seq: 0, ack: s.connection.sndNxt, flags: TcpFlag.RST | TcpFlag.ACK }));
  const t = await sim.run(() => r.closed, 100);
  assert.ok(t <= 11, `t=${t}`);
  assert.equal(r.err?.code, 'CONN_REFUSED');
  assert.equal(sim.a.stats.connections, 0);
});

test('RST in SYN_RECEIVED (passive): the embryonic connection goes, the listener stays and accepts the next', async () => {
  const sim = new Sim({ delayMs: 10 });
  const accepted: TcpSocket[] = [];
  sim.b.listen(80, (s) => accepted.push(s));
  sim.blackhole.BA = true; // our SYN-ACK is lost: B stays in SYN_RECEIVED
  const client = sim.a.connect({ host: ADDR_B, port: 80 });
  watch(client);
  await sim.advance(12);
  assert.equal(sim.b.stats.connections, 1);
  // the RST carries the client's next sequence number (its ISS + 1)
  sim.inject('B', toB(client, { seq: client.connection.sndNxt, flags: TcpFlag.RST }));
  await sim.advance(12);
  assert.equal(sim.b.stats.connections, 0, 'SYN_RECEIVED + RST -> CLOSED (back to LISTEN)');
  assert.equal(accepted.length, 0);
  client.destroy();
  sim.blackhole.BA = false;
  const again = sim.a.connect({ host: ADDR_B, port: 80 });
  let up = false;
  again.on('connect', () => (up = true));
  await sim.run(() => up && accepted.length === 1, 5000);
});

test('RST in ESTABLISHED: ECONNRESET-style TRANSPORT_CLOSED, close(hadError=true)', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client } = await connectPair(sim);
  await rstTo(sim, client, { state: 'ESTABLISHED', error: 'TRANSPORT_CLOSED' });
});

test('RST in FIN_WAIT_1 (our FIN unacknowledged): reset reported', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client } = await connectPair(sim, 80, { allowHalfOpen: true });
  sim.blackhole.AB = true;
  client.end();
  await sim.advance(2);
  await rstTo(sim, client, { state: 'FIN_WAIT_1', error: 'TRANSPORT_CLOSED' });
});

test('RST in FIN_WAIT_2 (we closed, the peer still may send): reset reported', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim, 80, { allowHalfOpen: true });
  server.resume();
  client.end();
  await sim.advance(25);
  await rstTo(sim, client, { state: 'FIN_WAIT_2', error: 'TRANSPORT_CLOSED' });
});

test('RST in CLOSE_WAIT (the peer closed, we have not): reset reported', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim, 80, { allowHalfOpen: true });
  client.resume();
  server.end();
  await sim.advance(25);
  await rstTo(sim, client, { state: 'CLOSE_WAIT', error: 'TRANSPORT_CLOSED' });
});

test('RST in CLOSING (simultaneous close, our FIN not yet acked): closed quietly', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim, 80, { allowHalfOpen: true });
  client.resume();
  server.resume();
  // drop B's pure ACKs so that A's FIN stays unacknowledged
  sim.filter = (dir, seg: TcpSegment) => !(dir === 'BA' && seg.payload.length === 0 && !(seg.flags & (TcpFlag.FIN | TcpFlag.SYN | TcpFlag.RST)));
  client.end();
  server.end();
  await sim.advance(15);
  await rstTo(sim, client, { state: 'CLOSING' });
});

test('RST in LAST_ACK (both closed, our FIN unacknowledged): closed quietly', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim, 80, { allowHalfOpen: true });
  client.resume();
  server.end();
  await sim.advance(25);
  assert.equal(client.connection.stateName, 'CLOSE_WAIT');
  sim.blackhole.AB = true;
  client.end();
  await sim.advance(2);
  await rstTo(sim, client, { state: 'LAST_ACK' });
});

test('RST in TIME_WAIT is ignored (RFC 1337); TIME_WAIT runs its course', async () => {
  const sim = new Sim({ delayMs: 10 });
  const { client, server } = await connectPair(sim, 80, { allowHalfOpen: true });
  client.resume();
  server.resume();
  client.end();
  await sim.advance(25);
  server.end();
  await sim.advance(25);
  await rstTo(sim, client, { state: 'TIME_WAIT' });
});

test('fast retransmit: one lost segment is resent about one RTT later on SACKed dupacks, long before any RTO', async () => {
  const sim = new Sim({ delayMs: 10 }); // RTT 20 ms
  const { client, server } = await connectPair(sim);
  const sink = new Sink(server);
  // warm up so the RTT estimate is known and cwnd has room
  client.write(payload(200_000, 1));
  await sim.run(() => sink.bytes === 200_000, 5000);
  const data = payload(20 * 1448, 2);
  const sends: Array<{ t: number; seq: number; len: number }> = [];
  let dropSeq = -1;
  sim.filter = (dir, seg) => {
    if (dir !== 'AB' || seg.payload.length === 0) return true;
    sends.push({ t: sim.clock.now(), seq: seg.seq, len: seg.payload.length });
    if (dropSeq < 0) {
      dropSeq = seg.seq; // lose the first one of the burst, once
      return false;
    }
    return true;
  };
  const t0 = sim.clock.now();
  client.write(data);
  await sim.run(() => sink.bytes === 200_000 + data.length, 5000);
  const first = sends.findIndex((s) => s.seq === dropSeq);
  const retx = sends.findIndex((s, i) => i > first && s.seq === dropSeq);
  assert.ok(retx > 0, 'the lost segment was sent again');
  const at = sends[retx]!.t - t0;
  // dupacks arrive one RTT after the burst; RACK waits at most a fraction of an RTT more.
  assert.ok(at >= 20 && at <= 40, `retransmitted at t+${at} ms`);
  assert.equal(sends.filter((s) => s.seq === dropSeq).length, 2, 'sent exactly twice');
  assert.equal(sim.a.stats.rtoExpirations, 0);
  assert.equal(sim.a.stats.fastRecoveries, 1);
  client.end();
  await sim.run(() => sink.ended, 1000);
  assert.equal(sink.digest, sha(Buffer.concat([payload(200_000, 1), data])), 'byte-exact');
});

test("'close' carries hadError like net.Socket: false after a clean close, true after a reset", async () => {
  const sim = new Sim({ delayMs: 5 });
  const { client, server } = await connectPair(sim);
  const rc = watch(client);
  const rs = watch(server);
  client.resume();
  server.resume();
  client.end();
  await sim.run(() => rc.closed && rs.closed, 5000);
  assert.equal(rc.hadError, false);
  assert.equal(rs.hadError, false);

  const p = await connectPair(sim, 81);
  const r2 = watch(p.client);
  p.server.resetAndDestroy();
  await sim.run(() => r2.closed, 1000);
  assert.equal(r2.hadError, true);
  assert.equal(r2.err?.code, 'TRANSPORT_CLOSED');
});

test('tail-loss probe: with ACKs held back it resends the last segment (not new data), about 2 RTT after the burst', async () => {
  const sim = new Sim({ delayMs: 10 }); // RTT 20 ms
  const { client, server } = await connectPair(sim);
  const sink = new Sink(server);
  client.write(payload(200_000, 3));
  await sim.run(() => sink.bytes === 200_000, 5000);
  await sim.advance(50);
  const sends: Array<{ t: number; seq: number }> = [];
  sim.taps.push((dir, seg) => {
    if (dir === 'AB' && seg.payload.length > 0) sends.push({ t: sim.clock.now(), seq: seg.seq });
  });
  // A receiver that defers its ACK (as Linux does while its application has not read): nothing comes back.
  sim.blackhole.BA = true;
  const t0 = sim.clock.now();
  client.write(payload(2_000_000, 4)); // far more than the window: new data is always available
  await sim.advance(100);
  const burst = sends.filter((s) => s.t === t0);
  assert.ok(burst.length >= 10, `burst of ${burst.length}`);
  const highest = Math.max(...burst.map((s) => s.seq));
  const probe = sends.find((s) => s.t > t0);
  assert.ok(probe, 'a probe was sent');
  assert.equal(probe.seq, highest, 'the probe repeats the highest segment sent');
  assert.ok(probe.t - t0 >= 40 && probe.t - t0 <= 60, `probe at t+${probe.t - t0} ms (PTO = 2 SRTT + 2)`);
  assert.equal(sim.a.stats.tailLossProbes, 1);
  assert.equal(sim.a.stats.rtoExpirations, 0);
  sim.blackhole.BA = false;
  client.end();
  await sim.run(() => sink.ended, 30_000);
  assert.equal(sink.bytes, 2_200_000);
});

test('a lost retransmission in fast recovery is repaired by a probe, not by the RTO', async () => {
  const sim = new Sim({ delayMs: 10 }); // RTT 20 ms; min RTO 200 ms
  const { client, server } = await connectPair(sim);
  const sink = new Sink(server);
  client.write(payload(300_000, 5)); // warm up: RTT known, cwnd open
  await sim.run(() => sink.bytes === 300_000, 5000);
  await sim.advance(50);
  const mss = client.connection.maxSeg();
  const data = payload(30 * mss, 6);
  let target = -1;
  let xmits = 0;
  const sends: Array<{ t: number; seq: number }> = [];
  sim.filter = (dir, seg) => {
    if (dir !== 'AB' || seg.payload.length === 0) return true;
    sends.push({ t: sim.clock.now(), seq: seg.seq });
    if (target < 0 && sends.length === 10) target = seg.seq;
    if (seg.seq === target && xmits++ < 2) return false; // the 10th segment and its first retransmission
    return true;
  };
  const t0 = sim.clock.now();
  client.write(data); // and nothing after it: no new data can expose the lost retransmission
  const took = await sim.run(() => sink.bytes === 300_000 + data.length, 5000);
  const times = sends.filter((s) => s.seq === target).map((s) => s.t - t0);
  assert.equal(times.length, 3, `sent at ${times}`);
  assert.ok(times[1]! >= 20 && times[1]! <= 30, `first retransmission at ${times[1]} (RACK after the SACKs)`);
  assert.ok(times[2]! - times[1]! < 100, `second at ${times[2]}: a probe ~2 RTT later, not an RTO (>= 200 ms)`);
  assert.ok(took < 150, `done after ${took} ms`);
  assert.equal(sim.a.stats.rtoExpirations, 0);
  assert.equal(sim.a.stats.fastRecoveries, 1);
  client.end();
  await sim.run(() => sink.ended, 1000);
  assert.equal(sink.digest, sha(Buffer.concat([payload(300_000, 5), data])));
});
