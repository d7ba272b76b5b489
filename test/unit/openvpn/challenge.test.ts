/**
 * Two-factor encodings (static-challenge SCRV1/concat, CRV1 answers), where the response comes from
 * (otp option, command, VPNPROXY_OTP, prompt), and the backend's part: asking once per static challenge,
 * answering a server's CRV1 challenge on the next attempt, and which AUTH_FAILED ends the client by auth-retry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { VpnError } from '../../../src/errors.js';
import { cleanResponse, crResponseMessage, crv1Password, staticChallengePassword, type ChallengePrompt } from '../../../src/openvpn/challenge.js';
import { OpenVpnBackend } from '../../../src/openvpn/backend.js';
import { parseProfile } from '../../../src/openvpn/profile.js';
import { parseServerMessage } from '../../../src/openvpn/push.js';
import { OpenVpnSession } from '../../../src/openvpn/session.js';
import { prepareOpenVpn, resolveOtpSource } from '../../../src/openvpn/setup.js';
import { commandOtp } from '../../../src/util/otp-sources.js';
import type { Transport } from '../../../src/transport/types.js';

const FIXDIR = fileURLToPath(new URL('../../fixtures/profiles/', import.meta.url));
const CA = readFileSync(join(FIXDIR, 'keys/ca.crt'), 'utf8');
const profileText = (extra: string) => `client\ndev tun\nremote vpn.example.net 1194\nproto udp\n<ca>\n${CA}</ca>\nauth-user-pass\n${extra}`;
const parse = (extra: string) => parseProfile(profileText(extra), { path: '/p/p.ovpn', readFile: () => '' }).profile;
const noTransport = (): Transport => {
  throw new Error('no transport in unit tests');
};

test('static-challenge SCRV1: base64 of the password and of the response, joined by colons', () => {
  assert.equal(staticChallengePassword('s3cret', '424242', 'scrv1'), 'SCRV1:czNjcmV0:NDI0MjQy');
  assert.equal(staticChallengePassword('', '1', 'scrv1'), 'SCRV1::MQ==');
  assert.equal(staticChallengePassword('pässwörd', '12', 'scrv1'), `SCRV1:${Buffer.from('pässwörd').toString('base64')}:MTI=`);
  assert.equal(staticChallengePassword('s3cret', '424242', 'concat'), 's3cret424242');
});

test('property: SCRV1 always splits into three fields that decode back to password and response', () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), (pw, code) => {
      const parts = staticChallengePassword(pw, code, 'scrv1').split(':');
      assert.equal(parts.length, 3);
      assert.equal(parts[0], 'SCRV1');
      assert.equal(Buffer.from(parts[1]!, 'base64').toString('utf8'), Buffer.from(pw, 'utf8').toString('utf8'));
      assert.equal(Buffer.from(parts[2]!, 'base64').toString('utf8'), Buffer.from(code, 'utf8').toString('utf8'));
    }),
  );
});

test('CRV1 answer: CRV1::state_id::response, state and username from the server message', () => {
  assert.equal(crv1Password('Om01u7Fh4LrG', '654321'), 'CRV1::Om01u7Fh4LrG::654321');
  const m = parseServerMessage('AUTH_FAILED,CRV1:R,E:st8:YWxpY2U=:Enter the code: now');
  assert.equal(m.type, 'auth-failed');
  assert.deepEqual(m.type === 'auth-failed' && m.crv1, { flags: ['R', 'E'], echo: true, responseRequired: true, stateId: 'st8', username: 'alice', text: 'Enter the code: now' });
});

test('CR_TEXT answer: CR_RESPONSE with the response in base64', () => {
  assert.equal(crResponseMessage('2468'), 'CR_RESPONSE,MjQ2OA==');
  const m = parseServerMessage('INFO_PRE,CR_TEXT:R,E:Enter your PIN');
  assert.deepEqual(m.type === 'info-pre' && m.crText, { flags: ['R', 'E'], text: 'Enter your PIN' });
});

test('responses: surrounding whitespace (a command\'s newline) goes, a second line is refused', () => {
  assert.equal(cleanResponse('  123456\n', 'x'), '123456');
  assert.equal(cleanResponse('12 34', 'x'), '12 34');
  assert.throws(() => cleanResponse('123\n456', 'x'), (e: unknown) => e instanceof VpnError && e.code === 'USAGE');
});

test('where the response comes from: otp, then otpCommand, then VPNPROXY_OTP, then the prompt', async () => {
  const prompt = async () => 'prompted';
  const p: ChallengePrompt = { kind: 'static', text: 'Code', echo: true };
  const fixed = resolveOtpSource({ otp: '111', otpCommand: 'echo 222', env: { VPNPROXY_OTP: '333' }, otpPrompt: prompt });
  assert.equal(await fixed.source!(p), '111');
  assert.equal(fixed.interactive, false);
  const fn = resolveOtpSource({ otp: (q) => `cb:${q.text}`, env: {} });
  assert.equal(await fn.source!(p), 'cb:Code');
  assert.equal(fn.interactive, true);
  const cmd = resolveOtpSource({ otpCommand: 'printf "%s\\n" "$VPNPROXY_CHALLENGE_KIND-222"', env: { VPNPROXY_OTP: '333', PATH: process.env.PATH } });
  assert.equal(await cmd.source!(p), 'static-222');
  const env = resolveOtpSource({ env: { VPNPROXY_OTP: '333' }, otpPrompt: prompt });
  assert.equal(await env.source!(p), '333');
  assert.equal(env.interactive, false);
  const pr = resolveOtpSource({ env: {}, otpPrompt: prompt });
  assert.equal(await pr.source!(p), 'prompted');
  assert.deepEqual(resolveOtpSource({ env: {} }), { interactive: false });
});

test('--otp-command: a failing or silent command is a usage error that says so', async () => {
  const p: ChallengePrompt = { kind: 'crv1', text: 'PIN', echo: false };
  await assert.rejects(commandOtp('echo nope >&2; exit 3')(p), (e: unknown) => e instanceof VpnError && e.code === 'USAGE' && /exited with 3: nope/.test(e.message));
  await assert.rejects(commandOtp('true')(p), (e: unknown) => e instanceof VpnError && /printed nothing/.test(e.message));
  assert.equal(await commandOtp('echo "$VPNPROXY_CHALLENGE"')(p), 'PIN');
});

test('a static-challenge profile without any way to answer is a usage error before connecting', async () => {
  await assert.rejects(
    prepareOpenVpn({ profile: profileText('static-challenge "Enter OTP" 1\n'), username: 'u', password: 'p', env: {}, otpHint: 'give --otp CODE' }),
    (e: unknown) => e instanceof VpnError && e.code === 'USAGE' && /static-challenge "Enter OTP" needs a response: give --otp CODE/.test(e.message),
  );
});

test('backend: the static-challenge code is asked once and kept for reconnects; asked again after AUTH_FAILED', async () => {
  let asked = 0;
  const b = new OpenVpnBackend({
    profile: parse('static-challenge "Enter OTP" 0 concat\n'),
    credentials: { username: 'u', password: 'pw' },
    createTransport: noTransport,
    otp: async (p) => {
      asked++;
      assert.deepEqual(p, { kind: 'static', text: 'Enter OTP', echo: false });
      return `${asked}${asked}${asked}\n`;
    },
  });
  assert.deepEqual(await b.credentialsForAttempt(), { username: 'u', password: 'pw111' });
  assert.deepEqual(await b.credentialsForAttempt(), { username: 'u', password: 'pw111' });
  const s = b.createSession(0, undefined) as OpenVpnSession;
  b.afterSession(s, { reason: 'auth-failed' }, undefined);
  assert.deepEqual(await b.credentialsForAttempt(), { username: 'u', password: 'pw222' });
  assert.equal(asked, 2);
});

test('backend: a CRV1 challenge is answered on the next attempt at once, with the username the server gave', async () => {
  const prompts: ChallengePrompt[] = [];
  const b = new OpenVpnBackend({
    profile: parse(''),
    credentials: { username: 'u', password: 'pw' },
    createTransport: noTransport,
    otp: async (p) => {
      prompts.push(p);
      return '9999';
    },
  });
  assert.deepEqual(await b.credentialsForAttempt(), { username: 'u', password: 'pw' });
  const s = b.createSession(0, undefined) as OpenVpnSession;
  const m = parseServerMessage('AUTH_FAILED,CRV1:R:s2:Ym9i:PIN please');
  s.crv1Challenge = m.type === 'auth-failed' ? m.crv1 : undefined;
  assert.deepEqual(b.afterSession(s, { reason: 'auth-failed' }, undefined), { carry: undefined, retryAtOnce: true });
  assert.deepEqual(await b.credentialsForAttempt(), { username: 'bob', password: 'CRV1::s2::9999' });
  assert.deepEqual(prompts, [{ kind: 'crv1', text: 'PIN please', echo: false }]);
  // Answered once: the attempt after that is the plain credentials again.
  assert.deepEqual(await b.credentialsForAttempt(), { username: 'u', password: 'pw' });
});

test('backend: a CRV1 challenge with no otp source is a usage error naming the challenge', async () => {
  const b = new OpenVpnBackend({ profile: parse(''), credentials: { username: 'u', password: 'pw' }, createTransport: noTransport, otpHint: 'give --otp-command CMD' });
  const s = b.createSession(0, undefined) as OpenVpnSession;
  s.crv1Challenge = { flags: ['R'], echo: false, responseRequired: true, stateId: 'x', username: 'u', text: 'Token' };
  b.afterSession(s, { reason: 'auth-failed' }, undefined);
  await assert.rejects(b.credentialsForAttempt(), (e: unknown) => e instanceof VpnError && e.code === 'USAGE' && /challenge "Token" needs a response: give --otp-command CMD/.test(e.message));
});

test('auth-retry: none ends at AUTH_FAILED, nointeract retries, interact retries only when a person answers', () => {
  const err = new VpnError('AUTH_FAILED', 'x');
  const mk = (retry: string, otp: { interactive: boolean } | undefined) =>
    new OpenVpnBackend({
      profile: parse(`static-challenge "OTP" 1\n${retry ? `auth-retry ${retry}\n` : ''}`),
      credentials: { username: 'u', password: 'p' },
      createTransport: noTransport,
      ...(otp ? { otp: async () => '1', otpInteractive: otp.interactive } : {}),
    });
  assert.equal(mk('', { interactive: true }).isFatal('auth-failed', err), true);
  assert.equal(mk('none', { interactive: true }).isFatal('auth-failed', err), true);
  assert.equal(mk('nointeract', { interactive: false }).isFatal('auth-failed', err), false);
  assert.equal(mk('interact', { interactive: false }).isFatal('auth-failed', err), true);
  assert.equal(mk('interact', { interactive: true }).isFatal('auth-failed', err), false);
  // Other fatal errors stay fatal whatever auth-retry says.
  assert.equal(mk('nointeract', { interactive: true }).isFatal('tls-error', new VpnError('TLS_VERIFY', 'x')), true);
  assert.equal(mk('nointeract', { interactive: true }).isFatal('auth-failed', new VpnError('USAGE', 'x')), true);
});
