/**
 * connect() without a server: how the profile may be given (path, text, parsed), and how a first connection
 * that never comes up ends (timeout, abort) without leaving anything running. The working paths are in
 * test/interop/library-*.test.ts against the lab's real server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect } from '../../../src/library.js';
import { parseProfile } from '../../../src/openvpn/profile.js';

const keys = fileURLToPath(new URL('../../fixtures/profiles/keys/', import.meta.url));
// A server that never answers: UDP to the discard port on loopback.
const text = ['client', 'dev tun', 'proto udp', 'remote 127.0.0.1 9', 'connect-retry 1', `ca ${keys}ca.crt`, `cert ${keys}client.crt`, `key ${keys}client.key`, ''].join('\n');
const code = (c: string) => (e: Error & { code?: string }) => {
  assert.equal(e.code, c, e.message);
  return true;
};

test('connect() needs a profile (USAGE)', async () => {
  await assert.rejects(connect({} as never), code('USAGE'));
  await assert.rejects(connect({ openvpn: {} } as never), code('USAGE'));
});

test('a profile path that does not exist: PROFILE_FILE; a broken profile text: PROFILE_*', async () => {
  await assert.rejects(connect({ openvpn: { profile: '/nonexistent/x.ovpn' } }), code('PROFILE_FILE'));
  await assert.rejects(connect({ openvpn: { profile: 'client\nremote\n' } }), (e: Error & { code?: string }) => /^PROFILE_/.test(e.code ?? ''));
});

test('profile as text: a server that never answers ends in CONNECT_TIMEOUT after timeoutMs', async () => {
  const t0 = Date.now();
  await assert.rejects(connect({ openvpn: { profile: text }, timeoutMs: 600 }), code('CONNECT_TIMEOUT'));
  const ms = Date.now() - t0;
  assert.ok(ms >= 550 && ms < 3000, `${ms} ms`);
});

test('profile already parsed (ParsedProfile or OpenVpnProfile), aborted by a signal: TRANSPORT_CLOSED', async () => {
  const parsed = parseProfile(text, { readFile: (p) => readFileSync(p, 'utf8') });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  await assert.rejects(connect({ openvpn: { profile: parsed }, signal: ac.signal, timeoutMs: 0 }), code('TRANSPORT_CLOSED'));
  await assert.rejects(connect({ openvpn: { profile: parsed.profile }, timeoutMs: 300 }), code('CONNECT_TIMEOUT'));
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(connect({ openvpn: { profile: parsed }, signal: pre.signal }), code('TRANSPORT_CLOSED'));
});
