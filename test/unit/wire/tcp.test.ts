import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import { parseIpv4, writeIpv4Header } from '../../../src/wire/ipv4.js';
import {
  buildTcp,
  emptyTcpOptions,
  parseTcp,
  parseTcpOptionsInto,
  tcpAck,
  tcpChecksumOk,
  tcpDstPort,
  tcpFlags,
  tcpFlagsToString,
  TcpFlag,
  tcpHeaderLen,
  tcpHeaderLength,
  tcpOptionsLength,
  tcpSeq,
  tcpSrcPort,
  tcpWindow,
  writeTcpHeader,
  type ParsedTcpOptions,
  type TcpOptions,
} from '../../../src/wire/tcp.js';
import { hex, mutated, onlyWireError, u16, u32, u8 } from './helpers.js';

// A SYN captured on lo from Linux 127.0.0.1:39726 -> 127.0.0.1:45678 (tshark -x). On lo the kernel leaves a
// partial checksum (fe30) in the segment (checksum offload), so the field below holds the full checksum
// 0x5350, computed with an independent Python implementation.
const SYN_IP = '4500003ceae3400040 0651d67f0000017f000001';
const SYN_TCP = '9b2eb26e d2951072 00000000 a002 ffd7 5350 0000 020 4ffd7 0402 080a 5e306dd9 00000000 01 03030a';

test('captured Linux SYN with options parses field by field', () => {
  const pkt = hex(SYN_IP + SYN_TCP);
  const ip = parseIpv4(pkt);
  const pseudo = { src: ip.src, dst: ip.dst };
  const s = parseTcp(ip.payload, pseudo);
  assert.equal(s.srcPort, 39726);
  assert.equal(s.dstPort, 45678);
  assert.equal(s.seq, 0xd2951072);
  assert.equal(s.ack, 0);
  assert.equal(s.headerLength, 40);
  assert.equal(s.flags, TcpFlag.SYN);
  assert.equal(s.window, 65495);
  assert.equal(s.checksum, 0x5350);
  assert.deepEqual(s.options, {
    mss: 65495,
    windowScale: 10,
    sackPermitted: true,
    sack: undefined,
    timestamp: { value: 1580232153, echo: 0 },
  });
  assert.equal(s.payload.length, 0);
  // hot-path readers agree
  const t = ip.payload;
  assert.equal(tcpSrcPort(t), 39726);
  assert.equal(tcpDstPort(t), 45678);
  assert.equal(tcpSeq(t), 0xd2951072);
  assert.equal(tcpAck(t), 0);
  assert.equal(tcpFlags(t), TcpFlag.SYN);
  assert.equal(tcpWindow(t), 65495);
  assert.equal(tcpHeaderLen(t), 40);
  assert.equal(tcpChecksumOk(t, pseudo), true);
});

test('writing the parsed SYN reproduces the captured bytes exactly (same option layout as Linux)', () => {
  const seg = hex(SYN_TCP);
  const s = parseTcp(seg);
  const out = buildTcp(
    {
      srcPort: s.srcPort,
      dstPort: s.dstPort,
      seq: s.seq,
      flags: s.flags,
      window: s.window,
      options: { mss: 65495, sackPermitted: true, timestamp: { value: 1580232153, echo: 0 }, windowScale: 10 },
    },
    { src: 0x7f000001, dst: 0x7f000001 },
  );
  assert.deepEqual(out, seg);
});

test('the loopback partial checksum (fe30) is rejected', () => {
  const seg = hex(SYN_TCP);
  seg[16] = 0xfe;
  seg[17] = 0x30;
  assert.throws(
    () => parseTcp(seg, { src: 0x7f000001, dst: 0x7f000001 }),
    (e: unknown) => e instanceof WireError && e.field === 'checksum' && e.offset === 16,
  );
  assert.equal(parseTcp(seg).checksum, 0xfe30, 'without a pseudo-header no check');
});

function withOptions(opts: number[]): Uint8Array {
  const hl = 20 + opts.length;
  const b = new Uint8Array(hl);
  b[12] = (hl / 4) << 4;
  b[13] = TcpFlag.ACK;
  b.set(opts, 20);
  return b;
}

test('options: NOP/EOL, unknown kinds skipped, SACK blocks', () => {
  const s = parseTcp(
    withOptions([
      1, 1, 0x1e, 6, 9, 9, 9, 9, // unknown kind 30 (MPTCP) skipped by length
      5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 5, // SACK 2 blocks
      0, 2, 4, 0, // EOL: what follows is ignored even if it looks like an MSS
    ]),
  );
  assert.deepEqual(s.options.sack, [
    { left: 1, right: 2 },
    { left: 0xffffffff, right: 5 },
  ]);
  assert.equal(s.options.mss, undefined);
});

test('malformed option lengths throw WireError with field and offset', () => {
  const cases: Array<[number[], string, number]> = [
    [[2, 3, 0, 0], 'option.mss', 21],
    [[3, 4, 7, 0], 'option.windowScale', 21],
    [[4, 3, 0, 1], 'option.sackPermitted', 21],
    [[5, 6, 0, 0, 0, 0, 0, 0], 'option.sack', 21],
    [[8, 8, 0, 0, 0, 0, 0, 0], 'option.timestamp', 21],
    [[1, 1, 1, 0x1e], 'option.length', 24],
    [[0x1e, 1, 0, 0], 'option.length', 21],
    [[0x1e, 0, 0, 0], 'option.length', 21],
    [[1, 1, 0x1e, 8], 'option.length', 23],
  ];
  for (const [opts, field, offset] of cases) {
    assert.throws(
      () => parseTcp(withOptions(opts)),
      (e: unknown) => e instanceof WireError && e.field === field && e.offset === offset,
      `${opts} -> ${field}@${offset}`,
    );
  }
});

test('header validation: short, data offset < 5, data offset past end', () => {
  assert.throws(() => parseTcp(new Uint8Array(19)), (e: unknown) => e instanceof WireError && e.field === 'length');
  const b = new Uint8Array(20);
  b[12] = 4 << 4;
  assert.throws(() => parseTcp(b), (e: unknown) => e instanceof WireError && e.field === 'dataOffset' && e.offset === 12);
  b[12] = 6 << 4;
  assert.throws(() => parseTcp(b), (e: unknown) => e instanceof WireError && e.field === 'dataOffset');
});

test('writer: option lengths, > 40 bytes rejected, payload in place, checksum over an IPv4 packet', () => {
  assert.equal(tcpOptionsLength({}), 0);
  assert.equal(tcpOptionsLength({ mss: 1 }), 4);
  assert.equal(tcpOptionsLength({ sackPermitted: true }), 4);
  assert.equal(tcpOptionsLength({ sack: [{ left: 1, right: 2 }], timestamp: { value: 1, echo: 2 } }), 24);
  const four = Array.from({ length: 4 }, (_, i) => ({ left: i, right: i + 1 }));
  assert.equal(tcpHeaderLength({ options: { sack: four } }), 56);
  assert.throws(() => buildTcp({ srcPort: 1, dstPort: 2, seq: 0, flags: 0, window: 0, options: { sack: four, timestamp: { value: 1, echo: 1 } } }), WireError);
  assert.equal(buildTcp({ srcPort: 1, dstPort: 2, seq: 0, flags: 0, window: 0, options: { sack: four, mss: 1 } }).length, 60);

  // Build an IPv4+TCP packet in one buffer without copying the payload twice.
  const payload = new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n');
  const seg = { srcPort: 40000, dstPort: 80, seq: 1001, ack: 5001, flags: TcpFlag.PSH | TcpFlag.ACK, window: 502, options: { timestamp: { value: 7, echo: 9 } } };
  const thl = tcpHeaderLength(seg);
  const buf = new Uint8Array(20 + thl + payload.length);
  buf.set(payload, 20 + thl);
  const src = 0x0a080002;
  const dst = 0x01020304;
  assert.equal(writeTcpHeader(seg, payload.length, buf, 20, { src, dst }), thl);
  writeIpv4Header({ src, dst, protocol: 6 }, thl + payload.length, buf, 0);
  const ip = parseIpv4(buf);
  const s = parseTcp(ip.payload, { src, dst });
  assert.deepEqual(s.payload, payload);
  assert.deepEqual(s.options.timestamp, { value: 7, echo: 9 });
  assert.equal(tcpFlagsToString(s.flags), 'P.');
});

test('flag strings are tcpdump style', () => {
  assert.equal(tcpFlagsToString(TcpFlag.SYN), 'S');
  assert.equal(tcpFlagsToString(TcpFlag.SYN | TcpFlag.ACK), 'S.');
  assert.equal(tcpFlagsToString(TcpFlag.FIN | TcpFlag.PSH | TcpFlag.ACK), 'FP.');
  assert.equal(tcpFlagsToString(TcpFlag.RST), 'R');
  assert.equal(tcpFlagsToString(0), 'none');
  assert.equal(tcpFlagsToString(TcpFlag.ECE | TcpFlag.CWR | TcpFlag.SYN), 'SEW');
});

const sackArb = fc.array(fc.record({ left: u32, right: u32 }).map((r) => ({ ...r })), { minLength: 1, maxLength: 4 });
const optsArb: fc.Arbitrary<TcpOptions> = fc
  .record(
    {
      mss: u16,
      windowScale: u8,
      sackPermitted: fc.boolean(),
      sack: sackArb,
      timestamp: fc.record({ value: u32, echo: u32 }).map((r) => ({ ...r })),
    },
    { requiredKeys: [] },
  )
  .map((o) => ({ ...o }))
  .filter((o) => tcpOptionsLength(o) <= 40);

function normalized(o: TcpOptions): ParsedTcpOptions {
  return {
    mss: o.mss,
    windowScale: o.windowScale,
    sackPermitted: o.sackPermitted ?? false,
    sack: o.sack,
    timestamp: o.timestamp,
  };
}

const segArb = fc.record({
  srcPort: u16,
  dstPort: u16,
  seq: u32,
  ack: u32,
  flags: u8,
  window: u16,
  urgent: u16,
  options: optsArb,
  payload: fc.uint8Array({ maxLength: 100 }),
});

test('property: parse(build(seg)) == seg, checksum verified', () => {
  fc.assert(
    fc.property(segArb, u32, u32, (seg, src, dst) => {
      const b = buildTcp(seg, { src, dst });
      const s = parseTcp(b, { src, dst });
      assert.equal(s.srcPort, seg.srcPort);
      assert.equal(s.dstPort, seg.dstPort);
      assert.equal(s.seq, seg.seq);
      assert.equal(s.ack, seg.ack);
      assert.equal(s.flags, seg.flags);
      assert.equal(s.window, seg.window);
      assert.equal(s.urgent, seg.urgent);
      assert.equal(s.headerLength, tcpHeaderLength(seg));
      assert.deepEqual(s.options, normalized(seg.options));
      assert.deepEqual(s.payload, seg.payload);
      assert.equal(tcpChecksumOk(b, { src, dst }), true);
    }),
    { numRuns: 500 },
  );
});

test('property: random and mutated segments and option areas only throw WireError', () => {
  const valid = segArb.map((s) => buildTcp(s, { src: 1, dst: 2 }));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutated(valid)), fc.boolean(), (b, withPseudo) => {
      onlyWireError(() => parseTcp(b, withPseudo ? { src: 1, dst: 2 } : undefined), b.length);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (area) => {
      onlyWireError(() => parseTcpOptionsInto(area, 0, area.length, emptyTcpOptions()), area.length);
    }),
    { numRuns: 3000 },
  );
});
