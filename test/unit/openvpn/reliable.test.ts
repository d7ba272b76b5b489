import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ManualClock } from '../../../src/util/clock.js';
import { ReliableLayer, type ReliableOptions } from '../../../src/openvpn/reliable.js';
import { createControlWrap, ControlUnwrapError, type ControlWrap } from '../../../src/openvpn/wrap.js';
import {
  EARLY_NEG_FLAG_RESEND_WKC,
  Opcode,
  decodeControlPacket,
  encodeControlPacket,
  encodeEarlyNegFlags,
  type ControlPacket,
} from '../../../src/wire/openvpn.js';

const sidC = Buffer.from('c1c2c3c4c5c6c7c8', 'hex');
const sidS = Buffer.from('5151515151515151', 'hex');
const EMPTY = Buffer.alloc(0);

function client(opts: Partial<ReliableOptions> = {}): ReliableLayer {
  return new ReliableLayer({ keyId: 0, localSessionId: sidC, ...opts });
}
function server(opts: Partial<ReliableOptions> = {}): ReliableLayer {
  return new ReliableLayer({ keyId: 0, localSessionId: sidS, ...opts });
}
/** A packet "from the server" addressed to the client. */
function fromServer(p: Partial<ControlPacket> & { opcode: number }): ControlPacket {
  const pkt: ControlPacket = { keyId: 0, sessionId: sidS, acks: [], payload: EMPTY, ...p };
  if (pkt.acks.length && !pkt.remoteSessionId) pkt.remoteSessionId = sidC;
  return pkt;
}
function serverReset(acks: number[] = [0], payload: Buffer = EMPTY): ControlPacket {
  return fromServer({ opcode: Opcode.P_CONTROL_HARD_RESET_SERVER_V2, acks, messageId: 0, payload });
}
/** A client that finished the reset exchange (its reset ACKed, the server's reset received). */
function handshaken(opts: Partial<ReliableOptions> = {}): ReliableLayer {
  const c = client(opts);
  c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
  c.poll(0);
  const r = c.receive(serverReset(), 0);
  assert.ok(r.resetReceived);
  c.poll(0); // sends the P_ACK_V1 for the server reset
  return c;
}
const ids = (pkts: ControlPacket[]) => pkts.map((p) => (p.opcode === Opcode.P_ACK_V1 ? `ack[${p.acks.join(',')}]` : p.messageId));

describe('three-way handshake (reference §1.6)', () => {
  test('client reset is message id 0 without ACKs', () => {
    const c = client();
    c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    const out = c.poll(0);
    assert.equal(out.length, 1);
    assert.equal(encodeControlPacket(out[0]!).toString('hex'), '38' + sidC.toString('hex') + '00' + '00000000');
    assert.equal(c.allAcked(), false);
    assert.throws(() => c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2));
  });

  test('the packet after the server reset carries ACK [0] and the server session id (P_ACK_V1)', () => {
    const c = client();
    c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    c.poll(0);
    const r = c.receive(serverReset(), 30);
    assert.equal(r.accepted, true);
    assert.equal(r.resetReceived, true);
    assert.equal(r.newlyAcked, 1);
    assert.ok(c.remoteSessionId!.equals(sidS));
    assert.equal(c.allAcked(), true);
    assert.equal(c.nextDeadline(), 30); // an ACK is due now
    const out = c.poll(30);
    assert.equal(out.length, 1);
    const enc = encodeControlPacket(out[0]!);
    assert.equal(enc.toString('hex'), '28' + sidC.toString('hex') + '01' + '00000000' + sidS.toString('hex'));
    assert.equal(c.nextDeadline(), undefined);
  });

  test('... or piggy-backed on the ClientHello (message id 1) when TLS data is ready', () => {
    const c = client();
    c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    c.poll(0);
    c.receive(serverReset(), 30);
    c.queueData(Buffer.from('client hello'));
    const out = c.poll(30);
    assert.deepEqual(ids(out), [1]);
    assert.equal(out[0]!.opcode, Opcode.P_CONTROL_V1);
    assert.deepEqual(out[0]!.acks, [0]);
    assert.ok(out[0]!.remoteSessionId!.equals(sidS));
    assert.equal(out[0]!.payload.toString(), 'client hello');
  });

  test('a non-reset packet before the peer reset, and a hard reset with id != 0, are dropped', () => {
    const c = client();
    c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    c.poll(0);
    const a = c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: 1, payload: Buffer.from('x') }), 1);
    assert.equal(a.dropReason, 'no-peer-reset');
    const b = c.receive(fromServer({ opcode: Opcode.P_CONTROL_HARD_RESET_SERVER_V2, acks: [0], messageId: 3 }), 1);
    assert.equal(b.dropReason, 'bad-reset-id');
    assert.equal(c.remoteSessionId, undefined);
    assert.equal(c.allAcked(), false); // the ACK in the bad reset was not applied
    assert.deepEqual(c.poll(1), []);
  });
});

describe('retransmission', () => {
  test('initial timeout 2 s, doubling after each transmission, capped', () => {
    const c = client({ maxTimeoutMs: 60_000 });
    c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    const sentAt: number[] = [];
    let t = 0;
    for (let i = 0; i < 8; i++) {
      const out = c.poll(t);
      if (out.length) sentAt.push(t);
      assert.ok(out.every((p) => p.messageId === 0));
      const next = c.nextDeadline()!;
      // nothing goes out 1 ms before the deadline
      assert.deepEqual(c.poll(next - 1), []);
      t = next;
    }
    assert.deepEqual(sentAt, [0, 2000, 6000, 14000, 30000, 62000, 122000, 182000]);
    assert.equal(c.stats.retransmits, 7);
  });

  test('a custom tls-timeout', () => {
    const c = client({ tlsTimeoutMs: 500 });
    c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    c.poll(0);
    assert.equal(c.nextDeadline(), 500);
    c.poll(500);
    assert.equal(c.nextDeadline(), 1500);
  });

  test('retransmissions keep the message id and pick up the current ACKs', () => {
    const c = handshaken();
    c.queueData(Buffer.from('hello'));
    const first = c.poll(100);
    assert.deepEqual(ids(first), [1]);
    assert.deepEqual(first[0]!.acks, [0]); // MRU re-send of the reset ACK
    c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: 1, payload: Buffer.from('s1') }), 200);
    const ack = c.poll(200);
    assert.deepEqual(ids(ack), ['ack[1,0]']);
    const again = c.poll(2100);
    assert.deepEqual(ids(again), [1]);
    assert.equal(again[0]!.payload.toString(), 'hello');
    assert.deepEqual(again[0]!.acks, [1, 0]);
  });

  test('fast retransmit once 3 later ids are ACKed', () => {
    const c = handshaken({ maxPayload: 10 });
    c.queueData(Buffer.alloc(50, 1));
    assert.deepEqual(ids(c.poll(0)), [1, 2, 3, 4, 5]);
    c.receive(fromServer({ opcode: Opcode.P_ACK_V1, acks: [2, 3] }), 100);
    assert.deepEqual(c.poll(100), []); // 2 later ACKs: not yet
    c.receive(fromServer({ opcode: Opcode.P_ACK_V1, acks: [3, 2] }), 110); // repeats do not count
    assert.deepEqual(c.poll(110), []);
    c.receive(fromServer({ opcode: Opcode.P_ACK_V1, acks: [4] }), 120);
    assert.deepEqual(ids(c.poll(120)), [1]);
    assert.equal(c.stats.fastRetransmits, 1);
    assert.deepEqual(c.unackedIds, [1, 5]);
  });

  test('burst: the first peer reset makes every pending packet due now', () => {
    const c = client();
    c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    c.poll(0);
    // a server reset that does not ACK ours (e.g. it crossed our reset on the wire)
    const r = c.receive(serverReset([]), 500);
    assert.equal(r.resetReceived, true);
    const out = c.poll(500);
    assert.deepEqual(ids(out), [0]); // at t=500, not 2000; no separate P_ACK_V1 needed
    assert.deepEqual(out[0]!.acks, [0]); // the retransmitted reset carries the ACK
    assert.equal(c.stats.bursts, 1);
    // a second copy of the reset does not burst again
    c.receive(serverReset([]), 600);
    assert.deepEqual(ids(c.poll(600)), ['ack[0]']);
    assert.equal(c.stats.bursts, 1);
  });
});

describe('send window', () => {
  test('at most 6 ids past the lowest unacked one', () => {
    const c = handshaken({ maxPayload: 100 });
    c.queueData(Buffer.alloc(2000, 7));
    assert.deepEqual(ids(c.poll(0)), [1, 2, 3, 4, 5, 6]);
    assert.equal(c.queuedBytes, 1400);
    c.receive(fromServer({ opcode: Opcode.P_ACK_V1, acks: [3] }), 10);
    assert.deepEqual(c.poll(10), []); // lowest unacked is still 1
    c.receive(fromServer({ opcode: Opcode.P_ACK_V1, acks: [1] }), 20);
    assert.deepEqual(ids(c.poll(20)), [7]); // lowest now 2: ids up to 7
    c.receive(fromServer({ opcode: Opcode.P_ACK_V1, acks: [2] }), 30);
    assert.deepEqual(ids(c.poll(30)), [8, 9]); // lowest 4
    assert.deepEqual(c.unackedIds, [4, 5, 6, 7, 8, 9]);
    assert.equal(c.allAcked(), false);
  });

  test('TLS bytes are a stream: small writes are merged, large ones split', () => {
    const c = handshaken({ maxPayload: 10 });
    c.queueData(Buffer.from('abc'));
    c.queueData(Buffer.from('defghijklmnop'));
    c.queueData(Buffer.from('q'));
    const out = c.poll(0);
    assert.deepEqual(out.map((p) => p.payload.toString()), ['abcdefghij', 'klmnopq']);
  });

  test('chunks keep every wrapped packet within maxPacketSize minus the IPv6+UDP header', () => {
    const wrap = createControlWrap({ mode: 'tls-auth', key: Buffer.alloc(256, 3), direction: 1 });
    const c = handshaken({ wrapOverhead: (op) => wrap.overheadFor(op) });
    assert.equal(c.maxPayloadFor(Opcode.P_CONTROL_V1), 1250 - 48 - 28 - (1 + 8 + 1 + 16 + 8 + 4));
    for (let i = 0; i < 9; i++) c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: i + 1, payload: Buffer.from('s') }), 0);
    c.queueData(Buffer.alloc(5000, 1));
    const out = c.poll(0);
    assert.ok(out.length >= 5);
    for (const p of out) {
      const wire = wrap.wrap(encodeControlPacket(p), 1);
      assert.ok(wire.length <= 1250 - 48, `${wire.length}`);
      assert.ok(p.acks.length <= 4);
    }
  });
});

describe('receive window and ACKs', () => {
  test('delivers strictly in order; gaps are held', () => {
    const c = handshaken();
    const d = (id: number) => c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: id, payload: Buffer.from(`m${id}`) }), 0);
    assert.deepEqual(d(2).delivered, []);
    assert.deepEqual(d(3).delivered, []);
    assert.equal(c.storedCount, 2);
    assert.deepEqual(d(1).delivered.map(String), ['m1', 'm2', 'm3']);
    assert.equal(c.storedCount, 0);
    assert.equal(c.expectedMessageId, 4);
  });

  test('beyond the 12-slot window: dropped and not ACKed; inside: stored and ACKed', () => {
    const c = handshaken();
    // expected is 1: window is [1, 13)
    const far = c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: 13, payload: Buffer.from('x') }), 0);
    assert.equal(far.dropReason, 'beyond-window');
    assert.equal(c.stats.outOfWindow, 1);
    assert.deepEqual(c.pendingAckIds, []);
    const edge = c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: 12, payload: Buffer.from('y') }), 0);
    assert.equal(edge.dropReason, undefined);
    assert.deepEqual(c.pendingAckIds, [12]);
    assert.equal(c.storedCount, 1);
    // ACKs in a packet beyond the window are still applied
    c.queueData(Buffer.from('z'));
    c.poll(0);
    const r = c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, acks: [1], messageId: 40, payload: Buffer.from('w') }), 1);
    assert.equal(r.newlyAcked, 1);
    assert.equal(r.dropReason, 'beyond-window');
  });

  test('old duplicates are ACKed again but not delivered twice', () => {
    const c = handshaken();
    const pkt = fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: 1, payload: Buffer.from('once') });
    assert.deepEqual(c.receive(pkt, 0).delivered.map(String), ['once']);
    assert.deepEqual(ids(c.poll(0)), ['ack[1,0]']);
    const dup = c.receive(pkt, 10);
    assert.equal(dup.duplicate, true);
    assert.deepEqual(dup.delivered, []);
    assert.equal(c.stats.duplicatesReceived, 1);
    assert.deepEqual(ids(c.poll(10)), ['ack[1,0]']);
    // a duplicate of the server reset is re-ACKed too
    c.receive(serverReset(), 20);
    assert.deepEqual(c.pendingAckIds, [0]);
  });

  test('a stored (not yet deliverable) duplicate is re-ACKed, not stored twice', () => {
    const c = handshaken();
    const p3 = fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: 3, payload: Buffer.from('3') });
    c.receive(p3, 0);
    c.poll(0);
    const r = c.receive(p3, 1);
    assert.equal(r.duplicate, true);
    assert.equal(c.storedCount, 1);
    assert.deepEqual(c.pendingAckIds, [3]);
  });

  test('P_ACK_V1 is never ACKed', () => {
    const c = handshaken();
    c.queueData(Buffer.from('a'));
    c.poll(0);
    const r = c.receive(fromServer({ opcode: Opcode.P_ACK_V1, acks: [1] }), 5);
    assert.equal(r.newlyAcked, 1);
    assert.deepEqual(c.pendingAckIds, []);
    assert.deepEqual(c.poll(5), []);
    assert.equal(c.nextDeadline(), undefined);
  });

  test('ACKs addressed to another session id drop the whole packet', () => {
    const c = handshaken();
    c.queueData(Buffer.from('a'));
    c.poll(0);
    const r = c.receive(
      fromServer({ opcode: Opcode.P_CONTROL_V1, acks: [1], remoteSessionId: Buffer.alloc(8, 9), messageId: 1, payload: Buffer.from('x') }),
      5,
    );
    assert.equal(r.accepted, false);
    assert.equal(r.dropReason, 'ack-session-id');
    assert.deepEqual(c.unackedIds, [1]);
    assert.deepEqual(r.delivered, []);
    assert.deepEqual(c.pendingAckIds, []); // not ACKed either
  });

  test('packets from another session or key id are dropped', () => {
    const c = handshaken();
    const other = c.receive({ ...fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: 1, payload: Buffer.from('x') }), sessionId: Buffer.alloc(8, 1) }, 0);
    assert.equal(other.dropReason, 'session-id');
    const kid = c.receive({ ...fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: 1, payload: Buffer.from('x') }), keyId: 1 }, 0);
    assert.equal(kid.dropReason, 'key-id');
    assert.deepEqual(c.pendingAckIds, []);
    assert.equal(c.stats.dropped, 2);
  });

  test('pending ACKs: at most 8, deduplicated, 4 piggy-backed, the rest in P_ACK_V1, then MRU re-sends', () => {
    const c = handshaken();
    for (const id of [1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: id, payload: Buffer.from('p') }), 0);
    }
    assert.deepEqual(c.pendingAckIds, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(c.stats.ackOverflow, 2); // 9 and 10 could not be queued (the peer will retransmit them)
    c.queueData(Buffer.from('data'));
    const out = c.poll(0);
    assert.equal(out.length, 2);
    assert.deepEqual(out[0]!.acks, [1, 2, 3, 4]);
    assert.equal(out[1]!.opcode, Opcode.P_ACK_V1);
    assert.deepEqual(out[1]!.acks, [5, 6, 7, 8, 1, 2, 3, 4]);
    // the next data packet re-sends the most recent ACKs (2.6 MRU)
    c.queueData(Buffer.from('more'));
    const next = c.poll(1);
    assert.deepEqual(next[0]!.acks, [5, 6, 7, 8]);
    assert.ok(next.every((p) => p.opcode !== Opcode.P_ACK_V1));
  });

  test('maxAcksPerPacket and maxAcksPerAckPacket options (SoftEther workaround)', () => {
    const c = handshaken({ maxAcksPerPacket: 2, maxAcksPerAckPacket: 4 });
    for (let id = 1; id <= 8; id++) c.receive(fromServer({ opcode: Opcode.P_CONTROL_V1, messageId: id, payload: Buffer.from('p') }), 0);
    c.queueData(Buffer.from('d'));
    const out = c.poll(0);
    assert.deepEqual(out.map((p) => p.opcode), [Opcode.P_CONTROL_V1, Opcode.P_ACK_V1, Opcode.P_ACK_V1]);
    // new ACKs first, the rest of the packet filled from the MRU list
    assert.deepEqual(out.map((p) => p.acks), [[1, 2], [3, 4, 5, 6], [7, 8, 3, 4]]);
  });
});

describe('tls-crypt-v2 early negotiation', () => {
  const wkcReset = () => serverReset([0], encodeEarlyNegFlags(EARLY_NEG_FLAG_RESEND_WKC));
  function v2client(): ReliableLayer {
    const c = client({ wkcCapable: true, maxPayload: undefined, wrapOverhead: (op) => 40 + (op === Opcode.P_CONTROL_WKC_V1 ? 299 : 0) });
    c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V3);
    c.poll(0);
    return c;
  }

  test('with no TLS data ready, the ACK goes in an EMPTY P_CONTROL_WKC_V1 with message id 1', () => {
    const c = v2client();
    const r = c.receive(wkcReset(), 10);
    assert.equal(r.earlyNegotiation?.resendWkc, true);
    assert.equal(c.resendWkc, true);
    const out = c.poll(10);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.opcode, Opcode.P_CONTROL_WKC_V1);
    assert.equal(out[0]!.messageId, 1);
    assert.equal(out[0]!.payload.length, 0);
    assert.deepEqual(out[0]!.acks, [0]);
    // the TLS data then goes in id 2 as a normal P_CONTROL_V1; the WKc packet is retransmitted until ACKed
    c.queueData(Buffer.from('hello'));
    const next = c.poll(20);
    assert.deepEqual(next.map((p) => [p.opcode, p.messageId]), [[Opcode.P_CONTROL_V1, 2]]);
    assert.deepEqual(ids(c.poll(2010)), [1]);
  });

  test('with TLS data ready, message id 1 is P_CONTROL_WKC_V1 carrying it, cut to leave room for WKc', () => {
    const c = v2client();
    c.receive(wkcReset(), 10);
    c.queueData(Buffer.alloc(3000, 0x16));
    const out = c.poll(10);
    assert.equal(out[0]!.opcode, Opcode.P_CONTROL_WKC_V1);
    assert.deepEqual(out[0]!.acks, [0]);
    assert.equal(out[0]!.payload.length, 1250 - 48 - 339 - 38);
    assert.ok(out.slice(1).every((p) => p.opcode === Opcode.P_CONTROL_V1));
    assert.equal(out[1]!.payload.length, 1250 - 48 - 40 - 38);
  });

  test('without the flag (or without wkcCapable) a plain P_ACK_V1 is sent', () => {
    const c = v2client();
    c.receive(serverReset(), 10);
    assert.deepEqual(ids(c.poll(10)), ['ack[0]']);
    const d = client();
    d.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    d.poll(0);
    d.receive(wkcReset(), 10);
    assert.equal(d.resendWkc, false);
    assert.deepEqual(ids(d.poll(10)), ['ack[0]']);
  });

  test('malformed early-negotiation TLVs are reported', () => {
    const c = v2client();
    const r = c.receive(serverReset([0], Buffer.from('000100', 'hex')), 10);
    assert.ok(r.earlyNegotiationError);
    assert.equal(c.resendWkc, false);
  });
});

// ---------------------------------------------------------------------------------------------------
// Simulated lossy link between a client and a server-role layer

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimOptions {
  seed: number;
  loss: number;
  dup: number;
  bytes: number;
  wrap: 'none' | 'tls-auth';
  /** Extra random delay per packet (ms): reordering. Default 60. */
  jitter?: number;
}

function simulate(o: SimOptions) {
  const rnd = mulberry32(o.seed);
  const clock = new ManualClock(0);
  const key = Buffer.concat(Array.from({ length: 8 }, (_, i) => createHash('sha256').update(`sim${i}`).digest()));
  const mk = (dir: 0 | 1): ControlWrap =>
    o.wrap === 'none' ? createControlWrap({ mode: 'none' }) : createControlWrap({ mode: 'tls-auth', key, direction: dir, digest: 'SHA256' });
  const wrapC = mk(1);
  const wrapS = mk(0);
  const c = new ReliableLayer({ keyId: 0, localSessionId: sidC, wrapOverhead: wrapC.overhead });
  const s = new ReliableLayer({ keyId: 0, localSessionId: sidS, wrapOverhead: wrapS.overhead });
  const dataC = Buffer.alloc(o.bytes);
  const dataS = Buffer.alloc(o.bytes);
  for (let i = 0; i < o.bytes; i++) {
    dataC[i] = (rnd() * 256) | 0;
    dataS[i] = (rnd() * 256) | 0;
  }
  const gotAtS: Buffer[] = [];
  const gotAtC: Buffer[] = [];
  let gotS = 0;
  let gotC = 0;
  const wire: { to: 'c' | 's'; at: number; bytes: Buffer }[] = [];
  const counts = { sent: 0, lost: 0, duplicated: 0, unwrapRejected: 0, maxInFlight: 0, maxStored: 0 };
  const seenSent = { c: new Map<number, number>(), s: new Map<number, number>() };

  const send = (from: 'c' | 's', pkts: ControlPacket[]) => {
    const w = from === 'c' ? wrapC : wrapS;
    for (const p of pkts) {
      const bytes = w.wrap(encodeControlPacket(p), clock.unixSeconds());
      assert.ok(bytes.length <= 1250 - 48, `packet of ${bytes.length} bytes`);
      assert.ok(p.acks.length <= (p.opcode === Opcode.P_ACK_V1 ? 8 : 4));
      if (p.messageId !== undefined && p.opcode !== Opcode.P_ACK_V1) {
        const m = seenSent[from];
        m.set(p.messageId, (m.get(p.messageId) ?? 0) + 1);
      }
      counts.sent++;
      if (rnd() < o.loss) {
        counts.lost++;
        continue;
      }
      const copies = rnd() < o.dup ? 2 : 1;
      if (copies === 2) counts.duplicated++;
      for (let k = 0; k < copies; k++) {
        wire.push({ to: from === 'c' ? 's' : 'c', at: clock.now() + 5 + Math.floor(rnd() * (o.jitter ?? 60)), bytes });
      }
    }
  };
  const deliver = (to: 'c' | 's', bytes: Buffer) => {
    const layer = to === 'c' ? c : s;
    const w = to === 'c' ? wrapC : wrapS;
    let plain: Buffer;
    try {
      plain = w.unwrap(bytes, clock.unixSeconds());
    } catch (e) {
      assert.ok(e instanceof ControlUnwrapError && e.reason === 'replay', String(e));
      counts.unwrapRejected++;
      return;
    }
    const r = layer.receive(decodeControlPacket(plain), clock.now());
    if (r.resetReceived) {
      if (to === 's') {
        s.sendReset(Opcode.P_CONTROL_HARD_RESET_SERVER_V2);
        s.queueData(dataS);
      } else {
        c.queueData(dataC);
      }
    }
    for (const d of r.delivered) {
      if (to === 's') {
        gotAtS.push(Buffer.from(d));
        gotS += d.length;
      } else {
        gotAtC.push(Buffer.from(d));
        gotC += d.length;
      }
    }
  };

  c.sendReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
  let iterations = 0;
  while (!(gotS === o.bytes && gotC === o.bytes && c.allAcked() && s.allAcked())) {
    assert.ok(++iterations < 200_000, 'simulation did not converge');
    assert.ok(clock.now() < 30 * 60_000, `stuck at t=${clock.now()} (c got ${gotC}, s got ${gotS})`);
    // deliver what is due
    wire.sort((a, b) => a.at - b.at);
    while (wire.length && wire[0]!.at <= clock.now()) {
      const p = wire.shift()!;
      deliver(p.to, p.bytes);
    }
    send('c', c.poll(clock.now()));
    send('s', s.poll(clock.now()));
    for (const l of [c, s]) {
      const inflight = l.unackedIds;
      if (inflight.length) {
        counts.maxInFlight = Math.max(counts.maxInFlight, inflight[inflight.length - 1]! - inflight[0]! + 1);
        assert.ok(inflight[inflight.length - 1]! - inflight[0]! < 6, `send window exceeded: ${inflight}`);
      }
      counts.maxStored = Math.max(counts.maxStored, l.storedCount);
      assert.ok(l.storedCount < 12);
    }
    // advance to the next event
    const deadlines = [c.nextDeadline(), s.nextDeadline(), wire.length ? Math.min(...wire.map((w) => w.at)) : undefined].filter(
      (x): x is number => x !== undefined,
    );
    if (deadlines.length === 0) break;
    const next = Math.min(...deadlines);
    if (next > clock.now()) clock.advance(next - clock.now());
  }
  return { c, s, clock, gotAtS, gotAtC, dataC, dataS, counts, seenSent };
}

describe('simulated lossy, reordering, duplicating link', () => {
  for (const seed of [1, 2, 3, 42]) {
    test(`50 kB each way, seed ${seed}, no wrap (duplicates reach the layer)`, () => {
      const r = simulate({ seed, loss: 0.15, dup: 0.1, bytes: 50_000, wrap: 'none' });
      if (process.env.SIM_DEBUG) console.log(seed, r.clock.now(), r.counts, r.c.stats, r.s.stats);
      assert.ok(Buffer.concat(r.gotAtS).equals(r.dataC), 'client → server stream intact');
      assert.ok(Buffer.concat(r.gotAtC).equals(r.dataS), 'server → client stream intact');
      assert.ok(r.counts.lost > 0 && r.counts.duplicated > 0);
      assert.ok(r.c.stats.retransmits + r.s.stats.retransmits > 0);
      assert.ok(r.c.stats.duplicatesReceived + r.s.stats.duplicatesReceived > 0);
      assert.equal(r.counts.maxInFlight, 6); // the window was used fully, never exceeded
      // ids went out in order without gaps: every id 0..n-1 was sent at least once
      for (const side of ['c', 's'] as const) {
        const sent = [...r.seenSent[side].keys()].sort((a, b) => a - b);
        assert.deepEqual(sent, sent.map((_, i) => i));
      }
    });
  }

  test('50 kB each way through tls-auth (wrapper drops duplicates as replays, retransmissions get new ids)', () => {
    const r = simulate({ seed: 7, loss: 0.2, dup: 0.15, bytes: 50_000, wrap: 'tls-auth' });
    assert.ok(Buffer.concat(r.gotAtS).equals(r.dataC));
    assert.ok(Buffer.concat(r.gotAtC).equals(r.dataS));
    assert.ok(r.counts.unwrapRejected > 0, 'network duplicates must be caught by the replay window');
    assert.ok(r.c.stats.retransmits > 0, 'retransmissions must pass the replay window');
  });

  test('loss-free, in-order link: no retransmissions, finishes quickly', () => {
    const r = simulate({ seed: 5, loss: 0, dup: 0, bytes: 50_000, wrap: 'none', jitter: 0 });
    assert.ok(Buffer.concat(r.gotAtS).equals(r.dataC));
    assert.equal(r.c.stats.retransmits + r.s.stats.retransmits, 0);
    assert.ok(r.clock.now() < 2000, `took ${r.clock.now()} ms`);
  });

  test('loss-free but reordering link: fast retransmits only, apart from the reset race', () => {
    const r = simulate({ seed: 5, loss: 0, dup: 0, bytes: 50_000, wrap: 'none', jitter: 60 });
    if (process.env.SIM_DEBUG) console.log(r.clock.now(), r.counts, r.c.stats, r.s.stats);
    assert.ok(Buffer.concat(r.gotAtC).equals(r.dataS));
    assert.equal(r.c.stats.retransmits, r.c.stats.fastRetransmits);
    // The server's first data packets can overtake its reset; the client drops those (no session yet,
    // no ACK), so each of them may cost the server one timeout retransmission, nothing else can.
    assert.ok(r.s.stats.retransmits - r.s.stats.fastRetransmits <= r.c.stats.dropped);
    assert.ok(r.clock.now() < 5000, `took ${r.clock.now()} ms`);
  });
});
