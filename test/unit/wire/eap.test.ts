import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../../src/errors.js';
import { checkAuthenticatorResponse, mschapv2Client } from '../../../src/crypto/mschapv2.js';
import {
  EapCode,
  EapType,
  Mschapv2Error,
  buildEap,
  buildEapIdentityResponse,
  buildEapMschapv2,
  buildEapNak,
  buildEapNotificationResponse,
  buildMschapv2,
  mschapv2EapCode,
  parseEap,
  parseEapMschapv2,
  parseFailureMessage,
  parseMschapv2,
  parseSuccessMessage,
  type EapPacket,
  type Mschapv2Message,
} from '../../../src/wire/eap.js';
import { hex, mutated, onlyWireError, u8 } from './helpers.js';

const isWire = (field?: string, offset?: number) => (e: unknown) =>
  e instanceof WireError && (field === undefined || e.field === field) && (offset === undefined || e.offset === offset);

const txt = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'utf8'));

const AUTH_CHALLENGE = '5B5D7C7D7B3F2F3E3C2C602132262628';
const PEER_CHALLENGE = '21402324255E262A28295F2B3A337C7E';
const NT_RESPONSE = '82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF';
const AUTH_RESPONSE = 'S=407A5589115FD0D6209F510FE9C04566932CDA56';

// Laid out by hand from draft-kamath-pppext-eap-mschapv2-02 §2 (lengths: EAP 36, MS-Length 36 - 5 = 31),
// in the shape strongSwan's server sends (name "strongSwan", MS-CHAPv2-ID = EAP identifier).
const CHALLENGE = `01 2a 0024 1a  01 2a 001f 10 ${AUTH_CHALLENGE} ${Buffer.from('strongSwan').toString('hex')}`;
// EAP 5 + 4 + 1 + 49 + 4 = 63, MS-Length 58
const RESPONSE = `02 2a 003f 1a  02 2a 003a 31 ${PEER_CHALLENGE} 0000000000000000 ${NT_RESPONSE} 00 55736572`;
// strongSwan's Success Request: "S=<hex> M=Welcome2strongSwan" plus its NUL (42 + 21 + 1 = 64 bytes of message)
const SUCCESS_MSG = `${AUTH_RESPONSE} M=Welcome2strongSwan\0`;
const SUCCESS = `01 2b 0049 1a  03 2a 0044 ${Buffer.from(SUCCESS_MSG, 'latin1').toString('hex')}`;
const SUCCESS_RESPONSE = '02 2b 0006 1a 03';
// strongSwan's retry Failure Request: "E=691 R=1 C=<32 hex>", no NUL, no V= / M=
const FAILURE_MSG = `E=691 R=1 C=${PEER_CHALLENGE}`;
const FAILURE = `01 2c 0035 1a  04 2b 0030 ${Buffer.from(FAILURE_MSG, 'latin1').toString('hex')}`;
const FAILURE_RESPONSE = '02 2c 0006 1a 04';

test('EAP header: Success/Failure, Identity, Notification, Nak', () => {
  assert.deepEqual(parseEap(hex('03 2b 0004')), { code: EapCode.Success, identifier: 0x2b });
  assert.deepEqual(parseEap(hex('04 07 0004')), { code: EapCode.Failure, identifier: 7 });
  assert.deepEqual(buildEap({ code: EapCode.Failure, identifier: 7 }), hex('04 07 0004'));
  const idReq = parseEap(hex('01 00 0005 01'));
  assert.deepEqual(idReq, { code: EapCode.Request, identifier: 0, type: EapType.Identity, data: new Uint8Array(0) });
  assert.deepEqual(buildEapIdentityResponse(0, 'User'), hex('02 00 0009 01 55736572'));
  assert.deepEqual(buildEapNotificationResponse(9), hex('02 09 0005 02'));
  assert.deepEqual(buildEapNak(1, [EapType.Mschapv2]), hex('02 01 0006 03 1a'));
  assert.deepEqual(buildEapNak(1, [0]), hex('02 01 0006 03 00'));
  assert.throws(() => buildEapNak(1, []), isWire('type-data'));
  assert.throws(() => buildEapNak(1, [256]), isWire('type-data'));
});

test('EAP header validation; bytes beyond Length are padding', () => {
  assert.throws(() => parseEap(hex('01 00 00')), isWire('length', 0));
  assert.throws(() => parseEap(hex('01 00 0006 01')), isWire('length', 2));
  assert.throws(() => parseEap(hex('01 00 0004')), isWire('length', 2));
  assert.throws(() => parseEap(hex('03 00 0005 00')), isWire('length', 2));
  assert.throws(() => parseEap(hex('05 00 0004')), isWire('code', 0));
  assert.throws(() => parseEap(hex('00 00 0004')), isWire('code', 0));
  assert.deepEqual(parseEap(hex('03 01 0004 ffff')), { code: 3, identifier: 1 });
  const p = parseEap(hex('02 00 0006 01 41 4243'));
  assert.ok(p.code === EapCode.Response);
  assert.deepEqual(p.data, hex('41'));
  assert.throws(() => buildEap({ code: 1, identifier: 256, type: 1, data: new Uint8Array(0) }), isWire('identifier'));
  assert.throws(() => buildEap({ code: 1, identifier: 1, type: 1, data: new Uint8Array(0xffff) }), isWire('length'));
  assert.throws(() => buildEap({ code: 9, identifier: 1 } as unknown as EapPacket), isWire('code'));
});

test('vector: Challenge (strongSwan shape)', () => {
  const p = parseEapMschapv2(hex(CHALLENGE));
  assert.equal(p.code, EapCode.Request);
  assert.equal(p.identifier, 0x2a);
  assert.deepEqual(p.message, { kind: 'challenge', mschapId: 0x2a, challenge: hex(AUTH_CHALLENGE), name: txt('strongSwan') });
  assert.deepEqual(buildEapMschapv2(0x2a, { kind: 'challenge', mschapId: 0x2a, challenge: hex(AUTH_CHALLENGE), name: 'strongSwan' }), hex(CHALLENGE));
});

test('vector: Response built from the RFC 2759 §9.2 values', () => {
  const built = buildEapMschapv2(0x2a, {
    kind: 'response',
    mschapId: 0x2a,
    peerChallenge: hex(PEER_CHALLENGE),
    ntResponse: hex(NT_RESPONSE),
    flags: 0,
    name: 'User',
  });
  assert.deepEqual(built, hex(RESPONSE));
  const p = parseEapMschapv2(built);
  assert.equal(p.code, EapCode.Response);
  assert.deepEqual(p.message, {
    kind: 'response',
    mschapId: 0x2a,
    peerChallenge: hex(PEER_CHALLENGE),
    ntResponse: hex(NT_RESPONSE),
    flags: 0,
    name: txt('User'),
  });
});

test('vector: Success Request with a trailing NUL, and the bare Success Response', () => {
  const p = parseEapMschapv2(hex(SUCCESS));
  assert.deepEqual(p.message, { kind: 'success-request', mschapId: 0x2a, message: SUCCESS_MSG });
  assert.deepEqual(buildEapMschapv2(0x2b, { kind: 'success-request', mschapId: 0x2a, message: SUCCESS_MSG }), hex(SUCCESS));
  assert.deepEqual(parseSuccessMessage(SUCCESS_MSG), { authenticatorResponse: AUTH_RESPONSE, message: 'Welcome2strongSwan' });
  assert.deepEqual(buildEapMschapv2(0x2b, { kind: 'success-response' }), hex(SUCCESS_RESPONSE));
  assert.deepEqual(parseEapMschapv2(hex(SUCCESS_RESPONSE)), { code: 2, identifier: 0x2b, message: { kind: 'success-response' } });
});

test('vector: Failure Request (strongSwan retry) and the bare Failure Response', () => {
  const p = parseEapMschapv2(hex(FAILURE));
  assert.deepEqual(p.message, { kind: 'failure-request', mschapId: 0x2b, message: FAILURE_MSG });
  assert.deepEqual(buildEapMschapv2(0x2c, { kind: 'failure-request', mschapId: 0x2b, message: FAILURE_MSG }), hex(FAILURE));
  assert.deepEqual(parseFailureMessage(FAILURE_MSG), { error: Mschapv2Error.AuthenticationFailure, retry: true, challenge: hex(PEER_CHALLENGE) });
  assert.deepEqual(buildEapMschapv2(0x2c, { kind: 'failure-response' }), hex(FAILURE_RESPONSE));
  assert.deepEqual(parseEapMschapv2(hex(FAILURE_RESPONSE)).message, { kind: 'failure-response' });
});

test('client exchange: parse Challenge -> Response -> check Success', () => {
  const ch = parseEapMschapv2(hex(CHALLENGE));
  assert.equal(ch.message.kind, 'challenge');
  if (ch.message.kind !== 'challenge') return;
  const r = mschapv2Client({ authenticatorChallenge: ch.message.challenge, peerChallenge: hex(PEER_CHALLENGE), username: 'User', password: 'clientPass' });
  const resp = buildEapMschapv2(ch.identifier, { kind: 'response', mschapId: ch.message.mschapId, peerChallenge: hex(PEER_CHALLENGE), ntResponse: r.ntResponse, flags: 0, name: 'User' });
  assert.deepEqual(resp, hex(RESPONSE));
  const ok = parseEapMschapv2(hex(SUCCESS));
  assert.ok(ok.message.kind === 'success-request');
  const { authenticatorResponse } = parseSuccessMessage(ok.message.message);
  assert.equal(authenticatorResponse, r.authenticatorResponse);
  assert.ok(checkAuthenticatorResponse('clientPass', r.ntResponse, hex(PEER_CHALLENGE), ch.message.challenge, 'User', authenticatorResponse));
});

test('EAP-MSCHAPv2 validation errors', () => {
  // Change-Password is rejected in either direction
  assert.throws(() => parseEapMschapv2(hex('02 01 0009 1a 07 01 0004')), (e: unknown) => isWire('opCode', 5)(e) && /Change-Password/.test(String(e)));
  assert.throws(() => parseEapMschapv2(hex('01 01 0009 1a 07 01 0004')), isWire('opCode', 5));
  // OpCode in the wrong direction / unknown
  assert.throws(() => parseEapMschapv2(hex('01 01 0006 1a 02')), isWire('opCode', 5));
  assert.throws(() => parseEapMschapv2(hex('02 01 0009 1a 01 01 0004')), isWire('opCode', 5));
  assert.throws(() => parseEapMschapv2(hex('01 01 0009 1a 05 01 0004')), isWire('opCode', 5));
  // empty payload, not type 26, not a Request/Response
  assert.throws(() => parseEapMschapv2(hex('01 01 0005 1a')), isWire('opCode', 5));
  assert.throws(() => parseEapMschapv2(hex('01 01 0006 04 01')), isWire('type', 4));
  assert.throws(() => parseEapMschapv2(hex('03 01 0004')), isWire('code', 0));
  // bare Success/Failure Response with extra bytes
  assert.throws(() => parseEapMschapv2(hex('02 01 0007 1a 03 00')), isWire('length', 6));
  // truncated header, MS-Length mismatch
  assert.throws(() => parseEapMschapv2(hex('01 01 0008 1a 03 01 00')), isWire('length', 5));
  const badMsLen = hex(CHALLENGE);
  badMsLen[8] = 0x20;
  assert.throws(() => parseEapMschapv2(badMsLen), isWire('msLength', 7));
  // Value-Size, truncation, Reserved
  const badVs = hex(CHALLENGE);
  badVs[9] = 0x11;
  assert.throws(() => parseEapMschapv2(badVs), isWire('valueSize', 9));
  assert.throws(() => parseEapMschapv2(hex(`01 01 0019 1a 01 01 0014 10 ${AUTH_CHALLENGE.slice(0, 30)}`)), isWire('length', 7));
  const badVs2 = hex(RESPONSE);
  badVs2[9] = 0x30;
  assert.throws(() => parseEapMschapv2(badVs2), isWire('valueSize', 9));
  const badRes = hex(RESPONSE);
  badRes[30] = 1;
  assert.throws(() => parseEapMschapv2(badRes), isWire('reserved', 30));
  assert.throws(() => parseMschapv2(3, hex('03')), isWire('code'));
});

test('builder errors', () => {
  assert.throws(() => buildMschapv2({ kind: 'challenge', mschapId: 1, challenge: new Uint8Array(15), name: '' }), isWire('challenge'));
  assert.throws(() => buildMschapv2({ kind: 'challenge', mschapId: 300, challenge: new Uint8Array(16), name: '' }), isWire('mschapId'));
  assert.throws(
    () => buildMschapv2({ kind: 'response', mschapId: 1, peerChallenge: new Uint8Array(16), ntResponse: new Uint8Array(23), flags: 0, name: '' }),
    isWire('ntResponse'),
  );
  assert.throws(() => buildMschapv2({ kind: 'success-request', mschapId: 1, message: 'S=€' }), isWire('message', 6));
  assert.throws(() => buildMschapv2({ kind: 'failure-request', mschapId: 1, message: 'x'.repeat(0xffff) }), isWire('msLength'));
  assert.throws(() => buildMschapv2({ kind: 'nope' } as unknown as Mschapv2Message), isWire('opCode'));
});

test('parseSuccessMessage', () => {
  assert.deepEqual(parseSuccessMessage(AUTH_RESPONSE), { authenticatorResponse: AUTH_RESPONSE });
  assert.deepEqual(parseSuccessMessage(AUTH_RESPONSE + '\0\0'), { authenticatorResponse: AUTH_RESPONSE });
  assert.deepEqual(parseSuccessMessage(`${AUTH_RESPONSE} M=Access granted`), { authenticatorResponse: AUTH_RESPONSE, message: 'Access granted' });
  assert.deepEqual(parseSuccessMessage(`${AUTH_RESPONSE} M=`), { authenticatorResponse: AUTH_RESPONSE, message: '' });
  assert.throws(() => parseSuccessMessage(''), isWire('message', 0));
  assert.throws(() => parseSuccessMessage(AUTH_RESPONSE.slice(0, 41)), isWire('message', 0));
  assert.throws(() => parseSuccessMessage('M=hi ' + AUTH_RESPONSE), isWire('message', 0));
  assert.throws(() => parseSuccessMessage(AUTH_RESPONSE + '0'), isWire('message', 42));
  assert.throws(() => parseSuccessMessage(AUTH_RESPONSE + ' X=1', 9), isWire('message', 51));
});

test('parseFailureMessage', () => {
  // RFC 2759 §6 layout with every field; M= runs to the end, spaces included
  assert.deepEqual(parseFailureMessage(`E=691 R=0 C=${AUTH_CHALLENGE.toLowerCase()} V=3 M=Authentication failure, try again`), {
    error: 691,
    retry: false,
    challenge: hex(AUTH_CHALLENGE),
    version: 3,
    message: 'Authentication failure, try again',
  });
  assert.deepEqual(parseFailureMessage('E=648 R=0 V=3'), { error: 648, retry: false, version: 3 });
  assert.deepEqual(parseFailureMessage('E=646\0'), { error: 646, retry: false });
  assert.deepEqual(parseFailureMessage('E=691  X=what R=1 M=E=1 R=0'), { error: 691, retry: true, message: 'E=1 R=0' });
  assert.throws(() => parseFailureMessage(''), isWire('message', 0));
  assert.throws(() => parseFailureMessage('R=1 C=00'), isWire('message', 4));
  assert.throws(() => parseFailureMessage('R=1 M=E=691'), isWire('message', 0));
  assert.throws(() => parseFailureMessage('E=abc'), isWire('message', 0));
  assert.throws(() => parseFailureMessage('E=691 R=2', 10), isWire('message', 16));
  assert.throws(() => parseFailureMessage(`E=691 C=${AUTH_CHALLENGE}0`), isWire('message', 6));
  assert.throws(() => parseFailureMessage('E=691 V=x'), isWire('message', 6));
});

const b16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const latin1Str = fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 80 }).map((a) => String.fromCharCode(...a));
const msgArb: fc.Arbitrary<Mschapv2Message> = fc.oneof(
  fc.record({ kind: fc.constant('challenge' as const), mschapId: u8, challenge: b16, name: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({
    kind: fc.constant('response' as const),
    mschapId: u8,
    peerChallenge: b16,
    ntResponse: fc.uint8Array({ minLength: 24, maxLength: 24 }),
    flags: u8,
    name: fc.uint8Array({ maxLength: 40 }),
  }),
  fc.record({ kind: fc.constant('success-request' as const), mschapId: u8, message: latin1Str }),
  fc.record({ kind: fc.constant('failure-request' as const), mschapId: u8, message: latin1Str }),
  fc.constant({ kind: 'success-response' as const }),
  fc.constant({ kind: 'failure-response' as const }),
).map((m) => ({ ...m })); // fast-check records have a null prototype; deepStrictEqual compares prototypes
const packetArb = fc.tuple(u8, msgArb).map(([id, m]) => buildEapMschapv2(id, m));
const eapArb: fc.Arbitrary<EapPacket> = fc.oneof(
  fc.record({ code: fc.constantFrom(1 as const, 2 as const), identifier: u8, type: u8, data: fc.uint8Array({ maxLength: 60 }) }),
  fc.record({ code: fc.constantFrom(3 as const, 4 as const), identifier: u8 }),
).map((p) => ({ ...p }));

test('property: parse(build(m)) == m and build(parse(b)) == b for EAP-MSCHAPv2', () => {
  fc.assert(
    fc.property(u8, msgArb, (id, m) => {
      const b = buildEapMschapv2(id, m);
      const p = parseEapMschapv2(b);
      assert.equal(p.identifier, id);
      assert.equal(p.code, mschapv2EapCode(m.kind));
      assert.deepEqual(p.message, m);
      assert.deepEqual(buildEapMschapv2(p.identifier, p.message), b);
      assert.deepEqual(parseMschapv2(p.code, buildMschapv2(m)), m);
    }),
  );
});

test('property: EAP header round trip', () => {
  fc.assert(
    fc.property(eapArb, fc.uint8Array({ maxLength: 8 }), (pkt, padding) => {
      const b = buildEap(pkt);
      assert.deepEqual(parseEap(b), pkt);
      const padded = new Uint8Array(b.length + padding.length);
      padded.set(b);
      padded.set(padding, b.length);
      assert.deepEqual(buildEap(parseEap(padded)), b);
    }),
  );
});

test('property: any buffer that parses rebuilds to its first Length bytes', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutated(packetArb)), (b) => {
      let p: ReturnType<typeof parseEapMschapv2>;
      try {
        p = parseEapMschapv2(b);
      } catch (e) {
        assert.ok(e instanceof WireError);
        return;
      }
      const length = (b[2]! << 8) | b[3]!;
      assert.deepEqual(buildEapMschapv2(p.identifier, p.message), b.subarray(0, length));
    }),
    { numRuns: 1000 },
  );
});

test('property: random and mutated bytes only throw WireError', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutated(packetArb), mutated(eapArb.map(buildEap))), (b) => {
      onlyWireError(() => parseEap(b), b.length);
      onlyWireError(() => parseEapMschapv2(b), b.length);
      onlyWireError(() => parseMschapv2(EapCode.Request, b), b.length);
      onlyWireError(() => parseMschapv2(EapCode.Response, b), b.length);
    }),
    { numRuns: 2000 },
  );
});

const successText = fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.option(fc.string({ maxLength: 30 }), { nil: undefined })).map(
  ([d, m]) => `S=${Buffer.from(d).toString('hex').toUpperCase()}${m === undefined ? '' : ` M=${m}`}`,
);
const failureText = fc
  .tuple(fc.nat(), fc.boolean(), fc.option(b16, { nil: undefined }), fc.option(fc.nat(), { nil: undefined }), fc.option(fc.string({ maxLength: 30 }), { nil: undefined }))
  .map(([e, r, c, v, m]) =>
    [`E=${e}`, `R=${r ? 1 : 0}`, c && `C=${Buffer.from(c).toString('hex')}`, v !== undefined && `V=${v}`, m !== undefined && `M=${m}`].filter(Boolean).join(' '),
  );
const mutatedText = (arb: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  mutated(arb.map((s) => Uint8Array.from(Buffer.from(s, 'latin1')))).map((b) => Buffer.from(b).toString('latin1'));

test('property: message parsers round-trip their fields and only throw WireError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.string({ maxLength: 30 }), (d, m) => {
      const auth = `S=${Buffer.from(d).toString('hex').toUpperCase()}`;
      assert.deepEqual(parseSuccessMessage(`${auth} M=${m}`), { authenticatorResponse: auth, message: m });
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 9999999999 }), fc.boolean(), b16, fc.string({ maxLength: 30 }), (e, r, c, m) => {
      const f = parseFailureMessage(`E=${e} R=${r ? 1 : 0} C=${Buffer.from(c).toString('hex')} V=3 M=${m}`);
      assert.deepEqual(f, { error: e, retry: r, challenge: c, version: 3, message: m });
    }),
  );
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 60 }), latin1Str, mutatedText(successText), mutatedText(failureText)), (s) => {
      onlyWireError(() => parseSuccessMessage(s), s.length);
      onlyWireError(() => parseFailureMessage(s), s.length);
    }),
    { numRuns: 2000 },
  );
});
