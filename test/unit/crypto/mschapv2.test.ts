import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  EAP_MSCHAPV2_MSK_LENGTH,
  challengeHash,
  challengeResponse,
  checkAuthenticatorResponse,
  eapMschapv2Msk,
  generateAuthenticatorResponse,
  generateNtResponse,
  getAsymmetricStartKey,
  getMasterKey,
  hashNtPasswordHash,
  mschapUserName,
  mschapv2Client,
  ntPasswordHash,
} from '../../../src/crypto/mschapv2.js';
import { md4 } from '../../../src/crypto/md4.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

// RFC 2759 §9.2 (also the inputs of RFC 3079 §3.5)
const USER = 'User';
const PASSWORD = 'clientPass';
const AUTH_CHALLENGE = hex('5B5D7C7D7B3F2F3E3C2C602132262628');
const PEER_CHALLENGE = hex('21402324255E262A28295F2B3A337C7E');
const CHALLENGE_HASH = 'D02E4386BCE91226';
const PASSWORD_HASH = '44EBBA8D5312B8D611474411F56989AE';
const NT_RESPONSE = '82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF';
const PASSWORD_HASH_HASH = '41C00C584BD2D91C4017A2A12FA59F3F';
const AUTH_RESPONSE = 'S=407A5589115FD0D6209F510FE9C04566932CDA56';
// RFC 3079 §3.5.3
const MASTER_KEY = 'FDECE3717A8C838CB388E527AE3CDD31';
const SEND_START_KEY_128 = '8B7CDC149B993A1BA118CB153F56DCCB';

test('RFC 2759 §9.2: every intermediate value', () => {
  assert.deepEqual(Buffer.from(PASSWORD, 'utf16le'), Buffer.from(hex('63006C00690065006E0074005000610073007300')));
  assert.equal(hexOf(challengeHash(PEER_CHALLENGE, AUTH_CHALLENGE, USER)), CHALLENGE_HASH);
  assert.equal(hexOf(ntPasswordHash(PASSWORD)), PASSWORD_HASH);
  assert.equal(hexOf(challengeResponse(hex(CHALLENGE_HASH), hex(PASSWORD_HASH))), NT_RESPONSE);
  assert.equal(hexOf(generateNtResponse(AUTH_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD)), NT_RESPONSE);
  assert.equal(hexOf(hashNtPasswordHash(hex(PASSWORD_HASH))), PASSWORD_HASH_HASH);
  const s = generateAuthenticatorResponse(PASSWORD, hex(NT_RESPONSE), PEER_CHALLENGE, AUTH_CHALLENGE, USER);
  assert.equal(s, AUTH_RESPONSE);
  assert.equal(s.length, 42);
});

test('RFC 2759 §9.3: NT hash of "MyPw"', () => {
  assert.equal(hexOf(ntPasswordHash('MyPw')), 'FC156AF7EDCD6C0EDDE3337D427F4EAC');
});

test('a 16-byte Uint8Array password is the NT hash itself', () => {
  assert.equal(hexOf(generateNtResponse(AUTH_CHALLENGE, PEER_CHALLENGE, USER, hex(PASSWORD_HASH))), NT_RESPONSE);
  assert.equal(generateAuthenticatorResponse(hex(PASSWORD_HASH), hex(NT_RESPONSE), PEER_CHALLENGE, AUTH_CHALLENGE, USER), AUTH_RESPONSE);
  assert.throws(() => generateNtResponse(AUTH_CHALLENGE, PEER_CHALLENGE, USER, new Uint8Array(15)), RangeError);
});

test('checkAuthenticatorResponse: accepts the right string (either hex case), rejects everything else', () => {
  const check = (r: string): boolean => checkAuthenticatorResponse(PASSWORD, hex(NT_RESPONSE), PEER_CHALLENGE, AUTH_CHALLENGE, USER, r);
  assert.equal(check(AUTH_RESPONSE), true);
  assert.equal(check('S=' + AUTH_RESPONSE.slice(2).toLowerCase()), true);
  assert.equal(check(AUTH_RESPONSE.slice(0, 41) + '7'), false);
  assert.equal(check(AUTH_RESPONSE.slice(0, 41)), false);
  assert.equal(check(AUTH_RESPONSE + '0'), false);
  assert.equal(check('s=' + AUTH_RESPONSE.slice(2)), false);
  assert.equal(check('S=' + 'Z'.repeat(40)), false);
  assert.equal(check(''), false);
  assert.equal(checkAuthenticatorResponse('wrongPass', hex(NT_RESPONSE), PEER_CHALLENGE, AUTH_CHALLENGE, USER, AUTH_RESPONSE), false);
  assert.equal(checkAuthenticatorResponse(PASSWORD, hex(NT_RESPONSE), PEER_CHALLENGE, AUTH_CHALLENGE, 'user', AUTH_RESPONSE), false);
});

test('RFC 3079 §3.5.3: MasterKey and the 128-bit start keys', () => {
  const mk = getMasterKey(hex(PASSWORD_HASH_HASH), hex(NT_RESPONSE));
  assert.equal(hexOf(mk), MASTER_KEY);
  // The RFC's SendStartKey128 is computed with IsSend = IsServer = TRUE (Magic3): the server's send key,
  // which is the client's receive key.
  assert.equal(hexOf(getAsymmetricStartKey(mk, 16, true, true)), SEND_START_KEY_128);
  assert.equal(hexOf(getAsymmetricStartKey(mk, 16, false)), SEND_START_KEY_128);
  assert.equal(hexOf(getAsymmetricStartKey(mk, 16, false, false)), SEND_START_KEY_128);
  // The client's send key (Magic2) = the server's receive key; value checked with an independent
  // Python hashlib SHA-1 of MasterKey || 40*00 || Magic2 || 40*F2.
  const clientSend = getAsymmetricStartKey(mk, 16, true);
  assert.equal(hexOf(clientSend), 'D5F0E9521E3EA9589645E86051C82226');
  assert.deepEqual(getAsymmetricStartKey(mk, 16, false, true), clientSend);
  // 40/56-bit MPPE uses the first 8 bytes (RFC 3079 §3.5.1: SendStartKey40 = 8B7CDC149B993A1B)
  assert.equal(hexOf(getAsymmetricStartKey(mk, 8, true, true)), '8B7CDC149B993A1B');
  assert.throws(() => getAsymmetricStartKey(mk, 21, true), RangeError);
  assert.throws(() => getAsymmetricStartKey(mk, 0, true), RangeError);
});

test('EAP-MSCHAPv2 MSK = client send key || client receive key || 32 zero bytes (strongSwan GenerateMSK)', () => {
  const msk = eapMschapv2Msk(PASSWORD, hex(NT_RESPONSE));
  assert.equal(msk.length, EAP_MSCHAPV2_MSK_LENGTH);
  assert.equal(hexOf(msk), 'D5F0E9521E3EA9589645E86051C82226' + SEND_START_KEY_128 + '00'.repeat(32));
  assert.deepEqual(eapMschapv2Msk(hex(PASSWORD_HASH), hex(NT_RESPONSE)), msk);
});

test('mschapv2Client bundles NT-Response, expected "S=" and MSK', () => {
  const r = mschapv2Client({ authenticatorChallenge: AUTH_CHALLENGE, peerChallenge: PEER_CHALLENGE, username: USER, password: PASSWORD });
  assert.equal(hexOf(r.ntResponse), NT_RESPONSE);
  assert.equal(r.authenticatorResponse, AUTH_RESPONSE);
  assert.deepEqual(r.msk, eapMschapv2Msk(PASSWORD, hex(NT_RESPONSE)));
});

test('the domain prefix is left out of ChallengeHash (RFC 2759 §8.2)', () => {
  assert.equal(mschapUserName('CORP\\User'), 'User');
  assert.equal(mschapUserName('User'), 'User');
  assert.equal(mschapUserName('a\\b\\c'), 'b\\c');
  assert.equal(hexOf(challengeHash(PEER_CHALLENGE, AUTH_CHALLENGE, 'CORP\\User')), CHALLENGE_HASH);
  assert.equal(hexOf(generateNtResponse(AUTH_CHALLENGE, PEER_CHALLENGE, 'CORP\\User', PASSWORD)), NT_RESPONSE);
  // bytes are used as given
  assert.notEqual(hexOf(challengeHash(PEER_CHALLENGE, AUTH_CHALLENGE, Buffer.from('CORP\\User'))), CHALLENGE_HASH);
  assert.equal(hexOf(challengeHash(PEER_CHALLENGE, AUTH_CHALLENGE, Buffer.from('User'))), CHALLENGE_HASH);
});

test('non-ASCII passwords are UTF-16LE (a surrogate pair is two code units)', () => {
  const pw = 'pä€𝄞';
  // p=0070 ä=00E4 €=20AC 𝄞=D834 DD1E, each little-endian
  assert.deepEqual(ntPasswordHash(pw), md4(hex('7000 E400 AC20 34D8 1EDD')));
  assert.notDeepEqual(ntPasswordHash('pa'), ntPasswordHash('pä'));
});

test('property: the generated authenticator response always checks, and only for the right inputs', () => {
  const b16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
  fc.assert(
    fc.property(b16, b16, fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), (ac, pc, user, pw) => {
      const r = mschapv2Client({ authenticatorChallenge: ac, peerChallenge: pc, username: user, password: pw });
      assert.equal(r.ntResponse.length, 24);
      assert.match(r.authenticatorResponse, /^S=[0-9A-F]{40}$/);
      assert.equal(checkAuthenticatorResponse(pw, r.ntResponse, pc, ac, user, r.authenticatorResponse), true);
      assert.equal(checkAuthenticatorResponse(pw + 'x', r.ntResponse, pc, ac, user, r.authenticatorResponse), false);
      // ChallengeHash is SHA1(peer || authenticator || name)[0..8)
      const ch = createHash('sha1').update(pc).update(ac).update(Buffer.from(mschapUserName(user))).digest().subarray(0, 8);
      assert.deepEqual(challengeHash(pc, ac, user), new Uint8Array(ch));
      assert.deepEqual(r.msk.subarray(32), new Uint8Array(32));
    }),
    { numRuns: 30 },
  );
});

test('bad lengths are RangeErrors', () => {
  assert.throws(() => challengeHash(new Uint8Array(15), AUTH_CHALLENGE, USER), RangeError);
  assert.throws(() => challengeHash(PEER_CHALLENGE, new Uint8Array(17), USER), RangeError);
  assert.throws(() => challengeResponse(new Uint8Array(7), hex(PASSWORD_HASH)), RangeError);
  assert.throws(() => getMasterKey(hex(PASSWORD_HASH_HASH), new Uint8Array(23)), RangeError);
  assert.throws(() => hashNtPasswordHash(new Uint8Array(20)), RangeError);
  assert.throws(() => generateAuthenticatorResponse(PASSWORD, new Uint8Array(8), PEER_CHALLENGE, AUTH_CHALLENGE, USER), RangeError);
});
