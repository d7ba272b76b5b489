import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import {
  DhGroup,
  EncrId,
  IkeExchange,
  IkeFlags,
  NotifyType,
  PayloadType,
  TransformType,
  authMethodName,
  exchangeName,
  flagsName,
  notifyName,
  payloadName,
  transformIdName,
} from '../../../src/wire/ike-constants.js';
import {
  IKE_HEADER_LENGTH,
  buildIkeMessage,
  buildInnerPayloads,
  buildPayloadChain,
  describePayloads,
  firstPayloadType,
  isFromInitiator,
  isResponse,
  parseIkeHeader,
  parseIkeMessage,
  parseInnerPayloads,
  parsePayloadChain,
  payloadsOfType,
  type IkePayload,
} from '../../../src/wire/ike.js';
import { hex, mutated, onlyWireError, u32, u8 } from './helpers.js';

const KAT = JSON.parse(readFileSync(new URL('../../fixtures/ike/kat-ikev2-psk-modp2048.json', import.meta.url), 'utf8')) as {
  inputs: Record<string, string>;
};
const REQUEST = hex(KAT.inputs.IKE_SA_INIT_request!);
const RESPONSE = hex(KAT.inputs.IKE_SA_INIT_response!);
const wireErr = (field: string) => (e: unknown) => e instanceof WireError && e.field === field;
const N = PayloadType.NOTIFY;

test('KAT: IKE_SA_INIT request header and payload chain; rebuild is byte-identical', () => {
  const m = parseIkeMessage(REQUEST);
  assert.deepEqual(m.header.spiI, hex(KAT.inputs.SPIi!));
  assert.deepEqual(m.header.spiR, new Uint8Array(8));
  assert.equal(m.header.nextPayload, PayloadType.SA);
  assert.equal(m.header.version, 0x20);
  assert.equal(m.header.exchange, IkeExchange.IKE_SA_INIT);
  assert.equal(m.header.flags, IkeFlags.INITIATOR);
  assert.equal(m.header.messageId, 0);
  assert.equal(m.header.length, 464);
  assert.ok(isFromInitiator(m.header) && !isResponse(m.header));
  assert.deepEqual(m.payloads.map((p) => p.type), [PayloadType.SA, PayloadType.KE, PayloadType.NONCE, N, N, N, N, N]);
  assert.ok(m.payloads.every((p) => !p.critical && p.innerNext === undefined));
  assert.deepEqual(m.payloads[2]!.body, hex(KAT.inputs.Ni!));
  assert.equal(m.payloads[1]!.body.length, 4 + 256);
  assert.deepEqual(buildIkeMessage(m), REQUEST);
  assert.equal(
    describePayloads(m.payloads),
    'SA KE NONCE N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP) N(IKEV2_FRAGMENTATION_SUPPORTED) N(SIGNATURE_HASH_ALGORITHMS) N(REDIRECT_SUPPORTED)',
  );
});

test('KAT: IKE_SA_INIT response header and payload chain; rebuild is byte-identical', () => {
  const m = parseIkeMessage(RESPONSE);
  assert.deepEqual(m.header.spiI, hex(KAT.inputs.SPIi!));
  assert.deepEqual(m.header.spiR, hex(KAT.inputs.SPIr!));
  assert.equal(m.header.exchange, IkeExchange.IKE_SA_INIT);
  assert.equal(m.header.flags, IkeFlags.RESPONSE);
  assert.ok(isResponse(m.header) && !isFromInitiator(m.header));
  assert.equal(m.header.messageId, 0);
  assert.equal(m.header.length, RESPONSE.length);
  assert.deepEqual(m.payloads.map((p) => p.type), [PayloadType.SA, PayloadType.KE, PayloadType.NONCE, N, N, PayloadType.CERTREQ, N, N, N, N]);
  assert.deepEqual(payloadsOfType(m.payloads, PayloadType.NONCE)[0]!.body, hex(KAT.inputs.Nr!));
  assert.deepEqual(buildIkeMessage(m), RESPONSE);
  assert.deepEqual(buildPayloadChain(m.payloads), RESPONSE.subarray(IKE_HEADER_LENGTH));
  assert.deepEqual(parsePayloadChain(RESPONSE, m.header.nextPayload, IKE_HEADER_LENGTH), m.payloads);
  assert.deepEqual(parseIkeHeader(RESPONSE), m.header);
});

test('header: version, length and flags checks', () => {
  const b = Uint8Array.from(REQUEST);
  b[17] = 0x10;
  assert.throws(() => parseIkeMessage(b), (e: unknown) => wireErr('version')(e) && (e as WireError).offset === 17);
  b[17] = 0x30;
  assert.throws(() => parseIkeHeader(b), wireErr('version'));
  b[17] = 0x21; // a higher minor version is accepted and kept
  assert.equal(parseIkeMessage(b).header.version, 0x21);
  assert.deepEqual(buildIkeMessage(parseIkeMessage(b)), b);
  assert.throws(() => parseIkeHeader(REQUEST.subarray(0, 27)), wireErr('length'));
  assert.throws(() => parseIkeMessage(REQUEST.subarray(0, 463)), (e: unknown) => wireErr('length')(e) && (e as WireError).offset === 24);
  assert.throws(() => parseIkeMessage(Uint8Array.of(...REQUEST, 0)), wireErr('length'));
  const short = Uint8Array.from(REQUEST);
  short.set([0, 0, 0, 27], 24);
  assert.throws(() => parseIkeHeader(short), wireErr('length'));
  assert.equal(flagsName(0x28), 'I|R');
  assert.equal(flagsName(0x11), 'V|0x1');
});

test('payload chain errors', () => {
  const hdr = (next: number, len: number) => {
    const h = new Uint8Array(IKE_HEADER_LENGTH);
    h.set(hex(KAT.inputs.SPIi!), 0);
    h[16] = next;
    h[17] = 0x20;
    h[18] = 37;
    h.set([len >>> 24, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff], 24);
    return h;
  };
  const msg = (next: number, rest: string) => {
    const r = hex(rest);
    return Uint8Array.of(...hdr(next, IKE_HEADER_LENGTH + r.length), ...r);
  };
  assert.deepEqual(parseIkeMessage(msg(0, '')).payloads, []);
  assert.throws(() => parseIkeMessage(msg(0, '00000004')), wireErr('payload.next'));
  assert.throws(() => parseIkeMessage(msg(43, '00000003')), wireErr('payload.length'));
  assert.throws(() => parseIkeMessage(msg(43, '00000009 aabbcc')), wireErr('payload.length'));
  assert.throws(() => parseIkeMessage(msg(43, '2b000004')), wireErr('payload.length'), 'next payload promised, nothing left');
  assert.throws(() => parseIkeMessage(msg(43, '2b00')), wireErr('payload.length'));
  // critical bit kept; reserved bits ignored
  const v = parseIkeMessage(msg(43, '00ff0005 77'));
  assert.deepEqual(v.payloads, [{ type: 43, critical: true, body: hex('77') }]);
  // SK: body raw, innerNext from its Next Payload, must be last
  const sk = parseIkeMessage(msg(43, '2e000005 01 23000006 abcd'));
  assert.deepEqual(sk.payloads, [
    { type: 43, critical: false, body: hex('01') },
    { type: PayloadType.SK, critical: false, body: hex('abcd'), innerNext: PayloadType.IDi },
  ]);
  assert.deepEqual(buildIkeMessage(sk), msg(43, '2e000005 01 23000006 abcd'));
  assert.throws(() => parseIkeMessage(msg(46, '23000006 abcd 2b000004')), wireErr('payload.next'));
  const skf = parseIkeMessage(msg(53, '00000008 00010002'));
  assert.deepEqual(skf.payloads, [{ type: PayloadType.SKF, critical: false, body: hex('00010002'), innerNext: 0 }]);
  assert.equal(describePayloads(skf.payloads), 'SKF(1/2)');
  assert.equal(describePayloads([{ type: 53, critical: false, body: hex('0000') }]), 'SKF(malformed)');
  assert.throws(() => parsePayloadChain(REQUEST, 33, 10, 5), wireErr('payload'));
});

test('inner payloads of a decrypted SK', () => {
  const inner: IkePayload[] = [
    { type: PayloadType.IDi, critical: false, body: hex(KAT.inputs.IDi_body!) },
    { type: PayloadType.AUTH, critical: false, body: hex('02000000 0102') },
    { type: N, critical: false, body: hex('00004000') },
  ];
  const { first, bytes } = buildInnerPayloads(inner);
  assert.equal(first, PayloadType.IDi);
  assert.deepEqual(parseInnerPayloads(bytes, first), inner);
  assert.deepEqual(parseInnerPayloads(new Uint8Array(0), 0), []);
  assert.deepEqual(buildInnerPayloads([]), { first: 0, bytes: new Uint8Array(0) });
  assert.throws(() => parseInnerPayloads(hex('00000004'), PayloadType.SK), wireErr('payload.type'));
  assert.throws(() => buildInnerPayloads([{ type: PayloadType.SK, critical: false, body: new Uint8Array(0) }]), wireErr('payload.type'));
  // a whole IKE_AUTH shape: HDR, SK{...}; the SK body is the last bytes of the message
  const header = { spiI: hex(KAT.inputs.SPIi!), spiR: hex(KAT.inputs.SPIr!), exchange: IkeExchange.IKE_AUTH, flags: IkeFlags.INITIATOR, messageId: 1 };
  const body = new Uint8Array(40).fill(7);
  const out = buildIkeMessage({ header, payloads: [{ type: PayloadType.SK, critical: false, body, innerNext: first }] });
  assert.deepEqual(out.subarray(out.length - body.length), body);
  assert.deepEqual(out.subarray(28, 32), Uint8Array.of(PayloadType.IDi, 0, 0, 44));
  assert.equal(parseIkeMessage(out).payloads[0]!.innerNext, PayloadType.IDi);
});

test('builder errors', () => {
  const header = { spiI: new Uint8Array(8), spiR: new Uint8Array(8), exchange: 37, flags: 0, messageId: 0 };
  const sk: IkePayload = { type: PayloadType.SK, critical: false, body: new Uint8Array(0) };
  const v: IkePayload = { type: PayloadType.VENDOR, critical: false, body: new Uint8Array(0) };
  assert.throws(() => buildIkeMessage({ header: { ...header, spiI: new Uint8Array(7) }, payloads: [] }), wireErr('spiI'));
  assert.throws(() => buildIkeMessage({ header: { ...header, spiR: new Uint8Array(9) }, payloads: [] }), wireErr('spiR'));
  assert.throws(() => buildIkeMessage({ header: { ...header, version: 0x10 }, payloads: [] }), wireErr('version'));
  assert.throws(() => buildIkeMessage({ header: { ...header, messageId: 2 ** 32 }, payloads: [] }), wireErr('messageId'));
  assert.throws(() => buildIkeMessage({ header: { ...header, flags: 256 }, payloads: [] }), wireErr('flags'));
  assert.throws(() => buildIkeMessage({ header, payloads: [sk, v] }), wireErr('payload.next'));
  assert.throws(() => buildIkeMessage({ header, payloads: [{ ...v, body: new Uint8Array(65532) }] }), wireErr('payload.length'));
  assert.throws(() => buildIkeMessage({ header, payloads: [{ ...v, type: 300 }] }), wireErr('payload.type'));
  assert.equal(buildIkeMessage({ header, payloads: [{ ...v, body: new Uint8Array(65531) }] }).length, 28 + 65535);
  assert.equal(firstPayloadType([]), 0);
});

test('constant names for logs', () => {
  assert.equal(exchangeName(34), 'IKE_SA_INIT');
  assert.equal(exchangeName(99), 'UNKNOWN(99)');
  assert.equal(payloadName(40), 'NONCE');
  assert.equal(notifyName(NotifyType.AUTHENTICATION_FAILED), 'AUTHENTICATION_FAILED');
  assert.equal(notifyName(16430), 'IKEV2_FRAGMENTATION_SUPPORTED');
  assert.equal(transformIdName(TransformType.ENCR, EncrId.AES_GCM_16), 'AES_GCM_16');
  assert.equal(transformIdName(TransformType.DH, DhGroup.CURVE25519), 'CURVE25519');
  assert.equal(transformIdName(9, 1), 'UNKNOWN(1)');
  assert.equal(authMethodName(14), 'DIGITAL_SIGNATURE');
});

// ---------------------------------------------------------------- properties

/** fc.record, as plain objects (fast-check may build null-prototype objects, which deepStrictEqual tells apart). */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model).map((r) => ({ ...r }) as T);
}

const payloadArb: fc.Arbitrary<IkePayload> = rec({
  type: u8.filter((t) => t !== 0 && t !== PayloadType.SK && t !== PayloadType.SKF),
  critical: fc.boolean(),
  body: fc.uint8Array({ maxLength: 40 }),
});
const encryptedArb: fc.Arbitrary<IkePayload> = rec({
  type: fc.constantFrom<number>(PayloadType.SK, PayloadType.SKF),
  critical: fc.boolean(),
  body: fc.uint8Array({ maxLength: 60 }),
  innerNext: u8,
});
const messageArb = rec({
  header: rec({
    spiI: fc.uint8Array({ minLength: 8, maxLength: 8 }),
    spiR: fc.uint8Array({ minLength: 8, maxLength: 8 }),
    version: fc.integer({ min: 0x20, max: 0x2f }),
    exchange: u8,
    flags: u8,
    messageId: u32,
  }),
  payloads: fc.tuple(fc.array(payloadArb, { maxLength: 6 }), fc.option(encryptedArb, { nil: undefined })).map(([ps, e]) => (e ? [...ps, e] : ps)),
});

test('property: parse(build(m)) == m and the header fields survive', () => {
  fc.assert(
    fc.property(messageArb, (m) => {
      const b = buildIkeMessage(m);
      const p = parseIkeMessage(b);
      assert.deepEqual(p.payloads, m.payloads);
      assert.deepEqual({ ...p.header, nextPayload: undefined, length: undefined }, { ...m.header, nextPayload: undefined, length: undefined });
      assert.equal(p.header.length, b.length);
      assert.equal(p.header.nextPayload, firstPayloadType(m.payloads));
      assert.deepEqual(buildIkeMessage(p), b);
    }),
    { numRuns: 500 },
  );
});

test('property: inner chains round-trip', () => {
  fc.assert(
    fc.property(fc.array(payloadArb, { maxLength: 8 }), (ps) => {
      const { first, bytes } = buildInnerPayloads(ps);
      assert.deepEqual(parseInnerPayloads(bytes, first), ps);
    }),
  );
});

test('property: random and mutated messages only throw WireError', () => {
  const valid = fc.oneof(fc.constantFrom(REQUEST, RESPONSE), messageArb.map(buildIkeMessage));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutated(valid)), u8, (b, first) => {
      onlyWireError(() => parseIkeHeader(b), b.length);
      onlyWireError(() => parsePayloadChain(b, first), b.length);
      onlyWireError(() => parseInnerPayloads(b, first), b.length);
      onlyWireError(() => {
        const m = parseIkeMessage(b);
        describePayloads(m.payloads);
        assert.deepEqual(parseIkeMessage(buildIkeMessage(m)).payloads, m.payloads);
      }, b.length);
    }),
    { numRuns: 2000 },
  );
});
