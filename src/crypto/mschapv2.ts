/**
 * MS-CHAPv2 (RFC 2759) and its key derivation (RFC 3079 §3), client (peer) side, as used by
 * EAP-MSCHAPv2 inside IKEv2.
 *
 * A `password` argument is either the cleartext password (encoded as UTF-16LE, RFC 2759 §8.3) or,
 * as a 16-byte Uint8Array, the NT password hash itself (what strongSwan calls an NTLM secret).
 *
 * Interop note: for a cleartext EAP secret strongSwan's server widens each *byte* of the secret to
 * 16 bits (ASCII -> UTF-16LE), which is real UTF-16LE only for ASCII passwords. A non-ASCII password
 * configured as cleartext on a strongSwan server will therefore not match ours; use an NTLM hash
 * there (or an ASCII password).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { desEncrypt7 } from './des.js';
import { md4 } from './md4.js';

export const MSCHAPV2_CHALLENGE_LENGTH = 16;
export const MSCHAPV2_NT_RESPONSE_LENGTH = 24;
/** "S=" followed by 40 hex digits. */
export const MSCHAPV2_AUTH_RESPONSE_LENGTH = 42;
/** The EAP-MSCHAPv2 MSK length as strongSwan exports it (see eapMschapv2Msk). */
export const EAP_MSCHAPV2_MSK_LENGTH = 64;

const sha1 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
};

function checkLength(what: string, b: Uint8Array, n: number): void {
  if (b.length !== n) throw new RangeError(`MS-CHAPv2: ${what} must be ${n} bytes, got ${b.length}`);
}

/** RFC 2759 §8.3 NtPasswordHash: MD4 of the password in UTF-16LE (16 bytes). */
export function ntPasswordHash(password: string): Uint8Array {
  return md4(Buffer.from(password, 'utf16le'));
}

/** A cleartext password is hashed; a Uint8Array is taken to be the NT password hash already. */
function passwordHashOf(password: string | Uint8Array): Uint8Array {
  if (typeof password === 'string') return ntPasswordHash(password);
  checkLength('NT password hash', password, 16);
  return password;
}

/** RFC 2759 §8.4 HashNtPasswordHash: MD4 of the 16-byte password hash. */
export function hashNtPasswordHash(passwordHash: Uint8Array): Uint8Array {
  checkLength('password hash', passwordHash, 16);
  return md4(passwordHash);
}

/**
 * The user name that enters ChallengeHash: RFC 2759 §8.2 excludes "any prepended domain name", i.e.
 * everything up to and including the first backslash ("DOMAIN\user" -> "user"). The Name field of
 * the Response packet still carries the full name (strongSwan does the same on both sides).
 */
export function mschapUserName(username: string): string {
  const i = username.indexOf('\\');
  return i < 0 ? username : username.slice(i + 1);
}

/**
 * RFC 2759 §8.2 ChallengeHash: first 8 bytes of SHA1(PeerChallenge || AuthenticatorChallenge || UserName).
 * A string user name is UTF-8 encoded after the domain prefix is removed (mschapUserName); bytes are
 * used as given.
 */
export function challengeHash(peerChallenge: Uint8Array, authenticatorChallenge: Uint8Array, username: string | Uint8Array): Uint8Array {
  checkLength('peer challenge', peerChallenge, MSCHAPV2_CHALLENGE_LENGTH);
  checkLength('authenticator challenge', authenticatorChallenge, MSCHAPV2_CHALLENGE_LENGTH);
  const name = typeof username === 'string' ? Buffer.from(mschapUserName(username), 'utf8') : username;
  return new Uint8Array(sha1(peerChallenge, authenticatorChallenge, name).subarray(0, 8));
}

/**
 * RFC 2759 §8.5 ChallengeResponse: the 16-byte password hash zero-padded to 21 bytes is cut into three
 * 7-byte DES keys; each encrypts the 8-byte challenge (§8.6 DesEncrypt). 24 bytes.
 */
export function challengeResponse(challenge: Uint8Array, passwordHash: Uint8Array): Uint8Array {
  checkLength('challenge', challenge, 8);
  checkLength('password hash', passwordHash, 16);
  const z = new Uint8Array(21);
  z.set(passwordHash);
  const out = new Uint8Array(MSCHAPV2_NT_RESPONSE_LENGTH);
  for (let i = 0; i < 3; i++) out.set(desEncrypt7(z.subarray(i * 7, i * 7 + 7), challenge), i * 8);
  return out;
}

/** RFC 2759 §8.1 GenerateNTResponse (24 bytes). */
export function generateNtResponse(
  authenticatorChallenge: Uint8Array,
  peerChallenge: Uint8Array,
  username: string | Uint8Array,
  password: string | Uint8Array,
): Uint8Array {
  const ch = challengeHash(peerChallenge, authenticatorChallenge, username);
  return challengeResponse(ch, passwordHashOf(password));
}

// RFC 2759 §8.7 magic constants.
const AUTH_MAGIC1 = Buffer.from('Magic server to client signing constant', 'latin1');
const AUTH_MAGIC2 = Buffer.from('Pad to make it do more than one iteration', 'latin1');

/** The 20-byte digest behind the "S=" string (RFC 2759 §8.7). */
function authenticatorDigest(
  password: string | Uint8Array,
  ntResponse: Uint8Array,
  peerChallenge: Uint8Array,
  authenticatorChallenge: Uint8Array,
  username: string | Uint8Array,
): Buffer {
  checkLength('NT-Response', ntResponse, MSCHAPV2_NT_RESPONSE_LENGTH);
  const hashHash = hashNtPasswordHash(passwordHashOf(password));
  const digest = sha1(hashHash, ntResponse, AUTH_MAGIC1);
  const ch = challengeHash(peerChallenge, authenticatorChallenge, username);
  return sha1(digest, ch, AUTH_MAGIC2);
}

/**
 * RFC 2759 §8.7 GenerateAuthenticatorResponse: "S=" followed by the SHA1 digest as 40 upper-case hex
 * digits (42 characters).
 */
export function generateAuthenticatorResponse(
  password: string | Uint8Array,
  ntResponse: Uint8Array,
  peerChallenge: Uint8Array,
  authenticatorChallenge: Uint8Array,
  username: string | Uint8Array,
): string {
  return 'S=' + authenticatorDigest(password, ntResponse, peerChallenge, authenticatorChallenge, username).toString('hex').toUpperCase();
}

/**
 * RFC 2759 §8.8 CheckAuthenticatorResponse. `received` is the 42-character "S=<40 hex>" token (hex in
 * either case). The digests are compared in constant time; a malformed token is simply false.
 */
export function checkAuthenticatorResponse(
  password: string | Uint8Array,
  ntResponse: Uint8Array,
  peerChallenge: Uint8Array,
  authenticatorChallenge: Uint8Array,
  username: string | Uint8Array,
  received: string,
): boolean {
  const expected = authenticatorDigest(password, ntResponse, peerChallenge, authenticatorChallenge, username);
  if (received.length !== MSCHAPV2_AUTH_RESPONSE_LENGTH || !/^S=[0-9A-Fa-f]{40}$/.test(received)) return false;
  return timingSafeEqual(expected, Buffer.from(received.slice(2), 'hex'));
}

// RFC 3079 §3.4 constants.
const MASTER_MAGIC1 = Buffer.from('This is the MPPE Master Key', 'latin1');
/** "On the client side, this is the send key; on the server side, it is the receive key." */
const MASTER_MAGIC2 = Buffer.from('On the client side, this is the send key; on the server side, it is the receive key.', 'latin1');
/** "On the client side, this is the receive key; on the server side, it is the send key." */
const MASTER_MAGIC3 = Buffer.from('On the client side, this is the receive key; on the server side, it is the send key.', 'latin1');
const SHS_PAD1 = new Uint8Array(40);
const SHS_PAD2 = new Uint8Array(40).fill(0xf2);

/** RFC 3079 §3.4 GetMasterKey: first 16 bytes of SHA1(PasswordHashHash || NT-Response || Magic1). */
export function getMasterKey(passwordHashHash: Uint8Array, ntResponse: Uint8Array): Uint8Array {
  checkLength('password hash hash', passwordHashHash, 16);
  checkLength('NT-Response', ntResponse, MSCHAPV2_NT_RESPONSE_LENGTH);
  return new Uint8Array(sha1(passwordHashHash, ntResponse, MASTER_MAGIC1).subarray(0, 16));
}

/**
 * RFC 3079 §3.4 GetAsymmetricStartKey: first `sessionKeyLength` bytes (8 for 40/56-bit, 16 for 128-bit
 * MPPE; at most 20) of SHA1(MasterKey || SHSpad1 || s || SHSpad2), where s is Magic2 for the client's
 * send key (= the server's receive key) and Magic3 for the client's receive key (= the server's send key).
 * `isServer` defaults to false: this module is the client.
 */
export function getAsymmetricStartKey(masterKey: Uint8Array, sessionKeyLength: number, isSend: boolean, isServer = false): Uint8Array {
  checkLength('master key', masterKey, 16);
  if (!Number.isInteger(sessionKeyLength) || sessionKeyLength < 1 || sessionKeyLength > 20)
    throw new RangeError(`MS-CHAPv2: session key length ${sessionKeyLength} not in 1..20`);
  const magic = isSend === isServer ? MASTER_MAGIC3 : MASTER_MAGIC2;
  return new Uint8Array(sha1(masterKey, SHS_PAD1, magic, SHS_PAD2).subarray(0, sessionKeyLength));
}

/**
 * The EAP-MSCHAPv2 MSK (64 bytes) as strongSwan 5.9's eap_mschapv2 plugin computes it, which the IKEv2
 * AUTH payload is keyed with (RFC 7296 §2.16: all 64 bytes, the zero padding included):
 *
 *   MSK = K2 || K3 || 32 zero bytes,  K2 = SHA1(MasterKey || SHSpad1 || Magic2 || SHSpad2)[0..16),
 *                                     K3 = SHA1(MasterKey || SHSpad1 || Magic3 || SHSpad2)[0..16)
 *
 * Source (read for this fact only): strongswan/strongswan src/libcharon/plugins/eap_mschapv2/eap_mschapv2.c,
 * GenerateMSK(): it names K2 "master_receive_key" and K3 "master_send_key" - names from the *server's*
 * view (Magic2 = server receive key) - and returns chunk_cat(master_receive_key[16], master_send_key[16],
 * keypad[16 zero], keypad[16 zero]). The same function serves the peer and the server, so both ends
 * agree. From the client's (peer's) view this is therefore
 *
 *   MSK = ClientSendKey(16) || ClientReceiveKey(16) || 0^32
 *       = getAsymmetricStartKey(mk, 16, true) || getAsymmetricStartKey(mk, 16, false) || 0^32.
 */
export function eapMschapv2Msk(password: string | Uint8Array, ntResponse: Uint8Array): Uint8Array {
  const mk = getMasterKey(hashNtPasswordHash(passwordHashOf(password)), ntResponse);
  const msk = new Uint8Array(EAP_MSCHAPV2_MSK_LENGTH);
  msk.set(getAsymmetricStartKey(mk, 16, true, false), 0);
  msk.set(getAsymmetricStartKey(mk, 16, false, false), 16);
  return msk;
}

export interface Mschapv2ClientResult {
  /** 24 bytes, for the Response packet. */
  ntResponse: Uint8Array;
  /** The "S=..." string the server must send back in its Success packet. */
  authenticatorResponse: string;
  /** 64 bytes, see eapMschapv2Msk. */
  msk: Uint8Array;
}

/** Everything the peer computes on receiving a Challenge, in one call. */
export function mschapv2Client(params: {
  authenticatorChallenge: Uint8Array;
  peerChallenge: Uint8Array;
  username: string | Uint8Array;
  password: string | Uint8Array;
}): Mschapv2ClientResult {
  const passwordHash = passwordHashOf(params.password);
  const ntResponse = generateNtResponse(params.authenticatorChallenge, params.peerChallenge, params.username, passwordHash);
  return {
    ntResponse,
    authenticatorResponse: generateAuthenticatorResponse(passwordHash, ntResponse, params.peerChallenge, params.authenticatorChallenge, params.username),
    msk: eapMschapv2Msk(passwordHash, ntResponse),
  };
}
