import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import {
  EARLY_NEG_FLAG_RESEND_WKC,
  Opcode,
  byte0,
  controlPacketLength,
  dataV2HeaderWord,
  decodeControlPacket,
  encodeControlPacket,
  encodeEarlyNegFlags,
  keyIdOf,
  opcodeName,
  opcodeOf,
  parseEarlyNegotiation,
  readDataHeader,
  writeDataV1Header,
  writeDataV2Header,
  type ControlPacket,
} from '../../../src/wire/openvpn.js';

const sidC = Buffer.from('0102030405060708', 'hex');
const sidS = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');

describe('byte0', () => {
  test('packs opcode and key id as in the reference table', () => {
    assert.equal(byte0(Opcode.P_CONTROL_HARD_RESET_CLIENT_V2, 0), 0x38);
    assert.equal(byte0(Opcode.P_CONTROL_HARD_RESET_SERVER_V2, 0), 0x40);
    assert.equal(byte0(Opcode.P_CONTROL_V1, 3), 0x23);
    assert.equal(byte0(Opcode.P_ACK_V1, 0), 0x28);
    assert.equal(byte0(Opcode.P_DATA_V2, 7), 0x4f);
    assert.equal(byte0(Opcode.P_CONTROL_HARD_RESET_CLIENT_V3, 0), 0x50);
    assert.equal(byte0(Opcode.P_CONTROL_WKC_V1, 1), 0x59);
    assert.equal(opcodeOf(0x4f), Opcode.P_DATA_V2);
    assert.equal(keyIdOf(0x4f), 7);
    assert.equal(opcodeName(4), 'P_CONTROL_V1');
    assert.equal(opcodeName(30), 'opcode 30');
  });
});

describe('control packet codec', () => {
  test('client hard reset is 14 bytes: 0x38 | sid | 00 | 00000000', () => {
    const pkt: ControlPacket = {
      opcode: Opcode.P_CONTROL_HARD_RESET_CLIENT_V2,
      keyId: 0,
      sessionId: sidC,
      acks: [],
      messageId: 0,
      payload: Buffer.alloc(0),
    };
    const b = encodeControlPacket(pkt);
    assert.equal(b.toString('hex'), '38' + '0102030405060708' + '00' + '00000000');
    const d = decodeControlPacket(b);
    assert.equal(d.opcode, Opcode.P_CONTROL_HARD_RESET_CLIENT_V2);
    assert.equal(d.remoteSessionId, undefined);
    assert.equal(d.messageId, 0);
    assert.equal(d.payload.length, 0);
  });

  test('server reset answering it is 26 bytes, 32 with the early-negotiation TLV', () => {
    const pkt: ControlPacket = {
      opcode: Opcode.P_CONTROL_HARD_RESET_SERVER_V2,
      keyId: 0,
      sessionId: sidS,
      acks: [0],
      remoteSessionId: sidC,
      messageId: 0,
      payload: Buffer.alloc(0),
    };
    const b = encodeControlPacket(pkt);
    assert.equal(b.length, 26);
    assert.equal(b.toString('hex'), '40' + 'a1a2a3a4a5a6a7a8' + '01' + '00000000' + '0102030405060708' + '00000000');
    const withTlv = encodeControlPacket({ ...pkt, payload: encodeEarlyNegFlags(EARLY_NEG_FLAG_RESEND_WKC) });
    assert.equal(withTlv.length, 32);
    assert.equal(withTlv.subarray(26).toString('hex'), '000100020001');
    const d = decodeControlPacket(withTlv);
    assert.deepEqual(d.acks, [0]);
    assert.ok(d.remoteSessionId!.equals(sidC));
    const en = parseEarlyNegotiation(d.payload);
    assert.equal(en.resendWkc, true);
    assert.equal(en.flags, 1);
  });

  test('ACK ids are 4 bytes each, P_ACK_V1 has no message id', () => {
    const pkt: ControlPacket = {
      opcode: Opcode.P_ACK_V1,
      keyId: 2,
      sessionId: sidC,
      acks: [1, 0xfffffffe, 7],
      remoteSessionId: sidS,
      payload: Buffer.alloc(0),
    };
    const b = encodeControlPacket(pkt);
    assert.equal(b.length, 1 + 8 + 1 + 12 + 8);
    assert.equal(controlPacketLength(pkt), b.length);
    const d = decodeControlPacket(b);
    assert.equal(d.keyId, 2);
    assert.deepEqual(d.acks, [1, 0xfffffffe, 7]);
    assert.equal(d.messageId, undefined);
  });

  test('P_CONTROL_V1 round trip with payload', () => {
    const pkt: ControlPacket = {
      opcode: Opcode.P_CONTROL_V1,
      keyId: 0,
      sessionId: sidC,
      acks: [0, 1, 2, 3],
      remoteSessionId: sidS,
      messageId: 0x01020304,
      payload: Buffer.from('hello tls'),
    };
    const b = encodeControlPacket(pkt);
    const d = decodeControlPacket(b);
    assert.deepEqual({ ...d, sessionId: [...d.sessionId], remoteSessionId: [...d.remoteSessionId!] }, {
      ...pkt,
      sessionId: [...sidC],
      remoteSessionId: [...sidS],
    });
  });

  test('decode rejects bad input with WireError', () => {
    const good = encodeControlPacket({
      opcode: Opcode.P_CONTROL_V1,
      keyId: 0,
      sessionId: sidC,
      acks: [5],
      remoteSessionId: sidS,
      messageId: 9,
      payload: Buffer.alloc(0),
    });
    // truncated anywhere inside the header
    for (let n = 0; n < good.length; n++) {
      assert.throws(() => decodeControlPacket(good.subarray(0, n)), WireError, `length ${n}`);
    }
    // more than 8 ACKs
    const nine = Buffer.concat([Buffer.from([0x20]), sidC, Buffer.from([9]), Buffer.alloc(9 * 4 + 8 + 4)]);
    assert.throws(() => decodeControlPacket(nine), (e: unknown) => e instanceof WireError && e.field === 'ackCount');
    // data opcodes and obsolete V1 resets are not control packets
    for (const op of [Opcode.P_DATA_V1, Opcode.P_DATA_V2, Opcode.P_CONTROL_HARD_RESET_CLIENT_V1, 0, 12, 31]) {
      const b = Buffer.from(good);
      b[0] = byte0(op, 0);
      assert.throws(() => decodeControlPacket(b), WireError, `opcode ${op}`);
    }
  });

  test('encode refuses inconsistent packets', () => {
    const base: ControlPacket = { opcode: Opcode.P_CONTROL_V1, keyId: 0, sessionId: sidC, acks: [], messageId: 1, payload: Buffer.alloc(0) };
    assert.throws(() => encodeControlPacket({ ...base, acks: [1] })); // ACK without remote sid
    assert.throws(() => encodeControlPacket({ ...base, acks: [0, 1, 2, 3, 4, 5, 6, 7, 8], remoteSessionId: sidS }));
    assert.throws(() => encodeControlPacket({ ...base, messageId: undefined }));
    assert.throws(() => encodeControlPacket({ ...base, sessionId: Buffer.alloc(4) }));
  });

  test('property: decode(encode(p)) == p', () => {
    const sid = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a));
    const opcodes = [3, 4, 5, 7, 8, 10, 11];
    fc.assert(
      fc.property(
        fc.constantFrom(...opcodes),
        fc.integer({ min: 0, max: 7 }),
        sid,
        sid,
        fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 8 }),
        fc.nat({ max: 0xffffffff }),
        fc.uint8Array({ maxLength: 300 }),
        (opcode, keyId, s, r, acks, messageId, payload) => {
          const isAck = opcode === Opcode.P_ACK_V1;
          const pkt: ControlPacket = { opcode, keyId, sessionId: s, acks, payload: isAck ? Buffer.alloc(0) : Buffer.from(payload) };
          if (acks.length) pkt.remoteSessionId = r;
          if (!isAck) pkt.messageId = messageId;
          const d = decodeControlPacket(encodeControlPacket(pkt));
          assert.equal(d.opcode, opcode);
          assert.equal(d.keyId, keyId);
          assert.ok(d.sessionId.equals(s));
          assert.deepEqual(d.acks, acks);
          assert.equal(d.remoteSessionId === undefined, acks.length === 0);
          if (acks.length) assert.ok(d.remoteSessionId!.equals(r));
          assert.equal(d.messageId, isAck ? undefined : messageId);
          assert.ok(d.payload.equals(pkt.payload));
        },
      ),
    );
  });

  test('property: decoders throw nothing but WireError on random and mutated bytes', () => {
    const valid = encodeControlPacket({
      opcode: Opcode.P_CONTROL_V1,
      keyId: 1,
      sessionId: sidC,
      acks: [1, 2],
      remoteSessionId: sidS,
      messageId: 3,
      payload: Buffer.from('abc'),
    });
    const onlyWire = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
      }
    };
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 120 }),
      fc
        .tuple(fc.nat({ max: valid.length - 1 }), fc.nat({ max: 255 }), fc.nat({ max: valid.length }))
        .map(([i, v, cut]) => {
          const b = Buffer.from(valid);
          b[i] = v;
          return b.subarray(0, cut);
        }),
    );
    fc.assert(
      fc.property(inputs, (bytes) => {
        const b = Buffer.from(bytes);
        onlyWire(() => decodeControlPacket(b));
        onlyWire(() => parseEarlyNegotiation(b));
        onlyWire(() => readDataHeader(b));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('early negotiation TLVs', () => {
  test('unknown types are skipped, flags are read', () => {
    const p = Buffer.concat([Buffer.from('7777000361626300010002', 'hex'), Buffer.from('0001', 'hex')]);
    const en = parseEarlyNegotiation(p);
    assert.equal(en.tlvs.length, 2);
    assert.equal(en.tlvs[0]!.type, 0x7777);
    assert.equal(en.tlvs[0]!.value.toString(), 'abc');
    assert.equal(en.resendWkc, true);
  });
  test('empty payload: no flags', () => {
    assert.deepEqual(parseEarlyNegotiation(Buffer.alloc(0)), { flags: 0, resendWkc: false, tlvs: [] });
  });
  test('flags 0 means no WKc resend', () => {
    assert.equal(parseEarlyNegotiation(encodeEarlyNegFlags(0)).resendWkc, false);
  });
  test('malformed: short header, overlong value, wrong flags length', () => {
    assert.throws(() => parseEarlyNegotiation(Buffer.from('000100', 'hex')), WireError);
    assert.throws(() => parseEarlyNegotiation(Buffer.from('0005000400', 'hex')), WireError);
    assert.throws(() => parseEarlyNegotiation(Buffer.from('00010001ff', 'hex')), WireError);
  });
});

describe('data headers', () => {
  test('P_DATA_V1: one byte', () => {
    const b = Buffer.alloc(5);
    assert.equal(writeDataV1Header(b, 0, 2), 1);
    assert.equal(b[0], 0x32);
    assert.deepEqual(readDataHeader(b), { opcode: Opcode.P_DATA_V1, keyId: 2, headerLength: 1 });
  });
  test('P_DATA_V2: byte0 + 24-bit peer id', () => {
    const b = Buffer.alloc(8);
    assert.equal(writeDataV2Header(b, 1, 1, 0x123456), 4);
    assert.equal(b.subarray(1, 5).toString('hex'), '49123456');
    assert.deepEqual(readDataHeader(b, 1), { opcode: Opcode.P_DATA_V2, keyId: 1, peerId: 0x123456, headerLength: 4 });
    assert.equal(dataV2HeaderWord(1, 0x123456), 0x49123456);
    assert.throws(() => readDataHeader(b.subarray(0, 3), 1), WireError);
    assert.throws(() => readDataHeader(Buffer.from([0x20])), WireError);
  });
});
