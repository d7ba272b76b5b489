import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { VpnError } from '../../../src/errors.js';
import { parseProfile } from '../../../src/openvpn/profile.js';

const FIXDIR = fileURLToPath(new URL('../../fixtures/profiles/', import.meta.url));
const fixtures = readdirSync(FIXDIR)
  .filter((f) => f.endsWith('.ovpn'))
  .map((f) => readFileSync(join(FIXDIR, f), 'utf8'));

const files: Record<string, string> = {
  [join(FIXDIR, 'keys/ca.crt')]: readFileSync(join(FIXDIR, 'keys/ca.crt'), 'utf8'),
  [join(FIXDIR, 'keys/ta.key')]: readFileSync(join(FIXDIR, 'keys/ta.key'), 'utf8'),
  [join(FIXDIR, 'keys/v2c.key')]: readFileSync(join(FIXDIR, 'keys/v2c.key'), 'utf8'),
};
const opts = {
  path: join(FIXDIR, 'fuzz.ovpn'),
  readFile: (p: string): string => {
    const t = files[p];
    if (t === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return t;
  },
};

const snippets = [
  '<ca>', '</ca>', '<connection>', '</connection>', '<tls-auth>', '</tls-auth>', '<tls-crypt-v2>', '"', "'", '\\', '#',
  ';', '\r\n', '\n', '\ufeff', 'remote x 1194 tcp\n', 'proto udp6\n', 'fragment 1300\n', 'dev tap\n', 'key-direction 2\n',
  'setenv opt ', 'ignore-unknown-option ', 'tls-auth keys/ta.key 1\n', 'tls-crypt-v2 keys/v2c.key\n', 'secret keys/ta.key\n',
  'ifconfig 10.0.0.1 10.0.0.2\n', 'mssfix\n', 'tun-mtu 99999999999\n', 'auth-user-pass\n', '<auth-user-pass>\n', 'pull\n',
  '-----END OpenVPN Static key V1-----', '--', '\0', 'ca keys/ca.crt\n', 'data-ciphers ?:?\n', 'peer-fingerprint 00\n',
  'http-proxy p 3128 auto\n', 'http-proxy p 3128 keys/ta.key digest\n', 'socks-proxy s\n', '<http-proxy-user-pass>\n',
  '</http-proxy-user-pass>\n', 'http-proxy-option CUSTOM-HEADER X-A "b c"\n', 'http-proxy-option VERSION 1.1\n', 'proto tcp-client\n',
];

const mutated = fc
  .tuple(
    fc.constantFrom(...fixtures),
    fc.array(fc.tuple(fc.nat(), fc.nat(60), fc.oneof(fc.constantFrom(...snippets), fc.string({ maxLength: 12 }))), { maxLength: 6 }),
  )
  .map(([base, edits]) => {
    let s = base;
    for (const [at, del, ins] of edits) {
      const i = at % (s.length + 1);
      s = s.slice(0, i) + ins + s.slice(i + del);
    }
    return s;
  });

const linesOfSnippets = fc.array(fc.oneof(fc.constantFrom(...snippets), fc.string({ maxLength: 30 })), { maxLength: 40 }).map((a) => a.join(''));

test('random and mutated profiles only ever raise VpnError, quickly', () => {
  let ok = 0;
  let failed = 0;
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 500 }), mutated, linesOfSnippets), (text) => {
      const t0 = performance.now();
      try {
        parseProfile(text, opts);
        ok++;
      } catch (e) {
        failed++;
        assert.ok(e instanceof VpnError, `non-VpnError thrown: ${String(e)}`);
        assert.ok(['PROFILE_SYNTAX', 'PROFILE_UNSUPPORTED', 'PROFILE_FILE'].includes(e.code), e.code);
      }
      assert.ok(performance.now() - t0 < 500, 'parse took too long');
    }),
    { numRuns: 1500 },
  );
  // Sanity: the generator produces both accepted and rejected profiles.
  assert.ok(ok > 0 && failed > 0, `ok=${ok} failed=${failed}`);
});

test('a large profile parses in linear time', () => {
  const big = fixtures[0]! + 'route 10.0.0.0 255.0.0.0\n'.repeat(50_000);
  const t0 = performance.now();
  parseProfile(big);
  assert.ok(performance.now() - t0 < 2000);
});
