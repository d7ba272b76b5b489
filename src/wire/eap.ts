/**
 * EAP packets (RFC 3748 §4) and the EAP-MSCHAPv2 method payload (draft-kamath-pppext-eap-mschapv2-02,
 * with the Success/Failure message formats of RFC 2759 §5-6), as carried in IKEv2 EAP payloads.
 *
 *   EAP:        Code(1) Identifier(1) Length(2) [Type(1) Type-Data...]   Type only for Request/Response
 *   MSCHAPv2:   OpCode(1) MS-CHAPv2-ID(1) MS-Length(2) Data...           MS-Length = EAP Length - 5
 *     1 Challenge (Request):  Value-Size(1)=16 Challenge(16) Name...
 *     2 Response (Response):  Value-Size(1)=49 Peer-Challenge(16) Reserved(8)=0 NT-Response(24) Flags(1) Name...
 *     3 Success (Request):    Message "S=<40 hex> M=<text>"
 *     4 Failure (Request):    Message "E=691 R=0 C=<32 hex> V=3 M=<text>"
 *     3 Success / 4 Failure (Response): the OpCode alone, no MS-CHAPv2-ID or MS-Length
 *     7 Change-Password: not supported, rejected.
 *
 * Parsers throw WireError and nothing else; offsets are from the start of the buffer handed in (plus
 * `base` where a function takes one). Bytes beyond the EAP Length field are link-layer padding and are
 * ignored (RFC 3748 §4). Success/Failure message text is kept as a latin1 string (one char per byte),
 * so build(parse(b)) reproduces b exactly.
 */
import { WireError } from '../errors.js';

export const EAP_HEADER_LENGTH = 4;

export const EapCode = {
  Request: 1,
  Response: 2,
  Success: 3,
  Failure: 4,
} as const;
export type EapCode = (typeof EapCode)[keyof typeof EapCode];

/** The method types this client deals with (any type byte parses). */
export const EapType = {
  Identity: 1,
  Notification: 2,
  Nak: 3,
  Md5Challenge: 4,
  Mschapv2: 26,
} as const;

export type EapPacket =
  | {
      code: typeof EapCode.Request | typeof EapCode.Response;
      identifier: number;
      type: number;
      /** Type-Data: a view into the input. */
      data: Uint8Array;
    }
  | { code: typeof EapCode.Success | typeof EapCode.Failure; identifier: number };

/** Parse an EAP packet; trailing bytes beyond Length are ignored. */
export function parseEap(bytes: Uint8Array): EapPacket {
  const len = bytes.length;
  if (len < EAP_HEADER_LENGTH) throw new WireError(`EAP packet too short: ${len} bytes`, 'length', 0);
  const code = bytes[0]!;
  const identifier = bytes[1]!;
  const length = (bytes[2]! << 8) | bytes[3]!;
  if (length > len) throw new WireError(`EAP length ${length} > buffer ${len}`, 'length', 2);
  switch (code) {
    case EapCode.Success:
    case EapCode.Failure:
      if (length !== EAP_HEADER_LENGTH) throw new WireError(`EAP Success/Failure length ${length} != 4`, 'length', 2);
      return { code, identifier };
    case EapCode.Request:
    case EapCode.Response:
      if (length < EAP_HEADER_LENGTH + 1) throw new WireError(`EAP Request/Response length ${length} < 5`, 'length', 2);
      return { code, identifier, type: bytes[4]!, data: bytes.subarray(5, length) };
    default:
      throw new WireError(`unknown EAP code ${code}`, 'code', 0);
  }
}

function checkU8(v: number, field: string, offset: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new WireError(`${field} ${v} is not an octet`, field, offset);
}

/** Serialise an EAP packet. */
export function buildEap(p: EapPacket): Uint8Array {
  checkU8(p.identifier, 'identifier', 1);
  if (p.code === EapCode.Success || p.code === EapCode.Failure) return Uint8Array.of(p.code, p.identifier, 0, EAP_HEADER_LENGTH);
  if (p.code !== EapCode.Request && p.code !== EapCode.Response) throw new WireError(`unknown EAP code ${String((p as { code: unknown }).code)}`, 'code', 0);
  checkU8(p.type, 'type', 4);
  const length = EAP_HEADER_LENGTH + 1 + p.data.length;
  if (length > 0xffff) throw new WireError(`EAP length ${length} > 65535`, 'length', 2);
  const out = new Uint8Array(length);
  out[0] = p.code;
  out[1] = p.identifier;
  out[2] = length >> 8;
  out[3] = length & 0xff;
  out[4] = p.type;
  out.set(p.data, 5);
  return out;
}

/** Identity Response (RFC 3748 §5.1): the identity as UTF-8, not NUL-terminated. */
export function buildEapIdentityResponse(identifier: number, identity: string): Uint8Array {
  return buildEap({ code: EapCode.Response, identifier, type: EapType.Identity, data: Buffer.from(identity, 'utf8') });
}

/** Notification Response (RFC 3748 §5.2): no Type-Data. */
export function buildEapNotificationResponse(identifier: number): Uint8Array {
  return buildEap({ code: EapCode.Response, identifier, type: EapType.Notification, data: new Uint8Array(0) });
}

/** Legacy Nak (RFC 3748 §5.3.1): the desired authentication types, or [0] for "none acceptable". */
export function buildEapNak(identifier: number, desiredTypes: readonly number[]): Uint8Array {
  if (desiredTypes.length === 0) throw new WireError('Nak needs at least one type (0 = none)', 'type-data', 5);
  desiredTypes.forEach((t, i) => checkU8(t, 'type-data', 5 + i));
  return buildEap({ code: EapCode.Response, identifier, type: EapType.Nak, data: Uint8Array.from(desiredTypes) });
}

// ---------------------------------------------------------------------------------------------
// EAP-MSCHAPv2
// ---------------------------------------------------------------------------------------------

export const Mschapv2OpCode = {
  Challenge: 1,
  Response: 2,
  Success: 3,
  Failure: 4,
  ChangePassword: 7,
} as const;

/** OpCode, MS-CHAPv2-ID, MS-Length. */
export const MSCHAPV2_HEADER_LENGTH = 4;
export const MSCHAPV2_CHALLENGE_VALUE_SIZE = 16;
export const MSCHAPV2_RESPONSE_VALUE_SIZE = 49;

/** Server -> peer: the authenticator challenge. */
export interface Mschapv2Challenge {
  kind: 'challenge';
  mschapId: number;
  /** 16 bytes. */
  challenge: Uint8Array;
  /** The authenticator's name (strongSwan sends "strongSwan"). */
  name: Uint8Array;
}

/** Peer -> server. */
export interface Mschapv2Response {
  kind: 'response';
  /** Echoes the Challenge's MS-CHAPv2-ID. */
  mschapId: number;
  /** 16 bytes. */
  peerChallenge: Uint8Array;
  /** 24 bytes. */
  ntResponse: Uint8Array;
  /** Reserved, 0. */
  flags: number;
  /** The peer's full user name (a "DOMAIN\" prefix included). */
  name: Uint8Array;
}

/** Server -> peer: "S=<auth string> M=<message>" (see parseSuccessMessage). */
export interface Mschapv2SuccessRequest {
  kind: 'success-request';
  mschapId: number;
  /** latin1, exactly the bytes sent (strongSwan appends a NUL). */
  message: string;
}

/** Server -> peer: "E=... R=... C=... V=... M=..." (see parseFailureMessage). */
export interface Mschapv2FailureRequest {
  kind: 'failure-request';
  mschapId: number;
  /** latin1, exactly the bytes sent. */
  message: string;
}

/** Peer -> server after verifying the authenticator response: the OpCode alone. */
export interface Mschapv2SuccessResponse {
  kind: 'success-response';
}

/** Peer -> server acknowledging a Failure: the OpCode alone. */
export interface Mschapv2FailureResponse {
  kind: 'failure-response';
}

export type Mschapv2Message =
  | Mschapv2Challenge
  | Mschapv2Response
  | Mschapv2SuccessRequest
  | Mschapv2FailureRequest
  | Mschapv2SuccessResponse
  | Mschapv2FailureResponse;

/** What the builders accept: as Mschapv2Message, but a name may also be a string (UTF-8). */
export type Mschapv2MessageInit =
  | (Omit<Mschapv2Challenge, 'name'> & { name: Uint8Array | string })
  | (Omit<Mschapv2Response, 'name'> & { name: Uint8Array | string })
  | Mschapv2SuccessRequest
  | Mschapv2FailureRequest
  | Mschapv2SuccessResponse
  | Mschapv2FailureResponse;

/** The EAP code each message travels in. */
export function mschapv2EapCode(kind: Mschapv2Message['kind']): typeof EapCode.Request | typeof EapCode.Response {
  return kind === 'challenge' || kind === 'success-request' || kind === 'failure-request' ? EapCode.Request : EapCode.Response;
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

/**
 * Parse the EAP-MSCHAPv2 Type-Data (starting at the OpCode) of an EAP packet with the given code.
 * `base` is added to error offsets (5 when `data` sits in an EAP packet).
 */
export function parseMschapv2(code: number, data: Uint8Array, base = 0): Mschapv2Message {
  if (code !== EapCode.Request && code !== EapCode.Response) throw new WireError(`EAP-MSCHAPv2 in EAP code ${code}`, 'code', 0);
  const len = data.length;
  if (len < 1) throw new WireError('EAP-MSCHAPv2 payload empty', 'opCode', base);
  const op = data[0]!;
  if (op === Mschapv2OpCode.ChangePassword)
    throw new WireError('EAP-MSCHAPv2 Change-Password (OpCode 7) is not supported', 'opCode', base);
  if (code === EapCode.Response && (op === Mschapv2OpCode.Success || op === Mschapv2OpCode.Failure)) {
    if (len !== 1) throw new WireError(`EAP-MSCHAPv2 ${op === 3 ? 'Success' : 'Failure'} Response has ${len - 1} extra bytes`, 'length', base + 1);
    return { kind: op === Mschapv2OpCode.Success ? 'success-response' : 'failure-response' };
  }
  const expectedOp =
    code === EapCode.Request
      ? [Mschapv2OpCode.Challenge, Mschapv2OpCode.Success, Mschapv2OpCode.Failure]
      : [Mschapv2OpCode.Response];
  if (!(expectedOp as number[]).includes(op))
    throw new WireError(`EAP-MSCHAPv2 OpCode ${op} not valid in EAP ${code === EapCode.Request ? 'Request' : 'Response'}`, 'opCode', base);

  if (len < MSCHAPV2_HEADER_LENGTH) throw new WireError(`EAP-MSCHAPv2 header truncated: ${len} bytes`, 'length', base);
  const mschapId = data[1]!;
  const msLength = (data[2]! << 8) | data[3]!;
  if (msLength !== len) throw new WireError(`EAP-MSCHAPv2 MS-Length ${msLength} != ${len}`, 'msLength', base + 2);

  switch (op) {
    case Mschapv2OpCode.Challenge: {
      const end = MSCHAPV2_HEADER_LENGTH + 1 + MSCHAPV2_CHALLENGE_VALUE_SIZE;
      if (len < end) throw new WireError(`EAP-MSCHAPv2 Challenge truncated: ${len} bytes`, 'length', base + 2);
      if (data[4] !== MSCHAPV2_CHALLENGE_VALUE_SIZE) throw new WireError(`Challenge Value-Size ${data[4]} != 16`, 'valueSize', base + 4);
      return { kind: 'challenge', mschapId, challenge: data.subarray(5, end), name: data.subarray(end) };
    }
    case Mschapv2OpCode.Response: {
      const end = MSCHAPV2_HEADER_LENGTH + 1 + MSCHAPV2_RESPONSE_VALUE_SIZE;
      if (len < end) throw new WireError(`EAP-MSCHAPv2 Response truncated: ${len} bytes`, 'length', base + 2);
      if (data[4] !== MSCHAPV2_RESPONSE_VALUE_SIZE) throw new WireError(`Response Value-Size ${data[4]} != 49`, 'valueSize', base + 4);
      for (let i = 21; i < 29; i++) if (data[i] !== 0) throw new WireError('Response Reserved octets not zero', 'reserved', base + i);
      return {
        kind: 'response',
        mschapId,
        peerChallenge: data.subarray(5, 21),
        ntResponse: data.subarray(29, 53),
        flags: data[53]!,
        name: data.subarray(end),
      };
    }
    case Mschapv2OpCode.Success:
      return { kind: 'success-request', mschapId, message: latin1(data.subarray(MSCHAPV2_HEADER_LENGTH)) };
    default:
      return { kind: 'failure-request', mschapId, message: latin1(data.subarray(MSCHAPV2_HEADER_LENGTH)) };
  }
}

function bytesOf(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

function latin1Bytes(s: string, offset: number): Uint8Array {
  for (let i = 0; i < s.length; i++)
    if (s.charCodeAt(i) > 0xff) throw new WireError('EAP-MSCHAPv2 message has a character above U+00FF', 'message', offset + i);
  return Buffer.from(s, 'latin1');
}

function withHeader(op: number, mschapId: number, body: Uint8Array): Uint8Array {
  checkU8(mschapId, 'mschapId', 1);
  const len = MSCHAPV2_HEADER_LENGTH + body.length;
  // The EAP Length (len + 5) must fit 16 bits.
  if (len > 0xffff - 5) throw new WireError(`EAP-MSCHAPv2 MS-Length ${len} too large`, 'msLength', 2);
  const out = new Uint8Array(len);
  out[0] = op;
  out[1] = mschapId;
  out[2] = len >> 8;
  out[3] = len & 0xff;
  out.set(body, MSCHAPV2_HEADER_LENGTH);
  return out;
}

function fixed(b: Uint8Array, n: number, field: string, offset: number): Uint8Array {
  if (b.length !== n) throw new WireError(`${field} must be ${n} bytes, got ${b.length}`, field, offset);
  return b;
}

/** Serialise the EAP-MSCHAPv2 Type-Data (from the OpCode on). */
export function buildMschapv2(m: Mschapv2MessageInit): Uint8Array {
  switch (m.kind) {
    case 'challenge': {
      const name = bytesOf(m.name);
      const body = new Uint8Array(1 + MSCHAPV2_CHALLENGE_VALUE_SIZE + name.length);
      body[0] = MSCHAPV2_CHALLENGE_VALUE_SIZE;
      body.set(fixed(m.challenge, 16, 'challenge', 5), 1);
      body.set(name, 17);
      return withHeader(Mschapv2OpCode.Challenge, m.mschapId, body);
    }
    case 'response': {
      const name = bytesOf(m.name);
      const body = new Uint8Array(1 + MSCHAPV2_RESPONSE_VALUE_SIZE + name.length);
      checkU8(m.flags, 'flags', 53);
      body[0] = MSCHAPV2_RESPONSE_VALUE_SIZE;
      body.set(fixed(m.peerChallenge, 16, 'peerChallenge', 5), 1);
      // 8 reserved zero octets at body[17..25)
      body.set(fixed(m.ntResponse, 24, 'ntResponse', 29), 25);
      body[49] = m.flags;
      body.set(name, 50);
      return withHeader(Mschapv2OpCode.Response, m.mschapId, body);
    }
    case 'success-request':
      return withHeader(Mschapv2OpCode.Success, m.mschapId, latin1Bytes(m.message, MSCHAPV2_HEADER_LENGTH));
    case 'failure-request':
      return withHeader(Mschapv2OpCode.Failure, m.mschapId, latin1Bytes(m.message, MSCHAPV2_HEADER_LENGTH));
    case 'success-response':
      return Uint8Array.of(Mschapv2OpCode.Success);
    case 'failure-response':
      return Uint8Array.of(Mschapv2OpCode.Failure);
    default:
      throw new WireError(`unknown EAP-MSCHAPv2 message kind ${String((m as { kind: unknown }).kind)}`, 'opCode', 0);
  }
}

/** A whole EAP packet carrying an EAP-MSCHAPv2 message; the EAP code follows from the message kind. */
export function buildEapMschapv2(identifier: number, m: Mschapv2MessageInit): Uint8Array {
  return buildEap({ code: mschapv2EapCode(m.kind), identifier, type: EapType.Mschapv2, data: buildMschapv2(m) });
}

/** Parse a whole EAP packet that must be an EAP-MSCHAPv2 Request or Response. */
export function parseEapMschapv2(bytes: Uint8Array): { code: typeof EapCode.Request | typeof EapCode.Response; identifier: number; message: Mschapv2Message } {
  const p = parseEap(bytes);
  if (p.code !== EapCode.Request && p.code !== EapCode.Response)
    throw new WireError(`EAP ${p.code === EapCode.Success ? 'Success' : 'Failure'} is not EAP-MSCHAPv2`, 'code', 0);
  if (p.type !== EapType.Mschapv2) throw new WireError(`EAP type ${p.type} is not EAP-MSCHAPv2 (26)`, 'type', 4);
  return { code: p.code, identifier: p.identifier, message: parseMschapv2(p.code, p.data, 5) };
}

// ---------------------------------------------------------------------------------------------
// Success / Failure message text (RFC 2759 §5, §6)
// ---------------------------------------------------------------------------------------------

/** Drop trailing NULs: strongSwan sends its Success message NUL-terminated. */
function stripNuls(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0) end--;
  return s.slice(0, end);
}

/**
 * Success message "S=<auth_string> M=<message>" (RFC 2759 §5): `authenticatorResponse` is the 42-character
 * "S=..." token to hand to checkAuthenticatorResponse. The " M=..." part is optional; trailing NULs are ignored.
 */
export function parseSuccessMessage(message: string, base = 0): { authenticatorResponse: string; message?: string } {
  const s = stripNuls(message);
  const auth = s.slice(0, 42);
  if (!/^S=[0-9A-Fa-f]{40}$/.test(auth)) throw new WireError('Success message does not start with S=<40 hex digits>', 'message', base);
  const rest = s.slice(42);
  if (rest === '') return { authenticatorResponse: auth };
  if (rest.startsWith(' M=')) return { authenticatorResponse: auth, message: rest.slice(3) };
  throw new WireError('Success message: unexpected text after the authenticator response', 'message', base + 42);
}

/** RFC 2759 §6 error codes. */
export const Mschapv2Error = {
  RestrictedLogonHours: 646,
  AccountDisabled: 647,
  PasswordExpired: 648,
  NoDialinPermission: 649,
  AuthenticationFailure: 691,
  ChangingPassword: 709,
} as const;

export interface Mschapv2Failure {
  /** E=: the Windows error code (691 = authentication failure). */
  error: number;
  /** R=1: the server allows a retry (with the challenge C=). */
  retry: boolean;
  /** C=: the new 16-byte authenticator challenge for the retry, when present. */
  challenge?: Uint8Array;
  /** V=: the password-change protocol version, when present. */
  version?: number;
  /** M=: the text, which runs to the end of the message (it may contain spaces). */
  message?: string;
}

/**
 * Failure message "E=eeeeeeeeee R=r C=cccccccccccccccccccccccccccccccc V=vvvvvvvvvv M=<msg>" (RFC 2759 §6).
 * E= is required; R= defaults to not retryable; strongSwan sends "E=691 R=1 C=<hex>" with no V= or M=.
 * Unknown fields are skipped; trailing NULs are ignored.
 */
export function parseFailureMessage(message: string, base = 0): Mschapv2Failure {
  const s = stripNuls(message);
  const out: Partial<Mschapv2Failure> = {};
  let pos = 0;
  while (pos < s.length) {
    if (s[pos] === ' ') {
      pos++;
      continue;
    }
    if (s.startsWith('M=', pos)) {
      out.message = s.slice(pos + 2);
      break;
    }
    let end = s.indexOf(' ', pos);
    if (end < 0) end = s.length;
    const token = s.slice(pos, end);
    const value = token.slice(2);
    const at = base + pos;
    switch (token.slice(0, 2)) {
      case 'E=':
        if (!/^\d{1,10}$/.test(value)) throw new WireError(`Failure message: bad E=${value}`, 'message', at);
        out.error = Number(value);
        break;
      case 'R=':
        if (value !== '0' && value !== '1') throw new WireError(`Failure message: bad R=${value}`, 'message', at);
        out.retry = value === '1';
        break;
      case 'C=':
        if (!/^[0-9A-Fa-f]{32}$/.test(value)) throw new WireError('Failure message: C= is not 32 hex digits', 'message', at);
        out.challenge = Uint8Array.from(Buffer.from(value, 'hex'));
        break;
      case 'V=':
        if (!/^\d{1,10}$/.test(value)) throw new WireError(`Failure message: bad V=${value}`, 'message', at);
        out.version = Number(value);
        break;
      default:
        break; // unknown field: skipped
    }
    pos = end;
  }
  if (out.error === undefined) throw new WireError('Failure message has no E= field', 'message', base);
  const result: Mschapv2Failure = { error: out.error, retry: out.retry ?? false };
  if (out.challenge) result.challenge = out.challenge;
  if (out.version !== undefined) result.version = out.version;
  if (out.message !== undefined) result.message = out.message;
  return result;
}
