import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import {
  AuthMethod,
  CertEncoding,
  CpAttr,
  CpType,
  DhGroup,
  EncrId,
  IdType,
  IntegId,
  NotifyType,
  PayloadType,
  PrfId,
  ProtocolId,
  TransformType,
  TsType,
} from '../../../src/wire/ike-constants.js';
import { decodePayload, parseIkeMessage, type IkePayload } from '../../../src/wire/ike.js';
import {
  buildAuth,
  buildCert,
  buildCp,
  buildDelete,
  buildEap,
  buildId,
  buildKe,
  buildNonce,
  buildNotify,
  buildSa,
  buildSignatureAuthData,
  buildSkf,
  buildTs,
  buildVendor,
  certreqAuthorities,
  keyLengthAttribute,
  parseAuth,
  parseCert,
  parseCp,
  parseDelete,
  parseEap,
  parseHashAlgorithms,
  parseId,
  parseKe,
  parseNonce,
  parseNotify,
  parseSa,
  parseSignatureAuthData,
  parseSkf,
  parseTs,
  parseVendor,
  transformKeyLength,
  type Proposal,
  type TrafficSelector,
} from '../../../src/wire/ike-payloads.js';
import { hex, mutated, onlyWireError, u16, u8 } from './helpers.js';

const KAT = JSON.parse(readFileSync(new URL('../../fixtures/ike/kat-ikev2-psk-modp2048.json', import.meta.url), 'utf8')) as {
  inputs: Record<string, string>;
};
const request = parseIkeMessage(hex(KAT.inputs.IKE_SA_INIT_request!));
const response = parseIkeMessage(hex(KAT.inputs.IKE_SA_INIT_response!));
const only = (ps: IkePayload[], type: number): IkePayload[] => ps.filter((p) => p.type === type);
const wireErr = (field: string) => (e: unknown) => e instanceof WireError && e.field === field;

// strongSwan's aes128-sha256-modp2048 offer (the reference's annotated bytes).
const KAT_PROPOSAL: Proposal = {
  number: 1,
  protocol: ProtocolId.IKE,
  spi: new Uint8Array(0),
  transforms: [
    { type: TransformType.ENCR, id: EncrId.AES_CBC, attributes: [keyLengthAttribute(128)] },
    { type: TransformType.INTEG, id: IntegId.HMAC_SHA2_256_128, attributes: [] },
    { type: TransformType.PRF, id: PrfId.HMAC_SHA2_256, attributes: [] },
    { type: TransformType.DH, id: DhGroup.MODP_2048, attributes: [] },
  ],
};

test('KAT: SA payloads decode to aes128-sha256-modp2048 and rebuild byte-identical', () => {
  for (const m of [request, response]) {
    const [sa] = only(m.payloads, PayloadType.SA);
    const proposals = parseSa(sa!.body);
    assert.deepEqual(proposals, [KAT_PROPOSAL]);
    assert.equal(transformKeyLength(proposals[0]!.transforms[0]!), 128);
    assert.equal(transformKeyLength(proposals[0]!.transforms[1]!), undefined);
    assert.deepEqual(buildSa(proposals), sa!.body);
    assert.deepEqual(buildSa([KAT_PROPOSAL]), hex('0000002c 01010004 0300000c 0100000c 800e0080 03000008 0300000c 03000008 02000005 00000008 0400000e'));
  }
});

test('KAT: KE is group 14 with 256 bytes, nonces are Ni/Nr, both rebuild', () => {
  for (const [m, nonce] of [[request, KAT.inputs.Ni!], [response, KAT.inputs.Nr!]] as const) {
    const [ke] = only(m.payloads, PayloadType.KE);
    const k = parseKe(ke!.body);
    assert.equal(k.group, DhGroup.MODP_2048);
    assert.equal(k.data.length, 256);
    assert.deepEqual(buildKe(k), ke!.body);
    const [no] = only(m.payloads, PayloadType.NONCE);
    assert.deepEqual(parseNonce(no!.body), hex(nonce));
    assert.deepEqual(buildNonce(hex(nonce)), no!.body);
  }
  // the two KE values differ and the DH transform agrees with the KE group
  assert.notDeepEqual(parseKe(only(request.payloads, PayloadType.KE)[0]!.body).data, parseKe(only(response.payloads, PayloadType.KE)[0]!.body).data);
});

test('KAT: notifies and CERTREQ decode and rebuild', () => {
  const types = (m: typeof request) => only(m.payloads, PayloadType.NOTIFY).map((p) => parseNotify(p.body).type);
  assert.deepEqual(types(request), [
    NotifyType.NAT_DETECTION_SOURCE_IP,
    NotifyType.NAT_DETECTION_DESTINATION_IP,
    NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,
    NotifyType.SIGNATURE_HASH_ALGORITHMS,
    NotifyType.REDIRECT_SUPPORTED,
  ]);
  assert.deepEqual(types(response).slice(-2), [NotifyType.CHILDLESS_IKEV2_SUPPORTED, NotifyType.MULTIPLE_AUTH_SUPPORTED]);
  for (const m of [request, response]) {
    for (const p of only(m.payloads, PayloadType.NOTIFY)) {
      const n = parseNotify(p.body);
      assert.equal(n.protocol, 0);
      assert.equal(n.spi.length, 0);
      if (n.type === NotifyType.NAT_DETECTION_SOURCE_IP || n.type === NotifyType.NAT_DETECTION_DESTINATION_IP) assert.equal(n.data.length, 20);
      if (n.type === NotifyType.SIGNATURE_HASH_ALGORITHMS) assert.deepEqual(parseHashAlgorithms(n.data), [2, 3, 4, 5]);
      if (n.type === NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) assert.equal(n.data.length, 0);
      assert.deepEqual(buildNotify(n), p.body);
    }
  }
  const [cr] = only(response.payloads, PayloadType.CERTREQ);
  const c = parseCert(cr!.body);
  assert.equal(c.encoding, CertEncoding.X509_SIGNATURE);
  assert.deepEqual(certreqAuthorities(c.data), [hex('c9ce9e1f6ed5646022b9d6cd65bd2e9908b9b928')]);
  assert.deepEqual(buildCert(c), cr!.body);
});

test('KAT: IDi/IDr bodies are FQDNs', () => {
  for (const [body, name] of [[KAT.inputs.IDi_body!, 'client.lab'], [KAT.inputs.IDr_body!, 'server.lab']] as const) {
    const id = parseId(hex(body));
    assert.equal(id.type, IdType.FQDN);
    assert.equal(Buffer.from(id.data).toString('latin1'), name);
    assert.deepEqual(buildId(id), hex(body));
  }
});

test('SA errors: last flags, SPI size, transform count and lengths', () => {
  const good = buildSa([KAT_PROPOSAL]);
  const bad = (i: number, v: number) => {
    const b = Uint8Array.from(good);
    b[i] = v;
    return b;
  };
  assert.throws(() => parseSa(new Uint8Array(0)), wireErr('sa.proposal'));
  assert.throws(() => parseSa(bad(0, 2)), wireErr('sa.proposal.last'));
  assert.throws(() => parseSa(bad(0, 1)), wireErr('sa.proposal.last'));
  assert.throws(() => parseSa(bad(6, 3)), wireErr('sa.proposal.spiSize'));
  assert.throws(() => parseSa(bad(7, 3)), wireErr('sa.transform.last'));
  assert.throws(() => parseSa(bad(7, 5)), wireErr('sa.transform.last'));
  const extra = Uint8Array.of(...good, 0, 0, 0, 0);
  extra[3] = 48;
  assert.throws(() => parseSa(extra), wireErr('sa.proposal.numTransforms'));
  const fewer = Uint8Array.from(good.subarray(0, 36)); // three transforms, the third still says 'more'
  fewer[3] = 36;
  fewer[7] = 3;
  assert.throws(() => parseSa(fewer), wireErr('sa.transform.last'));
  assert.throws(() => parseSa(bad(8, 0)), wireErr('sa.transform.last'));
  assert.throws(() => parseSa(bad(36, 3)), wireErr('sa.transform.last'));
  assert.throws(() => parseSa(bad(3, 0x2d)), wireErr('sa.proposal.length'));
  assert.throws(() => parseSa(good.subarray(0, 40)), wireErr('sa.proposal.length'));
  // an ESP proposal with a 4-byte SPI and a TLV attribute round-trips
  const esp: Proposal = {
    number: 2,
    protocol: ProtocolId.ESP,
    spi: hex('c0ffee01'),
    transforms: [
      { type: TransformType.ENCR, id: EncrId.AES_GCM_16, attributes: [keyLengthAttribute(256), { type: 99, data: hex('0102') }] },
      { type: TransformType.ESN, id: 0, attributes: [] },
    ],
  };
  assert.deepEqual(parseSa(buildSa([KAT_PROPOSAL, esp])), [KAT_PROPOSAL, esp]);
  assert.equal(buildSa([KAT_PROPOSAL, esp])[0], 2, "first proposal says 'more'");
  assert.throws(() => buildSa([{ ...esp, spi: hex('010203') }]), WireError);
  assert.throws(() => buildSa([]), WireError);
});

test('small payload errors', () => {
  assert.throws(() => parseNonce(new Uint8Array(15)), wireErr('nonce.length'));
  assert.throws(() => parseNonce(new Uint8Array(257)), wireErr('nonce.length'));
  assert.equal(parseNonce(new Uint8Array(256)).length, 256);
  assert.throws(() => parseKe(hex('000e00')), wireErr('ke.group'));
  assert.throws(() => parseId(hex('020000')), WireError);
  assert.throws(() => parseCert(new Uint8Array(0)), WireError);
  assert.throws(() => certreqAuthorities(new Uint8Array(21)), wireErr('certreq.authority'));
  assert.throws(() => parseNotify(hex('03 04 4009 0102')), wireErr('notify.spiSize'));
  assert.deepEqual(parseNotify(hex('03 04 4009 01020304')), { protocol: 3, spi: hex('01020304'), type: NotifyType.REKEY_SA, data: new Uint8Array(0) });
  assert.throws(() => parseDelete(hex('03 04 0002 01020304')), wireErr('delete.count'));
  assert.throws(() => parseDelete(hex('01 00 0001')), wireErr('delete.count'));
  assert.deepEqual(parseDelete(hex('01 00 0000')), { protocol: 1, spiSize: 0, spis: [] });
  assert.throws(() => buildDelete({ protocol: 3, spiSize: 4, spis: [hex('01')] }), WireError);
  assert.throws(() => parseEap(hex('01 05 0006 01')), wireErr('eap.length'));
  assert.throws(() => parseEap(hex('01 05 0004')), wireErr('eap.type'));
  assert.deepEqual(parseEap(hex('03 05 0004')), hex('03050004'));
  assert.throws(() => parseSkf(hex('0000 0002')), wireErr('skf.fragmentNumber'));
  assert.throws(() => parseSkf(hex('0003 0002')), wireErr('skf.totalFragments'));
  assert.deepEqual(parseSkf(hex('0002 0002 aabb')), { fragmentNumber: 2, totalFragments: 2, data: hex('aabb') });
  assert.throws(() => buildSkf({ fragmentNumber: 0, totalFragments: 0, data: new Uint8Array(0) }), WireError);
  assert.throws(() => parseTs(hex('01000000 07 00 0010 0000ffff 00000000')), wireErr('ts.length'));
  assert.throws(() => parseTs(hex('01000000 07 00 0014 0000ffff 00000000 ffffffff')), wireErr('ts.length'));
  assert.throws(() => parseTs(hex('01000000 09 00 0010 0000ffff 00000000 ffffffff')), wireErr('ts.type'));
  assert.throws(() => parseTs(hex('02000000 07 00 0010 0000ffff 00000000 ffffffff')), WireError);
  assert.throws(() => parseTs(hex('00000000 07')), wireErr('ts.count'));
  assert.throws(() => parseCp(hex('01000000 0001 0004 0a00')), wireErr('cp.attribute.length'));
  assert.throws(() => parseCp(hex('01000000 0001')), wireErr('cp.attribute'));
});

test('TS and CP: the reference request and reply shapes', () => {
  const any: TrafficSelector = {
    type: TsType.IPV4_ADDR_RANGE,
    ipProtocol: 0,
    startPort: 0,
    endPort: 0xffff,
    startAddress: hex('00000000'),
    endAddress: hex('ffffffff'),
  };
  const ts = buildTs([any]);
  assert.deepEqual(ts, hex('01000000 07000010 0000ffff 00000000 ffffffff'));
  assert.deepEqual(parseTs(ts), [any]);
  const req = { type: CpType.REQUEST, attributes: [{ type: CpAttr.INTERNAL_IP4_ADDRESS, value: new Uint8Array(0) }, { type: CpAttr.INTERNAL_IP4_DNS, value: new Uint8Array(0) }] };
  assert.deepEqual(buildCp(req), hex('01000000 00010000 00030000'));
  const reply = parseCp(hex('02000000 00010004 0ac90001 80030004 0ac80035'));
  assert.deepEqual(reply, { type: CpType.REPLY, attributes: [{ type: 1, value: hex('0ac90001') }, { type: 3, value: hex('0ac80035') }] }, 'R bit ignored');
});

test('RFC 7427 signature AUTH data: split and rebuild', () => {
  const alg = hex('300a06082a8648ce3d040302'); // ecdsa-with-SHA256
  const sig = hex('3006020101020102');
  const data = buildSignatureAuthData({ algorithmId: alg, signature: sig });
  assert.deepEqual(data, hex('0c 300a06082a8648ce3d040302 3006020101020102'));
  assert.deepEqual(parseSignatureAuthData(data), { algorithmId: alg, signature: sig });
  const auth = parseAuth(buildAuth({ method: AuthMethod.DIGITAL_SIGNATURE, data }));
  assert.equal(auth.method, 14);
  assert.deepEqual(parseSignatureAuthData(auth.data).algorithmId, alg);
  const long = new Uint8Array(3 + 130);
  long.set([0x30, 0x81, 130]);
  assert.deepEqual(parseSignatureAuthData(Uint8Array.of(133, ...long)).algorithmId, long);
  assert.throws(() => parseSignatureAuthData(hex('0d 300a06082a8648ce3d040302')), wireErr('auth.algorithmId'));
  assert.throws(() => parseSignatureAuthData(hex('0b 300a06082a8648ce3d0403')), wireErr('auth.algorithmId'));
  assert.throws(() => parseSignatureAuthData(hex('02 0400')), wireErr('auth.algorithmId'));
  assert.throws(() => parseSignatureAuthData(new Uint8Array(0)), wireErr('auth.asn1Length'));
});

// ---------------------------------------------------------------- properties

/** fc.record, as plain objects (fast-check may build null-prototype objects, which deepStrictEqual tells apart). */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model).map((r) => ({ ...r }) as T);
}

const bytes = (max: number, min = 0) => fc.uint8Array({ minLength: min, maxLength: max });
const attrArb = fc.oneof(
  rec({ type: fc.integer({ min: 0, max: 0x7fff }), value: u16 }),
  rec({ type: fc.integer({ min: 0, max: 0x7fff }), data: bytes(6) }),
);
const transformArb = rec({ type: u8, id: u16, attributes: fc.array(attrArb, { maxLength: 3 }) });
const proposalArb: fc.Arbitrary<Proposal> = rec({
  number: u8,
  protocol: u8,
  spi: fc.constantFrom(0, 4, 8).chain((n) => bytes(n, n)),
  transforms: fc.array(transformArb, { maxLength: 6 }),
});
const tsArb: fc.Arbitrary<TrafficSelector> = fc
  .constantFrom(TsType.IPV4_ADDR_RANGE, TsType.IPV6_ADDR_RANGE)
  .chain((type) => {
    const n = type === TsType.IPV4_ADDR_RANGE ? 4 : 16;
    return rec({ type: fc.constant<number>(type), ipProtocol: u8, startPort: u16, endPort: u16, startAddress: bytes(n, n), endAddress: bytes(n, n) });
  });
const eapArb = fc
  .tuple(fc.integer({ min: 1, max: 6 }), u8, bytes(20))
  .map(([code, id, rest]) => {
    const body = code <= 2 && rest.length === 0 ? Uint8Array.of(1) : rest;
    return Uint8Array.of(code, id, (body.length + 4) >> 8, (body.length + 4) & 0xff, ...body);
  });
const skfArb = fc
  .integer({ min: 1, max: 0xffff })
  .chain((total) => rec({ fragmentNumber: fc.integer({ min: 1, max: total }), totalFragments: fc.constant(total), data: bytes(40) }));

/** [payload type, arbitrary value, build, parse] for every payload body codec. */
const codecs: Array<[number, fc.Arbitrary<any>, (v: any) => Uint8Array, (b: Uint8Array) => unknown]> = [
  [PayloadType.SA, fc.array(proposalArb, { minLength: 1, maxLength: 3 }), buildSa, parseSa],
  [PayloadType.KE, rec({ group: u16, data: bytes(64) }), buildKe, parseKe],
  [PayloadType.IDi, rec({ type: u8, data: bytes(30) }), buildId, parseId],
  [PayloadType.CERT, rec({ encoding: u8, data: bytes(40) }), buildCert, parseCert],
  [PayloadType.CERTREQ, rec({ encoding: u8, data: bytes(40) }), buildCert, parseCert],
  [PayloadType.AUTH, rec({ method: u8, data: bytes(40) }), buildAuth, parseAuth],
  [PayloadType.NONCE, bytes(256, 16), buildNonce, parseNonce],
  [PayloadType.NOTIFY, rec({ protocol: u8, spi: bytes(8), type: u16, data: bytes(30) }), buildNotify, parseNotify],
  [
    PayloadType.DELETE,
    fc.oneof(
      rec({ protocol: u8, spiSize: fc.constant(0), spis: fc.constant([]) }),
      fc.integer({ min: 1, max: 8 }).chain((n) => rec({ protocol: u8, spiSize: fc.constant(n), spis: fc.array(bytes(n, n), { maxLength: 5 }) })),
    ),
    buildDelete,
    parseDelete,
  ],
  [PayloadType.VENDOR, bytes(30), buildVendor, parseVendor],
  [PayloadType.TSi, fc.array(tsArb, { maxLength: 4 }), buildTs, parseTs],
  [PayloadType.CP, rec({ type: u8, attributes: fc.array(rec({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(17) }), { maxLength: 5 }) }), buildCp, parseCp],
  [PayloadType.EAP, eapArb, buildEap, parseEap],
  [PayloadType.SKF, skfArb, buildSkf, parseSkf],
];

test('property: parse(build(v)) == v and build(parse(b)) == b for every payload type', () => {
  for (const [, arb, build, parse] of codecs) {
    fc.assert(
      fc.property(arb, (v) => {
        const b = build(v);
        assert.deepEqual(parse(b), v);
        assert.deepEqual(build(parse(b)), b);
      }),
      { numRuns: 200 },
    );
  }
  fc.assert(
    fc.property(bytes(60), bytes(40), (alg, sig) => {
      const algorithmId = Uint8Array.of(0x30, alg.length, ...alg);
      assert.deepEqual(parseSignatureAuthData(buildSignatureAuthData({ algorithmId, signature: sig })), { algorithmId, signature: sig });
    }),
  );
});

test('property: decodePayload agrees with the body parsers', () => {
  for (const [type, arb, build, parse] of codecs) {
    fc.assert(
      fc.property(arb, (v) => {
        const body = build(v);
        const d = decodePayload({ type, critical: false, body, innerNext: 0 });
        assert.notEqual(d.kind, 'UNKNOWN');
        assert.ok(Object.values(d).some((x) => JSON.stringify(x) === JSON.stringify(parse(body))));
      }),
      { numRuns: 30 },
    );
  }
  assert.deepEqual(decodePayload({ type: 200, critical: true, body: hex('01') }), { kind: 'UNKNOWN', type: 200, critical: true, body: hex('01') });
});

test('property: random and mutated bodies only throw WireError from every parser', () => {
  const parsers = [...codecs.map((c) => c[3]), parseSignatureAuthData, certreqAuthorities, parseHashAlgorithms];
  const valid = fc.oneof(...codecs.map(([, arb, build]) => arb.map((v) => build(v))));
  fc.assert(
    fc.property(fc.oneof(bytes(80), mutated(valid)), (b) => {
      for (const parse of parsers) onlyWireError(() => parse(b), b.length);
      for (const [type] of codecs) onlyWireError(() => decodePayload({ type, critical: false, body: b }), b.length);
    }),
    { numRuns: 1500 },
  );
});
